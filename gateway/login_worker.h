/* Logins off the event loop. An argon2id check costs about a third of a
 * second by design; done on the loop it would stall every session and
 * every relayed packet for that long. The admin API's password hashes
 * are made here too, for the same reason. A worker thread with its own
 * database connection and identity backends does the checks; results
 * come back through an eventfd that the loop watches. */
#ifndef GH_GATEWAY_LOGIN_WORKER_H
#define GH_GATEWAY_LOGIN_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/config.h"
#include "signaling/identity.h"
#include "signaling/password.h"

#define LOGIN_QUEUE_MAX 256   /* pending logins before new ones are refused */

struct login_result {
	uint64_t session;          /* or the admin request id */
	bool admin;                /* an admin API login (always password + TOTP) */
	bool hash;                 /* a password to hash for the admin API */
	char pw_hash[PASSWORD_ENCODED_MAX]; /* hash: the encoding, when rc == IDENTITY_OK */
	int rc;                    /* enum identity_rc */
	struct identity_user who;  /* filled when rc == IDENTITY_OK */
	uint64_t cred_tag;         /* admin: of the credentials checked (userdb_entry) */
	const char *why;           /* static text, for logs */
};

struct login_worker;

/* Opens the worker's own user database (when a local backend is
 * configured) and identity backends, and starts the thread. Returns owned:
 * free with login_worker_free(). NULL with err. */
struct login_worker *login_worker_new(const struct config *cfg, char *err, size_t errlen);
/* Stops the thread (after the login in progress) and wipes what is queued. */
void login_worker_free(struct login_worker *w);

/* Queues a login; the strings are copied (and wiped after use). token is
 * NULL for a password login. 0, or -1 when the queue is full. */
int login_worker_submit(struct login_worker *w, uint64_t session, const char *user,
    const char *password, const char *totp, const char *token, uint64_t now_s);

/* An admin login: local users only, password and TOTP always, whatever
 * identity.mfa says; the result has admin set and the user's groups. */
int login_worker_submit_admin(struct login_worker *w, uint64_t request, const char *user,
    const char *password, const char *totp, uint64_t now_s);

/* A password that the admin API sets (a user added, a password reset),
 * hashed here rather than on the loop; the result has hash set and
 * pw_hash filled. Same queue as the logins. */
int login_worker_submit_hash(struct login_worker *w, uint64_t request, const char *password);

/* Whether one more job would be queued now. Only the loop's thread
 * queues jobs, so the answer holds until it queues one. */
bool login_worker_has_room(struct login_worker *w);

/* Readable when results are waiting. */
int login_worker_fd(const struct login_worker *w);

/* Hands every finished login to done, on the caller's thread. */
void login_worker_drain(struct login_worker *w,
    void (*done)(void *ctx, const struct login_result *r), void *ctx);

#endif
