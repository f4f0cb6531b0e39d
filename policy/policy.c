/* The admin's policy (DESIGN.md, "Policy file"): parsed once from text into
 * plain arrays, then consulted without I/O.
 *
 * Parsing resolves every name a decision needs to an index, so that a
 * decision is a single pass over the rules comparing integers and testing
 * bits: each subject is first resolved to a user index and a bit set of
 * the policy's groups (from the file and from the caller's claims), and
 * each rule's "from"/"to" is a kind plus an index. A contacts list over
 * thousands of users is then thousands of such passes, with no string
 * compared inside the rule loop. */
#include "policy/policy.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Limits keep a hostile or mistaken file from costing unbounded memory or
 * time per decision; they are far above any real deployment's policy. */
#define POLICY_MAX_RULES 1024
#define POLICY_MAX_GROUPS 256
#define POLICY_MAX_MEMBERS 4096

#define GROUP_WORDS (POLICY_MAX_GROUPS / 64)
#define NO_INDEX UINT32_MAX

/* Longest place ("rules[1023].media[3]") or quoted value in a message;
 * longer ones are cut, not refused. */
#define PATH_CAP 160
#define QUOTE_CAP 72

#define NAME_RULE "1 to 63 characters of A-Z a-z 0-9 . _ @ -"

enum party_kind {
	PARTY_ANY = 0,
	PARTY_USER = 1,
	PARTY_GROUP = 2,
};

struct party {
	enum party_kind kind;
	uint32_t id;                        /* index into users[] or groups[] */
	char text[6 + POLICY_NAME_MAX];     /* as written: "group:" is the longest prefix */
};

struct rule {
	char name[POLICY_NAME_MAX];
	struct party from, to;
	unsigned media;                     /* enum policy_media bits */
	unsigned char order[4];             /* media bits' indexes, in file order */
	size_t norder;
	bool allow;
	bool record;
};

struct group {
	char name[POLICY_NAME_MAX];
	uint32_t file_idx;                  /* position in the file, for messages */
	bool declared;                      /* listed in "groups", not only in rules */
};

/* Every user the file names, sorted by name, with the groups the file
 * lists it in (bit i = groups[i]). */
struct user {
	char name[POLICY_NAME_MAX];
	uint64_t groups[GROUP_WORDS];
};

struct policy {
	struct rule *rules;
	size_t nrules;
	struct group *groups;               /* sorted by name */
	size_t ngroups;
	struct user *users;                 /* sorted by name, distinct */
	size_t nusers;
};

/* A subject resolved against one policy. */
struct resolved {
	uint32_t user;                      /* NO_INDEX: not named in the file */
	uint64_t groups[GROUP_WORDS];
};

/* What the rules matching a pair of subjects say, medium by medium. */
struct tally {
	unsigned allow;
	unsigned deny;
	unsigned record;
	const struct rule *first_allow;     /* that covers a requested medium */
	const struct rule *first_deny;      /* likewise */
};

/* A name mentioned while parsing: a group member or a "user:" target.
 * name is borrowed from the JSON tree, which outlives the build. */
struct mention {
	const char *name;
	uint32_t group;                     /* sorted group index; NO_INDEX for a rule */
	uint32_t pos;                       /* member index within its group */
};

struct parse {
	struct policy *p;
	struct mention *mentions;
	size_t nmentions;
	size_t cap_mentions;
	char *err;
	size_t errlen;
};

struct rule_key {
	const char *name;
	int (*parse)(struct parse *x, struct rule *r, json_t *v, const char *path);
};

static const struct {
	unsigned bit;
	const char *name;
} media_names[] = {
	{ POLICY_AUDIO, "audio" },
	{ POLICY_VIDEO, "video" },
	{ POLICY_SCREEN, "screen" },
	{ POLICY_DATA, "data" },
};

#define NMEDIA (sizeof(media_names) / sizeof(media_names[0]))

/* ---- media ---- */

unsigned policy_media_parse(const char *name)
{
	size_t i;

	if (name == NULL)
		return 0;
	for (i = 0; i < NMEDIA; i++)
		if (strcmp(name, media_names[i].name) == 0)
			return media_names[i].bit;
	return 0;
}

const char *policy_media_name(unsigned one_bit)
{
	size_t i;

	for (i = 0; i < NMEDIA; i++)
		if (one_bit == media_names[i].bit)
			return media_names[i].name;
	return NULL;
}

/* ---- messages ---- */

static int fail(struct parse *x, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Writes "<path>: <message>" (or just the message at the top level) into
 * the caller's buffer; returns -1. */
static int fail(struct parse *x, const char *path, const char *fmt, ...)
{
	va_list ap;
	int n = 0;

	if (x->err == NULL || x->errlen == 0)
		return -1;
	if (path != NULL && *path != '\0')
		n = snprintf(x->err, x->errlen, "%s: ", path);
	if (n >= 0 && (size_t)n < x->errlen) {
		va_start(ap, fmt);
		vsnprintf(x->err + n, x->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Text from the file goes into messages that are printed on terminals and
 * logged, so everything outside printable ASCII, and the quote and
 * backslash that would confuse a reader of "…", becomes \xNN. Cut with
 * "..." to fit. */
static const char *escape(char *out, size_t cap, const char *in)
{
	static const char hex[] = "0123456789abcdef";
	size_t used = 0;
	unsigned char c;

	for (; *in != '\0'; in++) {
		c = (unsigned char)*in;
		if (c >= 0x20 && c <= 0x7e && c != '"' && c != '\\') {
			if (used + 1 + 4 > cap)
				goto cut;
			out[used++] = (char)c;
		} else {
			if (used + 4 + 4 > cap)
				goto cut;
			out[used++] = '\\';
			out[used++] = 'x';
			out[used++] = hex[c >> 4];
			out[used++] = hex[c & 15];
		}
	}
	out[used] = '\0';
	return out;
cut:
	memcpy(out + used, "...", 4);
	return out;
}

static void path_key(char *out, const char *path, const char *key)
{
	char esc[QUOTE_CAP];

	if (snprintf(out, PATH_CAP, "%s.%s", path, escape(esc, sizeof(esc), key)) < 0)
		out[0] = '\0';
}

static void path_index(char *out, const char *path, size_t i)
{
	if (snprintf(out, PATH_CAP, "%s[%zu]", path, i) < 0)
		out[0] = '\0';
}

/* ---- names ---- */

/* User, group and rule names: short and from a set that needs no quoting
 * in logs, SDP-adjacent identifiers or the "user:"/"group:" syntax. */
static bool name_ok(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++) {
		if (n >= POLICY_NAME_MAX - 1)
			return false;
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
		    (s[n] >= '0' && s[n] <= '9') || strchr("._@-", s[n]) != NULL))
			return false;
	}
	return n > 0;
}

static int cmp_group_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct group *)elem)->name);
}

static int cmp_user_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct user *)elem)->name);
}

static int cmp_group(const void *a, const void *b)
{
	return strcmp(((const struct group *)a)->name, ((const struct group *)b)->name);
}

/* By name, then group, then position, so that a name listed twice in one
 * group ends up next to itself with the later listing second. */
static int cmp_mention(const void *a, const void *b)
{
	const struct mention *ma = a, *mb = b;
	int c;

	if ((c = strcmp(ma->name, mb->name)) != 0)
		return c;
	if (ma->group != mb->group)
		return ma->group < mb->group ? -1 : 1;
	if (ma->pos != mb->pos)
		return ma->pos < mb->pos ? -1 : 1;
	return 0;
}

static const struct group *group_find(const struct policy *p, const char *name)
{
	if (p->ngroups == 0)
		return NULL;
	return bsearch(name, p->groups, p->ngroups, sizeof(p->groups[0]), cmp_group_key);
}

static const struct user *user_find(const struct policy *p, const char *name)
{
	if (p->nusers == 0)
		return NULL;
	return bsearch(name, p->users, p->nusers, sizeof(p->users[0]), cmp_user_key);
}

static int mention_add(struct parse *x, const char *name, uint32_t group, uint32_t pos)
{
	struct mention *m;
	size_t cap;

	if (x->nmentions == x->cap_mentions) {
		cap = x->cap_mentions ? x->cap_mentions * 2 : 64;
		m = realloc(x->mentions, cap * sizeof(*m));
		if (m == NULL)
			return fail(x, NULL, "out of memory");
		x->mentions = m;
		x->cap_mentions = cap;
	}
	x->mentions[x->nmentions++] = (struct mention){ name, group, pos };
	return 0;
}

/* ---- groups ---- */

/* The name after "group:" in a rule's from or to, when there is a valid
 * one; anything else is left for the rule's own parsing to report. */
static const char *rule_group(json_t *rule, const char *key)
{
	const char *s = json_string_value(json_object_get(rule, key));

	return s != NULL && strncmp(s, "group:", 6) == 0 && name_ok(s + 6) ? s + 6 : NULL;
}

/* A group that rules name but "groups" does not list has no members in
 * the file: only the identity backend (users.db groups, token claims) can
 * put a user in it. DESIGN.md's example policy relies on that for
 * "contractors". It still needs a bit, so it joins the table here;
 * policy_each_undeclared() lets the tools warn about it, since it is also
 * what a misspelt group looks like. */
static int add_undeclared(struct parse *x, json_t *rules, size_t *n)
{
	static const char *const keys[] = { "from", "to" };
	struct policy *p = x->p;
	const char *name;
	json_t *rule;
	size_t i, k, j;

	json_array_foreach(rules, i, rule) {
		for (k = 0; k < 2; k++) {
			if ((name = rule_group(rule, keys[k])) == NULL)
				continue;
			for (j = 0; j < *n && strcmp(p->groups[j].name, name) != 0; j++)
				;
			if (j < *n)
				continue;
			if (*n == POLICY_MAX_GROUPS)
				return fail(x, "rules", "more than %d groups, with those "
				    "that only rules name", POLICY_MAX_GROUPS);
			memcpy(p->groups[*n].name, name, strlen(name) + 1);
			p->groups[*n].file_idx = (uint32_t)*n;
			(*n)++;
		}
	}
	return 0;
}

/* Groups are parsed before the rules so that a rule can be checked
 * against them, and sorted so that lookups are binary searches; the bit
 * of a group is its sorted index. Members are only noted here and merged
 * into the user table once the rules have added theirs. obj may be NULL
 * (no "groups"); rules is the file's "rules" when it is an array. */
static int parse_groups(struct parse *x, json_t *obj, json_t *rules)
{
	char path[PATH_CAP], ipath[PATH_CAP], esc[QUOTE_CAP];
	struct policy *p = x->p;
	uint32_t *to_sorted = NULL;
	size_t i, j, total = 0, first;
	const char *key;
	json_t *members, *m;
	int rc = -1;

	if (obj != NULL && !json_is_object(obj))
		return fail(x, "groups", "expected an object of group name: [user names]");
	if (json_object_size(obj) > POLICY_MAX_GROUPS)
		return fail(x, "groups", "more than %d groups", POLICY_MAX_GROUPS);
	/* Room for the undeclared groups too: at most two a rule. */
	p->groups = calloc(json_object_size(obj) + 2 * json_array_size(rules) + 1,
	    sizeof(*p->groups));
	if (p->groups == NULL)
		return fail(x, NULL, "out of memory");

	i = 0;
	json_object_foreach(obj, key, members) {
		path_key(path, "groups", key);
		if (!name_ok(key))
			return fail(x, path, "expected a group name (" NAME_RULE ")");
		if (!json_is_array(members))
			return fail(x, path, "expected a list of user names");
		total += json_array_size(members);
		if (total > POLICY_MAX_MEMBERS)
			return fail(x, path, "more than %d members in all groups",
			    POLICY_MAX_MEMBERS);
		json_array_foreach(members, j, m) {
			if (!json_is_string(m) || !name_ok(json_string_value(m))) {
				path_index(ipath, path, j);
				return fail(x, ipath, "expected a user name (" NAME_RULE ")");
			}
		}
		memcpy(p->groups[i].name, key, strlen(key) + 1);
		p->groups[i].file_idx = (uint32_t)i;
		p->groups[i].declared = true;
		i++;
	}
	if (add_undeclared(x, rules, &i) < 0)
		return -1;
	p->ngroups = i;
	qsort(p->groups, p->ngroups, sizeof(p->groups[0]), cmp_group);

	to_sorted = calloc(p->ngroups + 1, sizeof(*to_sorted));
	if (to_sorted == NULL)
		return fail(x, NULL, "out of memory");
	for (i = 0; i < p->ngroups; i++)
		to_sorted[p->groups[i].file_idx] = (uint32_t)i;

	first = x->nmentions;
	i = 0;
	json_object_foreach(obj, key, members) {
		json_array_foreach(members, j, m)
			if (mention_add(x, json_string_value(m), to_sorted[i], (uint32_t)j) < 0)
				goto out;
		i++;
	}

	/* A name listed twice in one group is harmless to decisions but is
	 * almost always a slip in editing (a missing rename), so say so. */
	if (x->nmentions > first)
		qsort(x->mentions + first, x->nmentions - first, sizeof(x->mentions[0]),
		    cmp_mention);
	for (i = first + 1; i < x->nmentions; i++) {
		if (x->mentions[i].group == x->mentions[i - 1].group &&
		    strcmp(x->mentions[i].name, x->mentions[i - 1].name) == 0) {
			path_key(path, "groups", p->groups[x->mentions[i].group].name);
			path_index(ipath, path, x->mentions[i].pos);
			fail(x, ipath, "duplicate member \"%s\"",
			    escape(esc, sizeof(esc), x->mentions[i].name));
			goto out;
		}
	}
	rc = 0;
out:
	free(to_sorted);
	return rc;
}

/* ---- rules ---- */

static int rule_name(struct parse *x, struct rule *r, json_t *v, const char *path)
{
	const char *s = json_string_value(v);

	if (s == NULL || !name_ok(s))
		return fail(x, path, "expected a rule name (" NAME_RULE ")");
	/* Decisions name "default" when no rule made them; a rule of that
	 * name would make audit records ambiguous. */
	if (strcmp(s, "default") == 0)
		return fail(x, path, "\"default\" is reserved for the default decision");
	memcpy(r->name, s, strlen(s) + 1);
	return 0;
}

static int parse_party(struct parse *x, struct party *pt, json_t *v, const char *path)
{
	char esc[QUOTE_CAP];
	const struct group *g;
	const char *s = json_string_value(v);

	if (s == NULL)
		return fail(x, path, "expected \"*\", \"user:NAME\" or \"group:NAME\"");
	if (strcmp(s, "*") == 0) {
		pt->kind = PARTY_ANY;
		pt->id = NO_INDEX;
	} else if (strncmp(s, "user:", 5) == 0) {
		if (!name_ok(s + 5))
			return fail(x, path, "invalid user name \"%s\" (" NAME_RULE ")",
			    escape(esc, sizeof(esc), s + 5));
		pt->kind = PARTY_USER;
		pt->id = NO_INDEX; /* resolved once the user table is built */
	} else if (strncmp(s, "group:", 6) == 0) {
		if (!name_ok(s + 6))
			return fail(x, path, "invalid group name \"%s\" (" NAME_RULE ")",
			    escape(esc, sizeof(esc), s + 6));
		/* Every group a rule names is in the table (add_undeclared). */
		if ((g = group_find(x->p, s + 6)) == NULL)
			return fail(x, path, "unknown group \"%s\"", escape(esc, sizeof(esc), s + 6));
		pt->kind = PARTY_GROUP;
		pt->id = (uint32_t)(g - x->p->groups);
	} else {
		return fail(x, path, "expected \"*\", \"user:NAME\" or \"group:NAME\", not \"%s\"",
		    escape(esc, sizeof(esc), s));
	}
	/* The checks above bound s to "group:" plus a name. */
	memcpy(pt->text, s, strlen(s) + 1);
	return 0;
}

static int rule_from(struct parse *x, struct rule *r, json_t *v, const char *path)
{
	return parse_party(x, &r->from, v, path);
}

static int rule_to(struct parse *x, struct rule *r, json_t *v, const char *path)
{
	return parse_party(x, &r->to, v, path);
}

static int rule_media(struct parse *x, struct rule *r, json_t *v, const char *path)
{
	char ipath[PATH_CAP], esc[QUOTE_CAP];
	unsigned bit;
	size_t i, k;
	json_t *m;

	if (!json_is_array(v) || json_array_size(v) == 0)
		return fail(x, path, "expected a non-empty list of media kinds");
	json_array_foreach(v, i, m) {
		path_index(ipath, path, i);
		if (!json_is_string(m))
			return fail(x, ipath, "expected a media kind (audio, video, screen or data)");
		if ((bit = policy_media_parse(json_string_value(m))) == 0)
			return fail(x, ipath, "unknown media kind \"%s\"",
			    escape(esc, sizeof(esc), json_string_value(m)));
		if (r->media & bit)
			return fail(x, ipath, "duplicate media kind \"%s\"", json_string_value(m));
		r->media |= bit;
		for (k = 0; media_names[k].bit != bit; k++)
			;
		r->order[r->norder++] = (unsigned char)k;
	}
	return 0;
}

static int rule_action(struct parse *x, struct rule *r, json_t *v, const char *path)
{
	const char *s = json_string_value(v);

	if (s != NULL && strcmp(s, "allow") == 0)
		r->allow = true;
	else if (s != NULL && strcmp(s, "deny") == 0)
		r->allow = false;
	else
		return fail(x, path, "expected \"allow\" or \"deny\"");
	return 0;
}

static int rule_record(struct parse *x, struct rule *r, json_t *v, const char *path)
{
	if (!json_is_boolean(v))
		return fail(x, path, "expected true or false");
	r->record = json_is_true(v);
	return 0;
}

static const struct rule_key rule_keys[] = {
	{ "name", rule_name },
	{ "from", rule_from },
	{ "to", rule_to },
	{ "media", rule_media },
	{ "action", rule_action },
	{ "record", rule_record },
	{ NULL, NULL },
};

static const char *const rule_required[] = { "name", "from", "to", "media", "action", NULL };

/* Each key is parsed in file order, so the first error in the file is the
 * one reported; then what is missing; then what only the whole rule can
 * tell. */
static int parse_rule(struct parse *x, struct rule *r, json_t *obj, const char *path)
{
	char kpath[PATH_CAP];
	const struct rule_key *k;
	const char *const *req;
	const char *key;
	json_t *v;

	if (!json_is_object(obj))
		return fail(x, path, "expected an object");
	json_object_foreach(obj, key, v) {
		path_key(kpath, path, key);
		for (k = rule_keys; k->name != NULL && strcmp(k->name, key) != 0; k++)
			;
		if (k->name == NULL)
			return fail(x, kpath, "unknown key");
		if (k->parse(x, r, v, kpath) < 0)
			return -1;
	}
	for (req = rule_required; *req != NULL; req++)
		if (json_object_get(obj, *req) == NULL)
			return fail(x, path, "missing \"%s\"", *req);
	/* Recording is something an allowed call does; on a deny rule it
	 * can only be a misunderstanding of what the rule does. */
	if (!r->allow && json_object_get(obj, "record") != NULL) {
		path_key(kpath, path, "record");
		return fail(x, kpath, "only an allow rule can record");
	}
	if (r->from.kind == PARTY_USER &&
	    mention_add(x, r->from.text + 5, NO_INDEX, 0) < 0)
		return -1;
	if (r->to.kind == PARTY_USER &&
	    mention_add(x, r->to.text + 5, NO_INDEX, 0) < 0)
		return -1;
	return 0;
}

static int cmp_rule_name(const void *a, const void *b)
{
	const struct rule *const *ra = a, *const *rb = b;
	int c;

	if ((c = strcmp((*ra)->name, (*rb)->name)) != 0)
		return c;
	return *ra < *rb ? -1 : *ra > *rb;
}

/* Decisions and audit records name rules, so a name must say which. */
static int check_rule_names(struct parse *x)
{
	char rpath[PATH_CAP], path[PATH_CAP], esc[QUOTE_CAP];
	const struct rule **byname;
	struct policy *p = x->p;
	size_t i;
	int rc = 0;

	if (p->nrules < 2)
		return 0;
	if ((byname = calloc(p->nrules, sizeof(*byname))) == NULL)
		return fail(x, NULL, "out of memory");
	for (i = 0; i < p->nrules; i++)
		byname[i] = &p->rules[i];
	qsort(byname, p->nrules, sizeof(*byname), cmp_rule_name);
	for (i = 1; i < p->nrules; i++) {
		if (strcmp(byname[i]->name, byname[i - 1]->name) == 0) {
			path_index(rpath, "rules", (size_t)(byname[i] - p->rules));
			path_key(path, rpath, "name");
			rc = fail(x, path, "duplicate rule name \"%s\" (first used by rules[%zu])",
			    escape(esc, sizeof(esc), byname[i]->name),
			    (size_t)(byname[i - 1] - p->rules));
			break;
		}
	}
	free(byname);
	return rc;
}

static int parse_rules(struct parse *x, json_t *arr)
{
	char path[PATH_CAP];
	struct policy *p = x->p;
	size_t i;
	json_t *v;

	if (!json_is_array(arr))
		return fail(x, "rules", "expected a list of rules");
	if (json_array_size(arr) > POLICY_MAX_RULES)
		return fail(x, "rules", "more than %d rules", POLICY_MAX_RULES);
	p->rules = calloc(json_array_size(arr) + 1, sizeof(*p->rules));
	if (p->rules == NULL)
		return fail(x, NULL, "out of memory");
	json_array_foreach(arr, i, v) {
		path_index(path, "rules", i);
		if (parse_rule(x, &p->rules[i], v, path) < 0)
			return -1;
		p->nrules++;
	}
	return check_rule_names(x);
}

/* ---- users ---- */

/* Merges every mention into one sorted table of distinct users carrying
 * their file groups, then points "user:" parties at it. */
static int build_users(struct parse *x)
{
	struct policy *p = x->p;
	const struct mention *m;
	const struct user *u;
	struct rule *r;
	size_t i;

	if (x->nmentions > 0)
		qsort(x->mentions, x->nmentions, sizeof(x->mentions[0]), cmp_mention);
	p->users = calloc(x->nmentions + 1, sizeof(*p->users));
	if (p->users == NULL)
		return fail(x, NULL, "out of memory");
	for (i = 0; i < x->nmentions; i++) {
		m = &x->mentions[i];
		if (p->nusers == 0 || strcmp(p->users[p->nusers - 1].name, m->name) != 0)
			memcpy(p->users[p->nusers++].name, m->name, strlen(m->name) + 1);
		if (m->group != NO_INDEX)
			p->users[p->nusers - 1].groups[m->group / 64] |= UINT64_C(1) << (m->group % 64);
	}
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		if (r->from.kind == PARTY_USER && (u = user_find(p, r->from.text + 5)) != NULL)
			r->from.id = (uint32_t)(u - p->users);
		if (r->to.kind == PARTY_USER && (u = user_find(p, r->to.text + 5)) != NULL)
			r->to.id = (uint32_t)(u - p->users);
	}
	return 0;
}

/* ---- the file ---- */

static const char *const top_keys[] = { "default", "groups", "rules", NULL };

static int parse_top(struct parse *x, json_t *root)
{
	char esc[QUOTE_CAP];
	const char *const *k;
	const char *key, *s;
	json_t *v;

	if (!json_is_object(root))
		return fail(x, NULL, "expected an object at the top level");
	json_object_foreach(root, key, v) {
		for (k = top_keys; *k != NULL && strcmp(*k, key) != 0; k++)
			;
		if (*k == NULL && *key == '\0')
			return fail(x, NULL, "unknown key \"\"");
		if (*k == NULL)
			return fail(x, escape(esc, sizeof(esc), key), "unknown key");
	}
	if ((v = json_object_get(root, "default")) != NULL) {
		s = json_string_value(v);
		/* Default deny is what the gateway promises (DESIGN.md, "zero
		 * trust"); a file asking otherwise must not load quietly. */
		if (s == NULL || strcmp(s, "deny") != 0)
			return fail(x, "default", "only \"deny\" is supported");
	}
	v = json_object_get(root, "rules");
	if (parse_groups(x, json_object_get(root, "groups"), json_is_array(v) ? v : NULL) < 0)
		return -1;
	if (v == NULL)
		return fail(x, NULL, "missing \"rules\"");
	if (parse_rules(x, v) < 0)
		return -1;
	return build_users(x);
}

struct policy *policy_parse(const char *text, size_t len, char *err, size_t errlen)
{
	struct parse x = { .err = err, .errlen = errlen };
	json_error_t jerr;
	json_t *root;
	char *c;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	if (text == NULL) {
		fail(&x, NULL, "no policy text");
		return NULL;
	}
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL) {
		/* jansson quotes the text near the error, which may be any
		 * bytes of the file; keep the message one printable line. */
		for (c = jerr.text; *c != '\0'; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
				*c = '?';
		if (err != NULL && errlen > 0)
			snprintf(err, errlen, "%d:%d: %s", jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	if ((x.p = calloc(1, sizeof(*x.p))) == NULL) {
		fail(&x, NULL, "out of memory");
	} else if (parse_top(&x, root) < 0) {
		policy_free(x.p);
		x.p = NULL;
	}
	free(x.mentions);
	json_decref(root);
	return x.p;
}

void policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	free(p->rules);
	free(p->groups);
	free(p->users);
	free(p);
}

/* ---- decisions ---- */

static void resolve(const struct policy *p, const struct policy_subject *s,
    struct resolved *out)
{
	const struct user *u;
	const struct group *g;
	size_t i, id;

	memset(out, 0, sizeof(*out));
	out->user = NO_INDEX;
	if (s == NULL)
		return;
	if (s->user != NULL && (u = user_find(p, s->user)) != NULL) {
		out->user = (uint32_t)(u - p->users);
		memcpy(out->groups, u->groups, sizeof(out->groups));
	}
	for (i = 0; s->groups != NULL && i < s->ngroups; i++) {
		/* Claimed groups that the file never names can match no rule. */
		if (s->groups[i] == NULL || (g = group_find(p, s->groups[i])) == NULL)
			continue;
		id = (size_t)(g - p->groups);
		out->groups[id / 64] |= UINT64_C(1) << (id % 64);
	}
}

static bool party_match(const struct party *pt, const struct resolved *s)
{
	switch (pt->kind) {
	case PARTY_ANY:
		return true;
	case PARTY_USER:
		return pt->id != NO_INDEX && pt->id == s->user;
	case PARTY_GROUP:
		return (s->groups[pt->id / 64] >> (pt->id % 64)) & 1;
	}
	return false;
}

static void tally_rules(const struct policy *p, const struct policy_subject *from,
    const struct policy_subject *to, unsigned requested, struct tally *t)
{
	struct resolved rf, rt;
	const struct rule *r;
	size_t i;

	memset(t, 0, sizeof(*t));
	if (p == NULL)
		return;
	resolve(p, from, &rf);
	resolve(p, to, &rt);
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		if (!party_match(&r->from, &rf) || !party_match(&r->to, &rt))
			continue;
		if (r->allow) {
			t->allow |= r->media;
			if (r->record)
				t->record |= r->media;
			if (t->first_allow == NULL && (r->media & requested))
				t->first_allow = r;
		} else {
			t->deny |= r->media;
			if (t->first_deny == NULL && (r->media & requested))
				t->first_deny = r;
		}
	}
}

void policy_decide(const struct policy *p, const struct policy_subject *from,
    const struct policy_subject *to, unsigned media, struct policy_decision *out)
{
	const char *name = "default";
	struct tally t;
	unsigned allowed;

	tally_rules(p, from, to, media, &t);
	allowed = media & t.allow & ~t.deny & POLICY_MEDIA_ALL;
	/* An empty request or an unknown bit fails closed: no rule can
	 * have allowed what it does not name. */
	out->allow = media != 0 && allowed == media;
	out->media = allowed;
	/* A refused call records nothing, whatever its allowed media say. */
	out->record = out->allow && (t.record & allowed) != 0;
	if (out->allow)
		name = t.first_allow->name;
	else if (t.first_deny != NULL)
		name = t.first_deny->name;
	memcpy(out->rule, name, strlen(name) + 1);
}

unsigned policy_allowed_media(const struct policy *p, const struct policy_subject *from,
    const struct policy_subject *to)
{
	struct tally t;

	tally_rules(p, from, to, POLICY_MEDIA_ALL, &t);
	return t.allow & ~t.deny & POLICY_MEDIA_ALL;
}

/* ---- listings ---- */

void policy_each_user(const struct policy *p, void (*fn)(void *ctx, const char *user),
    void *ctx)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nusers; i++)
		fn(ctx, p->users[i].name);
}

/* "1. sales-calls: allow group:sales -> group:sales [audio, video] record";
 * media in the file's order, so the listing reads like the file. */
void policy_describe(const struct policy *p, void (*line)(void *ctx, const char *text),
    void *ctx)
{
	char media[64], text[512];
	const struct rule *r;
	size_t i, k, used;
	int n;

	if (p == NULL)
		return;
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		used = 0;
		media[0] = '\0';
		for (k = 0; k < r->norder; k++) {
			n = snprintf(media + used, sizeof(media) - used, "%s%s",
			    k ? ", " : "", media_names[r->order[k]].name);
			if (n < 0 || (size_t)n >= sizeof(media) - used)
				break;
			used += (size_t)n;
		}
		snprintf(text, sizeof(text), "%zu. %s: %s %s -> %s [%s]%s", i + 1, r->name,
		    r->allow ? "allow" : "deny", r->from.text, r->to.text, media,
		    r->record ? " record" : "");
		line(ctx, text);
	}
}

void policy_each_undeclared(const struct policy *p, void (*fn)(void *ctx, const char *group),
    void *ctx)
{
	size_t i;

	for (i = 0; p != NULL && i < p->ngroups; i++)
		if (!p->groups[i].declared)
			fn(ctx, p->groups[i].name);
}

void policy_each_recording_rule(const struct policy *p,
    void (*fn)(void *ctx, const char *rule), void *ctx)
{
	size_t i;

	for (i = 0; p != NULL && i < p->nrules; i++)
		if (p->rules[i].record)
			fn(ctx, p->rules[i].name);
}
