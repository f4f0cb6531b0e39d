/* The daemon's one event loop. libwebsockets owns it (the Debian build
 * has no external-poll support), and everything else joins it: the
 * relay's epoll descriptor and the signal descriptor are adopted as raw
 * files, so a single thread serves signaling and relay without locks. */
#ifndef GH_GATEWAY_LOOP_H
#define GH_GATEWAY_LOOP_H

#include <stddef.h>
#include <stdint.h>

/* The most an HTTP request's headers may hold, in all, on the signaling
 * and admin listeners; a longer request is dropped. */
#define LOOP_HTTP_HEADERS_MAX 16384

struct lws_context;
struct loop;

typedef void (*loop_fd_cb)(void *arg);
typedef void (*loop_timer_cb)(void *arg);

/* Returns owned: free with loop_free(). Blocks SIGINT, SIGTERM, SIGHUP
 * and SIGUSR1 and watches them. NULL with err. */
struct loop *loop_new(char *err, size_t errlen);
void loop_free(struct loop *l);

/* The libwebsockets context, for creating vhosts on this loop. */
struct lws_context *loop_lws(struct loop *l);

/* Calls cb whenever fd is readable. fd is borrowed (not closed here). */
int loop_add_fd(struct loop *l, int fd, loop_fd_cb cb, void *arg);

/* Calls cb every period_ms, first after period_ms. At most 8 timers. */
int loop_add_timer(struct loop *l, uint32_t period_ms, loop_timer_cb cb, void *arg);

/* Calls cb on SIGHUP (reload the policy) and SIGUSR1 (reopen the audit
 * file after logrotate); optional. */
void loop_on_hup(struct loop *l, loop_timer_cb cb, void *arg);
void loop_on_usr1(struct loop *l, loop_timer_cb cb, void *arg);

/* Runs until SIGINT/SIGTERM or loop_stop(). 0, or -1 on a loop error. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);

#endif
