/* Fuzz target: the DTLS handshake peeker (turn/dtls_peek.c) and the
 * first-byte classifier (turn/media_class.h).
 *
 * The input is one relayed datagram, given to media_classify() and
 * dtls_peek() as is.
 *
 * Invariants checked (abort() on violation, which libFuzzer reports):
 * - dtls_peek returns 0 or -1, and 0 only for a datagram whose first
 *   byte media_classify() calls DTLS;
 * - the certificate reported lies inside the input (or, put together
 *   from fragments, inside p.joined), is never empty, and is reported
 *   only with the certificate flag;
 * - no more profiles than the array holds; nothing but zeros unless an
 *   epoch-0 handshake record was seen;
 * - the same input gives the same answer twice (no hidden state). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "turn/dtls_peek.h"
#include "turn/media_class.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_dtls_peek: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

/* Field by field: struct assignment need not copy padding; a joined
 * certificate lies in each struct's own buffer, so compare contents. */
static int same(const struct dtls_peek *a, const struct dtls_peek *b)
{
	return a->client_hello == b->client_hello &&
	    a->server_hello == b->server_hello && a->certificate == b->certificate &&
	    a->fragmented == b->fragmented && a->offers_dtls13 == b->offers_dtls13 &&
	    a->version == b->version && a->nprofiles == b->nprofiles &&
	    a->nhandshake == b->nhandshake && a->cert_fragmented == b->cert_fragmented &&
	    memcmp(a->profiles, b->profiles, sizeof(a->profiles)) == 0 &&
	    a->cert_len == b->cert_len && (a->cert == NULL) == (b->cert == NULL) &&
	    (a->cert == NULL || memcmp(a->cert, b->cert, a->cert_len) == 0);
}

/* Does [p, p + n) lie within [base, base + size)? */
static int inside(const uint8_t *p, size_t n, const uint8_t *base, size_t size)
{
	return p >= base && n <= size && (size_t)(p - base) <= size - n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dtls_peek p, again;
	enum media_class c;
	size_t i;
	int rc;

	c = media_classify(data, size);
	FUZZ_CHECK(c >= MEDIA_STUN && c <= MEDIA_UNKNOWN);
	FUZZ_CHECK(media_class_name(c) != NULL);

	rc = dtls_peek(data, size, &p);
	FUZZ_CHECK(rc == 0 || rc == -1);
	FUZZ_CHECK(rc != 0 || c == MEDIA_DTLS);

	if (p.cert != NULL) {
		FUZZ_CHECK(p.certificate);
		FUZZ_CHECK(p.cert_len > 0);
		FUZZ_CHECK(inside(p.cert, p.cert_len, data, size) ||
		    inside(p.cert, p.cert_len, p.joined, sizeof(p.joined)));
	} else {
		FUZZ_CHECK(p.cert_len == 0);
	}
	FUZZ_CHECK(p.nprofiles <= DTLS_PEEK_MAX_PROFILES);
	for (i = 0; i < p.nprofiles; i++)
		(void)dtls_srtp_profile_name(p.profiles[i]);
	if (p.nhandshake == 0)
		FUZZ_CHECK(!p.client_hello && !p.server_hello && !p.certificate &&
		    !p.fragmented && !p.offers_dtls13 && p.version == 0 &&
		    p.nprofiles == 0);
	if (!p.client_hello && !p.server_hello)
		FUZZ_CHECK(p.nprofiles == 0 && !p.offers_dtls13 && p.version == 0);

	/* At most one record per 13 bytes. */
	FUZZ_CHECK(dtls_peek_handshakes_12(data, size) <= size / 13);
	FUZZ_CHECK(p.nhandshake <= size / 13);

	FUZZ_CHECK(dtls_peek(data, size, &again) == rc);
	FUZZ_CHECK(same(&p, &again));
	return 0;
}
