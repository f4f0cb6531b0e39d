/* The TURN server: request handling per RFC 8656 over the STUN rules of
 * RFC 8489, sans-I/O (see server.h).
 *
 * Shape: turn_server_on_client() demultiplexes ChannelData from STUN,
 * validates the whole STUN message, authenticates TURN requests (long-term
 * credentials, §9.2), then dispatches by a table of methods. Every answer
 * goes through one reply builder that adds integrity and fingerprint the
 * way the request asked. The packet path (ChannelData, Send and Data
 * indications) allocates nothing. */
#include "turn/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/bytes.h"
#include "common/source_key.h"
#include "turn/media_class.h"
#include "turn/srclimit.h"
#include "turn/stun.h"

#define SRCLIMIT_SLOTS 4096
#define TRANSPORT_UDP 17 /* RFC 8656 §18.9: REQUESTED-TRANSPORT protocol */
#define FAMILY_IPV4 0x01
#define FAMILY_IPV6 0x02
#define REFLECTION_FACTOR 4

/* A port held by EVEN-PORT with R for the same user's next Allocate. */
struct reservation {
	uint8_t token[8];
	uint16_t port;       /* 0: free slot */
	uint64_t expires_ms;
	char user[TURN_ID_MAX];
	char call[TURN_ID_MAX];
	/* Borrowed: the allocation that made it (on the port below). The
	 * reservation goes with it: a deleted allocation leaves nothing
	 * behind to count against anyone. */
	const struct turn_alloc *owner;
};

struct turn_server {
	struct turn_server_config cfg;
	struct turn_server_ops ops;
	struct alloc_table *allocs;  /* owned */
	struct srclimit *failures;   /* owned */
	/* Transaction ids of Data indications: a random prefix and a counter,
	 * so the packet path needs no random bytes. */
	uint8_t txid_prefix[4];
	uint64_t txid_counter;
	struct reservation reservations[TURN_MAX_RESERVATIONS];
	struct turn_stats stats;
};

/* One request being answered. */
struct req {
	struct turn_server *s;
	const struct turn_client *c;
	const struct stun_msg *m;
	struct clock_pair now;
	bool authed;          /* integrity checked: sign the answer */
	bool sha256;          /* answer with MESSAGE-INTEGRITY-SHA256 */
	uint8_t key[32];
	size_t key_len;
	struct turn_identity id;
	struct turn_alloc *alloc; /* this 5-tuple's allocation, if any */
	struct stun_builder b;
	uint8_t out[STUN_MAX_MESSAGE];
};

/* PASSWORD-ALGORITHMS as we send it (RFC 8489 §14.11): SHA-256 first,
 * as the preferred one, then MD5, each without parameters. */
static const uint8_t password_algorithms[8] = {
	0x00, STUN_PWALG_SHA256, 0x00, 0x00,
	0x00, STUN_PWALG_MD5, 0x00, 0x00,
};

static const char *reason_for(int code)
{
	switch (code) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 420: return "Unknown Attribute";
	case 437: return "Allocation Mismatch";
	case 438: return "Stale Nonce";
	case 440: return "Address Family not Supported";
	case 441: return "Wrong Credentials";
	case 442: return "Unsupported Transport Protocol";
	case 443: return "Peer Address Family Mismatch";
	case 486: return "Allocation Quota Reached";
	case 508: return "Insufficient Capacity";
	default: return "Error";
	}
}

static void reply_start(struct req *r, uint16_t cls)
{
	stun_build_init(&r->b, r->out, sizeof(r->out), r->m->method, cls, r->m->txid);
}

/* Signs (when the request was authenticated), fingerprints (when the
 * request carried one) and sends the reply being built. */
static void reply_send(struct req *r)
{
	size_t len;

	if (r->authed) {
		if (r->sha256)
			stun_build_integrity_sha256(&r->b, r->key, r->key_len);
		else
			stun_build_integrity(&r->b, r->key, r->key_len);
	}
	if (r->m->fp_idx >= 0)
		stun_build_fingerprint(&r->b);
	if (stun_build_finish(&r->b, &len) != STUN_OK)
		return;
	/* Anyone can send an unauthenticated request from a forged address:
	 * never answer one with more than REFLECTION_FACTOR times its size,
	 * so the relay is no amplifier for reflection attacks. */
	if (!r->authed && len > REFLECTION_FACTOR * r->m->len)
		return;
	r->s->ops.send_client(r->s->ops.ctx, r->c, r->out, len);
}

static void reply_error(struct req *r, int code)
{
	reply_start(r, STUN_ERROR);
	stun_build_error(&r->b, code, reason_for(code));
	reply_send(r);
}

/* 401 and 438 carry a fresh nonce, the realm and the algorithms, and no
 * integrity: the client has no key we agree on yet (RFC 8489 §9.2.4). */
static void reply_challenge(struct req *r, int code)
{
	char nonce[TURN_NONCE_MAX];

	r->authed = false;
	if (turn_nonce_make(&r->s->cfg.auth, (const struct sockaddr *)&r->c->remote,
	    r->now.wall_ms, nonce, sizeof(nonce)) != TURN_AUTH_OK)
		return;
	reply_start(r, STUN_ERROR);
	/* No reason phrase: the challenge must stay within
	 * REFLECTION_FACTOR of the smallest real Allocate (28 bytes). */
	stun_build_error(&r->b, code, "");
	stun_build_attr(&r->b, STUN_A_REALM, r->s->cfg.realm, strlen(r->s->cfg.realm));
	stun_build_attr(&r->b, STUN_A_NONCE, nonce, strlen(nonce));
	stun_build_attr(&r->b, STUN_A_PASSWORD_ALGORITHMS, password_algorithms,
	    sizeof(password_algorithms));
	reply_send(r);
}

/* Walks every attribute of a validated message, including repeated ones
 * that stun_parse() keeps only once (CreatePermission may carry several
 * XOR-PEER-ADDRESS). Stops at MESSAGE-INTEGRITY: nothing after it is
 * covered. Fills up to max and returns how many there are in all, which
 * may be more than max. */
static size_t attrs_all(const struct stun_msg *m, uint16_t type,
    struct stun_attr *out, size_t max)
{
	struct rd rd = rd_init(m->buf + STUN_HEADER_LEN, m->len - STUN_HEADER_LEN);
	uint16_t t, len;
	size_t n = 0, offset;
	const uint8_t *v;

	while (rd.left > 0) {
		offset = m->len - rd.left;
		if (rd_u16(&rd, &t) || rd_u16(&rd, &len) || rd_bytes(&rd, len, &v) ||
		    rd_skip(&rd, pad4(len) - len))
			break;
		if (t == STUN_A_MESSAGE_INTEGRITY || t == STUN_A_MESSAGE_INTEGRITY_SHA256)
			break;
		if (t == type && n++ < max) {
			out[n - 1].type = t;
			out[n - 1].len = len;
			out[n - 1].value = v;
			out[n - 1].offset = offset;
		}
	}
	return n;
}

static bool value_equals(const struct stun_attr *a, const void *v, size_t len)
{
	return a->len == len && CRYPTO_memcmp(a->value, v, len) == 0;
}

static void event(struct req *r, enum turn_event ev, const struct sockaddr *peer);

/* RFC 8489 §9.2.4 in its order. Returns 0 when authenticated; otherwise
 * the answer (or the silence) has been taken care of. */
static int authenticate(struct req *r)
{
	struct turn_server *s = r->s;
	const struct stun_msg *m = r->m;
	const struct sockaddr *src = (const struct sockaddr *)&r->c->remote;
	const struct stun_attr *user, *realm, *nonce, *alg, *algs;
	char password[TURN_PASSWORD_MAX];
	uint16_t alg_num = STUN_PWALG_MD5;
	uint16_t mi_type;

	if (m->mi_idx < 0 && m->mi256_idx < 0) {
		reply_challenge(r, 401);
		return -1;
	}
	user = stun_attr_find(m, STUN_A_USERNAME);
	realm = stun_attr_find(m, STUN_A_REALM);
	nonce = stun_attr_find(m, STUN_A_NONCE);
	if (user == NULL || realm == NULL || nonce == NULL) {
		reply_error(r, 400);
		return -1;
	}
	/* The nonce first, before anything is counted against the source
	 * (RFC 8489 §9.2.4 checks it last): a valid nonce proves the client
	 * received our answer at that address, so someone forging another's
	 * address cannot get it blocked with failures. Stale, or minted for
	 * another address: the client retries with the fresh one (438). */
	if (turn_nonce_check(&s->cfg.auth, src, r->now.wall_ms, nonce->value,
	    nonce->len) != TURN_AUTH_OK) {
		reply_challenge(r, 438);
		return -1;
	}
	/* A source that keeps failing gets no answer at all for a while: no
	 * oracle for guessing, and nothing to reflect. */
	if (srclimit_blocked(s->failures, src, r->now.mono_ms)) {
		event(r, TURN_EV_SOURCE_BLOCKED, NULL);
		return -1;
	}
	/* Downgrade protection: our nonce announces password algorithms, so
	 * a client that names one must echo our list unchanged (§9.2.4). */
	alg = stun_attr_find(m, STUN_A_PASSWORD_ALGORITHM);
	algs = stun_attr_find(m, STUN_A_PASSWORD_ALGORITHMS);
	if (alg != NULL || algs != NULL) {
		if (alg == NULL || algs == NULL ||
		    !value_equals(algs, password_algorithms, sizeof(password_algorithms)) ||
		    alg->len != 4 || get_be16(alg->value + 2) != 0) {
			reply_error(r, 400);
			return -1;
		}
		alg_num = get_be16(alg->value);
		if (alg_num != STUN_PWALG_MD5 && alg_num != STUN_PWALG_SHA256) {
			reply_error(r, 400);
			return -1;
		}
	}
	if (!value_equals(realm, s->cfg.realm, strlen(s->cfg.realm)) ||
	    turn_auth_lookup(&s->cfg.auth, user->value, user->len,
	    r->now.wall_ms / 1000, &r->id, password, sizeof(password)) != TURN_AUTH_OK) {
		memset(&r->id, 0, sizeof(r->id));
		srclimit_fail(s->failures, src, r->now.mono_ms);
		event(r, TURN_EV_AUTH_FAILED, NULL);
		reply_challenge(r, 401);
		return -1;
	}
	if (alg_num == STUN_PWALG_SHA256) {
		stun_key_sha256((const char *)user->value, user->len, s->cfg.realm,
		    strlen(s->cfg.realm), password, strlen(password), r->key);
		r->key_len = 32;
	} else {
		stun_key_md5((const char *)user->value, user->len, s->cfg.realm,
		    strlen(s->cfg.realm), password, strlen(password), r->key);
		r->key_len = 16;
	}
	OPENSSL_cleanse(password, sizeof(password));
	/* §9.2.4: with both present, MESSAGE-INTEGRITY-SHA256 is the one. */
	mi_type = m->mi256_idx >= 0 ? STUN_A_MESSAGE_INTEGRITY_SHA256 :
	    STUN_A_MESSAGE_INTEGRITY;
	if (stun_check_integrity(m, mi_type, r->key, r->key_len) != STUN_OK) {
		srclimit_fail(s->failures, src, r->now.mono_ms);
		event(r, TURN_EV_AUTH_FAILED, NULL);
		reply_challenge(r, 401);
		return -1;
	}
	/* Genuine credentials of a call that has ended: refused like any
	 * other bad credential, but not counted against the source (the
	 * client did nothing wrong by trying). */
	if (r->id.kind == TURN_ID_CALL && s->ops.credential_ok != NULL &&
	    !s->ops.credential_ok(s->ops.ctx, &r->id)) {
		event(r, TURN_EV_CALL_ENDED, NULL);
		reply_challenge(r, 401);
		return -1;
	}
	r->authed = true;
	r->sha256 = mi_type == STUN_A_MESSAGE_INTEGRITY_SHA256;
	/* RFC 8656 §5: requests on an allocation's 5-tuple must come from the
	 * user who made it. */
	if (r->alloc != NULL && (strcmp(r->alloc->id.user, r->id.user) != 0 ||
	    strcmp(r->alloc->id.call, r->id.call) != 0 ||
	    r->alloc->id.kind != r->id.kind)) {
		reply_error(r, 441);
		return -1;
	}
	return 0;
}

static void event(struct req *r, enum turn_event ev, const struct sockaddr *peer)
{
	if (r->s->ops.on_event != NULL)
		r->s->ops.on_event(r->s->ops.ctx, ev, r->c,
		    r->id.kind != 0 ? &r->id : NULL, peer);
}

static uint32_t desired_lifetime_s(const struct turn_server *s, const struct stun_msg *m)
{
	const struct stun_attr *a = stun_attr_find(m, STUN_A_LIFETIME);
	uint32_t v;

	/* RFC 8656 §7.2 and §7.3: min(requested, max), but at least the
	 * default; zero only means "delete" on Refresh (handled there). */
	if (a == NULL || stun_attr_u32(a, &v) != STUN_OK)
		return s->cfg.default_lifetime_s;
	if (v > s->cfg.max_lifetime_s)
		v = s->cfg.max_lifetime_s;
	if (v < s->cfg.default_lifetime_s)
		v = s->cfg.default_lifetime_s;
	return v;
}

static void reservation_release(struct turn_server *s, struct reservation *rv)
{
	if (s->ops.relay_unreserve != NULL)
		s->ops.relay_unreserve(s->ops.ctx, rv->port);
	memset(rv, 0, sizeof(*rv));
}

static void alloc_remove(struct turn_server *s, struct turn_alloc *a, const char *reason)
{
	size_t i;

	for (i = 0; i < TURN_MAX_RESERVATIONS; i++)
		if (s->reservations[i].port != 0 && s->reservations[i].owner == a)
			reservation_release(s, &s->reservations[i]);
	if (s->ops.on_alloc != NULL)
		s->ops.on_alloc(s->ops.ctx, a, false, reason);
	if (a->relay != NULL)
		s->ops.relay_close(s->ops.ctx, a->relay);
	alloc_table_remove(s->allocs, a);
}

/* The peer admission rule, one place for every path that names a peer:
 * returns 0 (allowed by the address policy), 1 (only this exact IP and
 * port, as the permit hook allows) or -1 (refused).
 *
 * A call's allocation is forced relay: it reaches nothing but what the
 * hook allows (the other participants' relayed addresses), public
 * addresses included. Static users (the operator's tools) may reach what
 * the address policy allows, and what it refuses only through the hook. */
static int peer_admit(struct turn_server *s, const struct turn_alloc *a,
    const struct sockaddr *peer)
{
	enum peer_verdict v = peer_policy_check(s->cfg.peers, peer, NULL);
	bool hook_may = v == PEER_ALLOWED || v == PEER_REFUSED_RANGE ||
	    v == PEER_REFUSED_OWN;

	if (v == PEER_ALLOWED && a->id.kind != TURN_ID_CALL)
		return 0;
	if (hook_may && s->ops.permit_peer != NULL && s->ops.permit_peer(s->ops.ctx, a, peer))
		return 1;
	return -1;
}

/* Per-datagram check in both directions: a live permission for the IP,
 * and for exception IPs the exact address again (the allocation behind it
 * may be gone, or the port may be another service's). */
static bool peer_may_pass(struct turn_server *s, struct turn_alloc *a,
    const struct sockaddr *peer, struct clock_pair now)
{
	struct turn_perm *p = alloc_perm_find(a, peer, now.mono_ms);

	if (p == NULL)
		return false;
	if (p->exact)
		return s->ops.permit_peer != NULL &&
		    s->ops.permit_peer(s->ops.ctx, a, peer);
	return true;
}

/* Token bucket: bytes_per_s, with one second of burst. */
static bool bucket_take(const struct turn_server *s, struct turn_alloc *a,
    size_t n, uint64_t now_ms)
{
	uint64_t rate = s->cfg.bytes_per_s_per_allocation;
	uint64_t elapsed = now_ms > a->bucket_ms ? now_ms - a->bucket_ms : 0;

	if (elapsed > 1000)
		elapsed = 1000;
	a->bucket_bytes += elapsed * rate / 1000;
	if (a->bucket_bytes > rate)
		a->bucket_bytes = rate;
	a->bucket_ms = now_ms;
	if (a->bucket_bytes < n)
		return false;
	a->bucket_bytes -= n;
	return true;
}

static void on_binding(struct req *r)
{
	reply_start(r, STUN_SUCCESS);
	stun_build_addr(&r->b, STUN_A_XOR_MAPPED_ADDRESS,
	    (const struct sockaddr *)&r->c->remote, true);
	reply_send(r);
}

static struct reservation *reservation_claim(struct turn_server *s,
    const struct stun_attr *token, const struct turn_identity *id, uint64_t now_ms)
{
	struct reservation *rv;
	size_t i;

	if (token->len != 8)
		return NULL;
	for (i = 0; i < TURN_MAX_RESERVATIONS; i++) {
		rv = &s->reservations[i];
		/* Only the user (and call) that reserved may claim: a token
		 * is not a capability that travels. */
		if (rv->port != 0 && rv->expires_ms > now_ms &&
		    CRYPTO_memcmp(rv->token, token->value, 8) == 0 &&
		    strcmp(rv->user, id->user) == 0 && strcmp(rv->call, id->call) == 0)
			return rv;
	}
	return NULL;
}

static struct reservation *reservation_slot(struct turn_server *s)
{
	size_t i;

	for (i = 0; i < TURN_MAX_RESERVATIONS; i++)
		if (s->reservations[i].port == 0)
			return &s->reservations[i];
	return NULL;
}

/* Live reservations of one user (by name, across calls, as
 * allocations_per_user counts allocations). */
static size_t reservations_of(const struct turn_server *s, const char *user,
    uint64_t now_ms)
{
	const struct reservation *rv;
	size_t i, n = 0;

	for (i = 0; i < TURN_MAX_RESERVATIONS; i++) {
		rv = &s->reservations[i];
		if (rv->port != 0 && rv->expires_ms > now_ms && strcmp(rv->user, user) == 0)
			n++;
	}
	return n;
}

static void reservations_expire(struct turn_server *s, uint64_t now_ms, bool all)
{
	size_t i;

	for (i = 0; i < TURN_MAX_RESERVATIONS; i++)
		if (s->reservations[i].port != 0 &&
		    (all || s->reservations[i].expires_ms <= now_ms))
			reservation_release(s, &s->reservations[i]);
}

static uint16_t sockaddr_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)ss)->sin6_port :
	    ((const struct sockaddr_in *)ss)->sin_port);
}

static void reply_allocate_ok(struct req *r, struct turn_alloc *a,
    const uint8_t *token)
{
	uint64_t left_ms = a->expires_ms > r->now.mono_ms ? a->expires_ms - r->now.mono_ms : 0;

	reply_start(r, STUN_SUCCESS);
	stun_build_addr(&r->b, STUN_A_XOR_RELAYED_ADDRESS,
	    (const struct sockaddr *)&a->advertised, true);
	stun_build_u32(&r->b, STUN_A_LIFETIME, (uint32_t)(left_ms / 1000));
	if (token != NULL)
		stun_build_attr(&r->b, STUN_A_RESERVATION_TOKEN, token, 8);
	stun_build_addr(&r->b, STUN_A_XOR_MAPPED_ADDRESS,
	    (const struct sockaddr *)&r->c->remote, true);
	reply_send(r);
}

static void on_allocate(struct req *r)
{
	struct turn_server *s = r->s;
	const struct stun_msg *m = r->m;
	const struct stun_attr *tr, *fam, *even, *token;
	struct turn_relay_req rq;
	struct reservation *claimed = NULL, *slot = NULL;
	struct turn_alloc *a;
	struct sockaddr_storage relayed;
	uint8_t new_token[8];
	void *handle = NULL;

	if (r->alloc != NULL) {
		/* A retransmission of the Allocate that made it gets the same
		 * answer; anything else is a mismatch (RFC 8656 §7.2). */
		if (memcmp(r->alloc->alloc_txid, m->txid, STUN_TXID_LEN) == 0)
			reply_allocate_ok(r, r->alloc, NULL);
		else
			reply_error(r, 437);
		return;
	}
	tr = stun_attr_find(m, STUN_A_REQUESTED_TRANSPORT);
	if (tr == NULL || tr->len != 4) {
		reply_error(r, 400);
		return;
	}
	if (tr->value[0] != TRANSPORT_UDP) {
		reply_error(r, 442);
		return;
	}
	memset(&rq, 0, sizeof(rq));
	rq.family = s->cfg.relay_family;
	rq.dont_fragment = stun_attr_find(m, STUN_A_DONT_FRAGMENT) != NULL;
	fam = stun_attr_find(m, STUN_A_REQUESTED_ADDRESS_FAMILY);
	even = stun_attr_find(m, STUN_A_EVEN_PORT);
	token = stun_attr_find(m, STUN_A_RESERVATION_TOKEN);
	/* §7.2: a token excludes EVEN-PORT and REQUESTED-ADDRESS-FAMILY. */
	if (token != NULL && (fam != NULL || even != NULL)) {
		reply_error(r, 400);
		return;
	}
	if (fam != NULL) {
		if (fam->len != 4 || (fam->value[0] != FAMILY_IPV4 &&
		    fam->value[0] != FAMILY_IPV6)) {
			reply_error(r, 440);
			return;
		}
		rq.family = fam->value[0] == FAMILY_IPV4 ? AF_INET : AF_INET6;
		if (rq.family != s->cfg.relay_family) {
			reply_error(r, 440);
			return;
		}
	}
	if (even != NULL) {
		if (even->len != 1) {
			reply_error(r, 400);
			return;
		}
		rq.even_port = true;
		rq.reserve_next = (even->value[0] & 0x80) != 0;
		/* The table is shared by everyone: one user holds at most a
		 * few of its slots. */
		if (rq.reserve_next && reservations_of(s, r->id.user, r->now.mono_ms) >=
		    TURN_RESERVATIONS_PER_USER) {
			reply_error(r, 486);
			return;
		}
		if (rq.reserve_next && (slot = reservation_slot(s)) == NULL) {
			reply_error(r, 508);
			return;
		}
	}
	if (token != NULL) {
		claimed = reservation_claim(s, token, &r->id, r->now.mono_ms);
		if (claimed == NULL) {
			reply_error(r, 508);
			return;
		}
		rq.port = claimed->port;
	}
	/* Static users are the operator's own tools (load generators open
	 * hundreds of allocations); only allocations_total bounds them. */
	if (r->id.kind == TURN_ID_CALL &&
	    alloc_table_count_user(s->allocs, r->id.user) >= s->cfg.allocations_per_user) {
		reply_error(r, 486);
		return;
	}
	if (alloc_table_count(s->allocs) >= s->cfg.allocations_total) {
		reply_error(r, 508);
		return;
	}
	a = alloc_table_add(s->allocs, r->c, s->cfg.permissions_per_allocation,
	    s->cfg.channels_per_allocation);
	if (a == NULL) {
		reply_error(r, 508);
		return;
	}
	if (s->ops.relay_open(s->ops.ctx, a, &rq, &relayed, &handle) != 0) {
		alloc_table_remove(s->allocs, a);
		reply_error(r, 508);
		return;
	}
	if (claimed != NULL)
		memset(claimed, 0, sizeof(*claimed)); /* the port is the allocation's now */
	if (slot != NULL) {
		if (RAND_bytes(new_token, sizeof(new_token)) != 1) {
			/* Without a token nobody can claim it: let it go. */
			s->ops.relay_unreserve(s->ops.ctx, (uint16_t)(sockaddr_port(&relayed) + 1));
			slot = NULL;
		} else {
			memcpy(slot->token, new_token, sizeof(new_token));
			slot->port = (uint16_t)(sockaddr_port(&relayed) + 1);
			slot->expires_ms = r->now.mono_ms + TURN_RESERVATION_MS;
			snprintf(slot->user, sizeof(slot->user), "%s", r->id.user);
			snprintf(slot->call, sizeof(slot->call), "%s", r->id.call);
			slot->owner = a;
		}
	}
	a->relay = handle;
	alloc_table_set_relayed(s->allocs, a, (const struct sockaddr *)&relayed);
	a->advertised = relayed;
	if (s->cfg.has_external) {
		/* Behind 1:1 NAT the relay port is the same outside. */
		uint16_t port = relayed.ss_family == AF_INET6 ?
		    ((struct sockaddr_in6 *)&relayed)->sin6_port :
		    ((struct sockaddr_in *)&relayed)->sin_port;
		a->advertised = s->cfg.external;
		if (a->advertised.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&a->advertised)->sin6_port = port;
		else
			((struct sockaddr_in *)&a->advertised)->sin_port = port;
	}
	a->id = r->id;
	a->created_ms = r->now.mono_ms;
	a->expires_ms = r->now.mono_ms + (uint64_t)desired_lifetime_s(s, m) * 1000;
	memcpy(a->alloc_txid, m->txid, STUN_TXID_LEN);
	memcpy(a->key, r->key, r->key_len);
	a->key_len = r->key_len;
	a->sha256 = r->sha256;
	a->bucket_bytes = s->cfg.bytes_per_s_per_allocation;
	a->bucket_ms = r->now.mono_ms;
	if (s->ops.on_alloc != NULL)
		s->ops.on_alloc(s->ops.ctx, a, true, "allocate");
	reply_allocate_ok(r, a, slot != NULL ? slot->token : NULL);
}

static void on_refresh(struct req *r)
{
	const struct stun_attr *lt = stun_attr_find(r->m, STUN_A_LIFETIME);
	uint32_t requested, lifetime;

	if (r->alloc == NULL) {
		reply_error(r, 437);
		return;
	}
	if (lt != NULL && stun_attr_u32(lt, &requested) == STUN_OK && requested == 0) {
		alloc_remove(r->s, r->alloc, "refresh");
		r->alloc = NULL;
		lifetime = 0;
	} else {
		lifetime = desired_lifetime_s(r->s, r->m);
		r->alloc->expires_ms = r->now.mono_ms + (uint64_t)lifetime * 1000;
		event(r, TURN_EV_REFRESHED, NULL);
	}
	reply_start(r, STUN_SUCCESS);
	stun_build_u32(&r->b, STUN_A_LIFETIME, lifetime);
	reply_send(r);
}

#define MAX_PEERS_PER_REQUEST 16

/* Decodes and admits one XOR-PEER-ADDRESS; returns 0, 1 (exact) or the
 * error code to answer. Address policy first: a refused address gets 403
 * whatever its family, so refusals never leak as 443. */
static int peer_from_attr(struct req *r, const struct stun_attr *at,
    struct sockaddr_storage *peer)
{
	int admit;

	if (stun_attr_addr(r->m, at, true, peer) != STUN_OK)
		return 400;
	admit = peer_admit(r->s, r->alloc, (const struct sockaddr *)peer);
	if (admit < 0) {
		event(r, TURN_EV_PEER_REFUSED, (const struct sockaddr *)peer);
		return 403;
	}
	if (peer->ss_family != r->alloc->relayed.ss_family)
		return 443;
	return admit;
}

static void on_create_permission(struct req *r)
{
	struct stun_attr attrs[MAX_PEERS_PER_REQUEST];
	struct sockaddr_storage peers[MAX_PEERS_PER_REQUEST];
	bool exact[MAX_PEERS_PER_REQUEST];
	size_t n, i, fresh = 0;
	int rc;

	if (r->alloc == NULL) {
		reply_error(r, 437);
		return;
	}
	n = attrs_all(r->m, STUN_A_XOR_PEER_ADDRESS, attrs, MAX_PEERS_PER_REQUEST);
	/* All or nothing needs every peer judged: more than we judge in one
	 * request is refused whole. */
	if (n == 0 || n > MAX_PEERS_PER_REQUEST) {
		reply_error(r, 400);
		return;
	}
	/* All or nothing (RFC 8656 §9.2): judge every peer before
	 * installing any. */
	for (i = 0; i < n; i++) {
		rc = peer_from_attr(r, &attrs[i], &peers[i]);
		if (rc > 1) {
			reply_error(r, rc);
			return;
		}
		exact[i] = rc == 1;
		if (alloc_perm_find(r->alloc, (const struct sockaddr *)&peers[i],
		    r->now.mono_ms) == NULL)
			fresh++;
	}
	if (r->alloc->nperms + fresh > r->alloc->perms_cap) {
		alloc_expire_children(r->alloc, r->now.mono_ms);
		if (r->alloc->nperms + fresh > r->alloc->perms_cap) {
			reply_error(r, 508);
			return;
		}
	}
	if (alloc_perm_reserve(r->alloc, fresh) != 0) {
		reply_error(r, 508); /* out of memory */
		return;
	}
	for (i = 0; i < n; i++)
		alloc_perm_set(r->alloc, (const struct sockaddr *)&peers[i], exact[i],
		    r->now.mono_ms + TURN_PERMISSION_LIFETIME_MS);
	reply_start(r, STUN_SUCCESS);
	reply_send(r);
}

static void on_channel_bind(struct req *r)
{
	const struct stun_attr *ch = stun_attr_find(r->m, STUN_A_CHANNEL_NUMBER);
	const struct stun_attr *pa = stun_attr_find(r->m, STUN_A_XOR_PEER_ADDRESS);
	struct sockaddr_storage peer;
	struct turn_channel *by_num, *by_peer;
	uint16_t number;
	int rc;

	if (r->alloc == NULL) {
		reply_error(r, 437);
		return;
	}
	if (ch == NULL || ch->len != 4 || pa == NULL) {
		reply_error(r, 400);
		return;
	}
	number = get_be16(ch->value);
	if (number < TURN_CHANNEL_MIN || number > TURN_CHANNEL_MAX) {
		reply_error(r, 400);
		return;
	}
	rc = peer_from_attr(r, pa, &peer);
	if (rc > 1) {
		reply_error(r, rc);
		return;
	}
	/* RFC 8656 §11.2: a number bound to another peer, or a peer bound to
	 * another number, is a 400; the same pair refreshes. */
	by_num = alloc_channel_by_number(r->alloc, number, r->now.mono_ms);
	by_peer = alloc_channel_by_peer(r->alloc, (const struct sockaddr *)&peer, r->now.mono_ms);
	if ((by_num != NULL && by_num != by_peer) || (by_peer != NULL && by_peer != by_num)) {
		reply_error(r, 400);
		return;
	}
	if (by_num == NULL)
		alloc_expire_children(r->alloc, r->now.mono_ms);
	/* A new channel, and a new permission, must fit (the reservations
	 * fail past the limits, and when out of memory). */
	if ((by_num == NULL && alloc_channel_reserve(r->alloc, 1) != 0) ||
	    (alloc_perm_find(r->alloc, (const struct sockaddr *)&peer, r->now.mono_ms) == NULL &&
	    alloc_perm_reserve(r->alloc, 1) != 0)) {
		reply_error(r, 508);
		return;
	}
	alloc_channel_set(r->alloc, number, (const struct sockaddr *)&peer,
	    r->now.mono_ms + TURN_CHANNEL_LIFETIME_MS);
	alloc_perm_set(r->alloc, (const struct sockaddr *)&peer, rc == 1,
	    r->now.mono_ms + TURN_PERMISSION_LIFETIME_MS);
	reply_start(r, STUN_SUCCESS);
	reply_send(r);
}

/* Relay to relay: a datagram for another allocation of this server is
 * handed to it directly instead of through sendto() and the kernel and
 * recvfrom() on the other relay socket, which is most of a relayed
 * message's cost when both participants of a call use this relay. It
 * arrives as it would have through the kernel: from the sender's relayed
 * address (its advertised one when the receiver was named by the external
 * address, as a NAT would show it), and through the receiver's own
 * permission, channel and rate checks in turn_server_on_peer(). */
static bool relay_local(struct turn_server *s, const struct turn_alloc *from,
    const struct sockaddr *peer, const uint8_t *data, size_t len, struct clock_pair now)
{
	struct turn_alloc *to = turn_server_find_relayed(s, peer);
	const struct sockaddr_storage *src;

	if (to == NULL)
		return false;
	src = sockaddr_equal(peer, (const struct sockaddr *)&to->relayed) ?
	    &from->relayed : &from->advertised;
	s->stats.packets_relayed_locally++;
	turn_server_on_peer(s, to, (const struct sockaddr *)src, data, len, now);
	return true;
}

/* A call's datagrams are WebRTC media: STUN (ICE), DTLS (keys, data
 * channels) and SRTP/SRTCP, told apart by their first byte (RFC 9443).
 * Anything else is counted, and dropped with media_only. A DTLS datagram
 * that holds handshake messages is shown to the on_dtls hook, which checks
 * the certificate against the one the sender signaled. One that holds
 * handshake records dtls_peek() did not read (after a fault, behind a
 * record it cannot delimit) is dropped whatever media_only says: a DTLS
 * 1.2 receiver would read them, unchecked. Only what a call's allocation
 * sends is checked: everything it receives was sent by another
 * allocation of the same call, checked there. */
static bool media_check(struct turn_server *s, struct turn_alloc *a,
    const uint8_t *data, size_t len)
{
	struct dtls_peek p;
	bool unread = false;
	int rc;

	switch (media_classify(data, len)) {
	case MEDIA_STUN:
	case MEDIA_RTP:
		return true;
	case MEDIA_DTLS:
		rc = dtls_peek(data, len, &p);
		unread = dtls_peek_handshakes_12(data, len) > (rc == 0 ? p.nhandshake : 0);
		if (rc == 0 && !unread)
			return p.nhandshake == 0 || s->ops.on_dtls == NULL ||
			    s->ops.on_dtls(s->ops.ctx, a, &p);
		break;
	default:
		break;
	}
	a->pkts_unclassified++;
	s->stats.packets_unclassified++;
	return !unread && !s->cfg.media_only;
}

static void relay_to_peer(struct turn_server *s, struct turn_alloc *a,
    const struct sockaddr *peer, const uint8_t *data, size_t len, struct clock_pair now)
{
	if (!peer_may_pass(s, a, peer, now) ||
	    (a->id.kind == TURN_ID_CALL && !media_check(s, a, data, len)) ||
	    !bucket_take(s, a, len, now.mono_ms))
		return;
	a->bytes_to_peer += len;
	a->pkts_to_peer++;
	s->stats.bytes_to_peers += len;
	s->stats.packets_to_peers++;
	if (!relay_local(s, a, peer, data, len, now))
		s->ops.relay_send(s->ops.ctx, a->relay, peer, data, len);
}

static void on_send(struct turn_server *s, const struct turn_client *c,
    const struct stun_msg *m, struct clock_pair now)
{
	const struct stun_attr *pa = stun_attr_find(m, STUN_A_XOR_PEER_ADDRESS);
	const struct stun_attr *data = stun_attr_find(m, STUN_A_DATA);
	struct turn_alloc *a = alloc_table_find(s->allocs, c);
	struct sockaddr_storage peer;

	/* RFC 8656 §10.2: indications are never answered; anything wrong is
	 * dropped silently. */
	if (a == NULL || pa == NULL || data == NULL ||
	    stun_attr_addr(m, pa, true, &peer) != STUN_OK)
		return;
	relay_to_peer(s, a, (const struct sockaddr *)&peer, data->value, data->len, now);
}

static void on_channeldata(struct turn_server *s, const struct turn_client *c,
    const uint8_t *buf, size_t len, struct clock_pair now)
{
	struct turn_alloc *a;
	struct turn_channel *ch;
	const uint8_t *data;
	size_t data_len;
	uint16_t number;

	if (channeldata_parse(buf, len, &number, &data, &data_len) != STUN_OK)
		return;
	a = alloc_table_find(s->allocs, c);
	if (a == NULL)
		return;
	ch = alloc_channel_by_number(a, number, now.mono_ms);
	if (ch == NULL)
		return;
	relay_to_peer(s, a, (const struct sockaddr *)&ch->peer, data, data_len, now);
}

typedef void (*request_handler)(struct req *r);

static const struct {
	uint16_t method;
	bool needs_auth;
	request_handler fn;
} request_handlers[] = {
	{ STUN_BINDING, false, on_binding },
	{ TURN_ALLOCATE, true, on_allocate },
	{ TURN_REFRESH, true, on_refresh },
	{ TURN_CREATE_PERMISSION, true, on_create_permission },
	{ TURN_CHANNEL_BIND, true, on_channel_bind },
};

static void on_request(struct turn_server *s, const struct turn_client *c,
    const struct stun_msg *m, struct clock_pair now)
{
	struct req r;
	size_t i;

	memset(&r, 0, sizeof(r));
	r.s = s;
	r.c = c;
	r.m = m;
	r.now = now;
	r.alloc = alloc_table_find(s->allocs, c);
	for (i = 0; i < sizeof(request_handlers) / sizeof(request_handlers[0]); i++) {
		if (request_handlers[i].method != m->method)
			continue;
		if (request_handlers[i].needs_auth && authenticate(&r) != 0)
			goto out;
		/* RFC 8489 §6.3.1: unknown comprehension-required attributes
		 * are refused once we know who asks. */
		if (m->nunknown > 0) {
			reply_start(&r, STUN_ERROR);
			stun_build_error(&r.b, 420, reason_for(420));
			stun_build_unknown(&r.b, m->unknown, m->nunknown);
			reply_send(&r);
			goto out;
		}
		request_handlers[i].fn(&r);
		goto out;
	}
	reply_error(&r, 400);
out:
	OPENSSL_cleanse(r.key, sizeof(r.key));
}

void turn_server_on_client(struct turn_server *s, const struct turn_client *c,
    const uint8_t *buf, size_t len, struct clock_pair now)
{
	struct stun_msg m;

	if (s->ops.source_blocked != NULL &&
	    s->ops.source_blocked(s->ops.ctx, (const struct sockaddr *)&c->remote, now.mono_ms))
		return;
	switch (stun_demux(buf, len)) {
	case 2:
		on_channeldata(s, c, buf, len, now);
		return;
	case 1:
		break;
	default:
		return;
	}
	if (stun_parse(buf, len, &m) != STUN_OK)
		return;
	if (m.cls == STUN_REQUEST)
		on_request(s, c, &m, now);
	else if (m.cls == STUN_INDICATION && m.method == TURN_SEND && m.nunknown == 0)
		on_send(s, c, &m, now);
	/* Responses and other indications from a client are not ours. */
}

void turn_server_on_peer(struct turn_server *s, struct turn_alloc *a,
    const struct sockaddr *peer, const uint8_t *buf, size_t len, struct clock_pair now)
{
	uint8_t out[STUN_MAX_MESSAGE];
	uint8_t txid[STUN_TXID_LEN];
	struct stun_builder b;
	struct turn_channel *ch;
	size_t n;

	if (!peer_may_pass(s, a, peer, now) || !bucket_take(s, a, len, now.mono_ms))
		return;
	ch = alloc_channel_by_peer(a, peer, now.mono_ms);
	if (ch != NULL) {
		if (channeldata_build(out, sizeof(out), ch->number, buf, len, &n) != STUN_OK)
			return;
		/* RFC 8656 §12.5: over a stream, ChannelData is padded to 4. */
		if (a->client.transport != TURN_TP_UDP) {
			if (pad4(n) > sizeof(out))
				return;
			memset(out + n, 0, pad4(n) - n);
			n = pad4(n);
		}
	} else {
		memcpy(txid, s->txid_prefix, sizeof(s->txid_prefix));
		s->txid_counter++;
		memcpy(txid + sizeof(s->txid_prefix), &s->txid_counter, 8);
		stun_build_init(&b, out, sizeof(out), TURN_DATA, STUN_INDICATION, txid);
		stun_build_addr(&b, STUN_A_XOR_PEER_ADDRESS, peer, true);
		stun_build_attr(&b, STUN_A_DATA, buf, len);
		if (stun_build_finish(&b, &n) != STUN_OK)
			return;
	}
	a->bytes_from_peer += len;
	a->pkts_from_peer++;
	s->stats.bytes_from_peers += len;
	s->stats.packets_from_peers++;
	s->ops.send_client(s->ops.ctx, &a->client, out, n);
}

/* The allocation of a TCP/TLS connection, or NULL. */
static struct turn_alloc *conn_alloc(const struct turn_server *s, uint64_t conn_id)
{
	struct turn_client c;
	struct turn_alloc *a;

	memset(&c, 0, sizeof(c));
	c.transport = TURN_TP_TCP;
	c.conn_id = conn_id;
	/* The 5-tuple of a stream is its connection id; try both kinds. */
	a = alloc_table_find(s->allocs, &c);
	if (a == NULL) {
		c.transport = TURN_TP_TLS;
		a = alloc_table_find(s->allocs, &c);
	}
	return a;
}

void turn_server_on_conn_closed(struct turn_server *s, uint64_t conn_id)
{
	struct turn_alloc *a = conn_alloc(s, conn_id);

	if (a != NULL)
		alloc_remove(s, a, "connection closed");
}

bool turn_server_conn_has_alloc(const struct turn_server *s, uint64_t conn_id)
{
	return conn_alloc(s, conn_id) != NULL;
}

void turn_server_tick(struct turn_server *s, struct clock_pair now)
{
	struct turn_alloc *a, *next;

	reservations_expire(s, now.mono_ms, false);
	for (a = alloc_table_first(s->allocs); a != NULL; a = next) {
		next = alloc_next(a);
		if (a->expires_ms <= now.mono_ms)
			alloc_remove(s, a, "expired");
		else
			alloc_expire_children(a, now.mono_ms);
	}
}

struct turn_alloc *turn_server_find_relayed(struct turn_server *s,
    const struct sockaddr *relayed)
{
	struct sockaddr_storage local;
	struct turn_alloc *a = alloc_table_find_relayed(s->allocs, relayed);
	struct turn_alloc *any;

	if (a != NULL || !s->cfg.has_external ||
	    !peer_same_ip(relayed, (const struct sockaddr *)&s->cfg.external))
		return a;
	/* Named by its external address: the port is the same on the relay
	 * IP, which every allocation shares. */
	any = alloc_table_first(s->allocs);
	if (any == NULL)
		return NULL;
	local = any->relayed;
	if (local.ss_family == AF_INET6 && relayed->sa_family == AF_INET6)
		((struct sockaddr_in6 *)&local)->sin6_port =
		    ((const struct sockaddr_in6 *)relayed)->sin6_port;
	else if (local.ss_family == AF_INET && relayed->sa_family == AF_INET)
		((struct sockaddr_in *)&local)->sin_port =
		    ((const struct sockaddr_in *)relayed)->sin_port;
	else
		return NULL;
	return alloc_table_find_relayed(s->allocs, (const struct sockaddr *)&local);
}

size_t turn_server_remove_call(struct turn_server *s, const char *call,
    struct turn_stats *totals)
{
	struct turn_alloc *a, *next;
	size_t n = 0;

	if (totals != NULL)
		memset(totals, 0, sizeof(*totals));
	for (a = alloc_table_first(s->allocs); a != NULL; a = next) {
		next = alloc_next(a);
		if (a->id.kind == TURN_ID_CALL && strcmp(a->id.call, call) == 0) {
			if (totals != NULL) {
				totals->bytes_to_peers += a->bytes_to_peer;
				totals->bytes_from_peers += a->bytes_from_peer;
				totals->packets_to_peers += a->pkts_to_peer;
				totals->packets_from_peers += a->pkts_from_peer;
				totals->packets_unclassified += a->pkts_unclassified;
			}
			alloc_remove(s, a, "call ended");
			n++;
		}
	}
	return n;
}

size_t turn_server_remove_source(struct turn_server *s, const uint8_t source[SOURCE_KEY_LEN])
{
	struct turn_alloc *a, *next;
	size_t n = 0;

	for (a = alloc_table_first(s->allocs); a != NULL; a = next) {
		next = alloc_next(a);
		if (source_key_matches((const struct sockaddr *)&a->client.remote, source)) {
			alloc_remove(s, a, "source blocked");
			n++;
		}
	}
	return n;
}

size_t turn_server_alloc_count(const struct turn_server *s)
{
	return alloc_table_count(s->allocs);
}

void turn_server_stats(const struct turn_server *s, struct turn_stats *out)
{
	*out = s->stats;
}

void turn_server_each_alloc(struct turn_server *s,
    void (*fn)(void *ctx, const struct turn_alloc *a), void *ctx)
{
	struct turn_alloc *a;

	for (a = alloc_table_first(s->allocs); a != NULL; a = alloc_next(a))
		fn(ctx, a);
}

struct turn_server *turn_server_new(const struct turn_server_config *cfg,
    const struct turn_server_ops *ops)
{
	struct turn_server *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cfg = *cfg;
	s->ops = *ops;
	s->allocs = alloc_table_new();
	s->failures = srclimit_new(SRCLIMIT_SLOTS, cfg->auth_failures_per_source,
	    TURN_AUTH_WINDOW_MS, TURN_AUTH_BLOCK_MS);
	if (s->allocs == NULL || s->failures == NULL ||
	    RAND_bytes(s->txid_prefix, sizeof(s->txid_prefix)) != 1) {
		turn_server_free(s);
		return NULL;
	}
	return s;
}

void turn_server_free(struct turn_server *s)
{
	struct turn_alloc *a, *next;

	if (s == NULL)
		return;
	reservations_expire(s, 0, true);
	if (s->allocs != NULL) {
		for (a = alloc_table_first(s->allocs); a != NULL; a = next) {
			next = alloc_next(a);
			alloc_remove(s, a, "shutdown");
		}
	}
	alloc_table_free(s->allocs);
	srclimit_free(s->failures);
	OPENSSL_cleanse(&s->cfg.auth, sizeof(s->cfg.auth));
	free(s);
}
