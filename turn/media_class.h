/* What a relayed datagram carries, told by its first byte (RFC 9443 §3,
 * which extends RFC 7983 with QUIC).
 *
 * Pure: no I/O, no state. media_classify() runs on every relayed
 * datagram, so it is inline and only compares one byte. It is meant for
 * the payload the relay forwards between peers; on the client-to-relay
 * leg stun_demux() decides first, and it takes 64-127 for ChannelData
 * (see TURN_CHANNEL_MAX in stun.h), where this function says QUIC for
 * 80-127 as RFC 9443 does. */
#ifndef GH_TURN_MEDIA_CLASS_H
#define GH_TURN_MEDIA_CLASS_H

#include <stddef.h>
#include <stdint.h>

enum media_class {
	MEDIA_STUN,
	MEDIA_ZRTP,
	MEDIA_DTLS,
	MEDIA_CHANNEL,
	MEDIA_QUIC,
	MEDIA_RTP,      /* RTP and RTCP: told apart by the payload type, not here */
	MEDIA_UNKNOWN,
};

/* RFC 9443 §3: 0-3 STUN, 16-19 ZRTP, 20-63 DTLS (the DTLS 1.3 unified
 * header 32-63 included), 64-79 TURN ChannelData, 80-127 QUIC, 128-191
 * RTP/RTCP, 192-255 QUIC. 4-15 are unassigned, and an empty datagram
 * has no first byte: both MEDIA_UNKNOWN. buf may be NULL when len is 0. */
static inline enum media_class
media_classify(const uint8_t *buf, size_t len)
{
	uint8_t b;

	if (len == 0)
		return MEDIA_UNKNOWN;
	b = buf[0];
	if (b <= 3)
		return MEDIA_STUN;
	if (b < 16)
		return MEDIA_UNKNOWN;
	if (b < 20)
		return MEDIA_ZRTP;
	if (b < 64)
		return MEDIA_DTLS;
	if (b < 80)
		return MEDIA_CHANNEL;
	if (b < 128)
		return MEDIA_QUIC;
	if (b < 192)
		return MEDIA_RTP;
	return MEDIA_QUIC;
}

/* "stun", "zrtp", "dtls", "channel", "quic", "rtp"; "unknown" for
 * MEDIA_UNKNOWN and for any value outside the enum. Returns a static
 * string. */
const char *media_class_name(enum media_class c);

#endif
