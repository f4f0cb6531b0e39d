/* The login worker's queue (login_worker.h) without the thread: which
 * job is refused, which runs next, and which is dropped. Pure and
 * single-threaded; the worker holds its mutex around every call.
 *
 * Why it is more than a FIFO: one thread checks every password with
 * argon2id, a third of a second each, for signaling logins, admin logins
 * and the admin API's password hashes alike. With one shared FIFO, a
 * client that opened connections, sent a login and closed them again
 * filled it (the per-connection limits ended with the connections, the
 * jobs did not), and every real login waited a minute behind it or was
 * refused. So:
 *
 *  - Signaling logins and admin work (admin logins, password hashes) are
 *    two classes with room of their own: signaling traffic never takes
 *    the room that operators need.
 *  - A source (an IPv4 address; an IPv6 /64, what one subscriber is
 *    usually given) has at most a share of password checks in flight
 *    per class (LOGIN_QUEUE_PER_SOURCE; for signaling, as configured), counted from the push until the result has
 *    been taken (login_queue_release()), whatever happens to the
 *    connection meanwhile. Token logins and password hashes are not
 *    counted: a token is checked in microseconds, and a hash is asked
 *    for by an admin already logged in.
 *  - Sources take turns (round-robin within a class), and the classes
 *    take turns when both have work, so a login waits for one job of
 *    each busy source at most, not for everything queued before it.
 *  - A job whose client has gone is dropped before it runs
 *    (login_queue_cancel()). */
#ifndef GH_GATEWAY_LOGIN_QUEUE_H
#define GH_GATEWAY_LOGIN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define LOGIN_QUEUE_SIGNALING_MAX 256 /* signaling logins in flight */
#define LOGIN_QUEUE_ADMIN_MAX 128     /* admin jobs in flight: admin.c's 64 logins and 64 hashes */
/* Password checks in flight per source: the admin class's, and the
 * signaling class's default (signaling.logins_per_source). */
#define LOGIN_QUEUE_PER_SOURCE 3

enum login_class {
	LOGIN_CLASS_SIGNALING = 0,
	LOGIN_CLASS_ADMIN = 1,
};
#define LOGIN_CLASSES 2

enum login_queue_rc {
	LOGIN_QUEUE_OK = 0,
	LOGIN_QUEUE_FULL = -1,        /* the class has no room */
	LOGIN_QUEUE_SOURCE_BUSY = -2, /* the source has its share of password checks in flight */
};

struct login_source;

/* Embedded in the caller's job. The caller sets cls, id and limited
 * before login_queue_push(); the rest is the queue's. */
struct login_queue_item {
	enum login_class cls;
	uint64_t id;                  /* session or admin request: what a cancel names */
	bool limited;                 /* a password check: counted per source */
	struct login_queue_item *next;
	struct login_source *src;
};

struct login_queue;

/* Returns owned: free with login_queue_free(). NULL on ENOMEM. */
/* signaling_share: password checks in flight per source for signaling
 * logins (1 to LOGIN_QUEUE_SIGNALING_MAX; the admin class has
 * LOGIN_QUEUE_PER_SOURCE). */
struct login_queue *login_queue_new(unsigned signaling_share);
/* The items are the caller's: take them out first (login_queue_pop()). */
void login_queue_free(struct login_queue *q);

/* Queues it (borrowed until it is released) as a job of from's source
 * (NULL: one source for every client without an address). 0, or a
 * negative enum login_queue_rc when it is refused. */
int login_queue_push(struct login_queue *q, struct login_queue_item *it,
    const struct sockaddr *from);
/* The next job to run: the oldest of the source whose turn it is, from
 * the class whose turn it is. NULL when none is queued. It still counts
 * against its source and class until login_queue_release(). */
struct login_queue_item *login_queue_pop(struct login_queue *q);
/* Takes the queued job of class cls with id out, and releases it:
 * the caller frees it. NULL when there is none (it runs or has run). */
struct login_queue_item *login_queue_cancel(struct login_queue *q, enum login_class cls,
    uint64_t id);
/* A job popped earlier is over: it no longer counts. */
void login_queue_release(struct login_queue *q, struct login_queue_item *it);

/* Whether the class has room for one more job (its source's share aside). */
bool login_queue_has_room(const struct login_queue *q, enum login_class cls);
/* Jobs of the class in flight: queued, running, or done and not released. */
size_t login_queue_count(const struct login_queue *q, enum login_class cls);

#endif
