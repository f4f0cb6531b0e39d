/* The in-memory registry: three chained hash tables (relayed address ->
 * allocation owner, live call id -> credential expiry, call id and user
 * -> signaled certificate fingerprints).
 *
 * Fixed bucket counts suffice: every key is one the daemon made (relayed
 * addresses from its own port range, call ids of 128 random bits), so no
 * client can choose keys that share a chain, and the live calls are
 * bounded by the hub (HUB_MAX_CALLS_PER_USER for each logged-in user). */
#include "gateway/registry.h"

#include "common/fnv.h"
#include "signaling/sdp_fingerprint.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REGISTRY_BUCKETS 4096

struct alloc_entry {
	struct sockaddr_storage relayed;
	struct registry_alloc owner;
	struct alloc_entry *next;
};

struct call_entry {
	char call[REGISTRY_ID_MAX];
	uint64_t until_s;
	struct call_entry *next;
};

struct fp_entry {
	char call[REGISTRY_ID_MAX];
	char user[REGISTRY_ID_MAX];
	struct sdp_fingerprint fps[SDP_FP_MAX];
	size_t n;
	struct fp_entry *next;
};

struct registry {
	struct alloc_entry *allocs[REGISTRY_BUCKETS];
	struct call_entry *calls[REGISTRY_BUCKETS];
	struct fp_entry *fps[REGISTRY_BUCKETS];
	size_t nallocs, ncalls;
	size_t sweep_next;           /* the calls bucket the next start sweeps */
};

/* Address key bytes: family-specific IP and port, so v4 and v6 never
 * collide into equality. */
static size_t addr_key(const struct sockaddr *sa, uint8_t key[19])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		key[0] = 4;
		memcpy(key + 1, &s->sin_addr, 4);
		memcpy(key + 5, &s->sin_port, 2);
		return 7;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		key[0] = 6;
		memcpy(key + 1, &s->sin6_addr, 16);
		memcpy(key + 17, &s->sin6_port, 2);
		return 19;
	}
	return 0;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	uint8_t ka[19], kb[19];
	size_t la = addr_key(a, ka), lb = addr_key(b, kb);

	return la != 0 && la == lb && memcmp(ka, kb, la) == 0;
}

static size_t addr_bucket(const struct sockaddr *sa)
{
	uint8_t key[19];
	size_t n = addr_key(sa, key);

	return fnv1a(FNV_OFFSET, key, n) % REGISTRY_BUCKETS;
}

static size_t call_bucket(const char *call)
{
	return fnv1a_str(call) % REGISTRY_BUCKETS;
}

struct registry *registry_memory_new(void)
{
	return calloc(1, sizeof(struct registry));
}

void registry_free(struct registry *r)
{
	struct alloc_entry *a, *an;
	struct call_entry *e, *en;
	struct fp_entry *f, *fn;
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < REGISTRY_BUCKETS; i++) {
		for (a = r->allocs[i]; a != NULL; a = an) {
			an = a->next;
			free(a);
		}
		for (e = r->calls[i]; e != NULL; e = en) {
			en = e->next;
			free(e);
		}
		for (f = r->fps[i]; f != NULL; f = fn) {
			fn = f->next;
			free(f);
		}
	}
	free(r);
}

int registry_alloc_add(struct registry *r, const struct sockaddr *relayed,
    const char *user, const char *call)
{
	struct alloc_entry *a;
	size_t b = addr_bucket(relayed);

	registry_alloc_del(r, relayed);
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -1;
	memcpy(&a->relayed, relayed, relayed->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	snprintf(a->owner.user, sizeof(a->owner.user), "%s", user);
	snprintf(a->owner.call, sizeof(a->owner.call), "%s", call);
	a->next = r->allocs[b];
	r->allocs[b] = a;
	r->nallocs++;
	return 0;
}

void registry_alloc_del(struct registry *r, const struct sockaddr *relayed)
{
	struct alloc_entry **pp = &r->allocs[addr_bucket(relayed)], *a;

	for (; (a = *pp) != NULL; pp = &a->next) {
		if (same_addr((const struct sockaddr *)&a->relayed, relayed)) {
			*pp = a->next;
			free(a);
			r->nallocs--;
			return;
		}
	}
}

const struct registry_alloc *registry_alloc_find(const struct registry *r,
    const struct sockaddr *relayed)
{
	const struct alloc_entry *a;

	for (a = r->allocs[addr_bucket(relayed)]; a != NULL; a = a->next)
		if (same_addr((const struct sockaddr *)&a->relayed, relayed))
			return &a->owner;
	return NULL;
}

/* Frees every fingerprint entry of call. */
static void fps_drop(struct registry *r, const char *call, size_t b)
{
	struct fp_entry **pp, *f;

	for (pp = &r->fps[b]; (f = *pp) != NULL;) {
		if (strcmp(f->call, call) == 0) {
			*pp = f->next;
			free(f);
		} else {
			pp = &f->next;
		}
	}
}

/* Unlinks and frees *pp, a call entry. */
static void call_drop(struct registry *r, struct call_entry **pp)
{
	struct call_entry *e = *pp;

	*pp = e->next;
	free(e);
	r->ncalls--;
}

/* Frees the entries of one bucket whose credentials have expired: calls
 * that never reached registry_call_end() (the hub gave up on a call after
 * its credentials were minted). One bucket per start walks the whole
 * table once every REGISTRY_BUCKETS starts, at a cost of one short chain
 * each time, instead of all of it at once on the relay's path.
 * Fingerprints stay: only the hub's calls have them, and those all end. */
static void sweep_one_bucket(struct registry *r, uint64_t now_s)
{
	size_t b = r->sweep_next;
	struct call_entry **pp, *e;

	r->sweep_next = (b + 1) % REGISTRY_BUCKETS;
	for (pp = &r->calls[b]; (e = *pp) != NULL;) {
		if (e->until_s < now_s)
			call_drop(r, pp);
		else
			pp = &e->next;
	}
}

static struct call_entry **call_slot(struct registry *r, const char *call, size_t b)
{
	struct call_entry **pp, *e;

	for (pp = &r->calls[b]; (e = *pp) != NULL; pp = &e->next)
		if (strcmp(e->call, call) == 0)
			return pp;
	return NULL;
}

int registry_call_start(struct registry *r, const char *call, uint64_t until_s,
    uint64_t now_s)
{
	size_t b = call_bucket(call);
	struct call_entry **pp, *e;

	sweep_one_bucket(r, now_s);
	if ((pp = call_slot(r, call, b)) != NULL) {
		if ((*pp)->until_s < until_s)
			(*pp)->until_s = until_s;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return -1;
	snprintf(e->call, sizeof(e->call), "%s", call);
	e->until_s = until_s;
	e->next = r->calls[b];
	r->calls[b] = e;
	r->ncalls++;
	return 0;
}

void registry_call_end(struct registry *r, const char *call)
{
	size_t b = call_bucket(call);
	struct call_entry **pp = call_slot(r, call, b);

	if (pp != NULL)
		call_drop(r, pp);
	/* Nothing relays for an ended call: its fingerprints can go. */
	fps_drop(r, call, b);
}

bool registry_call_live(const struct registry *r, const char *call, uint64_t now_s)
{
	const struct call_entry *e;

	for (e = r->calls[call_bucket(call)]; e != NULL; e = e->next)
		if (strcmp(e->call, call) == 0)
			return e->until_s >= now_s;
	return false;
}

size_t registry_call_count(const struct registry *r)
{
	return r->ncalls;
}

static struct fp_entry *fp_find(const struct registry *r, const char *call, const char *user)
{
	struct fp_entry *f;

	for (f = r->fps[call_bucket(call)]; f != NULL; f = f->next)
		if (strcmp(f->call, call) == 0 && strcmp(f->user, user) == 0)
			return f;
	return NULL;
}

int registry_call_fps_set(struct registry *r, const char *call, const char *user,
    const struct sdp_fingerprint *fps, size_t n)
{
	struct fp_entry *f = fp_find(r, call, user);
	size_t b = call_bucket(call);

	if (f == NULL) {
		f = calloc(1, sizeof(*f));
		if (f == NULL)
			return -1;
		snprintf(f->call, sizeof(f->call), "%s", call);
		snprintf(f->user, sizeof(f->user), "%s", user);
		f->next = r->fps[b];
		r->fps[b] = f;
	}
	f->n = n < SDP_FP_MAX ? n : SDP_FP_MAX;
	memcpy(f->fps, fps, f->n * sizeof(*fps));
	return 0;
}

size_t registry_call_fps_get(const struct registry *r, const char *call, const char *user,
    const struct sdp_fingerprint **fps)
{
	const struct fp_entry *f = fp_find(r, call, user);

	*fps = f != NULL ? f->fps : NULL;
	return f != NULL ? f->n : 0;
}

size_t registry_alloc_count(const struct registry *r)
{
	return r->nallocs;
}
