/* One place where everything that happens in the gateway goes: each
 * event from the signaling hub and the TURN server becomes a log line and
 * an audit record (docs/audit.md), with stable field names. */
#ifndef GH_GATEWAY_EVENTS_H
#define GH_GATEWAY_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "signaling/hub.h"
#include "turn/server.h"

struct audit;
struct events;

/* audit is borrowed. Returns owned: free with events_free(). */
struct events *events_new(struct audit *audit);
void events_free(struct events *ev);

void events_hub(struct events *ev, const struct hub_event *e);
void events_turn(struct events *ev, enum turn_event kind, const struct turn_client *c,
    const struct turn_identity *id, const struct sockaddr *peer);
void events_alloc(struct events *ev, const struct turn_alloc *a, bool created,
    const char *reason);

#endif
