/* The admin control plane (docs/admin-api.md): an HTTP JSON API on the
 * admin listener, behind MFA logins with roles.
 *
 * Sans-I/O core: the HTTP adapter (admin_http.c) hands it one complete
 * request; it answers through a response struct, or later (logins are
 * checked on the login worker) through admin_login_done(). Every action
 * that changes something is audited with actor, target, before, after.
 *
 * Roles (a local user's group "admin", "operator" or "auditor"; the
 * strongest wins):
 *   admin    — policy and users, and everything an operator may do
 *   operator — sessions, calls, unlocking users
 *   auditor  — read only
 *
 * Endpoints (all JSON; "-" = no token needed):
 *   POST   /api/login                   -        {user,password,totp} -> {token,role,user,expires_in}
 *   POST   /api/logout                  any      revokes the token
 *   GET    /api/health                  -        {"status":"ok"}
 *   GET    /api/status                  any      version, uptime, counts
 *   GET    /api/sessions                any      [{id,user,since_ms}]
 *   DELETE /api/sessions/ID             operator {closed:ID}
 *   GET    /api/calls                   any      [{call,caller,callee,media,state,record,rule}]
 *   DELETE /api/calls/ID                operator the call ends, reason "admin"
 *   GET    /api/users                   any      [{name,groups,totp,disabled,failures,locked_until}]
 *   POST   /api/users                   admin    {name,password,groups,totp:bool} -> {otpauth?}
 *   POST   /api/users/NAME/disable      admin    sessions of the user are closed
 *   POST   /api/users/NAME/enable       admin
 *   POST   /api/users/NAME/unlock       operator
 *   POST   /api/users/NAME/password     admin    {password, actor_totp}
 *   POST   /api/users/NAME/totp         admin    {actor_totp} -> {otpauth}
 *   DELETE /api/users/NAME              admin
 *   GET    /api/policy                  any      {policy: <the running policy>}
 *   POST   /api/policy/validate         admin    body = policy -> {ok:true,rules:N} | 400 {error}
 *   PUT    /api/policy                  admin    body = policy: validated, written atomically, applied
 *   GET    /api/audit?since=&until=&user=&event=&limit=   any
 *   GET    /api/blocks                  any      [{source,until_ms,reason}]
 *   DELETE /api/blocks/IP               operator undoes an automatic block
 *   GET    /metrics                     -        Prometheus text format (the
 *                                                admin listener is loopback
 *                                                unless configured otherwise)
 * Errors: {"error": "<code>", "message": "..."} with 400 bad_request,
 * 401 unauthorized (no/expired/revoked token, failed login), 403
 * forbidden (role, Origin), 404 not_found, 405 method_not_allowed, 409
 * conflict, 413 too_large, 400 invalid_policy (with the place of the
 * error), 503 busy (too many logins in progress), 500 internal. A failed login is 401 whatever
 * the reason (unknown user, wrong password or code, locked, disabled). */
#ifndef GH_GATEWAY_ADMIN_H
#define GH_GATEWAY_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/clock.h"

#define ADMIN_TOKEN_ABSOLUTE_S (8 * 3600) /* never longer than a working day */
#define ADMIN_STEPUP_S 300 /* what an accepted actor_totp allows without another */
#define ADMIN_MAX_BODY (1024 * 1024) /* a policy file's limit */
#define ADMIN_MAX_TOKENS 256
#define ADMIN_MAX_ORIGINS 4          /* two names under two schemes */

enum admin_role {
	ADMIN_ROLE_NONE = 0,
	ADMIN_ROLE_AUDITOR = 1,
	ADMIN_ROLE_OPERATOR = 2,
	ADMIN_ROLE_ADMIN = 3,
};

struct hub;
struct userdb;
struct audit;
struct login_worker;
struct audit_reader;
struct login_result;
struct blocklist;

struct admin_env {
	void *ctx;
	struct hub *hub;                /* borrowed */
	struct userdb *users;           /* borrowed; NULL: no local users */
	struct audit *audit;            /* borrowed */
	struct login_worker *logins;    /* borrowed */
	struct audit_reader *audit_reader; /* borrowed: runs audit queries */
	const char *policy_path;        /* "" when no policy file is configured */
	/* Validates text as a policy, writes it to policy_path atomically and
	 * applies it (live calls decided again). 0, -1 with err naming the
	 * place of the error, or -2 when the file could not be written; the
	 * running policy is untouched on failure. */
	int (*policy_replace)(void *ctx, const char *text, size_t len, char *err,
	    size_t errlen);
	size_t (*alloc_count)(void *ctx);
	/* The running policy's text (owned, free()), NULL when none. */
	char *(*policy_text)(void *ctx);
	struct blocklist *blocks;       /* borrowed: sources blocked by responses */
	/* The Prometheus exposition text (owned, free()), or NULL. */
	char *(*metrics)(void *ctx);
	/* A user was added, disabled, enabled or deleted through the API:
	 * the daemon applies the change to live sessions at once
	 * (user_watch.h), as it does for changes made by other processes. */
	void (*users_changed)(void *ctx);
	/* Optional: an admin login failed (for the anomaly detectors). */
	void (*login_failed)(void *ctx, const char *user, const char *source_ip);
	/* Sends the answer to a request that admin_handle() deferred. */
	void (*reply)(void *ctx, uint64_t request, int status, const char *body, size_t len);
	/* Origins allowed on browser requests (the listener's own): its
	 * address and localhost, under https, http or, on a loopback
	 * listener that serves both, each. */
	char origins[ADMIN_MAX_ORIGINS][256];
	size_t norigins;
	uint64_t started_ms;            /* monotonic: for the uptime */
	uint32_t token_ttl_s;           /* idle lifetime of a token (sliding) */
};

enum admin_method { ADMIN_GET, ADMIN_POST, ADMIN_PUT, ADMIN_DELETE, ADMIN_OTHER };

struct admin_request {
	uint64_t id;                    /* the adapter's, for deferred answers */
	enum admin_method method;
	const char *path;               /* without the query */
	const char *query;              /* "" when none */
	const char *authorization;      /* the header, or NULL */
	const char *origin;             /* the header, or NULL */
	const char *remote;             /* the client's IP, for the audit */
	const char *body;
	size_t body_len;
};

struct admin;

/* Returns owned: free with admin_free(). env is copied. NULL on ENOMEM. */
struct admin *admin_new(const struct admin_env *env);
void admin_free(struct admin *a);

/* Handles one request. Returns true with *status, *body (owned, free())
 * and *content_type (static) set, or false when the answer will come
 * through env->reply (a login being checked, a password being hashed, or
 * an audit query being read; always JSON). */
bool admin_handle(struct admin *a, const struct admin_request *rq, struct clock_pair now,
    int *status, char **body, const char **content_type);

/* The outcome of an admin login started by admin_handle(). */
void admin_login_done(struct admin *a, const struct login_result *r, struct clock_pair now);

/* The hash of a password that the API sets (login_worker_submit_hash()):
 * the user is added or the password changed now, and the request
 * answered. */
void admin_hash_done(struct admin *a, const struct login_result *r, struct clock_pair now);

/* The answer of a deferred audit query (audit_reader_drain()): body, or
 * NULL when the reader ran out of memory. */
void admin_audit_done(struct admin *a, uint64_t request, const char *body);

/* A request that was deferred will never be answered (its connection
 * went away). */
void admin_request_gone(struct admin *a, uint64_t request);

#endif
