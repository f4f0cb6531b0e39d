/* The event loop on libwebsockets (see loop.h). */
#include "gateway/loop.h"

#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "common/clock.h"
#include "gateway/log.h"
#include "gateway/state_lock.h"

#define LOOP_MAX_FDS 8
#define LOOP_MAX_TIMERS 8

struct loop_fd {
	int fd;
	loop_fd_cb cb;
	void *arg;
};

struct loop_timer {
	lws_sorted_usec_list_t sul; /* first: the callback gets its address */
	struct loop *owner;
	uint32_t period_ms;
	loop_timer_cb cb;
	void *arg;
};

struct loop {
	struct lws_context *ctx;
	struct lws_vhost *raw_vhost;
	struct loop_fd fds[LOOP_MAX_FDS];
	size_t nfds;
	struct loop_timer timers[LOOP_MAX_TIMERS];
	size_t ntimers;
	int sigfd;
	loop_timer_cb on_hup, on_usr1;
	void *hup_arg, *usr1_arg;
	volatile int stop;
};

static int raw_callback(struct lws *wsi, enum lws_callback_reasons reason,
    void *user, void *in, size_t len)
{
	struct loop_fd *f = lws_get_opaque_user_data(wsi);

	(void)user;
	(void)in;
	(void)len;
	if (reason == LWS_CALLBACK_RAW_RX_FILE && f != NULL) {
		state_lock();
		f->cb(f->arg);
		state_unlock();
	}
	return 0;
}

static const struct lws_protocols raw_protocols[] = {
	{ "gh-raw", raw_callback, 0, 0, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* libwebsockets' own messages go to our log, warnings and errors only.
 * Most of them are caused by clients (a request with too many headers, a
 * failed TLS handshake), so a client could fill the log with them: at
 * most LWS_LOG_PER_S a second get through, and the rest are counted in
 * one line with the next message of a later second. libwebsockets runs
 * on the main thread only, so the counters need no lock. */
#define LWS_LOG_PER_S 10

static void lws_log_emit(int level, const char *line)
{
	static uint64_t second, shown, suppressed;
	uint64_t now = clock_wall_coarse_ms() / 1000;
	size_t n = strlen(line);

	if (now != second) {
		if (suppressed > 0)
			log_warn("lws: %llu more messages were not logged (at most %d a second)",
			    (unsigned long long)suppressed, LWS_LOG_PER_S);
		second = now;
		shown = suppressed = 0;
	}
	if (shown == LWS_LOG_PER_S) {
		suppressed++;
		return;
	}
	shown++;
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_msg(level == LLL_ERR ? LOG_ERR : LOG_WARNING, "lws: %.*s", (int)n, line);
}

static void on_signal(void *arg)
{
	struct loop *l = arg;
	struct signalfd_siginfo si;

	while (read(l->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			if (l->on_hup != NULL)
				l->on_hup(l->hup_arg);
			continue;
		}
		if (si.ssi_signo == SIGUSR1) {
			if (l->on_usr1 != NULL)
				l->on_usr1(l->usr1_arg);
			continue;
		}
		log_info("received %s, stopping", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
		loop_stop(l);
	}
}

struct loop *loop_new(char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct loop *l = calloc(1, sizeof(*l));
	sigset_t mask;

	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l->sigfd = -1;
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log_emit);
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS |
	    LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	/* Enough descriptors for the relay's sessions and sockets too. */
	info.fd_limit_per_thread = 0;
	/* A browser sends every cookie of the host with the WebSocket
	 * upgrade; single sign-on cookies of a company domain easily pass
	 * lws's default of 4 KiB, and past it the upgrade just fails. The
	 * space is held only while a request's headers are read. */
	info.max_http_header_data = LOOP_HTTP_HEADERS_MAX;
	l->ctx = lws_create_context(&info);
	if (l->ctx == NULL) {
		snprintf(err, errlen, "cannot create the event loop");
		goto fail;
	}
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
	info.protocols = raw_protocols;
	info.vhost_name = "gh-raw";
	l->raw_vhost = lws_create_vhost(l->ctx, &info);
	if (l->raw_vhost == NULL) {
		snprintf(err, errlen, "cannot create the event loop's vhost");
		goto fail;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	l->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (l->sigfd < 0 || loop_add_fd(l, l->sigfd, on_signal, l) != 0) {
		snprintf(err, errlen, "cannot watch signals: %s", strerror(errno));
		goto fail;
	}
	return l;
fail:
	loop_free(l);
	return NULL;
}

void loop_free(struct loop *l)
{
	if (l == NULL)
		return;
	if (l->ctx != NULL)
		lws_context_destroy(l->ctx);
	if (l->sigfd >= 0)
		close(l->sigfd);
	free(l);
}

struct lws_context *loop_lws(struct loop *l)
{
	return l->ctx;
}

int loop_add_fd(struct loop *l, int fd, loop_fd_cb cb, void *arg)
{
	struct loop_fd *f;
	lws_sock_file_fd_type desc;
	struct lws *wsi;

	if (l->nfds >= LOOP_MAX_FDS)
		return -1;
	f = &l->fds[l->nfds];
	f->fd = fd;
	f->cb = cb;
	f->arg = arg;
	/* libwebsockets closes what it adopts; it gets its own copy, so the
	 * owner's close never races with it over a reused number. */
	desc.filefd = dup(fd);
	if (desc.filefd < 0)
		return -1;
	wsi = lws_adopt_descriptor_vhost(l->raw_vhost, LWS_ADOPT_RAW_FILE_DESC, desc,
	    "gh-raw", NULL);
	if (wsi == NULL) {
		close(desc.filefd);
		return -1;
	}
	lws_set_opaque_user_data(wsi, f);
	l->nfds++;
	return 0;
}

static void timer_fired(lws_sorted_usec_list_t *sul)
{
	struct loop_timer *t = lws_container_of(sul, struct loop_timer, sul);

	state_lock();
	t->cb(t->arg);
	state_unlock();
	lws_sul_schedule(t->owner->ctx, 0, &t->sul, timer_fired,
	    (lws_usec_t)t->period_ms * LWS_US_PER_MS);
}

int loop_add_timer(struct loop *l, uint32_t period_ms, loop_timer_cb cb, void *arg)
{
	struct loop_timer *t;

	if (l->ntimers >= LOOP_MAX_TIMERS)
		return -1;
	t = &l->timers[l->ntimers++];
	t->owner = l;
	t->period_ms = period_ms;
	t->cb = cb;
	t->arg = arg;
	lws_sul_schedule(l->ctx, 0, &t->sul, timer_fired,
	    (lws_usec_t)period_ms * LWS_US_PER_MS);
	return 0;
}

void loop_on_hup(struct loop *l, loop_timer_cb cb, void *arg)
{
	l->on_hup = cb;
	l->hup_arg = arg;
}

void loop_on_usr1(struct loop *l, loop_timer_cb cb, void *arg)
{
	l->on_usr1 = cb;
	l->usr1_arg = arg;
}

int loop_run(struct loop *l)
{
	while (!l->stop)
		if (lws_service(l->ctx, 0) < 0)
			return -1;
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = 1;
	lws_cancel_service(l->ctx);
}
