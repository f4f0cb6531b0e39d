/* The key under which Gatehouse counts, blocks and names a client's
 * source: the relay's concurrent TCP/TLS connections (gateway/conn_limit.c),
 * its authentication failures (turn/srclimit.c), the login worker's checks
 * in flight (gateway/login_queue.c), the signaling connections per source
 * (signaling/ws_server.c, through conn_limit.c), the alert detectors' keys
 * (gateway/events.c) and the blocklist (gateway/blocklist.c). One key
 * everywhere, so that what a detector counts is what a block refuses. */
#ifndef GH_COMMON_SOURCE_KEY_H
#define GH_COMMON_SOURCE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SOURCE_KEY_LEN 16
/* A source's name: "192.0.2.1", or "2001:db8:1:2::/64" (INET6_ADDRSTRLEN + "/64"). */
#define SOURCE_NAME_MAX 50

/* IPv4, and IPv4-mapped IPv6, become the IPv4-mapped form of the address,
 * so both spellings count as one source. Any other IPv6 address is cut to
 * its /64 (the rest zeroed): a host, or a subscriber, is usually given a
 * whole /64 and can pick any address inside it, so counting /128s would
 * give it a fresh budget per address. Anything else (no address known)
 * is all ones, a multicast /64 that no client sends from, so that it
 * shares a source with no real address (::1's /64 is all zeros). */
static const uint8_t source_key_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static inline void source_key(const struct sockaddr *sa, uint8_t out[SOURCE_KEY_LEN])
{
	const uint8_t *a6;

	memset(out, 0, SOURCE_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		memcpy(out, source_key_mapped, sizeof(source_key_mapped));
		memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		a6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(a6, source_key_mapped, sizeof(source_key_mapped)) == 0)
			memcpy(out, a6, 16);
		else
			memcpy(out, a6, 8);
	} else {
		memset(out, 0xff, SOURCE_KEY_LEN);
	}
}

/* Whether sa, an IPv4 or IPv6 address, is inside the source that key
 * names; an address of no known family is inside none. */
static inline bool source_key_matches(const struct sockaddr *sa, const uint8_t key[SOURCE_KEY_LEN])
{
	uint8_t k[SOURCE_KEY_LEN];

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return false;
	source_key(sa, k);
	return memcmp(k, key, SOURCE_KEY_LEN) == 0;
}

/* The name of a key: the IPv4 address, or the IPv6 /64 with its suffix
 * ("2001:db8:1:2::/64"). n should be SOURCE_NAME_MAX. */
void source_key_name(const uint8_t key[SOURCE_KEY_LEN], char *out, size_t n);

/* The name of the source sa is in. */
static inline void source_name(const struct sockaddr *sa, char *out, size_t n)
{
	uint8_t k[SOURCE_KEY_LEN];

	source_key(sa, k);
	source_key_name(k, out, n);
}

/* An address as text ("192.0.2.1", "2001:db8::7") as a sockaddr with
 * port 0. 0, or -1 when text is no address (a prefix included). */
int source_addr_parse(const char *text, struct sockaddr_storage *out);

/* The key of an address as text ("192.0.2.1", "::ffff:192.0.2.1",
 * "2001:db8:1:2::7") or of a name that source_key_name() printed
 * ("2001:db8:1:2::/64"). 0, or -1 when text is neither. */
int source_key_parse(const char *text, uint8_t key[SOURCE_KEY_LEN]);

#endif
