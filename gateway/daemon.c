/* `gatehouse run` (see daemon.h). */
#include "gateway/daemon.h"

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "gateway/log.h"
#include "gateway/relay_io.h"
#include "gateway/secret.h"
#include "gateway/tls.h"
#include "turn/server.h"

struct daemon {
	const struct config *cfg;
	struct relay_io *io;
	struct turn_server *turn;
	struct peer_policy peers;
};

static void ops_send_client(void *ctx, const struct turn_client *c,
    const uint8_t *buf, size_t len)
{
	relay_io_send_client(((struct daemon *)ctx)->io, c, buf, len);
}

static int ops_relay_open(void *ctx, struct turn_alloc *owner,
    const struct turn_relay_req *req, struct sockaddr_storage *relayed,
    void **handle)
{
	return relay_io_relay_open(((struct daemon *)ctx)->io, owner, req, relayed,
	    handle);
}

static void ops_relay_unreserve(void *ctx, uint16_t port)
{
	relay_io_relay_unreserve(((struct daemon *)ctx)->io, port);
}

static void ops_relay_close(void *ctx, void *handle)
{
	relay_io_relay_close(((struct daemon *)ctx)->io, handle);
}

static void ops_relay_send(void *ctx, void *handle, const struct sockaddr *peer,
    const uint8_t *buf, size_t len)
{
	relay_io_relay_send(((struct daemon *)ctx)->io, handle, peer, buf, len);
}

/* The permit hook: an address the policy refuses is reachable only when
 * it is exactly the relayed address of another live allocation. Calls
 * will narrow this to the allocations of the same call. */
static bool ops_permit_peer(void *ctx, const struct turn_alloc *from,
    const struct sockaddr *peer)
{
	struct turn_alloc *to = turn_server_find_relayed(((struct daemon *)ctx)->turn, peer);

	return to != NULL && to != from;
}

static void ops_on_alloc(void *ctx, const struct turn_alloc *a, bool created,
    const char *reason)
{
	char user[TURN_ID_MAX * 4 + 4], relayed[INET6_ADDRSTRLEN + 8];
	char client[INET6_ADDRSTRLEN + 8];

	(void)ctx;
	log_escape(user, sizeof(user), (const uint8_t *)a->id.user, strlen(a->id.user));
	config_format_addr((const struct sockaddr *)&a->relayed, relayed, sizeof(relayed));
	config_format_addr((const struct sockaddr *)&a->client.remote, client, sizeof(client));
	if (created)
		log_info("turn: allocation %s for user \"%s\" from %s (%s)", relayed,
		    user, client, a->client.transport == TURN_TP_UDP ? "udp" :
		    a->client.transport == TURN_TP_TCP ? "tcp" : "tls");
	else
		log_info("turn: allocation %s of user \"%s\" removed (%s): "
		    "%llu bytes/%llu packets to peers, %llu bytes/%llu packets from peers",
		    relayed, user, reason, (unsigned long long)a->bytes_to_peer,
		    (unsigned long long)a->pkts_to_peer,
		    (unsigned long long)a->bytes_from_peer,
		    (unsigned long long)a->pkts_from_peer);
}

static bool needs_tls(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->turn.nlisten; i++)
		if (cfg->turn.listen[i].transport == CONFIG_TLS)
			return true;
	return false;
}

/* Every address the gateway itself answers on is refused as a peer, so
 * the relay cannot reach services that share its IP. */
static int add_own_addresses(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	size_t i;
	int rc = 0;

	for (i = 0; i < cfg->turn.nlisten; i++)
		rc |= peer_policy_add_own(&d->peers,
		    (const struct sockaddr *)&cfg->turn.listen[i].addr);
	rc |= peer_policy_add_own(&d->peers, (const struct sockaddr *)&cfg->turn.relay_ip);
	if (cfg->turn.has_external_ip)
		rc |= peer_policy_add_own(&d->peers,
		    (const struct sockaddr *)&cfg->turn.external_ip);
	rc |= peer_policy_add_own(&d->peers, (const struct sockaddr *)&cfg->signaling.listen);
	rc |= peer_policy_add_own(&d->peers, (const struct sockaddr *)&cfg->admin_listen);
	return rc;
}

static void turn_config_from(const struct config *cfg, const struct peer_policy *peers,
    const uint8_t *secret, struct turn_server_config *tc)
{
	const struct config_turn_limits *lim = &cfg->turn.limits;

	memset(tc, 0, sizeof(*tc));
	snprintf(tc->realm, sizeof(tc->realm), "%s", cfg->realm);
	memcpy(tc->auth.secret, secret, TURN_SECRET_LEN);
	tc->auth.nonce_lifetime_s = cfg->turn.nonce_lifetime_s;
	tc->auth.static_users = cfg->turn.static_users;
	tc->auth.nstatic = cfg->turn.nstatic_users;
	tc->peers = peers;
	tc->relay_family = cfg->turn.relay_ip.ss_family;
	tc->has_external = cfg->turn.has_external_ip;
	tc->external = cfg->turn.external_ip;
	tc->default_lifetime_s = cfg->turn.default_lifetime_s;
	tc->max_lifetime_s = cfg->turn.max_lifetime_s;
	tc->allocations_total = lim->allocations_total;
	tc->allocations_per_user = lim->allocations_per_user;
	tc->permissions_per_allocation = lim->permissions_per_allocation;
	tc->channels_per_allocation = lim->channels_per_allocation;
	tc->bytes_per_s_per_allocation = lim->bytes_per_s_per_allocation;
	tc->auth_failures_per_source = lim->auth_failures_per_source;
}

int daemon_run(const struct config *cfg)
{
	struct daemon d;
	struct turn_server_config tc;
	struct turn_server_ops ops;
	uint8_t secret[TURN_SECRET_LEN];
	SSL_CTX *tls = NULL;
	char err[512], name[INET6_ADDRSTRLEN + 8];
	sigset_t mask;
	size_t i;
	int rc = 1;

	memset(&d, 0, sizeof(d));
	memset(&tc, 0, sizeof(tc));
	d.cfg = cfg;
	log_set_level(cfg->log.level);
	/* Signals are read from a signalfd in the loop, so they must not be
	 * delivered the usual way; a peer closing a socket must not kill us. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (state_dir_ensure(cfg->state_dir, err, sizeof(err)) != 0 ||
	    secret_load_or_create(cfg->state_dir, secret, sizeof(secret), err,
	    sizeof(err)) != 0) {
		log_err("%s", err);
		goto out;
	}
	if (needs_tls(cfg)) {
		tls = tls_server_ctx_new(cfg->turn.has_tls ? &cfg->turn.tls : &cfg->tls,
		    cfg->state_dir, err, sizeof(err));
		if (tls == NULL) {
			log_err("%s", err);
			goto out;
		}
	}
	d.peers = cfg->turn.peers;
	if (add_own_addresses(&d) != 0) {
		log_err("too many gateway addresses for the peer policy");
		goto out;
	}
	d.io = relay_io_new(&cfg->turn, tls, err, sizeof(err));
	if (d.io == NULL) {
		log_err("%s", err);
		goto out;
	}
	turn_config_from(cfg, &d.peers, secret, &tc);
	memset(&ops, 0, sizeof(ops));
	ops.ctx = &d;
	ops.send_client = ops_send_client;
	ops.relay_open = ops_relay_open;
	ops.relay_close = ops_relay_close;
	ops.relay_unreserve = ops_relay_unreserve;
	ops.relay_send = ops_relay_send;
	ops.permit_peer = ops_permit_peer;
	ops.on_alloc = ops_on_alloc;
	d.turn = turn_server_new(&tc, &ops);
	if (d.turn == NULL) {
		log_err("out of memory");
		goto out;
	}
	relay_io_set_server(d.io, d.turn);
	for (i = 0; i < cfg->turn.nlisten; i++) {
		config_format_addr((const struct sockaddr *)&cfg->turn.listen[i].addr,
		    name, sizeof(name));
		log_info("turn: listening on %s/%s", name,
		    cfg->turn.listen[i].transport == CONFIG_UDP ? "udp" :
		    cfg->turn.listen[i].transport == CONFIG_TCP ? "tcp" : "tls");
		/* config_validate() refuses plain TCP off loopback. */
		if (cfg->turn.listen[i].transport == CONFIG_TCP)
			log_warn("turn: %s/tcp is plain TCP; it is allowed on loopback "
			    "only, use \"tls\" for anything else", name);
	}
	log_info("turn: relay %s ports %u-%u, realm \"%s\"",
	    config_format_addr((const struct sockaddr *)&cfg->turn.relay_ip, name, sizeof(name)),
	    cfg->turn.port_min, cfg->turn.port_max, cfg->realm);
	log_info("gatehouse %s ready", GH_VERSION);
	rc = relay_io_run(d.io) == 0 ? 0 : 1;
out:
	/* The server closes its relays through the I/O layer, so it goes
	 * first; the I/O layer then no longer reports to it. */
	turn_server_free(d.turn);
	if (d.io != NULL) {
		relay_io_set_server(d.io, NULL);
		relay_io_free(d.io);
	}
	SSL_CTX_free(tls);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(&tc.auth, sizeof(tc.auth));
	return rc;
}
