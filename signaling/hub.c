/* The signaling protocol engine (see hub.h).
 *
 * Sessions are indexed by id and by user name (a user may be logged in
 * from several places; an incoming call rings them all). Calls are
 * indexed by id. Every message is parsed with limits, rate-limited per
 * session and dispatched by a table; anything malformed or out of order
 * gets bad_request and a strike, and enough strikes close the session.
 * What an honest client can run into (a call that just ended or was just
 * answered elsewhere, a busy callee, a description with media the call
 * does not carry) is answered, but is not a strike. */
#include "signaling/hub.h"

#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/b64url.h"
#include "common/clock.h"
#include "common/fnv.h"
#include "signaling/directory.h"
#include "signaling/message.h"
#include "signaling/sdp_filter.h"

#define BUCKETS 1024
#define NAME_MAX_LEN (IDENTITY_NAME_MAX - 1)
#define PASSWORD_MAX_LEN 1024
#define TOKEN_MAX_LEN 8192
#define TOTP_MAX_LEN 16
#define SDP_MID_MAX 32
#define CALL_TOKEN 1000           /* one call, in the call bucket's unit */
#define SWEEP_EVERY_MS (10 * 1000)

/* Times are on the monotonic clock (struct clock_pair in hub.h) unless
 * their comment says UNIX time. */
struct session {
	uint64_t id;
	uint64_t since_ms;        /* UNIX time: shown by the admin views */
	struct sockaddr_storage from;
	bool authed;
	bool login_pending;
	json_t *login_id;         /* the pending login's id, to echo */
	char login_user[IDENTITY_NAME_MAX]; /* who the pending login claims to be */
	uint64_t login_ms;        /* when the pending login was asked for */
	struct identity_user who;
	unsigned login_attempts;
	unsigned strikes;
	uint64_t tokens_milli;    /* rate limit bucket, in thousandths of a message */
	uint64_t tokens_ms;
	struct session *next_id;  /* chain of the id index */
	struct session *next_user;/* sessions of the same user */
	/* Closed by the hub or the adapter: forgotten when the entry point
	 * that closed it returns (see hub_leave()). */
	bool closing;
	struct session *next_closing;
};

struct user_entry {
	char name[IDENTITY_NAME_MAX];
	struct session *sessions;
	/* Calls this user placed (ringing or answered) and calls it answered;
	 * calls ringing for it are counted apart, so that callers cannot
	 * fill the slots it needs to call out. */
	size_t ncalls;
	size_t nringing_in;
	struct call *placed;      /* the calls counted in ncalls that it placed */
	/* Call placement bucket (cfg.calls_per_min), in thousandths of a
	 * call, as of calls_ms (monotonic). The entry outlives the user's
	 * sessions until the bucket is full again, so a new connection does
	 * not refill it. */
	uint64_t calls_milli;
	uint64_t calls_ms;
	struct user_entry *next;
};

enum call_state { CALL_RINGING, CALL_ACCEPTED };

struct call {
	char id[HUB_CALL_ID_LEN + 1];
	char caller[IDENTITY_NAME_MAX];
	char callee[IDENTITY_NAME_MAX];
	uint64_t caller_sid;
	uint64_t callee_sid;      /* 0 while ringing */
	unsigned media;
	bool record;
	char rule[POLICY_NAME_MAX];
	enum call_state state;
	uint64_t since_ms;        /* UNIX time: shown by the admin views */
	uint64_t placed_ms;       /* the same instant, monotonic: for setup_ms */
	uint64_t accepted_ms;
	uint64_t ring_deadline_ms;
	uint64_t expires_s;       /* UNIX time: credentials minted for it expire then */
	struct call *next;
	struct call *next_placed; /* the caller's user_entry.placed */
};

struct hub {
	struct hub_config cfg;
	struct hub_ops ops;
	struct directory *directory; /* contacts: local users and the policy's names */
	struct session *sessions[BUCKETS];
	struct user_entry *users[BUCKETS];
	struct call *calls[BUCKETS];
	size_t nsessions, ncalls;
	struct clock_pair now;      /* of the latest entry point */
	uint64_t swept_ms;        /* when idle user entries were last dropped */
	/* How deep in the hub's entry points we are, and the sessions closed
	 * meanwhile, which are forgotten when the outermost one returns. */
	unsigned depth;
	struct session *closing;
};

/* One incoming message being handled. */
struct msg_ctx {
	struct hub *h;
	struct session *s;
	json_t *msg;
	json_t *id;               /* borrowed: echoed in the reply */
	struct clock_pair now;
};

static void emit(struct hub *h, struct hub_event *e)
{
	if (h->ops.event != NULL)
		h->ops.event(h->ops.ctx, e);
}

/* --- indexes ----------------------------------------------------------- */

static struct session *session_find(struct hub *h, uint64_t id)
{
	struct session *s;

	for (s = h->sessions[id % BUCKETS]; s != NULL; s = s->next_id)
		if (s->id == id)
			return s;
	return NULL;
}

/* A full call placement bucket: cfg.calls_per_min calls. */
static uint64_t call_bucket_full(const struct hub *h)
{
	return (uint64_t)h->cfg.calls_per_min * CALL_TOKEN;
}

static struct user_entry *user_find(struct hub *h, const char *name, bool create)
{
	size_t b = fnv1a_str(name) % BUCKETS;
	struct user_entry *u;

	for (u = h->users[b]; u != NULL; u = u->next)
		if (strcmp(u->name, name) == 0)
			return u;
	if (!create)
		return NULL;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	snprintf(u->name, sizeof(u->name), "%s", name);
	u->calls_milli = call_bucket_full(h);
	u->calls_ms = h->now.mono_ms;
	u->next = h->users[b];
	h->users[b] = u;
	return u;
}

/* u's call placement bucket at mono_ms: cfg.calls_per_min come back a
 * minute, up to as many. */
static uint64_t call_bucket(const struct hub *h, const struct user_entry *u, uint64_t mono_ms)
{
	uint64_t elapsed = clock_elapsed_ms(mono_ms, u->calls_ms), v;

	if (elapsed >= 60 * 1000)
		return call_bucket_full(h);
	v = u->calls_milli + elapsed * call_bucket_full(h) / (60 * 1000);
	return v < call_bucket_full(h) ? v : call_bucket_full(h);
}

/* Drops a user entry nobody needs any more: no session, no call, and a
 * full call bucket (else hub_tick() drops it later). */
static void user_gc(struct hub *h, struct user_entry *u)
{
	struct user_entry **pp = &h->users[fnv1a_str(u->name) % BUCKETS];

	if (u->sessions != NULL || u->ncalls > 0 || u->nringing_in > 0 ||
	    call_bucket(h, u, h->now.mono_ms) < call_bucket_full(h))
		return;
	while (*pp != u)
		pp = &(*pp)->next;
	*pp = u->next;
	free(u);
}

static struct call *call_find(struct hub *h, const char *id)
{
	struct call *c;

	for (c = h->calls[fnv1a_str(id) % BUCKETS]; c != NULL; c = c->next)
		if (strcmp(c->id, id) == 0)
			return c;
	return NULL;
}

/* --- sending ----------------------------------------------------------- */

static void send_json(struct hub *h, uint64_t sid, json_t *msg)
{
	size_t len;
	char *text;

	if (msg == NULL)
		return;
	text = message_dump(msg, &len);
	json_decref(msg);
	if (text == NULL)
		return;
	h->ops.send(h->ops.ctx, sid, text, len);
	free(text);
}

/* Sends to every session of a user. */
static void send_user(struct hub *h, const char *user, json_t *msg)
{
	struct user_entry *u = user_find(h, user, false);
	struct session *s;

	if (u != NULL)
		for (s = u->sessions; s != NULL; s = s->next_user)
			send_json(h, s->id, json_incref(msg));
	json_decref(msg);
}

static void reply(struct msg_ctx *m, json_t *msg)
{
	if (msg != NULL && m->id != NULL)
		json_object_set(msg, "id", m->id);
	send_json(m->h, m->s->id, msg);
}

static void reply_error(struct msg_ctx *m, const char *code, const char *text)
{
	reply(m, json_pack("{s:s, s:s, s:s}", "type", "error", "code", code,
	    "message", text));
}

/* --- closing ----------------------------------------------------------- */

/* The adapter closes a connection only after what is queued for it has
 * been sent: seconds later, or never when the client stops reading and
 * keeps sending. The hub does not wait for that. A session closed, by
 * the hub or by the adapter, is forgotten when the outermost entry point
 * returns: its calls end and their credentials are revoked then, however
 * long the connection lingers. Not at once, because the entry point may
 * still hold the session or walk the lists that forgetting changes (the
 * sessions of a user, every session, the calls). */
static void session_forget(struct hub *h, struct session *s);

static void hub_enter(struct hub *h)
{
	h->depth++;
}

static void hub_leave(struct hub *h)
{
	struct session *s;

	if (h->depth > 1) {
		h->depth--;
		return;
	}
	/* Still entered meanwhile: forgetting a session ends its calls, and
	 * the hangups sent may close more sessions (too slow a reader),
	 * which join the list. */
	while ((s = h->closing) != NULL) {
		h->closing = s->next_closing;
		s->next_closing = NULL;
		session_forget(h, s);
	}
	h->depth--;
}

/* Marks s for hub_leave() to forget. */
static void session_closing(struct hub *h, struct session *s)
{
	if (s->closing)
		return;
	s->closing = true;
	s->next_closing = h->closing;
	h->closing = s;
}

/* The hub closes s: the adapter sends what is queued (the error that
 * explains the close), then closes the connection. Marked first, so
 * that the adapter reporting this close back (hub_session_closing())
 * finds it known. */
static void session_close(struct hub *h, struct session *s, const char *why)
{
	if (s->closing)
		return;
	session_closing(h, s);
	h->ops.close(h->ops.ctx, s->id, why);
}

/* Counts one strike against a session whose answer is already queued;
 * after HUB_MAX_STRIKES the session is closed (that answer is sent
 * first). */
static void add_strike(struct hub *h, struct session *s)
{
	if (++s->strikes >= HUB_MAX_STRIKES) {
		struct hub_event e = { .kind = HUB_EV_ABUSE, .session = s->id,
		    .source = (const struct sockaddr *)&s->from,
		    .user = s->authed ? s->who.name : NULL, .reason = "bad requests",
		    .count = s->strikes };
		emit(h, &e);
		session_close(h, s, "too many bad requests");
	}
}

/* A malformed or out-of-order message: answered bad_request and counted. */
static void strike(struct hub *h, struct session *s, json_t *id, const char *why)
{
	json_t *msg = json_pack("{s:s, s:s, s:s}", "type", "error", "code",
	    "bad_request", "message", why);

	if (msg != NULL && id != NULL)
		json_object_set(msg, "id", id);
	send_json(h, s->id, msg);
	add_strike(h, s);
}

static void bad_request(struct msg_ctx *m, const char *why)
{
	strike(m->h, m->s, m->id, why);
}

/* A request the current state refuses, but that a well-behaved client
 * sends too, because the state changed an instant before for reasons it
 * cannot see: the other side or another of the user's sessions acted, the
 * callee is in too many calls. Answered bad_request like a bad request,
 * but not a strike: DESIGN.md closes a connection only after repeated
 * abuse, and five calls to a busy user are not abuse. */
static void refuse(struct msg_ctx *m, const char *why)
{
	reply_error(m, "bad_request", why);
}

/* A message about a call that does not exist (any more): answered, but
 * not a strike. The other side or the server may have ended the call an
 * instant before (hangup, policy change, alert), so a well-behaved client
 * sends these too: a late hangup, accept or trickled candidate. */
static void no_such_call(struct msg_ctx *m, const char *why)
{
	if (message_str(m->msg, "call", HUB_CALL_ID_LEN) == NULL)
		bad_request(m, why); /* no call id at all: malformed */
	else
		refuse(m, why);
}

/* Contacts lists and pushes yield this often: at most a fraction of a
 * millisecond of media waits for them at a time (gateway/state_lock.h). */
#define YIELD_EVERY 32

static void hub_yield(struct hub *h)
{
	if (h->ops.yield != NULL)
		h->ops.yield(h->ops.ctx);
}

static void hub_yield_cb(void *ctx)
{
	hub_yield(ctx);
}

static json_t *media_json(unsigned media)
{
	json_t *a = json_array();
	unsigned bit;

	for (bit = 1; bit <= POLICY_DATA; bit <<= 1)
		if (media & bit)
			json_array_append_new(a, json_string(policy_media_name(bit)));
	return a;
}

/* --- names and subjects ------------------------------------------------ */

static bool name_ok(const char *s)
{
	size_t i, n;

	if (s == NULL || (n = strlen(s)) == 0 || n > NAME_MAX_LEN || s[0] == '-' || s[0] == '.')
		return false;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-'))
			return false;
	}
	return true;
}

/* An sdpMid is forwarded as it came, and the other side matches it
 * against, or writes it into, an SDP: only an identification-tag (RFC
 * 5888 §4: token, RFC 8866 §9), so that it cannot carry a line of SDP
 * or anything else but a name. */
static bool mid_ok(const char *s)
{
	size_t i, n;

	if (s == NULL || (n = strlen(s)) == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		/* token-char = %x21 / %x23-27 / %x2A-2B / %x2D-2E / %x30-39 /
		 *              %x41-5A / %x5E-7E */
		if (!(c == 0x21 || (c >= 0x23 && c <= 0x27) || c == 0x2a || c == 0x2b ||
		    c == 0x2d || c == 0x2e || (c >= 0x30 && c <= 0x39) ||
		    (c >= 0x41 && c <= 0x5a) || (c >= 0x5e && c <= 0x7e)))
			return false;
	}
	return true;
}

/* A policy subject over an identity's groups (pointers into who). */
struct subject {
	struct policy_subject ps;
	const char *groups[IDENTITY_MAX_GROUPS];
};

static void subject_from(struct subject *sub, const struct identity_user *who)
{
	size_t i;

	for (i = 0; i < who->ngroups && i < IDENTITY_MAX_GROUPS; i++)
		sub->groups[i] = who->groups[i];
	sub->ps.user = who->name;
	sub->ps.groups = sub->groups;
	sub->ps.ngroups = i;
}

/* Who a user is for the policy: the identity of a live session (token
 * groups included), else the local user database's groups. */
static void identity_of(struct hub *h, const char *user, struct identity_user *out)
{
	struct user_entry *u = user_find(h, user, false);

	memset(out, 0, sizeof(*out));
	if (u != NULL && u->sessions != NULL) {
		*out = u->sessions->who;
		return;
	}
	snprintf(out->name, sizeof(out->name), "%s", user);
	if (h->cfg.identity != NULL)
		(void)identity_user_groups(h->cfg.identity, user, out);
}

/* --- calls ------------------------------------------------------------- */

static json_t *ice_servers_json(struct hub *h, const char *user, const char *call,
    uint64_t expires_s)
{
	char username[512], password[128];
	json_t *urls, *servers;
	size_t i;

	if (h->ops.mint(h->ops.ctx, user, call, expires_s, username, sizeof(username),
	    password, sizeof(password)) != 0)
		return NULL;
	urls = json_array();
	for (i = 0; i < h->cfg.ice.nurls; i++)
		json_array_append_new(urls, json_string(h->cfg.ice.urls[i]));
	servers = json_pack("[{s:o, s:s, s:s}]", "urls", urls, "username", username,
	    "credential", password);
	OPENSSL_cleanse(password, sizeof(password));
	return servers;
}

static void call_end(struct hub *h, struct call *c, const char *reason,
    uint64_t except_sid)
{
	struct call **pp = &h->calls[fnv1a_str(c->id) % BUCKETS];
	struct user_entry *u;
	json_t *msg;

	msg = json_pack("{s:s, s:s, s:s}", "type", "hangup", "call", c->id,
	    "reason", reason);
	/* The caller's session, and the callee's (or, while ringing, every
	 * session of the callee), except the one that ended it. */
	if (c->caller_sid != except_sid && session_find(h, c->caller_sid) != NULL)
		send_json(h, c->caller_sid, json_incref(msg));
	if (c->state == CALL_ACCEPTED) {
		if (c->callee_sid != except_sid && session_find(h, c->callee_sid) != NULL)
			send_json(h, c->callee_sid, json_incref(msg));
	} else if ((u = user_find(h, c->callee, false)) != NULL) {
		struct session *s;
		for (s = u->sessions; s != NULL; s = s->next_user)
			if (s->id != except_sid)
				send_json(h, s->id, json_incref(msg));
	}
	json_decref(msg);
	{
		struct hub_event e = { .kind = HUB_EV_CALL_ENDED, .user = c->caller,
		    .peer = c->callee, .call = c->id, .rule = c->rule, .reason = reason,
		    .media = c->media, .duration_ms = c->state == CALL_ACCEPTED ?
		    clock_elapsed_ms(h->now.mono_ms, c->accepted_ms) : 0 };
		emit(h, &e);
	}
	h->ops.call_ended(h->ops.ctx, c->id, c->expires_s);
	while (*pp != c)
		pp = &(*pp)->next;
	*pp = c->next;
	h->ncalls--;
	if ((u = user_find(h, c->caller, false)) != NULL) {
		for (pp = &u->placed; *pp != NULL && *pp != c; pp = &(*pp)->next_placed)
			;
		if (*pp == c)
			*pp = c->next_placed;
		u->ncalls--;
		user_gc(h, u);
	}
	if ((u = user_find(h, c->callee, false)) != NULL) {
		if (c->state == CALL_RINGING)
			u->nringing_in--;
		else
			u->ncalls--;
		user_gc(h, u);
	}
	free(c);
}

static int new_call_id(char out[HUB_CALL_ID_LEN + 1])
{
	uint8_t raw[16];

	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return -1;
	/* 22 characters carry the 128 random bits. */
	b64url_encode(raw, sizeof(raw), out);
	out[HUB_CALL_ID_LEN] = '\0';
	return 0;
}

/* The call a message names, if this session may act on it. */
static struct call *call_of_message(struct msg_ctx *m)
{
	const char *id = message_str(m->msg, "call", HUB_CALL_ID_LEN);
	struct call *c;

	if (id == NULL || (c = call_find(m->h, id)) == NULL)
		return NULL;
	if (strcmp(m->s->who.name, c->caller) != 0 && strcmp(m->s->who.name, c->callee) != 0)
		return NULL; /* not yours: indistinguishable from unknown */
	return c;
}

/* --- handlers ---------------------------------------------------------- */

static void on_ping(struct msg_ctx *m)
{
	reply(m, json_pack("{s:s}", "type", "pong"));
}

/* What a login request holds in one of its string fields. */
enum login_field {
	FIELD_ABSENT,
	FIELD_OK,
	FIELD_TOO_LONG,   /* a string over the limit: a wrong answer, not a malformed frame */
	FIELD_BAD,        /* not a string, or one with NUL or control bytes */
};

static enum login_field login_field(json_t *msg, const char *key, size_t max_len,
    const char **out)
{
	json_t *v = json_object_get(msg, key);

	*out = NULL;
	if (v == NULL)
		return FIELD_ABSENT;
	if (!json_is_string(v))
		return FIELD_BAD;
	if (json_string_length(v) > max_len)
		return FIELD_TOO_LONG;
	if ((*out = message_str(msg, key, max_len)) == NULL)
		return FIELD_BAD;
	return FIELD_OK;
}

/* A login answered before the identity backend sees it. DESIGN.md: a
 * login that fails, whatever the reason, is answered auth_failed; the
 * message may say what was wrong with the request, and never says
 * anything about the user. A malformed request is also a strike. */
static void login_refused(struct msg_ctx *m, const char *why, bool malformed)
{
	reply_error(m, "auth_failed", why);
	if (malformed)
		add_strike(m->h, m->s);
}

static void on_login(struct msg_ctx *m)
{
	struct hub *h = m->h;
	const char *user, *password, *token, *totp, *too_long = NULL;
	enum login_field fu = login_field(m->msg, "user", NAME_MAX_LEN, &user);
	enum login_field fp = login_field(m->msg, "password", PASSWORD_MAX_LEN, &password);
	enum login_field ft = login_field(m->msg, "token", TOKEN_MAX_LEN, &token);
	/* A code too long is passed on as none: a wrong answer. */
	enum login_field fo = login_field(m->msg, "totp", TOTP_MAX_LEN, &totp);
	bool by_token = ft != FIELD_ABSENT;

	/* A client that waits for its answers never sends these. */
	if (m->s->authed || m->s->login_pending) {
		login_refused(m, m->s->authed ? "already logged in" : "login in progress", true);
		return;
	}
	if (fu == FIELD_BAD || fp == FIELD_BAD || ft == FIELD_BAD || fo == FIELD_BAD ||
	    by_token == (fu != FIELD_ABSENT && fp != FIELD_ABSENT)) {
		login_refused(m, "login needs user and password, or token", true);
		return;
	}
	if (m->s->login_attempts >= HUB_MAX_LOGIN_ATTEMPTS) {
		reply_error(m, "auth_failed", "authentication failed");
		session_close(h, m->s, "too many login attempts");
		return;
	}
	if (by_token)
		too_long = ft == FIELD_TOO_LONG ? "token too long" : NULL;
	else if (fu == FIELD_TOO_LONG)
		too_long = "user name too long";
	else if (fp == FIELD_TOO_LONG)
		too_long = "password too long";
	if (too_long != NULL) {
		/* No user has such a name or password (userdb.h) and no
		 * provider issues such a token, so this is a failed attempt
		 * like any other, answered without the backend; saying why
		 * tells nothing about who exists. */
		struct hub_event e = { .kind = HUB_EV_LOGIN_FAILED, .session = m->s->id,
		    .source = (const struct sockaddr *)&m->s->from,
		    .user = fu == FIELD_OK && !by_token ? user : "", .reason = too_long };

		m->s->login_attempts++;
		emit(h, &e);
		login_refused(m, too_long, false);
		return;
	}
	/* A busy checker (its queue full, or this address's share of
	 * checks in flight) checked nothing: no attempt, no strike, and the
	 * client may try again once an answer has come. The checker is
	 * given UNIX time: a token's exp and nbf, and TOTP steps, are. */
	if (h->ops.login(h->ops.ctx, m->s->id, (const struct sockaddr *)&m->s->from,
	    by_token ? NULL : user, by_token ? NULL : password, by_token ? NULL : totp,
	    token, m->now.wall_ms / 1000) != 0) {
		/* When to try again: about one check's time per login ahead
		 * (clients add jitter of their own, so a crowd spreads out). */
		reply(m, json_pack("{s:s, s:s, s:s, s:i}", "type", "error", "code", "auth_failed",
		    "message", "server busy, try again", "retry_after_ms", HUB_BUSY_RETRY_MS));
		return;
	}
	m->s->login_attempts++;
	m->s->login_pending = true;
	m->s->login_ms = m->now.mono_ms;
	m->s->login_id = m->id != NULL ? json_incref(m->id) : NULL;
	snprintf(m->s->login_user, sizeof(m->s->login_user), "%s", by_token ? "" : user);
}

/* A login checked after its session closed. Nobody hears the answer,
 * but the check was made: a guess that went unread is still a guess,
 * and the detectors must see it. */
static void login_unanswered(struct hub *h, const struct hub_login_result *r)
{
	struct hub_event e = { .session = r->session, .source = r->from, .unanswered = true };

	if (r->rc == IDENTITY_OK) {
		e.kind = HUB_EV_LOGIN_OK;
		e.user = r->who->name;
		e.mfa = r->who->mfa;
	} else {
		e.kind = HUB_EV_LOGIN_FAILED;
		e.user = r->user != NULL ? r->user : "";
		e.reason = r->why;
	}
	emit(h, &e);
}

static void login_done(struct hub *h, const struct hub_login_result *r, struct clock_pair now)
{
	struct session *s = session_find(h, r->session);
	struct user_entry *u = NULL;
	const struct identity_user *who = r->who;
	uint64_t session = r->session;
	int rc = r->rc;
	const char *why = r->why;
	json_t *msg;

	h->now = now;
	/* A closing session is let go of as the hub call ends: nobody
	 * hears this answer either. */
	if (s == NULL || (s->closing && s->login_pending)) {
		if (s != NULL)
			s->login_pending = false;
		login_unanswered(h, r);
		return;
	}
	if (!s->login_pending)
		return;
	s->login_pending = false;
	if (rc == IDENTITY_OK)
		u = user_find(h, who->name, true);
	if (rc != IDENTITY_OK || u == NULL) {
		struct hub_event e = { .kind = HUB_EV_LOGIN_FAILED, .session = session,
		    .source = (const struct sockaddr *)&s->from, .user = s->login_user,
		    .reason = rc != IDENTITY_OK ? why : "out of memory",
		    .setup_ms = clock_elapsed_ms(h->now.mono_ms, s->login_ms) };
		emit(h, &e);
		/* One answer for every reason: nothing to learn about users. */
		msg = json_pack("{s:s, s:s, s:s}", "type", "error", "code", "auth_failed",
		    "message", "authentication failed");
	} else {
		s->authed = true;
		s->who = *who;
		s->next_user = u->sessions;
		u->sessions = s;
		struct hub_event e = { .kind = HUB_EV_LOGIN_OK, .session = session,
		    .source = (const struct sockaddr *)&s->from, .user = who->name,
		    .mfa = who->mfa,
		    .setup_ms = clock_elapsed_ms(h->now.mono_ms, s->login_ms) };
		emit(h, &e);
		msg = json_pack("{s:s, s:s}", "type", "login.ok", "user", who->name);
	}
	if (msg != NULL && s->login_id != NULL)
		json_object_set(msg, "id", s->login_id);
	json_decref(s->login_id);
	s->login_id = NULL;
	send_json(h, session, msg);
}

void hub_login_done(struct hub *h, const struct hub_login_result *r, struct clock_pair now)
{
	hub_enter(h);
	login_done(h, r, now);
	hub_leave(h);
}

/* Contacts: every user we know of (local users, the policy's names,
 * who is online) that this user may call, with the media allowed. The
 * first two come from the directory, read once (directory.h); who is
 * online, and with which identity, from the live sessions. */
struct contact {
	const char *name;
	bool online;
	unsigned media;
};

static int contact_cmp(const void *a, const void *b)
{
	return strcmp(((const struct contact *)a)->name, ((const struct contact *)b)->name);
}

/* What who may use toward name: an online user as its session knows it
 * (token groups included), else with its directory groups (k). */
static unsigned contact_media(struct hub *h, const struct subject *from, const char *name,
    size_t k, bool *online)
{
	struct user_entry *u = user_find(h, name, false);
	struct subject to;

	*online = u != NULL && u->sessions != NULL;
	if (*online) {
		subject_from(&to, &u->sessions->who);
	} else {
		to.ps.user = name;
		to.ps.groups = to.groups;
		to.ps.ngroups = directory_groups(h->directory, k, to.groups);
	}
	return policy_allowed_media(h->cfg.policy, &from->ps, &to.ps);
}

/* Who may call whom, for a contacts list: sorted by name, in *out
 * (owned; NULL when there are none). The names point into the directory
 * and the hub's users, which stay put until the list is sent. */
static size_t contacts_collect(struct hub *h, const struct identity_user *who,
    struct contact **out)
{
	struct contact *list;
	struct user_entry *u;
	struct subject from;
	size_t i, k, n = 0, cap;
	bool online;

	*out = NULL;
	if (h->cfg.policy == NULL)
		return 0;
	/* The directory's age is an interval: monotonic. */
	directory_refresh(h->directory, h->cfg.users, h->cfg.policy, h->now.mono_ms);
	cap = directory_count(h->directory) + h->nsessions;
	if ((list = calloc(cap + 1, sizeof(*list))) == NULL)
		return 0;
	subject_from(&from, who);
	for (k = 0; k < directory_count(h->directory); k++) {
		const char *name = directory_name(h->directory, k);
		if (k % YIELD_EVERY == YIELD_EVERY - 1)
			hub_yield(h);
		/* The list is written as text without escaping (contacts_send):
		 * a name no session could sign in with is left out. */
		if (!name_ok(name) || strcmp(name, who->name) == 0)
			continue;
		list[n].media = contact_media(h, &from, name, k, &online);
		list[n].online = online;
		list[n].name = name;
		n += list[n].media != 0;
	}
	/* Signed-in users the directory does not know (token logins). */
	for (i = 0; i < BUCKETS; i++) {
		for (u = h->users[i]; u != NULL && n < cap; u = u->next) {
			if (u->sessions == NULL || !name_ok(u->name) ||
			    strcmp(u->name, who->name) == 0 || directory_has(h->directory, u->name))
				continue;
			list[n].media = contact_media(h, &from, u->name, 0, &online);
			list[n].online = true;
			list[n].name = u->name;
			n += list[n].media != 0;
		}
	}
	if (n > 1)
		qsort(list, n, sizeof(*list), contact_cmp);
	*out = list;
	return n;
}

/* Sends who's contacts.ok, with id when not NULL. It is written as text
 * rather than built as JSON objects: with thousands of contacts, the
 * objects and their dump cost several times the policy checks, all of it
 * while media waits (see YIELD_EVERY). Names are name_ok, media names
 * are the policy's: neither needs escaping. */
static void contacts_send(struct hub *h, uint64_t sid, const struct identity_user *who,
    json_t *id)
{
	struct contact *list;
	size_t i, n = contacts_collect(h, who, &list), len = 0;
	char *text = NULL, *id_text = NULL;
	const char *sep;
	unsigned bit;
	FILE *f;

	if (id != NULL && (id_text = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT)) == NULL)
		goto out;
	if ((f = open_memstream(&text, &len)) == NULL)
		goto out;
	fputs("{\"type\":\"contacts.ok\",\"contacts\":[", f);
	for (i = 0; i < n; i++) {
		if (i % YIELD_EVERY == YIELD_EVERY - 1)
			hub_yield(h);
		fprintf(f, "%s{\"user\":\"%s\",\"online\":%s,\"media\":[", i > 0 ? "," : "",
		    list[i].name, list[i].online ? "true" : "false");
		for (bit = 1, sep = ""; bit <= POLICY_DATA; bit <<= 1) {
			if (list[i].media & bit) {
				fprintf(f, "%s\"%s\"", sep, policy_media_name(bit));
				sep = ",";
			}
		}
		fputs("]}", f);
	}
	fputs("]", f);
	if (id_text != NULL)
		fprintf(f, ",\"id\":%s", id_text);
	fputs("}", f);
	if (fclose(f) != 0 || text == NULL)
		goto out;
	/* A push (no id) supersedes any earlier push still queued. */
	if (id == NULL && h->ops.send_update != NULL)
		h->ops.send_update(h->ops.ctx, sid, text, len);
	else
		h->ops.send(h->ops.ctx, sid, text, len);
out:
	free(text);
	free(id_text);
	free(list);
}

static void on_contacts(struct msg_ctx *m)
{
	contacts_send(m->h, m->s->id, &m->s->who, m->id);
}

/* Reads "media": a non-empty array of distinct known kinds. */
static int media_of(json_t *msg, unsigned *out)
{
	json_t *arr = json_object_get(msg, "media"), *v;
	unsigned bit;
	size_t i;

	*out = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0 || json_array_size(arr) > 4)
		return -1;
	json_array_foreach(arr, i, v) {
		if (!json_is_string(v) || (bit = policy_media_parse(json_string_value(v))) == 0 ||
		    (*out & bit))
			return -1;
		*out |= bit;
	}
	return 0;
}

static void on_call(struct msg_ctx *m)
{
	struct hub *h = m->h;
	const char *to = message_str(m->msg, "to", NAME_MAX_LEN);
	struct identity_user callee;
	struct policy_decision d;
	struct subject a, b;
	struct user_entry *cu, *me;
	struct call *c;
	json_t *ice;
	unsigned media;

	if (!name_ok(to) || media_of(m->msg, &media) != 0) {
		bad_request(m, "call needs \"to\" and a non-empty \"media\" list of "
		    "audio, video, screen, data");
		return;
	}
	if (strcmp(to, m->s->who.name) == 0) {
		bad_request(m, "cannot call yourself");
		return;
	}
	me = user_find(h, m->s->who.name, false);
	if (me == NULL || me->ncalls >= HUB_MAX_CALLS_PER_USER) {
		/* Calls answered count too, and were asked by others. */
		refuse(m, "too many calls");
		return;
	}
	identity_of(h, to, &callee);
	subject_from(&a, &m->s->who);
	subject_from(&b, &callee);
	if (h->cfg.policy == NULL) {
		memset(&d, 0, sizeof(d));
		snprintf(d.rule, sizeof(d.rule), "default");
	} else {
		policy_decide(h->cfg.policy, &a.ps, &b.ps, media, &d);
	}
	{
		struct hub_event e = { .kind = HUB_EV_CALL_DECIDED, .session = m->s->id,
		    .source = (const struct sockaddr *)&m->s->from, .user = m->s->who.name,
		    .peer = to, .rule = d.rule, .media = media, .allowed = d.allow,
		    .record = d.allow && d.record };
		emit(h, &e);
	}
	/* Policy before presence: whom you may not call, you do not learn
	 * anything about. */
	if (!d.allow) {
		reply_error(m, "forbidden", "this call is not allowed");
		return;
	}
	/* Every call placed rings someone, writes audit lines and mints
	 * credentials, so how often one user may place calls is bounded,
	 * over all of its sessions (cfg.calls_per_min, a pace no person
	 * dials at). Not a strike, as a client cannot see the bucket. After
	 * the policy (it says nothing to whom may not be called anyway),
	 * before presence. */
	if (call_bucket(h, me, m->now.mono_ms) < CALL_TOKEN) {
		reply_error(m, "rate_limited", "too many new calls, try again later");
		return;
	}
	cu = user_find(h, to, false);
	if (cu == NULL || cu->sessions == NULL) {
		reply_error(m, "offline", "the user is not online");
		return;
	}
	/* One call rings from a caller to a callee at a time: more would let
	 * one caller take all of the callee's ringing slots. */
	for (c = me->placed; c != NULL; c = c->next_placed) {
		if (c->state == CALL_RINGING && strcmp(c->callee, to) == 0) {
			refuse(m, "a call to this user is already ringing");
			return;
		}
	}
	/* The caps hold for calls received too, or many callers could fill
	 * one user's slots: those it answered count with its own, those
	 * ringing apart, so that ringing calls never keep it from calling
	 * out or answering. */
	if (cu->ncalls >= HUB_MAX_CALLS_PER_USER || cu->nringing_in >= HUB_MAX_CALLS_PER_USER) {
		refuse(m, "the user is busy");
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || new_call_id(c->id) != 0) {
		free(c);
		reply_error(m, "bad_request", "cannot create a call now");
		return;
	}
	snprintf(c->caller, sizeof(c->caller), "%s", m->s->who.name);
	snprintf(c->callee, sizeof(c->callee), "%s", to);
	c->caller_sid = m->s->id;
	c->media = media;
	c->record = d.record;
	snprintf(c->rule, sizeof(c->rule), "%s", d.rule);
	c->state = CALL_RINGING;
	c->since_ms = m->now.wall_ms;
	c->placed_ms = m->now.mono_ms;
	c->ring_deadline_ms = m->now.mono_ms + HUB_RING_TIMEOUT_MS;
	/* An absolute time that every relay node checks: UNIX time. */
	c->expires_s = m->now.wall_ms / 1000 + HUB_CALL_MAX_S;
	ice = ice_servers_json(h, c->caller, c->id, c->expires_s);
	if (ice == NULL) {
		free(c);
		reply_error(m, "bad_request", "cannot create a call now");
		return;
	}
	c->next = h->calls[fnv1a_str(c->id) % BUCKETS];
	h->calls[fnv1a_str(c->id) % BUCKETS] = c;
	h->ncalls++;
	c->next_placed = me->placed;
	me->placed = c;
	me->ncalls++;
	cu->nringing_in++;
	me->calls_milli = call_bucket(h, me, m->now.mono_ms) - CALL_TOKEN;
	me->calls_ms = m->now.mono_ms;
	reply(m, json_pack("{s:s, s:s, s:o, s:s, s:o, s:b}", "type", "call.ok",
	    "call", c->id, "ice_servers", ice, "ice_transport_policy", "relay",
	    "media", media_json(media), "record", c->record));
	send_user(h, to, json_pack("{s:s, s:s, s:s, s:o, s:b}", "type", "incoming",
	    "call", c->id, "from", c->caller, "media", media_json(media),
	    "record", c->record));
}

static void on_accept(struct msg_ctx *m)
{
	struct hub *h = m->h;
	struct call *c = call_of_message(m);
	struct user_entry *u;
	struct session *s;
	json_t *ice, *gone;

	if (c == NULL) {
		no_such_call(m, "no ringing call to accept");
		return;
	}
	if (strcmp(m->s->who.name, c->callee) != 0) {
		bad_request(m, "no ringing call to accept"); /* the caller's own call */
		return;
	}
	if (c->state != CALL_RINGING) {
		/* Another of the callee's sessions answered it an instant
		 * before; "answered_elsewhere" may still be on its way. */
		refuse(m, "no ringing call to accept");
		return;
	}
	/* Ringing calls are not counted with the callee's own: answering
	 * one makes it one of them, within the same cap. */
	if ((u = user_find(h, c->callee, false)) == NULL || u->ncalls >= HUB_MAX_CALLS_PER_USER) {
		refuse(m, "too many calls");
		return;
	}
	ice = ice_servers_json(h, c->callee, c->id, c->expires_s);
	if (ice == NULL) {
		reply_error(m, "bad_request", "cannot accept now");
		return;
	}
	c->state = CALL_ACCEPTED;
	c->accepted_ms = m->now.mono_ms;
	u->nringing_in--;
	u->ncalls++;
	c->callee_sid = m->s->id;
	reply(m, json_pack("{s:s, s:s, s:o, s:s, s:o, s:b}", "type", "accept.ok",
	    "call", c->id, "ice_servers", ice, "ice_transport_policy", "relay",
	    "media", media_json(c->media), "record", c->record));
	send_json(h, c->caller_sid, json_pack("{s:s, s:s}", "type", "accepted",
	    "call", c->id));
	/* The callee's other sessions stop ringing. */
	gone = json_pack("{s:s, s:s, s:s}", "type", "hangup", "call", c->id,
	    "reason", "answered_elsewhere");
	if ((u = user_find(h, c->callee, false)) != NULL)
		for (s = u->sessions; s != NULL; s = s->next_user)
			if (s->id != m->s->id)
				send_json(h, s->id, json_incref(gone));
	json_decref(gone);
	{
		struct hub_event e = { .kind = HUB_EV_CALL_ACCEPTED, .session = m->s->id,
		    .user = c->caller, .peer = c->callee, .call = c->id, .rule = c->rule,
		    .media = c->media,
		    .setup_ms = clock_elapsed_ms(m->now.mono_ms, c->placed_ms) };
		emit(h, &e);
	}
}

static void on_reject(struct msg_ctx *m)
{
	struct call *c = call_of_message(m);

	if (c == NULL) {
		no_such_call(m, "no ringing call to reject");
		return;
	}
	if (strcmp(m->s->who.name, c->callee) != 0) {
		bad_request(m, "no ringing call to reject"); /* the caller hangs up */
		return;
	}
	if (c->state != CALL_RINGING) {
		refuse(m, "no ringing call to reject"); /* answered elsewhere */
		return;
	}
	call_end(m->h, c, "rejected", m->s->id);
	if (m->id != NULL)
		reply(m, json_pack("{s:s}", "type", "reject.ok"));
}

static void on_hangup(struct msg_ctx *m)
{
	struct call *c = call_of_message(m);
	const char *reason = "hangup";

	if (c == NULL) {
		no_such_call(m, "no call to hang up");
		return;
	}
	if (m->s->id != c->caller_sid && m->s->id != c->callee_sid) {
		if (strcmp(m->s->who.name, c->callee) != 0) {
			bad_request(m, "no call to hang up");
			return;
		}
		if (c->state != CALL_RINGING) {
			/* Another of the callee's sessions answered it. */
			refuse(m, "no call to hang up");
			return;
		}
		/* DESIGN.md: hangup ends a call, and reject ends one too. A
		 * callee that hangs up on a call still ringing declines it:
		 * everyone hears "rejected", exactly as after reject. */
		reason = "rejected";
	}
	call_end(m->h, c, reason, m->s->id);
	if (m->id != NULL)
		reply(m, json_pack("{s:s}", "type", "hangup.ok"));
}

/* The other participant's session of an accepted call, or 0 when this
 * session may not send media descriptions on it. */
static uint64_t peer_session(struct msg_ctx *m, struct call **out)
{
	struct call *c = call_of_message(m);

	*out = c;
	if (c == NULL || c->state != CALL_ACCEPTED)
		return 0;
	if (m->s->id == c->caller_sid)
		return c->callee_sid;
	if (m->s->id == c->callee_sid)
		return c->caller_sid;
	return 0;
}

struct relay_check {
	struct hub *h;
	const char *user;
	const char *call;
};

static bool relay_check(void *ctx, const struct sockaddr *addr)
{
	struct relay_check *rc = ctx;

	return rc->h->ops.relay_of(rc->h->ops.ctx, rc->user, rc->call, addr);
}

/* Which m= sections each medium of a call allows. SDP cannot tell a
 * screen share from a camera (both are video tracks), so either medium
 * allows video; a kind no medium allows (text, message, an unknown
 * name) is never allowed. The names are for the client and the audit;
 * the first refused kind in this order is the one named. */
static const struct {
	unsigned kind;        /* SDP_MEDIA_* */
	unsigned media;       /* POLICY_* that allow it */
	const char *medium;   /* for the audit */
	const char *message;  /* for the client */
} sdp_media_rules[] = {
	{ SDP_MEDIA_AUDIO, POLICY_AUDIO, "audio", "the call does not allow audio" },
	{ SDP_MEDIA_VIDEO, POLICY_VIDEO | POLICY_SCREEN, "video",
	    "the call does not allow video" },
	{ SDP_MEDIA_APPLICATION, POLICY_DATA, "data", "the call does not allow data" },
	{ SDP_MEDIA_OTHER, 0, "other", "the call does not allow media of other types" },
};

/* The rule of the first kind in kinds that a call with media may not
 * carry, or -1 when it may carry them all. */
static int sdp_media_refused(unsigned kinds, unsigned media)
{
	size_t i;

	for (i = 0; i < sizeof(sdp_media_rules) / sizeof(sdp_media_rules[0]); i++)
		if ((kinds & sdp_media_rules[i].kind) && !(media & sdp_media_rules[i].media))
			return (int)i;
	return -1;
}

static void on_sdp(struct msg_ctx *m)
{
	struct hub *h = m->h;
	struct call *c;
	uint64_t to = peer_session(m, &c);
	json_t *sdp = json_object_get(m->msg, "sdp");
	const char *kind, *text;
	struct sdp_filter_stats st;
	struct relay_check rc;
	char *filtered = NULL;
	size_t flen;
	int refused;

	if (to == 0) {
		if (c == NULL)
			no_such_call(m, "no accepted call for this description");
		else
			bad_request(m, "no accepted call for this description");
		return;
	}
	kind = json_is_object(sdp) ? message_str(sdp, "type", 8) : NULL;
	text = json_is_object(sdp) ? message_text(sdp, "sdp", SDP_MAX_LEN) : NULL;
	if (kind == NULL || text == NULL ||
	    (strcmp(kind, "offer") != 0 && strcmp(kind, "answer") != 0)) {
		bad_request(m, "sdp needs {\"type\": \"offer\"|\"answer\", \"sdp\": \"...\"}");
		return;
	}
	rc.h = h;
	rc.user = m->s->who.name;
	rc.call = c->id;
	if (sdp_filter(text, strlen(text), relay_check, &rc, &filtered, &flen, &st) != SDP_OK) {
		bad_request(m, "not a valid session description");
		return;
	}
	/* The policy allowed the call with its media only: every m-section,
	 * in every offer and answer and either direction, must be one of
	 * them, or the description does not reach the other side, and the
	 * medium never gets a transport to flow on. Not a strike, and the
	 * call goes on: a client meets this in good faith when it offers
	 * what it can send rather than what the call carries (a camera on an
	 * audio call), or what a contacts list from before a policy change
	 * promised. */
	if ((refused = sdp_media_refused(st.media, c->media)) >= 0) {
		struct hub_event e = { .kind = HUB_EV_SDP_REFUSED, .session = m->s->id,
		    .source = (const struct sockaddr *)&m->s->from, .user = m->s->who.name,
		    .peer = strcmp(m->s->who.name, c->caller) == 0 ? c->callee : c->caller,
		    .call = c->id, .rule = c->rule, .reason = kind,
		    .medium = sdp_media_rules[refused].medium, .media = c->media };

		free(filtered);
		emit(h, &e);
		reply(m, json_pack("{s:s, s:s, s:s, s:s}", "type", "error", "code", "forbidden",
		    "message", sdp_media_rules[refused].message, "call", c->id));
		return;
	}
	if (st.removed > 0) {
		struct hub_event e = { .kind = HUB_EV_CANDIDATE_REMOVED, .session = m->s->id,
		    .user = m->s->who.name, .call = c->id, .count = st.removed,
		    .reason = "sdp" };
		emit(h, &e);
	}
	/* What the relay checks the DTLS certificate of this side against. */
	if (h->ops.fingerprints != NULL) {
		struct sdp_fingerprint fps[SDP_FP_MAX];
		size_t nfp = sdp_fingerprints(text, strlen(text), fps, SDP_FP_MAX);

		h->ops.fingerprints(h->ops.ctx, c->id, m->s->who.name, fps, nfp);
	}
	send_json(h, to, json_pack("{s:s, s:s, s:{s:s, s:s%}}", "type", "sdp", "call",
	    c->id, "sdp", "type", kind, "sdp", filtered, flen));
	free(filtered);
}

static void on_candidate(struct msg_ctx *m)
{
	struct hub *h = m->h;
	struct call *c;
	uint64_t to = peer_session(m, &c);
	json_t *cand = json_object_get(m->msg, "candidate"), *out, *idx;
	const char *text, *mid = NULL;
	char clean[CANDIDATE_MAX_LEN + 64];
	struct relay_check rc;

	if (to == 0) {
		if (c == NULL)
			no_such_call(m, "no accepted call for this candidate");
		else
			bad_request(m, "no accepted call for this candidate");
		return;
	}
	/* Line ends and tabs pass here as before: the filter refuses them
	 * and drops the candidate silently, like any it does not forward. */
	text = json_is_object(cand) ? message_text(cand, "candidate", CANDIDATE_MAX_LEN) : NULL;
	if (text == NULL) {
		bad_request(m, "candidate needs {\"candidate\": \"...\"}");
		return;
	}
	if (json_object_get(cand, "sdpMid") != NULL &&
	    !json_is_null(json_object_get(cand, "sdpMid")) &&
	    !mid_ok(mid = message_str(cand, "sdpMid", SDP_MID_MAX))) {
		bad_request(m, "bad sdpMid");
		return;
	}
	idx = json_object_get(cand, "sdpMLineIndex");
	if (idx != NULL && !json_is_null(idx) &&
	    (!json_is_integer(idx) || json_integer_value(idx) < 0 ||
	    json_integer_value(idx) > 255)) {
		bad_request(m, "bad sdpMLineIndex");
		return;
	}
	rc.h = h;
	rc.user = m->s->who.name;
	rc.call = c->id;
	if (sdp_candidate_filter(text, strlen(text), relay_check, &rc, clean,
	    sizeof(clean)) != 0) {
		struct hub_event e = { .kind = HUB_EV_CANDIDATE_REMOVED, .session = m->s->id,
		    .user = m->s->who.name, .call = c->id, .count = 1, .reason = "trickle" };
		emit(h, &e);
		return;
	}
	out = json_pack("{s:s}", "candidate", clean);
	if (mid != NULL)
		json_object_set_new(out, "sdpMid", json_string(mid));
	if (idx != NULL && json_is_integer(idx))
		json_object_set(out, "sdpMLineIndex", idx);
	send_json(h, to, json_pack("{s:s, s:s, s:o}", "type", "candidate", "call", c->id,
	    "candidate", out));
}

typedef void (*msg_handler)(struct msg_ctx *m);

static const struct {
	const char *type;
	bool needs_login;
	msg_handler fn;
} handlers[] = {
	{ "ping", false, on_ping },
	{ "login", false, on_login },
	{ "contacts", true, on_contacts },
	{ "call", true, on_call },
	{ "accept", true, on_accept },
	{ "reject", true, on_reject },
	{ "hangup", true, on_hangup },
	{ "sdp", true, on_sdp },
	{ "candidate", true, on_candidate },
};

/* HUB_MSGS_PER_S sustained with a burst of twice as many; mono_ms is
 * monotonic, so a step of the clock neither floods nor starves the
 * bucket. */
static bool rate_ok(struct session *s, uint64_t mono_ms)
{
	const uint64_t burst = 2 * HUB_MSGS_PER_S * 1000;
	uint64_t elapsed = clock_elapsed_ms(mono_ms, s->tokens_ms);

	if (elapsed > 10000)
		elapsed = 10000;
	s->tokens_milli += elapsed * HUB_MSGS_PER_S;
	if (s->tokens_milli > burst)
		s->tokens_milli = burst;
	s->tokens_ms = mono_ms;
	if (s->tokens_milli < 1000)
		return false;
	s->tokens_milli -= 1000;
	return true;
}

static void session_message(struct hub *h, uint64_t session, const char *text,
    size_t len, struct clock_pair now)
{
	struct msg_ctx m;
	const char *type, *why;
	json_t *id;
	size_t i;

	memset(&m, 0, sizeof(m));
	m.h = h;
	m.now = now;
	h->now = now;
	m.s = session_find(h, session);
	if (m.s == NULL || m.s->closing)
		return;
	if (!rate_ok(m.s, now.mono_ms)) {
		strike(h, m.s, NULL, "too many messages");
		return;
	}
	/* A token's exp is UNIX time, set by its issuer: wall clock. */
	if (m.s->authed && m.s->who.expires_s != 0 && now.wall_ms / 1000 > m.s->who.expires_s) {
		/* protocol.md: every close is explained first. The message is
		 * not read, so there is no id to echo. */
		send_json(h, session, json_pack("{s:s, s:s, s:s}", "type", "error",
		    "code", "auth_failed", "message", "token expired"));
		session_close(h, m.s, "token expired");
		return;
	}
	m.msg = message_parse(text, len, MESSAGE_MAX_LEN, &why);
	if (m.msg == NULL) {
		strike(h, m.s, NULL, why);
		return;
	}
	id = json_object_get(m.msg, "id");
	if (id != NULL && !json_is_integer(id) &&
	    !(json_is_string(id) && json_string_length(id) <= 64)) {
		strike(h, m.s, NULL, "\"id\" must be an integer or a short string");
		goto out;
	}
	m.id = id;
	type = message_str(m.msg, "type", 32);
	for (i = 0; type != NULL && i < sizeof(handlers) / sizeof(handlers[0]); i++) {
		if (strcmp(handlers[i].type, type) != 0)
			continue;
		if (handlers[i].needs_login && !m.s->authed)
			bad_request(&m, "log in first");
		else
			handlers[i].fn(&m);
		goto out;
	}
	bad_request(&m, "unknown message type");
out:
	json_decref(m.msg);
}

void hub_session_message(struct hub *h, uint64_t session, const char *text,
    size_t len, struct clock_pair now)
{
	hub_enter(h);
	session_message(h, session, text, len, now);
	hub_leave(h);
}

void hub_session_oversized(struct hub *h, uint64_t session, struct clock_pair now)
{
	struct session *s = session_find(h, session);

	h->now = now;
	hub_enter(h);
	if (s != NULL && !s->closing)
		strike(h, s, NULL, "message too large");
	hub_leave(h);
}

void hub_session_open(struct hub *h, uint64_t session, const struct sockaddr *from,
    struct clock_pair now)
{
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		h->ops.close(h->ops.ctx, session, "out of memory");
		return;
	}
	s->id = session;
	s->since_ms = now.wall_ms;
	h->now = now;
	if (from != NULL && (from->sa_family == AF_INET || from->sa_family == AF_INET6))
		memcpy(&s->from, from, from->sa_family == AF_INET6 ?
		    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	s->tokens_milli = 2 * HUB_MSGS_PER_S * 1000;
	s->tokens_ms = now.mono_ms;
	s->next_id = h->sessions[session % BUCKETS];
	h->sessions[session % BUCKETS] = s;
	h->nsessions++;
}

/* Lets go of a session: out of both indexes, its calls ended, its
 * logout reported, freed. Once per session, whoever closed it. */
static void session_forget(struct hub *h, struct session *s)
{
	struct session **pp = &h->sessions[s->id % BUCKETS], **up;
	struct user_entry *u = NULL;
	struct call *c, *next;
	size_t i;
	bool other_sessions;

	while (*pp != s)
		pp = &(*pp)->next_id;
	*pp = s->next_id;
	h->nsessions--;
	/* Reported gone while its close was still to be dealt with. */
	for (up = &h->closing; *up != NULL && *up != s; up = &(*up)->next_closing)
		;
	if (*up == s)
		*up = s->next_closing;
	/* A login still waiting for its check is dropped; one being checked
	 * comes back through hub_login_done() without its session. */
	if (s->login_pending && h->ops.login_cancel != NULL)
		h->ops.login_cancel(h->ops.ctx, s->id);
	if (s->authed && (u = user_find(h, s->who.name, false)) != NULL) {
		for (up = &u->sessions; *up != NULL && *up != s; up = &(*up)->next_user)
			;
		if (*up == s)
			*up = s->next_user;
	}
	other_sessions = u != NULL && u->sessions != NULL;
	/* Its calls end: those it placed or answered, and those ringing for
	 * its user when no other session of the user is left to answer. */
	for (i = 0; s->authed && i < BUCKETS; i++) {
		for (c = h->calls[i]; c != NULL; c = next) {
			next = c->next;
			if (c->caller_sid == s->id ||
			    (c->state == CALL_ACCEPTED && c->callee_sid == s->id) ||
			    (c->state == CALL_RINGING && !other_sessions &&
			    strcmp(c->callee, s->who.name) == 0))
				call_end(h, c, "disconnected", s->id);
		}
	}
	if (s->authed) {
		struct hub_event e = { .kind = HUB_EV_LOGOUT, .session = s->id,
		    .source = (const struct sockaddr *)&s->from, .user = s->who.name };
		emit(h, &e);
	}
	if (u != NULL && (u = user_find(h, s->who.name, false)) != NULL)
		user_gc(h, u);
	json_decref(s->login_id);
	OPENSSL_cleanse(&s->who, sizeof(s->who));
	free(s);
}

void hub_session_closed(struct hub *h, uint64_t session, struct clock_pair now)
{
	struct session *s;

	h->now = now;
	hub_enter(h);
	/* Not found when the hub let go of it at its close already. */
	if ((s = session_find(h, session)) != NULL)
		session_forget(h, s);
	hub_leave(h);
}

void hub_session_closing(struct hub *h, uint64_t session, struct clock_pair now)
{
	struct session *s;

	h->now = now;
	hub_enter(h);
	if ((s = session_find(h, session)) != NULL)
		session_closing(h, s);
	hub_leave(h);
}

/* Drops the user entries that only their call buckets kept (user_gc()),
 * once these are full again. */
static void users_sweep(struct hub *h)
{
	struct user_entry *u, *next;
	size_t i;

	for (i = 0; i < BUCKETS; i++) {
		for (u = h->users[i]; u != NULL; u = next) {
			next = u->next;
			user_gc(h, u);
		}
	}
}

void hub_tick(struct hub *h, struct clock_pair now)
{
	struct call *c, *next;
	size_t i;

	h->now = now;
	hub_enter(h);
	for (i = 0; i < BUCKETS; i++) {
		for (c = h->calls[i]; c != NULL; c = next) {
			next = c->next;
			if (c->state == CALL_RINGING && now.mono_ms >= c->ring_deadline_ms)
				call_end(h, c, "timeout", 0);
		}
	}
	if (clock_elapsed_ms(now.mono_ms, h->swept_ms) >= SWEEP_EVERY_MS) {
		users_sweep(h);
		h->swept_ms = now.mono_ms;
	}
	hub_leave(h);
}

struct hub *hub_new(const struct hub_config *cfg, const struct hub_ops *ops)
{
	struct hub *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->cfg = *cfg;
	if (h->cfg.calls_per_min == 0)
		h->cfg.calls_per_min = HUB_CALLS_PER_MIN;
	h->ops = *ops;
	if ((h->directory = directory_new(hub_yield_cb, h)) == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

/* Zero trust: a decision is never final. After a policy change every
 * call is decided again, and one that is no longer allowed ends now. */
void hub_set_policy(struct hub *h, const struct policy *p)
{
	struct identity_user caller, callee;
	struct policy_decision d;
	struct subject a, b;
	struct call *c, *next;
	size_t i;

	h->cfg.policy = p;
	directory_invalidate(h->directory);
	hub_enter(h);
	for (i = 0; i < BUCKETS; i++) {
		for (c = h->calls[i]; c != NULL; c = next) {
			next = c->next;
			identity_of(h, c->caller, &caller);
			identity_of(h, c->callee, &callee);
			subject_from(&a, &caller);
			subject_from(&b, &callee);
			if (p != NULL)
				policy_decide(p, &a.ps, &b.ps, c->media, &d);
			if (p == NULL || !d.allow) {
				struct hub_event e = { .kind = HUB_EV_CALL_DECIDED,
				    .user = c->caller, .peer = c->callee, .call = c->id,
				    .rule = p != NULL ? d.rule : "default", .media = c->media,
				    .reason = "policy change" };
				emit(h, &e);
				call_end(h, c, "policy", 0);
			} else {
				/* What the admin API shows follows the rule now in force. */
				c->record = d.record;
			}
		}
	}
	hub_leave(h);
}

void hub_free(struct hub *h)
{
	struct session *s, *sn;
	struct user_entry *u, *un;
	struct call *c, *cn;
	size_t i;

	if (h == NULL)
		return;
	for (i = 0; i < BUCKETS; i++) {
		for (s = h->sessions[i]; s != NULL; s = sn) {
			sn = s->next_id;
			json_decref(s->login_id);
			free(s);
		}
		for (u = h->users[i]; u != NULL; u = un) {
			un = u->next;
			free(u);
		}
		for (c = h->calls[i]; c != NULL; c = cn) {
			cn = c->next;
			free(c);
		}
	}
	directory_free(h->directory);
	free(h);
}

void hub_each_session(struct hub *h, void (*fn)(void *ctx, const struct hub_session_info *s),
    void *ctx)
{
	struct hub_session_info info;
	struct session *s;
	size_t i;

	/* fn may close sessions: they go when the walk is over. */
	hub_enter(h);
	for (i = 0; i < BUCKETS; i++) {
		for (s = h->sessions[i]; s != NULL; s = s->next_id) {
			info.id = s->id;
			info.user = s->authed ? s->who.name : "";
			info.since_ms = s->since_ms;
			info.from = (const struct sockaddr *)&s->from;
			fn(ctx, &info);
		}
	}
	hub_leave(h);
}

void hub_each_call(struct hub *h, void (*fn)(void *ctx, const struct hub_call_info *c),
    void *ctx)
{
	struct hub_call_info info;
	struct call *c;
	size_t i;

	hub_enter(h);
	for (i = 0; i < BUCKETS; i++) {
		for (c = h->calls[i]; c != NULL; c = c->next) {
			info.id = c->id;
			info.caller = c->caller;
			info.callee = c->callee;
			info.rule = c->rule;
			info.media = c->media;
			info.accepted = c->state == CALL_ACCEPTED;
			info.record = c->record;
			info.since_ms = c->since_ms;
			fn(ctx, &info);
		}
	}
	hub_leave(h);
}

int hub_end_call(struct hub *h, const char *call, const char *reason)
{
	struct call *c = call_find(h, call);

	if (c == NULL)
		return -1;
	hub_enter(h);
	call_end(h, c, reason, 0);
	hub_leave(h);
	return 0;
}

int hub_close_session(struct hub *h, uint64_t session, const char *why)
{
	struct session *s = session_find(h, session);

	if (s == NULL)
		return 0;
	hub_enter(h);
	session_close(h, s, why);
	hub_leave(h);
	return 1;
}

size_t hub_close_user(struct hub *h, const char *user, const char *why)
{
	struct user_entry *u = user_find(h, user, false);
	struct session *s;
	size_t n = 0;

	/* The sessions are forgotten when the walk is over (hub_leave()):
	 * their calls end then ("disconnected"), however long their
	 * connections take to close. */
	hub_enter(h);
	for (s = u != NULL ? u->sessions : NULL; s != NULL; s = s->next_user, n++)
		session_close(h, s, why);
	hub_leave(h);
	return n;
}

void hub_push_contacts(struct hub *h)
{
	struct session *s;
	size_t i;

	directory_invalidate(h->directory);
	hub_enter(h);
	for (i = 0; i < BUCKETS; i++)
		for (s = h->sessions[i]; s != NULL; s = s->next_id)
			if (s->authed && !s->closing)
				contacts_send(h, s->id, &s->who, NULL);
	hub_leave(h);
}

size_t hub_session_count(const struct hub *h)
{
	return h->nsessions;
}

size_t hub_call_count(const struct hub *h)
{
	return h->ncalls;
}
