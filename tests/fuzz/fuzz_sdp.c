/* Fuzz target: the relay-only SDP filter (signaling/sdp_filter.c).
 *
 * The input is fed whole to sdp_filter() as an offer or answer, and to
 * sdp_candidate_filter() / sdp_candidate_allowed() as one trickled
 * candidate string. Gatehouse's relayed addresses, for the check
 * callback, are 203.0.113.5 and 2001:db8::5 with ports 50000-50009.
 *
 * Invariants checked (abort() on violation):
 * - the output is NUL-terminated and out_len is its length;
 * - every "a=candidate" line left in the output is a UDP relay candidate
 *   on an approved address and port (checked here independently of the
 *   filter's own parser): forced relay cannot be bypassed;
 * - filtering is idempotent: the filtered SDP passes again unchanged,
 *   with nothing more removed and the same kinds of media sections;
 * - sdp_media_kinds() accepts whatever the filter accepts and reports
 *   the filter's kinds, and reports none when it refuses;
 * - for one candidate, sdp_candidate_allowed() agrees with
 *   sdp_candidate_filter(), the rewritten string stays within the
 *   documented bound, and is itself allowed. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "signaling/sdp_filter.h"
#include "tests/fuzz/fuzz_relay_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_sdp: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

static unsigned nchecks;

static bool f_check(void *ctx, const struct sockaddr *addr)
{
	FUZZ_CHECK(ctx == &nchecks);
	FUZZ_CHECK(addr != NULL);
	FUZZ_CHECK(addr->sa_family == AF_INET || addr->sa_family == AF_INET6);
	nchecks++;
	return approved(addr);
}

static void fuzz_sdp(const uint8_t *data, size_t size)
{
	struct sdp_filter_stats st, st2;
	char *out = NULL, *out2 = NULL;
	size_t out_len = 0, out2_len = 0;
	unsigned kinds = 0xff;
	int rc, krc;

	krc = sdp_media_kinds((const char *)data, size, &kinds);
	FUZZ_CHECK(krc == SDP_OK || (krc == SDP_EINVAL && kinds == 0));
	FUZZ_CHECK((kinds & ~(unsigned)(SDP_MEDIA_AUDIO | SDP_MEDIA_VIDEO |
	    SDP_MEDIA_APPLICATION | SDP_MEDIA_OTHER)) == 0);
	rc = sdp_filter((const char *)data, size, f_check, &nchecks, &out, &out_len, &st);
	if (rc != SDP_OK) {
		FUZZ_CHECK(rc == SDP_EINVAL || rc == SDP_ENOMEM);
		return;
	}
	FUZZ_CHECK(krc == SDP_OK && kinds == st.media);
	FUZZ_CHECK(out != NULL && strlen(out) == out_len);
	FUZZ_CHECK(relay_only("fuzz_sdp", out, out_len));
	/* Idempotent: what we forward passes our own filter unchanged. */
	rc = sdp_filter(out, out_len, f_check, &nchecks, &out2, &out2_len, &st2);
	FUZZ_CHECK(rc == SDP_OK);
	FUZZ_CHECK(st2.removed == 0 && st2.kept == st.kept && st2.media == st.media);
	FUZZ_CHECK(out2_len == out_len && memcmp(out, out2, out_len) == 0);
	free(out2);
	free(out);
}

static void fuzz_candidate(const uint8_t *data, size_t size)
{
	const char *cand = (const char *)data;
	size_t cap = size + 64, n;
	char *out, *again;
	bool allowed;
	int rc;

	/* Exactly the documented minimum, so ASan sees any write past it. */
	out = malloc(cap);
	again = malloc(cap);
	if (out == NULL || again == NULL)
		abort();
	rc = sdp_candidate_filter(cand, size, f_check, &nchecks, out, cap);
	allowed = sdp_candidate_allowed(cand, size, f_check, &nchecks);
	FUZZ_CHECK((rc == 0) == allowed);
	if (rc == 0) {
		n = strnlen(out, cap);
		FUZZ_CHECK(n < cap);
		if (n > 0) {
			FUZZ_CHECK(strncmp(out, "candidate:", 10) == 0);
			FUZZ_CHECK(kept_ok(out, n));
			FUZZ_CHECK(sdp_candidate_allowed(out, n, f_check, &nchecks));
			FUZZ_CHECK(sdp_candidate_filter(out, n, f_check, &nchecks, again,
			    n + 64 <= cap ? n + 64 : cap) == 0);
			FUZZ_CHECK(strcmp(out, again) == 0);
		}
	}
	free(again);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_sdp(data, size);
	fuzz_candidate(data, size);
	return 0;
}
