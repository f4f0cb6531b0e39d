/* base64url (see b64url.h). */
#include "common/b64url.h"

#include "common/bytes.h"

static inline unsigned ct_lt(unsigned x, unsigned y)
{
	return 0u - ((x - y) >> 31); /* x, y < 2^31 */
}

static inline char b64url_char(unsigned x)
{
	unsigned ge26 = ~ct_lt(x, 26), ge52 = ~ct_lt(x, 52);
	unsigned ge62 = ~ct_lt(x, 62), eq63 = ~ct_lt(x, 63);
	unsigned c;

	c = x + 'A';
	c += ge26 & ('a' - 'A' - 26);
	c += ge52 & ((unsigned)'0' - 'a' - 26);
	c += ge62 & ((unsigned)'-' - '0' - 10);
	c += eq63 & ((unsigned)'_' - '-' - 1);
	return (char)(c & 0xff);
}

size_t b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

/* Writes exactly b64url_len(n) characters (no NUL). */
void b64url_encode(const uint8_t *in, size_t n, char *out)
{
	uint32_t acc = 0;
	unsigned bits = 0;
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64url_char((acc >> bits) & 63);
		}
		acc &= (1u << bits) - 1;
	}
	if (bits > 0)
		out[o++] = b64url_char((acc << (6 - bits)) & 63);
}

static int b64url_value(uint8_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* RFC 7515 §2 and §C: base64url without padding. Strict, because every
 * byte of a token must have exactly one spelling: only the alphabet (no
 * '=', '+', '/', white space or NUL), no length of 1 mod 4, and the
 * unused low bits of the last character zero. Otherwise one signature
 * could be sent as several different tokens. Returns 0 or -1. */
int b64url_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen)
{
	struct rd r = rd_init(in, n);
	struct wr w = wr_init(out, cap);
	uint32_t acc = 0;
	unsigned bits = 0;
	uint8_t c;
	int v;

	if (n % 4 == 1)
		return -1;
	while (rd_u8(&r, &c) == 0) {
		if ((v = b64url_value(c)) < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			wr_u8(&w, (uint8_t)(acc >> bits));
		}
		acc &= (1u << bits) - 1;
	}
	if (acc != 0 || w.overflow)
		return -1;
	*outlen = w.len;
	return 0;
}

