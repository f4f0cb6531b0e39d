/* The signaling listener (see ws_server.h).
 *
 * One libwebsockets protocol serves both the HTTP requests (the demo
 * page) and the WebSocket sessions. Each session's per-connection data
 * holds its reassembly buffer and its queue of outgoing messages; the hub
 * knows sessions only by id. */
#include "signaling/ws_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libwebsockets.h>

#include "common/clock.h"
#include "common/fnv.h"
#include "common/source_key.h"
#include "gateway/config.h"
#include "gateway/conn_limit.h"
#include "gateway/log.h"
#include "gateway/state_lock.h"
#include "signaling/web_assets.h"

#define SESSION_BUCKETS 4096
#define HTTP_CHUNK 16384

struct out_msg {
	struct out_msg *next;
	size_t len;
	bool update;               /* from ws_server_send_update() */
	unsigned char buf[];       /* LWS_PRE bytes of headroom, then len */
};

/* Per-connection data, zeroed by libwebsockets for every connection. */
struct conn {
	struct ws_server *w;
	struct lws *wsi;
	uint64_t id;               /* 0 until the WebSocket is established */
	char ip[INET6_ADDRSTRLEN];  /* for the log */
	struct sockaddr_storage src; /* the address counted in per_source */
	bool counted;
	uint8_t *in;               /* reassembly of a fragmented message */
	size_t inlen;
	bool oversized;            /* dropping the rest of a too-large message */
	struct out_msg *head, *tail;
	size_t queued;             /* bytes of head..tail but the update */
	bool closing;
	uint64_t timeout_armed_ms; /* when the idle timeout was last set (monotonic) */
	struct conn *next;         /* session index chain */
	/* HTTP: the asset being sent and how far. */
	const struct web_asset *asset;
	size_t sent;
};

struct ws_server {
	struct ws_server_config cfg;
	struct lws_vhost *vhost;
	struct hub *hub;                       /* borrowed */
	struct conn *sessions[SESSION_BUCKETS];
	/* Connections per source (an IPv4 address or an IPv6 /64), so that a
	 * host cannot pass the limit with more addresses of its /64. */
	struct conn_limit *per_source;
	uint32_t per_source_max;
	size_t nsessions;
	uint64_t next_id;
	char origins[WS_MAX_ORIGINS + 2][256]; /* configured, or the defaults */
	size_t norigins;
};

/* The peer's address from the text libwebsockets gives; text that is no
 * address ("?": the peer could not be read) is AF_UNSPEC, which counts as
 * a source of its own (common/source_key.h). */
static void peer_addr(const char *ip, struct sockaddr_storage *out)
{
	(void)source_addr_parse(ip, out);
}

static struct conn *session_find(struct ws_server *w, uint64_t id)
{
	struct conn *c;

	for (c = w->sessions[id % SESSION_BUCKETS]; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void session_unlink(struct ws_server *w, struct conn *c)
{
	struct conn **pp = &w->sessions[c->id % SESSION_BUCKETS];

	while (*pp != NULL && *pp != c)
		pp = &(*pp)->next;
	if (*pp == c)
		*pp = c->next;
}

static void queue_free(struct conn *c)
{
	struct out_msg *m, *next;

	for (m = c->head; m != NULL; m = next) {
		next = m->next;
		free(m);
	}
	c->head = c->tail = NULL;
	c->queued = 0;
}

/* Drops c's queued update, if any (lws_write takes a message whole, so
 * a queued one has not been started). */
static void drop_update(struct conn *c)
{
	struct out_msg **pp, *prev = NULL;

	for (pp = &c->head; *pp != NULL; prev = *pp, pp = &(*pp)->next) {
		if ((*pp)->update) {
			struct out_msg *m = *pp;
			*pp = m->next;
			if (c->tail == m)
				c->tail = prev;
			free(m);
			return;
		}
	}
}

static void enqueue(struct ws_server *w, struct conn *c, const char *text, size_t len,
    bool update)
{
	struct out_msg *m;

	/* A reader that does not keep up is closed, not buffered forever. */
	if (!update && c->queued + len > WS_MAX_QUEUED) {
		ws_server_close(w, c->id, "too slow");
		return;
	}
	m = malloc(sizeof(*m) + LWS_PRE + len);
	if (m == NULL) {
		ws_server_close(w, c->id, "out of memory");
		return;
	}
	if (update)
		drop_update(c);
	m->next = NULL;
	m->len = len;
	m->update = update;
	memcpy(m->buf + LWS_PRE, text, len);
	if (c->tail != NULL)
		c->tail->next = m;
	else
		c->head = m;
	c->tail = m;
	if (!update)
		c->queued += len;
	lws_callback_on_writable(c->wsi);
}

void ws_server_send(void *ctx, uint64_t session, const char *text, size_t len)
{
	struct ws_server *w = ctx;
	struct conn *c = session_find(w, session);

	if (c != NULL && !c->closing)
		enqueue(w, c, text, len, false);
}

/* An update (a pushed contacts list) makes the one queued before it
 * stale: it replaces it, so a session has at most one, and it is not
 * counted against WS_MAX_QUEUED. A push of a list of 10,000 users
 * (670 KB) while the answer to a contacts request is still queued would
 * otherwise close a reader that does nothing wrong. */
void ws_server_send_update(void *ctx, uint64_t session, const char *text, size_t len)
{
	struct ws_server *w = ctx;
	struct conn *c = session_find(w, session);

	if (c != NULL && !c->closing)
		enqueue(w, c, text, len, true);
}

void ws_server_close(void *ctx, uint64_t session, const char *why)
{
	struct ws_server *w = ctx;
	struct conn *c = session_find(w, session);

	if (c == NULL || c->closing)
		return;
	log_debug("signaling: closing session %llu from %s: %s",
	    (unsigned long long)session, c->ip, why);
	c->closing = true;
	/* What is queued (the error that explains the close) goes first,
	 * for at most 2 s: nothing re-arms this timeout (ws_receive()). */
	lws_callback_on_writable(c->wsi);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
	/* The hub lets go of the session now, not when the connection is
	 * gone: a client that stops reading would otherwise keep its calls,
	 * their credentials and its media for as long as it likes. */
	if (w->hub != NULL)
		hub_session_closing(w->hub, session, clock_now());
}

/* --- the upgrade ------------------------------------------------------- */

static bool origin_allowed(struct ws_server *w, const char *origin)
{
	size_t i;

	for (i = 0; i < w->norigins; i++)
		if (strcmp(w->origins[i], origin) == 0)
			return true;
	return false;
}

/* Returns 0 to let the upgrade proceed, >0 after answering it. */
static int confirm_upgrade(struct ws_server *w, struct lws *wsi)
{
	char uri[64], origin[256], peer[INET6_ADDRSTRLEN];
	struct sockaddr_storage ss;

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0 ||
	    strcmp(uri, "/ws") != 0) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return 1;
	}
	/* Browsers always send Origin on a WebSocket upgrade; a page from
	 * another site must not drive a user's session (cross-site
	 * WebSocket hijacking). Clients that are not browsers send none and
	 * have no ambient credentials to abuse. */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) > 0) {
		if (lws_hdr_copy(wsi, origin, sizeof(origin), WSI_TOKEN_ORIGIN) <= 0 ||
		    !origin_allowed(w, origin)) {
			char esc[300];
			log_escape(esc, sizeof(esc), (const uint8_t *)origin, strnlen(origin, sizeof(origin)));
			log_info("signaling: upgrade from origin \"%s\" refused", esc);
			lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
			return 1;
		}
	}
	if (lws_get_peer_simple(wsi, peer, sizeof(peer)) == NULL)
		return 0;
	if (w->cfg.blocked != NULL && w->cfg.blocked(w->cfg.blocked_ctx, peer)) {
		log_info("signaling: upgrade from blocked source %s refused", peer);
		lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN, NULL);
		return 1;
	}
	/* Over the per-source limit: refused before the 101, with a status
	 * the client can read, rather than cut off after it. */
	peer_addr(peer, &ss);
	if (conn_limit_count(w->per_source, (const struct sockaddr *)&ss) >= w->per_source_max) {
		log_warn("signaling: upgrade from %s refused: %u connections from its source",
		    peer, (unsigned)w->per_source_max);
		lws_return_http_status(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE, NULL);
		return 1;
	}
	return 0;
}

/* --- HTTP: the demo page ----------------------------------------------- */

static const char csp[] =
    "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob: mediastream:; "
    "img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'";

static int http_request(struct conn *c, struct lws *wsi, const char *path)
{
	unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
	    *end = buf + sizeof(buf) - 1;
	const struct web_asset *a;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0) {
		lws_return_http_status(wsi, HTTP_STATUS_METHOD_NOT_ALLOWED, NULL);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	for (a = web_assets; a->path != NULL; a++)
		if (strcmp(a->path, path) == 0)
			break;
	if (a->path == NULL) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	if (lws_add_http_common_headers(wsi, HTTP_STATUS_OK, a->content_type,
	    (lws_filepos_t)a->len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"content-security-policy:",
	    (const unsigned char *)csp, (int)strlen(csp), &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
	    (const unsigned char *)"nosniff", 7, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"referrer-policy:",
	    (const unsigned char *)"no-referrer", 11, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
	    (const unsigned char *)"no-store", 8, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	c->asset = a;
	c->sent = 0;
	lws_callback_on_writable(wsi);
	return 0;
}

static int http_writeable(struct conn *c, struct lws *wsi)
{
	unsigned char buf[LWS_PRE + HTTP_CHUNK];
	size_t n;
	bool last;

	if (c->asset == NULL)
		return 0;
	n = c->asset->len - c->sent;
	if (n > HTTP_CHUNK)
		n = HTTP_CHUNK;
	last = c->sent + n == c->asset->len;
	memcpy(buf + LWS_PRE, c->asset->data + c->sent, n);
	if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL :
	    LWS_WRITE_HTTP) != (int)n)
		return -1;
	c->sent += n;
	if (!last) {
		lws_callback_on_writable(wsi);
		return 0;
	}
	c->asset = NULL;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* --- WebSocket sessions ------------------------------------------------ */

static int ws_established(struct ws_server *w, struct conn *c, struct lws *wsi)
{
	struct sockaddr_storage from;

	c->w = w;
	c->wsi = wsi;
	if (lws_get_peer_simple(wsi, c->ip, sizeof(c->ip)) == NULL)
		snprintf(c->ip, sizeof(c->ip), "?");
	peer_addr(c->ip, &c->src);
	if (w->nsessions >= WS_MAX_CONNS ||
	    conn_limit_take(w->per_source, (const struct sockaddr *)&c->src) != 0) {
		log_info("signaling: connection from %s refused: too many connections", c->ip);
		return -1;
	}
	c->counted = true;
	c->id = ++w->next_id;
	c->next = w->sessions[c->id % SESSION_BUCKETS];
	w->sessions[c->id % SESSION_BUCKETS] = c;
	w->nsessions++;
	/* The full address, port included, for the audit trail. */
	memset(&from, 0, sizeof(from));
	{
		socklen_t flen = sizeof(from);
		if (getpeername(lws_get_socket_fd(wsi), (struct sockaddr *)&from, &flen) != 0)
			memset(&from, 0, sizeof(from));
	}
	lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, WS_IDLE_TIMEOUT_S);
	c->timeout_armed_ms = clock_mono_ms();
	if (w->hub != NULL)
		hub_session_open(w->hub, c->id, (const struct sockaddr *)&from, clock_now());
	return 0;
}

static int ws_receive(struct ws_server *w, struct conn *c, struct lws *wsi,
    const void *in, size_t len)
{
	size_t max = w->cfg.max_message ? w->cfg.max_message : WS_MAX_MESSAGE;
	bool final = lws_is_final_fragment(wsi);
	uint64_t now = clock_mono_ms();
	uint8_t *grown;

	/* A session being closed reads nothing more, and what it sends must
	 * not replace the close timeout with the idle one. */
	if (c->closing)
		return 0;
	/* Setting a timeout walks a list sorted over every session, so it is
	 * re-armed at most every few seconds, not on every frame. */
	if (now - c->timeout_armed_ms > WS_TIMEOUT_REARM_MS) {
		lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, WS_IDLE_TIMEOUT_S);
		c->timeout_armed_ms = now;
	}
	if (lws_frame_is_binary(wsi) || c->oversized || len > max - c->inlen) {
		/* Drop the rest of this message, then answer once. */
		c->oversized = true;
		free(c->in);
		c->in = NULL;
		c->inlen = 0;
		if (final) {
			c->oversized = false;
			if (w->hub != NULL)
				hub_session_oversized(w->hub, c->id, clock_now());
		}
		return 0;
	}
	if (final && c->inlen == 0) {
		if (w->hub != NULL)
			hub_session_message(w->hub, c->id, in, len, clock_now());
		return 0;
	}
	grown = realloc(c->in, c->inlen + len + 1);
	if (grown == NULL)
		return -1;
	c->in = grown;
	memcpy(c->in + c->inlen, in, len);
	c->inlen += len;
	if (final) {
		if (w->hub != NULL)
			hub_session_message(w->hub, c->id, (const char *)c->in, c->inlen,
			    clock_now());
		free(c->in);
		c->in = NULL;
		c->inlen = 0;
	}
	return 0;
}

static int ws_writeable(struct conn *c, struct lws *wsi)
{
	struct out_msg *m = c->head;

	if (m == NULL) {
		if (c->closing) {
			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
			return -1;
		}
		return 0;
	}
	if (lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT) < (int)m->len)
		return -1;
	c->head = m->next;
	if (c->head == NULL)
		c->tail = NULL;
	if (!m->update)
		c->queued -= m->len;
	free(m);
	if (c->head != NULL || c->closing)
		lws_callback_on_writable(wsi);
	return 0;
}

static void ws_closed(struct ws_server *w, struct conn *c)
{
	if (c->id != 0) {
		session_unlink(w, c);
		w->nsessions--;
		if (w->hub != NULL)
			hub_session_closed(w->hub, c->id, clock_now());
		c->id = 0;
	}
	if (c->counted && c->w != NULL)
		conn_limit_release(w->per_source, (const struct sockaddr *)&c->src);
	c->counted = false;
	queue_free(c);
	free(c->in);
	c->in = NULL;
}

static int callback_locked(struct lws *wsi, enum lws_callback_reasons reason, void *user,
    void *in, size_t len)
{
	struct ws_server **pw = lws_protocol_vh_priv_get(lws_get_vhost(wsi),
	    lws_get_protocol(wsi));
	struct ws_server *w = pw != NULL ? *pw : NULL;
	struct conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return http_request(c, wsi, in != NULL ? (const char *)in : "");
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return http_writeable(c, wsi);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return w != NULL ? confirm_upgrade(w, wsi) : -1;
	case LWS_CALLBACK_ESTABLISHED:
		return w != NULL ? ws_established(w, c, wsi) : -1;
	case LWS_CALLBACK_RECEIVE:
		return ws_receive(w, c, wsi, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ws_writeable(c, wsi);
	case LWS_CALLBACK_CLOSED:
		if (w != NULL && c != NULL)
			ws_closed(w, c);
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
	{ "gatehouse", callback, sizeof(struct conn), 4096, 0, NULL, 0 },
	{ NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* The listener's own origins under one scheme, if both fit. */
static void add_own_origins(struct ws_server *w, const char *scheme)
{
	if (w->norigins + 2 > sizeof(w->origins) / sizeof(w->origins[0]))
		return;
	config_own_origins(&w->cfg.listen, scheme, w->origins + w->norigins);
	w->norigins += 2;
}

/* The listener's own origins, when none are configured: a page served
 * by this listener may use it, under each scheme it is served with. */
static void default_origins(struct ws_server *w)
{
	if (w->cfg.cert_file != NULL)
		add_own_origins(w, "https");
	if (w->cfg.cert_file == NULL || w->cfg.also_plain)
		add_own_origins(w, "http");
}

struct ws_server *ws_server_new(struct lws_context *ctx,
    const struct ws_server_config *cfg, char *err, size_t errlen)
{
	struct lws_context_creation_info info;
	struct ws_server *w = calloc(1, sizeof(*w));
	char iface[INET6_ADDRSTRLEN];
	void *priv;
	size_t i;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* Plain beside TLS would let a client off the host fall back to
	 * clear text; DESIGN.md allows plain listeners on loopback only. */
	if (cfg->also_plain && (cfg->cert_file == NULL ||
	    !config_addr_is_loopback(&cfg->listen))) {
		snprintf(err, errlen, "signaling: plain HTTP/WS beside TLS is for a "
		    "loopback listener with a certificate only");
		free(w);
		return NULL;
	}
	w->cfg = *cfg;
	w->per_source_max = cfg->conns_per_source != 0 ? cfg->conns_per_source :
	    WS_CONNS_PER_SOURCE;
	if ((w->per_source = conn_limit_new(w->per_source_max)) == NULL) {
		snprintf(err, errlen, "out of memory");
		free(w);
		return NULL;
	}
	for (i = 0; i < cfg->norigins && i < WS_MAX_ORIGINS; i++)
		snprintf(w->origins[w->norigins++], sizeof(w->origins[0]), "%s", cfg->origins[i]);
	if (w->norigins == 0)
		default_origins(w);
	if (cfg->listen.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&cfg->listen)->sin6_addr,
		    iface, sizeof(iface));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&cfg->listen)->sin_addr,
		    iface, sizeof(iface));
	memset(&info, 0, sizeof(info));
	info.vhost_name = "signaling";
	info.iface = iface;
	info.port = ntohs(cfg->listen.ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)&cfg->listen)->sin6_port :
	    ((const struct sockaddr_in *)&cfg->listen)->sin_port);
	info.protocols = protocols;
	info.timeout_secs = WS_HANDSHAKE_TIMEOUT_S;
	info.server_string = "gatehouse";
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 |
	    (cfg->listen.ss_family == AF_INET6 ? LWS_SERVER_OPTION_IPV6_V6ONLY_MODIFY |
	    LWS_SERVER_OPTION_IPV6_V6ONLY_VALUE : LWS_SERVER_OPTION_DISABLE_IPV6);
	if (cfg->cert_file != NULL) {
		info.ssl_cert_filepath = cfg->cert_file;
		info.ssl_private_key_filepath = cfg->key_file;
		info.ssl_cipher_list = "ECDHE+AESGCM:ECDHE+CHACHA20";
		info.ssl_options_set = SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 |
		    SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION;
		/* libwebsockets turns TLS on for a vhost only with this option on
		 * the vhost itself; without it the listener would speak plain
		 * HTTP while the log says https. */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		/* libwebsockets peeks at the first byte: a TLS record starts
		 * with 0x16, an HTTP request with a letter. The first option
		 * only keeps such a connection open; the second serves it. */
		if (cfg->also_plain)
			info.options |= LWS_SERVER_OPTION_ALLOW_NON_SSL_ON_SSL_PORT |
			    LWS_SERVER_OPTION_ALLOW_HTTP_ON_HTTPS_LISTENER;
	}
	w->vhost = lws_create_vhost(ctx, &info);
	if (w->vhost == NULL) {
		snprintf(err, errlen, "cannot listen on %s:%d for signaling", iface, info.port);
		ws_server_free(w);
		return NULL;
	}
	priv = lws_protocol_vh_priv_zalloc(w->vhost, &protocols[0], sizeof(void *));
	if (priv == NULL) {
		snprintf(err, errlen, "out of memory");
		ws_server_free(w);
		return NULL;
	}
	/* The callback finds the server through the vhost's private data. */
	*(struct ws_server **)priv = w;
	return w;
}

void ws_server_set_hub(struct ws_server *w, struct hub *h)
{
	w->hub = h;
}

void ws_server_free(struct ws_server *w)
{
	if (w == NULL)
		return;
	conn_limit_free(w->per_source);
	free(w);
}
