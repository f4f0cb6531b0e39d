/* Unit tests for signaling/sdp_fingerprint.c: the fingerprints of a
 * Chromium-style and an aiortc-style SDP, every SHA hash, duplicates,
 * malformed values, and every prefix of a real SDP read from an exact-size
 * heap copy (AddressSanitizer catches a read past the end). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signaling/sdp_fingerprint.h"
#include "tests/unit/check.h"

#define FP256 "1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09:1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09"

static const char CHROME[] =
    "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n"
    "a=fingerprint:sha-256 " FP256 "\r\na=setup:actpass\r\na=mid:0\r\n"
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\n"
    "a=fingerprint:sha-256 " FP256 "\r\na=setup:actpass\r\na=mid:1\r\n";

/* aiortc: session level, LF only, lower-case hex, three hashes. */
static const char AIORTC[] =
    "v=0\no=- 1 1 IN IP4 0.0.0.0\ns=-\nt=0 0\n"
    "a=fingerprint:sha-256 1a:2b:3c:4d:5e:6f:70:81:92:a3:b4:c5:d6:e7:f8:09:1a:2b:3c:4d:5e:6f:70:81:92:a3:b4:c5:d6:e7:f8:09\n"
    "a=fingerprint:sha-384 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n"
    "a=fingerprint:sha-1 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 0\n";

static size_t run(const char *sdp, size_t len, struct sdp_fingerprint *fp, size_t max)
{
	char *copy = malloc(len ? len : 1);
	size_t n;

	memcpy(copy, sdp, len);
	n = sdp_fingerprints(copy, len, fp, max);
	free(copy);
	return n;
}

static void test_chrome(void)
{
	struct sdp_fingerprint fp[SDP_FP_MAX];
	size_t n = run(CHROME, strlen(CHROME), fp, SDP_FP_MAX);

	/* Both media sections name the same certificate: one entry. */
	CHECK_EQ_INT(n, 1);
	CHECK_EQ_INT(fp[0].hash, SDP_FP_SHA256);
	CHECK_EQ_INT(fp[0].len, 32);
	CHECK(fp[0].digest[0] == 0x1a && fp[0].digest[1] == 0x2b && fp[0].digest[31] == 0x09);
	CHECK(strcmp(sdp_fp_hash_name(fp[0].hash), "sha-256") == 0);
}

static void test_aiortc(void)
{
	struct sdp_fingerprint fp[SDP_FP_MAX];
	size_t n = run(AIORTC, strlen(AIORTC), fp, SDP_FP_MAX);

	CHECK_EQ_INT(n, 3);
	CHECK_EQ_INT(fp[0].hash, SDP_FP_SHA256);
	CHECK_EQ_INT(fp[1].hash, SDP_FP_SHA384);
	CHECK_EQ_INT(fp[1].len, 48);
	CHECK(fp[1].digest[10] == 0xaa && fp[1].digest[47] == 0xff);
	CHECK_EQ_INT(fp[2].hash, SDP_FP_SHA1);
	CHECK_EQ_INT(fp[2].len, 20);
	/* max is honoured. */
	CHECK_EQ_INT(run(AIORTC, strlen(AIORTC), fp, 2), 2);
	CHECK_EQ_INT(run(AIORTC, strlen(AIORTC), fp, 0), 0);
}

static void test_refused(void)
{
	static const char *bad[] = {
		"a=fingerprint:md5 00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff\n",
		"a=fingerprint:sha-256 " FP256 ":00\n",           /* too long */
		"a=fingerprint:sha-256 1A:2B\n",                   /* too short */
		"a=fingerprint:sha-256 1A-2B-3C-4D-5E-6F-70-81-92-A3-B4-C5-D6-E7-F8-09-1A-2B-3C-4D-5E-6F-70-81-92-A3-B4-C5-D6-E7-F8-09\n",
		"a=fingerprint:sha-256 GG:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09:1A:2B:3C:4D:5E:6F:70:81:92:A3:B4:C5:D6:E7:F8:09\n",
		"a=fingerprint:sha-2561 " FP256 "\n",
		"a=fingerprint:sha-256\n",
		"a=fingerprint:\n",
		"a=fingerprints:sha-256 " FP256 "\n",
		" a=fingerprint:sha-256 " FP256 "\n",
	};
	struct sdp_fingerprint fp[SDP_FP_MAX];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t n = run(bad[i], strlen(bad[i]), fp, SDP_FP_MAX);
		if (n != 0)
			fprintf(stderr, "accepted: %s", bad[i]);
		CHECK_EQ_INT(n, 0);
	}
	/* Case of the attribute and hash, trailing blanks, no final line end. */
	CHECK_EQ_INT(run("A=FINGERPRINT:SHA-256 " FP256 "  ", strlen("A=FINGERPRINT:SHA-256 " FP256 "  "),
	    fp, SDP_FP_MAX), 1);
}

static void test_prefixes(void)
{
	struct sdp_fingerprint fp[SDP_FP_MAX];
	size_t len = strlen(AIORTC), i, n, last = 0;

	/* A fingerprint counts only once its value is whole, and the count
	 * never goes down as the input grows. */
	for (i = 0; i <= len; i++) {
		n = run(AIORTC, i, fp, SDP_FP_MAX);
		CHECK(n >= last && n <= 3);
		last = n;
	}
	CHECK_EQ_INT(last, 3);
	CHECK_EQ_INT(run(CHROME, strlen("v=0\r\n") + 2, fp, SDP_FP_MAX), 0);
}

int main(void)
{
	test_chrome();
	test_aiortc();
	test_refused();
	test_prefixes();
	return check_done("test_sdp_fingerprint");
}
