/* The admin control plane (see admin.h).
 *
 * Tokens: 32 random bytes shown once to the client; only their SHA-256
 * is kept, with the user, role and times. A request's token is hashed and
 * compared with every live entry in constant time. Endpoints are a table
 * of method, path pattern, least role and handler. */
#include "gateway/admin.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "common/b64url.h"
#include "common/clock.h"
#include "common/source_key.h"
#include "gateway/audit.h"
#include "gateway/audit_reader.h"
#include "gateway/blocklist.h"
#include "gateway/login_worker.h"
#include "gateway/state_lock.h"
#include "policy/policy.h"
#include "signaling/hub.h"
#include "signaling/totp.h"
#include "signaling/userdb.h"

#define TOKEN_RAW 32
#define TOKEN_TEXT 43             /* base64url of 32 bytes, no padding */
#define MAX_PENDING 64
#define AUDIT_DEFAULT_LIMIT 1000
#define AUDIT_MAX_LIMIT 10000

struct token {
	uint8_t hash[32];
	bool used;
	char user[IDENTITY_NAME_MAX];
	enum admin_role role;
	uint64_t created_ms, last_ms; /* monotonic */
	uint64_t cred_tag;            /* the user's credentials it was issued against */
	uint64_t stepup_until_ms;     /* monotonic: an actor_totp accepted, credential actions until then */
};

struct pending_login {
	uint64_t request;             /* 0: free */
	char user[IDENTITY_NAME_MAX];
	char remote[64];
};

/* A user added or a password set through the API, waiting for the login
 * worker to hash the password (a quarter of a second of argon2id, which
 * on the loop would hold up every signaling session). */
enum change_kind { CHANGE_ADD, CHANGE_PASSWORD };

struct pending_change {
	uint64_t request;             /* 0: free */
	enum change_kind kind;
	char name[IDENTITY_NAME_MAX];
	char groups[IDENTITY_MAX_GROUPS][IDENTITY_NAME_MAX];
	size_t ngroups;
	bool totp;
	/* Who asked, for the audit trail, and the token they asked with: the
	 * change is made only if it is still good when the hash is done. */
	char actor[IDENTITY_NAME_MAX];
	enum admin_role role;
	uint8_t token_hash[32];
	char remote[64];
};

struct admin {
	struct admin_env env;
	struct token tokens[ADMIN_MAX_TOKENS];
	struct pending_login pending[MAX_PENDING];
	struct pending_change changes[MAX_PENDING];
};

/* One request being handled. */
struct act {
	struct admin *a;
	const struct admin_request *rq;
	/* mono_ms for the tokens' lifetimes and the step-up window, which
	 * only this process keeps; wall_ms for audit stamps and TOTP. */
	struct clock_pair now;
	struct token *tok;            /* the caller's token */
	const char *arg;              /* the wildcard path segment */
	char argbuf[128];
	int status;
	json_t *out;
	bool deferred;                /* answered later, through env.reply */
};

static const char *role_name(enum admin_role r)
{
	switch (r) {
	case ADMIN_ROLE_ADMIN: return "admin";
	case ADMIN_ROLE_OPERATOR: return "operator";
	case ADMIN_ROLE_AUDITOR: return "auditor";
	default: return "none";
	}
}

/* The strongest role among a user's groups. */
static enum admin_role role_of(const struct identity_user *who)
{
	enum admin_role r = ADMIN_ROLE_NONE;
	size_t i;

	for (i = 0; i < who->ngroups; i++) {
		if (strcmp(who->groups[i], "admin") == 0)
			r = ADMIN_ROLE_ADMIN;
		else if (strcmp(who->groups[i], "operator") == 0 && r < ADMIN_ROLE_OPERATOR)
			r = ADMIN_ROLE_OPERATOR;
		else if (strcmp(who->groups[i], "auditor") == 0 && r < ADMIN_ROLE_AUDITOR)
			r = ADMIN_ROLE_AUDITOR;
	}
	return r;
}

static void sha256(const void *p, size_t n, uint8_t out[32])
{
	unsigned int len = 32;

	EVP_Digest(p, n, out, &len, EVP_sha256(), NULL);
}

static void audit(struct act *x, const char *event, const char *outcome, json_t *more)
{
	json_t *f = json_pack("{s:s, s:s, s:s, s:s}", "actor",
	    x->tok != NULL ? x->tok->user : "", "role",
	    x->tok != NULL ? role_name(x->tok->role) : "none", "outcome", outcome,
	    "source", x->rq->remote != NULL ? x->rq->remote : "");

	if (more != NULL) {
		json_object_update(f, more);
		json_decref(more);
	}
	audit_log(x->a->env.audit, x->now.wall_ms, event, f);
}

static void fail(struct act *x, int status, const char *code, const char *msg)
{
	json_decref(x->out);
	x->status = status;
	x->out = json_pack("{s:s, s:s}", "error", code, "message", msg);
}

/* --- tokens ------------------------------------------------------------ */

static struct token *token_find(struct admin *a, const char *header, uint64_t mono_ms)
{
	uint8_t h[32];
	struct token *hit = NULL;
	size_t i;

	if (header == NULL || strncmp(header, "Bearer ", 7) != 0 ||
	    strlen(header + 7) != TOKEN_TEXT)
		return NULL;
	sha256(header + 7, TOKEN_TEXT, h);
	/* Every slot is compared, so the time does not tell which matched. */
	for (i = 0; i < ADMIN_MAX_TOKENS; i++)
		if (a->tokens[i].used && CRYPTO_memcmp(a->tokens[i].hash, h, 32) == 0)
			hit = &a->tokens[i];
	if (hit == NULL)
		return NULL;
	if (mono_ms > hit->last_ms + (uint64_t)a->env.token_ttl_s * 1000 ||
	    mono_ms > hit->created_ms + (uint64_t)ADMIN_TOKEN_ABSOLUTE_S * 1000) {
		memset(hit, 0, sizeof(*hit));
		return NULL;
	}
	hit->last_ms = mono_ms;
	return hit;
}

/* A new token for user, bound to the credentials its login was checked
 * against (cred_tag); writes its text. NULL when every slot is live. */
static struct token *token_new(struct admin *a, const char *user, enum admin_role role,
    uint64_t cred_tag, uint64_t mono_ms, char text[TOKEN_TEXT + 1])
{
	uint8_t raw[TOKEN_RAW];
	struct token *t = NULL, *oldest = NULL;
	size_t i;

	for (i = 0; i < ADMIN_MAX_TOKENS && t == NULL; i++) {
		struct token *c = &a->tokens[i];
		if (!c->used || mono_ms > c->last_ms + (uint64_t)a->env.token_ttl_s * 1000)
			t = c;
		else if (oldest == NULL || c->last_ms < oldest->last_ms)
			oldest = c;
	}
	/* Full of live tokens: the least recently used one goes. */
	if (t == NULL)
		t = oldest;
	if (RAND_bytes(raw, sizeof(raw)) != 1)
		return NULL;
	b64url_encode(raw, sizeof(raw), text);
	text[TOKEN_TEXT] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	memset(t, 0, sizeof(*t));
	sha256(text, TOKEN_TEXT, t->hash);
	t->used = true;
	snprintf(t->user, sizeof(t->user), "%s", user);
	t->role = role;
	t->created_ms = t->last_ms = mono_ms;
	t->cred_tag = cred_tag;
	return t;
}

static void tokens_revoke_user(struct admin *a, const char *user)
{
	size_t i;

	for (i = 0; i < ADMIN_MAX_TOKENS; i++)
		if (a->tokens[i].used && strcmp(a->tokens[i].user, user) == 0)
			memset(&a->tokens[i], 0, sizeof(a->tokens[i]));
}

/* A token is only as good as its user: deleted, disabled, no longer in an
 * admin group, or with a new password or TOTP secret (changed from the
 * CLI, say) and it stops working. */
static bool token_user_ok(struct admin *a, const struct token *t)
{
	struct identity_user who;
	struct userdb_entry e;
	size_t i;

	if (a->env.users == NULL || userdb_get(a->env.users, t->user, &e) != USERDB_OK ||
	    e.disabled || e.cred_tag != t->cred_tag)
		return false;
	memset(&who, 0, sizeof(who));
	for (i = 0; i < e.ngroups && i < IDENTITY_MAX_GROUPS; i++)
		snprintf(who.groups[i], sizeof(who.groups[i]), "%s", e.groups[i]);
	who.ngroups = i;
	return role_of(&who) >= t->role;
}

/* --- helpers ----------------------------------------------------------- */

static json_t *body_json(struct act *x)
{
	json_t *j;

	if (x->rq->body_len == 0)
		return NULL;
	j = json_loadb(x->rq->body, x->rq->body_len, JSON_REJECT_DUPLICATES, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static const char *jstr(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

static json_t *user_json(const struct userdb_entry *e)
{
	json_t *g = json_array();
	size_t i;

	for (i = 0; i < e->ngroups; i++)
		json_array_append_new(g, json_string(e->groups[i]));
	return json_pack("{s:s, s:o, s:b, s:b, s:I, s:I}", "name", e->name, "groups", g,
	    "totp", e->has_totp, "disabled", e->disabled, "failures",
	    (json_int_t)e->failures, "locked_until", (json_int_t)e->locked_until_s);
}

static bool need_users(struct act *x)
{
	if (x->a->env.users != NULL)
		return true;
	fail(x, 409, "conflict", "no local user backend is configured");
	return false;
}

/* Actions that hand out credentials (adding a user, setting a password or
 * a TOTP secret) need the acting admin's fresh TOTP code: a stolen token
 * alone must not be enough. An accepted code lets the same token do them
 * without one for ADMIN_STEPUP_S, so that adding users one after another
 * does not wait for a new code each time (TOTP codes are taken once). A
 * code that is sent is always checked. */
static bool actor_code_ok(struct act *x, json_t *body)
{
	const char *code = jstr(body, "actor_totp");

	if (code == NULL && x->now.mono_ms < x->tok->stepup_until_ms)
		return true;
	if (code != NULL && userdb_check_code(x->a->env.users, x->tok->user, code,
	    x->now.wall_ms / 1000) == USERDB_OK) {
		x->tok->stepup_until_ms = x->now.mono_ms + (uint64_t)ADMIN_STEPUP_S * 1000;
		return true;
	}
	fail(x, 403, "forbidden", "this action needs a fresh TOTP code of yours in \"actor_totp\"");
	return false;
}

/* --- handlers ---------------------------------------------------------- */

static void h_logout(struct act *x)
{
	audit(x, "admin.logout", "success", NULL);
	memset(x->tok, 0, sizeof(*x->tok));
	x->tok = NULL;
	x->out = json_pack("{s:b}", "ok", 1);
}

static void h_health(struct act *x)
{
	x->out = json_pack("{s:s}", "status", "ok");
}

static void h_status(struct act *x)
{
	struct admin_env *e = &x->a->env;

	x->out = json_pack("{s:s, s:I, s:I, s:I, s:I, s:b}", "version", GH_VERSION,
	    "uptime_s", (json_int_t)(clock_elapsed_ms(x->now.mono_ms, e->started_ms) / 1000),
	    "sessions", (json_int_t)hub_session_count(e->hub),
	    "calls", (json_int_t)hub_call_count(e->hub),
	    "allocations", (json_int_t)(e->alloc_count != NULL ? e->alloc_count(e->ctx) : 0),
	    "policy_file", e->policy_path[0] != '\0');
}

/* Lists of sessions, calls and users can have thousands of rows: every
 * so often, media gets the state lock (gateway/state_lock.h). The hub and
 * users.db are the main thread's alone, so they stay as they are. */
#define LIST_YIELD_EVERY 32

static void row_added(json_t *list)
{
	if (json_array_size(list) % LIST_YIELD_EVERY == 0)
		state_yield();
}

static void session_row(void *ctx, const struct hub_session_info *s)
{
	json_array_append_new(ctx, json_pack("{s:I, s:s, s:I}", "id", (json_int_t)s->id,
	    "user", s->user, "since_ms", (json_int_t)s->since_ms));
	row_added(ctx);
}

static void h_sessions(struct act *x)
{
	json_t *list = json_array();

	hub_each_session(x->a->env.hub, session_row, list);
	x->out = json_pack("{s:o}", "sessions", list);
}

static void h_session_close(struct act *x)
{
	char *end;
	unsigned long long id = strtoull(x->arg, &end, 10);

	if (*x->arg == '\0' || *end != '\0' || hub_close_session(x->a->env.hub, id, "closed by an operator") == 0) {
		fail(x, 404, "not_found", "no such session");
		audit(x, "admin.session.close", "failed", json_pack("{s:s}", "target", x->arg));
		return;
	}
	audit(x, "admin.session.close", "success", json_pack("{s:s}", "target", x->arg));
	x->out = json_pack("{s:I}", "closed", (json_int_t)id);
}

static json_t *media_list(unsigned media)
{
	json_t *a = json_array();
	unsigned bit;

	for (bit = 1; bit <= POLICY_DATA; bit <<= 1)
		if (media & bit)
			json_array_append_new(a, json_string(policy_media_name(bit)));
	return a;
}

static void call_row(void *ctx, const struct hub_call_info *c)
{
	json_array_append_new(ctx, json_pack("{s:s, s:s, s:s, s:o, s:s, s:b, s:s, s:I}",
	    "call", c->id, "caller", c->caller, "callee", c->callee, "media",
	    media_list(c->media), "state", c->accepted ? "accepted" : "ringing",
	    "record", c->record, "rule", c->rule, "since_ms", (json_int_t)c->since_ms));
	row_added(ctx);
}

static void h_calls(struct act *x)
{
	json_t *list = json_array();

	hub_each_call(x->a->env.hub, call_row, list);
	x->out = json_pack("{s:o}", "calls", list);
}

static void h_call_end(struct act *x)
{
	if (hub_end_call(x->a->env.hub, x->arg, "admin") != 0) {
		fail(x, 404, "not_found", "no such call");
		audit(x, "admin.call.end", "failed", json_pack("{s:s}", "target", x->arg));
		return;
	}
	audit(x, "admin.call.end", "success", json_pack("{s:s}", "target", x->arg));
	x->out = json_pack("{s:s}", "ended", x->arg);
}

static int user_row(void *ctx, const struct userdb_entry *e)
{
	json_array_append_new(ctx, user_json(e));
	row_added(ctx);
	return 0;
}

static void h_users(struct act *x)
{
	json_t *list = json_array();

	if (!need_users(x)) {
		json_decref(list);
		return;
	}
	userdb_list(x->a->env.users, user_row, list);
	x->out = json_pack("{s:o}", "users", list);
}

/* The client's address, as the login worker tells sources apart; NULL
 * when the adapter gave none it could read (all such share a source). */
static const struct sockaddr *remote_addr(const char *remote, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (remote == NULL || source_addr_parse(remote, ss) != 0)
		return NULL;
	return (const struct sockaddr *)ss;
}

/* The IP of a login's client, for the audit when its request is gone:
 * written as the adapter writes it (no port). */
static const char *remote_text(const struct sockaddr_storage *ss, char *buf, size_t cap)
{
	const void *a = NULL;

	if (ss->ss_family == AF_INET)
		a = &((const struct sockaddr_in *)ss)->sin_addr;
	else if (ss->ss_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	if (a == NULL || inet_ntop(ss->ss_family, a, buf, (socklen_t)cap) == NULL)
		snprintf(buf, cap, "?");
	return buf;
}

/* Sends password to the login worker to be hashed; the change c is made
 * when the hash comes back (admin_hash_done()). */
static struct pending_change *free_change(struct admin *a)
{
	size_t i;

	for (i = 0; i < MAX_PENDING; i++)
		if (a->changes[i].request == 0)
			return &a->changes[i];
	return NULL;
}

/* Whether a change could be started now; asked before anything is used
 * up (the acting admin's TOTP code), so that a busy answer costs nothing. */
static bool change_room(struct act *x)
{
	if (free_change(x->a) != NULL && login_worker_admin_has_room(x->a->env.logins))
		return true;
	fail(x, 503, "busy", "too many password changes in progress, try again");
	return false;
}

static void start_change(struct act *x, const struct pending_change *c, const char *password)
{
	struct pending_change *p = free_change(x->a);
	struct sockaddr_storage from;

	if (p == NULL || login_worker_submit_hash(x->a->env.logins, x->rq->id,
	    remote_addr(x->rq->remote, &from), password) != 0) {
		fail(x, 503, "busy", "too many password changes in progress, try again");
		return;
	}
	*p = *c;
	p->request = x->rq->id;
	snprintf(p->actor, sizeof(p->actor), "%s", x->tok->user);
	p->role = x->tok->role;
	memcpy(p->token_hash, x->tok->hash, sizeof(p->token_hash));
	snprintf(p->remote, sizeof(p->remote), "%s", x->rq->remote != NULL ? x->rq->remote : "");
	x->deferred = true;
}

static void h_user_add(struct act *x)
{
	json_t *body = body_json(x), *groups, *g;
	const char *name = jstr(body, "name"), *password = jstr(body, "password");
	struct pending_change c;
	struct userdb_entry e;
	bool valid;
	size_t i;

	if (!need_users(x))
		goto out;
	groups = json_object_get(body, "groups");
	if (name == NULL || password == NULL || (groups != NULL && !json_is_array(groups)) ||
	    json_array_size(groups) > IDENTITY_MAX_GROUPS) {
		fail(x, 400, "bad_request", "expected {name, password, groups: [..], totp: bool}");
		goto out;
	}
	memset(&c, 0, sizeof(c));
	c.kind = CHANGE_ADD;
	c.totp = json_is_true(json_object_get(body, "totp"));
	valid = userdb_name_ok(name) && userdb_password_ok(password);
	json_array_foreach(groups, i, g) {
		if (!json_is_string(g)) {
			fail(x, 400, "bad_request", "groups are strings");
			goto out;
		}
		valid = valid && userdb_name_ok(json_string_value(g));
		if (valid)
			snprintf(c.groups[c.ngroups++], sizeof(c.groups[0]), "%s", json_string_value(g));
	}
	/* Refused before the password is hashed; the database checks again
	 * when the user is written. */
	if (!valid || userdb_get(x->a->env.users, name, &e) == USERDB_OK) {
		fail(x, valid ? 409 : 400, valid ? "conflict" : "bad_request", valid ?
		    "the user exists" : "invalid name, group or password (8 to 1024 bytes)");
		audit(x, "admin.user.add", "failed", json_pack("{s:s}", "target", name));
		goto out;
	}
	/* The actor's code last, as for a password: a request refused for
	 * anything else does not use it up. */
	if (!change_room(x) || !actor_code_ok(x, body)) {
		audit(x, "admin.user.add", "failed", json_pack("{s:s}", "target", name));
		goto out;
	}
	snprintf(c.name, sizeof(c.name), "%s", name);
	start_change(x, &c, password);
out:
	json_decref(body);
}

static void finish_add(struct act *x, const struct pending_change *p, const char *hash)
{
	const char *gl[IDENTITY_MAX_GROUPS];
	char b32[64] = "", uri[512];
	json_t *groups = json_array();
	size_t i;
	int rc;

	for (i = 0; i < p->ngroups; i++) {
		gl[i] = p->groups[i];
		json_array_append_new(groups, json_string(p->groups[i]));
	}
	rc = userdb_add_hashed(x->a->env.users, p->name, hash, gl, p->ngroups, p->totp,
	    b32, sizeof(b32));
	if (rc != USERDB_OK) {
		if (rc == USERDB_EXISTS)
			fail(x, 409, "conflict", "the user exists");
		else
			fail(x, 500, "internal", "the user database refused the change");
		audit(x, "admin.user.add", "failed", json_pack("{s:s}", "target", p->name));
		json_decref(groups);
		return;
	}
	audit(x, "admin.user.add", "success", json_pack("{s:s, s:n, s:{s:o, s:b}}", "target",
	    p->name, "before", "after", "groups", groups, "totp", p->totp));
	x->out = json_pack("{s:s}", "name", p->name);
	if (p->totp && totp_uri("Gatehouse", p->name, b32, uri, sizeof(uri)) > 0)
		json_object_set_new(x->out, "otpauth", json_string(uri));
	OPENSSL_cleanse(b32, sizeof(b32));
	OPENSSL_cleanse(uri, sizeof(uri));
	x->a->env.users_changed(x->a->env.ctx);
}

/* Changes one user with fn; audits the entry before and after. */
static void user_change(struct act *x, const char *event, int (*fn)(struct act *x))
{
	struct userdb_entry before, after;
	int rc;

	if (!need_users(x))
		return;
	if (userdb_get(x->a->env.users, x->arg, &before) != USERDB_OK) {
		fail(x, 404, "not_found", "no such user");
		audit(x, event, "failed", json_pack("{s:s}", "target", x->arg));
		return;
	}
	rc = fn(x);
	if (rc != USERDB_OK) {
		if (x->out == NULL)
			fail(x, 500, "internal", "the user database refused the change");
		audit(x, event, "failed", json_pack("{s:s}", "target", x->arg));
		return;
	}
	if (userdb_get(x->a->env.users, x->arg, &after) != USERDB_OK)
		memset(&after, 0, sizeof(after));
	audit(x, event, "success", json_pack("{s:s, s:o, s:o}", "target", x->arg,
	    "before", user_json(&before), "after", after.name[0] ? user_json(&after) : json_null()));
	if (x->out == NULL)
		x->out = json_pack("{s:s}", "user", x->arg);
}

static int do_disable(struct act *x)
{
	int rc = userdb_set_disabled(x->a->env.users, x->arg, true);

	if (rc == USERDB_OK) {
		/* Zero trust: a disabled user's sessions and admin tokens end now. */
		x->a->env.users_changed(x->a->env.ctx);
		tokens_revoke_user(x->a, x->arg);
	}
	return rc;
}

static int do_enable(struct act *x)
{
	int rc = userdb_set_disabled(x->a->env.users, x->arg, false);

	if (rc == USERDB_OK)
		x->a->env.users_changed(x->a->env.ctx);
	return rc;
}

static int do_unlock(struct act *x)
{
	return userdb_unlock(x->a->env.users, x->arg);
}

static int do_delete(struct act *x)
{
	int rc = userdb_del(x->a->env.users, x->arg);

	if (rc == USERDB_OK) {
		x->a->env.users_changed(x->a->env.ctx);
		tokens_revoke_user(x->a, x->arg);
	}
	return rc;
}

/* POST /api/users/NAME/password: checked here, hashed on the login
 * worker, written in finish_password(). */
static void h_user_password(struct act *x)
{
	struct pending_change c;
	struct userdb_entry e;
	json_t *body;
	const char *pw;

	if (!need_users(x))
		return;
	if (userdb_get(x->a->env.users, x->arg, &e) != USERDB_OK) {
		fail(x, 404, "not_found", "no such user");
		audit(x, "admin.user.password", "failed", json_pack("{s:s}", "target", x->arg));
		return;
	}
	body = body_json(x);
	pw = jstr(body, "password");
	/* The actor's code is checked, and so used up, last: a request
	 * refused for anything else can be sent again with the same code. */
	if (pw == NULL) {
		fail(x, 400, "bad_request", "expected {password, actor_totp}");
	} else if (!userdb_password_ok(pw)) {
		fail(x, 400, "bad_request", "passwords are 8 to 1024 bytes");
	} else if (!change_room(x) || !actor_code_ok(x, body)) {
		/* Answered. */
	} else {
		memset(&c, 0, sizeof(c));
		c.kind = CHANGE_PASSWORD;
		snprintf(c.name, sizeof(c.name), "%s", x->arg);
		start_change(x, &c, pw);
	}
	if (!x->deferred)
		audit(x, "admin.user.password", "failed", json_pack("{s:s}", "target", x->arg));
	json_decref(body);
}

static void finish_password(struct act *x, const struct pending_change *p, const char *hash)
{
	struct userdb_entry before, after;
	int rc;

	if (userdb_get(x->a->env.users, p->name, &before) != USERDB_OK) {
		fail(x, 404, "not_found", "no such user");
		audit(x, "admin.user.password", "failed", json_pack("{s:s}", "target", p->name));
		return;
	}
	rc = userdb_passwd_hashed(x->a->env.users, p->name, hash);
	if (rc != USERDB_OK) {
		fail(x, rc == USERDB_NOTFOUND ? 404 : 500, rc == USERDB_NOTFOUND ? "not_found" :
		    "internal", rc == USERDB_NOTFOUND ? "no such user" :
		    "the user database refused the change");
		audit(x, "admin.user.password", "failed", json_pack("{s:s}", "target", p->name));
		return;
	}
	/* A new password ends the sessions the old one opened. */
	tokens_revoke_user(x->a, p->name);
	if (userdb_get(x->a->env.users, p->name, &after) != USERDB_OK)
		memset(&after, 0, sizeof(after));
	audit(x, "admin.user.password", "success", json_pack("{s:s, s:o, s:o}", "target",
	    p->name, "before", user_json(&before), "after", after.name[0] ? user_json(&after) :
	    json_null()));
	x->out = json_pack("{s:s}", "user", p->name);
}

static int do_totp(struct act *x)
{
	json_t *body = body_json(x);
	char b32[64] = "", uri[512];
	int rc = USERDB_INVALID;

	if (actor_code_ok(x, body) &&
	    (rc = userdb_totp_reset(x->a->env.users, x->arg, b32, sizeof(b32))) == USERDB_OK &&
	    totp_uri("Gatehouse", x->arg, b32, uri, sizeof(uri)) > 0)
		x->out = json_pack("{s:s, s:s}", "user", x->arg, "otpauth", uri);
	OPENSSL_cleanse(b32, sizeof(b32));
	json_decref(body);
	return rc;
}

static void h_user_disable(struct act *x) { user_change(x, "admin.user.disable", do_disable); }
static void h_user_enable(struct act *x) { user_change(x, "admin.user.enable", do_enable); }
static void h_user_unlock(struct act *x) { user_change(x, "admin.user.unlock", do_unlock); }
static void h_user_delete(struct act *x) { user_change(x, "admin.user.delete", do_delete); }
static void h_user_totp(struct act *x) { user_change(x, "admin.user.totp", do_totp); }


static void h_policy_get(struct act *x)
{
	char *text = x->a->env.policy_text != NULL ? x->a->env.policy_text(x->a->env.ctx) : NULL;
	json_t *p = text != NULL ? json_loads(text, 0, NULL) : NULL;

	free(text);
	if (p == NULL) {
		fail(x, 404, "not_found", "no policy is running (every call is denied)");
		return;
	}
	x->out = json_pack("{s:o}", "policy", p);
}

static void count_line(void *ctx, const char *text)
{
	(void)text;
	(*(json_int_t *)ctx)++;
}

static void list_add(void *ctx, const char *text)
{
	json_array_append_new(ctx, json_string(text));
}

/* Adds "undeclared_groups" to a policy answer when rules name groups that
 * "groups" does not list: accepted, and shown so that a client can flag a
 * misspelt one. Absent otherwise, so the usual answer stays as it was. */
static void add_undeclared(json_t *out, const struct policy *p)
{
	json_t *list = json_array();

	policy_each_undeclared(p, list_add, list);
	if (json_array_size(list) > 0)
		json_object_set(out, "undeclared_groups", list);
	json_decref(list);
}

static void h_policy_validate(struct act *x)
{
	char err[512];
	struct policy *p = policy_parse(x->rq->body, x->rq->body_len, err, sizeof(err));
	json_int_t rules = 0;

	if (p == NULL) {
		fail(x, 400, "invalid_policy", err);
		return;
	}
	policy_describe(p, count_line, &rules);
	x->out = json_pack("{s:b, s:I}", "ok", 1, "rules", rules);
	add_undeclared(x->out, p);
	policy_free(p);
}

static void h_policy_put(struct act *x)
{
	char err[512], *before_text;
	json_t *before = NULL, *after;
	struct policy *p;
	int rc;

	if (x->a->env.policy_path[0] == '\0') {
		fail(x, 409, "conflict", "no policy file is configured; set policy.file first");
		return;
	}
	before_text = x->a->env.policy_text != NULL ? x->a->env.policy_text(x->a->env.ctx) : NULL;
	if (before_text != NULL)
		before = json_loads(before_text, 0, NULL);
	free(before_text);
	rc = x->a->env.policy_replace(x->a->env.ctx, x->rq->body, x->rq->body_len, err,
	    sizeof(err));
	if (rc != 0) {
		if (rc == -2)
			fail(x, 500, "internal", err);
		else
			fail(x, 400, "invalid_policy", err);
		audit(x, "admin.policy.replace", "failed", json_pack("{s:s, s:s}", "target",
		    x->a->env.policy_path, "reason", err));
		json_decref(before);
		return;
	}
	after = json_loadb(x->rq->body, x->rq->body_len, 0, NULL);
	audit(x, "admin.policy.replace", "success", json_pack("{s:s, s:o, s:o}", "target",
	    x->a->env.policy_path, "before", before != NULL ? before : json_null(),
	    "after", after != NULL ? after : json_null()));
	/* Parsed again only for the list: it was valid a moment ago. */
	p = policy_parse(x->rq->body, x->rq->body_len, err, sizeof(err));
	x->out = json_pack("{s:b}", "ok", 1);
	add_undeclared(x->out, p);
	policy_free(p);
}

/* Reads one query parameter's value (no percent-decoding: the values we
 * take are numbers, names and event names). */
static bool query_get(const char *q, const char *key, char *out, size_t cap)
{
	size_t klen = strlen(key), n;
	const char *p = q, *end;

	while (p != NULL && *p != '\0') {
		end = strchr(p, '&');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			n -= klen + 1;
			if (n >= cap)
				return false;
			memcpy(out, p + klen + 1, n);
			out[n] = '\0';
			return true;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return false;
}

static bool query_u64(const char *q, const char *key, uint64_t *v)
{
	char buf[32], *end;

	if (!query_get(q, key, buf, sizeof(buf)))
		return true;
	if (buf[0] < '0' || buf[0] > '9')
		return false; /* strtoull would take "-1" */
	*v = strtoull(buf, &end, 10);
	return *end == '\0';
}

static void h_audit(struct act *x)
{
	uint64_t since = 0, until = 0, limit = AUDIT_DEFAULT_LIMIT;
	struct audit_filter f;

	if (!query_u64(x->rq->query, "since", &since) || !query_u64(x->rq->query, "until", &until) ||
	    !query_u64(x->rq->query, "limit", &limit) || limit == 0 || limit > AUDIT_MAX_LIMIT) {
		fail(x, 400, "bad_request", "since and until are UNIX milliseconds, limit 1..10000");
		return;
	}
	memset(&f, 0, sizeof(f));
	f.since_ms = since;
	f.until_ms = until;
	f.limit = (size_t)limit;
	f.has_user = query_get(x->rq->query, "user", f.user, sizeof(f.user));
	f.has_event = query_get(x->rq->query, "event", f.event, sizeof(f.event));
	/* A query reads the whole audit file, which can take a second: on
	 * the audit reader's thread, answered later. */
	if (audit_reader_submit(x->a->env.audit_reader, x->rq->id, &f) == 0)
		x->deferred = true;
	else
		fail(x, 503, "busy", "too many audit queries in progress, try again");
}

static void block_row(void *ctx, const char *ip, uint64_t until_ms, const char *why)
{
	json_array_append_new(ctx, json_pack("{s:s, s:I, s:s}", "source", ip, "until_ms",
	    (json_int_t)until_ms, "reason", why));
}

static void h_blocks(struct act *x)
{
	json_t *list = json_array();

	if (x->a->env.blocks != NULL)
		blocklist_each(x->a->env.blocks, x->now.mono_ms, x->now.wall_ms, block_row, list);
	x->out = json_pack("{s:o}", "blocks", list);
}

static void h_block_del(struct act *x)
{
	if (x->a->env.blocks == NULL || blocklist_del(x->a->env.blocks, x->arg) != 0) {
		fail(x, 404, "not_found", "that source is not blocked");
		return;
	}
	audit(x, "admin.block.remove", "success", json_pack("{s:s}", "target", x->arg));
	x->out = json_pack("{s:s}", "unblocked", x->arg);
}

typedef void (*handler_fn)(struct act *x);

/* Least privilege: each endpoint names the weakest role that may use it.
 * "*" in a pattern is one path segment, handed to the handler. */
static const struct {
	enum admin_method method;
	const char *pattern;
	enum admin_role least;
	handler_fn fn;
} routes[] = {
	{ ADMIN_GET, "/api/health", ADMIN_ROLE_NONE, h_health },
	{ ADMIN_POST, "/api/logout", ADMIN_ROLE_AUDITOR, h_logout },
	{ ADMIN_GET, "/api/status", ADMIN_ROLE_AUDITOR, h_status },
	{ ADMIN_GET, "/api/sessions", ADMIN_ROLE_AUDITOR, h_sessions },
	{ ADMIN_DELETE, "/api/sessions/*", ADMIN_ROLE_OPERATOR, h_session_close },
	{ ADMIN_GET, "/api/calls", ADMIN_ROLE_AUDITOR, h_calls },
	{ ADMIN_DELETE, "/api/calls/*", ADMIN_ROLE_OPERATOR, h_call_end },
	{ ADMIN_GET, "/api/users", ADMIN_ROLE_AUDITOR, h_users },
	{ ADMIN_POST, "/api/users", ADMIN_ROLE_ADMIN, h_user_add },
	{ ADMIN_POST, "/api/users/*/disable", ADMIN_ROLE_ADMIN, h_user_disable },
	{ ADMIN_POST, "/api/users/*/enable", ADMIN_ROLE_ADMIN, h_user_enable },
	{ ADMIN_POST, "/api/users/*/unlock", ADMIN_ROLE_OPERATOR, h_user_unlock },
	{ ADMIN_POST, "/api/users/*/password", ADMIN_ROLE_ADMIN, h_user_password },
	{ ADMIN_POST, "/api/users/*/totp", ADMIN_ROLE_ADMIN, h_user_totp },
	{ ADMIN_DELETE, "/api/users/*", ADMIN_ROLE_ADMIN, h_user_delete },
	{ ADMIN_GET, "/api/policy", ADMIN_ROLE_AUDITOR, h_policy_get },
	{ ADMIN_POST, "/api/policy/validate", ADMIN_ROLE_ADMIN, h_policy_validate },
	{ ADMIN_PUT, "/api/policy", ADMIN_ROLE_ADMIN, h_policy_put },
	{ ADMIN_GET, "/api/audit", ADMIN_ROLE_AUDITOR, h_audit },
	{ ADMIN_GET, "/api/blocks", ADMIN_ROLE_AUDITOR, h_blocks },
	{ ADMIN_DELETE, "/api/blocks/*", ADMIN_ROLE_OPERATOR, h_block_del },
};

/* Matches path against pattern; the "*" segment goes to arg. */
static bool route_match(const char *pattern, const char *path, char *arg, size_t cap)
{
	const char *star = strchr(pattern, '*');
	size_t pre, post, plen = strlen(path), n;

	if (star == NULL)
		return strcmp(pattern, path) == 0;
	pre = (size_t)(star - pattern);
	post = strlen(star + 1);
	if (plen < pre + post + 1 || strncmp(path, pattern, pre) != 0 ||
	    strcmp(path + plen - post, star + 1) != 0)
		return false;
	n = plen - pre - post;
	if (n >= cap || memchr(path + pre, '/', n) != NULL)
		return false;
	memcpy(arg, path + pre, n);
	arg[n] = '\0';
	return true;
}

static bool origin_ok(struct admin *a, const char *origin)
{
	size_t i;

	if (origin == NULL)
		return true;
	for (i = 0; i < a->env.norigins; i++)
		if (strcmp(a->env.origins[i], origin) == 0)
			return true;
	return false;
}

static bool name_ok(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n >= IDENTITY_NAME_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' ||
		    s[i] == '@' || s[i] == '-'))
			return false;
	return true;
}

/* POST /api/login: checked on the login worker; answered later. */
static bool start_login(struct act *x)
{
	struct admin *a = x->a;
	json_t *body = body_json(x);
	const char *user = jstr(body, "user"), *pw = jstr(body, "password");
	const char *code = jstr(body, "totp");
	struct pending_login *p = NULL;
	struct sockaddr_storage from;
	size_t i;

	for (i = 0; i < MAX_PENDING && p == NULL; i++)
		if (a->pending[i].request == 0)
			p = &a->pending[i];
	if (user == NULL || pw == NULL || code == NULL) {
		/* Password and code, always: an admin login without MFA is
		 * refused before anything is checked. */
		fail(x, 401, "unauthorized", "login needs user, password and totp");
		audit(x, "admin.login", "failed", json_pack("{s:s, s:s}", "user",
		    user != NULL ? user : "", "reason", "missing password or code"));
	} else if (!name_ok(user)) {
		json_t *who = strlen(user) < 256 ? json_string(user) : NULL;

		/* Not a name any account can have: refused without a lookup. The
		 * audit keeps what was sent when it is short, valid UTF-8. */
		fail(x, 401, "unauthorized", "authentication failed");
		audit(x, "admin.login", "failed", json_pack("{s:o, s:s}", "user",
		    who != NULL ? who : json_string(""), "reason", "not a valid user name"));
	} else if (p == NULL || login_worker_submit_admin(a->env.logins, x->rq->id,
	    remote_addr(x->rq->remote, &from), user, pw, code, x->now.wall_ms / 1000) != 0) {
		/* The worker's admin room is full, or this address already has
		 * its share of logins being checked. */
		fail(x, 503, "busy", "too many logins in progress, try again");
	} else {
		p->request = x->rq->id;
		snprintf(p->user, sizeof(p->user), "%s", user);
		snprintf(p->remote, sizeof(p->remote), "%s", x->rq->remote != NULL ? x->rq->remote : "");
		json_decref(body);
		return false;
	}
	json_decref(body);
	return true;
}

static char *dump(json_t *j)
{
	char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s != NULL ? s : strdup("{}");
}

bool admin_handle(struct admin *a, const struct admin_request *rq, struct clock_pair now,
    int *status, char **body, const char **content_type)
{
	struct act x;
	bool path_known = false;
	unsigned held;
	size_t i;

	*content_type = "application/json";
	if (rq->method == ADMIN_GET && strcmp(rq->path, "/metrics") == 0 &&
	    origin_ok(a, rq->origin) && a->env.metrics != NULL &&
	    (*body = a->env.metrics(a->env.ctx)) != NULL) {
		*status = 200;
		*content_type = "text/plain; version=0.0.4";
		return true;
	}

	memset(&x, 0, sizeof(x));
	x.a = a;
	x.rq = rq;
	x.now = now;
	x.status = 200;
	if (!origin_ok(a, rq->origin)) {
		/* A page of another site must not drive the API through an
		 * admin's browser. */
		fail(&x, 403, "forbidden", "cross-origin requests are refused");
		goto out;
	}
	if (rq->method == ADMIN_POST && strcmp(rq->path, "/api/login") == 0) {
		if (!start_login(&x))
			return false;
		goto out;
	}
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!route_match(routes[i].pattern, rq->path, x.argbuf, sizeof(x.argbuf)))
			continue;
		path_known = true;
		if (routes[i].method != rq->method)
			continue;
		x.arg = x.argbuf;
		if (routes[i].least != ADMIN_ROLE_NONE) {
			x.tok = token_find(a, rq->authorization, now.mono_ms);
			if (x.tok != NULL && !token_user_ok(a, x.tok)) {
				memset(x.tok, 0, sizeof(*x.tok));
				x.tok = NULL;
			}
			if (x.tok == NULL) {
				fail(&x, 401, "unauthorized", "log in first (missing, expired or revoked token)");
				goto out;
			}
			if (x.tok->role < routes[i].least) {
				fail(&x, 403, "forbidden", "your role may not do this");
				audit(&x, "admin.denied", "denied", json_pack("{s:s, s:s}", "target",
				    rq->path, "needs", role_name(routes[i].least)));
				goto out;
			}
		}
		routes[i].fn(&x);
		if (x.deferred)
			return false;
		goto out;
	}
	if (path_known)
		fail(&x, 405, "method_not_allowed", "method not allowed here");
	else
		fail(&x, 404, "not_found", "no such endpoint");
out:
	*status = x.status;
	/* The answer is ours alone, and a list of thousands of users takes
	 * milliseconds to write out: without the state lock. */
	held = state_suspend();
	*body = dump(x.out);
	state_resume(held);
	return true;
}

/* The act of a deferred request, taken up again when its work is done:
 * only the source address is left of the request itself. */
static void deferred_act(struct act *x, struct admin *a, struct admin_request *rq,
    const char *remote, struct clock_pair now)
{
	memset(rq, 0, sizeof(*rq));
	rq->remote = remote;
	memset(x, 0, sizeof(*x));
	x->a = a;
	x->rq = rq;
	x->now = now;
	x->status = 200;
}

/* Sends x's answer to a deferred request, then wipes it: it may hold a
 * new token or a TOTP secret. */
static void deferred_reply(struct act *x, uint64_t request)
{
	char *body = dump(x->out);

	x->out = NULL;
	x->a->env.reply(x->a->env.ctx, request, x->status, body, strlen(body));
	OPENSSL_cleanse(body, strlen(body));
	free(body);
}

void admin_login_done(struct admin *a, const struct login_result *r, struct clock_pair now)
{
	struct admin_request rq;
	struct pending_login *p = NULL;
	struct token *t = NULL, gone;
	struct act x;
	enum admin_role role;
	char text[TOKEN_TEXT + 1], ip[INET6_ADDRSTRLEN];
	const char *remote;
	size_t i;

	for (i = 0; i < MAX_PENDING && p == NULL; i++)
		if (a->pending[i].request == r->session && r->session != 0)
			p = &a->pending[i];
	/* Without p the request is gone (its connection closed while the
	 * check ran): nobody hears the answer, but the check was made, and a
	 * failure counted toward the user's lockout, so it is audited and
	 * fed to the detectors all the same, from what the job carried. */
	remote = p != NULL ? p->remote : remote_text(&r->from, ip, sizeof(ip));
	deferred_act(&x, a, &rq, remote, now);
	role = r->rc == IDENTITY_OK ? role_of(&r->who) : ADMIN_ROLE_NONE;
	if (role != ADMIN_ROLE_NONE && p == NULL) {
		/* No token for nobody: it would only push a live one out. */
		memset(&gone, 0, sizeof(gone));
		snprintf(gone.user, sizeof(gone.user), "%s", r->who.name);
		gone.role = role;
		x.tok = &gone;
		audit(&x, "admin.login", "success", json_pack("{s:b}", "unanswered", 1));
		return;
	}
	if (role != ADMIN_ROLE_NONE)
		t = token_new(a, r->who.name, role, r->cred_tag, now.mono_ms, text);
	if (t == NULL) {
		json_t *more = json_pack("{s:s, s:s}", "user", r->user,
		    "reason", r->rc != IDENTITY_OK ? r->why : "no admin role");

		if (p == NULL)
			json_object_set_new(more, "unanswered", json_true());
		/* The same answer for every reason, including "not an admin". */
		fail(&x, 401, "unauthorized", "authentication failed");
		audit(&x, "admin.login", "failed", more);
		if (a->env.login_failed != NULL)
			a->env.login_failed(a->env.ctx, r->user, remote);
	} else {
		x.tok = t;
		x.out = json_pack("{s:s, s:s, s:s, s:i}", "token", text, "role", role_name(role),
		    "user", r->who.name, "expires_in", (int)a->env.token_ttl_s);
		audit(&x, "admin.login", "success", NULL);
		OPENSSL_cleanse(text, sizeof(text));
	}
	if (p == NULL) {
		json_decref(x.out);
		return;
	}
	deferred_reply(&x, p->request);
	memset(p, 0, sizeof(*p));
}

void admin_audit_done(struct admin *a, uint64_t request, const char *body)
{
	static const char no_memory[] =
	    "{\"error\":\"internal\",\"message\":\"out of memory while reading the audit trail\"}";

	if (body != NULL)
		a->env.reply(a->env.ctx, request, 200, body, strlen(body));
	else
		a->env.reply(a->env.ctx, request, 500, no_memory, sizeof(no_memory) - 1);
}

/* The hash took a moment: the admin who asked may have logged out, been
 * disabled or lost the role meanwhile, and then the change is not made. */
static bool actor_still_ok(struct admin *a, const struct pending_change *p)
{
	size_t i;
	bool ok = false;

	for (i = 0; i < ADMIN_MAX_TOKENS; i++)
		if (a->tokens[i].used && CRYPTO_memcmp(a->tokens[i].hash, p->token_hash, 32) == 0)
			ok = token_user_ok(a, &a->tokens[i]) && a->tokens[i].role >= p->role;
	return ok;
}

void admin_hash_done(struct admin *a, const struct login_result *r, struct clock_pair now)
{
	struct admin_request rq;
	struct pending_change *p = NULL;
	struct token tok;
	struct act x;
	size_t i;

	for (i = 0; i < MAX_PENDING && p == NULL; i++)
		if (a->changes[i].request == r->session && r->session != 0)
			p = &a->changes[i];
	/* The request is gone (its connection closed): nothing is changed,
	 * as nobody would hear of it. */
	if (p == NULL)
		return;
	deferred_act(&x, a, &rq, p->remote, now);
	memset(&tok, 0, sizeof(tok));
	snprintf(tok.user, sizeof(tok.user), "%s", p->actor);
	tok.role = p->role;
	x.tok = &tok;
	if (!actor_still_ok(a, p)) {
		fail(&x, 401, "unauthorized", "your token was revoked while the change was made");
		audit(&x, p->kind == CHANGE_ADD ? "admin.user.add" : "admin.user.password", "failed",
		    json_pack("{s:s}", "target", p->name));
	} else if (r->rc != IDENTITY_OK) {
		fail(&x, 500, "internal", "the password could not be hashed");
		audit(&x, p->kind == CHANGE_ADD ? "admin.user.add" : "admin.user.password", "failed",
		    json_pack("{s:s}", "target", p->name));
	} else if (p->kind == CHANGE_ADD) {
		finish_add(&x, p, r->pw_hash);
	} else {
		finish_password(&x, p, r->pw_hash);
	}
	deferred_reply(&x, p->request);
	memset(p, 0, sizeof(*p));
}

void admin_request_gone(struct admin *a, uint64_t request)
{
	size_t i;

	for (i = 0; i < MAX_PENDING; i++) {
		if (a->pending[i].request != request && a->changes[i].request != request)
			continue;
		/* Still queued: dropped before it costs anything (and then it
		 * is no attempt). Already checked or being checked: its result
		 * carries what the audit needs (admin_login_done()), or, for a
		 * hash, finds no change to make (admin_hash_done()). */
		(void)login_worker_cancel(a->env.logins, true, request);
		if (a->pending[i].request == request)
			memset(&a->pending[i], 0, sizeof(a->pending[i]));
		if (a->changes[i].request == request)
			memset(&a->changes[i], 0, sizeof(a->changes[i]));
	}
}

struct admin *admin_new(const struct admin_env *env)
{
	struct admin *a = calloc(1, sizeof(*a));

	if (a != NULL)
		a->env = *env;
	return a;
}

void admin_free(struct admin *a)
{
	if (a == NULL)
		return;
	OPENSSL_cleanse(a->tokens, sizeof(a->tokens));
	free(a);
}
