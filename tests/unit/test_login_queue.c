/* Unit tests for gateway/login_queue.c, the login worker's queue: the
 * per-source share of password checks (held until release, not until
 * the client goes), IPv4 sources and IPv6 /64s, the classes' own room,
 * round-robin among sources and between classes, cancelling a queued
 * job (and not a running one), and an address spray that must neither
 * exhaust the source records nor get past the class's room. */
#include "gateway/login_queue.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/check.h"

#define ITEMS 600

static struct login_queue_item items[ITEMS];

static struct sockaddr_storage addr(const char *ip)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(40000);
	} else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(40000);
	}
	return ss;
}

/* Pushes item n (id n) of class cls from ip; a password check unless
 * limited is false. */
static int push(struct login_queue *q, size_t n, enum login_class cls, const char *ip,
    bool limited)
{
	struct sockaddr_storage ss;

	if (ip != NULL)
		ss = addr(ip);
	memset(&items[n], 0, sizeof(items[n]));
	items[n].cls = cls;
	items[n].id = n;
	items[n].limited = limited;
	return login_queue_push(q, &items[n], ip != NULL ? (struct sockaddr *)&ss : NULL);
}

/* The id of the next job, or -1. */
static long long pop_id(struct login_queue *q)
{
	struct login_queue_item *it = login_queue_pop(q);

	return it != NULL ? (long long)it->id : -1;
}

static void release(struct login_queue *q, size_t n)
{
	login_queue_release(q, &items[n]);
}

static void test_per_source_share(void)
{
	struct login_queue *q = login_queue_new(LOGIN_QUEUE_PER_SOURCE);
	enum login_class S = LOGIN_CLASS_SIGNALING;
	size_t i;

	CHECK(q != NULL);
	for (i = 0; i < LOGIN_QUEUE_PER_SOURCE; i++)
		CHECK_EQ_INT(push(q, i, S, "198.51.100.7", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 10, S, "198.51.100.7", true), LOGIN_QUEUE_SOURCE_BUSY);
	/* A token costs the worker nothing to speak of: not counted. */
	CHECK_EQ_INT(push(q, 11, S, "198.51.100.7", false), LOGIN_QUEUE_OK);
	/* Another address, and the same address's admin work, have their own. */
	CHECK_EQ_INT(push(q, 12, S, "198.51.100.8", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 13, LOGIN_CLASS_ADMIN, "198.51.100.7", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(login_queue_count(q, S), LOGIN_QUEUE_PER_SOURCE + 2);
	CHECK_EQ_INT(login_queue_count(q, LOGIN_CLASS_ADMIN), 1);

	/* Running still counts: the share is freed when the result has been
	 * taken, not when the job leaves the queue (nor when the client's
	 * connection closes, which the queue never hears of). */
	while (login_queue_pop(q) != NULL)
		;
	CHECK_EQ_INT(push(q, 14, S, "198.51.100.7", true), LOGIN_QUEUE_SOURCE_BUSY);
	release(q, 0);
	CHECK_EQ_INT(push(q, 14, S, "198.51.100.7", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 15, S, "198.51.100.7", true), LOGIN_QUEUE_SOURCE_BUSY);
	/* A cancelled job frees its share at once. */
	CHECK(login_queue_cancel(q, S, 14) == &items[14]);
	CHECK_EQ_INT(push(q, 15, S, "198.51.100.7", true), LOGIN_QUEUE_OK);
	login_queue_free(q);
}

/* The signaling share is the operator's (signaling.logins_per_source),
 * for offices whose people log in from behind one address; the admin
 * share stays the constant. */
static void test_configured_share(void)
{
	struct login_queue *q = login_queue_new(8);
	enum login_class S = LOGIN_CLASS_SIGNALING;
	size_t i;

	CHECK(q != NULL);
	for (i = 0; i < 8; i++)
		CHECK_EQ_INT(push(q, i, S, "203.0.113.9", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 8, S, "203.0.113.9", true), LOGIN_QUEUE_SOURCE_BUSY);
	for (i = 10; i < 10 + LOGIN_QUEUE_PER_SOURCE; i++)
		CHECK_EQ_INT(push(q, i, LOGIN_CLASS_ADMIN, "203.0.113.9", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, i, LOGIN_CLASS_ADMIN, "203.0.113.9", true), LOGIN_QUEUE_SOURCE_BUSY);
	login_queue_free(q);
}

static void test_sources(void)
{
	struct login_queue *q = login_queue_new(LOGIN_QUEUE_PER_SOURCE);
	enum login_class S = LOGIN_CLASS_SIGNALING;
	size_t i;

	/* One IPv6 /64 is one source, whatever the interface identifier. */
	CHECK_EQ_INT(push(q, 0, S, "2001:db8:1:2::1", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 1, S, "2001:db8:1:2:aaaa::2", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 2, S, "2001:db8:1:2:ffff:ffff:ffff:ffff", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 3, S, "2001:db8:1:2::99", true), LOGIN_QUEUE_SOURCE_BUSY);
	/* The next /64 is another. */
	CHECK_EQ_INT(push(q, 4, S, "2001:db8:1:3::1", true), LOGIN_QUEUE_OK);

	/* An IPv4 client of a dual-stack listener is its IPv4 address. */
	CHECK_EQ_INT(push(q, 5, S, "192.0.2.1", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 6, S, "::ffff:192.0.2.1", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 7, S, "192.0.2.1", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 8, S, "::ffff:192.0.2.1", true), LOGIN_QUEUE_SOURCE_BUSY);
	/* ... and not its neighbours in the same /64 of the mapped space. */
	CHECK_EQ_INT(push(q, 9, S, "192.0.2.2", true), LOGIN_QUEUE_OK);
	/* ::1 is not "no address". */
	for (i = 10; i < 10 + LOGIN_QUEUE_PER_SOURCE; i++)
		CHECK_EQ_INT(push(q, i, S, "::1", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 20, S, NULL, true), LOGIN_QUEUE_OK);
	login_queue_free(q);
}

static void test_round_robin(void)
{
	struct login_queue *q = login_queue_new(LOGIN_QUEUE_PER_SOURCE);
	enum login_class S = LOGIN_CLASS_SIGNALING;

	/* A's three were queued first; B's and C's come in between. */
	CHECK_EQ_INT(push(q, 1, S, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 2, S, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 3, S, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 4, S, "192.0.2.10", false), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 5, S, "192.0.2.20", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 6, S, "192.0.2.30", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 7, S, "192.0.2.20", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(pop_id(q), 1);
	CHECK_EQ_INT(pop_id(q), 5);
	CHECK_EQ_INT(pop_id(q), 6);
	/* D arrives now: after the sources already waiting, before A's rest. */
	CHECK_EQ_INT(push(q, 8, S, "192.0.2.40", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(pop_id(q), 2);
	CHECK_EQ_INT(pop_id(q), 7);
	CHECK_EQ_INT(pop_id(q), 8);
	CHECK_EQ_INT(pop_id(q), 3);
	CHECK_EQ_INT(pop_id(q), 4);
	CHECK_EQ_INT(pop_id(q), -1);
	login_queue_free(q);
}

static void test_classes_take_turns(void)
{
	struct login_queue *q = login_queue_new(LOGIN_QUEUE_PER_SOURCE);
	enum login_class S = LOGIN_CLASS_SIGNALING, A = LOGIN_CLASS_ADMIN;
	size_t i;

	/* Signaling logins from many sources, then two admin jobs: an
	 * operator waits for one signaling check at most. */
	for (i = 0; i < 6; i++) {
		char ip[32];

		snprintf(ip, sizeof(ip), "203.0.113.%zu", i + 1);
		CHECK_EQ_INT(push(q, i, S, ip, true), LOGIN_QUEUE_OK);
	}
	CHECK_EQ_INT(pop_id(q), 0);
	CHECK_EQ_INT(push(q, 100, A, "192.0.2.99", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 101, A, "192.0.2.98", false), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(pop_id(q), 100);
	CHECK_EQ_INT(pop_id(q), 1);
	CHECK_EQ_INT(pop_id(q), 101);
	CHECK_EQ_INT(pop_id(q), 2);
	CHECK_EQ_INT(pop_id(q), 3);
	/* ... and admin work cannot starve signaling either. */
	CHECK_EQ_INT(push(q, 102, A, "192.0.2.99", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 103, A, "192.0.2.98", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(pop_id(q), 102);
	CHECK_EQ_INT(pop_id(q), 4);
	CHECK_EQ_INT(pop_id(q), 103);
	CHECK_EQ_INT(pop_id(q), 5);
	CHECK_EQ_INT(pop_id(q), -1);
	login_queue_free(q);
}

static void test_cancel(void)
{
	struct login_queue *q = login_queue_new(LOGIN_QUEUE_PER_SOURCE);
	enum login_class S = LOGIN_CLASS_SIGNALING, A = LOGIN_CLASS_ADMIN;

	CHECK_EQ_INT(push(q, 1, S, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 2, S, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 3, S, "192.0.2.20", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 4, S, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(push(q, 5, A, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(login_queue_count(q, S), 4);
	/* Ids are per class: an admin request 3 is not session 3. */
	CHECK(login_queue_cancel(q, A, 3) == NULL);
	/* The only job of a source: the source leaves the ring. */
	CHECK(login_queue_cancel(q, S, 3) == &items[3]);
	CHECK_EQ_INT(login_queue_count(q, S), 3);
	/* The last job of a source (its list's tail), then one more. */
	CHECK(login_queue_cancel(q, S, 4) == &items[4]);
	CHECK_EQ_INT(push(q, 6, S, "192.0.2.10", true), LOGIN_QUEUE_OK);
	CHECK(login_queue_cancel(q, A, 5) == &items[5]);
	CHECK_EQ_INT(login_queue_count(q, A), 0);
	CHECK_EQ_INT(pop_id(q), 1);
	/* A running job cannot be cancelled: its result will come. */
	CHECK(login_queue_cancel(q, S, 1) == NULL);
	CHECK(login_queue_cancel(q, S, 77) == NULL);
	CHECK_EQ_INT(pop_id(q), 2);
	CHECK_EQ_INT(pop_id(q), 6);
	CHECK_EQ_INT(pop_id(q), -1);
	release(q, 1);
	release(q, 2);
	release(q, 6);
	CHECK_EQ_INT(login_queue_count(q, S), 0);
	/* Cancelling every job leaves nothing behind: the ring is empty. */
	CHECK_EQ_INT(push(q, 7, S, "192.0.2.30", true), LOGIN_QUEUE_OK);
	CHECK(login_queue_cancel(q, S, 7) == &items[7]);
	CHECK_EQ_INT(pop_id(q), -1);
	CHECK_EQ_INT(push(q, 8, S, "192.0.2.30", true), LOGIN_QUEUE_OK);
	CHECK_EQ_INT(pop_id(q), 8);
	login_queue_free(q);
}

static void test_room_and_spray(void)
{
	struct login_queue *q = login_queue_new(LOGIN_QUEUE_PER_SOURCE);
	enum login_class S = LOGIN_CLASS_SIGNALING, A = LOGIN_CLASS_ADMIN;
	size_t i, n = 0;
	char ip[64];

	/* A new address for every login: the class's room still holds. */
	for (i = 0; i < LOGIN_QUEUE_SIGNALING_MAX; i++, n++) {
		snprintf(ip, sizeof(ip), "2001:db8:%zx::1", i);
		CHECK_EQ_INT(push(q, n, S, ip, true), LOGIN_QUEUE_OK);
	}
	CHECK(!login_queue_has_room(q, S));
	CHECK_EQ_INT(push(q, n, S, "192.0.2.1", true), LOGIN_QUEUE_FULL);
	CHECK_EQ_INT(push(q, n, S, "192.0.2.1", false), LOGIN_QUEUE_FULL);
	/* Signaling logins never take the operators' room. */
	CHECK(login_queue_has_room(q, A));
	for (i = 0; i < LOGIN_QUEUE_ADMIN_MAX; i++, n++) {
		snprintf(ip, sizeof(ip), "192.0.%zu.%zu", i / 200, i % 200 + 1);
		CHECK_EQ_INT(push(q, n, A, ip, i % 2 == 0), LOGIN_QUEUE_OK);
	}
	CHECK(!login_queue_has_room(q, A));
	CHECK_EQ_INT(push(q, n, A, "192.0.2.200", false), LOGIN_QUEUE_FULL);
	/* Everything comes out once, admin and signaling in turn. */
	for (i = 0; i < LOGIN_QUEUE_SIGNALING_MAX + LOGIN_QUEUE_ADMIN_MAX; i++) {
		struct login_queue_item *it = login_queue_pop(q);

		CHECK(it != NULL);
		if (it == NULL)
			break;
		if (i < 2 * LOGIN_QUEUE_ADMIN_MAX)
			CHECK_EQ_INT(it->cls, i % 2 == 0 ? A : S);
		login_queue_release(q, it);
	}
	CHECK_EQ_INT(pop_id(q), -1);
	CHECK_EQ_INT(login_queue_count(q, S), 0);
	CHECK_EQ_INT(login_queue_count(q, A), 0);
	/* Every source record is free again. */
	for (i = 0; i < LOGIN_QUEUE_SIGNALING_MAX; i++) {
		snprintf(ip, sizeof(ip), "198.51.100.%zu", i % 250);
		CHECK_EQ_INT(push(q, i, S, ip, false), LOGIN_QUEUE_OK);
	}
	login_queue_free(q);
}

int main(void)
{
	test_configured_share();
	test_per_source_share();
	test_sources();
	test_round_robin();
	test_classes_take_turns();
	test_cancel();
	test_room_and_spray();
	return check_done("test_login_queue");
}
