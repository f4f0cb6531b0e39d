/* The forced-relay oracle shared by fuzz_sdp.c and fuzz_hub.c: which
 * relayed addresses are Gatehouse's in the fuzz fixtures, and an
 * independent reading of the candidates a filtered SDP still carries.
 * Gatehouse's relayed addresses are 203.0.113.5 and 2001:db8::5, ports
 * 50000-50009. */
#ifndef GH_TESTS_FUZZ_RELAY_CHECK_H
#define GH_TESTS_FUZZ_RELAY_CHECK_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

static inline bool approved(const struct sockaddr *sa)
{
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 5 };
	uint16_t port;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const struct sockaddr_in *)(const void *)sa;
		port = ntohs(in4->sin_port);
		return ntohl(in4->sin_addr.s_addr) == 0xcb007105u && port >= 50000 &&
		    port < 50010;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		port = ntohs(in6->sin6_port);
		return memcmp(&in6->sin6_addr, v6, 16) == 0 && port >= 50000 && port < 50010;
	}
	return false;
}

/* Independent reading of a kept candidate: "candidate:<foundation>
 * <component> <transport> <priority> <address> <port> typ <type> ...";
 * whatever follows (extensions) does not matter here. */
static inline bool kept_ok(const char *value, size_t len)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	char *buf, *save = NULL, *f[8], *end;
	unsigned long port;
	bool ok = false;
	size_t i;

	if ((buf = malloc(len + 1)) == NULL)
		abort();
	memcpy(buf, value, len);
	buf[len] = '\0';
	for (i = 0; i < 8; i++)
		if ((f[i] = strtok_r(i == 0 ? buf : NULL, " ", &save)) == NULL)
			goto out;
	if (strcasecmp(f[2], "udp") != 0 || strcasecmp(f[6], "typ") != 0 ||
	    strcasecmp(f[7], "relay") != 0)
		goto out;
	port = strtoul(f[5], &end, 10);
	if (*end != '\0' || port > 65535)
		goto out;
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, f[4], &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
	} else if (inet_pton(AF_INET6, f[4], &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
	} else {
		goto out;
	}
	ok = approved((const struct sockaddr *)&ss);
out:
	free(buf);
	return ok;
}

/* True when every line of an SDP that a browser could read as a
 * candidate ("a=candidate", any case) is a UDP relay candidate on an
 * approved address; prints the first offending line. */
static inline bool relay_only(const char *who, const char *out, size_t len)
{
	const char *line = out, *end = out + len, *eol;
	size_t n;

	while (line < end) {
		eol = memchr(line, '\n', (size_t)(end - line));
		n = eol != NULL ? (size_t)(eol - line) : (size_t)(end - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;
		if (n >= 11 && strncasecmp(line, "a=candidate", 11) == 0 &&
		    (n < 12 || line[11] != ':' || !kept_ok(line + 2, n - 2))) {
			fprintf(stderr, "%s: kept: \"%.*s\"\n", who, (int)n, line);
			return false;
		}
		line = eol != NULL ? eol + 1 : end;
	}
	return true;
}

#endif
