/* Fuzz target: the sans-I/O TURN server (turn/server.c) behind fake ops.
 *
 * A server is made with one static user (FZ_STATIC_USER), the operator
 * allowing FZ_ALLOW_CIDR, and two allocations created through the
 * protocol itself: the owner's (FZ_OWNER_PORT) with permissions for PEER1
 * and PEER2 and for the other allocation's relayed address, and channel
 * FZ_CHANNEL bound to PEER1; and the other one (FZ_OTHER_PORT). Then each
 * input is fed
 *   1. as one UDP datagram from the owner's 5-tuple (so CreatePermission,
 *      ChannelBind, Refresh, Send and ChannelData reach an allocation),
 *   2. as a TCP byte stream from a fresh connection, cut into frames with
 *      stun_frame_len() as the stream reader does (so an Allocate can
 *      succeed, followed by more requests), the connection then closed,
 *   3. as a datagram from three peers to the owner's relay socket:
 *      PEER1 (channel: ChannelData out), PEER2 (Data indication) and the
 *      other allocation's relayed address (the permit hook's path).
 *
 * Authenticated requests: a mutated request would never get past
 * MESSAGE-INTEGRITY, and the handlers behind it (Allocate options,
 * CreatePermission's peer list, ChannelBind) would see only the seeds'
 * exact bytes. So before delivery the harness signs every STUN message
 * whose USERNAME the server knows (static user or call credentials) the
 * way a client holding the password would: MESSAGE-INTEGRITY and
 * MESSAGE-INTEGRITY-SHA256 recomputed with the key that the
 * PASSWORD-ALGORITHM implies, then FINGERPRINT. The NONCE is not
 * forged; mutations of it still get 438. A message whose transaction ID
 * ends in 0xEE is delivered as it is, so wrong integrity stays reachable.
 *
 * State is bounded: the server is made again every RECREATE_EVERY inputs
 * (env FUZZ_TURN_RECREATE_EVERY overrides; 1 makes every input start
 * from the same state), and at once when an input removed one of the two
 * allocations. The first input after start always sees a fresh server,
 * so a saved reproducer replays the same way alone.
 *
 * Invariants checked (abort() on violation):
 * - everything sent to a client is a well-formed STUN response or
 *   indication, or ChannelData (padded to 4 on streams);
 * - nothing is relayed to a peer that neither the address policy (for a
 *   static user) nor the permit hook (another live allocation's relayed
 *   address) admits: the relay's core security promise;
 * - no more allocations live than the configured total.
 *
 * With FUZZ_VERBOSE=1 in the environment every answer and relayed
 * datagram is printed, to see what a seed reaches. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "tests/fuzz/fuzz_fixtures.h"
#include "turn/server.h"
#include "turn/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_turn_server: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

#define RECREATE_EVERY 32
#define STEP_MS 100
#define TICK_EVERY 8
#define ALLOCATIONS_TOTAL 64

struct fz {
	struct turn_server *s;
	struct turn_server_config cfg;
	struct peer_policy peers;
	struct turn_static_user user;
	struct turn_client owner, other, stream;
	struct sockaddr_storage peer1, peer2, server;
	struct turn_alloc *a_owner, *a_other, *last_created;
	struct sockaddr_storage other_relayed, owner_relayed;
	uint64_t now_ms;                /* wall clock (UNIX ms) */
	uint64_t conn_seq;
	unsigned inputs_in_server;
	unsigned recreate_every;
	bool verbose;
	uint16_t next_port;
	size_t live;
	/* The last answer to a client, for the set-up requests. */
	uint8_t last[STUN_MAX_MESSAGE + 4];
	size_t last_len;
};

static struct fz F;

/* The server's time: wall as the fixtures' nonces and credentials need it,
 * and a monotonic clock with another zero (as after a boot), so a
 * duration measured on the wrong clock would show. */
static struct clock_pair fz_now(void)
{
	struct clock_pair t = { .mono_ms = F.now_ms - FZ_T0_MS + 5000, .wall_ms = F.now_ms };

	return t;
}

static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
		abort();
	return ss;
}

static struct turn_client client(enum turn_transport tp, uint16_t port, uint64_t conn_id)
{
	struct turn_client c;

	memset(&c, 0, sizeof(c));
	c.transport = tp;
	c.remote = addr(FZ_CLIENT_IP, port);
	c.local = addr(FZ_SERVER_IP, FZ_SERVER_PORT);
	c.conn_id = conn_id;
	return c;
}

/* ---- fake ops ------------------------------------------------------ */

static void f_send_client(void *ctx, const struct turn_client *c,
    const uint8_t *buf, size_t len)
{
	struct stun_msg m;
	const uint8_t *d;
	size_t dlen;
	uint16_t ch;

	(void)ctx;
	FUZZ_CHECK(buf != NULL && len > 0 && len <= STUN_MAX_MESSAGE + 3);
	if (stun_demux(buf, len) == 2) {
		FUZZ_CHECK(channeldata_parse(buf, len, &ch, &d, &dlen) == STUN_OK);
		FUZZ_CHECK(c->transport == TURN_TP_UDP ? len == dlen + 4 : len % 4 == 0);
	} else {
		FUZZ_CHECK(stun_parse(buf, len, &m) == STUN_OK);
		FUZZ_CHECK(m.cls != STUN_REQUEST);
		if (F.verbose) {
			const struct stun_attr *e = stun_attr_find(&m, STUN_A_ERROR_CODE);
			const uint8_t *r;
			size_t rl;
			int code = 0;

			if (e != NULL)
				(void)stun_attr_error(e, &code, &r, &rl);
			fprintf(stderr, "fuzz_turn_server: to %s port %u: %s class 0x%x code %d\n",
			    c->transport == TURN_TP_UDP ? "udp" : "tcp",
			    ntohs(((const struct sockaddr_in *)&c->remote)->sin_port),
			    stun_method_name(m.method), m.cls, code);
		}
	}
	if (len <= sizeof(F.last)) {
		memcpy(F.last, buf, len);
		F.last_len = len;
	}
}

static int f_relay_open(void *ctx, struct turn_alloc *owner,
    const struct turn_relay_req *req, struct sockaddr_storage *relayed, void **handle)
{
	uint16_t port;

	(void)ctx;
	if (req->family != AF_INET)
		return -1;
	if (req->port != 0) {
		port = req->port;
	} else {
		if (req->even_port && (F.next_port & 1))
			F.next_port++;
		port = F.next_port++;
		if (req->reserve_next)
			F.next_port++;
	}
	*relayed = addr(FZ_RELAY_IP, port);
	*handle = owner;
	return 0;
}

static void f_relay_close(void *ctx, void *handle)
{
	(void)ctx;
	FUZZ_CHECK(handle != NULL);
}

static void f_relay_unreserve(void *ctx, uint16_t port)
{
	(void)ctx;
	(void)port;
}

static bool permit(const struct turn_alloc *from, const struct sockaddr *peer)
{
	struct turn_alloc *to = turn_server_find_relayed(F.s, peer);

	return to != NULL && to != from;
}

/* The relay's promise: a datagram leaves only for an admitted peer. */
static void f_relay_send(void *ctx, void *handle, const struct sockaddr *peer,
    const uint8_t *buf, size_t len)
{
	const struct turn_alloc *a = handle;
	enum peer_verdict v;

	(void)ctx;
	(void)buf;
	FUZZ_CHECK(a != NULL && peer != NULL && len <= UINT16_MAX);
	FUZZ_CHECK(peer->sa_family == AF_INET || peer->sa_family == AF_INET6);
	v = peer_policy_check(&F.peers, peer, NULL);
	if (F.verbose)
		fprintf(stderr, "fuzz_turn_server: relayed %zu bytes to port %u\n", len,
		    ntohs(((const struct sockaddr_in *)(const void *)peer)->sin_port));
	FUZZ_CHECK((v == PEER_ALLOWED && a->id.kind != TURN_ID_CALL) || permit(a, peer));
}

static bool f_permit_peer(void *ctx, const struct turn_alloc *from,
    const struct sockaddr *peer)
{
	(void)ctx;
	return permit(from, peer);
}

static bool f_source_blocked(void *ctx, const struct sockaddr *src, uint64_t mono_ms)
{
	(void)ctx;
	(void)src;
	(void)mono_ms;
	return false;
}

static bool f_credential_ok(void *ctx, const struct turn_identity *id)
{
	(void)ctx;
	FUZZ_CHECK(id->kind == TURN_ID_CALL);
	return strcmp(id->call, FZ_ENDED_CALL_ID) != 0;
}

static void f_on_event(void *ctx, enum turn_event ev, const struct turn_client *c,
    const struct turn_identity *id, const struct sockaddr *peer)
{
	(void)ctx;
	(void)id;
	FUZZ_CHECK(c != NULL);
	FUZZ_CHECK(ev >= TURN_EV_AUTH_FAILED && ev <= TURN_EV_REFRESHED);
	FUZZ_CHECK((ev == TURN_EV_PEER_REFUSED) == (peer != NULL));
}

static void f_on_alloc(void *ctx, const struct turn_alloc *a, bool created,
    const char *reason)
{
	(void)ctx;
	FUZZ_CHECK(reason != NULL);
	if (created) {
		F.live++;
		FUZZ_CHECK(F.live <= ALLOCATIONS_TOTAL);
		F.last_created = (struct turn_alloc *)a;
		return;
	}
	FUZZ_CHECK(F.live > 0);
	F.live--;
	if (a == F.a_owner)
		F.a_owner = NULL;
	if (a == F.a_other)
		F.a_other = NULL;
}

/* ---- signing as the client would ------------------------------------ */

#define NO_RESIGN_TAG 0xEE

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	size_t i;
	int k;

	for (i = 0; i < n; i++) {
		c ^= p[i];
		for (k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
	}
	return ~c;
}

/* RFC 8489 §14.5-14.6: the HMAC covers the message up to the attribute,
 * with the header length counting up to the attribute's end. */
static void mac_at(uint8_t *buf, const struct stun_attr *a, const char *digest,
    const uint8_t *key, size_t key_len)
{
	uint8_t mac[EVP_MAX_MD_SIZE], saved[2];
	size_t end = a->offset + 4 + a->len, n = 0;

	memcpy(saved, buf + 2, 2);
	buf[2] = (uint8_t)((end - STUN_HEADER_LEN) >> 8);
	buf[3] = (uint8_t)(end - STUN_HEADER_LEN);
	if (EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, key, key_len, buf, a->offset,
	    mac, sizeof(mac), &n) == NULL || n < a->len)
		abort();
	memcpy(buf + 2, saved, 2);
	memcpy(buf + a->offset + 4, mac, a->len);
}

/* Signs buf (a mutable copy of one frame) in place when it is a STUN
 * message with integrity from a user the server knows. */
static void resign(uint8_t *buf, size_t len)
{
	const struct stun_attr *user, *alg, *a;
	struct turn_identity id;
	char password[TURN_PASSWORD_MAX];
	uint8_t key[32];
	size_t key_len;
	uint32_t crc;
	struct stun_msg m;

	if (stun_parse(buf, len, &m) != STUN_OK || (m.mi_idx < 0 && m.mi256_idx < 0) ||
	    m.txid[STUN_TXID_LEN - 1] == NO_RESIGN_TAG ||
	    (user = stun_attr_find(&m, STUN_A_USERNAME)) == NULL ||
	    turn_auth_lookup(&F.cfg.auth, user->value, user->len, F.now_ms / 1000, &id,
	    password, sizeof(password)) != TURN_AUTH_OK)
		return;
	alg = stun_attr_find(&m, STUN_A_PASSWORD_ALGORITHM);
	if (alg != NULL && alg->len == 4 && alg->value[0] == 0 &&
	    alg->value[1] == STUN_PWALG_SHA256) {
		stun_key_sha256((const char *)user->value, user->len, FZ_REALM,
		    strlen(FZ_REALM), password, strlen(password), key);
		key_len = 32;
	} else {
		stun_key_md5((const char *)user->value, user->len, FZ_REALM,
		    strlen(FZ_REALM), password, strlen(password), key);
		key_len = 16;
	}
	if (m.mi_idx >= 0)
		mac_at(buf, &m.attrs[m.mi_idx], "SHA1", key, key_len);
	if (m.mi256_idx >= 0)
		mac_at(buf, &m.attrs[m.mi256_idx], "SHA256", key, key_len);
	if (m.fp_idx >= 0) {
		a = &m.attrs[m.fp_idx];
		crc = crc32_ieee(buf, a->offset) ^ 0x5354554eu;
		buf[a->offset + 4] = (uint8_t)(crc >> 24);
		buf[a->offset + 5] = (uint8_t)(crc >> 16);
		buf[a->offset + 6] = (uint8_t)(crc >> 8);
		buf[a->offset + 7] = (uint8_t)crc;
	}
}

/* ---- set-up through the protocol ----------------------------------- */

/* An authenticated request from c, as a client that already has our
 * nonce sends it; returns the answer's class. */
static uint16_t request(const struct turn_client *c, uint16_t method,
    const struct sockaddr_storage *peers, size_t npeers, uint16_t channel)
{
	uint8_t buf[1024], txid[STUN_TXID_LEN], key[16];
	char nonce[TURN_NONCE_MAX];
	struct stun_builder b;
	struct stun_msg m;
	size_t len, i;

	memset(txid, 0, sizeof(txid));
	txid[0] = (uint8_t)method;
	txid[1] = (uint8_t)ntohs(((const struct sockaddr_in *)&c->remote)->sin_port);
	txid[11] = 0x5a;
	if (turn_nonce_make(&F.cfg.auth, (const struct sockaddr *)&c->remote, F.now_ms,
	    nonce, sizeof(nonce)) != TURN_AUTH_OK)
		abort();
	stun_build_init(&b, buf, sizeof(buf), method, STUN_REQUEST, txid);
	if (method == TURN_ALLOCATE)
		stun_build_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
	if (channel != 0)
		stun_build_u32(&b, STUN_A_CHANNEL_NUMBER, (uint32_t)channel << 16);
	for (i = 0; i < npeers; i++)
		stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS,
		    (const struct sockaddr *)&peers[i], true);
	stun_build_attr(&b, STUN_A_USERNAME, FZ_STATIC_USER, strlen(FZ_STATIC_USER));
	stun_build_attr(&b, STUN_A_REALM, FZ_REALM, strlen(FZ_REALM));
	stun_build_attr(&b, STUN_A_NONCE, nonce, strlen(nonce));
	stun_key_md5(FZ_STATIC_USER, strlen(FZ_STATIC_USER), FZ_REALM, strlen(FZ_REALM),
	    FZ_STATIC_PASS, strlen(FZ_STATIC_PASS), key);
	stun_build_integrity(&b, key, sizeof(key));
	stun_build_fingerprint(&b);
	if (stun_build_finish(&b, &len) != STUN_OK)
		abort();
	F.last_len = 0;
	turn_server_on_client(F.s, c, buf, len, fz_now());
	if (F.last_len == 0 || stun_parse(F.last, F.last_len, &m) != STUN_OK)
		return 0xffff;
	return m.cls;
}

static void server_free(void)
{
	turn_server_free(F.s);
	F.s = NULL;
	F.a_owner = F.a_other = F.last_created = NULL;
	FUZZ_CHECK(F.live == 0);
}

static void server_new(void)
{
	struct turn_server_ops ops;
	struct sockaddr_storage peers[3];

	server_free();
	memset(&F.cfg, 0, sizeof(F.cfg));
	snprintf(F.cfg.realm, sizeof(F.cfg.realm), "%s", FZ_REALM);
	memcpy(F.cfg.auth.secret, fz_turn_secret, sizeof(F.cfg.auth.secret));
	F.cfg.auth.nonce_lifetime_s = FZ_NONCE_LIFETIME_S;
	memset(&F.user, 0, sizeof(F.user));
	snprintf(F.user.name, sizeof(F.user.name), "%s", FZ_STATIC_USER);
	snprintf(F.user.password, sizeof(F.user.password), "%s", FZ_STATIC_PASS);
	F.cfg.auth.static_users = &F.user;
	F.cfg.auth.nstatic = 1;
	memset(&F.peers, 0, sizeof(F.peers));
	if (peer_cidr_parse(FZ_ALLOW_CIDR, &F.peers.allow[0]) != 0)
		abort();
	F.peers.nallow = 1;
	F.server = addr(FZ_SERVER_IP, FZ_SERVER_PORT);
	if (peer_policy_add_own(&F.peers, (const struct sockaddr *)&F.server) != 0)
		abort();
	F.cfg.peers = &F.peers;
	F.cfg.relay_family = AF_INET;
	F.cfg.default_lifetime_s = 600;
	F.cfg.max_lifetime_s = 3600;
	F.cfg.allocations_total = ALLOCATIONS_TOTAL;
	F.cfg.allocations_per_user = 4;
	F.cfg.permissions_per_allocation = 8;
	F.cfg.channels_per_allocation = 8;
	F.cfg.bytes_per_s_per_allocation = 1u << 20;
	F.cfg.auth_failures_per_source = 10;

	memset(&ops, 0, sizeof(ops));
	ops.send_client = f_send_client;
	ops.relay_open = f_relay_open;
	ops.relay_close = f_relay_close;
	ops.relay_unreserve = f_relay_unreserve;
	ops.relay_send = f_relay_send;
	ops.permit_peer = f_permit_peer;
	ops.source_blocked = f_source_blocked;
	ops.credential_ok = f_credential_ok;
	ops.on_event = f_on_event;
	ops.on_alloc = f_on_alloc;

	F.now_ms = FZ_T0_MS;
	F.conn_seq = 0;
	F.inputs_in_server = 0;
	F.next_port = FZ_RELAY_PORT0;
	F.live = 0;
	F.owner = client(TURN_TP_UDP, FZ_OWNER_PORT, 0);
	F.other = client(TURN_TP_UDP, FZ_OTHER_PORT, 0);
	F.peer1 = addr(FZ_PEER1_IP, FZ_PEER1_PORT);
	F.peer2 = addr(FZ_PEER2_IP, FZ_PEER2_PORT);
	F.s = turn_server_new(&F.cfg, &ops);
	if (F.s == NULL)
		abort();

	/* A fixture that does not set up is a broken harness, not a
	 * finding: say so loudly. */
	F.last_created = NULL;
	if (request(&F.owner, TURN_ALLOCATE, NULL, 0, 0) != STUN_SUCCESS ||
	    (F.a_owner = F.last_created) == NULL)
		goto broken;
	F.owner_relayed = F.a_owner->relayed;
	F.last_created = NULL;
	if (request(&F.other, TURN_ALLOCATE, NULL, 0, 0) != STUN_SUCCESS ||
	    (F.a_other = F.last_created) == NULL)
		goto broken;
	F.other_relayed = F.a_other->relayed;
	peers[0] = F.peer1;
	peers[1] = F.peer2;
	peers[2] = F.other_relayed;
	if (request(&F.owner, TURN_CREATE_PERMISSION, peers, 3, 0) != STUN_SUCCESS ||
	    request(&F.owner, TURN_CHANNEL_BIND, &F.peer1, 1, FZ_CHANNEL) != STUN_SUCCESS ||
	    request(&F.other, TURN_CREATE_PERMISSION, &F.owner_relayed, 1, 0) !=
	    STUN_SUCCESS)
		goto broken;
	return;
broken:
	fprintf(stderr, "fuzz_turn_server: the fixture did not set up\n");
	abort();
}

static void init_once(void)
{
	static bool done;
	const char *env;

	if (done)
		return;
	done = true;
	F.recreate_every = RECREATE_EVERY;
	F.verbose = getenv("FUZZ_VERBOSE") != NULL;
	env = getenv("FUZZ_TURN_RECREATE_EVERY");
	if (env != NULL && atoi(env) > 0)
		F.recreate_every = (unsigned)atoi(env);
	atexit(server_free);
}

/* The input as a TCP stream from a fresh connection: every complete
 * frame in turn, signed, as the stream reader hands them over. buf is
 * the harness's own copy. */
static void feed_stream(uint8_t *buf, size_t size)
{
	size_t off = 0, frame;

	F.stream = client(TURN_TP_TCP, FZ_STREAM_PORT, ++F.conn_seq);
	while (off < size && stun_frame_len(buf + off, size - off, &frame) == STUN_OK) {
		resign(buf + off, frame);
		turn_server_on_client(F.s, &F.stream, buf + off, frame, fz_now());
		off += frame;
	}
	turn_server_on_conn_closed(F.s, F.stream.conn_id);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf;

	init_once();
	if (F.s == NULL || F.inputs_in_server >= F.recreate_every ||
	    F.a_owner == NULL || F.a_other == NULL)
		server_new();
	F.inputs_in_server++;
	F.now_ms += STEP_MS;

	/* A copy of exactly the input's size, so ASan still sees overreads,
	 * that the harness may sign. */
	buf = malloc(size > 0 ? size : 1);
	if (buf == NULL)
		abort();
	memcpy(buf, data, size);

	/* 1. One datagram from the owner's 5-tuple. */
	resign(buf, size);
	turn_server_on_client(F.s, &F.owner, buf, size, fz_now());

	/* 2. A stream from a fresh connection, closed after. */
	memcpy(buf, data, size);
	feed_stream(buf, size);
	free(buf);

	/* 3. Datagrams from peers to the owner's relay, if it still lives. */
	if (F.a_owner != NULL) {
		turn_server_on_peer(F.s, F.a_owner, (const struct sockaddr *)&F.peer1,
		    data, size, fz_now());
		turn_server_on_peer(F.s, F.a_owner, (const struct sockaddr *)&F.peer2,
		    data, size, fz_now());
		if (F.a_other != NULL)
			turn_server_on_peer(F.s, F.a_owner,
			    (const struct sockaddr *)&F.other_relayed, data, size, fz_now());
	}
	if (F.inputs_in_server % TICK_EVERY == 0)
		turn_server_tick(F.s, fz_now());
	return 0;
}
