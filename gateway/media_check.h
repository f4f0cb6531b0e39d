/* The relay's check of a call's DTLS handshake (DESIGN.md, "packet
 * inspection"): the certificate a participant presents on the media path
 * must be one whose fingerprint it signaled (a=fingerprint in its SDP,
 * kept in the registry by the hub). A certificate nobody signaled means
 * the TURN credentials are used by someone other than the peer that
 * negotiated the call, or the media is being intercepted: the datagram is
 * dropped and the call ended. A certificate split over datagrams, which
 * cannot be checked here, is dropped. So is a ServerHello whose version,
 * cipher suite or SRTP profile would leave the call unprotected or
 * without a certificate to check, and the call is ended. The clear parts
 * of the handshake (versions, cipher suite and SRTP profiles offered and
 * chosen) are audited once per allocation.
 *
 * Runs on the relay thread with the state lock held (turn_server_ops
 * on_dtls). */
#ifndef GH_GATEWAY_MEDIA_CHECK_H
#define GH_GATEWAY_MEDIA_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/audit.h"
#include "gateway/metrics.h"
#include "gateway/registry.h"
#include "turn/alloc.h"
#include "turn/dtls_peek.h"

struct media_check_env {
	struct registry *registry;
	struct audit *audit;
	struct metrics *metrics;
	void *ctx;
	/* Ends the call with hangup reason "inspection" (from the relay
	 * thread: the daemon defers it). False when it could not be queued. */
	bool (*end_call)(void *ctx, const char *call);
};

/* True lets the datagram through. */
bool media_check_dtls(const struct media_check_env *env, struct turn_alloc *a,
    const struct dtls_peek *p, uint64_t now_ms);

#endif
