/* Forced relay in the SDP: every ICE candidate that is not a relay
 * candidate on one of Gatehouse's relayed transport addresses is removed
 * before an offer, answer or trickled candidate reaches the other side
 * (host, srflx, prflx, another TURN server's relay, mDNS ".local" names,
 * TCP candidates). Addresses that would leak a host IP outside candidate
 * lines (c=, a=rtcp) are replaced by 0.0.0.0 / port 9 (RFC 8839 §4.2.1's
 * "no default destination"). Pure: the caller says which relay addresses
 * are Gatehouse's.
 *
 * The filter also reports which kinds of media section the SDP holds, so
 * that the caller can hold them against what the call may carry; it does
 * not decide that itself (it knows no policy). */
#ifndef GH_SIGNALING_SDP_FILTER_H
#define GH_SIGNALING_SDP_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define SDP_MAX_LEN (48 * 1024)   /* refused above this */
#define SDP_MAX_LINES 2048
#define CANDIDATE_MAX_LEN 512

/* Is this (IP and port) a relayed address of Gatehouse's, and one that
 * may appear in this call (the caller looks it up in the registry)? */
typedef bool (*sdp_relay_check_fn)(void *ctx, const struct sockaddr *addr);

/* The kind of an m= section, from its <media> field (RFC 8866 §5.14),
 * as bits. The names are compared exactly, as libwebrtc does: "Video" or
 * "video2" is not video to a browser, so it is OTHER here too, which a
 * caller refuses rather than guess what some other stack makes of it. */
enum sdp_media_kind {
	SDP_MEDIA_AUDIO = 1u << 0,        /* "audio" */
	SDP_MEDIA_VIDEO = 1u << 1,        /* "video": a camera or a screen share */
	SDP_MEDIA_APPLICATION = 1u << 2,  /* "application": SCTP data channels */
	SDP_MEDIA_OTHER = 1u << 3,        /* "text", "message", anything else */
};

struct sdp_filter_stats {
	unsigned kept;      /* relay candidates kept */
	unsigned removed;   /* candidates removed */
	unsigned media;     /* SDP_MEDIA_* of every m= section, whatever its port */
};

enum sdp_filter_rc {
	SDP_OK = 0,
	SDP_EINVAL = -1,    /* not an SDP we accept (too long, NUL bytes, no v=0 first, bad line) */
	SDP_ENOMEM = -2,
};

/* Filters an SDP (CRLF or LF line ends; output uses CRLF). Returns
 * SDP_OK and *out (owned: free()) NUL-terminated, or an error. */
int sdp_filter(const char *sdp, size_t len, sdp_relay_check_fn check, void *ctx,
    char **out, size_t *out_len, struct sdp_filter_stats *stats);

/* The SDP_MEDIA_* kinds of every m= section of an SDP into *kinds,
 * whatever the section's port: RFC 8843 (BUNDLE, its 'bundle-only'
 * attribute) lets a section with port 0 carry media over the group's
 * transport, so "port 0" does not mean "no media" to the receiver. The framing is checked as by
 * sdp_filter() and every m= line must be well formed. For any input that
 * sdp_filter() accepts, this succeeds with the same kinds as its
 * stats->media; it needs no callback, so it can be fuzzed and tested on
 * its own. Returns SDP_OK, or SDP_EINVAL with *kinds 0. */
int sdp_media_kinds(const char *sdp, size_t len, unsigned *kinds);

/* One trickled candidate's "candidate" string ("candidate:..." with or
 * without a leading "a="): when it is a relay candidate whose address and
 * port pass check, writes the string to forward into out (cap at least
 * len + 64: "candidate:..." with raddr/rport replaced by 0.0.0.0 / :: and
 * 0) and returns 0; otherwise -1. An empty string (end of candidates)
 * gives 0 and an empty out. */
int sdp_candidate_filter(const char *cand, size_t len, sdp_relay_check_fn check,
    void *ctx, char *out, size_t cap);
/* The same decision without the rewritten string. */
bool sdp_candidate_allowed(const char *cand, size_t len, sdp_relay_check_fn check,
    void *ctx);

#endif
