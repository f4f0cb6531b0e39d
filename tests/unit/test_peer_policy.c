/* Unit tests for turn/peer_policy.c: every built-in range with an address
 * inside and the addresses just outside, every embedded-IPv4 spelling,
 * the gateway's own addresses, operator allow/deny and the CIDR parser. */
#include "turn/peer_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "tests/unit/check.h"

/* Builds a sockaddr_in or sockaddr_in6 from text; aborts the test run on
 * a typo in the test itself, which would otherwise pass as "bad". */
static struct sockaddr_storage sa_of(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	} else {
		fprintf(stderr, "test bug: cannot parse %s\n", ip);
		check_failures++;
	}
	return ss;
}

struct vcase {
	const char *ip;
	enum peer_verdict v;
	const char *why; /* NULL: do not check the reason */
};

static int run_cases(const struct peer_policy *p, const struct vcase *c,
    size_t n)
{
	struct sockaddr_storage ss;
	const char *why;
	enum peer_verdict v;
	size_t i;
	int bad = 0;

	for (i = 0; i < n; i++) {
		ss = sa_of(c[i].ip, 3478);
		why = NULL;
		v = peer_policy_check(p, (const struct sockaddr *)&ss, &why);
		check_count++;
		if (v != c[i].v || why == NULL ||
		    (c[i].why != NULL && strcmp(why, c[i].why) != 0)) {
			check_failures++;
			bad++;
			fprintf(stderr, "%s: got %d \"%s\", want %d \"%s\"\n",
			    c[i].ip, (int)v, why ? why : "(null)", (int)c[i].v,
			    c[i].why ? c[i].why : "*");
		}
	}
	return bad;
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

static const struct vcase v4_cases[] = {
	/* 0.0.0.0/8 */
	{ "0.0.0.0", PEER_REFUSED_RANGE, "unspecified" },
	{ "0.1.2.3", PEER_REFUSED_RANGE, "this network (RFC 1122)" },
	{ "0.255.255.255", PEER_REFUSED_RANGE, "this network (RFC 1122)" },
	{ "1.0.0.0", PEER_ALLOWED, "public unicast" },
	/* 10/8 */
	{ "9.255.255.255", PEER_ALLOWED, NULL },
	{ "10.0.0.0", PEER_REFUSED_RANGE, "private (RFC 1918)" },
	{ "10.255.255.255", PEER_REFUSED_RANGE, "private (RFC 1918)" },
	{ "11.0.0.0", PEER_ALLOWED, NULL },
	/* 100.64/10 */
	{ "100.63.255.255", PEER_ALLOWED, NULL },
	{ "100.64.0.0", PEER_REFUSED_RANGE, "shared address space (RFC 6598)" },
	{ "100.127.255.255", PEER_REFUSED_RANGE, "shared address space (RFC 6598)" },
	{ "100.128.0.0", PEER_ALLOWED, NULL },
	/* 127/8 */
	{ "126.255.255.255", PEER_ALLOWED, NULL },
	{ "127.0.0.1", PEER_REFUSED_RANGE, "loopback" },
	{ "127.255.255.255", PEER_REFUSED_RANGE, "loopback" },
	{ "128.0.0.0", PEER_ALLOWED, NULL },
	/* 169.254/16 */
	{ "169.253.255.255", PEER_ALLOWED, NULL },
	{ "169.254.0.0", PEER_REFUSED_RANGE, "link-local" },
	{ "169.254.169.254", PEER_REFUSED_RANGE, "link-local (cloud metadata service)" },
	{ "169.254.255.255", PEER_REFUSED_RANGE, "link-local" },
	{ "169.255.0.0", PEER_ALLOWED, NULL },
	/* 172.16/12 */
	{ "172.15.255.255", PEER_ALLOWED, NULL },
	{ "172.16.0.0", PEER_REFUSED_RANGE, "private (RFC 1918)" },
	{ "172.31.255.255", PEER_REFUSED_RANGE, "private (RFC 1918)" },
	{ "172.32.0.0", PEER_ALLOWED, NULL },
	/* 192.0.0/24 */
	{ "191.255.255.255", PEER_ALLOWED, NULL },
	{ "192.0.0.0", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 6890)" },
	{ "192.0.0.10", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 6890)" },
	{ "192.0.0.255", PEER_REFUSED_RANGE, NULL },
	{ "192.0.1.0", PEER_ALLOWED, NULL },
	/* 192.0.2/24 */
	{ "192.0.1.255", PEER_ALLOWED, NULL },
	{ "192.0.2.0", PEER_REFUSED_RANGE, "documentation" },
	{ "192.0.2.255", PEER_REFUSED_RANGE, "documentation" },
	{ "192.0.3.0", PEER_ALLOWED, NULL },
	/* 192.88.99/24 */
	{ "192.88.98.255", PEER_ALLOWED, NULL },
	{ "192.88.99.1", PEER_REFUSED_RANGE, "6to4 relay anycast (RFC 7526)" },
	{ "192.88.100.0", PEER_ALLOWED, NULL },
	/* 192.168/16 */
	{ "192.167.255.255", PEER_ALLOWED, NULL },
	{ "192.168.0.0", PEER_REFUSED_RANGE, "private (RFC 1918)" },
	{ "192.168.255.255", PEER_REFUSED_RANGE, "private (RFC 1918)" },
	{ "192.169.0.0", PEER_ALLOWED, NULL },
	/* 198.18/15 */
	{ "198.17.255.255", PEER_ALLOWED, NULL },
	{ "198.18.0.0", PEER_REFUSED_RANGE, "benchmarking" },
	{ "198.19.255.255", PEER_REFUSED_RANGE, "benchmarking" },
	{ "198.20.0.0", PEER_ALLOWED, NULL },
	/* 198.51.100/24 */
	{ "198.51.99.255", PEER_ALLOWED, NULL },
	{ "198.51.100.7", PEER_REFUSED_RANGE, "documentation" },
	{ "198.51.101.0", PEER_ALLOWED, NULL },
	/* 203.0.113/24 */
	{ "203.0.112.255", PEER_ALLOWED, NULL },
	{ "203.0.113.0", PEER_REFUSED_RANGE, "documentation" },
	{ "203.0.113.255", PEER_REFUSED_RANGE, "documentation" },
	{ "203.0.114.0", PEER_ALLOWED, NULL },
	/* 224/4, 240/4, broadcast */
	{ "223.255.255.255", PEER_ALLOWED, NULL },
	{ "224.0.0.0", PEER_REFUSED_RANGE, "multicast" },
	{ "239.255.255.255", PEER_REFUSED_RANGE, "multicast" },
	{ "240.0.0.0", PEER_REFUSED_RANGE, "reserved" },
	{ "255.255.255.254", PEER_REFUSED_RANGE, "reserved" },
	{ "255.255.255.255", PEER_REFUSED_RANGE, "broadcast" },
	/* public */
	{ "8.8.8.8", PEER_ALLOWED, "public unicast" },
	{ "1.1.1.1", PEER_ALLOWED, "public unicast" },
};

static const struct vcase v6_cases[] = {
	{ "::", PEER_REFUSED_RANGE, "unspecified" },
	{ "::1", PEER_REFUSED_RANGE, "loopback" },
	/* ULA fc00::/7 */
	{ "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PEER_REFUSED_RANGE, "not global unicast" },
	{ "fc00::", PEER_REFUSED_RANGE, "IPv6 unique local" },
	{ "fd12:3456::1", PEER_REFUSED_RANGE, "IPv6 unique local" },
	{ "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PEER_REFUSED_RANGE, "IPv6 unique local" },
	/* fe80::/10, fec0::/10 */
	{ "fe80::1", PEER_REFUSED_RANGE, "IPv6 link-local" },
	{ "febf:ffff::1", PEER_REFUSED_RANGE, "IPv6 link-local" },
	{ "fec0::1", PEER_REFUSED_RANGE, "IPv6 site-local (deprecated)" },
	{ "feff::1", PEER_REFUSED_RANGE, "IPv6 site-local (deprecated)" },
	/* ff00::/8 */
	{ "ff02::1", PEER_REFUSED_RANGE, "IPv6 multicast" },
	{ "ff0e::1", PEER_REFUSED_RANGE, "IPv6 multicast" },
	/* 100::/64 */
	{ "100::1", PEER_REFUSED_RANGE, "discard-only (RFC 6666)" },
	{ "100::ffff:ffff:ffff:ffff", PEER_REFUSED_RANGE, "discard-only (RFC 6666)" },
	{ "100:0:0:1::", PEER_REFUSED_RANGE, "not global unicast" },
	/* 2000::/3 edges */
	{ "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PEER_REFUSED_RANGE, "not global unicast" },
	{ "2000::1", PEER_ALLOWED, "public unicast" },
	{ "3ffe:ffff::1", PEER_ALLOWED, "public unicast" },
	{ "4000::1", PEER_REFUSED_RANGE, "not global unicast" },
	{ "5f00::1", PEER_REFUSED_RANGE, "not global unicast" },
	/* documentation 2001:db8::/32, 3fff::/20 */
	{ "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", PEER_ALLOWED, NULL },
	{ "2001:db8::", PEER_REFUSED_RANGE, "documentation" },
	{ "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", PEER_REFUSED_RANGE, "documentation" },
	{ "2001:db9::", PEER_ALLOWED, NULL },
	{ "3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", PEER_ALLOWED, NULL },
	{ "3fff::1", PEER_REFUSED_RANGE, "documentation" },
	{ "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", PEER_REFUSED_RANGE, "documentation" },
	{ "3fff:1000::", PEER_ALLOWED, NULL },
	/* 2001::/23 */
	{ "2001:1::2", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 2928)" },
	{ "2001:2::1", PEER_REFUSED_RANGE, "benchmarking" },
	{ "2001:2:0:ffff::1", PEER_REFUSED_RANGE, "benchmarking" },
	{ "2001:2:1::1", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 2928)" },
	{ "2001:3::1", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 2928)" },
	{ "2001:10::1", PEER_REFUSED_RANGE, "ORCHID (deprecated)" },
	{ "2001:1f:ffff::1", PEER_REFUSED_RANGE, "ORCHID (deprecated)" },
	{ "2001:20::1", PEER_REFUSED_RANGE, "ORCHIDv2" },
	{ "2001:2f:ffff::1", PEER_REFUSED_RANGE, "ORCHIDv2" },
	{ "2001:30::1", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 2928)" },
	{ "2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 2928)" },
	{ "2001:200::1", PEER_ALLOWED, NULL },
	/* public */
	{ "2606:4700::1111", PEER_ALLOWED, "public unicast" },
	{ "2001:4860:4860::8888", PEER_ALLOWED, "public unicast" },
};

static const struct vcase embedded_cases[] = {
	/* IPv4-mapped ::ffff:0:0/96 */
	{ "::ffff:10.0.0.1", PEER_REFUSED_RANGE, "IPv4-mapped: private (RFC 1918)" },
	{ "::ffff:127.0.0.1", PEER_REFUSED_RANGE, "IPv4-mapped: loopback" },
	{ "::ffff:169.254.169.254", PEER_REFUSED_RANGE, "IPv4-mapped: link-local (cloud metadata service)" },
	{ "::ffff:0.0.0.0", PEER_REFUSED_RANGE, "IPv4-mapped: unspecified" },
	{ "::ffff:255.255.255.255", PEER_REFUSED_RANGE, "IPv4-mapped: broadcast" },
	{ "::ffff:8.8.8.8", PEER_ALLOWED, "public unicast" },
	/* IPv4-compatible ::/96 */
	{ "::10.0.0.1", PEER_REFUSED_RANGE, "IPv4-compatible: private (RFC 1918)" },
	{ "::127.0.0.1", PEER_REFUSED_RANGE, "IPv4-compatible: loopback" },
	{ "::2", PEER_REFUSED_RANGE, "IPv4-compatible: this network (RFC 1122)" },
	{ "::8.8.8.8", PEER_REFUSED_RANGE, "IPv4-compatible: deprecated (RFC 4291)" },
	/* IPv4-translated ::ffff:0:0:0/96 */
	{ "::ffff:0:10.0.0.1", PEER_REFUSED_RANGE, "IPv4-translated: private (RFC 1918)" },
	{ "::ffff:0:8.8.8.8", PEER_REFUSED_RANGE, "IPv4-translated: not global (RFC 2765)" },
	/* NAT64 64:ff9b::/96 and 64:ff9b:1::/48 */
	{ "64:ff9b::a00:1", PEER_REFUSED_RANGE, "NAT64: private (RFC 1918)" },
	{ "64:ff9b::127.0.0.1", PEER_REFUSED_RANGE, "NAT64: loopback" },
	{ "64:ff9b::169.254.169.254", PEER_REFUSED_RANGE, "NAT64: link-local (cloud metadata service)" },
	{ "64:ff9b::8.8.8.8", PEER_ALLOWED, "public unicast" },
	{ "64:ff9b:1::1", PEER_REFUSED_RANGE, "NAT64 local-use" },
	{ "64:ff9b:1:ffff::8.8.8.8", PEER_REFUSED_RANGE, "NAT64 local-use" },
	{ "64:ff9b:0:0:1::8.8.8.8", PEER_REFUSED_RANGE, "not global unicast" },
	/* 6to4 2002::/16 */
	{ "2002:0a00:0001::1", PEER_REFUSED_RANGE, "6to4: private (RFC 1918)" },
	{ "2002:c000:0201::", PEER_REFUSED_RANGE, "6to4: documentation" },
	{ "2002:a9fe:a9fe::1", PEER_REFUSED_RANGE, "6to4: link-local (cloud metadata service)" },
	{ "2002:7f00:1::", PEER_REFUSED_RANGE, "6to4: loopback" },
	{ "2002:0808:0808::1", PEER_ALLOWED, "public unicast" },
	/* Teredo 2001::/32: server 65.54.227.120, client obfuscated */
	{ "2001:0:4136:e378:8000:63bf:3fff:fdd2", PEER_REFUSED_RANGE, "Teredo: documentation" },
	{ "2001:0:4136:e378:8000:63bf:f5ff:fffe", PEER_REFUSED_RANGE, "Teredo: private (RFC 1918)" },
	{ "2001:0:4136:e378:8000:63bf:80ff:fffe", PEER_REFUSED_RANGE, "Teredo: loopback" },
	{ "2001:0:4136:e378:8000:63bf:f7f7:f7f7", PEER_ALLOWED, "public unicast" },
	/* private server, public client 8.8.8.8 */
	{ "2001:0:c0a8:101:8000:63bf:f7f7:f7f7", PEER_REFUSED_RANGE, "Teredo: private (RFC 1918)" },
	/* not Teredo: 2001:1::/32 is in the IETF block */
	{ "2001:1:4136:e378:8000:63bf:f7f7:f7f7", PEER_REFUSED_RANGE, "IETF protocol assignments (RFC 2928)" },
};

static void test_ranges(void)
{
	struct peer_policy p;

	memset(&p, 0, sizeof(p));
	CHECK_EQ_INT(run_cases(&p, v4_cases, NCASES(v4_cases)), 0);
	CHECK_EQ_INT(run_cases(&p, v6_cases, NCASES(v6_cases)), 0);
	CHECK_EQ_INT(run_cases(&p, embedded_cases, NCASES(embedded_cases)), 0);
	/* A NULL policy means no operator lists and no own addresses. */
	CHECK_EQ_INT(run_cases(NULL, v4_cases, NCASES(v4_cases)), 0);
}

static int add_own(struct peer_policy *p, const char *ip)
{
	struct sockaddr_storage ss = sa_of(ip, 0);

	return peer_policy_add_own(p, (const struct sockaddr *)&ss);
}

static void test_own(void)
{
	struct peer_policy p;
	struct sockaddr_un sun;
	char ip[64];
	int i;

	memset(&p, 0, sizeof(p));
	CHECK_EQ_INT(add_own(&p, "198.41.0.4"), 0);
	CHECK_EQ_INT(add_own(&p, "2606:4700::6810:1"), 0);
	CHECK_EQ_INT(add_own(&p, "::ffff:9.9.9.9"), 0);
	CHECK_EQ_INT(add_own(&p, "127.0.0.1"), 0);
	CHECK_EQ_INT(add_own(&p, "198.41.0.4"), 0); /* duplicate: no new entry */
	CHECK_EQ_INT(p.nown, 4);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK_EQ_INT(peer_policy_add_own(&p, (const struct sockaddr *)&sun), -1);
	CHECK_EQ_INT(peer_policy_add_own(&p, NULL), -1);
	CHECK_EQ_INT(peer_policy_add_own(NULL, NULL), -1);

	{
		static const struct vcase own_cases[] = {
			{ "198.41.0.4", PEER_REFUSED_OWN, "gateway address" },
			{ "::ffff:198.41.0.4", PEER_REFUSED_OWN, "gateway address" },
			{ "::198.41.0.4", PEER_REFUSED_OWN, "gateway address" },
			{ "::ffff:0:198.41.0.4", PEER_REFUSED_OWN, "gateway address" },
			{ "64:ff9b::c629:4", PEER_REFUSED_OWN, "gateway address" },
			{ "2002:c629:4::1", PEER_REFUSED_OWN, "gateway address" },
			/* Teredo, client 198.41.0.4 obfuscated */
			{ "2001:0:808:808:8000:63bf:39d6:fffb", PEER_REFUSED_OWN, "gateway address" },
			/* Teredo, server 198.41.0.4 */
			{ "2001:0:c629:4:8000:63bf:f7f7:f7f7", PEER_REFUSED_OWN, "gateway address" },
			{ "2606:4700::6810:1", PEER_REFUSED_OWN, "gateway address" },
			{ "9.9.9.9", PEER_REFUSED_OWN, "gateway address" },
			{ "127.0.0.1", PEER_REFUSED_OWN, "gateway address" },
			/* neighbours are not the gateway */
			{ "198.41.0.5", PEER_ALLOWED, "public unicast" },
			{ "2606:4700::6810:2", PEER_ALLOWED, "public unicast" },
			{ "127.0.0.2", PEER_REFUSED_RANGE, "loopback" },
		};
		CHECK_EQ_INT(run_cases(&p, own_cases, NCASES(own_cases)), 0);
	}

	/* Fill the table: the 17th distinct address does not fit. */
	for (i = (int)p.nown; i < PEER_POLICY_MAX_OWN; i++) {
		snprintf(ip, sizeof(ip), "8.8.4.%d", i);
		CHECK_EQ_INT(add_own(&p, ip), 0);
	}
	CHECK_EQ_INT(p.nown, PEER_POLICY_MAX_OWN);
	CHECK_EQ_INT(add_own(&p, "8.8.8.8"), -1);
	CHECK_EQ_INT(add_own(&p, "198.41.0.4"), 0); /* already there */
}

static void add_cidr(struct peer_cidr *list, size_t *n, const char *s)
{
	CHECK_EQ_INT(peer_cidr_parse(s, &list[*n]), 0);
	(*n)++;
}

static void test_operator(void)
{
	struct peer_policy p;

	memset(&p, 0, sizeof(p));
	add_cidr(p.allow, &p.nallow, "10.1.0.0/16");
	add_cidr(p.allow, &p.nallow, "fd00:1::/32");
	add_cidr(p.allow, &p.nallow, "10.0.0.0/8");
	add_cidr(p.deny, &p.ndeny, "8.8.8.0/24");
	add_cidr(p.deny, &p.ndeny, "2606:4700::/32");
	add_cidr(p.deny, &p.ndeny, "10.9.0.0/16");
	add_cidr(p.deny, &p.ndeny, "10.1.2.3");
	CHECK_EQ_INT(add_own(&p, "10.1.0.5"), 0);
	{
		static const struct vcase op_cases[] = {
			/* allow overrides the built-in private range */
			{ "10.1.0.1", PEER_ALLOWED, "operator allow" },
			{ "10.1.255.255", PEER_ALLOWED, "operator allow" },
			{ "::ffff:10.1.0.1", PEER_ALLOWED, "operator allow" },
			{ "fd00:1::5", PEER_ALLOWED, "operator allow" },
			{ "fd00:2::5", PEER_REFUSED_RANGE, "IPv6 unique local" },
			/* allow matches the literal address only */
			{ "64:ff9b::10.1.0.1", PEER_REFUSED_RANGE, "NAT64: private (RFC 1918)" },
			{ "2002:a01:1::1", PEER_REFUSED_RANGE, "6to4: private (RFC 1918)" },
			/* deny of a public range, in every spelling */
			{ "8.8.8.8", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "::ffff:8.8.8.8", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "64:ff9b::8.8.8.8", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "2002:808:808::1", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "2001:0:4136:e378:8000:63bf:f7f7:f7f7", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "::8.8.8.8", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "8.8.4.4", PEER_ALLOWED, "public unicast" },
			{ "2606:4700::1111", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "2606:4701::1111", PEER_ALLOWED, "public unicast" },
			/* deny beats allow */
			{ "10.9.1.1", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "10.1.2.3", PEER_REFUSED_OPERATOR, "operator deny" },
			{ "10.8.1.1", PEER_ALLOWED, "operator allow" },
			/* own beats allow */
			{ "10.1.0.5", PEER_REFUSED_OWN, "gateway address" },
			{ "::ffff:10.1.0.5", PEER_REFUSED_OWN, "gateway address" },
		};
		CHECK_EQ_INT(run_cases(&p, op_cases, NCASES(op_cases)), 0);
	}

	/* Only the first 10.1.0.0/16 allow: 10.2.0.1 stays private. */
	memset(&p, 0, sizeof(p));
	add_cidr(p.allow, &p.nallow, "10.1.0.0/16");
	{
		static const struct vcase one_allow[] = {
			{ "10.1.2.3", PEER_ALLOWED, "operator allow" },
			{ "10.2.0.1", PEER_REFUSED_RANGE, "private (RFC 1918)" },
			{ "10.0.255.255", PEER_REFUSED_RANGE, "private (RFC 1918)" },
		};
		CHECK_EQ_INT(run_cases(&p, one_allow, NCASES(one_allow)), 0);
	}
}

static void test_bad(void)
{
	struct peer_policy p;
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	const char *why;

	memset(&p, 0, sizeof(p));
	ss = sa_of("8.8.8.8", 0);
	why = NULL;
	CHECK_EQ_INT(peer_policy_check(&p, (struct sockaddr *)&ss, &why), PEER_REFUSED_BAD);
	CHECK(why != NULL && strcmp(why, "bad address") == 0);
	ss = sa_of("2606:4700::1111", 0);
	CHECK_EQ_INT(peer_policy_check(&p, (struct sockaddr *)&ss, NULL), PEER_REFUSED_BAD);
	ss = sa_of("8.8.8.8", 1);
	CHECK_EQ_INT(peer_policy_check(&p, (struct sockaddr *)&ss, NULL), PEER_ALLOWED);
	ss = sa_of("8.8.8.8", 65535);
	CHECK_EQ_INT(peer_policy_check(&p, (struct sockaddr *)&ss, NULL), PEER_ALLOWED);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK_EQ_INT(peer_policy_check(&p, (struct sockaddr *)&sun, &why), PEER_REFUSED_BAD);
	CHECK_EQ_INT(peer_policy_check(&p, NULL, &why), PEER_REFUSED_BAD);
	CHECK(strcmp(why, "bad address") == 0);
	/* Port 0 is bad even for the gateway's own address. */
	CHECK_EQ_INT(add_own(&p, "8.8.8.8"), 0);
	ss = sa_of("8.8.8.8", 0);
	CHECK_EQ_INT(peer_policy_check(&p, (struct sockaddr *)&ss, NULL), PEER_REFUSED_BAD);
}

static void test_same_ip(void)
{
	struct sockaddr_storage a, b;
	struct sockaddr_un sun;

	a = sa_of("1.2.3.4", 1000);
	b = sa_of("::ffff:1.2.3.4", 2000);
	CHECK(peer_same_ip((struct sockaddr *)&a, (struct sockaddr *)&b));
	CHECK(peer_same_ip((struct sockaddr *)&b, (struct sockaddr *)&a));
	b = sa_of("1.2.3.4", 3000);
	CHECK(peer_same_ip((struct sockaddr *)&a, (struct sockaddr *)&b));
	b = sa_of("1.2.3.5", 1000);
	CHECK(!peer_same_ip((struct sockaddr *)&a, (struct sockaddr *)&b));
	b = sa_of("::1.2.3.4", 1000);
	CHECK(!peer_same_ip((struct sockaddr *)&a, (struct sockaddr *)&b));
	a = sa_of("2606:4700::1111", 1);
	b = sa_of("2606:4700::1111", 2);
	CHECK(peer_same_ip((struct sockaddr *)&a, (struct sockaddr *)&b));
	b = sa_of("2606:4700::1112", 1);
	CHECK(!peer_same_ip((struct sockaddr *)&a, (struct sockaddr *)&b));
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	CHECK(!peer_same_ip((struct sockaddr *)&a, (struct sockaddr *)&sun));
	CHECK(!peer_same_ip(NULL, (struct sockaddr *)&a));
	CHECK(!peer_same_ip(NULL, NULL));
}

static void test_cidr_parse(void)
{
	static const struct {
		const char *s;
		const char *addr; /* expected address, as text */
		int plen;
	} good[] = {
		{ "10.0.0.0/8", "::ffff:10.0.0.0", 104 },
		{ "1.2.3.4/32", "::ffff:1.2.3.4", 128 },
		{ "1.2.3.4", "::ffff:1.2.3.4", 128 },
		{ "0.0.0.0/0", "::ffff:0.0.0.0", 96 },
		{ "100.64.0.0/10", "::ffff:100.64.0.0", 106 },
		{ "172.16.0.0/12", "::ffff:172.16.0.0", 108 },
		{ "2001:db8::/32", "2001:db8::", 32 },
		{ "2001:db8::1", "2001:db8::1", 128 },
		{ "2001:db8::1/128", "2001:db8::1", 128 },
		{ "::/0", "::", 0 },
		{ "fe80::/10", "fe80::", 10 },
		{ "::ffff:10.0.0.0/104", "::ffff:10.0.0.0", 104 },
		{ "64:ff9b::/96", "64:ff9b::", 96 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/128",
		  "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128 },
	};
	static const char *const bad[] = {
		"", "/", "/8", "10.0.0.0/", "10.0.0.1/8", "10.0.0.0/33",
		"10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/08", "10.0.0.0/8x",
		"10.0.0.0/8 ", " 10.0.0.0/8", "10.0.0.0/8/8", "10.0.0.0/1000",
		"10.0.0/8", "10.0.0.256", "010.0.0.0/8", "10.0.0.0.0",
		"1.2.3.4/", "2001:db8::/129", "2001:db8::1/64", "2001:db8::/0x20",
		"fe80::1%eth0", "fe80::%eth0/10", "1::2::3", "garbage",
		"10.0.0.0 /8", "::ffff:10.0.0.1/104",
		"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255/1280",
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	};
	struct peer_cidr c, want;
	size_t i;

	for (i = 0; i < NCASES(good); i++) {
		memset(&c, 0xaa, sizeof(c));
		memset(&want, 0, sizeof(want));
		CHECK(inet_pton(AF_INET6, good[i].addr, want.addr) == 1);
		if (peer_cidr_parse(good[i].s, &c) != 0) {
			fprintf(stderr, "refused good CIDR \"%s\"\n", good[i].s);
			CHECK(0);
			continue;
		}
		CHECK(memcmp(c.addr, want.addr, 16) == 0);
		CHECK_EQ_INT(c.prefix_len, good[i].plen);
	}
	for (i = 0; i < NCASES(bad); i++) {
		memset(&c, 0x5a, sizeof(c));
		if (peer_cidr_parse(bad[i], &c) != -1) {
			fprintf(stderr, "accepted bad CIDR \"%s\"\n", bad[i]);
			CHECK(0);
		}
		/* A failed parse leaves the output untouched. */
		CHECK(c.prefix_len == 0x5a && c.addr[0] == 0x5a);
	}
	CHECK_EQ_INT(peer_cidr_parse(NULL, &c), -1);
	CHECK_EQ_INT(peer_cidr_parse("10.0.0.0/8", NULL), -1);
}

int main(void)
{
	test_ranges();
	test_own();
	test_operator();
	test_bad();
	test_same_ip();
	test_cidr_parse();
	return check_done("test_peer_policy");
}
