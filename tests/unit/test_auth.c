/* Unit tests for turn/auth.c: stateless nonces and call credentials.
 *
 * The known-answer vectors were computed independently (Python hmac,
 * base64 and cryptography's AESGCM) from the formats documented at the
 * top of turn/auth.c, so that a change of format, which would break a
 * cluster of relays running mixed versions, fails here first. */
#include "turn/auth.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "tests/unit/check.h"

#define T0_MS 1700000000000ull

static struct sockaddr_storage sa_of(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	} else {
		fprintf(stderr, "test bug: cannot parse %s\n", ip);
		check_failures++;
	}
	return ss;
}

#define SA(ss) ((const struct sockaddr *)&(ss))

static void auth_init(struct turn_auth *a, uint8_t seed)
{
	size_t i;

	memset(a, 0, sizeof(*a));
	for (i = 0; i < TURN_SECRET_LEN; i++)
		a->secret[i] = (uint8_t)(seed + i);
	a->nonce_lifetime_s = 600;
}

/* Checks a nonce held in a buffer of exactly len bytes, so that ASan
 * catches any read past the end (the NONCE attribute is not a C string). */
static int check_exact(const struct turn_auth *a, const struct sockaddr *c,
    uint64_t now_ms, const void *nonce, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	if (copy == NULL)
		abort();
	memcpy(copy, nonce, len);
	rc = turn_nonce_check(a, c, now_ms, copy, len);
	free(copy);
	return rc;
}

static bool is_b64url(const char *s)
{
	for (; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		    (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return false;
	return true;
}

static void test_nonce_vectors(void)
{
	struct turn_auth a;
	struct sockaddr_storage v4, v6;
	char n[TURN_NONCE_MAX];

	auth_init(&a, 0);
	v4 = sa_of("192.0.2.1", 40000);
	v6 = sa_of("2606:4700::1111", 40000);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(v4), T0_MS, n, sizeof(n)), TURN_AUTH_OK);
	CHECK(strcmp(n, "obMatJos2AAABAAABi8_uj8Dv-t3NpZYR7NWhb-UMp4dj") == 0);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(v6), T0_MS, n, sizeof(n)), TURN_AUTH_OK);
	CHECK(strcmp(n, "obMatJos2AAABAAABi8_uj8ApKFZrlR98b3tglX6n_VMS") == 0);
}

static void test_nonce_roundtrip(void)
{
	struct turn_auth a, other;
	struct sockaddr_storage c, c2, mapped, far, v6, un;
	char n[TURN_NONCE_MAX], n2[TURN_NONCE_MAX];
	size_t len;

	auth_init(&a, 7);
	c = sa_of("198.51.100.20", 5000);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS, n, sizeof(n)), TURN_AUTH_OK);
	len = strlen(n);
	CHECK_EQ_INT(len, 45);
	CHECK(len < 128); /* RFC 8489 §14.10: fewer than 128 characters */
	CHECK(strncmp(n, TURN_NONCE_COOKIE "AAAB", 13) == 0);
	CHECK(is_b64url(n + 13));

	/* Valid through the lifetime, stale after it. */
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS, n, len), TURN_AUTH_OK);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS + 599999, n, len), TURN_AUTH_OK);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS + 600000, n, len), TURN_AUTH_OK);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS + 600001, n, len), TURN_AUTH_STALE);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS + 86400000, n, len), TURN_AUTH_STALE);
	/* A node whose clock lags by up to a minute still accepts it. */
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS - 60000, n, len), TURN_AUTH_OK);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS - 60001, n, len), TURN_AUTH_INVALID);

	/* The port is not bound; the IP is, in either spelling. */
	c2 = sa_of("198.51.100.20", 5001);
	CHECK_EQ_INT(check_exact(&a, SA(c2), T0_MS, n, len), TURN_AUTH_OK);
	mapped = sa_of("::ffff:198.51.100.20", 6000);
	CHECK_EQ_INT(check_exact(&a, SA(mapped), T0_MS, n, len), TURN_AUTH_OK);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(mapped), T0_MS, n2, sizeof(n2)), TURN_AUTH_OK);
	CHECK(strcmp(n, n2) == 0);
	far = sa_of("198.51.100.21", 5000);
	CHECK_EQ_INT(check_exact(&a, SA(far), T0_MS, n, len), TURN_AUTH_INVALID);
	v6 = sa_of("::198.51.100.20", 5000); /* IPv4-compatible is not the same */
	CHECK_EQ_INT(check_exact(&a, SA(v6), T0_MS, n, len), TURN_AUTH_INVALID);
	/* Expired and from another client: INVALID, not STALE. */
	CHECK_EQ_INT(check_exact(&a, SA(far), T0_MS + 600001, n, len), TURN_AUTH_INVALID);

	/* IPv6 clients. */
	v6 = sa_of("2001:4860:4860::8888", 1);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(v6), T0_MS, n2, sizeof(n2)), TURN_AUTH_OK);
	CHECK_EQ_INT(check_exact(&a, SA(v6), T0_MS, n2, strlen(n2)), TURN_AUTH_OK);
	far = sa_of("2001:4860:4860::8844", 1);
	CHECK_EQ_INT(check_exact(&a, SA(far), T0_MS, n2, strlen(n2)), TURN_AUTH_INVALID);

	/* Another secret: not ours. */
	auth_init(&other, 8);
	CHECK_EQ_INT(check_exact(&other, SA(c), T0_MS, n, len), TURN_AUTH_INVALID);

	/* Lifetime 0 means the default of 600 s. */
	a.nonce_lifetime_s = 0;
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS, n2, sizeof(n2)), TURN_AUTH_OK);
	CHECK(strcmp(n, n2) == 0);
	a.nonce_lifetime_s = 600;

	/* Expiry too far ahead: made "in the future" by more than the
	 * lifetime plus a minute of skew. */
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS + 60001, n2, sizeof(n2)), TURN_AUTH_OK);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS, n2, strlen(n2)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS + 60000, n2, sizeof(n2)), TURN_AUTH_OK);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS, n2, strlen(n2)), TURN_AUTH_OK);
	/* A node with a longer lifetime than ours made it. */
	a.nonce_lifetime_s = 3600;
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS, n2, sizeof(n2)), TURN_AUTH_OK);
	a.nonce_lifetime_s = 600;
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS, n2, strlen(n2)), TURN_AUTH_INVALID);

	/* Capacity and bad arguments. */
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS, n2, 45), TURN_AUTH_ENOSPC);
	CHECK(n2[0] == '\0');
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS, n2, 46), TURN_AUTH_OK);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS, NULL, 0), TURN_AUTH_ENOSPC);
	memset(&un, 0, sizeof(un));
	un.ss_family = AF_UNIX;
	CHECK_EQ_INT(turn_nonce_make(&a, SA(un), T0_MS, n2, sizeof(n2)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_nonce_make(&a, NULL, T0_MS, n2, sizeof(n2)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_nonce_make(NULL, SA(c), T0_MS, n2, sizeof(n2)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), UINT64_MAX - 1000, n2, sizeof(n2)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(check_exact(&a, SA(un), T0_MS, n, len), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_nonce_check(&a, SA(c), T0_MS, NULL, 0), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_nonce_check(NULL, SA(c), T0_MS, (const uint8_t *)n, len), TURN_AUTH_INVALID);
}

static void test_nonce_tamper(void)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct turn_auth a;
	struct sockaddr_storage c;
	char n[TURN_NONCE_MAX], t[TURN_NONCE_MAX + 1];
	size_t len, i, k;
	int bad = 0;

	auth_init(&a, 1);
	c = sa_of("2606:4700::1111", 443);
	CHECK_EQ_INT(turn_nonce_make(&a, SA(c), T0_MS, n, sizeof(n)), TURN_AUTH_OK);
	len = strlen(n);

	/* Every prefix, including the empty one. */
	for (i = 0; i < len; i++)
		if (check_exact(&a, SA(c), T0_MS, n, i) != TURN_AUTH_INVALID)
			bad++;
	/* One byte more. */
	memcpy(t, n, len);
	t[len] = 'A';
	if (check_exact(&a, SA(c), T0_MS, t, len + 1) != TURN_AUTH_INVALID)
		bad++;
	/* Every character replaced by every other character of the
	 * alphabet, and by a few that are not in it. */
	for (i = 0; i < len; i++) {
		for (k = 0; k < sizeof(alphabet) - 1 + 4; k++) {
			memcpy(t, n, len);
			t[i] = k < sizeof(alphabet) - 1 ? alphabet[k] :
			    "=+/\0"[k - (sizeof(alphabet) - 1)];
			if (t[i] == n[i])
				continue;
			if (check_exact(&a, SA(c), T0_MS, t, len) != TURN_AUTH_INVALID)
				bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);

	/* The feature bits as the brief first guessed them ("gAAA"), and
	 * other cookies, are not ours. */
	memcpy(t, n, len);
	memcpy(t + 9, "gAAA", 4);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS, t, len), TURN_AUTH_INVALID);
	memcpy(t, n, len);
	memcpy(t, "obMatJos3", 9);
	CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS, t, len), TURN_AUTH_INVALID);
}

static void test_nonce_garbage(void)
{
	static const char *const junk[] = {
		"", "obMatJos2", "obMatJos2AAAB",
		"obMatJos2AAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"obMatJos2AAAB________________________________",
		"obMatJos2AAAB================================",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
		"f//499k954d6OL34oL9FSTvy64sA",
		"obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA",
	};
	struct turn_auth a;
	struct sockaddr_storage c;
	uint8_t buf[300];
	uint32_t x = 12345;
	size_t i, j;
	int bad = 0;

	auth_init(&a, 2);
	c = sa_of("8.8.8.8", 1);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
		CHECK_EQ_INT(check_exact(&a, SA(c), T0_MS, junk[i], strlen(junk[i])),
		    TURN_AUTH_INVALID);
	/* Random bytes behind a correct prefix, of every length. */
	for (i = 0; i < sizeof(buf); i++) {
		memcpy(buf, "obMatJos2AAAB", 13);
		for (j = 13; j < i; j++) {
			x = x * 1103515245u + 12345u;
			buf[j] = (uint8_t)(x >> 16);
		}
		if (check_exact(&a, SA(c), T0_MS, buf, i) != TURN_AUTH_INVALID)
			bad++;
	}
	CHECK_EQ_INT(bad, 0);
}

/* Looks a username up from a buffer of exactly its length (no NUL). */
static int lookup_exact(const struct turn_auth *a, const void *name,
    size_t len, uint64_t now_s, struct turn_identity *id, char *pw,
    size_t pcap)
{
	uint8_t *copy = malloc(len ? len : 1);
	int rc;

	if (copy == NULL)
		abort();
	memcpy(copy, name, len);
	rc = turn_auth_lookup(a, copy, len, now_s, id, pw, pcap);
	free(copy);
	return rc;
}

static void test_cred_vector(void)
{
	static const char name[] =
	    "gh1.ZGVmZ2hpamtsbW5vYI3y3WS2od7DND8nFJNZN7vD2rMy414UbodVUMsIpcTuc5Sa7w";
	struct turn_auth a;
	struct turn_identity id;
	char pw[TURN_PASSWORD_MAX];

	auth_init(&a, 0);
	CHECK_EQ_INT(lookup_exact(&a, name, strlen(name), 1900000000, &id, pw,
	    sizeof(pw)), TURN_AUTH_OK);
	CHECK(strcmp(pw, "g8HH1XP7N9UFj1EvbVrTVRK54gqlseAx0bmVR6lJbTI") == 0);
	CHECK_EQ_INT(id.kind, TURN_ID_CALL);
	CHECK(strcmp(id.user, "alice") == 0);
	CHECK(strcmp(id.call, "room-1") == 0);
	CHECK(id.expires_s == 2000000000u);
	CHECK_EQ_INT(lookup_exact(&a, name, strlen(name), 2000000000, &id, pw,
	    sizeof(pw)), TURN_AUTH_OK);
	CHECK_EQ_INT(lookup_exact(&a, name, strlen(name), 2000000001, &id, pw,
	    sizeof(pw)), TURN_AUTH_INVALID);
	CHECK(pw[0] == '\0' && id.kind == 0 && id.user[0] == '\0');
}

static void test_cred_roundtrip(void)
{
	struct turn_auth a, other;
	struct turn_identity id;
	char u[TURN_USERNAME_MAX], u2[TURN_USERNAME_MAX];
	char p[TURN_PASSWORD_MAX], p2[TURN_PASSWORD_MAX], pw[TURN_PASSWORD_MAX];
	const uint64_t now = 1700000000, exp = now + 3600;
	size_t ulen;

	auth_init(&a, 3);
	CHECK_EQ_INT(turn_cred_mint(&a, "alice@example.org", "call-42", exp,
	    u, sizeof(u), p, sizeof(p)), TURN_AUTH_OK);
	ulen = strlen(u);
	CHECK(strncmp(u, "gh1.", 4) == 0);
	CHECK(is_b64url(u + 4));
	CHECK_EQ_INT(strlen(p), 43);
	CHECK(is_b64url(p));
	/* Neither the user nor the call is readable in the username. */
	CHECK(strstr(u, "alice") == NULL && strstr(u, "call-42") == NULL);

	memset(&id, 0xaa, sizeof(id));
	CHECK_EQ_INT(lookup_exact(&a, u, ulen, now, &id, pw, sizeof(pw)), TURN_AUTH_OK);
	CHECK(strcmp(pw, p) == 0);
	CHECK_EQ_INT(id.kind, TURN_ID_CALL);
	CHECK(strcmp(id.user, "alice@example.org") == 0);
	CHECK(strcmp(id.call, "call-42") == 0);
	CHECK(id.expires_s == exp);

	/* Valid up to and including expires_s. */
	CHECK_EQ_INT(lookup_exact(&a, u, ulen, exp, &id, pw, sizeof(pw)), TURN_AUTH_OK);
	CHECK_EQ_INT(lookup_exact(&a, u, ulen, exp + 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK(pw[0] == '\0');

	/* Two mints of the same thing differ (fresh IV). */
	CHECK_EQ_INT(turn_cred_mint(&a, "alice@example.org", "call-42", exp,
	    u2, sizeof(u2), p2, sizeof(p2)), TURN_AUTH_OK);
	CHECK(strcmp(u, u2) != 0);
	CHECK(strcmp(p, p2) != 0);

	/* Another secret knows nothing of it. */
	auth_init(&other, 4);
	CHECK_EQ_INT(lookup_exact(&other, u, ulen, now, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);

	/* Smallest and largest identifiers. */
	{
		char big_user[TURN_ID_MAX], big_call[TURN_ID_MAX];

		memset(big_user, 'u', TURN_ID_MAX - 1);
		big_user[TURN_ID_MAX - 1] = '\0';
		memset(big_call, '~', TURN_ID_MAX - 1);
		big_call[TURN_ID_MAX - 1] = '\0';
		CHECK_EQ_INT(turn_cred_mint(&a, big_user, big_call, exp, u2,
		    sizeof(u2), p2, sizeof(p2)), TURN_AUTH_OK);
		CHECK(strlen(u2) < 509); /* RFC 8489 §14.3 */
		CHECK_EQ_INT(lookup_exact(&a, u2, strlen(u2), now, &id, pw,
		    sizeof(pw)), TURN_AUTH_OK);
		CHECK(strcmp(id.user, big_user) == 0 && strcmp(id.call, big_call) == 0);
		CHECK(strcmp(pw, p2) == 0);
		CHECK_EQ_INT(turn_cred_mint(&a, "a", " ", exp, u2, sizeof(u2),
		    p2, sizeof(p2)), TURN_AUTH_OK);
		CHECK_EQ_INT(lookup_exact(&a, u2, strlen(u2), now, &id, pw,
		    sizeof(pw)), TURN_AUTH_OK);
		CHECK(strcmp(id.user, "a") == 0 && strcmp(id.call, " ") == 0);
	}
}

static void test_cred_tamper(void)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	struct turn_auth a;
	struct turn_identity id;
	char u[TURN_USERNAME_MAX], p[TURN_PASSWORD_MAX], pw[TURN_PASSWORD_MAX];
	char t[TURN_USERNAME_MAX + 1];
	size_t ulen, i, k;
	int bad = 0;

	auth_init(&a, 5);
	CHECK_EQ_INT(turn_cred_mint(&a, "bob", "c1", 2000000000, u, sizeof(u),
	    p, sizeof(p)), TURN_AUTH_OK);
	ulen = strlen(u);

	for (i = 0; i < ulen; i++)
		if (lookup_exact(&a, u, i, 1, &id, pw, sizeof(pw)) != TURN_AUTH_INVALID)
			bad++;
	memcpy(t, u, ulen);
	t[ulen] = 'A';
	if (lookup_exact(&a, t, ulen + 1, 1, &id, pw, sizeof(pw)) != TURN_AUTH_INVALID)
		bad++;
	for (i = 0; i < ulen; i++) {
		for (k = 0; k < sizeof(alphabet) - 1 + 4; k++) {
			memcpy(t, u, ulen);
			t[i] = k < sizeof(alphabet) - 1 ? alphabet[k] :
			    "=.+\0"[k - (sizeof(alphabet) - 1)];
			if (t[i] == u[i])
				continue;
			if (lookup_exact(&a, t, ulen, 1, &id, pw, sizeof(pw)) !=
			    TURN_AUTH_INVALID)
				bad++;
		}
	}
	CHECK_EQ_INT(bad, 0);

	/* The bare prefix and junk behind it. */
	CHECK_EQ_INT(lookup_exact(&a, "gh1.", 4, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, "gh1.!!!!", 8, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	memset(t, 'A', sizeof(t));
	memcpy(t, "gh1.", 4);
	CHECK_EQ_INT(lookup_exact(&a, t, sizeof(t), 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, t, 4 + 54, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
}

static void test_cred_args(void)
{
	struct turn_auth a;
	struct turn_identity id;
	char u[TURN_USERNAME_MAX], p[TURN_PASSWORD_MAX], pw[TURN_PASSWORD_MAX];
	char long_id[TURN_ID_MAX + 1];
	size_t need;

	auth_init(&a, 6);
	memset(long_id, 'x', TURN_ID_MAX);
	long_id[TURN_ID_MAX] = '\0';
	CHECK_EQ_INT(turn_cred_mint(&a, "", "c", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, "u", "", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, long_id, "c", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, "u", long_id, 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, "u\x01", "c", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, "u", "c\x7f", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, "j\xc3\xa9r\xc3\xb4me", "c", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, "u\n", "c", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(&a, NULL, "c", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_cred_mint(NULL, "u", "c", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_INVALID);
	CHECK(u[0] == '\0' && p[0] == '\0');

	/* Capacities: the exact size fits, one less does not. */
	CHECK_EQ_INT(turn_cred_mint(&a, "user", "call", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_OK);
	need = strlen(u) + 1;
	CHECK_EQ_INT(turn_cred_mint(&a, "user", "call", 9, u, need, p, 44), TURN_AUTH_OK);
	CHECK_EQ_INT(turn_cred_mint(&a, "user", "call", 9, u, need - 1, p, sizeof(p)), TURN_AUTH_ENOSPC);
	CHECK_EQ_INT(turn_cred_mint(&a, "user", "call", 9, u, sizeof(u), p, 43), TURN_AUTH_ENOSPC);
	CHECK_EQ_INT(turn_cred_mint(&a, "user", "call", 9, u, 0, p, sizeof(p)), TURN_AUTH_ENOSPC);
	CHECK_EQ_INT(turn_cred_mint(&a, "user", "call", 9, NULL, 0, NULL, 0), TURN_AUTH_ENOSPC);

	/* Lookup into a password buffer too small for 43 characters. */
	CHECK_EQ_INT(turn_cred_mint(&a, "user", "call", 9, u, sizeof(u), p, sizeof(p)), TURN_AUTH_OK);
	CHECK_EQ_INT(lookup_exact(&a, u, strlen(u), 1, &id, pw, 43), TURN_AUTH_ENOSPC);
	CHECK_EQ_INT(lookup_exact(&a, u, strlen(u), 1, &id, pw, 44), TURN_AUTH_OK);
	CHECK(strcmp(pw, p) == 0);
	CHECK_EQ_INT(turn_auth_lookup(&a, (const uint8_t *)u, strlen(u), 1, NULL, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_auth_lookup(&a, (const uint8_t *)u, strlen(u), 1, &id, NULL, 0), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_auth_lookup(NULL, (const uint8_t *)u, strlen(u), 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_auth_lookup(&a, NULL, 5, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
}

static void test_static_users(void)
{
	static const struct turn_static_user users[] = {
		{ "", "unused-entry" },
		{ "alice", "alice-pw" },
		{ "bob", "bob-pw" },
		{ "gh1.tool", "unreachable" },
		{ "carol", "" },
		{ "bob", "second-bob" },
	};
	struct turn_static_user full[2];
	struct turn_auth a;
	struct turn_identity id;
	char pw[TURN_PASSWORD_MAX];

	auth_init(&a, 9);
	CHECK_EQ_INT(lookup_exact(&a, "bob", 3, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	a.static_users = users;
	a.nstatic = sizeof(users) / sizeof(users[0]);

	memset(&id, 0xaa, sizeof(id));
	CHECK_EQ_INT(lookup_exact(&a, "bob", 3, 1, &id, pw, sizeof(pw)), TURN_AUTH_OK);
	CHECK(strcmp(pw, "bob-pw") == 0); /* the first "bob" wins */
	CHECK_EQ_INT(id.kind, TURN_ID_STATIC);
	CHECK(strcmp(id.user, "bob") == 0);
	CHECK(id.call[0] == '\0');
	CHECK(id.expires_s == 0);
	CHECK_EQ_INT(lookup_exact(&a, "alice", 5, 1, &id, pw, sizeof(pw)), TURN_AUTH_OK);
	CHECK(strcmp(pw, "alice-pw") == 0);

	/* Prefixes, extensions, case, embedded NULs, empty, unknown. */
	CHECK_EQ_INT(lookup_exact(&a, "bo", 2, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK(pw[0] == '\0' && id.kind == 0);
	CHECK_EQ_INT(lookup_exact(&a, "bobby", 5, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, "Bob", 3, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, "bob\0", 4, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, "\0bob", 4, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, "", 0, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(turn_auth_lookup(&a, NULL, 0, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, "mallory", 7, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	/* An entry with an empty password is refused, not matched. */
	CHECK_EQ_INT(lookup_exact(&a, "carol", 5, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	/* Names starting with the credential prefix go the other way. */
	CHECK_EQ_INT(lookup_exact(&a, "gh1.tool", 8, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	/* Longer than any name can be. */
	{
		char big[600];

		memset(big, 'b', sizeof(big));
		CHECK_EQ_INT(lookup_exact(&a, big, sizeof(big), 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
		CHECK_EQ_INT(lookup_exact(&a, big, TURN_ID_MAX, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	}
	/* Password buffer sizes. */
	CHECK_EQ_INT(lookup_exact(&a, "bob", 3, 1, &id, pw, 7), TURN_AUTH_OK);
	CHECK_EQ_INT(lookup_exact(&a, "bob", 3, 1, &id, pw, 6), TURN_AUTH_ENOSPC);
	CHECK_EQ_INT(lookup_exact(&a, "bob", 3, 1, &id, pw, 0), TURN_AUTH_ENOSPC);

	/* Entries that fill their arrays without a NUL never match and are
	 * never read past. */
	memset(full, 'z', sizeof(full));
	memcpy(full[1].name, "zed", 4);
	a.static_users = full;
	a.nstatic = 2;
	CHECK_EQ_INT(lookup_exact(&a, full[0].name, TURN_ID_MAX - 1, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
	CHECK_EQ_INT(lookup_exact(&a, "zed", 3, 1, &id, pw, sizeof(pw)), TURN_AUTH_INVALID);
}

int main(void)
{
	test_nonce_vectors();
	test_nonce_roundtrip();
	test_nonce_tamper();
	test_nonce_garbage();
	test_cred_vector();
	test_cred_roundtrip();
	test_cred_tamper();
	test_cred_args();
	test_static_users();
	return check_done("test_auth");
}
