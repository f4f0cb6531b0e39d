/* Password hashes: argon2id (RFC 9106) through libargon2, stored as the
 * encoded PHC string ("$argon2id$v=19$m=65536,t=3,p=1$salt$hash"), which
 * carries its own parameters, so they can be raised later without
 * breaking the hashes already stored. */
#ifndef GH_SIGNALING_PASSWORD_H
#define GH_SIGNALING_PASSWORD_H

#include <stddef.h>
#include <stdint.h>

/* RFC 9106 §4, second recommended option (for when 2 GiB per hash is
 * too much): t=3 passes over 64 MiB. The RFC splits the memory into 4
 * lanes for 4 threads; libargon2 is used single-threaded here, where
 * more lanes cost the same time and add nothing. */
#define PASSWORD_T_COST 3
#define PASSWORD_M_COST_KIB 65536
#define PASSWORD_LANES 1
#define PASSWORD_SALT_LEN 16     /* RFC 9106 §3.1: 128 bits suffice */
#define PASSWORD_HASH_LEN 32
#define PASSWORD_ENCODED_MAX 128 /* the encoded string of the above is 97 */

/* The shape userdb accepts: long enough not to be guessed online, short
 * enough that hashing it costs nothing extra. */
#define PASSWORD_MIN_LEN 8
#define PASSWORD_MAX_LEN 1024

enum password_rc {
	PASSWORD_OK = 0,
	PASSWORD_MISMATCH = -1, /* a well-formed hash of another password */
	PASSWORD_ERROR = -2,    /* out of memory, random generator or a corrupt hash */
};

/* Hashes a NUL-terminated password with a fresh random salt into
 * encoded (cap >= PASSWORD_ENCODED_MAX). PASSWORD_OK or PASSWORD_ERROR. */
int password_hash(const char *password, char *encoded, size_t cap);

/* Checks a password against an encoded hash (libargon2 compares in
 * constant time). PASSWORD_OK, PASSWORD_MISMATCH or PASSWORD_ERROR. */
int password_verify(const char *encoded, const char *password);

/* Spends the time of a password_verify() without a user to verify: for
 * unknown, locked and disabled accounts, so that how long a refusal takes
 * tells nothing about which one it was. */
void password_dummy_verify(const char *password);

/* Tests only: hash (and dummy-verify) at m_kib KiB and t passes instead
 * of the real cost, which takes a quarter of a second each. Not thread
 * safe; call it before anything else hashes. Never call it in the daemon. */
void password_set_cost_for_tests(uint32_t m_kib, uint32_t t);

#endif
