/* The relay's sockets and event loop (epoll): TURN listeners over UDP,
 * TCP and TLS, one UDP socket per allocation from the configured port
 * range, stream framing with bounded buffers and timeouts. It feeds the
 * sans-I/O TURN server and carries out what the server asks through its
 * ops. */
#ifndef GH_GATEWAY_RELAY_IO_H
#define GH_GATEWAY_RELAY_IO_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "gateway/config.h"
#include "turn/server.h"

#define RELAY_IO_FIRST_MESSAGE_MS (10 * 1000) /* TCP/TLS: handshake and first message */
#define RELAY_IO_IDLE_MS (600 * 1000)         /* TCP/TLS: nothing received */
/* TCP/TLS: no allocation, since the connection was accepted or since its
 * allocation ended */
#define RELAY_IO_NO_ALLOC_MS (30 * 1000)
#define RELAY_IO_MAX_CONNS CONFIG_MAX_TURN_CONNS /* TCP/TLS, in all */
/* Per stream connection; allocated only while output waits for the
 * socket. */
#define RELAY_IO_MAX_OUT (256 * 1024)

struct relay_io;

/* Binds every TURN listener of cfg and prepares the relay port range.
 * tls (may be NULL when no TLS listener is configured) is shared: the
 * relay_io takes its own reference. Returns owned: free with relay_io_free().
 * NULL with err on failure (the message names the address). */
struct relay_io *relay_io_new(const struct config_turn *cfg, SSL_CTX *tls,
    char *err, size_t errlen);
void relay_io_free(struct relay_io *io);

/* The server that receives what the sockets read; borrowed. */
void relay_io_set_server(struct relay_io *io, struct turn_server *s);

/* The I/O half of struct turn_server_ops, for the daemon to forward to. */
void relay_io_send_client(struct relay_io *io, const struct turn_client *c,
    const uint8_t *buf, size_t len);
int relay_io_relay_open(struct relay_io *io, struct turn_alloc *owner,
    const struct turn_relay_req *req, struct sockaddr_storage *relayed,
    void **handle);
void relay_io_relay_unreserve(struct relay_io *io, uint16_t port);
void relay_io_relay_close(struct relay_io *io, void *handle);
void relay_io_relay_send(struct relay_io *io, void *handle,
    const struct sockaddr *peer, const uint8_t *buf, size_t len);

/* The relay's event loop, run by the relay thread (relay_thread.h):
 * relay_io_wait() blocks up to timeout_ms (-1: no limit; a timer of the
 * relay_io ends a wait once a second anyway) for socket events without
 * any lock; relay_io_handle() then handles them, and when that timer
 * fired, the expiry of allocations, permissions, channels and idle connections, with the
 * state lock held. Handles closed meanwhile by the other thread (a relay
 * socket of a call that ended) are skipped, and freed only at the end of
 * relay_io_handle(). relay_io_wait() does not block while a TLS
 * connection has input that OpenSSL read from its socket but the last
 * batch left unread (its read rounds ran out). relay_io_wake() makes a
 * wait return at once; it is safe from any thread. */
#define RELAY_IO_EVENTS 64
struct relay_io_events {
	struct epoll_event ev[RELAY_IO_EVENTS];
	int n;
};
void relay_io_wait(struct relay_io *io, struct relay_io_events *e, int timeout_ms);
void relay_io_handle(struct relay_io *io, const struct relay_io_events *e);
void relay_io_wake(struct relay_io *io);

/* Stream connections, for metrics. */
struct relay_io_stats {
	uint64_t conns;                 /* open now */
	/* Closed at accept since start: over turn.limits.connections_per_source
	 * (per IPv4 address or IPv6 /64), over RELAY_IO_MAX_CONNS. */
	uint64_t refused_per_source, refused_total;
};
void relay_io_stats(const struct relay_io *io, struct relay_io_stats *out);

/* Wall-clock milliseconds: nonces and credentials carry UNIX times that
 * other relay nodes must understand. */
uint64_t relay_io_now_ms(void);

#endif
