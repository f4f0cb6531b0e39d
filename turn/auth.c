/* TURN long-term authentication without server state (RFC 8489 §9.2).
 *
 * Everything here is derived from the 32-byte shared secret, so any
 * relay node holding it can make and check nonces and credentials:
 *
 *   nonce    = "obMatJos2" "AAAB" b64url(expiry_ms(8) | mac(16))
 *              mac = HMAC-SHA256(secret, "gh-nonce" | expiry_ms | ip)[0..16)
 *   enc_key  = HMAC-SHA256(secret, "gh-cred-enc")
 *   mac_key  = HMAC-SHA256(secret, "gh-cred-mac")
 *   username = "gh1." b64url(iv(12) | AES-256-GCM(enc_key, iv, aad "gh1",
 *              expires_s(8) | len | user | len | call) | tag(16))
 *   password = b64url(HMAC-SHA256(mac_key, username))
 *
 * The subkeys are HMAC-SHA256 of the secret over fixed labels: with a
 * uniformly random 32-byte secret HMAC is a PRF, which is all HKDF-Expand
 * would add here (it is HMAC(secret, label | 0x01) for one block). The
 * labels and the nonce MAC input start differently ("gh-n" vs "gh-c"), so
 * no nonce MAC, which the network sees, is ever a subkey.
 *
 * Pure: no I/O, no clock, no logging; the caller passes the time. The
 * only outside state is RAND_bytes for the GCM IV of a fresh credential. */
#include "turn/auth.h"

#include <netinet/in.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/aead.h"
#include "common/b64url.h"
#include "common/bytes.h"

/* RFC 8489 §9.2 and §18.1: the nonce cookie is followed by the 24-bit
 * Security Feature Set in base64. We set bit 0, "Password algorithms"
 * (we offer PASSWORD-ALGORITHMS), and not bit 1, "Username anonymity"
 * (no USERHASH). Verified erratum EID 6290 numbers the bits from the
 * least significant end, contrary to the original §18.1 prose; the
 * example nonce of Appendix B.1 ("AAAC", username anonymity) agrees.
 * So the three bytes are 00 00 01: "AAAB". */
#define NONCE_FEATURES "AAAB"
#define NONCE_PREFIX TURN_NONCE_COOKIE NONCE_FEATURES
#define NONCE_PREFIX_LEN 13
#define NONCE_MAC_LEN 16
#define NONCE_RAW_LEN (8 + NONCE_MAC_LEN)
#define NONCE_B64_LEN 32 /* 24 bytes, no padding needed */
#define NONCE_LEN (NONCE_PREFIX_LEN + NONCE_B64_LEN)
#define NONCE_DEFAULT_LIFETIME_S 600
/* Slack for relay nodes whose clocks run ahead of ours. */
#define NONCE_SKEW_MS 60000

#define CRED_PREFIX "gh1."
#define CRED_PREFIX_LEN 4
#define CRED_AAD "gh1" /* binds the ciphertext to this format */
#define CRED_IV_LEN AEAD_IV_LEN
#define CRED_TAG_LEN AEAD_TAG_LEN
/* expires_s, two length bytes, user and call of up to TURN_ID_MAX-1. */
#define CRED_PT_MAX (8 + 1 + (TURN_ID_MAX - 1) + 1 + (TURN_ID_MAX - 1))
#define CRED_PT_MIN (8 + 1 + 1 + 1 + 1)
#define CRED_RAW_MAX (CRED_IV_LEN + CRED_PT_MAX + CRED_TAG_LEN)
#define CRED_RAW_MIN (CRED_IV_LEN + CRED_PT_MIN + CRED_TAG_LEN)
#define PASSWORD_B64_LEN 43 /* 32 bytes */

#define KEY_LEN AEAD_KEY_LEN

/* Base64url (RFC 4648 §5) without padding. Characters are chosen by
 * arithmetic, not by a table lookup, because a password is secret and
 * a table indexed by it would leak through the cache. Each mask is all
 * ones when the condition holds. */
/* The client IP as the nonce binds it: 4 bytes for IPv4, also when
 * written ::ffff:a.b.c.d (a dual-stack socket reports it that way), else
 * 16. The port is left out: a TCP reconnect changes it, and the 5-tuple
 * is checked by the allocation code. Returns the length or -1. */
static int client_ip(const struct sockaddr *sa, uint8_t out[16])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		memcpy(out, &sin.sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		if (memcmp(sin6.sin6_addr.s6_addr, mapped, 12) == 0) {
			memcpy(out, sin6.sin6_addr.s6_addr + 12, 4);
			return 4;
		}
		memcpy(out, sin6.sin6_addr.s6_addr, 16);
		return 16;
	}
	return -1;
}

static void auth_put_be64(uint8_t *p, uint64_t v)
{
	put_be32(p, (uint32_t)(v >> 32));
	put_be32(p + 4, (uint32_t)v);
}

static int auth_rd_u64(struct rd *r, uint64_t *v)
{
	uint32_t hi, lo;

	if (r->left < 8)
		return -1;
	rd_u32(r, &hi);
	rd_u32(r, &lo);
	*v = ((uint64_t)hi << 32) | lo;
	return 0;
}

static uint64_t lifetime_ms(const struct turn_auth *a)
{
	uint32_t s = a->nonce_lifetime_s ? a->nonce_lifetime_s :
	    NONCE_DEFAULT_LIFETIME_S;

	return (uint64_t)s * 1000;
}

/* The truncated nonce MAC over "gh-nonce" | expiry | client IP. */
static int nonce_mac(const struct turn_auth *a, uint64_t expiry_ms,
    const uint8_t *ip, size_t iplen, uint8_t mac[NONCE_MAC_LEN])
{
	uint8_t msg[8 + 8 + 16], full[32];
	struct wr w = wr_init(msg, sizeof(msg));
	int rc;

	wr_bytes(&w, "gh-nonce", 8);
	wr_u32(&w, (uint32_t)(expiry_ms >> 32));
	wr_u32(&w, (uint32_t)expiry_ms);
	wr_bytes(&w, ip, iplen);
	if (w.overflow)
		return -1;
	rc = hmac_sha256(a->secret, sizeof(a->secret), msg, w.len, full);
	memcpy(mac, full, NONCE_MAC_LEN);
	OPENSSL_cleanse(full, sizeof(full));
	return rc;
}

int turn_nonce_make(const struct turn_auth *a, const struct sockaddr *client,
    uint64_t now_ms, char *out, size_t cap)
{
	uint8_t ip[16], raw[NONCE_RAW_LEN];
	uint64_t life, expiry;
	int iplen;

	if (out != NULL && cap > 0)
		out[0] = '\0';
	if (a == NULL || (iplen = client_ip(client, ip)) < 0)
		return TURN_AUTH_INVALID;
	if (out == NULL || cap < NONCE_LEN + 1)
		return TURN_AUTH_ENOSPC;
	life = lifetime_ms(a);
	if (now_ms > UINT64_MAX - life)
		return TURN_AUTH_INVALID;
	expiry = now_ms + life;

	auth_put_be64(raw, expiry);
	if (nonce_mac(a, expiry, ip, (size_t)iplen, raw + 8) != 0)
		return TURN_AUTH_INVALID;
	memcpy(out, NONCE_PREFIX, NONCE_PREFIX_LEN);
	b64url_encode(raw, sizeof(raw), out + NONCE_PREFIX_LEN);
	out[NONCE_LEN] = '\0';
	return TURN_AUTH_OK;
}

int turn_nonce_check(const struct turn_auth *a, const struct sockaddr *client,
    uint64_t now_ms, const uint8_t *nonce, size_t len)
{
	uint8_t ip[16], raw[NONCE_RAW_LEN], want[NONCE_MAC_LEN];
	const uint8_t *prefix, *body, *mac;
	struct rd r;
	uint64_t expiry, life;
	size_t rawlen;
	int iplen;

	if (a == NULL || nonce == NULL || (iplen = client_ip(client, ip)) < 0)
		return TURN_AUTH_INVALID;

	/* Exactly our format: the cookie with our feature bits, then 32
	 * characters and nothing after them. */
	r = rd_init(nonce, len);
	if (rd_bytes(&r, NONCE_PREFIX_LEN, &prefix) ||
	    rd_bytes(&r, NONCE_B64_LEN, &body) || r.left != 0)
		return TURN_AUTH_INVALID;
	if (memcmp(prefix, NONCE_PREFIX, NONCE_PREFIX_LEN) != 0)
		return TURN_AUTH_INVALID;
	if (b64url_decode(body, NONCE_B64_LEN, raw, sizeof(raw), &rawlen) != 0 ||
	    rawlen != sizeof(raw))
		return TURN_AUTH_INVALID;

	r = rd_init(raw, sizeof(raw));
	if (auth_rd_u64(&r, &expiry) || rd_bytes(&r, NONCE_MAC_LEN, &mac) ||
	    r.left != 0)
		return TURN_AUTH_INVALID;
	if (nonce_mac(a, expiry, ip, (size_t)iplen, want) != 0)
		return TURN_AUTH_INVALID;
	if (CRYPTO_memcmp(mac, want, NONCE_MAC_LEN) != 0)
		return TURN_AUTH_INVALID;

	/* Ours, for this client. A nonce that lives longer than we would
	 * have made it was not made by a node in its right mind. */
	life = lifetime_ms(a);
	if (expiry > now_ms && expiry - now_ms > life + NONCE_SKEW_MS)
		return TURN_AUTH_INVALID;
	/* RFC 8489 §9.2.4: an expired nonce is stale (438), so that the
	 * client retries with the fresh one rather than giving up. */
	if (expiry < now_ms)
		return TURN_AUTH_STALE;
	return TURN_AUTH_OK;
}

/* Both subkeys; the caller wipes them. */
static int derive_keys(const struct turn_auth *a, uint8_t enc[KEY_LEN],
    uint8_t mac[KEY_LEN])
{
	if (hmac_sha256(a->secret, sizeof(a->secret),
	    (const uint8_t *)"gh-cred-enc", 11, enc) != 0 ||
	    hmac_sha256(a->secret, sizeof(a->secret),
	    (const uint8_t *)"gh-cred-mac", 11, mac) != 0)
		return -1;
	return 0;
}

/* A user name or call id: 1..TURN_ID_MAX-1 bytes of printable ASCII
 * (0x20..0x7e, isprint() in the C locale, whatever the process locale).
 * They end up in logs and in struct turn_identity as C strings. */
static bool id_ok(const uint8_t *s, size_t n)
{
	size_t i;

	if (n == 0 || n >= TURN_ID_MAX)
		return false;
	for (i = 0; i < n; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* password = b64url(HMAC-SHA256(mac_key, username)), NUL-terminated. */
static int cred_password(const uint8_t mac_key[KEY_LEN],
    const uint8_t *username, size_t ulen, char *password, size_t pcap)
{
	uint8_t h[32];

	if (pcap < PASSWORD_B64_LEN + 1)
		return TURN_AUTH_ENOSPC;
	if (hmac_sha256(mac_key, KEY_LEN, username, ulen, h) != 0)
		return TURN_AUTH_INVALID;
	b64url_encode(h, sizeof(h), password);
	password[PASSWORD_B64_LEN] = '\0';
	OPENSSL_cleanse(h, sizeof(h));
	return TURN_AUTH_OK;
}

int turn_cred_mint(const struct turn_auth *a, const char *user,
    const char *call, uint64_t expires_s, char *username, size_t ucap,
    char *password, size_t pcap)
{
	uint8_t enc[KEY_LEN], mac[KEY_LEN];
	uint8_t pt[CRED_PT_MAX], raw[CRED_RAW_MAX];
	struct wr w;
	size_t ulen, clen, rawlen, namelen;
	int rc = TURN_AUTH_INVALID;

	if (username != NULL && ucap > 0)
		username[0] = '\0';
	if (password != NULL && pcap > 0)
		password[0] = '\0';
	if (a == NULL || user == NULL || call == NULL)
		return TURN_AUTH_INVALID;
	ulen = strnlen(user, TURN_ID_MAX);
	clen = strnlen(call, TURN_ID_MAX);
	if (!id_ok((const uint8_t *)user, ulen) ||
	    !id_ok((const uint8_t *)call, clen))
		return TURN_AUTH_INVALID;
	rawlen = CRED_IV_LEN + 8 + 1 + ulen + 1 + clen + CRED_TAG_LEN;
	namelen = CRED_PREFIX_LEN + b64url_len(rawlen);
	if (username == NULL || ucap < namelen + 1 || password == NULL ||
	    pcap < PASSWORD_B64_LEN + 1)
		return TURN_AUTH_ENOSPC;

	w = wr_init(pt, sizeof(pt));
	wr_u32(&w, (uint32_t)(expires_s >> 32));
	wr_u32(&w, (uint32_t)expires_s);
	wr_u8(&w, (uint8_t)ulen);
	wr_bytes(&w, user, ulen);
	wr_u8(&w, (uint8_t)clen);
	wr_bytes(&w, call, clen);
	if (w.overflow)
		goto out;

	/* A fresh random IV per credential: with one key for all of them,
	 * SP 800-38D §8.3 allows 2^32 random IVs, far beyond our rate. */
	if (derive_keys(a, enc, mac) != 0 ||
	    RAND_bytes(raw, CRED_IV_LEN) != 1 ||
	    aead_seal(enc, raw, CRED_AAD, strlen(CRED_AAD), pt, w.len, raw + CRED_IV_LEN,
	    raw + CRED_IV_LEN + w.len) != 0)
		goto out;

	memcpy(username, CRED_PREFIX, CRED_PREFIX_LEN);
	b64url_encode(raw, rawlen, username + CRED_PREFIX_LEN);
	username[namelen] = '\0';
	rc = cred_password(mac, (const uint8_t *)username, namelen, password,
	    pcap);
	if (rc != TURN_AUTH_OK)
		username[0] = '\0';
out:
	OPENSSL_cleanse(enc, sizeof(enc));
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(pt, sizeof(pt));
	return rc;
}

/* Call credentials: decode, authenticate, parse, check expiry. */
static int lookup_call(const struct turn_auth *a, const uint8_t *username,
    size_t ulen, uint64_t now_s, struct turn_identity *id, char *password,
    size_t pcap)
{
	uint8_t enc[KEY_LEN], mac[KEY_LEN];
	uint8_t raw[CRED_RAW_MAX], pt[CRED_PT_MAX];
	const uint8_t *iv, *ct, *tag, *user, *call;
	struct rd r;
	uint64_t expires_s;
	uint8_t n_user, n_call;
	size_t ctlen;
	size_t rawlen;
	int rc = TURN_AUTH_INVALID;

	memset(pt, 0, sizeof(pt));
	if (ulen - CRED_PREFIX_LEN > b64url_len(CRED_RAW_MAX))
		return TURN_AUTH_INVALID;
	if (b64url_decode(username + CRED_PREFIX_LEN, ulen - CRED_PREFIX_LEN, raw,
	    sizeof(raw), &rawlen) != 0 || rawlen < CRED_RAW_MIN)
		return TURN_AUTH_INVALID;

	r = rd_init(raw, (size_t)rawlen);
	ctlen = (size_t)rawlen - CRED_IV_LEN - CRED_TAG_LEN;
	if (rd_bytes(&r, CRED_IV_LEN, &iv) || rd_bytes(&r, ctlen, &ct) ||
	    rd_bytes(&r, CRED_TAG_LEN, &tag) || r.left != 0)
		return TURN_AUTH_INVALID;

	if (derive_keys(a, enc, mac) != 0 ||
	    aead_open(enc, iv, CRED_AAD, strlen(CRED_AAD), ct, ctlen, tag, pt) != 0)
		goto out;

	/* Authenticated, so we made it; parse it as strictly anyway. */
	r = rd_init(pt, ctlen);
	if (auth_rd_u64(&r, &expires_s) || rd_u8(&r, &n_user) ||
	    rd_bytes(&r, n_user, &user) || rd_u8(&r, &n_call) ||
	    rd_bytes(&r, n_call, &call) || r.left != 0)
		goto out;
	if (!id_ok(user, n_user) || !id_ok(call, n_call))
		goto out;
	if (expires_s < now_s)
		goto out;

	if ((rc = cred_password(mac, username, ulen, password, pcap)) !=
	    TURN_AUTH_OK)
		goto out;
	id->kind = TURN_ID_CALL;
	memcpy(id->user, user, n_user);
	id->user[n_user] = '\0';
	memcpy(id->call, call, n_call);
	id->call[n_call] = '\0';
	id->expires_s = expires_s;
out:
	OPENSSL_cleanse(enc, sizeof(enc));
	OPENSSL_cleanse(mac, sizeof(mac));
	OPENSSL_cleanse(pt, sizeof(pt));
	return rc;
}

/* Static users: the name is compared with every entry in constant time,
 * and the loop neither stops at a match nor branches on one, so the time
 * taken says nothing about which names exist or how long they are. The
 * first match wins if the configuration repeats a name. */
static int lookup_static(const struct turn_auth *a, const uint8_t *username,
    size_t ulen, struct turn_identity *id, char *password, size_t pcap)
{
	uint8_t want[TURN_ID_MAX], have[TURN_ID_MAX];
	const struct turn_static_user *su;
	size_t i, nlen, found = 0;
	unsigned eq, hit = 0, mask;
	size_t plen;

	if (a->static_users == NULL || a->nstatic == 0)
		return TURN_AUTH_INVALID;
	/* Longer names cannot match; the empty name never does, or an
	 * unused entry would let an empty USERNAME in. */
	if (ulen == 0 || ulen >= TURN_ID_MAX)
		return TURN_AUTH_INVALID;
	memset(want, 0, sizeof(want));
	memcpy(want, username, ulen);

	for (i = 0; i < a->nstatic; i++) {
		su = &a->static_users[i];
		nlen = strnlen(su->name, TURN_ID_MAX);
		memset(have, 0, sizeof(have));
		memcpy(have, su->name, nlen < TURN_ID_MAX ? nlen : 0);
		/* Zero padding makes "bob" and "bob\0" look alike, so the
		 * lengths must agree too. */
		eq = (unsigned)(CRYPTO_memcmp(want, have, sizeof(want)) == 0) &
		    (unsigned)(nlen == ulen);
		mask = 0u - (eq & (hit ^ 1u));
		found = (found & ~(size_t)mask) | (i & (size_t)mask);
		hit |= eq;
	}
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(have, sizeof(have));
	if (!hit)
		return TURN_AUTH_INVALID;

	su = &a->static_users[found];
	/* An entry whose password is empty or fills the array without a
	 * NUL is a broken configuration: refuse rather than guess. */
	plen = strnlen(su->password, TURN_PASSWORD_MAX);
	if (plen == 0 || plen == TURN_PASSWORD_MAX)
		return TURN_AUTH_INVALID;
	if (pcap < plen + 1)
		return TURN_AUTH_ENOSPC;
	memcpy(password, su->password, plen);
	password[plen] = '\0';
	id->kind = TURN_ID_STATIC;
	memcpy(id->user, su->name, ulen);
	id->user[ulen] = '\0';
	id->call[0] = '\0';
	id->expires_s = 0;
	return TURN_AUTH_OK;
}

int turn_auth_lookup(const struct turn_auth *a, const uint8_t *username,
    size_t ulen, uint64_t now_s, struct turn_identity *id, char *password,
    size_t pcap)
{
	int rc;

	if (id != NULL)
		memset(id, 0, sizeof(*id));
	if (password != NULL && pcap > 0)
		password[0] = '\0';
	if (a == NULL || id == NULL || password == NULL ||
	    (username == NULL && ulen > 0))
		return TURN_AUTH_INVALID;
	if (pcap == 0)
		return TURN_AUTH_ENOSPC;

	/* The prefix decides: a static name starting with "gh1." can never
	 * be used, and the configuration loader should refuse it. */
	if (ulen >= CRED_PREFIX_LEN &&
	    memcmp(username, CRED_PREFIX, CRED_PREFIX_LEN) == 0)
		rc = lookup_call(a, username, ulen, now_s, id, password, pcap);
	else
		rc = lookup_static(a, username, ulen, id, password, pcap);
	if (rc != TURN_AUTH_OK) {
		memset(id, 0, sizeof(*id));
		OPENSSL_cleanse(password, pcap);
		password[0] = '\0';
	}
	return rc;
}
