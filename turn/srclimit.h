/* Counts authentication failures per source (an IPv4 address, or an IPv6
 * /64) in a fixed-size table, so password guessing from one address is
 * refused for a while without letting an attacker grow memory by
 * spraying addresses. Pure. */
#ifndef GH_TURN_SRCLIMIT_H
#define GH_TURN_SRCLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct srclimit;

/* Returns owned: free with srclimit_free(). max_failures within window_ms
 * make a source blocked for block_ms. NULL on ENOMEM. */
struct srclimit *srclimit_new(size_t slots, uint32_t max_failures,
    uint64_t window_ms, uint64_t block_ms);
void srclimit_free(struct srclimit *l);

/* now_ms is a monotonic time (the mono_ms of the server's struct
 * clock_pair): a step of the system clock must neither lift a block nor
 * start one early. */

bool srclimit_blocked(struct srclimit *l, const struct sockaddr *src, uint64_t now_ms);
void srclimit_fail(struct srclimit *l, const struct sockaddr *src, uint64_t now_ms);

#endif
