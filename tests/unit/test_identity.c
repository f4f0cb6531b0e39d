/* Unit tests for signaling/identity.c: the local backend under each MFA
 * rule (required, optional, off), one answer for every refusal with the
 * reason given apart, the groups lookup, and token logins through two
 * JWT backends (tokens minted by tests/unit/jwt_sign.h). */
#include "signaling/identity.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signaling/jwt.h"
#include "signaling/password.h"
#include "signaling/totp.h"
#include "signaling/userdb.h"
#include "tests/unit/check.h"

/* Any 32 bytes: the key that seals the TOTP secrets. */
static const uint8_t test_key[USERDB_KEY_LEN] = { 0x6b, 0x65, 0x79 };
#include "tests/unit/jwt_sign.h"

#define T0 1700000000ull

static char tmpdir[256];
static char err[512];
static char alice_b32[40];
/* Each login uses a later step, so that codes are never replays. */
static uint64_t now_s = T0;

static void code_now(char out[8])
{
	uint8_t secret[64];
	int n = totp_base32_decode(alice_b32, secret, sizeof(secret));

	now_s += TOTP_STEP_S;
	snprintf(out, 8, "%06u", (unsigned)totp_hotp(secret, (size_t)(n > 0 ? n : 0),
	    now_s / TOTP_STEP_S));
}

static struct identity *make(struct userdb *db, enum config_mfa mfa)
{
	struct config_identity cfg;
	struct identity *id;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mfa = mfa;
	cfg.backends[0].type = CONFIG_BACKEND_LOCAL;
	cfg.nbackends = 1;
	id = identity_new(&cfg, db, err, sizeof(err));
	if (id == NULL) {
		fprintf(stderr, "identity_new: %s\n", err);
		exit(2);
	}
	return id;
}

/* Logs in and checks the answer: IDENTITY_OK when want_why is NULL,
 * otherwise IDENTITY_FAILED with that reason and nothing in out. */
static void login(struct identity *id, const char *user, const char *pw,
    const char *code, const char *want_why, int line)
{
	static const struct identity_user zero;
	struct identity_user out;
	const char *why = "unset";
	int rc;

	memset(&out, 0xa5, sizeof(out));
	rc = identity_login_password(id, user, pw, code, now_s, &out, &why);
	if (want_why == NULL) {
		if (rc != IDENTITY_OK)
			fprintf(stderr, "line %d: refused: %s\n", line, why ? why : "(null)");
		CHECK_EQ_INT(rc, IDENTITY_OK);
		CHECK(strcmp(out.name, user) == 0);
		CHECK_EQ_INT(out.expires_s, 0);
	} else {
		if (rc != IDENTITY_FAILED || why == NULL || strcmp(why, want_why) != 0)
			fprintf(stderr, "line %d: rc %d why \"%s\", want \"%s\"\n", line, rc,
			    why ? why : "(null)", want_why);
		CHECK_EQ_INT(rc, IDENTITY_FAILED);
		CHECK(why != NULL && strcmp(why, want_why) == 0);
		CHECK(memcmp(&out, &zero, sizeof(out)) == 0);
	}
}

#define LOGIN(id, u, p, c, w) login(id, u, p, c, w, __LINE__)

static bool login_mfa(struct identity *id, const char *user, const char *pw, const char *code)
{
	struct identity_user out;
	const char *why;

	memset(&out, 0, sizeof(out));
	CHECK_EQ_INT(identity_login_password(id, user, pw, code, now_s, &out, &why),
	    IDENTITY_OK);
	return out.mfa;
}

static void test_required(struct userdb *db)
{
	struct identity *id = make(db, CONFIG_MFA_REQUIRED);
	struct identity_user out;
	const char *why;
	char code[8], wrong[8];

	code_now(code);
	CHECK_EQ_INT(identity_login_password(id, "alice", "alice password", code, now_s,
	    &out, &why), IDENTITY_OK);
	CHECK(strcmp(out.name, "alice") == 0);
	CHECK(out.mfa);
	CHECK_EQ_INT(out.ngroups, 2);
	CHECK(strcmp(out.groups[0], "admins") == 0);
	CHECK(strcmp(out.groups[1], "sales") == 0);
	/* The same code again. */
	LOGIN(id, "alice", "alice password", code, "bad code");

	/* Every refusal is the same IDENTITY_FAILED; only why differs. */
	code_now(code);
	snprintf(wrong, sizeof(wrong), "%c%s", code[0] == '9' ? '0' : code[0] + 1, code + 1);
	LOGIN(id, "nobody", "alice password", code, "unknown user");
	LOGIN(id, "alice", "wrong password", code, "bad password");
	LOGIN(id, "alice", "alice password", wrong, "bad code");
	LOGIN(id, "alice", "alice password", NULL, "code required");
	LOGIN(id, "alice", "alice password", "", "code required");
	/* Five failures in a row: alice is locked now. */
	LOGIN(id, "alice", "alice password", code, "locked");
	CHECK_EQ_INT(userdb_unlock(db, "alice"), USERDB_OK);
	/* A user without TOTP cannot meet the rule. */
	LOGIN(id, "bob", "bob password", code, "no TOTP enrolled");
	LOGIN(id, "bob", "bob password", NULL, "no TOTP enrolled");
	LOGIN(id, "alice", "alice password", code, NULL);
	CHECK_EQ_INT(userdb_unlock(db, "bob"), USERDB_OK);
	identity_free(id);
}

static void test_optional(struct userdb *db)
{
	struct identity *id = make(db, CONFIG_MFA_OPTIONAL);
	char code[8];

	/* Without TOTP, the password is enough; with it, a code is needed. */
	CHECK(!login_mfa(id, "bob", "bob password", NULL));
	CHECK(!login_mfa(id, "bob", "bob password", "123456"));
	LOGIN(id, "alice", "alice password", NULL, "code required");
	LOGIN(id, "alice", "alice password", "000000x", "bad code");
	code_now(code);
	CHECK(login_mfa(id, "alice", "alice password", code));
	LOGIN(id, "alice", "alice password", code, "bad code");
	LOGIN(id, "bob", "wrong password", NULL, "bad password");
	LOGIN(id, "nobody", "bob password", NULL, "unknown user");
	identity_free(id);
}

static void test_off(struct userdb *db)
{
	struct identity *id = make(db, CONFIG_MFA_OFF);

	/* The code is not looked at, and mfa says so. */
	CHECK(!login_mfa(id, "alice", "alice password", NULL));
	CHECK(!login_mfa(id, "alice", "alice password", "garbage"));
	CHECK(!login_mfa(id, "bob", "bob password", NULL));
	LOGIN(id, "alice", "wrong password", NULL, "bad password");
	LOGIN(id, "nobody", "alice password", NULL, "unknown user");
	LOGIN(id, NULL, "alice password", NULL, "unknown user");
	LOGIN(id, "bad name", "alice password", NULL, "unknown user");
	identity_free(id);
}

static void test_locked_disabled(struct userdb *db)
{
	struct identity *id = make(db, CONFIG_MFA_OFF);
	int i;

	CHECK_EQ_INT(userdb_add(db, "carol", "carol password", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	for (i = 0; i < USERDB_LOCK_AFTER; i++)
		LOGIN(id, "carol", "guess", NULL, "bad password");
	LOGIN(id, "carol", "carol password", NULL, "locked");
	CHECK_EQ_INT(userdb_unlock(db, "carol"), USERDB_OK);
	LOGIN(id, "carol", "carol password", NULL, NULL);
	CHECK_EQ_INT(userdb_set_disabled(db, "carol", true), USERDB_OK);
	LOGIN(id, "carol", "carol password", NULL, "disabled");
	identity_free(id);
}

static void test_backends(struct userdb *db)
{
	struct config_identity cfg;
	struct identity_user out;
	struct identity *id;
	const char *why = NULL;

	/* A local backend needs the database. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.backends[0].type = CONFIG_BACKEND_LOCAL;
	cfg.nbackends = 1;
	err[0] = '\0';
	CHECK(identity_new(&cfg, NULL, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "identity.backends[0]") != NULL);

	/* Without a local backend, password logins are refused, even when a
	 * database is at hand; so are tokens without a JWT backend. */
	cfg.nbackends = 0;
	id = identity_new(&cfg, db, err, sizeof(err));
	CHECK(id != NULL);
	LOGIN(id, "bob", "bob password", NULL, "no local backend");
	CHECK_EQ_INT(identity_login_token(id, "x.y.z", 5, now_s, &out, &why), IDENTITY_FAILED);
	CHECK(why != NULL && strcmp(why, "no token backend") == 0);
	CHECK_EQ_INT(identity_user_groups(id, "alice", &out), IDENTITY_FAILED);
	identity_free(id);
	identity_free(NULL);
}

static void test_groups(struct userdb *db)
{
	struct identity *id = make(db, CONFIG_MFA_REQUIRED);
	struct identity_user out;

	CHECK_EQ_INT(identity_user_groups(id, "alice", &out), IDENTITY_OK);
	CHECK(strcmp(out.name, "alice") == 0);
	CHECK_EQ_INT(out.ngroups, 2);
	CHECK(strcmp(out.groups[1], "sales") == 0);
	CHECK(!out.mfa);
	CHECK_EQ_INT(identity_user_groups(id, "bob", &out), IDENTITY_OK);
	CHECK_EQ_INT(out.ngroups, 0);
	CHECK_EQ_INT(identity_user_groups(id, "nobody", &out), IDENTITY_FAILED);
	CHECK_EQ_INT(identity_user_groups(id, "bad name", &out), IDENTITY_FAILED);
	identity_free(id);
}

/* ---- tokens ---- */

static EVP_PKEY *key_a, *key_b;

static void write_jwks(const char *file, EVP_PKEY *key, const char *kid)
{
	char path[PATH_MAX];
	char *jwk = jws_jwk(key, kid, NULL, 0);
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, file);
	if ((f = fopen(path, "w")) == NULL || fprintf(f, "{\"keys\":[%s]}", jwk) < 0 ||
	    fclose(f) != 0) {
		perror(path);
		exit(2);
	}
	free(jwk);
}

static void jwt_backend(struct config_backend *b, const char *issuer, const char *file)
{
	memset(b, 0, sizeof(*b));
	b->type = CONFIG_BACKEND_JWT;
	snprintf(b->issuer, sizeof(b->issuer), "%s", issuer);
	snprintf(b->audience, sizeof(b->audience), "gatehouse");
	snprintf(b->jwks_file, sizeof(b->jwks_file), "%s/%s", tmpdir, file);
	snprintf(b->user_claim, sizeof(b->user_claim), "sub");
	snprintf(b->groups_claim, sizeof(b->groups_claim), "groups");
}

/* A local backend and two issuers, "https://a.example" (kid "a") and
 * "https://b.example" (kid "b"). */
static struct identity *make_jwt(struct userdb *db, enum config_mfa mfa)
{
	struct config_identity cfg;
	struct identity *id;

	memset(&cfg, 0, sizeof(cfg));
	cfg.mfa = mfa;
	cfg.backends[0].type = CONFIG_BACKEND_LOCAL;
	jwt_backend(&cfg.backends[1], "https://a.example", "jwks-a.json");
	jwt_backend(&cfg.backends[2], "https://b.example", "jwks-b.json");
	cfg.nbackends = 3;
	id = identity_new(&cfg, db, err, sizeof(err));
	if (id == NULL) {
		fprintf(stderr, "identity_new: %s\n", err);
		exit(2);
	}
	return id;
}

/* An EdDSA token from issuer "a" or "b", signed with key, with these
 * amr (a JSON array text, or NULL for none) and exp. */
static char *token(char issuer, EVP_PKEY *key, const char *amr, long long exp)
{
	char *hdr = jws_printf("{\"alg\":\"EdDSA\",\"kid\":\"%c\"}", issuer);
	char *claims = jws_printf("{\"iss\":\"https://%c.example\",\"aud\":\"gatehouse\","
	    "\"sub\":\"tom\",\"groups\":[\"ops\"],\"exp\":%lld%s%s}", issuer, exp,
	    amr ? ",\"amr\":" : "", amr ? amr : "");
	char *t = jws_sign(key, "EdDSA", hdr, claims);

	free(hdr);
	free(claims);
	return t;
}

/* Token login: IDENTITY_OK when want_why is NULL, otherwise
 * IDENTITY_FAILED with that reason and nothing in out. */
static void token_login(struct identity *id, const char *t, const char *want_why,
    bool want_mfa, int line)
{
	static const struct identity_user zero;
	struct identity_user out;
	const char *why = "unset";
	int rc;

	memset(&out, 0xa5, sizeof(out));
	rc = identity_login_token(id, t, strlen(t), now_s, &out, &why);
	if (want_why == NULL) {
		if (rc != IDENTITY_OK)
			fprintf(stderr, "line %d: refused: %s\n", line, why ? why : "(null)");
		CHECK_EQ_INT(rc, IDENTITY_OK);
		CHECK(strcmp(out.name, "tom") == 0);
		CHECK_EQ_INT(out.ngroups, 1);
		CHECK(strcmp(out.groups[0], "ops") == 0);
		CHECK_EQ_INT(out.mfa, want_mfa);
		CHECK_EQ_INT(out.expires_s, now_s + 300);
	} else {
		if (rc != IDENTITY_FAILED || why == NULL || strcmp(why, want_why) != 0)
			fprintf(stderr, "line %d: rc %d why \"%s\", want \"%s\"\n", line, rc,
			    why ? why : "(null)", want_why);
		CHECK_EQ_INT(rc, IDENTITY_FAILED);
		CHECK(why != NULL && strcmp(why, want_why) == 0);
		CHECK(memcmp(&out, &zero, sizeof(out)) == 0);
	}
}

#define TOKEN(id, t, w, m) token_login(id, t, w, m, __LINE__)

static void test_tokens(struct userdb *db)
{
	const long long exp = (long long)now_s + 300;
	struct config_identity cfg;
	struct identity *id;
	char *t;

	key_a = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	key_b = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (key_a == NULL || key_b == NULL)
		jws_die("EVP_PKEY_Q_keygen");
	write_jwks("jwks-a.json", key_a, "a");
	write_jwks("jwks-b.json", key_b, "b");

	/* "required": the token's amr must name a second factor. */
	id = make_jwt(db, CONFIG_MFA_REQUIRED);
	t = token('a', key_a, "[\"pwd\",\"otp\"]", exp);
	TOKEN(id, t, NULL, true);
	free(t);
	t = token('b', key_b, "[\"hwk\"]", exp);
	TOKEN(id, t, NULL, true);
	free(t);
	t = token('a', key_a, "[\"pwd\"]", exp);
	TOKEN(id, t, "token lacks MFA", false);
	free(t);
	t = token('b', key_b, NULL, exp);
	TOKEN(id, t, "token lacks MFA", false);
	free(t);
	/* The reason is the one from the issuer the token is for, not
	 * the other's "unknown kid". */
	t = token('b', key_b, "[\"otp\"]", (long long)now_s - 3600);
	TOKEN(id, t, "token: expired", false);
	free(t);
	t = token('a', key_b, "[\"otp\"]", exp);
	TOKEN(id, t, "token: bad signature", false);
	free(t);
	TOKEN(id, "not a token", "token: malformed token", false);
	CHECK_EQ_INT(identity_login_token(id, NULL, 0, now_s, &(struct identity_user){ 0 },
	    &(const char *){ NULL }), IDENTITY_FAILED);
	/* Password logins still work beside the tokens. */
	LOGIN(id, "bob", "bob password", NULL, "no TOTP enrolled");
	identity_free(id);
	CHECK_EQ_INT(userdb_unlock(db, "bob"), USERDB_OK);

	/* "optional" and "off" take a token without a second factor, and
	 * say it had none. */
	id = make_jwt(db, CONFIG_MFA_OPTIONAL);
	t = token('a', key_a, "[\"pwd\"]", exp);
	TOKEN(id, t, NULL, false);
	free(t);
	identity_free(id);
	id = make_jwt(db, CONFIG_MFA_OFF);
	t = token('b', key_b, "[\"pwd\",\"mfa\"]", exp);
	TOKEN(id, t, NULL, true);
	free(t);
	identity_free(id);

	/* A backend that cannot load is named. */
	memset(&cfg, 0, sizeof(cfg));
	cfg.backends[0].type = CONFIG_BACKEND_LOCAL;
	jwt_backend(&cfg.backends[1], "https://a.example", "missing.json");
	cfg.nbackends = 2;
	err[0] = '\0';
	CHECK(identity_new(&cfg, db, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "identity.backends[1]") != NULL);
	CHECK(strstr(err, "missing.json") != NULL);

	EVP_PKEY_free(key_a);
	EVP_PKEY_free(key_b);
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

int main(void)
{
	const char *const groups[] = { "sales", "admins" };
	struct userdb *db;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gh-test-identity-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	password_set_cost_for_tests(8, 1);
	db = userdb_open(tmpdir, test_key, err, sizeof(err));
	if (db == NULL) {
		fprintf(stderr, "userdb_open: %s\n", err);
		return 2;
	}
	CHECK_EQ_INT(userdb_add(db, "alice", "alice password", groups, 2, true, alice_b32,
	    sizeof(alice_b32)), USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "bob", "bob password", NULL, 0, false, NULL, 0),
	    USERDB_OK);

	test_required(db);
	test_optional(db);
	test_off(db);
	test_locked_disabled(db);
	test_backends(db);
	test_groups(db);
	test_tokens(db);

	userdb_close(db);
	cleanup();
	return check_done("test_identity");
}
