/* TURN allocation state: two chained hash indexes (client 5-tuple and
 * relayed address) plus a list of all allocations for expiry sweeps.
 * Permissions and channels live in small per-allocation arrays whose size
 * is the configured per-allocation limit, so a lookup is a bounded scan
 * and nothing on the packet path allocates memory. */
#include "turn/alloc.h"

#include "common/fnv.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "turn/peer_policy.h"

#define ALLOC_MIN_BUCKETS 256

struct alloc_table {
	struct turn_alloc **by_tuple;   /* owned array of nbuckets heads */
	struct turn_alloc **by_relayed; /* owned */
	size_t nbuckets;                /* power of two */
	size_t count;
	struct turn_alloc *all;         /* head of the list of all */
};

/* FNV-1a over the bytes that identify an address. */
uint64_t sockaddr_hash(const struct sockaddr *sa, bool with_port)
{
	uint64_t h = FNV_OFFSET;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
		h = fnv1a(h, &s->sin_addr, 4);
		if (with_port)
			h = fnv1a(h, &s->sin_port, 2);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
		h = fnv1a(h, &s->sin6_addr, 16);
		if (with_port)
			h = fnv1a(h, &s->sin6_port, 2);
	}
	return h;
}

bool sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;
		return x->sin_port == y->sin_port &&
		    x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
		return x->sin6_port == y->sin6_port &&
		    memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
	}
	return false;
}

static bool client_equal(const struct turn_client *a, const struct turn_client *b)
{
	if (a->transport != b->transport)
		return false;
	/* A stream connection is its own 5-tuple; the id is unique per
	 * accepted connection and never reused while it lives. */
	if (a->transport != TURN_TP_UDP)
		return a->conn_id == b->conn_id;
	return sockaddr_equal((const struct sockaddr *)&a->remote,
	    (const struct sockaddr *)&b->remote) &&
	    sockaddr_equal((const struct sockaddr *)&a->local,
	    (const struct sockaddr *)&b->local);
}

static uint64_t client_hash(const struct turn_client *c)
{
	uint64_t h;

	if (c->transport != TURN_TP_UDP)
		return fnv1a(FNV_OFFSET, &c->conn_id, sizeof(c->conn_id));
	h = sockaddr_hash((const struct sockaddr *)&c->remote, true);
	return h ^ (sockaddr_hash((const struct sockaddr *)&c->local, true) * 31);
}

struct alloc_table *alloc_table_new(void)
{
	struct alloc_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return NULL;
	t->nbuckets = ALLOC_MIN_BUCKETS;
	t->by_tuple = calloc(t->nbuckets, sizeof(*t->by_tuple));
	t->by_relayed = calloc(t->nbuckets, sizeof(*t->by_relayed));
	if (t->by_tuple == NULL || t->by_relayed == NULL) {
		alloc_table_free(t);
		return NULL;
	}
	return t;
}

static void alloc_free_one(struct turn_alloc *a)
{
	OPENSSL_cleanse(a->key, sizeof(a->key));
	free(a->perms);
	free(a->channels);
	free(a);
}

void alloc_table_free(struct alloc_table *t)
{
	struct turn_alloc *a, *next;

	if (t == NULL)
		return;
	for (a = t->all; a != NULL; a = next) {
		next = a->next_all;
		alloc_free_one(a);
	}
	free(t->by_tuple);
	free(t->by_relayed);
	free(t);
}

static bool has_relayed(const struct turn_alloc *a)
{
	return a->relayed.ss_family != 0;
}

/* Doubles the bucket arrays when the table is fuller than one entry per
 * bucket, keeping chains short. On ENOMEM the old arrays stay. */
static void grow(struct alloc_table *t)
{
	size_t n = t->nbuckets * 2, i;
	struct turn_alloc **bt, **br, *a;

	bt = calloc(n, sizeof(*bt));
	br = calloc(n, sizeof(*br));
	if (bt == NULL || br == NULL) {
		free(bt);
		free(br);
		return;
	}
	for (a = t->all; a != NULL; a = a->next_all) {
		i = client_hash(&a->client) & (n - 1);
		a->next_tuple = bt[i];
		bt[i] = a;
		if (has_relayed(a)) {
			i = sockaddr_hash((const struct sockaddr *)&a->relayed, true) & (n - 1);
			a->next_relayed = br[i];
			br[i] = a;
		}
	}
	free(t->by_tuple);
	free(t->by_relayed);
	t->by_tuple = bt;
	t->by_relayed = br;
	t->nbuckets = n;
}

struct turn_alloc *alloc_table_add(struct alloc_table *t,
    const struct turn_client *c, size_t max_perms, size_t max_channels)
{
	struct turn_alloc *a;
	size_t i;

	if (t->count >= t->nbuckets)
		grow(t);
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return NULL;
	a->perms_cap = max_perms;
	a->channels_cap = max_channels;
	a->client = *c;
	i = client_hash(c) & (t->nbuckets - 1);
	a->next_tuple = t->by_tuple[i];
	t->by_tuple[i] = a;
	a->next_all = t->all;
	if (t->all != NULL)
		t->all->prev_all = a;
	t->all = a;
	t->count++;
	return a;
}

void alloc_table_set_relayed(struct alloc_table *t, struct turn_alloc *a,
    const struct sockaddr *relayed)
{
	size_t i, len = relayed->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);

	memcpy(&a->relayed, relayed, len);
	i = sockaddr_hash(relayed, true) & (t->nbuckets - 1);
	a->next_relayed = t->by_relayed[i];
	t->by_relayed[i] = a;
}

static void unlink_chain(struct turn_alloc **head, struct turn_alloc *a,
    size_t link_offset)
{
	struct turn_alloc **pp = head;

	while (*pp != NULL) {
		if (*pp == a) {
			*pp = *(struct turn_alloc **)((char *)a + link_offset);
			return;
		}
		pp = (struct turn_alloc **)((char *)*pp + link_offset);
	}
}

void alloc_table_remove(struct alloc_table *t, struct turn_alloc *a)
{
	size_t i;

	i = client_hash(&a->client) & (t->nbuckets - 1);
	unlink_chain(&t->by_tuple[i], a, offsetof(struct turn_alloc, next_tuple));
	if (has_relayed(a)) {
		i = sockaddr_hash((const struct sockaddr *)&a->relayed, true) &
		    (t->nbuckets - 1);
		unlink_chain(&t->by_relayed[i], a,
		    offsetof(struct turn_alloc, next_relayed));
	}
	if (a->prev_all != NULL)
		a->prev_all->next_all = a->next_all;
	else
		t->all = a->next_all;
	if (a->next_all != NULL)
		a->next_all->prev_all = a->prev_all;
	t->count--;
	alloc_free_one(a);
}

struct turn_alloc *alloc_table_find(const struct alloc_table *t,
    const struct turn_client *c)
{
	struct turn_alloc *a;

	for (a = t->by_tuple[client_hash(c) & (t->nbuckets - 1)]; a != NULL;
	    a = a->next_tuple)
		if (client_equal(&a->client, c))
			return a;
	return NULL;
}

struct turn_alloc *alloc_table_find_relayed(const struct alloc_table *t,
    const struct sockaddr *relayed)
{
	struct turn_alloc *a;
	size_t i = sockaddr_hash(relayed, true) & (t->nbuckets - 1);

	for (a = t->by_relayed[i]; a != NULL; a = a->next_relayed)
		if (sockaddr_equal((const struct sockaddr *)&a->relayed, relayed))
			return a;
	return NULL;
}

size_t alloc_table_count(const struct alloc_table *t)
{
	return t->count;
}

size_t alloc_table_count_user(const struct alloc_table *t, const char *user)
{
	const struct turn_alloc *a;
	size_t n = 0;

	/* Linear, but only on Allocate, never per packet. */
	for (a = t->all; a != NULL; a = a->next_all)
		if (strcmp(a->id.user, user) == 0)
			n++;
	return n;
}

struct turn_alloc *alloc_table_first(const struct alloc_table *t)
{
	return t->all;
}

struct turn_perm *alloc_perm_find(struct turn_alloc *a, const struct sockaddr *peer,
    uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < a->nperms; i++)
		if (a->perms[i].expires_ms > now_ms &&
		    peer_same_ip((const struct sockaddr *)&a->perms[i].ip, peer))
			return &a->perms[i];
	return NULL;
}

static void copy_sockaddr(union turn_peer_addr *dst, const struct sockaddr *src)
{
	memset(dst, 0, sizeof(*dst));
	memcpy(dst, src, src->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
}

/* The new room for an array that must hold `need` of at most `limit`
 * entries: doubling from 2, so a call's one or two peers fit the first
 * allocation. 0 when need exceeds the limit. */
static size_t room_for(size_t room, size_t need, size_t limit)
{
	size_t want = room > 0 ? room * 2 : 2;

	if (need > limit)
		return 0;
	if (want < need)
		want = need;
	return want < limit ? want : limit;
}

int alloc_perm_reserve(struct turn_alloc *a, size_t n)
{
	size_t room;
	struct turn_perm *p;

	if (a->nperms + n <= a->perms_room)
		return 0;
	room = room_for(a->perms_room, a->nperms + n, a->perms_cap);
	if (room == 0 || (p = realloc(a->perms, room * sizeof(*p))) == NULL)
		return -1;
	a->perms = p;
	a->perms_room = room;
	return 0;
}

int alloc_channel_reserve(struct turn_alloc *a, size_t n)
{
	size_t room;
	struct turn_channel *ch;

	if (a->nchannels + n <= a->channels_room)
		return 0;
	room = room_for(a->channels_room, a->nchannels + n, a->channels_cap);
	if (room == 0 || (ch = realloc(a->channels, room * sizeof(*ch))) == NULL)
		return -1;
	a->channels = ch;
	a->channels_room = room;
	return 0;
}

int alloc_perm_set(struct turn_alloc *a, const struct sockaddr *peer, bool exact,
    uint64_t expires_ms)
{
	size_t i;

	for (i = 0; i < a->nperms; i++) {
		if (peer_same_ip((const struct sockaddr *)&a->perms[i].ip, peer)) {
			a->perms[i].expires_ms = expires_ms;
			/* Once an IP needed the exact check it keeps needing it. */
			a->perms[i].exact = a->perms[i].exact || exact;
			return 0;
		}
	}
	if (alloc_perm_reserve(a, 1) != 0)
		return -1;
	copy_sockaddr(&a->perms[a->nperms].ip, peer);
	a->perms[a->nperms].expires_ms = expires_ms;
	a->perms[a->nperms].exact = exact;
	a->nperms++;
	return 0;
}

struct turn_channel *alloc_channel_by_number(struct turn_alloc *a, uint16_t number,
    uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < a->nchannels; i++)
		if (a->channels[i].number == number && a->channels[i].expires_ms > now_ms)
			return &a->channels[i];
	return NULL;
}

struct turn_channel *alloc_channel_by_peer(struct turn_alloc *a,
    const struct sockaddr *peer, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < a->nchannels; i++)
		if (a->channels[i].expires_ms > now_ms &&
		    sockaddr_equal((const struct sockaddr *)&a->channels[i].peer, peer))
			return &a->channels[i];
	return NULL;
}

int alloc_channel_set(struct turn_alloc *a, uint16_t number,
    const struct sockaddr *peer, uint64_t expires_ms)
{
	size_t i;

	for (i = 0; i < a->nchannels; i++) {
		if (a->channels[i].number == number) {
			copy_sockaddr(&a->channels[i].peer, peer);
			a->channels[i].expires_ms = expires_ms;
			return 0;
		}
	}
	if (alloc_channel_reserve(a, 1) != 0)
		return -1;
	a->channels[a->nchannels].number = number;
	copy_sockaddr(&a->channels[a->nchannels].peer, peer);
	a->channels[a->nchannels].expires_ms = expires_ms;
	a->nchannels++;
	return 0;
}

void alloc_expire_children(struct turn_alloc *a, uint64_t now_ms)
{
	size_t i, j;

	for (i = j = 0; i < a->nperms; i++)
		if (a->perms[i].expires_ms > now_ms)
			a->perms[j++] = a->perms[i];
	a->nperms = j;
	/* RFC 8656 §12.2: once expired, the number and the peer are free to
	 * bind again (the 5-minute wait is the client's duty). */
	for (i = j = 0; i < a->nchannels; i++)
		if (a->channels[i].expires_ms > now_ms)
			a->channels[j++] = a->channels[i];
	a->nchannels = j;
}
