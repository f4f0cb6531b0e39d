/* TOTP secrets sealed at rest: what users.db stores in place of the raw
 * secret, so that a copy of the database (a backup, a replica, a file
 * read through some other hole) does not give away anyone's second
 * factor without the key file that the daemon keeps apart from it.
 *
 *   sealed = 0x01 | iv(12) | AES-256-GCM(totp_key, iv, aad, secret) | tag(16)
 *   aad    = "gh-totp1" 0x00 user
 *   totp_key = HMAC-SHA256(key, "gh-userdb-totp")
 *   key id   = HMAC-SHA256(key, "gh-userdb-key-id")[0..8)
 *
 * The user's name in the AAD binds each secret to its row: one copied
 * into another user's row does not open. The key id, stored in the
 * database, tells a wrong key file from a damaged secret at start. Pure:
 * no I/O, no logging; RAND_bytes for the IV. */
#ifndef GH_SIGNALING_SECRET_SEAL_H
#define GH_SIGNALING_SECRET_SEAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/aead.h"

#define SEAL_KEY_LEN AEAD_KEY_LEN
#define SEAL_KEY_ID_LEN 8
#define SEAL_VERSION 1
#define SEAL_OVERHEAD (1 + AEAD_IV_LEN + AEAD_TAG_LEN)
#define SEAL_SECRET_MAX 64
#define SEAL_SEALED_MAX (SEAL_OVERHEAD + SEAL_SECRET_MAX)

struct seal_key {
	uint8_t totp[AEAD_KEY_LEN];
	uint8_t id[SEAL_KEY_ID_LEN];
};

/* Derives the subkey and the id from the 32-byte key. 0 or -1. */
int seal_key_derive(const uint8_t key[SEAL_KEY_LEN], struct seal_key *out);

/* Seals len (1..SEAL_SECRET_MAX) bytes of secret for user into out
 * (cap >= len + SEAL_OVERHEAD). Returns the sealed length, or -1. */
int seal_totp(const struct seal_key *k, const char *user, const uint8_t *secret,
    size_t len, uint8_t *out, size_t cap);

/* Opens what seal_totp() made for this user under this key into out
 * (cap >= len - SEAL_OVERHEAD). Returns the secret's length, or -1 when
 * it is not one (wrong shape, key or user, or altered); out is wiped
 * then. */
int open_totp(const struct seal_key *k, const char *user, const uint8_t *sealed,
    size_t len, uint8_t *out, size_t cap);

#endif
