/* Source names (see source_key.h): the printable form of a key, and the
 * way back from an address or a name an operator typed. */
#include "common/source_key.h"

#include <arpa/inet.h>
#include <stdio.h>

void source_key_name(const uint8_t key[SOURCE_KEY_LEN], char *out, size_t n)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	char ip[INET6_ADDRSTRLEN];

	if (memcmp(key, mapped, sizeof(mapped)) == 0) {
		if (inet_ntop(AF_INET, key + 12, ip, sizeof(ip)) == NULL)
			ip[0] = '\0';
		snprintf(out, n, "%s", ip);
		return;
	}
	if (inet_ntop(AF_INET6, key, ip, sizeof(ip)) == NULL)
		ip[0] = '\0';
	snprintf(out, n, "%s/64", ip);
}

int source_key_parse(const char *text, uint8_t key[SOURCE_KEY_LEN])
{
	struct sockaddr_in6 in6;
	struct sockaddr_in in4;
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	memset(&in4, 0, sizeof(in4));
	memset(&in6, 0, sizeof(in6));
	if (slash == NULL && inet_pton(AF_INET, buf, &in4.sin_addr) == 1) {
		in4.sin_family = AF_INET;
		source_key((const struct sockaddr *)&in4, key);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &in6.sin6_addr) != 1)
		return -1;
	in6.sin6_family = AF_INET6;
	source_key((const struct sockaddr *)&in6, key);
	/* A prefix is only ever written as the /64 that source_key_name()
	 * prints, and an IPv4-mapped address has no prefix form. */
	if (slash != NULL && (strcmp(slash, "/64") != 0 || key[10] == 0xff))
		return -1;
	return 0;
}
