/* Sockets and the epoll loop of the relay (see relay_io.h).
 *
 * Every epoll registration points at a struct io_handle whose kind says
 * what it is. Handles closed while a batch of events is being processed
 * are only marked dead and freed after the batch, so a later event of the
 * same batch never touches freed memory.
 *
 * Per-packet cost is mostly system calls, so they are batched: UDP is read
 * with recvmmsg() on listeners and relay sockets alike, and while a batch
 * of events is being handled, datagrams to UDP clients are queued and sent
 * with one sendmmsg() per batch (udp_tx.h, which also coalesces bursts to
 * one client with GSO), and stream connections are written once per
 * batch, whatever number of frames they were given. */
#include "gateway/relay_io.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/rand.h>

#include "common/bytes.h"
#include "common/clock.h"
#include "gateway/conn_limit.h"
#include "gateway/log.h"
#include "gateway/udp_tx.h"
#include "turn/stun.h"

/* Expiry of allocations, permissions, channels and connections runs when
 * the relay's timer fires, once a second: a timerfd in the epoll set
 * rather than an epoll_wait() timeout, which would arm and cancel a kernel
 * timer on every wait, that is on every packet. */
#define TICK_S 1
#define UDP_BATCH 32           /* datagrams per recvmmsg() */
#define UDP_ROUNDS 8           /* recvmmsg() calls per readable socket and batch */
/* Room for the Data indication headers inside one STUN_MAX_MESSAGE. */
#define RELAY_READ_MAX (STUN_MAX_MESSAGE - 64)
#define CONN_BUCKETS 1024
/* A stream connection's output buffer when output first has to wait; it
 * doubles as needed up to RELAY_IO_MAX_OUT. */
#define OUT_FIRST (16 * 1024)

enum handle_kind {
	H_UDP_LISTENER,
	H_TCP_LISTENER,
	H_CONN,
	H_RELAY,
	H_WAKE,                 /* eventfd: relay_io_wake() */
	H_TIMER,                /* timerfd: TICK_S */
};

struct io_handle {
	enum handle_kind kind;
	int fd;
	bool dead;
	struct io_handle *next_dead;
};

struct listener {
	struct io_handle h;
	enum config_transport transport;
	struct sockaddr_storage addr;
};

struct conn {
	struct io_handle h;
	uint64_t id;
	struct turn_client client;
	SSL *ssl;                       /* owned; NULL for plain TCP */
	bool handshaking;
	bool got_message;
	bool want_out;                  /* EPOLLOUT registered */
	/* Monotonic. alloc_ms: the last tick that saw an allocation on this
	 * connection (at first, when it was accepted). */
	uint64_t created_ms, last_rx_ms, alloc_ms;
	uint8_t in[STUN_MAX_MESSAGE];
	size_t inlen;
	/* Owned, outcap bytes, outlen of them waiting for the socket. NULL
	 * while nothing waits: an idle connection holds no output buffer. */
	uint8_t *out;
	size_t outlen, outcap;
	bool flush_queued;              /* on relay_io.flush: written at batch end */
	struct conn *next_flush;
	bool ready;                     /* on relay_io.ready */
	struct conn *next_ready;
	struct conn *next_bucket;
	struct conn *next, *prev;       /* all connections */
};

struct relay {
	struct io_handle h;
	struct turn_alloc *owner;       /* borrowed: the server's */
	struct sockaddr_storage addr;
	uint16_t port;
};

struct relay_io {
	int epfd;
	struct turn_server *server;     /* borrowed */
	SSL_CTX *tls;                   /* owned reference */
	struct listener listeners[CONFIG_MAX_LISTEN];
	size_t nlisteners;
	struct sockaddr_storage relay_ip;
	uint16_t port_min, port_max;
	uint8_t *ports_used;            /* owned: one byte per port of the range */
	struct conn *conns;             /* list of all */
	struct conn *conn_buckets[CONN_BUCKETS];
	size_t nconns;
	struct conn_limit *per_source;  /* owned: connections per source */
	/* Connections closed at accept: over connections_per_source, or over
	 * RELAY_IO_MAX_CONNS; and those not logged yet (at most one debug
	 * line a second, the rest summed up at the next tick). */
	uint64_t refused_per_source, refused_total;
	uint64_t refused_unlogged;
	uint64_t next_conn_id;
	struct io_handle *dead;         /* freed after each batch */
	struct io_handle wake;          /* H_WAKE */
	struct io_handle timer;         /* H_TIMER */
	/* Read once per batch. Timers of connections use now.mono_ms; the
	 * server gets both (struct clock_pair, common/clock.h). */
	struct clock_pair now;
	/* recvmmsg() headers, set up once: each read resets only what the
	 * previous one changed (rx_used entries, and the buffer size). */
	uint8_t udp_bufs[UDP_BATCH][STUN_MAX_MESSAGE];
	struct mmsghdr rx_msgs[UDP_BATCH];
	struct iovec rx_iov[UDP_BATCH];
	struct sockaddr_storage rx_from[UDP_BATCH];
	size_t rx_buflen;
	int rx_used;
	/* While a batch of events is handled (batching): what to send. */
	bool batching;
	struct conn *flush;             /* stream connections with new output */
	/* TLS connections that used up their read rounds while OpenSSL still
	 * held bytes for them: epoll cannot tell (the socket may be empty), so
	 * the next batch reads them again, and the wait before it does not
	 * block. Only the relay thread touches it. */
	struct conn *ready;
	struct udp_tx tx;               /* datagrams queued for UDP clients */
};

uint64_t relay_io_now_ms(void)
{
	return clock_wall_ms();
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
}

static int epoll_add(struct relay_io *io, struct io_handle *h, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };

	return epoll_ctl(io->epfd, EPOLL_CTL_ADD, h->fd, &ev);
}

static void handle_kill(struct relay_io *io, struct io_handle *h)
{
	if (h->dead)
		return;
	h->dead = true;
	epoll_ctl(io->epfd, EPOLL_CTL_DEL, h->fd, NULL);
	close(h->fd);
	h->fd = -1;
	h->next_dead = io->dead;
	io->dead = h;
}

static void reap_dead(struct relay_io *io)
{
	struct io_handle *h, *next;

	for (h = io->dead; h != NULL; h = next) {
		next = h->next_dead;
		if (h->kind == H_CONN) {
			struct conn *c = (struct conn *)h;
			SSL_free(c->ssl);
			free(c->out);
		}
		free(h);
	}
	io->dead = NULL;
}

static int socket_for(int family, int type)
{
	return socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

static int bind_listener(struct relay_io *io, const struct config_listen *cl,
    char *err, size_t errlen)
{
	struct listener *l = &io->listeners[io->nlisteners];
	char name[INET6_ADDRSTRLEN + 8];
	int one = 1, fd, bufsz = 4 << 20;
	int type = cl->transport == CONFIG_UDP ? SOCK_DGRAM : SOCK_STREAM;

	fd = socket_for(cl->addr.ss_family, type);
	if (fd < 0)
		goto fail;
	/* TCP only: a restart must not wait out TIME_WAIT. On UDP the option
	 * would let any local user bind the same port (with the option too)
	 * and take the datagrams meant for the relay. */
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (cl->addr.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (type == SOCK_DGRAM) {
		/* Media is bursty: a deeper queue absorbs video key frames. */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	}
	if (bind(fd, (const struct sockaddr *)&cl->addr, sockaddr_len(&cl->addr)) != 0)
		goto fail;
	if (type == SOCK_STREAM && listen(fd, 512) != 0)
		goto fail;
	l->h.kind = type == SOCK_DGRAM ? H_UDP_LISTENER : H_TCP_LISTENER;
	l->h.fd = fd;
	l->transport = cl->transport;
	l->addr = cl->addr;
	if (epoll_add(io, &l->h, EPOLLIN) != 0)
		goto fail;
	io->nlisteners++;
	return 0;
fail:
	snprintf(err, errlen, "cannot listen on %s (%s): %s",
	    config_format_addr((const struct sockaddr *)&cl->addr, name, sizeof(name)),
	    cl->transport == CONFIG_UDP ? "udp" : cl->transport == CONFIG_TCP ? "tcp" : "tls",
	    strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

static void rx_setup(struct relay_io *io);

/* Both clocks, coarse: once per batch, so the packet path reads none. */
static void relay_io_clock(struct relay_io *io)
{
	io->now.mono_ms = clock_mono_coarse_ms();
	io->now.wall_ms = clock_wall_coarse_ms();
}

struct relay_io *relay_io_new(const struct config_turn *cfg, SSL_CTX *tls,
    char *err, size_t errlen)
{
	struct relay_io *io = calloc(1, sizeof(*io));
	const struct itimerspec period = {
		.it_interval = { .tv_sec = TICK_S, .tv_nsec = 0 },
		.it_value = { .tv_sec = TICK_S, .tv_nsec = 0 },
	};
	size_t i;

	if (io == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	io->epfd = io->wake.fd = io->timer.fd = -1;
	/* Connections use the context for as long as they live. */
	if (tls != NULL && SSL_CTX_up_ref(tls) == 1)
		io->tls = tls;
	io->relay_ip = cfg->relay_ip;
	io->port_min = cfg->port_min;
	io->port_max = cfg->port_max;
	io->next_conn_id = 1;
	io->ports_used = calloc((size_t)cfg->port_max - cfg->port_min + 1, 1);
	io->per_source = conn_limit_new(cfg->limits.connections_per_source);
	io->epfd = epoll_create1(EPOLL_CLOEXEC);
	io->wake.kind = H_WAKE;
	io->wake.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	io->timer.kind = H_TIMER;
	io->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (io->ports_used == NULL || io->per_source == NULL || io->epfd < 0 || io->wake.fd < 0 ||
	    io->timer.fd < 0 || epoll_add(io, &io->wake, EPOLLIN) != 0 ||
	    epoll_add(io, &io->timer, EPOLLIN) != 0 ||
	    timerfd_settime(io->timer.fd, 0, &period, NULL) != 0) {
		snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
		goto fail;
	}
	rx_setup(io);
	udp_tx_init(&io->tx);
	for (i = 0; i < cfg->nlisten; i++) {
		if (cfg->listen[i].transport == CONFIG_TLS && io->tls == NULL) {
			snprintf(err, errlen, "a TLS listener needs a certificate");
			goto fail;
		}
		if (bind_listener(io, &cfg->listen[i], err, errlen) != 0)
			goto fail;
	}
	relay_io_clock(io);
	return io;
fail:
	relay_io_free(io);
	return NULL;
}

static void conn_close(struct relay_io *io, struct conn *c, const char *why);

void relay_io_free(struct relay_io *io)
{
	size_t i;

	if (io == NULL)
		return;
	while (io->conns != NULL)
		conn_close(io, io->conns, "shutdown");
	reap_dead(io);
	for (i = 0; i < io->nlisteners; i++)
		close(io->listeners[i].h.fd);
	if (io->epfd >= 0)
		close(io->epfd);
	if (io->wake.fd >= 0)
		close(io->wake.fd);
	if (io->timer.fd >= 0)
		close(io->timer.fd);
	SSL_CTX_free(io->tls);
	conn_limit_free(io->per_source);
	free(io->ports_used);
	free(io);
}

void relay_io_set_server(struct relay_io *io, struct turn_server *s)
{
	io->server = s;
}

/* --- stream connections ------------------------------------------------ */

static struct conn *conn_find(struct relay_io *io, uint64_t id)
{
	struct conn *c;

	for (c = io->conn_buckets[id % CONN_BUCKETS]; c != NULL; c = c->next_bucket)
		if (c->id == id)
			return c;
	return NULL;
}

static void conn_close(struct relay_io *io, struct conn *c, const char *why)
{
	struct conn **pp = &io->conn_buckets[c->id % CONN_BUCKETS], **rp;
	char name[INET6_ADDRSTRLEN + 8];

	log_debug("turn: closing %s connection %llu from %s: %s",
	    c->ssl != NULL ? "tls" : "tcp", (unsigned long long)c->id,
	    config_format_addr((const struct sockaddr *)&c->client.remote, name,
	    sizeof(name)), why);
	while (*pp != c)
		pp = &(*pp)->next_bucket;
	*pp = c->next_bucket;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		io->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	io->nconns--;
	if (c->ready) {
		/* Not found: it is on the list relay_io_handle() is walking,
		 * which skips dead handles. */
		for (rp = &io->ready; *rp != NULL && *rp != c; rp = &(*rp)->next_ready)
			;
		if (*rp == c)
			*rp = c->next_ready;
		c->ready = false;
	}
	conn_limit_release(io->per_source, (const struct sockaddr *)&c->client.remote);
	if (io->server != NULL)
		turn_server_on_conn_closed(io->server, c->id);
	handle_kill(io, &c->h);
}

static void conn_want_out(struct relay_io *io, struct conn *c, bool want)
{
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0),
	    .data.ptr = &c->h };

	if (c->want_out == want)
		return;
	c->want_out = want;
	epoll_ctl(io->epfd, EPOLL_CTL_MOD, c->h.fd, &ev);
}

/* One write of up to len bytes: how many the socket took (0 when it is
 * full), or -1 when the connection failed. */
static ssize_t conn_write(struct conn *c, const uint8_t *buf, size_t len)
{
	ssize_t n;
	int e;

	if (c->ssl != NULL) {
		ERR_clear_error();
		n = SSL_write(c->ssl, buf, (int)len);
		if (n > 0)
			return n;
		e = SSL_get_error(c->ssl, (int)n);
		return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
	}
	n = send(c->h.fd, buf, len, MSG_NOSIGNAL);
	if (n >= 0)
		return n;
	return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
}

/* Writes what is buffered, and frees the buffer once it is empty.
 * Returns -1 when the connection failed. */
static int conn_flush(struct relay_io *io, struct conn *c)
{
	ssize_t n;

	while (c->outlen > 0) {
		n = conn_write(c, c->out, c->outlen);
		if (n < 0)
			return -1;
		if (n == 0)
			break;
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	conn_want_out(io, c, c->outlen > 0);
	return 0;
}

/* An empty output buffer is kept while output flows (plain TCP gathers
 * every batch's frames in it) and freed at the tick: an idle connection
 * holds none, and the packet path does not allocate per batch. */
static void conn_out_release(struct conn *c)
{
	if (c->outlen == 0 && c->out != NULL) {
		free(c->out);
		c->out = NULL;
		c->outcap = 0;
	}
}

/* Makes room for len more bytes of output, growing the buffer by
 * doubling (OUT_FIRST at first). -1 past RELAY_IO_MAX_OUT or when out of
 * memory. */
static int conn_out_room(struct conn *c, size_t len)
{
	size_t cap = c->outcap > 0 ? c->outcap : OUT_FIRST;
	uint8_t *p;

	if (len > RELAY_IO_MAX_OUT - c->outlen)
		return -1;
	if (c->outlen + len <= c->outcap)
		return 0;
	while (cap < c->outlen + len)
		cap *= 2;
	if (cap > RELAY_IO_MAX_OUT)
		cap = RELAY_IO_MAX_OUT;
	p = realloc(c->out, cap);
	if (p == NULL)
		return -1;
	c->out = p;
	c->outcap = cap;
	return 0;
}

static void conn_send(struct relay_io *io, struct conn *c, const uint8_t *buf, size_t len)
{
	bool gather = io->batching && c->ssl == NULL;
	ssize_t n;

	if (c->handshaking)
		return;
	/* A client that does not read is not allowed to grow our memory: past
	 * the bound, frames are dropped as UDP would drop them. */
	if (len > RELAY_IO_MAX_OUT - c->outlen)
		return;
	/* Nothing waiting, and no batch to gather frames for: straight to the
	 * socket, and only what it does not take is buffered. TLS: one record
	 * per frame, as some clients (coturn's uclient among them) read one
	 * frame per record. */
	if (c->outlen == 0 && !gather) {
		n = conn_write(c, buf, len);
		if (n < 0) {
			conn_close(io, c, "write failed");
			return;
		}
		if ((size_t)n == len)
			return;
		/* The socket is full: the rest waits for EPOLLOUT. Without
		 * room for it the stream would lose its framing: closed. */
		if (conn_out_room(c, len - (size_t)n) != 0) {
			conn_close(io, c, "out of memory");
			return;
		}
		memcpy(c->out, buf + n, len - (size_t)n);
		c->outlen = len - (size_t)n;
		conn_want_out(io, c, true);
		return;
	}
	/* Out of memory: dropped, as the bound above would. */
	if (conn_out_room(c, len) != 0)
		return;
	memcpy(c->out + c->outlen, buf, len);
	c->outlen += len;
	/* Plain TCP: one write per batch. */
	if (gather) {
		if (!c->flush_queued) {
			c->flush_queued = true;
			c->next_flush = io->flush;
			io->flush = c;
		}
		return;
	}
	if (conn_flush(io, c) != 0)
		conn_close(io, c, "write failed");
}

/* End of a batch: one write per connection that was given frames. Closed
 * ones are still allocated (they are reaped after this). */
static void conns_flush_queued(struct relay_io *io)
{
	struct conn *c;

	while ((c = io->flush) != NULL) {
		io->flush = c->next_flush;
		c->flush_queued = false;
		if (!c->h.dead && conn_flush(io, c) != 0)
			conn_close(io, c, "write failed");
	}
}

/* Cuts complete frames off the input buffer and hands them on. */
static int conn_consume(struct relay_io *io, struct conn *c)
{
	size_t off = 0, frame;
	int rc;

	while (off < c->inlen) {
		rc = stun_frame_len(c->in + off, c->inlen - off, &frame);
		if (rc == STUN_EAGAIN)
			break;
		if (rc != STUN_OK)
			return -1;
		c->got_message = true;
		turn_server_on_client(io->server, &c->client, c->in + off, frame, io->now);
		if (c->h.dead)
			return 0;
		off += frame;
	}
	memmove(c->in, c->in + off, c->inlen - off);
	c->inlen -= off;
	return 0;
}

static void conn_readable(struct relay_io *io, struct conn *c)
{
	ssize_t n;
	int e, rounds = 0;
	bool drained;

	if (c->handshaking) {
		ERR_clear_error();
		n = SSL_accept(c->ssl);
		if (n <= 0) {
			e = SSL_get_error(c->ssl, (int)n);
			if (e == SSL_ERROR_WANT_READ)
				return conn_want_out(io, c, false);
			if (e == SSL_ERROR_WANT_WRITE)
				return conn_want_out(io, c, true);
			return conn_close(io, c, "TLS handshake failed");
		}
		c->handshaking = false;
		conn_want_out(io, c, false);
	}
	/* Bounded rounds so one busy connection cannot starve the others. */
	while (rounds++ < 16 && !c->h.dead) {
		if (c->inlen == sizeof(c->in))
			return conn_close(io, c, "frame too large");
		if (c->ssl != NULL) {
			ERR_clear_error();
			n = SSL_read(c->ssl, c->in + c->inlen, (int)(sizeof(c->in) - c->inlen));
			if (n <= 0) {
				e = SSL_get_error(c->ssl, (int)n);
				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
					return;
				return conn_close(io, c, e == SSL_ERROR_ZERO_RETURN ?
				    "closed by peer" : "TLS read failed");
			}
		} else {
			n = recv(c->h.fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return;
				return conn_close(io, c, "read failed");
			}
			if (n == 0)
				return conn_close(io, c, "closed by peer");
		}
		drained = c->ssl == NULL && (size_t)n < sizeof(c->in) - c->inlen;
		c->inlen += (size_t)n;
		c->last_rx_ms = io->now.mono_ms;
		if (conn_consume(io, c) != 0)
			return conn_close(io, c, "not a STUN or ChannelData stream");
		/* A short read emptied the socket: epoll (level-triggered) says
		 * when there is more, one recv() cheaper than reading EAGAIN. TLS
		 * keeps reading: OpenSSL may hold decrypted bytes. */
		if (drained)
			return;
	}
	/* Out of rounds. Plain TCP: what is left is in the socket, and epoll
	 * says so again. TLS: OpenSSL may have read the rest of a record from
	 * the socket already, and epoll would never fire for it. */
	if (!c->h.dead && c->ssl != NULL && !c->ready && SSL_has_pending(c->ssl)) {
		c->ready = true;
		c->next_ready = io->ready;
		io->ready = c;
	}
}

static void conn_event(struct relay_io *io, struct conn *c, uint32_t events)
{
	if (events & (EPOLLERR | EPOLLHUP)) {
		conn_close(io, c, "connection error");
		return;
	}
	if ((events & EPOLLOUT) && !c->handshaking && conn_flush(io, c) != 0) {
		conn_close(io, c, "write failed");
		return;
	}
	if (events & (EPOLLIN | EPOLLOUT))
		conn_readable(io, c);
}

/* A connection closed at accept: counted, and logged at debug level at
 * most once a second (conns_expire() sums up the rest), since a flood of
 * them is what the limits are there for. */
static void conn_refused(struct relay_io *io, const struct sockaddr_storage *from,
    bool per_source)
{
	char name[INET6_ADDRSTRLEN + 8];

	if (per_source)
		io->refused_per_source++;
	else
		io->refused_total++;
	if (io->refused_unlogged++ > 0)
		return;
	log_debug("turn: refusing a tcp/tls connection from %s: %s",
	    config_format_addr((const struct sockaddr *)from, name, sizeof(name)),
	    per_source ? "too many connections from that source" :
	    "too many connections");
}

/* Sets up an accepted connection; on failure closes fd and gives back
 * what it took. The source has been counted (conn_limit_take). */
static void conn_open(struct relay_io *io, struct listener *l, int fd,
    const struct sockaddr_storage *remote)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (c == NULL)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->h.kind = H_CONN;
	c->h.fd = fd;
	c->id = io->next_conn_id++;
	c->client.transport = l->transport == CONFIG_TLS ? TURN_TP_TLS : TURN_TP_TCP;
	c->client.remote = *remote;
	c->client.local = l->addr;
	c->client.conn_id = c->id;
	c->created_ms = c->last_rx_ms = c->alloc_ms = io->now.mono_ms;
	if (l->transport == CONFIG_TLS) {
		c->ssl = SSL_new(io->tls);
		if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1)
			goto fail;
		SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
		c->handshaking = true;
	}
	if (epoll_add(io, &c->h, EPOLLIN) != 0)
		goto fail;
	c->next_bucket = io->conn_buckets[c->id % CONN_BUCKETS];
	io->conn_buckets[c->id % CONN_BUCKETS] = c;
	c->next = io->conns;
	if (io->conns != NULL)
		io->conns->prev = c;
	io->conns = c;
	io->nconns++;
	return;
fail:
	if (c != NULL)
		SSL_free(c->ssl);
	free(c);
	close(fd);
	conn_limit_release(io->per_source, (const struct sockaddr *)remote);
}

static void accept_conns(struct relay_io *io, struct listener *l)
{
	struct sockaddr_storage remote;
	socklen_t rlen;
	int fd, i;

	for (i = 0; i < 64; i++) {
		rlen = sizeof(remote);
		fd = accept4(l->h.fd, (struct sockaddr *)&remote, &rlen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		/* Over a limit: closed at once, before it costs anything. One
		 * source (an IPv4 address, an IPv6 /64) gets at most
		 * connections_per_source of the RELAY_IO_MAX_CONNS slots. */
		if (io->nconns >= RELAY_IO_MAX_CONNS) {
			close(fd);
			conn_refused(io, &remote, false);
			continue;
		}
		if (conn_limit_take(io->per_source, (const struct sockaddr *)&remote) != 0) {
			close(fd);
			conn_refused(io, &remote, true);
			continue;
		}
		conn_open(io, l, fd, &remote);
	}
}

/* Once a second: connections that are too slow to start, idle, or keep no
 * allocation are closed. */
static void conns_expire(struct relay_io *io)
{
	uint64_t now = io->now.mono_ms;
	struct conn *c, *next;

	if (io->refused_unlogged > 1)
		log_debug("turn: %llu more tcp/tls connections refused in the last second",
		    (unsigned long long)(io->refused_unlogged - 1));
	io->refused_unlogged = 0;
	for (c = io->conns; c != NULL; c = next) {
		next = c->next;
		if (io->server != NULL && turn_server_conn_has_alloc(io->server, c->id))
			c->alloc_ms = now;
		if (!c->got_message && clock_elapsed_ms(now, c->created_ms) > RELAY_IO_FIRST_MESSAGE_MS)
			conn_close(io, c, c->handshaking ? "TLS handshake timeout" :
			    "no message in time");
		else if (clock_elapsed_ms(now, c->last_rx_ms) > RELAY_IO_IDLE_MS)
			conn_close(io, c, "idle");
		/* Every TURN request but Allocate needs an allocation, so a
		 * client without one has no use for the connection; closing it
		 * keeps slots for those that relay (a Binding now and then
		 * would otherwise hold one for good). */
		else if (clock_elapsed_ms(now, c->alloc_ms) > RELAY_IO_NO_ALLOC_MS)
			conn_close(io, c, "no allocation");
		else
			conn_out_release(c);
	}
}

void relay_io_stats(const struct relay_io *io, struct relay_io_stats *out)
{
	out->conns = io->nconns;
	out->refused_per_source = io->refused_per_source;
	out->refused_total = io->refused_total;
}

/* --- UDP --------------------------------------------------------------- */

static void rx_setup(struct relay_io *io)
{
	int i;

	memset(io->rx_msgs, 0, sizeof(io->rx_msgs));
	for (i = 0; i < UDP_BATCH; i++) {
		io->rx_iov[i].iov_base = io->udp_bufs[i];
		io->rx_iov[i].iov_len = STUN_MAX_MESSAGE;
		io->rx_msgs[i].msg_hdr.msg_name = &io->rx_from[i];
		io->rx_msgs[i].msg_hdr.msg_namelen = sizeof(io->rx_from[i]);
		io->rx_msgs[i].msg_hdr.msg_iov = &io->rx_iov[i];
		io->rx_msgs[i].msg_hdr.msg_iovlen = 1;
	}
	io->rx_buflen = STUN_MAX_MESSAGE;
	io->rx_used = 0;
}

/* One recvmmsg() of up to UDP_BATCH datagrams of at most buflen bytes
 * into io->udp_bufs; io->rx_from[i] and io->rx_msgs[i] say who, how long
 * and whether it was truncated. Returns how many, 0 when there are none. */
static int udp_recv_batch(struct relay_io *io, int fd, size_t buflen)
{
	int i, n;

	/* The kernel wrote the address length of the entries it filled. */
	for (i = 0; i < io->rx_used; i++)
		io->rx_msgs[i].msg_hdr.msg_namelen = sizeof(io->rx_from[i]);
	if (buflen != io->rx_buflen) {
		for (i = 0; i < UDP_BATCH; i++)
			io->rx_iov[i].iov_len = buflen;
		io->rx_buflen = buflen;
	}
	n = recvmmsg(fd, io->rx_msgs, UDP_BATCH, MSG_DONTWAIT, NULL);
	io->rx_used = n > 0 ? n : 0;
	return io->rx_used;
}

static void udp_readable(struct relay_io *io, struct listener *l)
{
	const struct mmsghdr *msgs = io->rx_msgs;
	struct turn_client client;
	int n, i, rounds;

	memset(&client, 0, sizeof(client));
	client.transport = TURN_TP_UDP;
	client.local = l->addr;
	for (rounds = 0; rounds < UDP_ROUNDS; rounds++) {
		n = udp_recv_batch(io, l->h.fd, STUN_MAX_MESSAGE);
		for (i = 0; i < n; i++) {
			/* Larger than any message we accept: drop, don't parse a
			 * truncated copy. */
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;
			memcpy(&client.remote, &io->rx_from[i], sizeof(client.remote));
			turn_server_on_client(io->server, &client, io->udp_bufs[i],
			    msgs[i].msg_len, io->now);
		}
		/* Answers leave before the next read: a burst waits no longer
		 * than one batch. */
		udp_tx_flush(&io->tx);
		if (n < UDP_BATCH)
			return;
	}
}

void relay_io_send_client(struct relay_io *io, const struct turn_client *c,
    const uint8_t *buf, size_t len)
{
	struct conn *conn;
	size_t i;

	if (c->transport != TURN_TP_UDP) {
		conn = conn_find(io, c->conn_id);
		if (conn != NULL && !conn->h.dead)
			conn_send(io, conn, buf, len);
		return;
	}
	for (i = 0; i < io->nlisteners; i++) {
		struct listener *l = &io->listeners[i];
		if (l->transport != CONFIG_UDP ||
		    !sockaddr_equal((const struct sockaddr *)&l->addr,
		    (const struct sockaddr *)&c->local))
			continue;
		if (!io->batching) {
			/* UDP semantics: a full socket buffer drops the datagram. */
			(void)sendto(l->h.fd, buf, len, MSG_DONTWAIT,
			    (const struct sockaddr *)&c->remote, sockaddr_len(&c->remote));
			return;
		}
		(void)udp_tx_queue(&io->tx, l->h.fd, &c->remote, buf, len);
		return;
	}
}

/* --- relay sockets ----------------------------------------------------- */

/* Binds a relay socket on exactly this port; NULL if it is taken. */
static struct relay *relay_bind(struct relay_io *io, struct turn_alloc *owner,
    const struct turn_relay_req *req, uint16_t port)
{
	struct sockaddr_storage addr = io->relay_ip;
	struct relay *r;
	int fd, pmtu = IP_PMTUDISC_DO, bufsz = 1 << 20;

	fd = socket_for(req->family, SOCK_DGRAM);
	if (fd < 0)
		return NULL;
	set_port(&addr, port);
	if (bind(fd, (const struct sockaddr *)&addr, sockaddr_len(&addr)) != 0) {
		close(fd);
		return NULL;
	}
	/* Video bursts: a deeper queue than the default absorbs a key frame.
	 * The kernel charges only what is queued, not the limit. */
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
	if (req->dont_fragment)
		setsockopt(fd, req->family == AF_INET6 ? IPPROTO_IPV6 : IPPROTO_IP,
		    req->family == AF_INET6 ? IPV6_MTU_DISCOVER : IP_MTU_DISCOVER,
		    &pmtu, sizeof(pmtu));
	r = calloc(1, sizeof(*r));
	if (r == NULL) {
		close(fd);
		return NULL;
	}
	r->h.kind = H_RELAY;
	r->h.fd = fd;
	r->owner = owner;
	r->addr = addr;
	r->port = port;
	if (epoll_add(io, &r->h, EPOLLIN) != 0) {
		close(fd);
		free(r);
		return NULL;
	}
	return r;
}

int relay_io_relay_open(struct relay_io *io, struct turn_alloc *owner,
    const struct turn_relay_req *req, struct sockaddr_storage *relayed,
    void **handle)
{
	size_t range = (size_t)io->port_max - io->port_min + 1, i, idx;
	uint32_t start;
	struct relay *r = NULL;
	uint16_t port;

	if (req->family != io->relay_ip.ss_family)
		return -1;
	if (req->port != 0) {
		/* Claiming a reservation: the port is already marked ours. */
		if (req->port < io->port_min || req->port > io->port_max)
			return -1;
		r = relay_bind(io, owner, req, req->port);
		if (r == NULL)
			return -1;
		goto done;
	}
	if (RAND_bytes((uint8_t *)&start, sizeof(start)) != 1)
		return -1;
	/* A random start makes relay ports unpredictable to off-path
	 * attackers; the scan visits every port once. */
	for (i = 0; i < range && r == NULL; i++) {
		idx = (start + i) % range;
		port = (uint16_t)(io->port_min + idx);
		if (io->ports_used[idx] || (req->even_port && (port & 1)))
			continue;
		if (req->reserve_next && (port == io->port_max || io->ports_used[idx + 1]))
			continue;
		r = relay_bind(io, owner, req, port);
	}
	if (r == NULL)
		return -1;
	if (req->reserve_next)
		io->ports_used[r->port + 1 - io->port_min] = 1;
done:
	io->ports_used[r->port - io->port_min] = 1;
	*relayed = r->addr;
	*handle = r;
	return 0;
}

void relay_io_relay_unreserve(struct relay_io *io, uint16_t port)
{
	if (port >= io->port_min && port <= io->port_max)
		io->ports_used[port - io->port_min] = 0;
}

void relay_io_relay_close(struct relay_io *io, void *handle)
{
	struct relay *r = handle;

	io->ports_used[r->port - io->port_min] = 0;
	r->owner = NULL;
	handle_kill(io, &r->h);
}

void relay_io_relay_send(struct relay_io *io, void *handle,
    const struct sockaddr *peer, const uint8_t *buf, size_t len)
{
	struct relay *r = handle;

	(void)io;
	(void)sendto(r->h.fd, buf, len, MSG_DONTWAIT, peer,
	    peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in));
}

static void relay_readable(struct relay_io *io, struct relay *r)
{
	const struct mmsghdr *msgs = io->rx_msgs;
	int n, i, rounds;

	for (rounds = 0; rounds < UDP_ROUNDS && !r->h.dead; rounds++) {
		n = udp_recv_batch(io, r->h.fd, RELAY_READ_MAX);
		for (i = 0; i < n && !r->h.dead; i++) {
			if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue;
			turn_server_on_peer(io->server, r->owner,
			    (const struct sockaddr *)&io->rx_from[i], io->udp_bufs[i],
			    msgs[i].msg_len, io->now);
		}
		if (n < UDP_BATCH)
			return;
	}
}

/* --- the loop ---------------------------------------------------------- */

void relay_io_wait(struct relay_io *io, struct relay_io_events *e, int timeout_ms)
{
	/* Connections on the ready list have input now: look for events,
	 * but do not wait for any. */
	e->n = epoll_wait(io->epfd, e->ev, RELAY_IO_EVENTS, io->ready != NULL ? 0 : timeout_ms);
	if (e->n < 0)
		e->n = 0;
}

void relay_io_wake(struct relay_io *io)
{
	uint64_t one = 1;

	(void)write(io->wake.fd, &one, sizeof(one));
}

void relay_io_handle(struct relay_io *io, const struct relay_io_events *e)
{
	struct conn *ready, *c;
	uint64_t count;
	bool tick = false;
	int i;

	relay_io_clock(io);
	io->batching = true;
	for (i = 0; i < e->n; i++) {
		struct io_handle *h = e->ev[i].data.ptr;
		if (h->dead)
			continue;
		switch (h->kind) {
		case H_UDP_LISTENER:
			udp_readable(io, (struct listener *)h);
			break;
		case H_TCP_LISTENER:
			accept_conns(io, (struct listener *)h);
			break;
		case H_CONN:
			conn_event(io, (struct conn *)h, e->ev[i].events);
			break;
		case H_RELAY:
			relay_readable(io, (struct relay *)h);
			break;
		case H_WAKE:
			(void)read(h->fd, &count, sizeof(count));
			break;
		case H_TIMER:
			(void)read(h->fd, &count, sizeof(count));
			tick = true;
			break;
		}
	}
	/* Then each connection left on the ready list gets its rounds, like
	 * one more event (twice the rounds in all for one that also had an
	 * event in this batch); one that uses them up again goes back on the
	 * list for the next batch, so it cannot starve the others. */
	ready = io->ready;
	io->ready = NULL;
	while ((c = ready) != NULL) {
		ready = c->next_ready;
		c->next_ready = NULL;
		c->ready = false;
		if (!c->h.dead)
			conn_readable(io, c);
	}
	udp_tx_flush(&io->tx);
	conns_flush_queued(io);
	io->batching = false;
	if (tick) {
		if (io->server != NULL)
			turn_server_tick(io->server, io->now);
		conns_expire(io);
	}
	/* Only here, after this batch's events: a handle closed by the main
	 * thread while this thread waited may still be in the batch. */
	reap_dead(io);
}
