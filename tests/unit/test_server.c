/* The sans-I/O TURN server driven through fake ops: what it answers, what
 * it relays and what it refuses, without a socket. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sockaddr_of.h"
#include "turn/server.h"
#include "turn/stun.h"

#define REALM "test.realm"

struct sent {
	struct turn_client to;
	uint8_t buf[STUN_MAX_MESSAGE];
	size_t len;
};

struct relay_sent {
	struct sockaddr_storage peer;
	uint8_t buf[2048];
	size_t len;
};

struct fake {
	struct turn_server *s;
	struct sent last;      /* last message to a client */
	int nsent;
	struct relay_sent last_relay;
	int nrelay_sent;
	int nopen, nclose;
	int nunreserve;
	uint16_t last_unreserved;
	uint16_t next_port;
	void *handles[16];
	int64_t wall_step_ms;  /* the wall clock minus the monotonic one */
};

static struct fake F;

static void f_send_client(void *ctx, const struct turn_client *c,
    const uint8_t *buf, size_t len)
{
	(void)ctx;
	F.last.to = *c;
	memcpy(F.last.buf, buf, len);
	F.last.len = len;
	F.nsent++;
}

static int f_relay_open(void *ctx, struct turn_alloc *owner,
    const struct turn_relay_req *req, struct sockaddr_storage *relayed, void **handle)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)relayed;

	(void)ctx;
	if (req->family != AF_INET)
		return -1;
	if (req->even_port && (F.next_port & 1))
		F.next_port++;
	memset(relayed, 0, sizeof(*relayed));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(req->port ? req->port : F.next_port++);
	if (req->reserve_next)
		F.next_port++;
	inet_pton(AF_INET, "127.0.0.1", &sin->sin_addr);
	*handle = owner;
	F.nopen++;
	return 0;
}

static void f_relay_close(void *ctx, void *handle)
{
	(void)ctx;
	(void)handle;
	F.nclose++;
}

static void f_relay_unreserve(void *ctx, uint16_t port)
{
	(void)ctx;
	F.nunreserve++;
	F.last_unreserved = port;
}

static void f_relay_send(void *ctx, void *handle, const struct sockaddr *peer,
    const uint8_t *buf, size_t len)
{
	(void)ctx;
	(void)handle;
	memset(&F.last_relay, 0, sizeof(F.last_relay));
	memcpy(&F.last_relay.peer, peer, peer->sa_family == AF_INET6 ?
	    sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	memcpy(F.last_relay.buf, buf, len < sizeof(F.last_relay.buf) ? len : sizeof(F.last_relay.buf));
	F.last_relay.len = len;
	F.nrelay_sent++;
}

/* The time handed to the server: the tests' `now` is the monotonic
 * clock, and the wall clock is apart from it by F.wall_step_ms (0 unless
 * a test steps the system clock, test_clock_steps). */
static struct clock_pair T(uint64_t ms)
{
	struct clock_pair t = { .mono_ms = ms, .wall_ms = (uint64_t)((int64_t)ms + F.wall_step_ms) };

	return t;
}

/* The gateway's rule: only another live allocation's relayed address. */
static bool f_permit(void *ctx, const struct turn_alloc *from, const struct sockaddr *peer)
{
	struct turn_alloc *to;

	(void)ctx;
	to = turn_server_find_relayed(F.s, peer);
	return to != NULL && to != from;
}

static struct turn_client client_udp(uint16_t port)
{
	struct turn_client c;

	memset(&c, 0, sizeof(c));
	c.transport = TURN_TP_UDP;
	c.remote = addr("192.0.2.10", port);
	c.local = addr("127.0.0.1", 3478);
	return c;
}

static uint8_t txid_seed;

static void new_txid(uint8_t txid[STUN_TXID_LEN])
{
	memset(txid, 0, STUN_TXID_LEN);
	txid[0] = ++txid_seed;
	txid[11] = 0x5a;
}

/* What the last answer was: class and error code (0 for success). */
static int last_code(struct stun_msg *m)
{
	const struct stun_attr *e;
	const uint8_t *reason;
	size_t rlen;
	int code = -1;

	if (stun_parse(F.last.buf, F.last.len, m) != STUN_OK)
		return -1;
	if (m->cls == STUN_SUCCESS)
		return 0;
	e = stun_attr_find(m, STUN_A_ERROR_CODE);
	if (e == NULL || stun_attr_error(e, &code, &reason, &rlen) != STUN_OK)
		return -1;
	return code;
}

/* Gets a nonce by asking without credentials. */
static void get_nonce(const struct turn_client *c, char *nonce, size_t cap, uint64_t now)
{
	uint8_t buf[256], txid[STUN_TXID_LEN];
	struct stun_builder b;
	struct stun_msg m;
	const struct stun_attr *n;
	size_t len;

	new_txid(txid);
	stun_build_init(&b, buf, sizeof(buf), TURN_ALLOCATE, STUN_REQUEST, txid);
	stun_build_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
	stun_build_finish(&b, &len);
	turn_server_on_client(F.s, c, buf, len, T(now));
	nonce[0] = 0;
	if (last_code(&m) != 401)
		return;
	n = stun_attr_find(&m, STUN_A_NONCE);
	if (n != NULL && n->len < cap) {
		memcpy(nonce, n->value, n->len);
		nonce[n->len] = 0;
	}
}

struct areq {
	uint16_t method;
	const char *user, *pass;
	uint32_t lifetime;           /* 0: none */
	const struct sockaddr_storage *peers[4];
	uint16_t channel;
	bool transport;
	const uint8_t *data;
	size_t data_len;
	uint16_t extra_attr;         /* 0: none */
	int even_port;               /* 0 none, 1 EVEN-PORT, 2 with R */
	const uint8_t *token;        /* RESERVATION-TOKEN, 8 bytes */
};

/* Sends an authenticated request and returns the answer's code. */
static int send_req(const struct turn_client *c, const struct areq *q, uint64_t now,
    struct stun_msg *answer)
{
	uint8_t buf[2048], txid[STUN_TXID_LEN], key[16];
	char nonce[TURN_NONCE_MAX];
	struct stun_builder b;
	size_t len, i;

	get_nonce(c, nonce, sizeof(nonce), now);
	new_txid(txid);
	stun_build_init(&b, buf, sizeof(buf), q->method, STUN_REQUEST, txid);
	if (q->transport)
		stun_build_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
	if (q->lifetime)
		stun_build_u32(&b, STUN_A_LIFETIME, q->lifetime == UINT32_MAX ? 0 : q->lifetime);
	if (q->channel)
		stun_build_u32(&b, STUN_A_CHANNEL_NUMBER, (uint32_t)q->channel << 16);
	for (i = 0; i < 4 && q->peers[i] != NULL; i++)
		stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS,
		    (const struct sockaddr *)q->peers[i], true);
	if (q->extra_attr)
		stun_build_u32(&b, q->extra_attr, 0);
	if (q->even_port) {
		uint8_t ep = q->even_port == 2 ? 0x80 : 0;
		stun_build_attr(&b, STUN_A_EVEN_PORT, &ep, 1);
	}
	if (q->token)
		stun_build_attr(&b, STUN_A_RESERVATION_TOKEN, q->token, 8);
	stun_build_attr(&b, STUN_A_USERNAME, q->user, strlen(q->user));
	stun_build_attr(&b, STUN_A_REALM, REALM, strlen(REALM));
	stun_build_attr(&b, STUN_A_NONCE, nonce, strlen(nonce));
	stun_key_md5(q->user, strlen(q->user), REALM, strlen(REALM), q->pass,
	    strlen(q->pass), key);
	stun_build_integrity(&b, key, sizeof(key));
	stun_build_fingerprint(&b);
	if (stun_build_finish(&b, &len) != STUN_OK)
		return -2;
	F.nsent = 0;
	turn_server_on_client(F.s, c, buf, len, T(now));
	if (F.nsent == 0)
		return -3; /* no answer */
	return last_code(answer);
}

static int allocate(const struct turn_client *c, const char *user, const char *pass,
    uint64_t now, struct sockaddr_storage *relayed)
{
	struct areq q = { .method = TURN_ALLOCATE, .user = user, .pass = pass,
	    .transport = true };
	struct stun_msg m;
	const struct stun_attr *a;
	int code = send_req(c, &q, now, &m);

	if (code == 0 && relayed != NULL) {
		a = stun_attr_find(&m, STUN_A_XOR_RELAYED_ADDRESS);
		if (a == NULL || stun_attr_addr(&m, a, true, relayed) != STUN_OK)
			return -4;
	}
	return code;
}

static int perm_as(const struct turn_client *c, const char *user, const char *pass,
    const struct sockaddr_storage *peer, uint64_t now)
{
	struct areq q = { .method = TURN_CREATE_PERMISSION, .user = user,
	    .pass = pass, .peers = { peer } };
	struct stun_msg m;

	return send_req(c, &q, now, &m);
}

static int perm(const struct turn_client *c, const struct sockaddr_storage *peer,
    uint64_t now)
{
	return perm_as(c, "alice", "wonderland", peer, now);
}

static void send_indication(const struct turn_client *c,
    const struct sockaddr_storage *peer, const char *data, uint64_t now)
{
	uint8_t buf[512], txid[STUN_TXID_LEN];
	struct stun_builder b;
	size_t len;

	new_txid(txid);
	stun_build_init(&b, buf, sizeof(buf), TURN_SEND, STUN_INDICATION, txid);
	stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)peer, true);
	stun_build_attr(&b, STUN_A_DATA, data, strlen(data));
	stun_build_finish(&b, &len);
	turn_server_on_client(F.s, c, buf, len, T(now));
}

static struct turn_static_user users[2] = {
	{ "alice", "wonderland" },
	{ "bob", "builder" },
};

static struct peer_policy peers;

static void setup(uint32_t per_user)
{
	struct turn_server_config cfg;
	struct turn_server_ops ops = {
		.send_client = f_send_client, .relay_open = f_relay_open,
		.relay_close = f_relay_close, .relay_send = f_relay_send,
		.relay_unreserve = f_relay_unreserve, .permit_peer = f_permit,
	};

	memset(&F, 0, sizeof(F));
	F.next_port = 50000;
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.realm, REALM);
	memset(cfg.auth.secret, 7, sizeof(cfg.auth.secret));
	cfg.auth.nonce_lifetime_s = 600;
	cfg.auth.static_users = users;
	cfg.auth.nstatic = 2;
	cfg.peers = &peers;
	cfg.relay_family = AF_INET;
	cfg.default_lifetime_s = 600;
	cfg.max_lifetime_s = 3600;
	cfg.allocations_total = 100;
	cfg.allocations_per_user = per_user;
	cfg.permissions_per_allocation = 4;
	cfg.channels_per_allocation = 4;
	cfg.bytes_per_s_per_allocation = 1 << 20;
	cfg.auth_failures_per_source = 5;
	F.s = turn_server_new(&cfg, &ops);
}

static void test_binding_and_challenge(void)
{
	struct turn_client c = client_udp(4000);
	uint8_t buf[64], txid[STUN_TXID_LEN];
	struct stun_builder b;
	struct stun_msg m;
	struct sockaddr_storage mapped;
	const struct stun_attr *a;
	size_t len;
	char nonce[TURN_NONCE_MAX];

	setup(4);
	new_txid(txid);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid);
	stun_build_finish(&b, &len);
	turn_server_on_client(F.s, &c, buf, len, T(1000));
	CHECK_EQ_INT(last_code(&m), 0);
	a = stun_attr_find(&m, STUN_A_XOR_MAPPED_ADDRESS);
	CHECK(a != NULL && stun_attr_addr(&m, a, true, &mapped) == STUN_OK &&
	    sockaddr_equal((struct sockaddr *)&mapped, (struct sockaddr *)&c.remote));
	CHECK(stun_attr_find(&m, STUN_A_SOFTWARE) == NULL);

	get_nonce(&c, nonce, sizeof(nonce), 1000);
	CHECK(strncmp(nonce, TURN_NONCE_COOKIE, strlen(TURN_NONCE_COOKIE)) == 0);
	CHECK(stun_attr_find(&m, STUN_A_REALM) == NULL); /* m is the Binding answer */
	turn_server_free(F.s);
}

static void test_allocate_and_relay(void)
{
	struct turn_client c = client_udp(4001), other = client_udp(4002);
	struct sockaddr_storage relayed, pub = addr("8.8.8.8", 5000);
	struct sockaddr_storage pub2 = addr("8.8.4.4", 5000), priv = addr("10.0.0.1", 5000);
	struct sockaddr_storage v6pub = addr("2606:4700::1111", 5000);
	struct areq q;
	struct stun_msg m;
	const uint64_t t = 10000;

	setup(4);
	CHECK_EQ_INT(allocate(&c, "alice", "wonderland", t, &relayed), 0);
	CHECK_EQ_INT(F.nopen, 1);
	CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&relayed)->sin_port), 50000);
	/* A second Allocate on the same 5-tuple is a mismatch. */
	CHECK_EQ_INT(allocate(&c, "alice", "wonderland", t, NULL), 437);
	/* Another user on the same 5-tuple: wrong credentials. */
	CHECK_EQ_INT(allocate(&c, "bob", "builder", t, NULL), 441);
	/* Wrong password: challenged again. */
	CHECK_EQ_INT(allocate(&other, "alice", "wrong", t, NULL), 401);

	CHECK_EQ_INT(perm(&c, &priv, t), 403);
	CHECK_EQ_INT(perm(&c, &v6pub, t), 443);
	CHECK_EQ_INT(perm(&c, &pub, t), 0);

	F.nrelay_sent = 0;
	send_indication(&c, &pub, "hello", t);
	CHECK_EQ_INT(F.nrelay_sent, 1);
	CHECK(F.last_relay.len == 5 && memcmp(F.last_relay.buf, "hello", 5) == 0);
	send_indication(&c, &pub2, "nope", t);
	CHECK_EQ_INT(F.nrelay_sent, 1);
	/* A permission is per IP: another port of 8.8.8.8 is fine. */
	pub2 = addr("8.8.8.8", 6000);
	send_indication(&c, &pub2, "port", t);
	CHECK_EQ_INT(F.nrelay_sent, 2);

	/* Inbound: Data indication from a permitted peer only. */
	{
		struct turn_alloc *a = turn_server_find_relayed(F.s, (struct sockaddr *)&relayed);
		struct sockaddr_storage stranger = addr("1.1.1.1", 9);
		const struct stun_attr *d;

		CHECK(a != NULL);
		F.nsent = 0;
		turn_server_on_peer(F.s, a, (struct sockaddr *)&pub, (const uint8_t *)"pong", 4, T(t));
		CHECK_EQ_INT(F.nsent, 1);
		CHECK(stun_parse(F.last.buf, F.last.len, &m) == STUN_OK &&
		    m.method == TURN_DATA && m.cls == STUN_INDICATION);
		d = stun_attr_find(&m, STUN_A_DATA);
		CHECK(d != NULL && d->len == 4 && memcmp(d->value, "pong", 4) == 0);
		turn_server_on_peer(F.s, a, (struct sockaddr *)&stranger, (const uint8_t *)"x", 1, T(t));
		CHECK_EQ_INT(F.nsent, 1);

		/* Channels: bind, then ChannelData both ways. */
		memset(&q, 0, sizeof(q));
		q.method = TURN_CHANNEL_BIND;
		q.user = "alice";
		q.pass = "wonderland";
		q.channel = 0x4001;
		q.peers[0] = &pub;
		CHECK_EQ_INT(send_req(&c, &q, t, &m), 0);
		q.channel = 0x3fff;
		CHECK_EQ_INT(send_req(&c, &q, t, &m), 400);
		q.channel = 0x4002; /* same peer, other number */
		CHECK_EQ_INT(send_req(&c, &q, t, &m), 400);
		q.channel = 0x4003;
		q.peers[0] = &priv;
		CHECK_EQ_INT(send_req(&c, &q, t, &m), 403);
		{
			uint8_t cd[16] = { 0x40, 0x01, 0x00, 0x03, 'a', 'b', 'c', 0 };
			F.nrelay_sent = 0;
			turn_server_on_client(F.s, &c, cd, 8, T(t));
			CHECK_EQ_INT(F.nrelay_sent, 1);
			CHECK(F.last_relay.len == 3);
			cd[1] = 0x05; /* unbound channel */
			turn_server_on_client(F.s, &c, cd, 8, T(t));
			CHECK_EQ_INT(F.nrelay_sent, 1);
		}
		F.nsent = 0;
		turn_server_on_peer(F.s, a, (struct sockaddr *)&pub, (const uint8_t *)"zz", 2, T(t));
		CHECK(F.nsent == 1 && F.last.len == 6 && F.last.buf[0] == 0x40 &&
		    F.last.buf[1] == 0x01);
	}

	/* Permissions expire after 300 s without refresh. */
	F.nrelay_sent = 0;
	turn_server_tick(F.s, T(t + 301 * 1000));
	send_indication(&c, &pub, "late", t + 301 * 1000);
	CHECK_EQ_INT(F.nrelay_sent, 0);

	/* Refresh with lifetime 0 deletes at once. */
	memset(&q, 0, sizeof(q));
	q.method = TURN_REFRESH;
	q.user = "alice";
	q.pass = "wonderland";
	q.lifetime = UINT32_MAX; /* encodes 0 */
	CHECK_EQ_INT(send_req(&c, &q, t + 302 * 1000, &m), 0);
	CHECK_EQ_INT(F.nclose, 1);
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 0);
	CHECK_EQ_INT(send_req(&c, &q, t + 303 * 1000, &m), 437);
	turn_server_free(F.s);
}

/* The last message to a client is a Data indication to `to`, from `from`,
 * carrying `data`. */
static bool delivered(const struct turn_client *to, const struct sockaddr_storage *from,
    const char *data)
{
	struct stun_msg m;
	struct sockaddr_storage peer;
	const struct stun_attr *pa, *d;

	if (!sockaddr_equal((const struct sockaddr *)&F.last.to.remote,
	    (const struct sockaddr *)&to->remote) ||
	    stun_parse(F.last.buf, F.last.len, &m) != STUN_OK ||
	    m.method != TURN_DATA || m.cls != STUN_INDICATION)
		return false;
	pa = stun_attr_find(&m, STUN_A_XOR_PEER_ADDRESS);
	d = stun_attr_find(&m, STUN_A_DATA);
	return pa != NULL && d != NULL && stun_attr_addr(&m, pa, true, &peer) == STUN_OK &&
	    sockaddr_equal((const struct sockaddr *)&peer, (const struct sockaddr *)from) &&
	    d->len == strlen(data) && memcmp(d->value, data, d->len) == 0;
}

/* Between two allocations of this server, datagrams are handed over in
 * process (never through relay_send), and arrive as they would through
 * the kernel: from A's relayed address, through B's own permissions. */
static void test_relay_to_relay_exact(void)
{
	struct turn_client a = client_udp(5001), b = client_udp(5002);
	struct sockaddr_storage ra, rb, side;
	const uint64_t t = 20000;

	setup(4);
	CHECK_EQ_INT(allocate(&a, "alice", "wonderland", t, &ra), 0);
	CHECK_EQ_INT(allocate(&b, "alice", "wonderland", t, &rb), 0);
	/* Loopback is refused, except exactly the other relayed address. */
	CHECK_EQ_INT(perm(&a, &rb, t), 0);
	CHECK_EQ_INT(perm(&a, &ra, t), 403); /* its own: no loops */
	side = rb;
	((struct sockaddr_in *)&side)->sin_port = htons(22);
	CHECK_EQ_INT(perm(&a, &side, t), 403);

	/* B has no permission for A yet: B's side drops it. */
	F.nrelay_sent = 0;
	F.nsent = 0;
	send_indication(&a, &rb, "early", t);
	CHECK_EQ_INT(F.nsent, 0);
	CHECK_EQ_INT(F.nrelay_sent, 0);
	CHECK_EQ_INT(perm(&b, &ra, t), 0);
	F.nsent = 0;
	send_indication(&a, &rb, "to-b", t);
	CHECK_EQ_INT(F.nsent, 1);
	CHECK(delivered(&b, &ra, "to-b"));
	CHECK_EQ_INT(F.nrelay_sent, 0);
	/* The permission for 127.0.0.1 does not open port 22. */
	send_indication(&a, &side, "to-ssh", t);
	CHECK_EQ_INT(F.nsent, 1);
	CHECK_EQ_INT(F.nrelay_sent, 0);
	/* Nor does it let port 22 send in. */
	F.nsent = 0;
	turn_server_on_peer(F.s, turn_server_find_relayed(F.s, (struct sockaddr *)&ra),
	    (struct sockaddr *)&side, (const uint8_t *)"x", 1, T(t));
	CHECK_EQ_INT(F.nsent, 0);
	/* Once B is gone, its old address is plain loopback again. */
	turn_server_on_conn_closed(F.s, 0); /* no-op for UDP */
	{
		struct areq q = { .method = TURN_REFRESH, .user = "alice",
		    .pass = "wonderland", .lifetime = UINT32_MAX };
		struct stun_msg m;
		CHECK_EQ_INT(send_req(&b, &q, t, &m), 0);
	}
	F.nsent = 0;
	send_indication(&a, &rb, "gone", t);
	CHECK_EQ_INT(F.nsent, 0);
	CHECK_EQ_INT(F.nrelay_sent, 0);
	CHECK_EQ_INT(perm(&a, &rb, t), 403);
	turn_server_free(F.s);
}

static void test_quota_and_lifetime(void)
{
	struct turn_client c1 = client_udp(6001), c2 = client_udp(6002), c3 = client_udp(6003);
	struct turn_client c4 = client_udp(6004);
	struct turn_auth auth;
	char user[TURN_USERNAME_MAX], pass[TURN_PASSWORD_MAX];
	const uint64_t t = 30000;

	setup(2);
	/* Call credentials of one participant: at most 2 allocations. */
	memset(&auth, 0, sizeof(auth));
	memset(auth.secret, 7, sizeof(auth.secret));
	CHECK_EQ_INT(turn_cred_mint(&auth, "carol", "call-1", 3600, user, sizeof(user),
	    pass, sizeof(pass)), TURN_AUTH_OK);
	CHECK_EQ_INT(allocate(&c1, user, pass, t, NULL), 0);
	CHECK_EQ_INT(allocate(&c2, user, pass, t, NULL), 0);
	CHECK_EQ_INT(allocate(&c3, user, pass, t, NULL), 486);
	/* Credentials past their expiry (3600 s) are refused. */
	CHECK_EQ_INT(allocate(&c4, user, pass, 3601 * 1000, NULL), 401);
	/* Static users (tools) are bounded by allocations_total only. */
	CHECK_EQ_INT(allocate(&c3, "bob", "builder", t, NULL), 0);
	CHECK_EQ_INT(allocate(&c4, "bob", "builder", t, NULL), 0);
	CHECK_EQ_INT(turn_server_remove_call(F.s, "call-1", NULL), 2);
	CHECK_EQ_INT(F.nclose, 2);
	/* Default lifetime 600 s: gone after the sweep at 601 s. */
	turn_server_tick(F.s, T(t + 599 * 1000));
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 2);
	turn_server_tick(F.s, T(t + 601 * 1000));
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 0);
	CHECK_EQ_INT(F.nclose, 4);
	turn_server_free(F.s);
}

static void test_auth_failures_block(void)
{
	struct turn_client c = client_udp(7001);
	int i;

	setup(4);
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(allocate(&c, "alice", "bad", 40000, NULL), 401);
	/* Blocked now: even the right password gets no answer. */
	CHECK_EQ_INT(allocate(&c, "alice", "wonderland", 40000, NULL), -3);
	/* After the block, it works again. */
	CHECK_EQ_INT(allocate(&c, "alice", "wonderland", 40000 + TURN_AUTH_BLOCK_MS + 1, NULL), 0);
	turn_server_free(F.s);
}

static void test_unknown_attribute(void)
{
	struct turn_client c = client_udp(8001);
	struct areq q = { .method = TURN_ALLOCATE, .user = "alice",
	    .pass = "wonderland", .transport = true, .extra_attr = 0x0031 };
	struct stun_msg m;
	const struct stun_attr *u;

	setup(4);
	CHECK_EQ_INT(send_req(&c, &q, 50000, &m), 420);
	u = stun_attr_find(&m, STUN_A_UNKNOWN_ATTRIBUTES);
	CHECK(u != NULL && u->len == 2 && u->value[0] == 0x00 && u->value[1] == 0x31);
	q.extra_attr = 0x8031; /* comprehension-optional: ignored */
	CHECK_EQ_INT(send_req(&c, &q, 50000, &m), 0);
	turn_server_free(F.s);
}

/* Call credentials are forced relay: no public address, only what the
 * permit hook allows (here: another allocation's relayed address), while a
 * static user may reach public addresses. */
static void test_call_forced_relay(void)
{
	struct turn_client c1 = client_udp(9201), c2 = client_udp(9202), c3 = client_udp(9203);
	struct sockaddr_storage r1, r2, pub = addr("8.8.8.8", 5000);
	char u1[TURN_USERNAME_MAX], p1[TURN_PASSWORD_MAX];
	char u2[TURN_USERNAME_MAX], p2[TURN_PASSWORD_MAX];
	struct turn_auth auth;
	const uint64_t t = 80000;

	setup(4);
	memset(&auth, 0, sizeof(auth));
	memset(auth.secret, 7, sizeof(auth.secret));
	CHECK_EQ_INT(turn_cred_mint(&auth, "carol", "call-2", 3600, u1, sizeof(u1), p1,
	    sizeof(p1)), TURN_AUTH_OK);
	CHECK_EQ_INT(turn_cred_mint(&auth, "dave", "call-2", 3600, u2, sizeof(u2), p2,
	    sizeof(p2)), TURN_AUTH_OK);
	CHECK_EQ_INT(allocate(&c1, u1, p1, t, &r1), 0);
	CHECK_EQ_INT(allocate(&c2, u2, p2, t, &r2), 0);
	CHECK_EQ_INT(allocate(&c3, "bob", "builder", t, NULL), 0);
	CHECK_EQ_INT(perm_as(&c1, u1, p1, &pub, t), 403);
	CHECK_EQ_INT(perm_as(&c1, u1, p1, &r2, t), 0);
	CHECK_EQ_INT(perm_as(&c3, "bob", "builder", &pub, t), 0);
	CHECK_EQ_INT(perm_as(&c2, u2, p2, &r1, t), 0);
	/* The permission for the participant's IP opens no other port. */
	F.nsent = 0;
	send_indication(&c1, &r2, "ok", t);
	CHECK_EQ_INT(F.nsent, 1);
	CHECK(delivered(&c2, &r1, "ok"));
	((struct sockaddr_in *)&r2)->sin_port = htons(9);
	send_indication(&c1, &r2, "no", t);
	CHECK_EQ_INT(F.nsent, 1);
	CHECK_EQ_INT(F.nrelay_sent, 0);
	turn_server_free(F.s);
}

/* EVEN-PORT with R holds port + 1 for the same user's RESERVATION-TOKEN. */
static void test_reservation(void)
{
	struct turn_client c1 = client_udp(9101), c2 = client_udp(9102), c3 = client_udp(9103);
	struct areq q = { .method = TURN_ALLOCATE, .user = "alice",
	    .pass = "wonderland", .transport = true, .even_port = 2 };
	struct stun_msg m;
	struct sockaddr_storage relayed;
	const struct stun_attr *tok, *ra;
	uint8_t token[8];
	uint16_t port;

	setup(4);
	F.next_port = 50001; /* odd: the relay must skip to an even one */
	CHECK_EQ_INT(send_req(&c1, &q, 70000, &m), 0);
	ra = stun_attr_find(&m, STUN_A_XOR_RELAYED_ADDRESS);
	tok = stun_attr_find(&m, STUN_A_RESERVATION_TOKEN);
	CHECK(ra != NULL && stun_attr_addr(&m, ra, true, &relayed) == STUN_OK);
	port = ntohs(((struct sockaddr_in *)&relayed)->sin_port);
	CHECK_EQ_INT(port % 2, 0);
	CHECK(tok != NULL && tok->len == 8);
	if (tok == NULL || tok->len != 8)
		return;
	memcpy(token, tok->value, 8);
	/* Another user cannot claim it. */
	q.even_port = 0;
	q.token = token;
	q.user = "bob";
	q.pass = "builder";
	CHECK_EQ_INT(send_req(&c2, &q, 70000, &m), 508);
	/* A token with EVEN-PORT is malformed. */
	q.user = "alice";
	q.pass = "wonderland";
	q.even_port = 1;
	CHECK_EQ_INT(send_req(&c2, &q, 70000, &m), 400);
	q.even_port = 0;
	CHECK_EQ_INT(send_req(&c2, &q, 70000, &m), 0);
	ra = stun_attr_find(&m, STUN_A_XOR_RELAYED_ADDRESS);
	CHECK(ra != NULL && stun_attr_addr(&m, ra, true, &relayed) == STUN_OK);
	CHECK_EQ_INT(ntohs(((struct sockaddr_in *)&relayed)->sin_port), port + 1);
	/* Claimed once only. */
	CHECK_EQ_INT(send_req(&c3, &q, 70000, &m), 508);
	CHECK_EQ_INT(F.nunreserve, 0);
	turn_server_free(F.s);
}

/* An EVEN-PORT allocation with R, at mono time t from c; its token. */
static int reserve(const struct turn_client *c, const char *user, const char *pass,
    uint64_t t, uint8_t token[8], uint16_t *port)
{
	struct areq q = { .method = TURN_ALLOCATE, .user = user, .pass = pass,
	    .transport = true, .even_port = 2 };
	struct stun_msg m;
	struct sockaddr_storage relayed;
	const struct stun_attr *tok, *ra;
	int code = send_req(c, &q, t, &m);

	if (code != 0)
		return code;
	tok = stun_attr_find(&m, STUN_A_RESERVATION_TOKEN);
	ra = stun_attr_find(&m, STUN_A_XOR_RELAYED_ADDRESS);
	if (tok == NULL || tok->len != 8 || ra == NULL ||
	    stun_attr_addr(&m, ra, true, &relayed) != STUN_OK)
		return -4;
	memcpy(token, tok->value, 8);
	*port = ntohs(((struct sockaddr_in *)&relayed)->sin_port);
	return 0;
}

/* A reservation goes with the allocation that made it (Refresh 0,
 * expiry), and one user holds at most TURN_RESERVATIONS_PER_USER, so one
 * identity cannot fill the table that everyone shares. */
static void test_reservation_limits(void)
{
	uint8_t src[SOURCE_KEY_LEN];
	struct turn_client c[TURN_RESERVATIONS_PER_USER + 2];
	struct areq del = { .method = TURN_REFRESH, .user = "alice", .pass = "wonderland",
	    .lifetime = UINT32_MAX };
	struct areq claim = { .method = TURN_ALLOCATE, .user = "alice", .pass = "wonderland",
	    .transport = true };
	struct stun_msg m;
	uint8_t token[8], tokens[TURN_RESERVATIONS_PER_USER][8];
	uint16_t port;
	const uint64_t t = 90000;
	int i;

	setup(4);
	for (i = 0; i < TURN_RESERVATIONS_PER_USER + 2; i++)
		c[i] = client_udp((uint16_t)(9400 + i));
	/* Allocate with R and delete, many times over: nothing piles up. */
	for (i = 0; i < TURN_MAX_RESERVATIONS + 4; i++) {
		CHECK_EQ_INT(reserve(&c[0], "alice", "wonderland", t, token, &port), 0);
		CHECK_EQ_INT(send_req(&c[0], &del, t, &m), 0);
		CHECK_EQ_INT(F.nunreserve, i + 1);
		CHECK_EQ_INT(F.last_unreserved, port + 1);
	}
	/* The last token died with its allocation. */
	claim.token = token;
	CHECK_EQ_INT(send_req(&c[1], &claim, t, &m), 508);

	/* At most TURN_RESERVATIONS_PER_USER at a time for one user, whatever
	 * its 5-tuples; another user is not affected. */
	F.nunreserve = 0;
	for (i = 0; i < TURN_RESERVATIONS_PER_USER; i++)
		CHECK_EQ_INT(reserve(&c[i], "alice", "wonderland", t, tokens[i], &port), 0);
	CHECK_EQ_INT(reserve(&c[TURN_RESERVATIONS_PER_USER], "alice", "wonderland", t, token,
	    &port), 486);
	CHECK_EQ_INT(reserve(&c[TURN_RESERVATIONS_PER_USER + 1], "bob", "builder", t, token,
	    &port), 0);
	/* A claimed reservation no longer counts. */
	claim.token = tokens[0];
	CHECK_EQ_INT(send_req(&c[TURN_RESERVATIONS_PER_USER], &claim, t, &m), 0);
	CHECK_EQ_INT(reserve(&c[TURN_RESERVATIONS_PER_USER], "alice", "wonderland", t, token,
	    &port), 437); /* that 5-tuple has an allocation now */
	CHECK_EQ_INT(F.nunreserve, 0);
	/* However an allocation goes, its reservation goes with it. (Expiry
	 * cannot come first: a reservation lasts 30 s, an allocation 60 s at
	 * least.) */
	CHECK_EQ_INT(send_req(&c[1], &del, t, &m), 0);
	CHECK_EQ_INT(F.nunreserve, 1);
	CHECK_EQ_INT(reserve(&c[1], "alice", "wonderland", t, token, &port), 0);
	source_key((struct sockaddr *)&c[0].remote, src);
	CHECK_EQ_INT(turn_server_remove_source(F.s, src), TURN_RESERVATIONS_PER_USER + 2);
	CHECK_EQ_INT(F.nunreserve, 1 + TURN_RESERVATIONS_PER_USER); /* 3 of alice, 1 of bob */
	turn_server_free(F.s);
	CHECK_EQ_INT(F.nunreserve, 1 + TURN_RESERVATIONS_PER_USER);
}

/* A step of the system clock, either way, changes no duration: lifetimes
 * of allocations and permissions and the failure block run on the
 * monotonic clock, while nonces and credentials keep using the wall clock
 * they are stamped with. */
static void test_clock_steps(void)
{
	struct turn_client c = client_udp(9301), bad = client_udp(9302), late = client_udp(9303);
	struct sockaddr_storage relayed, pub = addr("8.8.8.8", 5000);
	struct turn_auth auth;
	char user[TURN_USERNAME_MAX], pass[TURN_PASSWORD_MAX];
	const uint64_t t = 7000000;       /* monotonic: about 2 h after boot */
	const uint64_t u = t + 602 * 1000;
	const int64_t wall0 = 1700000000000LL - (int64_t)t;
	int i;

	setup(4);
	bad.remote = addr("192.0.2.20", 9302); /* failures count per IP */
	F.wall_step_ms = wall0;
	CHECK_EQ_INT(allocate(&c, "alice", "wonderland", t, &relayed), 0);
	CHECK_EQ_INT(perm(&c, &pub, t), 0);
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(allocate(&bad, "alice", "bad", t, NULL), 401);
	CHECK_EQ_INT(allocate(&bad, "alice", "wonderland", t, NULL), -3);

	/* The clock jumps 2 hours ahead: nothing expires before its time. */
	F.wall_step_ms = wall0 + 2 * 3600 * 1000;
	turn_server_tick(F.s, T(t + 1000));
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 1);
	F.nrelay_sent = 0;
	send_indication(&c, &pub, "still", t + 1000);
	CHECK_EQ_INT(F.nrelay_sent, 1);
	/* Nor does the failure block lift early. */
	CHECK_EQ_INT(allocate(&bad, "alice", "wonderland", t + 2000, NULL), -3);
	/* Nonces follow the wall clock: made and checked after the step. */
	CHECK_EQ_INT(perm(&c, &pub, t + 2000), 0);

	/* Then a day back: nothing lives longer than its lifetime either. */
	F.wall_step_ms = wall0 - 24 * 3600 * 1000;
	turn_server_tick(F.s, T(t + 3000));
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 1);
	/* The permission, refreshed at t + 2 s, lapses 300 s later. */
	turn_server_tick(F.s, T(t + 2000 + TURN_PERMISSION_LIFETIME_MS + 1000));
	F.nrelay_sent = 0;
	send_indication(&c, &pub, "late", t + 2000 + TURN_PERMISSION_LIFETIME_MS + 1000);
	CHECK_EQ_INT(F.nrelay_sent, 0);
	/* The block ended TURN_AUTH_BLOCK_MS after it began. */
	CHECK_EQ_INT(allocate(&bad, "alice", "wonderland", t + TURN_AUTH_BLOCK_MS + 1000, NULL), 0);
	/* The allocation (600 s) is gone at its time. */
	turn_server_tick(F.s, T(t + 601 * 1000));
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 1); /* bad's, made later */
	CHECK(turn_server_find_relayed(F.s, (struct sockaddr *)&relayed) == NULL);

	/* Call credentials expire by the wall clock they carry. */
	memset(&auth, 0, sizeof(auth));
	memset(auth.secret, 7, sizeof(auth.secret));
	F.wall_step_ms = wall0;
	CHECK_EQ_INT(turn_cred_mint(&auth, "carol", "call-9",
	    (uint64_t)(wall0 + (int64_t)u) / 1000 + 60, user, sizeof(user), pass,
	    sizeof(pass)), TURN_AUTH_OK);
	CHECK_EQ_INT(allocate(&c, user, pass, u, NULL), 0);
	F.wall_step_ms = wall0 + 3600 * 1000;
	CHECK_EQ_INT(allocate(&late, user, pass, u + 1000, NULL), 401);
	turn_server_free(F.s);
}

/* Every prefix of an authenticated Allocate is dropped or refused and
 * never creates an allocation. */
/* A blocked source loses its allocations: every address of its IPv6 /64
 * (the holder of a /64 picks any address inside it), an IPv4 address
 * whichever way it is spelled, and nothing of anyone else. */
static void test_remove_source(void)
{
	static const char *const ips[] = {
		"2001:db8:1:2::10", "2001:db8:1:2:ffff::1", "2001:db8:1:3::10",
		"192.0.2.10", "::ffff:192.0.2.10", "192.0.2.11",
	};
	struct turn_client c[6];
	uint8_t src[SOURCE_KEY_LEN];
	size_t i;

	setup(8);
	for (i = 0; i < 6; i++) {
		c[i] = client_udp((uint16_t)(9400 + i));
		c[i].remote = addr(ips[i], (uint16_t)(9400 + i));
		CHECK_EQ_INT(allocate(&c[i], "alice", "wonderland", 60000, NULL), 0);
	}
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 6);
	CHECK_EQ_INT(source_key_parse("2001:db8:1:2::/64", src), 0);
	CHECK_EQ_INT(turn_server_remove_source(F.s, src), 2);
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 4);
	CHECK_EQ_INT(source_key_parse("192.0.2.10", src), 0);
	CHECK_EQ_INT(turn_server_remove_source(F.s, src), 2);
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 2);
	CHECK_EQ_INT(turn_server_remove_source(F.s, src), 0);
	turn_server_free(F.s);
}

static void test_prefixes(void)
{
	struct turn_client c = client_udp(9001);
	uint8_t buf[512], txid[STUN_TXID_LEN], key[16];
	char nonce[TURN_NONCE_MAX];
	struct stun_builder b;
	size_t len, i;

	setup(4);
	get_nonce(&c, nonce, sizeof(nonce), 60000);
	new_txid(txid);
	stun_build_init(&b, buf, sizeof(buf), TURN_ALLOCATE, STUN_REQUEST, txid);
	stun_build_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
	stun_build_attr(&b, STUN_A_USERNAME, "alice", 5);
	stun_build_attr(&b, STUN_A_REALM, REALM, strlen(REALM));
	stun_build_attr(&b, STUN_A_NONCE, nonce, strlen(nonce));
	stun_key_md5("alice", 5, REALM, strlen(REALM), "wonderland", 10, key);
	stun_build_integrity(&b, key, sizeof(key));
	CHECK(stun_build_finish(&b, &len) == STUN_OK);
	for (i = 0; i < len; i++)
		turn_server_on_client(F.s, &c, buf, i, T(60000));
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 0);
	turn_server_on_client(F.s, &c, buf, len, T(60000));
	CHECK_EQ_INT(turn_server_alloc_count(F.s), 1);
	turn_server_free(F.s);
}

int main(void)
{
	test_binding_and_challenge();
	test_allocate_and_relay();
	test_relay_to_relay_exact();
	test_quota_and_lifetime();
	test_auth_failures_block();
	test_unknown_attribute();
	test_reservation();
	test_reservation_limits();
	test_call_forced_relay();
	test_prefixes();
	test_remove_source();
	test_clock_steps();
	return check_done("test_server");
}
