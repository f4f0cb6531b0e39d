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

#endif
