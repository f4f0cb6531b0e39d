/* gateway/http_resp.c: HTTP/1.1 answer heads and chunked bodies.
 *
 * Vectors for what is taken and what is refused; every prefix of a good
 * answer is "more" (never "invalid", never a wrong "ok"); every one-byte
 * change and random bytes are answered without reading past the buffer
 * (each input sits in a heap block of its exact size, for ASan). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/http_resp.h"
#include "tests/unit/check.h"

#define HEAD_MAX 4096
#define BODY_MAX 1024

/* An exact-size heap copy, so that a read past len is an ASan error. */
static char *dup_exact(const char *s, size_t len)
{
	char *p = malloc(len > 0 ? len : 1);

	if (p != NULL && len > 0)
		memcpy(p, s, len);
	return p;
}

static int head(const char *s, size_t len, struct http_resp_head *h)
{
	char *p = dup_exact(s, len);
	int rc = http_resp_head_parse(p, len, HEAD_MAX, BODY_MAX, h);

	free(p);
	return rc;
}

static int head_str(const char *s, struct http_resp_head *h)
{
	return head(s, strlen(s), h);
}

static int chunked(const char *s, size_t len, char *out, size_t cap, size_t *out_len)
{
	char *p = dup_exact(s, len);
	int rc = http_resp_chunked_decode(p, len, BODY_MAX, out_len);

	if (rc == HTTP_RESP_OK && *out_len <= cap)
		memcpy(out, p, *out_len);
	free(p);
	return rc;
}

static int chunked_str(const char *s, char *out, size_t cap, size_t *out_len)
{
	return chunked(s, strlen(s), out, cap, out_len);
}

static void test_heads_taken(void)
{
	struct http_resp_head h;
	const char *a = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
	    "Content-Length: 15\r\n\r\n{\"status\":\"ok\"}";

	CHECK_EQ_INT(head_str(a, &h), HTTP_RESP_OK);
	CHECK_EQ_INT(h.status, 200);
	CHECK(h.has_length && h.length == 15 && !h.chunked);
	CHECK_EQ_INT(h.head_len, strlen(a) - 15);

	/* No reason phrase; case and spaces around the value. */
	CHECK_EQ_INT(head_str("HTTP/1.1 401\r\ncontent-LENGTH:  7 \t\r\n\r\n", &h), HTTP_RESP_OK);
	CHECK(h.status == 401 && h.has_length && h.length == 7);

	CHECK_EQ_INT(head_str("HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n", &h),
	    HTTP_RESP_OK);
	CHECK(h.chunked && !h.has_length);

	/* Neither: the body runs to the end of the connection. */
	CHECK_EQ_INT(head_str("HTTP/1.0 200 OK\r\nServer: x\r\n\r\n", &h), HTTP_RESP_OK);
	CHECK(!h.chunked && !h.has_length);

	/* The same length twice is one length. */
	CHECK_EQ_INT(head_str("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
	    &h), HTTP_RESP_OK);
	CHECK(h.length == 3);

	/* 204 and 304 have no body whatever they say. */
	CHECK_EQ_INT(head_str("HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", &h),
	    HTTP_RESP_OK);
	CHECK(h.has_length && h.length == 0);

	/* An interim answer is a head of its own. */
	CHECK_EQ_INT(head_str("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", &h),
	    HTTP_RESP_OK);
	CHECK(h.status == 100 && h.head_len == 25);

	/* Exactly body_max is allowed. */
	CHECK_EQ_INT(head_str("HTTP/1.1 200 OK\r\nContent-Length: 1024\r\n\r\n", &h), HTTP_RESP_OK);
}

static void test_heads_refused(void)
{
	static const struct {
		const char *text;
		int rc;
	} v[] = {
		{ "HTTP/2 200\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 20\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 2000 OK\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 600 Odd\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 099 Odd\r\n\r\n", HTTP_RESP_INVALID },
		{ "http/1.1 200 OK\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1  200 OK\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\n: empty name\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		  HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		  HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		  HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n", HTTP_RESP_INVALID },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1025\r\n\r\n", HTTP_RESP_BODY_TOO_LARGE },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999999\r\n\r\n",
		  HTTP_RESP_BODY_TOO_LARGE },
	};
	struct http_resp_head h;
	char *big;
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		int rc = head_str(v[i].text, &h);
		if (rc != v[i].rc)
			fprintf(stderr, "vector %zu: %d, expected %d\n", i, rc, v[i].rc);
		CHECK_EQ_INT(rc, v[i].rc);
	}
	/* No end of the head within head_max: too large, not "more". */
	big = malloc(HEAD_MAX + 10);
	memset(big, 'x', HEAD_MAX + 10);
	memcpy(big, "HTTP/1.1 200 OK\r\nX: ", 20);
	CHECK_EQ_INT(head(big, HEAD_MAX - 1, &h), HTTP_RESP_MORE);
	CHECK_EQ_INT(head(big, HEAD_MAX, &h), HTTP_RESP_HEAD_TOO_LARGE);
	CHECK_EQ_INT(head(big, HEAD_MAX + 10, &h), HTTP_RESP_HEAD_TOO_LARGE);
	free(big);
}

/* Every proper prefix of a head is "more"; the whole is "ok". */
static void test_head_prefixes(void)
{
	static const char *const heads[] = {
		"HTTP/1.1 200 OK\r\nContent-Length: 15\r\nCache-Control: no-store\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 403 Forbidden\r\n\r\n",
	};
	struct http_resp_head h;
	size_t i, n, len;

	for (i = 0; i < sizeof(heads) / sizeof(heads[0]); i++) {
		len = strlen(heads[i]);
		for (n = 0; n < len; n++)
			CHECK_EQ_INT(head(heads[i], n, &h), HTTP_RESP_MORE);
		CHECK_EQ_INT(head(heads[i], len, &h), HTTP_RESP_OK);
		CHECK_EQ_INT(h.head_len, len);
	}
}

static void test_chunked(void)
{
	const char *a = "5;name=value\r\n{\"sta\r\na\r\ntus\":\"ok\"}\r\n0\r\nX-T: 1\r\n\r\n";
	const char *empty = "0\r\n\r\n";
	char out[64];
	size_t n = 0, len, k;

	CHECK_EQ_INT(chunked(a, strlen(a), out, sizeof(out), &n), HTTP_RESP_OK);
	CHECK(n == 15 && memcmp(out, "{\"status\":\"ok\"}", 15) == 0);
	CHECK_EQ_INT(chunked(empty, strlen(empty), out, sizeof(out), &n), HTTP_RESP_OK);
	CHECK_EQ_INT(n, 0);
	CHECK_EQ_INT(chunked_str("A\r\n0123456789\r\n00\r\n\r\n", out, sizeof(out), &n),
	    HTTP_RESP_OK);
	CHECK(n == 10 && memcmp(out, "0123456789", 10) == 0);

	/* Every proper prefix is "more": a cut body is never taken whole. */
	len = strlen(a);
	for (k = 0; k < len; k++)
		CHECK_EQ_INT(chunked(a, k, out, sizeof(out), &n), HTTP_RESP_MORE);

	CHECK_EQ_INT(chunked_str("x\r\n", out, sizeof(out), &n), HTTP_RESP_INVALID);
	CHECK_EQ_INT(chunked_str(";x\r\n", out, sizeof(out), &n), HTTP_RESP_INVALID);
	CHECK_EQ_INT(chunked_str("5x\r\nabcde\r\n0\r\n\r\n", out, sizeof(out), &n),
	    HTTP_RESP_INVALID);
	/* The data must end where the size says. */
	CHECK_EQ_INT(chunked_str("3\r\nabcde\r\n0\r\n\r\n", out, sizeof(out), &n),
	    HTTP_RESP_INVALID);
	/* Over body_max: known from the size line alone. */
	CHECK_EQ_INT(chunked_str("400\r\n", out, sizeof(out), &n), HTTP_RESP_MORE);
	CHECK_EQ_INT(chunked_str("401\r\n", out, sizeof(out), &n), HTTP_RESP_BODY_TOO_LARGE);
	CHECK_EQ_INT(chunked_str("fffffffffffffffffffff\r\n", out, sizeof(out), &n),
	    HTTP_RESP_BODY_TOO_LARGE);
}

static void test_chunked_many_over_limit(void)
{
	/* 3 chunks of 400 bytes: the third passes body_max. */
	char *s = malloc(3 * (5 + 400 + 2) + 5), *p = s;
	size_t n, i;

	for (i = 0; i < 3; i++) {
		memcpy(p, "190\r\n", 5);
		memset(p + 5, 'a', 400);
		memcpy(p + 405, "\r\n", 2);
		p += 407;
	}
	memcpy(p, "0\r\n\r\n", 5);
	CHECK_EQ_INT(http_resp_chunked_decode(s, (size_t)(p + 5 - s), BODY_MAX, &n),
	    HTTP_RESP_BODY_TOO_LARGE);
	free(s);
}

/* One changed byte anywhere, and random bytes: any result but a read out
 * of bounds, and "ok" only with sizes inside the buffer. */
static void test_mutations(void)
{
	const char *a = "HTTP/1.1 200 OK\r\nContent-Length: 15\r\n\r\n";
	const char *b = "5\r\nabcde\r\n3;x\r\nfgh\r\n0\r\nT: 1\r\n\r\n";
	static const char bytes[] = { '\r', '\n', ':', ' ', '0', 'f', ';', 'x', '\0', '\x80' };
	struct http_resp_head h;
	char buf[128], *p;
	size_t i, j, n, len;
	unsigned seed = 12345;
	int rc;

	len = strlen(a);
	for (i = 0; i < len; i++) {
		for (j = 0; j < sizeof(bytes); j++) {
			memcpy(buf, a, len);
			buf[i] = bytes[j];
			rc = head(buf, len, &h);
			CHECK(rc == HTTP_RESP_OK || rc == HTTP_RESP_MORE || rc == HTTP_RESP_INVALID ||
			    rc == HTTP_RESP_BODY_TOO_LARGE);
			if (rc == HTTP_RESP_OK)
				CHECK(h.head_len <= len);
		}
	}
	len = strlen(b);
	for (i = 0; i < len; i++) {
		for (j = 0; j < sizeof(bytes); j++) {
			p = dup_exact(b, len);
			p[i] = bytes[j];
			rc = http_resp_chunked_decode(p, len, BODY_MAX, &n);
			if (rc == HTTP_RESP_OK)
				CHECK(n <= len);
			free(p);
		}
	}
	for (i = 0; i < 20000; i++) {
		len = (size_t)(rand_r(&seed) % 96);
		p = malloc(len + 1);
		for (j = 0; j < len; j++)
			p[j] = bytes[(size_t)rand_r(&seed) % sizeof(bytes)];
		if (len > 9 && (i & 1))
			memcpy(p, "HTTP/1.1 2", 10);
		rc = http_resp_head_parse(p, len, 64, BODY_MAX, &h);
		if (rc == HTTP_RESP_OK)
			CHECK(h.head_len <= len);
		rc = http_resp_chunked_decode(p, len, BODY_MAX, &n);
		if (rc == HTTP_RESP_OK)
			CHECK(n <= len);
		free(p);
	}
}

int main(void)
{
	test_heads_taken();
	test_heads_refused();
	test_head_prefixes();
	test_chunked();
	test_chunked_many_over_limit();
	test_mutations();
	return check_done("test_http_resp");
}
