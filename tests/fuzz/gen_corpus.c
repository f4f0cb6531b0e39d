/* Writes the fuzz seeds that carry cryptography: TURN requests with
 * nonces and MESSAGE-INTEGRITY valid inside fuzz_turn_server.c, JWTs
 * signed with the test keys that fuzz_jwt.c trusts (fuzz_fixtures.h),
 * and the datagrams of real OpenSSL DTLS handshakes for fuzz_dtls_peek.c
 * (tests/unit/dtls_pair.h; fresh keys each run, so other bytes).
 * The text seeds (signaling messages, SDP, policies, configurations) are
 * plain files in corpus/ and are not written here.
 *
 *   fuzz_gen_corpus CORPUS_DIR      (e.g. tests/fuzz/corpus)
 *
 * Rerun it after changing fuzz_fixtures.h. Nonces depend only on the
 * fixed secret, clock and address, so most files come out the same; the
 * call credentials (random GCM IV) and ES256 signatures (randomized ECDSA)
 * come out as other, equally valid bytes. Test tool: exits 2 on any
 * failure. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

#include "tests/fuzz/fuzz_fixtures.h"
#include "tests/unit/dtls_pair.h"
#include "tests/unit/jwt_sign.h"
#include "turn/auth.h"
#include "turn/stun.h"

static const char *root;

static void die(const char *what)
{
	fprintf(stderr, "fuzz_gen_corpus: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void write_file(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, dir);
	if (mkdir(path, 0755) != 0 && errno != EEXIST)
		die(path);
	snprintf(path, sizeof(path), "%s/%s/%s", root, dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		die(path);
	if (fwrite(buf, 1, len, f) != len || fclose(f) != 0)
		die(path);
	printf("%s (%zu bytes)\n", path, len);
}

/* ---- TURN ---------------------------------------------------------- */

static struct turn_auth auth;

/* "a.b.c.d" or "v6" (no brackets). */
static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		if (inet_pton(AF_INET6, ip, &s6->sin6_addr) != 1)
			exit(2);
		return ss;
	}
	s4->sin_family = AF_INET;
	s4->sin_port = htons(port);
	if (inet_pton(AF_INET, ip, &s4->sin_addr) != 1)
		exit(2);
	return ss;
}

struct treq {
	uint16_t method, cls;
	const char *user, *pass;    /* NULL: no credentials */
	bool sha256;                /* PASSWORD-ALGORITHM SHA-256 + MI-SHA256 */
	int64_t nonce_age_s;        /* nonce made this long before FZ_T0_MS */
	uint32_t lifetime;          /* LIFETIME; UINT32_MAX for 0; 0 none */
	const char *peers[4];       /* "ip:port" or "[v6]:port" of XOR-PEER-ADDRESS */
	uint16_t channel;
	bool transport;             /* REQUESTED-TRANSPORT UDP */
	bool even_port_r, dont_fragment;
	const char *data;           /* DATA */
	uint8_t txid_tag;
	bool no_resign;             /* fuzz_turn_server.c must not sign it */
	uint16_t extra_type;        /* one more attribute, raw */
	const char *extra_val;
	size_t extra_len;
};

static size_t build(const struct treq *q, uint8_t *buf, size_t cap)
{
	static const uint8_t algs[8] = { 0, 2, 0, 0, 0, 1, 0, 0 };
	static const uint8_t alg_sha256[4] = { 0, 2, 0, 0 };
	struct sockaddr_storage client = addr(FZ_CLIENT_IP, FZ_OWNER_PORT), peer;
	uint8_t txid[STUN_TXID_LEN], key[32];
	char nonce[TURN_NONCE_MAX], ip[64];
	struct stun_builder b;
	const char *colon;
	size_t len, i;

	memset(txid, 0, sizeof(txid));
	txid[0] = 0xf0;
	txid[1] = q->txid_tag;
	txid[11] = q->no_resign ? 0xEE : (uint8_t)q->method;
	stun_build_init(&b, buf, cap, q->method, q->cls, txid);
	if (q->transport)
		stun_build_u32(&b, STUN_A_REQUESTED_TRANSPORT, 17u << 24);
	if (q->lifetime)
		stun_build_u32(&b, STUN_A_LIFETIME, q->lifetime == UINT32_MAX ? 0 : q->lifetime);
	if (q->channel)
		stun_build_u32(&b, STUN_A_CHANNEL_NUMBER, (uint32_t)q->channel << 16);
	for (i = 0; i < 4 && q->peers[i] != NULL; i++) {
		colon = strrchr(q->peers[i], ':');
		if (q->peers[i][0] == '[')
			snprintf(ip, sizeof(ip), "%.*s", (int)(colon - q->peers[i] - 2),
			    q->peers[i] + 1);
		else
			snprintf(ip, sizeof(ip), "%.*s", (int)(colon - q->peers[i]), q->peers[i]);
		peer = addr(ip, (uint16_t)atoi(colon + 1));
		stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&peer, true);
	}
	if (q->even_port_r) {
		uint8_t r = 0x80;
		stun_build_attr(&b, STUN_A_EVEN_PORT, &r, 1);
	}
	if (q->dont_fragment)
		stun_build_attr(&b, STUN_A_DONT_FRAGMENT, NULL, 0);
	if (q->data != NULL)
		stun_build_attr(&b, STUN_A_DATA, q->data, strlen(q->data));
	if (q->extra_type != 0)
		stun_build_attr(&b, q->extra_type, q->extra_val, q->extra_len);
	if (q->user != NULL) {
		if (turn_nonce_make(&auth, (const struct sockaddr *)&client,
		    FZ_T0_MS - (uint64_t)q->nonce_age_s * 1000, nonce, sizeof(nonce)) != 0)
			exit(2);
		stun_build_attr(&b, STUN_A_USERNAME, q->user, strlen(q->user));
		stun_build_attr(&b, STUN_A_REALM, FZ_REALM, strlen(FZ_REALM));
		stun_build_attr(&b, STUN_A_NONCE, nonce, strlen(nonce));
		if (q->sha256) {
			stun_build_attr(&b, STUN_A_PASSWORD_ALGORITHMS, algs, sizeof(algs));
			stun_build_attr(&b, STUN_A_PASSWORD_ALGORITHM, alg_sha256,
			    sizeof(alg_sha256));
			stun_key_sha256(q->user, strlen(q->user), FZ_REALM, strlen(FZ_REALM),
			    q->pass, strlen(q->pass), key);
			stun_build_integrity_sha256(&b, key, 32);
		} else {
			stun_key_md5(q->user, strlen(q->user), FZ_REALM, strlen(FZ_REALM),
			    q->pass, strlen(q->pass), key);
			stun_build_integrity(&b, key, 16);
		}
	}
	stun_build_fingerprint(&b);
	if (stun_build_finish(&b, &len) != STUN_OK)
		exit(2);
	return len;
}

static void turn_seed(const char *name, const struct treq *q)
{
	uint8_t buf[2048];

	write_file("turn_server", name, buf, build(q, buf, sizeof(buf)));
}

static void turn_seeds(void)
{
	char cu[TURN_USERNAME_MAX], cp[TURN_PASSWORD_MAX], eu[TURN_USERNAME_MAX],
	    ep[TURN_PASSWORD_MAX];
	uint8_t stream[8192], cd[64];
	size_t n = 0, len, i;
	const char *S = FZ_STATIC_USER, *P = FZ_STATIC_PASS;

	memset(&auth, 0, sizeof(auth));
	memcpy(auth.secret, fz_turn_secret, sizeof(auth.secret));
	auth.nonce_lifetime_s = FZ_NONCE_LIFETIME_S;
	if (turn_cred_mint(&auth, FZ_CALL_USER, FZ_CALL_ID, FZ_CALL_EXPIRES_S, cu,
	    sizeof(cu), cp, sizeof(cp)) != 0 ||
	    turn_cred_mint(&auth, FZ_CALL_USER, FZ_ENDED_CALL_ID, FZ_CALL_EXPIRES_S, eu,
	    sizeof(eu), ep, sizeof(ep)) != 0)
		exit(2);

	turn_seed("binding.bin", &(struct treq){ .method = STUN_BINDING, .txid_tag = 1 });
	turn_seed("allocate_noauth.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .transport = true, .txid_tag = 2 });
	turn_seed("allocate.bin", &(struct treq){ .method = TURN_ALLOCATE, .user = S,
	    .pass = P, .transport = true, .lifetime = 1200, .txid_tag = 3 });
	turn_seed("allocate_sha256.bin", &(struct treq){ .method = TURN_ALLOCATE, .user = S,
	    .pass = P, .sha256 = true, .transport = true, .txid_tag = 4 });
	turn_seed("allocate_even_port_r.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = S, .pass = P, .transport = true, .even_port_r = true,
	    .dont_fragment = true, .txid_tag = 5 });
	turn_seed("allocate_call.bin", &(struct treq){ .method = TURN_ALLOCATE, .user = cu,
	    .pass = cp, .transport = true, .txid_tag = 6 });
	turn_seed("allocate_ended_call.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = eu, .pass = ep, .transport = true, .txid_tag = 7 });
	turn_seed("allocate_stale_nonce.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = S, .pass = P, .transport = true, .nonce_age_s = 700, .txid_tag = 8 });
	turn_seed("allocate_wrong_password.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = S, .pass = "wrong", .transport = true, .txid_tag = 9, .no_resign = true });
	turn_seed("create_permission_wrong_password.bin", &(struct treq){
	    .method = TURN_CREATE_PERMISSION, .user = S, .pass = "wrong",
	    .peers = { FZ_PEER2_IP ":6000" }, .txid_tag = 18, .no_resign = true });
	turn_seed("allocate_unknown_user.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = "nobody", .pass = "x", .transport = true, .txid_tag = 19 });
	turn_seed("allocate_family_v6.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = S, .pass = P, .transport = true, .txid_tag = 25,
	    .extra_type = STUN_A_REQUESTED_ADDRESS_FAMILY, .extra_val = "\x02\0\0\0",
	    .extra_len = 4 });
	turn_seed("allocate_reservation_token.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = S, .pass = P, .transport = true, .txid_tag = 26,
	    .extra_type = STUN_A_RESERVATION_TOKEN, .extra_val = "\1\2\3\4\5\6\7\x08",
	    .extra_len = 8 });
	turn_seed("allocate_unknown_attr.bin", &(struct treq){ .method = TURN_ALLOCATE,
	    .user = S, .pass = P, .transport = true, .txid_tag = 27,
	    .extra_type = 0x0031, .extra_val = "x", .extra_len = 1 });
	turn_seed("create_permission_v6.bin", &(struct treq){ .method = TURN_CREATE_PERMISSION,
	    .user = S, .pass = P, .peers = { "[2001:db8::9]:5000", "[::ffff:127.0.0.1]:49153",
	    "[64:ff9b::c633:6407]:5000", "[2002:c633:6407::1]:5000" }, .txid_tag = 28 });
	turn_seed("create_permission_call.bin", &(struct treq){ .method = TURN_CREATE_PERMISSION,
	    .user = cu, .pass = cp, .peers = { "127.0.0.1:49153" }, .txid_tag = 29 });
	turn_seed("refresh.bin", &(struct treq){ .method = TURN_REFRESH, .user = S, .pass = P,
	    .lifetime = 1200, .txid_tag = 10 });
	turn_seed("refresh_delete.bin", &(struct treq){ .method = TURN_REFRESH, .user = S,
	    .pass = P, .lifetime = UINT32_MAX, .txid_tag = 11 });
	turn_seed("create_permission.bin", &(struct treq){ .method = TURN_CREATE_PERMISSION,
	    .user = S, .pass = P, .peers = { FZ_PEER1_IP ":5000", "198.51.100.9:7000",
	    "127.0.0.1:49153" }, .txid_tag = 12 });
	turn_seed("create_permission_refused.bin", &(struct treq){
	    .method = TURN_CREATE_PERMISSION, .user = S, .pass = P,
	    .peers = { "10.0.0.1:80", "169.254.169.254:80" }, .txid_tag = 13 });
	turn_seed("channel_bind.bin", &(struct treq){ .method = TURN_CHANNEL_BIND, .user = S,
	    .pass = P, .channel = 0x4001, .peers = { "198.51.100.9:7000" }, .txid_tag = 14 });
	turn_seed("channel_bind_refresh.bin", &(struct treq){ .method = TURN_CHANNEL_BIND,
	    .user = S, .pass = P, .channel = FZ_CHANNEL, .peers = { FZ_PEER1_IP ":5000" },
	    .txid_tag = 15 });
	turn_seed("send_indication.bin", &(struct treq){ .method = TURN_SEND,
	    .cls = STUN_INDICATION, .peers = { FZ_PEER1_IP ":5000" },
	    .data = "hello peer, this is a relayed datagram", .txid_tag = 16 });
	turn_seed("send_indication_refused.bin", &(struct treq){ .method = TURN_SEND,
	    .cls = STUN_INDICATION, .peers = { "10.0.0.1:53" }, .data = "no",
	    .txid_tag = 17 });
	if (channeldata_build(cd, sizeof(cd), FZ_CHANNEL, (const uint8_t *)"hello", 5,
	    &len) != STUN_OK)
		exit(2);
	write_file("turn_server", "channeldata_4000.bin", cd, len);

	/* A TCP stream: Allocate, CreatePermission, ChannelBind, padded
	 * ChannelData, Send, Refresh to zero, all on one connection. */
	n += build(&(struct treq){ .method = TURN_ALLOCATE, .user = S, .pass = P,
	    .transport = true, .txid_tag = 20 }, stream + n, sizeof(stream) - n);
	n += build(&(struct treq){ .method = TURN_CREATE_PERMISSION, .user = S, .pass = P,
	    .peers = { FZ_PEER1_IP ":5000" }, .txid_tag = 21 }, stream + n, sizeof(stream) - n);
	n += build(&(struct treq){ .method = TURN_CHANNEL_BIND, .user = S, .pass = P,
	    .channel = 0x4002, .peers = { FZ_PEER1_IP ":5000" }, .txid_tag = 22 },
	    stream + n, sizeof(stream) - n);
	if (channeldata_build(stream + n, sizeof(stream) - n, 0x4002,
	    (const uint8_t *)"stream", 6, &len) != STUN_OK)
		exit(2);
	n += len;
	for (i = len; i % 4 != 0; i++)
		stream[n++] = 0;
	n += build(&(struct treq){ .method = TURN_SEND, .cls = STUN_INDICATION,
	    .peers = { FZ_PEER1_IP ":5000" }, .data = "via send", .txid_tag = 23 },
	    stream + n, sizeof(stream) - n);
	n += build(&(struct treq){ .method = TURN_REFRESH, .user = S, .pass = P,
	    .lifetime = UINT32_MAX, .txid_tag = 24 }, stream + n, sizeof(stream) - n);
	write_file("turn_server", "stream_session.bin", stream, n);
}

/* ---- JWT ----------------------------------------------------------- */

static EVP_PKEY *key_from_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	EVP_PKEY *k = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	if (k == NULL)
		exit(2);
	return k;
}

static void jwt_seed(const char *name, char *token)
{
	write_file("jwt", name, token, strlen(token));
	free(token);
}

#define CLAIMS_FMT "{\"iss\":\"" FZ_JWT_ISSUER "\",\"aud\":\"" FZ_JWT_AUDIENCE "\"," \
	"\"sub\":\"alice\",\"groups\":[\"team\",\"sales\"],\"amr\":[\"pwd\",\"otp\"]," \
	"\"iat\":%llu,\"exp\":%llu}"

static void jwt_seeds(void)
{
	EVP_PKEY *rsa = key_from_pem(fz_rsa_pem), *ec = key_from_pem(fz_ec_pem),
	    *ed = key_from_pem(fz_ed_pem);
	const unsigned long long now = FZ_JWT_NOW_S;
	char *claims, *hdr, *jwk;

	claims = jws_printf(CLAIMS_FMT, now - 60, now + 3600);
	jwt_seed("valid_rs256.jwt", jws_sign(rsa, "RS256",
	    "{\"alg\":\"RS256\",\"kid\":\"" FZ_KID_RSA "\",\"typ\":\"JWT\"}", claims));
	jwt_seed("valid_es256.jwt", jws_sign(ec, "ES256",
	    "{\"alg\":\"ES256\",\"kid\":\"" FZ_KID_EC "\",\"typ\":\"at+jwt\"}", claims));
	jwt_seed("valid_eddsa.jwt", jws_sign(ed, "EdDSA",
	    "{\"alg\":\"EdDSA\",\"kid\":\"" FZ_KID_ED "\"}", claims));
	jwt_seed("no_kid.jwt", jws_sign(ed, "EdDSA", "{\"alg\":\"EdDSA\"}", claims));
	jwt_seed("unknown_kid.jwt", jws_sign(ed, "EdDSA",
	    "{\"alg\":\"EdDSA\",\"kid\":\"nope\"}", claims));
	jwt_seed("kid_alg_mismatch.jwt", jws_sign(ec, "ES256",
	    "{\"alg\":\"ES256\",\"kid\":\"" FZ_KID_RSA "\"}", claims));
	jwt_seed("crit.jwt", jws_sign(ed, "EdDSA",
	    "{\"alg\":\"EdDSA\",\"kid\":\"" FZ_KID_ED "\",\"crit\":[\"exp\"],\"exp\":1}", claims));
	jwt_seed("bad_typ.jwt", jws_sign(ed, "EdDSA",
	    "{\"alg\":\"EdDSA\",\"kid\":\"" FZ_KID_ED "\",\"typ\":\"JWE\"}", claims));
	/* alg none with an empty signature, and HS256 keyed with the public
	 * JWK text: both refused before any key is used. */
	hdr = jws_b64s("{\"alg\":\"none\",\"typ\":\"JWT\"}");
	{
		char *p = jws_b64s(claims);
		jwt_seed("alg_none.jwt", jws_printf("%s.%s.", hdr, p));
		free(p);
	}
	free(hdr);
	jwk = jws_jwk(rsa, FZ_KID_RSA, NULL, 0);
	jwt_seed("hs256_confusion.jwt", jws_sign_hs256(jwk, strlen(jwk),
	    "{\"alg\":\"HS256\",\"kid\":\"" FZ_KID_RSA "\"}", claims));
	free(jwk);
	{
		char *t = jws_sign(ed, "EdDSA", "{\"alg\":\"EdDSA\",\"kid\":\"" FZ_KID_ED "\"}",
		    claims);
		t[strlen(t) - 5] ^= 1; /* a signature bit flipped */
		jwt_seed("bad_signature.jwt", t);
	}
	free(claims);

	claims = jws_printf(CLAIMS_FMT, now - 7200, now - 3600);
	jwt_seed("expired.jwt", jws_sign(ed, "EdDSA",
	    "{\"alg\":\"EdDSA\",\"kid\":\"" FZ_KID_ED "\"}", claims));
	free(claims);
	claims = jws_printf("{\"iss\":\"" FZ_JWT_ISSUER "\",\"aud\":[\"other\",\""
	    FZ_JWT_AUDIENCE "\"],\"sub\":\"bob\",\"nbf\":%llu,\"exp\":%llu}", now + 600,
	    now + 3600);
	jwt_seed("not_yet_valid.jwt", jws_sign(ed, "EdDSA",
	    "{\"alg\":\"EdDSA\",\"kid\":\"" FZ_KID_ED "\"}", claims));
	free(claims);
	claims = jws_printf("{\"iss\":\"https://evil.example\",\"aud\":\"" FZ_JWT_AUDIENCE
	    "\",\"sub\":\"alice\",\"exp\":%llu}", now + 3600);
	jwt_seed("wrong_issuer.jwt", jws_sign(rsa, "RS256",
	    "{\"alg\":\"RS256\",\"kid\":\"" FZ_KID_RSA "\"}", claims));
	free(claims);

	/* Raw claims for fuzz_jwt.c's second way (signed by the harness). */
	claims = jws_printf(CLAIMS_FMT, now - 60, now + 3600);
	write_file("jwt", "claims_valid.json", claims, strlen(claims));
	free(claims);
	claims = jws_printf("{\"iss\":\"" FZ_JWT_ISSUER "\",\"aud\":[\"" FZ_JWT_AUDIENCE
	    "\"],\"sub\":\"carol@example.org\",\"groups\":[],\"amr\":[\"hwk\"],"
	    "\"nbf\":%llu.5,\"exp\":%llu.25}", now - 10, now + 10);
	write_file("jwt", "claims_fractional.json", claims, strlen(claims));
	free(claims);
	claims = jws_printf("{\"iss\":\"" FZ_JWT_ISSUER "\",\"aud\":\"" FZ_JWT_AUDIENCE
	    "\",\"sub\":\"dave\",\"groups\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\","
	    "\"i\",\"j\",\"k\",\"l\",\"m\",\"n\",\"o\",\"p\",\"q\"],\"exp\":%llu}", now + 60);
	write_file("jwt", "claims_too_many_groups.json", claims, strlen(claims));
	free(claims);
	claims = jws_printf("{\"iss\":\"" FZ_JWT_ISSUER "\",\"aud\":\"" FZ_JWT_AUDIENCE
	    "\",\"sub\":\"erin\",\"exp\":1e300,\"iat\":-1}");
	write_file("jwt", "claims_huge_exp.json", claims, strlen(claims));
	free(claims);

	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	EVP_PKEY_free(ed);
}

/* ---- DTLS ---------------------------------------------------------- */

static void dtls_queue_seeds(const char *prefix, const struct dtlsp_queue *q)
{
	char name[64];
	size_t i;

	for (i = 0; i < q->n; i++) {
		snprintf(name, sizeof(name), "%s_%02zu.bin", prefix, i);
		write_file("dtls_peek", name, q->d[i].p, q->d[i].len);
	}
}

/* Seeds for fuzz_dtls_peek.c: every datagram of a whole handshake with a
 * roomy MTU (hellos, both certificates whole, epoch-1 Finished and
 * application data) and with a small one (fragmented certificates), then
 * hand-made DTLS 1.3 hellos and unified-header records, which OpenSSL
 * 3.0 cannot send. */
static void dtls_seeds(void)
{
	static const uint8_t sh13_exts[] = {
		0x00, 0x2b, 0x00, 0x02, 0xfe, 0xfc,
		0x00, 0x0e, 0x00, 0x05, 0x00, 0x02, 0x00, 0x07, 0x00,
	};
	static const uint8_t ch13_exts[] = {
		0x00, 0x2b, 0x00, 0x05, 0x04, 0xfe, 0xfc, 0xfe, 0xfd,
		0x00, 0x0e, 0x00, 0x07, 0x00, 0x04, 0x00, 0x08, 0x00, 0x01, 0x00,
	};
	uint8_t body[128], dg[512];
	struct dtlsp_run run;
	struct wr w;
	size_t n;

	if (dtlsp_run(&run, "SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80",
	    "SRTP_AES128_CM_SHA1_80:SRTP_AEAD_AES_256_GCM", 1200) != 0)
		exit(2);
	dtls_queue_seeds("mtu1200_c2s", &run.c2s);
	dtls_queue_seeds("mtu1200_s2c", &run.s2c);
	dtlsp_run_free(&run);
	if (dtlsp_run(&run, "SRTP_AEAD_AES_256_GCM:SRTP_AES128_CM_SHA1_80",
	    "SRTP_AEAD_AES_256_GCM", 300) != 0)
		exit(2);
	dtls_queue_seeds("mtu300_c2s", &run.c2s);
	dtls_queue_seeds("mtu300_s2c", &run.s2c);
	dtlsp_run_free(&run);

	n = dtlsp_server_hello(body, sizeof(body), sh13_exts, sizeof(sh13_exts));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 2, body, n);
	write_file("dtls_peek", "server_hello_dtls13.bin", dg, w.len);
	/* A unified-header record (16-bit sequence number, length) first. */
	memmove(dg + 25, dg, w.len);
	memset(dg, 0, 25);
	dg[0] = 0x2c;
	dg[4] = 20;
	write_file("dtls_peek", "unified_then_server_hello.bin", dg, w.len + 25);
	/* Without the length bit it runs to the end: the hello is hidden. */
	dg[0] = 0x28;
	write_file("dtls_peek", "unified_no_length.bin", dg, w.len + 25);
	dg[0] = 0x3c;
	write_file("dtls_peek", "unified_cid.bin", dg, w.len + 25);

	n = dtlsp_client_hello(body, sizeof(body), ch13_exts, sizeof(ch13_exts));
	w = wr_init(dg, sizeof(dg));
	dtlsp_put_handshake(&w, 1, body, n);
	write_file("dtls_peek", "client_hello_dtls13.bin", dg, w.len);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	turn_seeds();
	jwt_seeds();
	dtls_seeds();
	return 0;
}
