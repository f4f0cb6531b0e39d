/* The signaling protocol engine (DESIGN.md, "Signaling protocol"),
 * sans-I/O: sessions, login, contacts, calls and their state, SDP and
 * candidate forwarding through the relay-only filter, hangup.
 *
 * The WebSocket adapter (ws_server.c) feeds it one complete text message
 * at a time with the time (struct clock_pair); it answers through the ops
 * table. It does not know the TURN relay: credentials, teardown and "is
 * this address one of the call's relayed addresses" are asked through
 * ops, which the gateway answers from the TURN code and the registry. */
#ifndef GH_SIGNALING_HUB_H
#define GH_SIGNALING_HUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "policy/policy.h"
#include "signaling/identity.h"
#include "signaling/sdp_fingerprint.h"
#include "signaling/userdb.h"

#define HUB_CALL_ID_LEN 22            /* base64url of 16 random bytes */
#define HUB_RING_TIMEOUT_MS (30 * 1000)
#define HUB_CALL_MAX_S (12 * 3600)    /* credential lifetime cap */
#define HUB_MAX_CALLS_PER_USER 4      /* placed or answered; as many ringing for it */
#define HUB_CALLS_PER_MIN 30          /* default: placed per user, all sessions; bursts of as many */
#define HUB_MSGS_PER_S 20             /* sustained, with a burst of twice that */
#define HUB_MAX_STRIKES 5             /* bad requests before the close */
#define HUB_MAX_LOGIN_ATTEMPTS 5      /* per connection */
#define HUB_BUSY_RETRY_MS 1000        /* retry_after_ms of a login the checker had no room for */
#define HUB_MAX_ICE_URLS 4

/* The time of one entry point (struct clock_pair, common/clock.h) is read
 * by the adapter and handed down: the hub reads no clock. Two clocks for
 * two jobs, as in the relay: mono_ms measures every interval the hub keeps
 * (ringing deadlines, the call placement and message rate buckets, the
 * contacts cache's age, the setup_ms and duration_ms of events), so that
 * a step of the system clock neither ends nor prolongs any of them, nor
 * skews what is measured; wall_ms (UNIX time) is used only for instants
 * that others read: the expiry inside TURN credentials, a token's expiry,
 * the time given to ops->login (JWT exp and nbf, TOTP steps) and the
 * since_ms that the admin views show. */

struct hub_ice_servers {
	char urls[HUB_MAX_ICE_URLS][320]; /* "turn:127.0.0.1:3478?transport=udp" */
	size_t nurls;
};

/* What happened, for the audit trail, metrics, logs and alerts. Every
 * pointer is borrowed for the duration of the callback; absent fields are
 * NULL / 0. No secret is ever in an event. */
enum hub_event_kind {
	HUB_EV_LOGIN_OK = 1,
	HUB_EV_LOGIN_FAILED,      /* reason: why, for logs only */
	HUB_EV_LOGOUT,            /* the session of a logged-in user closed */
	HUB_EV_CALL_DECIDED,      /* allowed or not, rule; reason "policy change" on re-evaluation */
	HUB_EV_CALL_ACCEPTED,
	HUB_EV_CALL_ENDED,        /* reason: hangup, rejected, timeout, ... ; duration_ms */
	HUB_EV_CANDIDATE_REMOVED, /* count removed by the relay-only filter */
	HUB_EV_ABUSE,             /* reason: "bad requests", "flood", "login attempts" */
	HUB_EV_SDP_REFUSED,       /* a description with media the call does not
	                           * allow: medium, reason "offer" or "answer" */
};

struct hub_event {
	enum hub_event_kind kind;
	uint64_t session;
	const struct sockaddr *source; /* the session's client address */
	const char *user;
	const char *peer;         /* the other party of a call */
	const char *call;
	const char *rule;
	const char *reason;
	const char *medium;       /* HUB_EV_SDP_REFUSED: "audio", "video", "data", "other" */
	unsigned media;
	bool allowed;
	bool record;              /* HUB_EV_CALL_DECIDED: the allowing rule asks for it */
	bool mfa;
	bool unanswered;          /* HUB_EV_LOGIN_*: the session had closed
	                           * before the check ended; nobody got the answer */
	unsigned count;
	/* Both on the monotonic clock (struct clock_pair). */
	uint64_t duration_ms;     /* accepted to ended; 0 if never accepted */
	uint64_t setup_ms;        /* call to accepted (HUB_EV_CALL_ACCEPTED), login
	                           * request to answer (HUB_EV_LOGIN_*) */
};

struct hub_ops {
	void *ctx;
	/* Queues a text message for a session. */
	void (*send)(void *ctx, uint64_t session, const char *text, size_t len);
	/* Optional (send when NULL): queues a message that makes the one
	 * queued this way before it stale (a pushed contacts list), which may
	 * then be dropped unsent. */
	void (*send_update)(void *ctx, uint64_t session, const char *text, size_t len);
	/* Closes a session (after what was queued is sent). The hub does
	 * not wait for it: it lets go of the session when the entry point
	 * that closed it returns (its calls end), and sends nothing to it
	 * after this call. */
	void (*close)(void *ctx, uint64_t session, const char *why);
	/* Starts checking a login away from the loop (argon2id is slow on
	 * purpose); the answer comes back through hub_login_done(), with
	 * from and user as given here. from is the session's address. token
	 * is NULL for a password login, totp may be NULL. 0, or -1 when the
	 * checker is busy: too many logins waiting, or too many from this
	 * client's address. now_s is UNIX time (clock_pair.wall_ms), for
	 * the checks that compare against absolute times: a token's exp and
	 * nbf, the TOTP step. */
	int (*login)(void *ctx, uint64_t session, const struct sockaddr *from,
	    const char *user, const char *password, const char *totp, const char *token,
	    uint64_t now_s);
	/* Optional: the session of a login being checked has closed. A check
	 * that has not started should be dropped: it has done nothing, and
	 * then it is neither audited nor counted. One that has started still
	 * comes back through hub_login_done(). */
	void (*login_cancel)(void *ctx, uint64_t session);
	/* Mints TURN credentials for user in call, valid until expires_s
	 * (UNIX time: any relay node checks it). 0, or -1. */
	int (*mint)(void *ctx, const char *user, const char *call, uint64_t expires_s,
	    char *username, size_t ucap, char *password, size_t pcap);
	/* Is addr a relayed address of user's allocation in call? */
	bool (*relay_of)(void *ctx, const char *user, const char *call,
	    const struct sockaddr *addr);
	/* The call is over: its credentials stop working and its allocations
	 * are torn down now. expires_s is when the credentials would have
	 * expired anyway. */
	void (*call_ended)(void *ctx, const char *call, uint64_t expires_s);
	/* Optional: something happened (see struct hub_event). */
	void (*event)(void *ctx, const struct hub_event *e);
	/* Optional: the certificate fingerprints (a=fingerprint) that user
	 * declared in an SDP of call, forwarded or not, so that the relay can
	 * check the DTLS certificate it sees against them. n may be 0. */
	void (*fingerprints)(void *ctx, const char *call, const char *user,
	    const struct sdp_fingerprint *fps, size_t n);
	/* Optional: called between the steps of long work (a contacts list,
	 * a push to every session), which touches only the hub's own data,
	 * so that the daemon can let its relay thread run meanwhile. */
	void (*yield)(void *ctx);
};

struct hub_config {
	struct identity *identity;   /* borrowed: groups of users for the policy */
	struct userdb *users;        /* borrowed, may be NULL: for contacts */
	const struct policy *policy; /* borrowed, may be NULL: deny all */
	struct hub_ice_servers ice;
	uint32_t calls_per_min;      /* placed per user (signaling.calls_per_minute); 0: HUB_CALLS_PER_MIN */
};

struct hub;

/* Returns owned: free with hub_free(). NULL on ENOMEM. */
struct hub *hub_new(const struct hub_config *cfg, const struct hub_ops *ops);
void hub_free(struct hub *h);

/* Replaces the policy (borrowed; the old one may be freed after) and
 * decides every live call again: one that is no longer allowed ends at
 * once, both sides getting hangup with reason "policy". */
void hub_set_policy(struct hub *h, const struct policy *p);

/* A WebSocket session opened from this address. */
void hub_session_open(struct hub *h, uint64_t session, const struct sockaddr *from,
    struct clock_pair now);
/* One complete text message (not NUL-terminated). */
void hub_session_message(struct hub *h, uint64_t session, const char *text,
    size_t len, struct clock_pair now);
/* A message that was too large to take in: answered and counted. */
void hub_session_oversized(struct hub *h, uint64_t session, struct clock_pair now);
/* The session is gone: its calls end ("disconnected"). Nothing is left
 * to do for a session the hub already let go of (see below), so each
 * session's logout is reported once. */
void hub_session_closed(struct hub *h, uint64_t session, struct clock_pair now);
/* The adapter is closing the session on its own (a reader too slow to
 * take what is queued) or reports a close the hub asked for: the hub lets
 * go of it now, as if it had closed (its calls end, "disconnected"),
 * rather than when the connection is finally gone. May be called from
 * inside an ops callback: the session is then let go of when the hub's
 * entry point returns. */
void hub_session_closing(struct hub *h, uint64_t session, struct clock_pair now);
/* The outcome of a login started through ops->login. Every pointer is
 * borrowed for the call. */
struct hub_login_result {
	uint64_t session;
	int rc;                          /* enum identity_rc */
	const struct identity_user *who; /* when rc == IDENTITY_OK */
	const char *why;                 /* otherwise: for the audit and logs */
	/* What ops->login was given, carried with the check: */
	const struct sockaddr *from;
	const char *user;                /* the name claimed; "" or NULL for a token */
};
/* Answers the session, or, when it closed meanwhile, accounts for the
 * login all the same: the check was made (a failure counted toward the
 * user's lockout), so it is an event like any other (unanswered set),
 * for the audit, the metrics and the detectors. */
void hub_login_done(struct hub *h, const struct hub_login_result *r, struct clock_pair now);
/* Ringing timeouts, and the user entries that only a call bucket kept.
 * Call about once a second. */
void hub_tick(struct hub *h, struct clock_pair now);

/* Admin views and actions. */
struct hub_session_info {
	uint64_t id;
	const char *user;           /* "" before login */
	uint64_t since_ms;          /* UNIX time (wall_ms) of the open */
	const struct sockaddr *from; /* the client's address */
};
struct hub_call_info {
	const char *id, *caller, *callee, *rule;
	unsigned media;
	bool accepted;
	bool record;
	uint64_t since_ms;          /* UNIX time (wall_ms) the call was placed */
};
void hub_each_session(struct hub *h, void (*fn)(void *ctx, const struct hub_session_info *s),
    void *ctx);
void hub_each_call(struct hub *h, void (*fn)(void *ctx, const struct hub_call_info *c),
    void *ctx);
/* Ends a call as if hung up, both sides getting hangup with reason. 0, or
 * -1 when there is no such call. */
int hub_end_call(struct hub *h, const char *call, const char *reason);
/* Closes one session, or every session of a user, as if the session
 * had closed (see ops->close); returns how many. */
int hub_close_session(struct hub *h, uint64_t session, const char *why);
size_t hub_close_user(struct hub *h, const char *user, const char *why);
/* Sends every logged-in session its contacts list again (no id), after
 * the policy or the users changed. */
void hub_push_contacts(struct hub *h);

size_t hub_session_count(const struct hub *h);
size_t hub_call_count(const struct hub *h);

#endif
