/* Connections per source: the cap, the release, and what counts as one
 * source (an IPv4 address in either spelling, an IPv6 /64). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "sockaddr_of.h"
#include "common/source_key.h"
#include "gateway/conn_limit.h"

#define SA(x) ((const struct sockaddr *)&(x))

static bool same_key(const char *a, const char *b)
{
	struct sockaddr_storage x = addr(a, 1), y = addr(b, 2);
	uint8_t kx[SOURCE_KEY_LEN], ky[SOURCE_KEY_LEN];

	source_key(SA(x), kx);
	source_key(SA(y), ky);
	return memcmp(kx, ky, SOURCE_KEY_LEN) == 0;
}

static void test_source_key(void)
{
	/* Ports never matter; IPv4 in both spellings is one source. */
	CHECK(same_key("192.0.2.1", "192.0.2.1"));
	CHECK(same_key("192.0.2.1", "::ffff:192.0.2.1"));
	CHECK(!same_key("192.0.2.1", "192.0.2.2"));
	CHECK(!same_key("192.0.2.1", "::192.0.2.1"));
	/* IPv6: the /64. */
	CHECK(same_key("2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff"));
	CHECK(!same_key("2001:db8:1:2::1", "2001:db8:1:3::1"));
	CHECK(!same_key("::ffff:192.0.2.1", "::ffff:192.0.2.2"));
}

static void test_cap_and_release(void)
{
	struct conn_limit *l = conn_limit_new(3);
	struct sockaddr_storage a1 = addr("127.0.0.5", 1000), a2 = addr("127.0.0.5", 1001);
	struct sockaddr_storage b = addr("127.0.0.6", 1000);
	struct sockaddr_storage v6a = addr("2001:db8::1", 1), v6b = addr("2001:db8::2", 1);
	struct sockaddr_storage v6c = addr("2001:db8:0:1::1", 1);
	int i;

	CHECK(l != NULL);
	if (l == NULL)
		return;
	CHECK_EQ_INT(conn_limit_take(l, SA(a1)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(a2)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(a1)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(a2)), -1); /* the fourth from 127.0.0.5 */
	CHECK_EQ_INT(conn_limit_count(l, SA(a1)), 3);
	CHECK_EQ_INT(conn_limit_take(l, SA(b)), 0);   /* another source is not affected */
	CHECK_EQ_INT(conn_limit_count(l, SA(b)), 1);
	conn_limit_release(l, SA(a2));
	CHECK_EQ_INT(conn_limit_count(l, SA(a1)), 2);
	CHECK_EQ_INT(conn_limit_take(l, SA(a1)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(a1)), -1);
	/* Addresses of one /64 share the cap; the next /64 has its own. */
	CHECK_EQ_INT(conn_limit_take(l, SA(v6a)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(v6b)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(v6a)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(v6b)), -1);
	CHECK_EQ_INT(conn_limit_take(l, SA(v6c)), 0);
	/* Released to zero, the source is forgotten and starts afresh. */
	for (i = 0; i < 3; i++)
		conn_limit_release(l, SA(a1));
	CHECK_EQ_INT(conn_limit_count(l, SA(a1)), 0);
	conn_limit_release(l, SA(a1)); /* not counted: ignored */
	CHECK_EQ_INT(conn_limit_count(l, SA(a1)), 0);
	for (i = 0; i < 3; i++)
		CHECK_EQ_INT(conn_limit_take(l, SA(a1)), 0);
	CHECK_EQ_INT(conn_limit_take(l, SA(a1)), -1);
	conn_limit_free(l);
	conn_limit_free(NULL);
}

int main(void)
{
	test_source_key();
	test_cap_and_release();
	return check_done("test_conn_limit");
}
