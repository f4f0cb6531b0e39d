/* argon2id password hashes (RFC 9106) through libargon2. */
#include "signaling/password.h"

#include <stdio.h>
#include <string.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

/* A hash of a password nobody has, at the real cost, computed once with
 * libargon2 (salt "gatehouse-dummy!"). Verifying against it takes as long
 * as verifying a real user's hash made with the same parameters. */
static const char dummy_real[] =
    "$argon2id$v=19$m=65536,t=3,p=1$Z2F0ZWhvdXNlLWR1bW15IQ"
    "$DCmuzteBmTLcdaXoljEjaX3nD1VDkdQpr65eJDhbsRg";

/* The cost and the matching dummy: the real ones unless a test lowered
 * them (password_set_cost_for_tests). The only writer is that function,
 * so the daemon reads constants in effect. */
static uint32_t cost_m_kib = PASSWORD_M_COST_KIB;
static uint32_t cost_t = PASSWORD_T_COST;
static char dummy_test[PASSWORD_ENCODED_MAX];
static const char *dummy = dummy_real;

_Static_assert(sizeof(dummy_real) <= PASSWORD_ENCODED_MAX, "PASSWORD_ENCODED_MAX");

int password_hash(const char *password, char *encoded, size_t cap)
{
	uint8_t salt[PASSWORD_SALT_LEN];
	size_t len;
	int rc;

	if (password == NULL || encoded == NULL || cap < PASSWORD_ENCODED_MAX)
		return PASSWORD_ERROR;
	len = strlen(password);
	if (len > ARGON2_MAX_PWD_LENGTH)
		return PASSWORD_ERROR;
	if (RAND_bytes(salt, sizeof(salt)) != 1)
		return PASSWORD_ERROR;
	rc = argon2id_hash_encoded(cost_t, cost_m_kib, PASSWORD_LANES, password, len,
	    salt, sizeof(salt), PASSWORD_HASH_LEN, encoded, cap);
	OPENSSL_cleanse(salt, sizeof(salt));
	if (rc != ARGON2_OK) {
		encoded[0] = '\0';
		return PASSWORD_ERROR;
	}
	return PASSWORD_OK;
}

int password_verify(const char *encoded, const char *password)
{
	size_t len;
	int rc;

	if (encoded == NULL || password == NULL)
		return PASSWORD_ERROR;
	len = strlen(password);
	if (len > ARGON2_MAX_PWD_LENGTH)
		return PASSWORD_ERROR;
	rc = argon2id_verify(encoded, password, len);
	if (rc == ARGON2_OK)
		return PASSWORD_OK;
	/* Anything else (no memory, an encoded string that does not parse)
	 * is our fault, not the user's: it must not count as a failure. */
	return rc == ARGON2_VERIFY_MISMATCH ? PASSWORD_MISMATCH : PASSWORD_ERROR;
}

void password_dummy_verify(const char *password)
{
	(void)password_verify(dummy, password != NULL ? password : "");
}

void password_set_cost_for_tests(uint32_t m_kib, uint32_t t)
{
	static const char pw[] = "gatehouse: no such user";
	static const uint8_t salt[PASSWORD_SALT_LEN] = "gatehouse-dummy!";

	if (argon2id_hash_encoded(t, m_kib, PASSWORD_LANES, pw, sizeof(pw) - 1, salt,
	    sizeof(salt), PASSWORD_HASH_LEN, dummy_test, sizeof(dummy_test)) != ARGON2_OK) {
		/* Parameters libargon2 refuses: keep the real cost. */
		fprintf(stderr, "password_set_cost_for_tests: m=%u t=%u refused\n",
		    (unsigned)m_kib, (unsigned)t);
		return;
	}
	cost_m_kib = m_kib;
	cost_t = t;
	dummy = dummy_test;
}
