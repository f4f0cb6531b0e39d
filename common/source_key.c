/* Source names (see source_key.h): the printable form of a key, and the
 * way back from an address or a name an operator typed. */
#include "common/source_key.h"

#include <arpa/inet.h>
#include <stdio.h>

void source_key_name(const uint8_t key[SOURCE_KEY_LEN], char *out, size_t n)
{
	char ip[INET6_ADDRSTRLEN];

	if (memcmp(key, source_key_mapped, sizeof(source_key_mapped)) == 0) {
		if (inet_ntop(AF_INET, key + 12, ip, sizeof(ip)) == NULL)
			ip[0] = '\0';
		snprintf(out, n, "%s", ip);
		return;
	}
	if (inet_ntop(AF_INET6, key, ip, sizeof(ip)) == NULL)
		ip[0] = '\0';
	snprintf(out, n, "%s/64", ip);
}

int source_addr_parse(const char *text, struct sockaddr_storage *out)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -1;
}

int source_key_parse(const char *text, uint8_t key[SOURCE_KEY_LEN])
{
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t len = slash != NULL ? (size_t)(slash - text) : strlen(text);

	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (source_addr_parse(buf, &ss) != 0)
		return -1;
	source_key((const struct sockaddr *)&ss, key);
	/* A prefix is only ever written as the /64 that source_key_name()
	 * prints: never for IPv4, in either spelling. */
	if (slash != NULL && (strcmp(slash, "/64") != 0 || ss.ss_family == AF_INET ||
	    memcmp(key, source_key_mapped, sizeof(source_key_mapped)) == 0))
		return -1;
	return 0;
}
