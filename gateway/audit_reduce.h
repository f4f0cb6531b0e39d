/* An audit event made small enough for a transport that limits message
 * size (syslog, see syslog_out.h), without ever cutting its JSON: the
 * largest members are replaced by their SHA-256 and length until it
 * fits, and a "reduced" member says what was done. The whole event stays
 * in the audit file, where the digests let anyone check the original.
 *
 * The rule (docs/audit.md, "Reduced events"):
 *   - "ts", "ts_ms" and "event" are always kept as they are;
 *   - other members, largest first, are replaced by
 *     {"sha256": HEX, "bytes": N}: the SHA-256 and the length of the
 *     member's value as JSON text, exactly as it is in the audit line,
 *     until the event fits (members of AUDIT_REDUCE_MIN_MEMBER bytes or
 *     less are never replaced: their digest would be no smaller);
 *   - "reduced": {"bytes": N, "sha256": HEX, "members": [NAME, ...]} is
 *     added last: the length and SHA-256 of the whole audit line, and the
 *     names of the members replaced, largest first;
 *   - if that is still too large, only "ts", "ts_ms", "event" and
 *     "reduced" are kept, with "members": ["*"].
 * Used by the audit writer thread only; touches no shared state. */
#ifndef GH_GATEWAY_AUDIT_REDUCE_H
#define GH_GATEWAY_AUDIT_REDUCE_H

#include <stddef.h>

#define AUDIT_REDUCE_MIN_MEMBER 128

/* line: one audit line, a JSON object (len bytes, no newline; borrowed).
 * Returns owned (free with free()): the reduced JSON text, at most max
 * bytes, its length in *out_len. NULL when even the smallest form is
 * longer than max, when line is not a JSON object, or on ENOMEM. */
char *audit_reduce(const char *line, size_t len, size_t max, size_t *out_len);

#endif
