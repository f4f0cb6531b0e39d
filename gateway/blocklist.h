/* Source addresses blocked for a while by an automatic response (or an
 * operator), consulted by the signaling listener and the relay. Bounded:
 * at most BLOCKLIST_MAX entries; expired ones are reused first. */
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

/* ip is the textual address (as in the audit trail). 0, or -1 when full
 * of live blocks. */
int blocklist_add(struct blocklist *b, const char *ip, uint64_t until_ms, const char *why);
/* 0 when removed, -1 when not blocked. */
int blocklist_del(struct blocklist *b, const char *ip);
bool blocklist_has(struct blocklist *b, const char *ip, uint64_t now_ms);
bool blocklist_has_addr(struct blocklist *b, const struct sockaddr *sa, uint64_t now_ms);
void blocklist_each(struct blocklist *b, uint64_t now_ms,
    void (*fn)(void *ctx, const char *ip, uint64_t until_ms, const char *why), void *ctx);

#endif
