/* Wall-clock milliseconds, the time every event, nonce, credential and
 * audit record is stamped with (other nodes must read the same UNIX
 * time). */
#ifndef GH_COMMON_CLOCK_H
#define GH_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The same clock at the kernel tick's resolution (1 to 10 ms, never
 * ahead of clock_wall_ms()), several times cheaper to read: for the
 * relay, which reads it on every wake-up and needs it only for expiry and
 * rates. */
static inline uint64_t clock_wall_coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif
