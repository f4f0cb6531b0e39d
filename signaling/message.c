/* Signaling message parsing with limits (see message.h). */
#include "signaling/message.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* jansson accepts up to 2048 levels; the protocol needs far fewer, and a
 * shallow limit keeps every later walk cheap. Iterative on purpose: an
 * attacker's nesting must not become our recursion. */
static int depth_ok(json_t *root, int max_depth)
{
	json_t *stack[MESSAGE_MAX_DEPTH + 2];
	void *iters[MESSAGE_MAX_DEPTH + 2];
	size_t idx[MESSAGE_MAX_DEPTH + 2];
	int top = 0;
	json_t *child;

	if (max_depth > MESSAGE_MAX_DEPTH)
		max_depth = MESSAGE_MAX_DEPTH;
	stack[0] = root;
	iters[0] = json_is_object(root) ? json_object_iter(root) : NULL;
	idx[0] = 0;
	while (top >= 0) {
		json_t *cur = stack[top];
		child = NULL;
		if (json_is_object(cur) && iters[top] != NULL) {
			child = json_object_iter_value(iters[top]);
			iters[top] = json_object_iter_next(cur, iters[top]);
		} else if (json_is_array(cur) && idx[top] < json_array_size(cur)) {
			child = json_array_get(cur, idx[top]++);
		}
		if (child == NULL) {
			top--;
			continue;
		}
		if (json_is_object(child) || json_is_array(child)) {
			if (top + 1 >= max_depth)
				return 0;
			top++;
			stack[top] = child;
			iters[top] = json_is_object(child) ? json_object_iter(child) : NULL;
			idx[top] = 0;
		}
	}
	return 1;
}

json_t *message_parse(const char *text, size_t len, size_t max_len, const char **why)
{
	json_error_t jerr;
	json_t *msg;

	if (len > max_len) {
		*why = "message too large";
		return NULL;
	}
	if (memchr(text, '\0', len) != NULL) {
		*why = "NUL byte in message";
		return NULL;
	}
	msg = json_loadb(text, len, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (msg == NULL) {
		*why = strstr(jerr.text, "duplicate") != NULL ? "duplicate key" :
		    "not valid JSON";
		return NULL;
	}
	if (!json_is_object(msg)) {
		json_decref(msg);
		*why = "expected a JSON object";
		return NULL;
	}
	if (!depth_ok(msg, MESSAGE_MAX_DEPTH)) {
		json_decref(msg);
		*why = "nested too deeply";
		return NULL;
	}
	return msg;
}

/* Is c a control character that a field may not hold? Multi-line text
 * may hold line ends and tabs; DEL passes there as before, since SDP
 * (RFC 8866 §9, byte-string) allows it. */
static bool ctl_refused(unsigned char c, bool multiline)
{
	if (multiline)
		return c < 0x20 && c != '\r' && c != '\n' && c != '\t';
	return c < 0x20 || c == 0x7f;
}

/* A string member of at most max_len bytes without refused control
 * characters, or NULL. */
static const char *str_member(json_t *msg, const char *key, size_t max_len,
    bool multiline)
{
	json_t *v = json_object_get(msg, key);
	const char *s;
	size_t n, i;

	if (!json_is_string(v))
		return NULL;
	n = json_string_length(v);
	if (n > max_len)
		return NULL;
	s = json_string_value(v);
	/* Embedded NULs (\u0000) would make C see a different string. */
	if (strlen(s) != n)
		return NULL;
	for (i = 0; i < n; i++)
		if (ctl_refused((unsigned char)s[i], multiline))
			return NULL;
	return s;
}

const char *message_str(json_t *msg, const char *key, size_t max_len)
{
	return str_member(msg, key, max_len, false);
}

/* SDP is CRLF-framed text; sdp_filter() checks the framing itself and
 * refuses a CR anywhere but before LF. */
const char *message_text(json_t *msg, const char *key, size_t max_len)
{
	return str_member(msg, key, max_len, true);
}

char *message_dump(json_t *msg, size_t *len)
{
	char *s = json_dumps(msg, JSON_COMPACT);

	if (s != NULL && len != NULL)
		*len = strlen(s);
	return s;
}
