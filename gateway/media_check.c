/* DTLS handshake checks on the relay (see media_check.h). */
#include "gateway/media_check.h"

#include <string.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "gateway/log.h"

/* a->inspect_flags: what has been audited for this allocation already, so
 * that retransmitted flights do not repeat it. */
#define SEEN_SERVER_HELLO 0x01
#define SEEN_CERT_OK 0x02
#define SEEN_CERT_BAD 0x04
#define SEEN_UNSIGNALED 0x08
#define SEEN_CLIENT_HELLO 0x10
#define SEEN_CERT_SPLIT 0x20

static const EVP_MD *md_of(enum sdp_fp_hash h)
{
	switch (h) {
	case SDP_FP_SHA1: return EVP_sha1();
	case SDP_FP_SHA224: return EVP_sha224();
	case SDP_FP_SHA256: return EVP_sha256();
	case SDP_FP_SHA384: return EVP_sha384();
	case SDP_FP_SHA512: return EVP_sha512();
	}
	return NULL;
}

/* Does the certificate match any of the signaled fingerprints? */
static bool cert_matches(const uint8_t *cert, size_t len, const struct sdp_fingerprint *fps,
    size_t n)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen;
	size_t i;

	for (i = 0; i < n; i++) {
		const EVP_MD *type = md_of(fps[i].hash);
		if (type == NULL || EVP_Digest(cert, len, md, &mdlen, type, NULL) != 1 ||
		    mdlen != fps[i].len)
			continue;
		if (CRYPTO_memcmp(md, fps[i].digest, mdlen) == 0)
			return true;
	}
	return false;
}

static void audit_hello(const struct media_check_env *env, const struct turn_alloc *a,
    const struct dtls_peek *p, uint64_t now_ms)
{
	const char *profile = p->nprofiles == 1 ? dtls_srtp_profile_name(p->profiles[0]) : NULL;
	bool v13 = p->version == DTLS_VERSION_13;

	audit_log(env->audit, now_ms, "media.dtls", json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s, s:s}",
	    "call", a->id.call, "user", a->id.user, "check", "server_hello",
	    "version", v13 ? "1.3" : p->version == DTLS_VERSION_12 ? "1.2" : "other",
	    "srtp_profile", profile,
	    /* DTLS 1.3 encrypts the certificate and the server's SRTP
	     * profile: nothing more can be checked on the path. */
	    "certificate", v13 ? "hidden" : "in the clear", "outcome", "success"));
}

static void audit_client_hello(const struct media_check_env *env, const struct turn_alloc *a,
    const struct dtls_peek *p, uint64_t now_ms)
{
	json_t *offered = json_array();
	const char *name;
	size_t i;

	for (i = 0; i < p->nprofiles; i++) {
		name = dtls_srtp_profile_name(p->profiles[i]);
		if (name != NULL)
			json_array_append_new(offered, json_string(name));
	}
	audit_log(env->audit, now_ms, "media.dtls", json_pack("{s:s, s:s, s:s, s:b, s:o, s:s}",
	    "call", a->id.call, "user", a->id.user, "check", "client_hello",
	    "offers_dtls13", p->offers_dtls13, "srtp_profiles", offered, "outcome", "success"));
}

static void audit_cert(const struct media_check_env *env, const struct turn_alloc *a,
    const char *result, uint64_t now_ms)
{
	audit_log(env->audit, now_ms, "media.dtls", json_pack("{s:s, s:s, s:s, s:s, s:s}",
	    "call", a->id.call, "user", a->id.user, "check", "certificate",
	    "fingerprint", result, "outcome", strcmp(result, "match") == 0 ? "success" :
	    "failure"));
}

bool media_check_dtls(const struct media_check_env *env, struct turn_alloc *a,
    const struct dtls_peek *p, uint64_t now_ms)
{
	const struct sdp_fingerprint *fps;
	size_t n;

	if (p->client_hello && !(a->inspect_flags & SEEN_CLIENT_HELLO)) {
		a->inspect_flags |= SEEN_CLIENT_HELLO;
		audit_client_hello(env, a, p, now_ms);
	}
	if (p->server_hello && !(a->inspect_flags & SEEN_SERVER_HELLO)) {
		a->inspect_flags |= SEEN_SERVER_HELLO;
		audit_hello(env, a, p, now_ms);
	}
	if (p->cert_fragmented) {
		/* Split over datagrams, it cannot be checked here: WebRTC
		 * stacks send it whole within their 1200-byte datagrams, so
		 * only a peer hiding it would split it so. */
		metrics_inc(env->metrics, M_DTLS_SPLIT, 1);
		if (!(a->inspect_flags & SEEN_CERT_SPLIT)) {
			a->inspect_flags |= SEEN_CERT_SPLIT;
			audit_cert(env, a, "split", now_ms);
			log_warn("turn: call %s: %s sent its DTLS certificate split over "
			    "datagrams, which the relay cannot check: dropped", a->id.call,
			    a->id.user);
		}
		return false;
	}
	if (!p->certificate)
		return true;
	n = registry_call_fps_get(env->registry, a->id.call, a->id.user, &fps);
	if (n == 0) {
		/* No SDP of this participant yet (or one without a fingerprint).
		 * DTLS sends a flight again until it is answered (RFC 6347
		 * §4.2.4), so a certificate that only raced its SDP passes on a
		 * later try; one never signaled never does. */
		metrics_inc(env->metrics, M_DTLS_UNSIGNALED, 1);
		if (!(a->inspect_flags & SEEN_UNSIGNALED)) {
			a->inspect_flags |= SEEN_UNSIGNALED;
			audit_cert(env, a, "unsignaled", now_ms);
			log_info("turn: call %s: %s presented a DTLS certificate before signaling "
			    "one: dropped", a->id.call, a->id.user);
		}
		return false;
	}
	if (cert_matches(p->cert, p->cert_len, fps, n)) {
		if (!(a->inspect_flags & SEEN_CERT_OK)) {
			a->inspect_flags |= SEEN_CERT_OK;
			metrics_inc(env->metrics, M_DTLS_MATCH, 1);
			audit_cert(env, a, "match", now_ms);
		}
		return true;
	}
	metrics_inc(env->metrics, M_DTLS_MISMATCH, 1);
	if (!(a->inspect_flags & SEEN_CERT_BAD)) {
		audit_cert(env, a, "mismatch", now_ms);
		log_warn("turn: call %s: %s presented a DTLS certificate that matches no "
		    "fingerprint it signaled: the call is ended", a->id.call, a->id.user);
		/* Until the end is on its way, every retry asks again. */
		if (env->end_call(env->ctx, a->id.call))
			a->inspect_flags |= SEEN_CERT_BAD;
	}
	return false;
}
