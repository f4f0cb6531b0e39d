/* The key under which a per-source limit counts a client address: the
 * relay's concurrent TCP/TLS connections (gateway/conn_limit.c), its
 * authentication failures (turn/srclimit.c), and the login worker's
 * checks in flight (gateway/login_queue.c). */
#ifndef GH_COMMON_SOURCE_KEY_H
#define GH_COMMON_SOURCE_KEY_H

#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define SOURCE_KEY_LEN 16

/* IPv4, and IPv4-mapped IPv6, become the IPv4-mapped form of the address,
 * so both spellings count as one source. Any other IPv6 address is cut to
 * its /64 (the rest zeroed): a host, or a subscriber, is usually given a
 * whole /64 and can pick any address inside it, so counting /128s would
 * give it a fresh budget per address. Anything else is all zeros. */
static inline void source_key(const struct sockaddr *sa, uint8_t out[SOURCE_KEY_LEN])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *a6;

	memset(out, 0, SOURCE_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		memcpy(out, mapped, sizeof(mapped));
		memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		a6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
		if (memcmp(a6, mapped, sizeof(mapped)) == 0)
			memcpy(out, a6, 16);
		else
			memcpy(out, a6, 8);
	}
}

#endif
