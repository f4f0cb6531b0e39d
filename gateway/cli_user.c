/* "gatehouse user ...": local users in state_dir/users.db. */
#include "gateway/cli_user.h"
#include "gateway/cli_rekey.h"
#include "gateway/prompt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/privdrop.h"
#include "gateway/secret.h"
#include "signaling/password.h"
#include "signaling/totp.h"
#include "signaling/userdb.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define TOTP_ISSUER "Gatehouse"
/* One byte more than the longest password, to see a longer one, and
 * the NUL. */
#define PW_CAP (PASSWORD_MAX_LEN + 2)
#define B32_CAP 64
#define URI_CAP 512

static const char usage_text[] =
    "usage: gatehouse user <command> [options] [-c FILE]\n"
    "\n"
    "commands:\n"
    "  add NAME [--group G]... [--password-stdin] [--totp]\n"
    "                           add a local user; --totp prints the otpauth://\n"
    "                           URI and the base32 secret for an authenticator\n"
    "  del NAME                 remove a user\n"
    "  list                     one line per user\n"
    "  passwd NAME [--password-stdin]\n"
    "                           set a new password\n"
    "  unlock NAME              end a lockout after failed logins\n"
    "  disable NAME | enable NAME\n"
    "  totp-reset NAME          new TOTP secret (prints the new URI)\n"
    "  rekey [--new-key FILE]   seal every TOTP secret again under a new\n"
    "                           secrets key (the daemon must be stopped);\n"
    "                           FILE: a key you made, which\n"
    "                           identity.secrets_key_file must then name\n"
    "\n"
    "Without --password-stdin the password is asked twice on the terminal.\n"
    "-c FILE names the configuration whose state_dir holds users.db\n"
    "(default ./gatehouse-data).\n";

enum {
	OPT_GROUP = 1 << 0,
	OPT_STDIN = 1 << 1,
	OPT_TOTP = 1 << 2,
	OPT_NEWKEY = 1 << 3,
};

struct opts {
	const char *name;
	const char *config;
	const char *new_key;
	const char *groups[IDENTITY_MAX_GROUPS];
	size_t ngroups;
	bool password_stdin;
	bool totp;
	char shown[IDENTITY_NAME_MAX * 4 + 4]; /* name, escaped for messages */
};

struct command {
	const char *word;
	unsigned allowed; /* OPT_* */
	bool needs_name;
	/* NULL for rekey, which opens users.db its own way (cli_rekey.h). */
	int (*run)(struct userdb *db, const struct opts *o);
};

static int usage(FILE *out, int code)
{
	fputs(usage_text, out);
	return code;
}

/* ---- reading the password ---- */

/* The signal that interrupted a prompt, so that it can be delivered once
 * the terminal echoes again (OpenBSD readpassphrase(3) does the same). */
/* Fills pw (PW_CAP bytes) from stdin or, asking twice, from the
 * terminal, and checks its length. 0, or an exit code after a message. */
static int password_get(const struct opts *o, char *pw)
{
	char again[PW_CAP], prompt[sizeof(o->shown) + 32];
	int fd, n, m, rc = EXIT_USAGE;
	size_t len;

	if (o->password_stdin) {
		n = prompt_read_line(STDIN_FILENO, pw, PW_CAP, "the password", "stdin");
	} else {
		fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (fd < 0) {
			fprintf(stderr, "gatehouse: no terminal to ask for the password on; "
			    "use --password-stdin\n");
			return EXIT_USAGE;
		}
		snprintf(prompt, sizeof(prompt), "Password for %s: ", o->shown);
		n = prompt_read_tty(fd, prompt, false, pw, PW_CAP, "the password");
		if (n >= 0) {
			m = prompt_read_tty(fd, "Repeat password: ", false, again, sizeof(again),
			    "the password");
			if (m < 0) {
				n = m;
			} else if (m != n || CRYPTO_memcmp(pw, again, (size_t)n) != 0) {
				fprintf(stderr, "gatehouse: the passwords do not match\n");
				n = -1;
			}
		}
		close(fd);
		if (n == -2)
			fprintf(stderr, "gatehouse: /dev/tty is not a terminal; "
			    "use --password-stdin\n");
	}
	if (n < 0)
		goto out;
	len = (size_t)n;
	if (len < PASSWORD_MIN_LEN || len > PASSWORD_MAX_LEN) {
		fprintf(stderr, "gatehouse: a password must have %d to %d bytes\n",
		    PASSWORD_MIN_LEN, PASSWORD_MAX_LEN);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(again, sizeof(again));
	if (rc != 0)
		OPENSSL_cleanse(pw, PW_CAP);
	return rc;
}

/* ---- results ---- */

/* Turns a userdb refusal into a message and an exit code. */
static int report(int rc, const struct opts *o, const char *doing)
{
	switch (rc) {
	case USERDB_OK:
		return 0;
	case USERDB_NOTFOUND:
		fprintf(stderr, "gatehouse: user \"%s\" does not exist\n", o->shown);
		return EXIT_USAGE;
	case USERDB_EXISTS:
		fprintf(stderr, "gatehouse: user \"%s\" already exists\n", o->shown);
		return EXIT_USAGE;
	case USERDB_INVALID:
		fprintf(stderr, "gatehouse: invalid %s name (user \"%s\"): names have 1 to "
		    "63 of A-Z a-z 0-9 . _ @ - and do not start with - or .\n",
		    o->ngroups > 0 ? "user or group" : "user", o->shown);
		return EXIT_USAGE;
	default:
		fprintf(stderr, "gatehouse: cannot %s user \"%s\": database error\n", doing,
		    o->shown);
		return EXIT_RUNTIME;
	}
}

/* The URI and the secret, for the authenticator app. */
static int print_totp(const struct opts *o, char *b32)
{
	char uri[URI_CAP];
	int rc = 0;

	if (totp_uri(TOTP_ISSUER, o->name, b32, uri, sizeof(uri)) < 0) {
		fprintf(stderr, "gatehouse: cannot build the otpauth URI\n");
		rc = EXIT_RUNTIME;
	} else {
		printf("%s\nsecret: %s\n", uri, b32);
		fflush(stdout);
	}
	OPENSSL_cleanse(uri, sizeof(uri));
	OPENSSL_cleanse(b32, B32_CAP);
	return rc;
}

/* ---- the commands ---- */

static int cmd_add(struct userdb *db, const struct opts *o)
{
	char pw[PW_CAP], b32[B32_CAP];
	int rc;

	/* Say so before asking for a password that would go nowhere. */
	if (userdb_get(db, o->name, NULL) == USERDB_OK)
		return report(USERDB_EXISTS, o, "add");
	if ((rc = password_get(o, pw)) != 0)
		return rc;
	rc = userdb_add(db, o->name, pw, o->groups, o->ngroups, o->totp, b32, sizeof(b32));
	OPENSSL_cleanse(pw, sizeof(pw));
	if (rc != USERDB_OK)
		return report(rc, o, "add");
	return o->totp ? print_totp(o, b32) : 0;
}

static int cmd_del(struct userdb *db, const struct opts *o)
{
	return report(userdb_del(db, o->name), o, "delete");
}

static int cmd_passwd(struct userdb *db, const struct opts *o)
{
	char pw[PW_CAP];
	int rc;

	rc = userdb_get(db, o->name, NULL);
	if (rc != USERDB_OK)
		return report(rc, o, "change the password of");
	if ((rc = password_get(o, pw)) != 0)
		return rc;
	rc = userdb_passwd(db, o->name, pw);
	OPENSSL_cleanse(pw, sizeof(pw));
	return report(rc, o, "change the password of");
}

static int cmd_unlock(struct userdb *db, const struct opts *o)
{
	return report(userdb_unlock(db, o->name), o, "unlock");
}

static int cmd_disable(struct userdb *db, const struct opts *o)
{
	return report(userdb_set_disabled(db, o->name, true), o, "disable");
}

static int cmd_enable(struct userdb *db, const struct opts *o)
{
	return report(userdb_set_disabled(db, o->name, false), o, "enable");
}

static int cmd_totp_reset(struct userdb *db, const struct opts *o)
{
	char b32[B32_CAP];
	int rc;

	rc = userdb_totp_reset(db, o->name, b32, sizeof(b32));
	if (rc != USERDB_OK)
		return report(rc, o, "reset TOTP of");
	return print_totp(o, b32);
}

static int list_one(void *ctx, const struct userdb_entry *e)
{
	const time_t *now = ctx;
	char until[32] = "-";
	struct tm tm;
	time_t t;
	size_t i;

	/* Names and groups were checked on the way in: printable, no
	 * spaces, so one line per user splits cleanly. */
	printf("%s groups=", e->name);
	for (i = 0; i < e->ngroups; i++)
		printf("%s%s", i > 0 ? "," : "", e->groups[i]);
	if (e->ngroups == 0)
		printf("-");
	if (e->locked_until_s > (uint64_t)*now) {
		t = (time_t)e->locked_until_s;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(until, sizeof(until), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	printf(" totp=%s disabled=%s locked-until=%s\n", e->has_totp ? "yes" : "no",
	    e->disabled ? "yes" : "no", until);
	return 0;
}

static int cmd_list(struct userdb *db, const struct opts *o)
{
	time_t now = time(NULL);
	int rc;

	(void)o;
	rc = userdb_list(db, list_one, &now);
	if (fflush(stdout) != 0) {
		fprintf(stderr, "gatehouse: writing the list: %s\n", strerror(errno));
		return EXIT_RUNTIME;
	}
	if (rc != USERDB_OK) {
		fprintf(stderr, "gatehouse: cannot list users: database error\n");
		return EXIT_RUNTIME;
	}
	return 0;
}

static const struct command commands[] = {
	{ "add", OPT_GROUP | OPT_STDIN | OPT_TOTP, true, cmd_add },
	{ "del", 0, true, cmd_del },
	{ "list", 0, false, cmd_list },
	{ "passwd", OPT_STDIN, true, cmd_passwd },
	{ "unlock", 0, true, cmd_unlock },
	{ "disable", 0, true, cmd_disable },
	{ "enable", 0, true, cmd_enable },
	{ "totp-reset", 0, true, cmd_totp_reset },
	{ "rekey", OPT_NEWKEY, false, NULL },
};

/* ---- arguments ---- */

static int bad_arg(const char *what, const char *arg)
{
	char shown[256];

	fprintf(stderr, "gatehouse: %s '%s'\n", what,
	    log_escape(shown, sizeof(shown), (const uint8_t *)arg, strlen(arg)));
	return -1;
}

/* Options may come before or after the name. "--group G" and
 * "--group=G" alike, and "-c FILE", "--config FILE", "--config=FILE" as
 * for "gatehouse run". */
static int parse(const struct command *c, int argc, char **argv, struct opts *o)
{
	const char *group;
	int i;

	for (i = 1; i < argc; i++) {
		group = NULL;
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			o->config = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			o->config = argv[i] + 9;
		} else if ((c->allowed & OPT_GROUP) && strcmp(argv[i], "--group") == 0 &&
		    i + 1 < argc) {
			group = argv[++i];
		} else if ((c->allowed & OPT_GROUP) && strncmp(argv[i], "--group=", 8) == 0) {
			group = argv[i] + 8;
		} else if ((c->allowed & OPT_STDIN) && strcmp(argv[i], "--password-stdin") == 0) {
			o->password_stdin = true;
		} else if ((c->allowed & OPT_TOTP) && strcmp(argv[i], "--totp") == 0) {
			o->totp = true;
		} else if ((c->allowed & OPT_NEWKEY) && strcmp(argv[i], "--new-key") == 0 &&
		    i + 1 < argc) {
			o->new_key = argv[++i];
		} else if ((c->allowed & OPT_NEWKEY) && strncmp(argv[i], "--new-key=", 10) == 0) {
			o->new_key = argv[i] + 10;
		} else if (argv[i][0] == '-') {
			return bad_arg("unexpected option", argv[i]);
		} else if (c->needs_name && o->name == NULL) {
			o->name = argv[i];
		} else {
			return bad_arg("unexpected argument", argv[i]);
		}
		if (group != NULL) {
			if (o->ngroups >= IDENTITY_MAX_GROUPS) {
				fprintf(stderr, "gatehouse: at most %d groups\n", IDENTITY_MAX_GROUPS);
				return -1;
			}
			o->groups[o->ngroups++] = group;
		}
	}
	if (c->needs_name && o->name == NULL) {
		fprintf(stderr, "gatehouse: user %s: a user name is needed\n", c->word);
		return -1;
	}
	if (o->name != NULL)
		log_escape(o->shown, sizeof(o->shown), (const uint8_t *)o->name,
		    strlen(o->name));
	return 0;
}

/* The configuration is read only for state_dir; without -c, the
 * embedded default (./gatehouse-data), as for "gatehouse run". */
static int state_dir_of(const char *path, struct config *cfg)
{
	char err[512];

	if (path == NULL) {
		config_defaults(cfg);
		return 0;
	}
	if (config_load(path, cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", path, err);
		return -1;
	}
	return 0;
}

int cli_user(int argc, char **argv)
{
	static struct config cfg; /* large (paths); one per process */
	const struct command *c = NULL;
	struct opts o;
	struct userdb *db;
	uint8_t key[USERDB_KEY_LEN];
	char err[PATH_MAX + 512];
	bool named_key;
	size_t i;
	int rc;

	if (argc < 1)
		return usage(stderr, EXIT_USAGE);
	if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 ||
	    strcmp(argv[0], "-h") == 0)
		return usage(stdout, 0);
	for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(argv[0], commands[i].word) == 0)
			c = &commands[i];
	if (c == NULL) {
		bad_arg("unknown user command", argv[0]);
		return usage(stderr, EXIT_USAGE);
	}
	memset(&o, 0, sizeof(o));
	if (parse(c, argc, argv, &o) < 0)
		return usage(stderr, EXIT_USAGE);
	if (state_dir_of(o.config, &cfg) < 0)
		return EXIT_USAGE;
	if (c->run == NULL)
		return cli_rekey(&cfg, o.new_key);
	/* A key file the configuration names may be root's alone, as the
	 * daemon reads it before it drops root: read it first. The default
	 * one is made, if missing, as the daemon's user, below. */
	named_key = cfg.identity.secrets_key_file[0] != '\0';
	if (named_key && secrets_key_load(&cfg, key, sizeof(key), err, sizeof(err)) < 0) {
		fprintf(stderr, "gatehouse: %s\n", err);
		return EXIT_USAGE;
	}
	/* As root on the daemon's state_dir, act as the daemon's user, so
	 * that nothing made here is root's (gateway/privdrop.h). */
	if (privdrop_become_owner(cfg.state_dir, err, sizeof(err)) < 0 ||
	    state_dir_ensure(cfg.state_dir, err, sizeof(err)) < 0 ||
	    (!named_key && secrets_key_load(&cfg, key, sizeof(key), err, sizeof(err)) < 0))
		goto fail;
	db = userdb_open(cfg.state_dir, key, err, sizeof(err));
	OPENSSL_cleanse(key, sizeof(key));
	if (db == NULL) {
		secrets_key_hint(&cfg, err, sizeof(err));
		goto fail;
	}
	rc = c->run(db, &o);
	userdb_close(db);
	return rc;

fail:
	OPENSSL_cleanse(key, sizeof(key));
	fprintf(stderr, "gatehouse: %s\n", err);
	return EXIT_RUNTIME;
}
