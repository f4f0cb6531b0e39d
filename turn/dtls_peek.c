/* The clear parts of a DTLS handshake, from one datagram; the contract is
 * in dtls_peek.h.
 *
 * Every read goes through a struct rd cursor, and every vector is read
 * into a cursor of its own, so a length can only ever be compared with
 * the bytes its parent has left. A message is parsed into a copy of the
 * result, which replaces *out only once the whole message was consumed:
 * a message that turns out broken half-way leaves nothing behind. */
#include "turn/dtls_peek.h"

#include <stddef.h>
#include <string.h>

#include "common/bytes.h"

/* RFC 6347 §4.1: a record header is type(1) version(2) epoch(2)
 * sequence_number(6) length(2); RFC 6347 §4.2.2: a handshake header is
 * type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3).
 * RFC 9147 §4.1: a first byte 20-26 starts such a DTLSPlaintext record,
 * 001CSLEE a DTLSCiphertext unified header. */
enum {
	REC_SEQ_LEN = 6,
	HS_MSG_SEQ_LEN = 2,
	RANDOM_LEN = 32,                 /* RFC 5246 §7.4.1.2 */
	SESSION_ID_MAX = 32,
	CT_FIRST = 20,                   /* change_cipher_spec */
	CT_HANDSHAKE = 22,
	CT_TLS12_CID = 25,               /* RFC 9146 §4 */
	CT_LAST = 26,                    /* ack, RFC 9147 §7 */
	UH_FIXED_MASK = 0xe0, UH_FIXED = 0x20,
	UH_CID = 0x10, UH_SEQ16 = 0x08, UH_LEN = 0x04,
	HT_CLIENT_HELLO = 1, HT_SERVER_HELLO = 2, HT_CERTIFICATE = 11,
	EXT_USE_SRTP = 14,               /* RFC 5764 §4.1.1 */
	EXT_SUPPORTED_VERSIONS = 43,     /* RFC 8446 §4.2.1 */
	DTLS_VERSION_MAJOR = 0xfe,       /* RFC 6347 §4.1: 1's complement */
};

static const struct {
	uint16_t id;
	const char *name;
} srtp_profiles[] = {
	{ 0x0001, "SRTP_AES128_CM_SHA1_80" },  /* RFC 5764 §4.1.2 */
	{ 0x0002, "SRTP_AES128_CM_SHA1_32" },
	{ 0x0007, "SRTP_AEAD_AES_128_GCM" },   /* RFC 7714 §14.2 */
	{ 0x0008, "SRTP_AEAD_AES_256_GCM" },
};

/* A big-endian integer of n bytes (n <= 3 here, so no overflow). */
static int
rd_uint(struct rd *r, size_t n, size_t *v)
{
	uint8_t b;

	*v = 0;
	while (n-- > 0) {
		if (rd_u8(r, &b))
			return -1;
		*v = (*v << 8) | b;
	}
	return 0;
}

/* RFC 8446 §3.4: a vector with an n-byte length in front, taken as a
 * cursor of its own. */
static int
rd_vec(struct rd *r, size_t n, struct rd *v)
{
	const uint8_t *p;
	size_t len;

	if (rd_uint(r, n, &len) || rd_bytes(r, len, &p))
		return -1;
	*v = rd_init(p, len);
	return 0;
}

/* RFC 5764 §4.1.1: SRTPProtectionProfiles<2..2^16-1>, then
 * srtp_mki<0..255>. The server answers with exactly one profile. */
static int
parse_use_srtp(struct rd *ext, bool server, struct dtls_peek *p)
{
	struct rd list, mki;
	uint16_t id;

	if (rd_vec(ext, 2, &list) || list.left < 2 || list.left % 2 != 0 ||
	    (server && list.left != 2) || rd_vec(ext, 1, &mki) || ext->left != 0)
		return -1;
	p->nprofiles = 0;
	while (rd_u16(&list, &id) == 0)
		if (p->nprofiles < DTLS_PEEK_MAX_PROFILES)
			p->profiles[p->nprofiles++] = id;
	return 0;
}

/* RFC 8446 §4.2.1: the ClientHello lists versions<2..254>; the
 * ServerHello and HelloRetryRequest carry the one selected. */
static int
parse_versions(struct rd *ext, bool server, struct dtls_peek *p)
{
	struct rd list;
	uint16_t v;

	if (server)
		return rd_u16(ext, &p->version) || ext->left != 0 ? -1 : 0;
	if (rd_vec(ext, 1, &list) || list.left < 2 || list.left % 2 != 0 ||
	    ext->left != 0)
		return -1;
	while (rd_u16(&list, &v) == 0)
		if (v == DTLS_VERSION_13)
			p->offers_dtls13 = true;
	return 0;
}

/* RFC 8446 §4.2: what is left of a hello is its extensions block, which
 * a DTLS 1.2 hello may leave out (RFC 5246 §7.4.1.2); the block must end
 * the message. No type may appear twice, so a duplicate use_srtp cannot
 * show us one profile while the peer's stack acts on another. */
static int
parse_exts(struct rd *r, bool server, struct dtls_peek *p)
{
	struct rd exts, ext;
	uint16_t type;
	bool seen_srtp = false, seen_versions = false;

	if (r->left == 0)
		return 0;
	if (rd_vec(r, 2, &exts) || r->left != 0)
		return -1;
	while (exts.left > 0) {
		if (rd_u16(&exts, &type) || rd_vec(&exts, 2, &ext))
			return -1;
		if (type == EXT_USE_SRTP) {
			if (seen_srtp || parse_use_srtp(&ext, server, p))
				return -1;
			seen_srtp = true;
		} else if (type == EXT_SUPPORTED_VERSIONS) {
			if (seen_versions || parse_versions(&ext, server, p))
				return -1;
			seen_versions = true;
		}
	}
	return 0;
}

/* RFC 6347 §4.2.1 / RFC 9147 §5.3: legacy_version, random,
 * session_id<0..32>, cookie<0..255>, cipher_suites<2..2^16-2>,
 * compression_methods<1..255>, extensions. */
static int
parse_client_hello(struct rd *r, struct dtls_peek *p)
{
	struct rd v;

	/* One hello a datagram (below). */
	if (p->client_hello || p->server_hello)
		return -1;
	if (rd_skip(r, 2) || rd_skip(r, RANDOM_LEN) ||
	    rd_vec(r, 1, &v) || v.left > SESSION_ID_MAX ||
	    rd_vec(r, 1, &v) ||
	    rd_vec(r, 2, &v) || v.left < 2 || v.left % 2 != 0 ||
	    rd_vec(r, 1, &v) || v.left < 1 || parse_exts(r, false, p))
		return -1;
	p->client_hello = true;
	return 0;
}

/* RFC 5246 §7.4.1.3 / RFC 8446 §4.1.3: legacy_version, random,
 * session_id<0..32>, cipher_suite(2), compression_method(1), extensions.
 * supported_versions, when present, overrides the legacy version. */
static int
parse_server_hello(struct rd *r, struct dtls_peek *p)
{
	struct rd v;
	uint16_t legacy, suite;

	/* One hello a datagram: of two, a receiver acts on the one it takes
	 * first (the older message_seq), and the relay would have checked
	 * the other; no stack sends two in one flight. */
	if (p->client_hello || p->server_hello)
		return -1;
	if (rd_u16(r, &legacy) || rd_skip(r, RANDOM_LEN) ||
	    rd_vec(r, 1, &v) || v.left > SESSION_ID_MAX || rd_u16(r, &suite) || rd_skip(r, 1))
		return -1;
	p->version = legacy;
	p->cipher_suite = suite;
	if (parse_exts(r, true, p))
		return -1;
	p->server_hello = true;
	return 0;
}

/* RFC 5246 §7.4.2: certificate_list<0..2^24-1> of ASN.1Cert<1..2^24-1>,
 * the sender's own first. Every entry is walked so that a list which
 * does not add up is refused rather than half-read. */
static int
parse_certificate(struct rd *r, struct dtls_peek *p)
{
	struct rd list, cert;

	/* One per datagram: with two, the peer may act on the one the
	 * relay did not check. */
	if (p->certificate || rd_vec(r, 3, &list) || r->left != 0)
		return -1;
	p->cert = NULL;
	p->cert_len = 0;
	while (list.left > 0) {
		if (rd_vec(&list, 3, &cert) || cert.left == 0)
			return -1;
		if (p->cert == NULL) {
			p->cert = cert.p;
			p->cert_len = cert.left;
		}
	}
	p->certificate = true;
	return 0;
}

static const struct {
	uint8_t type;
	int (*parse)(struct rd *, struct dtls_peek *);
} hs_parsers[] = {
	{ HT_CLIENT_HELLO, parse_client_hello },
	{ HT_SERVER_HELLO, parse_server_hello },
	{ HT_CERTIFICATE, parse_certificate },
};

/* A message being put back together from fragments in out->joined. */
struct join {
	bool active;
	uint8_t type;
	size_t seq, mlen, have;
};

/* Fragments of one message that follow each other, in order, within this
 * datagram are joined: OpenSSL and BoringSSL split a certificate over
 * several records of one datagram. Returns the whole message once its
 * last fragment is in, else NULL (the fragment was kept, or the message
 * cannot be joined here: split over datagrams, out of order, too long,
 * and then marked fragmented). */
static const uint8_t *
join_fragment(struct join *j, struct dtls_peek *out, uint8_t type, size_t seq,
    size_t mlen, size_t off, const uint8_t *frag, size_t flen)
{
	/* A certificate put together here stays where it is: a later
	 * message may not be joined over it. */
	bool cert_joined = out->cert != NULL && out->cert >= out->joined &&
	    out->cert < out->joined + sizeof(out->joined);

	if (off == 0 && mlen <= sizeof(out->joined) && !cert_joined) {
		j->active = true;
		j->type = type;
		j->seq = seq;
		j->mlen = mlen;
		j->have = 0;
	}
	if (!j->active || j->type != type || j->seq != seq || j->mlen != mlen ||
	    off != j->have) {
		out->fragmented = true;
		if (type == HT_CERTIFICATE)
			out->cert_fragmented = true;
		if (type == HT_SERVER_HELLO)
			out->hello_fragmented = true;
		return NULL;
	}
	memcpy(out->joined + off, frag, flen);
	j->have += flen;
	if (j->have < j->mlen)
		return NULL;
	j->active = false;
	return out->joined;
}

/* The handshake messages of one epoch-0 record (RFC 6347 §4.2.2). A
 * message is parsed into *out, which gets its fields back (all before
 * joined) if the message turns out broken. */
static int
walk_handshake(struct rd *rec, struct join *j, struct dtls_peek *out)
{
	struct dtls_peek saved;
	struct rd body;
	const uint8_t *frag, *msg;
	size_t mlen, seq, off, flen, i;
	uint8_t type;

	while (rec->left > 0) {
		if (rd_u8(rec, &type) || rd_uint(rec, 3, &mlen) ||
		    rd_uint(rec, HS_MSG_SEQ_LEN, &seq) || rd_uint(rec, 3, &off) ||
		    rd_uint(rec, 3, &flen) || rd_bytes(rec, flen, &frag))
			return -1;
		/* RFC 6347 §4.2.3: a fragment lies inside its message. */
		if (off > mlen || flen > mlen - off)
			return -1;
		for (i = 0; i < sizeof(hs_parsers) / sizeof(hs_parsers[0]); i++)
			if (hs_parsers[i].type == type)
				break;
		if (i == sizeof(hs_parsers) / sizeof(hs_parsers[0]))
			continue;
		msg = off == 0 && flen == mlen ? frag :
		    join_fragment(j, out, type, seq, mlen, off, frag, flen);
		if (msg == NULL)
			continue;
		memcpy(&saved, out, offsetof(struct dtls_peek, joined));
		body = rd_init(msg, mlen);
		if (hs_parsers[i].parse(&body, out)) {
			memcpy(out, &saved, offsetof(struct dtls_peek, joined));
			return -1;
		}
	}
	return 0;
}

/* RFC 9147 §4: after the first byte, the 8- or 16-bit sequence number,
 * then the 16-bit length if L is set; without it the record runs to the
 * end of the datagram. The caller has dealt with the C bit. */
static int
skip_unified(struct rd *r)
{
	uint8_t flags;
	uint16_t rlen;

	if (rd_u8(r, &flags) || rd_skip(r, (flags & UH_SEQ16) ? 2 : 1))
		return -1;
	if (!(flags & UH_LEN))
		return rd_skip(r, r->left);
	if (rd_u16(r, &rlen) || rd_skip(r, rlen))
		return -1;
	return 0;
}

int
dtls_peek(const uint8_t *buf, size_t len, struct dtls_peek *out)
{
	struct rd r, rec;
	struct join j = { .active = false };
	const uint8_t *frag;
	uint16_t version, epoch, rlen;
	uint8_t type;
	int rc = 0;

	/* Not joined: it is only ever written before it is read. */
	memset(out, 0, offsetof(struct dtls_peek, joined));
	if (buf == NULL || len == 0)
		return -1;
	r = rd_init(buf, len);
	while (rc == 0 && r.left > 0) {
		type = r.p[0];
		if ((type & UH_FIXED_MASK) == UH_FIXED) {
			/* The connection ID's length was negotiated, not
			 * written: the record cannot be delimited, nor what
			 * follows read (dtls_peek.h). */
			if (type & UH_CID) {
				rc = -1;
				break;
			}
			rc = skip_unified(&r);
			continue;
		}
		if (type < CT_FIRST || type > CT_LAST || rd_skip(&r, 1) ||
		    rd_u16(&r, &version) || rd_u16(&r, &epoch) || rd_skip(&r, REC_SEQ_LEN) ||
		    (version >> 8) != DTLS_VERSION_MAJOR) {
			rc = -1;
			break;
		}
		/* RFC 9146 §4: the connection ID sits before the length. */
		if (type == CT_TLS12_CID) {
			rc = -1;
			break;
		}
		if (rd_u16(&r, &rlen) || rd_bytes(&r, rlen, &frag)) {
			rc = -1;
			break;
		}
		if (type != CT_HANDSHAKE || epoch != 0)
			continue;
		out->nhandshake++;
		rec = rd_init(frag, rlen);
		rc = walk_handshake(&rec, &j, out);
	}
	/* A message whose last fragment is in another datagram, or past
	 * the point where the walk stopped. */
	if (j.active) {
		out->fragmented = true;
		if (j.type == HT_CERTIFICATE)
			out->cert_fragmented = true;
		if (j.type == HT_SERVER_HELLO)
			out->hello_fragmented = true;
	}
	return rc;
}

size_t
dtls_peek_handshakes_12(const uint8_t *buf, size_t len)
{
	size_t off = 0, n = 0, rlen;

	while (buf != NULL && len - off >= 13) {
		rlen = (size_t)buf[off + 11] << 8 | buf[off + 12];
		if (buf[off] == CT_HANDSHAKE && buf[off + 1] == DTLS_VERSION_MAJOR &&
		    buf[off + 3] == 0 && buf[off + 4] == 0)
			n++;
		if (rlen > len - off - 13)
			break;
		off += 13 + rlen;
	}
	return n;
}

const char *
dtls_srtp_profile_name(uint16_t id)
{
	size_t i;

	for (i = 0; i < sizeof(srtp_profiles) / sizeof(srtp_profiles[0]); i++)
		if (srtp_profiles[i].id == id)
			return srtp_profiles[i].name;
	return NULL;
}
