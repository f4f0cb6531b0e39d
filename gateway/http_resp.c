/* HTTP/1.1 answers (see http_resp.h). */
#include "gateway/http_resp.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

/* RFC 9110 §5.6.2: tchar. */
static bool token_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || (ch != '\0' && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* A decimal Content-Length of at most max. */
static int parse_length(const char *p, size_t n, size_t max, size_t *out)
{
	size_t i, v = 0, d;

	if (n == 0)
		return HTTP_RESP_INVALID;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return HTTP_RESP_INVALID;
		d = (size_t)(p[i] - '0');
		if (v > (max - d) / 10)
			return HTTP_RESP_BODY_TOO_LARGE;
		v = v * 10 + d;
	}
	*out = v;
	return HTTP_RESP_OK;
}

static bool name_is(const char *p, size_t n, const char *name)
{
	return n == strlen(name) && strncasecmp(p, name, n) == 0;
}

/* RFC 9112 §4 and §5: the status line, then field lines up to the empty
 * line, each walked against the bytes that are left before it. */
int http_resp_head_parse(const char *buf, size_t len, size_t head_max, size_t body_max,
    struct http_resp_head *h)
{
	struct http_resp_head r;
	const char *end, *p, *eol, *colon, *v, *ve;
	size_t n, cl = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	end = memmem(buf, len < head_max ? len : head_max, "\r\n\r\n", 4);
	if (end == NULL)
		return len >= head_max ? HTTP_RESP_HEAD_TOO_LARGE : HTTP_RESP_MORE;
	r.head_len = (size_t)(end - buf) + 4;
	/* "HTTP/1.x NNN reason": the first CRLF is at end or before it. */
	eol = memmem(buf, r.head_len, "\r\n", 2);
	n = (size_t)(eol - buf);
	if (n < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[7] < '0' || buf[7] > '9' ||
	    buf[8] != ' ' || buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' ||
	    buf[11] < '0' || buf[11] > '9' || (n > 12 && buf[12] != ' '))
		return HTTP_RESP_INVALID;
	r.status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
	for (p = eol + 2; p < end + 2; p = eol + 2) {
		eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
		n = (size_t)(eol - p);
		colon = memchr(p, ':', n);
		/* RFC 9112 §5.1, §5.2: no whitespace before the colon, no
		 * obsolete line folding (a line that starts with a space). */
		if (colon == NULL || colon == p)
			return HTTP_RESP_INVALID;
		for (v = p; v < colon; v++)
			if (!token_char(*v))
				return HTTP_RESP_INVALID;
		for (v = colon + 1; v < eol && (*v == ' ' || *v == '\t'); v++)
			;
		for (ve = eol; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		n = (size_t)(colon - p);
		if (name_is(p, n, "content-length")) {
			if ((rc = parse_length(v, (size_t)(ve - v), body_max, &cl)) != HTTP_RESP_OK)
				return rc;
			/* Two different lengths: which one would the body have? */
			if (r.has_length && cl != r.length)
				return HTTP_RESP_INVALID;
			r.has_length = true;
			r.length = cl;
		} else if (name_is(p, n, "transfer-encoding")) {
			if (r.chunked || !name_is(v, (size_t)(ve - v), "chunked"))
				return HTTP_RESP_INVALID;
			r.chunked = true;
		}
	}
	if (r.chunked && r.has_length)
		return HTTP_RESP_INVALID;
	/* RFC 9110 §15.3.5, §15.4.5: never a body, whatever the fields say. */
	if (r.status == 204 || r.status == 304) {
		r.has_length = true;
		r.length = 0;
		r.chunked = false;
	}
	*h = r;
	return HTTP_RESP_OK;
}

/* RFC 9112 §7.1. The output never overtakes the input (each chunk moves
 * back over its own size line), so decoding in place is safe. */
int http_resp_chunked_decode(char *p, size_t len, size_t body_max, size_t *out_len)
{
	size_t in = 0, out = 0, size, i;
	const char *eol;
	int d;

	for (;;) {
		/* chunk-size [ chunk-ext ] CRLF */
		eol = memmem(p + in, len - in, "\r\n", 2);
		if (eol == NULL)
			return HTTP_RESP_MORE;
		size = 0;
		for (i = in; p + i < eol &&
		    (d = OPENSSL_hexchar2int((unsigned char)p[i])) >= 0; i++) {
			if (size > (body_max - (size_t)d) / 16)
				return HTTP_RESP_BODY_TOO_LARGE;
			size = size * 16 + (size_t)d;
		}
		if (i == in || (p + i < eol && p[i] != ';' && p[i] != ' ' && p[i] != '\t'))
			return HTTP_RESP_INVALID;
		in = (size_t)(eol - p) + 2;
		if (size == 0)
			break;
		if (size > body_max - out)
			return HTTP_RESP_BODY_TOO_LARGE;
		/* chunk-data CRLF */
		if (size > len - in || len - in - size < 2)
			return HTTP_RESP_MORE;
		if (p[in + size] != '\r' || p[in + size + 1] != '\n')
			return HTTP_RESP_INVALID;
		memmove(p + out, p + in, size);
		out += size;
		in += size + 2;
	}
	/* trailer-section CRLF: field lines, then an empty line. */
	for (;;) {
		eol = memmem(p + in, len - in, "\r\n", 2);
		if (eol == NULL)
			return HTTP_RESP_MORE;
		if (eol == p + in)
			break;
		in = (size_t)(eol - p) + 2;
	}
	*out_len = out;
	return HTTP_RESP_OK;
}
