/* Which peer addresses the relay may send to: default deny for every
 * address that is not plainly public unicast, however it is spelled.
 *
 * Pure: no I/O. IPv4 addresses are handled as IPv4-mapped IPv6 internally,
 * and IPv6 spellings that embed an IPv4 address (IPv4-mapped,
 * IPv4-compatible, NAT64 64:ff9b::/96, 6to4 2002::/16, Teredo 2001::/32)
 * are judged by the IPv4 address they carry. The one exception the relay
 * makes (relayed transport addresses of Gatehouse's own allocations) is
 * not decided here: the TURN server asks its permit hook for that. */
#ifndef GH_TURN_PEER_POLICY_H
#define GH_TURN_PEER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A CIDR prefix. IPv4 prefixes are stored IPv4-mapped (::ffff:a.b.c.d)
 * with prefix_len + 96, so one comparison serves both families. */
struct peer_cidr {
	uint8_t addr[16];
	uint8_t prefix_len; /* 0..128 */
};

#define PEER_POLICY_MAX_CIDRS 64
#define PEER_POLICY_MAX_OWN 16

struct peer_policy {
	/* Operator additions. deny wins over allow; allow overrides the
	 * built-in refused ranges (to reach, say, a private media server). */
	struct peer_cidr allow[PEER_POLICY_MAX_CIDRS];
	size_t nallow;
	struct peer_cidr deny[PEER_POLICY_MAX_CIDRS];
	size_t ndeny;
	/* The gateway's own addresses (listeners, relay and external IP):
	 * always refused, so that a relay sharing its IP with other services
	 * cannot reach them. Stored as 16 bytes like peer_cidr.addr. */
	uint8_t own[PEER_POLICY_MAX_OWN][16];
	size_t nown;
};

enum peer_verdict {
	PEER_ALLOWED = 0,
	PEER_REFUSED_RANGE = 1,    /* a built-in special-purpose range */
	PEER_REFUSED_OPERATOR = 2, /* an operator deny CIDR */
	PEER_REFUSED_OWN = 3,      /* one of the gateway's own addresses */
	PEER_REFUSED_BAD = 4,      /* not an IPv4/IPv6 address, or port 0 */
};

/* Parses "a.b.c.d/n", "v6addr/n" or a bare address (full length).
 * Host bits beyond the prefix must be zero. Returns 0 or -1. */
int peer_cidr_parse(const char *s, struct peer_cidr *out);

/* Adds an address (sockaddr_in/in6; port ignored) to p->own. -1 if full. */
int peer_policy_add_own(struct peer_policy *p, const struct sockaddr *sa);

/* Judges a peer address (sockaddr_in or sockaddr_in6 with its port).
 * Order: bad → own → operator deny → operator allow → built-in ranges →
 * allowed. When why is not NULL it is set to a static, human-readable
 * reason ("loopback", "private", "IPv4-mapped loopback", "operator deny",
 * "gateway address", ...). */
enum peer_verdict peer_policy_check(const struct peer_policy *p,
    const struct sockaddr *sa, const char **why);

/* True when the two addresses (sockaddr_in/in6) have the same IP, treating
 * an IPv4 address and its IPv4-mapped IPv6 spelling as the same. */
bool peer_same_ip(const struct sockaddr *a, const struct sockaddr *b);

#endif
