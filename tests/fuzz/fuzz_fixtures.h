/* Fixed inputs shared by the fuzz targets and the seed generator
 * (gen_corpus.c), so that seeds carrying a nonce, a MESSAGE-INTEGRITY or
 * a JWS signature are valid inside the target that replays them: same
 * TURN secret, realm, user, clock and client address; same JWT keys,
 * issuer, audience and clock.
 *
 * The private keys below are TEST KEYS, published with the source: they
 * sign fuzz seeds and nothing else. Never put them in a JWKS that a real
 * gateway trusts. */
#ifndef GH_TESTS_FUZZ_FIXTURES_H
#define GH_TESTS_FUZZ_FIXTURES_H

#include <stdint.h>

/* Not every target uses every fixture. */
#define FZ_UNUSED __attribute__((unused))

/* ---- TURN (fuzz_turn_server.c) ---- */

#define FZ_REALM "fuzz.realm"
#define FZ_STATIC_USER "fuzz"
#define FZ_STATIC_PASS "fuzz-pass"
/* The clock of the server at its creation; nonces in the seeds are made
 * at this time and stay valid for FZ_NONCE_LIFETIME_S. */
#define FZ_T0_MS 1700000000000ULL
#define FZ_NONCE_LIFETIME_S 600
/* Every client shares one IP (a nonce is bound to the IP, not the port):
 * the allocation made at init is FZ_OWNER_PORT's, the second one (a
 * relay-to-relay peer) FZ_OTHER_PORT's; the fuzzed stream comes from a
 * fresh TCP connection on FZ_STREAM_PORT. */
#define FZ_CLIENT_IP "192.0.2.10"
#define FZ_OWNER_PORT 50001
#define FZ_OTHER_PORT 50002
#define FZ_STREAM_PORT 40000
#define FZ_SERVER_IP "127.0.0.1"
#define FZ_SERVER_PORT 3478
/* Relayed addresses: FZ_RELAY_IP, ports from FZ_RELAY_PORT0 on, in
 * allocation order (the owner's is FZ_RELAY_PORT0, the other's + 1). */
#define FZ_RELAY_IP "127.0.0.1"
#define FZ_RELAY_PORT0 49152
/* Peers: the operator allows this documentation range, so a static user
 * may reach it. PEER1 has a permission and channel FZ_CHANNEL at init,
 * PEER2 a permission only. */
#define FZ_ALLOW_CIDR "198.51.100.0/24"
#define FZ_PEER1_IP "198.51.100.7"
#define FZ_PEER1_PORT 5000
#define FZ_PEER2_IP "198.51.100.8"
#define FZ_PEER2_PORT 6000
#define FZ_CHANNEL 0x4000
/* Call credentials minted with the secret: FZ_CALL_ID is live,
 * FZ_ENDED_CALL_ID has ended (ops->credential_ok refuses it). */
#define FZ_CALL_USER "alice"
#define FZ_CALL_ID "fuzzcallfuzzcallfuzzca"
#define FZ_ENDED_CALL_ID "endedcallendedcallende"
#define FZ_CALL_EXPIRES_S (FZ_T0_MS / 1000 + 3600)

static const uint8_t fz_turn_secret[32] FZ_UNUSED = {
	0x67, 0x61, 0x74, 0x65, 0x68, 0x6f, 0x75, 0x73, 0x65, 0x2d, 0x66, 0x75,
	0x7a, 0x7a, 0x2d, 0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x2d, 0x6e, 0x6f,
	0x74, 0x2d, 0x72, 0x65, 0x61, 0x6c, 0x21, 0x00,
};

/* ---- JWT (fuzz_jwt.c) ---- */

#define FZ_JWT_ISSUER "https://idp.example"
#define FZ_JWT_AUDIENCE "gatehouse"
#define FZ_JWT_NOW_S 1700000000ULL
#define FZ_KID_RSA "rsa-1"
#define FZ_KID_EC "ec-1"
#define FZ_KID_ED "ed-1"

/* TEST KEY: RSA 2048, signs RS256 seeds. */
static const char fz_rsa_pem[] FZ_UNUSED =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC2/ApY5tH5tPP/\n"
	"q4calfT+ISw4egTxY9+HIRhpxVfKHJvwFRblwkncQbRz3zc7hrhMndpxl1wF0byH\n"
	"rGi88ZOTksnavjup1QeEUG7P7mKx53SsX5wlpQzD2kZ29nHjJbD2cbrytuvlVVcH\n"
	"bQCZPyBZO/WlgMXA9hEwHQz8lpQzIJ+N/uU2GQL1rC3LV9IitEUa/0+Iq2ExNFrn\n"
	"A21JADtfjMWoOnh1nX3I05Pt1Kts54aMx4QyQvRxQpJ/LqGPjlDgMfKqBhogMT6b\n"
	"MftQ/Qi6Q4UFXzNKG/OMn96LOXiKosCt7KYDy/AJSBhZchdG+qUyv9mwBCaTSd+P\n"
	"FxHqBLCXAgMBAAECggEANegceEJPu5umgjybCacBzNgi+eRgjmiY0mtakNZ1XXJ+\n"
	"MgVUgI1zSvMEYVpyIBQ5OUELuIkZsBEw1FtjY75bdo847js6wnaix0UW0CTvaG/C\n"
	"fIGSM7jjANPODH/f30YcUw4AQD7JUf+JKwPeuEbTldZHMOG14HndaGo2iDcoI8NI\n"
	"wxDfoQf9Dt2Wg4F4zM8rL7Y46jrFaNchbj2V9rLRG3Y5BevQ/NUU/HnF6gdmrzof\n"
	"clMOdC5u5PWJkl03VLhaIR3dNdRdrXHvOgsXsEY5tSybWL/mybgc4P5ySnF59ekW\n"
	"dXYBaZUxM4t5jztErIbZ62aebov8hCZWzJWAkAgw8QKBgQD6DGxjThGhJStPmWNg\n"
	"kdDNDFwid4Q12F0l9Ybrfe2aZ1mXFA5PYYhp9yP0GQkFqers1pG7VOo9oOSqdB0/\n"
	"0EWL1TX4/sM5Uon2zPTQHPHnnXqX3ru27fjmg9c12EMtrLReyDMdH9RrKWmCv+ve\n"
	"FP/cDG2SuupHHOIBS9NS1U+f7wKBgQC7Vvzg84ejs9q8Q1MtolaglGFEsHgmRhkQ\n"
	"FySYHk4gYDPdcT/P6dLV7g0ZJPwCK/APs5rFflt/Yl/BdaZsBixlgJ9CzIIecu//\n"
	"5mS2Q3BWwTzOlUxxlcOFoKPOpigTh7e429ceQ3dy8B3YAcJRAwwptwBSowUD1NP/\n"
	"5ykbM0zR2QKBgD2Lv0X2GkrCvlVaWOaVHYLK7wagyk8CkXLdazcdiNU/aQLRsfAB\n"
	"/rSuWxAi9WCKgUOIUNh+PyWqK351FBn35pZThXRjKKQ8V68CpaNv7G7pCRrGfQe6\n"
	"rU/31YnwUCC26LKHrmUVx5AU4l6HZMQGATAlcvbxwOZ+CnbtNfemf3HLAoGBAK+J\n"
	"cqnVhuL9Q5fj/axk0Ibmgb27HNnAFPves4tV2h68Bd0YoJJQph2OUPeekAP455fO\n"
	"0tb67wENTGwZsTbHEhKJ0rDkr4eYawl8+CFQT5L6vd9URayoh+xN+S9IwYSLRrsQ\n"
	"QyE4VlR8aXpdK5Z9JIhx0PudhLVyVrMSBpJWH0UBAoGAfLHfLZ0PUG6YwAByUfhe\n"
	"ReamOT6D/ADTVBj/IIhh+/LopnpOpxrb+z4uFJXL8s8boc6FFC4Xm6i4E90VeIH5\n"
	"SFUmw3ubmrI62evntsjKA0eZBJL7jyjmG6Y7C+mV2V21wAh3Y6jPaqqQGGxuSOnr\n"
	"6y9zVJOjqHnex/J5Dpcb6Ag=\n"
	"-----END PRIVATE KEY-----\n";

/* TEST KEY: EC P-256, signs ES256 seeds. */
static const char fz_ec_pem[] FZ_UNUSED =
	"-----BEGIN PRIVATE KEY-----\n"
	"MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqQJapOEqlvIsam34\n"
	"zYoSke7OgvlyuiC4hUufJpt7pt2hRANCAAS3OUjfLh6cg9SDtuoPMYoU6uXJOAmF\n"
	"0EmPLGHxUgYNEa05akacaczKW90tbdiModdVgB9f1YbL/YcnQIsjRFMf\n"
	"-----END PRIVATE KEY-----\n";

/* TEST KEY: Ed25519, signs EdDSA seeds and the tokens fuzz_jwt.c signs
 * itself to reach the claim checks behind the signature. */
static const char fz_ed_pem[] FZ_UNUSED =
	"-----BEGIN PRIVATE KEY-----\n"
	"MC4CAQAwBQYDK2VwBCIEIMr9Uz0VACwWEmxIoP8A+nlxnCa4PSBTNoIVahAsZzb0\n"
	"-----END PRIVATE KEY-----\n";

#endif
