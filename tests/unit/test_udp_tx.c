/* The UDP send queue (gateway/udp_tx.c) over real loopback sockets: every
 * datagram arrives once, whole, in order per receiver, whether it left
 * coalesced (GSO) or alone, and when the kernel refuses a coalesced send. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "gateway/udp_tx.h"
#include "tests/unit/check.h"

#ifndef SO_NO_CHECK
#define SO_NO_CHECK 11
#endif

static int bound_socket(struct sockaddr_storage *addr)
{
	struct sockaddr_in *in = (struct sockaddr_in *)addr;
	socklen_t len = sizeof(*in);
	struct timeval tv = { .tv_sec = 2, .tv_usec = 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	memset(addr, 0, sizeof(*addr));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)in, sizeof(*in)) != 0 ||
	    getsockname(fd, (struct sockaddr *)in, &len) != 0) {
		perror("socket");
		exit(2);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* Datagram k of a test: its length and a byte pattern naming it. */
static void fill(uint8_t *buf, size_t len, int k)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = (uint8_t)(k * 31 + i);
}

/* Receives n datagrams on fd and checks each against the expected
 * sequence (indices into lens[]). */
static void expect_datagrams(int fd, const int *seq, size_t n, const size_t *lens)
{
	uint8_t got[UDP_TX_DATAGRAM_MAX + 1], want[UDP_TX_DATAGRAM_MAX];
	ssize_t r;
	size_t i;

	for (i = 0; i < n; i++) {
		r = recv(fd, got, sizeof(got), 0);
		CHECK_EQ_INT(r, (long long)lens[seq[i]]);
		if (r != (ssize_t)lens[seq[i]])
			return;
		fill(want, lens[seq[i]], seq[i]);
		CHECK(memcmp(got, want, (size_t)r) == 0);
	}
	/* Nothing more. */
	r = recv(fd, got, sizeof(got), MSG_DONTWAIT);
	CHECK(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

/* Interleaved datagrams to two receivers, with runs that coalesce (equal
 * sizes, a shorter last one), a run broken by a longer datagram, sizes
 * too large to coalesce, and a single one. */
static void run_case(bool refuse_gso)
{
	static struct udp_tx tx;
	struct sockaddr_storage a_addr, b_addr, s_addr;
	int a = bound_socket(&a_addr), b = bound_socket(&b_addr);
	int s = bound_socket(&s_addr), one = 1;
	static const size_t lens[] = {
		100, 100, 100, 60,      /* 0-3 to a: one coalesced send */
		100,                    /* 4 to a: after a shorter one, a new send */
		1200, 1200,             /* 5-6 to b */
		1300,                   /* 7 to b: longer, so alone */
		2000, 2000,             /* 8-9 to b: too large to coalesce */
		7,                      /* 10 to a */
	};
	static const int to_a[] = { 0, 1, 2, 3, 4, 10 };
	static const int to_b[] = { 5, 6, 7, 8, 9 };
	static const int order[] = { 0, 5, 1, 6, 2, 7, 3, 8, 4, 9, 10 };
	uint8_t buf[UDP_TX_DATAGRAM_MAX];
	size_t i;
	int k;

	/* The kernel refuses GSO on a socket that sends without checksums. */
	if (refuse_gso)
		CHECK_EQ_INT(setsockopt(s, SOL_SOCKET, SO_NO_CHECK, &one, sizeof(one)), 0);
	udp_tx_init(&tx);
	/* Every kernel Debian 12 ships has UDP GSO (4.18 and later): without
	 * it, this test would not exercise the coalesced sends. */
	CHECK(!tx.gso_off);
	for (i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		k = order[i];
		fill(buf, lens[k], k);
		CHECK_EQ_INT(udp_tx_queue(&tx, s, k < 5 || k == 10 ? &a_addr : &b_addr,
		    buf, lens[k]), 0);
	}
	CHECK_EQ_INT(tx.n, sizeof(order) / sizeof(order[0]));
	udp_tx_flush(&tx);
	CHECK_EQ_INT(tx.n, 0);
	expect_datagrams(a, to_a, sizeof(to_a) / sizeof(to_a[0]), lens);
	expect_datagrams(b, to_b, sizeof(to_b) / sizeof(to_b[0]), lens);
	close(a);
	close(b);
	close(s);
}

/* More than UDP_TX_MAX queued: the queue flushes itself and loses none. */
static void test_overflow(void)
{
	static struct udp_tx tx;
	struct sockaddr_storage a_addr, s_addr;
	int a = bound_socket(&a_addr), s = bound_socket(&s_addr);
	int seq[3 * UDP_TX_MAX];
	size_t lens[3 * UDP_TX_MAX];
	uint8_t buf[UDP_TX_DATAGRAM_MAX];
	int k;

	udp_tx_init(&tx);
	for (k = 0; k < 3 * UDP_TX_MAX; k++) {
		seq[k] = k;
		lens[k] = 200;
		fill(buf, lens[k], k);
		CHECK_EQ_INT(udp_tx_queue(&tx, s, &a_addr, buf, lens[k]), 0);
	}
	udp_tx_flush(&tx);
	expect_datagrams(a, seq, 3 * UDP_TX_MAX, lens);
	close(a);
	close(s);
}

static void test_bad_sizes(void)
{
	static struct udp_tx tx;
	static uint8_t big[UDP_TX_DATAGRAM_MAX + 1];
	struct sockaddr_storage a_addr;
	int a = bound_socket(&a_addr);

	udp_tx_init(&tx);
	CHECK_EQ_INT(udp_tx_queue(&tx, a, &a_addr, big, 0), -1);
	CHECK_EQ_INT(udp_tx_queue(&tx, a, &a_addr, big, sizeof(big)), -1);
	CHECK_EQ_INT(tx.n, 0);
	udp_tx_flush(&tx);
	close(a);
}

int main(void)
{
	run_case(false);
	run_case(true);
	test_overflow();
	test_bad_sizes();
	return check_done("test_udp_tx");
}
