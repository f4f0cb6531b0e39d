/* Unit tests for gateway/registry.c: relayed addresses and their owners;
 * a call is live from its start to its end or expiry and never again
 * after its end; an unknown call is not live (fail closed); fingerprints
 * go with the call; and what is kept is bounded by the live calls: many
 * calls started and ended leave nothing behind, and entries of calls that
 * were never ended are freed once expired, a bucket per start. */
#include "gateway/registry.h"

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "tests/unit/check.h"

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	inet_pton(AF_INET, ip, &a.sin_addr);
	return a;
}

static void test_allocs(void)
{
	struct registry *r = registry_memory_new();
	struct sockaddr_in a = v4("192.0.2.1", 50000), b = v4("192.0.2.1", 50001);
	const struct registry_alloc *o;

	CHECK(r != NULL);
	CHECK_EQ_INT(registry_alloc_add(r, (struct sockaddr *)&a, "alice", "call-1"), 0);
	o = registry_alloc_find(r, (struct sockaddr *)&a);
	CHECK(o != NULL && strcmp(o->user, "alice") == 0 && strcmp(o->call, "call-1") == 0);
	CHECK(registry_alloc_find(r, (struct sockaddr *)&b) == NULL);
	/* Added again: replaced, not doubled. */
	CHECK_EQ_INT(registry_alloc_add(r, (struct sockaddr *)&a, "bob", ""), 0);
	CHECK_EQ_INT(registry_alloc_count(r), 1);
	o = registry_alloc_find(r, (struct sockaddr *)&a);
	CHECK(o != NULL && strcmp(o->user, "bob") == 0 && o->call[0] == '\0');
	registry_alloc_del(r, (struct sockaddr *)&a);
	CHECK(registry_alloc_find(r, (struct sockaddr *)&a) == NULL);
	CHECK_EQ_INT(registry_alloc_count(r), 0);
	registry_free(r);
}

static void test_call_life(void)
{
	struct registry *r = registry_memory_new();

	/* Never started (say, minted before a restart): refused. */
	CHECK(!registry_call_live(r, "call-1", 100));
	CHECK_EQ_INT(registry_call_start(r, "call-1", 1000, 100), 0);
	CHECK(registry_call_live(r, "call-1", 100));
	CHECK(registry_call_live(r, "call-1", 1000));
	/* Past the credentials' expiry it is not live either. */
	CHECK(!registry_call_live(r, "call-1", 1001));
	CHECK(!registry_call_live(r, "call-2", 100));
	/* Started again (the callee's credentials): one entry, the later
	 * expiry kept, an earlier one ignored. */
	CHECK_EQ_INT(registry_call_start(r, "call-1", 2000, 100), 0);
	CHECK_EQ_INT(registry_call_start(r, "call-1", 500, 100), 0);
	CHECK_EQ_INT(registry_call_count(r), 1);
	CHECK(registry_call_live(r, "call-1", 1500));
	registry_call_end(r, "call-1");
	CHECK(!registry_call_live(r, "call-1", 100));
	CHECK_EQ_INT(registry_call_count(r), 0);
	/* Ending twice, or a call never started, is harmless. */
	registry_call_end(r, "call-1");
	registry_call_end(r, "never");
	CHECK(!registry_call_live(r, "call-1", 100));
	registry_free(r);
}

static void test_fingerprints_go_with_the_call(void)
{
	struct registry *r = registry_memory_new();
	struct sdp_fingerprint fp[2];
	const struct sdp_fingerprint *got;

	memset(fp, 0, sizeof(fp));
	fp[0].len = 32;
	fp[0].digest[0] = 0xAB;
	CHECK_EQ_INT(registry_call_start(r, "call-1", 1000, 100), 0);
	CHECK_EQ_INT(registry_call_fps_set(r, "call-1", "alice", fp, 1), 0);
	CHECK_EQ_INT(registry_call_fps_set(r, "call-1", "bob", fp, 2), 0);
	CHECK_EQ_INT(registry_call_fps_get(r, "call-1", "alice", &got), 1);
	CHECK(got != NULL && got[0].digest[0] == 0xAB);
	CHECK_EQ_INT(registry_call_fps_get(r, "call-1", "bob", &got), 2);
	CHECK_EQ_INT(registry_call_fps_get(r, "call-1", "carol", &got), 0);
	registry_call_end(r, "call-1");
	CHECK_EQ_INT(registry_call_fps_get(r, "call-1", "alice", &got), 0);
	CHECK_EQ_INT(registry_call_fps_get(r, "call-1", "bob", &got), 0);
	registry_free(r);
}

/* The memory kept does not grow with the number of calls that ended: it
 * used to, by one entry per call for 12 hours. */
static void test_ended_calls_leave_nothing(void)
{
	struct registry *r = registry_memory_new();
	char id[32];
	size_t before, after;
	int i;

	/* Warm the allocator up so that the measure below sees only what
	 * the registry keeps. */
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof(id), "warm-%d", i);
		CHECK_EQ_INT(registry_call_start(r, id, 50000, 100), 0);
		registry_call_end(r, id);
	}
	before = mallinfo2().uordblks;
	for (i = 0; i < 100000; i++) {
		snprintf(id, sizeof(id), "c%07d-aaaaaaaaaaaaaa", i);
		if (registry_call_start(r, id, 50000, 100 + (uint64_t)i / 1000) != 0) {
			CHECK(0);
			break;
		}
		registry_call_end(r, id);
		if (registry_call_live(r, id, 100)) {
			CHECK(0);
			break;
		}
	}
	after = mallinfo2().uordblks;
	CHECK_EQ_INT(registry_call_count(r), 0);
	/* 100,000 calls of ~100 bytes each would be ~10 MB. Under ASan
	 * mallinfo2() does not see its allocator and both are equal. */
	if (after > before + 4096)
		fprintf(stderr, "heap in use grew by %zu bytes over 100000 ended calls\n",
		    after - before);
	CHECK(after <= before + 4096);
	registry_free(r);
}

/* Calls that never end (the hub gave up on one after minting its
 * credentials) are freed once their credentials expired: each start
 * sweeps one bucket, so a full turn of the table frees them all. */
static void test_expired_calls_swept(void)
{
	struct registry *r = registry_memory_new();
	char id[32];
	int i;

	for (i = 0; i < 3000; i++) {
		snprintf(id, sizeof(id), "stale-%d", i);
		CHECK_EQ_INT(registry_call_start(r, id, 200, 100), 0);
	}
	CHECK_EQ_INT(registry_call_count(r), 3000);
	/* Before their expiry nothing is swept. */
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "live-%d", i);
		CHECK_EQ_INT(registry_call_start(r, id, 1000, 150), 0);
		registry_call_end(r, id);
	}
	CHECK_EQ_INT(registry_call_count(r), 3000);
	CHECK(registry_call_live(r, "stale-0", 150));
	/* After it, more starts than the table has buckets free them all;
	 * a call still live is kept. */
	CHECK_EQ_INT(registry_call_start(r, "keeper", 100000, 300), 0);
	for (i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "later-%d", i);
		CHECK_EQ_INT(registry_call_start(r, id, 1000, 300), 0);
		registry_call_end(r, id);
	}
	CHECK_EQ_INT(registry_call_count(r), 1);
	CHECK(registry_call_live(r, "keeper", 300));
	CHECK(!registry_call_live(r, "stale-0", 300));
	registry_free(r);
}

int main(void)
{
	test_allocs();
	test_call_life();
	test_fingerprints_go_with_the_call();
	test_ended_calls_leave_nothing();
	test_expired_calls_swept();
	return check_done("test_registry");
}
