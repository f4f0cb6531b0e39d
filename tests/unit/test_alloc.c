/* Unit tests for turn/alloc.c: the allocation table's two indexes, and
 * permissions and channels that grow on demand up to their limits (an
 * idle allocation holds no arrays; the limit is exact). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"
#include "turn/alloc.h"

static struct sockaddr_storage v4(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	inet_pton(AF_INET, ip, &s4->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	inet_pton(AF_INET6, ip, &s6->sin6_addr);
	return ss;
}

static struct turn_client client(uint16_t port)
{
	struct turn_client c;

	memset(&c, 0, sizeof(c));
	c.transport = TURN_TP_UDP;
	c.remote = v4("192.0.2.1", port);
	c.local = v4("127.0.0.1", 3478);
	return c;
}

#define SA(x) ((const struct sockaddr *)&(x))

static void test_indexes(void)
{
	struct alloc_table *t = alloc_table_new();
	struct turn_client c1 = client(1000), c2 = client(1001);
	struct sockaddr_storage r1 = v4("127.0.0.1", 50000), r2 = v4("127.0.0.1", 50002);
	struct turn_alloc *a1, *a2;
	int i;

	CHECK(t != NULL);
	a1 = alloc_table_add(t, &c1, 4, 4);
	a2 = alloc_table_add(t, &c2, 4, 4);
	CHECK(a1 != NULL && a2 != NULL);
	alloc_table_set_relayed(t, a1, SA(r1));
	alloc_table_set_relayed(t, a2, SA(r2));
	CHECK(alloc_table_find(t, &c1) == a1);
	CHECK(alloc_table_find(t, &c2) == a2);
	CHECK(alloc_table_find_relayed(t, SA(r2)) == a2);
	CHECK_EQ_INT(alloc_table_count(t), 2);
	alloc_table_remove(t, a1);
	CHECK(alloc_table_find(t, &c1) == NULL);
	CHECK(alloc_table_find_relayed(t, SA(r1)) == NULL);
	CHECK(alloc_table_find_relayed(t, SA(r2)) == a2);
	/* Many more than the first table size: it grows, lookups still hit. */
	for (i = 0; i < 5000; i++) {
		struct turn_client c = client((uint16_t)(2000 + i));
		CHECK(alloc_table_add(t, &c, 1, 1) != NULL);
	}
	for (i = 0; i < 5000; i += 499) {
		struct turn_client c = client((uint16_t)(2000 + i));
		CHECK(alloc_table_find(t, &c) != NULL);
	}
	CHECK_EQ_INT(alloc_table_count(t), 5001);
	alloc_table_free(t);
}

static void test_permissions_grow_to_limit(void)
{
	struct alloc_table *t = alloc_table_new();
	struct turn_client c = client(1000);
	struct turn_alloc *a = alloc_table_add(t, &c, 5, 3);
	struct sockaddr_storage p;
	char ip[32];
	int i;

	CHECK(a != NULL);
	/* Idle: no arrays at all. */
	CHECK(a->perms == NULL && a->perms_room == 0);
	CHECK(a->channels == NULL && a->channels_room == 0);
	p = v4("8.8.8.8", 1);
	CHECK(alloc_perm_find(a, SA(p), 0) == NULL);

	for (i = 0; i < 5; i++) {
		snprintf(ip, sizeof(ip), "8.8.8.%d", i + 1);
		p = v4(ip, 9);
		CHECK_EQ_INT(alloc_perm_set(a, SA(p), i == 2, 1000), 0);
		CHECK(a->perms_room >= a->nperms && a->perms_room <= 5);
	}
	CHECK_EQ_INT(a->nperms, 5);
	CHECK_EQ_INT(a->perms_room, 5);
	/* The limit is exact: a sixth IP does not fit, a refresh does. */
	p = v4("9.9.9.9", 9);
	CHECK_EQ_INT(alloc_perm_set(a, SA(p), false, 1000), -1);
	CHECK_EQ_INT(alloc_perm_reserve(a, 1), -1);
	CHECK_EQ_INT(alloc_perm_reserve(a, 0), 0);
	p = v4("8.8.8.3", 7); /* per IP: another port is the same permission */
	CHECK_EQ_INT(alloc_perm_set(a, SA(p), false, 2000), 0);
	CHECK(alloc_perm_find(a, SA(p), 1500) != NULL);
	CHECK(alloc_perm_find(a, SA(p), 1500)->exact); /* exact stays */
	/* Everything found again after the moves of growing. */
	for (i = 0; i < 5; i++) {
		snprintf(ip, sizeof(ip), "8.8.8.%d", i + 1);
		p = v4(ip, 1);
		CHECK(alloc_perm_find(a, SA(p), 999) != NULL);
	}
	/* Expiry frees room for new ones, within the same array. */
	alloc_expire_children(a, 1000);
	CHECK_EQ_INT(a->nperms, 1);
	p = v4("9.9.9.9", 9);
	CHECK_EQ_INT(alloc_perm_set(a, SA(p), false, 3000), 0);
	alloc_table_free(t);
}

static void test_channels_grow_to_limit(void)
{
	struct alloc_table *t = alloc_table_new();
	struct turn_client c = client(1000);
	struct turn_alloc *a = alloc_table_add(t, &c, 4, 3);
	struct sockaddr_storage p6 = v6("2001:db8::1", 4000), p4 = v4("8.8.8.8", 5000);
	struct sockaddr_storage other = v6("2001:db8::1", 4001);
	struct turn_channel *ch;

	CHECK(a != NULL);
	CHECK_EQ_INT(alloc_channel_set(a, 0x4000, SA(p6), 1000), 0);
	CHECK_EQ_INT(alloc_channel_set(a, 0x4001, SA(p4), 1000), 0);
	CHECK_EQ_INT(alloc_channel_set(a, 0x4002, SA(other), 1000), 0);
	CHECK_EQ_INT(alloc_channel_set(a, 0x4003, SA(p4), 1000), -1);
	CHECK_EQ_INT(a->channels_room, 3);
	/* IPv6 peers keep their whole address and port in the compact form. */
	ch = alloc_channel_by_peer(a, SA(p6), 10);
	CHECK(ch != NULL && ch->number == 0x4000);
	CHECK(sockaddr_equal(&ch->peer.sa, SA(p6)));
	ch = alloc_channel_by_peer(a, SA(other), 10);
	CHECK(ch != NULL && ch->number == 0x4002);
	ch = alloc_channel_by_number(a, 0x4001, 10);
	CHECK(ch != NULL && sockaddr_equal(&ch->peer.sa, SA(p4)));
	CHECK(alloc_channel_by_number(a, 0x4001, 1000) == NULL); /* expired */
	/* Rebinding a number refreshes it in place. */
	CHECK_EQ_INT(alloc_channel_set(a, 0x4001, SA(p4), 5000), 0);
	CHECK(alloc_channel_by_number(a, 0x4001, 4000) != NULL);
	alloc_table_free(t);
}

int main(void)
{
	test_indexes();
	test_permissions_grow_to_limit();
	test_channels_grow_to_limit();
	return check_done("test_alloc");
}
