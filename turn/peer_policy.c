/* Which peer addresses the relay may send to.
 *
 * A TURN relay that forwards to any address a client names is an open
 * proxy into the network it stands in: RFC 8656 §21.3 asks servers to
 * restrict peers, and the usual SSRF targets (loopback, RFC 1918 hosts,
 * the 169.254.169.254 metadata service) can be spelled in many ways. So
 * every address is reduced to its 16-byte IPv6 form, every IPv4 address
 * it carries (IPv4-mapped, -compatible, -translated, NAT64, 6to4, Teredo)
 * is pulled out and judged as well, and only what is plainly public
 * unicast is allowed.
 *
 * Pure: no I/O, no clock, no logging. The tables below are the IANA
 * IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and its
 * updates) as far as they matter to a relay. */
#include "turn/peer_policy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

/* How an IPv4 address was written, so that the reason can say so. */
enum spelling {
	SP_NATIVE,     /* a sockaddr_in */
	SP_MAPPED,     /* ::ffff:0:0/96, RFC 4291 §2.5.5.2 */
	SP_COMPAT,     /* ::/96, RFC 4291 §2.5.5.1 (deprecated) */
	SP_TRANSLATED, /* ::ffff:0:0:0/96, RFC 2765 §2.1 (SIIT) */
	SP_NAT64,      /* 64:ff9b::/96, RFC 6052 §2.1 */
	SP_6TO4,       /* 2002::/16, RFC 3056 §2 */
	SP_TEREDO,     /* 2001::/32, RFC 4380 §4 */
	SP_COUNT
};

enum v4_reason {
	R4_UNSPEC,
	R4_THIS_NET,
	R4_PRIVATE,
	R4_SHARED,
	R4_LOOPBACK,
	R4_METADATA,
	R4_LINK_LOCAL,
	R4_IETF,
	R4_DOC,
	R4_6TO4_RELAY,
	R4_BENCH,
	R4_MULTICAST,
	R4_RESERVED,
	R4_BROADCAST,
	R4_COUNT
};

/* One reason, as it reads for each spelling. A macro because the strings
 * must be static (the caller keeps the pointer) and writing the seven
 * variants of fourteen reasons by hand invites typos. */
#define WHY_ALL(s) { s, "IPv4-mapped: " s, "IPv4-compatible: " s, \
	"IPv4-translated: " s, "NAT64: " s, "6to4: " s, "Teredo: " s }

static const char *const v4_why[R4_COUNT][SP_COUNT] = {
	[R4_UNSPEC] = WHY_ALL("unspecified"),
	[R4_THIS_NET] = WHY_ALL("this network (RFC 1122)"),
	[R4_PRIVATE] = WHY_ALL("private (RFC 1918)"),
	[R4_SHARED] = WHY_ALL("shared address space (RFC 6598)"),
	[R4_LOOPBACK] = WHY_ALL("loopback"),
	[R4_METADATA] = WHY_ALL("link-local (cloud metadata service)"),
	[R4_LINK_LOCAL] = WHY_ALL("link-local"),
	[R4_IETF] = WHY_ALL("IETF protocol assignments (RFC 6890)"),
	[R4_DOC] = WHY_ALL("documentation"),
	[R4_6TO4_RELAY] = WHY_ALL("6to4 relay anycast (RFC 7526)"),
	[R4_BENCH] = WHY_ALL("benchmarking"),
	[R4_MULTICAST] = WHY_ALL("multicast"),
	[R4_RESERVED] = WHY_ALL("reserved"),
	[R4_BROADCAST] = WHY_ALL("broadcast"),
};

struct v4_range {
	uint8_t addr[4];
	uint8_t prefix_len;
	enum v4_reason reason;
};

/* First match wins, so a more specific entry comes before the range
 * that contains it (0.0.0.0 before 0/8, the metadata address before
 * 169.254/16, the broadcast address before 240/4). */
static const struct v4_range v4_ranges[] = {
	{ { 0, 0, 0, 0 }, 32, R4_UNSPEC },           /* RFC 1122 §3.2.1.3 */
	{ { 0, 0, 0, 0 }, 8, R4_THIS_NET },          /* RFC 1122 §3.2.1.3 */
	{ { 10, 0, 0, 0 }, 8, R4_PRIVATE },          /* RFC 1918 §3 */
	{ { 100, 64, 0, 0 }, 10, R4_SHARED },        /* RFC 6598 §7 */
	{ { 127, 0, 0, 0 }, 8, R4_LOOPBACK },        /* RFC 1122 §3.2.1.3 */
	{ { 169, 254, 169, 254 }, 32, R4_METADATA }, /* cloud instance metadata */
	{ { 169, 254, 0, 0 }, 16, R4_LINK_LOCAL },   /* RFC 3927 §2.1 */
	{ { 172, 16, 0, 0 }, 12, R4_PRIVATE },       /* RFC 1918 §3 */
	/* RFC 6890 §2.2.2 lists 192.0.0.9 and .10 as globally reachable
	 * anycast (PCP, TURN); a relay has no business relaying to either. */
	{ { 192, 0, 0, 0 }, 24, R4_IETF },           /* RFC 6890 §2.2.2 */
	{ { 192, 0, 2, 0 }, 24, R4_DOC },            /* RFC 5737 §3 */
	{ { 192, 88, 99, 0 }, 24, R4_6TO4_RELAY },   /* RFC 7526 §4 */
	{ { 192, 168, 0, 0 }, 16, R4_PRIVATE },      /* RFC 1918 §3 */
	{ { 198, 18, 0, 0 }, 15, R4_BENCH },         /* RFC 2544 §C.2.2 */
	{ { 198, 51, 100, 0 }, 24, R4_DOC },         /* RFC 5737 §3 */
	{ { 203, 0, 113, 0 }, 24, R4_DOC },          /* RFC 5737 §3 */
	{ { 224, 0, 0, 0 }, 4, R4_MULTICAST },       /* RFC 5771 §3 */
	{ { 255, 255, 255, 255 }, 32, R4_BROADCAST }, /* RFC 919 §7 */
	{ { 240, 0, 0, 0 }, 4, R4_RESERVED },        /* RFC 1112 §4 */
};

struct v6_range {
	uint8_t addr[16];
	uint8_t prefix_len;
	const char *why;
};

/* IPv6 ranges refused for themselves, after the embedded-IPv4 forms have
 * been dealt with. First match wins. What lies outside 2000::/3 and is
 * not named here is refused as "not global unicast" (RFC 4291 §2.4). */
static const struct v6_range v6_ranges[] = {
	{ { 0 }, 128, "unspecified" },                         /* RFC 4291 §2.5.2 */
	{ { [15] = 1 }, 128, "loopback" },                     /* RFC 4291 §2.5.3 */
	{ { 0x00, 0x64, 0xff, 0x9b, 0x00, 0x01 }, 48,
	  "NAT64 local-use" },                                 /* RFC 8215 §3 */
	{ { 0x01, 0x00 }, 64, "discard-only (RFC 6666)" },     /* RFC 6666 §4 */
	{ { 0xfc }, 7, "IPv6 unique local" },                  /* RFC 4193 §3.1 */
	{ { 0xfe, 0x80 }, 10, "IPv6 link-local" },             /* RFC 4291 §2.5.6 */
	{ { 0xfe, 0xc0 }, 10, "IPv6 site-local (deprecated)" }, /* RFC 3879 §4 */
	{ { 0xff }, 8, "IPv6 multicast" },                     /* RFC 4291 §2.7 */
	{ { 0x20, 0x01, 0x0d, 0xb8 }, 32, "documentation" },   /* RFC 3849 §4 */
	{ { 0x3f, 0xff }, 20, "documentation" },               /* RFC 9637 §3 */
	{ { 0x20, 0x01, 0x00, 0x02, 0x00, 0x00 }, 48,
	  "benchmarking" },                                    /* RFC 5180 §8 */
	{ { 0x20, 0x01, 0x00, 0x10 }, 28, "ORCHID (deprecated)" }, /* RFC 4843 */
	{ { 0x20, 0x01, 0x00, 0x20 }, 28, "ORCHIDv2" },        /* RFC 7343 §6 */
	/* The rest of 2001::/23 (RFC 2928) holds anycast services (PCP,
	 * TURN, AMT, AS112) a relay has no reason to reach. Teredo's
	 * 2001::/32 never gets here: it is judged by what it embeds. */
	{ { 0x20, 0x01, 0x00, 0x00 }, 23,
	  "IETF protocol assignments (RFC 2928)" },
};

static const uint8_t global_unicast[16] = { 0x20 }; /* 2000::/3 */

/* An IPv4 address found inside an IPv6 one, and how it was spelled. */
struct embedded {
	uint8_t v4[4];
	enum spelling sp;
};

/* True when the first prefix_len bits of a and prefix agree. */
static bool prefix_match(const uint8_t *a, const uint8_t *prefix,
    unsigned prefix_len)
{
	unsigned whole = prefix_len / 8, rest = prefix_len % 8;
	uint8_t mask;

	if (memcmp(a, prefix, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (prefix[whole] & mask);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	size_t i;
	uint8_t acc = 0;

	for (i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

static void v4_to_mapped(const uint8_t v4[4], uint8_t out[16])
{
	memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	memcpy(out + 12, v4, 4);
}

/* Reads the IP of a sockaddr_in/in6 into its 16-byte form (IPv4 as
 * ::ffff:a.b.c.d). The header has no length argument, so the caller's
 * object must be as large as its sa_family says; memcpy rather than a
 * cast keeps strict aliasing out of it. Returns the family or -1. */
static int sa_to_16(const struct sockaddr *sa, uint8_t out[16],
    uint16_t *port)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		memcpy(&sin, sa, sizeof(sin));
		v4_to_mapped((const uint8_t *)&sin.sin_addr, out);
		if (port != NULL)
			*port = ntohs(sin.sin_port);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		memcpy(&sin6, sa, sizeof(sin6));
		memcpy(out, &sin6.sin6_addr, 16);
		if (port != NULL)
			*port = ntohs(sin6.sin6_port);
		return AF_INET6;
	}
	return -1;
}

/* Finds every IPv4 address a carries. Returns how many (0..2); Teredo
 * yields two, the client first because that is where packets go. */
static size_t embedded_v4(const uint8_t a[16], struct embedded out[2])
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t translated[12] = { [8] = 0xff, [9] = 0xff };
	static const uint8_t nat64[12] = { 0x00, 0x64, 0xff, 0x9b };
	static const uint8_t six_to_four[2] = { 0x20, 0x02 };
	static const uint8_t teredo[4] = { 0x20, 0x01, 0x00, 0x00 };
	size_t i;

	if (memcmp(a, mapped, 12) == 0) {
		memcpy(out[0].v4, a + 12, 4);
		out[0].sp = SP_MAPPED;
		return 1;
	}
	if (all_zero(a, 12)) {
		/* :: and ::1 are themselves unspecified and loopback
		 * (RFC 4291 §2.5.5.1), not IPv4-compatible addresses. */
		if (all_zero(a + 12, 3) && a[15] <= 1)
			return 0;
		memcpy(out[0].v4, a + 12, 4);
		out[0].sp = SP_COMPAT;
		return 1;
	}
	if (memcmp(a, translated, 12) == 0) {
		memcpy(out[0].v4, a + 12, 4);
		out[0].sp = SP_TRANSLATED;
		return 1;
	}
	if (memcmp(a, nat64, 12) == 0) {
		memcpy(out[0].v4, a + 12, 4);
		out[0].sp = SP_NAT64;
		return 1;
	}
	if (memcmp(a, six_to_four, 2) == 0) {
		/* RFC 3056 §2: 2002:V4ADDR::/48. */
		memcpy(out[0].v4, a + 2, 4);
		out[0].sp = SP_6TO4;
		return 1;
	}
	if (memcmp(a, teredo, 4) == 0) {
		/* RFC 4380 §4: prefix, server IPv4, flags, port and client
		 * IPv4 both obfuscated by inverting every bit. */
		for (i = 0; i < 4; i++)
			out[0].v4[i] = (uint8_t)(a[12 + i] ^ 0xff);
		out[0].sp = SP_TEREDO;
		memcpy(out[1].v4, a + 4, 4);
		out[1].sp = SP_TEREDO;
		return 2;
	}
	return 0;
}

static int v4_reason_of(const uint8_t v4[4])
{
	size_t i;

	for (i = 0; i < sizeof(v4_ranges) / sizeof(v4_ranges[0]); i++)
		if (prefix_match(v4, v4_ranges[i].addr, v4_ranges[i].prefix_len))
			return (int)v4_ranges[i].reason;
	return -1;
}

/* The built-in ranges. a is the 16-byte form; native_v4 says the caller
 * gave a sockaddr_in, so the reason carries no "IPv4-mapped:" prefix. */
static enum peer_verdict judge_builtin(const uint8_t a[16], bool native_v4,
    const char **why)
{
	struct embedded emb[2];
	size_t n, i;
	int r;
	enum spelling sp;

	n = embedded_v4(a, emb);
	for (i = 0; i < n; i++) {
		if ((r = v4_reason_of(emb[i].v4)) < 0)
			continue;
		sp = emb[i].sp;
		if (sp == SP_MAPPED && native_v4)
			sp = SP_NATIVE;
		*why = v4_why[r][sp];
		return PEER_REFUSED_RANGE;
	}
	if (n > 0) {
		switch (emb[0].sp) {
		case SP_COMPAT:
			/* Public inside, but a deprecated form that only a
			 * host's automatic tunnel (Linux sit0) would route:
			 * not plainly public unicast. */
			*why = "IPv4-compatible: deprecated (RFC 4291)";
			return PEER_REFUSED_RANGE;
		case SP_TRANSLATED:
			*why = "IPv4-translated: not global (RFC 2765)";
			return PEER_REFUSED_RANGE;
		default:
			/* Mapped and NAT64 carry a public IPv4 address; 6to4
			 * and Teredo are global unicast carrying public ones. */
			*why = "public unicast";
			return PEER_ALLOWED;
		}
	}
	for (i = 0; i < sizeof(v6_ranges) / sizeof(v6_ranges[0]); i++) {
		if (prefix_match(a, v6_ranges[i].addr, v6_ranges[i].prefix_len)) {
			*why = v6_ranges[i].why;
			return PEER_REFUSED_RANGE;
		}
	}
	if (!prefix_match(a, global_unicast, 3)) {
		*why = "not global unicast";
		return PEER_REFUSED_RANGE;
	}
	*why = "public unicast";
	return PEER_ALLOWED;
}

/* The address and every IPv4 address it embeds, each in 16-byte form:
 * what an own address or an operator deny is compared against, so that
 * 64:ff9b::a.b.c.d cannot slip past a deny of a.b.c.d. Returns the count
 * (1..3). */
static size_t spellings_of(const uint8_t a[16], uint8_t out[3][16])
{
	struct embedded emb[2];
	size_t n, i;

	memcpy(out[0], a, 16);
	n = embedded_v4(a, emb);
	for (i = 0; i < n; i++)
		v4_to_mapped(emb[i].v4, out[1 + i]);
	return 1 + n;
}

int peer_cidr_parse(const char *s, struct peer_cidr *out)
{
	/* Longest accepted input: a full IPv6 text form with an embedded
	 * IPv4 address (45 characters), "/" and three digits. */
	char buf[INET6_ADDRSTRLEN];
	struct peer_cidr c;
	const char *slash, *digits;
	size_t len, alen, i;
	unsigned n, max_len, base;
	uint8_t v4[4];

	if (s == NULL || out == NULL)
		return -1;
	len = strnlen(s, sizeof(buf) + 4);
	if (len == 0 || len > sizeof(buf) + 3)
		return -1;
	slash = memchr(s, '/', len);
	alen = slash != NULL ? (size_t)(slash - s) : len;
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';

	memset(&c, 0, sizeof(c));
	if (memchr(buf, ':', alen) != NULL) {
		if (inet_pton(AF_INET6, buf, c.addr) != 1)
			return -1;
		max_len = 128;
		base = 0;
	} else {
		/* glibc's inet_pton takes exactly four decimal parts with no
		 * leading zeros, so "010.1.2.3" (octal to inet_aton) and
		 * "10.1" are refused rather than guessed at. */
		if (inet_pton(AF_INET, buf, v4) != 1)
			return -1;
		v4_to_mapped(v4, c.addr);
		max_len = 32;
		base = 96;
	}

	if (slash != NULL) {
		/* 1 to 3 decimal digits, no sign, no leading zero. */
		digits = slash + 1;
		alen = len - (size_t)(digits - s);
		if (alen == 0 || alen > 3 || (digits[0] == '0' && alen > 1))
			return -1;
		n = 0;
		for (i = 0; i < alen; i++) {
			if (digits[i] < '0' || digits[i] > '9')
				return -1;
			n = n * 10 + (unsigned)(digits[i] - '0');
		}
		if (n > max_len)
			return -1;
	} else {
		n = max_len;
	}
	c.prefix_len = (uint8_t)(base + n);

	/* Host bits must be zero: "10.0.0.1/8" is more likely a typo for a
	 * host than a wish for the whole of 10/8. */
	for (i = c.prefix_len; i < 128; i++)
		if (c.addr[i / 8] & (0x80 >> (i % 8)))
			return -1;

	*out = c;
	return 0;
}

int peer_policy_add_own(struct peer_policy *p, const struct sockaddr *sa)
{
	uint8_t a[16];
	size_t i;

	if (p == NULL || sa_to_16(sa, a, NULL) < 0)
		return -1;
	for (i = 0; i < p->nown; i++)
		if (memcmp(p->own[i], a, 16) == 0)
			return 0;
	if (p->nown >= PEER_POLICY_MAX_OWN)
		return -1;
	memcpy(p->own[p->nown++], a, 16);
	return 0;
}

enum peer_verdict peer_policy_check(const struct peer_policy *p,
    const struct sockaddr *sa, const char **why)
{
	uint8_t a[16], forms[3][16];
	const char *reason = "bad address";
	enum peer_verdict v = PEER_REFUSED_BAD;
	uint16_t port = 0;
	size_t nforms, i, j, nown = 0, ndeny = 0, nallow = 0;
	int family;

	family = sa_to_16(sa, a, &port);
	/* RFC 8656 §9.1 has no use for port 0: it is not a destination. */
	if (family < 0 || port == 0)
		goto done;
	if (p != NULL) {
		nown = p->nown < PEER_POLICY_MAX_OWN ? p->nown : PEER_POLICY_MAX_OWN;
		ndeny = p->ndeny < PEER_POLICY_MAX_CIDRS ? p->ndeny : PEER_POLICY_MAX_CIDRS;
		nallow = p->nallow < PEER_POLICY_MAX_CIDRS ? p->nallow : PEER_POLICY_MAX_CIDRS;
	}

	nforms = spellings_of(a, forms);
	v = PEER_REFUSED_OWN;
	reason = "gateway address";
	for (i = 0; i < nforms; i++)
		for (j = 0; j < nown; j++)
			if (memcmp(forms[i], p->own[j], 16) == 0)
				goto done;

	v = PEER_REFUSED_OPERATOR;
	reason = "operator deny";
	for (i = 0; i < nforms; i++)
		for (j = 0; j < ndeny; j++)
			if (prefix_match(forms[i], p->deny[j].addr,
			    p->deny[j].prefix_len > 128 ? 128 : p->deny[j].prefix_len))
				goto done;

	/* Allow matches the address as given (IPv4-mapped is the same
	 * address): allowing 10.1.0.0/16 should open that network, not
	 * 64:ff9b::10.1.2.3, which a NAT64 somewhere else would turn into a
	 * different host. */
	v = PEER_ALLOWED;
	reason = "operator allow";
	for (j = 0; j < nallow; j++)
		if (prefix_match(a, p->allow[j].addr,
		    p->allow[j].prefix_len > 128 ? 128 : p->allow[j].prefix_len))
			goto done;

	v = judge_builtin(a, family == AF_INET, &reason);
done:
	if (why != NULL)
		*why = reason;
	return v;
}

bool peer_same_ip(const struct sockaddr *a, const struct sockaddr *b)
{
	uint8_t x[16], y[16];

	/* The common case on the packet path, without the conversion. */
	if (a != NULL && b != NULL && a->sa_family == AF_INET && b->sa_family == AF_INET)
		return ((const struct sockaddr_in *)(const void *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)(const void *)b)->sin_addr.s_addr;
	if (sa_to_16(a, x, NULL) < 0 || sa_to_16(b, y, NULL) < 0)
		return false;
	return memcmp(x, y, 16) == 0;
}
