/* Sources blocked for a while by an automatic response (or an operator),
 * consulted by the signaling listener and the relay. A source is an IPv4
 * address or an IPv6 /64 (common/source_key.h): blocking one address of a
 * /64 blocks the /64, since its holder can pick any address inside it.
 * Bounded: at most BLOCKLIST_MAX entries; expired ones are reused first. */
#ifndef GH_GATEWAY_BLOCKLIST_H
#define GH_GATEWAY_BLOCKLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define BLOCKLIST_MAX 4096

struct blocklist;

struct blocklist *blocklist_new(void);
void blocklist_free(struct blocklist *b);

/* Every time here is on the monotonic clock (common/clock.h), so that a
 * step of the system clock neither lifts a block nor lengthens it.
 *
 * source is an address as text, or a source's name ("2001:db8::/64");
 * either blocks the source it is in, until until_ms. 0, or -1 when it is
 * neither. When the list is full of live blocks, the one that ends first
 * makes room. */
int blocklist_add(struct blocklist *b, const char *source, uint64_t until_ms, const char *why);
/* Lifts the block on the source that source (an address or a name) is
 * in: 0 when removed, -1 when not blocked or not a source. */
int blocklist_del(struct blocklist *b, const char *source);
bool blocklist_has(struct blocklist *b, const char *addr, uint64_t now_ms);
bool blocklist_has_addr(struct blocklist *b, const struct sockaddr *sa, uint64_t now_ms);
/* Each live block at now_ms, named as source_key_name() names its source;
 * fn's until_ms is the block's end as UNIX time, given that the wall
 * clock reads wall_ms at now_ms. */
void blocklist_each(struct blocklist *b, uint64_t now_ms, uint64_t wall_ms,
    void (*fn)(void *ctx, const char *source, uint64_t until_ms, const char *why), void *ctx);

#endif
