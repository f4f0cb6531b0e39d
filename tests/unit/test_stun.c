/* Unit tests for turn/stun.c: the RFC 5769 and RFC 8489 Appendix B test
 * vectors, every-prefix truncation of each message, targeted corruptions,
 * and builder round trips.
 *
 * Messages under test are copied into heap buffers of exactly their
 * length, so AddressSanitizer reports a read of even one byte past the
 * end. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "tests/unit/check.h"
#include "turn/stun.h"

/* RFC 5769 §2.1: sample request, short-term credential. USERNAME is padded
 * with spaces (RFC 5389 allowed any padding). */
static const uint8_t rfc5769_req[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
	0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x10, /* SOFTWARE "STUN test client" */
	0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
	0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
	0x00, 0x24, 0x00, 0x04, /* PRIORITY */
	0x6e, 0x00, 0x01, 0xff,
	0x80, 0x29, 0x00, 0x08, /* ICE-CONTROLLED */
	0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36,
	0x00, 0x06, 0x00, 0x09, /* USERNAME "evtj:h6vY" + 3 spaces */
	0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
	0x59, 0x20, 0x20, 0x20,
	0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
	0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56,
	0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
	0xc1, 0xb5, 0x71, 0xa2,
	0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
	0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 §2.2: IPv4 response, 192.0.2.1 port 32853. */
static const uint8_t rfc5769_v4[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
	0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, /* SOFTWARE "test vector" + 1 space */
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x08, /* XOR-MAPPED-ADDRESS */
	0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
	0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3,
	0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53,
	0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
	0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 §2.3: IPv6 response, 2001:db8:1234:5678:11:2233:4455:6677
 * port 32853. */
static const uint8_t rfc5769_v6[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
	0xfa, 0x87, 0xdf, 0xae,
	0x80, 0x22, 0x00, 0x0b, /* SOFTWARE "test vector" + 1 space */
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20,
	0x00, 0x20, 0x00, 0x14, /* XOR-MAPPED-ADDRESS */
	0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
	0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
	0xbe, 0xd2, 0xb9, 0xd9,
	0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
	0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
	0xbf, 0xe3, 0xed, 0x41,
	0x80, 0x28, 0x00, 0x04, /* FINGERPRINT */
	0xc8, 0xfb, 0x0b, 0x4c,
};

/* RFC 5769 §2.4: request with long-term credential. Zero padding, so our
 * builder reproduces it byte for byte. */
static const uint8_t rfc5769_lt[] = {
	0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42,
	0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0,
	0x29, 0xda, 0x41, 0x2e,
	0x00, 0x06, 0x00, 0x12, /* USERNAME (18 bytes) */
	0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88, 0xe3, 0x83,
	0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3,
	0x82, 0xb9, 0x00, 0x00,
	0x00, 0x15, 0x00, 0x1c, /* NONCE */
	0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39,
	0x35, 0x34, 0x64, 0x36, 0x4f, 0x4c, 0x33, 0x34,
	0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79,
	0x36, 0x34, 0x73, 0x41,
	0x00, 0x14, 0x00, 0x0b, /* REALM "example.org" */
	0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e,
	0x6f, 0x72, 0x67, 0x00,
	0x00, 0x08, 0x00, 0x14, /* MESSAGE-INTEGRITY */
	0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e,
	0x02, 0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2,
	0x8c, 0xa8, 0x96, 0x66,
};

/* RFC 8489 Appendix B.1 as corrected by erratum 6268: USERHASH,
 * PASSWORD-ALGORITHM SHA-256 and MESSAGE-INTEGRITY-SHA256. */
static const uint8_t rfc8489_b1[] = {
	0x00, 0x01, 0x00, 0x90, 0x21, 0x12, 0xa4, 0x42,
	0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72, 0xc0,
	0x29, 0xda, 0x41, 0x2e,
	0x00, 0x1e, 0x00, 0x20, /* USERHASH */
	0x4a, 0x3c, 0xf3, 0x8f, 0xef, 0x69, 0x92, 0xbd,
	0xa9, 0x52, 0xc6, 0x78, 0x04, 0x17, 0xda, 0x0f,
	0x24, 0x81, 0x94, 0x15, 0x56, 0x9e, 0x60, 0xb2,
	0x05, 0xc4, 0x6e, 0x41, 0x40, 0x7f, 0x17, 0x04,
	0x00, 0x15, 0x00, 0x29, /* NONCE (41 bytes) */
	0x6f, 0x62, 0x4d, 0x61, 0x74, 0x4a, 0x6f, 0x73,
	0x32, 0x41, 0x41, 0x41, 0x43, 0x66, 0x2f, 0x2f,
	0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64,
	0x36, 0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39,
	0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
	0x41, 0x00, 0x00, 0x00,
	0x00, 0x14, 0x00, 0x0b, /* REALM "example.org" */
	0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e,
	0x6f, 0x72, 0x67, 0x00,
	0x00, 0x1d, 0x00, 0x04, /* PASSWORD-ALGORITHM SHA-256 */
	0x00, 0x02, 0x00, 0x00,
	0x00, 0x1c, 0x00, 0x20, /* MESSAGE-INTEGRITY-SHA256 */
	0xb5, 0xc7, 0xbf, 0x00, 0x5b, 0x6c, 0x52, 0xa2,
	0x1c, 0x51, 0xc5, 0xe8, 0x92, 0xf8, 0x19, 0x24,
	0x13, 0x62, 0x96, 0xcb, 0x92, 0x7c, 0x43, 0x14,
	0x93, 0x09, 0x27, 0x8c, 0xc6, 0x51, 0x8e, 0x65,
};

static const char short_pw[] = "VOkJxbRl1RmTxUk/WvJxBt";
/* U+30DE U+30C8 U+30EA U+30C3 U+30AF U+30B9 */
static const char lt_user[] =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
static const char lt_realm[] = "example.org";
static const char lt_pass[] = "TheMatrIX";
static const char lt_nonce[] = "f//499k954d6OL34oL9FSTvy64sA";
static const char b1_nonce[] = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";

static const uint8_t txid1[STUN_TXID_LEN] = {
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12
};

/* A heap copy of exactly len bytes, so ASan sees any overread. */
static uint8_t *
dup_exact(const uint8_t *p, size_t len)
{
	uint8_t *q;

	q = malloc(len > 0 ? len : 1);
	if (q == NULL)
		abort();
	if (len > 0)
		memcpy(q, p, len);
	return q;
}

static int
parse_exact(const uint8_t *p, size_t len, struct stun_msg *m)
{
	uint8_t *q;
	int rc;

	/* Parse in place so m may point into p after we return. */
	q = dup_exact(p, len);
	rc = stun_parse(q, len, m);
	free(q);
	if (rc == STUN_OK)
		rc = stun_parse(p, len, m);
	return rc;
}

static bool
attr_is(const struct stun_msg *m, uint16_t type, const void *v, size_t len)
{
	const struct stun_attr *a;

	if ((a = stun_attr_find(m, type)) == NULL)
		return false;
	return a->len == len && memcmp(a->value, v, len) == 0;
}

/* Every proper prefix of a valid STUN message is refused by stun_parse()
 * and is "need more" to stun_frame_len(); the whole message frames to
 * exactly its length, also with the next message's bytes behind it. */
static void
check_prefixes(const uint8_t *msg, size_t len)
{
	struct stun_msg m;
	uint8_t *q, *two;
	size_t n, flen;
	int rc, bad = 0, notagain = 0;

	for (n = 0; n < len; n++) {
		q = dup_exact(msg, n);
		rc = stun_parse(q, n, &m);
		if (rc == STUN_OK || (rc != STUN_ENOTSTUN &&
		    rc != STUN_EMALFORMED))
			bad++;
		if (rc != STUN_OK && (m.nattrs != 0 || m.buf != NULL))
			bad++;
		if (stun_frame_len(q, n, &flen) != STUN_EAGAIN)
			notagain++;
		free(q);
	}
	CHECK_EQ_INT(bad, 0);
	CHECK_EQ_INT(notagain, 0);

	q = dup_exact(msg, len);
	CHECK_EQ_INT(stun_parse(q, len, &m), STUN_OK);
	flen = 0;
	CHECK_EQ_INT(stun_frame_len(q, len, &flen), STUN_OK);
	CHECK_EQ_INT(flen, len);
	free(q);

	two = malloc(2 * len);
	if (two == NULL)
		abort();
	memcpy(two, msg, len);
	memcpy(two + len, msg, len);
	flen = 0;
	CHECK_EQ_INT(stun_frame_len(two, 2 * len - 1, &flen), STUN_OK);
	CHECK_EQ_INT(flen, len);
	free(two);
}

static void
test_rfc5769_request(void)
{
	struct stun_msg m;
	uint32_t v;
	static const uint8_t txid[] = {
		0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
		0xfa, 0x87, 0xdf, 0xae
	};

	CHECK_EQ_INT(parse_exact(rfc5769_req, sizeof(rfc5769_req), &m), STUN_OK);
	CHECK_EQ_INT(m.method, STUN_BINDING);
	CHECK_EQ_INT(m.cls, STUN_REQUEST);
	CHECK(memcmp(m.txid, txid, sizeof(txid)) == 0);
	CHECK_EQ_INT(m.nattrs, 6);
	CHECK_EQ_INT(m.nunknown, 0);
	CHECK_EQ_INT(m.mi_idx, 4);
	CHECK_EQ_INT(m.mi256_idx, -1);
	CHECK_EQ_INT(m.fp_idx, 5);
	CHECK(attr_is(&m, STUN_A_SOFTWARE, "STUN test client", 16));
	CHECK(attr_is(&m, STUN_A_USERNAME, "evtj:h6vY", 9));
	CHECK(stun_attr_find(&m, STUN_A_ICE_CONTROLLED) != NULL);
	CHECK(stun_attr_find(&m, STUN_A_REALM) == NULL);
	CHECK_EQ_INT(stun_attr_u32(stun_attr_find(&m, STUN_A_PRIORITY), &v),
	    STUN_OK);
	CHECK_EQ_INT(v, 0x6e0001ff);
	CHECK_EQ_INT(stun_attr_u32(stun_attr_find(&m, STUN_A_ICE_CONTROLLED),
	    &v), STUN_EMALFORMED);
	/* Getters take stun_attr_find()'s NULL for an absent attribute. */
	CHECK_EQ_INT(stun_attr_u32(stun_attr_find(&m, STUN_A_LIFETIME), &v),
	    STUN_ENOTFOUND);
	{
		struct sockaddr_storage ss;
		const uint8_t *reason;
		size_t rlen;
		int code;

		CHECK_EQ_INT(stun_attr_addr(&m, stun_attr_find(&m,
		    STUN_A_XOR_MAPPED_ADDRESS), true, &ss), STUN_ENOTFOUND);
		CHECK_EQ_INT(stun_attr_error(stun_attr_find(&m,
		    STUN_A_ERROR_CODE), &code, &reason, &rlen), STUN_ENOTFOUND);
	}

	/* RFC 8489 §9.1.1: the short-term key is the password itself. */
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
	    (const uint8_t *)short_pw, strlen(short_pw)), STUN_OK);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
	    (const uint8_t *)short_pw, strlen(short_pw) - 1), STUN_EINTEGRITY);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
	    NULL, 0), STUN_EINTEGRITY);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    (const uint8_t *)short_pw, strlen(short_pw)), STUN_ENOTFOUND);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_FINGERPRINT,
	    (const uint8_t *)short_pw, strlen(short_pw)), STUN_ENOTFOUND);
	CHECK_EQ_INT(stun_demux(rfc5769_req, sizeof(rfc5769_req)), 1);
	check_prefixes(rfc5769_req, sizeof(rfc5769_req));
}

static void
test_rfc5769_v4(void)
{
	struct stun_msg m;
	struct sockaddr_storage ss;
	struct sockaddr_in sin;

	CHECK_EQ_INT(parse_exact(rfc5769_v4, sizeof(rfc5769_v4), &m), STUN_OK);
	CHECK_EQ_INT(m.method, STUN_BINDING);
	CHECK_EQ_INT(m.cls, STUN_SUCCESS);
	CHECK(attr_is(&m, STUN_A_SOFTWARE, "test vector", 11));
	CHECK_EQ_INT(stun_attr_addr(&m, stun_attr_find(&m,
	    STUN_A_XOR_MAPPED_ADDRESS), true, &ss), STUN_OK);
	memcpy(&sin, &ss, sizeof(sin));
	CHECK_EQ_INT(sin.sin_family, AF_INET);
	CHECK_EQ_INT(ntohs(sin.sin_port), 32853);
	CHECK_EQ_INT(ntohl(sin.sin_addr.s_addr), 0xc0000201); /* 192.0.2.1 */
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
	    (const uint8_t *)short_pw, strlen(short_pw)), STUN_OK);
	check_prefixes(rfc5769_v4, sizeof(rfc5769_v4));
}

static void
test_rfc5769_v6(void)
{
	struct stun_msg m;
	struct sockaddr_storage ss;
	struct sockaddr_in6 sin6;
	struct in6_addr want;

	CHECK_EQ_INT(parse_exact(rfc5769_v6, sizeof(rfc5769_v6), &m), STUN_OK);
	CHECK_EQ_INT(m.cls, STUN_SUCCESS);
	CHECK_EQ_INT(stun_attr_addr(&m, stun_attr_find(&m,
	    STUN_A_XOR_MAPPED_ADDRESS), true, &ss), STUN_OK);
	memcpy(&sin6, &ss, sizeof(sin6));
	CHECK_EQ_INT(sin6.sin6_family, AF_INET6);
	CHECK_EQ_INT(ntohs(sin6.sin6_port), 32853);
	CHECK_EQ_INT(inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677",
	    &want), 1);
	CHECK(memcmp(&sin6.sin6_addr, &want, sizeof(want)) == 0);
	/* Read without the XOR it is a different, still valid address. */
	CHECK_EQ_INT(stun_attr_addr(&m, stun_attr_find(&m,
	    STUN_A_XOR_MAPPED_ADDRESS), false, &ss), STUN_OK);
	memcpy(&sin6, &ss, sizeof(sin6));
	CHECK(memcmp(&sin6.sin6_addr, &want, sizeof(want)) != 0);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
	    (const uint8_t *)short_pw, strlen(short_pw)), STUN_OK);
	check_prefixes(rfc5769_v6, sizeof(rfc5769_v6));
}

static void
test_rfc5769_long_term(void)
{
	struct stun_msg m;
	struct stun_builder b;
	uint8_t key[16], buf[256];
	size_t len = 0;

	stun_key_md5(lt_user, strlen(lt_user), lt_realm, strlen(lt_realm),
	    lt_pass, strlen(lt_pass), key);
	CHECK_EQ_INT(parse_exact(rfc5769_lt, sizeof(rfc5769_lt), &m), STUN_OK);
	CHECK_EQ_INT(m.fp_idx, -1);
	CHECK(attr_is(&m, STUN_A_USERNAME, lt_user, strlen(lt_user)));
	CHECK(attr_is(&m, STUN_A_NONCE, lt_nonce, strlen(lt_nonce)));
	CHECK(attr_is(&m, STUN_A_REALM, lt_realm, strlen(lt_realm)));
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY, key,
	    sizeof(key)), STUN_OK);
	key[0] ^= 1;
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY, key,
	    sizeof(key)), STUN_EINTEGRITY);
	key[0] ^= 1;
	check_prefixes(rfc5769_lt, sizeof(rfc5769_lt));

	/* The builder reproduces the vector exactly. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST,
	    rfc5769_lt + 8);
	stun_build_attr(&b, STUN_A_USERNAME, lt_user, strlen(lt_user));
	stun_build_attr(&b, STUN_A_NONCE, lt_nonce, strlen(lt_nonce));
	stun_build_attr(&b, STUN_A_REALM, lt_realm, strlen(lt_realm));
	stun_build_integrity(&b, key, sizeof(key));
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(len, sizeof(rfc5769_lt));
	CHECK(len == sizeof(rfc5769_lt) && memcmp(buf, rfc5769_lt, len) == 0);
}

static void
test_rfc8489_b1(void)
{
	struct stun_msg m;
	struct stun_builder b;
	uint8_t key[32], userhash[32], buf[256], *q;
	unsigned int n = 0;
	size_t len = 0, i;
	char uh_in[64];
	uint32_t alg;

	/* RFC 8489 §14.4: USERHASH = SHA-256(username ":" realm). */
	len = (size_t)snprintf(uh_in, sizeof(uh_in), "%s:%s", lt_user, lt_realm);
	CHECK(EVP_Digest(uh_in, len, userhash, &n, EVP_sha256(), NULL) == 1);
	stun_key_sha256(lt_user, strlen(lt_user), lt_realm, strlen(lt_realm),
	    lt_pass, strlen(lt_pass), key);

	CHECK_EQ_INT(parse_exact(rfc8489_b1, sizeof(rfc8489_b1), &m), STUN_OK);
	CHECK(attr_is(&m, STUN_A_USERHASH, userhash, sizeof(userhash)));
	CHECK(attr_is(&m, STUN_A_NONCE, b1_nonce, strlen(b1_nonce)));
	CHECK_EQ_INT(stun_attr_u32(stun_attr_find(&m,
	    STUN_A_PASSWORD_ALGORITHM), &alg), STUN_OK);
	CHECK_EQ_INT(alg >> 16, STUN_PWALG_SHA256);
	CHECK_EQ_INT(m.mi_idx, -1);
	CHECK_EQ_INT(m.mi256_idx, 4);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    key, sizeof(key)), STUN_OK);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY, key,
	    sizeof(key)), STUN_ENOTFOUND);
	check_prefixes(rfc8489_b1, sizeof(rfc8489_b1));

	/* Flipping any byte before the MAC breaks it. */
	q = dup_exact(rfc8489_b1, sizeof(rfc8489_b1));
	for (i = STUN_HEADER_LEN; i < sizeof(rfc8489_b1) - 36; i += 7) {
		q[i] ^= 0x20;
		if (stun_parse(q, sizeof(rfc8489_b1), &m) == STUN_OK)
			CHECK_EQ_INT(stun_check_integrity(&m,
			    STUN_A_MESSAGE_INTEGRITY_SHA256, key, sizeof(key)),
			    STUN_EINTEGRITY);
		q[i] ^= 0x20;
	}
	free(q);

	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST,
	    rfc8489_b1 + 8);
	stun_build_attr(&b, STUN_A_USERHASH, userhash, sizeof(userhash));
	stun_build_attr(&b, STUN_A_NONCE, b1_nonce, strlen(b1_nonce));
	stun_build_attr(&b, STUN_A_REALM, lt_realm, strlen(lt_realm));
	stun_build_u32(&b, STUN_A_PASSWORD_ALGORITHM,
	    (uint32_t)STUN_PWALG_SHA256 << 16);
	stun_build_integrity_sha256(&b, key, sizeof(key));
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(len, sizeof(rfc8489_b1));
	CHECK(len == sizeof(rfc8489_b1) && memcmp(buf, rfc8489_b1, len) == 0);
}

static void
test_keys(void)
{
	uint8_t md5[16], sha[32], want[32];
	unsigned int n = 0;
	static const char s[] = "user:realm:pass";

	stun_key_md5("user", 4, "realm", 5, "pass", 4, md5);
	CHECK(EVP_Digest(s, strlen(s), want, &n, EVP_md5(), NULL) == 1);
	CHECK(memcmp(md5, want, 16) == 0);
	stun_key_sha256("user", 4, "realm", 5, "pass", 4, sha);
	CHECK(EVP_Digest(s, strlen(s), want, &n, EVP_sha256(), NULL) == 1);
	CHECK(memcmp(sha, want, 32) == 0);
	/* Lengths are honoured: bytes after them are not hashed. */
	stun_key_md5("userX", 4, "realmX", 5, "passX", 4, md5);
	CHECK_EQ_INT(EVP_Digest(s, strlen(s), want, &n, EVP_md5(), NULL), 1);
	CHECK(memcmp(md5, want, 16) == 0);
}

/* Header corruptions and framing of the header fields. */
static void
test_header_errors(void)
{
	struct stun_msg m;
	uint8_t q[sizeof(rfc5769_v4) + 4];
	uint8_t big[STUN_MAX_MESSAGE + 8];
	size_t flen;

	memcpy(q, rfc5769_v4, sizeof(rfc5769_v4));
	q[4] ^= 1; /* cookie */
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_ENOTSTUN);
	CHECK_EQ_INT(stun_frame_len(q, sizeof(rfc5769_v4), &flen),
	    STUN_ENOTSTUN);
	CHECK_EQ_INT(m.nattrs, 0);
	CHECK_EQ_INT(m.mi_idx, -1);

	memcpy(q, rfc5769_v4, sizeof(rfc5769_v4));
	q[0] |= 0x80; /* top bits */
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_ENOTSTUN);
	q[0] = 0x41;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_ENOTSTUN);

	/* Length field not a multiple of 4, and off by one word. */
	memcpy(q, rfc5769_v4, sizeof(rfc5769_v4));
	q[3] = 0x3e;
	CHECK_EQ_INT(stun_parse(q, 20 + 0x3e, &m), STUN_EMALFORMED);
	CHECK_EQ_INT(stun_frame_len(q, sizeof(rfc5769_v4), &flen),
	    STUN_EMALFORMED);
	q[3] = 0x38;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_EMALFORMED);
	q[3] = 0x3c;
	memset(q + sizeof(rfc5769_v4), 0, 4);
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4) + 4, &m),
	    STUN_EMALFORMED);

	/* Too large to accept, even if consistent. */
	memset(big, 0, sizeof(big));
	memcpy(big, rfc5769_v4, 20);
	big[2] = (uint8_t)((STUN_MAX_MESSAGE - 16) >> 8);
	big[3] = (uint8_t)(STUN_MAX_MESSAGE - 16);
	CHECK_EQ_INT(stun_parse(big, STUN_MAX_MESSAGE + 4, &m),
	    STUN_EMALFORMED);
	CHECK_EQ_INT(stun_frame_len(big, 20, &flen), STUN_EMALFORMED);
	/* Exactly the maximum: one long, optional, unknown attribute. */
	big[2] = (uint8_t)((STUN_MAX_MESSAGE - 20) >> 8);
	big[3] = (uint8_t)(STUN_MAX_MESSAGE - 20);
	big[20] = 0x80;
	big[21] = 0x99;
	big[22] = (uint8_t)((STUN_MAX_MESSAGE - 24) >> 8);
	big[23] = (uint8_t)(STUN_MAX_MESSAGE - 24);
	CHECK_EQ_INT(stun_parse(big, STUN_MAX_MESSAGE, &m), STUN_OK);
	CHECK_EQ_INT(stun_frame_len(big, STUN_MAX_MESSAGE, &flen), STUN_OK);
	CHECK_EQ_INT(flen, STUN_MAX_MESSAGE);

	/* A header alone whose length says otherwise is broken; with a zero
	 * length it is a valid, empty message. */
	CHECK_EQ_INT(stun_parse(rfc5769_lt, 20, &m), STUN_EMALFORMED);
	memcpy(q, rfc5769_lt, 20);
	q[2] = q[3] = 0;
	CHECK_EQ_INT(stun_parse(q, 20, &m), STUN_OK);
	CHECK_EQ_INT(m.nattrs, 0);
	CHECK_EQ_INT(stun_parse(NULL, 0, &m), STUN_ENOTSTUN);
}

/* Attribute-level corruptions of the vectors. */
static void
test_attr_errors(void)
{
	struct stun_msg m;
	uint8_t q[sizeof(rfc5769_req)];

	/* SOFTWARE's length runs past the end. */
	memcpy(q, rfc5769_v4, sizeof(rfc5769_v4));
	q[22] = 0x00;
	q[23] = 0xff;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_EMALFORMED);
	/* ... and by one byte: 0x38 bytes are left after its header. */
	q[23] = 0x39;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_EMALFORMED);
	/* Swallowing every later attribute, padding included, is fine. */
	q[23] = 0x35;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_OK);
	CHECK_EQ_INT(m.nattrs, 1);
	q[23] = 0x3a;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_v4), &m), STUN_EMALFORMED);

	/* Any flipped byte breaks the FINGERPRINT. */
	memcpy(q, rfc5769_req, sizeof(rfc5769_req));
	q[30] ^= 0x01;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_req), &m), STUN_EMALFORMED);
	memcpy(q, rfc5769_req, sizeof(rfc5769_req));
	q[sizeof(rfc5769_req) - 1] ^= 0x01;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_req), &m), STUN_EMALFORMED);
	/* Padding bytes are covered by the CRC but need not be zero: the
	 * vector's spaces already show that. Changing the MI value is
	 * caught by the CRC too. */
	memcpy(q, rfc5769_req, sizeof(rfc5769_req));
	q[sizeof(rfc5769_req) - 10] ^= 0x01;
	CHECK_EQ_INT(stun_parse(q, sizeof(rfc5769_req), &m), STUN_EMALFORMED);
}

/* Build a message from the given attributes; returns its length. */
static size_t
build_raw(uint8_t *buf, size_t cap, const uint16_t *types, size_t n,
    size_t vlen)
{
	struct stun_builder b;
	uint8_t val[64];
	size_t i, len = 0;

	memset(val, 0xab, sizeof(val));
	stun_build_init(&b, buf, cap, STUN_BINDING, STUN_REQUEST, txid1);
	for (i = 0; i < n; i++)
		stun_build_attr(&b, types[i], val, vlen);
	if (stun_build_finish(&b, &len) != STUN_OK)
		abort();
	return len;
}

static void
test_attr_rules(void)
{
	struct stun_msg m;
	struct stun_builder b;
	uint8_t buf[1024], val[36];
	uint16_t types[STUN_MAX_ATTRS + 1];
	const struct stun_attr *a;
	size_t len = 0, i;
	int rc;

	memset(val, 0x5a, sizeof(val));

	/* MESSAGE-INTEGRITY of the wrong length. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_MESSAGE_INTEGRITY, val, 16);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_EMALFORMED);

	/* MESSAGE-INTEGRITY-SHA256: 16..32, multiple of 4. */
	{
		static const struct { size_t len; int rc; } cases[] = {
			{ 12, STUN_EMALFORMED }, { 16, STUN_OK },
			{ 18, STUN_EMALFORMED }, { 20, STUN_OK },
			{ 32, STUN_OK }, { 36, STUN_EMALFORMED },
		};
		for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			stun_build_init(&b, buf, sizeof(buf), STUN_BINDING,
			    STUN_REQUEST, txid1);
			stun_build_attr(&b, STUN_A_MESSAGE_INTEGRITY_SHA256, val,
			    cases[i].len);
			CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
			CHECK_EQ_INT(stun_parse(buf, len, &m), cases[i].rc);
		}
	}

	/* FINGERPRINT of the wrong length, and not last. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_FINGERPRINT, val, 8);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_EMALFORMED);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_fingerprint(&b);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.fp_idx, 0);
	stun_build_attr(&b, STUN_A_SOFTWARE, "x", 1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_EMALFORMED);
	/* Not last even when the CRC is made to match again. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_fingerprint(&b);
	stun_build_fingerprint(&b);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_EMALFORMED);

	/* STUN_MAX_ATTRS distinct attributes are fine, one more is not. */
	for (i = 0; i <= STUN_MAX_ATTRS; i++)
		types[i] = (uint16_t)(0x8100 + i);
	len = build_raw(buf, sizeof(buf), types, STUN_MAX_ATTRS, 4);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.nattrs, STUN_MAX_ATTRS);
	CHECK_EQ_INT(m.nunknown, 0);
	len = build_raw(buf, sizeof(buf), types, STUN_MAX_ATTRS + 1, 4);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_EMALFORMED);
	CHECK_EQ_INT(m.nattrs, 0);
	/* Duplicates are not kept, so they do not count. */
	for (i = 0; i <= STUN_MAX_ATTRS; i++)
		types[i] = STUN_A_SOFTWARE;
	len = build_raw(buf, sizeof(buf), types, STUN_MAX_ATTRS + 1, 4);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.nattrs, 1);

	/* Unknown comprehension-required types are listed, optional ones
	 * are not; known types never are. */
	types[0] = 0x0031;
	types[1] = 0x8031;
	types[2] = STUN_A_RESPONSE_PORT;
	types[3] = 0x7fff;
	types[4] = 0x0031;
	len = build_raw(buf, sizeof(buf), types, 5, 4);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.nunknown, 2);
	CHECK_EQ_INT(m.unknown[0], 0x0031);
	CHECK_EQ_INT(m.unknown[1], 0x7fff);
	CHECK(stun_attr_find(&m, 0x8031) != NULL);
	/* More than STUN_MAX_UNKNOWN: capped, still counted as unknown. */
	for (i = 0; i < STUN_MAX_UNKNOWN + 3; i++)
		types[i] = (uint16_t)(0x0040 + i);
	len = build_raw(buf, sizeof(buf), types, STUN_MAX_UNKNOWN + 3, 0);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.nunknown, STUN_MAX_UNKNOWN);
	CHECK_EQ_INT(m.unknown[STUN_MAX_UNKNOWN - 1],
	    0x0040 + STUN_MAX_UNKNOWN - 1);

	/* A duplicate keeps the first value. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_USERNAME, "first", 5);
	stun_build_attr(&b, STUN_A_USERNAME, "second", 6);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.nattrs, 1);
	CHECK(attr_is(&m, STUN_A_USERNAME, "first", 5));

	/* After MESSAGE-INTEGRITY only MI-SHA256 and FINGERPRINT count;
	 * MI still verifies because its length is adjusted. */
	stun_build_init(&b, buf, sizeof(buf), TURN_ALLOCATE, STUN_REQUEST,
	    txid1);
	stun_build_attr(&b, STUN_A_USERNAME, "alice", 5);
	stun_build_integrity(&b, (const uint8_t *)"k", 1);
	stun_build_attr(&b, STUN_A_SOFTWARE, "after", 5);
	stun_build_attr(&b, 0x0031, "x", 1);
	stun_build_attr(&b, STUN_A_USERNAME, "mallory", 7);
	stun_build_integrity_sha256(&b, (const uint8_t *)"k", 1);
	stun_build_attr(&b, STUN_A_REALM, "after256", 8);
	stun_build_integrity(&b, (const uint8_t *)"k", 1);
	stun_build_fingerprint(&b);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.nattrs, 4);
	CHECK_EQ_INT(m.nunknown, 0);
	CHECK(stun_attr_find(&m, STUN_A_SOFTWARE) == NULL);
	CHECK(stun_attr_find(&m, STUN_A_REALM) == NULL);
	CHECK(attr_is(&m, STUN_A_USERNAME, "alice", 5));
	CHECK_EQ_INT(m.mi_idx, 1);
	CHECK_EQ_INT(m.mi256_idx, 2);
	CHECK_EQ_INT(m.fp_idx, 3);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
	    (const uint8_t *)"k", 1), STUN_OK);
	/* MI-SHA256 covers the ignored attributes before it. */
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    (const uint8_t *)"k", 1), STUN_OK);
	check_prefixes(buf, len);

	/* After MESSAGE-INTEGRITY-SHA256 even MI is ignored. */
	stun_build_init(&b, buf, sizeof(buf), TURN_REFRESH, STUN_REQUEST, txid1);
	stun_build_integrity_sha256(&b, (const uint8_t *)"k", 1);
	stun_build_integrity(&b, (const uint8_t *)"k", 1);
	stun_build_attr(&b, 0x0031, "x", 1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.nattrs, 1);
	CHECK_EQ_INT(m.mi_idx, -1);
	CHECK_EQ_INT(m.nunknown, 0);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
	    (const uint8_t *)"k", 1), STUN_ENOTFOUND);

	/* stun_parse() leaves *m empty on failure. */
	buf[3] ^= 4;
	rc = stun_parse(buf, len, &m);
	CHECK_EQ_INT(rc, STUN_EMALFORMED);
	CHECK_EQ_INT(m.nattrs, 0);
	CHECK_EQ_INT(m.mi256_idx, -1);
	a = stun_attr_find(&m, STUN_A_MESSAGE_INTEGRITY_SHA256);
	CHECK(a == NULL);
}

static void
test_integrity_roundtrip(void)
{
	struct stun_msg m;
	struct stun_builder b;
	uint8_t buf[512], trunc[512], mac[32], key[32];
	unsigned int maclen = 0;
	size_t len = 0, off, i;
	const struct stun_attr *a;
	size_t mi_end;
	int bad;

	memset(key, 0x33, sizeof(key));
	stun_build_init(&b, buf, sizeof(buf), TURN_CREATE_PERMISSION,
	    STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_USERNAME, "bob", 3);
	stun_build_attr(&b, STUN_A_REALM, "gatehouse", 9);
	stun_build_integrity(&b, key, sizeof(key));
	stun_build_integrity_sha256(&b, key, sizeof(key));
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(parse_exact(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.method, TURN_CREATE_PERMISSION);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY, key,
	    sizeof(key)), STUN_OK);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    key, sizeof(key)), STUN_OK);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    key, sizeof(key) - 1), STUN_EINTEGRITY);
	mi_end = m.attrs[m.mi_idx].offset + 24;
	check_prefixes(buf, len);

	/* Tampering with any byte before a MAC, or in it, never verifies:
	 * EINTEGRITY, or ENOTFOUND where the flip hits the MAC attribute's
	 * own type. No FINGERPRINT here, so most parses still succeed; the
	 * length bytes are skipped since changing them breaks the parse. */
	bad = 0;
	for (i = 0; i < len; i++) {
		if (i == 2 || i == 3)
			continue;
		buf[i] ^= 0x04;
		if (stun_parse(buf, len, &m) == STUN_OK) {
			if (i < mi_end &&
			    stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY,
			    key, sizeof(key)) == STUN_OK)
				bad++;
			if (stun_check_integrity(&m,
			    STUN_A_MESSAGE_INTEGRITY_SHA256, key, sizeof(key)) ==
			    STUN_OK)
				bad++;
		}
		buf[i] ^= 0x04;
	}
	CHECK_EQ_INT(bad, 0);

	/* A MESSAGE-INTEGRITY-SHA256 truncated to 16 bytes (§14.6), made
	 * here with a one-shot HMAC as an independent check. */
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	off = m.attrs[m.mi256_idx].offset;
	memcpy(trunc, buf, off);
	trunc[2] = (uint8_t)((off - 20 + 4 + 16) >> 8);
	trunc[3] = (uint8_t)(off - 20 + 4 + 16);
	CHECK(HMAC(EVP_sha256(), key, sizeof(key), trunc, off, mac,
	    &maclen) != NULL);
	trunc[off] = 0x00;
	trunc[off + 1] = 0x1c;
	trunc[off + 2] = 0x00;
	trunc[off + 3] = 16;
	memcpy(trunc + off + 4, mac, 16);
	CHECK_EQ_INT(parse_exact(trunc, off + 20, &m), STUN_OK);
	a = stun_attr_find(&m, STUN_A_MESSAGE_INTEGRITY_SHA256);
	CHECK(a != NULL && a->len == 16);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    key, sizeof(key)), STUN_OK);
	trunc[off + 4 + 15] ^= 1;
	CHECK_EQ_INT(stun_parse(trunc, off + 20, &m), STUN_OK);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    key, sizeof(key)), STUN_EINTEGRITY);

	/* An empty key is a key like any other. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_integrity(&b, NULL, 0);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(stun_check_integrity(&m, STUN_A_MESSAGE_INTEGRITY, NULL,
	    0), STUN_OK);
	CHECK(HMAC(EVP_sha1(), "", 0, buf, 20, mac, &maclen) != NULL);
	CHECK(memcmp(mac, buf + 24, 20) == 0);
}

static void
test_builder_addr(void)
{
	struct stun_msg m;
	struct stun_builder b;
	struct sockaddr_in sin, sin_out;
	struct sockaddr_in6 sin6, sin6_out;
	struct sockaddr_storage ss;
	struct sockaddr bogus;
	uint8_t buf[256];
	size_t len = 0;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(49152);
	CHECK_EQ_INT(inet_pton(AF_INET, "203.0.113.7", &sin.sin_addr), 1);
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_port = htons(3478);
	CHECK_EQ_INT(inet_pton(AF_INET6, "2001:db8::dead:beef", &sin6.sin6_addr),
	    1);

	stun_build_init(&b, buf, sizeof(buf), TURN_ALLOCATE, STUN_SUCCESS,
	    txid1);
	stun_build_addr(&b, STUN_A_XOR_RELAYED_ADDRESS,
	    (const struct sockaddr *)&sin, true);
	stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS,
	    (const struct sockaddr *)&sin6, true);
	stun_build_addr(&b, STUN_A_MAPPED_ADDRESS,
	    (const struct sockaddr *)&sin, false);
	stun_build_u32(&b, STUN_A_LIFETIME, 600);
	stun_build_fingerprint(&b);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(parse_exact(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.method, TURN_ALLOCATE);
	CHECK_EQ_INT(m.cls, STUN_SUCCESS);

	CHECK_EQ_INT(stun_attr_addr(&m, stun_attr_find(&m,
	    STUN_A_XOR_RELAYED_ADDRESS), true, &ss), STUN_OK);
	memcpy(&sin_out, &ss, sizeof(sin_out));
	CHECK_EQ_INT(sin_out.sin_family, AF_INET);
	CHECK_EQ_INT(sin_out.sin_port, sin.sin_port);
	CHECK_EQ_INT(sin_out.sin_addr.s_addr, sin.sin_addr.s_addr);
	/* On the wire the address is XORed, not plain. */
	CHECK(memcmp(stun_attr_find(&m, STUN_A_XOR_RELAYED_ADDRESS)->value + 4,
	    &sin.sin_addr, 4) != 0);

	CHECK_EQ_INT(stun_attr_addr(&m, stun_attr_find(&m,
	    STUN_A_XOR_PEER_ADDRESS), true, &ss), STUN_OK);
	memcpy(&sin6_out, &ss, sizeof(sin6_out));
	CHECK_EQ_INT(sin6_out.sin6_family, AF_INET6);
	CHECK_EQ_INT(sin6_out.sin6_port, sin6.sin6_port);
	CHECK(memcmp(&sin6_out.sin6_addr, &sin6.sin6_addr, 16) == 0);

	CHECK_EQ_INT(stun_attr_addr(&m, stun_attr_find(&m,
	    STUN_A_MAPPED_ADDRESS), false, &ss), STUN_OK);
	memcpy(&sin_out, &ss, sizeof(sin_out));
	CHECK_EQ_INT(sin_out.sin_port, sin.sin_port);
	CHECK_EQ_INT(sin_out.sin_addr.s_addr, sin.sin_addr.s_addr);
	check_prefixes(buf, len);

	/* Bad families and lengths. */
	{
		static const uint8_t bad_values[][20] = {
			{ 0, 3, 0, 1, 1, 2, 3, 4 },   /* family 3 */
			{ 0, 0, 0, 1, 1, 2, 3, 4 },   /* family 0 */
			{ 0, 2, 0, 1, 1, 2, 3, 4 },   /* IPv6 in 8 bytes */
		};
		static const size_t bad_lens[] = { 8, 8, 8 };
		uint8_t v4long[20] = { 0, 1, 0, 1 };
		size_t i;

		for (i = 0; i < 3; i++) {
			stun_build_init(&b, buf, sizeof(buf), STUN_BINDING,
			    STUN_SUCCESS, txid1);
			stun_build_attr(&b, STUN_A_XOR_MAPPED_ADDRESS,
			    bad_values[i], bad_lens[i]);
			CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
			CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
			CHECK_EQ_INT(stun_attr_addr(&m, &m.attrs[0], true, &ss),
			    STUN_EMALFORMED);
		}
		stun_build_init(&b, buf, sizeof(buf), STUN_BINDING,
		    STUN_SUCCESS, txid1);
		stun_build_attr(&b, STUN_A_XOR_MAPPED_ADDRESS, v4long, 20);
		stun_build_attr(&b, STUN_A_MAPPED_ADDRESS, v4long, 3);
		CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
		CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
		CHECK_EQ_INT(stun_attr_addr(&m, &m.attrs[0], true, &ss),
		    STUN_EMALFORMED);
		CHECK_EQ_INT(stun_attr_addr(&m, &m.attrs[1], false, &ss),
		    STUN_EMALFORMED);
	}

	memset(&bogus, 0, sizeof(bogus));
	bogus.sa_family = AF_UNIX;
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS, txid1);
	stun_build_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, &bogus, true);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS, txid1);
	stun_build_addr(&b, STUN_A_XOR_MAPPED_ADDRESS, NULL, true);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);
}

static void
test_builder_error_unknown(void)
{
	struct stun_msg m;
	struct stun_builder b;
	uint8_t buf[1200];
	char longreason[800];
	const uint8_t *reason;
	size_t len = 0, rlen = 0;
	int code = 0;
	static const uint16_t unk[] = { 0x0031, 0x7fff, 0x0042 };
	const struct stun_attr *a;

	stun_build_init(&b, buf, sizeof(buf), TURN_REFRESH, STUN_ERROR, txid1);
	stun_build_error(&b, 438, "Stale Nonce");
	stun_build_unknown(&b, unk, 3);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(len % 4, 0);
	CHECK_EQ_INT(parse_exact(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(m.method, TURN_REFRESH);
	CHECK_EQ_INT(m.cls, STUN_ERROR);
	CHECK_EQ_INT(stun_attr_error(stun_attr_find(&m, STUN_A_ERROR_CODE),
	    &code, &reason, &rlen), STUN_OK);
	CHECK_EQ_INT(code, 438);
	CHECK(rlen == 11 && memcmp(reason, "Stale Nonce", 11) == 0);
	a = stun_attr_find(&m, STUN_A_UNKNOWN_ATTRIBUTES);
	CHECK(a != NULL && a->len == 6);
	CHECK(a != NULL && a->value[0] == 0x00 && a->value[1] == 0x31 &&
	    a->value[2] == 0x7f && a->value[3] == 0xff &&
	    a->value[4] == 0x00 && a->value[5] == 0x42);
	/* Padding is zero. */
	CHECK(a != NULL && a->value[6] == 0 && a->value[7] == 0);
	check_prefixes(buf, len);

	/* Codes and reasons at the edges. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR, txid1);
	stun_build_error(&b, 300, NULL);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
	CHECK_EQ_INT(stun_attr_error(&m.attrs[0], &code, &reason, &rlen),
	    STUN_OK);
	CHECK_EQ_INT(code, 300);
	CHECK_EQ_INT(rlen, 0);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR, txid1);
	stun_build_error(&b, 699, "x");
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR, txid1);
	stun_build_error(&b, 299, "x");
	stun_build_u32(&b, STUN_A_LIFETIME, 1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR, txid1);
	stun_build_error(&b, 700, "x");
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);
	memset(longreason, 'a', sizeof(longreason));
	longreason[763] = '\0';
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR, txid1);
	stun_build_error(&b, 500, longreason);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	longreason[763] = 'a';
	longreason[764] = '\0';
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR, txid1);
	stun_build_error(&b, 500, longreason);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);

	/* Malformed ERROR-CODE values on receipt. */
	{
		static const uint8_t v_short[3] = { 0, 0, 4 };
		static const uint8_t v_cls[4] = { 0, 0, 2, 0 };
		static const uint8_t v_num[4] = { 0, 0, 4, 100 };
		static const uint8_t v_resv[4] = { 0xff, 0xff, 0xfc, 1 };

		stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR,
		    txid1);
		stun_build_attr(&b, 0x8101, v_short, sizeof(v_short));
		stun_build_attr(&b, 0x8102, v_cls, sizeof(v_cls));
		stun_build_attr(&b, 0x8103, v_num, sizeof(v_num));
		stun_build_attr(&b, 0x8104, v_resv, sizeof(v_resv));
		CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
		CHECK_EQ_INT(stun_parse(buf, len, &m), STUN_OK);
		CHECK_EQ_INT(stun_attr_error(&m.attrs[0], &code, &reason, &rlen),
		    STUN_EMALFORMED);
		CHECK_EQ_INT(stun_attr_error(&m.attrs[1], &code, &reason, &rlen),
		    STUN_EMALFORMED);
		CHECK_EQ_INT(stun_attr_error(&m.attrs[2], &code, &reason, &rlen),
		    STUN_EMALFORMED);
		/* Reserved bits are ignored. */
		CHECK_EQ_INT(stun_attr_error(&m.attrs[3], &code, &reason, &rlen),
		    STUN_OK);
		CHECK_EQ_INT(code, 401);
	}

	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_ERROR, txid1);
	stun_build_unknown(&b, NULL, 0);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	stun_build_unknown(&b, NULL, 1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);
}

static void
test_builder_limits(void)
{
	struct stun_builder b;
	struct stun_msg m;
	uint8_t buf[64], *big;
	uint8_t val[60];
	size_t len = 12345, cap;
	uint16_t method, cls;
	int bad;
	static const uint16_t classes[] = {
		STUN_REQUEST, STUN_INDICATION, STUN_SUCCESS, STUN_ERROR
	};
	size_t c;

	memset(val, 0, sizeof(val));
	/* Too small for the header. */
	stun_build_init(&b, buf, 19, STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_u32(&b, STUN_A_LIFETIME, 1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_ENOSPC);
	CHECK_EQ_INT(len, 12345);
	stun_build_init(&b, NULL, 0, STUN_BINDING, STUN_REQUEST, txid1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_ENOSPC);

	/* Exactly full, then one byte over; the error is sticky and the
	 * message is left as it was before the failing call. */
	stun_build_init(&b, buf, 28, STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_u32(&b, STUN_A_LIFETIME, 1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(len, 28);
	stun_build_init(&b, buf, 27, STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_u32(&b, STUN_A_LIFETIME, 1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_ENOSPC);
	CHECK_EQ_INT(b.len, 20);
	CHECK_EQ_INT(buf[2], 0);
	CHECK_EQ_INT(buf[3], 0);
	/* Padding counts against the room. */
	stun_build_init(&b, buf, 39, STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_USERNAME, val, 13);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_ENOSPC);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_USERNAME, val, 40);
	stun_build_integrity(&b, (const uint8_t *)"k", 1);
	stun_build_fingerprint(&b);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_ENOSPC);
	CHECK_EQ_INT(b.len, 64);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_USERNAME, NULL, 4);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);

	/* Never more than STUN_MAX_MESSAGE, whatever the buffer. */
	cap = 2 * STUN_MAX_MESSAGE;
	big = calloc(1, cap);
	if (big == NULL)
		abort();
	stun_build_init(&b, big, cap, STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_DATA, big + STUN_MAX_MESSAGE,
	    STUN_MAX_MESSAGE - 24);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_OK);
	CHECK_EQ_INT(len, STUN_MAX_MESSAGE);
	stun_build_init(&b, big, cap, STUN_BINDING, STUN_REQUEST, txid1);
	stun_build_attr(&b, STUN_A_DATA, big + STUN_MAX_MESSAGE,
	    STUN_MAX_MESSAGE - 23);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_ENOSPC);
	free(big);

	/* Method and class survive the bit interleaving, for all of them. */
	bad = 0;
	for (method = 0; method <= 0xfff; method++) {
		for (c = 0; c < 4; c++) {
			cls = classes[c];
			stun_build_init(&b, buf, sizeof(buf), method, cls, txid1);
			if (stun_build_finish(&b, &len) != STUN_OK ||
			    stun_parse(buf, len, &m) != STUN_OK ||
			    m.method != method || m.cls != cls)
				bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);
	/* RFC 8489 §5: Binding success response is 0x0101, Allocate error
	 * response is 0x0113. */
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, STUN_SUCCESS, txid1);
	CHECK(buf[0] == 0x01 && buf[1] == 0x01);
	stun_build_init(&b, buf, sizeof(buf), TURN_ALLOCATE, STUN_ERROR, txid1);
	CHECK(buf[0] == 0x01 && buf[1] == 0x13);
	stun_build_init(&b, buf, sizeof(buf), TURN_SEND, STUN_INDICATION, txid1);
	CHECK(buf[0] == 0x00 && buf[1] == 0x16);
	stun_build_init(&b, buf, sizeof(buf), 0x1000, STUN_REQUEST, txid1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);
	stun_build_init(&b, buf, sizeof(buf), STUN_BINDING, 0x0001, txid1);
	CHECK_EQ_INT(stun_build_finish(&b, &len), STUN_EMALFORMED);
}

static void
test_demux_frame(void)
{
	uint8_t b[8] = { 0 };
	size_t flen = 0;
	unsigned int i;
	int want;

	CHECK_EQ_INT(stun_demux(b, 0), 0);
	CHECK_EQ_INT(stun_demux(NULL, 0), 0);
	for (i = 0; i < 256; i++) {
		b[0] = (uint8_t)i;
		want = i <= 3 ? 1 : (i >= 64 && i <= 127) ? 2 : 0;
		CHECK_EQ_INT(stun_demux(b, 1), want);
	}

	/* Frame lengths of non-STUN first bytes. */
	memset(b, 0, sizeof(b));
	b[0] = 0x50; /* RFC 5766 channels frame like any other */
	CHECK_EQ_INT(stun_frame_len(b, 4, &flen), STUN_OK);
	CHECK_EQ_INT(flen, 4);
	b[0] = 0x7f;
	CHECK_EQ_INT(stun_frame_len(b, 4, &flen), STUN_OK);
	b[0] = 0x80;
	CHECK_EQ_INT(stun_frame_len(b, 4, &flen), STUN_ENOTSTUN);
	b[0] = 0x16; /* a TLS record: top bits 00, no cookie */
	CHECK_EQ_INT(stun_frame_len(b, 1, &flen), STUN_EAGAIN);
	CHECK_EQ_INT(stun_frame_len(rfc5769_req, 0, &flen), STUN_EAGAIN);
	/* ChannelData: padded to 4, and over the limit. */
	b[0] = 0x40;
	b[1] = 0x00;
	b[2] = 0x00;
	b[3] = 0x03;
	CHECK_EQ_INT(stun_frame_len(b, 7, &flen), STUN_EAGAIN);
	CHECK_EQ_INT(stun_frame_len(b, 8, &flen), STUN_OK);
	CHECK_EQ_INT(flen, 8);
	b[2] = 0x0f;
	b[3] = 0xfc;
	CHECK_EQ_INT(stun_frame_len(b, 8, &flen), STUN_EAGAIN);
	b[3] = 0xfd;
	CHECK_EQ_INT(stun_frame_len(b, 8, &flen), STUN_EMALFORMED);
	b[2] = 0xff;
	b[3] = 0xff;
	CHECK_EQ_INT(stun_frame_len(b, 8, &flen), STUN_EMALFORMED);
}

static void
test_channeldata(void)
{
	uint8_t buf[64], *q;
	const uint8_t *data;
	size_t len = 0, dlen = 0, n, flen;
	uint16_t ch = 0;
	int bad;

	CHECK_EQ_INT(channeldata_build(buf, sizeof(buf), 0x4001,
	    (const uint8_t *)"hello", 5, &len), STUN_OK);
	CHECK_EQ_INT(len, 9);
	CHECK(buf[0] == 0x40 && buf[1] == 0x01 && buf[2] == 0 && buf[3] == 5);
	CHECK_EQ_INT(stun_demux(buf, len), 2);
	q = dup_exact(buf, len);
	CHECK_EQ_INT(channeldata_parse(q, len, &ch, &data, &dlen), STUN_OK);
	CHECK_EQ_INT(ch, 0x4001);
	CHECK(dlen == 5 && memcmp(data, "hello", 5) == 0);
	free(q);
	/* With the stream padding behind it. */
	memset(buf + 9, 0xee, 3);
	CHECK_EQ_INT(channeldata_parse(buf, 12, &ch, &data, &dlen), STUN_OK);
	CHECK_EQ_INT(dlen, 5);
	CHECK_EQ_INT(stun_frame_len(buf, 12, &flen), STUN_OK);
	CHECK_EQ_INT(flen, 12);

	/* Every prefix is refused, and needs more bytes to frame. */
	bad = 0;
	for (n = 0; n < 9; n++) {
		q = dup_exact(buf, n);
		if (channeldata_parse(q, n, &ch, &data, &dlen) == STUN_OK)
			bad++;
		if (stun_frame_len(q, n, &flen) != STUN_EAGAIN)
			bad++;
		free(q);
	}
	for (n = 9; n < 12; n++)
		if (stun_frame_len(buf, n, &flen) != STUN_EAGAIN)
			bad++;
	CHECK_EQ_INT(bad, 0);

	/* Empty payload. */
	CHECK_EQ_INT(channeldata_build(buf, sizeof(buf), 0x4fff, NULL, 0,
	    &len), STUN_OK);
	CHECK_EQ_INT(len, 4);
	CHECK_EQ_INT(channeldata_parse(buf, len, &ch, &data, &dlen), STUN_OK);
	CHECK_EQ_INT(ch, 0x4fff);
	CHECK_EQ_INT(dlen, 0);

	/* Bad channel numbers and lengths. */
	CHECK_EQ_INT(channeldata_build(buf, sizeof(buf), 0x3fff,
	    (const uint8_t *)"x", 1, &len), STUN_EMALFORMED);
	CHECK_EQ_INT(channeldata_build(buf, sizeof(buf), 0x8000,
	    (const uint8_t *)"x", 1, &len), STUN_EMALFORMED);
	CHECK_EQ_INT(channeldata_build(buf, 4, 0x4000,
	    (const uint8_t *)"x", 1, &len), STUN_ENOSPC);
	CHECK_EQ_INT(channeldata_build(buf, 5, 0x4000,
	    (const uint8_t *)"x", 1, &len), STUN_OK);
	buf[0] = 0x50;
	CHECK_EQ_INT(channeldata_parse(buf, 5, &ch, &data, &dlen), STUN_OK);
	CHECK_EQ_INT(ch, 0x5000);
	buf[0] = 0x7f;
	CHECK_EQ_INT(channeldata_parse(buf, 5, &ch, &data, &dlen), STUN_OK);
	CHECK_EQ_INT(ch, 0x7f00);
	buf[0] = 0x3f;
	CHECK_EQ_INT(channeldata_parse(buf, 5, &ch, &data, &dlen),
	    STUN_ENOTSTUN);
	buf[0] = 0x80;
	CHECK_EQ_INT(channeldata_parse(buf, 5, &ch, &data, &dlen),
	    STUN_ENOTSTUN);
	buf[0] = 0x40;
	buf[3] = 2;
	CHECK_EQ_INT(channeldata_parse(buf, 5, &ch, &data, &dlen),
	    STUN_EMALFORMED);
	CHECK_EQ_INT(channeldata_parse(NULL, 0, &ch, &data, &dlen),
	    STUN_ENOTSTUN);
}

static void
test_method_names(void)
{
	CHECK(strcmp(stun_method_name(STUN_BINDING), "Binding") == 0);
	CHECK(strcmp(stun_method_name(TURN_ALLOCATE), "Allocate") == 0);
	CHECK(strcmp(stun_method_name(TURN_REFRESH), "Refresh") == 0);
	CHECK(strcmp(stun_method_name(TURN_SEND), "Send") == 0);
	CHECK(strcmp(stun_method_name(TURN_DATA), "Data") == 0);
	CHECK(strcmp(stun_method_name(TURN_CREATE_PERMISSION),
	    "CreatePermission") == 0);
	CHECK(strcmp(stun_method_name(TURN_CHANNEL_BIND), "ChannelBind") == 0);
	CHECK(strcmp(stun_method_name(0x002), "unknown") == 0);
	CHECK(strcmp(stun_method_name(0xfff), "unknown") == 0);
}

int
main(void)
{
	test_rfc5769_request();
	test_rfc5769_v4();
	test_rfc5769_v6();
	test_rfc5769_long_term();
	test_rfc8489_b1();
	test_keys();
	test_header_errors();
	test_attr_errors();
	test_attr_rules();
	test_integrity_roundtrip();
	test_builder_addr();
	test_builder_error_unknown();
	test_builder_limits();
	test_demux_frame();
	test_channeldata();
	test_method_names();
	return check_done("test_stun");
}
