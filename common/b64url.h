/* base64url without padding (RFC 4648 §5, RFC 7515 §2), one copy for the
 * whole project: nonces, call credentials, JWTs, admin tokens, call ids. */
#ifndef GH_COMMON_B64URL_H
#define GH_COMMON_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Characters b64url_encode() writes for n bytes. */
size_t b64url_len(size_t n);

/* Writes exactly b64url_len(n) characters and no NUL. Constant time: the
 * bytes may be secret (passwords, tokens), so no table is indexed by them. */
void b64url_encode(const uint8_t *in, size_t n, char *out);

/* Strict decoder for bytes from outside: only the alphabet, no padding,
 * no length of 1 mod 4, and the unused low bits of the last character
 * zero, so every byte string has exactly one spelling (no token can be
 * sent in several forms). Fills out (cap bytes) and *outlen; 0 or -1. */
int b64url_decode(const uint8_t *in, size_t n, uint8_t *out, size_t cap, size_t *outlen);

#endif
