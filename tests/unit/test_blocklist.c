/* Blocked sources: what a source is (an IPv4 address in either spelling,
 * an IPv6 /64), how it is named and read back, and that a block on one
 * address of a /64 refuses the whole /64 and nothing else. */
#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "sockaddr_of.h"
#include "common/source_key.h"
#include "gateway/blocklist.h"

#define SA(x) ((const struct sockaddr *)&(x))

static const char *name_of(const char *text, char *out)
{
	uint8_t key[SOURCE_KEY_LEN];

	if (source_key_parse(text, key) != 0)
		return "(refused)";
	source_key_name(key, out, SOURCE_NAME_MAX);
	return out;
}

static void test_names(void)
{
	char n[SOURCE_NAME_MAX];
	struct sockaddr_storage a = addr("2001:db8:1:2:aaaa:bbbb:cccc:dddd", 9);

	CHECK_EQ_STR(name_of("192.0.2.1", n), "192.0.2.1");
	CHECK_EQ_STR(name_of("::ffff:192.0.2.1", n), "192.0.2.1");
	CHECK_EQ_STR(name_of("2001:db8:1:2::7", n), "2001:db8:1:2::/64");
	CHECK_EQ_STR(name_of("2001:db8:1:2::/64", n), "2001:db8:1:2::/64");
	CHECK_EQ_STR(name_of("2001:db8:1:2:ffff::/64", n), "2001:db8:1:2::/64");
	CHECK_EQ_STR(name_of("::1", n), "::/64");
	/* The longest name fits. */
	CHECK_EQ_STR(name_of("ffff:ffff:ffff:ffff::1", n), "ffff:ffff:ffff:ffff::/64");
	source_name(SA(a), n, sizeof(n));
	CHECK_EQ_STR(n, "2001:db8:1:2::/64");

	/* No address known (a peer that could not be read): a source of
	 * its own, never ::1's /64 of zeros, and inside no source. */
	{
		struct sockaddr_storage none, ss;
		uint8_t k[SOURCE_KEY_LEN], zero[SOURCE_KEY_LEN];
		size_t i;

		memset(&none, 0, sizeof(none));
		source_key(SA(none), k);
		for (i = 0; i < SOURCE_KEY_LEN; i++)
			CHECK_EQ_INT(k[i], 0xff);
		CHECK_EQ_INT(source_key_parse("::1", zero), 0);
		CHECK(!source_key_matches(SA(none), zero));
		CHECK(!source_key_matches(SA(none), k));
		CHECK_EQ_INT(source_addr_parse("2001:db8::1", &ss), 0);
		CHECK_EQ_INT(ss.ss_family, AF_INET6);
		CHECK_EQ_INT(source_addr_parse("192.0.2.1", &ss), 0);
		CHECK_EQ_INT(ss.ss_family, AF_INET);
		CHECK_EQ_INT(source_addr_parse("2001:db8::/64", &ss), -1);
		CHECK_EQ_INT(source_addr_parse("fe80::1%eth0", &ss), -1);
		CHECK_EQ_INT(ss.ss_family, AF_UNSPEC);
	}

	/* Only addresses, and the /64 form that names print, are sources. */
	CHECK_EQ_STR(name_of("", n), "(refused)");
	CHECK_EQ_STR(name_of("?", n), "(refused)");
	CHECK_EQ_STR(name_of("192.0.2.1/32", n), "(refused)");
	CHECK_EQ_STR(name_of("2001:db8::/48", n), "(refused)");
	CHECK_EQ_STR(name_of("2001:db8::/64x", n), "(refused)");
	CHECK_EQ_STR(name_of("::ffff:192.0.2.1/64", n), "(refused)");
	CHECK_EQ_STR(name_of("/64", n), "(refused)");
	CHECK_EQ_STR(name_of("192.0.2.256", n), "(refused)");
	CHECK_EQ_STR(name_of("192.0.2.1/64", n), "(refused)");
	CHECK_EQ_STR(name_of("fe80::1%eth0", n), "(refused)");
	CHECK_EQ_STR(name_of("example.com", n), "(refused)");
	CHECK_EQ_STR(name_of("2001:db8:0000:0000:0000:0000:0000:0000:0000/64", n),
	    "(refused)");
}

static void list_one(void *ctx, const char *source, uint64_t until_ms, const char *why)
{
	char *out = ctx;

	(void)why;
	/* Listed at monotonic 1000 = wall 1,700,000,000,000: a block until
	 * monotonic 9000 ends 8 s later on the wall clock. */
	CHECK_EQ_INT(until_ms, 1700000000000ULL + (strchr(source, ':') != NULL ? 8000 : 4000));
	strcat(out, source);
	strcat(out, ";");
}

static void test_block_by_source(void)
{
	struct blocklist *b = blocklist_new();
	struct sockaddr_storage in64 = addr("2001:db8:1:2:ffff::9", 1);
	struct sockaddr_storage next64 = addr("2001:db8:1:3::1", 1);
	struct sockaddr_storage v4 = addr("192.0.2.10", 1), v4m = addr("::ffff:192.0.2.10", 1);
	struct sockaddr_storage v4other = addr("192.0.2.11", 1);
	char listed[512] = "";

	CHECK(b != NULL);
	CHECK(!blocklist_has_addr(b, SA(in64), 1000));
	/* An alert names the /128 it saw; the block covers its /64. */
	CHECK_EQ_INT(blocklist_add(b, "2001:db8:1:2::1", 5000, "password_guessing_source"), 0);
	CHECK(blocklist_has_addr(b, SA(in64), 1000));
	CHECK(blocklist_has(b, "2001:db8:1:2:1:2:3:4", 1000));
	CHECK(!blocklist_has_addr(b, SA(next64), 1000));
	CHECK(!blocklist_has(b, "2001:db8:1:3::1", 1000));
	/* An IPv4 address, whichever way it comes in, and only it. */
	CHECK_EQ_INT(blocklist_add(b, "::ffff:192.0.2.10", 5000, "x"), 0);
	CHECK(blocklist_has_addr(b, SA(v4), 1000));
	CHECK(blocklist_has_addr(b, SA(v4m), 1000));
	CHECK(blocklist_has(b, "192.0.2.10", 1000));
	CHECK(!blocklist_has_addr(b, SA(v4other), 1000));
	/* Not a source: refused, nothing added. */
	CHECK_EQ_INT(blocklist_add(b, "not an address", 5000, "x"), -1);
	CHECK(!blocklist_has(b, "not an address", 1000));

	/* Listed by name; adding the same source again keeps one entry. */
	CHECK_EQ_INT(blocklist_add(b, "2001:db8:1:2::/64", 9000, "again"), 0);
	blocklist_each(b, 1000, 1700000000000ULL, list_one, listed);
	CHECK(strstr(listed, "2001:db8:1:2::/64;") != NULL);
	CHECK(strstr(listed, "192.0.2.10;") != NULL);
	CHECK_EQ_INT((int)strlen(listed), (int)strlen("2001:db8:1:2::/64;192.0.2.10;"));
	/* The later end was kept: still blocked after the first one's. */
	CHECK(blocklist_has_addr(b, SA(in64), 6000));
	CHECK(!blocklist_has_addr(b, SA(in64), 9000));

	/* Lifted by any address of the source, or by its name. */
	CHECK_EQ_INT(blocklist_add(b, "2001:db8:1:2::1", 20000, "x"), 0);
	CHECK_EQ_INT(blocklist_del(b, "2001:db8:1:2::abcd"), 0);
	CHECK(!blocklist_has_addr(b, SA(in64), 10000));
	CHECK_EQ_INT(blocklist_del(b, "2001:db8:1:2::/64"), -1);
	CHECK_EQ_INT(blocklist_del(b, "192.0.2.10"), 0);
	CHECK_EQ_INT(blocklist_del(b, "192.0.2.10"), -1);
	CHECK_EQ_INT(blocklist_del(b, "garbage"), -1);
	blocklist_free(b);
}

/* Full of live blocks: the one that ends first makes room. */
static void test_full(void)
{
	struct blocklist *b = blocklist_new();
	char ip[32];
	int i;

	for (i = 0; i < BLOCKLIST_MAX; i++) {
		snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 256, i % 256);
		CHECK_EQ_INT(blocklist_add(b, ip, 100000 + (uint64_t)i, "x"), 0);
	}
	CHECK_EQ_INT(blocklist_add(b, "2001:db8::1", 500000, "x"), 0);
	CHECK(blocklist_has(b, "2001:db8::2", 1000));
	CHECK(!blocklist_has(b, "10.0.0.1", 1000));   /* ended first: gone */
	CHECK(blocklist_has(b, "10.0.1.1", 1000));
	blocklist_free(b);
}

int main(void)
{
	test_names();
	test_block_by_source();
	test_full();
	return check_done("test_blocklist");
}
