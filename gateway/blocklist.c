/* Blocked sources (see blocklist.h): a fixed array searched through a
 * small hash index; lookups run for every TURN message from a client, so
 * an empty list costs one branch. */
#include "gateway/blocklist.h"

#include "common/fnv.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKETS 1024

struct entry {
	char ip[INET6_ADDRSTRLEN];
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

static size_t bucket(const char *ip)
{
	return fnv1a_str(ip) % BUCKETS;
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

static int find(struct blocklist *b, const char *ip)
{
	int i;

	for (i = b->heads[bucket(ip)]; i >= 0; i = b->e[i].next)
		if (strcmp(b->e[i].ip, ip) == 0)
			return i;
	return -1;
}

static void unlink_entry(struct blocklist *b, int idx)
{
	int *pp = &b->heads[bucket(b->e[idx].ip)];

	while (*pp != idx)
		pp = &b->e[*pp].next;
	*pp = b->e[idx].next;
	memset(&b->e[idx], 0, sizeof(b->e[idx]));
	b->live--;
}

int blocklist_add(struct blocklist *b, const char *ip, uint64_t until_ms, const char *why)
{
	int i = find(b, ip), slot = -1;
	size_t k, h;

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
	snprintf(b->e[slot].ip, sizeof(b->e[slot].ip), "%s", ip);
	snprintf(b->e[slot].why, sizeof(b->e[slot].why), "%s", why != NULL ? why : "");
	b->e[slot].until_ms = until_ms;
	b->e[slot].used = true;
	h = bucket(ip);
	b->e[slot].next = b->heads[h];
	b->heads[h] = slot;
	b->live++;
	return 0;
}

int blocklist_del(struct blocklist *b, const char *ip)
{
	int i = find(b, ip);

	if (i < 0)
		return -1;
	unlink_entry(b, i);
	return 0;
}

bool blocklist_has(struct blocklist *b, const char *ip, uint64_t now_ms)
{
	int i;

	if (b == NULL || b->live == 0)
		return false;
	i = find(b, ip);
	if (i < 0)
		return false;
	if (b->e[i].until_ms <= now_ms) {
		unlink_entry(b, i);
		return false;
	}
	return true;
}

bool blocklist_has_addr(struct blocklist *b, const struct sockaddr *sa, uint64_t now_ms)
{
	char ip[INET6_ADDRSTRLEN];

	if (b == NULL || b->live == 0)
		return false;
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, sizeof(ip));
	else
		return false;
	return blocklist_has(b, ip, now_ms);
}

void blocklist_each(struct blocklist *b, uint64_t now_ms,
    void (*fn)(void *ctx, const char *ip, uint64_t until_ms, const char *why), void *ctx)
{
	size_t k;

	for (k = 0; k < BLOCKLIST_MAX; k++)
		if (b->e[k].used && b->e[k].until_ms > now_ms)
			fn(ctx, b->e[k].ip, b->e[k].until_ms, b->e[k].why);
}
