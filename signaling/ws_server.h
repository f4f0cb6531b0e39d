/* The signaling listener on libwebsockets: the WebSocket endpoint /ws
 * (Origin allow-list on the upgrade, message and connection limits,
 * timeouts) and the demo page at / and /gatehouse.js. It moves whole
 * text messages between the network and the hub and decides nothing
 * about their meaning. */
#ifndef GH_SIGNALING_WS_SERVER_H
#define GH_SIGNALING_WS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "signaling/hub.h"

struct lws_context;

#define WS_MAX_MESSAGE (64 * 1024)
#define WS_CONNS_PER_SOURCE 32        /* default of signaling.connections_per_source */
#define WS_MAX_CONNS 20000
#define WS_IDLE_TIMEOUT_S 120         /* clients ping more often than this */
#define WS_TIMEOUT_REARM_MS 5000
#define WS_HANDSHAKE_TIMEOUT_S 10
#define WS_MAX_QUEUED (1024 * 1024)   /* bytes waiting for a slow reader */
#define WS_MAX_ORIGINS 16

struct ws_server_config {
	struct sockaddr_storage listen;
	const char *cert_file;     /* NULL: plain (only allowed on loopback) */
	const char *key_file;
	/* With cert_file: plain HTTP/WS is served on the same port beside
	 * HTTPS/WSS, told apart by the first byte a client sends. For
	 * loopback listeners only: ws_server_new() refuses it elsewhere. */
	bool also_plain;
	/* Origins allowed on the upgrade. Empty: only the listener's own
	 * origins (http(s)://localhost:PORT and the listen address, under
	 * each scheme the listener serves). */
	const char *origins[WS_MAX_ORIGINS];
	size_t norigins;
	size_t max_message;        /* 0: WS_MAX_MESSAGE */
	/* Connections at once from one source (signaling.connections_per_source);
	 * 0: WS_CONNS_PER_SOURCE. */
	uint32_t conns_per_source;
	/* Optional: is this source address (text) blocked? Refused with 403
	 * on the upgrade. */
	bool (*blocked)(void *ctx, const char *ip);
	void *blocked_ctx;
};

struct ws_server;

/* Creates the listener on the loop's libwebsockets context. The hub is
 * set afterwards (it needs the server's ops). Returns owned: free with
 * ws_server_free() after the context is destroyed (which closes the
 * sessions through this server and its hub). NULL with err. */
struct ws_server *ws_server_new(struct lws_context *ctx,
    const struct ws_server_config *cfg, char *err, size_t errlen);
void ws_server_free(struct ws_server *w);
void ws_server_set_hub(struct ws_server *w, struct hub *h);

/* The hub ops this server implements (ctx is the ws_server). */
void ws_server_send(void *ctx, uint64_t session, const char *text, size_t len);
void ws_server_send_update(void *ctx, uint64_t session, const char *text, size_t len);
void ws_server_close(void *ctx, uint64_t session, const char *why);

#endif
