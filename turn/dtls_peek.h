/* Reads the clear parts of a DTLS handshake from one relayed datagram:
 * the SRTP profiles offered and chosen (RFC 5764 use_srtp), the version
 * chosen, and the DTLS 1.2 certificate whose fingerprint the signaled SDP
 * names (RFC 8122). The relay checks these against the call's SDP.
 *
 * Sans-I/O and stateless: no allocation, no I/O, no OpenSSL; one call
 * looks at one datagram and keeps nothing. A handshake message split
 * over several records of the datagram is put back together; one split
 * over datagrams is only reported (fragmented), and DTLS 1.3 keeps its
 * certificate encrypted: neither can be checked from here. */
#ifndef GH_TURN_DTLS_PEEK_H
#define GH_TURN_DTLS_PEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DTLS_PEEK_MAX_PROFILES 8
#define DTLS_PEEK_JOIN_MAX 4096

#define DTLS_VERSION_12 0xfefd
#define DTLS_VERSION_13 0xfefc

struct dtls_peek {
	size_t nhandshake;      /* epoch-0 (cleartext) handshake records read */
	bool client_hello;      /* a whole ClientHello was seen */
	/* A whole ServerHello was seen (a DTLS 1.3 HelloRetryRequest is a
	 * ServerHello on the wire, and counts). */
	bool server_hello;
	bool certificate;       /* a whole (DTLS 1.2, cleartext) Certificate message */
	/* A ClientHello, ServerHello or Certificate split over datagrams
	 * (or sent out of order, or longer than joined): not examined.
	 * Split over records of this datagram, in order, it is joined. */
	bool fragmented;
	/* Of those, a Certificate: the relay cannot check it. */
	bool cert_fragmented;
	/* Of those, a ServerHello: its version, suite and profile go
	 * unchecked. */
	bool hello_fragmented;
	bool offers_dtls13;     /* ClientHello: supported_versions lists DTLS 1.3 (0xfefc) */
	/* ServerHello: chosen version, 0xfefd = DTLS 1.2, 0xfefc = DTLS 1.3
	 * (from supported_versions when present, else the legacy field); 0
	 * without a ServerHello. */
	uint16_t version;
	/* ServerHello: the cipher suite chosen (RFC 5246 §7.4.1.3); 0 without
	 * a ServerHello. */
	uint16_t cipher_suite;
	/* ClientHello: offered use_srtp profiles in the client's order (the
	 * first DTLS_PEEK_MAX_PROFILES of them); ServerHello: the chosen one. */
	uint16_t profiles[DTLS_PEEK_MAX_PROFILES];
	size_t nprofiles;
	/* The first certificate's DER, pointing into buf, or into joined
	 * when the message came in fragments; NULL when there is no
	 * Certificate or its list is empty. */
	const uint8_t *cert;
	size_t cert_len;
	/* Room where fragments of one message are put back together (a
	 * WebRTC certificate is well under 2 KiB; a longer one is left
	 * unexamined). Last, so that the fields above are cheap to copy. */
	uint8_t joined[DTLS_PEEK_JOIN_MAX];
};

/* Walks every DTLS record in one datagram. 0 when the datagram is a
 * well-formed run of DTLS records (whatever they hold: alerts, app data,
 * DTLS 1.3 unified-header ciphertext records are skipped correctly), -1
 * when malformed (a length overruns, a record header is cut, a first
 * byte is no DTLS content type, a message is not what its type says).
 * An empty datagram is -1: it is not DTLS.
 *
 * Fills only what cleartext epoch-0 handshake records show; *out is
 * zeroed first. Several messages in one datagram add up; the profiles
 * are those of the last hello that carried use_srtp. A message that
 * does not parse leaves *out as it was before that message, and the walk
 * stops there with -1: what earlier messages showed stays, but the caller
 * should not trust a malformed datagram.
 *
 * Records carrying a connection ID (RFC 9147 unified header with the C
 * bit, RFC 9146 tls12_cid) do not say how long the ID is (it was
 * negotiated), so nothing after their fixed header can be located: such
 * a datagram is -1. WebRTC negotiates no connection IDs, and a stack
 * that does not know them reads the bytes as a plain record, so records
 * could otherwise be hidden behind one.
 *
 * A second Certificate message in one datagram is -1: a peer may act on
 * the one that was not checked. So is a second hello (ClientHello or
 * ServerHello) in one datagram.
 *
 * buf is borrowed; out->cert points into it or into out->joined, and is
 * valid as long as both are. buf may be NULL only when len is 0. */
int dtls_peek(const uint8_t *buf, size_t len, struct dtls_peek *out);

/* How many epoch-0 handshake records a DTLS 1.2 receiver would find in
 * the datagram: it reads every record as a 13-byte header with the length
 * in its last two bytes, whatever the first byte, and skips the ones it
 * does not want. When this finds more than dtls_peek() read, the datagram
 * carries handshake records that the relay did not check (behind a
 * record dtls_peek() cannot delimit, or after a fault). */
size_t dtls_peek_handshakes_12(const uint8_t *buf, size_t len);

/* "SRTP_AES128_CM_SHA1_80", "SRTP_AES128_CM_SHA1_32",
 * "SRTP_AEAD_AES_128_GCM", "SRTP_AEAD_AES_256_GCM" (RFC 5764 §4.1.2 and
 * RFC 7714 §14.2 ids 0x0001, 0x0002, 0x0007, 0x0008), else NULL. Returns
 * a static string. */
const char *dtls_srtp_profile_name(uint16_t id);

#endif
