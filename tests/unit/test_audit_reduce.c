/* Unit tests for gateway/audit_reduce.c: a policy change too large for a
 * limit comes out as valid JSON within it, with what and when kept, the
 * largest members (only as many as needed) replaced by the SHA-256 and
 * length of their text exactly as in the audit line, and a marker with the
 * whole line's digest; the smallest form when that is not enough; NULL
 * when nothing fits or the line is not an object; every limit from the
 * smallest up gives valid JSON within it. */
#include "gateway/audit_reduce.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

static void hex_sha256(const char *p, size_t n, char out[65])
{
	unsigned char md[32];
	unsigned int len = 0;
	size_t i;

	EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* A policy as the audit line holds it: compact JSON, n names in a group. */
static char *policy_text(size_t n, const char *tag)
{
	size_t cap = 128 + n * 24, i;
	char *p = malloc(cap);
	int w = snprintf(p, cap, "{\"default\":\"deny\",\"groups\":{\"g\":[");

	for (i = 0; i < n; i++)
		w += snprintf(p + w, cap - (size_t)w, "%s\"%s-user-%05zu\"", i ? "," : "", tag, i);
	snprintf(p + w, cap - (size_t)w, "]},\"rules\":[]}");
	return p;
}

static char *event_line(const char *before, const char *after)
{
	size_t cap = strlen(before) + strlen(after) + 512;
	char *line = malloc(cap);

	snprintf(line, cap, "{\"ts\":\"2026-11-26T17:44:10.747Z\",\"ts_ms\":1795715050747,"
	    "\"event\":\"admin.policy.replace\",\"actor\":\"op\",\"role\":\"admin\","
	    "\"outcome\":\"success\",\"source\":\"127.0.0.1\",\"target\":\"/etc/gh/policy.json\","
	    "\"before\":%s,\"after\":%s}", before, after);
	return line;
}

/* member is {"sha256": digest of text, "bytes": strlen(text)}. */
static int is_digest_of(json_t *member, const char *text)
{
	char hex[65];

	hex_sha256(text, strlen(text), hex);
	return json_is_object(member) && json_object_size(member) == 2 &&
	    json_is_string(json_object_get(member, "sha256")) &&
	    strcmp(json_string_value(json_object_get(member, "sha256")), hex) == 0 &&
	    json_integer_value(json_object_get(member, "bytes")) == (json_int_t)strlen(text);
}

static void test_policy_change(void)
{
	char *before = policy_text(1000, "b"), *after = policy_text(3000, "a");
	char *line = event_line(before, after), *out, hex[65];
	size_t len = strlen(line), n = 0;
	json_t *o, *r, *names;

	/* Too large for both: after (the larger) goes first, then before. */
	out = audit_reduce(line, len, 8000, &n);
	CHECK(out != NULL);
	if (out == NULL)
		goto out;
	CHECK(n == strlen(out) && n <= 8000);
	o = json_loads(out, 0, NULL);
	CHECK(json_is_object(o));
	CHECK(strcmp(json_string_value(json_object_get(o, "ts")), "2026-11-26T17:44:10.747Z") == 0);
	CHECK(json_integer_value(json_object_get(o, "ts_ms")) == 1795715050747LL);
	CHECK(strcmp(json_string_value(json_object_get(o, "event")), "admin.policy.replace") == 0);
	CHECK(strcmp(json_string_value(json_object_get(o, "actor")), "op") == 0);
	CHECK(strcmp(json_string_value(json_object_get(o, "target")), "/etc/gh/policy.json") == 0);
	CHECK(is_digest_of(json_object_get(o, "before"), before));
	CHECK(is_digest_of(json_object_get(o, "after"), after));
	r = json_object_get(o, "reduced");
	hex_sha256(line, len, hex);
	CHECK(json_integer_value(json_object_get(r, "bytes")) == (json_int_t)len);
	CHECK(strcmp(json_string_value(json_object_get(r, "sha256")), hex) == 0);
	names = json_object_get(r, "members");
	CHECK(json_array_size(names) == 2 &&
	    strcmp(json_string_value(json_array_get(names, 0)), "after") == 0 &&
	    strcmp(json_string_value(json_array_get(names, 1)), "before") == 0);
	/* The order of the line is kept, the marker last. */
	CHECK(strncmp(out, "{\"ts\":", 6) == 0 && strstr(out, ",\"reduced\":{") != NULL);
	json_decref(o);
	free(out);

	/* Room for before but not after: only after is replaced. */
	out = audit_reduce(line, len, strlen(before) + 1024, &n);
	CHECK(out != NULL);
	if (out != NULL) {
		o = json_loads(out, 0, NULL);
		CHECK(is_digest_of(json_object_get(o, "after"), after));
		CHECK(json_is_object(json_object_get(o, "before")) &&
		    json_array_size(json_object_get(json_object_get(json_object_get(o, "before"),
		    "groups"), "g")) == 1000);
		CHECK(json_array_size(json_object_get(json_object_get(o, "reduced"), "members")) == 1);
		json_decref(o);
		free(out);
	}
out:
	free(line);
	free(before);
	free(after);
}

/* A long string member is replaced by the digest of its JSON text, the
 * quotes and escapes included, as it stands in the line; a NUL (escaped)
 * inside is fine. */
static void test_string_member(void)
{
	char reason[5000], quoted[5100], line[5400], *out;
	size_t n = 0;
	json_t *o;

	memset(reason, 'x', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	memcpy(reason, "a\\u0000b\\\"c", 11);
	snprintf(quoted, sizeof(quoted), "\"%s\"", reason);
	snprintf(line, sizeof(line), "{\"ts\":\"t\",\"ts_ms\":1,\"event\":\"policy.reload\","
	    "\"outcome\":\"failed\",\"reason\":%s}", quoted);
	out = audit_reduce(line, strlen(line), 1000, &n);
	CHECK(out != NULL && n <= 1000);
	o = out != NULL ? json_loads(out, 0, NULL) : NULL;
	CHECK(o != NULL && is_digest_of(json_object_get(o, "reason"), quoted));
	CHECK(o != NULL && strcmp(json_string_value(json_object_get(o, "outcome")), "failed") == 0);
	json_decref(o);
	free(out);
}

/* Many members, none large: the smallest form. Then a limit below it. */
static void test_smallest_form(void)
{
	char line[20000], *out;
	size_t w, n = 0, i;
	json_t *o, *r;

	w = (size_t)snprintf(line, sizeof(line), "{\"ts\":\"t\",\"ts_ms\":1,\"event\":\"e\"");
	for (i = 0; i < 100; i++)
		w += (size_t)snprintf(line + w, sizeof(line) - w, ",\"k%03zu\":\"%0100zu\"", i, i);
	snprintf(line + w, sizeof(line) - w, "}");
	out = audit_reduce(line, strlen(line), 1000, &n);
	CHECK(out != NULL && n <= 1000);
	o = out != NULL ? json_loads(out, 0, NULL) : NULL;
	CHECK(o != NULL && json_object_size(o) == 4);
	r = json_object_get(o, "reduced");
	CHECK(json_array_size(json_object_get(r, "members")) == 1 &&
	    strcmp(json_string_value(json_array_get(json_object_get(r, "members"), 0)), "*") == 0);
	CHECK(json_integer_value(json_object_get(r, "bytes")) == (json_int_t)strlen(line));
	json_decref(o);
	free(out);

	CHECK(audit_reduce(line, strlen(line), 60, &n) == NULL);
	CHECK(audit_reduce("not json", 8, 1000, &n) == NULL);
	CHECK(audit_reduce("[1,2]", 5, 1000, &n) == NULL);
}

/* Every limit gives valid JSON within it, or NULL below the smallest
 * form; never a cut text. */
static void test_every_limit(void)
{
	char *before = policy_text(200, "b"), *after = policy_text(300, "a");
	char *line = event_line(before, after), *out;
	size_t len = strlen(line), max, n, bad = 0, none = 0;
	json_t *o;

	for (max = 100; max < len + 200; max += 7) {
		n = 0;
		out = audit_reduce(line, len, max, &n);
		if (out == NULL) {
			none++;
			if (max > 400)
				bad++;
			continue;
		}
		o = json_loads(out, 0, NULL);
		if (o == NULL || n > max || n != strlen(out) ||
		    json_object_get(o, "reduced") == NULL)
			bad++;
		json_decref(o);
		free(out);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(none > 0);
	free(line);
	free(before);
	free(after);
}

int main(void)
{
	test_policy_change();
	test_string_member();
	test_smallest_form();
	test_every_limit();
	return check_done("test_audit_reduce");
}
