/* TURN allocation state (RFC 8656 §2.2-2.5): allocations indexed by their
 * client 5-tuple and by their relayed transport address, each with its
 * permissions and channel bindings. Pure state: no sockets, no clock, no
 * policy decisions (the server makes those and passes the time in). */
#ifndef GH_TURN_ALLOC_H
#define GH_TURN_ALLOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "turn/auth.h"

enum turn_transport {
	TURN_TP_UDP = 0,
	TURN_TP_TCP = 1,
	TURN_TP_TLS = 2,
};

/* Where a client message came from: the client side of the 5-tuple. */
struct turn_client {
	enum turn_transport transport;
	struct sockaddr_storage remote; /* client address as seen by us */
	struct sockaddr_storage local;  /* our listener address */
	uint64_t conn_id;               /* TCP/TLS connection; 0 for UDP */
};

/* A peer address in the room it needs (28 bytes, not sockaddr_storage's
 * 128): permissions and channels are per allocation and there may be tens
 * of thousands of allocations. */
union turn_peer_addr {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

struct turn_perm {
	union turn_peer_addr ip;    /* port ignored */
	uint64_t expires_ms;
	/* Set when the address policy refused this IP and the permit hook let
	 * it through as another allocation's relayed address: then IP alone
	 * is not enough, and every datagram's exact IP and port is checked
	 * with the hook again. */
	bool exact;
};

struct turn_channel {
	uint16_t number;                /* TURN_CHANNEL_MIN-MAX; 0 = free slot */
	union turn_peer_addr peer;
	uint64_t expires_ms;
};

struct turn_alloc {
	struct turn_client client;
	struct turn_identity id;
	struct sockaddr_storage relayed;    /* bound relay socket address */
	struct sockaddr_storage advertised; /* relayed, or external IP + port */
	void *relay;                        /* I/O layer's relay socket handle */
	uint64_t expires_ms;
	uint64_t created_ms;
	uint8_t alloc_txid[12];             /* the Allocate that created it */
	bool sha256;                        /* client authenticates with SHA-256 keys */
	uint8_t key[32];                    /* long-term key; wiped on free */
	size_t key_len;
	/* Owned; grown on demand (nperms used of perms_room allocated) up to
	 * the limit perms_cap, so an idle allocation costs little. */
	struct turn_perm *perms;
	size_t nperms, perms_room, perms_cap;
	struct turn_channel *channels;      /* owned, as perms */
	size_t nchannels, channels_room, channels_cap;
	/* Token bucket for bytes per second (both directions together). */
	uint64_t bucket_bytes;
	uint64_t bucket_ms;
	/* Flow totals, for logs and (later) audit. */
	uint64_t bytes_to_peer, bytes_from_peer;
	uint64_t pkts_to_peer, pkts_from_peer;
	uint64_t pkts_unclassified;         /* sent: not STUN, DTLS or RTP/RTCP */
	uint8_t inspect_flags;              /* the on_dtls hook's own (server.h) */
	/* Table links (alloc.c). */
	struct turn_alloc *next_tuple, *next_relayed, *next_all, *prev_all;
};

struct alloc_table;

/* Returns owned: free with alloc_table_free(). NULL on ENOMEM. */
struct alloc_table *alloc_table_new(void);
/* Frees every allocation (without calling anyone back) and the table. */
void alloc_table_free(struct alloc_table *t);

/* Returns owned-by-table: a new zeroed allocation for this client that
 * may hold up to the given numbers of permissions and channels, already
 * indexed by 5-tuple. Its relayed address is indexed once the caller sets
 * it with alloc_table_set_relayed(). NULL on ENOMEM. */
struct turn_alloc *alloc_table_add(struct alloc_table *t,
    const struct turn_client *c, size_t max_perms, size_t max_channels);
void alloc_table_set_relayed(struct alloc_table *t, struct turn_alloc *a,
    const struct sockaddr *relayed);
/* Unlinks and frees a (key wiped). */
void alloc_table_remove(struct alloc_table *t, struct turn_alloc *a);

/* Lookups; borrowed results valid until the allocation is removed. */
struct turn_alloc *alloc_table_find(const struct alloc_table *t,
    const struct turn_client *c);
struct turn_alloc *alloc_table_find_relayed(const struct alloc_table *t,
    const struct sockaddr *relayed);
size_t alloc_table_count(const struct alloc_table *t);
/* Allocations of one user (static name or call participant). */
size_t alloc_table_count_user(const struct alloc_table *t, const char *user);
/* Iteration over all allocations: first, then next until NULL. Safe to
 * remove the current one after taking next. */
struct turn_alloc *alloc_table_first(const struct alloc_table *t);
static inline struct turn_alloc *alloc_next(const struct turn_alloc *a)
{
	return a->next_all;
}

/* Permissions and channels of one allocation. */
struct turn_perm *alloc_perm_find(struct turn_alloc *a, const struct sockaddr *peer,
    uint64_t now_ms);
/* Makes sure that n more permissions (channels) can be set without
 * failing; -1 past the limit or when out of memory. Pointers returned by
 * the lookups before it may move. */
int alloc_perm_reserve(struct turn_alloc *a, size_t n);
int alloc_channel_reserve(struct turn_alloc *a, size_t n);
/* Installs or refreshes; -1 when the allocation has no room left. */
int alloc_perm_set(struct turn_alloc *a, const struct sockaddr *peer, bool exact,
    uint64_t expires_ms);
struct turn_channel *alloc_channel_by_number(struct turn_alloc *a, uint16_t number,
    uint64_t now_ms);
struct turn_channel *alloc_channel_by_peer(struct turn_alloc *a,
    const struct sockaddr *peer, uint64_t now_ms);
/* Binds or refreshes; -1 when full. The caller has checked conflicts. */
int alloc_channel_set(struct turn_alloc *a, uint16_t number,
    const struct sockaddr *peer, uint64_t expires_ms);
/* Drops expired permissions and channels. */
void alloc_expire_children(struct turn_alloc *a, uint64_t now_ms);

/* Address helpers shared by the TURN core. */
bool sockaddr_equal(const struct sockaddr *a, const struct sockaddr *b);
uint64_t sockaddr_hash(const struct sockaddr *sa, bool with_port);

/* The length to pass with an IPv4 or IPv6 address. */
static inline socklen_t sockaddr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
}

#endif
