/* Logins off the event loop. An argon2id check costs about a third of a
 * second by design; done on the loop it would stall every session and
 * every relayed packet for that long. The admin API's password hashes
 * are made here too, for the same reason. A worker thread with its own
 * database connection and identity backends does the checks; results
 * come back through an eventfd that the loop watches. Which job is
 * taken, which runs next and which is dropped is login_queue.h's rule:
 * sources take turns and have a share each, admin work has room of its
 * own, and a job whose client has gone is dropped before it runs. */
#ifndef GH_GATEWAY_LOGIN_WORKER_H
#define GH_GATEWAY_LOGIN_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gateway/config.h"
#include "gateway/login_queue.h"
#include "signaling/identity.h"
#include "signaling/password.h"

/* A job's outcome. Besides the check's own result it carries what the
 * client sent that the audit, the metrics and the detectors need, so
 * that a login whose connection closed while it was being checked is
 * still accounted for: the check has been made (and a failure counted
 * toward the user's lockout) whether or not anyone hears the answer. */
struct login_result {
	uint64_t session;          /* or the admin request id */
	bool admin;                /* an admin API login (always password + TOTP) */
	bool hash;                 /* a password to hash for the admin API */
	char pw_hash[PASSWORD_ENCODED_MAX]; /* hash: the encoding, when rc == IDENTITY_OK */
	int rc;                    /* enum identity_rc */
	struct identity_user who;  /* filled when rc == IDENTITY_OK */
	uint64_t cred_tag;         /* admin: of the credentials checked (userdb_entry) */
	const char *why;           /* static text, for logs */
	struct sockaddr_storage from; /* the client; AF_UNSPEC when it was not known */
	char user[IDENTITY_NAME_MAX]; /* the name it claimed; "" for a token or a hash */
};

struct login_worker;

/* Opens the worker's own user database (when a local backend is
 * configured, with users_key: userdb_open()) and identity backends, and
 * starts the thread. Returns owned: free with login_worker_free(). NULL
 * with err. */
struct login_worker *login_worker_new(const struct config *cfg, const uint8_t *users_key,
    char *err, size_t errlen);
/* Stops the thread once the job in progress is done; its result, and
 * any not drained yet, can still be drained. Queued jobs stay unrun.
 * Idempotent. */
void login_worker_stop(struct login_worker *w);
/* Stops the thread and wipes whatever is queued or undrained. */
void login_worker_free(struct login_worker *w);

/* The queue's rules (login_queue.h) decide whether a job is taken and
 * when it runs: from is the client (borrowed; NULL when unknown), whose
 * source gets its turn and its share. Strings are copied (and wiped
 * after use). Each returns 0, or a negative enum login_queue_rc when the
 * job is refused: its class is full, or (a password check) its source
 * already has its share in flight (login_queue.h). */

/* A signaling login; token is NULL for a password login. */
int login_worker_submit(struct login_worker *w, uint64_t session, const struct sockaddr *from,
    const char *user, const char *password, const char *totp, const char *token,
    uint64_t now_s);

/* An admin login: local users only, password and TOTP always, whatever
 * identity.mfa says; the result has admin set and the user's groups. */
int login_worker_submit_admin(struct login_worker *w, uint64_t request,
    const struct sockaddr *from, const char *user, const char *password, const char *totp,
    uint64_t now_s);

/* A password that the admin API sets (a user added, a password reset),
 * hashed here rather than on the loop; the result has hash set and
 * pw_hash filled. Admin class, like admin logins; not counted per source
 * (an admin already logged in asks for it). */
int login_worker_submit_hash(struct login_worker *w, uint64_t request,
    const struct sockaddr *from, const char *password);

/* The client of a job has gone (admin: a login or a hash; else a
 * signaling login). A job still queued is dropped: it has done nothing
 * and no result will come, so it is neither audited nor counted. Returns
 * whether it was; false when it runs or has run, and then its result
 * comes as usual. */
bool login_worker_cancel(struct login_worker *w, bool admin, uint64_t id);

/* Whether one more admin job would be taken now, its source's share
 * aside. Only the loop's thread queues jobs, so the answer holds until
 * it queues one. */
bool login_worker_admin_has_room(struct login_worker *w);

/* Readable when results are waiting. */
int login_worker_fd(const struct login_worker *w);

/* Hands every finished login to done, on the caller's thread. */
void login_worker_drain(struct login_worker *w,
    void (*done)(void *ctx, const struct login_result *r), void *ctx);

#endif
