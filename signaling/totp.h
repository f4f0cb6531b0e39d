/* TOTP (RFC 6238 over RFC 4226 HOTP): HMAC-SHA1, 6 digits, 30-second
 * steps, and base32 (RFC 4648) for secrets shown to authenticator apps.
 * Pure. */
#ifndef GH_SIGNALING_TOTP_H
#define GH_SIGNALING_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define TOTP_STEP_S 30
#define TOTP_DIGITS 6

/* The code for a counter (RFC 4226 §5.3), 0..999999. */
uint32_t totp_hotp(const uint8_t *secret, size_t len, uint64_t counter);

/* Checks a 6-digit code (exactly six ASCII digits) against steps
 * now-1, now, now+1 in constant time, refusing any step <= *last_step
 * (a code is accepted once). On success sets *last_step to the matched
 * step and returns 0; otherwise -1. */
int totp_check(const uint8_t *secret, size_t len, const char *code, uint64_t now_s,
    uint64_t *last_step);

/* Base32 without padding, upper case. Returns the length written (NUL-
 * terminated) or -1 when cap is too small. */
int totp_base32_encode(const uint8_t *in, size_t len, char *out, size_t cap);
/* Accepts upper/lower case, ignores spaces and '='. Returns bytes or -1. */
int totp_base32_decode(const char *in, uint8_t *out, size_t cap);

/* otpauth://totp/ISSUER:NAME?secret=B32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30
 * with ISSUER and NAME percent-encoded. Returns length or -1. */
int totp_uri(const char *issuer, const char *name, const char *b32, char *out, size_t cap);

#endif
