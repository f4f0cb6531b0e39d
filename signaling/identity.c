/* Who is logging in: local users (userdb) and JWT tokens (jwt), with the
 * configured MFA rule on top.
 *
 * Every refusal is IDENTITY_FAILED; the reason goes to *why only, which
 * the caller logs and never sends. */
#include "signaling/identity.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signaling/jwt.h"
#include "signaling/userdb.h"

struct identity {
	enum config_mfa mfa;
	struct userdb *db;  /* borrowed; NULL without a local backend */
	struct jwt_verifier *jwt[CONFIG_MAX_BACKENDS];
	size_t njwt;
};

struct identity *identity_new(const struct config_identity *cfg, struct userdb *db,
    char *err, size_t errlen)
{
	struct identity *id;
	const struct config_backend *b;
	char jerr[512];
	size_t i;

	id = calloc(1, sizeof(*id));
	if (id == NULL) {
		snprintf(err, errlen, "identity: out of memory");
		return NULL;
	}
	id->mfa = cfg->mfa;
	for (i = 0; i < cfg->nbackends && i < CONFIG_MAX_BACKENDS; i++) {
		b = &cfg->backends[i];
		switch (b->type) {
		case CONFIG_BACKEND_LOCAL:
			if (db == NULL) {
				snprintf(err, errlen, "identity.backends[%zu]: local backend "
				    "without a user database", i);
				goto fail;
			}
			id->db = db;
			break;
		case CONFIG_BACKEND_JWT:
			jerr[0] = '\0';
			id->jwt[id->njwt] = jwt_verifier_new(b, jerr, sizeof(jerr));
			if (id->jwt[id->njwt] == NULL) {
				snprintf(err, errlen, "identity.backends[%zu]: %s", i,
				    jerr[0] != '\0' ? jerr : "cannot load");
				goto fail;
			}
			id->njwt++;
			break;
		default:
			snprintf(err, errlen, "identity.backends[%zu]: unknown type", i);
			goto fail;
		}
	}
	/* A database handed in without a local backend configured stays
	 * unused: only the configuration decides who may log in how. */
	return id;

fail:
	identity_free(id);
	return NULL;
}

void identity_free(struct identity *id)
{
	size_t i;

	if (id == NULL)
		return;
	for (i = 0; i < id->njwt; i++)
		jwt_verifier_free(id->jwt[i]);
	free(id);
}

static void fill_user(struct identity_user *out, const struct userdb_entry *e)
{
	size_t i;

	memset(out, 0, sizeof(*out));
	memcpy(out->name, e->name, sizeof(out->name));
	for (i = 0; i < e->ngroups && i < IDENTITY_MAX_GROUPS; i++)
		memcpy(out->groups[i], e->groups[i], sizeof(out->groups[i]));
	out->ngroups = i;
}

static int refuse(struct identity_user *out, const char **why, const char *reason)
{
	memset(out, 0, sizeof(*out));
	*why = reason;
	return IDENTITY_FAILED;
}

int identity_login_password(struct identity *id, const char *user,
    const char *password, const char *totp, uint64_t now_s,
    struct identity_user *out, const char **why)
{
	struct userdb_entry e;
	bool code_given = totp != NULL && totp[0] != '\0';
	bool has_totp = false, check;
	int rc;

	*why = NULL;
	if (id->db == NULL)
		return refuse(out, why, "no local backend");
	/* Whether the user has TOTP decides what "optional" asks for. An
	 * unknown user goes on to userdb_verify all the same, which spends
	 * the time of a real check before it says so. */
	if (userdb_get(id->db, user, &e) == USERDB_OK)
		has_totp = e.has_totp;
	switch (id->mfa) {
	case CONFIG_MFA_REQUIRED:
		check = true;
		break;
	case CONFIG_MFA_OPTIONAL:
		check = has_totp;
		break;
	case CONFIG_MFA_OFF:
	default:
		check = false;
		break;
	}
	rc = userdb_verify(id->db, user, password, check ? totp : NULL, check, now_s, &e);
	switch (rc) {
	case USERDB_OK:
		fill_user(out, &e);
		out->mfa = check;
		out->expires_s = 0;
		*why = NULL;
		return IDENTITY_OK;
	case USERDB_NOTFOUND:
		return refuse(out, why, "unknown user");
	case USERDB_BADPASSWORD:
	case USERDB_INVALID:
		return refuse(out, why, "bad password");
	case USERDB_BADCODE:
		/* With "required" and no secret enrolled, no code can help:
		 * say so, for the admin reading the log. */
		if (!has_totp)
			return refuse(out, why, "no TOTP enrolled");
		return refuse(out, why, code_given ? "bad code" : "code required");
	case USERDB_LOCKED:
		return refuse(out, why, "locked");
	case USERDB_DISABLED:
		return refuse(out, why, "disabled");
	default:
		memset(out, 0, sizeof(*out));
		*why = "user database error";
		return IDENTITY_ERROR;
	}
}

/* "token: " and the verifier's reason, as static text: the reasons
 * signaling/jwt.c gives. One it adds later and this table lacks is
 * passed on as the verifier wrote it (static too), just unprefixed. */
static const char *token_why(const char *jwhy)
{
	static const char *const known[][2] = {
		{ "malformed token", "token: malformed token" },
		{ "token too long", "token: token too long" },
		{ "bad header", "token: bad header" },
		{ "critical header not supported", "token: critical header not supported" },
		{ "algorithm not allowed", "token: algorithm not allowed" },
		{ "bad typ", "token: bad typ" },
		{ "missing kid", "token: missing kid" },
		{ "unknown kid", "token: unknown kid" },
		{ "key does not match algorithm", "token: key does not match algorithm" },
		{ "crypto failure", "token: crypto failure" },
		{ "bad signature", "token: bad signature" },
		{ "bad payload", "token: bad payload" },
		{ "wrong issuer", "token: wrong issuer" },
		{ "wrong audience", "token: wrong audience" },
		{ "missing exp", "token: missing exp" },
		{ "bad exp", "token: bad exp" },
		{ "expired", "token: expired" },
		{ "bad nbf", "token: bad nbf" },
		{ "not yet valid", "token: not yet valid" },
		{ "bad iat", "token: bad iat" },
		{ "issued in the future", "token: issued in the future" },
		{ "bad user claim", "token: bad user claim" },
		{ "bad groups claim", "token: bad groups claim" },
		{ "too many groups", "token: too many groups" },
		{ "bad amr claim", "token: bad amr claim" },
	};
	size_t i;

	if (jwhy == NULL)
		return "token: refused";
	for (i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(jwhy, known[i][0]) == 0)
			return known[i][1];
	return jwhy;
}

/* With several issuers configured, a token is refused by every verifier
 * but its own with "wrong issuer" or "unknown kid"; the reason worth
 * logging is the one from the verifier the token was meant for. */
static bool not_mine(const char *jwhy)
{
	return jwhy == NULL || strcmp(jwhy, "wrong issuer") == 0 ||
	    strcmp(jwhy, "unknown kid") == 0;
}

int identity_login_token(struct identity *id, const char *token, size_t len,
    uint64_t now_s, struct identity_user *out, const char **why)
{
	const char *jwhy, *best = NULL;
	size_t i;
	int rc;

	*why = NULL;
	if (id->njwt == 0)
		return refuse(out, why, "no token backend");
	if (token == NULL)
		return refuse(out, why, "token: malformed token");
	for (i = 0; i < id->njwt; i++) {
		jwhy = NULL;
		memset(out, 0, sizeof(*out));
		rc = jwt_verify(id->jwt[i], token, len, now_s, out, &jwhy);
		if (rc == IDENTITY_OK) {
			/* RFC 8176 §2: amr lists the methods used; jwt sets mfa
			 * when one of them is a second factor. */
			if (id->mfa == CONFIG_MFA_REQUIRED && !out->mfa)
				return refuse(out, why, "token lacks MFA");
			return IDENTITY_OK;
		}
		if (rc != IDENTITY_FAILED) {
			memset(out, 0, sizeof(*out));
			*why = token_why(jwhy);
			return IDENTITY_ERROR;
		}
		if (i == 0 || (not_mine(best) && !not_mine(jwhy)))
			best = jwhy;
	}
	return refuse(out, why, token_why(best));
}

int identity_user_groups(struct identity *id, const char *user,
    struct identity_user *out)
{
	struct userdb_entry e;
	int rc;

	memset(out, 0, sizeof(*out));
	if (id->db == NULL)
		return IDENTITY_FAILED;
	rc = userdb_get(id->db, user, &e);
	if (rc == USERDB_NOTFOUND)
		return IDENTITY_FAILED;
	if (rc != USERDB_OK)
		return IDENTITY_ERROR;
	fill_user(out, &e);
	return IDENTITY_OK;
}
