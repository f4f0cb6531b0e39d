/* Unit tests for signaling/totp.c: HOTP (RFC 4226 Appendix D), TOTP
 * (RFC 6238 Appendix B, SHA-1 rows), the acceptance window, replay
 * refusal, code shape, base32 (RFC 4648 §10) and the otpauth URI. */
#include "signaling/totp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

/* RFC 4226 Appendix D and RFC 6238 Appendix B (SHA-1 seed). */
static const uint8_t rfc_secret[] = "12345678901234567890";
#define RFC_SECRET_LEN 20

static void code_of(uint64_t step, char out[8])
{
	snprintf(out, 8, "%06u", (unsigned)totp_hotp(rfc_secret, RFC_SECRET_LEN, step));
}

static void test_hotp_vectors(void)
{
	static const uint32_t want[10] = {
		755224, 287082, 359152, 969429, 338314,
		254676, 287922, 162583, 399871, 520489,
	};
	uint64_t c;

	for (c = 0; c < 10; c++)
		CHECK_EQ_INT(totp_hotp(rfc_secret, RFC_SECRET_LEN, c), want[c]);
}

static void test_totp_vectors(void)
{
	/* Appendix B gives 8 digits; six are their last six. */
	static const struct {
		uint64_t t;
		const char *code;
	} v[] = {
		{ 59, "287082" },
		{ 1111111109, "081804" },
		{ 1111111111, "050471" },
		{ 1234567890, "005924" },
		{ 2000000000, "279037" },
		{ 20000000000ull, "353130" },
	};
	char got[8];
	uint64_t last;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		code_of(v[i].t / TOTP_STEP_S, got);
		CHECK(strcmp(got, v[i].code) == 0);
		last = 0;
		CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, v[i].code, v[i].t, &last), 0);
		CHECK_EQ_INT(last, v[i].t / TOTP_STEP_S);
	}
}

static void test_window(void)
{
	const uint64_t now = 1111111111, step = now / TOTP_STEP_S;
	char c[8];
	uint64_t last;
	int d;

	/* One step either side is accepted and recorded as that step. */
	for (d = -1; d <= 1; d++) {
		code_of(step + (uint64_t)(int64_t)d, c);
		last = 0;
		CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c, now, &last), 0);
		CHECK_EQ_INT(last, step + (uint64_t)(int64_t)d);
	}
	/* Two steps away is not. */
	code_of(step - 2, c);
	last = 0;
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c, now, &last), -1);
	CHECK_EQ_INT(last, 0);
	code_of(step + 2, c);
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c, now, &last), -1);
	CHECK_EQ_INT(last, 0);
	/* The edges of the step count: the last second of the step before
	 * next still accepts its successor's code, the first of the one after
	 * does not accept the code two before. */
	code_of(step + 1, c);
	last = 0;
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c, step * TOTP_STEP_S, &last), 0);
	code_of(step, c);
	last = 0;
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c,
	    (step + 2) * TOTP_STEP_S, &last), -1);
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c,
	    (step + 2) * TOTP_STEP_S - 1, &last), 0);
	/* At the epoch there is no step before 0 to look at. */
	last = 0;
	code_of(1, c);
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c, 0, &last), 0);
	CHECK_EQ_INT(last, 1);
}

static void test_replay(void)
{
	const uint64_t now = 2000000000, step = now / TOTP_STEP_S;
	char c0[8], cprev[8], cnext[8];
	uint64_t last = 0;

	code_of(step, c0);
	code_of(step - 1, cprev);
	code_of(step + 1, cnext);
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c0, now, &last), 0);
	CHECK_EQ_INT(last, step);
	/* The same code again, in the same step or the next one. */
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c0, now, &last), -1);
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c0, now + TOTP_STEP_S, &last), -1);
	/* An older step after a newer one. */
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, cprev, now, &last), -1);
	CHECK_EQ_INT(last, step);
	/* A newer one is still fine, and then the one before it is not. */
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, cnext, now, &last), 0);
	CHECK_EQ_INT(last, step + 1);
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, c0, now + TOTP_STEP_S, &last), -1);
	CHECK_EQ_INT(last, step + 1);
}

/* Checks a code held in a heap buffer of exactly its length (plus NUL),
 * so that ASan sees any read past the end. */
static int check_heap(const char *code, uint64_t now, uint64_t *last)
{
	size_t n = strlen(code);
	char *p = malloc(n + 1);
	int rc;

	if (p == NULL)
		abort();
	memcpy(p, code, n + 1);
	rc = totp_check(rfc_secret, RFC_SECRET_LEN, p, now, last);
	free(p);
	return rc;
}

static void test_shape(void)
{
	static const char *const bad[] = {
		"", "2", "28708", "2870820", "0287082", "28708a", " 287082", "287082 ",
		"287082\n", "+87082", "-87082", "28 082", "２87082", "2870８2", "0x1234",
		"287O82",
	};
	const uint64_t now = 59;
	uint64_t last = 0;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(check_heap(bad[i], now, &last), -1);
		CHECK_EQ_INT(last, 0);
	}
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, NULL, now, &last), -1);
	/* RFC 4226 §4 R6: secrets under 128 bits are refused. */
	CHECK_EQ_INT(totp_check(rfc_secret, 15, "287082", now, &last), -1);
	CHECK_EQ_INT(totp_check(rfc_secret, RFC_SECRET_LEN, "287082", now, NULL), -1);
	CHECK_EQ_INT(check_heap("287082", now, &last), 0);
}

static void test_base32_vectors(void)
{
	/* RFC 4648 §10, without the padding we do not write. */
	static const struct {
		const char *in, *out, *padded;
	} v[] = {
		{ "", "", "" },
		{ "f", "MY", "MY======" },
		{ "fo", "MZXQ", "MZXQ====" },
		{ "foo", "MZXW6", "MZXW6===" },
		{ "foob", "MZXW6YQ", "MZXW6YQ=" },
		{ "fooba", "MZXW6YTB", "MZXW6YTB" },
		{ "foobar", "MZXW6YTBOI", "MZXW6YTBOI======" },
	};
	char out[32], lower[32];
	uint8_t back[16];
	size_t i, j, n;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		n = strlen(v[i].in);
		CHECK_EQ_INT(totp_base32_encode((const uint8_t *)v[i].in, n, out, sizeof(out)),
		    strlen(v[i].out));
		CHECK(strcmp(out, v[i].out) == 0);
		/* Exactly enough room, and one byte short. */
		CHECK_EQ_INT(totp_base32_encode((const uint8_t *)v[i].in, n, out,
		    strlen(v[i].out) + 1), strlen(v[i].out));
		CHECK_EQ_INT(totp_base32_encode((const uint8_t *)v[i].in, n, out,
		    strlen(v[i].out)), -1);

		CHECK_EQ_INT(totp_base32_decode(v[i].out, back, sizeof(back)), n);
		CHECK(memcmp(back, v[i].in, n) == 0);
		CHECK_EQ_INT(totp_base32_decode(v[i].padded, back, sizeof(back)), n);
		CHECK(memcmp(back, v[i].in, n) == 0);
		for (j = 0; v[i].padded[j] != '\0'; j++)
			lower[j] = (char)(v[i].padded[j] >= 'A' && v[i].padded[j] <= 'Z' ?
			    v[i].padded[j] - 'A' + 'a' : v[i].padded[j]);
		lower[j] = '\0';
		CHECK_EQ_INT(totp_base32_decode(lower, back, sizeof(back)), n);
		CHECK(memcmp(back, v[i].in, n) == 0);
		if (n > 0) {
			CHECK_EQ_INT(totp_base32_decode(v[i].out, back, n), n);
			CHECK_EQ_INT(totp_base32_decode(v[i].out, back, n - 1), -1);
		}
	}
	/* Groups of four as apps show them. */
	CHECK_EQ_INT(totp_base32_decode("MZXW 6YTB OI", back, sizeof(back)), 6);
	CHECK(memcmp(back, "foobar", 6) == 0);
}

static void test_base32_bad(void)
{
	static const char *const bad[] = {
		"M",          /* 5 bits: no byte */
		"MZX",        /* 15 bits: one byte and a character too many */
		"MZXW6Y",     /* 30 bits */
		"MZ",         /* "f" with a non-zero fill bit */
		"MZXR",       /* "fo" likewise */
		"MY1",        /* not in the alphabet */
		"MY0", "MY8", "MY9", "MY-", "MY\n", "MY\xc3\xa9",
	};
	uint8_t back[16];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ_INT(totp_base32_decode(bad[i], back, sizeof(back)), -1);
	CHECK_EQ_INT(totp_base32_decode(NULL, back, sizeof(back)), -1);
}

static void test_base32_round_trip(void)
{
	uint8_t in[64], back[64];
	char enc[128];
	size_t n, i;
	int len;

	srand(4648);
	for (n = 0; n <= sizeof(in); n++) {
		for (i = 0; i < n; i++)
			in[i] = (uint8_t)rand();
		len = totp_base32_encode(in, n, enc, sizeof(enc));
		CHECK_EQ_INT(len, (n * 8 + 4) / 5);
		CHECK_EQ_INT(totp_base32_decode(enc, back, sizeof(back)), n);
		CHECK(memcmp(in, back, n) == 0);
	}
	/* A TOTP secret as userdb makes them: 20 bytes, 32 characters. */
	CHECK_EQ_INT(totp_base32_encode(rfc_secret, RFC_SECRET_LEN, enc, 33), 32);
	CHECK(strcmp(enc, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ") == 0);
}

static void test_uri(void)
{
	static const char want[] = "otpauth://totp/Gatehouse:alice?secret=GEZDGNBVGY3TQOJQ"
	    "GEZDGNBVGY3TQOJQ&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30";
	static const char want_enc[] = "otpauth://totp/ACME%20Corp%3A:bob%40example.com"
	    "%2F%3Fx%26y%3Dz%23~_.-?secret=MY&issuer=ACME%20Corp%3A&algorithm=SHA1"
	    "&digits=6&period=30";
	char out[256];
	size_t cap;

	CHECK_EQ_INT(totp_uri("Gatehouse", "alice", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
	    out, sizeof(out)), strlen(want));
	CHECK(strcmp(out, want) == 0);
	/* Every character that could end the label or add a parameter is
	 * percent-encoded (RFC 3986 §2.1, upper-case hex). */
	CHECK_EQ_INT(totp_uri("ACME Corp:", "bob@example.com/?x&y=z#~_.-", "MY",
	    out, sizeof(out)), strlen(want_enc));
	CHECK(strcmp(out, want_enc) == 0);
	/* Exactly enough room works; anything less fails cleanly. */
	for (cap = 0; cap <= strlen(want); cap++)
		CHECK_EQ_INT(totp_uri("Gatehouse", "alice", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
		    out, cap), -1);
	CHECK_EQ_INT(totp_uri("Gatehouse", "alice", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ",
	    out, strlen(want) + 1), strlen(want));
	CHECK_EQ_INT(totp_uri("ACME Corp:", "bob@example.com/?x&y=z#~_.-", "MY",
	    out, strlen(want_enc)), -1);
	CHECK_EQ_INT(totp_uri(NULL, "alice", "MY", out, sizeof(out)), -1);
}

int main(void)
{
	test_hotp_vectors();
	test_totp_vectors();
	test_window();
	test_replay();
	test_shape();
	test_base32_vectors();
	test_base32_bad();
	test_base32_round_trip();
	test_uri();
	return check_done("test_totp");
}
