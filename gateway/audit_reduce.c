/* Reducing an audit event to a size limit (see audit_reduce.h). */
#include "gateway/audit_reduce.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <openssl/evp.h>

/* As the audit line was written (audit.c): compact, in insertion order.
 * JSON_ENCODE_ANY lets a member's value that is not an object or array
 * be dumped on its own, as the same text it has inside the line. */
#define DUMP_FLAGS (JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY)

struct member {
	const char *name;  /* borrowed from the parsed event */
	size_t size;       /* of its value's JSON text */
};

/* What says what happened and when: never replaced. */
static bool kept(const char *name)
{
	return strcmp(name, "ts") == 0 || strcmp(name, "ts_ms") == 0 ||
	    strcmp(name, "event") == 0;
}

static int sha256_hex(const void *p, size_t n, char out[65])
{
	static const char hexdig[] = "0123456789abcdef";
	unsigned char md[32];
	unsigned int mdlen = 0;
	size_t i;

	if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != sizeof(md))
		return -1;
	for (i = 0; i < sizeof(md); i++) {
		out[2 * i] = hexdig[md[i] >> 4];
		out[2 * i + 1] = hexdig[md[i] & 15];
	}
	out[64] = '\0';
	return 0;
}

static int by_size_desc(const void *a, const void *b)
{
	const struct member *x = a, *y = b;

	return x->size < y->size ? 1 : x->size > y->size ? -1 : 0;
}

/* Replaces the member name of o by {"sha256", "bytes"} of its text. */
static int replace_by_digest(json_t *o, const char *name)
{
	char *text = json_dumps(json_object_get(o, name), DUMP_FLAGS);
	char hex[65];
	size_t n;
	int rc = -1;

	if (text == NULL)
		return -1;
	n = strlen(text);
	if (sha256_hex(text, n, hex) == 0)
		rc = json_object_set_new(o, name, json_pack("{s:s, s:I}", "sha256", hex,
		    "bytes", (json_int_t)n));
	free(text);
	return rc;
}

/* o's text when it is at most max bytes, else NULL. */
static char *dump_within(const json_t *o, size_t max, size_t *out_len)
{
	char *text = json_dumps(o, DUMP_FLAGS);
	size_t n;

	if (text == NULL)
		return NULL;
	n = strlen(text);
	if (n > max) {
		free(text);
		return NULL;
	}
	*out_len = n;
	return text;
}

/* The last resort: what and when, and the marker. */
static char *smallest_form(json_t *o, json_t *marker, size_t max, size_t *out_len)
{
	json_t *small = json_object(), *names = json_array();
	char *text = NULL;
	const char *const keep[] = { "ts", "ts_ms", "event" };
	size_t i;

	if (small == NULL || names == NULL || json_array_append_new(names, json_string("*")) != 0 ||
	    json_object_set(marker, "members", names) != 0)
		goto out;
	for (i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (json_object_get(o, keep[i]) != NULL &&
		    json_object_set(small, keep[i], json_object_get(o, keep[i])) != 0)
			goto out;
	if (json_object_set(small, "reduced", marker) == 0)
		text = dump_within(small, max, out_len);
out:
	json_decref(names);
	json_decref(small);
	return text;
}

char *audit_reduce(const char *line, size_t len, size_t max, size_t *out_len)
{
	json_t *o, *marker = NULL, *names = NULL, *v;
	struct member *m = NULL;
	const char *key;
	char hex[65], *text = NULL;
	size_t nm = 0, i, removed = 0;

	/* NULs are allowed: a field from outside may hold one (escaped). */
	o = json_loadb(line, len, JSON_ALLOW_NUL, NULL);
	if (!json_is_object(o) || sha256_hex(line, len, hex) != 0)
		goto out;
	names = json_array();
	marker = json_pack("{s:I, s:s, s:O}", "bytes", (json_int_t)len, "sha256", hex,
	    "members", names);
	m = calloc(json_object_size(o) + 1, sizeof(*m));
	/* The marker goes in first, so that no key is added to the object
	 * while the list below holds pointers to its keys. */
	if (names == NULL || marker == NULL || m == NULL ||
	    json_object_set(o, "reduced", marker) != 0)
		goto out;
	json_object_foreach(o, key, v) {
		if (kept(key) || v == marker)
			continue;
		m[nm].name = key;
		m[nm].size = json_dumpb(v, NULL, 0, DUMP_FLAGS);
		nm++;
	}
	qsort(m, nm, sizeof(*m), by_size_desc);
	for (i = 0;; i++) {
		/* The line less what was replaced so far is a lower bound of
		 * the reduced size (digests and the marker only add): no
		 * need to write the event out while it is above max. */
		if (len - removed <= max && (text = dump_within(o, max, out_len)) != NULL)
			goto out;
		if (i == nm || m[i].size <= AUDIT_REDUCE_MIN_MEMBER)
			break;
		if (replace_by_digest(o, m[i].name) != 0 ||
		    json_array_append_new(names, json_string(m[i].name)) != 0)
			goto out;
		removed += m[i].size < len - removed ? m[i].size : len - removed;
	}
	text = smallest_form(o, marker, max, out_len);
out:
	free(m);
	json_decref(names);
	json_decref(marker);
	json_decref(o);
	return text;
}
