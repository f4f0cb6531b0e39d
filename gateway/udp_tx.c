/* The relay's queue of datagrams to UDP clients (see udp_tx.h). */
#include "gateway/udp_tx.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <unistd.h>

#include "turn/alloc.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103         /* linux/udp.h, Linux 4.18 */
#endif

/* A coalesced send: at most this many datagrams (the kernel's limit is 64
 * or more), this many bytes in all (one IP packet's worth, less headers),
 * and datagrams of at most this size, so that with IPv6 and UDP headers a
 * datagram fits a 1500-byte MTU: past it the kernel would refuse the
 * whole send where the route's MTU is Ethernet's. */
#define GSO_MAX_SEGMENTS 64
#define GSO_MAX_BYTES 60000
#define GSO_MAX_SEGMENT 1400

/* One sendmmsg() entry: a datagram, or several to one client. */
struct group {
	int fd;
	size_t first;           /* queue index of its first datagram */
	size_t count, bytes;
	size_t seg;             /* size of all but a shorter last one */
	bool closed;            /* a shorter datagram ended it */
	size_t iov_at;          /* where its datagrams start in iov[] */
};

/* A kernel that lacks UDP_SEGMENT might not refuse the control message
 * but ignore it, and send the coalesced datagrams as one: ask first. The
 * option can be read since it exists (Linux 4.18). */
static bool kernel_has_gso(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), size = 0;
	socklen_t len = sizeof(size);
	bool ok;

	if (fd < 0)
		return false;
	ok = getsockopt(fd, SOL_UDP, UDP_SEGMENT, &size, &len) == 0;
	close(fd);
	return ok;
}

void udp_tx_init(struct udp_tx *tx)
{
	tx->n = 0;
	tx->gso_off = !kernel_has_gso();
}

int udp_tx_queue(struct udp_tx *tx, int fd, const struct sockaddr_storage *to,
    const uint8_t *buf, size_t len)
{
	if (len == 0 || len > UDP_TX_DATAGRAM_MAX)
		return -1;
	if (tx->n == UDP_TX_MAX)
		udp_tx_flush(tx);
	tx->fd[tx->n] = fd;
	tx->to[tx->n] = *to;
	tx->len[tx->n] = len;
	memcpy(tx->bufs[tx->n], buf, len);
	tx->n++;
	return 0;
}

/* Whether datagram i may join g, the latest group to its client. */
static bool joins(const struct udp_tx *tx, const struct group *g, size_t i)
{
	return !tx->gso_off && !g->closed && g->seg <= GSO_MAX_SEGMENT &&
	    tx->len[i] <= g->seg && g->count < GSO_MAX_SEGMENTS &&
	    g->bytes + tx->len[i] <= GSO_MAX_BYTES;
}

/* Assigns every queued datagram to a group; returns how many groups.
 * A datagram only ever joins the latest group to its client, so each
 * client's datagrams keep their order. */
static size_t group_queue(const struct udp_tx *tx, struct group *groups, size_t *group_of)
{
	size_t i, k, ngroups = 0;
	struct group *g;

	for (i = 0; i < tx->n; i++) {
		g = NULL;
		for (k = ngroups; k-- > 0;) {
			if (groups[k].fd == tx->fd[i] &&
			    sockaddr_equal((const struct sockaddr *)&tx->to[groups[k].first],
			    (const struct sockaddr *)&tx->to[i])) {
				g = &groups[k];
				break;
			}
		}
		if (g == NULL || !joins(tx, g, i)) {
			g = &groups[ngroups++];
			memset(g, 0, sizeof(*g));
			g->fd = tx->fd[i];
			g->first = i;
			g->seg = tx->len[i];
		} else if (tx->len[i] < g->seg) {
			g->closed = true;
		}
		g->count++;
		g->bytes += tx->len[i];
		group_of[i] = (size_t)(g - groups);
	}
	return ngroups;
}

/* A coalesced send that the kernel refused: its datagrams one by one. */
static void send_each(struct udp_tx *tx, int fd, const struct msghdr *h)
{
	struct msghdr one;
	size_t j;

	if (errno == ENOPROTOOPT || errno == EOPNOTSUPP)
		tx->gso_off = true;
	memset(&one, 0, sizeof(one));
	one.msg_name = h->msg_name;
	one.msg_namelen = h->msg_namelen;
	one.msg_iovlen = 1;
	for (j = 0; j < h->msg_iovlen; j++) {
		one.msg_iov = &h->msg_iov[j];
		(void)sendmsg(fd, &one, MSG_DONTWAIT);
	}
}

void udp_tx_flush(struct udp_tx *tx)
{
	struct group groups[UDP_TX_MAX];
	size_t group_of[UDP_TX_MAX], fill[UDP_TX_MAX];
	struct iovec iov[UDP_TX_MAX];
	struct mmsghdr msgs[UDP_TX_MAX];
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} control[UDP_TX_MAX];
	struct cmsghdr *cm;
	size_t ngroups, i, k, at, next, run_end;
	int n;

	if (tx->n == 0)
		return;
	ngroups = group_queue(tx, groups, group_of);
	/* Each group's datagrams side by side in iov[], in queue order. */
	for (k = 0, at = 0; k < ngroups; k++) {
		groups[k].iov_at = at;
		fill[k] = at;
		at += groups[k].count;
	}
	for (i = 0; i < tx->n; i++) {
		iov[fill[group_of[i]]].iov_base = tx->bufs[i];
		iov[fill[group_of[i]]].iov_len = tx->len[i];
		fill[group_of[i]]++;
	}
	for (k = 0; k < ngroups; k++) {
		struct msghdr *h = &msgs[k].msg_hdr;
		memset(&msgs[k], 0, sizeof(msgs[k]));
		h->msg_name = &tx->to[groups[k].first];
		h->msg_namelen = sockaddr_len(&tx->to[groups[k].first]);
		h->msg_iov = &iov[groups[k].iov_at];
		h->msg_iovlen = groups[k].count;
		if (groups[k].count > 1) {
			/* Whole, padding included: the kernel is handed all of it. */
			memset(control[k].buf, 0, sizeof(control[k].buf));
			h->msg_control = control[k].buf;
			h->msg_controllen = sizeof(control[k].buf);
			cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
			*(uint16_t *)(void *)CMSG_DATA(cm) = (uint16_t)groups[k].seg;
		}
	}
	/* One sendmmsg() per run of groups on the same socket. */
	for (next = 0; next < ngroups; next = run_end) {
		run_end = next + 1;
		while (run_end < ngroups && groups[run_end].fd == groups[next].fd)
			run_end++;
		for (k = next; k < run_end; ) {
			n = sendmmsg(groups[k].fd, &msgs[k], (unsigned)(run_end - k), MSG_DONTWAIT);
			if (n > 0) {
				k += (size_t)n;
				continue;
			}
			if (groups[k].count > 1)
				send_each(tx, groups[k].fd, &msgs[k].msg_hdr);
			k++;
		}
	}
	tx->n = 0;
}
