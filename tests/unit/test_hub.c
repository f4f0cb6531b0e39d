/* Unit tests for signaling/hub.c, the sans-I/O signaling engine, driven
 * through fake ops and no socket: every message the hub sends is parsed
 * back with jansson and checked field by field, per session.
 *
 * The fakes stand for the rest of the gateway: `login` records the
 * request and the test answers it with hub_login_done(); `mint` returns
 * credentials the test can predict; `relay_of` is an address table the
 * test fills per user and call; `call_ended` records call ids; `close`
 * records who was closed and why. The policy is a real one from
 * policy_parse(), and cfg.identity is NULL, so groups come from the
 * session identity (token claims) and the policy file only.
 *
 * Invariants checked on every callback: nothing is sent to or closed on a
 * session the hub was told is gone, nothing is sent to a session after
 * the hub closed it, every message sent is one JSON object with a
 * "type", and no message or log note carries a password or token.
 *
 * `slow` stands for a reader too slow to take what is queued: the
 * adapter drops what the hub sends it and closes it on its own, telling
 * the hub from inside the send (hub_session_closing()). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "policy/policy.h"
#include "signaling/hub.h"
#include "signaling/identity.h"
#include "tests/unit/check.h"

#define URL0 "turn:203.0.113.1:3478?transport=udp"
#define URL1 "turns:gate.example:5349?transport=tcp"
#define PASSWORD "s3cret-Pw!"
#define TOKEN "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ6b2UifQ.c2ln"
#define MARKER "XYZZY"
#define T_START 1700000000000ULL        /* ms, UNIX time */
#define MONO_START 5000ULL              /* ms, the monotonic clock at T_START */
#define STEP_MS 50                      /* one message per token refill */
#define CREDS_S (12 * 3600)
#define NAME_LEN_TEST 63                /* protocol.md: user names, at most */
#define PASSWORD_LEN_TEST 1024          /* userdb.h: passwords, at most */
#define TOKEN_LEN_TEST 8192             /* hub.c: tokens, at most */

/* Sessions of the usual cast. */
enum { ALICE = 1, BOB = 2, BOB2 = 3, CAROL = 4, DAVE = 5, ERIN = 6, ZOE = 7 };

/* team: alice, bob, carol (audio, video, data among them); erin is
 * reachable by audio and recorded; anyone may reach the team by audio;
 * dave may neither call nor be called. */
static const char POLICY_TEXT[] =
    "{\"default\": \"deny\",\n"
    " \"groups\": {\"team\": [\"alice\", \"bob\", \"carol\"], \"outside\": [\"dave\"]},\n"
    " \"rules\": [\n"
    "  {\"name\": \"team-calls\", \"from\": \"group:team\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\", \"video\", \"data\"], \"action\": \"allow\"},\n"
    "  {\"name\": \"erin-recorded\", \"from\": \"group:team\", \"to\": \"user:erin\",\n"
    "   \"media\": [\"audio\"], \"action\": \"allow\", \"record\": true},\n"
    "  {\"name\": \"erin-to-team\", \"from\": \"user:erin\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\"], \"action\": \"allow\", \"record\": true},\n"
    "  {\"name\": \"anyone-audio\", \"from\": \"*\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\"], \"action\": \"allow\"},\n"
    "  {\"name\": \"no-dave\", \"from\": \"user:dave\", \"to\": \"*\",\n"
    "   \"media\": [\"audio\", \"video\", \"screen\", \"data\"], \"action\": \"deny\"},\n"
    "  {\"name\": \"none-to-dave\", \"from\": \"*\", \"to\": \"user:dave\",\n"
    "   \"media\": [\"audio\", \"video\", \"screen\", \"data\"], \"action\": \"deny\"}\n"
    " ]}\n";

static const char POLICY_AUDIO_ONLY[] =
    "{\"default\": \"deny\", \"groups\": {\"team\": [\"alice\", \"bob\", \"carol\"]},\n"
    " \"rules\": [{\"name\": \"team-audio\", \"from\": \"group:team\", \"to\": \"group:team\",\n"
    "   \"media\": [\"audio\"], \"action\": \"allow\"}]}\n";

/* ---- the fakes ---------------------------------------------------------- */

struct sent_msg {
	uint64_t session;
	char *text;
	json_t *json;               /* NULL when not a JSON object */
	bool taken;
};

struct relay_entry {
	char user[IDENTITY_NAME_MAX];
	char call[HUB_CALL_ID_LEN + 1];
	char ip[INET6_ADDRSTRLEN];
	uint16_t port;
};

#define MAX_OPEN 256
#define MAX_CLOSES 64
#define MAX_ENDED 64
#define MAX_RELAYS 16

struct fake {
	struct hub *h;
	const struct policy *policy;
	/* The time that has passed, on the wall clock's scale: the hub gets
	 * it as at(now), the monotonic clock counting from MONO_START and
	 * the wall clock from T_START plus wall_step_ms, what the system
	 * clock was stepped by (0 but in the clock tests). */
	uint64_t now;
	int64_t wall_step_ms;

	struct sent_msg *msgs;
	size_t nmsgs, cap;

	uint64_t open[MAX_OPEN];    /* sessions the hub was told about and not closed */
	size_t nopen;
	unsigned sent_to_closed, bad_json, leaks;
	uint64_t closed[MAX_CLOSES]; /* sessions closed and not reopened */
	size_t nclosed;
	unsigned sent_after_close;
	uint64_t slow;              /* a session the adapter closes at its next send */
	unsigned updates, yields;   /* ops.send_update and ops.yield calls */

	struct { uint64_t session; char why[128]; } closes[MAX_CLOSES];
	size_t ncloses;

	/* login */
	int login_rc;
	unsigned nlogins;
	uint64_t login_session, login_now_s;
	struct sockaddr_storage login_from;
	bool has_user, has_password, has_totp, has_token;
	unsigned ncancels;
	uint64_t cancel_session;
	char user[128], password[128], totp[64], token[256];

	/* mint */
	bool mint_fail;
	unsigned nmints;
	char mint_user[IDENTITY_NAME_MAX], mint_call[64];
	uint64_t mint_expires;

	/* relay_of */
	struct relay_entry relays[MAX_RELAYS];
	size_t nrelays;
	unsigned nrelay_checks;
	char relay_user[IDENTITY_NAME_MAX], relay_call[64];

	/* call_ended */
	char ended[MAX_ENDED][64];
	uint64_t ended_expires[MAX_ENDED];
	size_t nended;

	unsigned nnotes, nlogouts;
	enum hub_event_kind last_event;
	uint64_t last_duration_ms, last_setup_ms;
	char last_medium[32], last_reason[64], last_user[IDENTITY_NAME_MAX];
	char last_call[64], last_peer[IDENTITY_NAME_MAX];
	char last_source[64];
	bool last_unanswered;
	uint64_t next_sid;
};

static struct fake F;

/* The hub's time when t (on F.now's scale) has passed: see struct fake. */
static struct clock_pair at(uint64_t t)
{
	struct clock_pair ht = { .mono_ms = t - T_START + MONO_START,
	    .wall_ms = (uint64_t)((int64_t)t + F.wall_step_ms) };

	return ht;
}

static bool is_open(uint64_t sid)
{
	size_t i;

	for (i = 0; i < F.nopen; i++)
		if (F.open[i] == sid)
			return true;
	return false;
}

static bool was_closed(uint64_t sid)
{
	size_t i;

	for (i = 0; i < F.nclosed; i++)
		if (F.closed[i] == sid)
			return true;
	return false;
}

static void mark_closed(uint64_t sid)
{
	if (!was_closed(sid) && F.nclosed < MAX_CLOSES)
		F.closed[F.nclosed++] = sid;
}

static bool has_secret(const char *text, size_t len)
{
	return memmem(text, len, PASSWORD, strlen(PASSWORD)) != NULL ||
	    memmem(text, len, TOKEN, strlen(TOKEN)) != NULL;
}

static void f_send(void *ctx, uint64_t session, const char *text, size_t len)
{
	struct sent_msg *m;
	json_error_t err;

	(void)ctx;
	if (!is_open(session))
		F.sent_to_closed++;
	if (was_closed(session))
		F.sent_after_close++;
	if (has_secret(text, len))
		F.leaks++;
	if (session != 0 && session == F.slow) {
		/* As ws_server.c does for a reader over its queue limit. */
		F.slow = 0;
		mark_closed(session);
		hub_session_closing(F.h, session, at(F.now));
		return;
	}
	if (F.nmsgs == F.cap) {
		size_t cap = F.cap ? F.cap * 2 : 64;
		struct sent_msg *grown = realloc(F.msgs, cap * sizeof(*grown));
		if (grown == NULL)
			abort();
		F.msgs = grown;
		F.cap = cap;
	}
	m = &F.msgs[F.nmsgs++];
	m->session = session;
	m->taken = false;
	m->text = malloc(len + 1);
	if (m->text == NULL)
		abort();
	memcpy(m->text, text, len);
	m->text[len] = '\0';
	m->json = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	if (!json_is_object(m->json) || !json_is_string(json_object_get(m->json, "type"))) {
		F.bad_json++;
		json_decref(m->json);
		m->json = NULL;
	}
}

static void f_send_update(void *ctx, uint64_t session, const char *text, size_t len)
{
	F.updates++;
	f_send(ctx, session, text, len);
}

static void f_yield(void *ctx)
{
	(void)ctx;
	F.yields++;
}

static void f_close(void *ctx, uint64_t session, const char *why)
{
	(void)ctx;
	if (!is_open(session))
		F.sent_to_closed++;
	mark_closed(session);
	if (F.ncloses < MAX_CLOSES) {
		F.closes[F.ncloses].session = session;
		snprintf(F.closes[F.ncloses].why, sizeof(F.closes[0].why), "%s",
		    why != NULL ? why : "");
		F.ncloses++;
	}
}

static void opt_copy(bool *has, char *dst, size_t cap, const char *src)
{
	*has = src != NULL;
	snprintf(dst, cap, "%s", src != NULL ? src : "");
}

static int f_login(void *ctx, uint64_t session, const struct sockaddr *from,
    const char *user, const char *password, const char *totp, const char *token,
    uint64_t now_s)
{
	(void)ctx;
	F.nlogins++;
	F.login_session = session;
	F.login_now_s = now_s;
	memset(&F.login_from, 0, sizeof(F.login_from));
	if (from != NULL && from->sa_family == AF_INET)
		memcpy(&F.login_from, from, sizeof(struct sockaddr_in));
	opt_copy(&F.has_user, F.user, sizeof(F.user), user);
	opt_copy(&F.has_password, F.password, sizeof(F.password), password);
	opt_copy(&F.has_totp, F.totp, sizeof(F.totp), totp);
	opt_copy(&F.has_token, F.token, sizeof(F.token), token);
	return F.login_rc;
}

static void f_login_cancel(void *ctx, uint64_t session)
{
	(void)ctx;
	F.ncancels++;
	F.cancel_session = session;
}

/* The checker hands back the last login asked for, with what the hub
 * gave it (the fake's record of it). */
static void answer(uint64_t sid, int rc, const struct identity_user *who, const char *why)
{
	struct hub_login_result r = { .session = sid, .rc = rc, .who = who, .why = why,
	    .from = (const struct sockaddr *)&F.login_from,
	    .user = F.has_user ? F.user : "" };

	hub_login_done(F.h, &r, at(F.now));
}

static int f_mint(void *ctx, const char *user, const char *call, uint64_t expires_s,
    char *username, size_t ucap, char *password, size_t pcap)
{
	(void)ctx;
	F.nmints++;
	snprintf(F.mint_user, sizeof(F.mint_user), "%s", user);
	snprintf(F.mint_call, sizeof(F.mint_call), "%s", call);
	F.mint_expires = expires_s;
	if (F.mint_fail)
		return -1;
	snprintf(username, ucap, "u:%s:%s:%llu", user, call, (unsigned long long)expires_s);
	snprintf(password, pcap, "p:%s:%s", user, call);
	return 0;
}

static bool f_relay_of(void *ctx, const char *user, const char *call,
    const struct sockaddr *addr)
{
	char ip[INET6_ADDRSTRLEN] = "";
	uint16_t port = 0;
	size_t i;

	(void)ctx;
	F.nrelay_checks++;
	snprintf(F.relay_user, sizeof(F.relay_user), "%s", user);
	snprintf(F.relay_call, sizeof(F.relay_call), "%s", call);
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)addr;
		inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
		port = ntohs(in4->sin_port);
	} else if (addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)addr;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	for (i = 0; i < F.nrelays; i++)
		if (strcmp(F.relays[i].user, user) == 0 && strcmp(F.relays[i].call, call) == 0 &&
		    strcmp(F.relays[i].ip, ip) == 0 && F.relays[i].port == port)
			return true;
	return false;
}

static void f_call_ended(void *ctx, const char *call, uint64_t expires_s)
{
	(void)ctx;
	if (F.nended < MAX_ENDED) {
		snprintf(F.ended[F.nended], sizeof(F.ended[0]), "%s", call);
		F.ended_expires[F.nended] = expires_s;
		F.nended++;
	}
}

static void f_event(void *ctx, const struct hub_event *e)
{
	const char *fields[] = { e->user, e->peer, e->call, e->rule, e->reason };
	size_t i;

	(void)ctx;
	F.nnotes++;
	F.nlogouts += e->kind == HUB_EV_LOGOUT;
	F.last_event = e->kind;
	snprintf(F.last_medium, sizeof(F.last_medium), "%s", e->medium ? e->medium : "");
	snprintf(F.last_reason, sizeof(F.last_reason), "%s", e->reason ? e->reason : "");
	snprintf(F.last_user, sizeof(F.last_user), "%s", e->user ? e->user : "");
	snprintf(F.last_call, sizeof(F.last_call), "%s", e->call ? e->call : "");
	snprintf(F.last_peer, sizeof(F.last_peer), "%s", e->peer ? e->peer : "");
	F.last_unanswered = e->unanswered;
	F.last_duration_ms = e->duration_ms;
	F.last_setup_ms = e->setup_ms;
	F.last_source[0] = '\0';
	if (e->source != NULL && e->source->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)e->source)->sin_addr,
		    F.last_source, sizeof(F.last_source));
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i] != NULL && has_secret(fields[i], strlen(fields[i])))
			F.leaks++;
}

static void relay_add(const char *user, const char *call, const char *ip, uint16_t port)
{
	struct relay_entry *r;

	if (F.nrelays == MAX_RELAYS)
		abort();
	r = &F.relays[F.nrelays++];
	snprintf(r->user, sizeof(r->user), "%s", user);
	snprintf(r->call, sizeof(r->call), "%s", call);
	snprintf(r->ip, sizeof(r->ip), "%s", ip);
	r->port = port;
}

/* ---- checks with the caller's line -------------------------------------- */

#define CHECK_AT(line, cond) do { \
	check_count++; \
	if (!(cond)) { \
		check_failures++; \
		fprintf(stderr, "%s:%d (called from line %d): CHECK failed: %s\n", \
		    __FILE__, __LINE__, (line), #cond); \
	} \
} while (0)

static void check_str_at(int line, const char *what, const char *got, const char *want)
{
	check_count++;
	if (got == NULL || want == NULL || strcmp(got, want) != 0) {
		check_failures++;
		fprintf(stderr, "%s (line %d): CHECK failed: %s is \"%s\", want \"%s\"\n",
		    __FILE__, line, what, got ? got : "(null)", want ? want : "(null)");
	}
}

#define CHECK_STR(got, want) check_str_at(__LINE__, #got, (got), (want))

/* A string member, or "" when absent, so comparisons never crash. */
static const char *jstr(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s != NULL ? s : "";
}

/* id_json NULL: the message must carry no "id"; else it must equal the
 * JSON value written there ("7", "\"abc\""). */
static bool id_is(json_t *msg, const char *id_json)
{
	json_t *want, *got = json_object_get(msg, "id");
	bool same;

	if (id_json == NULL)
		return got == NULL;
	want = json_loads(id_json, JSON_DECODE_ANY, NULL);
	same = want != NULL && got != NULL && json_equal(want, got);
	json_decref(want);
	return same;
}

/* Media as a bit set; every entry a known kind, once. */
static unsigned media_bits(json_t *arr)
{
	unsigned bits = 0, bit;
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return 0x100;
	json_array_foreach(arr, i, v) {
		bit = policy_media_parse(json_string_value(v));
		if (bit == 0 || (bits & bit))
			return 0x200;
		bits |= bit;
	}
	return bits;
}

/* ---- the recorded messages ---------------------------------------------- */

static size_t pending(uint64_t sid)
{
	size_t i, n = 0;

	for (i = 0; i < F.nmsgs; i++)
		if (F.msgs[i].session == sid && !F.msgs[i].taken)
			n++;
	return n;
}

static struct sent_msg *take_raw(uint64_t sid)
{
	size_t i;

	for (i = 0; i < F.nmsgs; i++)
		if (F.msgs[i].session == sid && !F.msgs[i].taken) {
			F.msgs[i].taken = true;
			return &F.msgs[i];
		}
	return NULL;
}

/* The next message to sid, which must be of this type. Borrowed until
 * teardown(); NULL (after a failed check) when there is none. */
static json_t *expect_at(int line, uint64_t sid, const char *type)
{
	struct sent_msg *m = take_raw(sid);

	CHECK_AT(line, m != NULL);
	if (m == NULL) {
		fprintf(stderr, "  no message for session %llu, wanted \"%s\"\n",
		    (unsigned long long)sid, type);
		return NULL;
	}
	CHECK_AT(line, m->json != NULL);
	check_str_at(line, "type", jstr(m->json, "type"), type);
	if (strcmp(jstr(m->json, "type"), type) != 0)
		fprintf(stderr, "  session %llu got %s\n", (unsigned long long)sid, m->text);
	return m->json;
}

#define EXPECT(sid, type) expect_at(__LINE__, (sid), (type))

/* The next message is an error with this code, message (NULL: any) and
 * id (NULL: none). */
static json_t *expect_error_at(int line, uint64_t sid, const char *code,
    const char *message, const char *id_json)
{
	json_t *m = expect_at(line, sid, "error");

	check_str_at(line, "code", jstr(m, "code"), code);
	if (message != NULL)
		check_str_at(line, "message", jstr(m, "message"), message);
	CHECK_AT(line, id_is(m, id_json));
	return m;
}

#define EXPECT_ERROR(sid, code, message, id) \
	expect_error_at(__LINE__, (sid), (code), (message), (id))
#define EXPECT_NONE(sid) CHECK_EQ_INT(pending(sid), 0)

/* ---- driving the hub ---------------------------------------------------- */

static void setup(void)
{
	struct hub_config cfg;
	struct hub_ops ops;
	const struct policy *p = F.policy;

	memset(&F, 0, sizeof(F));
	F.policy = p;
	F.now = T_START;
	F.next_sid = 1000;
	memset(&cfg, 0, sizeof(cfg));
	cfg.identity = NULL;
	cfg.users = NULL;
	cfg.policy = p;
	snprintf(cfg.ice.urls[0], sizeof(cfg.ice.urls[0]), "%s", URL0);
	snprintf(cfg.ice.urls[1], sizeof(cfg.ice.urls[1]), "%s", URL1);
	cfg.ice.nurls = 2;
	memset(&ops, 0, sizeof(ops));
	ops.ctx = &F;
	ops.send = f_send;
	ops.send_update = f_send_update;
	ops.yield = f_yield;
	ops.close = f_close;
	ops.login = f_login;
	ops.login_cancel = f_login_cancel;
	ops.mint = f_mint;
	ops.relay_of = f_relay_of;
	ops.call_ended = f_call_ended;
	ops.event = f_event;
	F.h = hub_new(&cfg, &ops);
	CHECK(F.h != NULL);
}

static void teardown(void)
{
	size_t i;

	/* Invariants over everything the test did. */
	CHECK_EQ_INT(F.sent_to_closed, 0);
	CHECK_EQ_INT(F.sent_after_close, 0);
	CHECK_EQ_INT(F.bad_json, 0);
	CHECK_EQ_INT(F.leaks, 0);
	hub_free(F.h);
	F.h = NULL;
	for (i = 0; i < F.nmsgs; i++) {
		json_decref(F.msgs[i].json);
		free(F.msgs[i].text);
	}
	free(F.msgs);
	F.msgs = NULL;
	F.nmsgs = F.cap = 0;
}

static void open_s(uint64_t sid)
{
	struct sockaddr_in from;
	size_t i;

	memset(&from, 0, sizeof(from));
	from.sin_family = AF_INET;
	from.sin_port = htons(40000);
	inet_pton(AF_INET, "192.0.2.50", &from.sin_addr);
	if (F.nopen < MAX_OPEN)
		F.open[F.nopen++] = sid;
	for (i = 0; i < F.nclosed; i++)
		if (F.closed[i] == sid)
			F.closed[i] = F.closed[--F.nclosed];
	hub_session_open(F.h, sid, (const struct sockaddr *)&from, at(F.now));
}

static void close_s(uint64_t sid)
{
	size_t i;

	for (i = 0; i < F.nopen; i++)
		if (F.open[i] == sid) {
			F.open[i] = F.open[--F.nopen];
			break;
		}
	hub_session_closed(F.h, sid, at(F.now));
}

static uint64_t fresh_sid(void)
{
	uint64_t sid = F.next_sid++;

	open_s(sid);
	return sid;
}

static void say_raw(uint64_t sid, const char *text, size_t len)
{
	hub_session_message(F.h, sid, text, len, at(F.now));
	F.now += STEP_MS;
}

static void say(uint64_t sid, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(uint64_t sid, const char *fmt, ...)
{
	char buf[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		abort();
	say_raw(sid, buf, (size_t)n);
}

/* Sends a message built with jansson (steals msg). */
static void say_json(uint64_t sid, json_t *msg)
{
	char *text = json_dumps(msg, JSON_COMPACT);

	json_decref(msg);
	if (text == NULL)
		abort();
	say_raw(sid, text, strlen(text));
	free(text);
}

static struct identity_user who_of(const char *name, const char *group, uint64_t expires_s)
{
	struct identity_user who;

	memset(&who, 0, sizeof(who));
	snprintf(who.name, sizeof(who.name), "%s", name);
	if (group != NULL) {
		snprintf(who.groups[0], sizeof(who.groups[0]), "%s", group);
		who.ngroups = 1;
	}
	who.expires_s = expires_s;
	return who;
}

/* A password login that the identity backend accepts. */
static void login_at(int line, uint64_t sid, const char *user, const char *group,
    uint64_t expires_s)
{
	struct identity_user who = who_of(user, group, expires_s);
	unsigned n = F.nlogins;
	json_t *m;

	say(sid, "{\"type\":\"login\",\"id\":\"L%llu\",\"user\":\"%s\",\"password\":\"" PASSWORD "\"}",
	    (unsigned long long)sid, user);
	CHECK_AT(line, F.nlogins == n + 1);
	answer(sid, IDENTITY_OK, &who, NULL);
	m = expect_at(line, sid, "login.ok");
	check_str_at(line, "login.ok user", jstr(m, "user"), user);
}

#define LOGIN(sid, user) login_at(__LINE__, (sid), (user), NULL, 0)
#define ONLINE(sid, user) do { open_s(sid); LOGIN((sid), (user)); } while (0)
/* Logged in with a group from the identity (a token's claim). */
#define ONLINE_IN(sid, user, group) \
	do { open_s(sid); login_at(__LINE__, (sid), (user), (group), 0); } while (0)

static void check_ice_at(int line, json_t *msg, const char *user, const char *call,
    uint64_t expires_s)
{
	json_t *servers = json_object_get(msg, "ice_servers");
	json_t *s0 = json_array_get(servers, 0), *urls = json_object_get(s0, "urls");
	char want[256];

	CHECK_AT(line, json_is_array(servers) && json_array_size(servers) == 1);
	CHECK_AT(line, json_is_array(urls) && json_array_size(urls) == 2);
	check_str_at(line, "urls[0]", json_string_value(json_array_get(urls, 0)), URL0);
	check_str_at(line, "urls[1]", json_string_value(json_array_get(urls, 1)), URL1);
	snprintf(want, sizeof(want), "u:%s:%s:%llu", user, call, (unsigned long long)expires_s);
	check_str_at(line, "username", jstr(s0, "username"), want);
	snprintf(want, sizeof(want), "p:%s:%s", user, call);
	check_str_at(line, "credential", jstr(s0, "credential"), want);
	check_str_at(line, "ice_transport_policy", jstr(msg, "ice_transport_policy"), "relay");
}

static bool call_id_ok(const char *id)
{
	size_t i, n = strlen(id);

	if (n != HUB_CALL_ID_LEN)
		return false;
	for (i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		    (id[i] >= '0' && id[i] <= '9') || id[i] == '-' || id[i] == '_'))
			return false;
	return true;
}

/* Places a call that must succeed; copies its id into call. */
static void call_at(int line, uint64_t from, const char *to, const char *media,
    char call[HUB_CALL_ID_LEN + 1])
{
	json_t *m;

	say(from, "{\"type\":\"call\",\"id\":\"c\",\"to\":\"%s\",\"media\":%s}", to, media);
	m = expect_at(line, from, "call.ok");
	snprintf(call, HUB_CALL_ID_LEN + 1, "%s", jstr(m, "call"));
	CHECK_AT(line, call_id_ok(jstr(m, "call")));
}

#define CALL(from, to, media, call) call_at(__LINE__, (from), (to), (media), (call))

static void drain(uint64_t sid)
{
	while (take_raw(sid) != NULL)
		;
}

/* alice (ALICE) calls bob (BOB, BOB2) with audio and video, BOB accepts;
 * the relay table holds alice's 203.0.113.5:50000 and bob's
 * 203.0.113.5:50002 for this call and alice's 203.0.113.5:50004 for
 * another call. Every message so far is consumed. */
static void accepted_call(char call[HUB_CALL_ID_LEN + 1])
{
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	CALL(ALICE, "bob", "[\"audio\",\"video\"]", call);
	say(BOB, "{\"type\":\"accept\",\"call\":\"%s\"}", call);
	EXPECT(BOB, "incoming");
	EXPECT(BOB, "accept.ok");
	EXPECT(ALICE, "accepted");
	drain(BOB2);
	relay_add("alice", call, "203.0.113.5", 50000);
	relay_add("bob", call, "203.0.113.5", 50002);
	relay_add("alice", "AnotherCallAnotherCall", "203.0.113.5", 50004);
}

/* ---- ping and ids ------------------------------------------------------- */

static void test_ping(void)
{
	static const char *const bad_ids[] = {
		"1.5", "true", "false", "null", "{}", "[]", "[1]",
		"\"0123456789012345678901234567890123456789012345678901234567890123X\"",
	};
	char id64[65];
	json_t *m;
	size_t i;
	uint64_t sid;

	setup();
	open_s(1);

	/* Before any login, and without an id: a bare pong. */
	say(1, "{\"type\":\"ping\"}");
	m = EXPECT(1, "pong");
	CHECK(id_is(m, NULL));
	CHECK_EQ_INT(json_object_size(m), 1);

	say(1, "{\"type\":\"ping\",\"id\":7}");
	m = EXPECT(1, "pong");
	CHECK(id_is(m, "7"));
	CHECK(json_is_integer(json_object_get(m, "id")));

	say(1, "{\"id\":\"abc\",\"type\":\"ping\"}");
	m = EXPECT(1, "pong");
	CHECK(id_is(m, "\"abc\""));

	say(1, "{\"type\":\"ping\",\"id\":0}");
	CHECK(id_is(EXPECT(1, "pong"), "0"));
	say(1, "{\"type\":\"ping\",\"id\":-42}");
	CHECK(id_is(EXPECT(1, "pong"), "-42"));
	say(1, "{\"type\":\"ping\",\"id\":9007199254740993}");
	CHECK(id_is(EXPECT(1, "pong"), "9007199254740993"));
	say(1, "{\"type\":\"ping\",\"id\":\"\"}");
	CHECK(id_is(EXPECT(1, "pong"), "\"\""));

	/* 64 bytes is the longest string id. */
	memset(id64, 'i', 64);
	id64[64] = '\0';
	say(1, "{\"type\":\"ping\",\"id\":\"%s\"}", id64);
	m = EXPECT(1, "pong");
	CHECK_STR(jstr(m, "id"), id64);
	EXPECT_NONE(1);
	CHECK_EQ_INT(F.ncloses, 0);

	/* Other id types: bad_request, and the bad id is not echoed. A
	 * fresh session for each, so strikes do not add up to a close. */
	for (i = 0; i < sizeof(bad_ids) / sizeof(bad_ids[0]); i++) {
		sid = fresh_sid();
		say(sid, "{\"type\":\"ping\",\"id\":%s}", bad_ids[i]);
		EXPECT_ERROR(sid, "bad_request", "\"id\" must be an integer or a short string", NULL);
		EXPECT_NONE(sid);
	}
	CHECK_EQ_INT(F.ncloses, 0);
	CHECK_EQ_INT(F.nlogins, 0);
	teardown();
}

/* ---- before login ------------------------------------------------------- */

static void test_before_login(void)
{
	static const char *const msgs[] = {
		"{\"type\":\"contacts\",\"id\":3}",
		"{\"type\":\"call\",\"id\":3,\"to\":\"bob\",\"media\":[\"audio\"]}",
		"{\"type\":\"accept\",\"id\":3,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
		"{\"type\":\"reject\",\"id\":3,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
		"{\"type\":\"hangup\",\"id\":3,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\"}",
		"{\"type\":\"sdp\",\"id\":3,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"sdp\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\"}}",
		"{\"type\":\"candidate\",\"id\":3,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\",\"candidate\":{\"candidate\":\"\"}}",
	};
	uint64_t sid;
	size_t i;

	setup();
	ONLINE(BOB, "bob");
	for (i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		sid = fresh_sid();
		say(sid, "%s", msgs[i]);
		EXPECT_ERROR(sid, "bad_request", "log in first", "3");
		EXPECT_NONE(sid);
	}
	/* Nothing reached bob, nothing was minted or ended. */
	EXPECT_NONE(BOB);
	CHECK_EQ_INT(F.nmints, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 0);

	/* Unknown, missing or non-string types. */
	sid = fresh_sid();
	say(sid, "{\"type\":\"teleport\",\"id\":4}");
	EXPECT_ERROR(sid, "bad_request", "unknown message type", "4");
	say(sid, "{\"id\":5}");
	EXPECT_ERROR(sid, "bad_request", "unknown message type", "5");
	say(sid, "{\"type\":42}");
	EXPECT_ERROR(sid, "bad_request", "unknown message type", NULL);
	say(sid, "{\"type\":\"PING\"}");
	EXPECT_ERROR(sid, "bad_request", "unknown message type", NULL);
	CHECK_EQ_INT(F.ncloses, 0);
	CHECK_EQ_INT(F.nlogins, 1); /* bob's */
	teardown();
}

/* ---- login -------------------------------------------------------------- */

static void test_login_request(void)
{
	struct identity_user alice = who_of("alice", NULL, 0);
	uint64_t sid, t;
	unsigned k;
	json_t *m;

	setup();

	/* A password login with a code: every field reaches ops.login. */
	open_s(1);
	t = F.now;
	say(1, "{\"type\":\"login\",\"id\":\"first\",\"user\":\"alice\",\"password\":\"" PASSWORD
	    "\",\"totp\":\"123456\"}");
	CHECK_EQ_INT(F.nlogins, 1);
	CHECK_EQ_INT(F.login_session, 1);
	CHECK(F.has_user && strcmp(F.user, "alice") == 0);
	CHECK(F.has_password && strcmp(F.password, PASSWORD) == 0);
	CHECK(F.has_totp && strcmp(F.totp, "123456") == 0);
	CHECK(!F.has_token);
	CHECK_EQ_INT(F.login_now_s, t / 1000);
	/* The client's address, which the checker keys its fairness by. */
	CHECK_EQ_INT(F.login_from.ss_family, AF_INET);
	CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&F.login_from)->sin_port), 40000);
	EXPECT_NONE(1); /* the answer waits for the backend */

	/* While it is pending: another login is refused without reaching
	 * the backend, other requests still need a login, ping works. */
	say(1, "{\"type\":\"login\",\"id\":\"second\",\"user\":\"alice\",\"password\":\"x\"}");
	EXPECT_ERROR(1, "auth_failed", "login in progress", "\"second\"");
	CHECK_EQ_INT(F.nlogins, 1);
	say(1, "{\"type\":\"contacts\",\"id\":9}");
	EXPECT_ERROR(1, "bad_request", "log in first", "9");
	say(1, "{\"type\":\"ping\",\"id\":10}");
	CHECK(id_is(EXPECT(1, "pong"), "10"));

	/* Done: login.ok echoes the first login's id, not the second's. */
	answer(1, IDENTITY_OK, &alice, NULL);
	m = EXPECT(1, "login.ok");
	CHECK(id_is(m, "\"first\""));
	CHECK_STR(jstr(m, "user"), "alice");
	EXPECT_NONE(1);
	say(1, "{\"type\":\"contacts\",\"id\":11}");
	CHECK(id_is(EXPECT(1, "contacts.ok"), "11"));
	say(1, "{\"type\":\"login\",\"id\":12,\"user\":\"bob\",\"password\":\"x\"}");
	EXPECT_ERROR(1, "auth_failed", "already logged in", "12");
	CHECK_EQ_INT(F.nlogins, 1);

	/* A password login without a code: totp is NULL. An integer id is
	 * echoed as an integer. */
	open_s(2);
	say(2, "{\"type\":\"login\",\"id\":41,\"user\":\"bob\",\"password\":\"" PASSWORD "\"}");
	CHECK_EQ_INT(F.nlogins, 2);
	CHECK_EQ_INT(F.login_session, 2);
	CHECK(F.has_user && strcmp(F.user, "bob") == 0);
	CHECK(F.has_password && !F.has_totp && !F.has_token);
	{
		struct identity_user bob = who_of("bob", NULL, 0);
		answer(2, IDENTITY_OK, &bob, NULL);
	}
	m = EXPECT(2, "login.ok");
	CHECK(id_is(m, "41"));
	CHECK(json_is_integer(json_object_get(m, "id")));

	/* A token login: only the token goes to the backend, even when a
	 * code or a user name came along. */
	open_s(3);
	say(3, "{\"type\":\"login\",\"id\":\"t\",\"token\":\"" TOKEN "\",\"totp\":\"123456\"}");
	CHECK_EQ_INT(F.nlogins, 3);
	CHECK_EQ_INT(F.login_session, 3);
	CHECK(!F.has_user && !F.has_password && !F.has_totp);
	CHECK(F.has_token && strcmp(F.token, TOKEN) == 0);
	open_s(4);
	say(4, "{\"type\":\"login\",\"user\":\"mallory\",\"token\":\"" TOKEN "\"}");
	CHECK_EQ_INT(F.nlogins, 4);
	CHECK(!F.has_user && !F.has_password && !F.has_totp && F.has_token);
	/* No id: none in the answer. */
	{
		struct identity_user zoe = who_of("zoe", "team", 0);
		answer(4, IDENTITY_OK, &zoe, NULL);
	}
	m = EXPECT(4, "login.ok");
	CHECK(id_is(m, NULL));
	CHECK_STR(jstr(m, "user"), "zoe");

	/* Both kinds, or neither, or half of a password login. */
	{
		static const char *const bad[] = {
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"pw\",\"token\":\"" TOKEN "\"}",
			"{\"type\":\"login\",\"id\":1}",
			"{\"type\":\"login\",\"id\":1,\"totp\":\"123456\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\"}",
			"{\"type\":\"login\",\"id\":1,\"password\":\"pw\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":5,\"password\":\"pw\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":[\"pw\"]}",
			"{\"type\":\"login\",\"id\":1,\"token\":17}",
			/* Control characters, which no name, password, token or
			 * code holds: line ends and tabs as much as the rest. */
			"{\"type\":\"login\",\"id\":1,\"user\":\"al\\nice\",\"password\":\"pw\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"al\\rice\",\"password\":\"pw\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\\t\",\"password\":\"pw\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"al\\u007fice\",\"password\":\"pw\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"al\\u0001ice\",\"password\":\"pw\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"pw\\talice\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"pw\\r\\n\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"pw\",\"totp\":\"12\\n3456\"}",
			"{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"pw\",\"totp\":123456}",
			"{\"type\":\"login\",\"id\":1,\"token\":\"" TOKEN "\\n\"}",
		};
		size_t i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			sid = fresh_sid();
			say(sid, "%s", bad[i]);
			EXPECT_ERROR(sid, "auth_failed", "login needs user and password, or token", "1");
			EXPECT_NONE(sid);
		}
		CHECK_EQ_INT(F.nlogins, 4);
	}

	/* The backend is busy: the answer says so and nothing is pending,
	 * so the next try goes through. Being busy is the server's state:
	 * neither a strike nor one of the connection's login attempts, so
	 * more tries than either limit leave the session open. */
	sid = fresh_sid();
	F.login_rc = -1;
	for (k = 0; k < HUB_MAX_STRIKES + HUB_MAX_LOGIN_ATTEMPTS; k++) {
		say(sid, "{\"type\":\"login\",\"id\":2,\"user\":\"carol\",\"password\":\"pw\"}");
		m = EXPECT_ERROR(sid, "auth_failed", "server busy, try again", "2");
		/* It says when to try again. */
		CHECK(m != NULL && json_integer_value(json_object_get(m, "retry_after_ms")) ==
		    HUB_BUSY_RETRY_MS);
	}
	CHECK_EQ_INT(F.nlogins, 4 + HUB_MAX_STRIKES + HUB_MAX_LOGIN_ATTEMPTS);
	CHECK_EQ_INT(F.ncloses, 0);
	F.login_rc = 0;
	say(sid, "{\"type\":\"login\",\"id\":3,\"user\":\"carol\",\"password\":\"pw\"}");
	CHECK_EQ_INT(F.nlogins, 5 + HUB_MAX_STRIKES + HUB_MAX_LOGIN_ATTEMPTS);
	EXPECT_NONE(sid);
	{
		struct identity_user carol = who_of("carol", NULL, 0);
		answer(sid, IDENTITY_OK, &carol, NULL);
	}
	CHECK(id_is(EXPECT(sid, "login.ok"), "3"));
	CHECK_EQ_INT(F.ncloses, 0);
	teardown();
}

/* A login field with control characters is malformed, as protocol.md
 * says: never sent to the backend, and a strike (the fifth closes). */
static void test_login_control_characters(void)
{
	uint64_t sid;
	int i;

	setup();
	sid = fresh_sid();
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		say(sid, "{\"type\":\"login\",\"id\":1,\"user\":\"al\\nice\",\"password\":\"pw\"}");
		EXPECT_ERROR(sid, "auth_failed", "login needs user and password, or token", "1");
	}
	CHECK_EQ_INT(F.nlogins, 0);
	CHECK_EQ_INT(F.ncloses, 1);
	CHECK_EQ_INT(F.closes[0].session, sid);
	teardown();
}

static void test_login_failure(void)
{
	static const struct {
		int rc;
		const char *why;
	} reasons[] = {
		{ IDENTITY_FAILED, "unknown user" },
		{ IDENTITY_FAILED, "wrong password" },
		{ IDENTITY_FAILED, "account locked" },
		{ IDENTITY_ERROR, "database is locked" },
		{ IDENTITY_FAILED, "bad token signature" },
	};
	struct identity_user nobody = who_of("", NULL, 0);
	struct identity_user alice = who_of("alice", NULL, 0);
	struct sent_msg *m;
	char first[512] = "";
	size_t i;

	setup();
	open_s(1);
	/* Every reason gives the very same bytes. */
	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
		say(1, "{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"" PASSWORD "\"}");
		CHECK_EQ_INT(F.nlogins, i + 1);
		answer(1, reasons[i].rc, &nobody, reasons[i].why);
		m = take_raw(1);
		CHECK(m != NULL);
		if (m == NULL)
			continue;
		CHECK(m->json != NULL);
		CHECK_STR(jstr(m->json, "type"), "error");
		CHECK_STR(jstr(m->json, "code"), "auth_failed");
		CHECK(id_is(m->json, "1"));
		CHECK(strstr(m->text, reasons[i].why) == NULL);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", m->text);
		else
			CHECK_STR(m->text, first);
		EXPECT_NONE(1);
	}
	/* Failures are not strikes, and the session is still logged out. */
	CHECK_EQ_INT(F.ncloses, 0);
	say(1, "{\"type\":\"contacts\",\"id\":1}");
	EXPECT_ERROR(1, "bad_request", "log in first", "1");

	/* The sixth attempt on the connection: refused like a failure,
	 * without asking the backend, and the connection is closed. */
	say(1, "{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"" PASSWORD "\"}");
	CHECK_EQ_INT(F.nlogins, 5);
	m = take_raw(1);
	CHECK(m != NULL);
	if (m != NULL)
		CHECK_STR(m->text, first);
	CHECK_EQ_INT(F.ncloses, 1);
	CHECK_EQ_INT(F.closes[0].session, 1);
	close_s(1);

	/* A failure then a success on another connection. */
	open_s(2);
	say(2, "{\"type\":\"login\",\"id\":7,\"user\":\"alice\",\"password\":\"nope\"}");
	answer(2, IDENTITY_FAILED, &nobody, "wrong password");
	EXPECT_ERROR(2, "auth_failed", NULL, "7");
	CHECK_EQ_INT(F.last_event, HUB_EV_LOGIN_FAILED);
	CHECK(!F.last_unanswered);
	say(2, "{\"type\":\"login\",\"id\":8,\"user\":\"alice\",\"password\":\"" PASSWORD "\"}");
	answer(2, IDENTITY_OK, &alice, NULL);
	CHECK(id_is(EXPECT(2, "login.ok"), "8"));
	teardown();
}

static void test_login_done_edge(void)
{
	struct identity_user alice = who_of("alice", NULL, 0);
	struct identity_user carol = who_of("carol", NULL, 0);
	json_t *m, *list, *e;
	size_t i, n;
	bool alice_seen = false;

	setup();
	/* A login pending when its session closes: the checker is told, so
	 * that a check not started yet is dropped. One that ran comes back:
	 * nothing is sent, but the login is an event all the same, with
	 * what the checker carried (the audit, metrics and detectors need
	 * it; the session is gone). */
	open_s(1);
	say(1, "{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"" PASSWORD "\"}");
	CHECK_EQ_INT(F.ncancels, 0);
	close_s(1);
	CHECK_EQ_INT(F.ncancels, 1);
	CHECK_EQ_INT(F.cancel_session, 1);
	CHECK_EQ_INT(hub_session_count(F.h), 0);
	n = F.nmsgs;
	F.nnotes = 0;
	answer(1, IDENTITY_OK, &alice, NULL);
	CHECK_EQ_INT(F.nmsgs, n);
	CHECK_EQ_INT(F.nnotes, 1);
	CHECK_EQ_INT(F.last_event, HUB_EV_LOGIN_OK);
	CHECK(F.last_unanswered);
	CHECK_STR(F.last_user, "alice");
	CHECK_STR(F.last_source, "192.0.2.50");
	/* A failure likewise, with the name claimed and the reason. */
	open_s(5);
	say(5, "{\"type\":\"login\",\"id\":1,\"user\":\"mallory\",\"password\":\"guess\"}");
	close_s(5);
	CHECK_EQ_INT(F.ncancels, 2);
	CHECK_EQ_INT(F.cancel_session, 5);
	answer(5, IDENTITY_FAILED, &alice, "bad password");
	CHECK_EQ_INT(F.nmsgs, n);
	CHECK_EQ_INT(F.nnotes, 2);
	CHECK_EQ_INT(F.last_event, HUB_EV_LOGIN_FAILED);
	CHECK(F.last_unanswered);
	CHECK_STR(F.last_user, "mallory");
	CHECK_STR(F.last_reason, "bad password");
	CHECK_STR(F.last_source, "192.0.2.50");
	/* A session without a login pending closes: nothing to cancel. */
	open_s(6);
	close_s(6);
	CHECK_EQ_INT(F.ncancels, 2);
	/* ... and alice did not become online. */
	ONLINE(BOB, "bob");
	say(BOB, "{\"type\":\"contacts\"}");
	m = EXPECT(BOB, "contacts.ok");
	list = json_object_get(m, "contacts");
	json_array_foreach(list, i, e)
		if (strcmp(jstr(e, "user"), "alice") == 0) {
			alice_seen = true;
			CHECK(json_is_false(json_object_get(e, "online")));
		}
	CHECK(alice_seen);
	say(BOB, "{\"type\":\"call\",\"to\":\"alice\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(BOB, "offline", "the user is not online", NULL);

	/* An answer for a session that never asked: ignored. */
	open_s(3);
	n = F.nmsgs;
	answer(3, IDENTITY_OK, &carol, NULL);
	CHECK_EQ_INT(F.nmsgs, n);
	say(3, "{\"type\":\"contacts\",\"id\":1}");
	EXPECT_ERROR(3, "bad_request", "log in first", "1");

	/* A second answer for one login: ignored. */
	say(3, "{\"type\":\"login\",\"id\":2,\"user\":\"carol\",\"password\":\"" PASSWORD "\"}");
	answer(3, IDENTITY_OK, &carol, NULL);
	CHECK(id_is(EXPECT(3, "login.ok"), "2"));
	answer(3, IDENTITY_OK, &alice, NULL);
	answer(3, IDENTITY_FAILED, &alice, "late");
	EXPECT_NONE(3);
	say(3, "{\"type\":\"call\",\"id\":5,\"to\":\"carol\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(3, "bad_request", "cannot call yourself", "5"); /* still carol */

	/* An answer to a session that is gone: sent to nobody, and the
	 * sessions that are there are untouched. */
	n = F.nmsgs;
	answer(999, IDENTITY_OK, &alice, NULL);
	CHECK_EQ_INT(F.nmsgs, n);
	CHECK(F.last_unanswered);
	CHECK_EQ_INT(hub_session_count(F.h), 2);
	teardown();
}

/* ---- contacts ----------------------------------------------------------- */

static json_t *contact(json_t *list, const char *user)
{
	json_t *e;
	size_t i;

	json_array_foreach(list, i, e)
		if (strcmp(jstr(e, "user"), user) == 0)
			return e;
	return NULL;
}

/* Pushes go out as updates (a newer one may replace one still unsent);
 * answers do not. A long list yields between its steps. */
static void test_contacts_push(void)
{
	char text[4096], err[256];
	struct policy *big;
	size_t used, i;
	json_t *list;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	hub_push_contacts(F.h);
	CHECK(id_is(EXPECT(ALICE, "contacts.ok"), NULL));
	CHECK(id_is(EXPECT(BOB, "contacts.ok"), NULL));
	CHECK_EQ_INT(F.updates, 2);
	say(ALICE, "{\"type\":\"contacts\",\"id\":5}");
	CHECK(id_is(EXPECT(ALICE, "contacts.ok"), "5"));
	CHECK_EQ_INT(F.updates, 2);
	CHECK_EQ_INT(F.yields, 0);      /* 4 names: nothing to yield for */

	used = (size_t)snprintf(text, sizeof(text), "{\"groups\": {\"many\": [\"alice\"");
	for (i = 0; i < 100; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, ", \"m%03zu\"", i);
	snprintf(text + used, sizeof(text) - used, "]}, \"rules\": [{\"name\": \"r\", "
	    "\"from\": \"group:many\", \"to\": \"group:many\", \"media\": [\"audio\"], "
	    "\"action\": \"allow\"}]}");
	big = policy_parse(text, strlen(text), err, sizeof(err));
	CHECK(big != NULL);
	if (big != NULL) {
		hub_set_policy(F.h, big);
		say(ALICE, "{\"type\":\"contacts\",\"id\":6}");
		list = json_object_get(EXPECT(ALICE, "contacts.ok"), "contacts");
		CHECK_EQ_INT(json_array_size(list), 100);
		/* 101 names read, 100 written: 3 yields each. */
		CHECK_EQ_INT(F.yields, 6);
		hub_set_policy(F.h, F.policy);
		policy_free(big);
	}
	teardown();
}

static void test_contacts(void)
{
	const unsigned avd = POLICY_AUDIO | POLICY_VIDEO | POLICY_DATA;
	json_t *m, *list, *e;
	size_t i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(DAVE, "dave");
	/* zoe is not in the policy file: her team membership is a token
	 * claim, and she is listed only while she is online. */
	open_s(ZOE);
	login_at(__LINE__, ZOE, "zoe", "team", 0);

	say(ALICE, "{\"type\":\"contacts\",\"id\":2}");
	m = EXPECT(ALICE, "contacts.ok");
	CHECK(id_is(m, "2"));
	list = json_object_get(m, "contacts");
	CHECK(json_is_array(list));
	CHECK_EQ_INT(json_array_size(list), 4);
	CHECK(contact(list, "alice") == NULL);  /* not yourself */
	CHECK(contact(list, "dave") == NULL);   /* denied */
	e = contact(list, "bob");
	CHECK(json_is_true(json_object_get(e, "online")));
	CHECK_EQ_INT(media_bits(json_object_get(e, "media")), avd);
	e = contact(list, "carol");
	CHECK(json_is_false(json_object_get(e, "online")));
	CHECK_EQ_INT(media_bits(json_object_get(e, "media")), avd);
	e = contact(list, "erin");
	CHECK(json_is_false(json_object_get(e, "online")));
	CHECK_EQ_INT(media_bits(json_object_get(e, "media")), POLICY_AUDIO);
	e = contact(list, "zoe");
	CHECK(json_is_true(json_object_get(e, "online")));
	CHECK_EQ_INT(media_bits(json_object_get(e, "media")), avd);
	json_array_foreach(list, i, e)
		CHECK_EQ_INT(json_object_size(e), 3); /* user, online, media */

	/* dave may call nobody. */
	say(DAVE, "{\"type\":\"contacts\"}");
	m = EXPECT(DAVE, "contacts.ok");
	CHECK(id_is(m, NULL));
	CHECK(json_is_array(json_object_get(m, "contacts")));
	CHECK_EQ_INT(json_array_size(json_object_get(m, "contacts")), 0);

	/* zoe's groups come from her session: she sees the team. */
	say(ZOE, "{\"type\":\"contacts\"}");
	list = json_object_get(EXPECT(ZOE, "contacts.ok"), "contacts");
	CHECK(json_is_true(json_object_get(contact(list, "alice"), "online")));
	CHECK(contact(list, "dave") == NULL);
	CHECK(contact(list, "zoe") == NULL);

	/* Presence follows sessions. */
	close_s(BOB);
	close_s(ZOE);
	say(ALICE, "{\"type\":\"contacts\"}");
	list = json_object_get(EXPECT(ALICE, "contacts.ok"), "contacts");
	CHECK_EQ_INT(json_array_size(list), 3);
	CHECK(json_is_false(json_object_get(contact(list, "bob"), "online")));
	CHECK(contact(list, "zoe") == NULL);
	EXPECT_NONE(ALICE);
	teardown();
}

/* ---- call decisions ----------------------------------------------------- */

static void test_call_decisions(void)
{
	static const char *const bad[] = {
		"\"to\":\"bob\",\"media\":[]",
		"\"to\":\"bob\",\"media\":[\"audio\",\"fax\"]",
		"\"to\":\"bob\",\"media\":[\"audio\",\"audio\"]",
		"\"to\":\"bob\",\"media\":\"audio\"",
		"\"to\":\"bob\",\"media\":{\"audio\":true}",
		"\"to\":\"bob\",\"media\":[1]",
		"\"to\":\"bob\",\"media\":[\"Audio\"]",
		"\"to\":\"bob\"",
		"\"to\":\"bob\",\"media\":[\"audio\",\"video\",\"screen\",\"data\",\"audio\"]",
		"\"media\":[\"audio\"]",
		"\"to\":5,\"media\":[\"audio\"]",
		"\"to\":\"\",\"media\":[\"audio\"]",
		"\"to\":\"bob smith\",\"media\":[\"audio\"]",
		"\"to\":\"-bob\",\"media\":[\"audio\"]",
	};
	char forbidden_online[512] = "", text[512];
	struct sent_msg *sm;
	uint64_t sid;
	size_t i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(DAVE, "dave");

	/* Forbidden, with the callee online. */
	say(ALICE, "{\"type\":\"call\",\"id\":3,\"to\":\"dave\",\"media\":[\"audio\"]}");
	sm = take_raw(ALICE);
	CHECK(sm != NULL && sm->json != NULL);
	if (sm != NULL && sm->json != NULL) {
		CHECK_STR(jstr(sm->json, "code"), "forbidden");
		CHECK(id_is(sm->json, "3"));
		snprintf(forbidden_online, sizeof(forbidden_online), "%s", sm->text);
	}
	/* Policy before presence: offline and forbidden is forbidden, in
	 * the same bytes. */
	close_s(DAVE);
	say(ALICE, "{\"type\":\"call\",\"id\":3,\"to\":\"dave\",\"media\":[\"audio\"]}");
	sm = take_raw(ALICE);
	CHECK(sm != NULL);
	if (sm != NULL)
		CHECK_STR(sm->text, forbidden_online);
	/* A name nobody knows: forbidden too, not offline. */
	say(ALICE, "{\"type\":\"call\",\"id\":3,\"to\":\"frank\",\"media\":[\"audio\"]}");
	sm = take_raw(ALICE);
	CHECK(sm != NULL);
	if (sm != NULL)
		CHECK_STR(sm->text, forbidden_online);
	EXPECT_NONE(ALICE);
	EXPECT_NONE(DAVE);
	teardown();

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(DAVE, "dave");
	say(ALICE, "{\"type\":\"call\",\"id\":3,\"to\":\"dave\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "forbidden", "this call is not allowed", "3");
	/* One medium that is not allowed makes the call forbidden. */
	say(ALICE, "{\"type\":\"call\",\"id\":4,\"to\":\"bob\",\"media\":[\"audio\",\"screen\"]}");
	EXPECT_ERROR(ALICE, "forbidden", "this call is not allowed", "4");
	/* dave may not call anyone, online or not. */
	say(DAVE, "{\"type\":\"call\",\"id\":5,\"to\":\"alice\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(DAVE, "forbidden", "this call is not allowed", "5");
	/* Allowed but not online. */
	say(ALICE, "{\"type\":\"call\",\"id\":6,\"to\":\"carol\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "offline", "the user is not online", "6");
	say(ALICE, "{\"type\":\"call\",\"id\":7,\"to\":\"erin\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "offline", "the user is not online", "7");
	/* Yourself. */
	say(ALICE, "{\"type\":\"call\",\"id\":8,\"to\":\"alice\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "bad_request", "cannot call yourself", "8");
	/* None of that rang anyone or minted anything. */
	EXPECT_NONE(BOB);
	EXPECT_NONE(DAVE);
	EXPECT_NONE(ALICE);
	CHECK_EQ_INT(F.nmints, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(F.nended, 0);

	/* Malformed requests, each from a fresh session of alice's. */
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sid = fresh_sid();
		LOGIN(sid, "alice");
		say(sid, "{\"type\":\"call\",\"id\":9,%s}", bad[i]);
		sm = take_raw(sid);
		CHECK(sm != NULL && sm->json != NULL);
		if (sm == NULL || sm->json == NULL)
			continue;
		snprintf(text, sizeof(text), "%s", jstr(sm->json, "message"));
		if (strcmp(jstr(sm->json, "code"), "bad_request") != 0)
			fprintf(stderr, "bad call #%zu answered %s\n", i, sm->text);
		CHECK_STR(jstr(sm->json, "code"), "bad_request");
		CHECK_STR(text, "call needs \"to\" and a non-empty \"media\" list of "
		    "audio, video, screen, data");
		CHECK(id_is(sm->json, "9"));
		close_s(sid);
	}
	EXPECT_NONE(BOB);
	CHECK_EQ_INT(F.nmints, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(F.ncloses, 0);
	teardown();
}

/* ---- a call that rings and is answered ---------------------------------- */

static void test_call_ok(void)
{
	char call[HUB_CALL_ID_LEN + 1], call2[HUB_CALL_ID_LEN + 1], rec[HUB_CALL_ID_LEN + 1];
	uint64_t t, expires;
	json_t *m;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	ONLINE(CAROL, "carol");
	ONLINE(ERIN, "erin");

	t = F.now;
	expires = t / 1000 + CREDS_S;
	say(ALICE, "{\"type\":\"call\",\"id\":3,\"to\":\"bob\",\"media\":[\"video\",\"audio\"]}");
	m = EXPECT(ALICE, "call.ok");
	CHECK(id_is(m, "3"));
	snprintf(call, sizeof(call), "%s", jstr(m, "call"));
	CHECK(call_id_ok(call));
	check_ice_at(__LINE__, m, "alice", call, expires);
	CHECK_EQ_INT(media_bits(json_object_get(m, "media")), POLICY_AUDIO | POLICY_VIDEO);
	CHECK(json_is_false(json_object_get(m, "record")));
	CHECK_EQ_INT(F.nmints, 1);
	CHECK_STR(F.mint_user, "alice");
	CHECK_STR(F.mint_call, call);
	CHECK_EQ_INT(F.mint_expires, expires);
	CHECK_EQ_INT(hub_call_count(F.h), 1);

	/* Every session of bob rings; nobody else does. */
	m = EXPECT(BOB, "incoming");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "from"), "alice");
	CHECK_EQ_INT(media_bits(json_object_get(m, "media")), POLICY_AUDIO | POLICY_VIDEO);
	CHECK(json_is_false(json_object_get(m, "record")));
	CHECK(id_is(m, NULL));
	m = EXPECT(BOB2, "incoming");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "from"), "alice");
	EXPECT_NONE(ALICE);
	EXPECT_NONE(CAROL);
	EXPECT_NONE(ERIN);

	/* A policy rule with record: the call says so on both sides. */
	say(ALICE, "{\"type\":\"call\",\"id\":4,\"to\":\"erin\",\"media\":[\"audio\"]}");
	m = EXPECT(ALICE, "call.ok");
	snprintf(rec, sizeof(rec), "%s", jstr(m, "call"));
	CHECK(json_is_true(json_object_get(m, "record")));
	CHECK(strcmp(rec, call) != 0);
	m = EXPECT(ERIN, "incoming");
	CHECK_STR(jstr(m, "call"), rec);
	CHECK(json_is_true(json_object_get(m, "record")));
	CHECK_EQ_INT(hub_call_count(F.h), 2);

	/* Accept: by the caller, a stranger, or for an unknown call, it is
	 * the same bad_request. */
	say(ALICE, "{\"type\":\"accept\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(ALICE, "bad_request", "no ringing call to accept", "1");
	say(CAROL, "{\"type\":\"accept\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(CAROL, "bad_request", "no ringing call to accept", "1");
	say(CAROL, "{\"type\":\"accept\",\"id\":1,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\"}");
	EXPECT_ERROR(CAROL, "bad_request", "no ringing call to accept", "1");
	say(CAROL, "{\"type\":\"accept\",\"id\":1}");
	EXPECT_ERROR(CAROL, "bad_request", "no ringing call to accept", "1");
	say(ERIN, "{\"type\":\"accept\",\"id\":1,\"call\":\"%s\"}", call); /* callee of another call */
	EXPECT_ERROR(ERIN, "bad_request", "no ringing call to accept", "1");
	EXPECT_NONE(BOB);
	EXPECT_NONE(BOB2);

	/* Bob answers on his second session. */
	say(BOB2, "{\"type\":\"accept\",\"id\":9,\"call\":\"%s\"}", call);
	m = EXPECT(BOB2, "accept.ok");
	CHECK(id_is(m, "9"));
	CHECK_STR(jstr(m, "call"), call);
	check_ice_at(__LINE__, m, "bob", call, expires);
	CHECK_EQ_INT(media_bits(json_object_get(m, "media")), POLICY_AUDIO | POLICY_VIDEO);
	CHECK(json_is_false(json_object_get(m, "record")));
	CHECK_STR(F.mint_user, "bob");
	CHECK_STR(F.mint_call, call);
	CHECK_EQ_INT(F.mint_expires, expires);
	m = EXPECT(ALICE, "accepted");
	CHECK_STR(jstr(m, "call"), call);
	CHECK(id_is(m, NULL));
	m = EXPECT(BOB, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "answered_elsewhere");
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB);
	EXPECT_NONE(BOB2);
	EXPECT_NONE(CAROL);
	CHECK_EQ_INT(F.nended, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 2);

	/* Too late for bob's other session, or twice. */
	say(BOB, "{\"type\":\"accept\",\"id\":2,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB, "bad_request", "no ringing call to accept", "2");
	say(BOB2, "{\"type\":\"accept\",\"id\":2,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB2, "bad_request", "no ringing call to accept", "2");

	/* Erin accepts the recorded call. */
	say(ERIN, "{\"type\":\"accept\",\"call\":\"%s\"}", rec);
	m = EXPECT(ERIN, "accept.ok");
	CHECK(id_is(m, NULL));
	CHECK(json_is_true(json_object_get(m, "record")));
	check_ice_at(__LINE__, m, "erin", rec, F.mint_expires);
	CHECK_STR(jstr(EXPECT(ALICE, "accepted"), "call"), rec);

	/* Minting fails: no call, nobody rings. */
	F.mint_fail = true;
	say(CAROL, "{\"type\":\"call\",\"id\":5,\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(CAROL, "bad_request", NULL, "5");
	EXPECT_NONE(BOB);
	EXPECT_NONE(BOB2);
	CHECK_EQ_INT(hub_call_count(F.h), 2);
	F.mint_fail = false;
	CALL(CAROL, "bob", "[\"audio\"]", call2);
	CHECK(strcmp(call2, call) != 0);
	CHECK_STR(jstr(EXPECT(BOB, "incoming"), "from"), "carol");
	CHECK_STR(jstr(EXPECT(BOB2, "incoming"), "call"), call2);
	CHECK_EQ_INT(hub_call_count(F.h), 3);
	CHECK_EQ_INT(F.ncloses, 0);
	teardown();
}

/* ---- reject and hangup -------------------------------------------------- */

static void test_reject(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	json_t *m;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	ONLINE(CAROL, "carol");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	drain(BOB2);

	say(ALICE, "{\"type\":\"reject\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(ALICE, "bad_request", "no ringing call to reject", "1");
	say(CAROL, "{\"type\":\"reject\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(CAROL, "bad_request", "no ringing call to reject", "1");
	CHECK_EQ_INT(hub_call_count(F.h), 1);

	say(BOB, "{\"type\":\"reject\",\"id\":5,\"call\":\"%s\"}", call);
	m = EXPECT(BOB, "reject.ok");
	CHECK(id_is(m, "5"));
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "rejected");
	/* bob's other session stops ringing too. */
	m = EXPECT(BOB2, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB);
	EXPECT_NONE(CAROL);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(hub_call_count(F.h), 0);

	/* Once over, it cannot be rejected or accepted again. */
	say(BOB2, "{\"type\":\"reject\",\"id\":6,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB2, "bad_request", "no ringing call to reject", "6");
	say(BOB2, "{\"type\":\"accept\",\"id\":7,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB2, "bad_request", "no ringing call to accept", "7");

	/* Reject without an id: no reply to the rejecter. An accepted
	 * call cannot be rejected. */
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	drain(BOB2);
	say(BOB, "{\"type\":\"reject\",\"call\":\"%s\"}", call);
	EXPECT_NONE(BOB);
	CHECK_STR(jstr(EXPECT(ALICE, "hangup"), "reason"), "rejected");
	CHECK_EQ_INT(F.nended, 2);
	CHECK_STR(F.ended[1], call);
	drain(BOB2);

	CALL(ALICE, "carol", "[\"audio\"]", call);
	drain(CAROL);
	say(CAROL, "{\"type\":\"accept\",\"call\":\"%s\"}", call);
	EXPECT(CAROL, "accept.ok");
	EXPECT(ALICE, "accepted");
	say(CAROL, "{\"type\":\"reject\",\"id\":8,\"call\":\"%s\"}", call);
	EXPECT_ERROR(CAROL, "bad_request", "no ringing call to reject", "8");
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	teardown();
}

static void test_hangup(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	uint64_t expires;
	json_t *m;

	setup();
	ONLINE(CAROL, "carol");
	accepted_call(call);
	expires = F.mint_expires;

	/* Not a participant's session: bob's other one, or a stranger. */
	say(BOB2, "{\"type\":\"hangup\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB2, "bad_request", "no call to hang up", "1");
	say(CAROL, "{\"type\":\"hangup\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(CAROL, "bad_request", "no call to hang up", "1");
	say(CAROL, "{\"type\":\"hangup\",\"id\":1,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\"}");
	EXPECT_ERROR(CAROL, "bad_request", "no call to hang up", "1");
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	CHECK_EQ_INT(F.nended, 0);

	say(ALICE, "{\"type\":\"hangup\",\"id\":6,\"call\":\"%s\"}", call);
	CHECK(id_is(EXPECT(ALICE, "hangup.ok"), "6"));
	m = EXPECT(BOB, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "hangup");
	CHECK(id_is(m, NULL));
	EXPECT_NONE(BOB2);
	EXPECT_NONE(CAROL);
	EXPECT_NONE(ALICE);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(F.ended_expires[0], expires);
	CHECK_EQ_INT(hub_call_count(F.h), 0);

	/* Over: the call is gone for both. */
	say(BOB, "{\"type\":\"hangup\",\"id\":2,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB, "bad_request", "no call to hang up", "2");
	CHECK_EQ_INT(F.nended, 1);

	/* The callee hangs up, without an id: no reply to him. */
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	drain(BOB2);
	say(BOB2, "{\"type\":\"accept\",\"call\":\"%s\"}", call);
	EXPECT(BOB2, "accept.ok");
	EXPECT(ALICE, "accepted");
	drain(BOB);
	say(BOB2, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
	EXPECT_NONE(BOB2);
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "reason"), "hangup");
	CHECK_STR(jstr(m, "call"), call);
	EXPECT_NONE(BOB);
	CHECK_EQ_INT(F.nended, 2);
	CHECK_STR(F.ended[1], call);

	/* The caller gives up while it rings: every callee session hears. */
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	drain(BOB2);
	say(ALICE, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
	EXPECT_NONE(ALICE);
	CHECK_STR(jstr(EXPECT(BOB, "hangup"), "reason"), "hangup");
	CHECK_STR(jstr(EXPECT(BOB2, "hangup"), "call"), call);
	CHECK_EQ_INT(F.nended, 3);
	CHECK_STR(F.ended[2], call);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	teardown();
}

/* ---- SDP and candidates ------------------------------------------------- */

#define SDP_HEAD \
	"v=0\r\n" \
	"o=- 4611731400430051336 2 IN IP4 192.168.1.10\r\n" \
	"s=-\r\n" \
	"t=0 0\r\n" \
	"a=group:BUNDLE 0\r\n" \
	"m=audio 54321 UDP/TLS/RTP/SAVPF 111\r\n" \
	"c=IN IP4 198.51.100.20\r\n" \
	"a=rtcp:54322 IN IP4 192.168.1.10\r\n"

#define SDP_CANDIDATES \
	"a=candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host generation 0\r\n" \
	"a=candidate:2 1 udp 1686052607 198.51.100.20 54321 typ srflx raddr 192.168.1.10 rport 54321 generation 0\r\n" \
	"a=candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay raddr 198.51.100.20 rport 54321 generation 0\r\n" \
	"a=candidate:4 1 udp 41885438 198.51.100.7 3478 typ relay raddr 198.51.100.20 rport 54321 generation 0\r\n" \
	"a=candidate:5 1 udp 41885437 203.0.113.5 50002 typ relay raddr 198.51.100.20 rport 54321 generation 0\r\n" \
	"a=candidate:6 1 udp 41885436 203.0.113.5 50004 typ relay raddr 198.51.100.20 rport 54321 generation 0\r\n" \
	"a=candidate:7 1 tcp 41885435 203.0.113.5 50000 typ relay raddr 198.51.100.20 rport 54321 tcptype passive\r\n" \
	"a=candidate:8 1 udp 2122260222 4a3b9c1d-0000-4000-8000-000000000001.local 54323 typ host generation 0\r\n"

#define SDP_TAIL \
	"a=ice-ufrag:Ab1c\r\n" \
	"a=ice-pwd:abcdefghijklmnopqrstuv12\r\n" \
	"a=fingerprint:sha-256 01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF\r\n" \
	"a=setup:actpass\r\n" \
	"a=mid:0\r\n" \
	"a=rtpmap:111 opus/48000/2\r\n"

static const char OFFER[] = SDP_HEAD SDP_CANDIDATES SDP_TAIL;

static unsigned count_of(const char *hay, const char *needle)
{
	unsigned n = 0;
	const char *p = hay;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

static void check_no_leak_at(int line, const char *sdp)
{
	static const char *const leaks[] = {
		"192.168.1.10", "198.51.100.20", "198.51.100.7", ".local", "54321", "54322",
		"50004", "typ host", "typ srflx", " tcp ", "tcptype",
	};
	size_t i;

	for (i = 0; i < sizeof(leaks) / sizeof(leaks[0]); i++) {
		CHECK_AT(line, strstr(sdp, leaks[i]) == NULL);
		if (strstr(sdp, leaks[i]) != NULL)
			fprintf(stderr, "  \"%s\" leaked\n", leaks[i]);
	}
}

static void test_sdp(void)
{
	char call[HUB_CALL_ID_LEN + 1], ring[HUB_CALL_ID_LEN + 1];
	const char *out;
	json_t *m, *sdp;
	unsigned checks;

	setup();
	ONLINE(CAROL, "carol");
	accepted_call(call);

	/* alice's offer reaches bob's answering session, filtered against
	 * alice's own relayed addresses for this call. */
	checks = F.nrelay_checks;
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "call", call,
	    "sdp", "type", "offer", "sdp", OFFER));
	CHECK(F.nrelay_checks > checks);
	CHECK_STR(F.relay_user, "alice");
	CHECK_STR(F.relay_call, call);
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB2);
	EXPECT_NONE(CAROL);
	m = EXPECT(BOB, "sdp");
	CHECK_STR(jstr(m, "call"), call);
	CHECK(id_is(m, NULL));
	sdp = json_object_get(m, "sdp");
	CHECK_STR(jstr(sdp, "type"), "offer");
	out = jstr(sdp, "sdp");
	CHECK_EQ_INT(count_of(out, "a=candidate:"), 1);
	CHECK(strstr(out, "a=candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay "
	    "raddr 0.0.0.0 rport 0 generation 0\r\n") != NULL);
	CHECK(strstr(out, "o=- 4611731400430051336 2 IN IP4 0.0.0.0\r\n") != NULL);
	CHECK(strstr(out, "c=IN IP4 0.0.0.0\r\n") != NULL);
	CHECK(strstr(out, "a=rtcp:9 IN IP4 0.0.0.0\r\n") != NULL);
	CHECK(strstr(out, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n") != NULL);
	CHECK(strstr(out, "50002") == NULL); /* bob's relay is not alice's to offer */
	CHECK(strstr(out, "a=fingerprint:sha-256 01:23:45") != NULL);
	CHECK(strncmp(out, "v=0\r\n", 5) == 0);
	check_no_leak_at(__LINE__, out);

	/* bob's answer the other way: now bob's relay is the one kept. */
	say_json(BOB, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "call", call,
	    "sdp", "type", "answer", "sdp", OFFER));
	CHECK_STR(F.relay_user, "bob");
	CHECK_STR(F.relay_call, call);
	EXPECT_NONE(BOB);
	m = EXPECT(ALICE, "sdp");
	sdp = json_object_get(m, "sdp");
	CHECK_STR(jstr(sdp, "type"), "answer");
	out = jstr(sdp, "sdp");
	CHECK_EQ_INT(count_of(out, "a=candidate:"), 1);
	CHECK(strstr(out, "a=candidate:5 1 udp 41885437 203.0.113.5 50002 typ relay "
	    "raddr 0.0.0.0 rport 0 generation 0\r\n") != NULL);
	CHECK(strstr(out, "50000") == NULL);
	check_no_leak_at(__LINE__, out);

	/* Only the two sessions of the call may send descriptions: not
	 * another session of the caller's or the callee's, nor a stranger. */
	open_s(12);
	LOGIN(12, "alice");
	say_json(12, json_pack("{s:s, s:i, s:s, s:{s:s, s:s}}", "type", "sdp", "id", 1,
	    "call", call, "sdp", "type", "offer", "sdp", OFFER));
	EXPECT_ERROR(12, "bad_request", "no accepted call for this description", "1");
	say_json(BOB2, json_pack("{s:s, s:i, s:s, s:{s:s, s:s}}", "type", "sdp", "id", 1,
	    "call", call, "sdp", "type", "answer", "sdp", OFFER));
	EXPECT_ERROR(BOB2, "bad_request", "no accepted call for this description", "1");
	say_json(CAROL, json_pack("{s:s, s:i, s:s, s:{s:s, s:s}}", "type", "sdp", "id", 1,
	    "call", call, "sdp", "type", "offer", "sdp", OFFER));
	EXPECT_ERROR(CAROL, "bad_request", "no accepted call for this description", "1");
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB);

	/* Before accept: not from the caller, not from the callee. */
	CALL(ALICE, "carol", "[\"audio\"]", ring);
	drain(CAROL);
	say_json(ALICE, json_pack("{s:s, s:i, s:s, s:{s:s, s:s}}", "type", "sdp", "id", 2,
	    "call", ring, "sdp", "type", "offer", "sdp", OFFER));
	EXPECT_ERROR(ALICE, "bad_request", "no accepted call for this description", "2");
	say_json(CAROL, json_pack("{s:s, s:i, s:s, s:{s:s, s:s}}", "type", "sdp", "id", 2,
	    "call", ring, "sdp", "type", "answer", "sdp", OFFER));
	EXPECT_ERROR(CAROL, "bad_request", "no accepted call for this description", "2");
	EXPECT_NONE(CAROL);
	EXPECT_NONE(ALICE);
	CHECK_EQ_INT(F.ncloses, 0);
	teardown();
}

/* One malformed description on a fresh accepted call. */
static void bad_sdp_at(int line, const char *sdp_member, const char *why)
{
	char call[HUB_CALL_ID_LEN + 1];
	json_t *m;

	setup();
	accepted_call(call);
	say(ALICE, "{\"type\":\"sdp\",\"id\":1,\"call\":\"%s\"%s}", call, sdp_member);
	m = expect_error_at(line, ALICE, "bad_request", why, "1");
	CHECK_AT(line, m == NULL || strstr(jstr(m, "message"), MARKER) == NULL);
	CHECK_AT(line, pending(BOB) == 0 && pending(ALICE) == 0);
	teardown();
}

static void test_sdp_bad(void)
{
	const char *shape = "sdp needs {\"type\": \"offer\"|\"answer\", \"sdp\": \"...\"}";
	const char *invalid = "not a valid session description";

	bad_sdp_at(__LINE__, "", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":\"v=0\\r\\n\"", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"pranswer\",\"sdp\":\"v=0\\r\\n\"}", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"rollback\",\"sdp\":\"\"}", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"sdp\":\"v=0\\r\\n\"}", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"offer\"}", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"offer\",\"sdp\":42}", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"offer\",\"sdp\":\"v=0\\r\\n\\u0001\"}", shape);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"offer\",\"sdp\":\"" MARKER "\\r\\n\"}", invalid);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"offer\",\"sdp\":\"\"}", invalid);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"answer\",\"sdp\":\"v=0\\r\\nc=IN IP4\\r\\n\"}", invalid);
	bad_sdp_at(__LINE__, ",\"sdp\":{\"type\":\"answer\",\"sdp\":\"v=0\"}", invalid);
}

static void test_candidate(void)
{
	static const char *const dropped[] = {
		"candidate:1 1 udp 2122260223 192.168.1.10 54321 typ host generation 0",
		"candidate:2 1 udp 1686052607 198.51.100.20 54321 typ srflx raddr 192.168.1.10 rport 54321",
		"candidate:4 1 udp 41885438 198.51.100.7 3478 typ relay raddr 198.51.100.20 rport 54321",
		"candidate:5 1 udp 41885437 203.0.113.5 50002 typ relay raddr 198.51.100.20 rport 54321",
		"candidate:6 1 udp 41885436 203.0.113.5 50004 typ relay raddr 198.51.100.20 rport 54321",
		"candidate:7 1 tcp 41885435 203.0.113.5 50000 typ relay raddr 198.51.100.20 rport 54321 tcptype passive",
		"candidate:8 1 udp 2122260222 4a3b9c1d-0000-4000-8000-000000000001.local 54323 typ host",
		"candidate:3 1 udp 41885439 203.0.113.5 50001 typ relay raddr 198.51.100.20 rport 54321",
		"not a candidate",
	};
	char call[HUB_CALL_ID_LEN + 1];
	json_t *m, *c;
	size_t i;

	setup();
	ONLINE(CAROL, "carol");
	accepted_call(call);

	/* A relay candidate on alice's own relayed address: forwarded,
	 * with the related address gone. */
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:s, s:i}}", "type", "candidate",
	    "call", call, "candidate", "candidate",
	    "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay raddr 198.51.100.20 rport 54321 generation 0",
	    "sdpMid", "0", "sdpMLineIndex", 0));
	CHECK_STR(F.relay_user, "alice");
	CHECK_STR(F.relay_call, call);
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB2);
	m = EXPECT(BOB, "candidate");
	CHECK_STR(jstr(m, "call"), call);
	c = json_object_get(m, "candidate");
	CHECK_STR(jstr(c, "candidate"),
	    "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay raddr 0.0.0.0 rport 0 generation 0");
	CHECK_STR(jstr(c, "sdpMid"), "0");
	CHECK(json_is_integer(json_object_get(c, "sdpMLineIndex")) &&
	    json_integer_value(json_object_get(c, "sdpMLineIndex")) == 0);

	/* With "a=", without mid and index (null), and index 255. */
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:n, s:n}}", "type", "candidate",
	    "call", call, "candidate", "candidate",
	    "a=candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay raddr 198.51.100.20 rport 54321",
	    "sdpMid", "sdpMLineIndex"));
	c = json_object_get(EXPECT(BOB, "candidate"), "candidate");
	CHECK_STR(jstr(c, "candidate"),
	    "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay raddr 0.0.0.0 rport 0");
	CHECK(json_object_get(c, "sdpMid") == NULL);
	CHECK(json_object_get(c, "sdpMLineIndex") == NULL);
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:s, s:i}}", "type", "candidate",
	    "call", call, "candidate", "candidate",
	    "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay",
	    "sdpMid", "audio-x", "sdpMLineIndex", 255));
	c = json_object_get(EXPECT(BOB, "candidate"), "candidate");
	CHECK_STR(jstr(c, "candidate"), "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay");
	CHECK_STR(jstr(c, "sdpMid"), "audio-x");
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "sdpMLineIndex")), 255);
	/* Every token character (RFC 8866 §9), 32 of them. */
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "candidate",
	    "call", call, "candidate", "candidate",
	    "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay",
	    "sdpMid", "!#$%&'*+-.^_`{|}~09AZaz012345678"));
	c = json_object_get(EXPECT(BOB, "candidate"), "candidate");
	CHECK_STR(jstr(c, "sdpMid"), "!#$%&'*+-.^_`{|}~09AZaz012345678");

	/* End of candidates. */
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:s, s:i}}", "type", "candidate",
	    "call", call, "candidate", "candidate", "", "sdpMid", "0", "sdpMLineIndex", 0));
	c = json_object_get(EXPECT(BOB, "candidate"), "candidate");
	CHECK(json_is_string(json_object_get(c, "candidate")));
	CHECK_STR(jstr(c, "candidate"), "");

	/* Everything else is dropped silently: not forwarded, not answered,
	 * and not a strike (browsers trickle host candidates as a matter
	 * of course). */
	for (i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
		say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:s, s:i}}", "type", "candidate",
		    "call", call, "candidate", "candidate", dropped[i], "sdpMid", "0",
		    "sdpMLineIndex", 0));
		if (pending(BOB) != 0)
			fprintf(stderr, "forwarded: %s\n", dropped[i]);
		EXPECT_NONE(BOB);
		EXPECT_NONE(ALICE);
	}
	CHECK_EQ_INT(F.ncloses, 0);

	/* bob to alice: his relay is kept, alice's is not his to send. */
	say_json(BOB, json_pack("{s:s, s:s, s:{s:s, s:s, s:i}}", "type", "candidate",
	    "call", call, "candidate", "candidate",
	    "candidate:5 1 udp 41885437 203.0.113.5 50002 typ relay raddr 10.0.0.2 rport 4000",
	    "sdpMid", "0", "sdpMLineIndex", 0));
	CHECK_STR(F.relay_user, "bob");
	c = json_object_get(EXPECT(ALICE, "candidate"), "candidate");
	CHECK_STR(jstr(c, "candidate"),
	    "candidate:5 1 udp 41885437 203.0.113.5 50002 typ relay raddr 0.0.0.0 rport 0");
	say_json(BOB, json_pack("{s:s, s:s, s:{s:s}}", "type", "candidate", "call", call,
	    "candidate", "candidate", "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay"));
	EXPECT_NONE(ALICE);

	/* Not from bob's other session, nor a stranger. */
	say_json(BOB2, json_pack("{s:s, s:i, s:s, s:{s:s}}", "type", "candidate", "id", 3,
	    "call", call, "candidate", "candidate",
	    "candidate:5 1 udp 41885437 203.0.113.5 50002 typ relay"));
	EXPECT_ERROR(BOB2, "bad_request", "no accepted call for this candidate", "3");
	say_json(CAROL, json_pack("{s:s, s:i, s:s, s:{s:s}}", "type", "candidate", "id", 3,
	    "call", call, "candidate", "candidate",
	    "candidate:5 1 udp 41885437 203.0.113.5 50002 typ relay"));
	EXPECT_ERROR(CAROL, "bad_request", "no accepted call for this candidate", "3");
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB);
	teardown();
}

/* One malformed candidate message on a fresh accepted call. */
static void bad_candidate_at(int line, const char *members, const char *why, bool ringing)
{
	char call[HUB_CALL_ID_LEN + 1];

	setup();
	if (ringing) {
		ONLINE(ALICE, "alice");
		ONLINE(BOB, "bob");
		CALL(ALICE, "bob", "[\"audio\"]", call);
		drain(BOB);
	} else {
		accepted_call(call);
	}
	say(ALICE, "{\"type\":\"candidate\",\"id\":1,\"call\":\"%s\"%s}", call, members);
	expect_error_at(line, ALICE, "bad_request", why, "1");
	CHECK_AT(line, pending(BOB) == 0 && pending(ALICE) == 0);
	teardown();
}

#define GOOD_CAND "\"candidate\":\"candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay\""

static void test_candidate_bad(void)
{
	const char *shape = "candidate needs {\"candidate\": \"...\"}";
	const char *mid = "bad sdpMid", *idx = "bad sdpMLineIndex";
	char longmid[256];

	bad_candidate_at(__LINE__, "", shape, false);
	bad_candidate_at(__LINE__, ",\"candidate\":\"candidate:3 1 udp 1 203.0.113.5 50000 typ relay\"",
	    shape, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{}", shape, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{\"candidate\":7}", shape, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{\"candidate\":null}", shape, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":0}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":[\"0\"]}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"a\\u0001\"}", mid, false);
	snprintf(longmid, sizeof(longmid), ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"%s\"}",
	    "0123456789012345678901234567890123"); /* 34 > 32 */
	bad_candidate_at(__LINE__, longmid, mid, false);
	/* Only an identification-tag (RFC 5888 token): nothing that could
	 * end a line of the SDP the other side builds, or start another. */
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"0\\r\\nc=IN IP4 10.1.2.3\\r\\n\"}",
	    mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"0\\n\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"\\t0\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"a b\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"a\\\"b\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"a(b)\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"a,b\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"a\\u007f\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMid\":\"\\u00e9\"}", mid, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMLineIndex\":-1}", idx, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMLineIndex\":256}", idx, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMLineIndex\":\"0\"}", idx, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMLineIndex\":0.5}", idx, false);
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND ",\"sdpMLineIndex\":true}", idx, false);
	/* Before accept. */
	bad_candidate_at(__LINE__, ",\"candidate\":{" GOOD_CAND "}",
	    "no accepted call for this candidate", true);
}

/* ---- sessions that go away ---------------------------------------------- */

static void test_close_during_calls(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	json_t *m;

	/* The caller goes while it rings: every callee session hears. */
	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	drain(BOB2);
	close_s(ALICE);
	m = EXPECT(BOB, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "disconnected");
	m = EXPECT(BOB2, "hangup");
	CHECK_STR(jstr(m, "reason"), "disconnected");
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(hub_session_count(F.h), 2);
	teardown();

	/* The callee's sessions go one by one: the call lasts while one can
	 * still answer. */
	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	drain(BOB2);
	close_s(BOB2);
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB);
	CHECK_EQ_INT(F.nended, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	/* The one left can still take it... */
	say(BOB, "{\"type\":\"reject\",\"id\":1,\"call\":\"AAAAAAAAAAAAAAAAAAAAAA\"}");
	EXPECT_ERROR(BOB, "bad_request", NULL, "1");
	close_s(BOB);
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "disconnected");
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	/* ... and now bob is offline. */
	say(ALICE, "{\"type\":\"call\",\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "offline", NULL, NULL);
	teardown();

	/* Accepted: the answering session goes; bob's other session is not
	 * in the call and hears nothing. */
	setup();
	accepted_call(call);
	close_s(BOB);
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "disconnected");
	EXPECT_NONE(BOB2);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	teardown();

	/* Accepted: the caller goes. */
	setup();
	accepted_call(call);
	close_s(ALICE);
	m = EXPECT(BOB, "hangup");
	CHECK_STR(jstr(m, "reason"), "disconnected");
	EXPECT_NONE(BOB2);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	/* The call is gone for bob too. */
	say(BOB, "{\"type\":\"hangup\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB, "bad_request", "no call to hang up", "1");
	teardown();

	/* A caller with a second session: closing the other one ends
	 * nothing. */
	setup();
	ONLINE(ALICE, "alice");
	open_s(11);
	LOGIN(11, "alice");
	ONLINE(BOB, "bob");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	close_s(11);
	EXPECT_NONE(BOB);
	EXPECT_NONE(ALICE);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	CHECK_EQ_INT(F.nended, 0);
	teardown();
}

/* A session closed, by the hub or by the adapter, is let go of at once,
 * not when its connection is finally gone, which a client that stops
 * reading holds off (review finding): its calls end and are reported
 * ended (credentials revoked) now, its logout is reported once, and the
 * adapter's later report changes nothing. */
static void test_close_takes_effect(void)
{
	char call[HUB_CALL_ID_LEN + 1], other[HUB_CALL_ID_LEN + 1];
	json_t *m;
	int i;

	/* Strikes. */
	setup();
	accepted_call(call);
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		say(BOB, "{\"type\":\"nope\"}");
		EXPECT_ERROR(BOB, "bad_request", "unknown message type", NULL);
	}
	CHECK_EQ_INT(F.ncloses, 1);
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "disconnected");
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(hub_session_count(F.h), 2);
	CHECK_EQ_INT(F.nlogouts, 1);
	/* What the client still sends is not read. */
	say(BOB, "{\"type\":\"ping\"}");
	hub_session_oversized(F.h, BOB, at(F.now));
	EXPECT_NONE(BOB);
	close_s(BOB);
	CHECK_EQ_INT(F.nlogouts, 1);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_EQ_INT(F.ncloses, 1);
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB2);
	teardown();

	/* Every session of a user (disabled, deleted), then one session (an
	 * operator): ringing and answered calls end at once. */
	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	ONLINE(CAROL, "carol");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	CALL(CAROL, "alice", "[\"audio\"]", other);
	say(ALICE, "{\"type\":\"accept\",\"call\":\"%s\"}", other);
	EXPECT(ALICE, "incoming");
	EXPECT(ALICE, "accept.ok");
	EXPECT(CAROL, "accepted");
	drain(BOB);
	drain(BOB2);
	CHECK_EQ_INT(hub_close_user(F.h, "bob", "user disabled"), 2);
	CHECK_EQ_INT(F.ncloses, 2);
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "disconnected");
	EXPECT_NONE(CAROL);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	CHECK_EQ_INT(F.nlogouts, 2);
	say(ALICE, "{\"type\":\"call\",\"id\":1,\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "offline", NULL, "1");
	CHECK_EQ_INT(hub_close_session(F.h, ALICE, "closed by an operator"), 1);
	m = EXPECT(CAROL, "hangup");
	CHECK_STR(jstr(m, "call"), other);
	CHECK_STR(jstr(m, "reason"), "disconnected");
	CHECK_EQ_INT(F.nended, 2);
	CHECK_EQ_INT(F.nlogouts, 3);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(hub_close_session(F.h, ALICE, "again"), 0);
	close_s(BOB);
	close_s(BOB2);
	close_s(ALICE);
	CHECK_EQ_INT(F.nlogouts, 3);
	CHECK_EQ_INT(F.nended, 2);
	EXPECT_NONE(CAROL);
	teardown();

	/* The adapter closes a reader too slow to take what is queued, from
	 * inside the send that found it so: let go of when the message
	 * that led to the send is dealt with. */
	setup();
	accepted_call(call);
	F.slow = BOB;
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s}}", "type", "candidate", "call", call,
	    "candidate", "candidate", "candidate:3 1 udp 41885439 203.0.113.5 50000 typ relay"));
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "reason"), "disconnected");
	CHECK_EQ_INT(F.nended, 1);
	CHECK_EQ_INT(F.nlogouts, 1);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(hub_session_count(F.h), 2);
	CHECK_EQ_INT(F.ncloses, 0);
	close_s(BOB);
	CHECK_EQ_INT(F.nlogouts, 1);
	/* And on its own, outside any entry point: at once. */
	hub_session_closing(F.h, BOB2, at(F.now));
	mark_closed(BOB2);
	CHECK_EQ_INT(hub_session_count(F.h), 1);
	CHECK_EQ_INT(F.nlogouts, 2);
	close_s(BOB2);
	CHECK_EQ_INT(F.nlogouts, 2);
	teardown();
}

static void test_ring_timeout(void)
{
	char call[HUB_CALL_ID_LEN + 1], other[HUB_CALL_ID_LEN + 1];
	uint64_t t0, t1;
	json_t *m;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	ONLINE(CAROL, "carol");

	/* An accepted call never times out. */
	t1 = F.now;
	CALL(CAROL, "alice", "[\"audio\"]", other);
	say(ALICE, "{\"type\":\"accept\",\"call\":\"%s\"}", other);
	EXPECT(ALICE, "incoming");
	EXPECT(ALICE, "accept.ok");
	EXPECT(CAROL, "accepted");

	t0 = F.now;
	CALL(ALICE, "bob", "[\"audio\"]", call);
	drain(BOB);
	drain(BOB2);

	hub_tick(F.h, at(t0 + HUB_RING_TIMEOUT_MS - 1));
	EXPECT_NONE(ALICE);
	EXPECT_NONE(BOB);
	EXPECT_NONE(BOB2);
	CHECK_EQ_INT(hub_call_count(F.h), 2);
	CHECK_EQ_INT(F.nended, 0);

	hub_tick(F.h, at(t0 + HUB_RING_TIMEOUT_MS));
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "timeout");
	m = EXPECT(BOB, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "timeout");
	m = EXPECT(BOB2, "hangup");
	CHECK_STR(jstr(m, "reason"), "timeout");
	EXPECT_NONE(CAROL);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(hub_call_count(F.h), 1);

	/* Later ticks change nothing; the accepted call stays. */
	hub_tick(F.h, at(t1 + 10 * HUB_RING_TIMEOUT_MS));
	EXPECT_NONE(ALICE);
	EXPECT_NONE(CAROL);
	EXPECT_NONE(BOB);
	CHECK_EQ_INT(F.nended, 1);
	CHECK_EQ_INT(hub_call_count(F.h), 1);

	/* Accepting after the timeout is too late. */
	say(BOB, "{\"type\":\"accept\",\"id\":1,\"call\":\"%s\"}", call);
	EXPECT_ERROR(BOB, "bad_request", "no ringing call to accept", "1");
	teardown();
}

/* ---- abuse -------------------------------------------------------------- */

static void test_strikes(void)
{
	int i;

	setup();
	open_s(1);
	/* Four bad requests, with good ones between: no close yet. */
	for (i = 0; i < 4; i++) {
		char id[16];

		snprintf(id, sizeof(id), "%d", i);
		say(1, "{\"type\":\"nope\",\"id\":%d}", i);
		EXPECT_ERROR(1, "bad_request", "unknown message type", id);
		say(1, "{\"type\":\"ping\"}");
		EXPECT(1, "pong");
	}
	CHECK_EQ_INT(F.ncloses, 0);
	/* The fifth: answered, then closed, once. */
	say(1, "{\"type\":\"nope\",\"id\":5}");
	EXPECT_ERROR(1, "bad_request", "unknown message type", "5");
	CHECK_EQ_INT(F.ncloses, 1);
	CHECK_EQ_INT(F.closes[0].session, 1);
	CHECK(F.closes[0].why[0] != '\0');
	close_s(1);

	/* Every kind of bad request counts toward the same limit. */
	open_s(2);
	hub_session_oversized(F.h, 2, at(F.now));
	EXPECT_ERROR(2, "bad_request", "message too large", NULL);
	say(2, "{");
	EXPECT_ERROR(2, "bad_request", "not valid JSON", NULL);
	say(2, "{\"type\":\"contacts\"}");
	EXPECT_ERROR(2, "bad_request", "log in first", NULL);
	say(2, "{\"type\":\"ping\",\"id\":true}");
	EXPECT_ERROR(2, "bad_request", NULL, NULL);
	CHECK_EQ_INT(F.ncloses, 1);
	/* A malformed login is answered auth_failed, as every failed login
	 * is, and still counts. */
	say(2, "{\"type\":\"login\"}");
	EXPECT_ERROR(2, "auth_failed", "login needs user and password, or token", NULL);
	CHECK_EQ_INT(F.ncloses, 2);
	CHECK_EQ_INT(F.closes[1].session, 2);
	close_s(2);
	teardown();

	/* Late messages about a call that just ended (the other side hung
	 * up, or the server ended it) are answered but are not strikes: a
	 * well-behaved client sends them in that race. Without a call id they
	 * still are. */
	{
		char call[HUB_CALL_ID_LEN + 1];

		setup();
		accepted_call(call);
		say(ALICE, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
		drain(ALICE);
		drain(BOB);
		for (i = 0; i < 3; i++) {
			say(BOB, "{\"type\":\"hangup\",\"id\":1,\"call\":\"%s\"}", call);
			EXPECT_ERROR(BOB, "bad_request", "no call to hang up", "1");
			say(BOB, "{\"type\":\"accept\",\"id\":2,\"call\":\"%s\"}", call);
			EXPECT_ERROR(BOB, "bad_request", "no ringing call to accept", "2");
			say(BOB, "{\"type\":\"candidate\",\"id\":3,\"call\":\"%s\",\"candidate\":"
			    "{\"candidate\":\"candidate:1 1 udp 1 203.0.113.5 50002 typ relay\"}}",
			    call);
			EXPECT_ERROR(BOB, "bad_request", "no accepted call for this candidate", "3");
		}
		CHECK_EQ_INT(F.ncloses, 0);
		for (i = 0; i < 5; i++) {
			say(BOB, "{\"type\":\"hangup\",\"id\":4}");
			EXPECT_ERROR(BOB, "bad_request", "no call to hang up", "4");
		}
		CHECK_EQ_INT(F.ncloses, 1);
		CHECK_EQ_INT(F.closes[0].session, BOB);
		teardown();
	}
}

static void test_rate_limit(void)
{
	const char ping[] = "{\"type\":\"ping\",\"id\":1}";
	uint64_t t;
	int i, pongs = 0;
	struct sent_msg *m;

	setup();
	t = F.now;
	open_s(1);
	/* A burst of 40 at one instant passes... */
	for (i = 0; i < 40; i++)
		hub_session_message(F.h, 1, ping, strlen(ping), at(t));
	while ((m = take_raw(1)) != NULL)
		if (m->json != NULL && strcmp(jstr(m->json, "type"), "pong") == 0)
			pongs++;
	CHECK_EQ_INT(pongs, 40);
	/* ... the 41st does not, and is not even read (no id). */
	hub_session_message(F.h, 1, ping, strlen(ping), at(t));
	EXPECT_ERROR(1, "bad_request", "too many messages", NULL);
	EXPECT_NONE(1);
	/* 50 ms later there is room for one more, and only one. */
	hub_session_message(F.h, 1, ping, strlen(ping), at(t + STEP_MS));
	CHECK(id_is(EXPECT(1, "pong"), "1"));
	hub_session_message(F.h, 1, ping, strlen(ping), at(t + STEP_MS));
	EXPECT_ERROR(1, "bad_request", "too many messages", NULL);
	CHECK_EQ_INT(F.ncloses, 0);
	/* A second later the bucket has refilled by 20. */
	for (i = 0; i < 20; i++)
		hub_session_message(F.h, 1, ping, strlen(ping), at(t + STEP_MS + 1000));
	pongs = 0;
	while ((m = take_raw(1)) != NULL)
		if (m->json != NULL && strcmp(jstr(m->json, "type"), "pong") == 0)
			pongs++;
	CHECK_EQ_INT(pongs, 20);
	hub_session_message(F.h, 1, ping, strlen(ping), at(t + STEP_MS + 1000));
	EXPECT_ERROR(1, "bad_request", "too many messages", NULL);
	CHECK_EQ_INT(F.ncloses, 0);

	/* Each session has its own bucket. */
	open_s(2);
	hub_session_message(F.h, 2, ping, strlen(ping), at(t + STEP_MS + 1000));
	EXPECT(2, "pong");
	teardown();
}

static void test_oversized(void)
{
	char *big;
	size_t n = 70 * 1024;

	setup();
	open_s(1);
	hub_session_oversized(F.h, 1, at(F.now));
	EXPECT_ERROR(1, "bad_request", "message too large", NULL);
	EXPECT_NONE(1);
	/* A session the hub does not know. */
	hub_session_oversized(F.h, 77, at(F.now));
	CHECK_EQ_INT(F.nmsgs, 1);

	/* One that got through the adapter anyway is refused unread. */
	big = malloc(n);
	CHECK(big != NULL);
	if (big != NULL) {
		memset(big, ' ', n);
		memcpy(big, "{\"type\":\"ping\",\"id\":1}", 22);
		say_raw(1, big, n);
		EXPECT_ERROR(1, "bad_request", "message too large", NULL);
		free(big);
	}
	say(1, "{\"type\":\"ping\"}");
	EXPECT(1, "pong");
	teardown();
}

struct malformed {
	const char *text;
	size_t len;                 /* 0: strlen(text) */
	const char *why;            /* NULL: one of the parser's reasons */
};

static void test_malformed(void)
{
	static const char nul[] = "{\"type\":\"ping\",\"x\":\"" MARKER "\0\"}";
	static const struct malformed cases[] = {
		{ "{\"type\":\"ping\",\"" MARKER, 0, "not valid JSON" },
		{ MARKER, 0, "not valid JSON" },
		{ "{'type':'" MARKER "'}", 0, "not valid JSON" },
		{ "{\"type\":\"ping\"} " MARKER, 0, "not valid JSON" },
		{ "{\"type\":\"ping\",\"x\":\"\xff" MARKER "\"}", 0, "not valid JSON" },
		{ "{\"type\":\"ping\",\"x\":" MARKER "}", 0, "not valid JSON" },
		{ "[\"" MARKER "\"]", 0, "expected a JSON object" },
		{ "[]", 0, "expected a JSON object" },
		{ "\"" MARKER "\"", 0, NULL },
		{ "42", 0, NULL },
		{ "null", 0, NULL },
		{ "{\"type\":\"ping\",\"type\":\"" MARKER "\"}", 0, "duplicate key" },
		{ "{\"type\":\"ping\",\"x\":{\"" MARKER "\":1,\"" MARKER "\":2}}", 0, "duplicate key" },
		/* the root and eight arrays: nine levels */
		{ "{\"type\":\"ping\",\"" MARKER "\":[[[[[[[[1]]]]]]]]}", 0, "nested too deeply" },
		{ "{\"type\":\"ping\",\"x\":[{\"a\":[{\"a\":[{\"a\":[{\"" MARKER "\":1}]}]}]}]}", 0,
		  "nested too deeply" },
		{ nul, sizeof(nul) - 1, "NUL byte in message" },
		{ "\0{\"type\":\"ping\"}", 16, "NUL byte in message" },
		{ "{\"type\":\"" MARKER "\"}", 0, "unknown message type" },
		/* jansson refuses \u0000 without JSON_ALLOW_NUL */
		{ "{\"type\":\"ping\\u0000" MARKER "\"}", 0, "not valid JSON" },
		{ "{\"type\":\"ping\\n\"}", 0, "unknown message type" },
		{ "", 0, "not valid JSON" },
	};
	static const char *const reasons[] = {
		"not valid JSON", "expected a JSON object", "duplicate key", "nested too deeply",
		"NUL byte in message", "message too large",
	};
	struct sent_msg *m;
	uint64_t sid;
	size_t i, k, len;
	bool known;

	setup();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		sid = fresh_sid();
		len = cases[i].len ? cases[i].len : strlen(cases[i].text);
		say_raw(sid, cases[i].text, len);
		m = take_raw(sid);
		CHECK(m != NULL && m->json != NULL);
		if (m == NULL || m->json == NULL) {
			fprintf(stderr, "  malformed case %zu: no answer\n", i);
			continue;
		}
		if (strcmp(jstr(m->json, "code"), "bad_request") != 0 ||
		    (cases[i].why != NULL && strcmp(jstr(m->json, "message"), cases[i].why) != 0))
			fprintf(stderr, "  malformed case %zu answered %s\n", i, m->text);
		CHECK_STR(jstr(m->json, "type"), "error");
		CHECK_STR(jstr(m->json, "code"), "bad_request");
		if (cases[i].why != NULL) {
			CHECK_STR(jstr(m->json, "message"), cases[i].why);
		} else {
			known = false;
			for (k = 0; k < sizeof(reasons) / sizeof(reasons[0]); k++)
				known = known || strcmp(jstr(m->json, "message"), reasons[k]) == 0;
			CHECK(known);
		}
		/* Nothing of the input comes back. */
		CHECK(strstr(m->text, MARKER) == NULL);
		CHECK(strstr(m->text, "\\u00ff") == NULL);
		CHECK(id_is(m->json, NULL));
		EXPECT_NONE(sid);
	}
	/* Eight levels (the root and seven arrays) are fine. */
	sid = fresh_sid();
	say(sid, "{\"type\":\"ping\",\"id\":8,\"x\":[[[[[[[1]]]]]]]}");
	CHECK(id_is(EXPECT(sid, "pong"), "8"));
	sid = fresh_sid();
	say(sid, "{\"type\":\"ping\",\"x\":[{\"a\":[{\"a\":[{\"a\":[1]}]}]}]}");
	EXPECT(sid, "pong");
	CHECK_EQ_INT(F.ncloses, 0);
	teardown();
}

/* ---- bookkeeping and limits --------------------------------------------- */

static void test_counts(void)
{
	char call[HUB_CALL_ID_LEN + 1];

	setup();
	CHECK_EQ_INT(hub_session_count(F.h), 0);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	open_s(1);
	open_s(2);
	open_s(3);
	CHECK_EQ_INT(hub_session_count(F.h), 3);
	LOGIN(1, "alice");
	LOGIN(2, "bob");
	CHECK_EQ_INT(hub_session_count(F.h), 3);
	close_s(3);
	CHECK_EQ_INT(hub_session_count(F.h), 2);
	close_s(3);       /* twice */
	close_s(99);      /* never opened */
	CHECK_EQ_INT(hub_session_count(F.h), 2);

	CALL(1, "bob", "[\"audio\"]", call);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	say(2, "{\"type\":\"accept\",\"call\":\"%s\"}", call);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	say(2, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	drain(1);
	drain(2);
	CALL(1, "bob", "[\"audio\"]", call);
	drain(2);
	CALL(2, "alice", "[\"audio\"]", call);
	CHECK_EQ_INT(hub_call_count(F.h), 2);
	close_s(1);
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(hub_session_count(F.h), 1);
	CHECK_EQ_INT(F.nended, 3);
	close_s(2);
	CHECK_EQ_INT(hub_session_count(F.h), 0);

	/* A user who comes back starts clean (on a reused session id). */
	drain(1);
	drain(2);
	ONLINE(1, "alice");
	ONLINE(2, "bob");
	CALL(1, "bob", "[\"audio\"]", call);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	teardown();
}

/* A user is in at most HUB_MAX_CALLS_PER_USER calls it placed or
 * answered; calls ringing for it are not among them until it answers. */
static void test_call_limit(void)
{
	static const char *const callees[HUB_MAX_CALLS_PER_USER] = {
		"bob", "carol", "fred", "gail" };
	static const uint64_t callee_sids[HUB_MAX_CALLS_PER_USER] = { BOB, CAROL, 21, 22 };
	char calls[HUB_MAX_CALLS_PER_USER][HUB_CALL_ID_LEN + 1], call[HUB_CALL_ID_LEN + 1];
	char in[HUB_CALL_ID_LEN + 1];
	size_t i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(CAROL, "carol");
	ONLINE_IN(21, "fred", "team");
	ONLINE_IN(22, "gail", "team");
	ONLINE_IN(23, "hugo", "team");
	/* A call ringing for her does not keep her from calling out. */
	CALL(23, "alice", "[\"audio\"]", in);
	EXPECT(ALICE, "incoming");
	for (i = 0; i < HUB_MAX_CALLS_PER_USER; i++) {
		CALL(ALICE, callees[i], "[\"audio\"]", calls[i]);
		EXPECT(callee_sids[i], "incoming");
	}
	CHECK_EQ_INT(hub_call_count(F.h), 5);
	say(ALICE, "{\"type\":\"call\",\"id\":5,\"to\":\"hugo\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "bad_request", "too many calls", "5");
	/* Not a strike: calls answered count, and others asked for them. */
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		say(ALICE, "{\"type\":\"call\",\"id\":6,\"to\":\"hugo\",\"media\":[\"audio\"]}");
		EXPECT_ERROR(ALICE, "bad_request", "too many calls", "6");
	}
	CHECK_EQ_INT(F.ncloses, 0);
	EXPECT_NONE(23);
	CHECK_EQ_INT(hub_call_count(F.h), 5);
	/* At her cap she is busy to new callers: she could not answer. */
	say(21, "{\"type\":\"call\",\"id\":9,\"to\":\"alice\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(21, "bad_request", "the user is busy", "9");
	EXPECT_NONE(ALICE);

	/* Answering the call that rang before would be one too many, and is
	 * refused the same way, without a strike. */
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		say(ALICE, "{\"type\":\"accept\",\"id\":7,\"call\":\"%s\"}", in);
		EXPECT_ERROR(ALICE, "bad_request", "too many calls", "7");
	}
	EXPECT_NONE(23);
	CHECK_EQ_INT(F.ncloses, 0);

	/* One ends: she may answer, and is at the cap again. */
	say(ALICE, "{\"type\":\"hangup\",\"call\":\"%s\"}", calls[0]);
	EXPECT(BOB, "hangup");
	say(ALICE, "{\"type\":\"accept\",\"call\":\"%s\"}", in);
	EXPECT(ALICE, "accept.ok");
	EXPECT(23, "accepted");
	say(ALICE, "{\"type\":\"call\",\"id\":8,\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "bad_request", "too many calls", "8");

	/* Another ends, another may start. */
	say(ALICE, "{\"type\":\"hangup\",\"call\":\"%s\"}", calls[1]);
	EXPECT(CAROL, "hangup");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	CHECK_EQ_INT(hub_call_count(F.h), 4);
	EXPECT(BOB, "incoming");
	EXPECT_NONE(ALICE);
	teardown();
}

/* One caller cannot lock a user out of calling (review finding: four
 * calls kept ringing to a victim made it "busy" to everyone and unable
 * to call out). A second call from the same caller to the same callee
 * while the first rings is refused, without a strike; calls ringing for
 * a user never keep it from calling out. */
static void test_ringing_per_pair(void)
{
	char call[HUB_CALL_ID_LEN + 1], other[HUB_CALL_ID_LEN + 1];
	size_t i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	ONLINE(CAROL, "carol");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	EXPECT(BOB2, "incoming");
	for (i = 0; i < HUB_MAX_STRIKES + 1; i++) {
		say(ALICE, "{\"type\":\"call\",\"id\":1,\"to\":\"bob\",\"media\":[\"video\"]}");
		EXPECT_ERROR(ALICE, "bad_request", "a call to this user is already ringing", "1");
	}
	CHECK_EQ_INT(F.ncloses, 0);
	EXPECT_NONE(BOB);
	EXPECT_NONE(BOB2);
	CHECK_EQ_INT(hub_call_count(F.h), 1);

	/* bob, rung, calls out, the caller too, and is called by others. */
	CALL(BOB, "carol", "[\"audio\"]", other);
	EXPECT(CAROL, "incoming");
	CALL(BOB2, "alice", "[\"audio\"]", other);
	EXPECT(ALICE, "incoming");
	CALL(CAROL, "bob", "[\"audio\"]", other);
	EXPECT(BOB, "incoming");
	EXPECT(BOB2, "incoming");

	/* Once the call no longer rings, alice may call bob again: after
	 * an answer... */
	say(BOB2, "{\"type\":\"accept\",\"call\":\"%s\"}", call);
	EXPECT(BOB2, "accept.ok");
	EXPECT(ALICE, "accepted");
	EXPECT(BOB, "hangup");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	EXPECT(BOB2, "incoming");
	/* ... or a refusal. */
	say(BOB, "{\"type\":\"reject\",\"call\":\"%s\"}", call);
	EXPECT(ALICE, "hangup");
	EXPECT(BOB2, "hangup");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	teardown();
}

/* At most HUB_CALLS_PER_MIN calls placed a minute per user, over all of
 * its sessions and across reconnects; refused rate_limited, not a
 * strike. */
static void test_call_rate(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	struct sent_msg *r;
	unsigned placed = 0;
	uint64_t t;
	size_t i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(11, "alice");
	ONLINE(BOB, "bob");
	/* The clock stands still: calls placed and hung up at once, from
	 * both sessions (each stays within its message burst), until one
	 * is refused. */
	t = F.now;
	for (;;) {
		uint64_t from = placed % 2 ? 11 : ALICE;

		F.now = t;
		say(from, "{\"type\":\"call\",\"id\":\"r\",\"to\":\"bob\",\"media\":[\"audio\"]}");
		F.now = t;
		r = take_raw(from);
		CHECK(r != NULL && r->json != NULL);
		if (r == NULL || r->json == NULL || strcmp(jstr(r->json, "type"), "call.ok") != 0)
			break;
		say(from, "{\"type\":\"hangup\",\"call\":\"%s\"}", jstr(r->json, "call"));
		drain(BOB);
		if (++placed > 2 * HUB_CALLS_PER_MIN)
			break;
	}
	CHECK_EQ_INT(placed, HUB_CALLS_PER_MIN);
	if (r != NULL && r->json != NULL) {
		CHECK_STR(jstr(r->json, "type"), "error");
		CHECK_STR(jstr(r->json, "code"), "rate_limited");
		CHECK_STR(jstr(r->json, "message"), "too many new calls, try again later");
		CHECK(id_is(r->json, "\"r\""));
	}
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		F.now = t;
		say(ALICE, "{\"type\":\"call\",\"id\":2,\"to\":\"bob\",\"media\":[\"audio\"]}");
		EXPECT_ERROR(ALICE, "rate_limited", NULL, "2");
	}
	CHECK_EQ_INT(F.ncloses, 0);
	EXPECT_NONE(BOB);
	CHECK_EQ_INT(hub_call_count(F.h), 0);

	/* One comes back every 60/HUB_CALLS_PER_MIN s. */
	F.now = t + 60 * 1000 / HUB_CALLS_PER_MIN;
	CALL(11, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	say(11, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
	EXPECT(BOB, "hangup");
	say(11, "{\"type\":\"call\",\"id\":3,\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(11, "rate_limited", NULL, "3");

	/* Connecting again does not refill it, nor does the sweep of
	 * entries nobody uses (the first tick sweeps). */
	close_s(ALICE);
	close_s(11);
	F.now += 1000;
	hub_tick(F.h, at(F.now));
	ONLINE(ALICE, "alice");
	say(ALICE, "{\"type\":\"call\",\"id\":4,\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "rate_limited", NULL, "4");
	/* A minute on, the bucket is full again; an entry with nobody left
	 * to use it is dropped then (the sweep; checked for leaks). */
	F.now += 60 * 1000;
	for (i = 0; i < HUB_CALLS_PER_MIN; i++) {
		CALL(ALICE, "bob", "[\"audio\"]", call);
		say(ALICE, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
		F.now += 2 * STEP_MS; /* within the message rate */
	}
	drain(BOB);
	close_s(ALICE);
	F.now += 61 * 1000;
	hub_tick(F.h, at(F.now));
	ONLINE(ALICE, "alice");
	CALL(ALICE, "bob", "[\"audio\"]", call);
	teardown();
}

/* ---- clocks ------------------------------------------------------------- */

/* The hub measures every interval on the monotonic clock and uses the
 * wall clock only for UNIX times (hub.h, struct clock_pair). These tests
 * step the wall clock, as NTP or `date -s` would, while the monotonic
 * clock runs on. */

#define HOUR_MS (3600 * 1000LL)
#define DAY_MS (24 * HOUR_MS)

/* Places and hangs up calls from sid to bob, at the message rate, until
 * the call placement bucket refuses one. */
static void empty_call_bucket(uint64_t sid)
{
	char call[HUB_CALL_ID_LEN + 1];
	struct sent_msg *r;
	unsigned placed;

	for (placed = 0; placed <= 2 * HUB_CALLS_PER_MIN; placed++) {
		say(sid, "{\"type\":\"call\",\"id\":\"r\",\"to\":\"bob\",\"media\":[\"audio\"]}");
		r = take_raw(sid);
		CHECK(r != NULL && r->json != NULL);
		if (r == NULL || r->json == NULL || strcmp(jstr(r->json, "type"), "call.ok") != 0)
			break;
		snprintf(call, sizeof(call), "%s", jstr(r->json, "call"));
		say(sid, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
		drain(BOB);
	}
	CHECK(r != NULL && r->json != NULL && strcmp(jstr(r->json, "code"), "rate_limited") == 0);
	CHECK(placed >= HUB_CALLS_PER_MIN && placed < 2 * HUB_CALLS_PER_MIN);
}

/* A backward step does not keep a call ringing: it times out 30 s after
 * it was placed, by the monotonic clock. */
static void test_clock_back_ring_timeout(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	uint64_t t0;
	json_t *m;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	t0 = F.now;
	CALL(ALICE, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	F.wall_step_ms = -HOUR_MS;
	hub_tick(F.h, at(t0 + HUB_RING_TIMEOUT_MS - 1));
	EXPECT_NONE(ALICE);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	hub_tick(F.h, at(t0 + HUB_RING_TIMEOUT_MS + 1000));
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "reason"), "timeout");
	m = EXPECT(BOB, "hangup");
	CHECK_STR(jstr(m, "reason"), "timeout");
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	CHECK_EQ_INT(F.last_event, HUB_EV_CALL_ENDED);
	CHECK_EQ_INT(F.last_duration_ms, 0); /* never accepted */
	teardown();
}

/* A backward step does not hold a user rate_limited: a minute of the
 * monotonic clock refills the call placement bucket, and a second
 * refills the message bucket by HUB_MSGS_PER_S. */
static void test_clock_back_rate_limits(void)
{
	const char ping[] = "{\"type\":\"ping\",\"id\":1}";
	char call[HUB_CALL_ID_LEN + 1];
	struct sent_msg *r;
	int i, pongs = 0;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	empty_call_bucket(ALICE);
	F.wall_step_ms = -HOUR_MS;
	F.now += 61 * 1000;
	CALL(ALICE, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");

	/* The message bucket: a burst at one instant empties it. */
	open_s(1);
	for (i = 0; i < 2 * HUB_MSGS_PER_S; i++)
		hub_session_message(F.h, 1, ping, strlen(ping), at(F.now));
	drain(1);
	hub_session_message(F.h, 1, ping, strlen(ping), at(F.now));
	EXPECT_ERROR(1, "bad_request", "too many messages", NULL);
	F.wall_step_ms -= HOUR_MS;
	F.now += 1000;
	for (i = 0; i < HUB_MSGS_PER_S; i++)
		hub_session_message(F.h, 1, ping, strlen(ping), at(F.now));
	while ((r = take_raw(1)) != NULL)
		if (r->json != NULL && strcmp(jstr(r->json, "type"), "pong") == 0)
			pongs++;
	CHECK_EQ_INT(pongs, HUB_MSGS_PER_S);
	teardown();
}

/* A forward step neither ends a ringing call nor refills the call
 * placement bucket, nor the message bucket. */
static void test_clock_forward(void)
{
	const char ping[] = "{\"type\":\"ping\",\"id\":1}";
	char ringing[HUB_CALL_ID_LEN + 1];
	int i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(CAROL, "carol");
	CALL(ALICE, "carol", "[\"audio\"]", ringing);
	EXPECT(CAROL, "incoming");
	empty_call_bucket(ALICE);
	/* The bucket refills by one call in 2 s: try again at once. */
	F.wall_step_ms = DAY_MS;
	say(ALICE, "{\"type\":\"call\",\"id\":5,\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "rate_limited", NULL, "5");
	F.now += 1000;
	hub_tick(F.h, at(F.now));
	EXPECT_NONE(ALICE);
	EXPECT_NONE(CAROL);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	say(CAROL, "{\"type\":\"accept\",\"id\":6,\"call\":\"%s\"}", ringing);
	CHECK(id_is(EXPECT(CAROL, "accept.ok"), "6"));
	EXPECT(ALICE, "accepted");

	open_s(1);
	for (i = 0; i < 2 * HUB_MSGS_PER_S; i++)
		hub_session_message(F.h, 1, ping, strlen(ping), at(F.now));
	drain(1);
	F.wall_step_ms += DAY_MS;
	hub_session_message(F.h, 1, ping, strlen(ping), at(F.now));
	EXPECT_ERROR(1, "bad_request", "too many messages", NULL);
	teardown();
}

/* setup_ms and duration_ms are monotonic: a step in between neither
 * wraps them nor zeroes them. */
static void test_clock_durations(void)
{
	struct identity_user who = who_of("alice", NULL, 0);
	char call[HUB_CALL_ID_LEN + 1];
	uint64_t t;

	setup();
	open_s(ALICE);
	t = F.now;
	say(ALICE, "{\"type\":\"login\",\"id\":1,\"user\":\"alice\",\"password\":\"" PASSWORD "\"}");
	F.wall_step_ms = -HOUR_MS;
	F.now = t + 700;
	answer(ALICE, IDENTITY_OK, &who, NULL);
	EXPECT(ALICE, "login.ok");
	CHECK_EQ_INT(F.last_event, HUB_EV_LOGIN_OK);
	CHECK_EQ_INT(F.last_setup_ms, 700);

	ONLINE(BOB, "bob");
	t = F.now;
	CALL(ALICE, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	F.wall_step_ms -= HOUR_MS;
	F.now = t + 2000;
	say(BOB, "{\"type\":\"accept\",\"call\":\"%s\"}", call);
	EXPECT(BOB, "accept.ok");
	EXPECT(ALICE, "accepted");
	CHECK_EQ_INT(F.last_event, HUB_EV_CALL_ACCEPTED);
	CHECK_EQ_INT(F.last_setup_ms, 2000);

	F.wall_step_ms -= HOUR_MS;
	F.now = t + 2000 + 10 * 1000;
	say(ALICE, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
	EXPECT(BOB, "hangup");
	CHECK_EQ_INT(F.last_event, HUB_EV_CALL_ENDED);
	CHECK_EQ_INT(F.last_duration_ms, 10 * 1000);

	/* And the other way: a forward step does not lengthen them. */
	t = F.now;
	CALL(ALICE, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	F.wall_step_ms += DAY_MS;
	F.now = t + 2000;
	say(BOB, "{\"type\":\"accept\",\"call\":\"%s\"}", call);
	EXPECT(ALICE, "accepted");
	CHECK_EQ_INT(F.last_setup_ms, 2000);
	F.wall_step_ms += DAY_MS;
	F.now = t + 3000;
	say(BOB, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
	EXPECT(ALICE, "hangup");
	CHECK_EQ_INT(F.last_event, HUB_EV_CALL_ENDED);
	CHECK_EQ_INT(F.last_duration_ms, 1000);
	teardown();
}

static void each_session_since(void *ctx, const struct hub_session_info *s)
{
	if (s->id == ALICE)
		*(uint64_t *)ctx = s->since_ms;
}

static void each_call_since(void *ctx, const struct hub_call_info *c)
{
	*(uint64_t *)ctx = c->since_ms;
}

/* What others read as UNIX time stays on the wall clock: the expiry in
 * the credentials, the time the login checker gets, a token's expiry,
 * the since_ms of the admin views. */
static void test_clock_wall_times(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	uint64_t wall, since = 0;

	setup();
	F.wall_step_ms = -HOUR_MS;
	wall = at(F.now).wall_ms;
	open_s(ALICE);
	hub_each_session(F.h, each_session_since, &since);
	CHECK_EQ_INT(since, wall);
	login_at(__LINE__, ALICE, "alice", NULL, 0);
	CHECK_EQ_INT(F.login_now_s, wall / 1000);
	ONLINE(BOB, "bob");
	wall = at(F.now).wall_ms;
	CALL(ALICE, "bob", "[\"audio\"]", call);
	CHECK_EQ_INT(F.mint_expires, wall / 1000 + CREDS_S);
	hub_each_call(F.h, each_call_since, &since);
	CHECK_EQ_INT(since, wall);

	/* A token's exp is the issuer's UNIX time: a forward step past it
	 * ends the session, however little time has passed here. */
	open_s(ZOE);
	login_at(__LINE__, ZOE, "zoe", "team", at(F.now).wall_ms / 1000 + 60);
	F.wall_step_ms += HOUR_MS + 61 * 1000;
	say(ZOE, "{\"type\":\"ping\"}");
	EXPECT_ERROR(ZOE, "auth_failed", "token expired", NULL);
	CHECK_EQ_INT(F.ncloses, 1);
	teardown();
}

/* ---- the rest ----------------------------------------------------------- */

static void test_token_expiry(void)
{
	uint64_t exp_s;

	setup();
	open_s(ZOE);
	exp_s = F.now / 1000 + 10;
	login_at(__LINE__, ZOE, "zoe", "team", exp_s);
	say(ZOE, "{\"type\":\"ping\"}");
	EXPECT(ZOE, "pong");
	/* Still valid in its last second. */
	F.now = exp_s * 1000 + 999;
	say(ZOE, "{\"type\":\"ping\"}");
	EXPECT(ZOE, "pong");
	CHECK_EQ_INT(F.ncloses, 0);
	/* Past it: the message is not answered; an error says why the
	 * session closes (protocol.md: every close is explained first). */
	F.now = (exp_s + 1) * 1000;
	say(ZOE, "{\"type\":\"contacts\",\"id\":3}");
	EXPECT_ERROR(ZOE, "auth_failed", "token expired", NULL);
	EXPECT_NONE(ZOE);
	CHECK_EQ_INT(F.ncloses, 1);
	CHECK_EQ_INT(F.closes[0].session, ZOE);
	teardown();
}

static void test_set_policy(void)
{
	char err[256];
	struct policy *audio_only = policy_parse(POLICY_AUDIO_ONLY, strlen(POLICY_AUDIO_ONLY),
	    err, sizeof(err));
	json_t *list;

	CHECK(audio_only != NULL);
	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");

	/* No policy: deny everything. */
	hub_set_policy(F.h, NULL);
	say(ALICE, "{\"type\":\"contacts\"}");
	list = json_object_get(EXPECT(ALICE, "contacts.ok"), "contacts");
	CHECK(json_is_array(list));
	CHECK_EQ_INT(json_array_size(list), 0);
	say(ALICE, "{\"type\":\"call\",\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(ALICE, "forbidden", "this call is not allowed", NULL);

	/* Another policy takes effect at once. */
	hub_set_policy(F.h, audio_only);
	say(ALICE, "{\"type\":\"contacts\"}");
	list = json_object_get(EXPECT(ALICE, "contacts.ok"), "contacts");
	CHECK_EQ_INT(media_bits(json_object_get(contact(list, "bob"), "media")), POLICY_AUDIO);
	CHECK(contact(list, "erin") == NULL);
	say(ALICE, "{\"type\":\"call\",\"to\":\"bob\",\"media\":[\"video\"]}");
	EXPECT_ERROR(ALICE, "forbidden", NULL, NULL);
	say(ALICE, "{\"type\":\"call\",\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT(ALICE, "call.ok");
	EXPECT(BOB, "incoming");
	teardown();
	policy_free(audio_only);
}

/* A policy change decides live calls again: the audio+video call that the
 * audio-only policy no longer allows ends at once with reason "policy" on
 * both sides (and its relay allocations go through call_ended), while an
 * audio call that is still allowed goes on. */
static void test_set_policy_ends_calls(void)
{
	char err[256], call[HUB_CALL_ID_LEN + 1], audio_call[HUB_CALL_ID_LEN + 1];
	struct policy *audio_only = policy_parse(POLICY_AUDIO_ONLY, strlen(POLICY_AUDIO_ONLY),
	    err, sizeof(err));
	json_t *m;

	CHECK(audio_only != NULL);
	setup();
	accepted_call(call);
	ONLINE(CAROL, "carol");
	CALL(CAROL, "alice", "[\"audio\"]", audio_call);
	EXPECT(ALICE, "incoming");
	CHECK_EQ_INT(hub_call_count(F.h), 2);
	hub_set_policy(F.h, audio_only);
	m = EXPECT(ALICE, "hangup");
	CHECK_STR(jstr(m, "call"), call);
	CHECK_STR(jstr(m, "reason"), "policy");
	m = EXPECT(BOB, "hangup");
	CHECK_STR(jstr(m, "reason"), "policy");
	CHECK_EQ_INT(F.nended, 1);
	CHECK_STR(F.ended[0], call);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	EXPECT_NONE(CAROL);
	/* No policy at all: everything ends. */
	hub_set_policy(F.h, NULL);
	m = EXPECT(CAROL, "hangup");
	CHECK_STR(jstr(m, "reason"), "policy");
	CHECK_EQ_INT(hub_call_count(F.h), 0);
	teardown();
	policy_free(audio_only);
}

/* The caps hold for the callee too: HUB_MAX_CALLS_PER_USER calls
 * ringing for it (from as many callers), or as many answered, and it is
 * busy. */
static void test_callee_busy(void)
{
	static const uint64_t callers[HUB_MAX_CALLS_PER_USER] = { ALICE, CAROL, 21, 22 };
	char calls[HUB_MAX_CALLS_PER_USER][HUB_CALL_ID_LEN + 1], call[HUB_CALL_ID_LEN + 1];
	size_t i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(CAROL, "carol");
	ONLINE_IN(21, "fred", "team");
	ONLINE_IN(22, "gail", "team");
	ONLINE_IN(23, "hugo", "team");
	for (i = 0; i < HUB_MAX_CALLS_PER_USER; i++)
		CALL(callers[i], "bob", "[\"audio\"]", calls[i]);
	drain(BOB);
	/* Not a strike: hugo cannot know, and may try again. */
	for (i = 0; i < HUB_MAX_STRIKES + 1; i++) {
		say(23, "{\"type\":\"call\",\"id\":1,\"to\":\"bob\",\"media\":[\"audio\"]}");
		EXPECT_ERROR(23, "bad_request", "the user is busy", "1");
	}
	CHECK_EQ_INT(F.ncloses, 0);
	EXPECT_NONE(BOB);
	CHECK_EQ_INT(hub_call_count(F.h), HUB_MAX_CALLS_PER_USER);
	/* Answered, they count as much. */
	for (i = 0; i < HUB_MAX_CALLS_PER_USER; i++) {
		say(BOB, "{\"type\":\"accept\",\"call\":\"%s\"}", calls[i]);
		EXPECT(BOB, "accept.ok");
		EXPECT(callers[i], "accepted");
	}
	say(23, "{\"type\":\"call\",\"id\":2,\"to\":\"bob\",\"media\":[\"audio\"]}");
	EXPECT_ERROR(23, "bad_request", "the user is busy", "2");
	/* One ends: hugo gets through. */
	say(ALICE, "{\"type\":\"hangup\",\"call\":\"%s\"}", calls[0]);
	EXPECT(BOB, "hangup");
	CALL(23, "bob", "[\"audio\"]", call);
	EXPECT(BOB, "incoming");
	teardown();
}

/* Over-long fields: a failed attempt answered at once, auth_failed with
 * what is wrong, without the backend and without a strike, but counted
 * among the connection's login attempts. The longest allowed values go
 * to the backend. */
static void test_login_too_long(void)
{
	char name[NAME_LEN_TEST + 2], pw[PASSWORD_LEN_TEST + 2], *token;
	uint64_t sid;
	int i;

	setup();
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';            /* 64 characters */
	memset(pw, 'p', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';                /* 1025 bytes */
	token = malloc(TOKEN_LEN_TEST + 2);
	CHECK(token != NULL);
	if (token == NULL)
		return;
	memset(token, 't', TOKEN_LEN_TEST + 1);
	token[TOKEN_LEN_TEST + 1] = '\0';         /* 8193 bytes */

	sid = fresh_sid();
	say_json(sid, json_pack("{s:s, s:i, s:s, s:s}", "type", "login", "id", 1,
	    "user", name, "password", "pw"));
	EXPECT_ERROR(sid, "auth_failed", "user name too long", "1");
	CHECK_EQ_INT(F.last_event, HUB_EV_LOGIN_FAILED);
	CHECK_STR(F.last_reason, "user name too long");
	CHECK_STR(F.last_user, "");
	say_json(sid, json_pack("{s:s, s:i, s:s, s:s}", "type", "login", "id", 2,
	    "user", "alice", "password", pw));
	EXPECT_ERROR(sid, "auth_failed", "password too long", "2");
	CHECK_STR(F.last_user, "alice");
	say_json(sid, json_pack("{s:s, s:i, s:s}", "type", "login", "id", 3, "token", token));
	EXPECT_ERROR(sid, "auth_failed", "token too long", "3");
	CHECK_EQ_INT(F.nlogins, 0);
	/* Two more make five attempts: still open, no strike... */
	for (i = 0; i < 2; i++) {
		say_json(sid, json_pack("{s:s, s:i, s:s, s:s}", "type", "login", "id", 4,
		    "user", name, "password", "pw"));
		EXPECT_ERROR(sid, "auth_failed", "user name too long", "4");
	}
	CHECK_EQ_INT(F.ncloses, 0);
	/* ... and the sixth is refused and closes, as after five failures. */
	say(sid, "{\"type\":\"login\",\"id\":5,\"user\":\"alice\",\"password\":\"" PASSWORD "\"}");
	EXPECT_ERROR(sid, "auth_failed", "authentication failed", "5");
	CHECK_EQ_INT(F.nlogins, 0);
	CHECK_EQ_INT(F.ncloses, 1);
	CHECK_STR(F.closes[0].why, "too many login attempts");
	close_s(sid);

	/* The longest name and password are the backend's to judge. */
	sid = fresh_sid();
	name[sizeof(name) - 2] = '\0';
	pw[sizeof(pw) - 2] = '\0';
	say_json(sid, json_pack("{s:s, s:i, s:s, s:s}", "type", "login", "id", 6,
	    "user", name, "password", pw));
	CHECK_EQ_INT(F.nlogins, 1);
	CHECK_STR(F.user, name);
	EXPECT_NONE(sid);
	free(token);
	teardown();
}

/* Another session of the callee answered an instant before: accept,
 * reject and hangup from the other one are answered but not strikes. The
 * caller accepting or rejecting its own call still is one. */
static void test_answered_elsewhere(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	int i;

	setup();
	accepted_call(call);
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		say(BOB2, "{\"type\":\"accept\",\"id\":1,\"call\":\"%s\"}", call);
		EXPECT_ERROR(BOB2, "bad_request", "no ringing call to accept", "1");
		say(BOB2, "{\"type\":\"reject\",\"id\":2,\"call\":\"%s\"}", call);
		EXPECT_ERROR(BOB2, "bad_request", "no ringing call to reject", "2");
		say(BOB2, "{\"type\":\"hangup\",\"id\":3,\"call\":\"%s\"}", call);
		EXPECT_ERROR(BOB2, "bad_request", "no call to hang up", "3");
		/* The answering session itself, a second time (a double click). */
		say(BOB, "{\"type\":\"accept\",\"id\":4,\"call\":\"%s\"}", call);
		EXPECT_ERROR(BOB, "bad_request", "no ringing call to accept", "4");
	}
	CHECK_EQ_INT(F.ncloses, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	EXPECT_NONE(ALICE);
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		say(ALICE, "{\"type\":\"accept\",\"id\":5,\"call\":\"%s\"}", call);
		EXPECT_ERROR(ALICE, "bad_request", "no ringing call to accept", "5");
	}
	CHECK_EQ_INT(F.ncloses, 1);
	CHECK_EQ_INT(F.closes[0].session, ALICE);
	teardown();
}

/* A callee's hangup on a call that still rings is a reject: the caller
 * and the callee's other sessions hear "rejected", the sender gets what a
 * hangup gets, and it is no strike. */
static void test_callee_hangup_ringing(void)
{
	char call[HUB_CALL_ID_LEN + 1];
	json_t *m;
	int i;

	setup();
	ONLINE(ALICE, "alice");
	ONLINE(BOB, "bob");
	ONLINE(BOB2, "bob");
	for (i = 0; i < HUB_MAX_STRIKES + 1; i++) {
		CALL(ALICE, "bob", "[\"audio\"]", call);
		drain(BOB);
		drain(BOB2);
		if (i == 0) {
			say(BOB2, "{\"type\":\"hangup\",\"id\":7,\"call\":\"%s\"}", call);
			CHECK(id_is(EXPECT(BOB2, "hangup.ok"), "7"));
		} else {
			say(BOB2, "{\"type\":\"hangup\",\"call\":\"%s\"}", call);
		}
		EXPECT_NONE(BOB2);
		m = EXPECT(ALICE, "hangup");
		CHECK_STR(jstr(m, "call"), call);
		CHECK_STR(jstr(m, "reason"), "rejected");
		m = EXPECT(BOB, "hangup");
		CHECK_STR(jstr(m, "call"), call);
		CHECK_STR(jstr(m, "reason"), "rejected");
		EXPECT_NONE(ALICE);
		EXPECT_NONE(BOB);
		CHECK_EQ_INT(F.last_event, HUB_EV_CALL_ENDED);
		CHECK_STR(F.last_reason, "rejected");
		CHECK_EQ_INT(hub_call_count(F.h), 0);
		CHECK_EQ_INT(F.nended, (size_t)i + 1);
	}
	CHECK_EQ_INT(F.ncloses, 0);
	teardown();
}

/* ---- SDP media against the call's media ---- */

#define SDP_VIDEO \
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\n" \
	"c=IN IP4 0.0.0.0\r\n" \
	"a=mid:1\r\n" \
	"a=rtpmap:96 VP8/90000\r\n"
#define SDP_DATA \
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" \
	"c=IN IP4 0.0.0.0\r\n" \
	"a=mid:2\r\n" \
	"a=sctp-port:5000\r\n"
/* RFC 8843: port 0 with bundle-only still carries media in the group. */
#define SDP_DATA_BUNDLE_ONLY \
	"m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\n" \
	"c=IN IP4 0.0.0.0\r\n" \
	"a=bundle-only\r\n" \
	"a=mid:2\r\n" \
	"a=sctp-port:5000\r\n"
#define SDP_TEXT \
	"m=text 9 UDP/TLS/RTP/SAVPF 98\r\n" \
	"c=IN IP4 0.0.0.0\r\n" \
	"a=mid:3\r\n" \
	"a=rtpmap:98 t140/1000\r\n"

/* An sdp message that must be refused as forbidden, naming medium, and
 * reach nobody. */
static void sdp_refused_at(int line, uint64_t from, uint64_t to, const char *call,
    const char *kind, const char *sdp, const char *medium, const char *message)
{
	unsigned notes = F.nnotes;
	json_t *m;

	say_json(from, json_pack("{s:s, s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "id", "s",
	    "call", call, "sdp", "type", kind, "sdp", sdp));
	m = expect_error_at(line, from, "forbidden", message, "\"s\"");
	check_str_at(line, "call", jstr(m, "call"), call);
	CHECK_AT(line, pending(to) == 0 && pending(from) == 0);
	CHECK_AT(line, F.nnotes == notes + 1 && F.last_event == HUB_EV_SDP_REFUSED);
	check_str_at(line, "medium", F.last_medium, medium);
	check_str_at(line, "reason", F.last_reason, kind);
	check_str_at(line, "event call", F.last_call, call);
}

#define SDP_REFUSED(from, to, call, kind, sdp, medium, message) \
	sdp_refused_at(__LINE__, (from), (to), (call), (kind), (sdp), (medium), (message))

static void test_sdp_media(void)
{
	char call[HUB_CALL_ID_LEN + 1], audio[HUB_CALL_ID_LEN + 1];
	json_t *m;
	int i;

	setup();
	ONLINE(CAROL, "carol");
	accepted_call(call);        /* audio and video */

	/* Data, a text stream, or data in a bundle-only section with port
	 * 0: refused in either direction, as offer or answer. Not strikes,
	 * and the call goes on. */
	for (i = 0; i < HUB_MAX_STRIKES; i++) {
		SDP_REFUSED(ALICE, BOB, call, "offer", SDP_HEAD SDP_TAIL SDP_DATA, "data",
		    "the call does not allow data");
		SDP_REFUSED(BOB, ALICE, call, "answer", SDP_HEAD SDP_TAIL SDP_DATA_BUNDLE_ONLY,
		    "data", "the call does not allow data");
		SDP_REFUSED(BOB, ALICE, call, "offer", SDP_HEAD SDP_TAIL SDP_TEXT, "other",
		    "the call does not allow media of other types");
	}
	CHECK_STR(F.last_user, "bob");
	CHECK_STR(F.last_peer, "alice");
	CHECK_EQ_INT(F.ncloses, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 1);
	EXPECT_NONE(BOB2);

	/* What the call allows passes, in a renegotiation too. */
	say_json(ALICE, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "call", call,
	    "sdp", "type", "offer", "sdp", SDP_HEAD SDP_TAIL SDP_VIDEO));
	m = EXPECT(BOB, "sdp");
	CHECK(strstr(jstr(json_object_get(m, "sdp"), "sdp"), "m=video 9 ") != NULL);
	say_json(BOB, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "call", call,
	    "sdp", "type", "answer", "sdp", SDP_HEAD SDP_TAIL SDP_VIDEO));
	EXPECT(ALICE, "sdp");
	EXPECT_NONE(ALICE);

	/* An audio call: video is refused from both sides; audio passes. */
	CALL(CAROL, "alice", "[\"audio\"]", audio);
	drain(ALICE);
	say(ALICE, "{\"type\":\"accept\",\"call\":\"%s\"}", audio);
	EXPECT(ALICE, "accept.ok");
	EXPECT(CAROL, "accepted");
	SDP_REFUSED(CAROL, ALICE, audio, "offer", SDP_HEAD SDP_TAIL SDP_VIDEO, "video",
	    "the call does not allow video");
	SDP_REFUSED(ALICE, CAROL, audio, "answer", SDP_HEAD SDP_TAIL SDP_VIDEO SDP_DATA, "video",
	    "the call does not allow video");
	say_json(CAROL, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "call", audio,
	    "sdp", "type", "offer", "sdp", OFFER));
	EXPECT(ALICE, "sdp");
	/* No m= section at all (before any track or channel) carries nothing. */
	say_json(CAROL, json_pack("{s:s, s:s, s:{s:s, s:s}}", "type", "sdp", "call", audio,
	    "sdp", "type", "offer", "sdp", "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"));
	EXPECT(ALICE, "sdp");
	CHECK_EQ_INT(F.ncloses, 0);
	CHECK_EQ_INT(hub_call_count(F.h), 2);
	teardown();
}

/* Teardown frees a hub with sessions, pending logins, ringing and
 * accepted calls in it (ASan checks that nothing leaks). */
static void test_free_busy(void)
{
	char call[HUB_CALL_ID_LEN + 1];

	setup();
	ONLINE(CAROL, "carol");
	accepted_call(call);
	CALL(CAROL, "alice", "[\"audio\"]", call);
	open_s(20);
	say(20, "{\"type\":\"login\",\"id\":{\"x\":1},\"user\":\"dave\",\"password\":\"p\"}");
	open_s(21);
	say(21, "{\"type\":\"login\",\"id\":\"keep-me\",\"user\":\"dave\",\"password\":\"p\"}");
	CHECK_EQ_INT(hub_session_count(F.h), 6);
	CHECK_EQ_INT(hub_call_count(F.h), 2);
	teardown();
	hub_free(NULL);
}

int main(void)
{
	char err[256];
	struct policy *p = policy_parse(POLICY_TEXT, strlen(POLICY_TEXT), err, sizeof(err));

	if (p == NULL) {
		fprintf(stderr, "test policy does not parse: %s\n", err);
		return 1;
	}
	F.policy = p;
	test_ping();
	test_before_login();
	test_login_request();
	test_login_control_characters();
	test_login_failure();
	test_login_done_edge();
	test_contacts();
	test_contacts_push();
	test_call_decisions();
	test_call_ok();
	test_reject();
	test_hangup();
	test_sdp();
	test_sdp_bad();
	test_candidate();
	test_candidate_bad();
	test_close_during_calls();
	test_close_takes_effect();
	test_ring_timeout();
	test_strikes();
	test_rate_limit();
	test_oversized();
	test_malformed();
	test_counts();
	test_call_limit();
	test_token_expiry();
	test_set_policy();
	test_set_policy_ends_calls();
	test_callee_busy();
	test_ringing_per_pair();
	test_call_rate();
	test_clock_back_ring_timeout();
	test_clock_back_rate_limits();
	test_clock_forward();
	test_clock_durations();
	test_clock_wall_times();
	test_login_too_long();
	test_answered_elsewhere();
	test_callee_hangup_ringing();
	test_sdp_media();
	test_free_busy();
	policy_free(p);
	return check_done("test_hub");
}
