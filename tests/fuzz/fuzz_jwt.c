/* Fuzz target: JWT verification (signaling/jwt.c).
 *
 * At the first input a JWKS with the three test keys of fuzz_fixtures.h
 * (RSA "rsa-1", EC P-256 "ec-1", Ed25519 "ed-1") is written to a
 * temporary file (mode 0600), loaded by jwt_verifier_new() and removed.
 * The clock is fixed at FZ_JWT_NOW_S, so the seed tokens made by
 * gen_corpus.c stay valid or expired as they were made.
 *
 * Each input is tried three ways:
 *   1. as a compact JWS, verbatim;
 *   2. when it starts with '{': as the claims of a token that this
 *      harness signs with the Ed25519 test key, so mutated claims reach
 *      the checks behind the signature (iss, aud, exp, nbf, iat, user,
 *      groups, amr);
 *   3. when it holds a '.': its first two parts, re-signed with the
 *      Ed25519 key, so mutated headers reach key selection and the
 *      algorithm checks with a signature that verifies under "ed-1".
 *
 * Invariants checked (abort() on violation): a reason is always given;
 * an accepted token names a user of 1..IDENTITY_NAME_MAX-1 bytes, at most
 * IDENTITY_MAX_GROUPS groups, and is not expired beyond the leeway.
 *
 * With FUZZ_VERBOSE=1 in the environment every verdict is printed, to
 * see what a seed reaches. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "signaling/identity.h"
#include "signaling/jwt.h"
#include "tests/fuzz/fuzz_fixtures.h"
#include "tests/unit/jwt_sign.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_jwt: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

static const char ED_HEADER[] = "{\"alg\":\"EdDSA\",\"kid\":\"" FZ_KID_ED "\",\"typ\":\"JWT\"}";

static struct jwt_verifier *verifier;
static bool verbose;
static EVP_PKEY *ed_key;
static char *ed_header_b64;

static EVP_PKEY *key_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	if (k == NULL) {
		fprintf(stderr, "fuzz_jwt: cannot read a test key\n");
		abort();
	}
	return k;
}

static void cleanup(void)
{
	jwt_verifier_free(verifier);
	EVP_PKEY_free(ed_key);
	free(ed_header_b64);
}

static void init_once(void)
{
	static bool done;
	struct config_backend b;
	EVP_PKEY *rsa, *ec;
	char *jwk_rsa, *jwk_ec, *jwk_ed, *jwks, err[512];
	char path[] = "/tmp/gh-fuzz-jwks-XXXXXX";
	size_t len;
	int fd;

	if (done)
		return;
	done = true;
	rsa = key_from_pem(fz_rsa_pem);
	ec = key_from_pem(fz_ec_pem);
	ed_key = key_from_pem(fz_ed_pem);
	jwk_rsa = jws_jwk(rsa, FZ_KID_RSA, "\"use\":\"sig\",\"alg\":\"RS256\"", 0);
	jwk_ec = jws_jwk(ec, FZ_KID_EC, "\"use\":\"sig\"", 0);
	jwk_ed = jws_jwk(ed_key, FZ_KID_ED, NULL, 0);
	jwks = jws_printf("{\"keys\":[%s,%s,%s]}", jwk_rsa, jwk_ec, jwk_ed);
	/* mkstemp creates the file with mode 0600. */
	if ((fd = mkstemp(path)) < 0)
		abort();
	len = strlen(jwks);
	if (write(fd, jwks, len) != (ssize_t)len || close(fd) != 0)
		abort();
	memset(&b, 0, sizeof(b));
	b.type = CONFIG_BACKEND_JWT;
	snprintf(b.issuer, sizeof(b.issuer), "%s", FZ_JWT_ISSUER);
	snprintf(b.audience, sizeof(b.audience), "%s", FZ_JWT_AUDIENCE);
	snprintf(b.jwks_file, sizeof(b.jwks_file), "%s", path);
	snprintf(b.user_claim, sizeof(b.user_claim), "sub");
	snprintf(b.groups_claim, sizeof(b.groups_claim), "groups");
	verifier = jwt_verifier_new(&b, err, sizeof(err));
	unlink(path);
	if (verifier == NULL) {
		fprintf(stderr, "fuzz_jwt: jwt_verifier_new: %s\n", err);
		abort();
	}
	ed_header_b64 = jws_b64s(ED_HEADER);
	verbose = getenv("FUZZ_VERBOSE") != NULL;
	free(jwk_rsa);
	free(jwk_ec);
	free(jwk_ed);
	free(jwks);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	atexit(cleanup);
}

static void verify(const char *token, size_t len)
{
	struct identity_user u;
	const char *why = NULL;
	size_t n;
	int rc;

	rc = jwt_verify(verifier, token, len, FZ_JWT_NOW_S, &u, &why);
	FUZZ_CHECK(why != NULL);
	if (verbose)
		fprintf(stderr, "fuzz_jwt: %d %s%s%s\n", rc, why, rc == IDENTITY_OK ?
		    " user=" : "", rc == IDENTITY_OK ? u.name : "");
	FUZZ_CHECK(rc == IDENTITY_OK || rc == IDENTITY_FAILED || rc == IDENTITY_ERROR);
	if (rc != IDENTITY_OK)
		return;
	n = strnlen(u.name, sizeof(u.name));
	FUZZ_CHECK(n > 0 && n < sizeof(u.name));
	FUZZ_CHECK(u.ngroups <= IDENTITY_MAX_GROUPS);
	for (n = 0; n < u.ngroups; n++)
		FUZZ_CHECK(strnlen(u.groups[n], sizeof(u.groups[n])) < sizeof(u.groups[n]));
	FUZZ_CHECK(u.expires_s + JWT_LEEWAY_S >= FZ_JWT_NOW_S);
}

/* input (header.payload as text) '.' base64url(Ed25519 signature). */
static void verify_signed(const char *input)
{
	uint8_t *sig;
	size_t siglen;
	char *token;

	sig = jws_sig(ed_key, "EdDSA", input, &siglen);
	token = jws_join(input, sig, siglen);
	verify(token, strlen(token));
	free(token);
	free(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *dot1, *dot2;
	char *copy, *payload, *input;
	size_t n;

	init_once();

	/* 1. Verbatim, from a buffer of exactly its size. */
	verify(text, size);

	/* The signing paths need C strings: no NUL inside, and short
	 * enough that the token stays under JWT_MAX_LEN. */
	if (size == 0 || size > JWT_MAX_LEN / 2 || memchr(data, '\0', size) != NULL)
		return 0;

	/* 2. The input as claims, signed. */
	if (text[0] == '{') {
		payload = jws_b64(data, size);
		input = jws_printf("%s.%s", ed_header_b64, payload);
		verify_signed(input);
		free(input);
		free(payload);
	}

	/* 3. Its header.payload, re-signed. */
	if ((dot1 = memchr(text, '.', size)) != NULL) {
		dot2 = memchr(dot1 + 1, '.', size - (size_t)(dot1 + 1 - text));
		n = dot2 != NULL ? (size_t)(dot2 - text) : size;
		copy = jws_malloc(n + 1);
		memcpy(copy, text, n);
		copy[n] = '\0';
		verify_signed(copy);
		free(copy);
	}
	return 0;
}
