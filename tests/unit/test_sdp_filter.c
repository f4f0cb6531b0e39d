/* Unit tests for signaling/sdp_filter.c: a Chromium offer and an aiortc
 * offer filtered line by line against an expected result, in CRLF, LF and
 * mixed line ends; the rewrites of c=, o=, m= and a=rtcp; spellings that
 * other parsers read as candidates; refused framing; size and line
 * limits; every prefix of both offers; random mutations checked for
 * idempotence; the kinds of media sections reported by the filter and
 * by sdp_media_kinds(), which must agree; and the candidate parser's edge
 * cases through sdp_candidate_allowed().
 *
 * Inputs are copied into heap buffers of exactly their length, without a
 * terminating NUL, so AddressSanitizer reports a read of even one byte
 * past the end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "signaling/sdp_filter.h"
#include "tests/unit/check.h"

#define RELAY_PORT_MIN 49152
#define RELAY_PORT_MAX 65535
#define RELAY_V6 "2001:db8::10"
#define MUTATION_ROUNDS 20000

/* ---- the test's idea of Gatehouse's relay ---- */

struct relay_ctx {
	bool allow_v6;      /* also accept RELAY_V6 */
	unsigned calls;
	int family;         /* of the last address checked */
	uint16_t port;      /* host order, of the last address checked */
	char addr[INET6_ADDRSTRLEN];
};

/* 127.0.0.1 with a port in [49152, 65535]; RELAY_V6 too when asked. ctx
 * may be NULL. */
static bool check_relay(void *ctx, const struct sockaddr *sa)
{
	struct relay_ctx *rc = ctx;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	struct in6_addr v6;
	unsigned port; /* wider than the field, so the range test means something */

	if (sa->sa_family == AF_INET) {
		memcpy(&in4, sa, sizeof(in4));
		port = ntohs(in4.sin_port);
		if (rc != NULL) {
			rc->calls++;
			rc->family = AF_INET;
			rc->port = (uint16_t)port;
			inet_ntop(AF_INET, &in4.sin_addr, rc->addr, sizeof(rc->addr));
		}
		return in4.sin_addr.s_addr == htonl(INADDR_LOOPBACK) &&
		    port >= RELAY_PORT_MIN && port <= RELAY_PORT_MAX;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&in6, sa, sizeof(in6));
		port = ntohs(in6.sin6_port);
		if (rc != NULL) {
			rc->calls++;
			rc->family = AF_INET6;
			rc->port = (uint16_t)port;
			inet_ntop(AF_INET6, &in6.sin6_addr, rc->addr, sizeof(rc->addr));
		}
		if (rc == NULL || !rc->allow_v6 ||
		    inet_pton(AF_INET6, RELAY_V6, &v6) != 1)
			return false;
		return memcmp(&in6.sin6_addr, &v6, sizeof(v6)) == 0 &&
		    port >= RELAY_PORT_MIN && port <= RELAY_PORT_MAX;
	}
	return false;
}

/* ---- SDPs as tables of lines with what should become of each ---- */

enum want { KEEP, DROP, EDIT };
enum eol { EOL_CRLF, EOL_LF, EOL_MIXED };

struct tline {
	enum want want;
	const char *in;
	const char *out; /* EDIT only */
};

/* Chromium 120-style offer: audio, video and data bundled, gathered with
 * iceTransportPolicy "all" so that every kind of candidate appears: mDNS
 * and literal host (IPv4, IPv6), TCP host, srflx, two relays on
 * Gatehouse (UDP and TURN/TLS allocations), one relay on 127.0.0.1 outside
 * the relay port range, and one on a foreign TURN server. */
static const struct tline chrome_offer[] = {
	{ KEEP, "v=0", NULL },
	{ EDIT, "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
	    "o=- 4611731400430051336 2 IN IP4 0.0.0.0" },
	{ KEEP, "s=-", NULL },
	{ KEEP, "t=0 0", NULL },
	{ KEEP, "a=group:BUNDLE 0 1 2", NULL },
	{ KEEP, "a=extmap-allow-mixed", NULL },
	{ KEEP, "a=msid-semantic: WMS 3c9f6a1e-2b4d-4e8f-a1c7-5d2e9b0f4a6c", NULL },
	{ EDIT, "m=audio 49170 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
	    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126" },
	{ EDIT, "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0" },
	{ KEEP, "a=rtcp:9 IN IP4 0.0.0.0", NULL },
	{ DROP, "a=candidate:3442447574 1 udp 2122260223 6b1c1a3e-4f2d-4c7e-9a51-0d3b7e2f9c11.local 54321 typ host generation 0 network-id 1 network-cost 10", NULL },
	{ DROP, "a=candidate:2779014590 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 network-id 1 network-cost 10", NULL },
	{ DROP, "a=candidate:1741983520 1 udp 2122197247 2001:db8:85a3::8a2e:370:7334 54322 typ host generation 0 network-id 2 network-cost 10", NULL },
	{ DROP, "a=candidate:4227802166 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0 network-id 1 network-cost 10", NULL },
	{ DROP, "a=candidate:842163049 1 udp 1686052607 203.0.113.7 54321 typ srflx raddr 192.168.1.23 rport 54321 generation 0 network-id 1 network-cost 10", NULL },
	{ EDIT, "a=candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 203.0.113.7 rport 54321 generation 0 network-id 1 network-cost 10",
	    "a=candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 0.0.0.0 rport 0 generation 0 network-id 1 network-cost 10" },
	{ EDIT, "a=candidate:3019814095 1 udp 8331263 127.0.0.1 65535 typ relay raddr 203.0.113.7 rport 54333 generation 0 network-id 1 network-cost 10",
	    "a=candidate:3019814095 1 udp 8331263 127.0.0.1 65535 typ relay raddr 0.0.0.0 rport 0 generation 0 network-id 1 network-cost 10" },
	{ DROP, "a=candidate:1650893466 1 udp 41885183 127.0.0.1 3478 typ relay raddr 203.0.113.7 rport 54334 generation 0 network-id 1 network-cost 10", NULL },
	{ DROP, "a=candidate:2351723937 1 udp 41819903 198.51.100.20 60112 typ relay raddr 203.0.113.7 rport 54321 generation 0 network-id 1 network-cost 10", NULL },
	{ KEEP, "a=ice-ufrag:Xq3n", NULL },
	{ KEEP, "a=ice-pwd:O4f1W7XbYQm0dR1t6y2pHc8J", NULL },
	{ KEEP, "a=ice-options:trickle", NULL },
	{ KEEP, "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08", NULL },
	{ KEEP, "a=setup:actpass", NULL },
	{ KEEP, "a=mid:0", NULL },
	{ KEEP, "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level", NULL },
	{ KEEP, "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", NULL },
	{ KEEP, "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01", NULL },
	{ KEEP, "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", NULL },
	{ KEEP, "a=sendrecv", NULL },
	{ KEEP, "a=msid:3c9f6a1e-2b4d-4e8f-a1c7-5d2e9b0f4a6c 8e1d2c3b-4a5f-4b6e-9c7d-0e1f2a3b4c5d", NULL },
	{ KEEP, "a=rtcp-mux", NULL },
	{ KEEP, "a=rtpmap:111 opus/48000/2", NULL },
	{ KEEP, "a=rtcp-fb:111 transport-cc", NULL },
	{ KEEP, "a=fmtp:111 minptime=10;useinbandfec=1", NULL },
	{ KEEP, "a=rtpmap:63 red/48000/2", NULL },
	{ KEEP, "a=fmtp:63 111/111", NULL },
	{ KEEP, "a=rtpmap:9 G722/8000", NULL },
	{ KEEP, "a=rtpmap:0 PCMU/8000", NULL },
	{ KEEP, "a=rtpmap:8 PCMA/8000", NULL },
	{ KEEP, "a=rtpmap:13 CN/8000", NULL },
	{ KEEP, "a=rtpmap:110 telephone-event/48000", NULL },
	{ KEEP, "a=rtpmap:126 telephone-event/8000", NULL },
	{ KEEP, "a=ssrc:3735928559 cname:Qe1s7K8oTn2bYw5R", NULL },
	{ KEEP, "a=ssrc:3735928559 msid:3c9f6a1e-2b4d-4e8f-a1c7-5d2e9b0f4a6c 8e1d2c3b-4a5f-4b6e-9c7d-0e1f2a3b4c5d", NULL },
	{ EDIT, "m=video 54321 UDP/TLS/RTP/SAVPF 96 97 98 99",
	    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99" },
	{ EDIT, "c=IN IP4 203.0.113.7", "c=IN IP4 0.0.0.0" },
	{ KEEP, "a=rtcp:9 IN IP4 0.0.0.0", NULL },
	{ DROP, "a=candidate:3442447574 1 udp 2122260223 6b1c1a3e-4f2d-4c7e-9a51-0d3b7e2f9c11.local 54321 typ host generation 0 network-id 1 network-cost 10", NULL },
	{ DROP, "a=candidate:842163049 1 udp 1686052607 203.0.113.7 54321 typ srflx raddr 192.168.1.23 rport 54321 generation 0 network-id 1 network-cost 10", NULL },
	{ EDIT, "a=candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 203.0.113.7 rport 54321 generation 0 network-id 1 network-cost 10",
	    "a=candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 0.0.0.0 rport 0 generation 0 network-id 1 network-cost 10" },
	{ DROP, "a=candidate:2351723937 1 udp 41819903 198.51.100.20 60112 typ relay raddr 203.0.113.7 rport 54321 generation 0 network-id 1 network-cost 10", NULL },
	{ KEEP, "a=ice-ufrag:Xq3n", NULL },
	{ KEEP, "a=ice-pwd:O4f1W7XbYQm0dR1t6y2pHc8J", NULL },
	{ KEEP, "a=ice-options:trickle", NULL },
	{ KEEP, "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08", NULL },
	{ KEEP, "a=setup:actpass", NULL },
	{ KEEP, "a=mid:1", NULL },
	{ KEEP, "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset", NULL },
	{ KEEP, "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid", NULL },
	{ KEEP, "a=sendrecv", NULL },
	{ KEEP, "a=msid:3c9f6a1e-2b4d-4e8f-a1c7-5d2e9b0f4a6c 1f2e3d4c-5b6a-4978-8a9b-0c1d2e3f4a5b", NULL },
	{ KEEP, "a=rtcp-mux", NULL },
	{ KEEP, "a=rtcp-rsize", NULL },
	{ KEEP, "a=rtpmap:96 VP8/90000", NULL },
	{ KEEP, "a=rtcp-fb:96 goog-remb", NULL },
	{ KEEP, "a=rtcp-fb:96 transport-cc", NULL },
	{ KEEP, "a=rtcp-fb:96 ccm fir", NULL },
	{ KEEP, "a=rtcp-fb:96 nack", NULL },
	{ KEEP, "a=rtcp-fb:96 nack pli", NULL },
	{ KEEP, "a=rtpmap:97 rtx/90000", NULL },
	{ KEEP, "a=fmtp:97 apt=96", NULL },
	{ KEEP, "a=rtpmap:98 VP9/90000", NULL },
	{ KEEP, "a=fmtp:98 profile-id=0", NULL },
	{ KEEP, "a=rtpmap:99 rtx/90000", NULL },
	{ KEEP, "a=fmtp:99 apt=98", NULL },
	{ KEEP, "a=ssrc-group:FID 1145324612 2290649224", NULL },
	{ KEEP, "a=ssrc:1145324612 cname:Qe1s7K8oTn2bYw5R", NULL },
	{ KEEP, "a=ssrc:2290649224 cname:Qe1s7K8oTn2bYw5R", NULL },
	{ EDIT, "m=application 49170 UDP/DTLS/SCTP webrtc-datachannel",
	    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" },
	{ EDIT, "c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0" },
	{ DROP, "a=candidate:2779014590 1 udp 2122260223 192.168.1.23 54321 typ host generation 0 network-id 1 network-cost 10", NULL },
	{ EDIT, "a=candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 203.0.113.7 rport 54321 generation 0 network-id 1 network-cost 10",
	    "a=candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 0.0.0.0 rport 0 generation 0 network-id 1 network-cost 10" },
	{ KEEP, "a=ice-ufrag:Xq3n", NULL },
	{ KEEP, "a=ice-pwd:O4f1W7XbYQm0dR1t6y2pHc8J", NULL },
	{ KEEP, "a=ice-options:trickle", NULL },
	{ KEEP, "a=fingerprint:sha-256 7B:8B:F0:65:5F:78:E2:51:3B:AC:6F:F3:3F:46:1B:35:DC:B8:5F:64:1A:24:C2:43:F0:A1:58:D0:A1:2C:19:08", NULL },
	{ KEEP, "a=setup:actpass", NULL },
	{ KEEP, "a=mid:2", NULL },
	{ KEEP, "a=sctp-port:5000", NULL },
	{ KEEP, "a=max-message-size:262144", NULL },
};

/* aiortc 1.x offer (aiortc/sdp.py layout): the first candidate, a host
 * address, is the default destination in c= and m=; candidates come after
 * the codecs and end with a=end-of-candidates; foundations are 32-char
 * MD5 hex strings and relay candidates carry the srflx address in raddr. */
static const struct tline aiortc_offer[] = {
	{ KEEP, "v=0", NULL },
	{ KEEP, "o=- 3921395287 3921395287 IN IP4 0.0.0.0", NULL },
	{ KEEP, "s=-", NULL },
	{ KEEP, "t=0 0", NULL },
	{ KEEP, "a=group:BUNDLE 0 1", NULL },
	{ KEEP, "a=msid-semantic:WMS *", NULL },
	{ EDIT, "m=audio 45678 UDP/TLS/RTP/SAVPF 96 0 8",
	    "m=audio 9 UDP/TLS/RTP/SAVPF 96 0 8" },
	{ EDIT, "c=IN IP4 192.168.1.23", "c=IN IP4 0.0.0.0" },
	{ KEEP, "a=sendrecv", NULL },
	{ KEEP, "a=extmap:1 urn:ietf:params:rtp-hdrext:sdes:mid", NULL },
	{ KEEP, "a=extmap:2 urn:ietf:params:rtp-hdrext:ssrc-audio-level", NULL },
	{ KEEP, "a=mid:0", NULL },
	{ KEEP, "a=msid:5d0c8f1a-7b3e-4c2d-9e6f-a1b2c3d4e5f6 0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", NULL },
	{ KEEP, "a=rtcp:9 IN IP4 0.0.0.0", NULL },
	{ KEEP, "a=rtcp-mux", NULL },
	{ KEEP, "a=ssrc:2843581922 cname:4a5e3c6b-8f2d-4e1a-b9c7-d0e1f2a3b4c5", NULL },
	{ KEEP, "a=rtpmap:96 opus/48000/2", NULL },
	{ KEEP, "a=rtpmap:0 PCMU/8000", NULL },
	{ KEEP, "a=rtpmap:8 PCMA/8000", NULL },
	{ DROP, "a=candidate:7e3a2c1b9d8f4e5a6b7c8d9e0f1a2b3c 1 udp 2130706431 192.168.1.23 45678 typ host", NULL },
	{ DROP, "a=candidate:0f9e8d7c6b5a49382716a5b4c3d2e1f0 1 udp 2130706431 fe80::a00:27ff:fe4e:66a1 51234 typ host", NULL },
	{ DROP, "a=candidate:5c4b3a2918f7e6d5c4b3a291807f6e5d 1 udp 1694498815 203.0.113.50 45678 typ srflx raddr 192.168.1.23 rport 45678", NULL },
	{ EDIT, "a=candidate:c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6 1 udp 16777215 127.0.0.1 50000 typ relay raddr 203.0.113.50 rport 45679",
	    "a=candidate:c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6 1 udp 16777215 127.0.0.1 50000 typ relay raddr 0.0.0.0 rport 0" },
	{ KEEP, "a=end-of-candidates", NULL },
	{ KEEP, "a=ice-ufrag:Yh3k", NULL },
	{ KEEP, "a=ice-pwd:Qe7XnB2k9sLw4Vr1TzPm8c", NULL },
	{ KEEP, "a=fingerprint:sha-256 2E:4F:91:0A:C3:5B:7D:E8:16:A2:9F:44:B0:6C:D1:38:E7:52:0B:9A:63:FC:28:D5:71:0E:AB:C9:34:86:5F:12", NULL },
	{ KEEP, "a=setup:actpass", NULL },
	{ EDIT, "m=application 45678 UDP/DTLS/SCTP webrtc-datachannel",
	    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" },
	{ EDIT, "c=IN IP4 192.168.1.23", "c=IN IP4 0.0.0.0" },
	{ KEEP, "a=mid:1", NULL },
	{ KEEP, "a=sctp-port:5000", NULL },
	{ KEEP, "a=max-message-size:65536", NULL },
	{ DROP, "a=candidate:7e3a2c1b9d8f4e5a6b7c8d9e0f1a2b3c 1 udp 2130706431 192.168.1.23 45678 typ host", NULL },
	{ DROP, "a=candidate:5c4b3a2918f7e6d5c4b3a291807f6e5d 1 udp 1694498815 203.0.113.50 45678 typ srflx raddr 192.168.1.23 rport 45678", NULL },
	{ EDIT, "a=candidate:c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6 1 udp 16777215 127.0.0.1 50000 typ relay raddr 203.0.113.50 rport 45679",
	    "a=candidate:c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6 1 udp 16777215 127.0.0.1 50000 typ relay raddr 0.0.0.0 rport 0" },
	{ KEEP, "a=end-of-candidates", NULL },
	{ KEEP, "a=ice-ufrag:Yh3k", NULL },
	{ KEEP, "a=ice-pwd:Qe7XnB2k9sLw4Vr1TzPm8c", NULL },
	{ KEEP, "a=fingerprint:sha-256 2E:4F:91:0A:C3:5B:7D:E8:16:A2:9F:44:B0:6C:D1:38:E7:52:0B:9A:63:FC:28:D5:71:0E:AB:C9:34:86:5F:12", NULL },
	{ KEEP, "a=setup:actpass", NULL },
};

/* Every address-bearing line type outside candidates, in both families,
 * plus lines that must pass through although they look close. */
static const struct tline rewrites[] = {
	{ KEEP, "v=0", NULL },
	{ EDIT, "o=jdoe 2890844526 2890842807 IN IP6 2001:db8::7",
	    "o=jdoe 2890844526 2890842807 IN IP6 ::" },
	{ KEEP, "s= ", NULL },
	{ EDIT, "c=IN IP6 2001:db8::7", "c=IN IP6 ::" },
	{ EDIT, "c=in ip4 192.0.2.10/127", "c=IN IP4 0.0.0.0" },
	{ KEEP, "t=0 0", NULL },
	{ KEEP, "a=ice-options:trickle ice2", NULL },
	{ KEEP, "a=ice-lite", NULL },
	{ EDIT, "m=audio 50000/2 RTP/AVP 0", "m=audio 9/2 RTP/AVP 0" },
	{ EDIT, "a=rtcp:50001 IN IP4 192.168.1.23", "a=rtcp:9 IN IP4 0.0.0.0" },
	{ EDIT, "a=rtcp:50001 IN IP6 fe80::1", "a=rtcp:9 IN IP6 ::" },
	{ EDIT, "a=rtcp:50001", "a=rtcp:9" },
	{ EDIT, "a=RTCP:50001", "a=rtcp:9" },
	{ KEEP, "a=rtcp-mux", NULL },
	{ KEEP, "a=rtcp-mux-only", NULL },
	{ KEEP, "a=rtcp-fb:0 nack", NULL },
	{ DROP, "a=remote-candidates:1 192.0.2.3 45664 2 192.0.2.3 45665", NULL },
	{ DROP, "a=remote-candidates", NULL },
	{ KEEP, "a=end-of-candidates", NULL },
	{ KEEP, "m=video 0 RTP/AVP 31", NULL },
	{ KEEP, "m=video 00 RTP/AVP 31", NULL },
	{ EDIT, "m=video 1 RTP/AVP 31", "m=video 9 RTP/AVP 31" },
	{ EDIT, "c=IN IP4 198.51.100.1", "c=IN IP4 0.0.0.0" },
	{ KEEP, "a=inactive", NULL },
	{ KEEP, "i=not an address: c=IN IP4 192.0.2.1", NULL },
	{ KEEP, "b=AS:30", NULL },
};

/* Spellings that some parser reads as a candidate. Only the exact one
 * survives; the rest are removed whatever their value. libwebrtc's
 * HasAttribute() accepts the name followed by a space and GetValue() then
 * takes the text after the first colon, so line 3 is a host candidate to
 * Chrome. */
static const struct tline spellings[] = {
	{ KEEP, "v=0", NULL },
	{ KEEP, "a=candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay", NULL },
	{ DROP, "a=candidate x candidate:1 1 udp 2122260223 192.168.1.23 54321 typ host", NULL },
	{ DROP, "a=candidate candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay", NULL },
	{ DROP, "a=Candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay", NULL },
	{ DROP, "a=CANDIDATE:1 1 udp 2122260223 192.168.1.23 54321 typ host", NULL },
	{ DROP, "a= candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay", NULL },
	{ DROP, "a=\tcandidate:1 1 udp 41885439 127.0.0.1 50000 typ relay", NULL },
	{ DROP, "a=:candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay", NULL },
	{ DROP, "a=candidates:1 1 udp 41885439 127.0.0.1 50000 typ relay", NULL },
	{ DROP, "a=candidate", NULL },
	{ DROP, "a=candidate:", NULL },
	{ DROP, "a=candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay\tx", NULL },
	{ DROP, "a=Remote-Candidates:1 192.0.2.3 45664", NULL },
	{ KEEP, "x=candidate:1 1 udp 2122260223 192.168.1.23 54321 typ host", NULL },
	{ KEEP, "a=end-of-candidates", NULL },
};

static size_t tline_len(const struct tline *t, bool output)
{
	if (!output)
		return strlen(t->in);
	if (t->want == DROP)
		return 0;
	return strlen(t->want == EDIT ? t->out : t->in);
}

/* Joins a table into an SDP: the input with the given line ends, or the
 * expected output (CRLF, removed lines left out, edits applied). The
 * buffer is exactly *len bytes plus a NUL the filter never sees unless
 * it reads past len, which ASan would not catch; inputs are copied to an
 * exact-size buffer by run_filter(). */
static char *sdp_build(const struct tline *t, size_t n, enum eol eol,
    bool output, size_t *len)
{
	size_t i, total = 0, at = 0;
	char *buf;

	for (i = 0; i < n; i++)
		if (!output || t[i].want != DROP)
			total += tline_len(&t[i], output) + 2;
	if ((buf = malloc(total + 1)) == NULL)
		abort();
	for (i = 0; i < n; i++) {
		const char *s;
		bool crlf = output || eol == EOL_CRLF ||
		    (eol == EOL_MIXED && i % 3 != 1);

		if (output && t[i].want == DROP)
			continue;
		s = output && t[i].want == EDIT ? t[i].out : t[i].in;
		memcpy(buf + at, s, strlen(s));
		at += strlen(s);
		if (crlf)
			buf[at++] = '\r';
		buf[at++] = '\n';
	}
	buf[at] = '\0';
	*len = at;
	return buf;
}

/* The filter on an exact-size heap copy of in[0..len). */
static int run_filter(const char *in, size_t len, sdp_relay_check_fn check,
    void *ctx, char **out, size_t *out_len, struct sdp_filter_stats *st)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, in, len);
	rc = sdp_filter(copy, len, check, ctx, out, out_len, st);
	free(copy);
	return rc;
}

/* sdp_media_kinds() on an exact-size heap copy of in[0..len). */
static int run_kinds(const char *in, size_t len, unsigned *kinds)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	if (copy == NULL)
		abort();
	if (len)
		memcpy(copy, in, len);
	rc = sdp_media_kinds(copy, len, kinds);
	free(copy);
	return rc;
}

/* An attribute line that any parser might read as a candidate: "a=",
 * then spaces, tabs or colons, then "candidate" in any case. */
static bool looks_like_candidate(const char *line, size_t n)
{
	size_t skip = 2;

	if (n < 2 || line[0] != 'a' || line[1] != '=')
		return false;
	while (skip < n &&
	    (line[skip] == ' ' || line[skip] == '\t' || line[skip] == ':'))
		skip++;
	return n - skip >= 9 && strncasecmp(line + skip, "candidate", 9) == 0;
}

/* Reports the first differing line, so a failure says which rule broke. */
static void show_diff(const char *got, size_t got_len, const char *want)
{
	size_t i = 0, line = 1, start = 0;

	while (i < got_len && want[i] != '\0' && got[i] == want[i]) {
		if (got[i] == '\n') {
			line++;
			start = i + 1;
		}
		i++;
	}
	fprintf(stderr, "  output differs at line %zu:\n  got:  %.*s\n  want: %.*s\n",
	    line, (int)strcspn(got + start, "\r\n"), got + start,
	    (int)strcspn(want + start, "\r\n"), want + start);
}

/* Filters the table with each kind of line end and compares the whole
 * output, and the stats, with what the table says. */
static void check_table(const char *name, const struct tline *t, size_t n,
    unsigned want_kept, unsigned want_removed)
{
	static const enum eol eols[] = { EOL_CRLF, EOL_LF, EOL_MIXED };
	struct sdp_filter_stats st;
	unsigned kept = 0, removed = 0;
	size_t i, in_len, want_len, out_len;
	char *in, *want, *out;
	int rc;

	/* The table's own count must agree with the numbers written down. */
	for (i = 0; i < n; i++) {
		if (!looks_like_candidate(t[i].in, strlen(t[i].in)))
			continue;
		/* A kept relay candidate is rewritten (raddr/rport), so it
		 * counts as kept whether the table says KEEP or EDIT. */
		if (t[i].want == KEEP || t[i].want == EDIT)
			kept++;
		else if (t[i].want == DROP)
			removed++;
	}
	CHECK_EQ_INT(kept, want_kept);
	CHECK_EQ_INT(removed, want_removed);

	want = sdp_build(t, n, EOL_CRLF, true, &want_len);
	for (i = 0; i < sizeof(eols) / sizeof(eols[0]); i++) {
		in = sdp_build(t, n, eols[i], false, &in_len);
		out = NULL;
		rc = run_filter(in, in_len, check_relay, NULL, &out, &out_len, &st);
		CHECK_EQ_INT(rc, SDP_OK);
		if (rc == SDP_OK) {
			CHECK_EQ_INT(out_len, want_len);
			CHECK(strlen(out) == out_len);
			CHECK(out_len == want_len && memcmp(out, want, want_len) == 0);
			if (out_len != want_len || memcmp(out, want, want_len) != 0) {
				fprintf(stderr, "  %s, line ends %zu\n", name, i);
				show_diff(out, out_len, want);
			}
			CHECK_EQ_INT(st.kept, want_kept);
			CHECK_EQ_INT(st.removed, want_removed);
		}
		free(out);
		free(in);
	}
	free(want);
}

static void test_offers(void)
{
	check_table("chrome", chrome_offer,
	    sizeof(chrome_offer) / sizeof(chrome_offer[0]), 4, 11);
	check_table("aiortc", aiortc_offer,
	    sizeof(aiortc_offer) / sizeof(aiortc_offer[0]), 2, 5);
	check_table("rewrites", rewrites,
	    sizeof(rewrites) / sizeof(rewrites[0]), 0, 0);
	check_table("spellings", spellings,
	    sizeof(spellings) / sizeof(spellings[0]), 1, 11);
}

/* The check sees the relay's family, address and port in network order,
 * and is not consulted for candidates that fail before it. */
static void test_check_arguments(void)
{
	static const char v4[] = "v=0\r\n"
	    "a=candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay\r\n";
	static const char v6[] = "v=0\r\n"
	    "a=candidate:1 1 UDP 41885439 2001:db8::10 50001 typ relay\r\n";
	static const char host[] = "v=0\r\n"
	    "a=candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host\r\n";
	struct relay_ctx rc = { 0 };
	struct sdp_filter_stats st;
	char *out = NULL;
	size_t out_len;

	CHECK_EQ_INT(run_filter(v4, strlen(v4), check_relay, &rc, &out, &out_len, &st), SDP_OK);
	CHECK_EQ_INT(rc.calls, 1);
	CHECK_EQ_INT(rc.family, AF_INET);
	CHECK_EQ_INT(rc.port, 50000);
	CHECK(strcmp(rc.addr, "127.0.0.1") == 0);
	CHECK_EQ_INT(st.kept, 1);
	CHECK(out != NULL && strcmp(out, v4) == 0);
	free(out);

	/* IPv6 relay: removed unless the check knows the address. */
	memset(&rc, 0, sizeof(rc));
	CHECK_EQ_INT(run_filter(v6, strlen(v6), check_relay, &rc, &out, &out_len, &st), SDP_OK);
	CHECK_EQ_INT(rc.family, AF_INET6);
	CHECK_EQ_INT(rc.port, 50001);
	CHECK(strcmp(rc.addr, "2001:db8::10") == 0);
	CHECK_EQ_INT(st.kept, 0);
	CHECK_EQ_INT(st.removed, 1);
	CHECK(out != NULL && strcmp(out, "v=0\r\n") == 0);
	free(out);
	rc.allow_v6 = true;
	CHECK_EQ_INT(run_filter(v6, strlen(v6), check_relay, &rc, &out, &out_len, &st), SDP_OK);
	CHECK_EQ_INT(st.kept, 1);
	CHECK(out != NULL && strcmp(out, v6) == 0);
	free(out);

	/* Port 0 and a host candidate fail before the check is asked. */
	memset(&rc, 0, sizeof(rc));
	CHECK(!sdp_candidate_allowed("candidate:1 1 udp 41885439 127.0.0.1 0 typ relay",
	    strlen("candidate:1 1 udp 41885439 127.0.0.1 0 typ relay"), check_relay, &rc));
	CHECK_EQ_INT(rc.calls, 0);
	CHECK_EQ_INT(run_filter(host, strlen(host), check_relay, &rc, &out, &out_len, &st), SDP_OK);
	CHECK_EQ_INT(rc.calls, 0);
	CHECK_EQ_INT(st.removed, 1);
	free(out);

	/* No check: nothing is a Gatehouse relay. NULL out_len and stats are
	 * accepted. */
	CHECK_EQ_INT(run_filter(v4, strlen(v4), NULL, NULL, &out, NULL, NULL), SDP_OK);
	CHECK(out != NULL && strcmp(out, "v=0\r\n") == 0);
	free(out);
	CHECK(!sdp_candidate_allowed("candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay",
	    strlen("candidate:1 1 udp 41885439 127.0.0.1 50000 typ relay"), NULL, NULL));

	/* No out: refused, not a crash. */
	CHECK_EQ_INT(sdp_filter(v4, strlen(v4), check_relay, NULL, NULL, NULL, NULL), SDP_EINVAL);
}

/* Refused framing and refused address-bearing lines. Each is a C string;
 * the NUL case is built separately. */
static void test_invalid(void)
{
	static const char *const bad[] = {
		"",
		"\r\n",
		"v=1\r\n",
		"V=0\r\n",
		"v=0 \r\n",
		" v=0\r\n",
		"v=00\r\n",
		"o=- 1 1 IN IP4 0.0.0.0\r\nv=0\r\n",
		"\r\nv=0\r\n",
		"v=0",                          /* unterminated */
		"v=0\r\ns=-",                   /* unterminated last line */
		"v=0\r",
		"v=0\r\ns=-\r",
		"v=0\r\ns=a\rb\r\n",            /* lone CR inside */
		"v=0\r\ns=-\r\r\n",
		"v=0\rs=-\r\n",
		"v=0\r\n\r\n",                  /* empty line */
		"v=0\n\n",
		"v=0\r\ns\r\n",                 /* no '=' */
		"v=0\r\nab=c\r\n",
		"v=0\r\n=x\r\n",
		"v=0\r\nA=x\r\n",               /* type not a-z */
		"v=0\r\n1=x\r\n",
		"v=0\r\na\r\n",
		"v=0\r\nc=IN IP4\r\n",
		"v=0\r\nc=IN IP4 \r\n",
		"v=0\r\nc=IN IPX 192.0.2.1\r\n",
		"v=0\r\nc=ATM IP4 192.0.2.1\r\n",
		"v=0\r\nc=IN  IP4 192.0.2.1\r\n",
		"v=0\r\nc=IN IP4 192.0.2.1 x\r\n",
		"v=0\r\nc=\r\n",
		"v=0\r\no=- 1 1 IN IP4\r\n",
		"v=0\r\no=- 1 IN IP4 192.0.2.1\r\n",
		"v=0\r\no=- 1 1 IN IP5 192.0.2.1\r\n",
		"v=0\r\nm=audio\r\n",
		"v=0\r\nm=audio 5000\r\n",
		"v=0\r\nm=audio 5000 \r\n",
		"v=0\r\nm=audio x RTP/AVP 0\r\n",
		"v=0\r\nm=audio 65536 RTP/AVP 0\r\n",
		"v=0\r\nm=audio 123456 RTP/AVP 0\r\n",
		"v=0\r\nm=audio -1 RTP/AVP 0\r\n",
		"v=0\r\nm=audio 5000/ RTP/AVP 0\r\n",
		"v=0\r\nm=audio /2 RTP/AVP 0\r\n",
		"v=0\r\na=rtcp\r\n",
		"v=0\r\na=rtcp:\r\n",
		"v=0\r\na=rtcp:x\r\n",
		"v=0\r\na=rtcp:70000\r\n",
		"v=0\r\na=rtcp:5000 IN IP4\r\n",
		"v=0\r\na=rtcp:5000 IN IP4 192.0.2.1 x\r\n",
		"v=0\r\na=rtcp 5000 IN IP4 192.0.2.1\r\n",
	};
	static const char with_nul[] = "v=0\r\ns=a\0b\r\n";
	char *out;
	size_t i, out_len;
	struct sdp_filter_stats st;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		out = (char *)1;
		out_len = 99;
		st.kept = st.removed = 7;
		CHECK_EQ_INT(run_filter(bad[i], strlen(bad[i]), check_relay, NULL,
		    &out, &out_len, &st), SDP_EINVAL);
		CHECK(out == NULL);
		CHECK_EQ_INT(out_len, 0);
		CHECK_EQ_INT(st.kept + st.removed, 0);
		if (out != NULL && out != (char *)1)
			free(out);
	}
	CHECK_EQ_INT(run_filter(with_nul, sizeof(with_nul) - 1, check_relay, NULL,
	    &out, &out_len, NULL), SDP_EINVAL);
	CHECK(out == NULL);
	free(out);
	CHECK_EQ_INT(sdp_filter(NULL, 0, check_relay, NULL, &out, &out_len, NULL),
	    SDP_EINVAL);
}

/* SDP_MAX_LEN bytes and SDP_MAX_LINES lines are accepted; one more of
 * either is refused. */
static void test_limits(void)
{
	char *buf, *out;
	size_t i, len, out_len;

	/* Exactly SDP_MAX_LEN: "v=0\n" then 100-byte "a=xxx...\n" lines and
	 * one shorter last line. */
	if ((buf = malloc(SDP_MAX_LEN + 1)) == NULL)
		abort();
	memcpy(buf, "v=0\n", 4);
	len = 4;
	while (len < SDP_MAX_LEN) {
		size_t n = SDP_MAX_LEN - len < 100 ? SDP_MAX_LEN - len : 100;

		buf[len] = 'a';
		buf[len + 1] = '=';
		memset(buf + len + 2, 'x', n - 3);
		buf[len + n - 1] = '\n';
		len += n;
	}
	CHECK_EQ_INT(len, SDP_MAX_LEN);
	CHECK_EQ_INT(run_filter(buf, len, check_relay, NULL, &out, &out_len, NULL), SDP_OK);
	free(out);
	/* One more byte: the last line gets one more 'x'. */
	memmove(buf + len, buf + len - 1, 1);
	buf[len - 1] = 'x';
	CHECK_EQ_INT(run_filter(buf, len + 1, check_relay, NULL, &out, &out_len, NULL),
	    SDP_EINVAL);
	CHECK(out == NULL);
	free(out);
	free(buf);

	/* Exactly SDP_MAX_LINES lines of "a=x\n", then one more. */
	if ((buf = malloc((SDP_MAX_LINES + 1) * 4)) == NULL)
		abort();
	memcpy(buf, "v=0\n", 4);
	for (i = 1; i <= SDP_MAX_LINES; i++)
		memcpy(buf + i * 4, "a=x\n", 4);
	CHECK_EQ_INT(run_filter(buf, SDP_MAX_LINES * 4, check_relay, NULL, &out,
	    &out_len, NULL), SDP_OK);
	CHECK_EQ_INT(out_len, SDP_MAX_LINES * 5);
	free(out);
	CHECK_EQ_INT(run_filter(buf, (SDP_MAX_LINES + 1) * 4, check_relay, NULL,
	    &out, &out_len, NULL), SDP_EINVAL);
	CHECK(out == NULL);
	free(out);
	free(buf);
}

/* Every prefix of a valid SDP is accepted exactly when it ends right
 * after a line end, and refused otherwise; never a crash. */
static void check_prefixes(const struct tline *t, size_t n, enum eol eol)
{
	struct sdp_filter_stats st;
	size_t len, cut, out_len;
	char *in, *out;
	int rc;
	unsigned wrong = 0, kinds;

	in = sdp_build(t, n, eol, false, &len);
	for (cut = 0; cut <= len; cut++) {
		bool want_ok = cut >= 4 && in[cut - 1] == '\n';

		out = NULL;
		rc = run_filter(in, cut, check_relay, NULL, &out, &out_len, &st);
		if (rc != (want_ok ? SDP_OK : SDP_EINVAL)) {
			if (wrong++ == 0)
				fprintf(stderr, "  prefix of %zu bytes: rc %d\n", cut, rc);
		}
		CHECK((rc == SDP_OK) == (out != NULL));
		/* sdp_media_kinds() accepts the same prefixes, with the
		 * filter's kinds. */
		if (run_kinds(in, cut, &kinds) != rc || (rc == SDP_OK && kinds != st.media)) {
			if (wrong++ == 0)
				fprintf(stderr, "  prefix of %zu bytes: kinds disagree\n", cut);
		}
		free(out);
	}
	CHECK_EQ_INT(wrong, 0);
	free(in);
}

static void test_prefixes(void)
{
	check_prefixes(chrome_offer, sizeof(chrome_offer) / sizeof(chrome_offer[0]), EOL_CRLF);
	check_prefixes(chrome_offer, sizeof(chrome_offer) / sizeof(chrome_offer[0]), EOL_MIXED);
	check_prefixes(aiortc_offer, sizeof(aiortc_offer) / sizeof(aiortc_offer[0]), EOL_LF);
}

/* ---- kinds of media sections ---- */

/* The whole offers: every m= section's kind, from the filter's stats and
 * from sdp_media_kinds(). */
static void check_table_kinds(const char *name, const struct tline *t, size_t n,
    unsigned want)
{
	struct sdp_filter_stats st;
	size_t len, out_len;
	unsigned kinds = 0xff;
	char *in, *out = NULL;

	in = sdp_build(t, n, EOL_MIXED, false, &len);
	CHECK_EQ_INT(run_filter(in, len, check_relay, NULL, &out, &out_len, &st), SDP_OK);
	CHECK_EQ_INT(st.media, want);
	CHECK_EQ_INT(run_kinds(in, len, &kinds), SDP_OK);
	CHECK_EQ_INT(kinds, want);
	if (st.media != want || kinds != want)
		fprintf(stderr, "  %s: filter %u, kinds %u, want %u\n", name, st.media, kinds, want);
	free(out);
	free(in);
}

struct kind_case {
	int rc;
	unsigned kinds;
	const char *m_line;   /* after "v=0" and a session part */
};

static const struct kind_case kind_cases[] = {
	{ SDP_OK, SDP_MEDIA_AUDIO, "m=audio 9 UDP/TLS/RTP/SAVPF 111" },
	{ SDP_OK, SDP_MEDIA_VIDEO, "m=video 9 UDP/TLS/RTP/SAVPF 96" },
	{ SDP_OK, SDP_MEDIA_APPLICATION, "m=application 9 UDP/DTLS/SCTP webrtc-datachannel" },
	/* Port 0: rejected, or bundle-only (RFC 8843); counted either way. */
	{ SDP_OK, SDP_MEDIA_VIDEO, "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=bundle-only" },
	{ SDP_OK, SDP_MEDIA_APPLICATION, "m=application 0 UDP/DTLS/SCTP webrtc-datachannel" },
	{ SDP_OK, SDP_MEDIA_AUDIO, "m=audio 50000/2 RTP/AVP 0" },
	/* Other types, and spellings of ours that a browser does not know:
	 * never read as one of ours. */
	{ SDP_OK, SDP_MEDIA_OTHER, "m=text 9 UDP/TLS/RTP/SAVPF 98" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=message 9 TCP/MSRP *" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=image 9 udptl t38" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=Video 9 UDP/TLS/RTP/SAVPF 96" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=AUDIO 9 UDP/TLS/RTP/SAVPF 111" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=video2 9 UDP/TLS/RTP/SAVPF 96" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=audi 9 UDP/TLS/RTP/SAVPF 111" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=data 9 UDP/DTLS/SCTP webrtc-datachannel" },
	{ SDP_OK, SDP_MEDIA_OTHER, "m=video\tx 9 UDP/TLS/RTP/SAVPF 96" },
	{ SDP_OK, SDP_MEDIA_AUDIO | SDP_MEDIA_VIDEO | SDP_MEDIA_OTHER,
	    "m=audio 9 RTP/AVP 0\r\nm=video 0 RTP/AVP 96\r\nm=text 0 RTP/AVP 98" },
	/* Malformed m= lines refuse the whole SDP. */
	{ SDP_EINVAL, 0, "m=video" },
	{ SDP_EINVAL, 0, "m=video 9" },
	{ SDP_EINVAL, 0, "m=video 9 " },
	{ SDP_EINVAL, 0, "m=video  9 RTP/AVP 96" },
	{ SDP_EINVAL, 0, "m= video 9 RTP/AVP 96" },
	{ SDP_EINVAL, 0, "m=video x RTP/AVP 96" },
	{ SDP_EINVAL, 0, "m=video 65536 RTP/AVP 96" },
	{ SDP_EINVAL, 0, "m=video 9/ RTP/AVP 96" },
	{ SDP_EINVAL, 0, "m=video\t9 RTP/AVP 96" },
	{ SDP_EINVAL, 0, "m=audio 9 RTP/AVP 0\r\nm=video" },
	/* Not m= lines: the framing refuses "M=" and "m =", and the letter
	 * alone is not a line type we read as media. */
	{ SDP_EINVAL, 0, "M=video 9 RTP/AVP 96" },
	{ SDP_EINVAL, 0, "m =video 9 RTP/AVP 96" },
	{ SDP_OK, 0, "a=m=video 9 RTP/AVP 96" },
	{ SDP_OK, 0, "i=m=video 9 RTP/AVP 96" },
};

static void test_media_kinds(void)
{
	struct sdp_filter_stats st;
	char buf[512], *out;
	size_t i, len, out_len;
	unsigned kinds;
	int rc;

	check_table_kinds("chrome", chrome_offer, sizeof(chrome_offer) / sizeof(chrome_offer[0]),
	    SDP_MEDIA_AUDIO | SDP_MEDIA_VIDEO | SDP_MEDIA_APPLICATION);
	check_table_kinds("aiortc", aiortc_offer, sizeof(aiortc_offer) / sizeof(aiortc_offer[0]),
	    SDP_MEDIA_AUDIO | SDP_MEDIA_APPLICATION);
	check_table_kinds("rewrites", rewrites, sizeof(rewrites) / sizeof(rewrites[0]),
	    SDP_MEDIA_AUDIO | SDP_MEDIA_VIDEO);
	check_table_kinds("spellings", spellings, sizeof(spellings) / sizeof(spellings[0]), 0);

	for (i = 0; i < sizeof(kind_cases) / sizeof(kind_cases[0]); i++) {
		const struct kind_case *k = &kind_cases[i];

		len = (size_t)snprintf(buf, sizeof(buf),
		    "v=0\r\no=- 1 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n%s\r\nc=IN IP4 0.0.0.0\r\n",
		    k->m_line);
		kinds = 0xff;
		rc = run_kinds(buf, len, &kinds);
		CHECK_EQ_INT(rc, k->rc);
		CHECK_EQ_INT(kinds, k->kinds); /* 0 on failure */
		out = NULL;
		CHECK_EQ_INT(run_filter(buf, len, check_relay, NULL, &out, &out_len, &st), k->rc);
		if (k->rc == SDP_OK)
			CHECK_EQ_INT(st.media, k->kinds);
		if (rc != k->rc || kinds != k->kinds)
			fprintf(stderr, "  kind case %zu (%s): rc %d, kinds %u\n", i, k->m_line,
			    rc, kinds);
		free(out);
	}

	/* Arguments. */
	CHECK_EQ_INT(sdp_media_kinds(NULL, 4, &kinds), SDP_EINVAL);
	CHECK_EQ_INT(kinds, 0);
	CHECK_EQ_INT(sdp_media_kinds("v=0\n", 4, NULL), SDP_EINVAL);
	CHECK_EQ_INT(sdp_media_kinds("v=0\n", 4, &kinds), SDP_OK);
	CHECK_EQ_INT(kinds, 0);
}

/* ---- random mutations ---- */

static uint32_t rng_state = 0x9e3779b9u;

static uint32_t rng(void)
{
	/* xorshift32: deterministic, so a failure replays. */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Every line of an accepted output that any parser might read as a
 * candidate is an exact "a=candidate:" line that the trickle check also
 * accepts. */
static bool output_candidates_ok(const char *out, size_t len)
{
	size_t at = 0;

	while (at < len) {
		const char *line = out + at;
		const char *eol = memchr(line, '\n', len - at);
		size_t n;

		if (eol == NULL || eol == line || eol[-1] != '\r')
			return false;
		n = (size_t)(eol - line) - 1;
		if (looks_like_candidate(line, n)) {
			if (strncmp(line, "a=candidate:", 12) != 0 ||
			    !sdp_candidate_allowed(line, n, check_relay, NULL))
				return false;
		}
		at += n + 2;
	}
	return true;
}

static void mutate_and_check(const struct tline *t, size_t n)
{
	static const char alphabet[] = " \r\n:=.0123456789aAcm\t\0/";
	size_t len, mlen, out_len, out2_len, i, k;
	char *in, *m, *out, *out2;
	struct sdp_filter_stats st, st2;
	unsigned ok = 0, bad = 0, kinds;
	int rc;

	in = sdp_build(t, n, EOL_CRLF, false, &len);
	if ((m = malloc(len)) == NULL)
		abort();
	for (i = 0; i < MUTATION_ROUNDS; i++) {
		memcpy(m, in, len);
		mlen = len;
		for (k = 1 + rng() % 4; k > 0; k--) {
			size_t at = rng() % mlen;

			switch (rng() % 4) {
			case 0:
				m[at] = (char)(rng() & 0xff);
				break;
			case 1:
				m[at] = alphabet[rng() % (sizeof(alphabet) - 1)];
				break;
			case 2: /* delete a byte */
				if (mlen > 1) {
					memmove(m + at, m + at + 1, mlen - at - 1);
					mlen--;
				}
				break;
			default: /* a digit, to bend numbers and addresses */
				m[at] = (char)('0' + rng() % 10);
				break;
			}
		}
		out = NULL;
		rc = run_filter(m, mlen, check_relay, NULL, &out, &out_len, &st);
		if (rc != SDP_OK) {
			CHECK_EQ_INT(rc, SDP_EINVAL);
			CHECK(out == NULL);
			continue;
		}
		ok++;
		/* What the filter accepts, sdp_media_kinds() reads the same. */
		if (run_kinds(m, mlen, &kinds) != SDP_OK || kinds != st.media) {
			if (bad++ == 0)
				fprintf(stderr, "  mutation %zu: kinds %u, filter %u\n", i,
				    kinds, st.media);
		}
		/* Filtering a filtered SDP changes nothing and removes nothing. */
		out2 = NULL;
		rc = run_filter(out, out_len, check_relay, NULL, &out2, &out2_len, &st2);
		if (rc != SDP_OK || out2_len != out_len ||
		    memcmp(out, out2, out_len) != 0 || st2.removed != 0 ||
		    st2.kept != st.kept || st2.media != st.media || strlen(out) != out_len ||
		    !output_candidates_ok(out, out_len)) {
			if (bad++ == 0)
				fprintf(stderr, "  mutation %zu broke an invariant:\n%.*s\n",
				    i, (int)out_len, out);
		}
		free(out2);
		free(out);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK(ok > 0); /* the mutations are not all fatal */
	free(m);
	free(in);
}

static void test_mutations(void)
{
	mutate_and_check(chrome_offer, sizeof(chrome_offer) / sizeof(chrome_offer[0]));
	mutate_and_check(aiortc_offer, sizeof(aiortc_offer) / sizeof(aiortc_offer[0]));
}

/* ---- trickled candidates ---- */

struct cand_case {
	bool want;
	const char *cand;
};

static const struct cand_case cand_cases[] = {
	/* Chromium's trickled relay candidate, with and without "a=". */
	{ true, "candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 0.0.0.0 rport 0 generation 0 ufrag Xq3n network-cost 999" },
	{ true, "a=candidate:1219946431 1 udp 41885439 127.0.0.1 49170 typ relay raddr 0.0.0.0 rport 0 generation 0 ufrag Xq3n network-cost 999" },
	{ true, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "1 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "a=1 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "a=candidate 1 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "a=a=candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:" },
	{ false, "a=end-of-candidates" },
	/* Other types, other relays, names. */
	{ false, "candidate:3442447574 1 udp 2122260223 6b1c1a3e-4f2d-4c7e-9a51-0d3b7e2f9c11.local 54321 typ host generation 0 ufrag Xq3n network-id 1 network-cost 10" },
	{ false, "candidate:1 1 udp 41885439 relay.local 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 localhost 49170 typ relay" },
	{ false, "candidate:1 1 udp 2122260223 127.0.0.1 49170 typ host" },
	{ false, "candidate:1 1 udp 1686052607 127.0.0.1 49170 typ srflx raddr 0.0.0.0 rport 0" },
	{ false, "candidate:1 1 udp 1845501695 127.0.0.1 49170 typ prflx" },
	{ false, "candidate:1 1 udp 41885439 198.51.100.20 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.2 49170 typ relay" },
	/* component-id: 1..256, 1..5 digits. */
	{ false, "candidate:1 0 udp 41885439 127.0.0.1 49170 typ relay" },
	{ true, "candidate:1 256 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 257 udp 41885439 127.0.0.1 49170 typ relay" },
	{ true, "candidate:1 00002 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 000002 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 +1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1x udp 41885439 127.0.0.1 49170 typ relay" },
	/* port: 1..65535, then the check's range. */
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 0 typ relay" },
	{ true, "candidate:1 1 udp 41885439 127.0.0.1 65535 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 65536 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 115535 typ relay" },
	{ true, "candidate:1 1 udp 41885439 127.0.0.1 49152 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49151 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 -49170 typ relay" },
	/* priority: 1..2^31-1 (RFC 8839 §5.1), at most 10 digits. */
	{ false, "candidate:1 1 udp 0 127.0.0.1 49170 typ relay" },
	{ true, "candidate:1 1 udp 1 127.0.0.1 49170 typ relay" },
	{ true, "candidate:1 1 udp 2147483647 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 2147483648 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 4294967296 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 9999999999 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 18446744073750000000 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439x 127.0.0.1 49170 typ relay" },
	/* foundation: 1..32 ice-chars. */
	{ true, "candidate:abcdefghijklmnopqrstuvwxyz+/0123 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:abcdefghijklmnopqrstuvwxyz+/01234 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:a-b 1 udp 41885439 127.0.0.1 49170 typ relay" },
	/* transport: UDP in any case; TCP never. */
	{ true, "candidate:1 1 UDP 41885439 127.0.0.1 49170 typ relay" },
	{ true, "candidate:1 1 Udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 tcp 41885439 127.0.0.1 49170 typ relay tcptype passive" },
	{ false, "candidate:4227802166 1 tcp 1518280447 192.168.1.23 9 typ host tcptype active generation 0" },
	{ false, "candidate:1 1 TCP 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udpx 41885439 127.0.0.1 49170 typ relay" },
	/* "typ" and the type. */
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ " },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 type relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 TYP relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ RELAY" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ relayx" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 raddr 0.0.0.0 typ relay" },
	/* Spaces: exactly one between fields. */
	{ false, "candidate: 1 1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1  1 udp 41885439 127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439  127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ  relay" },
	{ false, " candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay" },
	/* Addresses: literals only, no zones, no octal. */
	{ false, "candidate:1 1 udp 41885439 2001:db8::10 49170 typ relay" }, /* not in this check */
	{ false, "candidate:1 1 udp 41885439 ::ffff:127.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 fe80::1%eth0 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.000.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 0177.0.0.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 2130706433 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.1 49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 [::1] 49170 typ relay" },
	/* Control characters anywhere. */
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay\r\n" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay\n" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1\t49170 typ relay" },
	{ false, "candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay generation\x7f" },
};

static void test_candidates(void)
{
	static const char relay[] = "candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay";
	struct relay_ctx v6 = { .allow_v6 = true };
	char buf[CANDIDATE_MAX_LEN + 2];
	char *heap;
	size_t i, n;

	for (i = 0; i < sizeof(cand_cases) / sizeof(cand_cases[0]); i++) {
		n = strlen(cand_cases[i].cand);
		if ((heap = malloc(n)) == NULL)
			abort();
		memcpy(heap, cand_cases[i].cand, n);
		if (sdp_candidate_allowed(heap, n, check_relay, NULL) != cand_cases[i].want) {
			check_failures++;
			fprintf(stderr, "%s:%d: candidate case %zu: want %d: \"%s\"\n",
			    __FILE__, __LINE__, i, cand_cases[i].want, cand_cases[i].cand);
		}
		check_count++;
		free(heap);
	}

	/* Empty: end-of-candidates, kept. */
	CHECK(sdp_candidate_allowed("", 0, check_relay, NULL));
	CHECK(sdp_candidate_allowed(NULL, 0, check_relay, NULL));
	CHECK(!sdp_candidate_allowed(NULL, 5, check_relay, NULL));

	/* A NUL inside the length is a control character. */
	CHECK(!sdp_candidate_allowed("candidate:1 1 udp 41885439 127.0.0.1 49170 typ relay\0x",
	    strlen(relay) + 2, check_relay, NULL));
	/* Length counts, not the NUL: a shorter len cuts the port. */
	CHECK(!sdp_candidate_allowed(relay, strlen(relay) - 6, check_relay, NULL));

	/* IPv6 relay with a check that knows it. */
	CHECK(sdp_candidate_allowed("candidate:1 1 udp 41885439 2001:db8::10 50000 typ relay",
	    strlen("candidate:1 1 udp 41885439 2001:db8::10 50000 typ relay"),
	    check_relay, &v6));
	CHECK_EQ_INT(v6.family, AF_INET6);
	CHECK_EQ_INT(v6.port, 50000);
	CHECK(!sdp_candidate_allowed("candidate:1 1 udp 41885439 2001:db8::11 50000 typ relay",
	    strlen("candidate:1 1 udp 41885439 2001:db8::11 50000 typ relay"),
	    check_relay, &v6));

	/* CANDIDATE_MAX_LEN is accepted, one more byte is not: pad with an
	 * extension value. */
	n = strlen(relay);
	memcpy(buf, relay, n);
	memcpy(buf + n, " x ", 3);
	memset(buf + n + 3, 'y', sizeof(buf) - n - 3);
	CHECK(sdp_candidate_allowed(buf, CANDIDATE_MAX_LEN, check_relay, NULL));
	CHECK(!sdp_candidate_allowed(buf, CANDIDATE_MAX_LEN + 1, check_relay, NULL));

	/* Every prefix of a relay candidate: only the whole one (and the
	 * empty one) passes; "typ rela" must not. */
	for (i = 0; i <= n; i++) {
		if ((heap = malloc(i ? i : 1)) == NULL)
			abort();
		memcpy(heap, relay, i);
		CHECK(sdp_candidate_allowed(heap, i, check_relay, NULL) == (i == 0 || i == n));
		free(heap);
	}
}

/* A trickled relay candidate is forwarded without the sender's own
 * address in raddr/rport. */
static void test_trickle_rewrite(void)
{
	static const char in[] = "candidate:1219946431 1 udp 41885439 127.0.0.1 49170 "
	    "typ relay raddr 203.0.113.7 rport 54321 generation 0 ufrag Xq3n";
	static const char want[] = "candidate:1219946431 1 udp 41885439 127.0.0.1 49170 "
	    "typ relay raddr 0.0.0.0 rport 0 generation 0 ufrag Xq3n";
	char out[CANDIDATE_MAX_LEN + 64];

	CHECK_EQ_INT(sdp_candidate_filter(in, strlen(in), check_relay, NULL, out,
	    sizeof(out)), 0);
	CHECK(strcmp(out, want) == 0);
	CHECK(strstr(out, "203.0.113.7") == NULL);
	/* An extension without a value is malformed: not forwarded. */
	{
		static const char bare[] = "candidate:1 1 udp 1 127.0.0.1 49170 typ relay raddr";
		CHECK_EQ_INT(sdp_candidate_filter(bare, strlen(bare), check_relay, NULL,
		    out, sizeof(out)), -1);
	}
	/* Too small an output buffer refuses rather than truncates. */
	CHECK_EQ_INT(sdp_candidate_filter(in, strlen(in), check_relay, NULL, out, 20), -1);
	CHECK_EQ_INT(sdp_candidate_filter("", 0, check_relay, NULL, out, sizeof(out)), 0);
	CHECK(out[0] == '\0');
}

int main(void)
{
	test_trickle_rewrite();
	test_offers();
	test_check_arguments();
	test_invalid();
	test_limits();
	test_prefixes();
	test_mutations();
	test_candidates();
	test_media_kinds();
	return check_done("test_sdp_filter");
}
