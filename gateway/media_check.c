/* DTLS handshake checks on the relay (see media_check.h). */
#include "gateway/media_check.h"

#include <stdio.h>
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
#define SEEN_HELLO_BAD 0x40
#define SEEN_HELLO_SPLIT 0x80

/* The cipher suites a ServerHello may choose on a call's media path: the
 * ones that WebRTC stacks negotiate (RFC 8827 §6.5, RFC 9147), each of
 * which authenticates the server by its certificate (so the fingerprint
 * check below sees one: an anonymous or PSK suite would carry the call
 * with no certificate to check), encrypts, and has forward secrecy. A
 * NULL-cipher suite would put the call's data channels on the wire in
 * the clear. DTLS 1.3 suites authenticate by certificate whatever they
 * are named. */
static const struct {
	uint16_t id;
	const char *name;
} accepted_suites[] = {
	{ 0xc02b, "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" },
	{ 0xc02c, "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" },
	{ 0xc02f, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" },
	{ 0xc030, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" },
	{ 0xcca9, "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xcca8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0xc009, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA" },
	{ 0xc00a, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA" },
	{ 0xc013, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" },
	{ 0xc014, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA" },
	{ 0xc023, "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256" },
	{ 0xc024, "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384" },
	{ 0xc027, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256" },
	{ 0xc028, "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384" },
	{ 0x009e, "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256" },
	{ 0x009f, "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384" },
	{ 0xccaa, "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256" },
	{ 0x1301, "TLS_AES_128_GCM_SHA256" },
	{ 0x1302, "TLS_AES_256_GCM_SHA384" },
	{ 0x1303, "TLS_CHACHA20_POLY1305_SHA256" },
};

static const char *accepted_suite_name(uint16_t id)
{
	size_t i;

	for (i = 0; i < sizeof(accepted_suites) / sizeof(accepted_suites[0]); i++)
		if (accepted_suites[i].id == id)
			return accepted_suites[i].name;
	return NULL;
}

/* What makes a ServerHello unfit for a call's media, or NULL: a version
 * below DTLS 1.2 (RFC 8996 deprecates 1.0; RFC 8827 asks for 1.2), a
 * cipher suite not in the list above, or an SRTP profile that does not
 * encrypt (the NULL profiles of RFC 5764 §4.1.2) or that nobody knows.
 * Under DTLS 1.3 the profile is encrypted and goes unchecked here. */
static const char *hello_refusal(const struct dtls_peek *p)
{
	if (p->version != DTLS_VERSION_12 && p->version != DTLS_VERSION_13)
		return "version";
	if (accepted_suite_name(p->cipher_suite) == NULL)
		return "cipher_suite";
	if (p->nprofiles == 1 && dtls_srtp_profile_name(p->profiles[0]) == NULL)
		return "srtp_profile";
	return NULL;
}

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

/* Names an id that has no name: "0x0005". */
static const char *id_text(const char *name, uint16_t id, char buf[8])
{
	if (name != NULL)
		return name;
	snprintf(buf, 8, "0x%04x", id);
	return buf;
}

static void audit_hello(const struct media_check_env *env, const struct turn_alloc *a,
    const struct dtls_peek *p, const char *refused, uint64_t now_ms)
{
	char suite[8], profile[8];
	bool v13 = p->version == DTLS_VERSION_13;
	json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "call", a->id.call, "user", a->id.user, "check", "server_hello",
	    "version", v13 ? "1.3" : p->version == DTLS_VERSION_12 ? "1.2" : "other",
	    "cipher_suite", id_text(accepted_suite_name(p->cipher_suite), p->cipher_suite, suite),
	    /* DTLS 1.3 encrypts the certificate and the server's SRTP
	     * profile: nothing more can be checked on the path. */
	    "certificate", v13 ? "hidden" : "in the clear",
	    "outcome", refused != NULL ? "failure" : "success");

	if (p->nprofiles == 1)
		json_object_set_new(f, "srtp_profile", json_string(id_text(
		    dtls_srtp_profile_name(p->profiles[0]), p->profiles[0], profile)));
	if (refused != NULL)
		json_object_set_new(f, "refused", json_string(refused));
	audit_log(env->audit, now_ms, "media.dtls", f);
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
	const char *refused;
	size_t n;

	if (p->client_hello && !(a->inspect_flags & SEEN_CLIENT_HELLO)) {
		a->inspect_flags |= SEEN_CLIENT_HELLO;
		audit_client_hello(env, a, p, now_ms);
	}
	if (p->hello_fragmented) {
		/* Split over datagrams (or out of order), the ServerHello
		 * cannot be checked here, and the peer's stack would put it
		 * back together: dropped, as a split certificate is. It is
		 * well under any datagram, so no stack splits it. */
		metrics_inc(env->metrics, M_DTLS_HELLO_REFUSED, 1);
		if (!(a->inspect_flags & SEEN_HELLO_SPLIT)) {
			a->inspect_flags |= SEEN_HELLO_SPLIT;
			audit_log(env->audit, now_ms, "media.dtls", json_pack(
			    "{s:s, s:s, s:s, s:s, s:s}", "call", a->id.call, "user", a->id.user,
			    "check", "server_hello", "refused", "split", "outcome", "failure"));
			log_warn("turn: call %s: %s sent a DTLS ServerHello split over datagrams, "
			    "which the relay cannot check: dropped", a->id.call, a->id.user);
		}
		return false;
	}
	if (p->server_hello && (refused = hello_refusal(p)) != NULL) {
		/* The call would go on unprotected, or with nothing the relay
		 * can check: dropped, and the call ended, as for a certificate
		 * that matches no fingerprint. */
		metrics_inc(env->metrics, M_DTLS_HELLO_REFUSED, 1);
		if (!(a->inspect_flags & SEEN_HELLO_BAD)) {
			audit_hello(env, a, p, refused, now_ms);
			log_warn("turn: call %s: %s chose a DTLS %s that does not protect the "
			    "call: the call is ended", a->id.call, a->id.user,
			    strcmp(refused, "srtp_profile") == 0 ? "SRTP profile" :
			    strcmp(refused, "cipher_suite") == 0 ? "cipher suite" : "version");
			if (env->end_call(env->ctx, a->id.call))
				a->inspect_flags |= SEEN_HELLO_BAD;
		}
		return false;
	}
	if (p->server_hello && !(a->inspect_flags & SEEN_SERVER_HELLO)) {
		a->inspect_flags |= SEEN_SERVER_HELLO;
		audit_hello(env, a, p, NULL, now_ms);
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
