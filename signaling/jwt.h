/* JWT/OIDC access tokens (RFC 7519, JWS RFC 7515): RS256, ES256 and
 * EdDSA (Ed25519) signatures checked with OpenSSL against keys from a
 * JWKS file (RFC 7517) chosen by "kid"; an algorithm allow-list, so
 * "none" and HS256-with-an-RSA-key confusion are refused; iss, aud, exp,
 * nbf checked with a small leeway; user and groups from configured
 * claims. Pure apart from reading the JWKS file at construction. */
#ifndef GH_SIGNALING_JWT_H
#define GH_SIGNALING_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/config.h"
#include "signaling/identity.h"

#define JWT_MAX_LEN 8192     /* tokens longer than this are refused unread */
#define JWT_LEEWAY_S 60

struct jwt_verifier;

/* Loads the JWKS file named by the backend (RSA keys of at least 2048
 * bits, EC P-256, OKP Ed25519; others are skipped with no error unless
 * none is usable). Returns owned: free with jwt_verifier_free(). NULL
 * with err naming the file and what is wrong. */
struct jwt_verifier *jwt_verifier_new(const struct config_backend *b, char *err,
    size_t errlen);
void jwt_verifier_free(struct jwt_verifier *v);

/* Verifies a compact JWS. Fills out->name from the user claim, groups
 * from the groups claim (an array of strings; absent means none),
 * out->mfa from "amr" (true when it lists a second factor: "mfa", "otp",
 * "hwk", "swk", "sms", "fpt", "face", "iris", "retina", "vbm"),
 * out->expires_s from "exp". Returns IDENTITY_OK or IDENTITY_FAILED with
 * *why set to a static reason ("bad signature", "expired", "algorithm
 * not allowed", "unknown kid", "wrong issuer", ...). */
int jwt_verify(const struct jwt_verifier *v, const char *token, size_t len,
    uint64_t now_s, struct identity_user *out, const char **why);

#endif
