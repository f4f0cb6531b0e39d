/* The audit trail: one JSON object per line in an append-only file
 * (log.audit_file, by default state_dir/audit.jsonl, mode 0600), each with
 * "ts" (RFC 3339 UTC with milliseconds), "ts_ms" and "event" first, and
 * the same events as RFC 5424 syslog to a SIEM when log.syslog is set.
 * Values that came from outside are JSON strings, so jansson escapes
 * them; secrets are never passed in.
 *
 * Writing never blocks the caller: events go into a bounded queue that a
 * writer thread drains to the file and the collector. When the queue is
 * full an event is dropped and counted, and an "audit.dropped" event says
 * so once there is room again. Events named "alert" also go to the
 * webhook (alerts.webhook) when one is configured. */
#ifndef GH_GATEWAY_AUDIT_H
#define GH_GATEWAY_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "gateway/config.h"

#define AUDIT_QUEUE_MAX 10000

struct audit;

/* Opens (creating, 0600) path for appending, and the syslog sender when
 * log->has_syslog; starts the writer. Returns owned: free with
 * audit_close() (which writes what is queued first). NULL with err. */
struct audit *audit_open(const char *path, const struct config_log *log,
    const char *webhook, char *err, size_t errlen);
void audit_close(struct audit *a);

/* Queues one event; fields (may be NULL) is stolen. Dropped, and counted
 * for a later audit.dropped, when AUDIT_QUEUE_MAX events wait. */
void audit_log(struct audit *a, uint64_t now_ms, const char *event, json_t *fields);

/* The same for the last event before audit_close() (daemon.stop): never
 * dropped for a full queue, and after the note of any earlier drops. */
void audit_log_last(struct audit *a, uint64_t now_ms, const char *event, json_t *fields);

/* Reopens the file (after logrotate moved it; SIGUSR1). */
void audit_reopen(struct audit *a);

/* Since start: events dropped because the queue was full, and events
 * that could not be handed to the syslog collector (unreachable,
 * connection lost; they are still in the file). */
void audit_losses(struct audit *a, uint64_t *dropped, uint64_t *syslog_failed);

/* Events between since_ms and until_ms (0: unbounded) whose "actor" or
 * "user" or "target" equals user (NULL: any) and whose event equals
 * event (NULL: any), oldest first, at most limit (the newest ones). Waits
 * (up to a second) for the queue to be written first. Returns owned: a
 * JSON array. */
json_t *audit_query(struct audit *a, uint64_t since_ms, uint64_t until_ms,
    const char *user, const char *event, size_t limit);

#endif
