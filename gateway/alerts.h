/* Anomaly detection: sliding-window detectors over the gateway's events,
 * each with a configurable threshold and a safe default, and the response
 * each one asks for. Pure: no I/O, no clock (the caller passes now_ms,
 * from the monotonic clock: windows are durations);
 * the daemon carries the responses out, audits them and lets operators
 * undo them.
 *
 * Detectors (window, default threshold):
 *   password_guessing_user    login failures for one user        (60 s, 10)
 *   password_guessing_source  login failures from one source     (60 s, 20)
 *   credential_stuffing       distinct users failing from one source (300 s, 5)
 *   relay_scanning            refused TURN permissions by one source (60 s, 20)
 *   traffic_spike             an allocation's bytes/s far above its own recent
 *                             average (factor 10 over >= 10 s of history and
 *                             > 1 MB/s) or above a cap (default 8 MB/s)
 *   signaling_flood           sessions closed for abuse from one source (60 s, 3)
 *   call_fanout               calls placed by one user              (60 s, 20)
 * Each fires once per key per window (no alert storms). */
#ifndef GH_GATEWAY_ALERTS_H
#define GH_GATEWAY_ALERTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum alert_kind {
	ALERT_PASSWORD_GUESSING_USER = 0,
	ALERT_PASSWORD_GUESSING_SOURCE,
	ALERT_CREDENTIAL_STUFFING,
	ALERT_RELAY_SCANNING,
	ALERT_TRAFFIC_SPIKE,
	ALERT_SIGNALING_FLOOD,
	ALERT_CALL_FANOUT,
	ALERT_KIND_COUNT,
};

enum alert_response {
	ALERT_RESPONSE_NONE = 0,
	ALERT_RESPONSE_BLOCK_SOURCE = 1,  /* refuse the source address for block_s */
	ALERT_RESPONSE_LOCK_USER = 2,     /* lock the user account */
	ALERT_RESPONSE_END_CALL = 3,      /* end the call (traffic spike) */
};

struct alert_rule {
	uint32_t window_s;
	uint32_t threshold;       /* events in the window (traffic: bytes/s cap) */
	enum alert_response response;
	uint32_t block_s;         /* how long BLOCK_SOURCE and LOCK_USER last; 300 */
};

struct alerts_config {
	struct alert_rule rules[ALERT_KIND_COUNT];
	uint32_t spike_factor;    /* traffic_spike: times the recent average, default 10 */
	char webhook[256];        /* "http://IP:PORT/path" (loopback), "" for none */
};

/* What the caller feeds in. Strings are borrowed for the call. */
enum alert_input_kind {
	ALERT_IN_LOGIN_FAILED = 1,  /* user, source */
	ALERT_IN_PERMISSION_REFUSED,/* user, source */
	ALERT_IN_SESSION_ABUSE,     /* source */
	ALERT_IN_CALL_PLACED,       /* user, call */
	ALERT_IN_ALLOC_TRAFFIC,     /* alloc_key (e.g. the relayed address), call, user,
	                             * bytes: total so far (sampled once a second) */
};

struct alert_input {
	enum alert_input_kind kind;
	const char *user;
	const char *source;       /* client IP as text */
	const char *call;
	const char *alloc_key;
	uint64_t bytes;
};

/* One alert raised by alerts_feed(). */
struct alert {
	enum alert_kind kind;
	enum alert_response response;
	uint32_t block_s;
	char key[128];            /* who: user, source or allocation */
	char user[64];
	char source[64];
	char call[64];
	uint64_t value;           /* the count or rate that crossed the threshold */
	uint32_t threshold;
};

struct alerts;

/* The defaults above, with responses: password guessing per source and
 * credential stuffing and relay scanning and signaling flood block the
 * source for 300 s; password guessing per user locks the user; traffic
 * spike ends the call; call fan-out only alerts. */
void alerts_config_defaults(struct alerts_config *c);

/* Returns owned: free with alerts_free(). NULL on ENOMEM. Memory is
 * bounded: at most max_keys tracked keys per detector (oldest evicted). */
struct alerts *alerts_new(const struct alerts_config *c, size_t max_keys);
void alerts_free(struct alerts *a);

/* Feeds one input at now_ms (monotonic); writes up to max alerts into out
 * and returns how many fired (usually 0). */
size_t alerts_feed(struct alerts *a, const struct alert_input *in, uint64_t now_ms,
    struct alert *out, size_t max);

/* Forgets an allocation's history (it was removed). */
void alerts_forget_alloc(struct alerts *a, const char *alloc_key);

const char *alert_kind_name(enum alert_kind k);   /* "password_guessing_user", ... */
const char *alert_response_name(enum alert_response r); /* "none", "block_source", ... */

#endif
