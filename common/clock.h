/* The two clocks, in milliseconds, and the one safe way to subtract them.
 *
 * Wall time (CLOCK_REALTIME) is the UNIX time that every event, nonce,
 * credential and audit record is stamped with: other nodes must read the
 * same instant. It can step, backwards or forwards, whenever the clock is
 * set (NTP, an operator, a VM resumed), so it must not measure durations.
 *
 * Monotonic time (CLOCK_MONOTONIC) never steps: it measures every
 * duration and deadline that stays on this node (lifetimes, idle timers,
 * rate windows). Its zero is arbitrary (boot), so its values mean nothing
 * outside this process. */
#ifndef GH_COMMON_CLOCK_H
#define GH_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t clock_ms_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static inline uint64_t clock_wall_ms(void)
{
	return clock_ms_of(CLOCK_REALTIME);
}

/* The same clock at the kernel tick's resolution (1 to 10 ms, never
 * ahead of clock_wall_ms()), several times cheaper to read: for the
 * relay, which reads it on every wake-up. */
static inline uint64_t clock_wall_coarse_ms(void)
{
	return clock_ms_of(CLOCK_REALTIME_COARSE);
}

static inline uint64_t clock_mono_ms(void)
{
	return clock_ms_of(CLOCK_MONOTONIC);
}

/* Monotonic at the kernel tick's resolution, as cheap as the coarse wall
 * clock: the relay's time for durations. */
static inline uint64_t clock_mono_coarse_ms(void)
{
	return clock_ms_of(CLOCK_MONOTONIC_COARSE);
}

/* One instant on both clocks, read once and handed down to code that
 * reads no clock of its own (the TURN server, the signaling hub, the admin
 * API): mono_ms for every duration it keeps, wall_ms for the instants
 * that others read (audit stamps, expiry inside credentials, a token's
 * exp, TOTP steps). */
struct clock_pair {
	uint64_t mono_ms;
	uint64_t wall_ms;
};

static inline struct clock_pair clock_now(void)
{
	struct clock_pair t = { .mono_ms = clock_mono_ms(), .wall_ms = clock_wall_ms() };

	return t;
}

/* now - then, or 0 when then is later: never wraps to a huge duration,
 * whichever clock the two came from. */
static inline uint64_t clock_elapsed_ms(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

#endif
