/* TURN client for the relay benchmark (tests/bench/run_relay.py).
 *
 *   bench_turn_probe latency --server 127.0.0.1:PORT [options]
 *       Two UDP allocations A and B, each with a permission and a channel
 *       to the other's relayed address, and two plain UDP sockets A' and
 *       B'. Sends --rate timestamped packets a second for --seconds,
 *       A -> relay -> relay -> B, and interleaved the same stream A' -> B'
 *       directly over loopback. Prints the one-way latency and the jitter
 *       (|transit(i) - transit(i-1)|, RFC 3550 §6.4.1 without smoothing)
 *       of both streams as percentiles, and their difference: what the
 *       relay adds.
 *   bench_turn_probe load --server 127.0.0.1:PORT [options]
 *       A background load: --pairs pairs of allocations bound to each
 *       other, sending --rate ChannelData packets a second in all,
 *       round-robin. Prints READY once set up, then reads lines on stdin:
 *       "mark" starts the measured window, "stop" (or end of input) ends
 *       the run. Reports the rates sent and received in the window.
 *   bench_turn_probe allocs --server 127.0.0.1:PORT --count N [options]
 *       N client sockets, one allocation each, with at most --window
 *       Allocates in flight. With --hold, prints HOLDING once done and
 *       keeps them until a line (or end of input) on stdin, then deletes
 *       them (Refresh with LIFETIME 0). With --max-refusals R, stops
 *       starting new Allocates after R refusals (to find the capacity).
 *
 * Authentication is the long-term mechanism (RFC 8489 §9.2): the first
 * request of a client goes unsigned, the 401 gives REALM and NONCE, and
 * every later one carries USERNAME, REALM, NONCE and MESSAGE-INTEGRITY
 * (HMAC-SHA1 with key MD5(user:realm:pass)); a 438 renews the nonce.
 * Success answers to signed requests must carry a valid MESSAGE-INTEGRITY.
 * The codec is the daemon's own (turn/stun.c).
 *
 * Human-readable lines start with "probe:"; the machine-readable ones are
 * READY, HOLDING {json} and RESULT {json}, one line each, on stdout.
 * Traffic goes only to 127.0.0.0/8 (TESTING.md, "Network rule"). Every
 * wait is bounded. Exit status: 0 when everything worked (however slow),
 * 1 on a functional failure (a request that failed or was never
 * answered, a stream that delivered nothing), 2 on bad usage or a
 * set-up failure of the client itself (sockets, memory). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ppoll */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/bytes.h"
#include "turn/stun.h"

#define REQ_MAX 512             /* our requests are under 300 bytes */
#define NONCE_MAX 256
#define REALM_MAX 128
#define RTO_FIRST_MS 250        /* RFC 8489 §6.2.1 suggests 500; loopback */
#define RTO_MAX_MS 2000
#define MAX_TRANSMITS 7         /* about 9 s before a request is given up */
#define MAX_NONCE_ROUNDS 3      /* 401/438 answers taken per request */
#define ERR_TIMEOUT (-1)        /* no answer after MAX_TRANSMITS */
#define ERR_INTEGRITY (-2)      /* success answer without a valid MAC */
#define ERR_SEND (-3)           /* send() failed for good */
#define ERR_AUTH (-4)           /* 401 to a signed request */
#define ERR_NOT_LOOPBACK (-5)   /* relayed address outside 127.0.0.0/8 */
#define PKT_MAGIC 0x47485042u   /* "GHPB" */
#define PKT_HEADER 20           /* magic, stream, seq, send time */
#define STREAM_RELAY 0
#define STREAM_DIRECT 1
#define STREAM_LOAD 2
#define CHANNEL_A 0x4000
#define CHANNEL_B 0x4001
#define SOCK_BUF (1 << 20)
#define MAX_CODES 16
#define MAX_PACKETS 20000000u   /* per stream: bounds the latency arrays */

enum op { OP_ALLOCATE, OP_PERMISSION, OP_CHANNEL_BIND, OP_DELETE };
static const char *const op_names[] = { "Allocate", "CreatePermission",
	"ChannelBind", "Refresh(0)" };

enum tc_state { TC_IDLE, TC_BUSY, TC_DONE, TC_FAILED };

/* One TURN client: one connected UDP socket, at most one allocation. */
struct tc {
	int fd;
	enum tc_state st;
	bool allocated;
	uint8_t txid[STUN_TXID_LEN];
	uint8_t req[REQ_MAX];
	size_t req_len;
	uint64_t sent_ms, rto_ms;
	int transmits, nonce_rounds;
	bool signed_req;
	int err;                         /* STUN error code or ERR_* */
	char nonce[NONCE_MAX];
	size_t nonce_len;
	struct sockaddr_in relayed, peer;
	uint16_t channel;
};

struct code_count {
	int code;
	unsigned long n;
};

/* What one run_op() pass did. */
struct op_stats {
	unsigned long ok, failed, refused, retransmits, challenges;
	double seconds;
	struct code_count codes[MAX_CODES];
	size_t ncodes;
};

struct probe {
	struct sockaddr_in server;
	const char *user, *pass;
	char realm[REALM_MAX];
	size_t realm_len;
	uint8_t key[16];
	bool fingerprint;
	uint8_t txid_base[STUN_TXID_LEN];
	uint64_t txid_seq;
	int ep;                          /* epoll set of the client sockets */
	unsigned long unsigned_ok;       /* success answers without MI */
};

struct opts {
	const char *server, *user, *pass;
	unsigned rate, size, pairs, window, count, max_refusals;
	double seconds, warmup_s, drain_s, timeout_s, max_seconds, max_hold_s;
	bool fingerprint, hold;
};

/* --- small helpers ---------------------------------------------------- */

static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "bench_turn_probe: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
	return now_ns() / 1000000u;
}

static void put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static const char *addr_str(const struct sockaddr_in *a, char *buf, size_t cap)
{
	char ip[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
	snprintf(buf, cap, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

static void code_add(struct op_stats *st, int code)
{
	size_t i;

	for (i = 0; i < st->ncodes; i++)
		if (st->codes[i].code == code) {
			st->codes[i].n++;
			return;
		}
	if (st->ncodes < MAX_CODES) {
		st->codes[st->ncodes].code = code;
		st->codes[st->ncodes++].n = 1;
	}
}

static void fd_limit(unsigned long need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit failed");
	if (rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need)
		die("need %lu descriptors, the limit is %llu (hard %llu); raise `ulimit -Hn`",
		    need, (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
}

static void sock_buffers(int fd)
{
	int sz = SOCK_BUF;

	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

/* A non-blocking UDP socket on 127.0.0.1 connected to `to`; -1 on failure
 * (errno kept). */
static int udp_connected(const struct sockaddr_in *to)
{
	struct sockaddr_in local;
	int fd;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	memset(&local, 0, sizeof(local));
	local.sin_family = AF_INET;
	local.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (const struct sockaddr *)&local, sizeof(local)) != 0 ||
	    (to != NULL && connect(fd, (const struct sockaddr *)to, sizeof(*to)) != 0)) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static bool is_loopback(const struct sockaddr_in *a)
{
	return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

/* --- TURN requests ---------------------------------------------------- */

static void next_txid(struct probe *p, uint8_t out[STUN_TXID_LEN])
{
	uint64_t s = ++p->txid_seq;

	memcpy(out, p->txid_base, STUN_TXID_LEN);
	put_be64(out + 4, s ^ ((uint64_t)get_be32(p->txid_base + 4) << 32));
}

static const uint16_t op_method[] = { TURN_ALLOCATE, TURN_CREATE_PERMISSION,
	TURN_CHANNEL_BIND, TURN_REFRESH };

/* Builds c's next request for op with a fresh transaction id: signed
 * once the client holds a nonce. */
static int build_request(struct probe *p, struct tc *c, enum op op)
{
	struct stun_builder b;

	next_txid(p, c->txid);
	stun_build_init(&b, c->req, sizeof(c->req), op_method[op], STUN_REQUEST, c->txid);
	switch (op) {
	case OP_ALLOCATE:
		/* RFC 8656 §14.7: protocol 17 (UDP) in the first byte. */
		stun_build_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
		break;
	case OP_PERMISSION:
		stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS,
		    (const struct sockaddr *)&c->peer, true);
		break;
	case OP_CHANNEL_BIND:
		stun_build_u32(&b, STUN_A_CHANNEL_NUMBER, (uint32_t)c->channel << 16);
		stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS,
		    (const struct sockaddr *)&c->peer, true);
		break;
	case OP_DELETE:
		stun_build_u32(&b, STUN_A_LIFETIME, 0);
		break;
	}
	c->signed_req = c->nonce_len > 0 && p->realm_len > 0;
	if (c->signed_req) {
		stun_build_attr(&b, STUN_A_USERNAME, p->user, strlen(p->user));
		stun_build_attr(&b, STUN_A_REALM, p->realm, p->realm_len);
		stun_build_attr(&b, STUN_A_NONCE, c->nonce, c->nonce_len);
		stun_build_integrity(&b, p->key, sizeof(p->key));
	}
	if (p->fingerprint)
		stun_build_fingerprint(&b);
	return stun_build_finish(&b, &c->req_len);
}

static void transmit(struct tc *c, uint64_t now)
{
	c->sent_ms = now;
	c->transmits++;
	/* A failed send is retried by the retransmission timer, like a loss. */
	(void)send(c->fd, c->req, c->req_len, 0);
}

static int start_request(struct probe *p, struct tc *c, enum op op, uint64_t now)
{
	if (build_request(p, c, op) != STUN_OK)
		return -1;
	c->st = TC_BUSY;
	c->transmits = 0;
	c->nonce_rounds = 0;
	c->rto_ms = RTO_FIRST_MS;
	c->err = 0;
	transmit(c, now);
	return 0;
}

/* Takes REALM and NONCE from a 401/438 answer; false if they are missing
 * or unusable. */
static bool take_challenge(struct probe *p, struct tc *c, const struct stun_msg *m)
{
	const struct stun_attr *realm = stun_attr_find(m, STUN_A_REALM);
	const struct stun_attr *nonce = stun_attr_find(m, STUN_A_NONCE);

	if (nonce == NULL || nonce->len == 0 || nonce->len > NONCE_MAX)
		return false;
	if (realm != NULL) {
		if (realm->len == 0 || realm->len >= REALM_MAX)
			return false;
		if (realm->len != p->realm_len || memcmp(realm->value, p->realm, realm->len) != 0) {
			memcpy(p->realm, realm->value, realm->len);
			p->realm_len = realm->len;
			stun_key_md5(p->user, strlen(p->user), p->realm, p->realm_len,
			    p->pass, strlen(p->pass), p->key);
		}
	} else if (p->realm_len == 0) {
		return false;
	}
	memcpy(c->nonce, nonce->value, nonce->len);
	c->nonce_len = nonce->len;
	return true;
}

static void finish(struct tc *c, struct op_stats *st, int err)
{
	if (err == 0) {
		c->st = TC_DONE;
		st->ok++;
		return;
	}
	c->st = TC_FAILED;
	c->err = err;
	st->failed++;
	code_add(st, err);
	if (err == 508 || err == 486)
		st->refused++;
}

/* One datagram on a client socket while a request is in flight. Anything
 * that is not the answer to the current transaction is ignored (a late
 * answer to a retransmission, relayed data). */
static void on_answer(struct probe *p, struct tc *c, enum op op,
    const uint8_t *buf, size_t len, struct op_stats *st, uint64_t now)
{
	struct stun_msg m;
	const struct stun_attr *a;
	struct sockaddr_storage ss;
	const uint8_t *reason;
	size_t reason_len;
	int code, rc;

	if (stun_parse(buf, len, &m) != STUN_OK || m.method != op_method[op] ||
	    memcmp(m.txid, c->txid, STUN_TXID_LEN) != 0)
		return;
	if (m.cls == STUN_ERROR) {
		a = stun_attr_find(&m, STUN_A_ERROR_CODE);
		if (a == NULL || stun_attr_error(a, &code, &reason, &reason_len) != STUN_OK)
			code = 400;
		if ((code == 401 || code == 438) && !(code == 401 && c->signed_req) &&
		    c->nonce_rounds < MAX_NONCE_ROUNDS && take_challenge(p, c, &m)) {
			st->challenges++;
			c->nonce_rounds++;
			if (build_request(p, c, op) != STUN_OK) {
				finish(c, st, ERR_SEND);
				return;
			}
			c->transmits = 0;
			c->rto_ms = RTO_FIRST_MS;
			transmit(c, now);
			return;
		}
		finish(c, st, code == 401 && c->signed_req ? ERR_AUTH : code);
		return;
	}
	if (m.cls != STUN_SUCCESS)
		return;
	if (c->signed_req) {
		rc = stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY, p->key, sizeof(p->key));
		if (rc == STUN_ENOTFOUND)
			p->unsigned_ok++;
		else if (rc != STUN_OK) {
			finish(c, st, ERR_INTEGRITY);
			return;
		}
	}
	if (op == OP_ALLOCATE) {
		a = stun_attr_find(&m, STUN_A_XOR_RELAYED_ADDRESS);
		if (a == NULL || stun_attr_addr(&m, a, true, &ss) != STUN_OK ||
		    ss.ss_family != AF_INET) {
			finish(c, st, 400);
			return;
		}
		memcpy(&c->relayed, &ss, sizeof(c->relayed));
		c->allocated = true;
		/* Peers are the relayed addresses: the relay would send there. */
		if (!is_loopback(&c->relayed)) {
			finish(c, st, ERR_NOT_LOOPBACK);
			return;
		}
	} else if (op == OP_DELETE) {
		c->allocated = false;
	}
	finish(c, st, 0);
}

/* Runs op for clients idx[0..n-1] with at most `window` requests in
 * flight, retransmitting on a doubling timer, until every request is
 * answered or given up, or the deadline passes (the rest fail with
 * ERR_TIMEOUT). With max_refusals > 0, no new request starts once that
 * many got 508/486. */
static void run_op(struct probe *p, struct tc *cl, const size_t *idx, size_t n,
    enum op op, size_t window, uint64_t deadline_ms, unsigned long max_refusals,
    struct op_stats *st)
{
	struct epoll_event evs[256];
	uint8_t buf[STUN_MAX_MESSAGE + 64];
	size_t *busy, nbusy = 0, next = 0, i, k;
	uint64_t t0 = now_ns(), now;
	ssize_t r;
	int ne, e;

	memset(st, 0, sizeof(*st));
	if (window == 0)
		window = 1;
	busy = calloc(window, sizeof(*busy));
	if (busy == NULL)
		die("out of memory");
	for (;;) {
		now = now_ms();
		while (nbusy < window && next < n &&
		    (max_refusals == 0 || st->refused < max_refusals)) {
			struct tc *c = &cl[idx[next++]];

			if (start_request(p, c, op, now) != 0) {
				finish(c, st, ERR_SEND);
				continue;
			}
			busy[nbusy++] = (size_t)(c - cl);
		}
		if (nbusy == 0)
			break;
		if (now >= deadline_ms) {
			for (k = 0; k < nbusy; k++)
				finish(&cl[busy[k]], st, ERR_TIMEOUT);
			break;
		}
		ne = epoll_wait(p->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 10);
		if (ne < 0 && errno != EINTR)
			die("epoll_wait: %s", strerror(errno));
		now = now_ms();
		for (e = 0; e < ne; e++) {
			struct tc *c = &cl[evs[e].data.u64];

			for (k = 0; k < 64; k++) {
				r = recv(c->fd, buf, sizeof(buf), 0);
				if (r < 0)
					break;
				if (c->st == TC_BUSY)
					on_answer(p, c, op, buf, (size_t)r, st, now);
			}
		}
		/* Retransmissions, and compaction of the in-flight list. */
		for (i = 0, k = 0; i < nbusy; i++) {
			struct tc *c = &cl[busy[i]];

			if (c->st != TC_BUSY)
				continue;
			if (now - c->sent_ms >= c->rto_ms) {
				if (c->transmits >= MAX_TRANSMITS) {
					finish(c, st, ERR_TIMEOUT);
					continue;
				}
				st->retransmits++;
				c->rto_ms = c->rto_ms * 2 > RTO_MAX_MS ? RTO_MAX_MS : c->rto_ms * 2;
				transmit(c, now);
			}
			busy[k++] = busy[i];
		}
		nbusy = k;
	}
	free(busy);
	st->seconds = (double)(now_ns() - t0) / 1e9;
}

static const char *err_name(int code, char *buf, size_t cap)
{
	switch (code) {
	case ERR_TIMEOUT: return "timeout";
	case ERR_INTEGRITY: return "bad-integrity";
	case ERR_SEND: return "send-failed";
	case ERR_AUTH: return "auth-401";
	case ERR_NOT_LOOPBACK: return "relayed-not-loopback";
	default: snprintf(buf, cap, "%d", code); return buf;
	}
}

static void print_stats(const char *what, enum op op, size_t n, const struct op_stats *st)
{
	char nb[16];
	size_t i;

	printf("probe: %s %s x%zu: %lu ok, %lu failed in %.2f s (%.0f/s), %lu challenges, "
	    "%lu retransmissions", what, op_names[op], n, st->ok, st->failed, st->seconds,
	    st->seconds > 0 ? (double)st->ok / st->seconds : 0.0, st->challenges,
	    st->retransmits);
	for (i = 0; i < st->ncodes; i++)
		printf("%s%s x%lu", i == 0 ? "; errors: " : ", ",
		    err_name(st->codes[i].code, nb, sizeof(nb)), st->codes[i].n);
	printf("\n");
}

static void json_codes(const struct op_stats *st)
{
	char nb[16];
	size_t i;

	printf("{");
	for (i = 0; i < st->ncodes; i++)
		printf("%s\"%s\":%lu", i ? "," : "", err_name(st->codes[i].code, nb, sizeof(nb)),
		    st->codes[i].n);
	printf("}");
}

/* --- clients ---------------------------------------------------------- */

static void probe_init(struct probe *p, const struct opts *o)
{
	char *colon, host[64];
	unsigned long port;

	memset(p, 0, sizeof(*p));
	if (o->server == NULL || strlen(o->server) >= sizeof(host))
		die("--server 127.0.0.1:PORT is required");
	snprintf(host, sizeof(host), "%s", o->server);
	colon = strrchr(host, ':');
	if (colon == NULL)
		die("--server must be IP:PORT");
	*colon = '\0';
	port = strtoul(colon + 1, NULL, 10);
	p->server.sin_family = AF_INET;
	p->server.sin_port = htons((uint16_t)port);
	if (port == 0 || port > 65535 || inet_pton(AF_INET, host, &p->server.sin_addr) != 1 ||
	    !is_loopback(&p->server))
		die("--server must be an IPv4 address in 127.0.0.0/8 with a port (loopback only)");
	p->user = o->user;
	p->pass = o->pass;
	p->fingerprint = o->fingerprint;
	if (getrandom(p->txid_base, sizeof(p->txid_base), 0) != (ssize_t)sizeof(p->txid_base))
		die("getrandom failed");
	p->ep = epoll_create1(EPOLL_CLOEXEC);
	if (p->ep < 0)
		die("epoll_create1: %s", strerror(errno));
}

/* n clients, each with a socket connected to the server; dies if the
 * sockets cannot be made. */
static struct tc *clients_new(struct probe *p, size_t n, bool big_buffers)
{
	struct tc *cl = calloc(n, sizeof(*cl));
	struct epoll_event ev;
	size_t i;

	if (cl == NULL)
		die("out of memory for %zu clients", n);
	for (i = 0; i < n; i++) {
		cl[i].fd = udp_connected(&p->server);
		if (cl[i].fd < 0)
			die("socket %zu of %zu: %s", i + 1, n, strerror(errno));
		if (big_buffers)
			sock_buffers(cl[i].fd);
		memset(&ev, 0, sizeof(ev));
		ev.events = EPOLLIN;
		ev.data.u64 = i;
		if (epoll_ctl(p->ep, EPOLL_CTL_ADD, cl[i].fd, &ev) != 0)
			die("epoll_ctl: %s", strerror(errno));
	}
	return cl;
}

static void clients_free(struct tc *cl, size_t n)
{
	size_t i;

	for (i = 0; cl != NULL && i < n; i++)
		if (cl[i].fd >= 0)
			close(cl[i].fd);
	free(cl);
}

static size_t *index_all(size_t n)
{
	size_t *idx = calloc(n ? n : 1, sizeof(*idx)), i;

	if (idx == NULL)
		die("out of memory");
	for (i = 0; i < n; i++)
		idx[i] = i;
	return idx;
}

/* Allocations for all, then each client 2k and 2k+1 gets a permission
 * and a channel to the other's relayed address. 0, or 1 with the failure
 * printed. */
static int pairs_setup(struct probe *p, struct tc *cl, size_t n, double timeout_s)
{
	struct op_stats st;
	size_t *idx = index_all(n), i;
	uint64_t deadline = now_ms() + (uint64_t)(timeout_s * 1000);
	int rc = 1;
	char a[32], b[32];

	run_op(p, cl, idx, n, OP_ALLOCATE, 64, deadline, 0, &st);
	print_stats("set-up", OP_ALLOCATE, n, &st);
	if (st.failed)
		goto out;
	for (i = 0; i + 1 < n; i += 2) {
		cl[i].peer = cl[i + 1].relayed;
		cl[i + 1].peer = cl[i].relayed;
		cl[i].channel = CHANNEL_A;
		cl[i + 1].channel = CHANNEL_B;
	}
	run_op(p, cl, idx, n, OP_PERMISSION, 64, deadline, 0, &st);
	print_stats("set-up", OP_PERMISSION, n, &st);
	if (st.failed)
		goto out;
	run_op(p, cl, idx, n, OP_CHANNEL_BIND, 64, deadline, 0, &st);
	print_stats("set-up", OP_CHANNEL_BIND, n, &st);
	if (st.failed)
		goto out;
	if (n >= 2)
		printf("probe: first pair: %s <-> %s\n", addr_str(&cl[0].relayed, a, sizeof(a)),
		    addr_str(&cl[1].relayed, b, sizeof(b)));
	rc = 0;
out:
	free(idx);
	return rc;
}

/* Deletes the allocations that are still there; best effort, bounded. */
static void clients_release(struct probe *p, struct tc *cl, size_t n, struct op_stats *st)
{
	size_t *idx = index_all(n), m = 0, i;

	for (i = 0; i < n; i++)
		if (cl[i].allocated)
			idx[m++] = i;
	run_op(p, cl, idx, m, OP_DELETE, 64, now_ms() + 30000, 0, st);
	free(idx);
}

/* --- packets ---------------------------------------------------------- */

static void pkt_fill(uint8_t *buf, size_t size, uint8_t stream, uint32_t seq, uint64_t t)
{
	put_be32(buf, PKT_MAGIC);
	buf[4] = stream;
	buf[5] = buf[6] = buf[7] = 0;
	put_be32(buf + 8, seq);
	put_be64(buf + 12, t);
	(void)size;
}

/* The payload of a datagram a client received from the relay:
 * ChannelData, or a Data indication. false for anything else. */
static bool relay_payload(const uint8_t *buf, size_t len, const uint8_t **data, size_t *dlen)
{
	struct stun_msg m;
	const struct stun_attr *a;
	uint16_t ch;

	if (stun_demux(buf, len) == 2)
		return channeldata_parse(buf, len, &ch, data, dlen) == STUN_OK;
	if (stun_parse(buf, len, &m) != STUN_OK || m.method != TURN_DATA ||
	    m.cls != STUN_INDICATION || (a = stun_attr_find(&m, STUN_A_DATA)) == NULL)
		return false;
	*data = a->value;
	*dlen = a->len;
	return true;
}

static bool pkt_read(const uint8_t *data, size_t len, uint8_t *stream, uint32_t *seq)
{
	struct rd r = rd_init(data, len);
	uint32_t magic;

	if (rd_u32(&r, &magic) || magic != PKT_MAGIC || rd_u8(&r, stream) ||
	    rd_skip(&r, 3) || rd_u32(&r, seq))
		return false;
	return true;
}

/* --- latency ---------------------------------------------------------- */

struct stream {
	uint64_t *sent, *recv;            /* ns, per sequence number; 0: none */
	unsigned long received, dup, late, foreign;
};

struct pct {
	double p50, p90, p99, max, mean;
	size_t n;
};

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentiles, in µs. Sorts v. */
static struct pct percentiles(int64_t *v, size_t n)
{
	struct pct p;
	double sum = 0;
	size_t i;

	memset(&p, 0, sizeof(p));
	p.n = n;
	if (n == 0)
		return p;
	qsort(v, n, sizeof(*v), cmp_i64);
	for (i = 0; i < n; i++)
		sum += (double)v[i];
#define RANK(q) ((size_t)ceil((q) / 100.0 * (double)n) - 1)
	p.p50 = (double)v[RANK(50)] / 1000.0;
	p.p90 = (double)v[RANK(90)] / 1000.0;
	p.p99 = (double)v[RANK(99)] / 1000.0;
#undef RANK
	p.max = (double)v[n - 1] / 1000.0;
	p.mean = sum / (double)n / 1000.0;
	return p;
}

/* Transit times and jitter of sequence numbers [from, to): jitter is
 * |transit(i) - transit(j)| for each received i and the received j just
 * before it. */
static void stream_stats(const struct stream *s, size_t from, size_t to,
    struct pct *lat, struct pct *jit, unsigned long *lost)
{
	int64_t *t = calloc(to - from + 1, sizeof(*t)), *d = calloc(to - from + 1, sizeof(*d));
	int64_t prev = 0, tr;
	size_t nt = 0, nd = 0, i;
	bool have_prev = false;

	if (t == NULL || d == NULL)
		die("out of memory");
	for (i = from; i < to; i++) {
		if (s->recv[i] == 0)
			continue;
		tr = (int64_t)(s->recv[i] - s->sent[i]);
		t[nt++] = tr;
		if (have_prev)
			d[nd++] = tr > prev ? tr - prev : prev - tr;
		prev = tr;
		have_prev = true;
	}
	*lost = (unsigned long)(to - from - nt);
	*lat = percentiles(t, nt);
	*jit = percentiles(d, nd);
	free(t);
	free(d);
}

static void print_pct_row(const char *name, const struct pct *p)
{
	printf("probe:   %-22s %9.1f %9.1f %9.1f %9.1f %9.1f\n", name, p->p50, p->p90,
	    p->p99, p->max, p->mean);
}

static void json_pct(const char *name, const struct pct *p)
{
	printf("\"%s\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"n\":%zu}",
	    name, p->p50, p->p90, p->p99, p->max, p->mean, p->n);
}

static struct pct pct_diff(const struct pct *a, const struct pct *b)
{
	struct pct d;

	d.p50 = a->p50 - b->p50;
	d.p90 = a->p90 - b->p90;
	d.p99 = a->p99 - b->p99;
	d.max = a->max - b->max;
	d.mean = a->mean - b->mean;
	d.n = a->n < b->n ? a->n : b->n;
	return d;
}

/* Drains one socket and records stream packets. */
static void latency_recv(int fd, bool via_relay, struct stream *ss, size_t total, uint64_t *last_rx)
{
	uint8_t buf[4096];
	const uint8_t *data;
	size_t dlen;
	uint32_t seq;
	uint8_t stream;
	ssize_t r;
	uint64_t t;
	int k;

	for (k = 0; k < 256; k++) {
		r = recv(fd, buf, sizeof(buf), 0);
		if (r < 0)
			return;
		t = now_ns();
		if (via_relay) {
			if (!relay_payload(buf, (size_t)r, &data, &dlen))
				continue;   /* a late answer to a request */
		} else {
			data = buf;
			dlen = (size_t)r;
		}
		if (!pkt_read(data, dlen, &stream, &seq) || stream > STREAM_DIRECT ||
		    (stream == STREAM_RELAY) != via_relay || seq >= total) {
			ss[via_relay ? STREAM_RELAY : STREAM_DIRECT].foreign++;
			continue;
		}
		if (ss[stream].recv[seq] != 0) {
			ss[stream].dup++;
			continue;
		}
		ss[stream].recv[seq] = t;
		ss[stream].received++;
		*last_rx = t;
	}
}

static int cmd_latency(const struct opts *o)
{
	struct probe pr, *p = &pr;
	struct tc *cl;
	struct stream ss[2];
	struct op_stats rel;
	struct sockaddr_in da, db;
	socklen_t sl = sizeof(da);
	struct pollfd pf[4];
	struct timespec ts;
	uint8_t pkt[4096], frame[4096 + 4];
	size_t total, warm, i = 0, flen;
	uint64_t t0, interval, due, now, end_send, drain_until, last_rx = 0, late_max = 0;
	unsigned long late = 0, send_err = 0, lost[2];
	struct pct lat[2], jit[2], dl, dj;
	int fa, fb, s, rc = 0;

	probe_init(p, o);
	fd_limit(64);
	if (o->size < PKT_HEADER || o->size > 1400)
		die("--size must be %d-1400", PKT_HEADER);
	warm = (size_t)(o->rate * o->warmup_s);
	total = warm + (size_t)(o->rate * o->seconds);
	if (total == 0 || total > MAX_PACKETS)
		die("--rate x --seconds must be 1-%u packets", MAX_PACKETS);
	for (s = 0; s < 2; s++) {
		memset(&ss[s], 0, sizeof(ss[s]));
		ss[s].sent = calloc(total, sizeof(uint64_t));
		ss[s].recv = calloc(total, sizeof(uint64_t));
		if (ss[s].sent == NULL || ss[s].recv == NULL)
			die("out of memory");
	}
	cl = clients_new(p, 2, true);
	if (pairs_setup(p, cl, 2, o->timeout_s) != 0) {
		printf("probe: FAIL: the relay could not be set up\n");
		clients_release(p, cl, 2, &rel);
		clients_free(cl, 2);
		return 1;
	}
	/* The direct path: two plain sockets on loopback. */
	fa = udp_connected(NULL);
	fb = udp_connected(NULL);
	if (fa < 0 || fb < 0 || getsockname(fa, (struct sockaddr *)&da, &sl) != 0 ||
	    (sl = sizeof(db), getsockname(fb, (struct sockaddr *)&db, &sl)) != 0 ||
	    connect(fa, (struct sockaddr *)&db, sizeof(db)) != 0 ||
	    connect(fb, (struct sockaddr *)&da, sizeof(da)) != 0)
		die("direct sockets: %s", strerror(errno));
	sock_buffers(fa);
	sock_buffers(fb);
	/* Wake-ups on time: the default 50 µs slack would show as latency
	 * of the sender, equally in both streams, but needlessly. */
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	pf[0].fd = cl[1].fd;        /* B: relayed stream arrives here */
	pf[1].fd = fb;              /* B': direct stream */
	pf[2].fd = cl[0].fd;        /* A: nothing expected; drained */
	pf[3].fd = fa;
	for (s = 0; s < 4; s++)
		pf[s].events = POLLIN;
	memset(pkt, 0, sizeof(pkt));
	interval = 1000000000u / o->rate;
	t0 = now_ns() + 1000000u;
	end_send = t0 + interval * total;
	drain_until = end_send + (uint64_t)(o->drain_s * 1e9);
	printf("probe: %zu packets a stream (%zu warm-up) at %u/s, %u bytes, relayed via %s "
	    "and direct\n", total - warm, warm, o->rate, o->size, o->server);
	for (;;) {
		now = now_ns();
		while (i < total && now >= (due = t0 + interval * i)) {
			/* Alternate which stream goes first, so neither is always
			 * second in the sender's queue. */
			for (s = 0; s < 2; s++) {
				int which = (int)((i + (size_t)s) & 1);
				uint64_t t = now_ns();

				pkt_fill(pkt, o->size, (uint8_t)which, (uint32_t)i, t);
				ss[which].sent[i] = t;
				if (which == STREAM_RELAY) {
					if (channeldata_build(frame, sizeof(frame), cl[0].channel, pkt,
					    o->size, &flen) != STUN_OK || send(cl[0].fd, frame, flen, 0) < 0)
						send_err++;
				} else if (send(fa, pkt, o->size, 0) < 0) {
					send_err++;
				}
			}
			if (now - due > 1000000u)
				late++;
			if (now - due > late_max)
				late_max = now - due;
			i++;
		}
		if (i >= total && (now >= drain_until ||
		    (ss[0].received + ss[0].dup >= total && ss[1].received >= total)))
			break;
		due = i < total ? t0 + interval * i : drain_until;
		due = due > now ? due - now : 0;
		if (i >= total && due > 10000000u)
			due = 10000000u;
		ts.tv_sec = (time_t)(due / 1000000000u);
		ts.tv_nsec = (long)(due % 1000000000u);
		if (ppoll(pf, 4, &ts, NULL) < 0 && errno != EINTR)
			die("ppoll: %s", strerror(errno));
		if (pf[0].revents)
			latency_recv(pf[0].fd, true, ss, total, &last_rx);
		if (pf[1].revents)
			latency_recv(pf[1].fd, false, ss, total, &last_rx);
		if (pf[2].revents)
			latency_recv(pf[2].fd, true, ss, total, &last_rx);
		if (pf[3].revents)
			latency_recv(pf[3].fd, false, ss, total, &last_rx);
	}
	for (s = 0; s < 2; s++)
		stream_stats(&ss[s], warm, total, &lat[s], &jit[s], &lost[s]);
	dl = pct_diff(&lat[0], &lat[1]);
	dj = pct_diff(&jit[0], &jit[1]);
	printf("probe: sender: %lu of %zu ticks more than 1 ms late (worst %.1f ms), "
	    "%lu send errors\n", late, total, (double)late_max / 1e6, send_err);
	printf("probe: received: relayed %lu/%zu (lost %lu, dup %lu), direct %lu/%zu "
	    "(lost %lu, dup %lu)\n", (unsigned long)lat[0].n, total - warm, lost[0],
	    ss[0].dup, (unsigned long)lat[1].n, total - warm, lost[1], ss[1].dup);
	printf("probe:   %-22s %9s %9s %9s %9s %9s\n", "µs", "p50", "p90", "p99", "max", "mean");
	print_pct_row("latency relayed", &lat[0]);
	print_pct_row("latency direct", &lat[1]);
	print_pct_row("added latency", &dl);
	print_pct_row("jitter relayed", &jit[0]);
	print_pct_row("jitter direct", &jit[1]);
	print_pct_row("added jitter", &dj);
	clients_release(p, cl, 2, &rel);
	printf("RESULT {\"mode\":\"latency\",\"rate\":%u,\"size\":%u,\"seconds\":%.3f,"
	    "\"packets\":%zu,\"late_ticks\":%lu,\"late_max_ms\":%.3f,\"send_errors\":%lu,",
	    o->rate, o->size, o->seconds, total - warm, late, (double)late_max / 1e6, send_err);
	printf("\"relayed\":{\"received\":%zu,\"lost\":%lu,\"dup\":%lu,", lat[0].n, lost[0], ss[0].dup);
	json_pct("latency_us", &lat[0]);
	printf(",");
	json_pct("jitter_us", &jit[0]);
	printf("},\"direct\":{\"received\":%zu,\"lost\":%lu,\"dup\":%lu,", lat[1].n, lost[1], ss[1].dup);
	json_pct("latency_us", &lat[1]);
	printf(",");
	json_pct("jitter_us", &jit[1]);
	printf("},\"added\":{");
	json_pct("latency_us", &dl);
	printf(",");
	json_pct("jitter_us", &dj);
	printf("},\"released\":%lu}\n", rel.ok);
	if (lat[0].n == 0 || lat[1].n == 0) {
		printf("probe: FAIL: a stream delivered nothing (relayed %zu, direct %zu)\n",
		    lat[0].n, lat[1].n);
		rc = 1;
	}
	for (s = 0; s < 2; s++) {
		free(ss[s].sent);
		free(ss[s].recv);
	}
	clients_free(cl, 2);
	close(fa);
	close(fb);
	return rc;
}

/* --- load ------------------------------------------------------------- */

struct counters {
	uint64_t t;
	unsigned long sent, received;
};

static int cmd_load(const struct opts *o)
{
	struct probe pr, *p = &pr;
	struct tc *cl;
	struct op_stats rel;
	size_t n = (size_t)o->pairs * 2, i, next = 0;
	struct pollfd *pf;
	struct timespec ts;
	struct counters c0, cm, ce;
	uint8_t pkt[4096], frame[4096 + 4], buf[4096];
	const uint8_t *data;
	size_t flen, dlen;
	uint64_t t0, now, due, stop_at, skipped = 0, send_err = 0, seq = 0;
	unsigned long sent = 0, received = 0, foreign = 0;
	bool marked = false, stop = false, stdin_open = true;
	char line[64];
	size_t linelen = 0;
	uint8_t stream;
	uint32_t pseq;
	ssize_t r;
	int k;

	probe_init(p, o);
	fd_limit(n + 64);
	if (o->size < PKT_HEADER || o->size > 1400)
		die("--size must be %d-1400", PKT_HEADER);
	cl = clients_new(p, n, true);
	if (pairs_setup(p, cl, n, o->timeout_s) != 0) {
		printf("probe: FAIL: the relay could not be set up\n");
		clients_release(p, cl, n, &rel);
		clients_free(cl, n);
		return 1;
	}
	pf = calloc(n + 1, sizeof(*pf));
	if (pf == NULL)
		die("out of memory");
	for (i = 0; i < n; i++) {
		pf[i].fd = cl[i].fd;
		pf[i].events = POLLIN;
	}
	pf[n].fd = STDIN_FILENO;
	pf[n].events = POLLIN;
	fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	memset(pkt, 0, sizeof(pkt));
	printf("probe: load: %zu allocations in %u pairs, %u packets/s of %u bytes\n", n,
	    o->pairs, o->rate, o->size);
	printf("READY\n");
	fflush(stdout);
	t0 = now_ns();
	stop_at = t0 + (uint64_t)(o->max_seconds * 1e9);
	c0.t = t0;
	c0.sent = c0.received = 0;
	cm = c0;
	while (!stop) {
		now = now_ns();
		if (now >= stop_at)
			break;
		/* Packets due by now; a backlog over 50 ms is skipped rather
		 * than sent in a burst, and counted. */
		due = (uint64_t)((double)(now - t0) * o->rate / 1e9);
		if (due > seq + o->rate / 20 + 1) {
			skipped += due - seq - o->rate / 20;
			seq = due - o->rate / 20;
		}
		while (seq < due) {
			struct tc *c = &cl[next];

			pkt_fill(pkt, o->size, STREAM_LOAD, (uint32_t)seq, now);
			if (channeldata_build(frame, sizeof(frame), c->channel, pkt, o->size,
			    &flen) != STUN_OK || send(c->fd, frame, flen, 0) < 0)
				send_err++;
			else
				sent++;
			next = next + 1 == n ? 0 : next + 1;
			seq++;
		}
		/* Sleep until the next packet is due, at most 1 ms. */
		due = (uint64_t)((double)(seq + 1) * 1e9 / o->rate) + t0;
		due = due > now ? due - now : 0;
		if (due > 1000000u)
			due = 1000000u;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)due;
		if (ppoll(pf, stdin_open ? n + 1 : n, &ts, NULL) < 0 && errno != EINTR)
			die("ppoll: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			if (!pf[i].revents)
				continue;
			for (k = 0; k < 64; k++) {
				r = recv(pf[i].fd, buf, sizeof(buf), 0);
				if (r < 0)
					break;
				if (relay_payload(buf, (size_t)r, &data, &dlen) &&
				    pkt_read(data, dlen, &stream, &pseq) && stream == STREAM_LOAD)
					received++;
				else
					foreign++;
			}
		}
		if (stdin_open && pf[n].revents) {
			for (;;) {
				char ch;

				r = read(STDIN_FILENO, &ch, 1);
				if (r == 0) {
					stdin_open = false;
					stop = true;
					break;
				}
				if (r < 0)
					break;
				if (ch != '\n') {
					if (linelen + 1 < sizeof(line))
						line[linelen++] = ch;
					continue;
				}
				line[linelen] = '\0';
				linelen = 0;
				if (strcmp(line, "mark") == 0) {
					cm.t = now_ns();
					cm.sent = sent;
					cm.received = received;
					marked = true;
				} else if (strcmp(line, "stop") == 0) {
					stop = true;
				}
			}
		}
	}
	ce.t = now_ns();
	ce.sent = sent;
	ce.received = received;
	/* Let the last packets arrive. */
	for (now = now_ns(), stop_at = now + 200000000u; now < stop_at; now = now_ns()) {
		ts.tv_sec = 0;
		ts.tv_nsec = 10000000;
		if (ppoll(pf, n, &ts, NULL) <= 0)
			continue;
		for (i = 0; i < n; i++)
			while (pf[i].revents && recv(pf[i].fd, buf, sizeof(buf), 0) > 0)
				received++;
	}
	if (!marked)
		cm = c0;
	clients_release(p, cl, n, &rel);
	{
		double all_s = (double)(ce.t - c0.t) / 1e9, win_s = (double)(ce.t - cm.t) / 1e9;

		printf("probe: load: sent %lu, received %lu (%.1f%% lost) in %.2f s: %.0f/s sent, "
		    "%.0f/s received; in the window (%.2f s): %.0f/s sent, %.0f/s received; "
		    "%" PRIu64 " skipped, %" PRIu64 " send errors\n", sent, received,
		    sent ? 100.0 * (double)(sent > received ? sent - received : 0) / (double)sent : 0.0,
		    all_s, (double)sent / all_s, (double)received / all_s, win_s,
		    win_s > 0 ? (double)(ce.sent - cm.sent) / win_s : 0.0,
		    win_s > 0 ? (double)(ce.received - cm.received) / win_s : 0.0, skipped, send_err);
		printf("RESULT {\"mode\":\"load\",\"allocations\":%zu,\"rate\":%u,\"size\":%u,"
		    "\"sent\":%lu,\"received\":%lu,\"seconds\":%.3f,\"window\":{\"seconds\":%.3f,"
		    "\"sent\":%lu,\"received\":%lu,\"rate_sent\":%.1f,\"rate_received\":%.1f},"
		    "\"skipped\":%" PRIu64 ",\"send_errors\":%" PRIu64 ",\"foreign\":%lu,"
		    "\"released\":%lu}\n", n, o->rate, o->size, sent, received, all_s, win_s,
		    ce.sent - cm.sent, ce.received - cm.received,
		    win_s > 0 ? (double)(ce.sent - cm.sent) / win_s : 0.0,
		    win_s > 0 ? (double)(ce.received - cm.received) / win_s : 0.0, skipped,
		    send_err, foreign, rel.ok);
	}
	free(pf);
	clients_free(cl, n);
	if (received == 0) {
		printf("probe: FAIL: the load relayed nothing\n");
		return 1;
	}
	return 0;
}

/* --- allocs ----------------------------------------------------------- */

static int cmd_allocs(const struct opts *o)
{
	struct probe pr, *p = &pr;
	struct tc *cl;
	struct op_stats st, rel;
	size_t *idx, n = o->count, i;
	unsigned long held = 0;
	struct pollfd pf;
	uint64_t t_end;
	char buf[64];
	int rc = 0;

	probe_init(p, o);
	fd_limit((unsigned long)n + 64);
	cl = clients_new(p, n, false);
	idx = index_all(n);
	run_op(p, cl, idx, n, OP_ALLOCATE, o->window,
	    now_ms() + (uint64_t)(o->timeout_s * 1000), o->max_refusals, &st);
	print_stats("allocs", OP_ALLOCATE, n, &st);
	for (i = 0; i < n; i++)
		held += cl[i].allocated;
	printf("%s {\"attempted\":%lu,\"allocated\":%lu,\"failed\":%lu,\"refused\":%lu,"
	    "\"seconds\":%.3f,\"rate\":%.1f,\"retransmits\":%lu,\"errors\":",
	    o->hold ? "HOLDING" : "ALLOCATED", st.ok + st.failed, held, st.failed, st.refused,
	    st.seconds, st.seconds > 0 ? (double)st.ok / st.seconds : 0.0, st.retransmits);
	json_codes(&st);
	printf("}\n");
	fflush(stdout);
	if (o->hold) {
		/* Until a line or end of input on stdin, or --max-hold-s. */
		pf.fd = STDIN_FILENO;
		pf.events = POLLIN;
		t_end = now_ms() + (uint64_t)(o->max_hold_s * 1000);
		while (now_ms() < t_end) {
			if (poll(&pf, 1, 200) > 0) {
				(void)read(STDIN_FILENO, buf, sizeof(buf));
				break;
			}
		}
	}
	clients_release(p, cl, n, &rel);
	print_stats("allocs", OP_DELETE, held, &rel);
	printf("RESULT {\"mode\":\"allocs\",\"attempted\":%lu,\"allocated\":%lu,\"failed\":%lu,"
	    "\"refused\":%lu,\"seconds\":%.3f,\"errors\":", st.ok + st.failed, held, st.failed,
	    st.refused, st.seconds);
	json_codes(&st);
	printf(",\"deleted\":%lu,\"delete_failed\":%lu,\"delete_errors\":", rel.ok, rel.failed);
	json_codes(&rel);
	printf(",\"unsigned_answers\":%lu}\n", p->unsigned_ok);
	/* With --max-refusals, refusals are the point; other failures are not. */
	if (held == 0 || (o->max_refusals == 0 && st.failed) ||
	    (o->max_refusals && st.failed != st.refused) || rel.failed) {
		printf("probe: FAIL: %lu of %lu allocations failed (%lu refused), %lu deletions "
		    "failed\n", st.failed, st.ok + st.failed, st.refused, rel.failed);
		rc = 1;
	}
	free(idx);
	clients_free(cl, n);
	return rc;
}

/* --- main ------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr,
	    "usage: bench_turn_probe latency|load|allocs --server 127.0.0.1:PORT [options]\n"
	    "common (defaults in brackets):\n"
	    "  --user U / --pass P     static long-term credentials [bench / secret]\n"
	    "  --no-fingerprint        leave FINGERPRINT off the requests\n"
	    "  --timeout S             deadline of the set-up requests [60]\n"
	    "latency:\n"
	    "  --rate N --size B --seconds S   stream [1000/s, 200 bytes, 10 s]\n"
	    "  --warmup S              packets sent before measuring [0.5]\n"
	    "  --drain S               wait for late packets [1]\n"
	    "load:\n"
	    "  --rate N --size B       packets a second in all, bytes each [19000, 200]\n"
	    "  --pairs N               allocation pairs [32]\n"
	    "  --max-seconds S         bound on the run without \"stop\" [600]\n"
	    "allocs:\n"
	    "  --count N               allocations (one socket each) [1000]\n"
	    "  --window N              Allocates in flight [64]\n"
	    "  --max-refusals N        stop after N refusals (508/486) [0: never]\n"
	    "  --hold                  keep them until a line on stdin, then delete\n"
	    "  --max-hold S            bound on --hold [600]\n");
	exit(2);
}

static double numd(const char *s, double lo, double hi)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || *s == '\0' || *end != '\0' || !(v >= lo && v <= hi))
		usage();
	return v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "server", 1, NULL, 'S' }, { "user", 1, NULL, 'u' },
		{ "pass", 1, NULL, 'p' }, { "no-fingerprint", 0, NULL, 'F' },
		{ "timeout", 1, NULL, 'T' }, { "rate", 1, NULL, 'r' },
		{ "size", 1, NULL, 'l' }, { "seconds", 1, NULL, 's' },
		{ "warmup", 1, NULL, 'w' }, { "drain", 1, NULL, 'd' },
		{ "pairs", 1, NULL, 'P' }, { "max-seconds", 1, NULL, 'M' },
		{ "count", 1, NULL, 'n' }, { "window", 1, NULL, 'W' },
		{ "max-refusals", 1, NULL, 'R' }, { "hold", 0, NULL, 'H' },
		{ "max-hold", 1, NULL, 'h' }, { NULL, 0, NULL, 0 }
	};
	struct opts o;
	const char *cmd;
	int ch;

	if (argc < 2)
		usage();
	cmd = argv[1];
	memset(&o, 0, sizeof(o));
	o.user = "bench";
	o.pass = "secret";
	o.fingerprint = true;
	o.timeout_s = 60;
	o.rate = strcmp(cmd, "load") == 0 ? 19000 : 1000;
	o.size = 200;
	o.seconds = 10;
	o.warmup_s = 0.5;
	o.drain_s = 1;
	o.pairs = 32;
	o.max_seconds = 600;
	o.count = 1000;
	o.window = 64;
	o.max_hold_s = 600;
	optind = 2;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S': o.server = optarg; break;
		case 'u': o.user = optarg; break;
		case 'p': o.pass = optarg; break;
		case 'F': o.fingerprint = false; break;
		case 'T': o.timeout_s = numd(optarg, 1, 3600); break;
		case 'r': o.rate = (unsigned)numd(optarg, 1, 1000000); break;
		case 'l': o.size = (unsigned)numd(optarg, 1, 4000); break;
		case 's': o.seconds = numd(optarg, 0.01, 3600); break;
		case 'w': o.warmup_s = numd(optarg, 0, 60); break;
		case 'd': o.drain_s = numd(optarg, 0, 60); break;
		case 'P': o.pairs = (unsigned)numd(optarg, 1, 5000); break;
		case 'M': o.max_seconds = numd(optarg, 1, 7200); break;
		case 'n': o.count = (unsigned)numd(optarg, 1, 1000000); break;
		case 'W': o.window = (unsigned)numd(optarg, 1, 100000); break;
		case 'R': o.max_refusals = (unsigned)numd(optarg, 0, 1000000); break;
		case 'H': o.hold = true; break;
		case 'h': o.max_hold_s = numd(optarg, 0, 7200); break;
		default: usage();
		}
	}
	if (optind != argc || strlen(o.user) == 0 || strlen(o.user) > 255 ||
	    strlen(o.pass) > 255)
		usage();
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(cmd, "latency") == 0)
		return cmd_latency(&o);
	if (strcmp(cmd, "load") == 0)
		return cmd_load(&o);
	if (strcmp(cmd, "allocs") == 0)
		return cmd_allocs(&o);
	usage();
	return 2;
}
