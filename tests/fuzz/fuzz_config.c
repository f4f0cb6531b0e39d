/* Fuzz target: the configuration loader (gateway/config.c).
 *
 * config_load() takes a path, so the input is written to an in-memory
 * file (memfd, created once) and loaded as /proc/self/fd/N: no disk
 * traffic and nothing left behind. The loader reads only that file
 * (relative paths in it are resolved, not opened).
 *
 * Invariants checked (abort() on violation):
 * - a refusal writes one printable line (key names and values come from
 *   the file, and the message is printed and logged);
 * - an accepted configuration passes config_validate() again and keeps
 *   its documented bounds (listeners, port range, lifetimes, strings
 *   terminated, every tls pair both or neither, a certificate for an
 *   admin listener off loopback). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gateway/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_config: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

static int memfd = -1;
static char path[64];

static void init_once(void)
{
	if (memfd >= 0)
		return;
	memfd = memfd_create("gh-fuzz-config", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("fuzz_config: memfd_create");
		abort();
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
}

static bool terminated(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

static bool tls_pair_ok(const struct config_tls *t)
{
	return terminated(t->cert, sizeof(t->cert)) && terminated(t->key, sizeof(t->key)) &&
	    (t->cert[0] == '\0') == (t->key[0] == '\0');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config c;
	char err[512], again[512];
	size_t i;

	init_once();
	if (ftruncate(memfd, 0) != 0 ||
	    (size > 0 && pwrite(memfd, data, size, 0) != (ssize_t)size))
		abort();
	memset(err, 0x5a, sizeof(err));
	if (config_load(path, &c, err, sizeof(err)) != 0) {
		FUZZ_CHECK(terminated(err, sizeof(err)) && err[0] != '\0');
		for (i = 0; err[i] != '\0'; i++)
			FUZZ_CHECK((unsigned char)err[i] >= 0x20 && (unsigned char)err[i] != 0x7f);
		return 0;
	}
	FUZZ_CHECK(config_validate(&c, again, sizeof(again)) == 0);
	FUZZ_CHECK(c.turn.nlisten >= 1 && c.turn.nlisten <= CONFIG_MAX_LISTEN);
	FUZZ_CHECK(c.turn.port_min >= 1024 && c.turn.port_min <= c.turn.port_max);
	FUZZ_CHECK(c.turn.default_lifetime_s <= c.turn.max_lifetime_s);
	FUZZ_CHECK(c.turn.nstatic_users <= CONFIG_MAX_STATIC_USERS);
	FUZZ_CHECK(c.signaling.norigins <= CONFIG_MAX_ORIGINS);
	FUZZ_CHECK(c.identity.nbackends <= CONFIG_MAX_BACKENDS);
	FUZZ_CHECK(c.turn.peers.nallow <= PEER_POLICY_MAX_CIDRS &&
	    c.turn.peers.ndeny <= PEER_POLICY_MAX_CIDRS);
	FUZZ_CHECK(terminated(c.realm, sizeof(c.realm)) && c.realm[0] != '\0');
	FUZZ_CHECK(terminated(c.state_dir, sizeof(c.state_dir)));
	FUZZ_CHECK(terminated(c.policy_file, sizeof(c.policy_file)));
	FUZZ_CHECK(terminated(c.identity.secrets_key_file, sizeof(c.identity.secrets_key_file)));
	FUZZ_CHECK(terminated(c.turn.public_host, sizeof(c.turn.public_host)));
	for (i = 0; i < c.turn.nstatic_users; i++)
		FUZZ_CHECK(terminated(c.turn.static_users[i].name,
		    sizeof(c.turn.static_users[i].name)) &&
		    terminated(c.turn.static_users[i].password,
		    sizeof(c.turn.static_users[i].password)));
	for (i = 0; i < c.identity.nbackends; i++)
		FUZZ_CHECK(terminated(c.identity.backends[i].jwks_file,
		    sizeof(c.identity.backends[i].jwks_file)));
	FUZZ_CHECK(tls_pair_ok(&c.tls) && tls_pair_ok(&c.signaling.tls) &&
	    tls_pair_ok(&c.turn.tls) && tls_pair_ok(&c.admin_tls));
	FUZZ_CHECK(c.admin_has_tls == (c.admin_tls.cert[0] != '\0'));
	FUZZ_CHECK(config_addr_is_loopback(&c.admin_listen) || c.tls.cert[0] != '\0' ||
	    c.admin_tls.cert[0] != '\0');
	return 0;
}
