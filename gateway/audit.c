/* The audit trail (see audit.h). Each event is built, serialized and
 * written with one write(2) on an O_APPEND descriptor, so lines never
 * interleave even with a second writer. Queries read the file back. */
#include "gateway/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define AUDIT_LINE_MAX (64 * 1024)

struct audit {
	char path[4096];
	int fd;
};

struct audit *audit_open(const char *path, char *err, size_t errlen)
{
	struct audit *a = calloc(1, sizeof(*a));
	struct stat st;

	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(a->path, sizeof(a->path), "%s", path);
	a->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (a->fd < 0 || fstat(a->fd, &st) != 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		audit_close(a);
		return NULL;
	}
	/* Who did what is for the operators' eyes only. */
	if ((st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s: readable by group or others (chmod 600)", path);
		audit_close(a);
		return NULL;
	}
	return a;
}

void audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a);
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

void audit_log(struct audit *a, uint64_t now_ms, const char *event, json_t *fields)
{
	json_t *line = json_object();
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
	json_decref(line);
	if (text == NULL || a == NULL) {
		free(text);
		return;
	}
	n = strlen(text);
	text[n] = '\n';
	(void)!write(a->fd, text, n + 1);
	free(text);
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

json_t *audit_query(struct audit *a, uint64_t since_ms, uint64_t until_ms,
    const char *user, const char *event, size_t limit)
{
	json_t *out = json_array(), *e;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f;

	if (a == NULL || (f = fopen(a->path, "r")) == NULL)
		return out;
	while ((n = getline(&line, &cap, f)) > 0) {
		if ((size_t)n > AUDIT_LINE_MAX)
			continue;
		e = json_loadb(line, (size_t)n, 0, NULL);
		if (json_is_object(e) && matches(e, since_ms, until_ms, user, event)) {
			json_array_append(out, e);
			/* Keep the newest limit events. */
			if (limit > 0 && json_array_size(out) > limit)
				json_array_remove(out, 0);
		}
		json_decref(e);
	}
	free(line);
	fclose(f);
	return out;
}
