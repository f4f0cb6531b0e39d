/* Server TLS contexts, and the self-signed certificate that lets the
 * embedded defaults serve TLS on loopback without any setup. */
#include "gateway/tls.h"
#include "common/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "gateway/secret.h"

/* TLS 1.2 suites: ephemeral ECDH (forward secrecy) with an AEAD only.
 * TLS 1.3 suites are all of that kind already, so OpenSSL's defaults
 * stay. */
#define TLS12_CIPHERS "ECDHE+AESGCM:ECDHE+CHACHA20"

#define SELF_CERT_FILE "tls-cert.pem"
#define SELF_KEY_FILE "tls-key.pem"
#define SELF_VALID_S (365L * 24 * 3600)
/* A generated certificate this close to expiry is made again. */
#define SELF_RENEW_S (24L * 3600)
/* No PEM private key comes near this; a bigger file is not one. */
#define KEY_FILE_MAX 65536

/* The first queued OpenSSL error is the most specific one ("No such file
 * or directory" rather than "PEM lib"). The queue is emptied so that a
 * stale entry cannot surface in a later, unrelated SSL_get_error(). */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	if (e != 0 && ERR_SYSTEM_ERROR(e))
		snprintf(buf, len, "%s", strerror(ERR_GET_REASON(e)));
	else if (r != NULL)
		snprintf(buf, len, "%s", r);
	else if (e != 0)
		ERR_error_string_n(e, buf, len);
	else
		snprintf(buf, len, "unknown error");
	ERR_clear_error();
	return buf;
}

/* An encrypted key would make OpenSSL prompt on the terminal, which a
 * daemon has nobody to answer; refusing it gives a clear error instead. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return 0;
}

static int add_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
	if (ext == NULL)
		return -1;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

static X509 *self_signed_cert(EVP_PKEY *pkey)
{
	unsigned char serial[16];
	X509_NAME *name;
	BIGNUM *bn = NULL;
	X509 *x;

	if ((x = X509_new()) == NULL)
		return NULL;
	/* RFC 5280 §4.1.2.2: a positive serial of at most 20 octets; random,
	 * so that two generated certificates never share one. */
	if (RAND_bytes(serial, sizeof(serial)) != 1)
		goto fail;
	serial[0] &= 0x7f;
	if ((bn = BN_bin2bn(serial, sizeof(serial), NULL)) == NULL ||
	    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) == NULL)
		goto fail;
	if (!X509_set_version(x, X509_VERSION_3) ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_gmtime_adj(X509_getm_notAfter(x), SELF_VALID_S) == NULL ||
	    !X509_set_pubkey(x, pkey))
		goto fail;
	name = X509_get_subject_name(x);
	if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)"localhost", -1, -1, 0) ||
	    !X509_set_issuer_name(x, name))
		goto fail;
	/* Clients match the name against the SAN only (RFC 6125 §6.4.4). */
	if (add_ext(x, NID_basic_constraints, "critical,CA:FALSE") < 0 ||
	    add_ext(x, NID_ext_key_usage, "serverAuth") < 0 ||
	    add_ext(x, NID_subject_key_identifier, "hash") < 0 ||
	    add_ext(x, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") < 0)
		goto fail;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0)
		goto fail;
	BN_free(bn);
	return x;
fail:
	BN_free(bn);
	X509_free(x);
	return NULL;
}

/* The key is written first: a crash before the certificate leaves no
 * certificate, and a missing one makes the next start generate both. */
static int self_signed_make(const char *cert_path, const char *key_path,
    char *err, size_t errlen)
{
	char reason[256];
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *kb = NULL, *cb = NULL;
	char *data;
	long dlen;
	int rc = -1;

	if ((pkey = EVP_EC_gen("P-256")) == NULL || (x = self_signed_cert(pkey)) == NULL) {
		errmsg_fail(err, errlen, "cannot generate a self-signed certificate: %s",
		    ssl_reason(reason, sizeof(reason)));
		goto out;
	}
	/* Secure-heap BIO: the PEM text of the key is wiped when freed. */
	if ((kb = BIO_new(BIO_s_secmem())) == NULL || (cb = BIO_new(BIO_s_mem())) == NULL ||
	    !PEM_write_bio_PrivateKey(kb, pkey, NULL, NULL, 0, NULL, NULL) ||
	    !PEM_write_bio_X509(cb, x)) {
		errmsg_fail(err, errlen, "cannot encode a self-signed certificate: %s",
		    ssl_reason(reason, sizeof(reason)));
		goto out;
	}
	dlen = BIO_get_mem_data(kb, &data);
	if (dlen <= 0 || file_write_atomic(key_path, data, (size_t)dlen, 0600) < 0) {
		errmsg_fail(err, errlen, "%s: cannot write: %s", key_path, strerror(errno));
		goto out;
	}
	dlen = BIO_get_mem_data(cb, &data);
	if (dlen <= 0 || file_write_atomic(cert_path, data, (size_t)dlen, 0644) < 0) {
		errmsg_fail(err, errlen, "%s: cannot write: %s", cert_path, strerror(errno));
		goto out;
	}
	rc = 0;
out:
	BIO_free(kb);
	BIO_free(cb);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return rc;
}

/* 1 when the generated pair is there and not about to expire, 0 when it
 * must be made (again), -1 on an error. */
static int self_signed_usable(const char *cert_path, const char *key_path,
    char *err, size_t errlen)
{
	struct stat st;
	time_t renew;
	X509 *x;
	BIO *b;
	int rc;

	if (stat(key_path, &st) < 0)
		return errno == ENOENT ? 0 : errmsg_fail(err, errlen, "%s: %s", key_path, strerror(errno));
	if (stat(cert_path, &st) < 0)
		return errno == ENOENT ? 0 : errmsg_fail(err, errlen, "%s: %s", cert_path, strerror(errno));
	if ((b = BIO_new_file(cert_path, "r")) == NULL) {
		ERR_clear_error();
		return errmsg_fail(err, errlen, "%s: cannot open", cert_path);
	}
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL) {
		ERR_clear_error();
		return errmsg_fail(err, errlen, "%s: not a PEM certificate (remove it and "
		    "tls-key.pem to have a new pair made)", cert_path);
	}
	renew = time(NULL) + SELF_RENEW_S;
	rc = X509_cmp_time(X509_get0_notAfter(x), &renew) > 0 ? 1 : 0;
	X509_free(x);
	return rc;
}

/* Reads the key through one descriptor that is both checked and read, so
 * the file cannot change between the mode check and the load. */
static EVP_PKEY *key_load(const char *path, char *err, size_t errlen)
{
	char reason[256];
	unsigned char *buf = NULL;
	EVP_PKEY *pkey = NULL;
	struct stat st;
	size_t got = 0;
	ssize_t n;
	BIO *b;
	int fd;

	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > KEY_FILE_MAX) {
		errmsg_fail(err, errlen, "%s: not a private key file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		errmsg_fail(err, errlen, "%s: readable by group or others (mode %04o): chmod 600 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
		goto out;
	}
	if ((buf = OPENSSL_secure_malloc(KEY_FILE_MAX)) == NULL) {
		errmsg_fail(err, errlen, "%s: out of memory", path);
		goto out;
	}
	while (got < KEY_FILE_MAX) {
		n = read(fd, buf + got, KEY_FILE_MAX - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if ((b = BIO_new_mem_buf(buf, (int)got)) != NULL) {
		pkey = PEM_read_bio_PrivateKey(b, NULL, no_password, NULL);
		BIO_free(b);
	}
	if (pkey == NULL)
		errmsg_fail(err, errlen, "%s: cannot load the private key: %s", path,
		    ssl_reason(reason, sizeof(reason)));
out:
	OPENSSL_secure_clear_free(buf, KEY_FILE_MAX);
	close(fd);
	return pkey;
}

SSL_CTX *tls_server_ctx_new(const struct config_tls *tls, const char *state_dir,
    char *err, size_t errlen)
{
	char cert_buf[PATH_MAX], key_buf[PATH_MAX], reason[256];
	const char *cert, *key;
	EVP_PKEY *pkey = NULL;
	SSL_CTX *ctx = NULL;
	int n, usable;

	if (tls->cert[0] != '\0') {
		cert = tls->cert;
		key = tls->key;
		if (key[0] == '\0') {
			errmsg_fail(err, errlen, "%s: no key file configured for it", cert);
			return NULL;
		}
	} else {
		n = snprintf(cert_buf, sizeof(cert_buf), "%s/" SELF_CERT_FILE, state_dir);
		if (n < 0 || (size_t)n >= sizeof(cert_buf) ||
		    snprintf(key_buf, sizeof(key_buf), "%s/" SELF_KEY_FILE, state_dir) >=
		    (int)sizeof(key_buf)) {
			errmsg_fail(err, errlen, "%s: path too long", state_dir);
			return NULL;
		}
		cert = cert_buf;
		key = key_buf;
		if ((usable = self_signed_usable(cert, key, err, errlen)) < 0)
			return NULL;
		if (usable == 0 && self_signed_make(cert, key, err, errlen) < 0)
			return NULL;
	}

	if ((pkey = key_load(key, err, errlen)) == NULL)
		return NULL;
	if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL ||
	    !SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
	    !SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) {
		errmsg_fail(err, errlen, "cannot set up TLS: %s", ssl_reason(reason, sizeof(reason)));
		goto fail;
	}
	/* Compression opens CRIME-style length leaks; renegotiation is a
	 * DoS lever no client of ours needs; our order of suites (the
	 * strongest first) should win over a client's. */
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_default_passwd_cb(ctx, no_password);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		errmsg_fail(err, errlen, "%s: cannot load the certificate chain: %s", cert,
		    ssl_reason(reason, sizeof(reason)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey(ctx, pkey) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
		errmsg_fail(err, errlen, "%s: does not match the certificate %s: %s", key, cert,
		    ssl_reason(reason, sizeof(reason)));
		goto fail;
	}
	EVP_PKEY_free(pkey);
	return ctx;
fail:
	EVP_PKEY_free(pkey);
	SSL_CTX_free(ctx);
	return NULL;
}
