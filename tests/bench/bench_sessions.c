/* Session benchmark for the signaling listener: many concurrent,
 * authenticated WebSocket sessions against a running gatehouse daemon.
 *
 *   bench_sessions keygen --key FILE --jwks FILE [--kid KID]
 *       Makes an EC P-256 key (PEM, mode 0600) and the JWKS that the
 *       daemon's JWT backend loads.
 *   bench_sessions run --port PORT --key FILE --pid PID [options]
 *       Connects N sessions, logs each in with its own ES256 token, runs
 *       call set-ups between pairs of them, closes them, and prints the
 *       figures (see tests/bench/README.md).
 *
 * One thread, one epoll set, plain non-blocking sockets and a minimal
 * RFC 6455 client: the HTTP upgrade with Sec-WebSocket-Accept checked,
 * masked text frames out, unmasked frames in (fragments reassembled,
 * pings answered). The daemon allows WS_CONNS_PER_SOURCE connections per
 * source address, so each group of --per-ip sessions binds its own
 * source address in 127.<net>.0.0/16 before connecting. Traffic goes only
 * to 127.0.0.0/8 (TESTING.md, "Network rule"): the server address must be
 * a loopback one.
 *
 * Every wait is bounded: each phase has a deadline, and the call phase
 * also a count. The exit status is 0 when every session connected, logged
 * in, and every call set-up finished as the protocol says; 1 on any
 * functional failure; 2 on bad usage or a broken fixture. Slow figures
 * are reported, never judged. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, strcasecmp, IP_BIND_ADDRESS_NO_PORT */
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "tests/unit/jwt_sign.h"

#define MAX_FRAME (1024 * 1024)      /* larger server frames are a failure */
#define MAX_HTTP_HEADER 8192
#define CALL_ID_MAX 32
#define KEEPALIVE_NS (40ULL * 1000000000ULL) /* the daemon drops sessions idle 120 s */
#define NS_PER_S 1000000000ULL
#define NS_PER_MS 1000000ULL
#define MAX_REASONS 24
#define MAX_SAMPLES_KEPT 5

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* --- options -------------------------------------------------------- */

struct opts {
	const char *host;
	unsigned port;
	unsigned sessions;
	unsigned per_ip;
	unsigned src_net;          /* source addresses 127.<src_net>.x.y */
	const char *key_file;
	const char *kid;
	const char *issuer;
	const char *audience;
	const char *user_prefix;
	const char *group;
	long pid;                  /* the daemon, for memory and CPU; 0: none */
	unsigned connect_window;
	unsigned login_window;
	unsigned call_window;
	double call_seconds;
	unsigned long max_calls;
	unsigned pair_interval_ms;
	double phase_timeout_s;
	unsigned settle_ms;
};

/* --- state ---------------------------------------------------------- */

enum conn_state {
	C_IDLE = 0,      /* not started */
	C_CONNECTING,    /* TCP connect in progress */
	C_UPGRADING,     /* upgrade request sent, waiting for 101 */
	C_OPEN,          /* WebSocket open, not logged in */
	C_LOGIN,         /* login sent */
	C_READY,         /* logged in */
	C_CLOSING,       /* we are closing it */
	C_DEAD,          /* failed or closed by the server */
};

struct conn {
	int fd;
	uint8_t state;
	bool epollout;
	char accept[32];           /* the Sec-WebSocket-Accept we expect */
	uint8_t *in;
	size_t inlen, incap;
	uint8_t *frag;             /* a fragmented message being reassembled */
	size_t fraglen;
	bool in_frag;
	uint8_t *out;
	size_t outlen, outoff, outcap;
	uint64_t t_ns;             /* start of the pending connect or login */
	uint64_t last_tx_ns;
	uint32_t next_id;
};

enum pair_bits {
	P_CALL_OK = 1, P_INCOMING = 2, P_ACCEPT_OK = 4, P_ACCEPTED = 8,
	P_HANGUP_SENT = 16, P_HANGUP_OK = 32, P_HANGUP_RCVD = 64,
};

/* Sessions 2p and 2p+1 form pair p; the caller alternates, so each
 * session sends 1.5 messages a cycle on average (the daemon allows
 * HUB_MSGS_PER_S = 20 a second per session). */
struct pair {
	bool busy, dead;
	uint8_t caller;            /* 0: session 2p calls 2p+1; 1: the reverse */
	uint8_t got;
	char call[CALL_ID_MAX];
	uint64_t t0_ns;
	uint64_t ready_ns;         /* earliest start of the next cycle */
};

struct samples {
	uint32_t *us;
	size_t n, cap;
};

struct reasons {
	char text[MAX_REASONS][96];
	unsigned long count[MAX_REASONS];
	size_t n;
	unsigned long other;
};

struct procstat {
	bool ok;
	long rss_kb, hwm_kb, anon_kb, pss_kb;
	long fds, threads;
	double cpu_main_s, cpu_other_s;
	double self_cpu_s;         /* this client */
	double busy_s, total_s;    /* the whole machine, from /proc/stat */
};

struct bench {
	struct opts o;
	int ep;
	struct conn *c;
	char **tokens;
	struct pair *pairs;
	unsigned npairs;
	uint32_t *fifo;            /* idle pairs, oldest first */
	unsigned fifo_head, fifo_len;
	struct sockaddr_in server;
	uint64_t rng;
	/* progress */
	unsigned next_start, connecting, opened;
	unsigned next_login, logging, logged_in;
	unsigned failed;           /* sessions lost, for any reason */
	unsigned calls_inflight;
	unsigned long calls_started, setups_done, cycles_done, pacing_waits;
	unsigned long errors;      /* protocol answers that should not happen */
	bool calls_stop;
	struct samples lat_connect, lat_login, lat_setup, lat_cycle;
	struct reasons fail_reasons, error_msgs;
	uint64_t last_sweep_ns;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) __attribute__((noreturn));

static void die(const char *what)
{
	fprintf(stderr, "bench_sessions: %s\n", what);
	exit(2);
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (q == NULL)
		die("out of memory");
	return q;
}

/* xorshift64*: WebSocket masking keys. RFC 6455 §5.3 wants them
 * unpredictable to defeat proxy cache poisoning by hostile pages; this
 * client runs no one else's code, so speed matters more here. */
static uint32_t rng32(struct bench *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return (uint32_t)((b->rng * 0x2545F4914F6CDD1DULL) >> 32);
}

static void sample_add(struct samples *s, uint64_t ns)
{
	uint64_t us = ns / 1000;

	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->us = xrealloc(s->us, s->cap * sizeof(*s->us));
	}
	s->us[s->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in milliseconds; the samples get sorted. */
static double pct_ms(struct samples *s, double p)
{
	size_t rank;

	if (s->n == 0)
		return 0.0;
	qsort(s->us, s->n, sizeof(*s->us), cmp_u32);
	rank = (size_t)(p / 100.0 * (double)s->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > s->n)
		rank = s->n;
	return s->us[rank - 1] / 1000.0;
}

static void reason_add(struct reasons *r, const char *text)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		if (strcmp(r->text[i], text) == 0) {
			r->count[i]++;
			return;
		}
	}
	if (r->n == MAX_REASONS) {
		r->other++;
		return;
	}
	snprintf(r->text[r->n], sizeof(r->text[0]), "%s", text);
	r->count[r->n++] = 1;
}

/* --- the daemon's memory and CPU ------------------------------------- */

static long field_kb(const char *text, const char *name)
{
	const char *p = strstr(text, name);

	return p != NULL ? strtol(p + strlen(name), NULL, 10) : -1;
}

static size_t slurp(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return n;
}

/* utime + stime of one task, in seconds. */
static double task_cpu_s(long pid, const char *tid)
{
	char path[96], buf[1024], *p;
	unsigned long ut = 0, st = 0;
	int i;

	snprintf(path, sizeof(path), "/proc/%ld/task/%s/stat", pid, tid);
	if (slurp(path, buf, sizeof(buf)) == 0 || (p = strrchr(buf, ')')) == NULL)
		return 0.0;
	/* After "pid (comm)": field 3 is the state; utime and stime are
	 * fields 14 and 15 (proc(5)). */
	p += 2;
	for (i = 3; i < 14 && p != NULL; i++) {
		p = strchr(p, ' ');
		if (p != NULL)
			p++;
	}
	if (p == NULL || sscanf(p, "%lu %lu", &ut, &st) != 2)
		return 0.0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long count_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* The machine's CPU time, busy and all, so that a run can tell how much
 * of the two cores other processes took (the figures are only as good as
 * the quiet of the machine). */
static void machine_sample(struct procstat *s)
{
	unsigned long long v[8] = { 0 };
	struct rusage ru;
	char buf[512];
	double tck = (double)sysconf(_SC_CLK_TCK);
	int i;

	if (slurp("/proc/stat", buf, sizeof(buf)) > 0 &&
	    sscanf(buf, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
	    &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		for (i = 0; i < 8; i++)
			s->total_s += (double)v[i] / tck;
		s->busy_s = s->total_s - (double)(v[3] + v[4]) / tck;
	}
	if (getrusage(RUSAGE_SELF, &ru) == 0)
		s->self_cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
		    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static struct procstat proc_sample(long pid)
{
	struct procstat s;
	char path[64], buf[8192], me[32];
	DIR *d;
	struct dirent *e;

	memset(&s, 0, sizeof(s));
	machine_sample(&s);
	if (pid <= 0)
		return s;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	if (slurp(path, buf, sizeof(buf)) == 0)
		return s;
	s.rss_kb = field_kb(buf, "VmRSS:");
	s.hwm_kb = field_kb(buf, "VmHWM:");
	s.anon_kb = field_kb(buf, "RssAnon:");
	s.threads = field_kb(buf, "Threads:");
	snprintf(path, sizeof(path), "/proc/%ld/smaps_rollup", pid);
	s.pss_kb = slurp(path, buf, sizeof(buf)) ? field_kb(buf, "\nPss:") : -1;
	snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
	s.fds = count_dir(path);
	snprintf(me, sizeof(me), "%ld", pid);
	snprintf(path, sizeof(path), "/proc/%ld/task", pid);
	if ((d = opendir(path)) != NULL) {
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			if (strcmp(e->d_name, me) == 0)
				s.cpu_main_s += task_cpu_s(pid, e->d_name);
			else
				s.cpu_other_s += task_cpu_s(pid, e->d_name);
		}
		closedir(d);
	}
	s.ok = s.rss_kb >= 0;
	return s;
}

static bool daemon_alive(long pid)
{
	char path[64], buf[2048], *p;

	if (pid <= 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if (slurp(path, buf, sizeof(buf)) == 0 || (p = strrchr(buf, ')')) == NULL)
		return false;
	return p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* --- tokens ---------------------------------------------------------- */

static EVP_PKEY *key_load(const char *file)
{
	FILE *f = fopen(file, "r");
	EVP_PKEY *k;

	if (f == NULL)
		return NULL;
	k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	return k;
}

static void user_name(const struct bench *b, unsigned i, char *out, size_t cap)
{
	snprintf(out, cap, "%s%06u", b->o.user_prefix, i);
}

/* One ES256 token per session, signed before the clock starts so that
 * the login figure is the daemon's alone. */
static void tokens_make(struct bench *b)
{
	EVP_PKEY *key = key_load(b->o.key_file);
	char *hdr, *claims, name[64];
	time_t now = time(NULL);
	unsigned i;

	if (key == NULL)
		die("cannot read the private key (--key)");
	b->tokens = calloc(b->o.sessions, sizeof(*b->tokens));
	if (b->tokens == NULL)
		die("out of memory");
	hdr = jws_printf("{\"alg\":\"ES256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", b->o.kid);
	for (i = 0; i < b->o.sessions; i++) {
		user_name(b, i, name, sizeof(name));
		claims = jws_printf("{\"iss\":\"%s\",\"aud\":\"%s\",\"sub\":\"%s\","
		    "\"groups\":[\"%s\"],\"amr\":[\"pwd\",\"mfa\"],\"iat\":%lld,"
		    "\"nbf\":%lld,\"exp\":%lld}", b->o.issuer, b->o.audience, name,
		    b->o.group, (long long)now, (long long)now - 5, (long long)now + 4 * 3600);
		b->tokens[i] = jws_sign(key, "ES256", hdr, claims);
		free(claims);
	}
	free(hdr);
	EVP_PKEY_free(key);
}

static int cmd_keygen(int argc, char **argv)
{
	const char *key_file = NULL, *jwks_file = NULL, *kid = "bench";
	EVP_PKEY *key;
	char *jwk;
	FILE *f;
	int fd, i;

	for (i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--key") == 0)
			key_file = argv[i + 1];
		else if (strcmp(argv[i], "--jwks") == 0)
			jwks_file = argv[i + 1];
		else if (strcmp(argv[i], "--kid") == 0)
			kid = argv[i + 1];
		else
			die("keygen: unknown option");
	}
	if (i != argc || key_file == NULL || jwks_file == NULL)
		die("usage: bench_sessions keygen --key FILE --jwks FILE [--kid KID]");
	key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (key == NULL)
		die("EC P-256 key generation failed");
	/* A private key: created 0600 (CONVENTIONS.md, secrets). */
	fd = open(key_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (f = fdopen(fd, "w")) == NULL)
		die("cannot create the key file");
	if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0)
		die("cannot write the key file");
	jwk = jws_jwk(key, kid, "\"use\":\"sig\",\"alg\":\"ES256\"", 0);
	f = fopen(jwks_file, "w");
	if (f == NULL || fprintf(f, "{\"keys\":[%s]}\n", jwk) < 0 || fclose(f) != 0)
		die("cannot write the JWKS file");
	free(jwk);
	EVP_PKEY_free(key);
	return 0;
}

/* --- sockets and frames ---------------------------------------------- */

static void conn_fail(struct bench *b, struct conn *c, const char *why);

static void epoll_set(struct bench *b, struct conn *c, bool out)
{
	struct epoll_event ev;

	if (c->epollout == out)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | (out ? EPOLLOUT : 0);
	ev.data.u32 = (uint32_t)(c - b->c);
	if (epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->epollout = out;
}

/* Sends what is queued; 0, or -1 after failing the connection. */
static int conn_flush(struct bench *b, struct conn *c)
{
	ssize_t n;

	while (c->outoff < c->outlen) {
		n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
		if (n > 0) {
			c->outoff += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			epoll_set(b, c, true);
			return 0;
		}
		conn_fail(b, c, n < 0 && errno == EPIPE ? "send: EPIPE" :
		    n < 0 && errno == ECONNRESET ? "send: ECONNRESET" : "send failed");
		return -1;
	}
	c->outoff = c->outlen = 0;
	if (c->state != C_CONNECTING)
		epoll_set(b, c, false);
	return 0;
}

static void out_reserve(struct conn *c, size_t n)
{
	if (c->outoff > 0 && c->outoff == c->outlen)
		c->outoff = c->outlen = 0;
	if (c->outlen + n > c->outcap) {
		c->outcap = (c->outlen + n) * 2;
		c->out = xrealloc(c->out, c->outcap);
	}
}

/* RFC 6455 §5.2: a client frame is always masked. */
static int ws_send_frame(struct bench *b, struct conn *c, unsigned opcode,
    const void *data, size_t len)
{
	const uint8_t *src = data;
	uint8_t *p, mask[4];
	uint32_t m = rng32(b);
	size_t i;

	out_reserve(c, len + 14);
	p = c->out + c->outlen;
	*p++ = (uint8_t)(0x80 | opcode);
	if (len < 126) {
		*p++ = (uint8_t)(0x80 | len);
	} else if (len <= 0xffff) {
		*p++ = 0x80 | 126;
		*p++ = (uint8_t)(len >> 8);
		*p++ = (uint8_t)len;
	} else {
		*p++ = 0x80 | 127;
		for (i = 0; i < 8; i++)
			*p++ = (uint8_t)((uint64_t)len >> (56 - 8 * i));
	}
	memcpy(mask, &m, 4);
	memcpy(p, mask, 4);
	p += 4;
	for (i = 0; i < len; i++)
		p[i] = src[i] ^ mask[i & 3];
	c->outlen = (size_t)(p + len - c->out);
	c->last_tx_ns = now_ns();
	return conn_flush(b, c);
}

static int ws_send_text(struct bench *b, struct conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ws_send_text(struct bench *b, struct conn *c, const char *fmt, ...)
{
	char buf[12288];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		die("message too long");
	return ws_send_frame(b, c, 0x1, buf, (size_t)n);
}

static void conn_release(struct bench *b, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
	}
	free(c->in);
	free(c->frag);
	free(c->out);
	c->in = c->frag = c->out = NULL;
	c->inlen = c->incap = c->fraglen = c->outlen = c->outoff = c->outcap = 0;
}

static void pair_fail(struct bench *b, unsigned p, const char *why);

static void conn_fail(struct bench *b, struct conn *c, const char *why)
{
	unsigned idx = (unsigned)(c - b->c);
	char text[96];
	static const char *const names[] = { "idle", "connecting", "upgrading",
	    "open", "login", "ready", "closing", "dead" };

	if (c->state == C_DEAD)
		return;
	if (c->state == C_CLOSING) {
		conn_release(b, c);
		c->state = C_DEAD;
		return;
	}
	snprintf(text, sizeof(text), "%s (while %s)", why, names[c->state]);
	reason_add(&b->fail_reasons, text);
	if (c->state == C_CONNECTING || c->state == C_UPGRADING)
		b->connecting--;
	if (c->state == C_LOGIN)
		b->logging--;
	if (c->state >= C_OPEN && c->state <= C_READY)
		b->opened--;
	if (c->state == C_READY)
		b->logged_in--;
	b->failed++;
	c->state = C_DEAD;
	conn_release(b, c);
	if (b->pairs != NULL && b->pairs[idx / 2].busy)
		pair_fail(b, idx / 2, "session lost");
}

/* --- connecting and the upgrade --------------------------------------- */

static void source_addr(const struct bench *b, unsigned i, struct sockaddr_in *sa)
{
	unsigned ip = i / b->o.per_ip;

	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	/* 127.<net>.<ip/254>.<ip%254+1>: never .0 or .255. */
	sa->sin_addr.s_addr = htonl((127u << 24) | (b->o.src_net << 16) |
	    ((ip / 254) << 8) | (ip % 254 + 1));
}

static void conn_start(struct bench *b, unsigned i)
{
	struct conn *c = &b->c[i];
	struct sockaddr_in src;
	struct epoll_event ev;
	char key_raw[16], key[32];
	uint8_t digest[SHA_DIGEST_LENGTH];
	char cat[sizeof(ws_guid) + 32];
	int one = 1, fd;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->state = C_CONNECTING;
	c->t_ns = c->last_tx_ns = now_ns();
	b->connecting++;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		conn_fail(b, c, errno == EMFILE ? "socket: EMFILE (client fd limit)" :
		    "socket failed");
		return;
	}
	c->fd = fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* The port is picked at connect() time, per source address. */
	setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
	source_addr(b, i, &src);
	if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0) {
		conn_fail(b, c, "bind to the source address failed");
		return;
	}
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLOUT;
	ev.data.u32 = i;
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		conn_fail(b, c, "epoll_ctl failed");
		return;
	}
	c->epollout = true;
	if (connect(fd, (struct sockaddr *)&b->server, sizeof(b->server)) != 0 &&
	    errno != EINPROGRESS) {
		conn_fail(b, c, errno == EADDRNOTAVAIL ? "connect: EADDRNOTAVAIL" :
		    errno == ECONNREFUSED ? "connect: ECONNREFUSED" : "connect failed");
		return;
	}
	/* RFC 6455 §4.1: a random 16-byte nonce, base64; the answer must be
	 * base64(SHA-1(key + GUID)). */
	if (RAND_bytes((unsigned char *)key_raw, sizeof(key_raw)) != 1)
		die("RAND_bytes failed");
	EVP_EncodeBlock((unsigned char *)key, (const unsigned char *)key_raw, sizeof(key_raw));
	snprintf(cat, sizeof(cat), "%s%s", key, ws_guid);
	SHA1((const unsigned char *)cat, strlen(cat), digest);
	EVP_EncodeBlock((unsigned char *)c->accept, digest, sizeof(digest));
	out_reserve(c, 512);
	c->outlen = (size_t)snprintf((char *)c->out, c->outcap,
	    "GET /ws HTTP/1.1\r\nHost: %s:%u\r\nUpgrade: websocket\r\n"
	    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
	    "Sec-WebSocket-Version: 13\r\nUser-Agent: gatehouse-bench\r\n\r\n",
	    b->o.host, b->o.port, key);
}

static const char *header_value(const char *head, const char *name, size_t *len)
{
	const char *p = head;
	size_t n = strlen(name);

	while ((p = strstr(p, "\r\n")) != NULL) {
		p += 2;
		if (strncasecmp(p, name, n) == 0 && p[n] == ':') {
			const char *v = p + n + 1, *e;
			while (*v == ' ' || *v == '\t')
				v++;
			e = strstr(v, "\r\n");
			if (e == NULL)
				return NULL;
			while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
				e--;
			*len = (size_t)(e - v);
			return v;
		}
	}
	return NULL;
}

/* 1: done; 0: need more bytes; -1: the connection was failed. */
static int upgrade_check(struct bench *b, struct conn *c)
{
	char head[MAX_HTTP_HEADER + 1];
	uint8_t *end;
	const char *v;
	size_t hlen, vlen;

	end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
	if (end == NULL) {
		if (c->inlen > MAX_HTTP_HEADER)
			conn_fail(b, c, "upgrade: response header too long");
		return c->inlen > MAX_HTTP_HEADER ? -1 : 0;
	}
	hlen = (size_t)(end - c->in) + 4;
	if (hlen > MAX_HTTP_HEADER) {
		conn_fail(b, c, "upgrade: response header too long");
		return -1;
	}
	memcpy(head, c->in, hlen);
	head[hlen] = '\0';
	if (strncmp(head, "HTTP/1.1 101", 12) != 0) {
		char why[64];
		snprintf(why, sizeof(why), "upgrade: answered \"%.*s\"",
		    (int)strcspn(head, "\r\n") > 40 ? 40 : (int)strcspn(head, "\r\n"), head);
		conn_fail(b, c, why);
		return -1;
	}
	v = header_value(head, "Sec-WebSocket-Accept", &vlen);
	if (v == NULL || vlen != strlen(c->accept) || memcmp(v, c->accept, vlen) != 0) {
		conn_fail(b, c, "upgrade: wrong Sec-WebSocket-Accept");
		return -1;
	}
	if (header_value(head, "Sec-WebSocket-Extensions", &vlen) != NULL) {
		conn_fail(b, c, "upgrade: extension negotiated without an offer");
		return -1;
	}
	memmove(c->in, c->in + hlen, c->inlen - hlen);
	c->inlen -= hlen;
	c->state = C_OPEN;
	b->connecting--;
	b->opened++;
	sample_add(&b->lat_connect, now_ns() - c->t_ns);
	return 1;
}

/* --- the protocol ---------------------------------------------------- */

static void error_note(struct bench *b, const char *where, const char *text, size_t len)
{
	char buf[96];

	b->errors++;
	snprintf(buf, sizeof(buf), "%s: %.*s", where, (int)(len > 72 ? 72 : len), text);
	reason_add(&b->error_msgs, buf);
}

static void pair_fail(struct bench *b, unsigned p, const char *why)
{
	struct pair *pr = &b->pairs[p];

	if (pr->dead)
		return;
	if (pr->busy)
		b->calls_inflight--;
	pr->busy = false;
	pr->dead = true;
	reason_add(&b->fail_reasons, why);
}

static void fifo_push(struct bench *b, uint32_t p)
{
	b->fifo[(b->fifo_head + b->fifo_len) % b->npairs] = p;
	b->fifo_len++;
}

static void pair_done(struct bench *b, unsigned p)
{
	struct pair *pr = &b->pairs[p];
	uint64_t t = now_ns();

	sample_add(&b->lat_cycle, t - pr->t0_ns);
	b->cycles_done++;
	b->calls_inflight--;
	pr->busy = false;
	pr->caller ^= 1;
	pr->ready_ns = pr->t0_ns + (uint64_t)b->o.pair_interval_ms * NS_PER_MS;
	fifo_push(b, p);
}

static bool set_call_id(struct pair *pr, const char *id)
{
	if (id == NULL || strlen(id) >= sizeof(pr->call))
		return false;
	if (pr->call[0] == '\0') {
		snprintf(pr->call, sizeof(pr->call), "%s", id);
		return true;
	}
	return strcmp(pr->call, id) == 0;
}

/* One message for a session in a call cycle. */
static void call_message(struct bench *b, struct conn *c, unsigned idx,
    const char *type, json_t *msg, const char *text, size_t len)
{
	unsigned p = idx / 2;
	struct pair *pr = &b->pairs[p];
	bool is_caller = (idx & 1) == pr->caller;
	struct conn *caller = &b->c[2 * p + pr->caller];
	const char *call = json_string_value(json_object_get(msg, "call"));
	const char *reason;

	if (!pr->busy) {
		error_note(b, "message outside a call", text, len);
		return;
	}
	if (is_caller && strcmp(type, "call.ok") == 0 && !(pr->got & P_CALL_OK)) {
		if (!set_call_id(pr, call))
			goto bad;
		pr->got |= P_CALL_OK;
	} else if (!is_caller && strcmp(type, "incoming") == 0 && !(pr->got & P_INCOMING)) {
		if (!set_call_id(pr, call))
			goto bad;
		pr->got |= P_INCOMING;
		if (ws_send_text(b, c, "{\"type\":\"accept\",\"id\":%u,\"call\":\"%s\"}",
		    ++c->next_id, pr->call) != 0)
			return;
	} else if (!is_caller && strcmp(type, "accept.ok") == 0 && !(pr->got & P_ACCEPT_OK)) {
		if (!set_call_id(pr, call))
			goto bad;
		pr->got |= P_ACCEPT_OK;
	} else if (is_caller && strcmp(type, "accepted") == 0 && !(pr->got & P_ACCEPTED)) {
		if (!set_call_id(pr, call))
			goto bad;
		pr->got |= P_ACCEPTED;
		sample_add(&b->lat_setup, now_ns() - pr->t0_ns);
		b->setups_done++;
	} else if (is_caller && strcmp(type, "hangup.ok") == 0 &&
	    (pr->got & P_HANGUP_SENT) && !(pr->got & P_HANGUP_OK)) {
		pr->got |= P_HANGUP_OK;
	} else if (!is_caller && strcmp(type, "hangup") == 0 && !(pr->got & P_HANGUP_RCVD)) {
		reason = json_string_value(json_object_get(msg, "reason"));
		if (!set_call_id(pr, call) || reason == NULL || strcmp(reason, "hangup") != 0)
			goto bad;
		pr->got |= P_HANGUP_RCVD;
	} else {
		goto bad;
	}
	/* The caller hangs up once its call is answered. */
	if ((pr->got & (P_CALL_OK | P_ACCEPTED | P_HANGUP_SENT)) == (P_CALL_OK | P_ACCEPTED)) {
		pr->got |= P_HANGUP_SENT;
		if (ws_send_text(b, caller, "{\"type\":\"hangup\",\"id\":%u,\"call\":\"%s\"}",
		    ++caller->next_id, pr->call) != 0)
			return;
	}
	if ((pr->got & (P_ACCEPT_OK | P_HANGUP_OK | P_HANGUP_RCVD)) ==
	    (P_ACCEPT_OK | P_HANGUP_OK | P_HANGUP_RCVD))
		pair_done(b, p);
	return;
bad:
	error_note(b, is_caller ? "caller got" : "callee got", text, len);
	pair_fail(b, p, "call cycle broken by an unexpected message");
}

static void on_message(struct bench *b, struct conn *c, const char *text, size_t len)
{
	unsigned idx = (unsigned)(c - b->c);
	json_error_t jerr;
	json_t *msg = json_loadb(text, len, 0, &jerr);
	const char *type = json_string_value(json_object_get(msg, "type"));

	if (msg == NULL || type == NULL) {
		error_note(b, "not a JSON message with a type", text, len);
		goto out;
	}
	if (strcmp(type, "pong") == 0)
		goto out;
	if (strcmp(type, "error") == 0) {
		error_note(b, c->state == C_LOGIN ? "login" : "error", text, len);
		if (c->state == C_LOGIN)
			conn_fail(b, c, "login refused");
		else if (b->pairs != NULL && b->pairs[idx / 2].busy)
			pair_fail(b, idx / 2, "error during a call cycle");
		goto out;
	}
	if (c->state == C_LOGIN && strcmp(type, "login.ok") == 0) {
		c->state = C_READY;
		b->logging--;
		b->logged_in++;
		sample_add(&b->lat_login, now_ns() - c->t_ns);
		goto out;
	}
	if (c->state == C_READY && b->pairs != NULL) {
		call_message(b, c, idx, type, msg, text, len);
		goto out;
	}
	error_note(b, "unexpected", text, len);
out:
	json_decref(msg);
}

/* Walks the complete frames in c->in. */
static void frames(struct bench *b, struct conn *c)
{
	size_t off = 0;

	while (c->state >= C_OPEN && c->state <= C_CLOSING && c->inlen - off >= 2) {
		const uint8_t *p = c->in + off;
		size_t left = c->inlen - off, hdr = 2;
		uint64_t len = p[1] & 0x7f;
		unsigned op = p[0] & 0x0f;
		bool fin = (p[0] & 0x80) != 0;
		unsigned i;

		/* §5.1: a server never masks; §5.2: no extension was agreed,
		 * so the RSV bits are zero. */
		if ((p[1] & 0x80) || (p[0] & 0x70)) {
			conn_fail(b, c, "frame: masked or RSV bits set");
			return;
		}
		if (len == 126) {
			if (left < 4)
				break;
			len = (uint64_t)p[2] << 8 | p[3];
			hdr = 4;
		} else if (len == 127) {
			if (left < 10)
				break;
			for (len = 0, i = 0; i < 8; i++)
				len = len << 8 | p[2 + i];
			hdr = 10;
		}
		if (len > MAX_FRAME) {
			conn_fail(b, c, "frame: larger than 1 MiB");
			return;
		}
		if (left - hdr < len) {
			if (hdr + len > c->incap) {
				c->incap = hdr + (size_t)len;
				/* Keep the partial frame at the start. */
				memmove(c->in, c->in + off, left);
				c->inlen = left;
				off = 0;
				c->in = xrealloc(c->in, c->incap);
			}
			break;
		}
		p += hdr;
		switch (op) {
		case 0x0: /* continuation */
		case 0x1: /* text */
			if ((op == 0x1) == c->in_frag) {
				conn_fail(b, c, "frame: bad fragmentation");
				return;
			}
			if (fin && !c->in_frag) {
				on_message(b, c, (const char *)p, (size_t)len);
			} else {
				c->frag = xrealloc(c->frag, c->fraglen + (size_t)len);
				memcpy(c->frag + c->fraglen, p, (size_t)len);
				c->fraglen += (size_t)len;
				c->in_frag = !fin;
				if (fin) {
					on_message(b, c, (const char *)c->frag, c->fraglen);
					c->fraglen = 0;
				}
			}
			break;
		case 0x8: /* close */
			if (c->state != C_CLOSING) {
				char why[64];
				unsigned code = len >= 2 ? (unsigned)p[0] << 8 | p[1] : 0;
				snprintf(why, sizeof(why), "closed by the server (code %u)", code);
				conn_fail(b, c, why);
			} else {
				conn_fail(b, c, "closed");
			}
			return;
		case 0x9: /* ping: §5.5.3, answer with the same data */
			if (ws_send_frame(b, c, 0xA, p, (size_t)len) != 0)
				return;
			break;
		case 0xA: /* pong */
			break;
		default:
			conn_fail(b, c, "frame: binary or unknown opcode");
			return;
		}
		off += hdr + (size_t)len;
		if (c->state == C_DEAD)
			return;
	}
	if (c->state == C_DEAD)
		return;
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
}

static void on_readable(struct bench *b, struct conn *c)
{
	ssize_t n;
	int rounds;

	for (rounds = 0; rounds < 8 && c->state != C_DEAD; rounds++) {
		if (c->incap - c->inlen < 2048) {
			c->incap = c->incap ? c->incap * 2 : 4096;
			c->in = xrealloc(c->in, c->incap);
		}
		n = recv(c->fd, c->in + c->inlen, c->incap - c->inlen, 0);
		if (n == 0) {
			conn_fail(b, c, "connection closed by the server");
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_fail(b, c, errno == ECONNRESET ? "recv: ECONNRESET" :
				    "recv failed");
			return;
		}
		c->inlen += (size_t)n;
		if (c->state == C_UPGRADING && upgrade_check(b, c) <= 0)
			return;
		frames(b, c);
		if ((size_t)n < 2048)
			return;
	}
}

static void on_event(struct bench *b, struct conn *c, uint32_t events)
{
	int err = 0;
	socklen_t elen = sizeof(err);

	if (c->state == C_DEAD || c->fd < 0)
		return;
	if (c->state == C_CONNECTING) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0) {
			conn_fail(b, c, err == ECONNREFUSED ? "connect: ECONNREFUSED" :
			    err == ETIMEDOUT ? "connect: ETIMEDOUT" : "connect failed");
			return;
		}
		c->state = C_UPGRADING;
		if (conn_flush(b, c) != 0)
			return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_readable(b, c);
	if (c->state != C_DEAD && (events & EPOLLOUT) && c->outlen > c->outoff)
		conn_flush(b, c);
}

/* --- phases ---------------------------------------------------------- */

static void pump_connect(struct bench *b)
{
	while (b->next_start < b->o.sessions && b->connecting < b->o.connect_window)
		conn_start(b, b->next_start++);
}

static bool done_connect(struct bench *b)
{
	return b->next_start == b->o.sessions && b->connecting == 0;
}

static void pump_login(struct bench *b)
{
	struct conn *c;

	while (b->next_login < b->o.sessions && b->logging < b->o.login_window) {
		c = &b->c[b->next_login++];
		if (c->state != C_OPEN)
			continue;
		c->state = C_LOGIN;
		c->t_ns = now_ns();
		b->logging++;
		ws_send_text(b, c, "{\"type\":\"login\",\"id\":%u,\"token\":\"%s\"}",
		    ++c->next_id, b->tokens[c - b->c]);
	}
}

static bool done_login(struct bench *b)
{
	return b->next_login == b->o.sessions && b->logging == 0;
}

static void pump_calls(struct bench *b)
{
	uint64_t t = now_ns();
	struct pair *pr;
	struct conn *caller;
	char callee[64];
	uint32_t p;

	while (!b->calls_stop && b->calls_inflight < b->o.call_window && b->fifo_len > 0 &&
	    b->calls_started < b->o.max_calls) {
		p = b->fifo[b->fifo_head];
		pr = &b->pairs[p];
		if (pr->ready_ns > t) {
			b->pacing_waits++;
			break;
		}
		b->fifo_head = (b->fifo_head + 1) % b->npairs;
		b->fifo_len--;
		if (pr->dead || b->c[2 * p].state != C_READY || b->c[2 * p + 1].state != C_READY)
			continue;
		pr->busy = true;
		pr->got = 0;
		pr->call[0] = '\0';
		pr->t0_ns = t;
		b->calls_inflight++;
		b->calls_started++;
		caller = &b->c[2 * p + pr->caller];
		user_name(b, 2 * p + (pr->caller ^ 1), callee, sizeof(callee));
		ws_send_text(b, caller, "{\"type\":\"call\",\"id\":%u,\"to\":\"%s\","
		    "\"media\":[\"audio\"]}", ++caller->next_id, callee);
	}
}

static bool done_calls(struct bench *b)
{
	return (b->calls_stop || b->calls_started >= b->o.max_calls || b->npairs == 0) &&
	    b->calls_inflight == 0;
}

/* Sessions left quiet for a while get a ping (the daemon drops sessions
 * idle for WS_IDLE_TIMEOUT_S = 120 s). Once a second at most. */
static void keepalive(struct bench *b, uint64_t t)
{
	unsigned i;

	if (t - b->last_sweep_ns < NS_PER_S)
		return;
	b->last_sweep_ns = t;
	for (i = 0; i < b->o.sessions; i++) {
		struct conn *c = &b->c[i];
		if (c->state >= C_OPEN && c->state <= C_READY &&
		    t - c->last_tx_ns > KEEPALIVE_NS)
			ws_send_text(b, c, "{\"type\":\"ping\"}");
	}
}

/* Runs the loop until done() or the deadline; 0, or -1 on timeout. The
 * call phase passes stop_at to stop starting cycles at that time. */
static int run_phase(struct bench *b, void (*pump)(struct bench *),
    bool (*done)(struct bench *), double timeout_s, uint64_t stop_at)
{
	struct epoll_event evs[512];
	uint64_t deadline = now_ns() + (uint64_t)(timeout_s * NS_PER_S), t;
	int n, i;

	for (;;) {
		t = now_ns();
		if (stop_at != 0 && t >= stop_at)
			b->calls_stop = true;
		if (pump != NULL)
			pump(b);
		if (done(b))
			return 0;
		if (t >= deadline)
			return -1;
		keepalive(b, t);
		n = epoll_wait(b->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 5);
		if (n < 0 && errno != EINTR)
			die("epoll_wait failed");
		for (i = 0; i < n; i++)
			on_event(b, &b->c[evs[i].data.u32], evs[i].events);
	}
}

static void settle(struct bench *b, unsigned ms)
{
	struct epoll_event evs[512];
	uint64_t end = now_ns() + (uint64_t)ms * NS_PER_MS;
	int n, i;

	while (now_ns() < end) {
		n = epoll_wait(b->ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 10);
		for (i = 0; i < n; i++)
			on_event(b, &b->c[evs[i].data.u32], evs[i].events);
	}
}

/* Closes every session (RFC 6455 §5.5.1 close frame, then the socket)
 * and waits, bounded, for the daemon's descriptor count to come down. */
static double close_all(struct bench *b, long fds_before, double timeout_s)
{
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(timeout_s * NS_PER_S);
	static const uint8_t normal[2] = { 0x03, 0xe8 }; /* 1000 */
	struct procstat s;
	unsigned i;

	for (i = 0; i < b->o.sessions; i++) {
		struct conn *c = &b->c[i];
		if (c->fd < 0)
			continue;
		/* Open ones say goodbye; ones still connecting just go. */
		if (c->state >= C_OPEN && c->state <= C_READY) {
			c->state = C_CLOSING;
			(void)ws_send_frame(b, c, 0x8, normal, sizeof(normal));
		}
		conn_release(b, c);
		c->state = C_DEAD;
	}
	if (b->o.pid <= 0 || fds_before < 0)
		return (double)(now_ns() - t0) / NS_PER_S;
	for (;;) {
		s = proc_sample(b->o.pid);
		if (!s.ok || s.fds <= fds_before + 2 || now_ns() >= deadline)
			break;
		usleep(20000);
	}
	return (double)(now_ns() - t0) / NS_PER_S;
}

/* --- report ---------------------------------------------------------- */

static void lat_row(const char *name, unsigned long count, double secs,
    struct samples *s, double cpu_main, double cpu_other)
{
	printf("  %-22s %8lu %8.2f %9.0f %8.2f %8.2f %8.2f %8.2f", name, count, secs,
	    secs > 0 ? (double)count / secs : 0.0, pct_ms(s, 50), pct_ms(s, 95),
	    pct_ms(s, 99), pct_ms(s, 100));
	if (cpu_main >= 0)
		printf("  %7.2f / %.2f", cpu_main, cpu_other);
	printf("\n");
}

/* Where the machine's CPU went between two samples; "others" is
 * everything but the daemon and this client. */
static void cpu_row(const char *name, const struct procstat *a, const struct procstat *z)
{
	double d = z->cpu_main_s + z->cpu_other_s - a->cpu_main_s - a->cpu_other_s;
	double me = z->self_cpu_s - a->self_cpu_s, busy = z->busy_s - a->busy_s;
	double others = busy - d - me;

	printf("  %-27s %8.2f %8.2f %8.2f %8.2f %8.2f\n", name, d,
	    z->cpu_main_s - a->cpu_main_s, me, others > 0 ? others : 0.0,
	    (z->total_s - a->total_s) - busy);
}

static void mem_row(const char *name, const struct procstat *s, const struct procstat *base)
{
	if (!s->ok) {
		printf("  %-22s (not sampled)\n", name);
		return;
	}
	printf("  %-22s %10ld %10ld %10ld %10ld %8ld %+10ld %+10ld\n", name, s->rss_kb,
	    s->pss_kb, s->anon_kb, s->hwm_kb, s->fds, s->rss_kb - base->rss_kb,
	    s->pss_kb - base->pss_kb);
}

static void per_session(const char *name, const struct procstat *a,
    const struct procstat *z, unsigned long n)
{
	if (!a->ok || !z->ok || n == 0)
		return;
	printf("  %-34s VmRSS %7.2f KiB   Pss %7.2f KiB   RssAnon %7.2f KiB\n", name,
	    (double)(z->rss_kb - a->rss_kb) / (double)n,
	    (double)(z->pss_kb - a->pss_kb) / (double)n,
	    (double)(z->anon_kb - a->anon_kb) / (double)n);
}

static void print_reasons(const char *title, const struct reasons *r)
{
	size_t i;

	if (r->n == 0)
		return;
	printf("%s\n", title);
	for (i = 0; i < r->n; i++)
		printf("  %6lu x %s\n", r->count[i], r->text[i]);
	if (r->other)
		printf("  %6lu x (other)\n", r->other);
}

/* --- main ------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
	    "usage: bench_sessions run --port PORT --key FILE [--pid PID] [options]\n"
	    "       bench_sessions keygen --key FILE --jwks FILE [--kid KID]\n"
	    "options (defaults in brackets):\n"
	    "  --host ADDR            server address, in 127.0.0.0/8 [127.0.0.1]\n"
	    "  --sessions N           sessions [10000]\n"
	    "  --per-ip N             sessions per source address [30; daemon allows 32]\n"
	    "  --src-net N            source addresses 127.N.x.y [1]\n"
	    "  --kid/--issuer/--audience  token fields [bench, https://bench.invalid, gatehouse]\n"
	    "  --user-prefix S        user names S000000... [bench]\n"
	    "  --group G              groups claim [bench]\n"
	    "  --pid PID              the daemon's pid, for memory and CPU figures\n"
	    "  --connect-window N     upgrades in flight [256]\n"
	    "  --login-window N       logins in flight [128; daemon queues 256]\n"
	    "  --call-window N        call set-ups in flight [256]\n"
	    "  --call-seconds S       length of the call phase [10]\n"
	    "  --max-calls N          cap on call set-ups [1000000]\n"
	    "  --pair-interval-ms N   least time between a pair's call starts [100]\n"
	    "  --phase-timeout S      deadline of each phase [180]\n"
	    "  --settle-ms N          wait before each memory sample [1000]\n");
	exit(2);
}

static unsigned long num(const char *s, unsigned long lo, unsigned long hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
		usage();
	return v;
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "host", 1, NULL, 'h' }, { "port", 1, NULL, 'p' },
		{ "sessions", 1, NULL, 'n' }, { "per-ip", 1, NULL, 'I' },
		{ "src-net", 1, NULL, 'S' }, { "key", 1, NULL, 'k' },
		{ "kid", 1, NULL, 'K' }, { "issuer", 1, NULL, 'i' },
		{ "audience", 1, NULL, 'a' }, { "user-prefix", 1, NULL, 'u' },
		{ "group", 1, NULL, 'g' }, { "pid", 1, NULL, 'P' },
		{ "connect-window", 1, NULL, 'C' }, { "login-window", 1, NULL, 'L' },
		{ "call-window", 1, NULL, 'W' }, { "call-seconds", 1, NULL, 's' },
		{ "max-calls", 1, NULL, 'm' }, { "pair-interval-ms", 1, NULL, 'r' },
		{ "phase-timeout", 1, NULL, 't' }, { "settle-ms", 1, NULL, 'w' },
		{ NULL, 0, NULL, 0 }
	};
	struct in_addr a;
	int ch;

	memset(o, 0, sizeof(*o));
	o->host = "127.0.0.1";
	o->sessions = 10000;
	o->per_ip = 30;
	o->src_net = 1;
	o->kid = "bench";
	o->issuer = "https://bench.invalid";
	o->audience = "gatehouse";
	o->user_prefix = "bench";
	o->group = "bench";
	o->connect_window = 256;
	o->login_window = 128;
	o->call_window = 256;
	o->call_seconds = 10;
	o->max_calls = 1000000;
	o->pair_interval_ms = 100;
	o->phase_timeout_s = 180;
	o->settle_ms = 1000;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'h': o->host = optarg; break;
		case 'p': o->port = (unsigned)num(optarg, 1, 65535); break;
		case 'n': o->sessions = (unsigned)num(optarg, 2, 1000000); break;
		case 'I': o->per_ip = (unsigned)num(optarg, 1, 1000); break;
		case 'S': o->src_net = (unsigned)num(optarg, 0, 255); break;
		case 'k': o->key_file = optarg; break;
		case 'K': o->kid = optarg; break;
		case 'i': o->issuer = optarg; break;
		case 'a': o->audience = optarg; break;
		case 'u': o->user_prefix = optarg; break;
		case 'g': o->group = optarg; break;
		case 'P': o->pid = (long)num(optarg, 1, 1UL << 30); break;
		case 'C': o->connect_window = (unsigned)num(optarg, 1, 100000); break;
		case 'L': o->login_window = (unsigned)num(optarg, 1, 100000); break;
		case 'W': o->call_window = (unsigned)num(optarg, 1, 1000000); break;
		case 's': o->call_seconds = (double)num(optarg, 0, 3600); break;
		case 'm': o->max_calls = num(optarg, 0, 100000000); break;
		case 'r': o->pair_interval_ms = (unsigned)num(optarg, 0, 60000); break;
		case 't': o->phase_timeout_s = (double)num(optarg, 1, 3600); break;
		case 'w': o->settle_ms = (unsigned)num(optarg, 0, 60000); break;
		default: usage();
		}
	}
	if (optind != argc || o->port == 0 || o->key_file == NULL)
		usage();
	/* Names and claims are pasted into JSON unescaped: keep them plain. */
	if (strpbrk(o->kid, "\"\\") || strpbrk(o->issuer, "\"\\") ||
	    strpbrk(o->audience, "\"\\") || strpbrk(o->user_prefix, "\"\\ ") ||
	    strpbrk(o->group, "\"\\") || strlen(o->user_prefix) > 40)
		die("--kid, --issuer, --audience, --user-prefix and --group must not "
		    "contain quotes or backslashes");
	if (inet_pton(AF_INET, o->host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
		die("--host must be an IPv4 address in 127.0.0.0/8 (loopback only)");
	if ((o->sessions + o->per_ip - 1) / o->per_ip > 254u * 256u)
		die("too few source addresses: raise --per-ip");
}

static void fd_limit(unsigned need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		die("getrlimit failed");
	if (rl.rlim_cur >= need)
		return;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need) {
		fprintf(stderr, "bench_sessions: need %u descriptors, the limit is %llu "
		    "(hard %llu); lower --sessions or raise `ulimit -n`\n", need,
		    (unsigned long long)rl.rlim_cur, (unsigned long long)rl.rlim_max);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	struct bench bn, *b = &bn;
	struct procstat s_base, s_conn, s_login, s_calls, s_close, s0, s1, s2;
	double t_conn, t_login, t_calls, t_close, t_tok;
	uint64_t t, stop_at;
	unsigned i, nip;
	int rc_conn, rc_login, rc_calls = 0, fail = 0;
	bool alive;

	if (argc >= 2 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argc, argv);
	if (argc < 2 || strcmp(argv[1], "run") != 0)
		usage();
	memset(b, 0, sizeof(*b));
	parse_opts(&b->o, argc - 1, argv + 1);
	fd_limit(b->o.sessions + 64);
	setvbuf(stdout, NULL, _IOLBF, 0);
	b->rng = ((uint64_t)getpid() << 32) ^ now_ns() ^ 0x9E3779B97F4A7C15ULL;
	b->server.sin_family = AF_INET;
	b->server.sin_port = htons((uint16_t)b->o.port);
	inet_pton(AF_INET, b->o.host, &b->server.sin_addr);
	b->c = calloc(b->o.sessions, sizeof(*b->c));
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	if (b->c == NULL || b->ep < 0)
		die("out of memory or epoll_create1 failed");
	for (i = 0; i < b->o.sessions; i++)
		b->c[i].fd = -1;
	nip = (b->o.sessions + b->o.per_ip - 1) / b->o.per_ip;

	t = now_ns();
	tokens_make(b);
	t_tok = (double)(now_ns() - t) / NS_PER_S;
	printf("bench_sessions: %u sessions to %s:%u from %u source addresses "
	    "(127.%u.0.1 up, %u each); %u ES256 tokens signed in %.2f s; daemon pid %ld\n",
	    b->o.sessions, b->o.host, b->o.port, nip, b->o.src_net, b->o.per_ip,
	    b->o.sessions, t_tok, b->o.pid);

	s_base = proc_sample(b->o.pid);

	/* 1. Connect and upgrade every session. */
	t = now_ns();
	rc_conn = run_phase(b, pump_connect, done_connect, b->o.phase_timeout_s, 0);
	t_conn = (double)(now_ns() - t) / NS_PER_S;
	s0 = proc_sample(b->o.pid);
	printf("  connected %u/%u in %.2f s%s\n", b->opened, b->o.sessions, t_conn,
	    rc_conn ? " (phase timed out)" : "");
	settle(b, b->o.settle_ms);
	s_conn = proc_sample(b->o.pid);

	/* 2. Log every open session in with its token. */
	t = now_ns();
	rc_login = run_phase(b, pump_login, done_login, b->o.phase_timeout_s, 0);
	t_login = (double)(now_ns() - t) / NS_PER_S;
	s1 = proc_sample(b->o.pid);
	printf("  logged in %u/%u in %.2f s%s\n", b->logged_in, b->o.sessions, t_login,
	    rc_login ? " (phase timed out)" : "");
	settle(b, b->o.settle_ms);
	s_login = proc_sample(b->o.pid);

	/* 3. Call set-ups between pairs, for call_seconds. */
	b->npairs = b->o.sessions / 2;
	b->pairs = calloc(b->npairs ? b->npairs : 1, sizeof(*b->pairs));
	b->fifo = calloc(b->npairs ? b->npairs : 1, sizeof(*b->fifo));
	if (b->pairs == NULL || b->fifo == NULL)
		die("out of memory");
	for (i = 0; i < b->npairs; i++)
		fifo_push(b, i);
	t = now_ns();
	stop_at = t + (uint64_t)(b->o.call_seconds * NS_PER_S);
	if (b->o.call_seconds > 0 && b->o.max_calls > 0)
		rc_calls = run_phase(b, pump_calls, done_calls,
		    b->o.call_seconds + b->o.phase_timeout_s, stop_at);
	t_calls = (double)(now_ns() - t) / NS_PER_S;
	s2 = proc_sample(b->o.pid);
	printf("  call phase: %lu set-ups, %lu complete cycles in %.2f s%s\n",
	    b->setups_done, b->cycles_done, t_calls, rc_calls ? " (phase timed out)" : "");
	settle(b, b->o.settle_ms);
	s_calls = proc_sample(b->o.pid);
	alive = daemon_alive(b->o.pid);

	/* 4. Close everything; the daemon should let go of it all. */
	t_close = close_all(b, s_base.fds, 30.0);
	usleep(b->o.settle_ms * 1000);
	s_close = proc_sample(b->o.pid);

	printf("\n== Gatehouse session benchmark: %u sessions ==\n", b->o.sessions);
	printf("  %-22s %8s %8s %9s %8s %8s %8s %8s  %s\n", "phase", "count", "seconds",
	    "rate/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "daemon CPU s (main/other)");
	lat_row("connect + upgrade", b->lat_connect.n, t_conn, &b->lat_connect,
	    s0.cpu_main_s - s_base.cpu_main_s, s0.cpu_other_s - s_base.cpu_other_s);
	lat_row("token login", b->lat_login.n, t_login, &b->lat_login,
	    s1.cpu_main_s - s_conn.cpu_main_s, s1.cpu_other_s - s_conn.cpu_other_s);
	lat_row("call -> accepted", b->lat_setup.n, t_calls, &b->lat_setup,
	    s2.cpu_main_s - s_login.cpu_main_s, s2.cpu_other_s - s_login.cpu_other_s);
	lat_row("call ... hangup cycle", b->lat_cycle.n, t_calls, &b->lat_cycle, -1, -1);
	printf("  (windows: %u upgrades, %u logins, %u set-ups in flight; a pair starts "
	    "at most every %u ms, so set-ups/s cannot pass %.0f; pacing held a start "
	    "back %lu times)\n", b->o.connect_window, b->o.login_window,
	    b->o.call_window, b->o.pair_interval_ms, b->o.pair_interval_ms ?
	    b->npairs * 1000.0 / b->o.pair_interval_ms : 0.0, b->pacing_waits);
	if (b->lat_login.n > 0 && s1.ok)
		printf("  daemon CPU per login: %.1f us main thread + %.1f us other threads\n",
		    1e6 * (s1.cpu_main_s - s_conn.cpu_main_s) / (double)b->lat_login.n,
		    1e6 * (s1.cpu_other_s - s_conn.cpu_other_s) / (double)b->lat_login.n);
	if (b->cycles_done > 0 && s2.ok)
		printf("  daemon CPU per call cycle (3 messages in, 6 out): %.1f us\n",
		    1e6 * (s2.cpu_main_s - s_login.cpu_main_s +
		    s2.cpu_other_s - s_login.cpu_other_s) / (double)b->cycles_done);

	printf("\n  CPU seconds in each phase   %8s %8s %8s %8s %8s\n", "daemon", "(main)",
	    "client", "others", "idle");
	cpu_row("connect + upgrade", &s_base, &s0);
	cpu_row("token login", &s_conn, &s1);
	cpu_row("calls", &s_login, &s2);

	printf("\n  daemon memory (KiB)      %10s %10s %10s %10s %8s %10s %10s\n", "VmRSS",
	    "Pss", "RssAnon", "VmHWM", "fds", "dRSS", "dPss");
	mem_row("before", &s_base, &s_base);
	mem_row("after connect", &s_conn, &s_base);
	mem_row("after login", &s_login, &s_base);
	mem_row("after calls", &s_calls, &s_base);
	mem_row("after close", &s_close, &s_base);
	printf("\n  memory per session (N = %u logged in):\n", b->logged_in);
	per_session("connected + logged in (total)", &s_base, &s_login, b->logged_in);
	per_session("  of which connection + upgrade", &s_base, &s_conn, b->opened);
	per_session("  of which login (hub session)", &s_conn, &s_login, b->logged_in);
	if (b->cycles_done > 0)
		per_session("growth per completed call cycle", &s_login, &s_calls,
		    b->cycles_done);
	printf("  close of all sessions: daemon fds back to %ld in %.2f s\n",
	    s_close.fds, t_close);

	/* Functional verdict. */
	if (!done_connect(b) || b->opened + b->failed != b->o.sessions || rc_conn) {
		printf("FAIL: the connect phase did not finish\n");
		fail = 1;
	}
	if (b->failed > 0) {
		printf("FAIL: %u sessions failed or were closed by the daemon\n", b->failed);
		fail = 1;
	}
	if (rc_login || b->logged_in != b->o.sessions - b->failed) {
		printf("FAIL: %u of %u sessions logged in\n", b->logged_in, b->o.sessions);
		fail = 1;
	}
	if (rc_calls || b->calls_inflight > 0) {
		printf("FAIL: %u call cycles did not finish before the deadline\n",
		    b->calls_inflight);
		fail = 1;
	}
	if (b->o.call_seconds > 0 && b->o.max_calls > 0 && b->cycles_done == 0) {
		printf("FAIL: no call cycle completed\n");
		fail = 1;
	}
	if (b->errors > 0) {
		printf("FAIL: %lu unexpected or error messages\n", b->errors);
		fail = 1;
	}
	if (!alive) {
		printf("FAIL: the daemon (pid %ld) is gone\n", b->o.pid);
		fail = 1;
	}
	print_reasons("session failures:", &b->fail_reasons);
	print_reasons("unexpected messages (first of each kind):", &b->error_msgs);
	printf("%s\n", fail ? "RESULT: FAIL" : "RESULT: OK");
	return fail;
}
