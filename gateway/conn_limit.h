/* Concurrent connections per source (an IPv4 address or an IPv6 /64,
 * common/source_key.h), so that one source cannot take every slot: the
 * relay's TCP/TLS connections (RELAY_IO_MAX_CONNS) and the signaling
 * WebSocket connections (WS_MAX_CONNS). Bookkeeping only: no sockets, no
 * clock, no logging; relay_io.c and ws_server.c ask and act. */
#ifndef GH_GATEWAY_CONN_LIMIT_H
#define GH_GATEWAY_CONN_LIMIT_H

#include <stdint.h>
#include <sys/socket.h>

struct conn_limit;

/* Returns owned: free with conn_limit_free(). per_source >= 1. NULL on
 * ENOMEM. */
struct conn_limit *conn_limit_new(uint32_t per_source);
void conn_limit_free(struct conn_limit *l);

/* Counts one more connection from src. 0, or -1 when src already has
 * per_source connections or memory ran out; then nothing was counted. */
int conn_limit_take(struct conn_limit *l, const struct sockaddr *src);
/* A connection from src that conn_limit_take() counted has ended. */
void conn_limit_release(struct conn_limit *l, const struct sockaddr *src);
/* How many connections src's source holds now. */
uint32_t conn_limit_count(const struct conn_limit *l, const struct sockaddr *src);

#endif
