/* The relay's queue of datagrams to UDP clients.
 *
 * While the relay handles one batch of events, what it sends to UDP
 * clients is queued here and leaves with one sendmmsg() per socket. Where
 * several queued datagrams go to the same client and have the same size
 * (the last of them may be shorter), they leave as one UDP GSO send
 * (UDP_SEGMENT): the kernel builds, routes and hands over one buffer
 * instead of one per datagram, and the client still receives separate
 * datagrams, as it would have without. That is the common shape of media:
 * a video frame is a burst of equal-size packets to one receiver.
 *
 * UDP semantics throughout: a datagram the kernel refuses is dropped and
 * the rest still go. When a coalesced send is refused (a route with a
 * smaller MTU, IPsec, a device without checksum offload), its datagrams go
 * one by one; a kernel without UDP_SEGMENT is not asked again. */
#ifndef GH_GATEWAY_UDP_TX_H
#define GH_GATEWAY_UDP_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "turn/stun.h"

#define UDP_TX_MAX 32                       /* datagrams per flush */
#define UDP_TX_DATAGRAM_MAX STUN_MAX_MESSAGE

struct udp_tx {
	size_t n;
	bool gso_off;                       /* the kernel lacks UDP_SEGMENT */
	int fd[UDP_TX_MAX];
	struct sockaddr_storage to[UDP_TX_MAX];
	size_t len[UDP_TX_MAX];
	uint8_t bufs[UDP_TX_MAX][UDP_TX_DATAGRAM_MAX];
};

void udp_tx_init(struct udp_tx *tx);
/* Queues a copy of buf for to, sent from fd at the next flush (the queue
 * flushes itself first when full). Returns -1, dropping it, when len is 0
 * or larger than UDP_TX_DATAGRAM_MAX. */
int udp_tx_queue(struct udp_tx *tx, int fd, const struct sockaddr_storage *to,
    const uint8_t *buf, size_t len);
/* Sends everything queued; the queue is empty afterwards. */
void udp_tx_flush(struct udp_tx *tx);

#endif
