/* Per-source connection counts (see conn_limit.h): a hash of the sources
 * that hold at least one connection, one entry each, freed with their
 * last connection. Its size follows the connections, which the relay
 * bounds (RELAY_IO_MAX_CONNS), so a flood of sources cannot grow it
 * further. */
#include "gateway/conn_limit.h"

#include <stdlib.h>
#include <string.h>

#include "common/fnv.h"
#include "common/source_key.h"

#define CONN_LIMIT_BUCKETS 1024

struct source_count {
	uint8_t key[SOURCE_KEY_LEN];
	uint32_t n;
	struct source_count *next;
};

struct conn_limit {
	uint32_t per_source;
	struct source_count *buckets[CONN_LIMIT_BUCKETS];
};

struct conn_limit *conn_limit_new(uint32_t per_source)
{
	struct conn_limit *l = calloc(1, sizeof(*l));

	if (l != NULL)
		l->per_source = per_source;
	return l;
}

void conn_limit_free(struct conn_limit *l)
{
	struct source_count *e, *next;
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < CONN_LIMIT_BUCKETS; i++) {
		for (e = l->buckets[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(l);
}

/* src's key, its bucket, and its entry or NULL. */
static struct source_count *find(const struct conn_limit *l, const struct sockaddr *src,
    uint8_t key[SOURCE_KEY_LEN], size_t *bucket)
{
	struct source_count *e;

	source_key(src, key);
	*bucket = fnv1a(FNV_OFFSET, key, SOURCE_KEY_LEN) % CONN_LIMIT_BUCKETS;
	for (e = l->buckets[*bucket]; e != NULL; e = e->next)
		if (memcmp(e->key, key, SOURCE_KEY_LEN) == 0)
			return e;
	return NULL;
}

int conn_limit_take(struct conn_limit *l, const struct sockaddr *src)
{
	uint8_t key[SOURCE_KEY_LEN];
	struct source_count *e;
	size_t b;

	e = find(l, src, key, &b);
	if (e == NULL) {
		/* An entry exists only while it counts a connection. */
		if (l->per_source == 0)
			return -1;
		e = calloc(1, sizeof(*e));
		if (e == NULL)
			return -1;
		memcpy(e->key, key, SOURCE_KEY_LEN);
		e->next = l->buckets[b];
		l->buckets[b] = e;
	}
	if (e->n >= l->per_source)
		return -1;
	e->n++;
	return 0;
}

void conn_limit_release(struct conn_limit *l, const struct sockaddr *src)
{
	uint8_t key[SOURCE_KEY_LEN];
	struct source_count **pp, *e;
	size_t b;

	e = find(l, src, key, &b);
	if (e == NULL || --e->n > 0)
		return;
	for (pp = &l->buckets[b]; *pp != e; pp = &(*pp)->next)
		;
	*pp = e->next;
	free(e);
}

uint32_t conn_limit_count(const struct conn_limit *l, const struct sockaddr *src)
{
	uint8_t key[SOURCE_KEY_LEN];
	struct source_count *e;
	size_t b;

	e = find(l, src, key, &b);
	return e != NULL ? e->n : 0;
}
