/* The audit trail (see audit.h). The caller's thread only formats the
 * line and queues it; the writer thread writes each line with one
 * write(2) on an O_APPEND descriptor (lines never interleave) and sends it
 * to the syslog collector. */
#include "gateway/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "gateway/syslog_out.h"
#include "gateway/webhook.h"

/* Large enough for an admin's policy change (before and after, each up to
 * the 1 MiB a policy may have): an audit record is never thrown away for
 * its size. */
#define AUDIT_LINE_MAX (3 * 1024 * 1024)

struct item {
	struct item *next;
	int severity;
	char event[48];
	char ts[64];
	size_t len;
	char line[];                 /* JSON text and a newline */
};

struct audit {
	char path[4096];
	int fd;
	struct syslog_out *syslog;   /* owned, NULL when not configured */
	struct webhook *webhook;     /* owned, NULL when not configured */
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv, idle;
	struct item *head, *tail;
	size_t queued;
	bool busy;                   /* the writer holds an item */
	bool stop, reopen;
	uint64_t dropped, dropped_reported;
	uint64_t syslog_failed;      /* events the collector did not get */
};

static int open_file(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Who did what is for the operators' eyes only. */
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: readable by group or others (chmod 600)", path);
		close(fd);
		return -1;
	}
	return fd;
}

static void rfc3339(uint64_t now_ms, char out[64])
{
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	    (unsigned)(now_ms % 1000));
}

/* Severity for the SIEM: alerts that triggered a response are ALERT,
 * other alerts and refusals WARNING, the rest INFO. */
static int severity_of(const char *event, json_t *line)
{
	json_t *o = json_object_get(line, "outcome"), *r = json_object_get(line, "response");
	const char *out = json_is_string(o) ? json_string_value(o) : "";

	if (strncmp(event, "alert", 5) == 0)
		return json_is_string(r) && strcmp(json_string_value(r), "none") != 0 ?
		    LOG_ALERT : LOG_WARNING;
	if (strcmp(out, "failure") == 0 || strcmp(out, "failed") == 0 ||
	    strcmp(out, "deny") == 0 ||
	    strcmp(out, "denied") == 0 || strcmp(out, "closed") == 0 ||
	    strcmp(event, "audit.dropped") == 0)
		return LOG_WARNING;
	return LOG_INFO;
}

static struct item *make_item(uint64_t now_ms, const char *event, json_t *fields)
{
	json_t *line = json_object();
	struct item *it = NULL;
	char ts[64], *text;
	size_t n;

	rfc3339(now_ms, ts);
	json_object_set_new(line, "ts", json_string(ts));
	json_object_set_new(line, "ts_ms", json_integer((json_int_t)now_ms));
	json_object_set_new(line, "event", json_string(event));
	if (fields != NULL)
		json_object_update(line, fields);
	json_decref(fields);
	text = json_dumps(line, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text != NULL && (n = strlen(text)) < AUDIT_LINE_MAX &&
	    (it = malloc(sizeof(*it) + n + 2)) != NULL) {
		it->next = NULL;
		it->severity = severity_of(event, line);
		snprintf(it->event, sizeof(it->event), "%s", event);
		memcpy(it->ts, ts, sizeof(it->ts));
		memcpy(it->line, text, n);
		it->line[n] = '\n';
		it->line[n + 1] = '\0';
		it->len = n + 1;
	}
	free(text);
	json_decref(line);
	return it;
}

static void write_item(struct audit *a, struct item *it)
{
	if (a->fd >= 0)
		(void)!write(a->fd, it->line, it->len);
	if (a->syslog != NULL && syslog_out_send(a->syslog, it->severity, it->event, it->ts,
	    it->line, it->len - 1) != 0) {
		pthread_mutex_lock(&a->mu);
		a->syslog_failed++;
		pthread_mutex_unlock(&a->mu);
	}
	if (a->webhook != NULL && strcmp(it->event, "alert") == 0)
		webhook_send(a->webhook, it->line, it->len - 1);
}

static void *writer_main(void *arg)
{
	struct audit *a = arg;
	struct item *it;
	char err[256];
	int fd;

	pthread_mutex_lock(&a->mu);
	for (;;) {
		while (!a->stop && !a->reopen && a->head == NULL)
			pthread_cond_wait(&a->cv, &a->mu);
		if (a->reopen) {
			a->reopen = false;
			pthread_mutex_unlock(&a->mu);
			fd = open_file(a->path, err, sizeof(err));
			pthread_mutex_lock(&a->mu);
			if (fd >= 0) {
				if (a->fd >= 0)
					close(a->fd);
				a->fd = fd;
			}
			continue;
		}
		if (a->head == NULL)
			break; /* stopping, nothing left */
		it = a->head;
		a->head = it->next;
		if (a->head == NULL)
			a->tail = NULL;
		a->queued--;
		a->busy = true;
		pthread_mutex_unlock(&a->mu);
		write_item(a, it);
		free(it);
		pthread_mutex_lock(&a->mu);
		a->busy = false;
		if (a->head == NULL)
			pthread_cond_broadcast(&a->idle);
	}
	pthread_cond_broadcast(&a->idle);
	pthread_mutex_unlock(&a->mu);
	return NULL;
}

struct audit *audit_open(const char *path, const struct config_log *log,
    const char *webhook, char *err, size_t errlen)
{
	struct audit *a = calloc(1, sizeof(*a));
	const char *why;

	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(a->path, sizeof(a->path), "%s", path);
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->cv, NULL);
	pthread_cond_init(&a->idle, NULL);
	a->fd = open_file(path, err, errlen);
	if (a->fd < 0)
		goto fail;
	if (log != NULL && log->has_syslog &&
	    (a->syslog = syslog_out_new(log, err, errlen)) == NULL)
		goto fail;
	if (webhook != NULL && webhook[0] != '\0') {
		struct sockaddr_storage addr;
		char hook_path[256];

		if (webhook_parse(webhook, &addr, hook_path, sizeof(hook_path), &why) != 0) {
			snprintf(err, errlen, "alerts.webhook: %s", why);
			goto fail;
		}
		if ((a->webhook = webhook_new(&addr, hook_path)) == NULL) {
			snprintf(err, errlen, "alerts.webhook: cannot start its sender");
			goto fail;
		}
	}
	if (pthread_create(&a->thread, NULL, writer_main, a) != 0) {
		snprintf(err, errlen, "cannot start the audit writer");
		goto fail;
	}
	a->started = true;
	return a;
fail:
	audit_close(a);
	return NULL;
}

void audit_close(struct audit *a)
{
	struct item *it, *next;

	if (a == NULL)
		return;
	if (a->started) {
		pthread_mutex_lock(&a->mu);
		a->stop = true;
		pthread_cond_signal(&a->cv);
		pthread_mutex_unlock(&a->mu);
		pthread_join(a->thread, NULL);
	}
	for (it = a->head; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	syslog_out_free(a->syslog);
	webhook_free(a->webhook);
	if (a->fd >= 0)
		close(a->fd);
	pthread_cond_destroy(&a->idle);
	pthread_cond_destroy(&a->cv);
	pthread_mutex_destroy(&a->mu);
	free(a);
}

static void enqueue_locked(struct audit *a, struct item *it)
{
	if (a->tail != NULL)
		a->tail->next = it;
	else
		a->head = it;
	a->tail = it;
	a->queued++;
}

/* Queues one event; last is for the daemon's closing event, which a full
 * queue does not drop. Drops that nothing has reported yet are noted
 * first (audit.dropped), once there is room again: they came before. */
static void log_item(struct audit *a, uint64_t now_ms, const char *event, json_t *fields,
    bool last)
{
	struct item *it, *note;

	if (a == NULL) {
		json_decref(fields);
		return;
	}
	it = make_item(now_ms, event, fields);
	pthread_mutex_lock(&a->mu);
	if (it == NULL || (!last && a->queued >= AUDIT_QUEUE_MAX)) {
		a->dropped++;
		pthread_mutex_unlock(&a->mu);
		free(it);
		return;
	}
	/* Made under the lock, so that no other event comes between the
	 * count and the note; a rare path. */
	if (a->dropped > a->dropped_reported && (last || a->queued + 1 < AUDIT_QUEUE_MAX)) {
		note = make_item(now_ms, "audit.dropped", json_pack("{s:I, s:s}", "count",
		    (json_int_t)(a->dropped - a->dropped_reported), "outcome", "failure"));
		if (note != NULL) {
			a->dropped_reported = a->dropped;
			enqueue_locked(a, note);
		}
	}
	enqueue_locked(a, it);
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

void audit_log(struct audit *a, uint64_t now_ms, const char *event, json_t *fields)
{
	log_item(a, now_ms, event, fields, false);
}

void audit_log_last(struct audit *a, uint64_t now_ms, const char *event, json_t *fields)
{
	log_item(a, now_ms, event, fields, true);
}

void audit_reopen(struct audit *a)
{
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	a->reopen = true;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->mu);
}

void audit_losses(struct audit *a, uint64_t *dropped, uint64_t *syslog_failed)
{
	*dropped = *syslog_failed = 0;
	if (a == NULL)
		return;
	pthread_mutex_lock(&a->mu);
	*dropped = a->dropped;
	*syslog_failed = a->syslog_failed;
	pthread_mutex_unlock(&a->mu);
}

/* Waits until the writer has caught up, at most about a second. */
static void drain(struct audit *a)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 1;
	pthread_mutex_lock(&a->mu);
	while ((a->head != NULL || a->busy) && !a->stop)
		if (pthread_cond_timedwait(&a->idle, &a->mu, &until) != 0)
			break;
	pthread_mutex_unlock(&a->mu);
}

static bool matches(json_t *e, uint64_t since_ms, uint64_t until_ms, const char *user,
    const char *event)
{
	json_int_t ts = json_integer_value(json_object_get(e, "ts_ms"));
	const char *keys[] = { "actor", "user", "target" };
	size_t i;

	if ((since_ms && (uint64_t)ts < since_ms) || (until_ms && (uint64_t)ts > until_ms))
		return false;
	if (event != NULL && (!json_is_string(json_object_get(e, "event")) ||
	    strcmp(json_string_value(json_object_get(e, "event")), event) != 0))
		return false;
	if (user == NULL)
		return true;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(e, keys[i]);
		if (json_is_string(v) && strcmp(json_string_value(v), user) == 0)
			return true;
	}
	return false;
}

/* Whether line can hold needle as a JSON string: a cheap test before
 * parsing every line of a file of millions. Only for needles that JSON
 * writes as they are (printable ASCII but quote and backslash, as every
 * user and event name is); for any other, every line may. */
static bool may_contain(const char *line, size_t len, const char *needle)
{
	char quoted[128];
	const char *c;
	int n;

	if (needle == NULL)
		return true;
	for (c = needle; *c != '\0'; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e || *c == '"' || *c == '\\')
			return true;
	n = snprintf(quoted, sizeof(quoted), "\"%s\"", needle);
	if (n < 0 || (size_t)n >= sizeof(quoted))
		return true;
	return memmem(line, len, quoted, (size_t)n) != NULL;
}

json_t *audit_query(struct audit *a, uint64_t since_ms, uint64_t until_ms,
    const char *user, const char *event, size_t limit)
{
	json_t *out = json_array(), *e, **ring;
	size_t cap = 0, kept = 0, next = 0, i;
	char *line = NULL;
	ssize_t n;
	FILE *f;

	if (a == NULL || limit == 0)
		return out;
	drain(a);
	/* The newest limit matches, in a ring: dropping the oldest from the
	 * front of a JSON array would move all the others, for every match. */
	if ((ring = calloc(limit, sizeof(*ring))) == NULL)
		return out;
	if ((f = fopen(a->path, "r")) == NULL) {
		free(ring);
		return out;
	}
	while ((n = getline(&line, &cap, f)) > 0) {
		if ((size_t)n > AUDIT_LINE_MAX || !may_contain(line, (size_t)n, event) ||
		    !may_contain(line, (size_t)n, user))
			continue;
		e = json_loadb(line, (size_t)n, 0, NULL);
		if (json_is_object(e) && matches(e, since_ms, until_ms, user, event)) {
			json_decref(ring[next]);
			ring[next] = e;
			next = (next + 1) % limit;
			kept += kept < limit;
		} else {
			json_decref(e);
		}
	}
	free(line);
	fclose(f);
	for (i = 0; i < kept; i++)
		json_array_append_new(out, ring[(next + limit - kept + i) % limit]);
	free(ring);
	return out;
}
