/* Forced relay in SDP offers, answers and trickled candidates; the
 * contract is in sdp_filter.h.
 *
 * sdp_filter() makes two passes over the bytes. The first checks the
 * framing of the whole SDP (size, line count, NUL bytes, line ends, the
 * "<type>=<value>" shape, "v=0" first) and counts the lines, which bounds
 * the output. The second rewrites line by line into a buffer the caller
 * only sees on success, so a line we refuse halfway through leaves nothing
 * behind.
 *
 * The rule for candidates is "broad to remove, narrow to keep": any
 * attribute that some parser might read as a candidate is treated as one,
 * and only a line spelled exactly "a=candidate:" whose value parses
 * strictly per RFC 8839 §5.1 as a UDP relay candidate on an address the
 * caller approves survives. Parsers disagree at the edges (libwebrtc's
 * HasAttribute() accepts "a=candidate" followed by a space and then takes
 * the value after the first colon whose left part ends in "candidate"), so
 * anything looser on the keep side would let a host candidate through.
 *
 * Every m= line's kind of media is recorded on the way (stats->media),
 * whatever its port, for the caller to hold against what the call may
 * carry; sdp_media_kinds() reads the same lines with the same parser
 * without filtering anything.
 *
 * Everything here is pure: no I/O, no clock, no globals. */
#include "signaling/sdp_filter.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"

/* RFC 8839 §5.1 field limits. */
#define FOUNDATION_MAX 32       /* foundation = 1*32ice-char */
#define COMPONENT_DIGITS 5      /* as in RFC 5245; RFC 8839 caps the value */
#define COMPONENT_MAX 256
#define PRIORITY_DIGITS 10
#define PRIORITY_MAX 0x7fffffffu /* RFC 8839 §5.1: 1 .. 2^31 - 1 */
#define PORT_DIGITS 5
#define PORT_MAX 65535
#define ADDR_TEXT_MAX 45        /* longest IPv6 literal, INET6_ADDRSTRLEN - 1 */

/* "No default destination" (RFC 8839 §4.2.1, as the header cites): the
 * discard port and the unspecified address, the values JSEP (RFC 8829
 * §5.2.1) puts in an offer before any candidate is known. */
#define DISCARD_PORT "9"
#define UNSPEC_IP4 "0.0.0.0"
#define UNSPEC_IP6 "::"

/* Each output line is its input line plus at most this many bytes: the
 * largest growth is a one-character address replaced by "0.0.0.0" (+6, in
 * c=, o= and a=rtcp) and an LF that becomes CRLF (+1). */
#define LINE_GROWTH_MAX 32

struct filter {
	sdp_relay_check_fn check; /* borrowed; NULL approves nothing */
	void *ctx;                /* borrowed: handed to check */
	struct sdp_filter_stats stats;
};

/* A line handler gets the whole line without its line end and either
 * appends its replacement to w (possibly nothing, to remove it) and
 * returns SDP_OK, or refuses the SDP with SDP_EINVAL. */
typedef int (*line_fn)(struct filter *f, struct rd line, struct wr *w);

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
};

/* ---- byte helpers over struct rd ---- */

static inline int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool span_eq(struct rd s, const char *lit)
{
	size_t n = strlen(lit);

	return s.left == n && memcmp(s.p, lit, n) == 0;
}

static bool span_eq_ci(struct rd s, const char *lit)
{
	size_t i, n = strlen(lit);

	if (s.left != n)
		return false;
	for (i = 0; i < n; i++)
		if (lower(s.p[i]) != lower((unsigned char)lit[i]))
			return false;
	return true;
}

static bool span_starts(struct rd s, const char *lit)
{
	size_t n = strlen(lit);

	return s.left >= n && memcmp(s.p, lit, n) == 0;
}

static bool span_starts_ci(struct rd s, const char *lit)
{
	size_t n = strlen(lit);

	return s.left >= n && span_eq_ci(rd_init(s.p, n), lit);
}

/* Takes the bytes up to the next SP (or the end) as *tok without
 * consuming the SP. An empty field fails, so two SPs in a row, or one at
 * the start, are errors: SDP (RFC 8866 §9) and RFC 8839 §5.1 separate
 * fields with exactly one SP. */
static int rd_field(struct rd *r, struct rd *tok)
{
	const uint8_t *sp;
	size_t n;

	if (r->left == 0)
		return -1;
	sp = memchr(r->p, ' ', r->left);
	n = sp ? (size_t)(sp - r->p) : r->left;
	if (n == 0)
		return -1;
	*tok = rd_init(r->p, n);
	return rd_skip(r, n);
}

static int rd_sp(struct rd *r)
{
	uint8_t c;

	if (r->left < 1 || r->p[0] != ' ')
		return -1;
	return rd_u8(r, &c);
}

/* Decimal digits only (no sign, no space), 1..max_digits of them. With at
 * most 10 digits the value cannot overflow 64 bits. */
static int span_uint(struct rd s, size_t max_digits, uint64_t *v)
{
	size_t i;
	uint64_t x = 0;

	if (s.left < 1 || s.left > max_digits)
		return -1;
	for (i = 0; i < s.left; i++) {
		if (s.p[i] < '0' || s.p[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(s.p[i] - '0');
	}
	*v = x;
	return 0;
}

static bool span_has_ctl(struct rd s)
{
	size_t i;

	for (i = 0; i < s.left; i++)
		if (s.p[i] < 0x20 || s.p[i] == 0x7f)
			return true;
	return false;
}

static inline void wr_str(struct wr *w, const char *s)
{
	wr_bytes(w, s, strlen(s));
}

static inline void wr_span(struct wr *w, struct rd s)
{
	wr_bytes(w, s.p, s.left);
}

static inline void wr_eol(struct wr *w)
{
	wr_bytes(w, "\r\n", 2);
}

/* ---- RFC 8839 §5.1 candidate ---- */

/* ice-char = ALPHA / DIGIT / "+" / "/" */
static bool foundation_ok(struct rd s)
{
	size_t i;

	if (s.left < 1 || s.left > FOUNDATION_MAX)
		return false;
	for (i = 0; i < s.left; i++) {
		uint8_t c = s.p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '+' || c == '/'))
			return false;
	}
	return true;
}

/* An IPv4 or IPv6 literal and a port, as a sockaddr for the check. A name
 * (FQDN, or an RFC 8839 §5.1 / mDNS ".local" name) fails: we can only vouch
 * for an address we can compare. glibc's inet_pton() takes dotted-quad
 * IPv4 only and refuses leading zeros, so no peer can read an octal
 * address out of the same text. */
static int addr_parse(struct rd text, uint16_t port, union sockaddr_any *sa)
{
	char buf[ADDR_TEXT_MAX + 1];

	if (text.left > ADDR_TEXT_MAX)
		return -1;
	memcpy(buf, text.p, text.left);
	buf[text.left] = '\0';
	memset(sa, 0, sizeof(*sa));
	if (inet_pton(AF_INET, buf, &sa->in4.sin_addr) == 1) {
		sa->in4.sin_family = AF_INET;
		sa->in4.sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &sa->in6.sin6_addr) == 1) {
		sa->in6.sin6_family = AF_INET6;
		sa->in6.sin6_port = htons(port);
		return 0;
	}
	return -1;
}

/* v is a candidate-attribute value, after "candidate:":
 *   foundation SP component-id SP transport SP priority SP
 *   connection-address SP port SP "typ" SP cand-type *(SP extension)
 * True only for a well-formed UDP relay candidate whose address passes
 * check; then the value is written to out with the related address
 * (raddr/rport, RFC 8839 §5.1) replaced by the unspecified address and
 * port 0: for a relay candidate it is the sender's own reflexive or host
 * address, exactly what forced relay must not reveal. Other extensions
 * (generation, ufrag, network-id, network-cost, ...) are copied as
 * name/value pairs; none of them changes where an agent sends checks. */
static bool cand_rewrite(struct rd v, sdp_relay_check_fn check, void *ctx,
    struct wr *out)
{
	struct rd start = v, name, value;
	size_t base_len;
	const char *unspec;
	struct rd foundation, component, transport, priority, addr, port;
	struct rd typ, type;
	uint64_t component_v, priority_v, port_v;
	union sockaddr_any sa;

	if (check == NULL || span_has_ctl(v))
		return false;
	if (rd_field(&v, &foundation) || rd_sp(&v) ||
	    rd_field(&v, &component) || rd_sp(&v) ||
	    rd_field(&v, &transport) || rd_sp(&v) ||
	    rd_field(&v, &priority) || rd_sp(&v) ||
	    rd_field(&v, &addr) || rd_sp(&v) ||
	    rd_field(&v, &port) || rd_sp(&v) ||
	    rd_field(&v, &typ) || rd_sp(&v) ||
	    rd_field(&v, &type))
		return false;
	if (!foundation_ok(foundation) ||
	    span_uint(component, COMPONENT_DIGITS, &component_v) ||
	    component_v < 1 || component_v > COMPONENT_MAX ||
	    span_uint(priority, PRIORITY_DIGITS, &priority_v) ||
	    priority_v < 1 || priority_v > PRIORITY_MAX ||
	    span_uint(port, PORT_DIGITS, &port_v) ||
	    port_v < 1 || port_v > PORT_MAX)
		return false;
	/* RFC 8839 §5.1: transport is "UDP" or an extension token; ABNF
	 * literals are case-insensitive (RFC 5234 §2.3) and browsers write
	 * "udp". TCP candidates (RFC 6544) never carry Gatehouse relays. */
	if (!span_eq_ci(transport, "UDP"))
		return false;
	/* libwebrtc compares "typ" and the type case-sensitively, so we do
	 * too: a spelling a browser would not read as a relay is not kept. */
	if (!span_eq(typ, "typ") || !span_eq(type, "relay"))
		return false;
	if (addr_parse(addr, (uint16_t)port_v, &sa) || !check(ctx, &sa.sa))
		return false;
	unspec = sa.sa.sa_family == AF_INET6 ? "::" : "0.0.0.0";
	base_len = start.left - v.left;
	wr_bytes(out, start.p, base_len);
	while (v.left > 0) {
		if (rd_sp(&v) || rd_field(&v, &name) || rd_sp(&v) || rd_field(&v, &value))
			return false;
		wr_str(out, " ");
		wr_span(out, name);
		wr_str(out, " ");
		if (span_eq(name, "raddr"))
			wr_str(out, unspec);
		else if (span_eq(name, "rport"))
			wr_str(out, "0");
		else
			wr_span(out, value);
	}
	return !out->overflow;
}

/* ---- line handlers ---- */

static int on_keep(struct filter *f, struct rd line, struct wr *w)
{
	(void)f;
	wr_span(w, line);
	wr_eol(w);
	return SDP_OK;
}

/* RFC 8839 §5.2: a=remote-candidates lists the other agent's candidates,
 * which are addresses we must not echo to anyone. */
static int on_remove(struct filter *f, struct rd line, struct wr *w)
{
	(void)f;
	(void)line;
	(void)w;
	return SDP_OK;
}

static int on_candidate(struct filter *f, struct rd line, struct wr *w)
{
	struct rd v = line;

	uint8_t buf[CANDIDATE_MAX_LEN + 64];
	struct wr cand = wr_init(buf, sizeof(buf));

	if (span_starts(v, "a=candidate:") &&
	    rd_skip(&v, strlen("a=candidate:")) == 0 &&
	    cand_rewrite(v, f->check, f->ctx, &cand)) {
		f->stats.kept++;
		wr_str(w, "a=candidate:");
		wr_bytes(w, cand.p, cand.len);
		wr_eol(w);
		return SDP_OK;
	}
	f->stats.removed++;
	return SDP_OK;
}

/* "IN IP4" / "IN IP6" and the unspecified address of that family. */
static int addrtype_unspec(struct rd nettype, struct rd addrtype,
    const char **unspec)
{
	if (!span_eq_ci(nettype, "IN"))
		return -1;
	if (span_eq_ci(addrtype, "IP4"))
		*unspec = "IN IP4 " UNSPEC_IP4;
	else if (span_eq_ci(addrtype, "IP6"))
		*unspec = "IN IP6 " UNSPEC_IP6;
	else
		return -1;
	return 0;
}

/* RFC 8866 §5.7: c=<nettype> <addrtype> <connection-address>. The address
 * is the default destination, usually a host or server-reflexive address;
 * it is replaced whatever it was, so only its presence is checked. */
static int on_connection(struct filter *f, struct rd line, struct wr *w)
{
	struct rd v = line, nettype, addrtype, addr;
	const char *unspec;

	(void)f;
	if (rd_skip(&v, 2) ||
	    rd_field(&v, &nettype) || rd_sp(&v) ||
	    rd_field(&v, &addrtype) || rd_sp(&v) ||
	    rd_field(&v, &addr) || v.left != 0 ||
	    addrtype_unspec(nettype, addrtype, &unspec))
		return SDP_EINVAL;
	wr_str(w, "c=");
	wr_str(w, unspec);
	wr_eol(w);
	return SDP_OK;
}

/* RFC 8866 §5.2: o=<username> <sess-id> <sess-version> <nettype>
 * <addrtype> <unicast-address>. Browsers write 127.0.0.1 or 0.0.0.0 but
 * other stacks write the host's real address. */
static int on_origin(struct filter *f, struct rd line, struct wr *w)
{
	struct rd v = line, user, id, version, nettype, addrtype, addr;
	const char *unspec;

	(void)f;
	if (rd_skip(&v, 2) ||
	    rd_field(&v, &user) || rd_sp(&v) ||
	    rd_field(&v, &id) || rd_sp(&v) ||
	    rd_field(&v, &version) || rd_sp(&v) ||
	    rd_field(&v, &nettype) || rd_sp(&v) ||
	    rd_field(&v, &addrtype) || rd_sp(&v) ||
	    rd_field(&v, &addr) || v.left != 0 ||
	    addrtype_unspec(nettype, addrtype, &unspec))
		return SDP_EINVAL;
	/* Everything before nettype verbatim, then a canonical tail. */
	wr_bytes(w, line.p, (size_t)(nettype.p - line.p));
	wr_str(w, unspec);
	wr_eol(w);
	return SDP_OK;
}

/* RFC 8866 §5.14: the <media> field as a kind. Exact names only (see
 * enum sdp_media_kind): a spelling we do not know is OTHER, never a guess. */
static const struct {
	const char *name;
	unsigned kind;
} media_kinds[] = {
	{ "audio", SDP_MEDIA_AUDIO },
	{ "video", SDP_MEDIA_VIDEO },
	{ "application", SDP_MEDIA_APPLICATION },
};

static unsigned media_kind(struct rd media)
{
	size_t i;

	for (i = 0; i < sizeof(media_kinds) / sizeof(media_kinds[0]); i++)
		if (span_eq(media, media_kinds[i].name))
			return media_kinds[i].kind;
	return SDP_MEDIA_OTHER;
}

/* An m= line taken apart, for on_media() and sdp_media_kinds(), which
 * must agree on what is an m-section and of which kind. */
struct media_line {
	unsigned kind;      /* SDP_MEDIA_* */
	struct rd digits;   /* the port's digits, inside the line */
	uint64_t port;
};

/* RFC 8866 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
 * Checks the shape up to the port and that something follows it. */
static int media_line_parse(struct rd line, struct media_line *ml)
{
	struct rd v = line, media, port, rest;
	const uint8_t *slash;
	uint64_t count_v;

	if (rd_skip(&v, 2) ||
	    rd_field(&v, &media) || rd_sp(&v) ||
	    rd_field(&v, &port) || rd_sp(&v) || v.left == 0)
		return SDP_EINVAL;
	slash = memchr(port.p, '/', port.left);
	ml->digits = rd_init(port.p, slash ? (size_t)(slash - port.p) : port.left);
	if (span_uint(ml->digits, PORT_DIGITS, &ml->port) || ml->port > PORT_MAX)
		return SDP_EINVAL;
	if (slash != NULL) {
		rest = rd_init(slash + 1, port.left - ml->digits.left - 1);
		if (span_uint(rest, PORT_DIGITS, &count_v))
			return SDP_EINVAL;
	}
	ml->kind = media_kind(media);
	return SDP_OK;
}

/* The port is the default candidate's. Port 0 marks a rejected or
 * disabled m-section (RFC 8866 §5.14, RFC 3264 §6), or a bundle-only one
 * (RFC 8843), and must stay 0. The kind is recorded whatever the port. */
static int on_media(struct filter *f, struct rd line, struct wr *w)
{
	struct media_line ml;
	struct rd rest;

	if (media_line_parse(line, &ml) != SDP_OK)
		return SDP_EINVAL;
	f->stats.media |= ml.kind;
	if (ml.port == 0)
		return on_keep(f, line, w);
	/* Up to the port, the discard port, then the rest of the line
	 * (number of ports, proto, formats) verbatim. */
	wr_bytes(w, line.p, (size_t)(ml.digits.p - line.p));
	wr_str(w, DISCARD_PORT);
	rest = rd_init(ml.digits.p + ml.digits.left,
	    line.left - (size_t)(ml.digits.p - line.p) - ml.digits.left);
	wr_span(w, rest);
	wr_eol(w);
	return SDP_OK;
}

/* RFC 3605 §2.1: a=rtcp:<port> [<nettype> <addrtype> <connection-address>].
 * libwebrtc ignores it on receipt, but other stacks read it as the
 * default RTCP destination, so its address is as revealing as c=. */
static int on_rtcp(struct filter *f, struct rd line, struct wr *w)
{
	struct rd v = line, port, nettype, addrtype, addr;
	uint64_t port_v;
	const char *unspec;

	(void)f;
	if (!span_starts_ci(v, "a=rtcp:") || rd_skip(&v, strlen("a=rtcp:")) ||
	    rd_field(&v, &port) ||
	    span_uint(port, PORT_DIGITS, &port_v) || port_v > PORT_MAX)
		return SDP_EINVAL;
	wr_str(w, "a=rtcp:" DISCARD_PORT);
	if (v.left != 0) {
		if (rd_sp(&v) ||
		    rd_field(&v, &nettype) || rd_sp(&v) ||
		    rd_field(&v, &addrtype) || rd_sp(&v) ||
		    rd_field(&v, &addr) || v.left != 0 ||
		    addrtype_unspec(nettype, addrtype, &unspec))
			return SDP_EINVAL;
		wr_str(w, " ");
		wr_str(w, unspec);
	}
	wr_eol(w);
	return SDP_OK;
}

/* Attribute names are matched case-insensitively after any leading
 * spaces, tabs or colons, which some parsers skip. A prefix rule matches
 * any name that starts with it ("a=candidate x candidate:..." included);
 * an exact rule matches the name followed by ':', ' ' or the end, which is
 * how libwebrtc's HasAttribute() delimits names. */
static const struct {
	const char *name;
	bool prefix;
	line_fn fn;
} attr_rules[] = {
	{ "candidate", true, on_candidate },
	{ "remote-candidates", true, on_remove },
	{ "rtcp", false, on_rtcp },
};

static int on_attribute(struct filter *f, struct rd line, struct wr *w)
{
	struct rd name = line;
	size_t i, n;

	(void)rd_skip(&name, 2);
	while (name.left > 0 &&
	    (name.p[0] == ' ' || name.p[0] == '\t' || name.p[0] == ':'))
		(void)rd_skip(&name, 1);
	for (i = 0; i < sizeof(attr_rules) / sizeof(attr_rules[0]); i++) {
		if (!span_starts_ci(name, attr_rules[i].name))
			continue;
		n = strlen(attr_rules[i].name);
		if (attr_rules[i].prefix || name.left == n ||
		    name.p[n] == ':' || name.p[n] == ' ')
			return attr_rules[i].fn(f, line, w);
	}
	return on_keep(f, line, w);
}

static const struct {
	uint8_t type;
	line_fn fn;
} line_rules[] = {
	{ 'a', on_attribute },
	{ 'c', on_connection },
	{ 'm', on_media },
	{ 'o', on_origin },
};

/* ---- framing ---- */

/* Takes the next line off r without its line end. RFC 8866 §5: lines end
 * in CRLF, and parsers should accept a bare LF too; a CR anywhere else is
 * refused, since parsers disagree on whether it ends a line. The last line
 * must be terminated, as libwebrtc requires. Every line is
 * "<type>=<value>" with a lowercase type letter. */
static int sdp_next_line(struct rd *r, struct rd *line)
{
	const uint8_t *lf = memchr(r->p, '\n', r->left);
	size_t n;

	if (lf == NULL)
		return SDP_EINVAL;
	n = (size_t)(lf - r->p);
	*line = rd_init(r->p, n);
	(void)rd_skip(r, n + 1);
	if (line->left > 0 && line->p[line->left - 1] == '\r')
		line->left--;
	if (memchr(line->p, '\r', line->left) != NULL)
		return SDP_EINVAL;
	if (line->left < 2 || line->p[0] < 'a' || line->p[0] > 'z' ||
	    line->p[1] != '=')
		return SDP_EINVAL;
	return SDP_OK;
}

/* Pass one: the framing of the whole SDP, and its line count. */
static int sdp_check_framing(const uint8_t *p, size_t len, size_t *lines)
{
	struct rd r = rd_init(p, len), line;
	size_t n = 0;
	int rc;

	if (len == 0 || len > SDP_MAX_LEN || memchr(p, '\0', len) != NULL)
		return SDP_EINVAL;
	while (r.left > 0) {
		if ((rc = sdp_next_line(&r, &line)) != SDP_OK)
			return rc;
		if (++n > SDP_MAX_LINES)
			return SDP_EINVAL;
		/* RFC 8866 §5.1: "v=0" comes first. */
		if (n == 1 && !span_eq(line, "v=0"))
			return SDP_EINVAL;
	}
	*lines = n;
	return SDP_OK;
}

static int sdp_filter_line(struct filter *f, struct rd line, struct wr *w)
{
	size_t i;

	for (i = 0; i < sizeof(line_rules) / sizeof(line_rules[0]); i++)
		if (line.p[0] == line_rules[i].type)
			return line_rules[i].fn(f, line, w);
	return on_keep(f, line, w);
}

int sdp_filter(const char *sdp, size_t len, sdp_relay_check_fn check, void *ctx,
    char **out, size_t *out_len, struct sdp_filter_stats *stats)
{
	struct filter f = { check, ctx, { 0, 0, 0 } };
	struct rd r, line;
	struct wr w;
	uint8_t *buf = NULL;
	size_t lines = 0, cap;
	int rc;

	if (out != NULL)
		*out = NULL;
	if (out_len != NULL)
		*out_len = 0;
	if (stats != NULL)
		memset(stats, 0, sizeof(*stats));
	if (sdp == NULL || out == NULL)
		return SDP_EINVAL;
	if ((rc = sdp_check_framing((const uint8_t *)sdp, len, &lines)) != SDP_OK)
		return rc;

	/* len <= SDP_MAX_LEN and lines <= SDP_MAX_LINES, so no overflow. */
	cap = len + lines * LINE_GROWTH_MAX + 1;
	if ((buf = malloc(cap)) == NULL)
		return SDP_ENOMEM;
	w = wr_init(buf, cap - 1);
	r = rd_init((const uint8_t *)sdp, len);
	while (r.left > 0) {
		if ((rc = sdp_next_line(&r, &line)) != SDP_OK ||
		    (rc = sdp_filter_line(&f, line, &w)) != SDP_OK)
			goto fail;
	}
	/* Cannot happen given LINE_GROWTH_MAX; refuse rather than hand out
	 * a truncated SDP if a new rewrite ever breaks that bound. */
	if (w.overflow) {
		rc = SDP_ENOMEM;
		goto fail;
	}
	buf[w.len] = '\0';
	*out = (char *)buf;
	if (out_len != NULL)
		*out_len = w.len;
	if (stats != NULL)
		*stats = f.stats;
	return SDP_OK;

fail:
	free(buf);
	return rc;
}

int sdp_media_kinds(const char *sdp, size_t len, unsigned *kinds)
{
	struct media_line ml;
	struct rd r, line;
	size_t lines;
	unsigned found = 0;
	int rc;

	if (kinds == NULL)
		return SDP_EINVAL;
	*kinds = 0;
	if (sdp == NULL)
		return SDP_EINVAL;
	if ((rc = sdp_check_framing((const uint8_t *)sdp, len, &lines)) != SDP_OK)
		return rc;
	r = rd_init((const uint8_t *)sdp, len);
	while (r.left > 0) {
		if ((rc = sdp_next_line(&r, &line)) != SDP_OK)
			return rc;
		if (line.p[0] != 'm')
			continue;
		if ((rc = media_line_parse(line, &ml)) != SDP_OK)
			return rc;
		found |= ml.kind;
	}
	*kinds = found;
	return SDP_OK;
}

int sdp_candidate_filter(const char *cand, size_t len, sdp_relay_check_fn check,
    void *ctx, char *out, size_t cap)
{
	struct wr w;
	struct rd r;

	if (out == NULL || cap == 0)
		return -1;
	out[0] = '\0';
	/* An empty candidate string is how webrtc-pc signals
	 * end-of-candidates (RFC 8838); it carries no address. */
	if (len == 0)
		return 0;
	if (cand == NULL || len > CANDIDATE_MAX_LEN)
		return -1;
	r = rd_init((const uint8_t *)cand, len);
	if (span_starts(r, "a="))
		(void)rd_skip(&r, 2);
	if (!span_starts(r, "candidate:"))
		return -1;
	(void)rd_skip(&r, strlen("candidate:"));
	w = wr_init((uint8_t *)out, cap - 1);
	wr_str(&w, "candidate:");
	if (!cand_rewrite(r, check, ctx, &w))
		return -1;
	out[w.len] = '\0';
	return 0;
}

bool sdp_candidate_allowed(const char *cand, size_t len, sdp_relay_check_fn check,
    void *ctx)
{
	char out[CANDIDATE_MAX_LEN + 64];

	return sdp_candidate_filter(cand, len, check, ctx, out, sizeof(out)) == 0;
}
