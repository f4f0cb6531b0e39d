/* Fuzz target: signaling message parsing (signaling/message.c).
 *
 * The input is one WebSocket text frame. It is parsed with the default
 * limits; a parsed object has its usual members read with
 * message_str() and is dumped and parsed back.
 *
 * Invariants checked (abort() on violation):
 * - a refusal gives a reason; anything over the size limit is refused;
 * - a parsed message is an object;
 * - message_str() returns only strings within the asked length, without
 *   NUL, control characters or DEL; message_text() the same, but CR, LF
 *   and TAB allowed;
 * - what message_dump() writes parses back to an equal object. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "signaling/message.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_message: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

static void check_str(json_t *msg, const char *key, size_t max_len)
{
	const char *s = message_str(msg, key, max_len), *t = message_text(msg, key, max_len);
	size_t n, i;

	/* A one-line string is also acceptable text. */
	FUZZ_CHECK(s == NULL || t == s);
	if (t == NULL)
		return;
	n = strlen(t);
	FUZZ_CHECK(n <= max_len);
	FUZZ_CHECK(n == json_string_length(json_object_get(msg, key)));
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];
		FUZZ_CHECK(c >= 0x20 || c == '\r' || c == '\n' || c == '\t');
		FUZZ_CHECK(s == NULL || (c >= 0x20 && c != 0x7f));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const keys[] = {
		"type", "id", "user", "password", "totp", "token", "to", "call",
		"sdp", "candidate", "sdpMid", "reason",
	};
	const char *text = (const char *)data, *why = NULL;
	json_t *msg, *back, *sub;
	size_t i, len = 0;
	char *dump;

	msg = message_parse(text, size, MESSAGE_MAX_LEN, &why);
	if (msg == NULL) {
		FUZZ_CHECK(why != NULL && why[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(size <= MESSAGE_MAX_LEN);
	FUZZ_CHECK(json_is_object(msg));
	if (size > 0) {
		why = NULL;
		FUZZ_CHECK(message_parse(text, size, size - 1, &why) == NULL && why != NULL);
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		check_str(msg, keys[i], 0);
		check_str(msg, keys[i], 8);
		check_str(msg, keys[i], 64);
		check_str(msg, keys[i], MESSAGE_MAX_LEN);
	}
	/* Nested objects, as the sdp and candidate handlers read them. */
	if (json_is_object(sub = json_object_get(msg, "sdp"))) {
		check_str(sub, "type", 8);
		check_str(sub, "sdp", MESSAGE_MAX_LEN);
	}
	if (json_is_object(sub = json_object_get(msg, "candidate"))) {
		check_str(sub, "candidate", 512);
		check_str(sub, "sdpMid", 32);
	}
	dump = message_dump(msg, &len);
	FUZZ_CHECK(dump != NULL && strlen(dump) == len);
	why = NULL;
	back = message_parse(dump, len, (size_t)-1, &why);
	FUZZ_CHECK(back != NULL);
	FUZZ_CHECK(json_equal(msg, back));
	json_decref(back);
	free(dump);
	json_decref(msg);
	return 0;
}
