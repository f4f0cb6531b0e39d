/* AES-256-GCM with associated data, and HMAC-SHA256 for subkeys: the two
 * primitives that TURN credentials (turn/auth.c) and the secrets kept at
 * rest (signaling/userdb.c) are built from. Thin wrappers over OpenSSL's
 * EVP interface; no I/O, no state. */
#ifndef GH_COMMON_AEAD_H
#define GH_COMMON_AEAD_H

#include <stddef.h>
#include <stdint.h>

#define AEAD_KEY_LEN 32
/* The 96-bit IV that GCM is defined for (NIST SP 800-38D §5.2.1.1). */
#define AEAD_IV_LEN 12
#define AEAD_TAG_LEN 16

/* Encrypts ptlen bytes of pt into ct (ptlen bytes) and writes the tag.
 * ct may be pt. 0 or -1. */
int aead_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t iv[AEAD_IV_LEN],
    const void *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
    uint8_t *ct, uint8_t tag[AEAD_TAG_LEN]);

/* Decrypts and authenticates; 0, or -1 when the tag does not match. On
 * failure pt holds unauthenticated bytes (OpenSSL decrypts before it
 * checks the tag): the caller must not use them, and wipes pt either
 * way. */
int aead_open(const uint8_t key[AEAD_KEY_LEN], const uint8_t iv[AEAD_IV_LEN],
    const void *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
    const uint8_t tag[AEAD_TAG_LEN], uint8_t *pt);

/* out = HMAC-SHA256(key, msg). 0 or -1. */
int hmac_sha256(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
    uint8_t out[32]);

#endif
