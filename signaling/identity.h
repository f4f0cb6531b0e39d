/* Who is logging in: the identity backend interface with its two
 * backends, local users (userdb.h) and JWT/OIDC tokens (jwt.h), and the
 * MFA rule of the configuration (identity.mfa).
 *
 * Every failure looks the same from outside (IDENTITY_FAILED): unknown
 * user, wrong password, wrong or replayed code, disabled or locked
 * account, bad token. The reason is returned separately for the logs. */
#ifndef GH_SIGNALING_IDENTITY_H
#define GH_SIGNALING_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/config.h"

#define IDENTITY_NAME_MAX 64
#define IDENTITY_MAX_GROUPS 16

struct identity_user {
	char name[IDENTITY_NAME_MAX];
	char groups[IDENTITY_MAX_GROUPS][IDENTITY_NAME_MAX];
	size_t ngroups;
	bool mfa;              /* a second factor was checked (TOTP, or amr) */
	uint64_t expires_s;    /* token expiry; 0 for password logins */
};

enum identity_rc {
	IDENTITY_OK = 0,
	IDENTITY_FAILED = -1,  /* the one answer for every refusal */
	IDENTITY_ERROR = -2,   /* our fault: database or crypto failure */
};

struct identity;
struct userdb;

/* Builds the configured backends. userdb is borrowed (NULL when no local
 * backend) and must outlive the identity. Returns owned: free with
 * identity_free(). NULL with err (naming the backend) on failure. */
struct identity *identity_new(const struct config_identity *cfg, struct userdb *db,
    char *err, size_t errlen);
void identity_free(struct identity *id);

/* Password login against the local backend; totp may be NULL or "".
 * With mfa "required", a valid TOTP code is needed (and so the user must
 * have TOTP enrolled); "optional" checks a code when the user has TOTP;
 * "off" ignores it. why (static text) says what failed, for logs only. */
int identity_login_password(struct identity *id, const char *user,
    const char *password, const char *totp, uint64_t now_s,
    struct identity_user *out, const char **why);

/* Token login against the JWT backend(s). With mfa "required" the
 * token's amr claim must name a second factor ("mfa", "otp", "hwk",
 * "swk", "sms", "fpt", "face"...). */
int identity_login_token(struct identity *id, const char *token, size_t len,
    uint64_t now_s, struct identity_user *out, const char **why);

/* The groups of a local user (for policy decisions about a callee who
 * is offline or logged in by password). Fills out->groups; IDENTITY_OK
 * or IDENTITY_FAILED when unknown. */
int identity_user_groups(struct identity *id, const char *user,
    struct identity_user *out);

#endif
