/* HTTP/1.1 answers (RFC 9112), for the admin CLI's client: a sans-I/O
 * parser of the status line and header fields, and a decoder of chunked
 * bodies. They read only the bytes they are given, compare every length
 * against what is left, and keep "not all of it yet", "not HTTP/1.x we
 * can read" and "too large" apart. */
#ifndef GH_GATEWAY_HTTP_RESP_H
#define GH_GATEWAY_HTTP_RESP_H

#include <stdbool.h>
#include <stddef.h>

enum http_resp_rc {
	HTTP_RESP_OK = 0,
	HTTP_RESP_MORE = -1,           /* the bytes so far are a valid beginning */
	HTTP_RESP_INVALID = -2,
	HTTP_RESP_BODY_TOO_LARGE = -3, /* a length or chunk over body_max */
	HTTP_RESP_HEAD_TOO_LARGE = -4, /* no end of the head in head_max bytes */
};

struct http_resp_head {
	int status;           /* 100..599 */
	size_t head_len;      /* the status line and fields, through the empty line */
	bool has_length;      /* Content-Length (or 204/304, which have no body) */
	size_t length;
	bool chunked;         /* Transfer-Encoding: chunked; read to the end */
};

/* Parses the head at the start of buf (len bytes, borrowed). Accepts
 * "HTTP/1.x NNN [reason]" and field lines "name: value" with CRLF
 * endings. Refuses obsolete line folding, a space before the colon, two
 * different Content-Lengths, Content-Length together with
 * Transfer-Encoding (RFC 9112 §6.3: how request smuggling starts), and
 * any transfer coding but "chunked". Without Content-Length or chunked,
 * the body runs to the end of the connection. *h is set on
 * HTTP_RESP_OK only. */
int http_resp_head_parse(const char *buf, size_t len, size_t head_max, size_t body_max,
    struct http_resp_head *h);

/* Decodes a whole chunked body (RFC 9112 §7.1: chunks, the last chunk,
 * the trailer section) in place: on HTTP_RESP_OK the first *out_len
 * bytes of p are the body. Chunk extensions and trailer fields are
 * skipped. On any other result p's contents are unspecified. */
int http_resp_chunked_decode(char *p, size_t len, size_t body_max, size_t *out_len);

#endif
