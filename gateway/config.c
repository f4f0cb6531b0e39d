/* The configuration: embedded defaults, the JSON file on top of them, and
 * the cross-field rules that reject impossible combinations.
 *
 * The file is walked with tables of keys, in the manner of nginx's
 * ngx_command_t: each entry names a parser and where the value goes, so
 * an unknown key, a wrong type or a value out of range is reported in one
 * place with its full path ("turn.listen[1].transport: ..."). Rules that
 * join several keys live in config_validate(), so that they hold for the
 * embedded defaults and for configs built in code as well. */
#include "gateway/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/log.h"
#include "gateway/login_queue.h"
#include "gateway/webhook.h"
#include "signaling/hub.h"
#include "signaling/ws_server.h"

/* Longest key path in a message; longer ones are cut, not refused. */
#define CFG_PATH_MAX 256

/* p_enum() stores a table value through an int, which is only right
 * when the enum has the size of an int. */
_Static_assert(sizeof(enum config_transport) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_mfa) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_backend_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_syslog_transport) == sizeof(int), "enum size");
_Static_assert(sizeof(enum config_registry_type) == sizeof(int), "enum size");

struct cfg_ctx {
	struct config *c; /* being filled; NULL in config_validate() */
	char *err;
	size_t errlen;
};

struct cfg_key;

/* base is the struct that the key's object fills; path names the key. */
typedef int (*cfg_parse_fn)(struct cfg_ctx *x, const struct cfg_key *k,
    void *base, json_t *v, const char *path);

struct cfg_key {
	const char *name;     /* NULL ends a table */
	cfg_parse_fn parse;
	size_t off;           /* of the field within base */
	size_t size;          /* of the field (strings: NUL included) */
	uint64_t min, max;    /* integers */
	const void *arg;      /* p_object: a cfg_section; p_enum: cfg_names */
};

struct cfg_section {
	const struct cfg_key *keys;
	const char *const *required; /* key names that must appear; NULL-ended */
	/* Runs once every key of the object is parsed (has_* flags). */
	void (*after)(void *base);
};

struct cfg_name {
	const char *name; /* NULL ends a table */
	int value;
};

static const struct cfg_name transport_names[] = {
	{ "udp", CONFIG_UDP }, { "tcp", CONFIG_TCP }, { "tls", CONFIG_TLS },
	{ NULL, 0 },
};
static const struct cfg_name syslog_transport_names[] = {
	{ "udp", CONFIG_SYSLOG_UDP }, { "tcp", CONFIG_SYSLOG_TCP },
	{ "tls", CONFIG_SYSLOG_TLS }, { NULL, 0 },
};
static const struct cfg_name mfa_names[] = {
	{ "required", CONFIG_MFA_REQUIRED }, { "optional", CONFIG_MFA_OPTIONAL },
	{ "off", CONFIG_MFA_OFF }, { NULL, 0 },
};
static const struct cfg_name backend_names[] = {
	{ "local", CONFIG_BACKEND_LOCAL }, { "jwt", CONFIG_BACKEND_JWT },
	{ NULL, 0 },
};
static const struct cfg_name response_names[] = {
	{ "none", ALERT_RESPONSE_NONE }, { "block_source", ALERT_RESPONSE_BLOCK_SOURCE },
	{ "lock_user", ALERT_RESPONSE_LOCK_USER }, { "end_call", ALERT_RESPONSE_END_CALL },
	{ NULL, 0 },
};
static const struct cfg_name registry_names[] = {
	{ "memory", CONFIG_REGISTRY_MEMORY }, { "redis", CONFIG_REGISTRY_REDIS },
	{ NULL, 0 },
};

static int fail(struct cfg_ctx *x, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "<path>: <message>" into the caller's buffer; returns -1. */
static int fail(struct cfg_ctx *x, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (x->errlen == 0)
		return -1;
	n = snprintf(x->err, x->errlen, "%s: ", path);
	if (n >= 0 && (size_t)n < x->errlen) {
		va_start(ap, fmt);
		vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Key names come from the file, so they are escaped before they reach a
 * message that will be printed on a terminal or logged. */
static void path_key(char *out, const char *path, const char *name)
{
	char esc[CFG_PATH_MAX];

	log_escape(esc, sizeof(esc), (const uint8_t *)name, strlen(name));
	if (snprintf(out, CFG_PATH_MAX, "%s%s%s", path, *path ? "." : "", esc) < 0)
		out[0] = '\0';
}

static void path_index(char *out, const char *path, size_t i)
{
	if (snprintf(out, CFG_PATH_MAX, "%s[%zu]", path, i) < 0)
		out[0] = '\0';
}

/* "\"udp\", \"tcp\" or \"tls\"" for a message. */
static void enum_list(char *out, size_t cap, const struct cfg_name *t)
{
	size_t used = 0;
	int n;

	out[0] = '\0';
	for (; t->name && used < cap; t++) {
		n = snprintf(out + used, cap - used, "%s\"%s\"",
		    used == 0 ? "" : t[1].name ? ", " : " or ", t->name);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}

static bool is_printable(const char *s, const char *forbid)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e ||
		    strchr(forbid, *s) != NULL)
			return false;
	return true;
}

static bool has_control(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
			return true;
	return false;
}

/* The realm goes into the REALM attribute, a quoted-string (RFC 8489
 * §14.9), so quotes and backslashes would need escaping there. */
static bool realm_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 127 && is_printable(s, "\"\\");
}

/* RFC 8489 §14.3 puts no limit on the characters of a user name, but ':'
 * separates user and realm in the long-term key (§9.2.2). */
static bool user_name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n < TURN_ID_MAX && is_printable(s, ":");
}

/* An Origin header as browsers send it (RFC 6454 §6.1): scheme, host and
 * optional port, no path. A trailing slash would never match, so it is
 * refused here rather than silently locking everyone out. */
static bool origin_ok(const char *s)
{
	const char *host;

	if (strncmp(s, "https://", 8) == 0)
		host = s + 8;
	else if (strncmp(s, "http://", 7) == 0)
		host = s + 7;
	else
		return false;
	if (*host == '\0')
		return false;
	for (; *host; host++)
		if (!((*host >= 'a' && *host <= 'z') || (*host >= 'A' && *host <= 'Z') ||
		    (*host >= '0' && *host <= '9') || strchr(".-:[]", *host) != NULL))
			return false;
	return true;
}

/* ---- addresses ---- */

static bool addr_is_unspecified(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
	if (ss->ss_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
	return false;
}

/* 0.0.0.0 and :: are not loopback: they listen on every interface. */
bool config_addr_is_loopback(const struct sockaddr_storage *ss)
{
	const struct in6_addr *a6;

	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family == AF_INET6) {
		a6 = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a6) ||
		    (IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127);
	}
	return false;
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

static bool addr_same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		    ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return IN6_ARE_ADDR_EQUAL(&((const struct sockaddr_in6 *)a)->sin6_addr,
		    &((const struct sockaddr_in6 *)b)->sin6_addr);
	return false;
}

/* A literal IPv4 or IPv6 address of len bytes (no brackets, no port, no
 * names: configuration never waits on DNS). */
static int parse_ip(const char *s, size_t len, uint16_t port, struct sockaddr_storage *out)
{
	char buf[INET6_ADDRSTRLEN];
	struct sockaddr_in *in4 = (struct sockaddr_in *)out;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

	memset(out, 0, sizeof(*out));
	if (len == 0 || len >= sizeof(buf))
		return -1;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		return 0;
	}
	memset(out, 0, sizeof(*out));
	return -1;
}

/* Decimal digits only (no sign, no spaces), at most 9 so that the value
 * cannot overflow; *end is set past the digits. */
static int parse_digits(const char *s, const char **end, unsigned long *out)
{
	unsigned long v = 0;
	size_t n;

	for (n = 0; s[n] >= '0' && s[n] <= '9'; n++) {
		if (n == 9)
			return -1;
		v = v * 10 + (unsigned long)(s[n] - '0');
	}
	if (n == 0)
		return -1;
	*end = s + n;
	*out = v;
	return 0;
}

/* A whole string that is a port, 1..65535. */
static int parse_port(const char *s, uint16_t *out)
{
	const char *end;
	unsigned long v;

	if (parse_digits(s, &end, &v) < 0 || *end != '\0' || v < 1 || v > 65535)
		return -1;
	*out = (uint16_t)v;
	return 0;
}

int config_parse_hostport(const char *s, struct sockaddr_storage *out)
{
	const char *colon, *end;
	uint16_t port;

	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return -1;
		if (parse_port(end + 2, &port) < 0 ||
		    parse_ip(s + 1, (size_t)(end - s - 1), port, out) < 0)
			return -1;
		/* Brackets are for IPv6 only (RFC 3986 §3.2.2). */
		if (out->ss_family != AF_INET6) {
			memset(out, 0, sizeof(*out));
			return -1;
		}
		return 0;
	}
	/* Without brackets only IPv4 is unambiguous: exactly one colon. */
	colon = strchr(s, ':');
	if (colon == NULL || strchr(colon + 1, ':') != NULL)
		return -1;
	if (parse_port(colon + 1, &port) < 0 ||
	    parse_ip(s, (size_t)(colon - s), port, out) < 0)
		return -1;
	return 0;
}

const char *config_format_addr(const struct sockaddr *sa, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN];
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;

	if (len == 0)
		return buf;
	/* Copied out: sa may point into any kind of sockaddr buffer. */
	if (sa->sa_family == AF_INET) {
		memcpy(&in4, sa, sizeof(in4));
		inet_ntop(AF_INET, &in4.sin_addr, ip, sizeof(ip));
		snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(in4.sin_port));
	} else if (sa->sa_family == AF_INET6) {
		memcpy(&in6, sa, sizeof(in6));
		inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(in6.sin6_port));
	} else {
		snprintf(buf, len, "(none)");
	}
	return buf;
}

void config_own_origins(const struct sockaddr_storage *listen, const char *scheme,
    char (*out)[256])
{
	char host[INET6_ADDRSTRLEN + 8];
	uint16_t port = ntohs(listen->ss_family == AF_INET6 ?
	    ((const struct sockaddr_in6 *)listen)->sin6_port :
	    ((const struct sockaddr_in *)listen)->sin_port);

	config_format_addr((const struct sockaddr *)listen, host, sizeof(host));
	snprintf(out[0], sizeof(*out), "%s://%s", scheme, host);
	snprintf(out[1], sizeof(*out), "%s://localhost:%u", scheme, port);
}

/* ---- value parsers: one per kind of value ---- */

static int walk(struct cfg_ctx *x, const struct cfg_section *sec, void *base,
    json_t *obj, const char *path);

static void *field(void *base, const struct cfg_key *k)
{
	return (char *)base + k->off;
}

static int p_object(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	return walk(x, k->arg, field(base, k), v, path);
}

/* 1..size-1 bytes, no control characters. */
static int p_string(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	size_t n;

	if (!json_is_string(v))
		return fail(x, path, "expected a string");
	n = json_string_length(v);
	if (n == 0 || n >= k->size)
		return fail(x, path, "expected 1 to %zu characters", k->size - 1);
	if (has_control(json_string_value(v)))
		return fail(x, path, "control characters are not allowed");
	memcpy(field(base, k), json_string_value(v), n + 1);
	return 0;
}

/* A file or folder; relative ones are taken from the config file's folder,
 * so the daemon finds them whatever its working directory is. */
static int p_path(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	const char *s;
	int n;

	if (!json_is_string(v) || json_string_length(v) == 0)
		return fail(x, path, "expected a file path");
	s = json_string_value(v);
	if (s[0] == '/')
		n = snprintf(field(base, k), k->size, "%s", s);
	else
		n = snprintf(field(base, k), k->size, "%s/%s", x->c->dir, s);
	if (n < 0 || (size_t)n >= k->size)
		return fail(x, path, "path too long");
	return 0;
}

/* Store width follows the field: uint32_t or uint64_t. */
static int p_uint(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	json_int_t i;

	if (!json_is_integer(v) || (i = json_integer_value(v)) < 0 ||
	    (uint64_t)i < k->min || (uint64_t)i > k->max)
		return fail(x, path, "expected an integer from %" PRIu64 " to %" PRIu64,
		    k->min, k->max);
	if (k->size == sizeof(uint64_t))
		*(uint64_t *)field(base, k) = (uint64_t)i;
	else
		*(uint32_t *)field(base, k) = (uint32_t)i;
	return 0;
}

static int p_bool(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	if (!json_is_boolean(v))
		return fail(x, path, "expected true or false");
	*(bool *)field(base, k) = json_is_true(v);
	return 0;
}

static int p_enum(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	const struct cfg_name *t;
	char list[128];

	if (json_is_string(v))
		for (t = k->arg; t->name; t++)
			if (strcmp(t->name, json_string_value(v)) == 0) {
				memcpy(field(base, k), &t->value, sizeof(int));
				return 0;
			}
	enum_list(list, sizeof(list), k->arg);
	return fail(x, path, "expected %s", list);
}

static int p_hostport(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	if (!json_is_string(v) ||
	    config_parse_hostport(json_string_value(v), field(base, k)) < 0)
		return fail(x, path,
		    "expected \"ip:port\" like \"127.0.0.1:3478\" or \"[::1]:3478\"");
	return 0;
}

/* An address other hosts send to: the wildcard is not one. */
static int p_ip(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct sockaddr_storage *ss = field(base, k);

	if (!json_is_string(v) ||
	    parse_ip(json_string_value(v), json_string_length(v), 0, ss) < 0)
		return fail(x, path,
		    "expected an IP address like \"192.0.2.10\" or \"2001:db8::10\"");
	if (addr_is_unspecified(ss))
		return fail(x, path, "must be a concrete address, not 0.0.0.0 or ::");
	return 0;
}

static int p_ip_or_null(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	if (json_is_null(v)) {
		memset(field(base, k), 0, sizeof(struct sockaddr_storage));
		return 0;
	}
	return p_ip(x, k, base, v, path);
}

static int p_realm(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	if (!json_is_string(v) || !realm_ok(json_string_value(v)))
		return fail(x, path,
		    "expected 1 to 127 printable characters without '\"' or '\\'");
	return p_string(x, k, base, v, path);
}

/* A DNS name for the TURN URLs handed to clients: letters, digits, '-'
 * and '.', so it can go into a URL unescaped. */
static int p_hostname(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '.'))
			break;
	if (s == NULL || i == 0 || s[i] != '\0' || s[0] == '.' || s[0] == '-')
		return fail(x, path, "expected a DNS name like \"turn.example.com\"");
	return p_string(x, k, base, v, path);
}

/* A user name as useradd(8) takes it by default: [a-z_][a-z0-9_-]*, 1 to
 * 31 characters. */
static int p_user_name(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	size_t i;

	for (i = 0; s != NULL && s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_' ||
		    (i > 0 && ((s[i] >= '0' && s[i] <= '9') || s[i] == '-'))))
			break;
	if (s == NULL || i == 0 || s[i] != '\0' || i >= k->size)
		return fail(x, path, "expected a user name of 1 to %zu characters "
		    "[a-z_][a-z0-9_-]*", k->size - 1);
	return p_string(x, k, base, v, path);
}

static int p_log_level(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	int level = json_is_string(v) ? log_level_parse(json_string_value(v)) : -1;

	if (level < 0)
		return fail(x, path,
		    "expected \"error\", \"warning\", \"info\" or \"debug\"");
	*(int *)field(base, k) = level;
	return 0;
}

static int p_redis_url(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	const char *s = json_is_string(v) ? json_string_value(v) : "";

	if (strncmp(s, "redis://", 8) != 0 && strncmp(s, "rediss://", 9) != 0)
		return fail(x, path,
		    "expected a URL like \"redis://127.0.0.1:6379\" or \"rediss://...\"");
	return p_string(x, k, base, v, path);
}

static int p_port_range(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct config_turn *t = base;
	const char *s, *end;
	unsigned long lo, hi;

	(void)k;
	s = json_is_string(v) ? json_string_value(v) : "";
	if (parse_digits(s, &end, &lo) < 0 || *end != '-' ||
	    parse_digits(end + 1, &end, &hi) < 0 || *end != '\0')
		return fail(x, path, "expected a string like \"49152-65535\"");
	/* Below 1024 are the ports only root may bind, where other
	 * services of the host live. */
	if (lo < 1024 || lo > hi || hi > 65535)
		return fail(x, path, "ports must satisfy 1024 <= first <= last <= 65535");
	t->port_min = (uint16_t)lo;
	t->port_max = (uint16_t)hi;
	return 0;
}

static const struct cfg_section listen_section;
static const struct cfg_section local_backend_section;
static const struct cfg_section jwt_backend_section;

static int p_turn_listen(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct config_turn *t = base;
	char sub[CFG_PATH_MAX];
	json_t *e;
	size_t i;

	(void)k;
	if (!json_is_array(v) || json_array_size(v) < 1 ||
	    json_array_size(v) > CONFIG_MAX_LISTEN)
		return fail(x, path, "expected an array of 1 to %d listeners like "
		    "{\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"}",
		    CONFIG_MAX_LISTEN);
	/* The file's list replaces the default listeners, it does not add. */
	memset(t->listen, 0, sizeof(t->listen));
	t->nlisten = 0;
	json_array_foreach(v, i, e) {
		path_index(sub, path, i);
		if (walk(x, &listen_section, &t->listen[i], e, sub) < 0)
			return -1;
		t->nlisten = i + 1;
	}
	return 0;
}

static int p_static_users(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct config_turn *t = base;
	struct turn_static_user *u;
	char sub[CFG_PATH_MAX];
	const char *name;
	json_t *pw;

	(void)k;
	if (!json_is_object(v))
		return fail(x, path, "expected an object of user names to passwords");
	if (json_object_size(v) > CONFIG_MAX_STATIC_USERS)
		return fail(x, path, "at most %d users", CONFIG_MAX_STATIC_USERS);
	memset(t->static_users, 0, sizeof(t->static_users));
	t->nstatic_users = 0;
	json_object_foreach(v, name, pw) {
		path_key(sub, path, name);
		if (!user_name_ok(name))
			return fail(x, sub, "user names are 1 to %d printable "
			    "characters without ':'", TURN_ID_MAX - 1);
		/* Call credentials start so; a static user there would be
		 * unreachable, which is surely not what was meant. */
		if (strncmp(name, "gh1.", 4) == 0)
			return fail(x, sub, "names starting with \"gh1.\" are reserved");
		if (!json_is_string(pw) || json_string_length(pw) == 0 ||
		    json_string_length(pw) >= TURN_PASSWORD_MAX)
			return fail(x, sub, "expected a password of 1 to %d characters",
			    TURN_PASSWORD_MAX - 1);
		u = &t->static_users[t->nstatic_users++];
		memcpy(u->name, name, strlen(name) + 1);
		memcpy(u->password, json_string_value(pw), json_string_length(pw) + 1);
	}
	return 0;
}

static int cidr_list(struct cfg_ctx *x, json_t *v, const char *path,
    struct peer_cidr *list, size_t *n)
{
	char sub[CFG_PATH_MAX];
	json_t *e;
	size_t i;

	if (!json_is_array(v) || json_array_size(v) > PEER_POLICY_MAX_CIDRS)
		return fail(x, path, "expected an array of at most %d CIDR strings",
		    PEER_POLICY_MAX_CIDRS);
	*n = 0;
	json_array_foreach(v, i, e) {
		path_index(sub, path, i);
		if (!json_is_string(e) || peer_cidr_parse(json_string_value(e), &list[i]) < 0)
			return fail(x, sub, "expected a CIDR like \"10.0.0.0/8\" or "
			    "\"fd00::/8\" (host bits zero)");
		*n = i + 1;
	}
	return 0;
}

/* True when the two prefixes share an address. */
static bool cidr_overlaps(const struct peer_cidr *a, const struct peer_cidr *b)
{
	unsigned bits = a->prefix_len < b->prefix_len ? a->prefix_len : b->prefix_len;
	unsigned full = bits / 8, rest = bits % 8;
	uint8_t mask;

	if (memcmp(a->addr, b->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xff << (8 - rest));
	return (a->addr[full] & mask) == (b->addr[full] & mask);
}

/* Ranges that no allow_peers entry may open: the host itself, "this
 * host", link-local (cloud metadata services) and group addresses. A
 * private media server is a legitimate exception; these never are. */
static const char *const never_allowed[] = {
	"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4",
	"255.255.255.255/32", "::1/128", "fe80::/10", "ff00::/8",
};

/* Nor, for an entry written in IPv6, the spaces that embed an IPv4
 * address (mapped, compatible, NAT64, 6to4, Teredo): an allow there would
 * open an IPv4 range by another spelling, which an IPv4 entry should
 * name. (IPv4 entries are stored IPv4-mapped, hence the split.) */
static const char *const never_allowed_v6[] = {
	"::/96", "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96",
	"64:ff9b:1::/48", "2002::/16", "2001::/32",
};

static const char *allow_overlap(const struct peer_cidr *c, bool v6)
{
	struct peer_cidr never;
	size_t j;

	for (j = 0; j < sizeof(never_allowed) / sizeof(never_allowed[0]); j++)
		if (peer_cidr_parse(never_allowed[j], &never) == 0 && cidr_overlaps(c, &never))
			return never_allowed[j];
	for (j = 0; v6 && j < sizeof(never_allowed_v6) / sizeof(never_allowed_v6[0]); j++)
		if (peer_cidr_parse(never_allowed_v6[j], &never) == 0 &&
		    cidr_overlaps(c, &never))
			return never_allowed_v6[j];
	return NULL;
}

static int p_allow_peers(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct config_turn *t = base;
	char sub[CFG_PATH_MAX];
	const char *hit;
	size_t i;

	(void)k;
	if (cidr_list(x, v, path, t->peers.allow, &t->peers.nallow) < 0)
		return -1;
	for (i = 0; i < t->peers.nallow; i++) {
		hit = allow_overlap(&t->peers.allow[i],
		    strchr(json_string_value(json_array_get(v, i)), ':') != NULL);
		if (hit != NULL) {
			path_index(sub, path, i);
			return fail(x, sub, "overlaps %s, which the relay never reaches", hit);
		}
	}
	return 0;
}

static int p_deny_peers(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct config_turn *t = base;

	(void)k;
	return cidr_list(x, v, path, t->peers.deny, &t->peers.ndeny);
}

static int p_origins(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct config_signaling *s = base;
	char sub[CFG_PATH_MAX];
	json_t *e;
	size_t i;

	(void)k;
	if (!json_is_array(v) || json_array_size(v) > CONFIG_MAX_ORIGINS)
		return fail(x, path, "expected an array of at most %d origins",
		    CONFIG_MAX_ORIGINS);
	s->norigins = 0;
	json_array_foreach(v, i, e) {
		path_index(sub, path, i);
		if (!json_is_string(e) || !origin_ok(json_string_value(e)) ||
		    json_string_length(e) >= sizeof(s->allowed_origins[0]))
			return fail(x, sub, "expected an origin like "
			    "\"https://example.com:8443\" (scheme, host, optional port; no path)");
		memcpy(s->allowed_origins[i], json_string_value(e), json_string_length(e) + 1);
		s->norigins = i + 1;
	}
	return 0;
}

/* The user and groups claim names a JWT backend reads unless told. */
static void backend_jwt_defaults(struct config_backend *b)
{
	snprintf(b->user_claim, sizeof(b->user_claim), "sub");
	snprintf(b->groups_claim, sizeof(b->groups_claim), "groups");
}

static const struct cfg_key backend_type_key = {
	.name = "type", .parse = p_enum,
	.off = offsetof(struct config_backend, type), .arg = backend_names,
};

/* The type decides which keys the rest of the object may have, so it is
 * read first. */
static int p_backends(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct config_identity *id = base;
	struct config_backend *b;
	char sub[CFG_PATH_MAX], tpath[CFG_PATH_MAX];
	json_t *e, *type;
	size_t i;

	(void)k;
	if (!json_is_array(v) || json_array_size(v) < 1 ||
	    json_array_size(v) > CONFIG_MAX_BACKENDS)
		return fail(x, path, "expected an array of 1 to %d backends",
		    CONFIG_MAX_BACKENDS);
	memset(id->backends, 0, sizeof(id->backends));
	id->nbackends = 0;
	json_array_foreach(v, i, e) {
		b = &id->backends[i];
		path_index(sub, path, i);
		if (!json_is_object(e))
			return fail(x, sub, "expected an object");
		if ((type = json_object_get(e, "type")) == NULL)
			return fail(x, sub, "missing \"type\" (\"local\" or \"jwt\")");
		path_key(tpath, sub, "type");
		if (p_enum(x, &backend_type_key, b, type, tpath) < 0)
			return -1;
		backend_jwt_defaults(b);
		if (walk(x, b->type == CONFIG_BACKEND_JWT ? &jwt_backend_section :
		    &local_backend_section, b, e, sub) < 0)
			return -1;
		id->nbackends = i + 1;
	}
	return 0;
}

/* ---- the key tables ---- */

static const struct cfg_key tls_keys[] = {
	{ .name = "cert", .parse = p_path, .off = offsetof(struct config_tls, cert),
	  .size = PATH_MAX },
	{ .name = "key", .parse = p_path, .off = offsetof(struct config_tls, key),
	  .size = PATH_MAX },
	{ .name = NULL },
};
static const struct cfg_section tls_section = { .keys = tls_keys };

static void signaling_after(void *base)
{
	struct config_signaling *s = base;

	s->has_tls = s->tls.cert[0] != '\0' || s->tls.key[0] != '\0';
}

static const struct cfg_key signaling_keys[] = {
	{ .name = "listen", .parse = p_hostport,
	  .off = offsetof(struct config_signaling, listen) },
	{ .name = "allowed_origins", .parse = p_origins },
	{ .name = "calls_per_minute", .parse = p_uint,
	  .off = offsetof(struct config_signaling, calls_per_minute),
	  .size = sizeof(uint32_t), .min = 1, .max = 1000000 },
	{ .name = "connections_per_source", .parse = p_uint,
	  .off = offsetof(struct config_signaling, connections_per_source),
	  .size = sizeof(uint32_t), .min = 1, .max = WS_MAX_CONNS },
	{ .name = "logins_per_source", .parse = p_uint,
	  .off = offsetof(struct config_signaling, logins_per_source),
	  .size = sizeof(uint32_t), .min = 1, .max = LOGIN_QUEUE_SIGNALING_MAX },
	{ .name = "tls", .parse = p_object,
	  .off = offsetof(struct config_signaling, tls), .arg = &tls_section },
	{ .name = NULL },
};
static const struct cfg_section signaling_section = {
	.keys = signaling_keys, .after = signaling_after,
};

static const struct cfg_key listen_keys[] = {
	{ .name = "addr", .parse = p_hostport, .off = offsetof(struct config_listen, addr) },
	{ .name = "transport", .parse = p_enum,
	  .off = offsetof(struct config_listen, transport), .arg = transport_names },
	{ .name = NULL },
};
static const char *const listen_required[] = { "addr", "transport", NULL };
static const struct cfg_section listen_section = {
	.keys = listen_keys, .required = listen_required,
};

static const struct cfg_key limits_keys[] = {
	{ .name = "allocations_total", .parse = p_uint,
	  .off = offsetof(struct config_turn_limits, allocations_total),
	  .size = sizeof(uint32_t), .min = 1, .max = UINT32_MAX },
	{ .name = "allocations_per_user", .parse = p_uint,
	  .off = offsetof(struct config_turn_limits, allocations_per_user),
	  .size = sizeof(uint32_t), .min = 1, .max = UINT32_MAX },
	{ .name = "permissions_per_allocation", .parse = p_uint,
	  .off = offsetof(struct config_turn_limits, permissions_per_allocation),
	  .size = sizeof(uint32_t), .min = 1, .max = UINT32_MAX },
	{ .name = "channels_per_allocation", .parse = p_uint,
	  .off = offsetof(struct config_turn_limits, channels_per_allocation),
	  .size = sizeof(uint32_t), .min = 1, .max = UINT32_MAX },
	{ .name = "bytes_per_s_per_allocation", .parse = p_uint,
	  .off = offsetof(struct config_turn_limits, bytes_per_s_per_allocation),
	  .size = sizeof(uint64_t), .min = 1, .max = INT64_MAX },
	{ .name = "auth_failures_per_source", .parse = p_uint,
	  .off = offsetof(struct config_turn_limits, auth_failures_per_source),
	  .size = sizeof(uint32_t), .min = 1, .max = UINT32_MAX },
	{ .name = "connections_per_source", .parse = p_uint,
	  .off = offsetof(struct config_turn_limits, connections_per_source),
	  .size = sizeof(uint32_t), .min = 1, .max = CONFIG_MAX_TURN_CONNS },
	{ .name = NULL },
};
static const struct cfg_section limits_section = { .keys = limits_keys };

static void turn_after(void *base)
{
	struct config_turn *t = base;

	t->has_tls = t->tls.cert[0] != '\0' || t->tls.key[0] != '\0';
	t->has_external_ip = t->external_ip.ss_family != 0;
}

static const struct cfg_key turn_keys[] = {
	{ .name = "listen", .parse = p_turn_listen },
	{ .name = "relay_ip", .parse = p_ip, .off = offsetof(struct config_turn, relay_ip) },
	{ .name = "external_ip", .parse = p_ip_or_null,
	  .off = offsetof(struct config_turn, external_ip) },
	{ .name = "public_host", .parse = p_hostname,
	  .off = offsetof(struct config_turn, public_host),
	  .size = sizeof(((struct config_turn *)0)->public_host) },
	{ .name = "port_range", .parse = p_port_range },
	{ .name = "static_users", .parse = p_static_users },
	{ .name = "max_lifetime_s", .parse = p_uint,
	  .off = offsetof(struct config_turn, max_lifetime_s),
	  .size = sizeof(uint32_t), .min = 60, .max = 86400 },
	/* Its upper bound is max_lifetime_s: checked in config_validate(). */
	{ .name = "default_lifetime_s", .parse = p_uint,
	  .off = offsetof(struct config_turn, default_lifetime_s),
	  .size = sizeof(uint32_t), .min = 60, .max = 86400 },
	{ .name = "limits", .parse = p_object,
	  .off = offsetof(struct config_turn, limits), .arg = &limits_section },
	{ .name = "nonce_lifetime_s", .parse = p_uint,
	  .off = offsetof(struct config_turn, nonce_lifetime_s),
	  .size = sizeof(uint32_t), .min = 5, .max = 3600 },
	{ .name = "media_only", .parse = p_bool, .off = offsetof(struct config_turn, media_only) },
	{ .name = "allow_peers", .parse = p_allow_peers },
	{ .name = "deny_peers", .parse = p_deny_peers },
	{ .name = "tls", .parse = p_object,
	  .off = offsetof(struct config_turn, tls), .arg = &tls_section },
	{ .name = NULL },
};
static const struct cfg_section turn_section = {
	.keys = turn_keys, .after = turn_after,
};

/* The "type" entry repeats backend_type_key: C wants constants here. */
static const struct cfg_key local_backend_keys[] = {
	{ .name = "type", .parse = p_enum, .off = offsetof(struct config_backend, type),
	  .arg = backend_names },
	{ .name = NULL },
};
static const struct cfg_section local_backend_section = {
	.keys = local_backend_keys,
};

static const struct cfg_key jwt_backend_keys[] = {
	{ .name = "type", .parse = p_enum, .off = offsetof(struct config_backend, type),
	  .arg = backend_names },
	{ .name = "issuer", .parse = p_string,
	  .off = offsetof(struct config_backend, issuer),
	  .size = sizeof(((struct config_backend *)0)->issuer) },
	{ .name = "audience", .parse = p_string,
	  .off = offsetof(struct config_backend, audience),
	  .size = sizeof(((struct config_backend *)0)->audience) },
	{ .name = "jwks_file", .parse = p_path,
	  .off = offsetof(struct config_backend, jwks_file), .size = PATH_MAX },
	{ .name = "user_claim", .parse = p_string,
	  .off = offsetof(struct config_backend, user_claim),
	  .size = sizeof(((struct config_backend *)0)->user_claim) },
	{ .name = "groups_claim", .parse = p_string,
	  .off = offsetof(struct config_backend, groups_claim),
	  .size = sizeof(((struct config_backend *)0)->groups_claim) },
	{ .name = NULL },
};
static const char *const jwt_required[] = { "issuer", "audience", "jwks_file", NULL };
static const struct cfg_section jwt_backend_section = {
	.keys = jwt_backend_keys, .required = jwt_required,
};

static const struct cfg_key identity_keys[] = {
	{ .name = "mfa", .parse = p_enum, .off = offsetof(struct config_identity, mfa),
	  .arg = mfa_names },
	{ .name = "backends", .parse = p_backends },
	{ .name = "secrets_key_file", .parse = p_path,
	  .off = offsetof(struct config_identity, secrets_key_file), .size = PATH_MAX },
	{ .name = NULL },
};
static const struct cfg_section identity_section = { .keys = identity_keys };

/* "policy" and "admin" are objects in the file but plain fields of
 * struct config, so their keys are offsets into struct config. */
static const struct cfg_key policy_keys[] = {
	{ .name = "file", .parse = p_path, .off = offsetof(struct config, policy_file),
	  .size = PATH_MAX },
	{ .name = NULL },
};
static const struct cfg_section policy_section = { .keys = policy_keys };

static void admin_after(void *base)
{
	struct config *c = base;

	c->admin_has_tls = c->admin_tls.cert[0] != '\0' || c->admin_tls.key[0] != '\0';
}

static const struct cfg_key admin_keys[] = {
	{ .name = "listen", .parse = p_hostport, .off = offsetof(struct config, admin_listen) },
	{ .name = "token_ttl_s", .parse = p_uint, .off = offsetof(struct config, admin_token_ttl_s),
	  .size = sizeof(uint32_t), .min = 10, .max = 3600 },
	{ .name = "tls", .parse = p_object, .off = offsetof(struct config, admin_tls),
	  .arg = &tls_section },
	{ .name = NULL },
};
static const struct cfg_section admin_section = { .keys = admin_keys, .after = admin_after };

static void syslog_after(void *base)
{
	((struct config_log *)base)->has_syslog = true;
}

static const struct cfg_key syslog_keys[] = {
	{ .name = "address", .parse = p_hostport, .off = offsetof(struct config_log, syslog_addr) },
	{ .name = "ca_file", .parse = p_path, .off = offsetof(struct config_log, syslog_ca_file),
	  .size = PATH_MAX },
	{ .name = "transport", .parse = p_enum,
	  .off = offsetof(struct config_log, syslog_transport), .arg = syslog_transport_names },
	{ .name = "max_message_bytes", .parse = p_uint,
	  .off = offsetof(struct config_log, syslog_max_message_bytes), .size = sizeof(uint32_t),
	  .min = CONFIG_SYSLOG_MSG_MIN, .max = CONFIG_SYSLOG_MSG_MAX_STREAM },
	{ .name = NULL },
};
static const char *const syslog_required[] = { "address", NULL };
static const struct cfg_section syslog_section = {
	.keys = syslog_keys, .required = syslog_required, .after = syslog_after,
};

static const struct cfg_key log_keys[] = {
	{ .name = "level", .parse = p_log_level, .off = offsetof(struct config_log, level) },
	{ .name = "audit_file", .parse = p_path, .off = offsetof(struct config_log, audit_file),
	  .size = PATH_MAX },
	/* Same struct: the syslog fields sit in struct config_log itself. */
	{ .name = "syslog", .parse = p_object, .off = 0, .arg = &syslog_section },
	{ .name = NULL },
};
static const struct cfg_section log_section = { .keys = log_keys };

static const struct cfg_key registry_keys[] = {
	{ .name = "type", .parse = p_enum, .off = offsetof(struct config_registry, type),
	  .arg = registry_names },
	{ .name = "url", .parse = p_redis_url, .off = offsetof(struct config_registry, url),
	  .size = sizeof(((struct config_registry *)0)->url) },
	{ .name = "node", .parse = p_string, .off = offsetof(struct config_registry, node),
	  .size = sizeof(((struct config_registry *)0)->node) },
	{ .name = NULL },
};
static const struct cfg_section registry_section = { .keys = registry_keys };

_Static_assert(sizeof(enum alert_response) == sizeof(int), "enum size");

static int p_webhook(struct cfg_ctx *x, const struct cfg_key *k, void *base,
    json_t *v, const char *path)
{
	struct sockaddr_storage ss;
	char p[256];
	const char *why = "expected a string";

	if (!json_is_string(v) || webhook_parse(json_string_value(v), &ss, p, sizeof(p), &why) != 0)
		return fail(x, path, "%s", why);
	return p_string(x, k, base, v, path);
}

/* One detector: {"window_s": 60, "threshold": 20, "response": "block_source",
 * "block_s": 300}; a threshold of 0 turns it off. */
static const struct cfg_key alert_rule_keys[] = {
	{ .name = "window_s", .parse = p_uint, .off = offsetof(struct alert_rule, window_s),
	  .size = sizeof(uint32_t), .min = 1, .max = 86400 },
	{ .name = "threshold", .parse = p_uint, .off = offsetof(struct alert_rule, threshold),
	  .size = sizeof(uint32_t), .min = 0, .max = 1000000000 },
	{ .name = "response", .parse = p_enum, .off = offsetof(struct alert_rule, response),
	  .arg = response_names },
	{ .name = "block_s", .parse = p_uint, .off = offsetof(struct alert_rule, block_s),
	  .size = sizeof(uint32_t), .min = 1, .max = 86400 },
	{ .name = NULL },
};
static const struct cfg_section alert_rule_section = { .keys = alert_rule_keys };

#define ALERT_KEY(key, kind) { .name = key, .parse = p_object, \
	.off = offsetof(struct alerts_config, rules) + (kind) * sizeof(struct alert_rule), \
	.arg = &alert_rule_section }
static const struct cfg_key alerts_keys[] = {
	ALERT_KEY("password_guessing_user", ALERT_PASSWORD_GUESSING_USER),
	ALERT_KEY("password_guessing_source", ALERT_PASSWORD_GUESSING_SOURCE),
	ALERT_KEY("credential_stuffing", ALERT_CREDENTIAL_STUFFING),
	ALERT_KEY("relay_scanning", ALERT_RELAY_SCANNING),
	ALERT_KEY("traffic_spike", ALERT_TRAFFIC_SPIKE),
	ALERT_KEY("signaling_flood", ALERT_SIGNALING_FLOOD),
	ALERT_KEY("call_fanout", ALERT_CALL_FANOUT),
	{ .name = "spike_factor", .parse = p_uint, .off = offsetof(struct alerts_config, spike_factor),
	  .size = sizeof(uint32_t), .min = 0, .max = 1000 },
	{ .name = "webhook", .parse = p_webhook, .off = offsetof(struct alerts_config, webhook),
	  .size = sizeof(((struct alerts_config *)0)->webhook) },
	{ .name = NULL },
};
static const struct cfg_section alerts_section = { .keys = alerts_keys };

static const struct cfg_key top_keys[] = {
	{ .name = "realm", .parse = p_realm, .off = offsetof(struct config, realm),
	  .size = sizeof(((struct config *)0)->realm) },
	{ .name = "state_dir", .parse = p_path, .off = offsetof(struct config, state_dir),
	  .size = PATH_MAX },
	{ .name = "run_as", .parse = p_user_name, .off = offsetof(struct config, run_as),
	  .size = sizeof(((struct config *)0)->run_as) },
	{ .name = "tls", .parse = p_object, .off = offsetof(struct config, tls),
	  .arg = &tls_section },
	{ .name = "signaling", .parse = p_object, .off = offsetof(struct config, signaling),
	  .arg = &signaling_section },
	{ .name = "turn", .parse = p_object, .off = offsetof(struct config, turn),
	  .arg = &turn_section },
	{ .name = "identity", .parse = p_object, .off = offsetof(struct config, identity),
	  .arg = &identity_section },
	{ .name = "policy", .parse = p_object, .off = 0, .arg = &policy_section },
	{ .name = "admin", .parse = p_object, .off = 0, .arg = &admin_section },
	{ .name = "log", .parse = p_object, .off = offsetof(struct config, log),
	  .arg = &log_section },
	{ .name = "registry", .parse = p_object, .off = offsetof(struct config, registry),
	  .arg = &registry_section },
	{ .name = "alerts", .parse = p_object, .off = offsetof(struct config, alerts),
	  .arg = &alerts_section },
	{ .name = NULL },
};
static const struct cfg_section top_section = { .keys = top_keys };

/* Every key of obj must be in the section's table; each is parsed into
 * base in file order, so the first error in the file is the one shown. */
static int walk(struct cfg_ctx *x, const struct cfg_section *sec, void *base,
    json_t *obj, const char *path)
{
	char sub[CFG_PATH_MAX];
	const struct cfg_key *k;
	const char *const *req;
	const char *name;
	json_t *v;

	if (!json_is_object(obj))
		return fail(x, path, "expected an object");
	json_object_foreach(obj, name, v) {
		path_key(sub, path, name);
		for (k = sec->keys; k->name != NULL && strcmp(k->name, name) != 0; k++)
			;
		if (k->name == NULL)
			return fail(x, sub, "unknown key");
		if (k->parse(x, k, base, v, sub) < 0)
			return -1;
	}
	for (req = sec->required; req != NULL && *req != NULL; req++)
		if (json_object_get(obj, *req) == NULL)
			return fail(x, path, "missing \"%s\"", *req);
	if (sec->after != NULL)
		sec->after(base);
	return 0;
}

/* ---- defaults, load, validate ---- */

/* The defaults are constants known to parse. */
static void default_addr(struct sockaddr_storage *ss, const char *s)
{
	(void)config_parse_hostport(s, ss);
}

void config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->dir, sizeof(c->dir), ".");
	snprintf(c->realm, sizeof(c->realm), "gatehouse.local");
	snprintf(c->state_dir, sizeof(c->state_dir), "./gatehouse-data");

	default_addr(&c->signaling.listen, "127.0.0.1:8443");

	c->turn.listen[0].transport = CONFIG_UDP;
	default_addr(&c->turn.listen[0].addr, "127.0.0.1:3478");
	c->turn.listen[1].transport = CONFIG_TCP;
	default_addr(&c->turn.listen[1].addr, "127.0.0.1:3478");
	c->turn.listen[2].transport = CONFIG_TLS;
	default_addr(&c->turn.listen[2].addr, "127.0.0.1:5349");
	c->turn.nlisten = 3;
	(void)parse_ip("127.0.0.1", strlen("127.0.0.1"), 0, &c->turn.relay_ip);
	c->turn.port_min = 49152;
	c->turn.port_max = 65535;
	c->turn.max_lifetime_s = 3600;
	c->turn.default_lifetime_s = 600;
	c->turn.nonce_lifetime_s = 600;
	c->turn.limits.allocations_total = 10000;
	c->turn.limits.allocations_per_user = 16;
	c->turn.limits.permissions_per_allocation = 32;
	c->turn.limits.channels_per_allocation = 32;
	c->turn.limits.bytes_per_s_per_allocation = (uint64_t)2 * 1024 * 1024;
	c->turn.limits.auth_failures_per_source = 10;
	c->turn.limits.connections_per_source = 32;

	c->identity.mfa = CONFIG_MFA_REQUIRED;
	c->identity.backends[0].type = CONFIG_BACKEND_LOCAL;
	c->identity.nbackends = 1;

	default_addr(&c->admin_listen, "127.0.0.1:9443");
	c->admin_token_ttl_s = 900;
	c->signaling.calls_per_minute = HUB_CALLS_PER_MIN;
	c->signaling.logins_per_source = LOGIN_QUEUE_PER_SOURCE;
	c->signaling.connections_per_source = WS_CONNS_PER_SOURCE;
	alerts_config_defaults(&c->alerts);
	c->log.level = LOG_INFO;
	c->registry.type = CONFIG_REGISTRY_MEMORY;
}

/* The folder relative paths are taken from. It is made absolute when the
 * file was named with a folder, so a later chdir() cannot change what the
 * paths mean; a bare file name means the working directory, ".". */
static int config_dir(const char *path, char *dir)
{
	const char *slash = strrchr(path, '/');
	char buf[PATH_MAX];
	size_t n;

	if (slash == NULL) {
		snprintf(dir, PATH_MAX, ".");
		return 0;
	}
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= sizeof(buf)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(buf, path, n);
	buf[n] = '\0';
	return realpath(buf, dir) != NULL ? 0 : -1;
}

int config_load(const char *path, struct config *c, char *err, size_t errlen)
{
	struct cfg_ctx x = { c, err, errlen };
	json_error_t je;
	json_t *root;
	char *p;
	int rc = -1;

	config_defaults(c);
	root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
	if (root == NULL) {
		/* jansson quotes the text near the error, which may be any
		 * bytes of the file; keep the message to one printable line. */
		for (p = je.text; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
				*p = '?';
		/* jansson names the file itself when it cannot open it. */
		if (json_error_code(&je) == json_error_cannot_open_file || je.line < 1)
			snprintf(err, errlen, "%s", je.text);
		else
			snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
		return -1;
	}
	if (!json_is_object(root)) {
		fail(&x, path, "expected a JSON object at the top");
		goto out;
	}
	if (config_dir(path, c->dir) < 0) {
		fail(&x, path, "cannot resolve its folder: %s", strerror(errno));
		goto out;
	}
	/* Like every other relative path, the default state folder belongs
	 * to the config file, not to wherever the daemon was started. */
	if (snprintf(c->state_dir, sizeof(c->state_dir), "%s/gatehouse-data", c->dir) >=
	    (int)sizeof(c->state_dir)) {
		fail(&x, path, "folder name too long");
		goto out;
	}
	if (walk(&x, &top_section, c, root, "") < 0)
		goto out;
	rc = config_validate(c, err, errlen);
out:
	json_decref(root);
	return rc;
}

/* ---- cross-field rules ---- */

static int check_tls_pair(struct cfg_ctx *x, const char *path, const struct config_tls *t)
{
	if ((t->cert[0] == '\0') != (t->key[0] == '\0'))
		return fail(x, path, "cert and key must be given together");
	return 0;
}

static int check_basics(struct cfg_ctx *x, const struct config *c)
{
	if (!realm_ok(c->realm))
		return fail(x, "realm",
		    "expected 1 to 127 printable characters without '\"' or '\\'");
	if (c->state_dir[0] == '\0')
		return fail(x, "state_dir", "required");
	if (check_tls_pair(x, "tls", &c->tls) < 0 ||
	    check_tls_pair(x, "signaling.tls", &c->signaling.tls) < 0 ||
	    check_tls_pair(x, "turn.tls", &c->turn.tls) < 0 ||
	    check_tls_pair(x, "admin.tls", &c->admin_tls) < 0)
		return -1;
	return 0;
}

static int check_turn(struct cfg_ctx *x, const struct config *c)
{
	const struct config_turn *t = &c->turn;
	const struct config_turn_limits *l = &t->limits;

	if (t->nlisten < 1 || t->nlisten > CONFIG_MAX_LISTEN)
		return fail(x, "turn.listen", "expected 1 to %d listeners", CONFIG_MAX_LISTEN);
	if (t->relay_ip.ss_family != AF_INET && t->relay_ip.ss_family != AF_INET6)
		return fail(x, "turn.relay_ip", "required");
	if (addr_is_unspecified(&t->relay_ip))
		return fail(x, "turn.relay_ip", "must be a concrete address, not 0.0.0.0 or ::");
	if (t->has_external_ip && addr_is_unspecified(&t->external_ip))
		return fail(x, "turn.external_ip", "must be a concrete address, not 0.0.0.0 or ::");
	if (t->port_min < 1024 || t->port_min > t->port_max)
		return fail(x, "turn.port_range", "ports must satisfy 1024 <= first <= last <= 65535");
	if (t->max_lifetime_s < 60 || t->max_lifetime_s > 86400)
		return fail(x, "turn.max_lifetime_s", "expected an integer from 60 to 86400");
	if (t->default_lifetime_s < 60 || t->default_lifetime_s > t->max_lifetime_s)
		return fail(x, "turn.default_lifetime_s",
		    "expected an integer from 60 to turn.max_lifetime_s (%" PRIu32 ")",
		    t->max_lifetime_s);
	if (l->allocations_total == 0 || l->allocations_per_user == 0 ||
	    l->permissions_per_allocation == 0 || l->channels_per_allocation == 0 ||
	    l->bytes_per_s_per_allocation == 0 || l->auth_failures_per_source == 0 ||
	    l->connections_per_source == 0)
		return fail(x, "turn.limits", "every limit must be a positive integer");
	if (t->nstatic_users > CONFIG_MAX_STATIC_USERS)
		return fail(x, "turn.static_users", "at most %d users", CONFIG_MAX_STATIC_USERS);
	if (t->peers.nallow > PEER_POLICY_MAX_CIDRS || t->peers.ndeny > PEER_POLICY_MAX_CIDRS)
		return fail(x, "turn", "at most %d CIDRs in allow_peers and deny_peers",
		    PEER_POLICY_MAX_CIDRS);
	return 0;
}

/* Every socket the daemon will listen on, for the checks below. */
struct cfg_listener {
	char name[32];
	bool stream; /* TCP socket: TURN tcp/tls, signaling, admin */
	const struct sockaddr_storage *addr;
};

static bool listeners_clash(const struct cfg_listener *a, const struct cfg_listener *b)
{
	if (a->stream != b->stream || addr_port(a->addr) != addr_port(b->addr))
		return false;
	/* A wildcard bind takes the port on every address of its family. */
	return addr_same_ip(a->addr, b->addr) ||
	    (a->addr->ss_family == b->addr->ss_family &&
	    (addr_is_unspecified(a->addr) || addr_is_unspecified(b->addr)));
}

static int check_listeners(struct cfg_ctx *x, const struct config *c)
{
	struct cfg_listener all[CONFIG_MAX_LISTEN + 2];
	char a[INET6_ADDRSTRLEN + 8];
	size_t n = 0, i, j;

	for (i = 0; i < c->turn.nlisten && i < CONFIG_MAX_LISTEN; i++) {
		snprintf(all[n].name, sizeof(all[n].name), "turn.listen[%zu]", i);
		all[n].stream = c->turn.listen[i].transport != CONFIG_UDP;
		all[n++].addr = &c->turn.listen[i].addr;
	}
	snprintf(all[n].name, sizeof(all[n].name), "signaling.listen");
	all[n].stream = true;
	all[n++].addr = &c->signaling.listen;
	snprintf(all[n].name, sizeof(all[n].name), "admin.listen");
	all[n].stream = true;
	all[n++].addr = &c->admin_listen;

	for (i = 0; i < n; i++) {
		if (all[i].addr->ss_family != AF_INET && all[i].addr->ss_family != AF_INET6)
			return fail(x, all[i].name, "missing address");
		if (i < c->turn.nlisten && (c->turn.listen[i].transport < CONFIG_UDP ||
		    c->turn.listen[i].transport > CONFIG_TLS))
			return fail(x, all[i].name, "unknown transport");
		for (j = 0; j < i; j++)
			if (listeners_clash(&all[i], &all[j]))
				return fail(x, all[i].name, "%s is already used by %s",
				    config_format_addr((const struct sockaddr *)all[i].addr,
				    a, sizeof(a)), all[j].name);
	}
	return 0;
}

/* Plain listeners are for loopback only (DESIGN.md). */
static int check_exposure(struct cfg_ctx *x, const struct config *c)
{
	bool top_cert = c->tls.cert[0] != '\0';
	bool turn_cert = top_cert || (c->turn.has_tls && c->turn.tls.cert[0] != '\0');
	char name[32];
	size_t i;

	/* Signaling and admin are served over TLS whenever they are not on
	 * loopback (and on loopback too when a certificate is configured);
	 * what cannot be allowed off loopback is having no certificate,
	 * since a self-signed one is only good for local testing. Either
	 * the top-level pair or the component's own will do. */
	if (!config_addr_is_loopback(&c->signaling.listen) && !top_cert &&
	    !(c->signaling.has_tls && c->signaling.tls.cert[0] != '\0'))
		return fail(x, "signaling.listen",
		    "a non-loopback listener needs TLS (set tls.cert and tls.key)");
	if (!config_addr_is_loopback(&c->admin_listen) && !top_cert &&
	    !(c->admin_has_tls && c->admin_tls.cert[0] != '\0'))
		return fail(x, "admin.listen",
		    "a non-loopback listener needs TLS (set tls.cert and tls.key)");

	for (i = 0; i < c->turn.nlisten && i < CONFIG_MAX_LISTEN; i++) {
		if (config_addr_is_loopback(&c->turn.listen[i].addr))
			continue;
		snprintf(name, sizeof(name), "turn.listen[%zu]", i);
		switch (c->turn.listen[i].transport) {
		case CONFIG_UDP:
			/* Allowed anywhere: every TURN request but Binding is
			 * integrity-protected (RFC 8489 §9.2) and the media it
			 * relays is DTLS-SRTP end to end, so TLS would hide
			 * little more than metadata; and UDP is the transport
			 * WebRTC media needs. */
			break;
		case CONFIG_TCP:
			/* TURN over TCP exists for networks that block UDP;
			 * those clients can use TLS just as well, so plain TCP
			 * would only add an unencrypted way in. */
			return fail(x, name, "plain TCP is only allowed on loopback; use \"tls\"");
		case CONFIG_TLS:
			if (!turn_cert)
				return fail(x, name, "a non-loopback TLS listener needs a "
				    "certificate (set tls.cert and tls.key)");
			break;
		default:
			return fail(x, name, "unknown transport");
		}
	}
	return 0;
}

static int check_identity(struct cfg_ctx *x, const struct config *c)
{
	const struct config_backend *b;
	char name[48];
	size_t i;

	if (c->identity.nbackends < 1 || c->identity.nbackends > CONFIG_MAX_BACKENDS)
		return fail(x, "identity.backends", "expected 1 to %d backends",
		    CONFIG_MAX_BACKENDS);
	for (i = 0; i < c->identity.nbackends; i++) {
		b = &c->identity.backends[i];
		snprintf(name, sizeof(name), "identity.backends[%zu]", i);
		if (b->type != CONFIG_BACKEND_JWT)
			continue;
		if (b->issuer[0] == '\0')
			return fail(x, name, "missing \"issuer\"");
		if (b->audience[0] == '\0')
			return fail(x, name, "missing \"audience\"");
		if (b->jwks_file[0] == '\0')
			return fail(x, name, "missing \"jwks_file\"");
		if (b->user_claim[0] == '\0' || b->groups_claim[0] == '\0')
			return fail(x, name, "claim names must not be empty");
	}
	return 0;
}

static int check_registry(struct cfg_ctx *x, const struct config *c)
{
	const struct config_registry *r = &c->registry;

	if (r->type == CONFIG_REGISTRY_REDIS && r->url[0] == '\0')
		return fail(x, "registry.url", "required when registry.type is \"redis\"");
	/* A url with the memory registry is most likely a half-done switch
	 * to Redis; running single-node by surprise would be worse. */
	if (r->type != CONFIG_REGISTRY_REDIS && (r->url[0] != '\0' || r->node[0] != '\0'))
		return fail(x, r->url[0] ? "registry.url" : "registry.node",
		    "only used when registry.type is \"redis\"");
	return 0;
}

static int check_log(struct cfg_ctx *x, const struct config *c)
{
	if (c->log.level < LOG_ERR || c->log.level > LOG_DEBUG)
		return fail(x, "log.level", "out of range");
	if (c->log.has_syslog && c->log.syslog_addr.ss_family != AF_INET &&
	    c->log.syslog_addr.ss_family != AF_INET6)
		return fail(x, "log.syslog", "missing \"address\"");
	if (c->log.has_syslog && (c->log.syslog_transport < CONFIG_SYSLOG_UDP ||
	    c->log.syslog_transport > CONFIG_SYSLOG_TLS))
		return fail(x, "log.syslog.transport", "out of range");
	if (c->log.has_syslog && c->log.syslog_max_message_bytes != 0 &&
	    (c->log.syslog_max_message_bytes < CONFIG_SYSLOG_MSG_MIN ||
	    c->log.syslog_max_message_bytes > (c->log.syslog_transport == CONFIG_SYSLOG_UDP ?
	    CONFIG_SYSLOG_MSG_MAX_UDP : CONFIG_SYSLOG_MSG_MAX_STREAM)))
		return fail(x, "log.syslog.max_message_bytes", c->log.syslog_transport ==
		    CONFIG_SYSLOG_UDP ? "expected an integer from %u to %u with \"udp\" (the "
		    "largest UDP payload)" : "expected an integer from %u to %u",
		    CONFIG_SYSLOG_MSG_MIN, c->log.syslog_transport == CONFIG_SYSLOG_UDP ?
		    CONFIG_SYSLOG_MSG_MAX_UDP : CONFIG_SYSLOG_MSG_MAX_STREAM);
	return 0;
}

static int (*const config_checks[])(struct cfg_ctx *, const struct config *) = {
	check_basics,
	check_turn,
	check_listeners,
	check_exposure,
	check_identity,
	check_registry,
	check_log,
};

int config_validate(const struct config *c, char *err, size_t errlen)
{
	struct cfg_ctx x = { NULL, err, errlen };
	size_t i;

	for (i = 0; i < sizeof(config_checks) / sizeof(config_checks[0]); i++)
		if (config_checks[i](&x, c) < 0)
			return -1;
	return 0;
}
