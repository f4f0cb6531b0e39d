/* The audit trail: one JSON object per line in an append-only file
 * (log.audit_file, by default state_dir/audit.jsonl, mode 0600), each with
 * "ts" (RFC 3339 UTC with milliseconds) and "event" first. Values that
 * came from outside are JSON strings, so jansson escapes them; secrets
 * are never passed in. */
#ifndef GH_GATEWAY_AUDIT_H
#define GH_GATEWAY_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct audit;

/* Opens (creating, 0600) path for appending. Returns owned: free with
 * audit_close(). NULL with err. */
struct audit *audit_open(const char *path, char *err, size_t errlen);
void audit_close(struct audit *a);

/* Appends one event; fields (may be NULL) is stolen. */
void audit_log(struct audit *a, uint64_t now_ms, const char *event, json_t *fields);

/* Events between since_ms and until_ms (0: unbounded) whose "actor" or
 * "user" or "target" equals user (NULL: any) and whose event equals
 * event (NULL: any), oldest first, at most limit (the newest ones).
 * Returns owned: a JSON array. */
json_t *audit_query(struct audit *a, uint64_t since_ms, uint64_t until_ms,
    const char *user, const char *event, size_t limit);

#endif
