/* What the relay and signaling share, behind one interface so that a
 * shared store (Redis) can serve several nodes later: which relayed
 * transport address belongs to which user and call, and which calls have
 * ended (their credentials are revoked). The in-memory implementation is
 * the embedded default. Single-threaded: the daemon's one event loop
 * calls it. */
#ifndef GH_GATEWAY_REGISTRY_H
#define GH_GATEWAY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "signaling/sdp_fingerprint.h"

#define REGISTRY_ID_MAX 64

struct registry_alloc {
	char user[REGISTRY_ID_MAX];
	char call[REGISTRY_ID_MAX]; /* empty for static users */
};

struct registry;

/* Returns owned: free with registry_free(). NULL on ENOMEM. */
struct registry *registry_memory_new(void);
void registry_free(struct registry *r);

/* A relayed transport address (as clients name it: the advertised
 * address) now belongs to user in call. 0, or -1 on ENOMEM. */
int registry_alloc_add(struct registry *r, const struct sockaddr *relayed,
    const char *user, const char *call);
void registry_alloc_del(struct registry *r, const struct sockaddr *relayed);
/* The owner, or NULL when unknown. Valid until the registry next changes;
 * a pointer rather than a copy, because the relay asks for every datagram
 * between two allocations. */
const struct registry_alloc *registry_alloc_find(const struct registry *r,
    const struct sockaddr *relayed);

/* A call ended: its credentials are refused until until_s (their
 * expiry), after which the entry is forgotten. Its fingerprints go now. */
int registry_call_end(struct registry *r, const char *call, uint64_t until_s);
bool registry_call_ended(struct registry *r, const char *call, uint64_t now_s);

/* The DTLS certificate fingerprints that user declared in call's SDP,
 * replacing any earlier ones (at most SDP_FP_MAX kept). 0, or -1 on
 * ENOMEM. */
int registry_call_fps_set(struct registry *r, const char *call, const char *user,
    const struct sdp_fingerprint *fps, size_t n);
/* How many are known (0: no SDP of user's in call yet); *fps points at
 * them until the registry next changes. */
size_t registry_call_fps_get(const struct registry *r, const char *call, const char *user,
    const struct sdp_fingerprint **fps);

size_t registry_alloc_count(const struct registry *r);

#endif
