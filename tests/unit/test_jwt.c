/* jwt.c: compact JWS access tokens against a JWKS file. Keys are made
 * in-process (RSA 2048, EC P-256, Ed25519), the JWKS is written to a
 * temporary folder, and tokens are signed here (jwt_sign.h), so every
 * attack token is built from real keys: "none", HS256 keyed with the
 * RSA public key, a kid pointing at a key of another type, tampering,
 * every prefix, every one-character change, and bad spellings. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "signaling/jwt.h"
#include "tests/unit/check.h"
#include "tests/unit/jwt_sign.h"

#define NOW 1700000000LL
#define ISS "https://idp.example.com"
#define AUD "gatehouse"

static EVP_PKEY *rsa, *rsa_small, *ec, *ec2, *ed;
static char tmpdir[256];
static char err[1024];
static struct jwt_verifier *v; /* rsa1, ec1, ed1 */

/* ---- fixtures ----------------------------------------------------- */

static EVP_PKEY *keygen(const char *type, int bits)
{
	EVP_PKEY *k;

	if (strcmp(type, "RSA") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	else if (strcmp(type, "EC") == 0)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	else
		k = EVP_PKEY_Q_keygen(NULL, NULL, type);
	if (k == NULL)
		jws_die(type);
	return k;
}

static void path_of(const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void write_text(const char *name, const char *text, size_t len)
{
	char path[PATH_MAX];
	FILE *f;

	path_of(name, path, sizeof(path));
	if ((f = fopen(path, "wb")) == NULL || fwrite(text, 1, len, f) != len ||
	    fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static struct config_backend backend_for(const char *file)
{
	struct config_backend b;

	memset(&b, 0, sizeof(b));
	b.type = CONFIG_BACKEND_JWT;
	snprintf(b.issuer, sizeof(b.issuer), "%s", ISS);
	snprintf(b.audience, sizeof(b.audience), "%s", AUD);
	path_of(file, b.jwks_file, sizeof(b.jwks_file));
	snprintf(b.user_claim, sizeof(b.user_claim), "sub");
	snprintf(b.groups_claim, sizeof(b.groups_claim), "groups");
	return b;
}

/* A verifier over {"keys":[keys]}; keys is a comma-separated list of
 * JWK texts, owned by the caller. NULL (with err) when refused. */
static struct jwt_verifier *verifier_keys(const char *keys)
{
	struct config_backend b = backend_for("jwks.json");
	char *text = jws_printf("{\"keys\":[%s]}", keys);
	struct jwt_verifier *vf;

	write_text("jwks.json", text, strlen(text));
	free(text);
	err[0] = '\0';
	vf = jwt_verifier_new(&b, err, sizeof(err));
	return vf;
}

/* The same with a JWKS file of exactly this text. */
static struct jwt_verifier *verifier_text(const char *text)
{
	struct config_backend b = backend_for("jwks.json");

	write_text("jwks.json", text, strlen(text));
	err[0] = '\0';
	return jwt_verifier_new(&b, err, sizeof(err));
}

/* Standard claims with exp, then extra members (may be ""). */
static char *claims_exp(long long exp, const char *extra)
{
	return jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
	    "\"sub\":\"alice\",\"exp\":%lld%s}", exp, extra);
}

static char *claims(const char *extra)
{
	return claims_exp(NOW + 3600, extra);
}

static const char *sign_alg_of(EVP_PKEY *k)
{
	return EVP_PKEY_is_a(k, "RSA") ? "RS256" : EVP_PKEY_is_a(k, "EC") ?
	    "ES256" : "EdDSA";
}

/* A token signed with k, its alg in the header, kid (may be NULL), and
 * the given claims text, which it frees. */
static char *tok(EVP_PKEY *k, const char *kid, char *payload)
{
	const char *alg = sign_alg_of(k);
	char *hdr = kid ? jws_printf("{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
	    alg, kid) : jws_printf("{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	char *t = jws_sign(k, alg, hdr, payload);

	free(hdr);
	free(payload);
	return t;
}

/* A token with the given header text, signed with k. Frees payload. */
static char *tok_hdr(EVP_PKEY *k, const char *hdr, char *payload)
{
	char *t = jws_sign(k, sign_alg_of(k), hdr, payload);

	free(payload);
	return t;
}

/* Runs jwt_verify on a heap copy of exactly len bytes with no NUL after
 * it, so that ASan sees any read past the token. */
static int verify_n(const struct jwt_verifier *vf, const char *t, size_t len,
    long long now, struct identity_user *u, const char **why)
{
	char *copy = jws_malloc(len);
	int rc;

	memcpy(copy, t, len);
	rc = jwt_verify(vf, copy, len, (uint64_t)now, u, why);
	free(copy);
	return rc;
}

static bool expect_at(const struct jwt_verifier *vf, const char *t,
    long long now, int want_rc, const char *want_why, struct identity_user *out)
{
	struct identity_user u;
	const char *why = NULL;
	int rc = verify_n(vf, t, strlen(t), now, &u, &why);

	if (out != NULL)
		*out = u;
	if (rc == want_rc && why != NULL && strcmp(why, want_why) == 0)
		return true;
	fprintf(stderr, "  want %d \"%s\", got %d \"%s\" for %.100s\n", want_rc,
	    want_why, rc, why ? why : "(null)", t);
	return false;
}

/* Each takes an owned token expression and frees it. */
#define REFUSE(vf, expr, reason) do { \
	char *t_ = (expr); \
	CHECK(expect_at(vf, t_, NOW, IDENTITY_FAILED, reason, NULL)); \
	free(t_); \
} while (0)

#define ACCEPT(vf, expr, u) do { \
	char *t_ = (expr); \
	CHECK(expect_at(vf, t_, NOW, IDENTITY_OK, "ok", u)); \
	free(t_); \
} while (0)

/* ---- tests -------------------------------------------------------- */

static void test_valid(void)
{
	EVP_PKEY *keys[3] = { rsa, ec, ed };
	const char *kids[3] = { "rsa1", "ec1", "ed1" };
	struct identity_user u;
	size_t i;

	for (i = 0; i < 3; i++) {
		memset(&u, 0xa5, sizeof(u));
		ACCEPT(v, tok(keys[i], kids[i], claims(",\"groups\":[\"staff\","
		    "\"ops\"],\"amr\":[\"pwd\",\"otp\"],\"iat\":1700000000,"
		    "\"nbf\":1700000000")), &u);
		CHECK(strcmp(u.name, "alice") == 0);
		CHECK_EQ_INT(u.ngroups, 2);
		CHECK(strcmp(u.groups[0], "staff") == 0);
		CHECK(strcmp(u.groups[1], "ops") == 0);
		CHECK(u.mfa);
		CHECK_EQ_INT(u.expires_s, NOW + 3600);
	}
	/* amr: only a second factor counts. */
	ACCEPT(v, tok(ed, "ed1", claims(",\"amr\":[\"pwd\"]")), &u);
	CHECK(!u.mfa);
	CHECK_EQ_INT(u.ngroups, 0);
	ACCEPT(v, tok(ed, "ed1", claims("")), &u);
	CHECK(!u.mfa);
	ACCEPT(v, tok(ed, "ed1", claims(",\"amr\":[\"pwd\",\"hwk\"]")), &u);
	CHECK(u.mfa);
	ACCEPT(v, tok(ed, "ed1", claims(",\"amr\":[]")), &u);
	CHECK(!u.mfa);
	REFUSE(v, tok(ed, "ed1", claims(",\"amr\":\"otp\"")), "bad amr claim");
	REFUSE(v, tok(ed, "ed1", claims(",\"amr\":[\"otp\",1]")), "bad amr claim");

	/* "typ" (RFC 7515 §4.1.9, RFC 9068 §2.1): any case, optional. */
	ACCEPT(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", claims("")), NULL);
	ACCEPT(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":\"jwt\"}",
	    claims("")), NULL);
	ACCEPT(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":\"AT+JWT\"}",
	    claims("")), NULL);
	ACCEPT(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\","
	    "\"typ\":\"application/at+jwt\"}", claims("")), NULL);
	REFUSE(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":\"JWS\"}",
	    claims("")), "bad typ");
	REFUSE(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":\"JWT \"}",
	    claims("")), "bad typ");
	REFUSE(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"typ\":1}",
	    claims("")), "bad typ");
	/* Keys offered by the token itself are ignored, never used. */
	ACCEPT(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\","
	    "\"jku\":\"https://evil.example/jwks\",\"jwk\":{\"kty\":\"oct\"}}",
	    claims("")), NULL);
	/* RFC 7515 §4.1.11: no critical extension is understood. */
	REFUSE(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[\"exp\"],"
	    "\"exp\":1}", claims("")), "critical header not supported");
	REFUSE(v, tok_hdr(ec, "{\"alg\":\"ES256\",\"kid\":\"ec1\",\"crit\":[]}",
	    claims("")), "critical header not supported");
	/* A verifier that was refused leaves nothing to free; NULL is fine. */
	jwt_verifier_free(NULL);
}

static void test_times(void)
{
	struct identity_user u;

	/* RFC 7519 §4.1.4 with JWT_LEEWAY_S of slack. */
	ACCEPT(v, tok(rsa, "rsa1", claims_exp(NOW - 30, "")), &u);
	CHECK_EQ_INT(u.expires_s, NOW - 30);
	ACCEPT(v, tok(rsa, "rsa1", claims_exp(NOW - JWT_LEEWAY_S, "")), NULL);
	REFUSE(v, tok(rsa, "rsa1", claims_exp(NOW - JWT_LEEWAY_S - 1, "")), "expired");
	REFUSE(v, tok(rsa, "rsa1", claims_exp(0, "")), "expired");
	REFUSE(v, tok(rsa, "rsa1", claims_exp(-9223372036854775807LL - 1, "")),
	    "expired");
	ACCEPT(v, tok(rsa, "rsa1", claims_exp(9223372036854775807LL, "")), NULL);
	/* NumericDate may have a fraction (RFC 7519 §2); exp rounds down. */
	ACCEPT(v, tok(ed, "ed1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"alice\",\"exp\":1700003600.75}")), &u);
	CHECK_EQ_INT(u.expires_s, NOW + 3600);
	REFUSE(v, tok(ed, "ed1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"alice\",\"exp\":1699999939.9}")), "expired");
	ACCEPT(v, tok(ed, "ed1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"alice\",\"exp\":1e300}")), NULL);
	REFUSE(v, tok(ed, "ed1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"alice\",\"exp\":-1e300}")), "expired");
	/* exp is required and must be a number. */
	REFUSE(v, tok(ed, "ed1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"alice\"}")), "missing exp");
	REFUSE(v, tok(ed, "ed1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"alice\",\"exp\":\"1700003600\"}")), "bad exp");
	REFUSE(v, tok(ed, "ed1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"alice\",\"exp\":null}")), "bad exp");
	/* nbf (§4.1.5) and iat with the same slack. */
	ACCEPT(v, tok(ec, "ec1", claims(",\"nbf\":1700000060")), NULL);
	REFUSE(v, tok(ec, "ec1", claims(",\"nbf\":1700000061")), "not yet valid");
	REFUSE(v, tok(ec, "ec1", claims(",\"nbf\":1700000060.5")), "not yet valid");
	REFUSE(v, tok(ec, "ec1", claims(",\"nbf\":9223372036854775807")), "not yet valid");
	REFUSE(v, tok(ec, "ec1", claims(",\"nbf\":\"0\"")), "bad nbf");
	ACCEPT(v, tok(ec, "ec1", claims(",\"iat\":1700000060")), NULL);
	REFUSE(v, tok(ec, "ec1", claims(",\"iat\":1700000061")), "issued in the future");
	REFUSE(v, tok(ec, "ec1", claims(",\"iat\":true")), "bad iat");
	/* A clock far beyond anything does not overflow. */
	{
		char *t = tok(ec, "ec1", claims_exp(9223372036854775807LL, ""));
		struct identity_user w;
		const char *why = NULL;

		CHECK_EQ_INT(jwt_verify(v, t, strlen(t), UINT64_MAX, &w, &why),
		    IDENTITY_OK);
		free(t);
	}
}

static void test_iss_aud(void)
{
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "/\",\"aud\":\""
	    AUD "\",\"sub\":\"alice\",\"exp\":1700003600}")), "wrong issuer");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"HTTPS://IDP.EXAMPLE.COM\","
	    "\"aud\":\"" AUD "\",\"sub\":\"alice\",\"exp\":1700003600}")), "wrong issuer");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"aud\":\"" AUD "\",\"sub\":\"alice\","
	    "\"exp\":1700003600}")), "wrong issuer");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":[\"" ISS "\"],\"aud\":\"" AUD
	    "\",\"sub\":\"alice\",\"exp\":1700003600}")), "wrong issuer");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"other\","
	    "\"sub\":\"alice\",\"exp\":1700003600}")), "wrong audience");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"gatehous\","
	    "\"sub\":\"alice\",\"exp\":1700003600}")), "wrong audience");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "\","
	    "\"sub\":\"alice\",\"exp\":1700003600}")), "wrong audience");
	ACCEPT(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":[\"a\",\""
	    AUD "\"],\"sub\":\"alice\",\"exp\":1700003600}")), NULL);
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":[\"a\","
	    "\"b\"],\"sub\":\"alice\",\"exp\":1700003600}")), "wrong audience");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":[],"
	    "\"sub\":\"alice\",\"exp\":1700003600}")), "wrong audience");
	REFUSE(v, tok(rsa, "rsa1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":[1,\""
	    AUD "\"],\"sub\":\"alice\",\"exp\":1700003600}")), "wrong audience");
}

static void test_algorithms(void)
{
	static const char *const refused[] = {
		"none", "None", "NONE", "", "HS256", "HS384", "HS512", "PS256",
		"RS384", "RS512", "ES384", "ES512", "ES256K", "Ed25519", "rs256",
	};
	char *p, *h, *t, *hdr;
	uint8_t *der = NULL;
	unsigned char nbuf[512];
	BIGNUM *n = NULL;
	BIO *bio;
	char *pem;
	long pemlen;
	int derlen, nlen;
	size_t i;

	/* "none" with an empty signature, with a signature, with no third
	 * part at all. */
	h = jws_b64s("{\"alg\":\"none\",\"typ\":\"JWT\"}");
	p = claims("");
	t = jws_b64s(p);
	free(p);
	REFUSE(v, jws_printf("%s.%s.", h, t), "malformed token");
	REFUSE(v, jws_printf("%s.%s", h, t), "malformed token");
	REFUSE(v, jws_printf("%s.%s.AAAA", h, t), "algorithm not allowed");
	free(h);
	h = jws_b64s("{\"alg\":\"none\",\"kid\":\"rsa1\"}");
	REFUSE(v, jws_printf("%s.%s.AAAA", h, t), "algorithm not allowed");
	free(h);
	free(t);
	/* Everything off the list, with a real RSA signature. */
	for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		hdr = jws_printf("{\"alg\":\"%s\",\"kid\":\"rsa1\"}", refused[i]);
		REFUSE(v, jws_sign(rsa, "RS256", hdr, "{}"), "algorithm not allowed");
		free(hdr);
	}
	REFUSE(v, jws_sign(rsa, "RS256", "{\"kid\":\"rsa1\"}", "{}"),
	    "algorithm not allowed");
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":null,\"kid\":\"rsa1\"}", "{}"),
	    "algorithm not allowed");
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":[\"RS256\"],\"kid\":\"rsa1\"}", "{}"),
	    "algorithm not allowed");

	/* Algorithm confusion: HS256 keyed with the RSA public key as the
	 * verifier holds it, as DER, PEM and the modulus bytes. */
	p = claims("");
	if ((derlen = i2d_PUBKEY(rsa, &der)) <= 0)
		jws_die("i2d_PUBKEY");
	if ((bio = BIO_new(BIO_s_mem())) == NULL || !PEM_write_bio_PUBKEY(bio, rsa))
		jws_die("PEM_write_bio_PUBKEY");
	pemlen = BIO_get_mem_data(bio, &pem);
	if (EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &n) != 1 ||
	    (nlen = BN_bn2bin(n, nbuf)) <= 0)
		jws_die("RSA n");
	REFUSE(v, jws_sign_hs256(der, (size_t)derlen,
	    "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", p), "algorithm not allowed");
	REFUSE(v, jws_sign_hs256(pem, (size_t)pemlen,
	    "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", p), "algorithm not allowed");
	REFUSE(v, jws_sign_hs256(pem, (size_t)pemlen,
	    "{\"alg\":\"HS256\",\"typ\":\"JWT\"}", p), "algorithm not allowed");
	REFUSE(v, jws_sign_hs256(nbuf, (size_t)nlen,
	    "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}", p), "algorithm not allowed");
	OPENSSL_free(der);
	BIO_free(bio);
	BN_free(n);

	/* A kid that names a key of another type than alg needs. */
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", p),
	    "key does not match algorithm");
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"ed1\"}", p),
	    "key does not match algorithm");
	REFUSE(v, jws_sign(ec, "ES256", "{\"alg\":\"ES256\",\"kid\":\"rsa1\"}", p),
	    "key does not match algorithm");
	REFUSE(v, jws_sign(ed, "EdDSA", "{\"alg\":\"EdDSA\",\"kid\":\"ec1\"}", p),
	    "key does not match algorithm");
	REFUSE(v, jws_sign(ec, "ES256", "{\"alg\":\"EdDSA\",\"kid\":\"ed1\"}", p),
	    "bad signature");

	/* Key choice. */
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"nope\"}", p),
	    "unknown kid");
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"RSA1\"}", p),
	    "unknown kid");
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"\"}", p),
	    "unknown kid");
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":1}", p),
	    "bad header");
	REFUSE(v, jws_sign(rsa, "RS256", "{\"alg\":\"RS256\"}", p), "missing kid");
	/* The right kid, the wrong private key. */
	REFUSE(v, jws_sign(ec2, "ES256", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", p),
	    "bad signature");
	free(p);
}

/* The ES256 signature in DER, as OpenSSL makes it, is not a JWS one. */
static void test_es256_der(void)
{
	char *h = jws_b64s("{\"alg\":\"ES256\",\"kid\":\"ec1\"}");
	char *p = claims(""), *pb = jws_b64s(p);
	char *input = jws_printf("%s.%s", h, pb);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	uint8_t sig[128];
	size_t n = sizeof(sig);

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, ec) != 1 ||
	    EVP_DigestSign(ctx, sig, &n, (uint8_t *)input, strlen(input)) != 1)
		jws_die("ES256 DER");
	REFUSE(v, jws_join(input, sig, n), "bad signature");
	/* A good R || S with a byte more or less, so the length is what
	 * is checked, not only what the first 64 bytes say. */
	{
		uint8_t *raw;
		size_t rawlen;

		raw = jws_sig(ec, "ES256", input, &rawlen);
		CHECK_EQ_INT(rawlen, 64);
		ACCEPT(v, jws_join(input, raw, 64), NULL);
		memcpy(sig, raw, 64);
		sig[64] = 0;
		REFUSE(v, jws_join(input, sig, 65), "bad signature");
		REFUSE(v, jws_join(input, sig, 63), "bad signature");
		free(raw);
	}
	/* R || S of zeros, and all ones: well-formed, never valid. */
	memset(sig, 0, 64);
	REFUSE(v, jws_join(input, sig, 64), "bad signature");
	memset(sig, 0xff, 64);
	REFUSE(v, jws_join(input, sig, 64), "bad signature");
	EVP_MD_CTX_free(ctx);
	free(input);
	free(pb);
	free(p);
	free(h);
}

/* Replaces part idx (0..2) of t with repl. Returns owned. */
static char *with_part(const char *t, int idx, const char *repl)
{
	const char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');

	if (idx == 0)
		return jws_printf("%s%s", repl, d1);
	if (idx == 1)
		return jws_printf("%.*s%s%s", (int)(d1 + 1 - t), t, repl, d2);
	return jws_printf("%.*s%s", (int)(d2 + 1 - t), t, repl);
}

static char *part_of(const char *t, int idx)
{
	const char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');

	if (idx == 0)
		return jws_printf("%.*s", (int)(d1 - t), t);
	if (idx == 1)
		return jws_printf("%.*s", (int)(d2 - d1 - 1), d1 + 1);
	return jws_printf("%s", d2 + 1);
}

static void test_tamper(void)
{
	char *good = tok(rsa, "rsa1", claims(""));
	char *evil = claims(",\"groups\":[\"admin\"]"), *eb = jws_b64s(evil);
	char *sig, *t;

	REFUSE(v, with_part(good, 1, eb), "bad signature");
	/* A different signature of the right length. */
	sig = part_of(good, 2);
	sig[10] = sig[10] == 'A' ? 'B' : 'A';
	REFUSE(v, with_part(good, 2, sig), "bad signature");
	free(sig);
	/* RFC 8017 §8.2.2: exactly the modulus length. A good signature
	 * one byte short, or led by a zero byte, is refused. */
	{
		char *input = jws_printf("%.*s", (int)(strrchr(good, '.') - good), good);
		uint8_t *raw, *longer;
		size_t rawlen;

		raw = jws_sig(rsa, "RS256", input, &rawlen);
		CHECK_EQ_INT(rawlen, 256);
		ACCEPT(v, jws_join(input, raw, rawlen), NULL);
		REFUSE(v, jws_join(input, raw, rawlen - 1), "bad signature");
		longer = jws_malloc(rawlen + 1);
		longer[0] = 0;
		memcpy(longer + 1, raw, rawlen);
		REFUSE(v, jws_join(input, longer, rawlen + 1), "bad signature");
		free(longer);
		free(raw);
		free(input);
	}
	/* A signature from another token by the same key. */
	t = tok(rsa, "rsa1", claims(",\"sub\":\"x\""));
	sig = part_of(t, 2);
	REFUSE(v, with_part(good, 2, sig), "bad signature");
	free(sig);
	free(t);
	free(evil);
	free(eb);
	free(good);
}

/* Every prefix and every one-character change of a good token is
 * refused, and none crashes or reads past the end (ASan). */
static void test_prefixes_and_changes(void)
{
	EVP_PKEY *keys[3] = { rsa, ec, ed };
	const char *kids[3] = { "rsa1", "ec1", "ed1" };
	static const char subst[] = { 'A', 'B', '.', '=', '+', '/', ' ', '\0', '\x80' };
	struct identity_user u;
	const char *why;
	char *t, *c;
	size_t i, len, pos, k;
	int bad_prefix = 0, bad_change = 0;

	for (i = 0; i < 3; i++) {
		t = tok(keys[i], kids[i], claims(",\"groups\":[\"g\"]"));
		len = strlen(t);
		CHECK_EQ_INT(verify_n(v, t, len, NOW, &u, &why), IDENTITY_OK);
		for (pos = 0; pos < len; pos++)
			if (verify_n(v, t, pos, NOW, &u, &why) != IDENTITY_FAILED)
				bad_prefix++;
		c = jws_malloc(len);
		for (pos = 0; pos < len; pos++) {
			for (k = 0; k < sizeof(subst); k++) {
				if (subst[k] == t[pos])
					continue;
				memcpy(c, t, len);
				c[pos] = subst[k];
				if (verify_n(v, c, len, NOW, &u, &why) != IDENTITY_FAILED)
					bad_change++;
			}
			/* The next letter of the alphabet: still base64url,
			 * so this reaches the decoder's bit checks and the
			 * signature. */
			memcpy(c, t, len);
			c[pos] = (char)(t[pos] == 'z' ? 'a' : t[pos] == '9' ? '0' :
			    t[pos] == 'Z' ? 'A' : t[pos] == '.' ? '-' :
			    t[pos] == '_' ? '-' : t[pos] == '-' ? '_' : t[pos] + 1);
			if (verify_n(v, c, len, NOW, &u, &why) != IDENTITY_FAILED)
				bad_change++;
		}
		free(c);
		/* Something appended. */
		REFUSE(v, jws_printf("%s.", t), "malformed token");
		REFUSE(v, jws_printf("%s.AAAA", t), "malformed token");
		REFUSE(v, jws_printf("%s=", t), "malformed token");
		REFUSE(v, jws_printf("%s ", t), "malformed token");
		REFUSE(v, jws_printf(".%s", t), "malformed token");
		free(t);
	}
	CHECK_EQ_INT(bad_prefix, 0);
	CHECK_EQ_INT(bad_change, 0);
}

static void test_spelling(void)
{
	char *good = tok(ed, "ed1", claims("")), *part, *t;
	size_t n;
	int i;

	for (i = 0; i < 3; i++) {
		/* Padding, in each part. */
		part = part_of(good, i);
		t = jws_printf("%s=", part);
		REFUSE(v, with_part(good, i, t), "malformed token");
		free(t);
		t = jws_printf("%s==", part);
		REFUSE(v, with_part(good, i, t), "malformed token");
		free(t);
		/* The base64 (not base64url) letters. */
		part[1] = '+';
		REFUSE(v, with_part(good, i, part), "malformed token");
		part[1] = '/';
		REFUSE(v, with_part(good, i, part), "malformed token");
		free(part);
	}
	/* An Ed25519 signature is 64 bytes: 86 characters, the last of
	 * which carries 2 bits; setting an unused bit gives a second
	 * spelling of the same bytes, which is refused. */
	part = part_of(good, 2);
	n = strlen(part);
	CHECK_EQ_INT(n, 86);
	{
		static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
		const char *at = strchr(abc, part[n - 1]);

		CHECK(at != NULL && ((at - abc) & 15) == 0);
		part[n - 1] = abc[(at - abc) | 1];
	}
	REFUSE(v, with_part(good, 2, part), "malformed token");
	free(part);
	/* Lengths of 1 mod 4 cannot be base64. */
	REFUSE(v, with_part(good, 2, "AAAAA"), "malformed token");
	free(good);

	/* Shapes. */
	REFUSE(v, jws_printf("%s", ""), "malformed token");
	REFUSE(v, jws_printf("%s", ".."), "malformed token");
	REFUSE(v, jws_printf("%s", "a..c"), "malformed token");
	REFUSE(v, jws_printf("%s", "e30.e30.AAAA.AAAA"), "malformed token");
	REFUSE(v, jws_printf("%s", "e30.e30.AAAA.AAAA.AAAA"), "malformed token");
	REFUSE(v, jws_printf("%s", "e30.e30"), "malformed token");
	REFUSE(v, jws_printf("%s", "e30"), "malformed token");
	{
		struct identity_user u;
		const char *why = NULL;

		CHECK_EQ_INT(jwt_verify(v, NULL, 0, NOW, &u, &why), IDENTITY_FAILED);
		CHECK(why != NULL);
		CHECK_EQ_INT(jwt_verify(NULL, "e30.e30.AAAA", 12, NOW, &u, &why),
		    IDENTITY_FAILED);
		CHECK_EQ_INT(jwt_verify(v, "e30.e30.AAAA", 12, NOW, NULL, &why),
		    IDENTITY_FAILED);
		CHECK_EQ_INT(jwt_verify(v, "e30.e30.AAAA", 12, NOW, &u, NULL),
		    IDENTITY_FAILED);
	}
}

static void test_json(void)
{
	/* Duplicate members: two parsers could each pick a different one. */
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"alg\":\"none\",\"kid\":\"rsa1\"}",
	    claims("")), "bad header");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"kid\":\"ec1\"}",
	    claims("")), "bad header");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
	    jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"alice\","
	    "\"sub\":\"root\",\"exp\":1700003600}")), "bad payload");
	/* Not objects, not JSON, trailing bytes, NUL in a string. */
	REFUSE(v, tok_hdr(rsa, "[\"RS256\"]", claims("")), "bad header");
	REFUSE(v, tok_hdr(rsa, "\"RS256\"", claims("")), "bad header");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"", claims("")),
	    "bad header");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}x", claims("")),
	    "bad header");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}{}", claims("")),
	    "bad header");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\\u0000\",\"kid\":\"rsa1\"}",
	    claims("")), "bad header");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
	    jws_printf("%s", "[1,2]")), "bad payload");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
	    jws_printf("%s", "not json")), "bad payload");
	REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
	    jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"al\\u0000\","
	    "\"exp\":1700003600}")), "bad payload");
	/* Deep nesting is bounded by jansson, not by our stack. */
	{
		char deep[4000];

		memset(deep, '[', sizeof(deep) - 1);
		deep[sizeof(deep) - 1] = '\0';
		REFUSE(v, tok_hdr(rsa, "{\"alg\":\"RS256\",\"kid\":\"rsa1\"}",
		    jws_printf("%s", deep)), "bad payload");
	}
}

static void test_size(void)
{
	char *pad, *t, *x;
	size_t n, lo = 0;

	/* The longest token that fits is read; one byte more is not. */
	pad = jws_malloc(JWT_MAX_LEN);
	for (n = 5000; n < JWT_MAX_LEN; n++) {
		memset(pad, 'x', n);
		pad[n] = '\0';
		x = jws_printf(",\"pad\":\"%s\"", pad);
		t = tok(ed, "ed1", claims(x));
		free(x);
		if (strlen(t) > JWT_MAX_LEN) {
			free(t);
			break;
		}
		lo = n;
		free(t);
	}
	memset(pad, 'x', lo);
	pad[lo] = '\0';
	x = jws_printf(",\"pad\":\"%s\"", pad);
	t = tok(ed, "ed1", claims(x));
	free(x);
	CHECK(strlen(t) <= JWT_MAX_LEN && strlen(t) > JWT_MAX_LEN - 4);
	ACCEPT(v, t, NULL);
	memset(pad, 'x', lo + 3);
	pad[lo + 3] = '\0';
	x = jws_printf(",\"pad\":\"%s\"", pad);
	t = tok(ed, "ed1", claims(x));
	free(x);
	CHECK(strlen(t) > JWT_MAX_LEN);
	REFUSE(v, t, "token too long");
	free(pad);
	/* Length is checked first: a huge length with garbage is not read. */
	{
		struct identity_user u;
		const char *why = NULL;
		char *big = jws_malloc(JWT_MAX_LEN + 1);

		memset(big, '!', JWT_MAX_LEN + 1);
		CHECK_EQ_INT(verify_n(v, big, JWT_MAX_LEN + 1, NOW, &u, &why),
		    IDENTITY_FAILED);
		CHECK(why != NULL && strcmp(why, "token too long") == 0);
		CHECK_EQ_INT(jwt_verify(v, big, SIZE_MAX, NOW, &u, &why),
		    IDENTITY_FAILED);
		free(big);
	}
}

static void test_user_groups(void)
{
	struct config_backend b;
	struct jwt_verifier *vc;
	struct identity_user u;
	char *g, *x;
	char name[80];
	int i;

	ACCEPT(v, tok(ec, "ec1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"sub\":\"A.b_c@d-e9\",\"exp\":1700003600}")), &u);
	CHECK(strcmp(u.name, "A.b_c@d-e9") == 0);
	memset(name, 'n', 63);
	name[63] = '\0';
	x = jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"%s\","
	    "\"exp\":1700003600}", name);
	ACCEPT(v, tok(ec, "ec1", x), &u);
	CHECK_EQ_INT(strlen(u.name), 63);
	name[63] = 'n';
	name[64] = '\0';
	x = jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"sub\":\"%s\","
	    "\"exp\":1700003600}", name);
	REFUSE(v, tok(ec, "ec1", x), "bad user claim");
	{
		static const char *const bad[] = {
			"\"\"", "\"al ice\"", "\"alice/../x\"", "\"al\\\"ice\"",
			"\"al\\nice\"", "\"al\303\257ce\"", "\"a:b\"", "\"a,b\"", "1", "null",
			"[\"alice\"]", "{}", "true",
		};
		size_t k;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			x = jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\","
			    "\"sub\":%s,\"exp\":1700003600}", bad[k]);
			REFUSE(v, tok(ec, "ec1", x), "bad user claim");
		}
	}
	REFUSE(v, tok(ec, "ec1", jws_printf("{\"iss\":\"" ISS "\",\"aud\":\"" AUD
	    "\",\"exp\":1700003600}")), "bad user claim");

	/* Groups: an array of names, at most IDENTITY_MAX_GROUPS. */
	REFUSE(v, tok(ec, "ec1", claims(",\"groups\":\"staff\"")), "bad groups claim");
	REFUSE(v, tok(ec, "ec1", claims(",\"groups\":{\"staff\":1}")), "bad groups claim");
	REFUSE(v, tok(ec, "ec1", claims(",\"groups\":null")), "bad groups claim");
	REFUSE(v, tok(ec, "ec1", claims(",\"groups\":[1]")), "bad groups claim");
	REFUSE(v, tok(ec, "ec1", claims(",\"groups\":[\"ok\",\"not ok\"]")),
	    "bad groups claim");
	REFUSE(v, tok(ec, "ec1", claims(",\"groups\":[\"\"]")), "bad groups claim");
	ACCEPT(v, tok(ec, "ec1", claims(",\"groups\":[]")), &u);
	CHECK_EQ_INT(u.ngroups, 0);
	g = jws_printf("%s", ",\"groups\":[\"g0\"");
	for (i = 1; i < IDENTITY_MAX_GROUPS; i++) {
		x = jws_printf("%s,\"g%d\"", g, i);
		free(g);
		g = x;
	}
	x = jws_printf("%s]", g);
	ACCEPT(v, tok(ec, "ec1", claims(x)), &u);
	free(x);
	CHECK_EQ_INT(u.ngroups, IDENTITY_MAX_GROUPS);
	CHECK(strcmp(u.groups[IDENTITY_MAX_GROUPS - 1], "g15") == 0);
	x = jws_printf("%s,\"one-more\"]", g);
	REFUSE(v, tok(ec, "ec1", claims(x)), "too many groups");
	free(x);
	free(g);

	/* Other claim names from the configuration. */
	b = backend_for("main.json");
	snprintf(b.user_claim, sizeof(b.user_claim), "preferred_username");
	snprintf(b.groups_claim, sizeof(b.groups_claim), "roles");
	vc = jwt_verifier_new(&b, err, sizeof(err));
	CHECK(vc != NULL);
	if (vc != NULL) {
		ACCEPT(vc, tok(ec, "ec1", claims(",\"preferred_username\":\"bob\","
		    "\"roles\":[\"r1\"],\"groups\":\"ignored\"")), &u);
		CHECK(strcmp(u.name, "bob") == 0);
		CHECK_EQ_INT(u.ngroups, 1);
		CHECK(strcmp(u.groups[0], "r1") == 0);
		REFUSE(vc, tok(ec, "ec1", claims("")), "bad user claim");
		jwt_verifier_free(vc);
	}
}

static bool err_has(const char *what)
{
	if (strstr(err, what) != NULL)
		return true;
	fprintf(stderr, "  err \"%s\" lacks \"%s\"\n", err, what);
	return false;
}

static void test_jwks(void)
{
	struct config_backend b;
	struct jwt_verifier *vf;
	char *k1, *k2, *k3, *keys;
	char path[PATH_MAX];

	/* Missing, not JSON, not a set, empty: each names the file. */
	b = backend_for("missing.json");
	CHECK(jwt_verifier_new(&b, err, sizeof(err)) == NULL);
	CHECK(err_has(b.jwks_file));
	path_of("jwks.json", path, sizeof(path));
	CHECK(verifier_text("not json") == NULL);
	CHECK(err_has(path));
	CHECK(verifier_text("") == NULL);
	CHECK(err_has(path));
	CHECK(verifier_text("[]") == NULL);
	CHECK(err_has(path));
	CHECK(verifier_text("{\"keys\":{}}") == NULL);
	CHECK(err_has(path));
	CHECK(verifier_text("{\"keys\":[]}") == NULL);
	CHECK(err_has(path));
	CHECK(err_has("no usable"));
	CHECK(verifier_text("{\"keys\":[1,\"x\",null,[],{}]}") == NULL);
	CHECK(err_has("no usable"));
	k1 = jws_jwk(ed, "a", NULL, 0);
	keys = jws_printf("{\"keys\":[%s],\"keys\":[]}", k1);
	CHECK(verifier_text(keys) == NULL);
	CHECK(err_has(path));
	free(keys);
	free(k1);
	/* A folder is no file. */
	b = backend_for("");
	CHECK(jwt_verifier_new(&b, err, sizeof(err)) == NULL);
	/* Over 1 MiB. */
	{
		size_t big = 1024 * 1024 + 1;
		char *text = jws_malloc(big);

		memset(text, ' ', big);
		memcpy(text, "{\"keys\":[]}", 11);
		write_text("big.json", text, big);
		free(text);
		b = backend_for("big.json");
		CHECK(jwt_verifier_new(&b, err, sizeof(err)) == NULL);
		CHECK(err_has(b.jwks_file));
	}
	/* Configuration the backend must have. */
	b = backend_for("main.json");
	b.issuer[0] = '\0';
	CHECK(jwt_verifier_new(&b, err, sizeof(err)) == NULL);
	b = backend_for("main.json");
	b.audience[0] = '\0';
	CHECK(jwt_verifier_new(&b, err, sizeof(err)) == NULL);
	CHECK(jwt_verifier_new(NULL, err, sizeof(err)) == NULL);

	/* Duplicate kid, also between key types, and with a private key. */
	k1 = jws_jwk(ed, "same", NULL, 0);
	k2 = jws_jwk(ec, "same", NULL, 0);
	keys = jws_printf("%s,%s", k1, k2);
	CHECK(verifier_keys(keys) == NULL);
	CHECK(err_has("same"));
	CHECK(err_has(path));
	free(keys);
	free(k2);
	k2 = jws_jwk(ed, "same", NULL, 0);
	keys = jws_printf("%s,%s", k1, k2);
	CHECK(verifier_keys(keys) == NULL);
	free(keys);
	free(k2);
	free(k1);

	/* Private keys are never loaded: alone, the set has no key. */
	k1 = jws_jwk(rsa, "rsa-priv", NULL, 1);
	k2 = jws_jwk(ec, "ec-priv", NULL, 1);
	CHECK(strstr(k1, "\"d\":") != NULL);
	keys = jws_printf("%s,%s", k1, k2);
	CHECK(verifier_keys(keys) == NULL);
	CHECK(err_has("no usable"));
	free(keys);
	/* Next to a public key they are skipped, with no error. */
	k3 = jws_jwk(ed, "ed1", NULL, 0);
	keys = jws_printf("%s,%s,%s", k1, k2, k3);
	vf = verifier_keys(keys);
	CHECK(vf != NULL);
	if (vf != NULL) {
		ACCEPT(vf, tok(ed, "ed1", claims("")), NULL);
		REFUSE(vf, tok(rsa, "rsa-priv", claims("")), "unknown kid");
		REFUSE(vf, tok(ec, "ec-priv", claims("")), "unknown kid");
		jwt_verifier_free(vf);
	}
	free(keys);
	free(k1);
	free(k2);
	free(k3);

	/* Skipped: RSA under 2048 bits, "use" other than "sig", key_ops
	 * without verify, an "alg" for another algorithm, an HMAC key, EC
	 * of another curve or bad coordinates, Ed448. */
	{
		const char *skipped[14];
		BIGNUM *bx = NULL, *by = NULL, *by2 = NULL;
		uint8_t x[33], y[33];
		char *sx, *sy, *sx31, *sx33, *sy2;
		size_t i, ns = 0;

		if (EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_X, &bx) != 1 ||
		    EVP_PKEY_get_bn_param(ec, OSSL_PKEY_PARAM_EC_PUB_Y, &by) != 1 ||
		    EVP_PKEY_get_bn_param(ec2, OSSL_PKEY_PARAM_EC_PUB_Y, &by2) != 1)
			jws_die("EC params");
		x[0] = 0;
		BN_bn2binpad(bx, x + 1, 32);
		BN_bn2binpad(by, y, 32);
		sx = jws_b64(x + 1, 32);
		sy = jws_b64(y, 32);
		sx31 = jws_b64(x + 1, 31);
		sx33 = jws_b64(x, 33);
		BN_bn2binpad(by2, y, 32);
		sy2 = jws_b64(y, 32);

		skipped[ns++] = jws_jwk(rsa_small, "s1", NULL, 0);
		skipped[ns++] = jws_jwk(ec, "s2", "\"use\":\"enc\"", 0);
		skipped[ns++] = jws_jwk(ec, "s3", "\"key_ops\":[\"encrypt\"]", 0);
		skipped[ns++] = jws_jwk(rsa, "s4", "\"alg\":\"PS256\"", 0);
		skipped[ns++] = jws_jwk(rsa, "s5", "\"alg\":\"ES256\"", 0);
		skipped[ns++] = jws_printf("%s", "{\"kid\":\"s6\",\"kty\":\"oct\","
		    "\"k\":\"c2VjcmV0\"}");
		skipped[ns++] = jws_printf("{\"kid\":\"s7\",\"kty\":\"EC\","
		    "\"crv\":\"P-384\",\"x\":\"%s\",\"y\":\"%s\"}", sx, sy);
		skipped[ns++] = jws_printf("{\"kid\":\"s8\",\"kty\":\"EC\","
		    "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", sx31, sy);
		skipped[ns++] = jws_printf("{\"kid\":\"s9\",\"kty\":\"EC\","
		    "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", sx33, sy);
		/* Off the curve: x of one key, y of another. */
		skipped[ns++] = jws_printf("{\"kid\":\"s10\",\"kty\":\"EC\","
		    "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", sx, sy2);
		skipped[ns++] = jws_printf("{\"kid\":\"s11\",\"kty\":\"OKP\","
		    "\"crv\":\"Ed448\",\"x\":\"%s\"}", sx);
		skipped[ns++] = jws_printf("{\"kid\":\"s12\",\"kty\":\"EC\","
		    "\"crv\":\"P-256\",\"x\":\"%s=\",\"y\":\"%s\"}", sx, sy);
		skipped[ns++] = jws_printf("{\"kid\":13,\"kty\":\"EC\","
		    "\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}", sx, sy);
		skipped[ns++] = jws_printf("{\"kid\":\"s14\",\"kty\":\"RSA\","
		    "\"n\":\"AQAB\",\"e\":\"AQAB\"}");
		for (i = 0; i < ns; i++) {
			keys = jws_printf("%s", skipped[i]);
			vf = verifier_keys(keys);
			CHECK(vf == NULL);
			if (vf != NULL) {
				fprintf(stderr, "  loaded: %s\n", skipped[i]);
				jwt_verifier_free(vf);
			}
			free(keys);
		}
		/* All of them next to one good key: the good one works. */
		k1 = jws_jwk(ed, "good", NULL, 0);
		keys = jws_printf("%s", k1);
		for (i = 0; i < ns; i++) {
			char *t = jws_printf("%s,%s", keys, skipped[i]);

			free(keys);
			keys = t;
		}
		vf = verifier_keys(keys);
		CHECK(vf != NULL);
		if (vf != NULL) {
			ACCEPT(vf, tok(ed, "good", claims("")), NULL);
			REFUSE(vf, tok(rsa_small, "s1", claims("")), "unknown kid");
			REFUSE(vf, tok(ec, "s2", claims("")), "unknown kid");
			REFUSE(vf, tok(rsa, "s4", claims("")), "unknown kid");
			/* One usable key, so no kid is needed. */
			ACCEPT(vf, tok(ed, NULL, claims("")), NULL);
			jwt_verifier_free(vf);
		}
		free(keys);
		free(k1);
		/* The right coordinates do load, and a 0x00-led modulus
		 * (which some libraries write) is the same number. */
		k1 = jws_printf("{\"kid\":\"ok\",\"kty\":\"EC\",\"crv\":\"P-256\","
		    "\"x\":\"%s\",\"y\":\"%s\",\"use\":\"sig\",\"alg\":\"ES256\","
		    "\"key_ops\":[\"verify\"]}", sx, sy);
		vf = verifier_keys(k1);
		CHECK(vf != NULL);
		if (vf != NULL) {
			ACCEPT(vf, tok(ec, "ok", claims("")), NULL);
			jwt_verifier_free(vf);
		}
		free(k1);
		{
			BIGNUM *bn = NULL;
			uint8_t nb[257];
			char *sn, *se;

			if (EVP_PKEY_get_bn_param(rsa, OSSL_PKEY_PARAM_RSA_N, &bn) != 1)
				jws_die("RSA n");
			nb[0] = 0;
			BN_bn2binpad(bn, nb + 1, 256);
			sn = jws_b64(nb, sizeof(nb));
			se = jws_b64_param(rsa, OSSL_PKEY_PARAM_RSA_E, 0);
			k1 = jws_printf("{\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"}", sn, se);
			vf = verifier_keys(k1);
			CHECK(vf != NULL);
			if (vf != NULL) {
				ACCEPT(vf, tok(rsa, NULL, claims("")), NULL);
				/* A kid the key does not have is unknown. */
				REFUSE(vf, tok(rsa, "rsa1", claims("")), "unknown kid");
				jwt_verifier_free(vf);
			}
			free(k1);
			free(sn);
			free(se);
			BN_free(bn);
		}
		for (i = 0; i < ns; i++)
			free((char *)skipped[i]);
		free(sx);
		free(sy);
		free(sx31);
		free(sx33);
		free(sy2);
		BN_free(bx);
		BN_free(by);
		BN_free(by2);
	}
}

/* Random bytes, and random strings over the token alphabet: none is
 * accepted and none crashes. Deterministic, so failures replay. */
static void test_random(void)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.";
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	struct identity_user u;
	const char *why;
	char buf[300];
	size_t len, i;
	int round, accepted = 0;

	for (round = 0; round < 20000; round++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		len = (size_t)(s % sizeof(buf));
		for (i = 0; i < len; i++) {
			s ^= s << 13;
			s ^= s >> 7;
			s ^= s << 17;
			buf[i] = round & 1 ? (char)(s >> 24) : abc[(s >> 24) % (sizeof(abc) - 1)];
		}
		if (verify_n(v, buf, len, NOW, &u, &why) != IDENTITY_FAILED)
			accepted++;
	}
	CHECK_EQ_INT(accepted, 0);
}

static void cleanup(void)
{
	char path[PATH_MAX];
	struct dirent *e;
	DIR *d = opendir(tmpdir);

	if (d != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			path_of(e->d_name, path, sizeof(path));
			unlink(path);
		}
		closedir(d);
	}
	rmdir(tmpdir);
}

int main(void)
{
	struct config_backend b;
	char *k1, *k2, *k3, *text;

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_jwt.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	rsa = keygen("RSA", 2048);
	rsa_small = keygen("RSA", 1024);
	ec = keygen("EC", 0);
	ec2 = keygen("EC", 0);
	ed = keygen("ED25519", 0);

	k1 = jws_jwk(rsa, "rsa1", "\"use\":\"sig\",\"alg\":\"RS256\"", 0);
	k2 = jws_jwk(ec, "ec1", "\"use\":\"sig\"", 0);
	k3 = jws_jwk(ed, "ed1", NULL, 0);
	text = jws_printf("{\"keys\":[%s,%s,%s]}", k1, k2, k3);
	write_text("main.json", text, strlen(text));
	free(text);
	free(k1);
	free(k2);
	free(k3);
	b = backend_for("main.json");
	v = jwt_verifier_new(&b, err, sizeof(err));
	if (v == NULL) {
		fprintf(stderr, "main JWKS refused: %s\n", err);
		cleanup();
		return 1;
	}

	test_valid();
	test_times();
	test_iss_aud();
	test_algorithms();
	test_es256_der();
	test_tamper();
	test_prefixes_and_changes();
	test_spelling();
	test_json();
	test_size();
	test_user_groups();
	test_jwks();
	test_random();

	jwt_verifier_free(v);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa_small);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ec2);
	EVP_PKEY_free(ed);
	cleanup();
	return check_done("test_jwt");
}
