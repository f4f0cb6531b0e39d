/* Signaling messages: one JSON object per WebSocket text frame, parsed
 * with limits before anything acts on it (size, nesting depth, duplicate
 * keys, string lengths), and replies built with jansson. */
#ifndef GH_SIGNALING_MESSAGE_H
#define GH_SIGNALING_MESSAGE_H

#include <stddef.h>

#include <jansson.h>

#define MESSAGE_MAX_LEN (64 * 1024)   /* default frame limit */
#define MESSAGE_MAX_DEPTH 8           /* the protocol needs 4 */

/* Parses text (not NUL-terminated) into an object. Returns owned (free
 * with json_decref) or NULL with a short reason in *why (static, safe to
 * send to the client: it never echoes input). */
json_t *message_parse(const char *text, size_t len, size_t max_len, const char **why);

/* String member of at most max_len bytes without control characters
 * (none below 0x20, no DEL): for one-line fields (names, ids, codes,
 * candidates), which must not carry line breaks to wherever they go next
 * (a log, an SDP the other side builds). NULL when absent, not a string,
 * too long or bad. Borrowed from msg. */
const char *message_str(json_t *msg, const char *key, size_t max_len);

/* The same for multi-line text (a session description): CR, LF and TAB
 * are allowed, other control characters are not. */
const char *message_text(json_t *msg, const char *key, size_t max_len);

/* Serializes compactly. Returns owned (free()) or NULL. */
char *message_dump(json_t *msg, size_t *len);

#endif
