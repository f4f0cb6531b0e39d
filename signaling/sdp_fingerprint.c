/* a=fingerprint lines of an SDP (see sdp_fingerprint.h). */
#include "signaling/sdp_fingerprint.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

static const struct {
	const char *name;
	enum sdp_fp_hash hash;
	size_t len;
} HASHES[] = {
	{ "sha-1", SDP_FP_SHA1, 20 },
	{ "sha-224", SDP_FP_SHA224, 28 },
	{ "sha-256", SDP_FP_SHA256, 32 },
	{ "sha-384", SDP_FP_SHA384, 48 },
	{ "sha-512", SDP_FP_SHA512, 64 },
};

const char *sdp_fp_hash_name(enum sdp_fp_hash h)
{
	size_t i;

	for (i = 0; i < sizeof(HASHES) / sizeof(HASHES[0]); i++)
		if (HASHES[i].hash == h)
			return HASHES[i].name;
	return "unknown";
}

/* One line's value after "a=fingerprint:", without its line end:
 * "sha-256 AB:CD:…". Trailing blanks are tolerated, nothing else. */
static bool parse_value(const char *v, size_t n, struct sdp_fingerprint *fp)
{
	size_t i = 0, tok, k, want = 0;

	while (i < n && v[i] != ' ')
		i++;
	tok = i;
	memset(fp, 0, sizeof(*fp));
	for (k = 0; k < sizeof(HASHES) / sizeof(HASHES[0]); k++) {
		if (strlen(HASHES[k].name) == tok && strncasecmp(v, HASHES[k].name, tok) == 0) {
			fp->hash = HASHES[k].hash;
			want = HASHES[k].len;
		}
	}
	if (want == 0)
		return false;
	while (i < n && v[i] == ' ')
		i++;
	while (n > i && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	/* Exactly want pairs of hex digits, colon-separated. */
	if (n - i != want * 3 - 1)
		return false;
	for (k = 0; k < want; k++, i += 3) {
		int hi = OPENSSL_hexchar2int((unsigned char)v[i]);
		int lo = OPENSSL_hexchar2int((unsigned char)v[i + 1]);
		if (hi < 0 || lo < 0 || (k + 1 < want && v[i + 2] != ':'))
			return false;
		fp->digest[k] = (uint8_t)(hi << 4 | lo);
	}
	fp->len = want;
	return true;
}

size_t sdp_fingerprints(const char *sdp, size_t len, struct sdp_fingerprint *out, size_t max)
{
	static const char key[] = "a=fingerprint:";
	size_t pos = 0, count = 0, end, n, k;
	struct sdp_fingerprint fp;
	bool seen;

	while (pos < len && count < max) {
		const char *nl = memchr(sdp + pos, '\n', len - pos);
		end = nl != NULL ? (size_t)(nl - sdp) : len;
		n = end - pos;
		if (n > 0 && sdp[end - 1] == '\r')
			n--;
		if (n > sizeof(key) - 1 && strncasecmp(sdp + pos, key, sizeof(key) - 1) == 0 &&
		    parse_value(sdp + pos + sizeof(key) - 1, n - (sizeof(key) - 1), &fp)) {
			/* Every media section repeats the one certificate's. */
			for (seen = false, k = 0; k < count && !seen; k++)
				seen = out[k].hash == fp.hash && memcmp(out[k].digest, fp.digest, fp.len) == 0;
			if (!seen)
				out[count++] = fp;
		}
		pos = end + 1;
	}
	return count;
}
