/* tls.c: the generated self-signed pair (made once, then reused), the
 * context's settings, configured files, and handshakes in memory. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "gateway/secret.h"
#include "gateway/tls.h"
#include "tests/unit/check.h"

/* Short, so that paths built from it always fit PATH_MAX. */
static char tmpdir[256];
static char err[512];

static size_t read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* Runs a handshake between the two contexts through a BIO pair. The
 * client trusts ca_file and checks the name "localhost". Returns 0 and
 * the negotiated version and cipher, or -1. */
static int handshake(SSL_CTX *sctx, const char *ca_file, int max_version,
    const char *ciphers12, int *version, char *cipher, size_t cipher_len)
{
	SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
	SSL *c = NULL, *s = NULL;
	BIO *cb = NULL, *sb = NULL;
	int i, rc = -1, rcc = 0, rcs = 0, ec, es;

	if (cctx == NULL || SSL_CTX_load_verify_locations(cctx, ca_file, NULL) != 1)
		goto out;
	SSL_CTX_set_verify(cctx, SSL_VERIFY_PEER, NULL);
	if (max_version)
		SSL_CTX_set_max_proto_version(cctx, max_version);
	if (ciphers12 && SSL_CTX_set_cipher_list(cctx, ciphers12) != 1)
		goto out;
	if ((c = SSL_new(cctx)) == NULL || (s = SSL_new(sctx)) == NULL ||
	    BIO_new_bio_pair(&cb, 0, &sb, 0) != 1)
		goto out;
	SSL_set_bio(c, cb, cb);
	SSL_set_bio(s, sb, sb);
	SSL_set1_host(c, "localhost");
	SSL_set_tlsext_host_name(c, "localhost");
	SSL_set_connect_state(c);
	SSL_set_accept_state(s);
	for (i = 0; i < 64; i++) {
		if (rcc != 1)
			rcc = SSL_do_handshake(c);
		if (rcs != 1)
			rcs = SSL_do_handshake(s);
		if (rcc == 1 && rcs == 1)
			break;
		ec = rcc == 1 ? SSL_ERROR_NONE : SSL_get_error(c, rcc);
		es = rcs == 1 ? SSL_ERROR_NONE : SSL_get_error(s, rcs);
		if ((ec != SSL_ERROR_NONE && ec != SSL_ERROR_WANT_READ && ec != SSL_ERROR_WANT_WRITE) ||
		    (es != SSL_ERROR_NONE && es != SSL_ERROR_WANT_READ && es != SSL_ERROR_WANT_WRITE))
			goto out;
	}
	if (rcc != 1 || rcs != 1 || SSL_get_verify_result(c) != X509_V_OK)
		goto out;
	*version = SSL_version(c);
	snprintf(cipher, cipher_len, "%s", SSL_get_cipher_name(c));
	rc = 0;
out:
	ERR_clear_error();
	SSL_free(c);
	SSL_free(s);
	SSL_CTX_free(cctx);
	return rc;
}

static void test_self_signed(void)
{
	char dir[512], cert[PATH_MAX], key[PATH_MAX], pem1[8192], pem2[8192], k1[8192], k2[8192];
	char cipher[64];
	struct config_tls none;
	struct stat st1, st2;
	SSL_CTX *ctx;
	int version = 0;

	memset(&none, 0, sizeof(none));
	snprintf(dir, sizeof(dir), "%s/state", tmpdir);
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), 0);
	snprintf(cert, sizeof(cert), "%s/tls-cert.pem", dir);
	snprintf(key, sizeof(key), "%s/tls-key.pem", dir);

	ctx = tls_server_ctx_new(&none, dir, err, sizeof(err));
	CHECK(ctx != NULL);
	if (ctx == NULL) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	CHECK_EQ_INT(mode_of(key), 0600);
	CHECK_EQ_INT(mode_of(cert), 0644);
	CHECK(read_file(cert, pem1, sizeof(pem1)) > 0);
	CHECK(strstr(pem1, "-----BEGIN CERTIFICATE-----") == pem1);
	CHECK(read_file(key, k1, sizeof(k1)) > 0);
	CHECK(strstr(k1, "-----BEGIN PRIVATE KEY-----") == k1);
	CHECK_EQ_INT(stat(cert, &st1), 0);

	/* The settings the header promises. */
	CHECK_EQ_INT(SSL_CTX_get_min_proto_version(ctx), TLS1_2_VERSION);
	CHECK((SSL_CTX_get_options(ctx) & SSL_OP_NO_COMPRESSION) != 0);
	CHECK((SSL_CTX_get_options(ctx) & SSL_OP_NO_RENEGOTIATION) != 0);
	CHECK((SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE) != 0);

	/* A client that trusts the certificate verifies it for "localhost":
	 * TLS 1.3 by default, an ECDHE AEAD suite when held to TLS 1.2. */
	CHECK_EQ_INT(handshake(ctx, cert, 0, NULL, &version, cipher, sizeof(cipher)), 0);
	CHECK_EQ_INT(version, TLS1_3_VERSION);
	CHECK_EQ_INT(handshake(ctx, cert, TLS1_2_VERSION, NULL, &version, cipher, sizeof(cipher)), 0);
	CHECK_EQ_INT(version, TLS1_2_VERSION);
	CHECK(strncmp(cipher, "ECDHE-ECDSA-", 12) == 0);
	CHECK(strstr(cipher, "GCM") != NULL || strstr(cipher, "CHACHA20") != NULL);
	/* Suites without forward secrecy or without AEAD are not served. */
	CHECK_EQ_INT(handshake(ctx, cert, TLS1_2_VERSION, "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES256-SHA",
	    &version, cipher, sizeof(cipher)), -1);
	SSL_CTX_free(ctx);

	/* The second call reuses the files as they are. */
	ctx = tls_server_ctx_new(&none, dir, err, sizeof(err));
	CHECK(ctx != NULL);
	SSL_CTX_free(ctx);
	CHECK(read_file(cert, pem2, sizeof(pem2)) > 0);
	CHECK(read_file(key, k2, sizeof(k2)) > 0);
	CHECK(strcmp(pem1, pem2) == 0);
	CHECK(strcmp(k1, k2) == 0);
	CHECK_EQ_INT(stat(cert, &st2), 0);
	CHECK_EQ_INT(st1.st_ino, st2.st_ino);

	/* A key made readable by others is refused, naming it. */
	CHECK_EQ_INT(chmod(key, 0644), 0);
	CHECK(tls_server_ctx_new(&none, dir, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "tls-key.pem: readable by group or others") != NULL);
	CHECK_EQ_INT(chmod(key, 0600), 0);

	/* A missing certificate makes a new pair. */
	CHECK_EQ_INT(unlink(cert), 0);
	ctx = tls_server_ctx_new(&none, dir, err, sizeof(err));
	CHECK(ctx != NULL);
	SSL_CTX_free(ctx);
	CHECK(read_file(key, k2, sizeof(k2)) > 0);
	CHECK(strcmp(k1, k2) != 0);
}

static void test_configured(void)
{
	char a[512], b[512];
	struct config_tls t;
	SSL_CTX *ctx;

	/* Two generated pairs, used as if an operator had configured them. */
	snprintf(a, sizeof(a), "%s/a", tmpdir);
	snprintf(b, sizeof(b), "%s/b", tmpdir);
	CHECK_EQ_INT(state_dir_ensure(a, err, sizeof(err)), 0);
	CHECK_EQ_INT(state_dir_ensure(b, err, sizeof(err)), 0);
	memset(&t, 0, sizeof(t));
	SSL_CTX_free(tls_server_ctx_new(&t, a, err, sizeof(err)));
	SSL_CTX_free(tls_server_ctx_new(&t, b, err, sizeof(err)));

	snprintf(t.cert, sizeof(t.cert), "%s/tls-cert.pem", a);
	snprintf(t.key, sizeof(t.key), "%s/tls-key.pem", a);
	ctx = tls_server_ctx_new(&t, "/nonexistent", err, sizeof(err));
	CHECK(ctx != NULL);
	SSL_CTX_free(ctx);

	/* The key of another certificate. */
	snprintf(t.key, sizeof(t.key), "%s/tls-key.pem", b);
	CHECK(tls_server_ctx_new(&t, "/nonexistent", err, sizeof(err)) == NULL);
	CHECK(strstr(err, t.key) != NULL);

	/* Group-readable configured key. */
	snprintf(t.key, sizeof(t.key), "%s/tls-key.pem", a);
	CHECK_EQ_INT(chmod(t.key, 0640), 0);
	CHECK(tls_server_ctx_new(&t, "/nonexistent", err, sizeof(err)) == NULL);
	CHECK(strstr(err, t.key) != NULL);
	CHECK(strstr(err, "readable by group or others") != NULL);
	CHECK_EQ_INT(chmod(t.key, 0600), 0);

	/* Files that are missing or are not what they claim. */
	snprintf(t.cert, sizeof(t.cert), "%s/missing.pem", a);
	CHECK(tls_server_ctx_new(&t, "/nonexistent", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "missing.pem") != NULL);
	snprintf(t.cert, sizeof(t.cert), "%s/tls-key.pem", a);
	CHECK(tls_server_ctx_new(&t, "/nonexistent", err, sizeof(err)) == NULL);
	snprintf(t.cert, sizeof(t.cert), "%s/tls-cert.pem", a);
	snprintf(t.key, sizeof(t.key), "%s/missing-key.pem", a);
	CHECK(tls_server_ctx_new(&t, "/nonexistent", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "missing-key.pem") != NULL);
	t.key[0] = '\0';
	CHECK(tls_server_ctx_new(&t, "/nonexistent", err, sizeof(err)) == NULL);

	/* No state folder to generate into. */
	memset(&t, 0, sizeof(t));
	CHECK(tls_server_ctx_new(&t, "/nonexistent/state", err, sizeof(err)) == NULL);
	CHECK(strstr(err, "/nonexistent/state") != NULL);
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/gh-test-tls-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_self_signed();
	test_configured();
	cleanup();
	return check_done("test_tls");
}
