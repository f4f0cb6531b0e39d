/* Test helper: a struct sockaddr_storage from an IPv4 or IPv6 literal
 * and a port, for the unit tests that feed addresses to the relay's
 * per-source and per-allocation code. */
#ifndef GH_TESTS_SOCKADDR_OF_H
#define GH_TESTS_SOCKADDR_OF_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

static inline struct sockaddr_storage addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		inet_pton(AF_INET6, ip, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		inet_pton(AF_INET, ip, &s4->sin_addr);
	}
	return ss;
}

#endif
