/* Unit tests for turn/dtls_peek.c and turn/media_class.c: datagrams of
 * real OpenSSL DTLS 1.2 handshakes (tests/unit/dtls_pair.h), with a
 * roomy MTU and with one small enough to fragment the certificate;
 * application data after the handshake; every prefix of every captured
 * datagram; hand-made DTLS 1.3 hellos, unified-header records and
 * corruptions; and the RFC 9443 first-byte ranges.
 *
 * Datagrams under test are copied into heap buffers of exactly their
 * length, so AddressSanitizer reports a read of even one byte past the
 * end. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/bytes.h"
#include "tests/unit/check.h"
#include "tests/unit/dtls_pair.h"
#include "turn/dtls_peek.h"
#include "turn/media_class.h"

#define SRTP_AES128_CM_SHA1_80 0x0001
#define SRTP_AEAD_AES_256_GCM 0x0008

/* Does [p, p + n) lie within [base, base + size)? */
static bool
inside(const uint8_t *p, size_t n, const uint8_t *base, size_t size)
{
	return p >= base && n <= size && (size_t)(p - base) <= size - n;
}

/* dtls_peek() on a heap copy of exactly len bytes. On return *copy holds
 * the copy (free it) so out->cert can still be checked against it. */
static int
peek_copy(const uint8_t *buf, size_t len, struct dtls_peek *out, uint8_t **copy)
{
	*copy = malloc(len > 0 ? len : 1);
	if (*copy == NULL)
		exit(2);
	if (len > 0)
		memcpy(*copy, buf, len);
	return dtls_peek(*copy, len, out);
}

static int
peek(const uint8_t *buf, size_t len, struct dtls_peek *out)
{
	uint8_t *copy;
	int rc = peek_copy(buf, len, out, &copy);

	/* Pointers into the copy must not outlive it: compare by content.
	 * One into out->joined stays good. */
	free(copy);
	if (out->cert != NULL && !inside(out->cert, out->cert_len, out->joined,
	    sizeof(out->joined)))
		out->cert = NULL;
	return rc;
}

static bool
peek_is_empty(const struct dtls_peek *p)
{
	return p->nhandshake == 0 && !p->client_hello && !p->server_hello &&
	    !p->certificate && !p->fragmented && !p->offers_dtls13 &&
	    p->version == 0 && p->nprofiles == 0 && p->cert == NULL &&
	    p->cert_len == 0;
}

static void
sha256(const uint8_t *p, size_t n, uint8_t md[32])
{
	if (EVP_Digest(p, n, md, NULL, EVP_sha256(), NULL) != 1)
		exit(2);
}

/* The certificate a datagram shows equals cert's DER, by SHA-256 as an
 * SDP fingerprint would compare it. */
static bool
same_cert(const uint8_t *der, size_t der_len, X509 *cert)
{
	uint8_t *mine = NULL, a[32], b[32];
	int n;

	if ((n = i2d_X509(cert, &mine)) <= 0)
		exit(2);
	sha256(der, der_len, a);
	sha256(mine, (size_t)n, b);
	OPENSSL_free(mine);
	return (size_t)n == der_len && memcmp(a, b, sizeof(a)) == 0;
}

/* What the datagrams of one direction showed during the handshake. */
struct seen {
	size_t client_hellos, server_hellos, certificates, fragmented, bad;
	struct dtls_peek hello;     /* the last hello, cert cleared */
	bool cert_matches;
};

static void
scan(const struct dtlsp_queue *q, size_t n, X509 *cert, struct seen *s)
{
	struct dtls_peek p;
	uint8_t *copy;
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < n; i++) {
		if (peek_copy(q->d[i].p, q->d[i].len, &p, &copy) != 0)
			s->bad++;
		if (p.client_hello)
			s->client_hellos++;
		if (p.server_hello)
			s->server_hellos++;
		if (p.fragmented)
			s->fragmented++;
		if (p.certificate) {
			s->certificates++;
			s->cert_matches = p.cert != NULL &&
			    same_cert(p.cert, p.cert_len, cert);
		}
		if (p.client_hello || p.server_hello) {
			s->hello = p;
			s->hello.cert = NULL;
		}
		free(copy);
	}
}

/* The record boundaries of a datagram of 13-byte-header records, which
 * is all OpenSSL 3.0 sends: a prefix is well-formed exactly there. */
static bool
is_boundary(const uint8_t *p, size_t len, size_t at)
{
	size_t off = 0;

	while (off < at && len - off >= 13)
		off += 13 + get_be16(p + off + 11);
	return off == at;
}

/* Every proper prefix: never a read outside it (ASan), 0 exactly at a
 * record boundary, and any certificate reported lies inside it. */
static void
check_prefixes(const struct dtlsp_queue *q, size_t *bad_rc, size_t *bad_cert)
{
	struct dtls_peek p;
	uint8_t *copy;
	size_t i, n;
	int rc;

	for (i = 0; i < q->n; i++) {
		for (n = 0; n < q->d[i].len; n++) {
			rc = peek_copy(q->d[i].p, n, &p, &copy);
			if (rc != (n > 0 && is_boundary(q->d[i].p, q->d[i].len, n) ? 0 : -1))
				(*bad_rc)++;
			if (p.cert != NULL && !inside(p.cert, p.cert_len, copy, n) &&
			    !inside(p.cert, p.cert_len, p.joined, sizeof(p.joined)))
				(*bad_cert)++;
			free(copy);
		}
	}
}

static void
test_real_handshake(void)
{
	struct dtlsp_run run;
	struct seen c, s;
	struct dtls_peek p;
	size_t bad_rc = 0, bad_cert = 0, i;

	CHECK_EQ_INT(dtlsp_run(&run, "SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80",
	    "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_256_GCM", 1200), 0);
	/* The server picks by its own preference: the client's second. */
	CHECK_EQ_INT(run.srtp_server, SRTP_AES128_CM_SHA1_80);
	CHECK_EQ_INT(run.srtp_client, SRTP_AES128_CM_SHA1_80);
	CHECK(run.c2s_hs >= 2 && run.s2c_hs >= 2);

	/* The client's first flight: the ClientHello alone. */
	CHECK_EQ_INT(peek(run.c2s.d[0].p, run.c2s.d[0].len, &p), 0);
	CHECK(p.nhandshake > 0 && p.client_hello && !p.server_hello);
	CHECK(!p.certificate && !p.fragmented && !p.offers_dtls13);
	CHECK_EQ_INT(p.version, 0);
	CHECK_EQ_INT(p.nprofiles, 2);
	CHECK_EQ_INT(p.profiles[0], SRTP_AEAD_AES_256_GCM);
	CHECK_EQ_INT(p.profiles[1], SRTP_AES128_CM_SHA1_80);

	/* The server's flight: ServerHello with the chosen profile, and its
	 * certificate whole (the MTU is roomy). */
	scan(&run.s2c, run.s2c_hs, run.server_cert, &s);
	CHECK_EQ_INT(s.bad, 0);
	CHECK_EQ_INT(s.server_hellos, 1);
	CHECK_EQ_INT(s.client_hellos, 0);
	CHECK_EQ_INT(s.hello.version, DTLS_VERSION_12);
	CHECK(run.cipher != 0);
	CHECK_EQ_INT(s.hello.cipher_suite, run.cipher);
	CHECK_EQ_INT(s.hello.nprofiles, 1);
	CHECK_EQ_INT(s.hello.profiles[0], run.srtp_server);
	CHECK_EQ_INT(s.certificates, 1);
	CHECK(s.cert_matches);
	CHECK_EQ_INT(s.fragmented, 0);

	/* The client's flights: its hello, then its own certificate (the
	 * server asked for one) with its encrypted Finished skipped. */
	scan(&run.c2s, run.c2s_hs, run.client_cert, &c);
	CHECK_EQ_INT(c.bad, 0);
	CHECK_EQ_INT(c.client_hellos, 1);
	CHECK_EQ_INT(c.server_hellos, 0);
	CHECK_EQ_INT(c.certificates, 1);
	CHECK(c.cert_matches);

	/* Application data, epoch 1: well-formed, and shows nothing. */
	CHECK(run.c2s.n > run.c2s_hs && run.s2c.n > run.s2c_hs);
	for (i = run.c2s_hs; i < run.c2s.n; i++) {
		CHECK_EQ_INT(peek(run.c2s.d[i].p, run.c2s.d[i].len, &p), 0);
		CHECK(peek_is_empty(&p));
	}
	for (i = run.s2c_hs; i < run.s2c.n; i++) {
		CHECK_EQ_INT(peek(run.s2c.d[i].p, run.s2c.d[i].len, &p), 0);
		CHECK(peek_is_empty(&p));
	}

	check_prefixes(&run.c2s, &bad_rc, &bad_cert);
	check_prefixes(&run.s2c, &bad_rc, &bad_cert);
	CHECK_EQ_INT(bad_rc, 0);
	CHECK_EQ_INT(bad_cert, 0);
	dtlsp_run_free(&run);
}

/* An MTU too small for the certificate: OpenSSL fragments it, and a
 * fragment is reported, never taken for the whole certificate. */
static void
test_fragmented_certificate(void)
{
	struct dtlsp_run run;
	struct seen s;
	size_t bad_rc = 0, bad_cert = 0;

	CHECK_EQ_INT(dtlsp_run(&run, "SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80",
	    "SRTP_AEAD_AES_256_GCM", 300), 0);
	CHECK_EQ_INT(run.srtp_server, SRTP_AEAD_AES_256_GCM);
	scan(&run.s2c, run.s2c_hs, run.server_cert, &s);
	CHECK_EQ_INT(s.bad, 0);
	CHECK(s.fragmented > 0);
	CHECK_EQ_INT(s.certificates, 0);
	check_prefixes(&run.c2s, &bad_rc, &bad_cert);
	check_prefixes(&run.s2c, &bad_rc, &bad_cert);
	CHECK_EQ_INT(bad_rc, 0);
	CHECK_EQ_INT(bad_cert, 0);
	dtlsp_run_free(&run);
}

/* supported_versions = DTLS 1.3, use_srtp = SRTP_AEAD_AES_128_GCM. */
static const uint8_t sh13_exts[] = {
	0x00, 0x2b, 0x00, 0x02, 0xfe, 0xfc,
	0x00, 0x0e, 0x00, 0x05, 0x00, 0x02, 0x00, 0x07, 0x00,
};

/* Certificate: two certificates, 3 and 2 bytes. */
static const uint8_t two_certs[] = {
	0x00, 0x00, 0x0b, 0x00, 0x00, 0x03, 0x30, 0x01, 0x00,
	0x00, 0x00, 0x02, 0x30, 0x00,
};

static size_t
record_sh13(uint8_t *out, size_t cap)
{
	uint8_t body[128];
	struct wr w = wr_init(out, cap);
	size_t n = dtlsp_server_hello(body, sizeof(body), sh13_exts, sizeof(sh13_exts));

	dtlsp_put_handshake(&w, 2, body, n);
	return w.overflow ? 0 : w.len;
}

static void
test_dtls13_hellos(void)
{
	/* supported_versions lists DTLS 1.3 then 1.2; use_srtp two, MKI 0. */
	static const uint8_t ch_exts[] = {
		0x00, 0x2b, 0x00, 0x05, 0x04, 0xfe, 0xfc, 0xfe, 0xfd,
		0x00, 0x0e, 0x00, 0x07, 0x00, 0x04, 0x00, 0x08, 0x00, 0x01, 0x00,
	};
	static const uint8_t ch12_exts[] = {
		0x00, 0x2b, 0x00, 0x03, 0x02, 0xfe, 0xfd,
	};
	uint8_t body[128], dg[256];
	struct dtls_peek p;
	struct wr w;
	size_t n;

	n = record_sh13(dg, sizeof(dg));
	CHECK_EQ_INT(peek(dg, n, &p), 0);
	CHECK(p.nhandshake > 0 && p.server_hello && !p.client_hello);
	CHECK_EQ_INT(p.version, DTLS_VERSION_13);
	CHECK_EQ_INT(p.cipher_suite, 0x1301);
	CHECK_EQ_INT(p.nprofiles, 1);
	CHECK_EQ_INT(p.profiles[0], 0x0007);

	n = dtlsp_client_hello(body, sizeof(body), ch_exts, sizeof(ch_exts));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 1, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.client_hello && p.offers_dtls13);
	CHECK_EQ_INT(p.nprofiles, 2);
	CHECK_EQ_INT(p.profiles[0], SRTP_AEAD_AES_256_GCM);
	CHECK_EQ_INT(p.profiles[1], SRTP_AES128_CM_SHA1_80);

	n = dtlsp_client_hello(body, sizeof(body), ch12_exts, sizeof(ch12_exts));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 1, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.client_hello && !p.offers_dtls13);
	CHECK_EQ_INT(p.nprofiles, 0);
}

/* RFC 6347 §4.2.3: several messages may share a record. */
static void
test_two_messages_one_record(void)
{
	uint8_t dg[256];
	struct dtls_peek p;
	struct wr w = wr_init(dg, sizeof(dg));

	w.len = record_sh13(dg, sizeof(dg));
	wr_u8(&w, 11);
	dtlsp_put_u24(&w, sizeof(two_certs));
	wr_u16(&w, 1);
	dtlsp_put_u24(&w, 0);
	dtlsp_put_u24(&w, sizeof(two_certs));
	wr_bytes(&w, two_certs, sizeof(two_certs));
	put_be16(dg + 11, (uint16_t)(w.len - 13));
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.server_hello && p.certificate);
	CHECK_EQ_INT(p.version, DTLS_VERSION_13);
	CHECK_EQ_INT(p.cert_len, 3);
	/* One byte short: the second message overruns the record. */
	put_be16(dg + 11, (uint16_t)(w.len - 14));
	CHECK_EQ_INT(peek(dg, w.len - 1, &p), -1);
	CHECK(p.server_hello && !p.certificate);
}

static void
test_unified_header(void)
{
	uint8_t dg[256], sh[160];
	struct dtls_peek p;
	size_t shn = record_sh13(sh, sizeof(sh));
	struct wr w;

	/* 0x2c: no CID, 16-bit sequence number, length; then a plain record. */
	w = wr_init(dg, sizeof(dg));
	wr_u8(&w, 0x2c);
	wr_u16(&w, 0x1234);
	wr_u16(&w, 20);
	wr_zero(&w, 20);
	wr_bytes(&w, sh, shn);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.nhandshake > 0 && p.server_hello);
	CHECK_EQ_INT(p.version, DTLS_VERSION_13);

	/* 0x24: 8-bit sequence number; and the plain record first. */
	w = wr_init(dg, sizeof(dg));
	wr_bytes(&w, sh, shn);
	wr_u8(&w, 0x24);
	wr_u8(&w, 7);
	wr_u16(&w, 17);
	wr_zero(&w, 17);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.server_hello);
	/* The same with the last length one byte too long. */
	dg[w.len - 17 - 1] = 18;
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);

	/* 0x28: no length, so it runs to the end and what follows it is
	 * ciphertext, not a record. */
	w = wr_init(dg, sizeof(dg));
	wr_u8(&w, 0x28);
	wr_u16(&w, 1);
	wr_bytes(&w, sh, shn);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(peek_is_empty(&p));

	/* 0x3c: a connection ID of unknown length: nothing after it can be
	 * read, and WebRTC negotiates none: malformed. */
	dg[0] = 0x3c;
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(peek_is_empty(&p));

	/* RFC 9146 tls12_cid: a 13-byte header start, then the connection
	 * ID of unknown length: malformed too (a stack that knows no CIDs
	 * would read on, past what the relay could check). */
	w = wr_init(dg, sizeof(dg));
	wr_u8(&w, 25);
	wr_u16(&w, 0xfefd);
	wr_u16(&w, 1);
	wr_zero(&w, 6);
	wr_bytes(&w, sh, shn);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(peek_is_empty(&p));
	CHECK_EQ_INT(peek(dg, 10, &p), -1);

	/* Cut inside the unified header. */
	dg[0] = 0x2c;
	CHECK_EQ_INT(peek(dg, 2, &p), -1);
	CHECK_EQ_INT(peek(dg, 3, &p), -1);
	CHECK_EQ_INT(peek(dg, 4, &p), -1);
}

/* Hand-made corruptions: each is -1, and the broken message shows
 * nothing. */
static void
test_malformed(void)
{
	static const uint8_t two_profiles[] = {
		0x00, 0x0e, 0x00, 0x07, 0x00, 0x04, 0x00, 0x01, 0x00, 0x07, 0x00,
	};
	static const uint8_t dup_srtp[] = {
		0x00, 0x0e, 0x00, 0x05, 0x00, 0x02, 0x00, 0x01, 0x00,
		0x00, 0x0e, 0x00, 0x05, 0x00, 0x02, 0x00, 0x07, 0x00,
	};
	/* use_srtp with a 3-byte profile list. */
	static const uint8_t odd_list[] = {
		0x00, 0x0e, 0x00, 0x06, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
	};
	/* supported_versions with a byte after the list, for each side. */
	static const uint8_t versions_tail[] = {
		0x00, 0x2b, 0x00, 0x04, 0x02, 0xfe, 0xfc, 0x00,
	};
	static const uint8_t version_tail[] = {
		0x00, 0x2b, 0x00, 0x03, 0xfe, 0xfc, 0x00,
	};
	/* Certificate: list of 8 holding one cert of 4, then 1 left over. */
	static const uint8_t bad_cert[] = {
		0x00, 0x00, 0x08, 0x00, 0x00, 0x04, 0xde, 0xad, 0xbe, 0xef, 0x00,
	};
	static const uint8_t zero_len_cert[] = { 0x00, 0x00, 0x03, 0x00, 0x00, 0x00 };
	static const uint8_t empty_list[] = { 0x00, 0x00, 0x00 };
	uint8_t body[128], dg[256], *copy;
	struct dtls_peek p;
	struct wr w;
	size_t n;

	n = dtlsp_server_hello(body, sizeof(body), two_profiles, sizeof(two_profiles));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 2, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(p.nhandshake > 0 && !p.server_hello && p.nprofiles == 0 && p.version == 0);

	n = dtlsp_client_hello(body, sizeof(body), dup_srtp, sizeof(dup_srtp));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 1, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.client_hello && p.nprofiles == 0);

	n = dtlsp_client_hello(body, sizeof(body), odd_list, sizeof(odd_list));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 1, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.client_hello);

	n = dtlsp_client_hello(body, sizeof(body), versions_tail, sizeof(versions_tail));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 1, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.client_hello && !p.offers_dtls13);

	n = dtlsp_server_hello(body, sizeof(body), version_tail, sizeof(version_tail));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 2, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.server_hello && p.version == 0);

	/* A byte after the extensions block. */
	n = dtlsp_server_hello(body, sizeof(body), sh13_exts, sizeof(sh13_exts));
	body[n++] = 0;
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 2, body, n);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.server_hello && p.version == 0);

	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 11, bad_cert, sizeof(bad_cert));
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.certificate && p.cert == NULL);

	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 11, two_certs, sizeof(two_certs));
	CHECK_EQ_INT(peek_copy(dg, w.len, &p, &copy), 0);
	CHECK(p.certificate);
	/* The first one, pointing into the datagram. */
	CHECK_EQ_INT(p.cert_len, 3);
	CHECK(p.cert == copy + 13 + 12 + 3 + 3);
	free(copy);

	/* A zero-length ASN.1Cert is not allowed (<1..2^24-1>). */
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 11, zero_len_cert, sizeof(zero_len_cert));
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.certificate);

	/* An empty list is a whole Certificate without a certificate. */
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 11, empty_list, sizeof(empty_list));
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.certificate && p.cert == NULL && p.cert_len == 0);

	/* A fragment reaching past its message. */
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 11, two_certs, sizeof(two_certs));
	dg[13 + 8] = 1;         /* fragment_offset 1, fragment_length all */
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.fragmented && !p.certificate);
	/* A true fragment: the first part of a longer message. */
	dg[13 + 8] = 0;
	dg[13 + 3] = 0x40;      /* length 0x40, fragment_length 14 */
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && !p.certificate);

	/* The same message in epoch 1 is ciphertext: not read. */
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 11, two_certs, sizeof(two_certs));
	dg[4] = 1;
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(peek_is_empty(&p));

	/* Record headers: not a DTLS version, not a content type, cut. */
	dg[4] = 0;
	dg[1] = 0x03;
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	dg[1] = 0xfe;
	dg[0] = 27;
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	dg[0] = 22;
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK_EQ_INT(peek(dg, 12, &p), -1);
	CHECK_EQ_INT(peek(dg, 0, &p), -1);
	CHECK_EQ_INT(dtls_peek(NULL, 0, &p), -1);
	/* A record length one past the datagram. */
	dg[12]++;
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
}

static void
test_media_classify(void)
{
	static const struct {
		uint8_t b;
		enum media_class c;
	} v[] = {
		{ 0, MEDIA_STUN }, { 3, MEDIA_STUN },
		{ 4, MEDIA_UNKNOWN }, { 15, MEDIA_UNKNOWN },
		{ 16, MEDIA_ZRTP }, { 19, MEDIA_ZRTP },
		{ 20, MEDIA_DTLS }, { 63, MEDIA_DTLS },
		{ 64, MEDIA_CHANNEL }, { 79, MEDIA_CHANNEL },
		{ 80, MEDIA_QUIC }, { 127, MEDIA_QUIC },
		{ 128, MEDIA_RTP }, { 191, MEDIA_RTP },
		{ 192, MEDIA_QUIC }, { 255, MEDIA_QUIC },
	};
	static const char *const names[] = {
		"stun", "zrtp", "dtls", "channel", "quic", "rtp", "unknown",
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		if (media_classify(&v[i].b, 1) != v[i].c)
			fprintf(stderr, "first byte %u\n", v[i].b);
		CHECK_EQ_INT(media_classify(&v[i].b, 1), v[i].c);
	}
	CHECK_EQ_INT(media_classify(NULL, 0), MEDIA_UNKNOWN);
	CHECK_EQ_INT(media_classify(&v[0].b, 0), MEDIA_UNKNOWN);
	for (i = 0; i <= MEDIA_UNKNOWN; i++)
		CHECK(strcmp(media_class_name((enum media_class)i), names[i]) == 0);
	CHECK(strcmp(media_class_name((enum media_class)99), "unknown") == 0);

	CHECK(strcmp(dtls_srtp_profile_name(0x0001), "SRTP_AES128_CM_SHA1_80") == 0);
	CHECK(strcmp(dtls_srtp_profile_name(0x0002), "SRTP_AES128_CM_SHA1_32") == 0);
	CHECK(strcmp(dtls_srtp_profile_name(0x0007), "SRTP_AEAD_AES_128_GCM") == 0);
	CHECK(strcmp(dtls_srtp_profile_name(0x0008), "SRTP_AEAD_AES_256_GCM") == 0);
	CHECK(dtls_srtp_profile_name(0x0003) == NULL);
	CHECK(dtls_srtp_profile_name(0) == NULL);
}

/* One epoch-0 handshake record holding one fragment of a message. */
static void
put_fragment(struct wr *w, uint8_t type, uint16_t seq, size_t mlen, size_t off,
    const uint8_t *frag, size_t flen)
{
	wr_u8(w, 22);
	wr_u16(w, 0xfefd);
	wr_u16(w, 0);
	wr_zero(w, 6);
	wr_u16(w, (uint16_t)(12 + flen));
	wr_u8(w, type);
	dtlsp_put_u24(w, mlen);
	wr_u16(w, seq);
	dtlsp_put_u24(w, off);
	dtlsp_put_u24(w, flen);
	wr_bytes(w, frag, flen);
}

/* OpenSSL splits a certificate over records of one datagram (aiortc
 * does, at 256-byte records): joined; split over datagrams, out of
 * order, or too long to join: fragmented, never a certificate. */
static void
test_joined_fragments(void)
{
	static uint8_t msg[3 + 3 + 600], big[DTLS_PEEK_JOIN_MAX + 8], dg[2 * DTLS_PEEK_JOIN_MAX];
	struct dtls_peek p;
	struct wr w;
	size_t i, der = 600;

	/* certificate_list<3> of one ASN.1Cert<3> of 600 bytes. */
	dtlsp_put_u24(&(struct wr){ .p = msg, .cap = 3 }, der + 3);
	msg[3] = 0;
	msg[4] = (uint8_t)(der >> 8);
	msg[5] = (uint8_t)der;
	for (i = 0; i < der; i++)
		msg[6 + i] = (uint8_t)(i * 7);

	/* Three fragments, in order, in one datagram. */
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, 250);
	put_fragment(&w, 11, 1, sizeof(msg), 250, msg + 250, 250);
	put_fragment(&w, 11, 1, sizeof(msg), 500, msg + 500, sizeof(msg) - 500);
	CHECK(!w.overflow);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.certificate && !p.fragmented);
	CHECK_EQ_INT(p.cert_len, der);
	CHECK(p.cert != NULL && inside(p.cert, p.cert_len, p.joined, sizeof(p.joined)) &&
	    memcmp(p.cert, msg + 6, der) == 0);

	/* Nothing may be joined over a certificate put together already,
	 * and a second Certificate in the datagram is refused. */
	put_fragment(&w, 1, 3, sizeof(msg), 0, msg, 250);
	put_fragment(&w, 1, 3, sizeof(msg), 250, msg + 250, sizeof(msg) - 250);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.certificate && p.fragmented && memcmp(p.cert, msg + 6, der) == 0);
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, 250);
	put_fragment(&w, 11, 1, sizeof(msg), 250, msg + 250, sizeof(msg) - 250);
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, sizeof(msg));
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);

	/* The last fragment in the next datagram: neither datagram shows it. */
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, 500);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && p.cert_fragmented && !p.certificate);
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 500, msg + 500, sizeof(msg) - 500);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && p.cert_fragmented && !p.certificate);
	/* A ClientHello split so is not a certificate left unchecked. */
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 1, 0, sizeof(msg), 0, msg, 500);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && !p.cert_fragmented);
	/* A ServerHello split so goes unchecked: marked, for the relay to
	 * drop (media_check.c); whole, it is read. */
	{
		static const uint8_t no_exts[1];
		uint8_t sh[128];
		size_t n = dtlsp_server_hello(sh, sizeof(sh), no_exts, 0);

		w = wr_init(dg, sizeof(dg));
		put_fragment(&w, 2, 0, n, 0, sh, n / 2);
		CHECK_EQ_INT(peek(dg, w.len, &p), 0);
		CHECK(p.fragmented && p.hello_fragmented && !p.server_hello);
		w = wr_init(dg, sizeof(dg));
		put_fragment(&w, 2, 0, n, n / 2, sh + n / 2, n - n / 2);
		put_fragment(&w, 2, 0, n, 0, sh, n / 2);
		CHECK_EQ_INT(peek(dg, w.len, &p), 0);
		CHECK(p.hello_fragmented && !p.server_hello);
		w = wr_init(dg, sizeof(dg));
		put_fragment(&w, 2, 0, n, 0, sh, n / 2);
		put_fragment(&w, 2, 0, n, n / 2, sh + n / 2, n - n / 2);
		CHECK_EQ_INT(peek(dg, w.len, &p), 0);
		CHECK(p.server_hello && !p.hello_fragmented && p.cipher_suite == 0x1301);
		/* Two hellos in one datagram: a receiver acts on one of them,
		 * not necessarily the one read last. Refused. */
		dtlsp_put_handshake(&w, 2, sh, n);
		CHECK_EQ_INT(peek(dg, w.len, &p), -1);
		w = wr_init(dg, sizeof(dg));
		dtlsp_put_handshake(&w, 2, sh, n);
		n = dtlsp_client_hello(sh, sizeof(sh), no_exts, 0);
		dtlsp_put_handshake(&w, 1, sh, n);
		CHECK(!w.overflow);
		CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	}

	/* Out of order, a gap, another message_seq in between. */
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 250, msg + 250, sizeof(msg) - 250);
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, 250);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && !p.certificate);
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, 250);
	put_fragment(&w, 11, 1, sizeof(msg), 300, msg + 300, sizeof(msg) - 300);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && !p.certificate);
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, 250);
	put_fragment(&w, 11, 2, sizeof(msg), 250, msg + 250, sizeof(msg) - 250);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && !p.certificate);

	/* Longer than joined can hold: left unexamined. */
	memset(big, 0, sizeof(big));
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(big), 0, big, DTLS_PEEK_JOIN_MAX / 2);
	put_fragment(&w, 11, 1, sizeof(big), DTLS_PEEK_JOIN_MAX / 2,
	    big + DTLS_PEEK_JOIN_MAX / 2, sizeof(big) - DTLS_PEEK_JOIN_MAX / 2);
	CHECK(!w.overflow);
	CHECK_EQ_INT(peek(dg, w.len, &p), 0);
	CHECK(p.fragmented && !p.certificate);

	/* A joined message that does not parse is -1, and shows nothing. */
	msg[0] ^= 0x10;
	w = wr_init(dg, sizeof(dg));
	put_fragment(&w, 11, 1, sizeof(msg), 0, msg, 250);
	put_fragment(&w, 11, 1, sizeof(msg), 250, msg + 250, sizeof(msg) - 250);
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK(!p.certificate && p.cert_len == 0);
	msg[0] ^= 0x10;
}

/* What a DTLS 1.2 receiver would take for handshake records, which the
 * relay compares with what dtls_peek() read. */
static void
test_handshakes_12(void)
{
	static const uint8_t cid_then[] = {
		25, 0xfe, 0xfd, 0, 7, 0, 0, 0, 0, 0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e',
	};
	uint8_t dg[512];
	struct dtls_peek p;
	struct wr w;

	CHECK_EQ_INT(dtls_peek_handshakes_12(NULL, 0), 0);
	CHECK_EQ_INT(dtls_peek_handshakes_12((const uint8_t *)"12345", 5), 0);
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 11, two_certs, sizeof(two_certs));
	dtlsp_put_handshake(&w, 11, two_certs, sizeof(two_certs));
	CHECK_EQ_INT(dtls_peek_handshakes_12(dg, w.len), 2);
	/* Behind a record dtls_peek() cannot delimit: it reads none. */
	w = wr_init(dg, sizeof(dg));
	wr_bytes(&w, cid_then, sizeof(cid_then));
	dtlsp_put_handshake(&w, 11, two_certs, sizeof(two_certs));
	CHECK_EQ_INT(peek(dg, w.len, &p), -1);
	CHECK_EQ_INT(p.nhandshake, 0);
	CHECK_EQ_INT(dtls_peek_handshakes_12(dg, w.len), 1);
	/* The same record on its own: both agree. */
	CHECK_EQ_INT(peek(dg + sizeof(cid_then), w.len - sizeof(cid_then), &p), 0);
	CHECK_EQ_INT(p.nhandshake, 1);
	/* Epoch 1 is ciphertext, not a cleartext handshake. */
	dg[sizeof(cid_then) + 4] = 1;
	CHECK_EQ_INT(dtls_peek_handshakes_12(dg, w.len), 0);
}

int
main(void)
{
	test_real_handshake();
	test_fragmented_certificate();
	test_dtls13_hellos();
	test_two_messages_one_record();
	test_unified_header();
	test_malformed();
	test_joined_fragments();
	test_handshakes_12();
	test_media_classify();
	return check_done("test_dtls_peek");
}
