/* The admin listener on libwebsockets (see admin_http.h): reads one HTTP
 * request with its body, hands it to the admin core, writes the JSON
 * answer. Logins are answered later, when the login worker is done. */
#include "common/clock.h"
#include "gateway/admin_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/state_lock.h"

#define PENDING_BUCKETS 256
/* How long a deferred answer may take: a login, or a password set,
 * waits behind the others queued for argon2id (a quarter of a second
 * each), an audit query behind the others reading the file. Without
 * this, libwebsockets would close the connection after its idle
 * timeout, 5 s. */
#define DEFERRED_TIMEOUT_S 120
#define HTTP_CHUNK 16384

/* Per-connection data, zeroed by libwebsockets. */
struct req {
	struct admin_http *server;
	struct lws *wsi;
	uint64_t id;
	enum admin_method method;
	char path[256];
	char query[512];
	char auth[160];
	char origin[256];
	char remote[INET6_ADDRSTRLEN];
	bool has_auth, has_origin;
	char *body;                /* request body, up to ADMIN_MAX_BODY */
	size_t body_len;
	bool too_large;
	bool deferred;             /* waiting for admin_http_reply() */
	bool dispatched;           /* handed to the admin core (once per request) */
	int status;                /* 0 until the answer is known */
	char *out;                 /* the answer's body */
	const char *ctype;         /* its content type */
	size_t out_len, sent;
	bool headers_sent;
	struct req *next;          /* pending index chain */
};

struct admin_http {
	struct lws_vhost *vhost;
	struct admin *admin;       /* borrowed */
	struct req *pending[PENDING_BUCKETS];
	uint64_t next_id;
};

static void pending_del(struct admin_http *s, struct req *r)
{
	struct req **pp = &s->pending[r->id % PENDING_BUCKETS];

	while (*pp != NULL && *pp != r)
		pp = &(*pp)->next;
	if (*pp == r)
		*pp = r->next;
	r->deferred = false;
}

static void answer(struct req *r, int status, char *body)
{
	if (r->ctype == NULL)
		r->ctype = "application/json";
	r->status = status;
	r->out = body;
	r->out_len = body != NULL ? strlen(body) : 0;
	lws_callback_on_writable(r->wsi);
}

static void dispatch(struct admin_http *s, struct req *r)
{
	struct admin_request rq;
	char *body = NULL;
	int status = 0;

	/* libwebsockets reports the end of an empty body even after the
	 * request was answered without waiting for one. */
	if (r->dispatched)
		return;
	r->dispatched = true;
	if (r->too_large) {
		answer(r, 413, strdup("{\"error\":\"too_large\",\"message\":\"the body is too large\"}"));
		return;
	}
	memset(&rq, 0, sizeof(rq));
	rq.id = r->id;
	rq.method = r->method;
	rq.path = r->path;
	rq.query = r->query;
	rq.authorization = r->has_auth ? r->auth : NULL;
	rq.origin = r->has_origin ? r->origin : NULL;
	rq.remote = r->remote;
	rq.body = r->body != NULL ? r->body : "";
	rq.body_len = r->body_len;
	if (admin_handle(s->admin, &rq, clock_now(), &status, &body, &r->ctype)) {
		answer(r, status, body);
		return;
	}
	r->deferred = true;
	lws_set_timeout(r->wsi, PENDING_TIMEOUT_USER_OK, DEFERRED_TIMEOUT_S);
	r->next = s->pending[r->id % PENDING_BUCKETS];
	s->pending[r->id % PENDING_BUCKETS] = r;
}

void admin_http_reply(void *ctx, uint64_t request, int status, const char *body, size_t len)
{
	struct admin_http *s = ctx;
	struct req *r;

	for (r = s->pending[request % PENDING_BUCKETS]; r != NULL; r = r->next)
		if (r->id == request)
			break;
	if (r == NULL)
		return;
	pending_del(s, r);
	answer(r, status, strndup(body, len));
}

static int write_answer(struct req *r)
{
	unsigned char buf[LWS_PRE + HTTP_CHUNK], *start = buf + LWS_PRE, *p = start,
	    *end = buf + sizeof(buf) - 1;
	size_t n;
	bool last;

	if (!r->headers_sent) {
		if (lws_add_http_common_headers(r->wsi, (unsigned int)r->status,
		    r->ctype, (lws_filepos_t)r->out_len, &p, end) ||
		    lws_add_http_header_by_name(r->wsi, (const unsigned char *)"cache-control:",
		    (const unsigned char *)"no-store", 8, &p, end) ||
		    lws_add_http_header_by_name(r->wsi, (const unsigned char *)"x-content-type-options:",
		    (const unsigned char *)"nosniff", 7, &p, end) ||
		    lws_finalize_write_http_header(r->wsi, start, &p, end))
			return -1;
		r->headers_sent = true;
		if (r->out_len > 0) {
			lws_callback_on_writable(r->wsi);
			return 0;
		}
	}
	n = r->out_len - r->sent;
	if (n > HTTP_CHUNK)
		n = HTTP_CHUNK;
	last = r->sent + n == r->out_len;
	memcpy(buf + LWS_PRE, r->out + r->sent, n);
	if (lws_write(r->wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	r->sent += n;
	if (!last) {
		lws_callback_on_writable(r->wsi);
		return 0;
	}
	free(r->out);
	r->out = NULL;
	free(r->body);
	r->body = NULL;
	r->status = 0;
	return lws_http_transaction_completed(r->wsi) ? -1 : 0;
}

/* A header that is present but does not fit counts as present with a
 * value nothing matches: an over-long Origin must be refused, not taken
 * for a missing one. */
static void copy_header(struct lws *wsi, enum lws_token_indexes t, char *out, size_t cap,
    bool *has)
{
	int n = lws_hdr_total_length(wsi, t);

	*has = n > 0;
	if (n <= 0 || (size_t)n >= cap || lws_hdr_copy(wsi, out, (int)cap, t) <= 0)
		snprintf(out, cap, "%s", n > 0 ? "\x01(too long)" : "");
}

static int on_request(struct admin_http *s, struct req *r, struct lws *wsi, const char *path)
{
	bool has;
	int i;

	/* A kept-alive connection reuses this per-connection data. */
	free(r->body);
	free(r->out);
	memset(r, 0, sizeof(*r));
	r->server = s;
	r->wsi = wsi;
	r->id = ++s->next_id;
	snprintf(r->path, sizeof(r->path), "%s", path);
	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0)
		r->method = ADMIN_GET;
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0)
		r->method = ADMIN_POST;
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_PUT_URI) > 0)
		r->method = ADMIN_PUT;
	else if (lws_hdr_total_length(wsi, WSI_TOKEN_DELETE_URI) > 0)
		r->method = ADMIN_DELETE;
	else
		r->method = ADMIN_OTHER;
	/* The query string as lws splits it, joined back with '&'. */
	for (i = 0; ; i++) {
		char frag[256];
		size_t used = strlen(r->query);
		if (lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i) < 0)
			break;
		snprintf(r->query + used, sizeof(r->query) - used, "%s%s", used ? "&" : "", frag);
	}
	copy_header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, r->auth, sizeof(r->auth), &r->has_auth);
	copy_header(wsi, WSI_TOKEN_ORIGIN, r->origin, sizeof(r->origin), &r->has_origin);
	if (lws_get_peer_simple(wsi, r->remote, sizeof(r->remote)) == NULL)
		snprintf(r->remote, sizeof(r->remote), "?");
	/* A body comes in LWS_CALLBACK_HTTP_BODY; without one, answer now. */
	has = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ||
	    lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
	if (has && (r->method == ADMIN_POST || r->method == ADMIN_PUT)) {
		char cl[24] = "0";
		lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH);
		if (strcmp(cl, "0") != 0)
			return 0;
	}
	dispatch(s, r);
	return 0;
}

static int on_body(struct req *r, const void *in, size_t len)
{
	char *grown;

	if (len == 0)
		return 0;
	if (r->too_large || len > ADMIN_MAX_BODY - r->body_len) {
		r->too_large = true;
		return 0;
	}
	grown = realloc(r->body, r->body_len + len + 1);
	if (grown == NULL)
		return -1;
	r->body = grown;
	memcpy(r->body + r->body_len, in, len);
	r->body_len += len;
	r->body[r->body_len] = '\0';
	return 0;
}

static void on_closed(struct admin_http *s, struct req *r)
{
	if (r->server == NULL)
		return;
	if (r->deferred) {
		pending_del(s, r);
		admin_request_gone(s->admin, r->id);
	}
	free(r->body);
	free(r->out);
	r->body = r->out = NULL;
}

static int callback_locked(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct admin_http **ps = lws_protocol_vh_priv_get(lws_get_vhost(wsi),
	    lws_get_protocol(wsi));
	struct admin_http *s = ps != NULL ? *ps : NULL;
	struct req *r = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return s != NULL ? on_request(s, r, wsi, in != NULL ? (const char *)in : "") : -1;
	case LWS_CALLBACK_HTTP_BODY:
		return on_body(r, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		dispatch(s, r);
		return 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return r->status != 0 ? write_answer(r) : 0;
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return -1; /* no WebSockets here */
	case LWS_CALLBACK_CLOSED_HTTP:
		if (s != NULL && r != NULL)
			on_closed(s, r);
		return 0;
	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* Every callback runs with the state lock held (gateway/state_lock.h). */
static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	int rc;

	state_lock();
	rc = callback_locked(wsi, reason, user, in, len);
	state_unlock();
	return rc;
}

static const struct lws_protocols protocols[] = {
	{ "gatehouse-admin", callback, sizeof(struct req), 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

struct admin_http *admin_http_new(struct lws_context *ctx,
    const struct sockaddr_storage *listen, const char *cert_file, const char *key_file,
    bool also_plain, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct admin_http *s = calloc(1, sizeof(*s));
	char iface[INET6_ADDRSTRLEN];
	void *priv;

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Plain beside TLS would let a client off the host fall back to
	 * clear text; DESIGN.md allows plain listeners on loopback only. */
	if (also_plain && (cert_file == NULL || !config_addr_is_loopback(listen))) {
		snprintf(err, errlen, "admin: plain HTTP beside TLS is for a loopback "
		    "listener with a certificate only");
		free(s);
		return NULL;
	}
	if (listen->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)listen)->sin6_addr, iface,
		    sizeof(iface));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)listen)->sin_addr, iface,
		    sizeof(iface));
	memset(&info, 0, sizeof(info));
	info.vhost_name = "admin";
	info.iface = iface;
	info.port = ntohs(listen->ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)listen)->sin6_port :
	    ((const struct sockaddr_in *)listen)->sin_port);
	info.protocols = protocols;
	info.timeout_secs = 10;
	info.server_string = "gatehouse";
	info.options = listen->ss_family == AF_INET6 ? LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY |
	    LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE : LWS_SERVER_OPTION_DISABLE_IPV6;
	if (cert_file != NULL) {
		info.ssl_cert_filepath = cert_file;
		info.ssl_private_key_filepath = key_file;
		info.ssl_cipher_list = "ECDHE+AESGCM:ECDHE+CHACHA20";
		info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
		    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
		/* libwebsockets turns TLS on for a vhost only with this option on
		 * the vhost itself; without it the listener would speak plain
		 * HTTP while the log says https. */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		/* As on the signaling listener (ws_server.c): the first byte
		 * tells TLS from plain; both options are needed to serve it. */
		if (also_plain)
			info.options |= LWS_SERVER_OPTION_ALLOW_NON_SSL_ON_SSL_PORT |
			    LWS_SERVER_OPTION_ALLOW_HTTP_ON_HTTPS_LISTENER;
	}
	s->vhost = lws_create_vhost(ctx, &info);
	if (s->vhost == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%d for the admin API", iface, info.port);
		free(s);
		return NULL;
	}
	priv = lws_protocol_vh_priv_zalloc(s->vhost, &protocols[0], sizeof(void *));
	if (priv == NULL) {
		snprintf(err, errlen, "out of memory");
		free(s);
		return NULL;
	}
	*(struct admin_http **)priv = s;
	return s;
}

void admin_http_set_admin(struct admin_http *s, struct admin *a)
{
	s->admin = a;
}

void admin_http_free(struct admin_http *s)
{
	free(s);
}
