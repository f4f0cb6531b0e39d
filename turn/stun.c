/* STUN codec (RFC 8489) with the TURN attributes of RFC 8656; the
 * contract is in stun.h.
 *
 * Every read of message bytes goes through a struct rd cursor. stun_parse()
 * walks the whole message before it reports success, and on failure leaves
 * *m empty, so no getter ever sees half a message. The builder appends
 * through one helper, build_reserve(), which is the only place that checks
 * room and keeps the header length current. */
#include "turn/stun.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "common/bytes.h"

#define ATTR_HEADER_LEN 4
#define MI_SHA1_LEN 20        /* RFC 8489 §14.5 */
#define MI_SHA256_MIN 16      /* RFC 8489 §14.6: 16..32, multiple of 4 */
#define MI_SHA256_MAX 32
#define FINGERPRINT_LEN 4     /* RFC 8489 §14.7 */
#define FINGERPRINT_XOR 0x5354554eu
#define REASON_MAX 763        /* RFC 8489 §14.8: under 128 characters */
#define ADDR_FAMILY_IPV4 0x01 /* RFC 8489 §14.1 */
#define ADDR_FAMILY_IPV6 0x02
#define TYPE_CLASS_MASK 0x0110
#define TYPE_METHOD_MAX 0x0fff
#define CHANNEL_MIN TURN_CHANNEL_MIN
#define CHANNEL_MAX TURN_CHANNEL_MAX

/* Every type named in stun.h. A comprehension-required type (< 0x8000)
 * missing from here is reported in m->unknown, so adding an enum value
 * without adding it here would make us answer 420 to it. */
static const uint16_t known_attrs[] = {
	STUN_A_MAPPED_ADDRESS, STUN_A_USERNAME, STUN_A_MESSAGE_INTEGRITY,
	STUN_A_ERROR_CODE, STUN_A_UNKNOWN_ATTRIBUTES, STUN_A_CHANNEL_NUMBER,
	STUN_A_LIFETIME, STUN_A_XOR_PEER_ADDRESS, STUN_A_DATA, STUN_A_REALM,
	STUN_A_NONCE, STUN_A_XOR_RELAYED_ADDRESS,
	STUN_A_REQUESTED_ADDRESS_FAMILY, STUN_A_EVEN_PORT,
	STUN_A_REQUESTED_TRANSPORT, STUN_A_DONT_FRAGMENT,
	STUN_A_MESSAGE_INTEGRITY_SHA256, STUN_A_PASSWORD_ALGORITHM,
	STUN_A_USERHASH, STUN_A_XOR_MAPPED_ADDRESS, STUN_A_RESERVATION_TOKEN,
	STUN_A_PRIORITY, STUN_A_USE_CANDIDATE, STUN_A_PADDING,
	STUN_A_RESPONSE_PORT, STUN_A_CONNECTION_ID,
	STUN_A_ADDITIONAL_ADDRESS_FAMILY, STUN_A_ADDRESS_ERROR_CODE,
	STUN_A_PASSWORD_ALGORITHMS, STUN_A_ALTERNATE_DOMAIN, STUN_A_ICMP,
	STUN_A_SOFTWARE, STUN_A_ALTERNATE_SERVER,
	STUN_A_TRANSACTION_TRANSMIT_COUNTER, STUN_A_CACHE_TIMEOUT,
	STUN_A_FINGERPRINT, STUN_A_ICE_CONTROLLED, STUN_A_ICE_CONTROLLING,
	STUN_A_RESPONSE_ORIGIN, STUN_A_OTHER_ADDRESS,
};

static const struct {
	uint16_t method;
	const char *name;
} method_names[] = {
	{ STUN_BINDING, "Binding" },
	{ TURN_ALLOCATE, "Allocate" },
	{ TURN_REFRESH, "Refresh" },
	{ TURN_SEND, "Send" },
	{ TURN_DATA, "Data" },
	{ TURN_CREATE_PERMISSION, "CreatePermission" },
	{ TURN_CHANNEL_BIND, "ChannelBind" },
};

/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as RFC 8489 §14.7
 * requires for FINGERPRINT. A constant table rather than one built at
 * first use keeps the module free of mutable state; we do not link zlib
 * for one function. */
static const uint32_t crc32_table[256] = {
	0x00000000U, 0x77073096U, 0xee0e612cU, 0x990951baU,
	0x076dc419U, 0x706af48fU, 0xe963a535U, 0x9e6495a3U,
	0x0edb8832U, 0x79dcb8a4U, 0xe0d5e91eU, 0x97d2d988U,
	0x09b64c2bU, 0x7eb17cbdU, 0xe7b82d07U, 0x90bf1d91U,
	0x1db71064U, 0x6ab020f2U, 0xf3b97148U, 0x84be41deU,
	0x1adad47dU, 0x6ddde4ebU, 0xf4d4b551U, 0x83d385c7U,
	0x136c9856U, 0x646ba8c0U, 0xfd62f97aU, 0x8a65c9ecU,
	0x14015c4fU, 0x63066cd9U, 0xfa0f3d63U, 0x8d080df5U,
	0x3b6e20c8U, 0x4c69105eU, 0xd56041e4U, 0xa2677172U,
	0x3c03e4d1U, 0x4b04d447U, 0xd20d85fdU, 0xa50ab56bU,
	0x35b5a8faU, 0x42b2986cU, 0xdbbbc9d6U, 0xacbcf940U,
	0x32d86ce3U, 0x45df5c75U, 0xdcd60dcfU, 0xabd13d59U,
	0x26d930acU, 0x51de003aU, 0xc8d75180U, 0xbfd06116U,
	0x21b4f4b5U, 0x56b3c423U, 0xcfba9599U, 0xb8bda50fU,
	0x2802b89eU, 0x5f058808U, 0xc60cd9b2U, 0xb10be924U,
	0x2f6f7c87U, 0x58684c11U, 0xc1611dabU, 0xb6662d3dU,
	0x76dc4190U, 0x01db7106U, 0x98d220bcU, 0xefd5102aU,
	0x71b18589U, 0x06b6b51fU, 0x9fbfe4a5U, 0xe8b8d433U,
	0x7807c9a2U, 0x0f00f934U, 0x9609a88eU, 0xe10e9818U,
	0x7f6a0dbbU, 0x086d3d2dU, 0x91646c97U, 0xe6635c01U,
	0x6b6b51f4U, 0x1c6c6162U, 0x856530d8U, 0xf262004eU,
	0x6c0695edU, 0x1b01a57bU, 0x8208f4c1U, 0xf50fc457U,
	0x65b0d9c6U, 0x12b7e950U, 0x8bbeb8eaU, 0xfcb9887cU,
	0x62dd1ddfU, 0x15da2d49U, 0x8cd37cf3U, 0xfbd44c65U,
	0x4db26158U, 0x3ab551ceU, 0xa3bc0074U, 0xd4bb30e2U,
	0x4adfa541U, 0x3dd895d7U, 0xa4d1c46dU, 0xd3d6f4fbU,
	0x4369e96aU, 0x346ed9fcU, 0xad678846U, 0xda60b8d0U,
	0x44042d73U, 0x33031de5U, 0xaa0a4c5fU, 0xdd0d7cc9U,
	0x5005713cU, 0x270241aaU, 0xbe0b1010U, 0xc90c2086U,
	0x5768b525U, 0x206f85b3U, 0xb966d409U, 0xce61e49fU,
	0x5edef90eU, 0x29d9c998U, 0xb0d09822U, 0xc7d7a8b4U,
	0x59b33d17U, 0x2eb40d81U, 0xb7bd5c3bU, 0xc0ba6cadU,
	0xedb88320U, 0x9abfb3b6U, 0x03b6e20cU, 0x74b1d29aU,
	0xead54739U, 0x9dd277afU, 0x04db2615U, 0x73dc1683U,
	0xe3630b12U, 0x94643b84U, 0x0d6d6a3eU, 0x7a6a5aa8U,
	0xe40ecf0bU, 0x9309ff9dU, 0x0a00ae27U, 0x7d079eb1U,
	0xf00f9344U, 0x8708a3d2U, 0x1e01f268U, 0x6906c2feU,
	0xf762575dU, 0x806567cbU, 0x196c3671U, 0x6e6b06e7U,
	0xfed41b76U, 0x89d32be0U, 0x10da7a5aU, 0x67dd4accU,
	0xf9b9df6fU, 0x8ebeeff9U, 0x17b7be43U, 0x60b08ed5U,
	0xd6d6a3e8U, 0xa1d1937eU, 0x38d8c2c4U, 0x4fdff252U,
	0xd1bb67f1U, 0xa6bc5767U, 0x3fb506ddU, 0x48b2364bU,
	0xd80d2bdaU, 0xaf0a1b4cU, 0x36034af6U, 0x41047a60U,
	0xdf60efc3U, 0xa867df55U, 0x316e8eefU, 0x4669be79U,
	0xcb61b38cU, 0xbc66831aU, 0x256fd2a0U, 0x5268e236U,
	0xcc0c7795U, 0xbb0b4703U, 0x220216b9U, 0x5505262fU,
	0xc5ba3bbeU, 0xb2bd0b28U, 0x2bb45a92U, 0x5cb36a04U,
	0xc2d7ffa7U, 0xb5d0cf31U, 0x2cd99e8bU, 0x5bdeae1dU,
	0x9b64c2b0U, 0xec63f226U, 0x756aa39cU, 0x026d930aU,
	0x9c0906a9U, 0xeb0e363fU, 0x72076785U, 0x05005713U,
	0x95bf4a82U, 0xe2b87a14U, 0x7bb12baeU, 0x0cb61b38U,
	0x92d28e9bU, 0xe5d5be0dU, 0x7cdcefb7U, 0x0bdbdf21U,
	0x86d3d2d4U, 0xf1d4e242U, 0x68ddb3f8U, 0x1fda836eU,
	0x81be16cdU, 0xf6b9265bU, 0x6fb077e1U, 0x18b74777U,
	0x88085ae6U, 0xff0f6a70U, 0x66063bcaU, 0x11010b5cU,
	0x8f659effU, 0xf862ae69U, 0x616bffd3U, 0x166ccf45U,
	0xa00ae278U, 0xd70dd2eeU, 0x4e048354U, 0x3903b3c2U,
	0xa7672661U, 0xd06016f7U, 0x4969474dU, 0x3e6e77dbU,
	0xaed16a4aU, 0xd9d65adcU, 0x40df0b66U, 0x37d83bf0U,
	0xa9bcae53U, 0xdebb9ec5U, 0x47b2cf7fU, 0x30b5ffe9U,
	0xbdbdf21cU, 0xcabac28aU, 0x53b39330U, 0x24b4a3a6U,
	0xbad03605U, 0xcdd70693U, 0x54de5729U, 0x23d967bfU,
	0xb3667a2eU, 0xc4614ab8U, 0x5d681b02U, 0x2a6f2b94U,
	0xb40bbe37U, 0xc30c8ea1U, 0x5a05df1bU, 0x2d02ef8dU,
};

static uint32_t
crc32_ieee(const uint8_t *p, size_t n)
{
	uint32_t c = 0xffffffffu;
	size_t i;

	for (i = 0; i < n; i++)
		c = crc32_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return c ^ 0xffffffffu;
}

/* RFC 8489 §5: the 14-bit message type interleaves the 12 method bits
 * M0-M11 with the class bits C0 (bit 4) and C1 (bit 8), so the class
 * values of enum stun_class are already in place. */
static uint16_t
type_method(uint16_t t)
{
	return (uint16_t)((t & 0x000f) | ((t & 0x00e0) >> 1) |
	    ((t & 0x3e00) >> 2));
}

static uint16_t
type_encode(uint16_t method, uint16_t cls)
{
	return (uint16_t)((method & 0x000f) | ((method & 0x0070) << 1) |
	    ((method & 0x0f80) << 2) | (cls & TYPE_CLASS_MASK));
}

static bool
attr_known(uint16_t type)
{
	size_t i;

	for (i = 0; i < sizeof(known_attrs) / sizeof(known_attrs[0]); i++)
		if (known_attrs[i] == type)
			return true;
	return false;
}

static void
msg_reset(struct stun_msg *m)
{
	memset(m, 0, sizeof(*m));
	m->mi_idx = -1;
	m->mi256_idx = -1;
	m->fp_idx = -1;
}

/* HMAC(digest, key) over a 20-byte header followed by body. hdr is passed
 * apart from the body so a caller can patch the length field in a copy
 * and never write to the message. Returns 0, or -1 if OpenSSL fails. */
static int
stun_hmac(const char *digest, const uint8_t *key, size_t key_len,
    const uint8_t *hdr, const uint8_t *body, size_t body_len,
    uint8_t out[EVP_MAX_MD_SIZE], size_t *out_len)
{
	/* OpenSSL treats a NULL key as "keep the previous key"; an empty
	 * password must still give the HMAC with an empty key. */
	static const uint8_t empty_key[1];
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	int rc = -1;

	if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
		goto out;
	if ((ctx = EVP_MAC_CTX_new(mac)) == NULL)
		goto out;
	/* OSSL_PARAM wants a char * but only reads the digest name. */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
	    (char *)digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	if (!EVP_MAC_init(ctx, key_len > 0 ? key : empty_key, key_len, params))
		goto out;
	if (!EVP_MAC_update(ctx, hdr, STUN_HEADER_LEN))
		goto out;
	if (body_len > 0 && !EVP_MAC_update(ctx, body, body_len))
		goto out;
	if (!EVP_MAC_final(ctx, out, out_len, EVP_MAX_MD_SIZE))
		goto out;
	rc = 0;
out:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	return rc;
}

int
stun_demux(const uint8_t *buf, size_t len)
{
	if (buf == NULL || len < 1)
		return 0;
	/* RFC 7983 §7 with RFC 8656 §12: 0-3 is STUN; 4-63 is ZRTP and DTLS,
	 * which also have the top two bits clear, so "top bits 00" alone
	 * would steal DTLS records. 64-127 is ChannelData (see
	 * TURN_CHANNEL_MAX for why not only 64-79). */
	if (buf[0] <= 3)
		return 1;
	if (buf[0] >= 64 && buf[0] <= 127)
		return 2;
	return 0;
}

int
stun_frame_len(const uint8_t *buf, size_t len, size_t *frame_len)
{
	struct rd r;
	uint16_t type, mlen;
	uint32_t cookie;
	size_t frame;

	if (len < 1)
		return STUN_EAGAIN;
	if ((buf[0] & 0xc0) == 0x00) {
		r = rd_init(buf, len);
		if (len < STUN_HEADER_LEN || rd_u16(&r, &type) ||
		    rd_u16(&r, &mlen) || rd_u32(&r, &cookie))
			return STUN_EAGAIN;
		/* We only speak RFC 5389 and later: without the cookie this
		 * is not STUN, and the stream cannot be resynchronized. */
		if (cookie != STUN_MAGIC_COOKIE)
			return STUN_ENOTSTUN;
		/* RFC 8489 §5: a length that is not a multiple of 4 is a
		 * broken peer; do not trust anything after it. */
		if (mlen % 4 != 0)
			return STUN_EMALFORMED;
		frame = STUN_HEADER_LEN + (size_t)mlen;
	} else if ((buf[0] & 0xc0) == 0x40) {
		r = rd_init(buf, len);
		if (rd_skip(&r, 2) || rd_u16(&r, &mlen))
			return STUN_EAGAIN;
		/* RFC 8656 §12.5: over a stream, ChannelData is padded to a
		 * multiple of 4 bytes and the padding is not in the length. */
		frame = pad4(CHANNELDATA_HEADER_LEN + (size_t)mlen);
	} else {
		return STUN_ENOTSTUN;
	}
	if (frame > STUN_MAX_MESSAGE)
		return STUN_EMALFORMED;
	if (frame > len)
		return STUN_EAGAIN;
	*frame_len = frame;
	return STUN_OK;
}

static int
attr_index(const struct stun_msg *m, uint16_t type)
{
	size_t i;

	for (i = 0; i < m->nattrs; i++)
		if (m->attrs[i].type == type)
			return (int)i;
	return -1;
}

int
stun_parse(const uint8_t *buf, size_t len, struct stun_msg *m)
{
	struct rd r;
	struct stun_attr *a;
	const uint8_t *val;
	uint16_t type, mlen, atype, alen;
	uint32_t cookie;
	size_t off;
	bool after_mi = false, after_mi256 = false;
	int rc = STUN_ENOTSTUN;

	msg_reset(m);
	if (buf == NULL)
		goto fail;
	r = rd_init(buf, len);
	if (rd_u16(&r, &type) || rd_u16(&r, &mlen) || rd_u32(&r, &cookie) ||
	    rd_copy(&r, m->txid, STUN_TXID_LEN))
		goto fail;
	/* RFC 8489 §6.3: the top two bits are zero and the magic cookie is
	 * present; an RFC 3489 message without it is not ours. */
	if ((type & 0xc000) != 0 || cookie != STUN_MAGIC_COOKIE)
		goto fail;

	rc = STUN_EMALFORMED;
	/* RFC 8489 §5: the length counts the attributes, which are padded
	 * to 4 bytes, and must match the datagram exactly. */
	if (len > STUN_MAX_MESSAGE || mlen % 4 != 0 || mlen != r.left)
		goto fail;
	m->buf = buf;
	m->len = len;
	m->method = type_method(type);
	m->cls = type & TYPE_CLASS_MASK;

	while (r.left > 0) {
		off = len - r.left;
		/* RFC 8489 §14: the padding need not be zero, only present. */
		if (rd_u16(&r, &atype) || rd_u16(&r, &alen) ||
		    rd_bytes(&r, alen, &val) || rd_skip(&r, pad4(alen) - alen))
			goto fail;

		if (atype == STUN_A_FINGERPRINT) {
			/* RFC 8489 §14.7: FINGERPRINT is last, and since it is,
			 * the length field already counts it as the CRC input
			 * requires. */
			if (alen != FINGERPRINT_LEN || r.left != 0)
				goto fail;
			if ((crc32_ieee(buf, off) ^ FINGERPRINT_XOR) !=
			    get_be32(val))
				goto fail;
		} else if (after_mi256) {
			/* RFC 8489 §14.6: only FINGERPRINT may follow
			 * MESSAGE-INTEGRITY-SHA256; ignore the rest. */
			continue;
		} else if (after_mi && atype != STUN_A_MESSAGE_INTEGRITY_SHA256) {
			/* RFC 8489 §14.5: attributes after MESSAGE-INTEGRITY,
			 * other than FINGERPRINT and MESSAGE-INTEGRITY-SHA256,
			 * are not covered by it; ignore them. */
			continue;
		}

		/* RFC 8489 §14: unless an attribute says otherwise, only
		 * the first occurrence counts. */
		if (attr_index(m, atype) >= 0)
			continue;
		if (atype == STUN_A_MESSAGE_INTEGRITY && alen != MI_SHA1_LEN)
			goto fail;
		if (atype == STUN_A_MESSAGE_INTEGRITY_SHA256 &&
		    (alen < MI_SHA256_MIN || alen > MI_SHA256_MAX || alen % 4 != 0))
			goto fail;
		if (m->nattrs >= STUN_MAX_ATTRS)
			goto fail;

		a = &m->attrs[m->nattrs];
		a->type = atype;
		a->len = alen;
		a->value = val;
		a->offset = off;
		if (atype == STUN_A_MESSAGE_INTEGRITY) {
			m->mi_idx = (int)m->nattrs;
			after_mi = true;
		} else if (atype == STUN_A_MESSAGE_INTEGRITY_SHA256) {
			m->mi256_idx = (int)m->nattrs;
			after_mi256 = true;
		} else if (atype == STUN_A_FINGERPRINT) {
			m->fp_idx = (int)m->nattrs;
		} else if (atype < 0x8000 && !attr_known(atype)) {
			/* RFC 8489 §7.3.1: the caller answers 420 with these.
			 * One is enough to refuse the request; past the cap
			 * we list no more but still refuse. */
			if (m->nunknown < STUN_MAX_UNKNOWN)
				m->unknown[m->nunknown++] = atype;
		}
		m->nattrs++;
	}
	return STUN_OK;
fail:
	msg_reset(m);
	return rc;
}

const struct stun_attr *
stun_attr_find(const struct stun_msg *m, uint16_t type)
{
	int i;

	if ((i = attr_index(m, type)) < 0)
		return NULL;
	return &m->attrs[i];
}

int
stun_attr_addr(const struct stun_msg *m, const struct stun_attr *a,
    bool xored, struct sockaddr_storage *out)
{
	struct rd r;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	uint8_t resv, family, addr[16];
	uint16_t port;
	size_t alen, i;

	/* NULL is what stun_attr_find() returns for an absent attribute;
	 * accepting it lets callers chain the two calls safely. */
	if (a == NULL)
		return STUN_ENOTFOUND;
	r = rd_init(a->value, a->len);
	/* RFC 8489 §14.1: the first byte is zero on send, ignored here. */
	if (rd_u8(&r, &resv) || rd_u8(&r, &family) || rd_u16(&r, &port))
		return STUN_EMALFORMED;
	if (family == ADDR_FAMILY_IPV4)
		alen = 4;
	else if (family == ADDR_FAMILY_IPV6)
		alen = 16;
	else
		return STUN_EMALFORMED;
	/* The value must be exactly the address: nothing left over. */
	if (r.left != alen || rd_copy(&r, addr, alen))
		return STUN_EMALFORMED;
	if (xored) {
		/* RFC 8489 §14.2: the port is XORed with the cookie's top 16
		 * bits, the address with the cookie and then the
		 * transaction ID, which follow each other in the header. */
		port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
		for (i = 0; i < alen; i++)
			addr[i] ^= m->buf[4 + i];
	}

	memset(out, 0, sizeof(*out));
	if (family == ADDR_FAMILY_IPV4) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(port);
		memcpy(&sin.sin_addr, addr, 4);
		memcpy(out, &sin, sizeof(sin));
	} else {
		memset(&sin6, 0, sizeof(sin6));
		sin6.sin6_family = AF_INET6;
		sin6.sin6_port = htons(port);
		memcpy(&sin6.sin6_addr, addr, 16);
		memcpy(out, &sin6, sizeof(sin6));
	}
	return STUN_OK;
}

int
stun_attr_u32(const struct stun_attr *a, uint32_t *out)
{
	struct rd r;

	if (a == NULL)
		return STUN_ENOTFOUND;
	r = rd_init(a->value, a->len);
	if (a->len != 4 || rd_u32(&r, out))
		return STUN_EMALFORMED;
	return STUN_OK;
}

int
stun_attr_error(const struct stun_attr *a, int *code,
    const uint8_t **reason, size_t *reason_len)
{
	struct rd r;
	uint16_t resv;
	uint8_t cls, num;

	if (a == NULL)
		return STUN_ENOTFOUND;
	r = rd_init(a->value, a->len);
	if (rd_u16(&r, &resv) || rd_u8(&r, &cls) || rd_u8(&r, &num))
		return STUN_EMALFORMED;
	/* RFC 8489 §14.8: 21 reserved bits, a 3-bit class 3..6 and a
	 * number 0..99; the reason phrase is the rest. */
	cls &= 0x07;
	if (cls < 3 || cls > 6 || num > 99)
		return STUN_EMALFORMED;
	*code = cls * 100 + num;
	*reason = r.p;
	*reason_len = r.left;
	return STUN_OK;
}

int
stun_check_integrity(const struct stun_msg *m, uint16_t which,
    const uint8_t *key, size_t key_len)
{
	const struct stun_attr *a;
	const char *digest;
	uint8_t hdr[STUN_HEADER_LEN], mac[EVP_MAX_MD_SIZE];
	size_t mac_len = 0, covered;
	int idx, rc = STUN_EINTEGRITY;

	if (which == STUN_A_MESSAGE_INTEGRITY) {
		idx = m->mi_idx;
		digest = "SHA1";
	} else if (which == STUN_A_MESSAGE_INTEGRITY_SHA256) {
		idx = m->mi256_idx;
		digest = "SHA256";
	} else {
		return STUN_ENOTFOUND;
	}
	if (idx < 0 || (size_t)idx >= m->nattrs || m->attrs[idx].type != which)
		return STUN_ENOTFOUND;
	a = &m->attrs[idx];

	/* RFC 8489 §14.5-14.6: the HMAC covers everything before the
	 * attribute, with the header length set as if the attribute were
	 * the last one. Patch a copy of the header: the message is the
	 * caller's and stays read-only. */
	covered = a->offset - STUN_HEADER_LEN;
	memcpy(hdr, m->buf, STUN_HEADER_LEN);
	put_be16(hdr + 2, (uint16_t)(covered + ATTR_HEADER_LEN + a->len));
	if (stun_hmac(digest, key, key_len, hdr, m->buf + STUN_HEADER_LEN,
	    covered, mac, &mac_len) != 0)
		goto out;
	/* MESSAGE-INTEGRITY-SHA256 may be truncated (§14.6): compare the
	 * leading a->len bytes. stun_parse() bounded a->len. */
	if (mac_len < a->len)
		goto out;
	if (CRYPTO_memcmp(mac, a->value, a->len) == 0)
		rc = STUN_OK;
out:
	OPENSSL_cleanse(mac, sizeof(mac));
	return rc;
}

/* The signatures return void, so a digest that cannot be computed (MD5
 * refused by a FIPS-only provider, allocation failure) must not leave a
 * predictable key behind: an all-zero key would let anyone forge
 * MESSAGE-INTEGRITY. A random key fails closed: nothing verifies and
 * clients get 401. Without randomness either, there is no safe value. */
static void
key_unusable(uint8_t *out, size_t len)
{
	if (RAND_bytes(out, (int)len) != 1)
		abort();
}

/* RFC 8489 §9.2.2: key = H(username ":" realm ":" password). Fed to the
 * digest piecewise so the password is never copied into a buffer of ours
 * that would need wiping. */
static void
stun_key(const EVP_MD *md, const char *user, size_t user_len,
    const char *realm, size_t realm_len, const char *pass, size_t pass_len,
    uint8_t *out, unsigned int out_len)
{
	EVP_MD_CTX *ctx;
	unsigned int n = 0;
	int ok;

	ok = (ctx = EVP_MD_CTX_new()) != NULL &&
	    EVP_DigestInit_ex(ctx, md, NULL) &&
	    EVP_DigestUpdate(ctx, user, user_len) &&
	    EVP_DigestUpdate(ctx, ":", 1) &&
	    EVP_DigestUpdate(ctx, realm, realm_len) &&
	    EVP_DigestUpdate(ctx, ":", 1) &&
	    EVP_DigestUpdate(ctx, pass, pass_len) &&
	    EVP_DigestFinal_ex(ctx, out, &n) && n == out_len;
	/* EVP_MD_CTX_free() cleanses the digest state. */
	EVP_MD_CTX_free(ctx);
	if (!ok)
		key_unusable(out, out_len);
}

void
stun_key_md5(const char *user, size_t user_len, const char *realm,
    size_t realm_len, const char *pass, size_t pass_len, uint8_t out[16])
{
	stun_key(EVP_md5(), user, user_len, realm, realm_len, pass, pass_len,
	    out, 16);
}

void
stun_key_sha256(const char *user, size_t user_len, const char *realm,
    size_t realm_len, const char *pass, size_t pass_len, uint8_t out[32])
{
	stun_key(EVP_sha256(), user, user_len, realm, realm_len, pass,
	    pass_len, out, 32);
}

void
stun_build_init(struct stun_builder *b, uint8_t *buf, size_t cap,
    uint16_t method, uint16_t cls, const uint8_t txid[STUN_TXID_LEN])
{
	struct wr w;

	b->buf = buf;
	/* We never build more than we would accept. */
	b->cap = cap > STUN_MAX_MESSAGE ? STUN_MAX_MESSAGE : cap;
	b->len = 0;
	b->err = STUN_OK;
	if (method > TYPE_METHOD_MAX || (cls & ~TYPE_CLASS_MASK) != 0 ||
	    txid == NULL) {
		b->err = STUN_EMALFORMED;
		return;
	}
	if (buf == NULL || b->cap < STUN_HEADER_LEN) {
		b->err = STUN_ENOSPC;
		return;
	}
	w = wr_init(buf, b->cap);
	wr_u16(&w, type_encode(method, cls));
	wr_u16(&w, 0);
	wr_u32(&w, STUN_MAGIC_COOKIE);
	wr_bytes(&w, txid, STUN_TXID_LEN);
	b->len = w.len;
}

/* Appends an attribute header and len zero bytes padded to 4, sets the
 * header length to cover them, and returns where the value goes; NULL
 * once any error is set. Every append goes through here. */
static uint8_t *
build_reserve(struct stun_builder *b, uint16_t type, size_t len)
{
	struct wr w;
	uint8_t *v;

	if (b->err != STUN_OK)
		return NULL;
	if (len > UINT16_MAX) {
		b->err = STUN_EMALFORMED;
		return NULL;
	}
	w = wr_init(b->buf, b->cap);
	w.len = b->len;
	if (!wr_fits(&w, ATTR_HEADER_LEN + pad4(len))) {
		b->err = STUN_ENOSPC;
		return NULL;
	}
	wr_u16(&w, type);
	wr_u16(&w, (uint16_t)len);
	v = b->buf + w.len;
	wr_zero(&w, pad4(len));
	b->len = w.len;
	put_be16(b->buf + 2, (uint16_t)(b->len - STUN_HEADER_LEN));
	return v;
}

void
stun_build_attr(struct stun_builder *b, uint16_t type, const void *value,
    size_t len)
{
	uint8_t *v;

	if (b->err == STUN_OK && value == NULL && len > 0) {
		b->err = STUN_EMALFORMED;
		return;
	}
	if ((v = build_reserve(b, type, len)) != NULL && len > 0)
		memcpy(v, value, len);
}

void
stun_build_u32(struct stun_builder *b, uint16_t type, uint32_t v)
{
	uint8_t *p;

	if ((p = build_reserve(b, type, 4)) != NULL)
		put_be32(p, v);
}

void
stun_build_addr(struct stun_builder *b, uint16_t type,
    const struct sockaddr *sa, bool xored)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	uint8_t family, addr[16], *v;
	uint16_t port;
	size_t alen, i;

	if (b->err != STUN_OK)
		return;
	if (sa == NULL) {
		b->err = STUN_EMALFORMED;
		return;
	}
	/* Copy out rather than cast: sa may be any sockaddr container. */
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		family = ADDR_FAMILY_IPV4;
		port = ntohs(sin.sin_port);
		alen = 4;
		memcpy(addr, &sin.sin_addr, alen);
	} else if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		family = ADDR_FAMILY_IPV6;
		port = ntohs(sin6.sin6_port);
		alen = 16;
		memcpy(addr, &sin6.sin6_addr, alen);
	} else {
		b->err = STUN_EMALFORMED;
		return;
	}
	if (xored) {
		/* RFC 8489 §14.2; the cookie and transaction ID are at
		 * bytes 4-19 of the header written by stun_build_init(). */
		port ^= (uint16_t)(STUN_MAGIC_COOKIE >> 16);
		for (i = 0; i < alen; i++)
			addr[i] ^= b->buf[4 + i];
	}
	if ((v = build_reserve(b, type, 4 + alen)) == NULL)
		return;
	v[0] = 0;
	v[1] = family;
	put_be16(v + 2, port);
	memcpy(v + 4, addr, alen);
}

void
stun_build_error(struct stun_builder *b, int code, const char *reason)
{
	uint8_t *v;
	size_t rlen;

	if (b->err != STUN_OK)
		return;
	if (reason == NULL)
		reason = "";
	rlen = strnlen(reason, REASON_MAX + 1);
	/* RFC 8489 §14.8: class 3..6 in the hundreds digit. */
	if (code < 300 || code > 699 || rlen > REASON_MAX) {
		b->err = STUN_EMALFORMED;
		return;
	}
	if ((v = build_reserve(b, STUN_A_ERROR_CODE, 4 + rlen)) == NULL)
		return;
	v[2] = (uint8_t)(code / 100);
	v[3] = (uint8_t)(code % 100);
	memcpy(v + 4, reason, rlen);
}

void
stun_build_unknown(struct stun_builder *b, const uint16_t *types, size_t n)
{
	uint8_t *v;
	size_t i;

	if (b->err != STUN_OK)
		return;
	if ((types == NULL && n > 0) || n > UINT16_MAX / 2) {
		b->err = STUN_EMALFORMED;
		return;
	}
	/* RFC 8489 §14.9: a list of 16-bit types, zero-padded. */
	if ((v = build_reserve(b, STUN_A_UNKNOWN_ATTRIBUTES, 2 * n)) == NULL)
		return;
	for (i = 0; i < n; i++)
		put_be16(v + 2 * i, types[i]);
}

/* RFC 8489 §14.5-14.6: reserve the attribute first, so the header length
 * already counts it, then MAC everything before it. */
static void
build_mac(struct stun_builder *b, uint16_t type, const char *digest,
    size_t mac_len, const uint8_t *key, size_t key_len)
{
	uint8_t mac[EVP_MAX_MD_SIZE], *v;
	size_t got = 0, covered;

	if ((v = build_reserve(b, type, mac_len)) == NULL)
		return;
	covered = (size_t)(v - b->buf) - ATTR_HEADER_LEN - STUN_HEADER_LEN;
	if (stun_hmac(digest, key, key_len, b->buf,
	    b->buf + STUN_HEADER_LEN, covered, mac, &got) != 0 ||
	    got < mac_len) {
		/* The message must not go out with a zero MAC. */
		b->err = STUN_EINTEGRITY;
		goto out;
	}
	memcpy(v, mac, mac_len);
out:
	OPENSSL_cleanse(mac, sizeof(mac));
}

void
stun_build_integrity(struct stun_builder *b, const uint8_t *key,
    size_t key_len)
{
	build_mac(b, STUN_A_MESSAGE_INTEGRITY, "SHA1", MI_SHA1_LEN, key,
	    key_len);
}

void
stun_build_integrity_sha256(struct stun_builder *b, const uint8_t *key,
    size_t key_len)
{
	build_mac(b, STUN_A_MESSAGE_INTEGRITY_SHA256, "SHA256", MI_SHA256_MAX,
	    key, key_len);
}

void
stun_build_fingerprint(struct stun_builder *b)
{
	uint8_t *v;
	size_t covered;

	/* RFC 8489 §14.7: CRC over everything before the attribute, with
	 * the length already counting it. */
	if ((v = build_reserve(b, STUN_A_FINGERPRINT, FINGERPRINT_LEN)) == NULL)
		return;
	covered = (size_t)(v - b->buf) - ATTR_HEADER_LEN;
	put_be32(v, crc32_ieee(b->buf, covered) ^ FINGERPRINT_XOR);
}

int
stun_build_finish(struct stun_builder *b, size_t *len)
{
	if (b->err != STUN_OK)
		return b->err;
	if (len != NULL)
		*len = b->len;
	return STUN_OK;
}

int
channeldata_parse(const uint8_t *buf, size_t len, uint16_t *channel,
    const uint8_t **data, size_t *data_len)
{
	struct rd r;
	uint16_t ch, dlen;

	if (buf == NULL || len < 1 || (buf[0] & 0xc0) != 0x40)
		return STUN_ENOTSTUN;
	r = rd_init(buf, len);
	if (rd_u16(&r, &ch) || rd_u16(&r, &dlen))
		return STUN_EMALFORMED;
	if (ch < CHANNEL_MIN || ch > CHANNEL_MAX)
		return STUN_EMALFORMED;
	/* Trailing bytes are the stream padding (§12.5); ignore them. */
	if (rd_bytes(&r, dlen, data))
		return STUN_EMALFORMED;
	*channel = ch;
	*data_len = dlen;
	return STUN_OK;
}

int
channeldata_build(uint8_t *buf, size_t cap, uint16_t channel,
    const uint8_t *data, size_t data_len, size_t *out_len)
{
	struct wr w;

	if (channel < CHANNEL_MIN || channel > CHANNEL_MAX ||
	    data_len > UINT16_MAX || (data == NULL && data_len > 0))
		return STUN_EMALFORMED;
	w = wr_init(buf, buf == NULL ? 0 : cap);
	if (!wr_fits(&w, CHANNELDATA_HEADER_LEN + data_len))
		return STUN_ENOSPC;
	wr_u16(&w, channel);
	wr_u16(&w, (uint16_t)data_len);
	wr_bytes(&w, data, data_len);
	*out_len = w.len;
	return STUN_OK;
}

const char *
stun_method_name(uint16_t method)
{
	size_t i;

	for (i = 0; i < sizeof(method_names) / sizeof(method_names[0]); i++)
		if (method_names[i].method == method)
			return method_names[i].name;
	return "unknown";
}
