/* Names of the media classes, for logs and metrics labels; the
 * classifier itself is inline in media_class.h. */
#include "turn/media_class.h"

/* Indexed by enum media_class; keep in the enum's order. */
static const char *const class_names[] = {
	[MEDIA_STUN] = "stun",
	[MEDIA_ZRTP] = "zrtp",
	[MEDIA_DTLS] = "dtls",
	[MEDIA_CHANNEL] = "channel",
	[MEDIA_QUIC] = "quic",
	[MEDIA_RTP] = "rtp",
	[MEDIA_UNKNOWN] = "unknown",
};

const char *
media_class_name(enum media_class c)
{
	/* An enum may hold any int: a corrupted or future value must not
	 * index past the table. */
	if ((unsigned)c >= sizeof(class_names) / sizeof(class_names[0]))
		return "unknown";
	return class_names[c];
}
