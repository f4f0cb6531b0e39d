/* Failure counting per source: an IPv4 address, or an IPv6 /64
 * (common/source_key.h), since a host that holds a /64 could otherwise
 * pick a fresh address for every few guesses. The table is a fixed array
 * probed linearly over a short window; when every probed slot is busy the
 * one whose window started longest ago is reused, so memory stays bounded
 * and a flood of new sources can only make us forget old, quiet ones. */
#include "turn/srclimit.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/fnv.h"
#include "common/source_key.h"

#define SRCLIMIT_PROBES 8

struct srclimit_slot {
	uint8_t key[SOURCE_KEY_LEN];
	bool used;
	uint32_t failures;
	uint64_t window_start_ms;
	uint64_t blocked_until_ms;
};

struct srclimit {
	struct srclimit_slot *slots; /* owned */
	size_t nslots;
	uint32_t max_failures;
	uint64_t window_ms, block_ms;
};

struct srclimit *srclimit_new(size_t slots, uint32_t max_failures,
    uint64_t window_ms, uint64_t block_ms)
{
	struct srclimit *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return NULL;
	l->slots = calloc(slots, sizeof(*l->slots));
	if (l->slots == NULL) {
		free(l);
		return NULL;
	}
	l->nslots = slots;
	l->max_failures = max_failures;
	l->window_ms = window_ms;
	l->block_ms = block_ms;
	return l;
}

void srclimit_free(struct srclimit *l)
{
	if (l == NULL)
		return;
	free(l->slots);
	free(l);
}

static bool slot_idle(const struct srclimit *l, const struct srclimit_slot *s,
    uint64_t now_ms)
{
	return !s->used || (now_ms >= s->blocked_until_ms &&
	    clock_elapsed_ms(now_ms, s->window_start_ms) > l->window_ms);
}

static struct srclimit_slot *lookup(struct srclimit *l, const struct sockaddr *src,
    bool create, uint64_t now_ms)
{
	uint8_t key[SOURCE_KEY_LEN];
	size_t start, i;
	struct srclimit_slot *s, *idle = NULL, *oldest = NULL;

	source_key(src, key);
	start = fnv1a(FNV_OFFSET, key, sizeof(key)) % l->nslots;
	for (i = 0; i < SRCLIMIT_PROBES && i < l->nslots; i++) {
		s = &l->slots[(start + i) % l->nslots];
		if (s->used && memcmp(s->key, key, sizeof(key)) == 0)
			return s;
		if (idle == NULL && slot_idle(l, s, now_ms))
			idle = s;
		if (oldest == NULL || s->window_start_ms < oldest->window_start_ms)
			oldest = s;
	}
	s = idle != NULL ? idle : oldest;
	if (!create || s == NULL)
		return NULL;
	memset(s, 0, sizeof(*s));
	memcpy(s->key, key, sizeof(key));
	s->used = true;
	s->window_start_ms = now_ms;
	return s;
}

bool srclimit_blocked(struct srclimit *l, const struct sockaddr *src, uint64_t now_ms)
{
	struct srclimit_slot *s = lookup(l, src, false, now_ms);

	return s != NULL && now_ms < s->blocked_until_ms;
}

void srclimit_fail(struct srclimit *l, const struct sockaddr *src, uint64_t now_ms)
{
	struct srclimit_slot *s = lookup(l, src, true, now_ms);

	if (s == NULL)
		return;
	if (clock_elapsed_ms(now_ms, s->window_start_ms) > l->window_ms) {
		s->window_start_ms = now_ms;
		s->failures = 0;
	}
	if (++s->failures >= l->max_failures)
		s->blocked_until_ms = now_ms + l->block_ms;
}
