/* Fuzz target: the sans-I/O signaling hub (signaling/hub.c) behind fake
 * ops, with a real policy.
 *
 * Input: messages separated by '\n', each fed to a hub session as one
 * WebSocket text frame. A fresh hub per input (so every input replays
 * alike) holds three sessions:
 *   - the fuzzed session ("main"), not logged in;
 *   - bob, logged in by the harness: a bot that accepts every incoming
 *     call and answers an SDP offer with a fixed relay-only answer;
 *   - carol, logged in by the harness: a bot that calls whoever logs in on
 *     the main session, so the fuzzer can accept, reject or hang up.
 * The fake login succeeds for users alice (group "team"), dave (no group)
 * and erin, with any non-empty password, and for tokens "tok:alice"
 * (expiring an hour later) and "tok:late" (already expired); everything
 * else fails. So the call, sdp and candidate handlers are reachable.
 *
 * Line conventions (documented for seed writers):
 *   ">..."  the rest of the line is sent from bob's session, not main's;
 *   "@CALL@" anywhere is replaced by the call id the sending session saw
 *           last (in call.ok, incoming), since ids are random;
 *   "!o" oversized frame, "!t" 31 s pass and a tick (ring timeout), "!c"
 *   main session closes and a new one opens, "!p" policy swapped (every
 *   call decided again), "!e" the admin ends main's last call, "!k"
 *   contacts pushed to everyone, "!u" every session of bob closed, "!s"
 *   the next message for main finds it too slow a reader: the adapter
 *   drops it and closes main from inside that send (hub_session_closing()),
 *   "!w" the wall clock steps back an hour and "!W" forward a day, while
 *   the monotonic clock runs on.
 *
 * Invariants checked (abort() on violation): nothing is sent to or
 * closed on a session the hub was told is gone, nothing is sent to one
 * after it was closed (by the hub or the adapter); every message sent is one
 * JSON object with a string "type"; forced relay end to end: an "sdp" or
 * "candidate" that reaches the other side carries no candidate but a UDP
 * relay one on Gatehouse's relayed addresses (fuzz_relay_check.h); events
 * are well-formed, and their durations (setup_ms, duration_ms) no longer
 * than the time that has passed, whatever the wall clock did; no call
 * rings after "!t"; no call outlives its sessions.
 *
 * With FUZZ_VERBOSE=1 in the environment every message the hub sends is
 * printed, to see what a seed reaches. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy.h"
#include "signaling/hub.h"
#include "signaling/identity.h"
#include "tests/fuzz/fuzz_relay_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_hub: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

#define T_START 1700000000000ULL   /* ms, UNIX time */
#define MONO_START 5000ULL         /* ms, the monotonic clock at T_START */
#define STEP_MS 50
#define MAX_LINES 256          /* per input; the rest is ignored */
#define MAX_ACTIONS 32         /* bot replies per line */
#define SID_BOB 2
#define SID_CAROL 3
#define SID_MAIN0 100

static const char POLICY_TEXT[] =
    "{\"default\": \"deny\",\n"
    " \"groups\": {\"team\": [\"alice\", \"bob\", \"carol\"], \"outside\": [\"dave\"]},\n"
    " \"rules\": [\n"
    "  {\"name\": \"team-calls\", \"from\": \"group:team\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\", \"video\", \"data\", \"screen\"], \"action\": \"allow\"},\n"
    "  {\"name\": \"erin-recorded\", \"from\": \"group:team\", \"to\": \"user:erin\",\n"
    "   \"media\": [\"audio\"], \"action\": \"allow\", \"record\": true},\n"
    "  {\"name\": \"erin-to-team\", \"from\": \"user:erin\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\", \"video\"], \"action\": \"allow\", \"record\": true},\n"
    "  {\"name\": \"no-screens-for-outside\", \"from\": \"group:outside\", \"to\": \"*\",\n"
    "   \"media\": [\"screen\"], \"action\": \"deny\"},\n"
    "  {\"name\": \"anyone-audio\", \"from\": \"*\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\"], \"action\": \"allow\"}\n"
    " ]}\n";

static const char POLICY_AUDIO_ONLY[] =
    "{\"default\": \"deny\", \"groups\": {\"team\": [\"alice\", \"bob\", \"carol\"]},\n"
    " \"rules\": [{\"name\": \"team-audio\", \"from\": \"group:team\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\"], \"action\": \"allow\"}]}\n";

/* What bob answers to an offer: one relay candidate on an address that
 * relay_of() approves, one host candidate that the filter must drop. */
static const char BOB_ANSWER[] =
    "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "a=group:BUNDLE 0\r\na=msid-semantic: WMS\r\n"
    "m=audio 50002 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 203.0.113.5\r\n"
    "a=rtcp:9 IN IP4 0.0.0.0\r\n"
    "a=candidate:1 1 udp 41885439 203.0.113.5 50002 typ relay raddr 10.0.0.2 rport 5000\r\n"
    "a=candidate:2 1 udp 2122260223 10.0.0.2 5000 typ host\r\n"
    "a=ice-ufrag:bobU\r\na=ice-pwd:bobpasswordbobpasswordbo\r\n"
    "a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n"
    "a=setup:active\r\na=mid:0\r\na=sendrecv\r\na=rtcp-mux\r\n"
    "a=rtpmap:111 opus/48000/2\r\n";

struct session_state {
	uint64_t sid;
	bool open;
	bool closing;   /* the hub closed it, or the adapter did */
	char call[HUB_CALL_ID_LEN + 1]; /* last call id this session saw */
};

struct action {
	uint64_t sid;
	char *text;  /* owned */
};

struct fz {
	struct hub *h;
	struct policy *policy, *policy_audio;
	bool audio_only;
	/* The time that has passed, on the wall clock's scale; the hub gets
	 * fz_now(): the wall clock is off by wall_step_ms ("!w", "!W"). */
	uint64_t now;
	int64_t wall_step_ms;
	struct session_state main, bob, carol;
	/* A login asked for and not yet answered. */
	bool login_pending;
	uint64_t login_sid;
	struct identity_user login_who;
	int login_rc;
	struct sockaddr_storage login_from; /* what ops.login was given, handed back */
	char login_user[IDENTITY_NAME_MAX];
	/* Sessions the hub closed, to tell it they are gone. */
	uint64_t closing[8];
	size_t nclosing;
	bool main_slow;    /* "!s": main is too slow at its next message */
	struct action actions[MAX_ACTIONS];
	size_t nactions;
	size_t nsessions_max;
	bool verbose;
};

static struct fz F;

static struct clock_pair fz_now(void)
{
	struct clock_pair t = { .mono_ms = F.now - T_START + MONO_START,
	    .wall_ms = (uint64_t)((int64_t)F.now + F.wall_step_ms) };

	return t;
}

static struct session_state *state_of(uint64_t sid)
{
	if (F.main.open && F.main.sid == sid)
		return &F.main;
	if (F.bob.open && F.bob.sid == sid)
		return &F.bob;
	if (F.carol.open && F.carol.sid == sid)
		return &F.carol;
	return NULL;
}

static void queue(uint64_t sid, const char *text)
{
	if (F.nactions == MAX_ACTIONS)
		return;
	F.actions[F.nactions].sid = sid;
	F.actions[F.nactions].text = strdup(text);
	if (F.actions[F.nactions].text == NULL)
		abort();
	F.nactions++;
}

/* The bots, reacting to what the hub sent them. */
static void bots(struct session_state *to, json_t *msg, const char *type)
{
	const char *call = json_string_value(json_object_get(msg, "call")), *kind;
	char buf[2048];
	json_t *out;
	char *text;

	if (call != NULL && (strcmp(type, "call.ok") == 0 || strcmp(type, "incoming") == 0))
		snprintf(to->call, sizeof(to->call), "%s", call);
	if (to == &F.bob && call != NULL && strcmp(type, "incoming") == 0) {
		snprintf(buf, sizeof(buf), "{\"type\":\"accept\",\"id\":\"b\",\"call\":\"%s\"}",
		    call);
		queue(F.bob.sid, buf);
	} else if (to == &F.bob && call != NULL && strcmp(type, "sdp") == 0 &&
	    (kind = json_string_value(json_object_get(json_object_get(msg, "sdp"),
	    "type"))) != NULL && strcmp(kind, "offer") == 0) {
		out = json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "call", call,
		    "sdp", "type", "answer", "sdp", BOB_ANSWER);
		text = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;
		if (text != NULL)
			queue(F.bob.sid, text);
		free(text);
		json_decref(out);
	} else if (to == &F.main && strcmp(type, "login.ok") == 0 &&
	    json_is_string(json_object_get(msg, "user"))) {
		snprintf(buf, sizeof(buf), "{\"type\":\"call\",\"id\":1,\"to\":\"%.63s\","
		    "\"media\":[\"audio\"]}", json_string_value(json_object_get(msg, "user")));
		queue(F.carol.sid, buf);
	}
}

/* What the other participant receives has been through the filter. */
static void forwarded_relay_only(json_t *msg, const char *type)
{
	json_t *inner;
	const char *text;

	if (strcmp(type, "sdp") == 0) {
		inner = json_object_get(msg, "sdp");
		text = json_string_value(json_object_get(inner, "sdp"));
		FUZZ_CHECK(text != NULL);
		FUZZ_CHECK(relay_only("fuzz_hub", text, strlen(text)));
	} else if (strcmp(type, "candidate") == 0) {
		inner = json_object_get(msg, "candidate");
		text = json_string_value(json_object_get(inner, "candidate"));
		FUZZ_CHECK(text != NULL);
		FUZZ_CHECK(text[0] == '\0' || kept_ok(text, strlen(text)));
	}
}

/* ---- fake ops ------------------------------------------------------ */

static void f_close(void *ctx, uint64_t session, const char *why);

static void f_send(void *ctx, uint64_t session, const char *text, size_t len)
{
	struct session_state *to = state_of(session);
	json_error_t err;
	json_t *msg;
	const char *type;

	(void)ctx;
	FUZZ_CHECK(to != NULL);
	FUZZ_CHECK(!to->closing);
	FUZZ_CHECK(text != NULL && len > 0);
	if (to == &F.main && F.main_slow) {
		/* As ws_server.c does with a reader over its queue limit. */
		F.main_slow = false;
		f_close(ctx, session, "too slow");
		hub_session_closing(F.h, session, fz_now());
		return;
	}
	if (F.verbose)
		fprintf(stderr, "fuzz_hub: to %llu: %.*s\n", (unsigned long long)session,
		    (int)(len > 300 ? 300 : len), text);
	msg = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	FUZZ_CHECK(json_is_object(msg));
	type = json_string_value(json_object_get(msg, "type"));
	FUZZ_CHECK(type != NULL);
	forwarded_relay_only(msg, type);
	bots(to, msg, type);
	json_decref(msg);
}

static void f_close(void *ctx, uint64_t session, const char *why)
{
	struct session_state *st = state_of(session);
	size_t i;

	(void)ctx;
	FUZZ_CHECK(st != NULL);
	FUZZ_CHECK(why != NULL);
	st->closing = true;
	for (i = 0; i < F.nclosing; i++)
		if (F.closing[i] == session)
			return;
	if (F.nclosing < sizeof(F.closing) / sizeof(F.closing[0]))
		F.closing[F.nclosing++] = session;
}

static void who_set(struct identity_user *who, const char *name, const char *group,
    uint64_t expires_s)
{
	memset(who, 0, sizeof(*who));
	snprintf(who->name, sizeof(who->name), "%s", name);
	if (group != NULL) {
		snprintf(who->groups[0], sizeof(who->groups[0]), "%s", group);
		who->ngroups = 1;
	}
	who->expires_s = expires_s;
}

static int f_login(void *ctx, uint64_t session, const struct sockaddr *from,
    const char *user, const char *password, const char *totp, const char *token,
    uint64_t now_s)
{
	(void)ctx;
	(void)totp;
	FUZZ_CHECK(state_of(session) != NULL);
	FUZZ_CHECK((token == NULL) != (user == NULL && password == NULL));
	FUZZ_CHECK(from != NULL && from->sa_family == AF_INET);
	if (F.login_pending)
		return -1; /* "too many logins waiting" */
	F.login_pending = true;
	F.login_sid = session;
	memset(&F.login_from, 0, sizeof(F.login_from));
	memcpy(&F.login_from, from, sizeof(struct sockaddr_in));
	snprintf(F.login_user, sizeof(F.login_user), "%s", user != NULL ? user : "");
	F.login_rc = IDENTITY_FAILED;
	if (token != NULL) {
		if (strcmp(token, "tok:alice") == 0) {
			who_set(&F.login_who, "alice", "team", now_s + 3600);
			F.login_who.mfa = true;
			F.login_rc = IDENTITY_OK;
		} else if (strcmp(token, "tok:late") == 0) {
			who_set(&F.login_who, "alice", "team", now_s - 1);
			F.login_rc = IDENTITY_OK;
		}
	} else if (user != NULL && password != NULL && password[0] != '\0') {
		if (strcmp(user, "alice") == 0 || strcmp(user, "bob") == 0 ||
		    strcmp(user, "carol") == 0) {
			who_set(&F.login_who, user, "team", 0);
			F.login_rc = IDENTITY_OK;
		} else if (strcmp(user, "dave") == 0 || strcmp(user, "erin") == 0) {
			who_set(&F.login_who, user, NULL, 0);
			F.login_rc = IDENTITY_OK;
		}
	}
	return 0;
}

/* A session closed with its login pending: the check counts as started,
 * so its answer still comes (to a session that is gone). */
static void f_login_cancel(void *ctx, uint64_t session)
{
	(void)ctx;
	FUZZ_CHECK(F.login_pending && F.login_sid == session);
}

static int f_mint(void *ctx, const char *user, const char *call, uint64_t expires_s,
    char *username, size_t ucap, char *password, size_t pcap)
{
	(void)ctx;
	FUZZ_CHECK(user != NULL && call != NULL && strlen(call) == HUB_CALL_ID_LEN);
	snprintf(username, ucap, "u:%s:%s:%llu", user, call, (unsigned long long)expires_s);
	snprintf(password, pcap, "p:%s", call);
	return 0;
}

/* Gatehouse's relayed addresses for every call (fuzz_relay_check.h). */
static bool f_relay_of(void *ctx, const char *user, const char *call,
    const struct sockaddr *addr)
{
	(void)ctx;
	FUZZ_CHECK(user != NULL && call != NULL && addr != NULL);
	FUZZ_CHECK(addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
	return approved(addr);
}

static void f_call_ended(void *ctx, const char *call, uint64_t expires_s)
{
	(void)ctx;
	(void)expires_s;
	FUZZ_CHECK(call != NULL && strlen(call) == HUB_CALL_ID_LEN);
}

static void f_event(void *ctx, const struct hub_event *e)
{
	(void)ctx;
	FUZZ_CHECK(e != NULL);
	FUZZ_CHECK(e->kind >= HUB_EV_LOGIN_OK && e->kind <= HUB_EV_SDP_REFUSED);
	if (e->kind == HUB_EV_CALL_ENDED || e->kind == HUB_EV_CALL_ACCEPTED)
		FUZZ_CHECK(e->call != NULL && e->user != NULL && e->peer != NULL);
	/* Measured on the monotonic clock: never more than has passed. */
	FUZZ_CHECK(e->setup_ms <= F.now - T_START);
	FUZZ_CHECK(e->duration_ms <= F.now - T_START);
}

/* ---- driving ------------------------------------------------------- */

static void session_open(struct session_state *st, uint64_t sid)
{
	struct sockaddr_in from;

	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	from.sin_port = htons((uint16_t)(40000 + sid));
	from.sin_addr.s_addr = htonl(0xc0000232u); /* 192.0.2.50 */
	memset(st, 0, sizeof(*st));
	st->sid = sid;
	st->open = true;
	hub_session_open(F.h, sid, (const struct sockaddr *)&from, fz_now());
	if (hub_session_count(F.h) > F.nsessions_max)
		F.nsessions_max = hub_session_count(F.h);
}

static void session_gone(struct session_state *st)
{
	if (!st->open)
		return;
	st->open = false;
	hub_session_closed(F.h, st->sid, fz_now());
}

static void settle(void);

/* Sends one message from a session, as the WebSocket adapter would:
 * a buffer of exactly the frame's size, not NUL-terminated. */
static void say(struct session_state *st, const char *text, size_t len)
{
	char *copy;

	if (!st->open)
		return;
	copy = malloc(len > 0 ? len : 1);
	if (copy == NULL)
		abort();
	memcpy(copy, text, len);
	hub_session_message(F.h, st->sid, copy, len, fz_now());
	free(copy);
	F.now += STEP_MS;
	settle();
}

/* What the gateway does after a hub call returns: answer the login,
 * close what the hub closed, and let the bots speak. Bounded. */
static void settle(void)
{
	struct session_state *st;
	struct action a;
	size_t i, rounds;

	for (rounds = 0; rounds < MAX_ACTIONS; rounds++) {
		if (F.login_pending) {
			struct hub_login_result r = { .session = F.login_sid, .rc = F.login_rc,
			    .who = &F.login_who,
			    .why = F.login_rc == IDENTITY_OK ? NULL : "unknown user",
			    .from = (const struct sockaddr *)&F.login_from, .user = F.login_user };

			F.login_pending = false;
			hub_login_done(F.h, &r, fz_now());
			continue;
		}
		if (F.nclosing > 0) {
			for (i = 0; i < F.nclosing; i++)
				if ((st = state_of(F.closing[i])) != NULL)
					session_gone(st);
			F.nclosing = 0;
			continue;
		}
		if (F.nactions == 0)
			return;
		a = F.actions[0];
		memmove(&F.actions[0], &F.actions[1], (F.nactions - 1) * sizeof(F.actions[0]));
		F.nactions--;
		if ((st = state_of(a.sid)) != NULL && st->open) {
			hub_session_message(F.h, a.sid, a.text, strlen(a.text), fz_now());
			F.now += STEP_MS;
		}
		free(a.text);
	}
}

static void bot_login(struct session_state *st, uint64_t sid, const char *user)
{
	char buf[128];

	session_open(st, sid);
	snprintf(buf, sizeof(buf),
	    "{\"type\":\"login\",\"id\":1,\"user\":\"%s\",\"password\":\"pw\"}", user);
	say(st, buf, strlen(buf));
	FUZZ_CHECK(!F.login_pending);
}

/* "@CALL@" -> the session's last call id. Returns owned, length in *n. */
static char *substitute(const struct session_state *st, const char *line, size_t len,
    size_t *n)
{
	static const char mark[] = "@CALL@";
	const size_t mlen = sizeof(mark) - 1, clen = strlen(st->call);
	char *out = malloc(len / mlen * (clen > mlen ? clen : mlen) + len + 1), *o = out;
	size_t i = 0;

	if (out == NULL)
		abort();
	while (i < len) {
		if (len - i >= mlen && memcmp(line + i, mark, mlen) == 0) {
			memcpy(o, st->call, clen);
			o += clen;
			i += mlen;
		} else {
			*o++ = line[i++];
		}
	}
	*n = (size_t)(o - out);
	return out;
}

static void no_ringing(void *ctx, const struct hub_call_info *c)
{
	(void)ctx;
	FUZZ_CHECK(c->accepted);
}

static void control(const char *line, size_t len)
{
	if (len != 2)
		return;
	switch (line[1]) {
	case 'o':
		if (F.main.open)
			hub_session_oversized(F.h, F.main.sid, fz_now());
		break;
	case 't':
		F.now += 31 * 1000;
		hub_tick(F.h, fz_now());
		/* Every call ringing was placed 31 s ago or more. */
		hub_each_call(F.h, no_ringing, NULL);
		break;
	case 'c':
		session_gone(&F.main);
		session_open(&F.main, F.main.sid + 1);
		break;
	case 'p':
		F.audio_only = !F.audio_only;
		hub_set_policy(F.h, F.audio_only ? F.policy_audio : F.policy);
		break;
	case 'e':
		(void)hub_end_call(F.h, F.main.call, "admin");
		break;
	case 'k':
		hub_push_contacts(F.h);
		break;
	case 'u':
		(void)hub_close_user(F.h, "bob", "admin");
		break;
	case 's':
		F.main_slow = true;
		break;
	case 'w':
		F.wall_step_ms -= 3600 * 1000;
		break;
	case 'W':
		F.wall_step_ms += 24 * 3600 * 1000;
		break;
	default:
		break;
	}
	settle();
}

static void init_once(void)
{
	static bool done;
	char err[256];

	if (done)
		return;
	done = true;
	F.verbose = getenv("FUZZ_VERBOSE") != NULL;
	F.policy = policy_parse(POLICY_TEXT, strlen(POLICY_TEXT), err, sizeof(err));
	F.policy_audio = policy_parse(POLICY_AUDIO_ONLY, strlen(POLICY_AUDIO_ONLY), err,
	    sizeof(err));
	if (F.policy == NULL || F.policy_audio == NULL) {
		fprintf(stderr, "fuzz_hub: policy: %s\n", err);
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data, *line, *nl;
	struct session_state *from;
	struct hub_config cfg;
	struct hub_ops ops;
	size_t left = size, len, n, nlines = 0;
	char *msg;

	init_once();
	memset(&cfg, 0, sizeof(cfg));
	cfg.policy = F.policy;
	snprintf(cfg.ice.urls[0], sizeof(cfg.ice.urls[0]), "turn:203.0.113.1:3478?transport=udp");
	snprintf(cfg.ice.urls[1], sizeof(cfg.ice.urls[1]), "turns:gate.example:5349?transport=tcp");
	cfg.ice.nurls = 2;
	memset(&ops, 0, sizeof(ops));
	ops.send = f_send;
	ops.close = f_close;
	ops.login = f_login;
	ops.login_cancel = f_login_cancel;
	ops.mint = f_mint;
	ops.relay_of = f_relay_of;
	ops.call_ended = f_call_ended;
	ops.event = f_event;
	F.h = hub_new(&cfg, &ops);
	if (F.h == NULL)
		abort();
	F.audio_only = false;
	F.now = T_START;
	F.wall_step_ms = 0;
	F.login_pending = false;
	F.nclosing = F.nactions = 0;
	F.nsessions_max = 0;
	F.main_slow = false;
	memset(&F.main, 0, sizeof(F.main));
	bot_login(&F.bob, SID_BOB, "bob");
	bot_login(&F.carol, SID_CAROL, "carol");
	session_open(&F.main, SID_MAIN0);

	while (left > 0 && nlines++ < MAX_LINES) {
		line = text;
		nl = memchr(text, '\n', left);
		len = nl != NULL ? (size_t)(nl - text) : left;
		text += len + (nl != NULL);
		left -= len + (nl != NULL);
		if (len >= 2 && line[0] == '!') {
			control(line, len);
			continue;
		}
		from = &F.main;
		if (len >= 1 && line[0] == '>') {
			from = &F.bob;
			line++;
			len--;
		}
		if (!from->open)
			continue;
		msg = substitute(from, line, len, &n);
		say(from, msg, n);
		free(msg);
	}

	FUZZ_CHECK(hub_session_count(F.h) <= F.nsessions_max);
	FUZZ_CHECK(hub_call_count(F.h) <= 2 * HUB_MAX_CALLS_PER_USER * 3);
	session_gone(&F.main);
	session_gone(&F.bob);
	session_gone(&F.carol);
	settle();
	FUZZ_CHECK(hub_session_count(F.h) == 0);
	FUZZ_CHECK(hub_call_count(F.h) == 0);
	hub_free(F.h);
	F.h = NULL;
	while (F.nactions > 0)
		free(F.actions[--F.nactions].text);
	return 0;
}
