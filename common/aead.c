/* AES-256-GCM and HMAC-SHA256 over OpenSSL (see aead.h). */
#include "common/aead.h"

#include <limits.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

int aead_seal(const uint8_t key[AEAD_KEY_LEN], const uint8_t iv[AEAD_IV_LEN],
    const void *aad, size_t aadlen, const uint8_t *pt, size_t ptlen,
    uint8_t *ct, uint8_t tag[AEAD_TAG_LEN])
{
	EVP_CIPHER_CTX *c;
	int n, rc = -1;

	if (aadlen > INT_MAX || ptlen > INT_MAX || (c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
	    EVP_EncryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_EncryptUpdate(c, ct, &n, pt, (int)ptlen) != 1 || (size_t)n != ptlen ||
	    EVP_EncryptFinal_ex(c, ct + n, &n) != 1 || n != 0 ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, AEAD_TAG_LEN, tag) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int aead_open(const uint8_t key[AEAD_KEY_LEN], const uint8_t iv[AEAD_IV_LEN],
    const void *aad, size_t aadlen, const uint8_t *ct, size_t ctlen,
    const uint8_t tag[AEAD_TAG_LEN], uint8_t *pt)
{
	EVP_CIPHER_CTX *c;
	uint8_t tagbuf[AEAD_TAG_LEN];
	int n, rc = -1;

	/* The control call takes a non-const pointer. */
	memcpy(tagbuf, tag, sizeof(tagbuf));
	if (aadlen > INT_MAX || ctlen > INT_MAX || (c = EVP_CIPHER_CTX_new()) == NULL)
		return -1;
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, key, iv) != 1 ||
	    EVP_DecryptUpdate(c, NULL, &n, aad, (int)aadlen) != 1 ||
	    EVP_DecryptUpdate(c, pt, &n, ct, (int)ctlen) != 1 || (size_t)n != ctlen ||
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, AEAD_TAG_LEN, tagbuf) != 1 ||
	    EVP_DecryptFinal_ex(c, pt + n, &n) != 1)
		goto out;
	rc = 0;
out:
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int hmac_sha256(const uint8_t *key, size_t klen, const void *msg, size_t mlen,
    uint8_t out[32])
{
	unsigned int olen = 0;

	if (klen > INT_MAX ||
	    HMAC(EVP_sha256(), key, (int)klen, msg, mlen, out, &olen) == NULL || olen != 32)
		return -1;
	return 0;
}
