/* Fuzz target: the STUN codec (turn/stun.c).
 *
 * The input is one datagram or the head of a stream. It goes through
 * every entry point that reads untrusted bytes: stun_demux,
 * stun_frame_len, channeldata_parse, stun_parse, every getter on every
 * attribute kept, and the integrity check with fixed keys (the RFC 5769
 * short-term password and the RFC 5769 / RFC 8489 B.1 long-term keys, so
 * the seed vectors take the matching path).
 *
 * Invariants checked (abort() on violation, which libFuzzer reports):
 * - a parsed message's attributes lie inside the input;
 * - a parse never succeeds on a strict prefix of a message it accepted
 *   (the length field must match the datagram);
 * - stream framing is consistent: one byte short of a frame is EAGAIN;
 * - a message rebuilt from the parsed attributes with the builder,
 *   signed and fingerprinted, parses again, verifies with the key it was
 *   signed with, and every address attribute decodes to the same address
 *   after a round trip through stun_build_addr(). */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "turn/stun.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_stun: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

/* RFC 5769 §2.1-2.3: the short-term password, used as the key as is. */
static const char short_pw[] = "VOkJxbRl1RmTxUk/WvJxBt";
/* RFC 5769 §2.4 and RFC 8489 B.1: user U+30DE U+30C8 U+30EA U+30C3
 * U+30AF U+30B9, realm example.org, password TheMatrIX. */
static const char lt_user[] =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
static const char lt_realm[] = "example.org";
static const char lt_pass[] = "TheMatrIX";

static uint8_t key_md5[16], key_sha256[32];
static bool keys_ready;

static void keys_init(void)
{
	if (keys_ready)
		return;
	stun_key_md5(lt_user, strlen(lt_user), lt_realm, strlen(lt_realm), lt_pass,
	    strlen(lt_pass), key_md5);
	stun_key_sha256(lt_user, strlen(lt_user), lt_realm, strlen(lt_realm), lt_pass,
	    strlen(lt_pass), key_sha256);
	keys_ready = true;
}

static bool is_addr_attr(uint16_t type, bool *xored)
{
	switch (type) {
	case STUN_A_XOR_PEER_ADDRESS:
	case STUN_A_XOR_RELAYED_ADDRESS:
	case STUN_A_XOR_MAPPED_ADDRESS:
		*xored = true;
		return true;
	case STUN_A_MAPPED_ADDRESS:
	case STUN_A_ALTERNATE_SERVER:
	case STUN_A_RESPONSE_ORIGIN:
	case STUN_A_OTHER_ADDRESS:
		*xored = false;
		return true;
	default:
		return false;
	}
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const struct sockaddr_in *)a;
	const struct sockaddr_in *b4 = (const struct sockaddr_in *)b;
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)a;
	const struct sockaddr_in6 *b6 = (const struct sockaddr_in6 *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port &&
		    memcmp(&a4->sin_addr, &b4->sin_addr, 4) == 0;
	return a6->sin6_port == b6->sin6_port &&
	    memcmp(&a6->sin6_addr, &b6->sin6_addr, 16) == 0;
}

/* Every getter on every attribute kept; the results are only checked for
 * internal consistency, since any value is legal input. */
static void walk_attrs(const struct stun_msg *m)
{
	const struct stun_attr *a, *found;
	struct sockaddr_storage ss;
	const uint8_t *reason;
	size_t i, rlen;
	uint32_t u32;
	int code, rc;

	FUZZ_CHECK(m->nattrs <= STUN_MAX_ATTRS);
	FUZZ_CHECK(m->nunknown <= STUN_MAX_UNKNOWN);
	FUZZ_CHECK(m->mi_idx < (int)m->nattrs && m->mi256_idx < (int)m->nattrs &&
	    m->fp_idx < (int)m->nattrs);
	for (i = 0; i < m->nattrs; i++) {
		a = &m->attrs[i];
		FUZZ_CHECK(a->value >= m->buf + STUN_HEADER_LEN + 4);
		FUZZ_CHECK((size_t)(a->value - m->buf) + a->len <= m->len);
		FUZZ_CHECK(a->offset + 4 + a->len <= m->len);
		found = stun_attr_find(m, a->type);
		FUZZ_CHECK(found != NULL && found->type == a->type);
		rc = stun_attr_addr(m, a, true, &ss);
		FUZZ_CHECK(rc != STUN_OK || ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
		rc = stun_attr_addr(m, a, false, &ss);
		FUZZ_CHECK(rc != STUN_OK || ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
		rc = stun_attr_u32(a, &u32);
		FUZZ_CHECK(rc != STUN_OK || a->len == 4);
		rc = stun_attr_error(a, &code, &reason, &rlen);
		if (rc == STUN_OK) {
			FUZZ_CHECK(code >= 300 && code <= 699);
			FUZZ_CHECK(rlen == 0 || (reason >= a->value &&
			    (size_t)(reason - a->value) + rlen <= a->len));
		}
	}
	(void)stun_method_name(m->method);
	(void)stun_attr_addr(m, NULL, true, &ss);
}

static void check_integrity(const struct stun_msg *m)
{
	(void)stun_check_integrity(m, STUN_A_MESSAGE_INTEGRITY,
	    (const uint8_t *)short_pw, strlen(short_pw));
	(void)stun_check_integrity(m, STUN_A_MESSAGE_INTEGRITY, key_md5, sizeof(key_md5));
	(void)stun_check_integrity(m, STUN_A_MESSAGE_INTEGRITY_SHA256, key_sha256,
	    sizeof(key_sha256));
	(void)stun_check_integrity(m, STUN_A_MESSAGE_INTEGRITY_SHA256,
	    (const uint8_t *)short_pw, strlen(short_pw));
}

/* Rebuilds m with the builder: the attributes it kept (addresses decoded
 * and re-encoded), then integrity over the result, and checks that our
 * own output is accepted by our own parser. */
static void rebuild(const struct stun_msg *m, bool sha256)
{
	static uint8_t out[STUN_MAX_MESSAGE];
	struct sockaddr_storage before[STUN_MAX_ATTRS], after;
	const struct stun_attr *a;
	struct stun_builder b;
	struct stun_msg m2;
	bool xored = false, decoded[STUN_MAX_ATTRS];
	size_t i, len, ncopied = 0;

	memset(decoded, 0, sizeof(decoded));
	stun_build_init(&b, out, sizeof(out), m->method, m->cls, m->txid);
	for (i = 0; i < m->nattrs && ncopied < STUN_MAX_ATTRS - 2; i++) {
		a = &m->attrs[i];
		if (a->type == STUN_A_MESSAGE_INTEGRITY ||
		    a->type == STUN_A_MESSAGE_INTEGRITY_SHA256 ||
		    a->type == STUN_A_FINGERPRINT)
			continue;
		if (is_addr_attr(a->type, &xored) &&
		    stun_attr_addr(m, a, xored, &before[i]) == STUN_OK) {
			stun_build_addr(&b, a->type, (const struct sockaddr *)&before[i], xored);
			decoded[i] = true;
		} else {
			stun_build_attr(&b, a->type, a->value, a->len);
		}
		ncopied++;
	}
	if (sha256)
		stun_build_integrity_sha256(&b, key_sha256, sizeof(key_sha256));
	else
		stun_build_integrity(&b, key_md5, sizeof(key_md5));
	stun_build_fingerprint(&b);
	if (stun_build_finish(&b, &len) != STUN_OK)
		return; /* did not fit: the builder said so, which is right */
	FUZZ_CHECK(len <= sizeof(out) && len >= STUN_HEADER_LEN);
	/* RFC 7983: only methods below 0x100 keep the first byte in 0-3;
	 * the others parse but are not demultiplexed as STUN. */
	FUZZ_CHECK(stun_demux(out, len) == (m->method < 0x100 ? 1 : 0));
	FUZZ_CHECK(stun_parse(out, len, &m2) == STUN_OK);
	FUZZ_CHECK(m2.method == m->method && m2.cls == m->cls);
	FUZZ_CHECK(memcmp(m2.txid, m->txid, STUN_TXID_LEN) == 0);
	FUZZ_CHECK(m2.fp_idx >= 0);
	FUZZ_CHECK(stun_check_integrity(&m2,
	    sha256 ? STUN_A_MESSAGE_INTEGRITY_SHA256 : STUN_A_MESSAGE_INTEGRITY,
	    sha256 ? key_sha256 : key_md5, sha256 ? sizeof(key_sha256) :
	    sizeof(key_md5)) == STUN_OK);
	for (i = 0; i < m->nattrs && i < STUN_MAX_ATTRS - 2; i++) {
		if (!decoded[i])
			continue;
		a = stun_attr_find(&m2, m->attrs[i].type);
		FUZZ_CHECK(a != NULL);
		is_addr_attr(a->type, &xored);
		FUZZ_CHECK(stun_attr_addr(&m2, a, xored, &after) == STUN_OK);
		FUZZ_CHECK(same_addr(&before[i], &after));
	}
}

static void parse_one(const uint8_t *buf, size_t len, bool deep)
{
	static struct stun_msg m, shorter;
	const uint8_t *cdata;
	size_t cdata_len;
	uint16_t channel;
	int rc;

	rc = channeldata_parse(buf, len, &channel, &cdata, &cdata_len);
	if (rc == STUN_OK) {
		FUZZ_CHECK(channel >= TURN_CHANNEL_MIN && channel <= TURN_CHANNEL_MAX);
		FUZZ_CHECK(cdata == buf + CHANNELDATA_HEADER_LEN);
		FUZZ_CHECK(CHANNELDATA_HEADER_LEN + cdata_len <= len);
		FUZZ_CHECK(stun_demux(buf, len) == 2);
	}
	rc = stun_parse(buf, len, &m);
	if (rc != STUN_OK)
		return;
	FUZZ_CHECK(m.buf == buf && m.len == len);
	FUZZ_CHECK(len >= STUN_HEADER_LEN && len <= STUN_MAX_MESSAGE);
	walk_attrs(&m);
	check_integrity(&m);
	/* The length field names the whole message: no strict prefix that
	 * still holds the header can be accepted. */
	if (len > STUN_HEADER_LEN)
		FUZZ_CHECK(stun_parse(buf, len - 4, &shorter) != STUN_OK);
	if (deep) {
		rebuild(&m, false);
		rebuild(&m, true);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t frame = 0;
	int rc, demux;

	keys_init();
	demux = stun_demux(data, size);
	FUZZ_CHECK(demux >= 0 && demux <= 2);
	FUZZ_CHECK(size > 0 || demux == 0);

	/* The input as one datagram. */
	parse_one(data, size, true);

	/* The input as the head of a TCP/TLS stream: frame, then parse the
	 * first frame alone, as the stream reader does. */
	rc = stun_frame_len(data, size, &frame);
	if (rc == STUN_OK) {
		FUZZ_CHECK(frame >= CHANNELDATA_HEADER_LEN && frame <= size);
		FUZZ_CHECK(frame <= STUN_MAX_MESSAGE);
		size_t again = 0;
		FUZZ_CHECK(stun_frame_len(data, frame, &again) == STUN_OK && again == frame);
		FUZZ_CHECK(stun_frame_len(data, frame - 1, &again) == STUN_EAGAIN);
		if (frame != size)
			parse_one(data, frame, false);
	} else {
		FUZZ_CHECK(rc == STUN_EAGAIN || rc == STUN_EMALFORMED || rc == STUN_ENOTSTUN);
	}
	return 0;
}
