/* TURN long-term authentication (RFC 8489 §9.2) without server state.
 *
 * Nonces are stateless: an expiry time and an HMAC over it and the
 * client's IP address under the server secret, so any relay node holding
 * the secret can check them and a nonce seen from another address is
 * refused. Call credentials are minted by the gateway for one user and
 * one call: the username is an authenticated encryption (AES-256-GCM) of
 * user, call and expiry under a key derived from the secret, so it
 * reveals neither to someone reading the packets; the password is an
 * HMAC of the username. Any node with the secret verifies both without
 * shared state. Pure: no I/O, the caller passes the time. */
#ifndef GH_TURN_AUTH_H
#define GH_TURN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TURN_SECRET_LEN 32
#define TURN_NONCE_MAX 128
#define TURN_USERNAME_MAX 512  /* RFC 8489 §14.3: USERNAME < 509 bytes */
#define TURN_PASSWORD_MAX 128
#define TURN_ID_MAX 64         /* user names and call ids in credentials */

/* RFC 8489 §9.2: a nonce that starts with this cookie carries the
 * security feature bits in its next four characters. */
#define TURN_NONCE_COOKIE "obMatJos2"

enum turn_auth_rc {
	TURN_AUTH_OK = 0,
	TURN_AUTH_STALE = -1,   /* nonce well-formed and ours, but expired */
	TURN_AUTH_INVALID = -2, /* not ours, tampered, other client, garbage */
	TURN_AUTH_ENOSPC = -3,  /* output buffer too small */
};

struct turn_static_user {
	char name[TURN_ID_MAX];
	char password[TURN_PASSWORD_MAX];
};

/* Who a credential belongs to. */
enum turn_identity_kind {
	TURN_ID_STATIC = 1, /* a static user from the config (tools) */
	TURN_ID_CALL = 2,   /* minted for one user in one call */
};

struct turn_identity {
	enum turn_identity_kind kind;
	char user[TURN_ID_MAX]; /* static user name, or the call participant */
	char call[TURN_ID_MAX]; /* empty for static users */
	uint64_t expires_s;     /* UNIX seconds; 0 for static users */
};

struct turn_auth {
	uint8_t secret[TURN_SECRET_LEN]; /* shared by every relay node */
	uint32_t nonce_lifetime_s;       /* default 600 */
	const struct turn_static_user *static_users; /* borrowed, may be NULL */
	size_t nstatic;
};

/* Writes a NUL-terminated nonce for this client address into out: the
 * RFC 8489 cookie "obMatJos2", four base64 characters of feature bits
 * with "password algorithms" set, then base64url of expiry and a
 * truncated HMAC-SHA256(secret, "nonce" | expiry | client IP). */
int turn_nonce_make(const struct turn_auth *a, const struct sockaddr *client,
    uint64_t now_ms, char *out, size_t cap);

/* TURN_AUTH_OK, TURN_AUTH_STALE or TURN_AUTH_INVALID. Constant-time MAC
 * comparison. */
int turn_nonce_check(const struct turn_auth *a, const struct sockaddr *client,
    uint64_t now_ms, const uint8_t *nonce, size_t len);

/* Mints call credentials valid until expires_s. username and password are
 * NUL-terminated printable ASCII (base64url). */
int turn_cred_mint(const struct turn_auth *a, const char *user,
    const char *call, uint64_t expires_s, char *username, size_t ucap,
    char *password, size_t pcap);

/* Finds the password for a USERNAME value: a static user (compared in
 * constant time over the name) or valid call credentials (decrypted,
 * authenticated, not expired at now_s). Fills *id and password (NUL-
 * terminated). Returns TURN_AUTH_OK or TURN_AUTH_INVALID (unknown,
 * forged or expired: the caller answers 401 in every case). */
int turn_auth_lookup(const struct turn_auth *a, const uint8_t *username,
    size_t ulen, uint64_t now_s, struct turn_identity *id, char *password,
    size_t pcap);

#endif
