/* TOTP (RFC 6238) over HOTP (RFC 4226), and the base32 (RFC 4648 §6)
 * and otpauth:// forms that authenticator apps read. */
#include "signaling/totp.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

/* RFC 4226 §4 R6: the shared secret MUST be at least 128 bits. Shorter
 * ones are refused by totp_check; totp_hotp computes whatever it is given
 * so that it can be checked against any published vector. */
#define TOTP_SECRET_MIN 16

static const char b32_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/* The modulus in hotp() and the parameters written into the URI. */
_Static_assert(TOTP_DIGITS == 6 && TOTP_STEP_S == 30, "update hotp() and totp_uri()");

/* RFC 4226 §5.3: HMAC-SHA-1 over the 8-byte big-endian counter, then
 * "dynamic truncation" to 31 bits, then modulo 10^Digit. */
static int hotp(const uint8_t *secret, size_t len, uint64_t counter, uint32_t *code)
{
	uint8_t msg[8], md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	unsigned int off;
	uint32_t bin;
	int i;

	if (len > INT_MAX)
		return -1;
	for (i = 7; i >= 0; i--) {
		msg[i] = (uint8_t)(counter & 0xff);
		counter >>= 8;
	}
	if (HMAC(EVP_sha1(), secret, (int)len, msg, sizeof(msg), md, &mdlen) == NULL ||
	    mdlen != 20) {
		OPENSSL_cleanse(md, sizeof(md));
		return -1;
	}
	off = md[19] & 0x0f;
	bin = (uint32_t)(md[off] & 0x7f) << 24 | (uint32_t)md[off + 1] << 16 |
	    (uint32_t)md[off + 2] << 8 | (uint32_t)md[off + 3];
	OPENSSL_cleanse(md, sizeof(md));
	*code = bin % 1000000u;
	return 0;
}

uint32_t totp_hotp(const uint8_t *secret, size_t len, uint64_t counter)
{
	uint32_t code;

	/* The header promises 0..999999; HMAC fails only when OpenSSL
	 * cannot allocate, and then UINT32_MAX matches no six-digit code. */
	if (hotp(secret, len, counter, &code) < 0)
		return UINT32_MAX;
	return code;
}

/* Exactly six ASCII digits and the end of the string. The loop stops at
 * the first non-digit, the terminating NUL included, so a short string
 * is never read past its end. */
static int code_shape_ok(const char *code)
{
	int i;

	if (code == NULL)
		return 0;
	for (i = 0; i < TOTP_DIGITS; i++)
		if (code[i] < '0' || code[i] > '9')
			return 0;
	return code[TOTP_DIGITS] == '\0';
}

int totp_check(const uint8_t *secret, size_t len, const char *code, uint64_t now_s,
    uint64_t *last_step)
{
	char want[16];
	uint64_t now_step, step, matched = 0;
	uint32_t expect;
	int found = 0, failed = 0, d;

	if (secret == NULL || len < TOTP_SECRET_MIN || last_step == NULL ||
	    !code_shape_ok(code))
		return -1;
	now_step = now_s / TOTP_STEP_S;
	/* RFC 6238 §5.2: accept one step either side for clock drift and the
	 * time it takes to type. §5.2 also says a verifier MUST NOT accept
	 * the second attempt of the same OTP: every step at or before the
	 * last one accepted is refused, which also refuses an older code
	 * once a newer one was used. All three candidates are computed and
	 * compared whatever matches, so the time taken says nothing about
	 * which one (if any) did. */
	for (d = -1; d <= 1; d++) {
		if (d < 0 && now_step == 0)
			continue;
		step = d < 0 ? now_step - 1 : now_step + (uint64_t)d;
		if (step <= *last_step)
			continue;
		if (hotp(secret, len, step, &expect) < 0) {
			failed = 1;
			continue;
		}
		snprintf(want, sizeof(want), "%06u", (unsigned)expect);
		/* Of two steps whose codes collide, the later one is taken, so
		 * that the code can be used at most once. */
		if (CRYPTO_memcmp(want, code, TOTP_DIGITS) == 0) {
			matched = step;
			found = 1;
		}
	}
	OPENSSL_cleanse(want, sizeof(want));
	if (!found || failed)
		return -1;
	*last_step = matched;
	return 0;
}

int totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap)
{
	size_t need, i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	/* RFC 4648 §6: every 5 bits make a character; without padding the
	 * last character carries the remaining bits followed by zeros. */
	if (len > (size_t)INT_MAX / 8 * 5)
		return -1;
	need = (len * 8 + 4) / 5;
	if (out == NULL || cap < need + 1)
		return -1;
	for (i = 0; i < len; i++) {
		acc = (acc << 8 | in[i]) & 0xfff;
		bits += 8;
		while (bits >= 5) {
			bits -= 5;
			out[o++] = b32_alphabet[(acc >> bits) & 0x1f];
		}
	}
	if (bits > 0)
		out[o++] = b32_alphabet[(acc << (5 - bits)) & 0x1f];
	out[o] = '\0';
	return (int)o;
}

static int b32_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a';
	if (c >= '2' && c <= '7')
		return c - '2' + 26;
	return -1;
}

int totp_base32_decode(const char *in, uint8_t *out, size_t cap)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0, v;

	if (in == NULL || out == NULL)
		return -1;
	for (; *in != '\0'; in++) {
		/* Apps show secrets in groups of four, and RFC 4648 padding
		 * carries no information once the length is known. */
		if (*in == ' ' || *in == '=')
			continue;
		v = b32_value(*in);
		if (v < 0)
			return -1;
		acc = (acc << 5 | (uint32_t)v) & 0xfff;
		bits += 5;
		if (bits >= 8) {
			bits -= 8;
			if (o >= cap || o >= (size_t)INT_MAX)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	/* What is left must be the zero fill of a final partial character
	 * (RFC 4648 §3.5); five or more bits left would be a character that
	 * encodes no byte, a length no encoder produces. */
	if (bits >= 5 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (int)o;
}

/* RFC 3986 §2.3: everything but the unreserved characters is sent as
 * %XX, so a name cannot add a parameter or a path segment. */
static int pct_append(char *out, size_t cap, size_t *o, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	unsigned char c;

	for (; *s != '\0'; s++) {
		c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~') {
			if (cap - *o < 2)
				return -1;
			out[(*o)++] = (char)c;
		} else {
			if (cap - *o < 4)
				return -1;
			out[(*o)++] = '%';
			out[(*o)++] = hex[c >> 4];
			out[(*o)++] = hex[c & 0xf];
		}
	}
	return 0;
}

static int raw_append(char *out, size_t cap, size_t *o, const char *s)
{
	size_t n = strlen(s);

	if (cap - *o < n + 1)
		return -1;
	memcpy(out + *o, s, n);
	*o += n;
	return 0;
}

/* The Key Uri Format of Google Authenticator, which the other apps
 * follow: the label is "issuer:account" and the issuer is repeated as a
 * parameter for apps that read only that. */
int totp_uri(const char *issuer, const char *name, const char *b32, char *out, size_t cap)
{
	size_t o = 0;

	if (issuer == NULL || name == NULL || b32 == NULL || out == NULL || cap == 0 ||
	    cap > INT_MAX)
		return -1;
	if (raw_append(out, cap, &o, "otpauth://totp/") < 0 ||
	    pct_append(out, cap, &o, issuer) < 0 ||
	    raw_append(out, cap, &o, ":") < 0 ||
	    pct_append(out, cap, &o, name) < 0 ||
	    raw_append(out, cap, &o, "?secret=") < 0 ||
	    pct_append(out, cap, &o, b32) < 0 ||
	    raw_append(out, cap, &o, "&issuer=") < 0 ||
	    pct_append(out, cap, &o, issuer) < 0 ||
	    raw_append(out, cap, &o, "&algorithm=SHA1&digits=6&period=30") < 0) {
		/* A partial URI may hold part of the secret. */
		OPENSSL_cleanse(out, cap);
		out[0] = '\0';
		return -1;
	}
	out[o] = '\0';
	return (int)o;
}
