/* Fuzz target: the policy file parser and decisions (policy/policy.c).
 *
 * The input is a policy file's text. When it parses, calls are decided
 * among a few fixed subjects (with and without outside groups) and the
 * first users the policy itself names, for every set of media.
 *
 * Invariants checked (abort() on violation):
 * - a refusal writes a one-line, NUL-terminated message;
 * - a decision allows only media that were asked for, "allow" means all
 *   of them, and it names a rule;
 * - policy_allowed_media() agrees with policy_decide() medium by medium
 *   (contacts must never offer what a call would refuse, or hide what it
 *   would allow);
 * - the groups that rules name without listing them come out sorted,
 *   once each, as valid names. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond) do { if (!(cond)) { \
	fprintf(stderr, "fuzz_policy: invariant failed at line %d: %s\n", \
	    __LINE__, #cond); \
	abort(); } } while (0)

#define MAX_NAMED 4

struct named {
	char names[MAX_NAMED][POLICY_NAME_MAX];
	size_t n;
	size_t seen;
};

static void collect_user(void *ctx, const char *user)
{
	struct named *nm = ctx;

	FUZZ_CHECK(user != NULL);
	nm->seen++;
	if (nm->n < MAX_NAMED && strlen(user) < POLICY_NAME_MAX)
		snprintf(nm->names[nm->n++], POLICY_NAME_MAX, "%s", user);
}

static void describe_line(void *ctx, const char *text)
{
	(void)ctx;
	FUZZ_CHECK(text != NULL);
	FUZZ_CHECK(strchr(text, '\n') == NULL || strchr(text, '\n')[1] == '\0');
}

/* Undeclared groups come out sorted, each once, as valid names. */
static void check_undeclared(void *ctx, const char *group)
{
	char *last = ctx;
	size_t n = strlen(group);

	FUZZ_CHECK(n > 0 && n < POLICY_NAME_MAX);
	FUZZ_CHECK(last[0] == '\0' || strcmp(last, group) < 0);
	memcpy(last, group, n + 1);
}

static void decide_pair(const struct policy *p, const struct policy_subject *a,
    const struct policy_subject *b)
{
	struct policy_decision d;
	unsigned media, bit, allowed;

	allowed = policy_allowed_media(p, a, b);
	FUZZ_CHECK((allowed & ~POLICY_MEDIA_ALL) == 0);
	for (media = 1; media <= POLICY_MEDIA_ALL; media++) {
		memset(&d, 0x5a, sizeof(d));
		policy_decide(p, a, b, media, &d);
		FUZZ_CHECK((d.media & ~media) == 0);
		FUZZ_CHECK(d.allow == (d.media == media));
		FUZZ_CHECK(memchr(d.rule, '\0', sizeof(d.rule)) != NULL && d.rule[0] != '\0');
		/* One medium at a time: the contacts list says the same. */
		for (bit = 1; bit <= POLICY_MEDIA_ALL; bit <<= 1)
			if (media == bit)
				FUZZ_CHECK(d.allow == ((allowed & bit) != 0));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const g_sales[] = { "sales" };
	static const char *const g_many[] = { "support", "contractors", "team", "sales" };
	struct policy_subject subj[4 + MAX_NAMED];
	struct named nm;
	struct policy *p;
	char err[256], last_group[POLICY_NAME_MAX];
	size_t i, j, ns;

	memset(err, 0x5a, sizeof(err));
	p = policy_parse((const char *)data, size, err, sizeof(err));
	if (p == NULL) {
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
		FUZZ_CHECK(err[0] != '\0');
		return 0;
	}
	memset(&nm, 0, sizeof(nm));
	policy_each_user(p, collect_user, &nm);
	policy_describe(p, describe_line, NULL);
	last_group[0] = '\0';
	policy_each_undeclared(p, check_undeclared, last_group);

	subj[0] = (struct policy_subject){ "alice", NULL, 0 };
	subj[1] = (struct policy_subject){ "bob", g_sales, 1 };
	subj[2] = (struct policy_subject){ "mallory", g_many, 4 };
	subj[3] = (struct policy_subject){ "dave", NULL, 0 };
	ns = 4;
	for (i = 0; i < nm.n; i++)
		subj[ns++] = (struct policy_subject){ nm.names[i], NULL, 0 };
	for (i = 0; i < ns; i++)
		for (j = 0; j < ns; j++)
			if (i != j || i == 0)
				decide_pair(p, &subj[i], &subj[j]);
	(void)policy_media_name(POLICY_SCREEN);
	policy_free(p);
	return 0;
}
