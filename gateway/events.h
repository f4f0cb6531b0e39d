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
struct metrics;
struct alerts;
struct alert;
struct events;

/* Carries out an alert's automatic response; the daemon provides it. */
struct events_responder {
	void *ctx;
	void (*block_source)(void *ctx, const char *source, uint32_t seconds, const char *why);
	void (*lock_user)(void *ctx, const char *user, uint32_t seconds);
	void (*end_call)(void *ctx, const char *call);
	/* Optional: the alert as JSON text, for a webhook. */
	void (*notify)(void *ctx, const char *json, size_t len);
};

/* audit, metrics and alerts are borrowed (metrics and alerts may be
 * NULL). Returns owned: free with events_free(). */
struct events *events_new(struct audit *audit, struct metrics *metrics,
    struct alerts *alerts, const struct events_responder *responder);

/* An admin API login failed: fed to the password-guessing detectors like
 * a signaling one. */
void events_admin_login_failed(struct events *ev, const char *user, const char *source_ip);

/* Feeds an allocation's traffic total to the spike detector (about once a
 * second per allocation). */
void events_alloc_traffic(struct events *ev, const struct turn_alloc *a);
void events_free(struct events *ev);

void events_hub(struct events *ev, const struct hub_event *e);
void events_turn(struct events *ev, enum turn_event kind, const struct turn_client *c,
    const struct turn_identity *id, const struct sockaddr *peer);
void events_alloc(struct events *ev, const struct turn_alloc *a, bool created,
    const char *reason);

#endif
