/* `gatehouse policy check FILE` and `gatehouse policy explain ...`: the
 * I/O around the pure policy module — reading the file, loading the
 * configuration that names it, and printing what policy_decide() says in
 * words an admin can act on. */
#include "gateway/cli_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config.h"
#include "policy/policy.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

/* A policy is a few kilobytes; anything near this is a wrong file, and
 * the bound keeps a mistaken path (a log, a device) from being slurped. */
#define POLICY_FILE_MAX (1024 * 1024)

#define MEDIA_LIST_CAP 64 /* "audio, video, screen, data" */

static const char usage_text[] =
    "usage: gatehouse policy check [--strict] FILE\n"
    "       gatehouse policy explain FROM TO MEDIA[,MEDIA...]\n"
    "           (-c CONFIG | --policy FILE) [--group-from G]... [--group-to G]...\n"
    "\n"
    "  check     validate a policy file and list its rules; --strict also\n"
    "            refuses groups that rules name but \"groups\" does not list\n"
    "  explain   show whether FROM may call TO with MEDIA (audio, video,\n"
    "            screen, data), and which rule decides; --group-from and\n"
    "            --group-to add groups as a token's claims would\n";

struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
};

static int usage(FILE *out, int code)
{
	fputs(usage_text, out);
	return code;
}

/* Output that did not reach its reader (a closed pipe, a full disk) is a
 * failure of the command, not a success with nothing to show. */
static int finish(int code)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "gatehouse: writing output: %s\n", strerror(errno));
		return EXIT_RUNTIME;
	}
	return code;
}

/* Reads a whole file of at most POLICY_FILE_MAX bytes into *out (owned:
 * free()). Returns 0, EXIT_USAGE for a file that cannot be a policy (not
 * there, not readable, a folder, too large) or EXIT_RUNTIME when reading
 * it fails; the message is printed here. */
static int read_policy_file(const char *path, char **out, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t used = 0;
	ssize_t n;
	int fd, rc = EXIT_USAGE;

	*out = NULL;
	*len = 0;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", path, strerror(errno));
		return EXIT_USAGE;
	}
	if (fstat(fd, &st) != 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", path, strerror(errno));
		rc = EXIT_RUNTIME;
		goto out;
	}
	if (S_ISDIR(st.st_mode)) {
		fprintf(stderr, "gatehouse: %s: %s\n", path, strerror(EISDIR));
		goto out;
	}
	if (S_ISREG(st.st_mode) && st.st_size > POLICY_FILE_MAX)
		goto too_large;
	/* One byte more than the limit tells a file of exactly the limit
	 * from a larger one, for pipes whose size stat cannot tell. */
	if ((buf = malloc(POLICY_FILE_MAX + 1)) == NULL) {
		fprintf(stderr, "gatehouse: %s: out of memory\n", path);
		rc = EXIT_RUNTIME;
		goto out;
	}
	while (used < POLICY_FILE_MAX + 1) {
		n = read(fd, buf + used, POLICY_FILE_MAX + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "gatehouse: %s: %s\n", path, strerror(errno));
			rc = errno == EISDIR ? EXIT_USAGE : EXIT_RUNTIME;
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	if (used > POLICY_FILE_MAX)
		goto too_large;
	*out = buf;
	*len = used;
	buf = NULL;
	rc = 0;
	goto out;
too_large:
	fprintf(stderr, "gatehouse: %s: larger than %d bytes (1 MiB)\n", path, POLICY_FILE_MAX);
	rc = EXIT_USAGE;
out:
	free(buf);
	close(fd);
	return rc;
}

/* Reads and parses; on failure prints "gatehouse: FILE: <error>" and
 * returns NULL with the exit code in *code. */
static struct policy *load_policy(const char *path, int *code)
{
	struct policy *p;
	char err[512];
	char *text;
	size_t len;

	if ((*code = read_policy_file(path, &text, &len)) != 0)
		return NULL;
	p = policy_parse(text, len, err, sizeof(err));
	free(text);
	if (p == NULL) {
		fprintf(stderr, "gatehouse: %s: %s\n", path, err);
		*code = EXIT_USAGE;
	}
	return p;
}

/* ---- check ---- */

static void print_line(void *ctx, const char *text)
{
	size_t *n = ctx;

	printf("%s\n", text);
	(*n)++;
}

struct undeclared {
	const char *path;
	bool strict;
	size_t n;
};

static void warn_undeclared(void *ctx, const char *group)
{
	struct undeclared *u = ctx;

	u->n++;
	fprintf(stderr, "gatehouse: %s: %s: group \"%s\" " POLICY_UNDECLARED_TEXT
	    "; check its spelling\n", u->path, u->strict ? "error" : "warning", group);
}

static void warn_recording(void *ctx, const char *rule)
{
	fprintf(stderr, "gatehouse: %s: warning: rule \"%s\" " POLICY_RECORD_TEXT "\n",
	    (const char *)ctx, rule);
}

static int cmd_check(int argc, char **argv)
{
	struct undeclared u = { .strict = argc == 3 && strcmp(argv[1], "--strict") == 0 };
	struct policy *p;
	size_t nrules = 0;
	int code;

	if (argc != 2 + u.strict)
		return usage(stderr, EXIT_USAGE);
	u.path = argv[1 + u.strict];
	if (u.path[0] == '-' && u.path[1] != '\0')
		return usage(stderr, EXIT_USAGE);
	if ((p = load_policy(u.path, &code)) == NULL)
		return code;
	policy_each_undeclared(p, warn_undeclared, &u);
	/* Strict: for a pipeline that wants every group of the file listed. */
	if (u.strict && u.n > 0) {
		policy_free(p);
		return EXIT_USAGE;
	}
	policy_each_recording_rule(p, warn_recording, (void *)u.path);
	policy_describe(p, print_line, &nrules);
	printf("%s: ok, %zu rule%s\n", u.path, nrules, nrules == 1 ? "" : "s");
	policy_free(p);
	return finish(0);
}

/* ---- explain ---- */

struct explain_args {
	const char *pos[3];     /* FROM, TO, MEDIA */
	size_t npos;
	const char *config;
	const char *policy;
	const char **groups_from; /* argc slots each, borrowed from argv */
	size_t ngroups_from;
	const char **groups_to;
	size_t ngroups_to;
};

/* Matches "--name VALUE" and "--name=VALUE" at argv[*i]; advances *i past
 * the value. Returns 1 on a match, 0 if argv[*i] is another word, -1
 * when the value is missing. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **value)
{
	size_t n = strlen(name);

	if (strcmp(argv[*i], name) == 0) {
		if (*i + 1 >= argc)
			return -1;
		*value = argv[++*i];
		return 1;
	}
	if (strncmp(argv[*i], name, n) == 0 && argv[*i][n] == '=' && name[1] == '-') {
		*value = argv[*i] + n + 1;
		return 1;
	}
	return 0;
}

static int parse_explain_args(int argc, char **argv, struct explain_args *a)
{
	const char *v;
	int i, m, start;

	for (i = 1; i < argc; i++) {
		v = NULL;
		start = i;
		if ((m = opt_value(argc, argv, &i, "-c", &v)) != 0 ||
		    (m = opt_value(argc, argv, &i, "--config", &v)) != 0) {
			if (m < 0)
				goto bad;
			if (a->config != NULL)
				goto twice;
			a->config = v;
		} else if ((m = opt_value(argc, argv, &i, "--policy", &v)) != 0) {
			if (m < 0)
				goto bad;
			if (a->policy != NULL)
				goto twice;
			a->policy = v;
		} else if ((m = opt_value(argc, argv, &i, "--group-from", &v)) != 0) {
			if (m < 0)
				goto bad;
			a->groups_from[a->ngroups_from++] = v;
		} else if ((m = opt_value(argc, argv, &i, "--group-to", &v)) != 0) {
			if (m < 0)
				goto bad;
			a->groups_to[a->ngroups_to++] = v;
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "gatehouse: unexpected option '%s'\n", argv[i]);
			return -1;
		} else if (a->npos < 3) {
			a->pos[a->npos++] = argv[i];
		} else {
			fprintf(stderr, "gatehouse: unexpected argument '%s'\n", argv[i]);
			return -1;
		}
		if (v != NULL && *v == '\0') {
			fprintf(stderr, "gatehouse: empty value for '%s'\n", argv[start]);
			return -1;
		}
	}
	if (a->npos != 3) {
		fprintf(stderr, "gatehouse: policy explain needs FROM, TO and MEDIA\n");
		return -1;
	}
	if ((a->config == NULL) == (a->policy == NULL)) {
		fprintf(stderr, "gatehouse: policy explain needs one of -c CONFIG or --policy FILE\n");
		return -1;
	}
	if (a->pos[0][0] == '\0' || a->pos[1][0] == '\0') {
		fprintf(stderr, "gatehouse: empty user name\n");
		return -1;
	}
	return 0;
bad:
	fprintf(stderr, "gatehouse: option '%s' needs a value\n", argv[start]);
	return -1;
twice:
	fprintf(stderr, "gatehouse: option '%s' given twice\n", argv[start]);
	return -1;
}

/* "audio,video" into a media set; 0 after printing why when a word is
 * empty or unknown. */
static unsigned parse_media_list(const char *list)
{
	char word[32];
	const char *s = list, *comma;
	unsigned media = 0, bit;
	size_t n;

	for (;;) {
		comma = strchr(s, ',');
		n = comma ? (size_t)(comma - s) : strlen(s);
		if (n == 0 || n >= sizeof(word)) {
			fprintf(stderr, "gatehouse: bad media list \"%s\" "
			    "(expected audio, video, screen or data, separated by commas)\n", list);
			return 0;
		}
		memcpy(word, s, n);
		word[n] = '\0';
		if ((bit = policy_media_parse(word)) == 0) {
			fprintf(stderr, "gatehouse: unknown media kind \"%s\" "
			    "(expected audio, video, screen or data)\n", word);
			return 0;
		}
		media |= bit;
		if (comma == NULL)
			return media;
		s = comma + 1;
	}
}

/* "audio, video" in the order of the bits. */
static const char *media_list(char *out, size_t cap, unsigned media)
{
	size_t used = 0;
	unsigned bit;
	int n;

	out[0] = '\0';
	for (bit = 1; bit & POLICY_MEDIA_ALL; bit <<= 1) {
		if (!(media & bit))
			continue;
		n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "",
		    policy_media_name(bit));
		if (n < 0 || (size_t)n >= cap - used)
			break;
		used += (size_t)n;
	}
	return out;
}

/* Appends a part of an explanation, "; " between parts. */
static void append(char *out, size_t cap, const char *part)
{
	size_t used = strlen(out);

	snprintf(out + used, cap - used, "%s%s", used ? "; " : "", part);
}

/* Why a call was refused, medium by medium: deciding each refused medium
 * alone tells a deny rule from the lack of an allow. The deciding rule's
 * part comes first, then other deny rules, then what no rule allows. */
static void explain_denial(const struct policy *p, const struct policy_subject *from,
    const struct policy_subject *to, const struct policy_decision *d, unsigned requested,
    char *out, size_t cap)
{
	struct {
		char rule[POLICY_NAME_MAX];
		unsigned media;
	} by[4];
	struct policy_decision one;
	char list[MEDIA_LIST_CAP], part[384];
	unsigned refused = requested & ~d->media, bit, none = 0;
	size_t nby = 0, i;

	out[0] = '\0';
	for (bit = 1; bit & POLICY_MEDIA_ALL; bit <<= 1) {
		if (!(refused & bit))
			continue;
		policy_decide(p, from, to, bit, &one);
		if (strcmp(one.rule, "default") == 0) {
			none |= bit;
			continue;
		}
		for (i = 0; i < nby && strcmp(by[i].rule, one.rule) != 0; i++)
			;
		if (i == nby) {
			memcpy(by[nby].rule, one.rule, sizeof(one.rule));
			by[nby++].media = 0;
		}
		by[i].media |= bit;
	}
	for (i = 0; i < nby; i++) {
		if (strcmp(by[i].rule, d->rule) == 0) {
			snprintf(part, sizeof(part), "denies %s",
			    media_list(list, sizeof(list), by[i].media));
			append(out, cap, part);
		}
	}
	for (i = 0; i < nby; i++) {
		if (strcmp(by[i].rule, d->rule) != 0) {
			snprintf(part, sizeof(part), "rule \"%s\" denies %s", by[i].rule,
			    media_list(list, sizeof(list), by[i].media));
			append(out, cap, part);
		}
	}
	if (none) {
		snprintf(part, sizeof(part), "no allow rule matches %s",
		    media_list(list, sizeof(list), none));
		append(out, cap, part);
	}
}

static int cmd_explain(int argc, char **argv)
{
	struct explain_args a = { .npos = 0 };
	struct policy_subject from, to;
	struct policy_decision d;
	struct config *cfg = NULL;
	struct policy *p = NULL;
	char why[512], list[MEDIA_LIST_CAP], err[512];
	const char *path;
	unsigned media;
	int code = EXIT_USAGE;

	a.groups_from = calloc((size_t)argc, sizeof(*a.groups_from));
	a.groups_to = calloc((size_t)argc, sizeof(*a.groups_to));
	if (a.groups_from == NULL || a.groups_to == NULL) {
		fprintf(stderr, "gatehouse: out of memory\n");
		code = EXIT_RUNTIME;
		goto out;
	}
	if (parse_explain_args(argc, argv, &a) != 0) {
		code = usage(stderr, EXIT_USAGE);
		goto out;
	}
	if ((media = parse_media_list(a.pos[2])) == 0)
		goto out;

	path = a.policy;
	if (a.config != NULL) {
		/* struct config holds many PATH_MAX buffers: too big for a stack. */
		if ((cfg = calloc(1, sizeof(*cfg))) == NULL) {
			fprintf(stderr, "gatehouse: out of memory\n");
			code = EXIT_RUNTIME;
			goto out;
		}
		if (config_load(a.config, cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "gatehouse: %s: %s\n", a.config, err);
			goto out;
		}
		if (cfg->policy_file[0] == '\0') {
			fprintf(stderr, "gatehouse: %s: no policy.file configured\n", a.config);
			goto out;
		}
		path = cfg->policy_file;
	}
	if ((p = load_policy(path, &code)) == NULL)
		goto out;

	from = (struct policy_subject){ a.pos[0], a.groups_from, a.ngroups_from };
	to = (struct policy_subject){ a.pos[1], a.groups_to, a.ngroups_to };
	policy_decide(p, &from, &to, media, &d);
	if (d.allow) {
		printf("allow: rule \"%s\" (media: %s; record: %s)\n", d.rule,
		    media_list(list, sizeof(list), d.media), d.record ? "yes" : "no");
	} else {
		explain_denial(p, &from, &to, &d, media, why, sizeof(why));
		printf("deny: rule \"%s\" (%s)\n", d.rule, why);
	}
	code = finish(0);
out:
	policy_free(p);
	free(cfg);
	free(a.groups_from);
	free(a.groups_to);
	return code;
}

/* ---- dispatch ---- */

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return usage(stdout, 0);
}

static const struct subcommand subcommands[] = {
	{ "check", cmd_check },
	{ "explain", cmd_explain },
	{ "help", cmd_help },
	{ "--help", cmd_help },
	{ "-h", cmd_help },
	{ NULL, NULL },
};

int cli_policy(int argc, char **argv)
{
	const struct subcommand *c;

	if (argc < 1)
		return usage(stderr, EXIT_USAGE);
	for (c = subcommands; c->name != NULL; c++)
		if (strcmp(argv[0], c->name) == 0)
			return c->run(argc, argv);
	fprintf(stderr, "gatehouse: unknown policy command '%s'\n", argv[0]);
	return usage(stderr, EXIT_USAGE);
}
