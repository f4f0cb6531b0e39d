/* The TURN server (RFC 8656) over STUN (RFC 8489), sans-I/O.
 *
 * The I/O layer hands it one message or ChannelData frame at a time with
 * the time; it answers through the ops table (send to a client, open,
 * send on and close relay sockets) and never opens a socket, reads a
 * clock or makes a policy decision itself: whether an allocation may
 * reach an address that the address policy refuses (another allocation's
 * relayed address) is asked through ops->permit_peer, the pion pattern. */
#ifndef GH_TURN_SERVER_H
#define GH_TURN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/clock.h"
#include "common/source_key.h"
#include "turn/alloc.h"
#include "turn/auth.h"
#include "turn/dtls_peek.h"
#include "turn/peer_policy.h"

#define TURN_PERMISSION_LIFETIME_MS (300 * 1000)  /* RFC 8656 §9 */
#define TURN_CHANNEL_LIFETIME_MS (600 * 1000)     /* RFC 8656 §12 */
#define TURN_AUTH_WINDOW_MS (10 * 1000)           /* failure counting window */
#define TURN_AUTH_BLOCK_MS (30 * 1000)            /* refusal once over limit */
#define TURN_RESERVATION_MS (30 * 1000)           /* RFC 8656 §7.2: ~30 s */
#define TURN_MAX_RESERVATIONS 256
#define TURN_RESERVATIONS_PER_USER 4              /* of the 256, at a time */

/* The time of one batch of work (struct clock_pair, common/clock.h) is
 * read once by the I/O layer and handed down: the server reads no clock.
 * Two clocks for two jobs:
 * mono_ms measures every duration the server keeps (lifetimes of
 * allocations, permissions, channels and reservations, the failure
 * window, token buckets), so a step of the system clock neither expires
 * nor prolongs them; wall_ms (UNIX time) is used only for instants other
 * nodes or the credentials agree on: nonces, the expiry inside call
 * credentials, and the hooks below, whose records are UNIX times. */

struct turn_server_config {
	char realm[128];
	struct turn_auth auth;             /* secret and static users */
	const struct peer_policy *peers;   /* borrowed; outlives the server */
	int relay_family;                  /* AF_INET or AF_INET6 */
	bool has_external;
	struct sockaddr_storage external;  /* advertised instead of relay IP */
	uint32_t default_lifetime_s;       /* 600 */
	uint32_t max_lifetime_s;           /* 3600 */
	uint32_t allocations_total;
	uint32_t allocations_per_user;
	uint32_t permissions_per_allocation;
	uint32_t channels_per_allocation;
	uint64_t bytes_per_s_per_allocation;
	uint32_t auth_failures_per_source;
	/* Drop what a call's allocation sends that is not STUN, DTLS or
	 * RTP/RTCP (RFC 9443), rather than only count it. DTLS handshake
	 * records that dtls_peek() could not read are dropped either way. */
	bool media_only;
};

/* What an Allocate asks of the relay socket (RFC 8656 §7.2). */
struct turn_relay_req {
	int family;          /* AF_INET or AF_INET6 */
	bool even_port;      /* EVEN-PORT */
	bool reserve_next;   /* EVEN-PORT with R: also hold port + 1 */
	bool dont_fragment;  /* DONT-FRAGMENT */
	uint16_t port;       /* non-zero: exactly this port, reserved earlier */
};

/* Security-relevant refusals, for logs, audit and alerts. */
enum turn_event {
	TURN_EV_AUTH_FAILED = 1,    /* unknown user, wrong key, revoked credentials */
	TURN_EV_SOURCE_BLOCKED = 2, /* a request ignored: too many failures */
	TURN_EV_PEER_REFUSED = 3,   /* a peer address refused (403) */
	TURN_EV_CALL_ENDED = 4,     /* genuine credentials of an ended call */
	TURN_EV_REFRESHED = 5,      /* an allocation's lifetime was extended */
};

struct turn_server_ops {
	void *ctx;
	/* Sends one message to a client. The server pads ChannelData for
	 * stream transports itself. Failure is not reported: UDP semantics. */
	void (*send_client)(void *ctx, const struct turn_client *c,
	    const uint8_t *buf, size_t len);
	/* Opens a relay socket on the relay IP as req asks. With
	 * req->reserve_next the port above the chosen even one is held for a
	 * later relay_open with req->port set, or relay_unreserve. Fills
	 * *relayed and *handle (the I/O layer's, passed back in relay_send
	 * and relay_close and given to turn_server_on_peer with the
	 * allocation). 0, or -1 when no port is free (the server answers
	 * 508). */
	int (*relay_open)(void *ctx, struct turn_alloc *owner,
	    const struct turn_relay_req *req, struct sockaddr_storage *relayed,
	    void **handle);
	void (*relay_close)(void *ctx, void *handle);
	/* Releases a port held by reserve_next that nobody claimed. */
	void (*relay_unreserve)(void *ctx, uint16_t port);
	void (*relay_send)(void *ctx, void *handle, const struct sockaddr *peer,
	    const uint8_t *buf, size_t len);
	/* The permit hook: asked when the address policy refuses peer (IP
	 * and port), and again for every datagram to or from such a peer.
	 * True lets it through, which should happen only for the relayed
	 * transport address of another allocation that `from` may reach.
	 * Must be cheap: it runs on the packet path. */
	bool (*permit_peer)(void *ctx, const struct turn_alloc *from,
	    const struct sockaddr *peer);
	/* Optional: is this client address blocked (an automatic response
	 * to an alert)? Everything from it is dropped. Runs per message, so
	 * it is given the UNIX time rather than reading a clock. */
	bool (*source_blocked)(void *ctx, const struct sockaddr *src, uint64_t mono_ms);
	/* Optional: may these call credentials (verified, unexpired) still
	 * be used? False unless their call is live (it ended, or it is not
	 * known here), so credentials die with the call rather than with
	 * their expiry. Not asked for static users. */
	bool (*credential_ok)(void *ctx, const struct turn_identity *id);
	/* Optional: a refusal happened. peer is the refused address for
	 * TURN_EV_PEER_REFUSED, else NULL; id is NULL before authentication. */
	void (*on_event)(void *ctx, enum turn_event ev, const struct turn_client *c,
	    const struct turn_identity *id, const struct sockaddr *peer);
	/* Optional: a DTLS datagram with handshake messages in the clear
	 * that a call's allocation sends, as dtls_peek() read it (p->cert
	 * points into the datagram). False drops it. Runs on the packet path,
	 * but only for a handful of datagrams per call. */
	bool (*on_dtls)(void *ctx, struct turn_alloc *from, const struct dtls_peek *p);
	/* Optional: told when an allocation is created and removed
	 * (reason: "expired", "refresh", "connection closed", "shutdown"). */
	void (*on_alloc)(void *ctx, const struct turn_alloc *a, bool created,
	    const char *reason);
};

struct turn_server;

/* Returns owned: free with turn_server_free(). cfg is copied; ops is
 * copied. NULL on ENOMEM. */
struct turn_server *turn_server_new(const struct turn_server_config *cfg,
    const struct turn_server_ops *ops);
/* Removes every allocation (closing relays) and frees. NULL is fine. */
void turn_server_free(struct turn_server *s);

/* One STUN message or ChannelData frame from a client (datagram, or a
 * frame cut by stun_frame_len on a stream). Never fails: bad input is
 * answered or dropped as RFC 8489/8656 say. */
void turn_server_on_client(struct turn_server *s, const struct turn_client *c,
    const uint8_t *buf, size_t len, struct clock_pair now);

/* One datagram that arrived on an allocation's relay socket from peer. */
void turn_server_on_peer(struct turn_server *s, struct turn_alloc *a,
    const struct sockaddr *peer, const uint8_t *buf, size_t len, struct clock_pair now);

/* A TCP/TLS client connection closed: its allocation goes at once. */
void turn_server_on_conn_closed(struct turn_server *s, uint64_t conn_id);
/* Whether a TCP/TLS client connection holds an allocation now. */
bool turn_server_conn_has_alloc(const struct turn_server *s, uint64_t conn_id);

/* Expires allocations, permissions and channels. Call about once a
 * second. */
void turn_server_tick(struct turn_server *s, struct clock_pair now);

/* Borrowed: the allocation whose relayed address is exactly this one, or
 * NULL. For the permit hook. */
struct turn_alloc *turn_server_find_relayed(struct turn_server *s,
    const struct sockaddr *relayed);

struct turn_stats;

/* Removes every allocation of this call (hangup); returns how many, and
 * when totals is not NULL what they relayed. */
size_t turn_server_remove_call(struct turn_server *s, const char *call,
    struct turn_stats *totals);

/* Removes every allocation whose client is inside this source (an IPv4
 * address or an IPv6 /64, common/source_key.h; any port, any transport):
 * what a blocked source has open. Returns how many. Not from inside one
 * of the server's own callbacks: it frees allocations the caller may
 * hold. */
size_t turn_server_remove_source(struct turn_server *s, const uint8_t source[SOURCE_KEY_LEN]);

size_t turn_server_alloc_count(const struct turn_server *s);

/* Totals relayed since start, for metrics. */
struct turn_stats {
	uint64_t bytes_to_peers, bytes_from_peers;
	uint64_t packets_to_peers, packets_from_peers;
	/* Of packets_to_peers: handed to another allocation of this server
	 * without a trip through the kernel (relay to relay). */
	uint64_t packets_relayed_locally;
	/* Sent by a call's allocation and not STUN, DTLS or RTP/RTCP, or
	 * malformed DTLS: relayed (and in packets_to_peers) unless
	 * media_only is set or it holds handshake records left unread. */
	uint64_t packets_unclassified;
};
void turn_server_stats(const struct turn_server *s, struct turn_stats *out);

/* Calls fn for every allocation (sampling for traffic detectors). */
void turn_server_each_alloc(struct turn_server *s,
    void (*fn)(void *ctx, const struct turn_alloc *a), void *ctx);

#endif
