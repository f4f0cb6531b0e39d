/* TOTP secrets sealed at rest (see secret_seal.h). */
#include "signaling/secret_seal.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "signaling/identity.h"

#define LABEL_TOTP "gh-userdb-totp"
#define LABEL_KEY_ID "gh-userdb-key-id"
#define AAD_LABEL "gh-totp1"
#define AAD_MAX (sizeof(AAD_LABEL) + IDENTITY_NAME_MAX)

int seal_key_derive(const uint8_t key[SEAL_KEY_LEN], struct seal_key *out)
{
	uint8_t id[32];
	int rc = -1;

	if (hmac_sha256(key, SEAL_KEY_LEN, LABEL_TOTP, strlen(LABEL_TOTP), out->totp) == 0 &&
	    hmac_sha256(key, SEAL_KEY_LEN, LABEL_KEY_ID, strlen(LABEL_KEY_ID), id) == 0) {
		memcpy(out->id, id, sizeof(out->id));
		rc = 0;
	}
	OPENSSL_cleanse(id, sizeof(id));
	if (rc != 0)
		OPENSSL_cleanse(out, sizeof(*out));
	return rc;
}

/* The label, its NUL, then the name (without one). */
static size_t aad_of(const char *user, uint8_t aad[AAD_MAX])
{
	size_t n = strnlen(user, IDENTITY_NAME_MAX);

	if (n == 0 || n >= IDENTITY_NAME_MAX)
		return 0;
	memcpy(aad, AAD_LABEL, sizeof(AAD_LABEL));
	memcpy(aad + sizeof(AAD_LABEL), user, n);
	return sizeof(AAD_LABEL) + n;
}

int seal_totp(const struct seal_key *k, const char *user, const uint8_t *secret,
    size_t len, uint8_t *out, size_t cap)
{
	uint8_t aad[AAD_MAX];
	size_t aadlen = aad_of(user, aad);

	if (aadlen == 0 || len == 0 || len > SEAL_SECRET_MAX || cap < len + SEAL_OVERHEAD)
		return -1;
	out[0] = SEAL_VERSION;
	/* A random IV per seal: a re-enrolment seals a new secret under the
	 * same key, and 2^32 random IVs are allowed (SP 800-38D §8.3). */
	if (RAND_bytes(out + 1, AEAD_IV_LEN) != 1 ||
	    aead_seal(k->totp, out + 1, aad, aadlen, secret, len, out + 1 + AEAD_IV_LEN,
	    out + 1 + AEAD_IV_LEN + len) != 0) {
		OPENSSL_cleanse(out, cap);
		return -1;
	}
	return (int)(len + SEAL_OVERHEAD);
}

int open_totp(const struct seal_key *k, const char *user, const uint8_t *sealed,
    size_t len, uint8_t *out, size_t cap)
{
	uint8_t aad[AAD_MAX];
	size_t aadlen = aad_of(user, aad), n;

	if (aadlen == 0 || len <= SEAL_OVERHEAD || len > SEAL_SEALED_MAX ||
	    sealed[0] != SEAL_VERSION || cap < len - SEAL_OVERHEAD)
		return -1;
	n = len - SEAL_OVERHEAD;
	if (aead_open(k->totp, sealed + 1, aad, aadlen, sealed + 1 + AEAD_IV_LEN, n,
	    sealed + 1 + AEAD_IV_LEN + n, out) != 0) {
		OPENSSL_cleanse(out, n);
		return -1;
	}
	return (int)n;
}
