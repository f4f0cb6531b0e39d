/* FNV-1a, the one hash for the in-memory indexes (allocations, registry,
 * sessions, blocks, detector keys). Not keyed: the tables that take
 * attacker-chosen keys bound their chains or their size instead. */
#ifndef GH_COMMON_FNV_H
#define GH_COMMON_FNV_H

#include <stddef.h>
#include <stdint.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL

static inline uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--) {
		h ^= *b++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static inline uint64_t fnv1a_str(const char *s)
{
	uint64_t h = FNV_OFFSET;

	while (*s != '\0') {
		h ^= (uint8_t)*s++;
		h *= 0x100000001b3ULL;
	}
	return h;
}

#endif
