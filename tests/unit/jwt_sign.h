/* Test-only JWT minting: base64url, public JWKs from in-process keys,
 * and compact JWS signing (RS256, ES256 as raw R||S, EdDSA, and HS256
 * for the key-confusion tests), so the unit tests of jwt.c and of the
 * identity layer need no outside tools or fixed key files.
 *
 * Every function returns an owned string (free with free()) and exits
 * the test with status 2 when OpenSSL or malloc fails: a broken fixture
 * is not a failed check. */
#ifndef GH_TESTS_JWT_SIGN_H
#define GH_TESTS_JWT_SIGN_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

static inline void jws_die(const char *what) __attribute__((noreturn));

static inline void jws_die(const char *what)
{
	fprintf(stderr, "jwt_sign: %s failed\n", what);
	exit(2);
}

static inline void *jws_malloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL)
		jws_die("malloc");
	return p;
}

/* RFC 4648 §5 without padding. */
static inline char *jws_b64(const void *data, size_t n)
{
	static const char abc[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const uint8_t *in = data;
	char *out = jws_malloc(n / 3 * 4 + 4);
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = abc[(acc >> bits) & 63];
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = abc[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	return out;
}

static inline char *jws_b64s(const char *s)
{
	return jws_b64(s, strlen(s));
}

/* A big-endian number padded to width bytes (0: its natural length). */
static inline char *jws_b64_bn(const BIGNUM *bn, int width)
{
	int n = width > 0 ? width : BN_num_bytes(bn);
	uint8_t *buf = jws_malloc((size_t)n);
	char *s;

	if (BN_bn2binpad(bn, buf, n) != n)
		jws_die("BN_bn2binpad");
	s = jws_b64(buf, (size_t)n);
	free(buf);
	return s;
}

static inline char *jws_b64_param(const EVP_PKEY *pkey, const char *name,
    int width)
{
	BIGNUM *bn = NULL;
	char *s;

	if (EVP_PKEY_get_bn_param(pkey, name, &bn) != 1)
		jws_die(name);
	s = jws_b64_bn(bn, width);
	BN_clear_free(bn);
	return s;
}

static inline char *jws_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static inline char *jws_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		jws_die("vsnprintf");
	s = jws_malloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* The public JWK of pkey (RSA, EC P-256 or Ed25519) as a JSON object.
 * kid NULL leaves "kid" out; extra (may be NULL) is pasted in as more
 * members, e.g. "\"use\":\"sig\"". With_private adds "d" (RSA and EC),
 * for the tests that a private JWK is never loaded. */
static inline char *jws_jwk(const EVP_PKEY *pkey, const char *kid,
    const char *extra, int with_private)
{
	char *kidm = kid ? jws_printf("\"kid\":\"%s\",", kid) : jws_printf("%s", "");
	char *ex = extra ? jws_printf(",%s", extra) : jws_printf("%s", "");
	char *a = NULL, *b = NULL, *d = NULL, *out;

	if (EVP_PKEY_is_a(pkey, "RSA")) {
		a = jws_b64_param(pkey, OSSL_PKEY_PARAM_RSA_N, 0);
		b = jws_b64_param(pkey, OSSL_PKEY_PARAM_RSA_E, 0);
		d = with_private ? jws_b64_param(pkey, OSSL_PKEY_PARAM_RSA_D, 0) : NULL;
		out = jws_printf("{%s\"kty\":\"RSA\",\"n\":\"%s\",\"e\":\"%s\"%s%s%s}",
		    kidm, a, b, d ? ",\"d\":\"" : "", d ? d : "", d ? "\"" : "");
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		a = jws_b64_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, 32);
		b = jws_b64_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
		d = with_private ? jws_b64_param(pkey, OSSL_PKEY_PARAM_PRIV_KEY, 32) : NULL;
		out = jws_printf("{%s\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\","
		    "\"y\":\"%s\"%s%s%s}", kidm, a, b, d ? ",\"d\":\"" : "",
		    d ? d : "", d ? "\"" : "");
	} else if (EVP_PKEY_is_a(pkey, "ED25519")) {
		uint8_t raw[32];
		size_t n = sizeof(raw);

		if (EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1 || n != 32)
			jws_die("EVP_PKEY_get_raw_public_key");
		a = jws_b64(raw, n);
		out = jws_printf("{%s\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"%s\"}",
		    kidm, a);
	} else {
		jws_die("jws_jwk: key type");
	}
	/* The extra members go before the closing brace. */
	if (ex[0] != '\0') {
		char *t = jws_printf("%.*s%s}", (int)strlen(out) - 1, out, ex);

		free(out);
		out = t;
	}
	free(kidm);
	free(ex);
	free(a);
	free(b);
	free(d);
	return out;
}

/* Raw signature bytes over input with pkey, in the JWS form for alg
 * ("RS256", "ES256", "EdDSA"). Returns owned, length in *siglen. */
static inline uint8_t *jws_sig(EVP_PKEY *pkey, const char *alg,
    const char *input, size_t *siglen)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	const EVP_MD *md = strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256();
	uint8_t *sig;
	size_t n = 0;

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, md, NULL, pkey) != 1 ||
	    EVP_DigestSign(ctx, NULL, &n, (const uint8_t *)input, strlen(input)) != 1)
		jws_die("EVP_DigestSign");
	sig = jws_malloc(n);
	if (EVP_DigestSign(ctx, sig, &n, (const uint8_t *)input, strlen(input)) != 1)
		jws_die("EVP_DigestSign");
	EVP_MD_CTX_free(ctx);
	if (strcmp(alg, "ES256") == 0) {
		/* RFC 7518 §3.4: DER ECDSA-Sig-Value to R || S. */
		const uint8_t *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
		uint8_t *raw = jws_malloc(64);

		if (es == NULL ||
		    BN_bn2binpad(ECDSA_SIG_get0_r(es), raw, 32) != 32 ||
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), raw + 32, 32) != 32)
			jws_die("ECDSA_SIG");
		ECDSA_SIG_free(es);
		free(sig);
		sig = raw;
		n = 64;
	}
	*siglen = n;
	return sig;
}

/* header_b64 '.' payload_b64 '.' b64(sig). */
static inline char *jws_join(const char *input, const uint8_t *sig, size_t siglen)
{
	char *s = jws_b64(sig, siglen);
	char *t = jws_printf("%s.%s", input, s);

	free(s);
	return t;
}

/* A compact JWS over the exact JSON texts given (so tests can send
 * duplicate members or non-objects), signed with pkey as sign_alg. The
 * header says whatever header_json says; sign_alg only picks how the
 * signature is made. */
static inline char *jws_sign(EVP_PKEY *pkey, const char *sign_alg,
    const char *header_json, const char *payload_json)
{
	char *h = jws_b64s(header_json), *p = jws_b64s(payload_json);
	char *input = jws_printf("%s.%s", h, p), *tok;
	uint8_t *sig;
	size_t siglen;

	sig = jws_sig(pkey, sign_alg, input, &siglen);
	tok = jws_join(input, sig, siglen);
	free(sig);
	free(input);
	free(h);
	free(p);
	return tok;
}

/* The same with HMAC-SHA256 keyed by secret: the algorithm-confusion
 * attack signs with the verifier's public key bytes as the secret. */
static inline char *jws_sign_hs256(const void *secret, size_t secretlen,
    const char *header_json, const char *payload_json)
{
	char *h = jws_b64s(header_json), *p = jws_b64s(payload_json);
	char *input = jws_printf("%s.%s", h, p), *tok;
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t maclen = 0;

	if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, secretlen,
	    (const uint8_t *)input, strlen(input), mac, sizeof(mac), &maclen) == NULL)
		jws_die("EVP_Q_mac");
	tok = jws_join(input, mac, maclen);
	free(input);
	free(h);
	free(p);
	return tok;
}

#endif
