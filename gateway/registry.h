/* What the relay and signaling share, behind one interface so that a
 * shared store (Redis) can serve several nodes later: which relayed
 * transport address belongs to which user and call, and which calls are
 * live (only their credentials are accepted). The in-memory
 * implementation is the embedded default. Not locked: its callers hold
 * the daemon's state lock (state_lock.h). */
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

/* Calls are known as live, not as ended, so that the memory kept is
 * bounded by the calls in progress rather than by the calls of the last
 * 12 hours, and so that a call this registry does not know (ended, or
 * from before a restart) fails closed.
 *
 * call is live from now on: credentials minted for it are accepted until
 * registry_call_end() or until_s (their expiry), whichever is first.
 * Starting a live call again keeps the later until_s. now_s lets each
 * start free a few entries whose until_s has passed (calls that never
 * reached registry_call_end()). 0, or -1 on ENOMEM. */
int registry_call_start(struct registry *r, const char *call, uint64_t until_s,
    uint64_t now_s);
/* The call is over: it is forgotten, with its fingerprints, and its
 * credentials are never accepted again. A call not known is fine. */
void registry_call_end(struct registry *r, const char *call);
/* Started, not ended, and until_s not passed. For the TURN
 * authentication of call credentials, not for relayed datagrams. */
bool registry_call_live(const struct registry *r, const char *call, uint64_t now_s);
/* How many calls are live (or expired, and not freed yet). */
size_t registry_call_count(const struct registry *r);

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
