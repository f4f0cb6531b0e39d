/* Blocked sources (see blocklist.h): a fixed array searched through a
 * small hash index of source keys; lookups run for every TURN message
 * from a client, so an empty list costs one branch, and a lookup by
 * address formats nothing. */
#include "gateway/blocklist.h"

#include "common/fnv.h"
#include "common/source_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

struct entry {
	uint8_t key[SOURCE_KEY_LEN];
	char name[SOURCE_NAME_MAX];  /* source_key_name() of key */
	char why[64];
	uint64_t until_ms;
	int next;                 /* index chain, -1 ends */
	bool used;
};

struct blocklist {
	struct entry e[BLOCKLIST_MAX];
	int heads[BUCKETS];
	size_t live;              /* used entries (some may have expired) */
};

static size_t bucket(const uint8_t key[SOURCE_KEY_LEN])
{
	return fnv1a(FNV_OFFSET, key, SOURCE_KEY_LEN) % BUCKETS;
}

struct blocklist *blocklist_new(void)
{
	struct blocklist *b = calloc(1, sizeof(*b));
	size_t i;

	if (b != NULL)
		for (i = 0; i < BUCKETS; i++)
			b->heads[i] = -1;
	return b;
}

void blocklist_free(struct blocklist *b)
{
	free(b);
}

static int find(struct blocklist *b, const uint8_t key[SOURCE_KEY_LEN])
{
	int i;

	for (i = b->heads[bucket(key)]; i >= 0; i = b->e[i].next)
		if (memcmp(b->e[i].key, key, SOURCE_KEY_LEN) == 0)
			return i;
	return -1;
}

static void unlink_entry(struct blocklist *b, int idx)
{
	int *pp = &b->heads[bucket(b->e[idx].key)];

	while (*pp != idx)
		pp = &b->e[*pp].next;
	*pp = b->e[idx].next;
	memset(&b->e[idx], 0, sizeof(b->e[idx]));
	b->live--;
}

int blocklist_add(struct blocklist *b, const char *source, uint64_t until_ms, const char *why)
{
	uint8_t key[SOURCE_KEY_LEN];
	int i, slot = -1;
	size_t k, h;

	if (source_key_parse(source, key) != 0)
		return -1;
	i = find(b, key);
	if (i >= 0) {
		if (until_ms > b->e[i].until_ms)
			b->e[i].until_ms = until_ms;
		return 0;
	}
	for (k = 0; k < BLOCKLIST_MAX && slot < 0; k++)
		if (!b->e[k].used)
			slot = (int)k;
	if (slot < 0) {
		/* Full: reuse the block that ends first. */
		slot = 0;
		for (k = 1; k < BLOCKLIST_MAX; k++)
			if (b->e[k].until_ms < b->e[slot].until_ms)
				slot = (int)k;
		unlink_entry(b, slot);
	}
	memcpy(b->e[slot].key, key, SOURCE_KEY_LEN);
	source_key_name(key, b->e[slot].name, sizeof(b->e[slot].name));
	snprintf(b->e[slot].why, sizeof(b->e[slot].why), "%s", why != NULL ? why : "");
	b->e[slot].until_ms = until_ms;
	b->e[slot].used = true;
	h = bucket(key);
	b->e[slot].next = b->heads[h];
	b->heads[h] = slot;
	b->live++;
	return 0;
}

int blocklist_del(struct blocklist *b, const char *source)
{
	uint8_t key[SOURCE_KEY_LEN];
	int i;

	if (source_key_parse(source, key) != 0)
		return -1;
	i = find(b, key);
	if (i < 0)
		return -1;
	unlink_entry(b, i);
	return 0;
}

static bool has_key(struct blocklist *b, const uint8_t key[SOURCE_KEY_LEN], uint64_t now_ms)
{
	int i = find(b, key);

	if (i < 0)
		return false;
	if (b->e[i].until_ms <= now_ms) {
		unlink_entry(b, i);
		return false;
	}
	return true;
}

bool blocklist_has(struct blocklist *b, const char *addr, uint64_t now_ms)
{
	uint8_t key[SOURCE_KEY_LEN];

	if (b == NULL || b->live == 0 || source_key_parse(addr, key) != 0)
		return false;
	return has_key(b, key, now_ms);
}

bool blocklist_has_addr(struct blocklist *b, const struct sockaddr *sa, uint64_t now_ms)
{
	uint8_t key[SOURCE_KEY_LEN];

	if (b == NULL || b->live == 0)
		return false;
	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return false;
	source_key(sa, key);
	return has_key(b, key, now_ms);
}

void blocklist_each(struct blocklist *b, uint64_t now_ms, uint64_t wall_ms,
    void (*fn)(void *ctx, const char *source, uint64_t until_ms, const char *why), void *ctx)
{
	size_t k;

	for (k = 0; k < BLOCKLIST_MAX; k++)
		if (b->e[k].used && b->e[k].until_ms > now_ms)
			fn(ctx, b->e[k].name, wall_ms + (b->e[k].until_ms - now_ms), b->e[k].why);
}
