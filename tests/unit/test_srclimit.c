/* Authentication failures per source: the window, the block, and what
 * counts as one source (an IPv4 address in either spelling, an IPv6 /64). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "sockaddr_of.h"
#include "turn/srclimit.h"

#define WINDOW_MS 10000
#define BLOCK_MS 30000

#define SA(x) ((const struct sockaddr *)&(x))

/* Three failures from `a` at t; then whether `b` is blocked. */
static bool shares(const char *a, const char *b)
{
	struct srclimit *l = srclimit_new(64, 3, WINDOW_MS, BLOCK_MS);
	struct sockaddr_storage x = addr(a, 1000), y = addr(b, 2000);
	bool blocked;
	int i;

	for (i = 0; i < 3; i++)
		srclimit_fail(l, SA(x), 5000);
	blocked = srclimit_blocked(l, SA(y), 5001);
	srclimit_free(l);
	return blocked;
}

static void test_sources(void)
{
	CHECK(shares("192.0.2.1", "192.0.2.1"));
	CHECK(shares("192.0.2.1", "::ffff:192.0.2.1"));
	CHECK(shares("::ffff:192.0.2.1", "192.0.2.1"));
	CHECK(!shares("192.0.2.1", "192.0.2.2"));
	/* An IPv6 host picks any address of its /64: one source. */
	CHECK(shares("2001:db8:1:2::1", "2001:db8:1:2:dead:beef:0:1"));
	CHECK(!shares("2001:db8:1:2::1", "2001:db8:1:3::1"));
}

static void test_window_and_block(void)
{
	struct srclimit *l = srclimit_new(64, 3, WINDOW_MS, BLOCK_MS);
	struct sockaddr_storage a = addr("2001:db8::7", 1), b = addr("2001:db8::8", 1);
	const uint64_t t = 5000;

	CHECK(l != NULL);
	if (l == NULL)
		return;
	/* Two failures, then the window passes: the count starts again. */
	srclimit_fail(l, SA(a), t);
	srclimit_fail(l, SA(b), t + 1);
	srclimit_fail(l, SA(a), t + WINDOW_MS + 1);
	srclimit_fail(l, SA(b), t + WINDOW_MS + 2);
	CHECK(!srclimit_blocked(l, SA(a), t + WINDOW_MS + 3));
	/* The third within the window blocks the /64, for BLOCK_MS. */
	srclimit_fail(l, SA(a), t + WINDOW_MS + 3);
	CHECK(srclimit_blocked(l, SA(b), t + WINDOW_MS + 4));
	CHECK(srclimit_blocked(l, SA(a), t + WINDOW_MS + 3 + BLOCK_MS - 1));
	CHECK(!srclimit_blocked(l, SA(a), t + WINDOW_MS + 3 + BLOCK_MS));
	/* A time before the window's start (the caller's clock is monotonic,
	 * but nothing wraps if it were not) counts as no time passing: the
	 * window goes on, and this fourth failure in it blocks again. */
	srclimit_fail(l, SA(a), t);
	CHECK(srclimit_blocked(l, SA(a), t));
	srclimit_free(l);
	srclimit_free(NULL);
}

int main(void)
{
	test_sources();
	test_window_and_block();
	return check_done("test_srclimit");
}
