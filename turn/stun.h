/* STUN codec (RFC 8489) with the TURN attributes of RFC 8656.
 *
 * Sans-I/O: parses and builds messages in caller-provided buffers and
 * never touches a socket, a clock or a log. stun_parse() validates the
 * whole message (header, every attribute's bounds, FINGERPRINT) before a
 * getter may run, and keeps pointers into the caller's buffer: a parsed
 * struct stun_msg is valid only while that buffer is. */
#ifndef GH_TURN_STUN_H
#define GH_TURN_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442u
#define STUN_TXID_LEN 12
#define STUN_MAX_ATTRS 40
#define STUN_MAX_UNKNOWN 8
/* Largest message we accept or build: fits a relayed 1500-byte datagram
 * with room for the TURN headers, and bounds every buffer we keep. */
#define STUN_MAX_MESSAGE 4096
#define CHANNELDATA_HEADER_LEN 4
/* Channel numbers. RFC 8656 §12 narrowed them to 0x4000-0x4FFF, but RFC
 * 5766 clients still in use (coturn's own tools among them) pick from
 * 0x4000-0x7FFF, and on the client-to-relay leg nothing else shares the
 * 0x50-0x7F first bytes, so the relay accepts the older range. */
#define TURN_CHANNEL_MIN 0x4000
#define TURN_CHANNEL_MAX 0x7FFF

enum stun_rc {
	STUN_OK = 0,
	STUN_EAGAIN = -1,     /* not enough bytes yet (stream framing) */
	STUN_EMALFORMED = -2, /* looks like STUN but is broken: drop or 400 */
	STUN_ENOTSTUN = -3,   /* not a STUN message at all (not mine) */
	STUN_ENOSPC = -4,     /* output buffer too small */
	STUN_EINTEGRITY = -5, /* integrity check failed */
	STUN_ENOTFOUND = -6,  /* attribute absent */
};

enum stun_method {
	STUN_BINDING = 0x001,
	TURN_ALLOCATE = 0x003,
	TURN_REFRESH = 0x004,
	TURN_SEND = 0x006,
	TURN_DATA = 0x007,
	TURN_CREATE_PERMISSION = 0x008,
	TURN_CHANNEL_BIND = 0x009,
};

enum stun_class {
	STUN_REQUEST = 0x000,
	STUN_INDICATION = 0x010,
	STUN_SUCCESS = 0x100,
	STUN_ERROR = 0x110,
};

enum stun_attr_type {
	STUN_A_MAPPED_ADDRESS = 0x0001,
	STUN_A_USERNAME = 0x0006,
	STUN_A_MESSAGE_INTEGRITY = 0x0008,
	STUN_A_ERROR_CODE = 0x0009,
	STUN_A_UNKNOWN_ATTRIBUTES = 0x000A,
	STUN_A_CHANNEL_NUMBER = 0x000C,
	STUN_A_LIFETIME = 0x000D,
	STUN_A_XOR_PEER_ADDRESS = 0x0012,
	STUN_A_DATA = 0x0013,
	STUN_A_REALM = 0x0014,
	STUN_A_NONCE = 0x0015,
	STUN_A_XOR_RELAYED_ADDRESS = 0x0016,
	STUN_A_REQUESTED_ADDRESS_FAMILY = 0x0017,
	STUN_A_EVEN_PORT = 0x0018,
	STUN_A_REQUESTED_TRANSPORT = 0x0019,
	STUN_A_DONT_FRAGMENT = 0x001A,
	STUN_A_MESSAGE_INTEGRITY_SHA256 = 0x001C,
	STUN_A_PASSWORD_ALGORITHM = 0x001D,
	STUN_A_USERHASH = 0x001E,
	STUN_A_XOR_MAPPED_ADDRESS = 0x0020,
	STUN_A_RESERVATION_TOKEN = 0x0022,
	STUN_A_PRIORITY = 0x0024,
	STUN_A_USE_CANDIDATE = 0x0025,
	STUN_A_PADDING = 0x0026,
	STUN_A_RESPONSE_PORT = 0x0027,
	STUN_A_CONNECTION_ID = 0x002A,
	STUN_A_ADDITIONAL_ADDRESS_FAMILY = 0x8000,
	STUN_A_ADDRESS_ERROR_CODE = 0x8001,
	STUN_A_PASSWORD_ALGORITHMS = 0x8002,
	STUN_A_ALTERNATE_DOMAIN = 0x8003,
	STUN_A_ICMP = 0x8004,
	STUN_A_SOFTWARE = 0x8022,
	STUN_A_ALTERNATE_SERVER = 0x8023,
	STUN_A_TRANSACTION_TRANSMIT_COUNTER = 0x8025,
	STUN_A_CACHE_TIMEOUT = 0x8027,
	STUN_A_FINGERPRINT = 0x8028,
	STUN_A_ICE_CONTROLLED = 0x8029,
	STUN_A_ICE_CONTROLLING = 0x802A,
	STUN_A_RESPONSE_ORIGIN = 0x802B,
	STUN_A_OTHER_ADDRESS = 0x802C,
};

/* RFC 8489 §18.5 password algorithm numbers. */
enum stun_password_alg {
	STUN_PWALG_MD5 = 0x0001,
	STUN_PWALG_SHA256 = 0x0002,
};

struct stun_attr {
	uint16_t type;
	uint16_t len;          /* value length, without padding */
	const uint8_t *value;  /* borrowed: points into the parsed buffer */
	size_t offset;         /* offset of the attribute header in the message */
};

struct stun_msg {
	const uint8_t *buf;    /* borrowed: the parsed message */
	size_t len;            /* whole message, header included */
	uint16_t method;       /* enum stun_method value */
	uint16_t cls;          /* enum stun_class value */
	uint8_t txid[STUN_TXID_LEN];
	size_t nattrs;         /* attributes kept (see stun_parse) */
	struct stun_attr attrs[STUN_MAX_ATTRS];
	int mi_idx;            /* index in attrs of MESSAGE-INTEGRITY, or -1 */
	int mi256_idx;         /* index of MESSAGE-INTEGRITY-SHA256, or -1 */
	int fp_idx;            /* index of FINGERPRINT, or -1 */
	size_t nunknown;       /* unknown comprehension-required types seen */
	uint16_t unknown[STUN_MAX_UNKNOWN];
};

/* Classifies the first bytes of a datagram or stream per RFC 7983 / RFC
 * 8656 §12: returns 1 for STUN (first byte 0-3; 4-63, which also have the
 * top two bits 00, are ZRTP and DTLS), 2 for ChannelData (first byte
 * 64-127, channels TURN_CHANNEL_MIN-MAX), 0 for anything else or fewer than 1
 * byte. */
int stun_demux(const uint8_t *buf, size_t len);

/* Stream framing (TURN over TCP/TLS, RFC 8656 §12.5): given the bytes
 * received so far, sets *frame_len to the length of the first complete
 * STUN message or ChannelData frame (ChannelData padded to 4 bytes).
 * Returns STUN_OK, STUN_EAGAIN when more bytes are needed, or
 * STUN_EMALFORMED / STUN_ENOTSTUN when the stream cannot be framed (the
 * caller closes the connection). Frames over STUN_MAX_MESSAGE are
 * STUN_EMALFORMED. */
int stun_frame_len(const uint8_t *buf, size_t len, size_t *frame_len);

/* Validates a whole STUN message and fills *m. Checks: top bits, magic
 * cookie, length field (multiple of 4, equal to len - 20), every attribute
 * fits, FINGERPRINT (if present) is the last attribute and matches. Keeps
 * the first occurrence of each attribute type; attributes after
 * MESSAGE-INTEGRITY other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT are
 * ignored (RFC 8489 §14.5); attributes after MESSAGE-INTEGRITY-SHA256 other
 * than FINGERPRINT likewise (§14.6). Unknown comprehension-required types
 * (< 0x8000) are listed in m->unknown. More than STUN_MAX_ATTRS attributes
 * is STUN_EMALFORMED. Returns STUN_OK, STUN_ENOTSTUN or STUN_EMALFORMED. */
int stun_parse(const uint8_t *buf, size_t len, struct stun_msg *m);

/* Returns the first attribute of this type, or NULL. */
const struct stun_attr *stun_attr_find(const struct stun_msg *m, uint16_t type);

/* Decodes an address attribute (MAPPED-ADDRESS style, or the XOR-*
 * variants when xored is true) into *out (sockaddr_in or sockaddr_in6).
 * Returns STUN_OK, STUN_EMALFORMED (bad family or length). */
int stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a,
    bool xored, struct sockaddr_storage *out);

/* A 4-byte attribute as a host-order integer; STUN_EMALFORMED on a
 * length other than 4. */
int stun_attr_u32(const struct stun_attr *a, uint32_t *out);

/* ERROR-CODE: *code is class*100+number. reason is borrowed. */
int stun_attr_error(const struct stun_attr *a, int *code,
    const uint8_t **reason, size_t *reason_len);

/* Checks MESSAGE-INTEGRITY (HMAC-SHA1, which == STUN_A_MESSAGE_INTEGRITY)
 * or MESSAGE-INTEGRITY-SHA256 (which == STUN_A_MESSAGE_INTEGRITY_SHA256)
 * with key, per RFC 8489 §14.5-14.6: the HMAC covers the message up to the
 * attribute with the length field adjusted. Compares in constant time.
 * Returns STUN_OK, STUN_ENOTFOUND (attribute absent) or STUN_EINTEGRITY. */
int stun_check_integrity(const struct stun_msg *m, uint16_t which,
    const uint8_t *key, size_t key_len);

/* Long-term credential keys, RFC 8489 §9.2.2. The strings are used as
 * given (no SASLprep/OpaqueString processing). */
void stun_key_md5(const char *user, size_t user_len, const char *realm,
    size_t realm_len, const char *pass, size_t pass_len, uint8_t out[16]);
void stun_key_sha256(const char *user, size_t user_len, const char *realm,
    size_t realm_len, const char *pass, size_t pass_len, uint8_t out[32]);

/* Builder: writes into a caller buffer; errors are sticky and reported by
 * stun_build_finish(). Attributes are padded to 4 bytes with zeros and the
 * header length is kept current after every call. */
struct stun_builder {
	uint8_t *buf;  /* borrowed */
	size_t cap;
	size_t len;
	int err;       /* first error, STUN_OK if none */
};

void stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap,
    uint16_t method, uint16_t cls, const uint8_t txid[STUN_TXID_LEN]);
void stun_build_attr(struct stun_builder *b, uint16_t type, const void *value,
    size_t len);
void stun_build_u32(struct stun_builder *b, uint16_t type, uint32_t v);
/* Address attribute from a sockaddr_in/sockaddr_in6; xored for XOR-*. */
void stun_build_addr(struct stun_builder *b, uint16_t type,
    const struct sockaddr *sa, bool xored);
/* ERROR-CODE with code 300..699 and a reason phrase (NUL-terminated). */
void stun_build_error(struct stun_builder *b, int code, const char *reason);
void stun_build_unknown(struct stun_builder *b, const uint16_t *types, size_t n);
/* Appends MESSAGE-INTEGRITY (HMAC-SHA1) or MESSAGE-INTEGRITY-SHA256. */
void stun_build_integrity(struct stun_builder *b, const uint8_t *key, size_t key_len);
void stun_build_integrity_sha256(struct stun_builder *b, const uint8_t *key, size_t key_len);
void stun_build_fingerprint(struct stun_builder *b);
/* Returns STUN_OK and sets *len, or the first error. */
int stun_build_finish(struct stun_builder *b, size_t *len);

/* ChannelData (RFC 8656 §12.4). Parse: a channel in TURN_CHANNEL_MIN-MAX and the
 * length field must fit in len (trailing padding allowed); *data is
 * borrowed. Build: writes header and data, no padding (the stream sender
 * pads). */
int channeldata_parse(const uint8_t *buf, size_t len, uint16_t *channel,
    const uint8_t **data, size_t *data_len);
int channeldata_build(uint8_t *buf, size_t cap, uint16_t channel,
    const uint8_t *data, size_t data_len, size_t *out_len);

/* Name of a method for logs ("Allocate"), or "unknown". */
const char *stun_method_name(uint16_t method);

#endif
