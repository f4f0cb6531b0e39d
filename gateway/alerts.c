/* Anomaly detection over the gateway's events. Each enabled detector owns
 * one table of at most max_keys keys (a user, a source or an allocation):
 * a chained hash index over a fixed array, plus a least-recently-seen list,
 * so a key sprayer can only make us forget old, quiet keys, and memory is
 * fixed when alerts_new() returns. Per key a detector keeps one of three
 * states: a bucketed sliding-window counter, a small set of recently
 * failing users, or a traffic sample with its moving average. Every event
 * costs O(1): a hash lookup and at most ALERTS_BUCKETS bucket clears. */
#include "gateway/alerts.h"

#include "common/fnv.h"

#include <stdlib.h>
#include <string.h>

/* Sliding windows are kept as this many buckets, each window/60 wide; a
 * bucket only ever counts events younger than the window, so the count is
 * exact except for events in the oldest bucket, which may leave early. */
#define ALERTS_BUCKETS 60

/* Keys longer than this are told apart by their prefix and the hash of the
 * whole string; user names and addresses are far shorter. */
#define ALERTS_KEY_MAX 128

/* credential_stuffing remembers at most this many users per source, so a
 * larger threshold is clamped to it rather than letting one config value
 * decide how many megabytes every source costs. */
#define ALERTS_DISTINCT_MAX 64

/* Larger tables are refused as if out of memory: indices are 32-bit. */
#define ALERTS_MAX_KEYS ((size_t)1 << 24)

/* traffic_spike: the factor test needs this much history and this rate,
 * as the header says; MB is the SI megabyte, as in link speeds. Samples
 * closer than MIN_DT to the last one are skipped so that a rate is never
 * taken over a few milliseconds of jitter. */
#define ALERTS_SPIKE_HISTORY_MS 10000u
#define ALERTS_SPIKE_MIN_BPS 1000000u
#define ALERTS_SPIKE_MIN_DT_MS 500u

#define ALERTS_NIL UINT32_MAX

struct alerts_window {
	uint64_t head;            /* bucket number (now_ms / width) of the newest bucket */
	uint64_t sum;             /* of count[] */
	uint32_t count[ALERTS_BUCKETS];
};

struct alerts_spike {
	uint64_t first_ms;        /* first sample since the allocation was (re)seen */
	uint64_t last_ms;
	uint64_t last_bytes;
	double avg_bps;           /* moving average of the rates before this sample */
	bool have_avg;
};

struct alerts_user {
	uint64_t hash;
	uint64_t seen_ms;
	bool used;
};

struct alerts_entry {
	uint64_t hash;
	uint64_t seen_ms;         /* latest time fed for this key */
	uint64_t fired_ms;
	bool fired;
	uint32_t chain;           /* next in the hash bucket */
	uint32_t newer, older;    /* least-recently-seen list */
	char key[ALERTS_KEY_MAX];
	union {
		struct alerts_window win;
		struct alerts_spike spike;
	} u;
};

struct alerts_table {
	struct alerts_entry *entries; /* owned; NULL when the detector is disabled */
	struct alerts_user *users;    /* owned; credential_stuffing only, ndistinct per entry */
	uint32_t *heads;              /* owned; nheads, a power of two */
	size_t nheads, ndistinct;
	uint32_t newest, oldest, free_head;
};

struct alerts {
	struct alerts_config cfg;
	struct alerts_table t[ALERT_KIND_COUNT];
};

/* What a detector found: whether its condition holds now, the value that
 * crossed and the limit it crossed. Whether it may fire is decided after. */
struct alerts_hit {
	bool over;
	uint64_t value;
	uint32_t limit;
};

enum alerts_key_field { KEY_USER, KEY_SOURCE, KEY_ALLOC };

typedef void alerts_detect_fn(struct alerts *a, enum alert_kind k,
    struct alerts_entry *e, bool fresh, const struct alert_input *in,
    uint64_t now_ms, struct alerts_hit *hit);

static alerts_detect_fn detect_count, detect_distinct, detect_spike;

/* The detectors, their defaults and names in one place; the order is the
 * enum's. */
static const struct alerts_detector {
	const char *name;
	struct alert_rule defaults;
	alerts_detect_fn *detect;
} detectors[ALERT_KIND_COUNT] = {
	[ALERT_PASSWORD_GUESSING_USER] = { "password_guessing_user",
	    { 60, 10, ALERT_RESPONSE_LOCK_USER, 300 }, detect_count },
	[ALERT_PASSWORD_GUESSING_SOURCE] = { "password_guessing_source",
	    { 60, 20, ALERT_RESPONSE_BLOCK_SOURCE, 300 }, detect_count },
	[ALERT_CREDENTIAL_STUFFING] = { "credential_stuffing",
	    { 300, 5, ALERT_RESPONSE_BLOCK_SOURCE, 300 }, detect_distinct },
	[ALERT_RELAY_SCANNING] = { "relay_scanning",
	    { 60, 20, ALERT_RESPONSE_BLOCK_SOURCE, 300 }, detect_count },
	/* The header gives no window for traffic_spike; 60 s is both how far
	 * back its moving average looks and how often a call can re-alert. */
	[ALERT_TRAFFIC_SPIKE] = { "traffic_spike",
	    { 60, 8000000, ALERT_RESPONSE_END_CALL, 300 }, detect_spike },
	[ALERT_SIGNALING_FLOOD] = { "signaling_flood",
	    { 60, 3, ALERT_RESPONSE_BLOCK_SOURCE, 300 }, detect_count },
	[ALERT_CALL_FANOUT] = { "call_fanout",
	    { 60, 20, ALERT_RESPONSE_NONE, 300 }, detect_count },
};

/* Which detectors each input feeds, and by which key; the output order of
 * alerts from one input is this table's order. */
static const struct alerts_route {
	enum alert_input_kind in;
	enum alert_kind kind;
	enum alerts_key_field key;
} routes[] = {
	{ ALERT_IN_LOGIN_FAILED, ALERT_PASSWORD_GUESSING_USER, KEY_USER },
	{ ALERT_IN_LOGIN_FAILED, ALERT_PASSWORD_GUESSING_SOURCE, KEY_SOURCE },
	{ ALERT_IN_LOGIN_FAILED, ALERT_CREDENTIAL_STUFFING, KEY_SOURCE },
	{ ALERT_IN_PERMISSION_REFUSED, ALERT_RELAY_SCANNING, KEY_SOURCE },
	{ ALERT_IN_SESSION_ABUSE, ALERT_SIGNALING_FLOOD, KEY_SOURCE },
	{ ALERT_IN_CALL_PLACED, ALERT_CALL_FANOUT, KEY_USER },
	{ ALERT_IN_ALLOC_TRAFFIC, ALERT_TRAFFIC_SPIKE, KEY_ALLOC },
};

static const char *const response_names[] = {
	[ALERT_RESPONSE_NONE] = "none",
	[ALERT_RESPONSE_BLOCK_SOURCE] = "block_source",
	[ALERT_RESPONSE_LOCK_USER] = "lock_user",
	[ALERT_RESPONSE_END_CALL] = "end_call",
};

/* FNV-1a. Not keyed, so an attacker can aim many user names at one hash
 * bucket; a chain is still at most max_keys entries of 64-bit compares,
 * and login failures (the input with attacker-chosen names) are paced by
 * password hashing far more than by this walk. */
static uint64_t hash_str(const char *s)
{
	return fnv1a_str(s);
}

/* Copies at most n - 1 bytes and always terminates: alert fields and keys
 * are reports, and a truncated name is better than none. */
static void copy_str(char *dst, size_t n, const char *src)
{
	size_t len = src != NULL ? strnlen(src, n - 1) : 0;

	if (len > 0)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

static uint64_t window_ms(const struct alert_rule *r)
{
	return (uint64_t)r->window_s * 1000;
}

/* A threshold of 0 disables a detector, as does a window of 0 s: a window
 * of no length holds no events. */
static bool rule_enabled(const struct alert_rule *r)
{
	return r->threshold != 0 && r->window_s != 0;
}

void alerts_config_defaults(struct alerts_config *c)
{
	size_t k;

	memset(c, 0, sizeof(*c));
	for (k = 0; k < ALERT_KIND_COUNT; k++)
		c->rules[k] = detectors[k].defaults;
	c->spike_factor = 10;
}

const char *alert_kind_name(enum alert_kind k)
{
	if ((unsigned)k >= ALERT_KIND_COUNT)
		return "unknown";
	return detectors[k].name;
}

const char *alert_response_name(enum alert_response r)
{
	if ((unsigned)r >= sizeof(response_names) / sizeof(response_names[0]))
		return "unknown";
	return response_names[r];
}

static void table_free(struct alerts_table *t)
{
	free(t->entries);
	free(t->users);
	free(t->heads);
}

static int table_init(struct alerts_table *t, size_t max_keys, size_t ndistinct)
{
	size_t i;

	t->nheads = 1;
	while (t->nheads < max_keys)
		t->nheads <<= 1;
	t->entries = calloc(max_keys, sizeof(*t->entries));
	t->heads = malloc(t->nheads * sizeof(*t->heads));
	if (ndistinct > 0)
		t->users = calloc(max_keys * ndistinct, sizeof(*t->users));
	if (t->entries == NULL || t->heads == NULL || (ndistinct > 0 && t->users == NULL))
		return -1;
	t->ndistinct = ndistinct;
	for (i = 0; i < t->nheads; i++)
		t->heads[i] = ALERTS_NIL;
	/* Free entries are chained through .chain. */
	for (i = 0; i < max_keys; i++)
		t->entries[i].chain = i + 1 < max_keys ? (uint32_t)(i + 1) : ALERTS_NIL;
	t->free_head = 0;
	t->newest = t->oldest = ALERTS_NIL;
	return 0;
}

struct alerts *alerts_new(const struct alerts_config *c, size_t max_keys)
{
	struct alerts *a;
	size_t k, ndistinct;

	/* A table of no keys would silently detect nothing. */
	if (max_keys == 0)
		max_keys = 1;
	if (max_keys > ALERTS_MAX_KEYS)
		return NULL;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	/* The config is copied, so the caller's may go; NULL means the
	 * defaults rather than a crash. */
	if (c != NULL)
		a->cfg = *c;
	else
		alerts_config_defaults(&a->cfg);
	c = &a->cfg;
	for (k = 0; k < ALERT_KIND_COUNT; k++) {
		if (!rule_enabled(&c->rules[k]))
			continue;
		ndistinct = 0;
		if (k == ALERT_CREDENTIAL_STUFFING) {
			ndistinct = c->rules[k].threshold;
			if (ndistinct > ALERTS_DISTINCT_MAX)
				ndistinct = ALERTS_DISTINCT_MAX;
		}
		if (table_init(&a->t[k], max_keys, ndistinct) != 0) {
			alerts_free(a);
			return NULL;
		}
	}
	return a;
}

void alerts_free(struct alerts *a)
{
	size_t k;

	if (a == NULL)
		return;
	for (k = 0; k < ALERT_KIND_COUNT; k++)
		table_free(&a->t[k]);
	free(a);
}

static void lru_unlink(struct alerts_table *t, uint32_t i)
{
	struct alerts_entry *e = &t->entries[i];

	if (e->newer != ALERTS_NIL)
		t->entries[e->newer].older = e->older;
	else
		t->newest = e->older;
	if (e->older != ALERTS_NIL)
		t->entries[e->older].newer = e->newer;
	else
		t->oldest = e->newer;
}

static void lru_push(struct alerts_table *t, uint32_t i)
{
	struct alerts_entry *e = &t->entries[i];

	e->newer = ALERTS_NIL;
	e->older = t->newest;
	if (t->newest != ALERTS_NIL)
		t->entries[t->newest].newer = i;
	t->newest = i;
	if (t->oldest == ALERTS_NIL)
		t->oldest = i;
}

static void chain_unlink(struct alerts_table *t, uint32_t i)
{
	uint32_t *p = &t->heads[t->entries[i].hash & (t->nheads - 1)];

	while (*p != i)
		p = &t->entries[*p].chain;
	*p = t->entries[i].chain;
}

static void entry_remove(struct alerts_table *t, uint32_t i)
{
	chain_unlink(t, i);
	lru_unlink(t, i);
	t->entries[i].chain = t->free_head;
	t->free_head = i;
}

static uint32_t entry_find(const struct alerts_table *t, const char *key, uint64_t h)
{
	uint32_t i;

	for (i = t->heads[h & (t->nheads - 1)]; i != ALERTS_NIL; i = t->entries[i].chain) {
		if (t->entries[i].hash == h &&
		    strncmp(t->entries[i].key, key, ALERTS_KEY_MAX - 1) == 0)
			return i;
	}
	return ALERTS_NIL;
}

/* Finds key or makes it, evicting the least recently seen key when the
 * table is full, and marks it seen. *fresh says its state is new. */
static struct alerts_entry *entry_get(struct alerts_table *t, const char *key, bool *fresh)
{
	uint64_t h = hash_str(key);
	uint32_t i = entry_find(t, key, h);
	struct alerts_entry *e;

	*fresh = i == ALERTS_NIL;
	if (!*fresh) {
		lru_unlink(t, i);
		lru_push(t, i);
		return &t->entries[i];
	}
	if (t->free_head == ALERTS_NIL)
		entry_remove(t, t->oldest);
	i = t->free_head;
	e = &t->entries[i];
	t->free_head = e->chain;
	memset(e, 0, sizeof(*e));
	e->hash = h;
	copy_str(e->key, sizeof(e->key), key);
	e->chain = t->heads[h & (t->nheads - 1)];
	t->heads[h & (t->nheads - 1)] = i;
	lru_push(t, i);
	if (t->users != NULL)
		memset(&t->users[(size_t)i * t->ndistinct], 0, t->ndistinct * sizeof(*t->users));
	return e;
}

/* Counts one event in a 60-bucket window. A bucket is cleared when the
 * window moves past it, so the sum only holds events younger than the
 * window. alerts_feed() keeps each key's time monotonic, so the newest
 * bucket never moves back. */
static void detect_count(struct alerts *a, enum alert_kind k, struct alerts_entry *e,
    bool fresh, const struct alert_input *in, uint64_t now_ms, struct alerts_hit *hit)
{
	const struct alert_rule *r = &a->cfg.rules[k];
	struct alerts_window *w = &e->u.win;
	uint64_t width = window_ms(r) / ALERTS_BUCKETS, b, step;
	uint32_t *slot;

	(void)in;
	if (width == 0)
		width = 1;
	b = now_ms / width;
	if (fresh) {
		w->head = b;
	} else if (b > w->head) {
		if (b - w->head >= ALERTS_BUCKETS) {
			memset(w->count, 0, sizeof(w->count));
			w->sum = 0;
		} else {
			for (step = w->head + 1; step <= b; step++) {
				w->sum -= w->count[step % ALERTS_BUCKETS];
				w->count[step % ALERTS_BUCKETS] = 0;
			}
		}
		w->head = b;
	}
	slot = &w->count[w->head % ALERTS_BUCKETS];
	if (*slot < UINT32_MAX) {
		(*slot)++;
		w->sum++;
	}
	hit->over = w->sum >= r->threshold;
	hit->value = w->sum;
	hit->limit = r->threshold;
}

/* Counts the distinct users that failed from one source within the
 * window. Each user is remembered by hash with the time it last failed;
 * a new user takes an empty or expired place, else the one that failed
 * longest ago. The set holds as many users as the threshold, which is
 * all it takes to see the threshold crossed. */
static void detect_distinct(struct alerts *a, enum alert_kind k, struct alerts_entry *e,
    bool fresh, const struct alert_input *in, uint64_t now_ms, struct alerts_hit *hit)
{
	const struct alert_rule *r = &a->cfg.rules[k];
	struct alerts_table *t = &a->t[k];
	struct alerts_user *set = &t->users[(size_t)(e - t->entries) * t->ndistinct];
	struct alerts_user *slot = NULL;
	uint64_t h = hash_str(in->user), win = window_ms(r), n = 0;
	size_t i;

	(void)fresh;
	for (i = 0; i < t->ndistinct; i++) {
		if (set[i].used && set[i].hash == h) {
			slot = &set[i];
			break;
		}
	}
	for (i = 0; slot == NULL && i < t->ndistinct; i++) {
		if (!set[i].used || now_ms - set[i].seen_ms >= win)
			slot = &set[i];
	}
	if (slot == NULL) {
		slot = &set[0];
		for (i = 1; i < t->ndistinct; i++) {
			if (set[i].seen_ms < slot->seen_ms)
				slot = &set[i];
		}
	}
	slot->used = true;
	slot->hash = h;
	slot->seen_ms = now_ms;
	for (i = 0; i < t->ndistinct; i++) {
		if (set[i].used && now_ms - set[i].seen_ms < win)
			n++;
	}
	hit->limit = (uint32_t)t->ndistinct;
	hit->over = n >= hit->limit;
	hit->value = n;
}

static void spike_reset(struct alerts_entry *e, const struct alert_input *in, uint64_t now_ms)
{
	memset(&e->u.spike, 0, sizeof(e->u.spike));
	e->fired = false;
	e->u.spike.first_ms = e->u.spike.last_ms = now_ms;
	e->u.spike.last_bytes = in->bytes;
}

/* Compares the rate since the last sample with the cap, and with the
 * allocation's own moving average once it has enough history. The
 * average is exponential with the rule's window as its time constant,
 * weighted by the sample's length, so late or early samples count for
 * the time they cover. */
static void detect_spike(struct alerts *a, enum alert_kind k, struct alerts_entry *e,
    bool fresh, const struct alert_input *in, uint64_t now_ms, struct alerts_hit *hit)
{
	const struct alert_rule *r = &a->cfg.rules[k];
	struct alerts_spike *s = &e->u.spike;
	uint64_t dt, delta, rate;
	double limit, tau_ms = (double)window_ms(r);

	/* A total that went down is a new allocation behind the same key. */
	if (fresh || in->bytes < s->last_bytes) {
		spike_reset(e, in, now_ms);
		return;
	}
	/* This also keeps dt, the divisor below, away from 0. */
	if (now_ms - s->last_ms < ALERTS_SPIKE_MIN_DT_MS)
		return;
	dt = now_ms - s->last_ms;
	delta = in->bytes - s->last_bytes;
	rate = delta <= UINT64_MAX / 1000 ? delta * 1000 / dt : delta / dt * 1000;
	if (rate > r->threshold) {
		hit->over = true;
		hit->limit = r->threshold;
	} else if (a->cfg.spike_factor != 0 && s->have_avg &&
	    s->last_ms - s->first_ms >= ALERTS_SPIKE_HISTORY_MS &&
	    rate > ALERTS_SPIKE_MIN_BPS &&
	    (double)rate > (double)a->cfg.spike_factor * s->avg_bps) {
		/* Report the limit actually crossed; it is below the rate,
		 * which is at most the cap, so it fits. */
		limit = (double)a->cfg.spike_factor * s->avg_bps;
		hit->over = true;
		hit->limit = limit > ALERTS_SPIKE_MIN_BPS ? (uint32_t)limit : ALERTS_SPIKE_MIN_BPS;
	}
	hit->value = rate;
	if (!s->have_avg) {
		s->avg_bps = (double)rate;
		s->have_avg = true;
	} else {
		s->avg_bps += ((double)rate - s->avg_bps) * (double)dt / (tau_ms + (double)dt);
	}
	s->last_ms = now_ms;
	s->last_bytes = in->bytes;
}

static const char *route_key(const struct alert_input *in, enum alerts_key_field f)
{
	switch (f) {
	case KEY_USER:
		return in->user;
	case KEY_SOURCE:
		return in->source;
	case KEY_ALLOC:
		return in->alloc_key;
	}
	return NULL;
}

static void alert_fill(struct alert *out, const struct alert_rule *r, enum alert_kind k,
    const char *key, const struct alert_input *in, const struct alerts_hit *hit)
{
	memset(out, 0, sizeof(*out));
	out->kind = k;
	out->response = r->response;
	out->block_s = r->block_s;
	copy_str(out->key, sizeof(out->key), key);
	copy_str(out->user, sizeof(out->user), in->user);
	copy_str(out->source, sizeof(out->source), in->source);
	copy_str(out->call, sizeof(out->call), in->call);
	out->value = hit->value;
	out->threshold = hit->limit;
}

/* An alert that does not fit in out is not marked as fired, so it fires on
 * the key's next event instead of being lost for a whole window; the
 * return value is therefore both what was written and what fired. */
size_t alerts_feed(struct alerts *a, const struct alert_input *in, uint64_t now_ms,
    struct alert *out, size_t max)
{
	const struct alerts_route *rt;
	const struct alert_rule *r;
	struct alerts_table *t;
	struct alerts_entry *e;
	struct alerts_hit hit;
	const char *key;
	uint64_t now;
	size_t i, n = 0;
	bool fresh;

	if (a == NULL || in == NULL)
		return 0;
	if (out == NULL)
		max = 0;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		rt = &routes[i];
		t = &a->t[rt->kind];
		r = &a->cfg.rules[rt->kind];
		key = route_key(in, rt->key);
		if (rt->in != in->kind || t->entries == NULL || key == NULL || *key == '\0')
			continue;
		/* Distinct users cannot be counted without a user. */
		if (rt->kind == ALERT_CREDENTIAL_STUFFING && (in->user == NULL || *in->user == '\0'))
			continue;
		e = entry_get(t, key, &fresh);
		/* Time never runs backwards for a key: a clock that steps back
		 * is taken as no time passing, so windows neither reopen nor
		 * revive old events. */
		now = !fresh && now_ms < e->seen_ms ? e->seen_ms : now_ms;
		e->seen_ms = now;
		memset(&hit, 0, sizeof(hit));
		detectors[rt->kind].detect(a, rt->kind, e, fresh, in, now, &hit);
		if (!hit.over || n >= max)
			continue;
		if (e->fired && now - e->fired_ms < window_ms(r))
			continue;
		alert_fill(&out[n++], r, rt->kind, key, in, &hit);
		e->fired = true;
		e->fired_ms = now;
	}
	return n;
}

void alerts_forget_alloc(struct alerts *a, const char *alloc_key)
{
	struct alerts_table *t;
	uint32_t i;

	if (a == NULL || alloc_key == NULL)
		return;
	t = &a->t[ALERT_TRAFFIC_SPIKE];
	if (t->entries == NULL)
		return;
	i = entry_find(t, alloc_key, hash_str(alloc_key));
	if (i != ALERTS_NIL)
		entry_remove(t, i);
}
