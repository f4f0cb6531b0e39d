/* Unit tests for gateway/alerts.c: the defaults and names; every counting
 * detector at its threshold, within and after its window; windows that
 * slide; distinct users for credential stuffing; traffic spikes by cap
 * and by factor, with resets; eviction under a key spray; disabled rules;
 * a full output array; long keys and a clock that steps back. */
#include "gateway/alerts.h"

#include <stdio.h>
#include <string.h>

#include "tests/unit/check.h"

#define SEC 1000ULL
#define MB 1000000ULL

/* A config with every detector off but k, which keeps its default. */
static struct alerts_config only(enum alert_kind k)
{
	struct alerts_config c;
	size_t i;

	alerts_config_defaults(&c);
	for (i = 0; i < ALERT_KIND_COUNT; i++) {
		if (i != (size_t)k)
			c.rules[i].threshold = 0;
	}
	return c;
}

static struct alert_input ev(enum alert_input_kind kind, const char *user,
    const char *source, const char *call)
{
	struct alert_input in;

	memset(&in, 0, sizeof(in));
	in.kind = kind;
	in.user = user;
	in.source = source;
	in.call = call;
	return in;
}

static struct alert_input traffic(const char *alloc, uint64_t bytes)
{
	struct alert_input in = ev(ALERT_IN_ALLOC_TRAFFIC, "alice", NULL, "call-1");

	in.alloc_key = alloc;
	in.bytes = bytes;
	return in;
}

static size_t feed(struct alerts *a, const struct alert_input *in, uint64_t now_ms,
    struct alert *out)
{
	return alerts_feed(a, in, now_ms, out, 4);
}

static void test_defaults(void)
{
	struct alerts_config c;
	static const struct {
		enum alert_kind k;
		uint32_t window_s, threshold;
		enum alert_response response;
		uint32_t block_s;
	} want[] = {
		{ ALERT_PASSWORD_GUESSING_USER, 60, 10, ALERT_RESPONSE_LOCK_USER, 300 },
		{ ALERT_PASSWORD_GUESSING_SOURCE, 60, 20, ALERT_RESPONSE_BLOCK_SOURCE, 300 },
		{ ALERT_CREDENTIAL_STUFFING, 300, 5, ALERT_RESPONSE_BLOCK_SOURCE, 300 },
		{ ALERT_RELAY_SCANNING, 60, 20, ALERT_RESPONSE_BLOCK_SOURCE, 300 },
		{ ALERT_TRAFFIC_SPIKE, 60, 8000000, ALERT_RESPONSE_END_CALL, 300 },
		{ ALERT_SIGNALING_FLOOD, 60, 3, ALERT_RESPONSE_BLOCK_SOURCE, 300 },
		{ ALERT_CALL_FANOUT, 60, 20, ALERT_RESPONSE_NONE, 300 },
	};
	size_t i;

	memset(&c, 0xa5, sizeof(c));
	alerts_config_defaults(&c);
	CHECK_EQ_INT(sizeof(want) / sizeof(want[0]), ALERT_KIND_COUNT);
	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		const struct alert_rule *r = &c.rules[want[i].k];
		CHECK_EQ_INT(r->window_s, want[i].window_s);
		CHECK_EQ_INT(r->threshold, want[i].threshold);
		CHECK_EQ_INT(r->response, want[i].response);
		CHECK_EQ_INT(r->block_s, want[i].block_s);
	}
	CHECK_EQ_INT(c.spike_factor, 10);
}

static void test_names(void)
{
	static const char *const kinds[] = {
		"password_guessing_user", "password_guessing_source", "credential_stuffing",
		"relay_scanning", "traffic_spike", "signaling_flood", "call_fanout",
	};
	static const char *const responses[] = {
		"none", "block_source", "lock_user", "end_call",
	};
	size_t i;

	CHECK_EQ_INT(sizeof(kinds) / sizeof(kinds[0]), ALERT_KIND_COUNT);
	for (i = 0; i < ALERT_KIND_COUNT; i++)
		CHECK(strcmp(alert_kind_name((enum alert_kind)i), kinds[i]) == 0);
	for (i = 0; i < sizeof(responses) / sizeof(responses[0]); i++)
		CHECK(strcmp(alert_response_name((enum alert_response)i), responses[i]) == 0);
	CHECK(strcmp(alert_kind_name(ALERT_KIND_COUNT), "unknown") == 0);
	CHECK(strcmp(alert_kind_name((enum alert_kind)-1), "unknown") == 0);
	CHECK(strcmp(alert_response_name((enum alert_response)4), "unknown") == 0);
	CHECK(strcmp(alert_response_name((enum alert_response)-1), "unknown") == 0);
}

/* One counting detector with its defaults: silent below the threshold,
 * fires on the event that reaches it, stays quiet for the rest of the
 * window under a steady stream, fires again once the window has passed,
 * and another key is counted on its own. */
static void check_counter(enum alert_kind k, struct alert_input in, const char *key,
    const struct alert_input *other)
{
	struct alerts_config c = only(k);
	const struct alert_rule *r = &c.rules[k];
	struct alerts *a = alerts_new(&c, 64);
	struct alert out[4];
	uint64_t t = 1000 * SEC, fired_at, i;
	size_t n;

	CHECK(a != NULL);
	if (a == NULL)
		return;
	for (i = 1; i < r->threshold; i++, t += SEC)
		CHECK_EQ_INT(feed(a, &in, t, out), 0);
	/* Another key in between does not add to this one. */
	CHECK_EQ_INT(feed(a, other, t, out), 0);
	n = feed(a, &in, t, out);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(out[0].kind, k);
		CHECK_EQ_INT(out[0].response, r->response);
		CHECK_EQ_INT(out[0].block_s, r->block_s);
		CHECK(strcmp(out[0].key, key) == 0);
		CHECK(strcmp(out[0].user, in.user != NULL ? in.user : "") == 0);
		CHECK(strcmp(out[0].source, in.source != NULL ? in.source : "") == 0);
		CHECK(strcmp(out[0].call, in.call != NULL ? in.call : "") == 0);
		CHECK_EQ_INT(out[0].value, r->threshold);
		CHECK_EQ_INT(out[0].threshold, r->threshold);
	}
	fired_at = t;
	/* A steady stream keeps the count over the threshold, but the key
	 * alerts once per window. */
	for (t += SEC; t < fired_at + r->window_s * SEC; t += SEC)
		CHECK_EQ_INT(feed(a, &in, t, out), 0);
	CHECK_EQ_INT(t, fired_at + r->window_s * SEC);
	n = feed(a, &in, t, out);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && out[0].value >= r->threshold);
	/* After a quiet window one event is just one event. */
	t += r->window_s * SEC * 2;
	CHECK_EQ_INT(feed(a, &in, t, out), 0);
	alerts_free(a);
}

static void test_counters(void)
{
	struct alert_input login = ev(ALERT_IN_LOGIN_FAILED, "alice", "192.0.2.1", NULL);
	struct alert_input login_b = ev(ALERT_IN_LOGIN_FAILED, "bob", "192.0.2.2", NULL);
	struct alert_input perm = ev(ALERT_IN_PERMISSION_REFUSED, "alice", "192.0.2.1", NULL);
	struct alert_input perm_b = ev(ALERT_IN_PERMISSION_REFUSED, "alice", "192.0.2.9", NULL);
	struct alert_input abuse = ev(ALERT_IN_SESSION_ABUSE, NULL, "2001:db8::1", NULL);
	struct alert_input abuse_b = ev(ALERT_IN_SESSION_ABUSE, NULL, "2001:db8::2", NULL);
	struct alert_input call = ev(ALERT_IN_CALL_PLACED, "carol", NULL, "c-1");
	struct alert_input call_b = ev(ALERT_IN_CALL_PLACED, "dave", NULL, "c-2");

	check_counter(ALERT_PASSWORD_GUESSING_USER, login, "alice", &login_b);
	check_counter(ALERT_PASSWORD_GUESSING_SOURCE, login, "192.0.2.1", &login_b);
	check_counter(ALERT_RELAY_SCANNING, perm, "192.0.2.1", &perm_b);
	check_counter(ALERT_SIGNALING_FLOOD, abuse, "2001:db8::1", &abuse_b);
	check_counter(ALERT_CALL_FANOUT, call, "carol", &call_b);
}

/* Events leave the window: nine at t0 and one a full window later do not
 * make ten, while one just inside the window does. */
static void test_window_slides(void)
{
	struct alerts_config c = only(ALERT_PASSWORD_GUESSING_USER);
	struct alert_input in = ev(ALERT_IN_LOGIN_FAILED, "alice", "192.0.2.1", NULL);
	struct alert out[4];
	struct alerts *a;
	uint64_t t0 = 5000 * SEC;
	int i;

	a = alerts_new(&c, 16);
	for (i = 0; i < 9; i++)
		CHECK_EQ_INT(feed(a, &in, t0, out), 0);
	CHECK_EQ_INT(feed(a, &in, t0 + 60 * SEC, out), 0);
	/* Now 1 in the window; 8 more make 9, the 9th more makes 10. */
	for (i = 0; i < 8; i++)
		CHECK_EQ_INT(feed(a, &in, t0 + 61 * SEC + (uint64_t)i, out), 0);
	CHECK_EQ_INT(feed(a, &in, t0 + 62 * SEC, out), 1);
	alerts_free(a);

	a = alerts_new(&c, 16);
	for (i = 0; i < 9; i++)
		CHECK_EQ_INT(feed(a, &in, t0, out), 0);
	CHECK_EQ_INT(feed(a, &in, t0 + 58 * SEC + 999, out), 1);
	alerts_free(a);

	/* Half the events early in the window, half late: still ten. */
	a = alerts_new(&c, 16);
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(feed(a, &in, t0 + (uint64_t)i * SEC, out), 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(feed(a, &in, t0 + 50 * SEC + (uint64_t)i * SEC, out), 0);
	CHECK_EQ_INT(feed(a, &in, t0 + 55 * SEC, out), 1);
	alerts_free(a);

	/* Part of the window expires: five at t0 and four at t0+30 s; at
	 * t0+65 s the first five are gone, so one more makes five, not ten. */
	a = alerts_new(&c, 16);
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(feed(a, &in, t0, out), 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(feed(a, &in, t0 + 30 * SEC, out), 0);
	CHECK_EQ_INT(feed(a, &in, t0 + 65 * SEC, out), 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ_INT(feed(a, &in, t0 + 66 * SEC, out), 0);
	CHECK_EQ_INT(feed(a, &in, t0 + 67 * SEC, out), 1);
	CHECK_EQ_INT(out[0].value, 10);
	alerts_free(a);
}

/* Against an exact model, over pseudo-random event times: with 60
 * buckets of 1 s, an alert's count lies between the events younger than
 * 59 s and those younger than 60 s, and silence (outside the once-per-
 * window pause) means fewer than the threshold are younger than 59 s. */
static void test_window_model(void)
{
	struct alerts_config c = only(ALERT_SIGNALING_FLOOD);
	struct alert_input in = ev(ALERT_IN_SESSION_ABUSE, NULL, "192.0.2.1", NULL);
	struct alert out[4];
	struct alerts *a;
	static uint64_t times[4000];
	uint64_t t = 1000 * SEC, fired_ms = 0, rng = 42, young59, young60;
	bool fired = false;
	size_t i, j, n, bad = 0;

	c.rules[ALERT_SIGNALING_FLOOD].threshold = 7;
	a = alerts_new(&c, 4);
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
		t += (rng >> 33) % (20 * SEC);
		times[i] = t;
		n = feed(a, &in, t, out);
		young59 = young60 = 0;
		for (j = 0; j <= i; j++) {
			young59 += t - times[j] < 59 * SEC;
			young60 += t - times[j] < 60 * SEC;
		}
		if (n == 1) {
			bad += out[0].value < young59 || out[0].value > young60 ||
			    out[0].value < 7 || (fired && t - fired_ms < 60 * SEC);
			fired = true;
			fired_ms = t;
		} else if (!fired || t - fired_ms >= 60 * SEC) {
			bad += young59 >= 7;
		}
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(fired);
	alerts_free(a);
}

static void test_credential_stuffing(void)
{
	struct alerts_config c = only(ALERT_CREDENTIAL_STUFFING);
	static const char *const users[] = { "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8" };
	struct alert_input in = ev(ALERT_IN_LOGIN_FAILED, NULL, "198.51.100.7", NULL);
	struct alert_input other = ev(ALERT_IN_LOGIN_FAILED, "u5", "198.51.100.8", NULL);
	struct alert_input nouser = ev(ALERT_IN_LOGIN_FAILED, NULL, "198.51.100.7", NULL);
	struct alert out[4];
	struct alerts *a = alerts_new(&c, 16);
	char name[32];
	uint64_t t = 100 * SEC;
	size_t n;
	int i, round;

	/* Four users, over and over: repeats are not new users. */
	for (round = 0; round < 10; round++) {
		for (i = 0; i < 4; i++) {
			in.user = users[i];
			CHECK_EQ_INT(feed(a, &in, t, out), 0);
		}
	}
	/* A fifth user from another source does not count here, nor does a
	 * failure without a user name. */
	CHECK_EQ_INT(feed(a, &other, t, out), 0);
	CHECK_EQ_INT(feed(a, &nouser, t, out), 0);
	in.user = users[4];
	n = feed(a, &in, t + SEC, out);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(out[0].kind, ALERT_CREDENTIAL_STUFFING);
		CHECK_EQ_INT(out[0].response, ALERT_RESPONSE_BLOCK_SOURCE);
		CHECK_EQ_INT(out[0].block_s, 300);
		CHECK(strcmp(out[0].key, "198.51.100.7") == 0);
		CHECK(strcmp(out[0].source, "198.51.100.7") == 0);
		CHECK(strcmp(out[0].user, "u5") == 0);
		CHECK_EQ_INT(out[0].value, 5);
		CHECK_EQ_INT(out[0].threshold, 5);
	}
	/* Not again within the window, even with more users. */
	in.user = users[5];
	CHECK_EQ_INT(feed(a, &in, t + 2 * SEC, out), 0);
	alerts_free(a);

	/* Sliding: u1..u4 at t, u1 again at t+200 s; at t+300 s u2..u4 have
	 * left the window, so u5..u7 make four and u8 makes five. */
	a = alerts_new(&c, 16);
	for (i = 0; i < 4; i++) {
		in.user = users[i];
		CHECK_EQ_INT(feed(a, &in, t, out), 0);
	}
	in.user = users[0];
	CHECK_EQ_INT(feed(a, &in, t + 200 * SEC, out), 0);
	for (i = 4; i < 7; i++) {
		in.user = users[i];
		CHECK_EQ_INT(feed(a, &in, t + 300 * SEC, out), 0);
	}
	in.user = users[7];
	n = feed(a, &in, t + 301 * SEC, out);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && out[0].value == 5);
	alerts_free(a);

	/* A threshold above the 64 users a source can remember is clamped,
	 * and the alert says so. */
	c.rules[ALERT_CREDENTIAL_STUFFING].threshold = 100;
	a = alerts_new(&c, 2);
	for (i = 0; i < 63; i++) {
		snprintf(name, sizeof(name), "user-%d", i);
		in.user = name;
		CHECK_EQ_INT(feed(a, &in, t, out), 0);
	}
	in.user = "user-63";
	n = feed(a, &in, t, out);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && out[0].value == 64 && out[0].threshold == 64);
	alerts_free(a);

	/* The password-guessing detectors fire from the same inputs, and in
	 * the header's order; credential stuffing does not for one user. */
	alerts_config_defaults(&c);
	a = alerts_new(&c, 16);
	in.user = "victim";
	for (i = 1; i < 10; i++)
		CHECK_EQ_INT(feed(a, &in, t + (uint64_t)i, out), 0);
	n = feed(a, &in, t + 10, out);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && out[0].kind == ALERT_PASSWORD_GUESSING_USER);
	CHECK(n == 1 && out[0].response == ALERT_RESPONSE_LOCK_USER);
	for (i = 11; i < 20; i++)
		CHECK_EQ_INT(feed(a, &in, t + (uint64_t)i, out), 0);
	n = feed(a, &in, t + 20, out);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && out[0].kind == ALERT_PASSWORD_GUESSING_SOURCE);
	alerts_free(a);
}

/* Feeds samples once a second at rate bps from *t, for secs seconds. */
static size_t run_rate(struct alerts *a, const char *alloc, uint64_t *total, uint64_t *t,
    uint64_t bps, int secs, struct alert *out)
{
	struct alert_input in;
	size_t fired = 0;
	int i;

	for (i = 0; i < secs; i++) {
		*t += SEC;
		*total += bps;
		in = traffic(alloc, *total);
		fired += feed(a, &in, *t, out);
	}
	return fired;
}

static void test_traffic_spike(void)
{
	struct alerts_config c = only(ALERT_TRAFFIC_SPIKE);
	struct alert out[4];
	struct alert_input in;
	struct alerts *a;
	uint64_t total, t;
	size_t n;

	/* By factor: 100 kB/s for 20 s, then 5 MB/s (50x, under the cap). */
	a = alerts_new(&c, 16);
	total = 0, t = 0;
	in = traffic("203.0.113.5:50000", 0);
	CHECK_EQ_INT(feed(a, &in, t, out), 0);
	CHECK_EQ_INT(run_rate(a, "203.0.113.5:50000", &total, &t, 100000, 20, out), 0);
	n = run_rate(a, "203.0.113.5:50000", &total, &t, 5 * MB, 1, out);
	CHECK_EQ_INT(n, 1);
	if (n == 1) {
		CHECK_EQ_INT(out[0].kind, ALERT_TRAFFIC_SPIKE);
		CHECK_EQ_INT(out[0].response, ALERT_RESPONSE_END_CALL);
		CHECK(strcmp(out[0].key, "203.0.113.5:50000") == 0);
		CHECK(strcmp(out[0].call, "call-1") == 0);
		CHECK(strcmp(out[0].user, "alice") == 0);
		CHECK_EQ_INT(out[0].value, 5 * MB);
		/* The limit crossed: 10 x 100 kB/s, but at least 1 MB/s. */
		CHECK_EQ_INT(out[0].threshold, 1 * MB);
	}
	/* Not again within the window. */
	CHECK_EQ_INT(run_rate(a, "203.0.113.5:50000", &total, &t, 9 * MB, 30, out), 0);
	alerts_free(a);

	/* Steady 5 MB/s from the start, cap 8 MB/s: it is its own average. */
	a = alerts_new(&c, 16);
	total = 5 * MB, t = SEC;
	in = traffic("a1", total);
	CHECK_EQ_INT(feed(a, &in, t, out), 0);
	CHECK_EQ_INT(run_rate(a, "a1", &total, &t, 5 * MB, 120, out), 0);
	alerts_free(a);

	/* 9 MB/s is over the cap from the first rate; once per window;
	 * again after it. */
	a = alerts_new(&c, 16);
	total = 0, t = 0;
	in = traffic("a2", total);
	CHECK_EQ_INT(feed(a, &in, t, out), 0);
	n = run_rate(a, "a2", &total, &t, 9 * MB, 1, out);
	CHECK_EQ_INT(n, 1);
	CHECK(n == 1 && out[0].value == 9 * MB && out[0].threshold == 8 * MB);
	CHECK_EQ_INT(run_rate(a, "a2", &total, &t, 9 * MB, 59, out), 0);
	CHECK_EQ_INT(run_rate(a, "a2", &total, &t, 9 * MB, 1, out), 1);
	/* Exactly the cap is not above it. */
	alerts_free(a);
	a = alerts_new(&c, 16);
	total = 0, t = 0;
	in = traffic("a3", total);
	CHECK_EQ_INT(feed(a, &in, t, out), 0);
	CHECK_EQ_INT(run_rate(a, "a3", &total, &t, 8 * MB, 30, out), 0);
	alerts_free(a);

	/* The factor needs more than 1 MB/s and 10 s of history. */
	a = alerts_new(&c, 16);
	total = 0, t = 0;
	CHECK_EQ_INT(run_rate(a, "slow", &total, &t, 10000, 20, out), 0);
	CHECK_EQ_INT(run_rate(a, "slow", &total, &t, 500000, 1, out), 0);
	total = 0, t = 0;
	CHECK_EQ_INT(run_rate(a, "young", &total, &t, 100000, 5, out), 0);
	CHECK_EQ_INT(run_rate(a, "young", &total, &t, 5 * MB, 1, out), 0);
	alerts_free(a);

	/* Samples closer than half a second are taken together with the
	 * next one instead of as a burst. */
	a = alerts_new(&c, 16);
	total = 0, t = 0;
	CHECK_EQ_INT(run_rate(a, "jitter", &total, &t, 100000, 20, out), 0);
	in = traffic("jitter", total + 100000);
	CHECK_EQ_INT(feed(a, &in, t + 10, out), 0);
	CHECK_EQ_INT(run_rate(a, "jitter", &total, &t, 100000, 5, out), 0);
	alerts_free(a);

	/* A factor of 0 leaves only the cap. */
	c.spike_factor = 0;
	a = alerts_new(&c, 16);
	total = 0, t = 0;
	CHECK_EQ_INT(run_rate(a, "nofactor", &total, &t, 100000, 20, out), 0);
	CHECK_EQ_INT(run_rate(a, "nofactor", &total, &t, 5 * MB, 1, out), 0);
	alerts_free(a);
}

/* A total below the last one is a new allocation behind the same key:
 * no history, and its own once-per-window. Forgetting does the same. */
static void test_traffic_reset(void)
{
	struct alerts_config c = only(ALERT_TRAFFIC_SPIKE);
	struct alert out[4];
	struct alert_input in;
	struct alerts *a = alerts_new(&c, 16);
	uint64_t total = 0, t = 0;

	CHECK_EQ_INT(run_rate(a, "k", &total, &t, 100000, 20, out), 0);
	total = 0;
	in = traffic("k", total);
	t += SEC;
	CHECK_EQ_INT(feed(a, &in, t, out), 0);
	/* Without the reset this would be a 50x spike. */
	CHECK_EQ_INT(run_rate(a, "k", &total, &t, 5 * MB, 20, out), 0);

	/* Forgetting: same story. */
	total = 0;
	CHECK_EQ_INT(run_rate(a, "f", &total, &t, 100000, 20, out), 0);
	alerts_forget_alloc(a, "f");
	alerts_forget_alloc(a, "never-seen");
	alerts_forget_alloc(a, NULL);
	CHECK_EQ_INT(run_rate(a, "f", &total, &t, 5 * MB, 20, out), 0);

	/* A new allocation may fire although the old one just did. */
	total = 0;
	CHECK_EQ_INT(run_rate(a, "c", &total, &t, 9 * MB, 2, out), 1);
	total = 0;
	in = traffic("c", total);
	t += SEC;
	CHECK_EQ_INT(feed(a, &in, t, out), 0);
	CHECK_EQ_INT(run_rate(a, "c", &total, &t, 9 * MB, 1, out), 1);
	alerts_free(a);
}

/* With room for four keys, a spray of new keys evicts the least recently
 * seen ones: a quiet key is forgotten, an active one is not, and keys
 * arriving after the spray are detected. */
static void test_eviction(void)
{
	struct alerts_config c = only(ALERT_PASSWORD_GUESSING_USER);
	struct alert_input in = ev(ALERT_IN_LOGIN_FAILED, "quiet", "192.0.2.1", NULL);
	struct alert_input active = ev(ALERT_IN_LOGIN_FAILED, "active", "192.0.2.1", NULL);
	struct alert_input spray = ev(ALERT_IN_LOGIN_FAILED, NULL, "192.0.2.1", NULL);
	struct alert out[4];
	char name[32];
	struct alerts *a = alerts_new(&c, 4);
	uint64_t t = 10 * SEC;
	int i;

	for (i = 0; i < 9; i++)
		CHECK_EQ_INT(feed(a, &in, t, out), 0);
	for (i = 0; i < 9; i++) {
		CHECK_EQ_INT(feed(a, &active, t, out), 0);
		snprintf(name, sizeof(name), "spray-%d", i);
		spray.user = name;
		CHECK_EQ_INT(feed(a, &spray, t, out), 0);
	}
	CHECK_EQ_INT(feed(a, &active, t, out), 1);
	/* "quiet" was evicted: its tenth failure is its first. */
	CHECK_EQ_INT(feed(a, &in, t, out), 0);

	/* A large spray stays within four keys and later keys still count. */
	for (i = 0; i < 100000; i++) {
		snprintf(name, sizeof(name), "spray-%d", i);
		spray.user = name;
		CHECK_EQ_INT(feed(a, &spray, t + (uint64_t)i, out), 0);
	}
	in.user = "late";
	for (i = 1; i < 10; i++)
		CHECK_EQ_INT(feed(a, &in, t + 200 * SEC, out), 0);
	CHECK_EQ_INT(feed(a, &in, t + 200 * SEC, out), 1);
	alerts_free(a);

	/* Past 2^24 keys the table is refused like any allocation failure. */
	CHECK(alerts_new(&c, ((size_t)1 << 24) + 1) == NULL);

	/* max_keys 0 still tracks one key rather than none. */
	a = alerts_new(&c, 0);
	CHECK(a != NULL);
	for (i = 1; i < 10; i++)
		CHECK_EQ_INT(feed(a, &in, t, out), 0);
	CHECK_EQ_INT(feed(a, &in, t, out), 1);
	alerts_free(a);
}

/* Threshold 0 (or window 0) turns a detector off, whatever comes in. */
static void test_disabled(void)
{
	struct alerts_config c;
	struct alert_input in[5];
	struct alert out[4];
	struct alerts *a;
	uint64_t total = 0;
	char user[32];
	size_t i, j;

	alerts_config_defaults(&c);
	for (i = 0; i < ALERT_KIND_COUNT; i++)
		c.rules[i].threshold = 0;
	c.rules[ALERT_CALL_FANOUT].threshold = 1;
	c.rules[ALERT_CALL_FANOUT].window_s = 0;
	a = alerts_new(&c, 8);
	CHECK(a != NULL);
	in[0] = ev(ALERT_IN_LOGIN_FAILED, "alice", "192.0.2.1", NULL);
	in[1] = ev(ALERT_IN_PERMISSION_REFUSED, "alice", "192.0.2.1", NULL);
	in[2] = ev(ALERT_IN_SESSION_ABUSE, NULL, "192.0.2.1", NULL);
	in[3] = ev(ALERT_IN_CALL_PLACED, "alice", NULL, "c");
	for (i = 0; i < 1000; i++) {
		snprintf(user, sizeof(user), "u%zu", i % 50);
		in[0].user = user;
		total += (i < 500 ? 1000 : 50 * MB);
		in[4] = traffic("x", total);
		for (j = 0; j < 5; j++)
			CHECK_EQ_INT(feed(a, &in[j], i * SEC, out), 0);
	}
	alerts_free(a);
}

/* Three detectors reaching their thresholds on one input with room for
 * one alert: the others fire on the next input rather than never. */
static void test_out_full(void)
{
	struct alerts_config c;
	struct alert_input in = ev(ALERT_IN_LOGIN_FAILED, "alice", "192.0.2.1", NULL);
	struct alert out[4];
	struct alerts *a;

	alerts_config_defaults(&c);
	c.rules[ALERT_PASSWORD_GUESSING_USER].threshold = 2;
	c.rules[ALERT_PASSWORD_GUESSING_SOURCE].threshold = 2;
	c.rules[ALERT_CREDENTIAL_STUFFING].threshold = 0;
	a = alerts_new(&c, 8);
	CHECK_EQ_INT(alerts_feed(a, &in, 0, out, 4), 0);
	CHECK_EQ_INT(alerts_feed(a, &in, 1, out, 1), 1);
	CHECK_EQ_INT(out[0].kind, ALERT_PASSWORD_GUESSING_USER);
	CHECK_EQ_INT(alerts_feed(a, &in, 2, NULL, 0), 0);
	CHECK_EQ_INT(alerts_feed(a, &in, 3, out, 4), 1);
	CHECK_EQ_INT(out[0].kind, ALERT_PASSWORD_GUESSING_SOURCE);
	CHECK_EQ_INT(out[0].value, 4);
	alerts_free(a);

	/* Both at once when there is room. */
	a = alerts_new(&c, 8);
	CHECK_EQ_INT(alerts_feed(a, &in, 0, out, 4), 0);
	CHECK_EQ_INT(alerts_feed(a, &in, 1, out, 4), 2);
	CHECK_EQ_INT(out[0].kind, ALERT_PASSWORD_GUESSING_USER);
	CHECK_EQ_INT(out[1].kind, ALERT_PASSWORD_GUESSING_SOURCE);
	alerts_free(a);
}

/* Odd inputs: NULL and empty keys, keys longer than the alert's field
 * that share a prefix, a clock stepping back, unknown input kinds. */
static void test_odd_inputs(void)
{
	struct alerts_config c;
	struct alert_input in;
	struct alert out[4];
	struct alerts *a;
	char long1[300], long2[300];
	int i;

	alerts_config_defaults(&c);
	a = alerts_new(&c, 8);
	in = ev(ALERT_IN_SESSION_ABUSE, NULL, "192.0.2.1", NULL);
	CHECK_EQ_INT(alerts_feed(NULL, &in, 0, out, 4), 0);
	CHECK_EQ_INT(alerts_feed(a, NULL, 0, out, 4), 0);
	in = ev((enum alert_input_kind)0, "x", "y", "z");
	CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	in = ev((enum alert_input_kind)99, "x", "y", "z");
	CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	in = ev(ALERT_IN_SESSION_ABUSE, NULL, NULL, NULL);
	for (i = 0; i < 10; i++)
		CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	in = ev(ALERT_IN_SESSION_ABUSE, NULL, "", NULL);
	for (i = 0; i < 10; i++)
		CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	in = traffic(NULL, 0);
	CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	alerts_free(a);
	alerts_free(NULL);

	/* Login failures without a user still count for the source. */
	a = alerts_new(NULL, 8);
	in = ev(ALERT_IN_LOGIN_FAILED, NULL, "192.0.2.1", NULL);
	for (i = 1; i < 20; i++)
		CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	CHECK_EQ_INT(feed(a, &in, 0, out), 1);
	CHECK(strcmp(out[0].user, "") == 0);
	alerts_free(a);

	/* Two long keys with the same 200-byte prefix are two keys; the
	 * alert's key is truncated and terminated. */
	memset(long1, 'a', sizeof(long1));
	memset(long2, 'a', sizeof(long2));
	long1[299] = long2[299] = '\0';
	long2[250] = 'b';
	a = alerts_new(&c, 8);
	in = ev(ALERT_IN_SESSION_ABUSE, NULL, long1, NULL);
	CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	in.source = long2;
	CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	CHECK_EQ_INT(feed(a, &in, 0, out), 0);
	CHECK_EQ_INT(feed(a, &in, 0, out), 1);
	CHECK_EQ_INT(strlen(out[0].key), sizeof(out[0].key) - 1);
	CHECK_EQ_INT(strlen(out[0].source), sizeof(out[0].source) - 1);
	alerts_free(a);

	/* A clock that steps back neither crashes nor re-fires early. */
	a = alerts_new(&c, 8);
	in = ev(ALERT_IN_SESSION_ABUSE, NULL, "192.0.2.3", NULL);
	CHECK_EQ_INT(feed(a, &in, 100 * SEC, out), 0);
	CHECK_EQ_INT(feed(a, &in, 50 * SEC, out), 0);
	CHECK_EQ_INT(feed(a, &in, 10 * SEC, out), 1);
	CHECK_EQ_INT(feed(a, &in, 5 * SEC, out), 0);
	CHECK_EQ_INT(feed(a, &in, 100 * SEC, out), 0);
	in = traffic("t", 5 * MB);
	CHECK_EQ_INT(feed(a, &in, 100 * SEC, out), 0);
	in = traffic("t", 50 * MB);
	CHECK_EQ_INT(feed(a, &in, 90 * SEC, out), 0);
	alerts_free(a);
}

int main(void)
{
	test_defaults();
	test_names();
	test_counters();
	test_window_slides();
	test_window_model();
	test_credential_stuffing();
	test_traffic_spike();
	test_traffic_reset();
	test_eviction();
	test_disabled();
	test_out_full();
	test_odd_inputs();
	return check_done("test_alerts");
}
