/* Test-only DTLS: a real OpenSSL DTLS 1.2 handshake between a client and
 * a server SSL, both with self-signed EC P-256 certificates made on the
 * spot and use_srtp configured, connected through an in-memory datagram
 * queue per direction. Every datagram each side sends is kept, in order,
 * so the unit tests of turn/dtls_peek.c and the fuzz seed generator get
 * real handshake bytes without sockets or fixture files. Also small
 * builders for the hand-made records OpenSSL 3.0 cannot produce (DTLS
 * 1.3 hellos, unified headers).
 *
 * OpenSSL 3.0 has no BIO_new_dgram_pair (3.2 added it), and a BIO_s_mem
 * would run the datagrams together, so each direction is a small BIO
 * method of our own: one BIO_write is one datagram, one BIO_read takes
 * one datagram.
 *
 * A failing OpenSSL call exits the test with status 2: a broken fixture
 * is not a failed check. */
#ifndef GH_TESTS_DTLS_PAIR_H
#define GH_TESTS_DTLS_PAIR_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/srtp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "common/bytes.h"

#define DTLSP_MAX_DGRAMS 128

struct dtlsp_dgram {
	uint8_t *p;     /* owned: exactly len bytes (malloc of at least 1) */
	size_t len;
};

/* One direction: everything written, and how far the peer has read. */
struct dtlsp_queue {
	struct dtlsp_dgram d[DTLSP_MAX_DGRAMS];
	size_t n;
	size_t next;
};

struct dtlsp_run {
	struct dtlsp_queue c2s, s2c;
	size_t c2s_hs, s2c_hs;      /* datagrams sent before both finished */
	EVP_PKEY *client_key, *server_key;   /* owned */
	X509 *client_cert, *server_cert;     /* owned */
	uint16_t srtp_client, srtp_server;   /* selected profile, as each SSL says */
	uint16_t cipher;                     /* the suite, as the server's SSL says */
};

static inline void dtlsp_die(const char *what) __attribute__((noreturn));

static inline void dtlsp_die(const char *what)
{
	fprintf(stderr, "dtls_pair: %s failed\n", what);
	exit(2);
}

static inline int dtlsp_bio_write(BIO *b, const char *buf, int len)
{
	struct dtlsp_queue *q = BIO_get_data(b);
	struct dtlsp_dgram *d;

	if (len < 0 || q->n >= DTLSP_MAX_DGRAMS)
		dtlsp_die("datagram queue");
	d = &q->d[q->n++];
	if ((d->p = malloc(len > 0 ? (size_t)len : 1)) == NULL)
		dtlsp_die("malloc");
	memcpy(d->p, buf, (size_t)len);
	d->len = (size_t)len;
	return len;
}

static inline int dtlsp_bio_read(BIO *b, char *buf, int len)
{
	struct dtlsp_queue *q = BIO_get_data(b);
	struct dtlsp_dgram *d;
	size_t n;

	BIO_clear_retry_flags(b);
	if (q->next >= q->n) {
		BIO_set_retry_read(b);
		return -1;
	}
	d = &q->d[q->next++];
	/* Datagram semantics: what does not fit is lost. */
	n = d->len < (size_t)len ? d->len : (size_t)len;
	memcpy(buf, d->p, n);
	return (int)n;
}

static inline long dtlsp_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	/* Flushing is a no-op (every write already is a datagram); the
	 * MTU is set on the SSL (SSL_OP_NO_QUERY_MTU), so every question
	 * about the path answers 0. */
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static inline int dtlsp_bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static inline BIO *dtlsp_bio(struct dtlsp_queue *q)
{
	static BIO_METHOD *meth;
	BIO *b;

	if (meth == NULL) {
		meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
		    "dtls_pair queue");
		if (meth == NULL || !BIO_meth_set_write(meth, dtlsp_bio_write) ||
		    !BIO_meth_set_read(meth, dtlsp_bio_read) ||
		    !BIO_meth_set_ctrl(meth, dtlsp_bio_ctrl) ||
		    !BIO_meth_set_create(meth, dtlsp_bio_create))
			dtlsp_die("BIO_meth_new");
	}
	if ((b = BIO_new(meth)) == NULL)
		dtlsp_die("BIO_new");
	BIO_set_data(b, q);
	return b;
}

static inline X509 *dtlsp_cert(EVP_PKEY **key, const char *cn)
{
	X509_NAME *name;
	X509 *x;

	if ((*key = EVP_EC_gen("P-256")) == NULL || (x = X509_new()) == NULL)
		dtlsp_die("EVP_EC_gen");
	name = X509_get_subject_name(x);
	if (!X509_set_version(x, X509_VERSION_3) ||
	    !ASN1_INTEGER_set(X509_get_serialNumber(x), 1) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), 86400) == NULL ||
	    !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, name) || !X509_set_pubkey(x, *key) ||
	    X509_sign(x, *key, EVP_sha256()) <= 0)
		dtlsp_die("self-signed certificate");
	return x;
}

/* WebRTC checks the peer's certificate against the SDP fingerprint, not
 * against a CA: accept any, but ask for it, so both sides send one. */
static inline int dtlsp_verify_any(int ok, X509_STORE_CTX *ctx)
{
	(void)ok;
	(void)ctx;
	return 1;
}

static inline SSL *dtlsp_ssl(int server, const char *profiles, long mtu,
    EVP_PKEY *key, X509 *cert, BIO *rbio, BIO *wbio)
{
	SSL_CTX *ctx;
	SSL *ssl;

	ctx = SSL_CTX_new(server ? DTLS_server_method() : DTLS_client_method());
	if (ctx == NULL || SSL_CTX_use_certificate(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey(ctx, key) != 1)
		dtlsp_die("SSL_CTX");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
	    dtlsp_verify_any);
	/* Returns 0 on success, unlike most of OpenSSL. */
	if (SSL_CTX_set_tlsext_use_srtp(ctx, profiles) != 0)
		dtlsp_die("SSL_CTX_set_tlsext_use_srtp");
	if ((ssl = SSL_new(ctx)) == NULL)
		dtlsp_die("SSL_new");
	SSL_CTX_free(ctx);
	SSL_set_bio(ssl, rbio, wbio);
	/* Returns the MTU set, or 0 below DTLS's minimum. */
	SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
	if (SSL_set_mtu(ssl, mtu) != mtu)
		dtlsp_die("SSL_set_mtu");
	if (server)
		SSL_set_accept_state(ssl);
	else
		SSL_set_connect_state(ssl);
	return ssl;
}

/* Both sides step until both finished; in memory nothing is lost, so
 * no retransmission timer is needed. Returns 0 or -1. */
static inline int dtlsp_step(SSL *ssl, int *done)
{
	int rc;

	if (*done)
		return 0;
	if ((rc = SSL_do_handshake(ssl)) == 1) {
		*done = 1;
		return 0;
	}
	return SSL_get_error(ssl, rc) == SSL_ERROR_WANT_READ ? 0 : -1;
}

/* A whole handshake with the given use_srtp profile strings and MTU,
 * then one application-data datagram each way ("ping", "pong"). Fills
 * *run; free it with dtlsp_run_free(). Returns 0, or -1 when the
 * handshake or the data exchange failed. */
static inline int dtlsp_run(struct dtlsp_run *run, const char *client_profiles,
    const char *server_profiles, long mtu)
{
	const SRTP_PROTECTION_PROFILE *prof;
	SSL *c, *s;
	char got[8];
	int i, cdone = 0, sdone = 0, rc = -1;

	memset(run, 0, sizeof(*run));
	run->client_cert = dtlsp_cert(&run->client_key, "client");
	run->server_cert = dtlsp_cert(&run->server_key, "server");
	c = dtlsp_ssl(0, client_profiles, mtu, run->client_key, run->client_cert,
	    dtlsp_bio(&run->s2c), dtlsp_bio(&run->c2s));
	s = dtlsp_ssl(1, server_profiles, mtu, run->server_key, run->server_cert,
	    dtlsp_bio(&run->c2s), dtlsp_bio(&run->s2c));
	for (i = 0; i < 64 && !(cdone && sdone); i++)
		if (dtlsp_step(c, &cdone) || dtlsp_step(s, &sdone))
			goto out;
	if (!cdone || !sdone)
		goto out;
	run->c2s_hs = run->c2s.n;
	run->s2c_hs = run->s2c.n;
	if ((prof = SSL_get_selected_srtp_profile(c)) != NULL)
		run->srtp_client = (uint16_t)prof->id;
	if ((prof = SSL_get_selected_srtp_profile(s)) != NULL)
		run->srtp_server = (uint16_t)prof->id;
	if (SSL_get_current_cipher(s) != NULL)
		run->cipher = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(s));
	if (SSL_write(c, "ping", 4) != 4 || SSL_read(s, got, sizeof(got)) != 4 ||
	    memcmp(got, "ping", 4) != 0 || SSL_write(s, "pong", 4) != 4 ||
	    SSL_read(c, got, sizeof(got)) != 4 || memcmp(got, "pong", 4) != 0)
		goto out;
	rc = 0;
out:
	SSL_free(c);
	SSL_free(s);
	return rc;
}

static inline void dtlsp_run_free(struct dtlsp_run *run)
{
	size_t i;

	for (i = 0; i < run->c2s.n; i++)
		free(run->c2s.d[i].p);
	for (i = 0; i < run->s2c.n; i++)
		free(run->s2c.d[i].p);
	X509_free(run->client_cert);
	X509_free(run->server_cert);
	EVP_PKEY_free(run->client_key);
	EVP_PKEY_free(run->server_key);
	memset(run, 0, sizeof(*run));
}

/* ---- hand-made records ---------------------------------------------- */

static inline void dtlsp_put_u24(struct wr *w, size_t v)
{
	wr_u8(w, (uint8_t)(v >> 16));
	wr_u16(w, (uint16_t)v);
}

/* One epoch-0 DTLSPlaintext handshake record holding one whole message
 * (RFC 6347 §4.1, §4.2.2). */
static inline void dtlsp_put_handshake(struct wr *w, uint8_t type,
    const uint8_t *body, size_t len)
{
	wr_u8(w, 22);
	wr_u16(w, 0xfefd);
	wr_u16(w, 0);           /* epoch */
	wr_zero(w, 6);          /* sequence_number */
	wr_u16(w, (uint16_t)(12 + len));
	wr_u8(w, type);
	dtlsp_put_u24(w, len);
	wr_u16(w, 0);           /* message_seq */
	dtlsp_put_u24(w, 0);    /* fragment_offset */
	dtlsp_put_u24(w, len);  /* fragment_length */
	wr_bytes(w, body, len);
}

/* A ServerHello body (RFC 8446 §4.1.3 as DTLS 1.3 has it): legacy
 * version 0xfefd, a fixed random, empty session id,
 * TLS_AES_128_GCM_SHA256, null compression, then the extensions given
 * as encoded (type, length, data each). */
static inline size_t dtlsp_server_hello(uint8_t *out, size_t cap,
    const uint8_t *exts, size_t exts_len)
{
	struct wr w = wr_init(out, cap);

	wr_u16(&w, 0xfefd);
	wr_zero(&w, 32);
	wr_u8(&w, 0);
	wr_u16(&w, 0x1301);
	wr_u8(&w, 0);
	wr_u16(&w, (uint16_t)exts_len);
	wr_bytes(&w, exts, exts_len);
	return w.overflow ? 0 : w.len;
}

/* A ClientHello body (RFC 9147 §5.3): legacy version 0xfefd, a fixed
 * random, empty session id and cookie, two cipher suites, null
 * compression, then the extensions given. */
static inline size_t dtlsp_client_hello(uint8_t *out, size_t cap,
    const uint8_t *exts, size_t exts_len)
{
	struct wr w = wr_init(out, cap);

	wr_u16(&w, 0xfefd);
	wr_zero(&w, 32);
	wr_u8(&w, 0);
	wr_u8(&w, 0);
	wr_u16(&w, 4);
	wr_u16(&w, 0x1301);
	wr_u16(&w, 0xc02b);
	wr_u8(&w, 1);
	wr_u8(&w, 0);
	wr_u16(&w, (uint16_t)exts_len);
	wr_bytes(&w, exts, exts_len);
	return w.overflow ? 0 : w.len;
}

#endif
