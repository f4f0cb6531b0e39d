/* JWT access tokens (RFC 7519) in JWS compact form (RFC 7515 §7.1),
 * checked against the public keys of a JWKS file (RFC 7517).
 *
 * The order of the checks is the point of this file:
 *
 *   1. shape: length cap, exactly three non-empty base64url parts in the
 *      strict alphabet, no padding, canonical trailing bits;
 *   2. header: a JSON object without duplicate members; "alg" on the
 *      allow-list; no "crit"; "typ", when present, says JWT;
 *   3. key: chosen by "kid" from the JWKS (never from the token: "jwk",
 *      "jku", "x5u" and "x5c" are ignored), and its type must be the one
 *      the algorithm needs, so an RSA public key can never be used as an
 *      HMAC secret or an ES256 token checked against an RSA key;
 *   4. signature over the first two parts as they were sent;
 *   5. only then the payload is parsed, and the claims are checked.
 *
 * The payload is not looked at before the signature is good, so the
 * JSON parser only ever sees bytes the issuer signed (the header is the
 * exception: it is needed to pick the algorithm and key). */
#include "signaling/jwt.h"
#include "common/errmsg.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include "common/b64url.h"
#include "common/bytes.h"

#define JWKS_MAX_BYTES (1024 * 1024)
/* Far more than any issuer publishes; keeps the duplicate-kid check,
 * which compares every pair, cheap. */
#define JWKS_MAX_KEYS 256
#define RSA_MIN_BITS 2048
/* OpenSSL's own verification limit (OPENSSL_RSA_MAX_MODULUS_BITS); a
 * larger key could not verify anything and would only cost time. */
#define RSA_MAX_BITS 16384
#define P256_COORD_LEN 32
#define ES256_SIG_LEN 64   /* RFC 7518 §3.4: R || S, 32 octets each */
#define ED25519_KEY_LEN 32 /* RFC 8037 §2 */
#define ED25519_SIG_LEN 64

/* What the algorithm needs; also what a JWK provides. */
enum jwt_kty {
	JWT_KTY_RSA = 1,
	JWT_KTY_EC_P256 = 2,
	JWT_KTY_OKP_ED25519 = 3,
};

/* RFC 7518 §3.1 and RFC 8037 §3.1. Everything else, "none" and the HMAC
 * family included, is refused before any key is looked at: the keys
 * here are public, so an HMAC "signature" keyed with one proves nothing. */
static const struct jwt_alg {
	const char *name;
	enum jwt_kty kty;
} jwt_algs[] = {
	{ "RS256", JWT_KTY_RSA },
	{ "ES256", JWT_KTY_EC_P256 },
	{ "EdDSA", JWT_KTY_OKP_ED25519 },
};

struct jwt_key {
	char *kid;        /* owned; NULL when the JWK has none */
	size_t kidlen;
	enum jwt_kty kty;
	EVP_PKEY *pkey;   /* owned, public only */
};

struct jwt_verifier {
	char issuer[sizeof(((struct config_backend *)0)->issuer)];
	char audience[sizeof(((struct config_backend *)0)->audience)];
	char user_claim[sizeof(((struct config_backend *)0)->user_claim)];
	char groups_claim[sizeof(((struct config_backend *)0)->groups_claim)];
	struct jwt_key *keys; /* owned, nkeys of them */
	size_t nkeys;
};

/* RFC 8176 §2 method values that are a factor beyond the password. */
static const char *const jwt_mfa_amr[] = {
	"mfa", "otp", "hwk", "swk", "sms", "fpt", "face", "iris", "retina", "vbm",
};

/* ---- base64url ---------------------------------------------------- */

/* A base64url JSON string member of a JWK, decoded into out. */
static int jwk_b64(json_t *jwk, const char *name, uint8_t *out, size_t cap,
    size_t *outlen)
{
	json_t *s = json_object_get(jwk, name);

	if (!json_is_string(s) || json_string_length(s) == 0)
		return -1;
	return b64url_decode((const uint8_t *)json_string_value(s),
	    json_string_length(s), out, cap, outlen);
}

static bool json_str_eq(const json_t *s, const char *want)
{
	size_t n = strlen(want);

	return json_is_string(s) && json_string_length(s) == n &&
	    memcmp(json_string_value(s), want, n) == 0;
}

/* ---- JWKS --------------------------------------------------------- */

/* Builds a public key from parameters (OpenSSL 3 provider API). */
static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	if ((params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/* OpenSSL's public-key validation: for EC, that the point is on the
 * curve and not the point at infinity (an off-curve point is the classic
 * invalid-curve attack; it only matters for ECDH, but such a key is
 * broken anyway); for RSA, that n is odd and composite and e sensible. */
static EVP_PKEY *pkey_checked(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx;
	int ok;

	if (pkey == NULL)
		return NULL;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	ok = ctx != NULL && EVP_PKEY_public_check(ctx) == 1;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		EVP_PKEY_free(pkey);
		return NULL;
	}
	return pkey;
}

/* RFC 7518 §6.3.1: "n" and "e" as Base64urlUInt. */
static EVP_PKEY *jwk_rsa(json_t *jwk)
{
	uint8_t n[RSA_MAX_BITS / 8 + 1], e[16];
	size_t nlen, elen;
	OSSL_PARAM_BLD *bld = NULL;
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	EVP_PKEY *pkey = NULL;

	if (jwk_b64(jwk, "n", n, sizeof(n), &nlen) < 0 ||
	    jwk_b64(jwk, "e", e, sizeof(e), &elen) < 0)
		return NULL;
	if ((bn_n = BN_bin2bn(n, (int)nlen, NULL)) == NULL ||
	    (bn_e = BN_bin2bn(e, (int)elen, NULL)) == NULL)
		goto out;
	/* Counted on the number, so a leading zero octet (which some
	 * libraries emit, against §6.3.1.1) does not matter. */
	if (BN_num_bits(bn_n) < RSA_MIN_BITS || BN_num_bits(bn_n) > RSA_MAX_BITS)
		goto out;
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e))
		goto out;
	pkey = pkey_checked(pkey_fromdata("RSA", bld));
out:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	return pkey;
}

/* RFC 7518 §6.2.1: "x" and "y" are the full 32 octets for P-256. */
static EVP_PKEY *jwk_ec(json_t *jwk)
{
	uint8_t pub[1 + 2 * P256_COORD_LEN], x[P256_COORD_LEN + 1], y[P256_COORD_LEN + 1];
	size_t xlen, ylen;
	OSSL_PARAM_BLD *bld;
	EVP_PKEY *pkey = NULL;

	if (!json_str_eq(json_object_get(jwk, "crv"), "P-256") ||
	    jwk_b64(jwk, "x", x, sizeof(x), &xlen) < 0 ||
	    jwk_b64(jwk, "y", y, sizeof(y), &ylen) < 0 ||
	    xlen != P256_COORD_LEN || ylen != P256_COORD_LEN)
		return NULL;
	/* SEC 1 §2.3.3 uncompressed point: 04 || X || Y. */
	pub[0] = 0x04;
	memcpy(pub + 1, x, P256_COORD_LEN);
	memcpy(pub + 1 + P256_COORD_LEN, y, P256_COORD_LEN);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL)
		return NULL;
	if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    "prime256v1", 0) &&
	    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
	    sizeof(pub)))
		pkey = pkey_checked(pkey_fromdata("EC", bld));
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

/* RFC 8037 §2: kty "OKP", crv "Ed25519", "x" the 32-octet public key. */
static EVP_PKEY *jwk_okp(json_t *jwk)
{
	uint8_t x[ED25519_KEY_LEN + 1];
	size_t xlen;

	if (!json_str_eq(json_object_get(jwk, "crv"), "Ed25519") ||
	    jwk_b64(jwk, "x", x, sizeof(x), &xlen) < 0 || xlen != ED25519_KEY_LEN)
		return NULL;
	return EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, xlen);
}

/* Members that only a private JWK has (RFC 7518 §6.2.2, §6.3.2, §6.4;
 * RFC 8037 §2). A file that holds private keys was written by mistake;
 * we never load that material, and skip the key. */
static bool jwk_is_private(json_t *jwk)
{
	static const char *const priv[] = { "d", "p", "q", "dp", "dq", "qi", "oth", "k" };
	size_t i;

	for (i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
		if (json_object_get(jwk, priv[i]) != NULL)
			return true;
	return false;
}

/* RFC 7517 §4.3: when "key_ops" is present it must allow "verify". */
static bool jwk_ops_ok(json_t *jwk)
{
	json_t *ops = json_object_get(jwk, "key_ops"), *op;
	size_t i;

	if (ops == NULL)
		return true;
	if (!json_is_array(ops))
		return false;
	json_array_foreach(ops, i, op)
		if (json_str_eq(op, "verify"))
			return true;
	return false;
}

/* One JWK into *k. Returns 1 when loaded, 0 when skipped (RFC 7517 §5:
 * keys of types not understood, missing members or out-of-range values
 * are ignored), -1 when out of memory. */
static int jwk_load(json_t *jwk, struct jwt_key *k)
{
	static const struct {
		const char *kty;
		enum jwt_kty type;
		EVP_PKEY *(*load)(json_t *);
	} loaders[] = {
		{ "RSA", JWT_KTY_RSA, jwk_rsa },
		{ "EC", JWT_KTY_EC_P256, jwk_ec },
		{ "OKP", JWT_KTY_OKP_ED25519, jwk_okp },
	};
	json_t *kty = json_object_get(jwk, "kty"), *use, *alg, *kid;
	size_t i;

	memset(k, 0, sizeof(*k));
	if (!json_is_object(jwk) || jwk_is_private(jwk) || !jwk_ops_ok(jwk))
		return 0;
	/* RFC 7517 §4.2: an encryption key is not a signing key. */
	use = json_object_get(jwk, "use");
	if (use != NULL && !json_str_eq(use, "sig"))
		return 0;
	kid = json_object_get(jwk, "kid");
	if (kid != NULL && !json_is_string(kid))
		return 0;
	for (i = 0; i < sizeof(loaders) / sizeof(loaders[0]); i++)
		if (json_str_eq(kty, loaders[i].kty))
			break;
	if (i == sizeof(loaders) / sizeof(loaders[0]))
		return 0;
	/* RFC 7517 §4.4: a key bound to an algorithm is used for no other.
	 * Since each key type serves exactly one allowed algorithm, a key
	 * bound to anything else (PS256 on an RSA key, say) is no use. */
	alg = json_object_get(jwk, "alg");
	if (alg != NULL) {
		size_t a;

		for (a = 0; a < sizeof(jwt_algs) / sizeof(jwt_algs[0]); a++)
			if (json_str_eq(alg, jwt_algs[a].name))
				break;
		if (a == sizeof(jwt_algs) / sizeof(jwt_algs[0]) ||
		    jwt_algs[a].kty != loaders[i].type)
			return 0;
	}
	if ((k->pkey = loaders[i].load(jwk)) == NULL) {
		ERR_clear_error();
		return 0;
	}
	k->kty = loaders[i].type;
	if (kid != NULL) {
		k->kidlen = json_string_length(kid);
		if ((k->kid = malloc(k->kidlen + 1)) == NULL) {
			EVP_PKEY_free(k->pkey);
			k->pkey = NULL;
			return -1;
		}
		memcpy(k->kid, json_string_value(kid), k->kidlen + 1);
	}
	return 1;
}

/* RFC 7517 §4.5 lets keys share a "kid" only when the application can
 * tell them apart some other way; we pick by "kid" alone, so a shared
 * one would make the choice ambiguous. Checked over every entry, loaded
 * or skipped, so that a private key next to its public half is noticed. */
static const char *jwks_duplicate_kid(json_t *keys)
{
	json_t *a, *b, *ka, *kb;
	size_t i, j;

	json_array_foreach(keys, i, a) {
		ka = json_object_get(a, "kid");
		if (!json_is_string(ka))
			continue;
		for (j = i + 1; j < json_array_size(keys); j++) {
			b = json_array_get(keys, j);
			kb = json_object_get(b, "kid");
			if (json_is_string(kb) &&
			    json_string_length(ka) == json_string_length(kb) &&
			    memcmp(json_string_value(ka), json_string_value(kb),
			    json_string_length(ka)) == 0)
				return json_string_value(ka);
		}
	}
	return NULL;
}

/* Reads the whole file, at most JWKS_MAX_BYTES. Returns owned or NULL. */
static char *jwks_read(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f;
	struct stat st;
	char *buf = NULL;
	size_t n;

	if ((f = fopen(path, "rb")) == NULL) {
		errmsg_fail(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode)) {
		errmsg_fail(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_size > JWKS_MAX_BYTES) {
		errmsg_fail(err, errlen, "%s: larger than %d bytes", path, JWKS_MAX_BYTES);
		goto out;
	}
	/* One byte more than allowed, in case the file grew since fstat. */
	if ((buf = malloc(JWKS_MAX_BYTES + 1)) == NULL) {
		errmsg_fail(err, errlen, "%s: out of memory", path);
		goto out;
	}
	n = fread(buf, 1, JWKS_MAX_BYTES + 1, f);
	if (ferror(f) || n > JWKS_MAX_BYTES) {
		errmsg_fail(err, errlen, "%s: %s", path, ferror(f) ? "read error" :
		    "larger than allowed");
		free(buf);
		buf = NULL;
		goto out;
	}
	*len = n;
out:
	fclose(f);
	return buf;
}

struct jwt_verifier *jwt_verifier_new(const struct config_backend *b, char *err,
    size_t errlen)
{
	struct jwt_verifier *v = NULL;
	json_t *root = NULL, *keys, *jwk;
	json_error_t jerr;
	const char *dup;
	char *text = NULL;
	size_t len = 0, i;
	int rc;

	if (b == NULL || b->jwks_file[0] == '\0') {
		errmsg_fail(err, errlen, "jwt backend: no jwks_file");
		return NULL;
	}
	/* An empty issuer or audience would match nothing useful; config.c
	 * requires both, this is for callers that build the struct. */
	if (b->issuer[0] == '\0' || b->audience[0] == '\0' ||
	    b->user_claim[0] == '\0' || b->groups_claim[0] == '\0') {
		errmsg_fail(err, errlen, "%s: issuer, audience, user_claim and "
		    "groups_claim are required", b->jwks_file);
		return NULL;
	}
	if ((v = calloc(1, sizeof(*v))) == NULL) {
		errmsg_fail(err, errlen, "%s: out of memory", b->jwks_file);
		return NULL;
	}
	/* Copied, so the verifier does not depend on the configuration's
	 * lifetime (a reload frees the old one). The sizes are equal. */
	memcpy(v->issuer, b->issuer, sizeof(v->issuer));
	memcpy(v->audience, b->audience, sizeof(v->audience));
	memcpy(v->user_claim, b->user_claim, sizeof(v->user_claim));
	memcpy(v->groups_claim, b->groups_claim, sizeof(v->groups_claim));
	v->issuer[sizeof(v->issuer) - 1] = '\0';
	v->audience[sizeof(v->audience) - 1] = '\0';
	v->user_claim[sizeof(v->user_claim) - 1] = '\0';
	v->groups_claim[sizeof(v->groups_claim) - 1] = '\0';

	if ((text = jwks_read(b->jwks_file, &len, err, errlen)) == NULL)
		goto bad;
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		errmsg_fail(err, errlen, "%s: line %d: %s", b->jwks_file, jerr.line,
		    jerr.text);
		goto bad;
	}
	/* RFC 7517 §5: {"keys": [JWK, ...]}. */
	keys = json_object_get(root, "keys");
	if (!json_is_object(root) || !json_is_array(keys)) {
		errmsg_fail(err, errlen, "%s: not a JWK set (no \"keys\" array)",
		    b->jwks_file);
		goto bad;
	}
	if (json_array_size(keys) > JWKS_MAX_KEYS) {
		errmsg_fail(err, errlen, "%s: more than %d keys", b->jwks_file,
		    JWKS_MAX_KEYS);
		goto bad;
	}
	if ((dup = jwks_duplicate_kid(keys)) != NULL) {
		/* A kid is a public identifier, fine to show. */
		errmsg_fail(err, errlen, "%s: two keys with kid \"%.64s\"", b->jwks_file,
		    dup);
		goto bad;
	}
	if (json_array_size(keys) > 0 &&
	    (v->keys = calloc(json_array_size(keys), sizeof(*v->keys))) == NULL) {
		errmsg_fail(err, errlen, "%s: out of memory", b->jwks_file);
		goto bad;
	}
	json_array_foreach(keys, i, jwk) {
		if ((rc = jwk_load(jwk, &v->keys[v->nkeys])) < 0) {
			errmsg_fail(err, errlen, "%s: out of memory", b->jwks_file);
			goto bad;
		}
		v->nkeys += (size_t)rc;
	}
	if (v->nkeys == 0) {
		errmsg_fail(err, errlen, "%s: no usable public key (RSA of %d bits or "
		    "more, EC P-256 or Ed25519, for signatures)", b->jwks_file,
		    RSA_MIN_BITS);
		goto bad;
	}
	json_decref(root);
	free(text);
	return v;
bad:
	json_decref(root);
	free(text);
	jwt_verifier_free(v);
	return NULL;
}

void jwt_verifier_free(struct jwt_verifier *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nkeys; i++) {
		EVP_PKEY_free(v->keys[i].pkey);
		free(v->keys[i].kid);
	}
	free(v->keys);
	free(v);
}

/* ---- token -------------------------------------------------------- */

struct jwt_part {
	const uint8_t *p;   /* borrowed: the base64url text in the token */
	size_t len;
	const uint8_t *dec; /* borrowed: the decoded bytes, in the caller's buffer */
	size_t declen;
};

/* RFC 7515 §7.1: BASE64URL(header) '.' BASE64URL(payload) '.'
 * BASE64URL(signature); all three non-empty here, since an empty
 * signature is "none" and an empty header or payload is no JWT. A
 * fourth part (JWE has five) is refused. */
static int split(const uint8_t *t, size_t len, struct jwt_part parts[3])
{
	struct rd r = rd_init(t, len);
	const uint8_t *dot;
	size_t i, n;

	for (i = 0; i < 3; i++) {
		dot = memchr(r.p, '.', r.left);
		/* A dot must follow the first two parts and not the third. */
		if ((i < 2) != (dot != NULL))
			return -1;
		n = dot != NULL ? (size_t)(dot - r.p) : r.left;
		if (n == 0 || rd_bytes(&r, n, &parts[i].p) < 0)
			return -1;
		parts[i].len = n;
		if (dot != NULL && rd_skip(&r, 1) < 0)
			return -1;
	}
	return r.left == 0 ? 0 : -1;
}

/* Decodes the three parts one after the other into buf. Since base64
 * makes 3 bytes of 4 characters, the decoded parts together are always
 * shorter than the token, so a buffer of JWT_MAX_LEN holds them. */
static int decode_parts(struct jwt_part parts[3], uint8_t *buf, size_t cap)
{
	size_t i, used = 0;

	for (i = 0; i < 3; i++) {
		if (b64url_decode(parts[i].p, parts[i].len, buf + used, cap - used,
		    &parts[i].declen) < 0)
			return -1;
		parts[i].dec = buf + used;
		used += parts[i].declen;
	}
	return 0;
}

/* Parses a decoded part as a JSON object, rejecting duplicate members:
 * RFC 7515 §4 and RFC 7519 §4 let a parser take the last of duplicates
 * or refuse, and two parsers taking different ones is how "alg" or
 * "sub" smuggling starts. */
static json_t *part_json(const struct jwt_part *part)
{
	json_error_t jerr;
	json_t *j;

	/* Without JSON_ALLOW_NUL, "\u0000" in a string is refused, so C
	 * string functions see every string whole. */
	j = json_loadb((const char *)part->dec, part->declen,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (j != NULL && !json_is_object(j)) {
		json_decref(j);
		j = NULL;
	}
	return j;
}

/* RFC 7515 §4.1.9 and RFC 9068 §2.1: "JWT" or "at+jwt", compared without
 * regard to case, with or without the "application/" prefix. */
static bool typ_ok(const json_t *typ)
{
	static const char *const ok[] = {
		"JWT", "at+jwt", "application/jwt", "application/at+jwt",
	};
	size_t i;

	if (!json_is_string(typ))
		return false;
	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (json_string_length(typ) == strlen(ok[i]) &&
		    strcasecmp(json_string_value(typ), ok[i]) == 0)
			return true;
	return false;
}

static const struct jwt_key *key_find(const struct jwt_verifier *v,
    const json_t *kid, const char **why)
{
	size_t i;

	if (kid == NULL) {
		/* With a single key there is nothing to choose. */
		if (v->nkeys == 1)
			return &v->keys[0];
		*why = "missing kid";
		return NULL;
	}
	if (!json_is_string(kid)) {
		*why = "bad header";
		return NULL;
	}
	for (i = 0; i < v->nkeys; i++)
		if (v->keys[i].kid != NULL &&
		    v->keys[i].kidlen == json_string_length(kid) &&
		    memcmp(v->keys[i].kid, json_string_value(kid),
		    v->keys[i].kidlen) == 0)
			return &v->keys[i];
	*why = "unknown kid";
	return NULL;
}

/* RFC 7518 §3.4: the JWS signature is R || S, each 32 octets; OpenSSL
 * wants the DER ECDSA-Sig-Value of RFC 3279 §2.2.3. */
static int es256_to_der(const uint8_t *raw, uint8_t *der, size_t cap,
    size_t *derlen)
{
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *p = der;
	int n, rc = -1;

	if ((sig = ECDSA_SIG_new()) == NULL ||
	    (r = BN_bin2bn(raw, ES256_SIG_LEN / 2, NULL)) == NULL ||
	    (s = BN_bin2bn(raw + ES256_SIG_LEN / 2, ES256_SIG_LEN / 2, NULL)) == NULL)
		goto out;
	if (ECDSA_SIG_set0(sig, r, s) != 1)
		goto out;
	r = s = NULL; /* now owned by sig */
	n = i2d_ECDSA_SIG(sig, NULL);
	if (n <= 0 || (size_t)n > cap || i2d_ECDSA_SIG(sig, &p) != n)
		goto out;
	*derlen = (size_t)n;
	rc = 0;
out:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return rc;
}

/* Returns 1 when the signature is good, 0 when not, -1 when OpenSSL
 * could not run (out of memory). */
static int sig_verify(const struct jwt_key *k, const uint8_t *input,
    size_t inlen, const uint8_t *sig, size_t siglen)
{
	uint8_t der[80]; /* a P-256 ECDSA-Sig-Value is at most 72 octets */
	EVP_MD_CTX *mctx;
	EVP_PKEY_CTX *pctx = NULL;
	const EVP_MD *md = NULL;
	size_t derlen;
	int rc = 0;

	switch (k->kty) {
	case JWT_KTY_RSA:
		/* RFC 8017 §8.2.2 step 1: exactly the modulus length. */
		if (EVP_PKEY_get_size(k->pkey) <= 0 ||
		    siglen != (size_t)EVP_PKEY_get_size(k->pkey))
			return 0;
		md = EVP_sha256();
		break;
	case JWT_KTY_EC_P256:
		if (siglen != ES256_SIG_LEN)
			return 0;
		if (es256_to_der(sig, der, sizeof(der), &derlen) < 0)
			return -1;
		sig = der;
		siglen = derlen;
		md = EVP_sha256();
		break;
	case JWT_KTY_OKP_ED25519:
		/* RFC 8032 §5.1: pure Ed25519 hashes internally; no digest. */
		if (siglen != ED25519_SIG_LEN)
			return 0;
		break;
	default:
		return 0;
	}
	if ((mctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestVerifyInit(mctx, &pctx, md, NULL, k->pkey) != 1) {
		rc = -1;
		goto out;
	}
	/* RFC 7518 §3.3: RSASSA-PKCS1-v1_5, not PSS, whatever the default. */
	if (k->kty == JWT_KTY_RSA &&
	    EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) != 1) {
		rc = -1;
		goto out;
	}
	/* 1 is good; 0 and negative values (a malformed signature) are not. */
	rc = EVP_DigestVerify(mctx, sig, siglen, input, inlen) == 1 ? 1 : 0;
out:
	EVP_MD_CTX_free(mctx);
	/* Failures leave reasons on the thread's queue; they are ours, not
	 * the next TLS call's. */
	ERR_clear_error();
	return rc;
}

/* RFC 7519 §2 NumericDate: seconds, possibly with a fraction. Rounded
 * down for "exp" and up for "nbf" and "iat", so a fraction never widens
 * the window, and clamped so that adding the leeway cannot overflow. */
static int numeric_date(const json_t *j, bool round_up, int64_t *out)
{
	const int64_t lim = INT64_MAX / 2;
	double d;
	int64_t t;

	if (json_is_integer(j)) {
		t = (int64_t)json_integer_value(j);
	} else if (json_is_real(j)) {
		d = json_real_value(j);
		if (d >= (double)lim)
			t = lim;
		else if (d <= -(double)lim)
			t = -lim;
		else {
			t = (int64_t)d; /* toward zero */
			if (round_up && (double)t < d)
				t++;
			else if (!round_up && (double)t > d)
				t--;
		}
	} else {
		return -1;
	}
	*out = t > lim ? lim : t < -lim ? -lim : t;
	return 0;
}

/* RFC 7519 §4.1.3: a string, or an array of strings, one of which must
 * be ours. */
static bool aud_ok(const json_t *aud, const char *want)
{
	const json_t *a;
	size_t i;

	if (json_is_string(aud))
		return json_str_eq(aud, want);
	if (!json_is_array(aud))
		return false;
	for (i = 0; i < json_array_size(aud); i++) {
		a = json_array_get(aud, i);
		if (!json_is_string(a))
			return false; /* malformed: refuse, do not skip */
		if (json_str_eq(a, want))
			return true;
	}
	return false;
}

/* A user or group name: 1..IDENTITY_NAME_MAX-1 characters of
 * [A-Za-z0-9._@-], the set the rest of the gateway can log, match in
 * policy and put in TURN credentials without escaping. */
static int name_copy(const json_t *s, char out[IDENTITY_NAME_MAX])
{
	const char *p;
	size_t n, i;

	if (!json_is_string(s))
		return -1;
	p = json_string_value(s);
	n = json_string_length(s);
	if (n == 0 || n >= IDENTITY_NAME_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' ||
		    c == '-'))
			return -1;
	}
	memcpy(out, p, n);
	out[n] = '\0';
	return 0;
}

/* RFC 8176: "amr" is an array of strings; true when one of them is a
 * second factor. A malformed claim refuses the token (returns -1),
 * rather than quietly counting as no second factor. */
static int amr_mfa(const json_t *amr, bool *mfa)
{
	const json_t *m;
	size_t i, k;

	*mfa = false;
	if (amr == NULL)
		return 0;
	if (!json_is_array(amr))
		return -1;
	for (i = 0; i < json_array_size(amr); i++) {
		m = json_array_get(amr, i);
		if (!json_is_string(m))
			return -1;
		for (k = 0; k < sizeof(jwt_mfa_amr) / sizeof(jwt_mfa_amr[0]); k++)
			if (json_str_eq(m, jwt_mfa_amr[k]))
				*mfa = true;
	}
	return 0;
}

/* The claims of RFC 7519 §4.1 and ours, into *u. Returns NULL or the
 * reason for refusing. */
static const char *claims_check(const struct jwt_verifier *v, json_t *c,
    uint64_t now_s, struct identity_user *u)
{
	const int64_t lim = INT64_MAX / 2;
	json_t *groups, *g;
	int64_t exp, nbf, iat, now;
	size_t i;

	now = now_s > (uint64_t)lim ? lim : (int64_t)now_s;
	/* §4.1.1: compared as a case-sensitive string, exactly. */
	if (!json_str_eq(json_object_get(c, "iss"), v->issuer))
		return "wrong issuer";
	if (!aud_ok(json_object_get(c, "aud"), v->audience))
		return "wrong audience";
	/* §4.1.4 makes "exp" optional; an access token without one would be
	 * good forever, so we require it. */
	if (json_object_get(c, "exp") == NULL)
		return "missing exp";
	if (numeric_date(json_object_get(c, "exp"), false, &exp) < 0)
		return "bad exp";
	if (now > exp + JWT_LEEWAY_S)
		return "expired";
	if (json_object_get(c, "nbf") != NULL) {
		if (numeric_date(json_object_get(c, "nbf"), true, &nbf) < 0)
			return "bad nbf";
		if (now + JWT_LEEWAY_S < nbf)
			return "not yet valid";
	}
	/* §4.1.6 sets no rule for "iat"; one in the future means the
	 * issuer's clock or the token is wrong. */
	if (json_object_get(c, "iat") != NULL) {
		if (numeric_date(json_object_get(c, "iat"), true, &iat) < 0)
			return "bad iat";
		if (iat > now + JWT_LEEWAY_S)
			return "issued in the future";
	}
	if (name_copy(json_object_get(c, v->user_claim), u->name) < 0)
		return "bad user claim";
	groups = json_object_get(c, v->groups_claim);
	if (groups != NULL) {
		if (!json_is_array(groups))
			return "bad groups claim";
		/* Refused, not truncated: dropping groups could drop a deny. */
		if (json_array_size(groups) > IDENTITY_MAX_GROUPS)
			return "too many groups";
		json_array_foreach(groups, i, g)
			if (name_copy(g, u->groups[i]) < 0)
				return "bad groups claim";
		u->ngroups = json_array_size(groups);
	}
	if (amr_mfa(json_object_get(c, "amr"), &u->mfa) < 0)
		return "bad amr claim";
	u->expires_s = exp > 0 ? (uint64_t)exp : 0;
	return NULL;
}

int jwt_verify(const struct jwt_verifier *v, const char *token, size_t len,
    uint64_t now_s, struct identity_user *out, const char **why)
{
	const char *unused;
	struct jwt_part parts[3];
	struct identity_user u;
	const struct jwt_alg *alg = NULL;
	const struct jwt_key *key;
	json_t *hdr = NULL, *claims = NULL, *a;
	uint8_t dec[JWT_MAX_LEN];
	size_t i;
	int rc = IDENTITY_FAILED, vr;

	if (why == NULL)
		why = &unused;
	*why = "malformed token";
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	memset(&u, 0, sizeof(u));
	if (v == NULL || token == NULL || out == NULL)
		return IDENTITY_FAILED;
	/* Checked before a byte is read. */
	if (len > JWT_MAX_LEN) {
		*why = "token too long";
		return IDENTITY_FAILED;
	}
	if (split((const uint8_t *)token, len, parts) < 0)
		return IDENTITY_FAILED;
	/* Every part decodes before anything is trusted, so a bad spelling
	 * anywhere is "malformed", whichever part it is in. */
	if (decode_parts(parts, dec, sizeof(dec)) < 0)
		return IDENTITY_FAILED;
	if ((hdr = part_json(&parts[0])) == NULL) {
		*why = "bad header";
		goto out;
	}
	/* RFC 7515 §4.1.11: an extension we do not know must be refused,
	 * and we know none. */
	if (json_object_get(hdr, "crit") != NULL) {
		*why = "critical header not supported";
		goto out;
	}
	a = json_object_get(hdr, "alg");
	for (i = 0; i < sizeof(jwt_algs) / sizeof(jwt_algs[0]); i++)
		if (json_str_eq(a, jwt_algs[i].name))
			alg = &jwt_algs[i];
	if (alg == NULL) {
		*why = "algorithm not allowed";
		goto out;
	}
	if (json_object_get(hdr, "typ") != NULL &&
	    !typ_ok(json_object_get(hdr, "typ"))) {
		*why = "bad typ";
		goto out;
	}
	if ((key = key_find(v, json_object_get(hdr, "kid"), why)) == NULL)
		goto out;
	if (key->kty != alg->kty) {
		*why = "key does not match algorithm";
		goto out;
	}
	/* RFC 7515 §5.2 step 8: over ASCII(header '.' payload) as sent. */
	vr = sig_verify(key, (const uint8_t *)token,
	    parts[1].len + (size_t)(parts[1].p - (const uint8_t *)token),
	    parts[2].dec, parts[2].declen);
	if (vr < 0) {
		*why = "crypto failure";
		rc = IDENTITY_ERROR;
		goto out;
	}
	if (vr == 0) {
		*why = "bad signature";
		goto out;
	}
	if ((claims = part_json(&parts[1])) == NULL) {
		*why = "bad payload";
		goto out;
	}
	if ((*why = claims_check(v, claims, now_s, &u)) != NULL)
		goto out;
	*out = u;
	*why = "ok";
	rc = IDENTITY_OK;
out:
	json_decref(hdr);
	json_decref(claims);
	return rc;
}
