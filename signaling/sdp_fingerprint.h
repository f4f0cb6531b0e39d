/* The certificate fingerprints an SDP declares (a=fingerprint, RFC 8122),
 * so that the relay can check the DTLS certificate that actually crosses
 * it against the one the peer signaled. Pure: no I/O, no allocation. */
#ifndef GH_SIGNALING_SDP_FINGERPRINT_H
#define GH_SIGNALING_SDP_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#define SDP_FP_MAX 4            /* distinct fingerprints kept per SDP */
#define SDP_FP_DIGEST_MAX 64    /* sha-512 */

enum sdp_fp_hash {
	SDP_FP_SHA1 = 1,
	SDP_FP_SHA224,
	SDP_FP_SHA256,
	SDP_FP_SHA384,
	SDP_FP_SHA512,
};

struct sdp_fingerprint {
	enum sdp_fp_hash hash;
	uint8_t digest[SDP_FP_DIGEST_MAX];
	size_t len;                 /* the hash's digest length */
};

/* Fills out with the distinct well-formed fingerprints of sdp (session and
 * media level alike; CRLF or LF line ends), in order, at most max.
 * Lines with a hash function other than the SHA family (md5, md2, an
 * unknown token) or a malformed value are skipped: they can match no
 * certificate we would accept. Returns how many. */
size_t sdp_fingerprints(const char *sdp, size_t len, struct sdp_fingerprint *out, size_t max);

/* "sha-256" and so on. */
const char *sdp_fp_hash_name(enum sdp_fp_hash h);

#endif
