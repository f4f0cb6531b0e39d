/* "gatehouse ctl ...": the admin API (gateway/admin.h, docs/admin-api.md)
 * from a shell.
 *
 * HTTP: one HTTP/1.1 request per connection ("Connection: close"), over a
 * plain socket for loopback URLs or OpenSSL TLS otherwise. The server's
 * certificate is checked against the system CA store (or --cacert) and
 * against the URL's host name or IP address. Every read is bounded: the
 * answer's head by HEAD_MAX, its body by BODY_MAX, every socket operation
 * by IO_TIMEOUT_S, and the token file, the policy file and each prompt by
 * caps of their own.
 *
 * The token: "login" keeps it in a file only the user can read, together
 * with the URL that issued it; it is sent to that URL only, so that a
 * mistyped --url never hands it to another server. It is never printed.
 *
 * Secrets (passwords, TOTP codes, the token) are written into request
 * bodies by a small JSON writer over buffers that this file owns, so each
 * can be wiped with OPENSSL_cleanse() once sent. */
#include "gateway/cli_ctl.h"
#include "gateway/prompt.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "gateway/admin.h"
#include "gateway/config.h"
#include "gateway/http_resp.h"
#include "gateway/log.h"
#include "gateway/secret.h"
#include "policy/policy.h"
#include "signaling/identity.h"
#include "signaling/password.h"
#include "signaling/totp.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define HEAD_MAX (64 * 1024)          /* status line and headers of an answer */
#define BODY_MAX (8 * 1024 * 1024)    /* an answer's body */
#define READ_CHUNK 16384
#define IO_TIMEOUT_S 30               /* a login waits for argon2id on the server */
#define CONNECT_TIMEOUT_MS 10000
#define URL_MAX 512
#define HOST_MAX 256
#define PREFIX_MAX 200
#define TOKEN_MAX 128                 /* the server's are 43 characters */
#define TOKEN_FILE_MAX 2048
#define TOKEN_FILE_NAME "gatehouse-admin-token"
#define NAME_CAP (IDENTITY_NAME_MAX + 1) /* one more, to see a longer one */
#define PW_CAP (PASSWORD_MAX_LEN + 2)
#define CODE_CAP 32
#define JSON_BODY_CAP (16 * 1024)     /* a password escaped, 16 groups */
#define SEGMENT_MAX 127               /* admin.c takes path segments below 128 */
#define QUERY_VALUE_MAX 63
#define CELL_MAX 256
#define MAX_COLUMNS 8
#define MAX_WORDS 8

/* ---- options and commands ---------------------------------------------- */

enum opt_id {
	O_CONFIG, O_URL, O_CACERT, O_INSECURE, O_JSON, O_STDIN, O_GROUP, O_TOTP,
	O_SINCE, O_UNTIL, O_USER, O_EVENT, O_LIMIT, O_COUNT
};

#define OPT(id) (1u << (id))
#define COMMON_OPTS (OPT(O_CONFIG) | OPT(O_URL) | OPT(O_CACERT) | OPT(O_INSECURE) | \
	OPT(O_JSON))
#define AUDIT_OPTS (OPT(O_SINCE) | OPT(O_UNTIL) | OPT(O_USER) | OPT(O_EVENT) | OPT(O_LIMIT))

static const struct option_def {
	const char *name;
	const char *alias;     /* NULL: none */
	bool takes_value;
} option_defs[O_COUNT] = {
	[O_CONFIG] = { "--config", "-c", true },
	[O_URL] = { "--url", NULL, true },
	[O_CACERT] = { "--cacert", NULL, true },
	[O_INSECURE] = { "--insecure", NULL, false },
	[O_JSON] = { "--json", NULL, false },
	[O_STDIN] = { "--password-stdin", NULL, false },
	[O_GROUP] = { "--group", NULL, true },
	[O_TOTP] = { "--totp", NULL, false },
	[O_SINCE] = { "--since", NULL, true },
	[O_UNTIL] = { "--until", NULL, true },
	[O_USER] = { "--user", NULL, true },
	[O_EVENT] = { "--event", NULL, true },
	[O_LIMIT] = { "--limit", NULL, true },
};

struct url {
	bool tls;
	bool host_is_ip;
	bool ipv6;
	bool loopback;
	char host[HOST_MAX];      /* a DNS name or an IP literal, no brackets */
	uint16_t port;
	char prefix[PREFIX_MAX];  /* the path before "/api", no trailing '/' */
	char text[URL_MAX];       /* normalized: scheme://host:port[prefix] */
};

/* The token file: the URL that issued the token, the user, the token. */
struct saved {
	char url[URL_MAX];
	char user[NAME_CAP];
	char token[TOKEN_MAX + 1];
};

struct ctl;

struct command {
	const char *word;
	const char *sub;          /* second word, or NULL */
	size_t min_args, max_args;
	unsigned opts;            /* options beyond COMMON_OPTS */
	int (*run)(struct ctl *c);
	/* Simple actions on one named thing (run = cmd_action): */
	const char *method;
	const char *path;         /* the argument is appended */
	const char *suffix;       /* after the argument */
	const char *noun, *done;  /* "user alice disabled" */
	bool revokes_own;         /* done to yourself, your token is gone */
};

/* One invocation. */
struct ctl {
	const struct command *cmd;
	const char *opt[O_COUNT]; /* value, "" for a flag; NULL: not given */
	const char *groups[IDENTITY_MAX_GROUPS];
	size_t ngroups;
	const char *words[MAX_WORDS];
	size_t nwords;
	const char *arg;          /* NAME, ID or FILE of the command */
	struct url url;
	char token_path[PATH_MAX];
	struct saved saved;
	bool has_saved;
	int tty;                  /* /dev/tty once opened, else -1 */
};

struct resp {
	int status;
	char *buf;                /* owned: all that was read */
	size_t len, cap;
	char *body;               /* into buf; NUL-terminated */
	size_t body_len;
	json_t *json;             /* owned: the body, when it is a JSON object */
};

static const char usage_text[] =
    "usage: gatehouse ctl <command> [options]\n"
    "\n"
    "commands:\n"
    "  login [USER]             log in (password and TOTP code); keeps the token\n"
    "  logout                   revoke the token and remove its file\n"
    "  status | health\n"
    "  sessions                 signaling sessions; sessions close ID\n"
    "  calls                    live calls; calls end ID\n"
    "  users                    local users\n"
    "  users add NAME [--group G]... [--totp]   (asks for your TOTP code too)\n"
    "  users disable|enable|unlock|delete NAME\n"
    "  users passwd NAME        new password (asks for your TOTP code too)\n"
    "  users totp NAME          new TOTP secret (asks for your TOTP code)\n"
    "  policy get               print the running policy\n"
    "  policy validate FILE | policy put FILE\n"
    "  audit [--since MS] [--until MS] [--user U] [--event E] [--limit N]\n"
    "\n"
    "options (anywhere):\n"
    "  -c FILE                  take the URL from the configuration's admin.listen\n"
    "  --url URL                http://IP:PORT (loopback only) or https://HOST:PORT\n"
    "  --cacert FILE            trust this CA (or self-signed certificate) file\n"
    "  --insecure               do not check the server's certificate\n"
    "  --json                   print the API's JSON answer\n"
    "  --password-stdin         read passwords and TOTP codes from stdin, one\n"
    "                           line each, in the order they would be asked\n"
    "\n"
    "Without -c or --url: the URL of the last login, else http://127.0.0.1:9443.\n"
    "The token is kept in $GATEHOUSE_TOKEN_FILE, else\n"
    "$XDG_RUNTIME_DIR/" TOKEN_FILE_NAME ", else ~/." TOKEN_FILE_NAME ".\n";

static int usage(FILE *out, int code)
{
	fputs(usage_text, out);
	return code;
}

static const char *esc(char *buf, size_t cap, const char *s)
{
	return log_escape(buf, cap, (const uint8_t *)s, strlen(s));
}

static int bad_arg(const char *what, const char *arg)
{
	char shown[CELL_MAX];

	fprintf(stderr, "gatehouse: %s '%s'\n", what, esc(shown, sizeof(shown), arg));
	return EXIT_USAGE;
}

/* Output that did not reach its reader (a closed pipe, a full disk) is a
 * failure of the command. */
static int finish(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "gatehouse: writing output: %s\n", strerror(errno));
		return EXIT_RUNTIME;
	}
	return code;
}

/* ---- URLs ---------------------------------------------------------------- */

/* The configuration's one loopback rule, for an address in binary. */
static bool ip_is_loopback(int family, const void *a)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, a, sizeof(struct in_addr));
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof(struct in6_addr));
	return config_addr_is_loopback(&ss);
}

static bool dns_name_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-'))
			return false;
	return i > 0 && s[0] != '-' && s[0] != '.';
}

/* Parses http[s]://HOST[:PORT][/PREFIX] into *u. 0, or -1 with err. */
static int url_parse(const char *s, struct url *u, char *err, size_t errlen)
{
	uint8_t addr[16];
	char ip[INET6_ADDRSTRLEN];
	const char *p, *host, *end;
	unsigned long port;
	size_t n, i;

	memset(u, 0, sizeof(*u));
	if (strncasecmp(s, "https://", 8) == 0) {
		u->tls = true;
		p = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		p = s + 7;
	} else {
		snprintf(err, errlen, "expected http://HOST:PORT or https://HOST[:PORT]");
		return -1;
	}
	if (*p == '[') {
		host = p + 1;
		if ((end = strchr(host, ']')) == NULL) {
			snprintf(err, errlen, "an IPv6 address needs its closing ']'");
			return -1;
		}
		n = (size_t)(end - host);
		p = end + 1;
		u->ipv6 = true;
	} else {
		host = p;
		n = strcspn(p, ":/?#@");
		p += n;
	}
	if (n == 0 || n >= sizeof(u->host)) {
		snprintf(err, errlen, "missing or too long host");
		return -1;
	}
	memcpy(u->host, host, n);
	u->host[n] = '\0';
	u->port = u->tls ? 443 : 80;
	if (*p == ':') {
		p++;
		for (port = 0, i = 0; p[i] >= '0' && p[i] <= '9' && i < 6; i++)
			port = port * 10 + (unsigned long)(p[i] - '0');
		if (i == 0 || i == 6 || port == 0 || port > 65535) {
			snprintf(err, errlen, "the port is 1 to 65535");
			return -1;
		}
		u->port = (uint16_t)port;
		p += i;
	}
	if ((*p != '\0' && *p != '/') || strpbrk(p, "?#@ \t\r\n") != NULL) {
		snprintf(err, errlen, "no user, query or fragment belongs in the URL");
		return -1;
	}
	n = strlen(p);
	while (n > 0 && p[n - 1] == '/')
		n--;
	if (n >= sizeof(u->prefix)) {
		snprintf(err, errlen, "the path is too long");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f) {
			snprintf(err, errlen, "the path has a character that needs escaping");
			return -1;
		}
	}
	memcpy(u->prefix, p, n);
	u->prefix[n] = '\0';

	/* IP literals are written back in their canonical form, so that two
	 * spellings of one URL compare equal against the token file. */
	if (u->ipv6) {
		if (inet_pton(AF_INET6, u->host, addr) != 1) {
			snprintf(err, errlen, "'[...]' must hold an IPv6 address");
			return -1;
		}
		inet_ntop(AF_INET6, addr, ip, sizeof(ip));
		snprintf(u->host, sizeof(u->host), "%s", ip);
		u->host_is_ip = true;
		u->loopback = ip_is_loopback(AF_INET6, addr);
	} else if (inet_pton(AF_INET, u->host, addr) == 1) {
		u->host_is_ip = true;
		u->loopback = ip_is_loopback(AF_INET, addr);
	} else if (!dns_name_ok(u->host)) {
		snprintf(err, errlen, "the host is neither an IP address nor a DNS name");
		return -1;
	} else {
		for (i = 0; u->host[i] != '\0'; i++)
			if (u->host[i] >= 'A' && u->host[i] <= 'Z')
				u->host[i] = (char)(u->host[i] - 'A' + 'a');
		u->loopback = strcmp(u->host, "localhost") == 0;
	}
	/* The admin listener is plain only on loopback (DESIGN.md); anywhere
	 * else the password and token would cross the network in clear. */
	if (!u->tls && !u->loopback) {
		snprintf(err, errlen, "http:// is for loopback addresses only; use https://");
		return -1;
	}
	snprintf(u->text, sizeof(u->text), "%s://%s%s%s:%u%s", u->tls ? "https" : "http",
	    u->ipv6 ? "[" : "", u->host, u->ipv6 ? "]" : "", (unsigned)u->port, u->prefix);
	return 0;
}

/* The URL of a configured admin.listen: plain on loopback, TLS otherwise,
 * as the daemon serves it. A wildcard address is reached over loopback. */
static int url_from_listen(const struct sockaddr_storage *ss, struct url *u, char *err,
    size_t errlen)
{
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
	char ip[INET6_ADDRSTRLEN], text[URL_MAX];
	bool loopback = config_addr_is_loopback(ss), v6 = ss->ss_family == AF_INET6;
	unsigned port;

	if (v6) {
		memcpy(&in6, ss, sizeof(in6));
		if (IN6_IS_ADDR_UNSPECIFIED(&in6.sin6_addr))
			in6.sin6_addr = in6addr_loopback;
		inet_ntop(AF_INET6, &in6.sin6_addr, ip, sizeof(ip));
		port = ntohs(in6.sin6_port);
	} else if (ss->ss_family == AF_INET) {
		memcpy(&in4, ss, sizeof(in4));
		if (in4.sin_addr.s_addr == htonl(INADDR_ANY))
			in4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		inet_ntop(AF_INET, &in4.sin_addr, ip, sizeof(ip));
		port = ntohs(in4.sin_port);
	} else {
		snprintf(err, errlen, "admin.listen: no address");
		return -1;
	}
	snprintf(text, sizeof(text), "%s://%s%s%s:%u", loopback ? "http" : "https",
	    v6 ? "[" : "", ip, v6 ? "]" : "", port);
	return url_parse(text, u, err, errlen);
}

/* -c FILE, --url, the last login's URL, or the embedded default. */
static int url_choose(struct ctl *c)
{
	struct config *cfg;
	char err[600];
	int rc = 0;

	if (c->opt[O_URL] != NULL) {
		if (url_parse(c->opt[O_URL], &c->url, err, sizeof(err)) == 0)
			return 0;
		bad_arg("invalid --url", c->opt[O_URL]);
		fprintf(stderr, "gatehouse: %s\n", err);
		return EXIT_USAGE;
	}
	if (c->opt[O_CONFIG] == NULL && c->has_saved &&
	    url_parse(c->saved.url, &c->url, err, sizeof(err)) == 0)
		return 0;
	if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
		fprintf(stderr, "gatehouse: out of memory\n");
		return EXIT_RUNTIME;
	}
	if (c->opt[O_CONFIG] == NULL) {
		config_defaults(cfg);
	} else if (config_load(c->opt[O_CONFIG], cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", c->opt[O_CONFIG], err);
		rc = EXIT_USAGE;
		goto out;
	}
	if (url_from_listen(&cfg->admin_listen, &c->url, err, sizeof(err)) != 0) {
		fprintf(stderr, "gatehouse: %s\n", err);
		rc = EXIT_USAGE;
	}
out:
	free(cfg);
	return rc;
}

/* ---- the token file ------------------------------------------------------ */

static bool token_ok(const char *t)
{
	size_t i;

	for (i = 0; t[i] != '\0'; i++)
		if (!((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
		    (t[i] >= '0' && t[i] <= '9') || t[i] == '-' || t[i] == '_'))
			return false;
	return i > 0 && i <= TOKEN_MAX;
}

/* $GATEHOUSE_TOKEN_FILE, $XDG_RUNTIME_DIR/gatehouse-admin-token (a
 * per-user tmpfs, gone at logout), ~/.gatehouse-admin-token. */
static int token_path_find(struct ctl *c)
{
	const char *env = getenv("GATEHOUSE_TOKEN_FILE"), *home;
	struct passwd *pw;
	int n;

	if (env != NULL && env[0] != '\0') {
		n = snprintf(c->token_path, sizeof(c->token_path), "%s", env);
	} else if ((env = getenv("XDG_RUNTIME_DIR")) != NULL && env[0] == '/') {
		n = snprintf(c->token_path, sizeof(c->token_path), "%s/" TOKEN_FILE_NAME, env);
	} else {
		home = getenv("HOME");
		if ((home == NULL || home[0] != '/') && (pw = getpwuid(geteuid())) != NULL)
			home = pw->pw_dir;
		if (home == NULL || home[0] != '/') {
			fprintf(stderr, "gatehouse: no place for the token: set "
			    "GATEHOUSE_TOKEN_FILE or HOME\n");
			return EXIT_RUNTIME;
		}
		n = snprintf(c->token_path, sizeof(c->token_path), "%s/." TOKEN_FILE_NAME, home);
	}
	if (n < 0 || (size_t)n >= sizeof(c->token_path)) {
		fprintf(stderr, "gatehouse: the token file's path is too long\n");
		return EXIT_RUNTIME;
	}
	return 0;
}

/* Takes the next '\n'-terminated line of the token file into out. */
static bool saved_line(const char **p, const char *end, char *out, size_t cap)
{
	const char *nl = memchr(*p, '\n', (size_t)(end - *p));
	size_t n;

	if (nl == NULL)
		return false;
	n = (size_t)(nl - *p);
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p = nl + 1;
	return true;
}

/* Loads the token file if there is one. 0 (c->has_saved tells whether a
 * token was found), or an exit code after a message. quiet: a file that
 * cannot be used is no error (a login replaces it). */
static int saved_load(struct ctl *c, bool quiet)
{
	char buf[TOKEN_FILE_MAX + 1], shown[CELL_MAX];
	const char *p = buf, *why = NULL;
	struct stat st;
	size_t used = 0;
	ssize_t n;
	int fd;

	c->has_saved = false;
	/* O_NOFOLLOW and fstat on the descriptor: nothing can be swapped in
	 * between the check and the read. O_NONBLOCK: a FIFO does not hang. */
	fd = open(c->token_path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		why = strerror(errno);
		goto out;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		why = "not a regular file";
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
		why = "someone else may read it; remove it and log in again";
		goto out;
	}
	while (used < sizeof(buf) - 1) {
		n = read(fd, buf + used, sizeof(buf) - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			why = strerror(errno);
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (!saved_line(&p, buf + used, c->saved.url, sizeof(c->saved.url)) ||
	    !saved_line(&p, buf + used, c->saved.user, sizeof(c->saved.user)) ||
	    !saved_line(&p, buf + used, c->saved.token, sizeof(c->saved.token)) ||
	    !token_ok(c->saved.token)) {
		why = "damaged; remove it and log in again";
		OPENSSL_cleanse(&c->saved, sizeof(c->saved));
		goto out;
	}
	c->has_saved = true;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	if (why == NULL || quiet)
		return 0;
	fprintf(stderr, "gatehouse: %s: %s\n", esc(shown, sizeof(shown), c->token_path), why);
	return EXIT_RUNTIME;
}

/* Written atomically with mode 0600 (file_write_atomic: a temporary file
 * made by mkstemp, fsync, rename), so no one else can read it even for a
 * moment and a crash never leaves half a token. 0 or -1 after a message. */
static int saved_store(const struct ctl *c, const struct saved *s)
{
	char buf[TOKEN_FILE_MAX], shown[CELL_MAX];
	int n, rc = -1;

	n = snprintf(buf, sizeof(buf), "%s\n%s\n%s\n", s->url, s->user, s->token);
	if (n < 0 || (size_t)n >= sizeof(buf)) {
		fprintf(stderr, "gatehouse: the token does not fit its file\n");
		goto out;
	}
	if (file_write_atomic(c->token_path, buf, (size_t)n, 0600) != 0) {
		fprintf(stderr, "gatehouse: %s: cannot write: %s\n",
		    esc(shown, sizeof(shown), c->token_path), strerror(errno));
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

static void saved_remove(struct ctl *c)
{
	char shown[CELL_MAX];

	if (unlink(c->token_path) != 0 && errno != ENOENT)
		fprintf(stderr, "gatehouse: %s: cannot remove: %s\n",
		    esc(shown, sizeof(shown), c->token_path), strerror(errno));
	OPENSSL_cleanse(&c->saved, sizeof(c->saved));
	c->has_saved = false;
}

/* ---- prompts ------------------------------------------------------------- */

/* The signal that interrupted a prompt, delivered again once the terminal
 * echoes (as cli_user.c and OpenBSD readpassphrase(3) do). */
/* One answer: the next line of stdin with --password-stdin, else asked on
 * /dev/tty. 0, or an exit code after a message. */
static int ask(struct ctl *c, const char *prompt, bool echo, char *buf, size_t cap,
    const char *what)
{
	int n;

	if (c->opt[O_STDIN] != NULL)
		return prompt_read_line(STDIN_FILENO, buf, cap, what, "stdin") < 0 ? EXIT_USAGE : 0;
	if (c->tty < 0)
		c->tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (c->tty < 0) {
		fprintf(stderr, "gatehouse: no terminal to ask for %s on; use "
		    "--password-stdin\n", what);
		return EXIT_USAGE;
	}
	n = prompt_read_tty(c->tty, prompt, echo, buf, cap, what);
	if (n == -2)
		fprintf(stderr, "gatehouse: /dev/tty is not a terminal; use --password-stdin\n");
	return n < 0 ? EXIT_USAGE : 0;
}

/* A TOTP code; spaces (as authenticator apps group the digits) dropped. */
static int ask_code(struct ctl *c, const char *prompt, char code[CODE_CAP])
{
	size_t i, n = 0;
	int rc;

	if ((rc = ask(c, prompt, true, code, CODE_CAP, "the TOTP code")) != 0)
		return rc;
	for (i = 0; code[i] != '\0'; i++)
		if (code[i] != ' ')
			code[n++] = code[i];
	code[n] = '\0';
	for (i = 0; i < n; i++)
		if (code[i] < '0' || code[i] > '9')
			break;
	if (i != n || n != TOTP_DIGITS) {
		OPENSSL_cleanse(code, CODE_CAP);
		fprintf(stderr, "gatehouse: a TOTP code is %d digits\n", TOTP_DIGITS);
		return EXIT_USAGE;
	}
	return 0;
}

/* A new password for user name: once from stdin, or twice on the
 * terminal; its length checked as the server will. */
static int ask_new_password(struct ctl *c, const char *name, char pw[PW_CAP])
{
	char again[PW_CAP], prompt[CELL_MAX + 32], shown[CELL_MAX];
	size_t len;
	int rc;

	snprintf(prompt, sizeof(prompt), "New password for %s: ", esc(shown, sizeof(shown), name));
	if ((rc = ask(c, prompt, false, pw, PW_CAP, "the password")) != 0)
		goto out;
	if (c->opt[O_STDIN] == NULL) {
		if ((rc = ask(c, "Repeat password: ", false, again, sizeof(again),
		    "the password")) != 0)
			goto out;
		if (strlen(again) != strlen(pw) || CRYPTO_memcmp(again, pw, strlen(pw)) != 0) {
			fprintf(stderr, "gatehouse: the passwords do not match\n");
			rc = EXIT_USAGE;
			goto out;
		}
	}
	len = strlen(pw);
	if (len < PASSWORD_MIN_LEN || len > PASSWORD_MAX_LEN) {
		fprintf(stderr, "gatehouse: a password must have %d to %d bytes\n",
		    PASSWORD_MIN_LEN, PASSWORD_MAX_LEN);
		rc = EXIT_USAGE;
	}
out:
	OPENSSL_cleanse(again, sizeof(again));
	if (rc != 0)
		OPENSSL_cleanse(pw, PW_CAP);
	return rc;
}

/* ---- request bodies ------------------------------------------------------ */

/* A JSON writer over a caller's buffer (which it wipes), for bodies that
 * carry secrets. Overflow is sticky and reported once at the end. */
struct jw {
	char *p;
	size_t cap, len;
	bool full;
};

static void jw_put(struct jw *w, const char *s, size_t n)
{
	if (w->full || n >= w->cap - w->len) {
		w->full = true;
		return;
	}
	memcpy(w->p + w->len, s, n);
	w->len += n;
	w->p[w->len] = '\0';
}

static void jw_raw(struct jw *w, const char *s)
{
	jw_put(w, s, strlen(s));
}

/* RFC 8259 §7: '"', '\\' and the control characters are escaped; other
 * bytes pass as they are (UTF-8 is the server's to check). */
static void jw_str(struct jw *w, const char *s)
{
	char u[8];
	size_t i;

	jw_raw(w, "\"");
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch == '"' || ch == '\\') {
			u[0] = '\\';
			u[1] = (char)ch;
			jw_put(w, u, 2);
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(u, sizeof(u), "\\u%04x", ch);
			jw_put(w, u, 6);
		} else {
			jw_put(w, s + i, 1);
		}
	}
	jw_raw(w, "\"");
	OPENSSL_cleanse(u, sizeof(u));
}

/* ---- HTTP over TCP or TLS ------------------------------------------------ */

struct conn {
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
};

static void conn_close(struct conn *k)
{
	if (k->ssl != NULL) {
		/* Best effort: the answer is already complete. */
		SSL_shutdown(k->ssl);
		SSL_free(k->ssl);
	}
	SSL_CTX_free(k->ctx);
	if (k->fd >= 0)
		close(k->fd);
	k->ssl = NULL;
	k->ctx = NULL;
	k->fd = -1;
}

/* Connects with a timeout, then makes the socket blocking with send and
 * receive timeouts. The fd, or -1 with errno. */
static int tcp_connect(const struct addrinfo *ai)
{
	struct timeval tv = { IO_TIMEOUT_S, 0 };
	struct pollfd pfd;
	socklen_t elen = sizeof(int);
	int fd, flags, e = 0, n;

	fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
	    ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS)
			goto fail;
		pfd.fd = fd;
		pfd.events = POLLOUT;
		do
			n = poll(&pfd, 1, CONNECT_TIMEOUT_MS);
		while (n < 0 && errno == EINTR);
		if (n == 0)
			errno = ETIMEDOUT;
		if (n <= 0)
			goto fail;
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &elen) != 0)
			goto fail;
		if (e != 0) {
			errno = e;
			goto fail;
		}
	}
	if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) != 0)
		goto fail;
	return fd;
fail:
	e = errno;
	close(fd);
	errno = e;
	return -1;
}

static void tls_report(const struct ctl *c, SSL *ssl, const char *doing)
{
	unsigned long e = ERR_peek_last_error();
	long v = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;
	char buf[256];

	if (v != X509_V_OK)
		fprintf(stderr, "gatehouse: %s: the server's certificate is not trusted: %s "
		    "(--cacert FILE names the CA to trust)\n", c->url.text,
		    X509_verify_cert_error_string(v));
	else if (e != 0)
		fprintf(stderr, "gatehouse: %s: %s: %s\n", c->url.text, doing,
		    ERR_error_string(e, buf));
	else if (errno == EAGAIN || errno == EWOULDBLOCK)
		fprintf(stderr, "gatehouse: %s: %s: no answer within %d s\n", c->url.text, doing,
		    IO_TIMEOUT_S);
	else
		fprintf(stderr, "gatehouse: %s: %s: %s\n", c->url.text, doing,
		    errno != 0 ? strerror(errno) : "the connection was closed");
	ERR_clear_error();
}

/* RFC 6125 via OpenSSL: the certificate must name the URL's host (DNS
 * name, without partial wildcards) or its IP address. SNI carries DNS
 * names only (RFC 6066 §3). */
static int tls_start(const struct ctl *c, struct conn *k)
{
	X509_VERIFY_PARAM *vp;
	char shown[CELL_MAX];

	ERR_clear_error();
	if ((k->ctx = SSL_CTX_new(TLS_client_method())) == NULL ||
	    SSL_CTX_set_min_proto_version(k->ctx, TLS1_2_VERSION) != 1)
		goto fail;
	if (c->opt[O_INSECURE] != NULL) {
		SSL_CTX_set_verify(k->ctx, SSL_VERIFY_NONE, NULL);
	} else {
		SSL_CTX_set_verify(k->ctx, SSL_VERIFY_PEER, NULL);
		if (c->opt[O_CACERT] != NULL) {
			if (SSL_CTX_load_verify_locations(k->ctx, c->opt[O_CACERT], NULL) != 1) {
				fprintf(stderr, "gatehouse: %s: cannot load CA certificates\n",
				    esc(shown, sizeof(shown), c->opt[O_CACERT]));
				ERR_clear_error();
				return -1;
			}
		} else if (SSL_CTX_set_default_verify_paths(k->ctx) != 1) {
			goto fail;
		}
	}
	if ((k->ssl = SSL_new(k->ctx)) == NULL || SSL_set_fd(k->ssl, k->fd) != 1)
		goto fail;
	if (!c->url.host_is_ip && SSL_set_tlsext_host_name(k->ssl, c->url.host) != 1)
		goto fail;
	if (c->opt[O_INSECURE] == NULL) {
		vp = SSL_get0_param(k->ssl);
		X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
		if ((c->url.host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, c->url.host) :
		    X509_VERIFY_PARAM_set1_host(vp, c->url.host, 0)) != 1)
			goto fail;
	}
	errno = 0;
	if (SSL_connect(k->ssl) != 1) {
		tls_report(c, k->ssl, "TLS handshake");
		return -1;
	}
	return 0;
fail:
	tls_report(c, NULL, "TLS set-up");
	return -1;
}

static int conn_open(const struct ctl *c, struct conn *k)
{
	struct addrinfo hints, *res = NULL, *ai;
	char port[8], shown[CELL_MAX];
	int rc, e = 0;

	k->fd = -1;
	k->ctx = NULL;
	k->ssl = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (c->url.host_is_ip ? AI_NUMERICHOST : 0);
	snprintf(port, sizeof(port), "%u", (unsigned)c->url.port);
	if ((rc = getaddrinfo(c->url.host, port, &hints, &res)) != 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", esc(shown, sizeof(shown), c->url.host),
		    gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL && k->fd < 0; ai = ai->ai_next)
		if ((k->fd = tcp_connect(ai)) < 0)
			e = errno;
	freeaddrinfo(res);
	if (k->fd < 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", c->url.text,
		    e == ETIMEDOUT ? "no answer to the connection request" : strerror(e));
		return -1;
	}
	if (c->url.tls && tls_start(c, k) != 0) {
		conn_close(k);
		return -1;
	}
	return 0;
}

static int conn_write(const struct ctl *c, struct conn *k, const char *p, size_t n)
{
	size_t done;
	ssize_t w;

	while (n > 0) {
		if (k->ssl != NULL) {
			ERR_clear_error();
			errno = 0;
			if (SSL_write_ex(k->ssl, p, n, &done) != 1) {
				tls_report(c, k->ssl, "sending");
				return -1;
			}
		} else {
			/* MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE. */
			w = send(k->fd, p, n, MSG_NOSIGNAL);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				fprintf(stderr, "gatehouse: %s: sending: %s\n", c->url.text,
				    errno == EAGAIN ? "timed out" : strerror(errno));
				return -1;
			}
			done = (size_t)w;
		}
		p += done;
		n -= done;
	}
	return 0;
}

/* Bytes read (> 0), 0 at the end of the stream, -1 after a message. Over
 * TLS the end must be a close_notify: an unannounced end could be a
 * truncation. */
static ssize_t conn_read(const struct ctl *c, struct conn *k, char *p, size_t n)
{
	size_t got;
	ssize_t r;
	int e;

	if (k->ssl == NULL) {
		do
			r = recv(k->fd, p, n, 0);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			fprintf(stderr, "gatehouse: %s: reading the answer: %s\n", c->url.text,
			    errno == EAGAIN ? "no answer in time" : strerror(errno));
		return r;
	}
	ERR_clear_error();
	errno = 0;
	if (SSL_read_ex(k->ssl, p, n, &got) == 1)
		return (ssize_t)got;
	e = SSL_get_error(k->ssl, 0);
	if (e == SSL_ERROR_ZERO_RETURN)
		return 0;
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		errno = EAGAIN;
	tls_report(c, k->ssl, "reading the answer");
	return -1;
}

/* ---- reading the answer ------------------------------------------------- */

static void resp_free(struct resp *r)
{
	/* A login's answer carries a token; wipe every answer alike. */
	if (r->buf != NULL)
		OPENSSL_cleanse(r->buf, r->cap);
	free(r->buf);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

/* Doubles the buffer, up to a head and a body of the largest sizes. */
static int resp_grow(struct resp *r)
{
	size_t want = r->cap == 0 ? 2 * READ_CHUNK : r->cap * 2;
	char *p;

	if (want > HEAD_MAX + BODY_MAX + 1)
		want = HEAD_MAX + BODY_MAX + 1;
	if (want <= r->cap)
		return HTTP_RESP_BODY_TOO_LARGE;
	if ((p = malloc(want)) == NULL)
		return HTTP_RESP_INVALID;
	if (r->buf != NULL) {
		memcpy(p, r->buf, r->len);
		OPENSSL_cleanse(r->buf, r->cap);
		free(r->buf);
	}
	r->buf = p;
	r->cap = want;
	return HTTP_RESP_OK;
}

static int resp_fail(const struct ctl *c, int rc)
{
	fprintf(stderr, "gatehouse: %s: %s\n", c->url.text,
	    rc == HTTP_RESP_MORE ? "the answer was cut short" :
	    rc == HTTP_RESP_BODY_TOO_LARGE ? "the answer's body is larger than 8 MiB" :
	    rc == HTTP_RESP_HEAD_TOO_LARGE ? "the answer's header is larger than 64 KiB" :
	    "the answer is not HTTP/1.1 as expected");
	return -1;
}

/* Reads one answer: its head, then Content-Length bytes, or to the end of
 * the stream (a chunked body is decoded then). Interim 1xx answers are
 * skipped. 0, or -1 after a message. */
static int resp_read(const struct ctl *c, struct conn *k, struct resp *r)
{
	struct http_resp_head h;
	bool eof = false, have_head = false;
	size_t blen = 0;
	ssize_t n;
	int rc;

	memset(&h, 0, sizeof(h));
	while (!eof) {
		if (r->len + 1 >= r->cap && (rc = resp_grow(r)) != HTTP_RESP_OK)
			return resp_fail(c, rc);
		n = conn_read(c, k, r->buf + r->len, r->cap - r->len - 1);
		if (n < 0)
			return -1;
		eof = n == 0;
		r->len += (size_t)n;
		while (!have_head) {
			rc = http_resp_head_parse(r->buf, r->len, HEAD_MAX, BODY_MAX, &h);
			if (rc == HTTP_RESP_MORE && !eof)
				break;
			if (rc != HTTP_RESP_OK)
				return resp_fail(c, rc);
			/* 101 would switch protocols, which was never asked. */
			if (h.status == 101)
				return resp_fail(c, HTTP_RESP_INVALID);
			if (h.status >= 200) {
				have_head = true;
				break;
			}
			memmove(r->buf, r->buf + h.head_len, r->len - h.head_len);
			r->len -= h.head_len;
		}
		if (!have_head)
			continue;
		blen = r->len - h.head_len;
		if (h.has_length && blen >= h.length) {
			blen = h.length;
			break;
		}
		if (h.has_length && eof)
			return resp_fail(c, HTTP_RESP_MORE);
		if (!h.chunked && blen > BODY_MAX)
			return resp_fail(c, HTTP_RESP_BODY_TOO_LARGE);
	}
	r->status = h.status;
	r->body = r->buf + h.head_len;
	if (h.chunked && (rc = http_resp_chunked_decode(r->body, blen, BODY_MAX, &blen)) !=
	    HTTP_RESP_OK)
		return resp_fail(c, rc);
	r->body[blen] = '\0';
	r->body_len = blen;
	return 0;
}

/* Appends to a request head; false when it no longer fits. */
static bool head_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static bool head_add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= cap - *len)
		return false;
	*len += (size_t)n;
	return true;
}

/* One request on a connection of its own. 0 with *r (free with
 * resp_free()), or -1 after a message. */
static int http_exchange(const struct ctl *c, const char *method, const char *target,
    const char *token, const char *body, size_t blen, struct resp *r)
{
	char head[2048 + PREFIX_MAX + TOKEN_MAX];
	struct conn k;
	bool has_body = strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0;
	bool ok;
	size_t n = 0;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	/* A POST or PUT says its body is JSON, so an empty one is "{}" (the
	 * endpoints without parameters ignore it). */
	if (has_body && blen == 0) {
		body = "{}";
		blen = 2;
	}
	/* No Origin header: this is no browser (admin.c applies the Origin
	 * rule to browsers' requests only). */
	ok = head_add(head, sizeof(head), &n, "%s %s HTTP/1.1\r\nHost: %s%s%s", method,
	    target, c->url.ipv6 ? "[" : "", c->url.host, c->url.ipv6 ? "]" : "");
	if (ok && c->url.port != (c->url.tls ? 443 : 80))
		ok = head_add(head, sizeof(head), &n, ":%u", (unsigned)c->url.port);
	ok = ok && head_add(head, sizeof(head), &n, "\r\nUser-Agent: gatehouse-ctl/%s\r\n"
	    "Accept: application/json\r\nConnection: close\r\n", GH_VERSION);
	if (ok && token != NULL)
		ok = head_add(head, sizeof(head), &n, "Authorization: Bearer %s\r\n", token);
	if (ok && has_body)
		ok = head_add(head, sizeof(head), &n, "Content-Type: application/json\r\n"
		    "Content-Length: %zu\r\n", blen);
	ok = ok && head_add(head, sizeof(head), &n, "\r\n");
	if (!ok) {
		fprintf(stderr, "gatehouse: the request is too long\n");
		goto out;
	}
	if (conn_open(c, &k) != 0)
		goto out;
	if (conn_write(c, &k, head, n) == 0 &&
	    (!has_body || conn_write(c, &k, body, blen) == 0) &&
	    resp_read(c, &k, r) == 0)
		rc = 0;
	conn_close(&k);
	if (rc != 0)
		resp_free(r);
out:
	OPENSSL_cleanse(head, sizeof(head));
	return rc;
}

/* ---- the API ------------------------------------------------------------- */

/* The saved token, if it belongs to this URL. 0, or an exit code after a
 * message that says to log in. */
static int need_login(const struct ctl *c)
{
	if (!c->has_saved) {
		fprintf(stderr, "gatehouse: not logged in to %s; log in with \"gatehouse ctl "
		    "login\"\n", c->url.text);
		return EXIT_RUNTIME;
	}
	if (strcmp(c->saved.url, c->url.text) != 0) {
		fprintf(stderr, "gatehouse: the saved token is for %s, not %s; log in there "
		    "first (gatehouse ctl login)\n", c->saved.url, c->url.text);
		return EXIT_RUNTIME;
	}
	return 0;
}

/* Sends one request to the API (path under /api, with the URL's prefix)
 * and turns every failure into a message: 0 with *r holding a 2xx answer
 * whose body is a JSON object, or an exit code. auth: send the saved
 * token, which is only ever sent to the URL that issued it. */
static int api(struct ctl *c, const char *method, const char *path, const char *query,
    const char *body, size_t blen, bool auth, struct resp *r)
{
	char target[PREFIX_MAX + 1024], msg[1024];
	json_t *m;
	json_error_t jerr;
	int n;

	memset(r, 0, sizeof(*r));
	if (auth && (n = need_login(c)) != 0)
		return n;
	n = snprintf(target, sizeof(target), "%s%s%s%s", c->url.prefix, path,
	    query != NULL && query[0] != '\0' ? "?" : "", query != NULL ? query : "");
	if (n < 0 || (size_t)n >= sizeof(target)) {
		fprintf(stderr, "gatehouse: the request is too long\n");
		return EXIT_USAGE;
	}
	if (c->url.tls && c->opt[O_INSECURE] != NULL)
		fprintf(stderr, "gatehouse: warning: --insecure: the server's certificate is "
		    "not checked\n");
	if (http_exchange(c, method, target, auth ? c->saved.token : NULL, body, blen, r) != 0)
		return EXIT_RUNTIME;
	r->json = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(r->json)) {
		json_decref(r->json);
		r->json = NULL;
	}
	if (r->status >= 200 && r->status < 300 && r->json != NULL)
		return 0;
	m = json_object_get(r->json, "message");
	if (json_is_string(m))
		esc(msg, sizeof(msg), json_string_value(m));
	else if (r->status >= 200 && r->status < 300)
		snprintf(msg, sizeof(msg), "the answer is not a JSON object");
	else
		snprintf(msg, sizeof(msg), "the server gave no error message");
	fprintf(stderr, "gatehouse: %s (%d)\n", msg, r->status);
	return EXIT_RUNTIME;
}

static void print_raw(const struct resp *r)
{
	fwrite(r->body, 1, r->body_len, stdout);
	if (r->body_len == 0 || r->body[r->body_len - 1] != '\n')
		putchar('\n');
}

/* A path segment from the command line: a user name, a session or call
 * id. Only characters that need no escaping in a path, and never "." or
 * "..", which would name another endpoint once normalized. */
static bool segment_ok(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		    (s[i] >= '0' && s[i] <= '9') || strchr("-._~@", s[i]) != NULL) ||
		    i >= SEGMENT_MAX)
			return false;
	return i > 0 && strcmp(s, ".") != 0 && strcmp(s, "..") != 0;
}

static int path_with(char *out, size_t cap, const char *pre, const char *arg,
    const char *suffix)
{
	if (!segment_ok(arg))
		return bad_arg("invalid name or id", arg);
	snprintf(out, cap, "%s%s%s", pre, arg, suffix);
	return 0;
}

/* ---- output -------------------------------------------------------------- */

enum col_kind { COL_STR, COL_INT, COL_BOOL, COL_LIST, COL_TIME_MS, COL_TIME_S };

struct column {
	const char *title;
	const char *key;
	const char *alt;          /* used when key is missing or "" */
	enum col_kind kind;
};

static void utc(time_t t, char *out, size_t cap)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, cap, "-");
}

static void cell(json_t *row, const struct column *col, time_t now, char *out, size_t cap)
{
	json_t *v = json_object_get(row, col->key), *g;
	size_t i, used;
	char part[CELL_MAX];

	if (col->alt != NULL && (v == NULL || json_is_null(v) ||
	    (json_is_string(v) && json_string_length(v) == 0)))
		v = json_object_get(row, col->alt);
	snprintf(out, cap, "-");
	switch (col->kind) {
	case COL_STR:
		if (json_is_string(v) && json_string_length(v) > 0)
			esc(out, cap, json_string_value(v));
		else if (json_is_integer(v))
			snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case COL_INT:
		if (json_is_integer(v))
			snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case COL_BOOL:
		if (json_is_boolean(v))
			snprintf(out, cap, "%s", json_is_true(v) ? "yes" : "no");
		break;
	case COL_LIST:
		used = 0;
		json_array_foreach(v, i, g) {
			if (!json_is_string(g))
				continue;
			esc(part, sizeof(part), json_string_value(g));
			snprintf(out + used, cap - used, "%s%s", used > 0 ? "," : "", part);
			used = strlen(out);
		}
		break;
	case COL_TIME_MS:
		if (json_is_integer(v) && json_integer_value(v) > 0)
			utc((time_t)(json_integer_value(v) / 1000), out, cap);
		break;
	case COL_TIME_S:
		if (json_is_integer(v) && json_integer_value(v) > (json_int_t)now)
			utc((time_t)json_integer_value(v), out, cap);
		break;
	}
}

/* One row per item, columns aligned; the header even for no items. */
static int print_table(const struct resp *r, const char *list_key,
    const struct column *cols, size_t ncols)
{
	json_t *list = json_object_get(r->json, list_key), *row;
	size_t width[MAX_COLUMNS], i, j, w;
	char buf[CELL_MAX];
	time_t now = time(NULL);

	if (!json_is_array(list) || ncols > MAX_COLUMNS) {
		fprintf(stderr, "gatehouse: the answer has no \"%s\" list\n", list_key);
		return EXIT_RUNTIME;
	}
	for (j = 0; j < ncols; j++)
		width[j] = strlen(cols[j].title);
	json_array_foreach(list, i, row) {
		for (j = 0; j < ncols; j++) {
			cell(row, &cols[j], now, buf, sizeof(buf));
			if ((w = strlen(buf)) > width[j])
				width[j] = w;
		}
	}
	for (j = 0; j + 1 < ncols; j++)
		printf("%-*s  ", (int)width[j], cols[j].title);
	printf("%s\n", cols[ncols - 1].title);
	json_array_foreach(list, i, row) {
		for (j = 0; j + 1 < ncols; j++) {
			cell(row, &cols[j], now, buf, sizeof(buf));
			printf("%-*s  ", (int)width[j], buf);
		}
		cell(row, &cols[ncols - 1], now, buf, sizeof(buf));
		printf("%s\n", buf);
	}
	return 0;
}

/* "key: value" for each plain member of the answer. */
static void print_fields(json_t *o)
{
	char k[CELL_MAX], v[CELL_MAX];
	const char *key;
	json_t *val;

	json_object_foreach(o, key, val) {
		if (json_is_string(val))
			esc(v, sizeof(v), json_string_value(val));
		else if (json_is_integer(val))
			snprintf(v, sizeof(v), "%" JSON_INTEGER_FORMAT, json_integer_value(val));
		else if (json_is_boolean(val))
			snprintf(v, sizeof(v), "%s", json_is_true(val) ? "yes" : "no");
		else if (json_is_null(val))
			snprintf(v, sizeof(v), "-");
		else
			continue;
		printf("%s: %s\n", esc(k, sizeof(k), key), v);
	}
}

/* The otpauth:// URI and its secret, as "gatehouse user add --totp"
 * prints them. */
static void print_otpauth(json_t *o)
{
	const char *uri = json_string_value(json_object_get(o, "otpauth")), *s;
	char shown[1024];
	size_t n;

	if (uri == NULL)
		return;
	printf("%s\n", esc(shown, sizeof(shown), uri));
	if ((s = strstr(uri, "?secret=")) != NULL || (s = strstr(uri, "&secret=")) != NULL) {
		s += 8;
		n = strcspn(s, "&");
		log_escape(shown, sizeof(shown), (const uint8_t *)s, n);
		printf("secret: %s\n", shown);
	}
	OPENSSL_cleanse(shown, sizeof(shown));
}

/* Reads FILE, at most ADMIN_MAX_BODY bytes (what the API takes). 0 with
 * *out (owned: free()), or an exit code after a message. */
static int file_read(const char *path, char **out, size_t *len)
{
	char shown[CELL_MAX];
	struct stat st;
	char *buf = NULL;
	size_t used = 0;
	ssize_t n;
	int fd, rc = EXIT_USAGE;

	*out = NULL;
	esc(shown, sizeof(shown), path);
	if ((fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC)) < 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", shown, strerror(errno));
		return EXIT_USAGE;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "gatehouse: %s: not a regular file\n", shown);
		goto out;
	}
	if ((buf = malloc(ADMIN_MAX_BODY + 1)) == NULL) {
		fprintf(stderr, "gatehouse: out of memory\n");
		rc = EXIT_RUNTIME;
		goto out;
	}
	for (;;) {
		n = read(fd, buf + used, ADMIN_MAX_BODY + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "gatehouse: %s: %s\n", shown, strerror(errno));
			rc = EXIT_RUNTIME;
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > ADMIN_MAX_BODY) {
			fprintf(stderr, "gatehouse: %s: larger than %d bytes, the most the admin "
			    "API takes\n", shown, ADMIN_MAX_BODY);
			goto out;
		}
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	close(fd);
	return rc;
}

/* ---- the commands -------------------------------------------------------- */

static int cmd_login(struct ctl *c)
{
	char user[NAME_CAP], pw[PW_CAP], code[CODE_CAP], body[JSON_BODY_CAP];
	char prompt[CELL_MAX + 32], shown[CELL_MAX], role[64];
	struct jw w = { body, sizeof(body), 0, false };
	struct saved s;
	struct resp r;
	json_t *tok, *out;
	const char *v;
	int rc;

	memset(&r, 0, sizeof(r));
	memset(&s, 0, sizeof(s));
	pw[0] = code[0] = '\0';
	if (c->arg != NULL) {
		if (strlen(c->arg) >= sizeof(user))
			return bad_arg("user name too long", c->arg);
		snprintf(user, sizeof(user), "%s", c->arg);
	} else if (c->opt[O_STDIN] != NULL) {
		fprintf(stderr, "gatehouse: ctl login: give the user name with "
		    "--password-stdin\n");
		return EXIT_USAGE;
	} else if ((rc = ask(c, "Admin user: ", true, user, sizeof(user), "the user name")) != 0) {
		return rc;
	}
	esc(shown, sizeof(shown), user);
	snprintf(prompt, sizeof(prompt), "Password for %s: ", shown);
	if ((rc = ask(c, prompt, false, pw, sizeof(pw), "the password")) != 0)
		goto out;
	snprintf(prompt, sizeof(prompt), "TOTP code for %s: ", shown);
	if ((rc = ask_code(c, prompt, code)) != 0)
		goto out;
	jw_raw(&w, "{\"user\":");
	jw_str(&w, user);
	jw_raw(&w, ",\"password\":");
	jw_str(&w, pw);
	jw_raw(&w, ",\"totp\":");
	jw_str(&w, code);
	jw_raw(&w, "}");
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(code, sizeof(code));
	if (w.full) {
		fprintf(stderr, "gatehouse: the login does not fit a request\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = api(c, "POST", "/api/login", NULL, body, w.len, false, &r)) != 0)
		goto out;
	tok = json_object_get(r.json, "token");
	v = json_string_value(json_object_get(r.json, "user"));
	if (!json_is_string(tok) || !token_ok(json_string_value(tok)) || v == NULL ||
	    strlen(v) >= sizeof(s.user) || strchr(v, '\n') != NULL) {
		fprintf(stderr, "gatehouse: the login answer has no usable token\n");
		rc = EXIT_RUNTIME;
		goto out;
	}
	snprintf(s.url, sizeof(s.url), "%s", c->url.text);
	snprintf(s.user, sizeof(s.user), "%s", v);
	snprintf(s.token, sizeof(s.token), "%s", json_string_value(tok));
	/* jansson's copy of the token goes too (its storage is ours to
	 * write: a malloc'd string behind a const pointer). */
	OPENSSL_cleanse((char *)(uintptr_t)json_string_value(tok), json_string_length(tok));
	esc(role, sizeof(role), json_string_value(json_object_get(r.json, "role")) != NULL ?
	    json_string_value(json_object_get(r.json, "role")) : "?");
	if (saved_store(c, &s) != 0) {
		/* A token that cannot be kept is revoked, not left to expire. */
		c->saved = s;
		c->has_saved = true;
		resp_free(&r);
		if (api(c, "POST", "/api/logout", NULL, "", 0, true, &r) == 0)
			fprintf(stderr, "gatehouse: the new token was revoked\n");
		c->has_saved = false;
		rc = EXIT_RUNTIME;
		goto out;
	}
	if (c->opt[O_JSON] != NULL) {
		/* The answer without its token. */
		out = json_deep_copy(r.json);
		json_object_del(out, "token");
		json_dumpf(out, stdout, JSON_COMPACT);
		putchar('\n');
		json_decref(out);
	} else {
		printf("logged in as %s (%s)\n", esc(shown, sizeof(shown), s.user), role);
	}
	rc = 0;
out:
	OPENSSL_cleanse(body, sizeof(body));
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(&s, sizeof(s));
	OPENSSL_cleanse(&c->saved, sizeof(c->saved));
	resp_free(&r);
	return rc;
}

static int cmd_logout(struct ctl *c)
{
	struct resp r;
	int rc;

	if (!c->has_saved) {
		fprintf(stderr, "gatehouse: not logged in\n");
		return 0;
	}
	if ((rc = need_login(c)) != 0)
		return rc;
	rc = api(c, "POST", "/api/logout", NULL, "", 0, true, &r);
	/* 401: the token had expired or been revoked already; either way it
	 * is of no use any more. */
	if (rc == 0 || r.status == 401) {
		saved_remove(c);
		if (rc == 0)
			printf("logged out\n");
		rc = 0;
	} else {
		fprintf(stderr, "gatehouse: the token was kept in %s; it is valid until it "
		    "expires\n", c->token_path);
	}
	resp_free(&r);
	return rc;
}

static int cmd_status(struct ctl *c)
{
	struct resp r;
	int rc;

	if ((rc = api(c, "GET", "/api/status", NULL, NULL, 0, true, &r)) == 0) {
		if (c->opt[O_JSON] != NULL)
			print_raw(&r);
		else
			print_fields(r.json);
	}
	resp_free(&r);
	return rc;
}

static int cmd_health(struct ctl *c)
{
	char shown[CELL_MAX];
	const char *s;
	struct resp r;
	int rc;

	if ((rc = api(c, "GET", "/api/health", NULL, NULL, 0, false, &r)) == 0) {
		s = json_string_value(json_object_get(r.json, "status"));
		if (c->opt[O_JSON] != NULL)
			print_raw(&r);
		else
			printf("%s\n", esc(shown, sizeof(shown), s != NULL ? s : "?"));
	}
	resp_free(&r);
	return rc;
}

static const struct column session_cols[] = {
	{ "ID", "id", NULL, COL_INT },
	{ "USER", "user", NULL, COL_STR },
	{ "SINCE", "since_ms", NULL, COL_TIME_MS },
};

static const struct column call_cols[] = {
	{ "CALL", "call", NULL, COL_STR },
	{ "CALLER", "caller", NULL, COL_STR },
	{ "CALLEE", "callee", NULL, COL_STR },
	{ "MEDIA", "media", NULL, COL_LIST },
	{ "STATE", "state", NULL, COL_STR },
	{ "RECORD", "record", NULL, COL_BOOL },
	{ "RULE", "rule", NULL, COL_STR },
	{ "SINCE", "since_ms", NULL, COL_TIME_MS },
};

static const struct column user_cols[] = {
	{ "NAME", "name", NULL, COL_STR },
	{ "GROUPS", "groups", NULL, COL_LIST },
	{ "TOTP", "totp", NULL, COL_BOOL },
	{ "DISABLED", "disabled", NULL, COL_BOOL },
	{ "FAILURES", "failures", NULL, COL_INT },
	{ "LOCKED-UNTIL", "locked_until", NULL, COL_TIME_S },
};

static const struct column audit_cols[] = {
	{ "TIME", "ts", NULL, COL_STR },
	{ "EVENT", "event", NULL, COL_STR },
	{ "OUTCOME", "outcome", NULL, COL_STR },
	{ "ACTOR", "actor", "user", COL_STR },
	{ "TARGET", "target", NULL, COL_STR },
	{ "DETAIL", "reason", "needs", COL_STR },
};

#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static int list(struct ctl *c, const char *path, const char *query, const char *key,
    const struct column *cols, size_t ncols)
{
	struct resp r;
	int rc;

	if ((rc = api(c, "GET", path, query, NULL, 0, true, &r)) == 0) {
		if (c->opt[O_JSON] != NULL)
			print_raw(&r);
		else
			rc = print_table(&r, key, cols, ncols);
	}
	resp_free(&r);
	return rc;
}

static int cmd_sessions(struct ctl *c)
{
	return list(c, "/api/sessions", NULL, "sessions", session_cols, NCOLS(session_cols));
}

static int cmd_calls(struct ctl *c)
{
	return list(c, "/api/calls", NULL, "calls", call_cols, NCOLS(call_cols));
}

static int cmd_users(struct ctl *c)
{
	return list(c, "/api/users", NULL, "users", user_cols, NCOLS(user_cols));
}

/* An action on yourself that revokes your tokens (disable, delete, new
 * password) leaves the token file useless; it goes too. */
static void own_token_gone(struct ctl *c)
{
	if (c->has_saved && strcmp(c->saved.user, c->arg) == 0) {
		saved_remove(c);
		fprintf(stderr, "gatehouse: that revoked your own token; log in again\n");
	}
}

/* sessions close, calls end, users disable|enable|unlock|delete. */
static int cmd_action(struct ctl *c)
{
	const struct command *k = c->cmd;
	char path[256], shown[CELL_MAX];
	struct resp r;
	int rc;

	if ((rc = path_with(path, sizeof(path), k->path, c->arg, k->suffix)) != 0)
		return rc;
	if ((rc = api(c, k->method, path, NULL, "", 0, true, &r)) == 0) {
		if (c->opt[O_JSON] != NULL)
			print_raw(&r);
		else
			printf("%s %s %s\n", k->noun, esc(shown, sizeof(shown), c->arg), k->done);
		if (k->revokes_own)
			own_token_gone(c);
	}
	resp_free(&r);
	return rc;
}

static int cmd_user_add(struct ctl *c)
{
	char pw[PW_CAP], code[CODE_CAP], body[JSON_BODY_CAP], shown[CELL_MAX];
	char prompt[CELL_MAX + 64];
	struct jw w = { body, sizeof(body), 0, false };
	struct resp r;
	size_t i;
	int rc;

	memset(&r, 0, sizeof(r));
	if (!segment_ok(c->arg))
		return bad_arg("invalid user name", c->arg);
	for (i = 0; i < c->ngroups; i++)
		if (!segment_ok(c->groups[i]))
			return bad_arg("invalid group name", c->groups[i]);
	/* Say so before asking for a password that would go nowhere. */
	if ((rc = need_login(c)) != 0)
		return rc;
	if ((rc = ask_new_password(c, c->arg, pw)) != 0)
		return rc;
	/* A new user is new credentials: the server wants a fresh code of
	 * the acting admin as well as the token. */
	snprintf(prompt, sizeof(prompt), "Your TOTP code (%s), one not used yet: ",
	    esc(shown, sizeof(shown), c->saved.user));
	if ((rc = ask_code(c, prompt, code)) != 0) {
		OPENSSL_cleanse(pw, sizeof(pw));
		return rc;
	}
	jw_raw(&w, "{\"actor_totp\":");
	jw_str(&w, code);
	OPENSSL_cleanse(code, sizeof(code));
	jw_raw(&w, ",\"name\":");
	jw_str(&w, c->arg);
	jw_raw(&w, ",\"password\":");
	jw_str(&w, pw);
	jw_raw(&w, ",\"groups\":[");
	for (i = 0; i < c->ngroups; i++) {
		jw_raw(&w, i > 0 ? "," : "");
		jw_str(&w, c->groups[i]);
	}
	jw_raw(&w, c->opt[O_TOTP] != NULL ? "],\"totp\":true}" : "],\"totp\":false}");
	OPENSSL_cleanse(pw, sizeof(pw));
	if (w.full) {
		fprintf(stderr, "gatehouse: the request does not fit\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = api(c, "POST", "/api/users", NULL, body, w.len, true, &r)) != 0)
		goto out;
	if (c->opt[O_JSON] != NULL) {
		print_raw(&r);
	} else {
		printf("user %s added\n", esc(shown, sizeof(shown), c->arg));
		print_otpauth(r.json);
	}
out:
	OPENSSL_cleanse(body, sizeof(body));
	resp_free(&r);
	return rc;
}

/* users passwd NAME and users totp NAME hand out credentials, so the
 * server wants a fresh code of the acting admin as well as the token. */
static int user_credential(struct ctl *c, bool password)
{
	char pw[PW_CAP], code[CODE_CAP], body[JSON_BODY_CAP], path[256], shown[CELL_MAX];
	char prompt[CELL_MAX + 64];
	struct jw w = { body, sizeof(body), 0, false };
	struct resp r;
	int rc;

	memset(&r, 0, sizeof(r));
	pw[0] = '\0';
	if ((rc = path_with(path, sizeof(path), "/api/users/", c->arg,
	    password ? "/password" : "/totp")) != 0)
		return rc;
	if ((rc = need_login(c)) != 0)
		return rc;
	if (password && (rc = ask_new_password(c, c->arg, pw)) != 0)
		return rc;
	snprintf(prompt, sizeof(prompt), "Your TOTP code (%s), one not used yet: ",
	    esc(shown, sizeof(shown), c->saved.user));
	if ((rc = ask_code(c, prompt, code)) != 0)
		goto out;
	jw_raw(&w, "{\"actor_totp\":");
	jw_str(&w, code);
	if (password) {
		jw_raw(&w, ",\"password\":");
		jw_str(&w, pw);
	}
	jw_raw(&w, "}");
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(code, sizeof(code));
	if (w.full) {
		fprintf(stderr, "gatehouse: the request does not fit\n");
		rc = EXIT_USAGE;
		goto out;
	}
	if ((rc = api(c, "POST", path, NULL, body, w.len, true, &r)) != 0)
		goto out;
	if (c->opt[O_JSON] != NULL) {
		print_raw(&r);
	} else if (password) {
		printf("password of %s changed\n", esc(shown, sizeof(shown), c->arg));
	} else {
		printf("new TOTP secret for %s\n", esc(shown, sizeof(shown), c->arg));
		print_otpauth(r.json);
	}
	if (password)
		own_token_gone(c);
out:
	OPENSSL_cleanse(pw, sizeof(pw));
	OPENSSL_cleanse(code, sizeof(code));
	OPENSSL_cleanse(body, sizeof(body));
	resp_free(&r);
	return rc;
}

static int cmd_user_passwd(struct ctl *c)
{
	return user_credential(c, true);
}

static int cmd_user_totp(struct ctl *c)
{
	return user_credential(c, false);
}

static int cmd_policy_get(struct ctl *c)
{
	json_t *p;
	struct resp r;
	int rc;

	if ((rc = api(c, "GET", "/api/policy", NULL, NULL, 0, true, &r)) != 0)
		goto out;
	if (c->opt[O_JSON] != NULL) {
		print_raw(&r);
		goto out;
	}
	/* The policy itself, indented: what "policy put" takes back. */
	p = json_object_get(r.json, "policy");
	if (p == NULL || json_dumpf(p, stdout, JSON_INDENT(2)) != 0) {
		fprintf(stderr, "gatehouse: the answer has no policy\n");
		rc = EXIT_RUNTIME;
		goto out;
	}
	putchar('\n');
out:
	resp_free(&r);
	return rc;
}

static int policy_send(struct ctl *c, bool put)
{
	char shown[CELL_MAX], cell[CELL_MAX];
	json_t *rules, *group;
	size_t i;
	struct resp r;
	char *text;
	size_t len;
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = file_read(c->arg, &text, &len)) != 0)
		return rc;
	rc = api(c, put ? "PUT" : "POST", put ? "/api/policy" : "/api/policy/validate", NULL,
	    text, len, true, &r);
	free(text);
	if (rc != 0)
		goto out;
	esc(shown, sizeof(shown), c->arg);
	rules = json_object_get(r.json, "rules");
	json_array_foreach(json_object_get(r.json, "undeclared_groups"), i, group) {
		if (!json_is_string(group))
			continue;
		esc(cell, sizeof(cell), json_string_value(group));
		fprintf(stderr, "gatehouse: %s: warning: group \"%s\" " POLICY_UNDECLARED_TEXT
		    "; check its spelling\n", shown, cell);
	}
	if (c->opt[O_JSON] != NULL)
		print_raw(&r);
	else if (put)
		printf("%s: policy replaced and applied; live calls were decided again\n", shown);
	else if (json_is_integer(rules))
		printf("%s: ok, %" JSON_INTEGER_FORMAT " rule%s\n", shown,
		    json_integer_value(rules), json_integer_value(rules) == 1 ? "" : "s");
	else
		printf("%s: ok\n", shown);
out:
	resp_free(&r);
	return rc;
}

static int cmd_policy_validate(struct ctl *c)
{
	return policy_send(c, false);
}

static int cmd_policy_put(struct ctl *c)
{
	return policy_send(c, true);
}

/* Query values go into the URL as they are (admin.c does not decode
 * them), so only characters that need no escaping are taken. */
static bool query_value_ok(const char *v, bool digits)
{
	size_t i;

	for (i = 0; v[i] != '\0'; i++)
		if (i >= QUERY_VALUE_MAX || !((v[i] >= '0' && v[i] <= '9') || (!digits &&
		    ((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		    strchr("-._@", v[i]) != NULL))))
			return false;
	return i > 0;
}

static int cmd_audit(struct ctl *c)
{
	static const struct {
		enum opt_id id;
		const char *key;
		bool digits;
	} params[] = {
		{ O_SINCE, "since", true }, { O_UNTIL, "until", true },
		{ O_USER, "user", false }, { O_EVENT, "event", false },
		{ O_LIMIT, "limit", true },
	};
	char query[512];
	size_t i, used = 0;

	query[0] = '\0';
	for (i = 0; i < sizeof(params) / sizeof(params[0]); i++) {
		const char *v = c->opt[params[i].id];
		if (v == NULL)
			continue;
		if (!query_value_ok(v, params[i].digits)) {
			bad_arg(params[i].digits ? "expected a number for" :
			    "expected a name for", option_defs[params[i].id].name);
			return EXIT_USAGE;
		}
		snprintf(query + used, sizeof(query) - used, "%s%s=%s", used > 0 ? "&" : "",
		    params[i].key, v);
		used = strlen(query);
	}
	return list(c, "/api/audit", query, "events", audit_cols, NCOLS(audit_cols));
}

/* More specific entries (with a second word) come before the plain one. */
static const struct command commands[] = {
	{ .word = "login", .max_args = 1, .opts = OPT(O_STDIN), .run = cmd_login },
	{ .word = "logout", .run = cmd_logout },
	{ .word = "status", .run = cmd_status },
	{ .word = "health", .run = cmd_health },
	{ .word = "sessions", .sub = "close", .min_args = 1, .max_args = 1, .run = cmd_action,
	  .method = "DELETE", .path = "/api/sessions/", .suffix = "", .noun = "session",
	  .done = "closed" },
	{ .word = "sessions", .run = cmd_sessions },
	{ .word = "calls", .sub = "end", .min_args = 1, .max_args = 1, .run = cmd_action,
	  .method = "DELETE", .path = "/api/calls/", .suffix = "", .noun = "call",
	  .done = "ended" },
	{ .word = "calls", .run = cmd_calls },
	{ .word = "users", .sub = "add", .min_args = 1, .max_args = 1,
	  .opts = OPT(O_GROUP) | OPT(O_TOTP) | OPT(O_STDIN), .run = cmd_user_add },
	{ .word = "users", .sub = "disable", .min_args = 1, .max_args = 1, .run = cmd_action,
	  .method = "POST", .path = "/api/users/", .suffix = "/disable", .noun = "user",
	  .done = "disabled; its sessions were closed", .revokes_own = true },
	{ .word = "users", .sub = "enable", .min_args = 1, .max_args = 1, .run = cmd_action,
	  .method = "POST", .path = "/api/users/", .suffix = "/enable", .noun = "user",
	  .done = "enabled" },
	{ .word = "users", .sub = "unlock", .min_args = 1, .max_args = 1, .run = cmd_action,
	  .method = "POST", .path = "/api/users/", .suffix = "/unlock", .noun = "user",
	  .done = "unlocked" },
	{ .word = "users", .sub = "delete", .min_args = 1, .max_args = 1, .run = cmd_action,
	  .method = "DELETE", .path = "/api/users/", .suffix = "", .noun = "user",
	  .done = "deleted", .revokes_own = true },
	{ .word = "users", .sub = "passwd", .min_args = 1, .max_args = 1, .opts = OPT(O_STDIN),
	  .run = cmd_user_passwd },
	{ .word = "users", .sub = "totp", .min_args = 1, .max_args = 1, .opts = OPT(O_STDIN),
	  .run = cmd_user_totp },
	{ .word = "users", .run = cmd_users },
	{ .word = "policy", .sub = "get", .run = cmd_policy_get },
	{ .word = "policy", .sub = "validate", .min_args = 1, .max_args = 1,
	  .run = cmd_policy_validate },
	{ .word = "policy", .sub = "put", .min_args = 1, .max_args = 1, .run = cmd_policy_put },
	{ .word = "audit", .opts = AUDIT_OPTS, .run = cmd_audit },
};

/* ---- arguments ----------------------------------------------------------- */

/* The option a names ("--url", "-c", "--url=..."), or -1. */
static int option_find(const char *a)
{
	size_t len;
	int id;

	for (id = 0; id < O_COUNT; id++) {
		len = strlen(option_defs[id].name);
		if (strcmp(a, option_defs[id].name) == 0 ||
		    (option_defs[id].alias != NULL && strcmp(a, option_defs[id].alias) == 0) ||
		    (option_defs[id].takes_value && strncmp(a, option_defs[id].name, len) == 0 &&
		    a[len] == '='))
			return id;
	}
	return -1;
}

/* Options anywhere, as "--opt VALUE" or "--opt=VALUE"; "--" ends them.
 * The rest are the command's words. */
static int parse(struct ctl *c, int argc, char **argv)
{
	const struct option_def *d;
	const char *a, *value;
	bool options = true;
	size_t len;
	int i, id;

	for (i = 0; i < argc; i++) {
		a = argv[i];
		if (options && strcmp(a, "--") == 0) {
			options = false;
			continue;
		}
		if (!options || a[0] != '-' || a[1] == '\0') {
			if (c->nwords >= MAX_WORDS)
				return bad_arg("unexpected argument", a);
			c->words[c->nwords++] = a;
			continue;
		}
		if ((id = option_find(a)) < 0)
			return bad_arg("unknown option", a);
		d = &option_defs[id];
		len = strlen(d->name);
		value = "";
		if (d->takes_value) {
			if (strncmp(a, d->name, len) == 0 && a[len] == '=') {
				value = a + len + 1;
			} else if (i + 1 < argc) {
				value = argv[++i];
			} else {
				return bad_arg("a value is needed after", a);
			}
		}
		if (id == O_GROUP) {
			if (c->ngroups >= IDENTITY_MAX_GROUPS) {
				fprintf(stderr, "gatehouse: at most %d groups\n", IDENTITY_MAX_GROUPS);
				return EXIT_USAGE;
			}
			c->groups[c->ngroups++] = value;
		} else if (c->opt[id] != NULL) {
			return bad_arg("given twice:", d->name);
		}
		c->opt[id] = value;
	}
	if (c->opt[O_INSECURE] != NULL && c->opt[O_CACERT] != NULL) {
		fprintf(stderr, "gatehouse: --insecure and --cacert exclude each other\n");
		return EXIT_USAGE;
	}
	return 0;
}

/* Finds the command for the words and checks its arguments and options. */
static int pick(struct ctl *c)
{
	const struct command *k;
	size_t i, nargs, first;
	int id;

	if (c->nwords == 0) {
		fprintf(stderr, "gatehouse: ctl: a command is needed\n");
		return EXIT_USAGE;
	}
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		k = &commands[i];
		if (strcmp(k->word, c->words[0]) != 0)
			continue;
		if (k->sub != NULL && (c->nwords < 2 || strcmp(k->sub, c->words[1]) != 0))
			continue;
		first = k->sub != NULL ? 2 : 1;
		nargs = c->nwords - first;
		if (nargs > k->max_args)
			return bad_arg("unexpected argument", c->words[first + k->max_args]);
		if (nargs < k->min_args) {
			fprintf(stderr, "gatehouse: ctl %s%s%s: an argument is needed\n", k->word,
			    k->sub != NULL ? " " : "", k->sub != NULL ? k->sub : "");
			return EXIT_USAGE;
		}
		for (id = 0; id < O_COUNT; id++)
			if (c->opt[id] != NULL && !((COMMON_OPTS | k->opts) & OPT(id)))
				return bad_arg("this command does not take", option_defs[id].name);
		c->cmd = k;
		c->arg = nargs > 0 ? c->words[first] : NULL;
		return 0;
	}
	return bad_arg("unknown ctl command", c->words[0]);
}

int cli_ctl(int argc, char **argv)
{
	struct sigaction sa;
	struct ctl c;
	int i, rc;

	memset(&c, 0, sizeof(c));
	c.tty = -1;
	if (argc >= 1 && strcmp(argv[0], "help") == 0)
		return usage(stdout, 0);
	for (i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return usage(stdout, 0);
	if ((rc = parse(&c, argc, argv)) != 0 || (rc = pick(&c)) != 0)
		return usage(stderr, rc);
	/* A server that goes away while TLS writes must be an error of the
	 * write, not SIGPIPE. This process is a short-lived CLI. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGPIPE, &sa, NULL);
	/* A login replaces an unusable token file rather than stop at it. */
	if ((rc = token_path_find(&c)) != 0 ||
	    (rc = saved_load(&c, c.cmd->run == cmd_login)) != 0 ||
	    (rc = url_choose(&c)) != 0)
		goto out;
	rc = c.cmd->run(&c);
out:
	if (c.tty >= 0)
		close(c.tty);
	OPENSSL_cleanse(&c.saved, sizeof(c.saved));
	return finish(rc);
}
