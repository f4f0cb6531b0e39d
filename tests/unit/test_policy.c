/* Unit tests for policy/policy.c: the DESIGN.md example, every rule of a
 * decision (deny wins, default deny, partial media, groups from the file
 * and from claims, "*", record), every class of parse error with its
 * message, every prefix of a valid file, the limits, and the listings. */
#include "policy/policy.h"

#include <stdlib.h>
#include <string.h>

#include "tests/unit/check.h"

/* DESIGN.md's example with "contractors" listed (empty: its members come
 * from token claims); the example as printed names it without listing
 * it, which test_design_verbatim() covers. */
static const char design_policy[] =
    "{\n"
    "  \"default\": \"deny\",\n"
    "  \"groups\": { \"sales\": [\"alice\", \"bob\"], \"support\": [\"carol\"],\n"
    "              \"contractors\": [] },\n"
    "  \"rules\": [\n"
    "    {\"name\": \"sales-calls\", \"from\": \"group:sales\", \"to\": \"group:sales\",\n"
    "     \"media\": [\"audio\", \"video\", \"data\", \"screen\"], \"action\": \"allow\"},\n"
    "    {\"name\": \"support-recorded\", \"from\": \"group:support\", \"to\": \"user:dave\",\n"
    "     \"media\": [\"audio\"], \"action\": \"allow\", \"record\": true},\n"
    "    {\"name\": \"no-screens-for-contractors\", \"from\": \"group:contractors\", \"to\": \"*\",\n"
    "     \"media\": [\"screen\"], \"action\": \"deny\"}\n"
    "  ]\n"
    "}";

static struct policy *load(const char *text)
{
	char err[256];
	struct policy *p = policy_parse(text, strlen(text), err, sizeof(err));

	if (p == NULL) {
		fprintf(stderr, "test bug: policy did not parse: %s\n", err);
		check_failures++;
	}
	return p;
}

/* Parses text that must be refused and checks the message contains want. */
static void expect_error(const char *text, const char *want)
{
	char err[256];
	struct policy *p;

	memset(err, 'x', sizeof(err));
	p = policy_parse(text, strlen(text), err, sizeof(err));
	CHECK(p == NULL);
	check_count++;
	if (strstr(err, want) == NULL) {
		check_failures++;
		fprintf(stderr, "error for %s\n  got:  %s\n  want: %s\n", text, err, want);
	}
	policy_free(p);
}

static struct policy_subject subj(const char *user, const char *const *groups, size_t n)
{
	struct policy_subject s = { .user = user, .groups = groups, .ngroups = n };

	return s;
}

static struct policy_decision decide(const struct policy *p, const char *from,
    const char *to, unsigned media)
{
	struct policy_subject f = subj(from, NULL, 0), t = subj(to, NULL, 0);
	struct policy_decision d;

	memset(&d, 0x5a, sizeof(d));
	policy_decide(p, &f, &t, media, &d);
	return d;
}

static void test_design_example(void)
{
	static const char *const contractor[] = { "contractors" };
	struct policy_subject eve, alice;
	struct policy_decision d;
	struct policy *p = load(design_policy);

	if (p == NULL)
		return;
	d = decide(p, "alice", "bob", POLICY_AUDIO | POLICY_VIDEO | POLICY_DATA);
	CHECK(d.allow);
	CHECK_EQ_INT(d.media, POLICY_AUDIO | POLICY_VIDEO | POLICY_DATA);
	CHECK(!d.record);
	CHECK(strcmp(d.rule, "sales-calls") == 0);

	d = decide(p, "carol", "dave", POLICY_AUDIO);
	CHECK(d.allow);
	CHECK(d.record);
	CHECK(strcmp(d.rule, "support-recorded") == 0);

	/* Rules have a direction: dave may not call carol back. */
	d = decide(p, "dave", "carol", POLICY_AUDIO);
	CHECK(!d.allow);
	CHECK_EQ_INT(d.media, 0);
	CHECK(strcmp(d.rule, "default") == 0);

	d = decide(p, "alice", "carol", POLICY_AUDIO);
	CHECK(!d.allow);
	CHECK(strcmp(d.rule, "default") == 0);

	/* A self-call is decided like any other. */
	d = decide(p, "alice", "alice", POLICY_AUDIO);
	CHECK(d.allow);

	/* A contractor (by claim) in sales may share everything but screens. */
	eve = subj("eve", contractor, 1);
	alice = subj("alice", NULL, 0);
	{
		static const char *const both[] = { "contractors", "sales" };
		struct policy_subject eve2 = subj("eve", both, 2);

		policy_decide(p, &eve2, &alice, POLICY_AUDIO | POLICY_SCREEN, &d);
		CHECK(!d.allow);
		CHECK_EQ_INT(d.media, POLICY_AUDIO);
		CHECK(strcmp(d.rule, "no-screens-for-contractors") == 0);
		CHECK_EQ_INT(policy_allowed_media(p, &eve2, &alice),
		    POLICY_AUDIO | POLICY_VIDEO | POLICY_DATA);
	}
	policy_decide(p, &eve, &alice, POLICY_AUDIO, &d);
	CHECK(!d.allow);
	CHECK(strcmp(d.rule, "default") == 0);
	policy_free(p);
}

static void join_names(void *ctx, const char *group)
{
	char *out = ctx;

	if (out[0] != '\0')
		strcat(out, ",");
	strcat(out, group);
}

/* DESIGN.md prints "group:contractors" in a rule without listing the
 * group: it loads, the group's members come only from the identity
 * backend, and it is reported as undeclared (the tools warn, since a
 * misspelt group looks the same). */
static void test_design_verbatim(void)
{
	static const char *const both[] = { "contractors", "sales" };
	static const char verbatim[] =
	    "{\"default\": \"deny\","
	    " \"groups\": {\"sales\": [\"alice\", \"bob\"], \"support\": [\"carol\"]},"
	    " \"rules\": ["
	    "{\"name\": \"sales-calls\", \"from\": \"group:sales\", \"to\": \"group:sales\","
	    " \"media\": [\"audio\", \"video\", \"data\", \"screen\"], \"action\": \"allow\"},"
	    "{\"name\": \"support-recorded\", \"from\": \"group:support\", \"to\": \"user:dave\","
	    " \"media\": [\"audio\"], \"action\": \"allow\", \"record\": true},"
	    "{\"name\": \"no-screens-for-contractors\", \"from\": \"group:contractors\","
	    " \"to\": \"*\", \"media\": [\"screen\"], \"action\": \"deny\"}]}";
	struct policy_subject eve = subj("eve", both, 2), alice = subj("alice", NULL, 0);
	struct policy_decision d;
	char undeclared[256] = "", recording[256] = "";
	struct policy *p = load(verbatim);

	if (p == NULL)
		return;
	policy_each_undeclared(p, join_names, undeclared);
	CHECK(strcmp(undeclared, "contractors") == 0);
	policy_decide(p, &eve, &alice, POLICY_AUDIO | POLICY_SCREEN, &d);
	CHECK(!d.allow);
	CHECK_EQ_INT(d.media, POLICY_AUDIO);
	CHECK(strcmp(d.rule, "no-screens-for-contractors") == 0);
	/* A file member of sales is no contractor. */
	d = decide(p, "bob", "alice", POLICY_SCREEN);
	CHECK(d.allow);
	policy_free(p);

	/* Listed groups are not reported; each undeclared one is, once. */
	p = load(design_policy);
	undeclared[0] = '\0';
	policy_each_undeclared(p, join_names, undeclared);
	CHECK(strcmp(undeclared, "") == 0);
	policy_free(p);
	p = load("{\"groups\": {\"sales\": []}, \"rules\": ["
	    "{\"name\": \"a\", \"from\": \"group:sles\", \"to\": \"group:sales\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"},"
	    "{\"name\": \"b\", \"from\": \"group:ops\", \"to\": \"group:sles\","
	    " \"media\": [\"audio\"], \"action\": \"deny\"}]}");
	undeclared[0] = '\0';
	policy_each_undeclared(p, join_names, undeclared);
	CHECK(strcmp(undeclared, "ops,sles") == 0);
	/* Without "groups" at all, too. */
	policy_free(p);
	p = load("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"group:x\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}");
	undeclared[0] = '\0';
	policy_each_undeclared(p, join_names, undeclared);
	CHECK(strcmp(undeclared, "x") == 0);
	policy_free(p);

	/* Rules that ask for recording, in file order: nothing records yet,
	 * so the tools name each one. */
	p = load(design_policy);
	recording[0] = '\0';
	policy_each_recording_rule(p, join_names, recording);
	CHECK(strcmp(recording, "support-recorded") == 0);
	policy_free(p);
	p = load("{\"rules\": [{\"name\": \"r2\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\", \"record\": true},"
	    "{\"name\": \"plain\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"video\"], \"action\": \"allow\", \"record\": false},"
	    "{\"name\": \"r1\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"data\"], \"action\": \"allow\", \"record\": true}]}");
	recording[0] = '\0';
	policy_each_recording_rule(p, join_names, recording);
	CHECK(strcmp(recording, "r2,r1") == 0);
	policy_free(p);
}

static void test_deny_wins(void)
{
	struct policy_decision d;
	struct policy *p = load(
	    "{\"groups\": {\"all\": [\"a\", \"b\"]}, \"rules\": ["
	    "{\"name\": \"everyone\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\", \"video\"], \"action\": \"allow\"},"
	    "{\"name\": \"no-b\", \"from\": \"*\", \"to\": \"user:b\","
	    " \"media\": [\"audio\", \"video\", \"screen\", \"data\"], \"action\": \"deny\"},"
	    "{\"name\": \"late-allow\", \"from\": \"group:all\", \"to\": \"user:b\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}");

	if (p == NULL)
		return;
	/* The deny comes after one allow and before another: order does not
	 * matter, deny wins. */
	d = decide(p, "a", "b", POLICY_AUDIO);
	CHECK(!d.allow);
	CHECK_EQ_INT(d.media, 0);
	CHECK(strcmp(d.rule, "no-b") == 0);
	d = decide(p, "a", "c", POLICY_AUDIO | POLICY_VIDEO);
	CHECK(d.allow);
	CHECK(strcmp(d.rule, "everyone") == 0);
	/* "*" matches users the file never names. */
	d = decide(p, "zed", "yan", POLICY_VIDEO);
	CHECK(d.allow);
	d = decide(p, "zed", "yan", POLICY_SCREEN);
	CHECK(!d.allow);
	CHECK(strcmp(d.rule, "default") == 0);
	policy_free(p);
}

static void test_partial_media(void)
{
	struct policy_subject a = subj("a", NULL, 0), b = subj("b", NULL, 0);
	struct policy_decision d;
	struct policy *p = load(
	    "{\"rules\": ["
	    "{\"name\": \"voice\", \"from\": \"user:a\", \"to\": \"user:b\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"},"
	    "{\"name\": \"voice-c\", \"from\": \"user:a\", \"to\": \"user:c\","
	    " \"media\": [\"audio\", \"video\"], \"action\": \"allow\"},"
	    "{\"name\": \"no-video-c\", \"from\": \"*\", \"to\": \"user:c\","
	    " \"media\": [\"video\"], \"action\": \"deny\"}]}");

	if (p == NULL)
		return;
	/* Video lacks an allow: denied by default, audio still reported. */
	d = decide(p, "a", "b", POLICY_AUDIO | POLICY_VIDEO);
	CHECK(!d.allow);
	CHECK_EQ_INT(d.media, POLICY_AUDIO);
	CHECK(strcmp(d.rule, "default") == 0);
	CHECK(!d.record);
	CHECK_EQ_INT(policy_allowed_media(p, &a, &b), POLICY_AUDIO);
	CHECK_EQ_INT(policy_allowed_media(p, &b, &a), 0);
	d = decide(p, "a", "b", POLICY_AUDIO);
	CHECK(d.allow);
	CHECK(strcmp(d.rule, "voice") == 0);

	/* Video refused by a deny rule: that rule is named. */
	d = decide(p, "a", "c", POLICY_AUDIO | POLICY_VIDEO);
	CHECK(!d.allow);
	CHECK_EQ_INT(d.media, POLICY_AUDIO);
	CHECK(strcmp(d.rule, "no-video-c") == 0);

	/* An empty request or an unknown bit fails closed. */
	d = decide(p, "a", "b", 0);
	CHECK(!d.allow);
	CHECK(strcmp(d.rule, "default") == 0);
	d = decide(p, "a", "b", POLICY_AUDIO | 0x100);
	CHECK(!d.allow);
	CHECK_EQ_INT(d.media, POLICY_AUDIO);
	policy_free(p);
}

static void test_groups(void)
{
	static const char *const claims_ops[] = { "nobody-declared-this", "ops" };
	static const char *const claims_dev[] = { "dev" };
	struct policy_subject from, to;
	struct policy_decision d;
	struct policy *p = load(
	    "{\"groups\": {\"ops\": [], \"dev\": [\"dana\"]}, \"rules\": ["
	    "{\"name\": \"ops-to-dev\", \"from\": \"group:ops\", \"to\": \"group:dev\","
	    " \"media\": [\"audio\", \"screen\"], \"action\": \"allow\"}]}");

	if (p == NULL)
		return;
	/* ops from token claims, dev from the file. */
	from = subj("oscar", claims_ops, 2);
	to = subj("dana", NULL, 0);
	policy_decide(p, &from, &to, POLICY_SCREEN, &d);
	CHECK(d.allow);
	CHECK(strcmp(d.rule, "ops-to-dev") == 0);
	/* dev from claims works as well as from the file. */
	to = subj("dmitri", claims_dev, 1);
	policy_decide(p, &from, &to, POLICY_AUDIO | POLICY_SCREEN, &d);
	CHECK(d.allow);
	/* Without the claim oscar is nobody. */
	from = subj("oscar", NULL, 0);
	policy_decide(p, &from, &to, POLICY_AUDIO, &d);
	CHECK(!d.allow);
	/* Claims are not a user name: a user called "ops" is not in group ops. */
	from = subj("ops", NULL, 0);
	CHECK_EQ_INT(policy_allowed_media(p, &from, &to), 0);
	/* NULL user and NULL group entries are tolerated, and match nothing. */
	{
		static const char *const holes[] = { NULL, "ops" };

		from = subj(NULL, holes, 2);
		CHECK_EQ_INT(policy_allowed_media(p, &from, &to), POLICY_AUDIO | POLICY_SCREEN);
	}
	policy_free(p);
}

/* Many groups, so that group bits beyond the first word are exercised. */
static void test_many_groups(void)
{
	static const char *const claim[] = { "g199" };
	struct policy_subject from, to;
	struct policy *p;
	char *text;
	size_t used = 0, cap = 64 * 1024;
	int i;

	if ((text = malloc(cap)) == NULL)
		return;
	used += (size_t)snprintf(text + used, cap - used, "{\"groups\": {");
	for (i = 0; i < 256; i++)
		used += (size_t)snprintf(text + used, cap - used, "%s\"g%d\": [\"u%d\"]",
		    i ? ", " : "", i, i);
	used += (size_t)snprintf(text + used, cap - used, "}, \"rules\": ["
	    "{\"name\": \"r\", \"from\": \"group:g199\", \"to\": \"group:g255\","
	    " \"media\": [\"data\"], \"action\": \"allow\"}]}");
	p = load(text);
	if (p != NULL) {
		from = subj("u199", NULL, 0);
		to = subj("u255", NULL, 0);
		CHECK_EQ_INT(policy_allowed_media(p, &from, &to), POLICY_DATA);
		from = subj("u198", NULL, 0);
		CHECK_EQ_INT(policy_allowed_media(p, &from, &to), 0);
		from = subj("x", claim, 1);
		CHECK_EQ_INT(policy_allowed_media(p, &from, &to), POLICY_DATA);
		CHECK_EQ_INT(policy_allowed_media(p, &to, &from), 0);
	}
	policy_free(p);
	free(text);
}

static void test_record(void)
{
	struct policy_decision d;
	struct policy *p = load(
	    "{\"rules\": ["
	    "{\"name\": \"talk\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\", \"video\"], \"action\": \"allow\"},"
	    "{\"name\": \"rec-video\", \"from\": \"user:a\", \"to\": \"*\","
	    " \"media\": [\"video\"], \"action\": \"allow\", \"record\": true},"
	    "{\"name\": \"rec-screen\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"screen\"], \"action\": \"allow\", \"record\": true},"
	    "{\"name\": \"no-screen-b\", \"from\": \"*\", \"to\": \"user:b\","
	    " \"media\": [\"screen\"], \"action\": \"deny\"},"
	    "{\"name\": \"quiet\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"data\"], \"action\": \"allow\", \"record\": false}]}");

	if (p == NULL)
		return;
	d = decide(p, "a", "c", POLICY_AUDIO);
	CHECK(d.allow);
	CHECK(!d.record);          /* only video is recorded for a */
	CHECK(strcmp(d.rule, "talk") == 0);
	d = decide(p, "a", "c", POLICY_AUDIO | POLICY_VIDEO);
	CHECK(d.allow);
	CHECK(d.record);
	CHECK(strcmp(d.rule, "talk") == 0); /* the first allow rule that matched */
	d = decide(p, "x", "c", POLICY_VIDEO);
	CHECK(d.allow);
	CHECK(!d.record);
	d = decide(p, "x", "c", POLICY_SCREEN);
	CHECK(d.allow);
	CHECK(d.record);
	CHECK(strcmp(d.rule, "rec-screen") == 0);
	/* Screen is denied toward b: its recording allow does not count. */
	d = decide(p, "x", "b", POLICY_AUDIO | POLICY_SCREEN);
	CHECK(!d.allow);
	CHECK(!d.record);
	CHECK(strcmp(d.rule, "no-screen-b") == 0);
	d = decide(p, "x", "c", POLICY_DATA);
	CHECK(d.allow);
	CHECK(!d.record);
	policy_free(p);
}

static void test_empty_rules(void)
{
	static const char *const g[] = { "sales" };
	struct policy_subject a = subj("alice", g, 1);
	struct policy_decision d;
	struct policy *p = load("{\"rules\": []}");

	if (p == NULL)
		return;
	policy_decide(p, &a, &a, POLICY_MEDIA_ALL, &d);
	CHECK(!d.allow);
	CHECK_EQ_INT(d.media, 0);
	CHECK(!d.record);
	CHECK(strcmp(d.rule, "default") == 0);
	CHECK_EQ_INT(policy_allowed_media(p, &a, &a), 0);
	policy_free(p);

	/* A NULL policy decides like an empty one. */
	policy_decide(NULL, &a, &a, POLICY_AUDIO, &d);
	CHECK(!d.allow);
	CHECK(strcmp(d.rule, "default") == 0);
	policy_free(NULL);
}

static void test_errors(void)
{
	char big[65];
	char *text;
	size_t used, cap;
	int i;

	/* JSON syntax: "LINE:COL: text". */
	expect_error("{\"rules\": [\n  {\"name\": }\n]}", "2:12: ");
	expect_error("", "1:0: ");
	expect_error("{\"rules\": []} x", "1:");
	expect_error("{\"rules\": [], \"rules\": []}", "duplicate object key");
	expect_error("{\"rules\": [{\"name\": \"a\", \"name\": \"b\"}]}", "duplicate object key");
	expect_error("{\"rules\": [\"a\\u0000b\"]}", "1:");
	/* Raw bytes quoted by jansson reach the message only as '?'. */
	expect_error("{\"rules\": [\x1b[31m]}", "near '?'");

	/* Deeply nested junk: refused by the parser's depth limit, or (when
	 * shallow enough to parse) by the type of the place it sits in. */
	text = malloc(200001);
	if (text != NULL) {
		memset(text, '[', 100000);
		memset(text + 100000, ']', 100000);
		text[200000] = '\0';
		expect_error(text, "maximum parsing depth");
		memcpy(text, "{\"rules\": ", 10);
		expect_error(text, "1:");
		free(text);
	}
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [[[[[[[[[[\"audio\"]]]]]]]]]], \"action\": \"allow\"}]}",
	    "rules[0].media[0]: expected a media kind");
	expect_error("{\"rules\": [[{\"name\": \"a\"}]]}", "rules[0]: expected an object");
	expect_error("{\"rules\": {\"a\": {}}}", "rules: expected a list of rules");
	expect_error("{\"groups\": {\"s\": [[\"alice\"]]}, \"rules\": []}",
	    "groups.s[0]: expected a user name");

	/* Top level. */
	expect_error("[]", "expected an object at the top level");
	expect_error("{}", "missing \"rules\"");
	expect_error("{\"groups\": {}}", "missing \"rules\"");
	expect_error("{\"rules\": [], \"colour\": 1}", "colour: unknown key");
	expect_error("{\"rules\": [], \"\": 1}", "unknown key \"\"");
	expect_error("{\"default\": \"allow\", \"rules\": []}", "default: only \"deny\" is supported");
	expect_error("{\"default\": false, \"rules\": []}", "default: only \"deny\"");

	/* Groups. */
	expect_error("{\"groups\": [], \"rules\": []}", "groups: expected an object");
	expect_error("{\"groups\": {\"sales\": \"alice\"}, \"rules\": []}",
	    "groups.sales: expected a list of user names");
	expect_error("{\"groups\": {\"sales\": [1]}, \"rules\": []}",
	    "groups.sales[0]: expected a user name");
	expect_error("{\"groups\": {\"sales\": [\"alice\", \"bad name\"]}, \"rules\": []}",
	    "groups.sales[1]: expected a user name");
	expect_error("{\"groups\": {\"sales\": [\"\"]}, \"rules\": []}",
	    "groups.sales[0]: expected a user name");
	expect_error("{\"groups\": {\"sa les\": []}, \"rules\": []}",
	    "groups.sa les: expected a group name");
	expect_error("{\"groups\": {\"s\\\"x\": []}, \"rules\": []}",
	    "groups.s\\x22x: expected a group name");
	expect_error("{\"groups\": {\"sales\": [\"alice\", \"bob\", \"alice\"]}, \"rules\": []}",
	    "groups.sales[2]: duplicate member \"alice\"");
	/* Names are 1 to 63 characters: 63 loads, 64 does not. */
	memset(big, 'a', sizeof(big));
	big[64] = '\0';
	{
		char t[256];

		snprintf(t, sizeof(t), "{\"groups\": {\"g\": [\"%s\"]}, \"rules\": []}", big);
		expect_error(t, "groups.g[0]: expected a user name");
		big[63] = '\0';
		snprintf(t, sizeof(t), "{\"groups\": {\"g\": [\"%s\"]}, \"rules\": []}", big);
		policy_free(load(t));
	}

	/* Rules: every required key, unknown keys, every value. */
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"},"
	    " {\"name\": \"b\", \"from\": \"*\", \"to\": \"*\", \"media\": [\"audio\"]}]}",
	    "rules[1]: missing \"action\"");
	expect_error("{\"rules\": [{\"from\": \"*\", \"to\": \"*\", \"media\": [\"audio\"],"
	    " \"action\": \"allow\"}]}", "rules[0]: missing \"name\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"to\": \"*\", \"media\": [\"audio\"],"
	    " \"action\": \"allow\"}]}", "rules[0]: missing \"from\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"media\": [\"audio\"],"
	    " \"action\": \"allow\"}]}", "rules[0]: missing \"to\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"action\": \"allow\"}]}", "rules[0]: missing \"media\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\", \"colour\": \"red\"}]}",
	    "rules[0].colour: unknown key");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\", \"vidoe\"], \"action\": \"allow\"}]}",
	    "rules[0].media[1]: unknown media kind \"vidoe\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\\u001b[31m\"], \"action\": \"allow\"}]}",
	    "unknown media kind \"audio\\x1b[31m\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\", \"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].media[1]: duplicate media kind \"audio\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [], \"action\": \"allow\"}]}",
	    "rules[0].media: expected a non-empty list");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": \"audio\", \"action\": \"allow\"}]}",
	    "rules[0].media: expected a non-empty list");
	expect_error("{\"groups\": {\"sales\": []}, \"rules\": [{\"name\": \"a\","
	    " \"from\": \"group:s les\", \"to\": \"*\", \"media\": [\"audio\"],"
	    " \"action\": \"allow\"}]}",
	    "rules[0].from: invalid group name \"s les\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"group:\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].to: invalid group name \"\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"alice\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].from: expected \"*\", \"user:NAME\" or \"group:NAME\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": 7,"
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].to: expected \"*\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"user:\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].from: invalid user name \"\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"group:a:b\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].to: invalid group name \"a:b\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"permit\"}]}",
	    "rules[0].action: expected \"allow\" or \"deny\"");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\", \"record\": \"yes\"}]}",
	    "rules[0].record: expected true or false");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"deny\", \"record\": true}]}",
	    "rules[0].record: only an allow rule can record");
	expect_error("{\"rules\": [{\"name\": \"a\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"record\": false, \"action\": \"deny\"}]}",
	    "rules[0].record: only an allow rule can record");
	expect_error("{\"rules\": [{\"name\": \"a b\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].name: expected a rule name");
	expect_error("{\"rules\": [{\"name\": 3, \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].name: expected a rule name");
	expect_error("{\"rules\": [{\"name\": \"default\", \"from\": \"*\", \"to\": \"*\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}",
	    "rules[0].name: \"default\" is reserved");
	expect_error("{\"rules\": ["
	    "{\"name\": \"x\", \"from\": \"*\", \"to\": \"*\", \"media\": [\"audio\"], \"action\": \"allow\"},"
	    "{\"name\": \"y\", \"from\": \"*\", \"to\": \"*\", \"media\": [\"audio\"], \"action\": \"allow\"},"
	    "{\"name\": \"x\", \"from\": \"*\", \"to\": \"*\", \"media\": [\"video\"], \"action\": \"deny\"}]}",
	    "rules[2].name: duplicate rule name \"x\" (first used by rules[0])");

	/* Limits: one past each. */
	cap = 1100 * 100 + 64;
	if ((text = malloc(cap)) != NULL) {
		used = (size_t)snprintf(text, cap, "{\"rules\": [");
		for (i = 0; i < 1025; i++)
			used += (size_t)snprintf(text + used, cap - used,
			    "%s{\"name\": \"r%d\", \"from\": \"*\", \"to\": \"*\","
			    " \"media\": [\"audio\"], \"action\": \"allow\"}", i ? "," : "", i);
		snprintf(text + used, cap - used, "]}");
		expect_error(text, "rules: more than 1024 rules");
		/* ...and exactly at it. */
		used = (size_t)snprintf(text, cap, "{\"rules\": [");
		for (i = 0; i < 1024; i++)
			used += (size_t)snprintf(text + used, cap - used,
			    "%s{\"name\": \"r%d\", \"from\": \"*\", \"to\": \"*\","
			    " \"media\": [\"audio\"], \"action\": \"allow\"}", i ? "," : "", i);
		snprintf(text + used, cap - used, "]}");
		policy_free(load(text));

		used = (size_t)snprintf(text, cap, "{\"groups\": {");
		for (i = 0; i < 257; i++)
			used += (size_t)snprintf(text + used, cap - used, "%s\"g%d\": []",
			    i ? "," : "", i);
		snprintf(text + used, cap - used, "}, \"rules\": []}");
		expect_error(text, "groups: more than 256 groups");
		/* Groups that only rules name count toward the limit too. */
		used = (size_t)snprintf(text, cap, "{\"groups\": {");
		for (i = 0; i < 255; i++)
			used += (size_t)snprintf(text + used, cap - used, "%s\"g%d\": []",
			    i ? "," : "", i);
		used += (size_t)snprintf(text + used, cap - used, "}, \"rules\": ["
		    "{\"name\": \"a\", \"from\": \"group:g0\", \"to\": \"group:new1\","
		    " \"media\": [\"audio\"], \"action\": \"allow\"}");
		snprintf(text + used, cap - used, "]}");
		policy_free(load(text));
		snprintf(text + used, cap - used, ",{\"name\": \"b\", \"from\": \"group:new2\","
		    " \"to\": \"*\", \"media\": [\"audio\"], \"action\": \"deny\"}]}");
		expect_error(text, "rules: more than 256 groups, with those that only rules name");

		used = (size_t)snprintf(text, cap, "{\"groups\": {\"a\": [");
		for (i = 0; i < 4000; i++)
			used += (size_t)snprintf(text + used, cap - used, "%s\"u%d\"", i ? "," : "", i);
		used += (size_t)snprintf(text + used, cap - used, "], \"b\": [");
		for (i = 0; i < 97; i++)
			used += (size_t)snprintf(text + used, cap - used, "%s\"u%d\"", i ? "," : "", i);
		snprintf(text + used, cap - used, "]}, \"rules\": []}");
		expect_error(text, "groups.b: more than 4096 members in all groups");
		free(text);
	}

	/* A NULL text, and a NULL or zero-length error buffer, are survived. */
	CHECK(policy_parse(NULL, 0, NULL, 0) == NULL);
	CHECK(policy_parse("[", 1, NULL, 0) == NULL);
	CHECK(policy_parse("{\"rules\": 1}", 12, big, 0) == NULL);
	{
		char tiny[8];

		CHECK(policy_parse("{\"rules\": 1}", 12, tiny, sizeof(tiny)) == NULL);
		CHECK_EQ_INT(strlen(tiny), 7);
	}
}

/* Every strict prefix of a valid file is refused, and none crashes. */
static void test_prefixes(void)
{
	char err[256];
	struct policy *p;
	size_t n, len = strlen(design_policy);

	for (n = 0; n < len; n++) {
		p = policy_parse(design_policy, n, err, sizeof(err));
		check_count++;
		if (p != NULL) {
			check_failures++;
			fprintf(stderr, "prefix of %zu bytes parsed\n", n);
			policy_free(p);
		}
	}
	p = policy_parse(design_policy, len, err, sizeof(err));
	CHECK(p != NULL);
	policy_free(p);
}

struct lines {
	char buf[2048];
	size_t used;
	int n;
};

static void collect(void *ctx, const char *text)
{
	struct lines *l = ctx;
	int n;

	n = snprintf(l->buf + l->used, sizeof(l->buf) - l->used, "%s\n", text);
	if (n > 0 && (size_t)n < sizeof(l->buf) - l->used)
		l->used += (size_t)n;
	l->n++;
}

static void test_listings(void)
{
	struct lines users = { .used = 0 }, rules = { .used = 0 };
	struct policy *p = load(
	    "{\"groups\": {\"sales\": [\"bob\", \"alice\"], \"support\": [\"carol\", \"alice\"],"
	    " \"contractors\": []}, \"rules\": ["
	    "{\"name\": \"sales-calls\", \"from\": \"group:sales\", \"to\": \"group:sales\","
	    " \"media\": [\"audio\", \"video\", \"data\", \"screen\"], \"action\": \"allow\"},"
	    "{\"name\": \"support-recorded\", \"from\": \"group:support\", \"to\": \"user:dave\","
	    " \"media\": [\"audio\"], \"action\": \"allow\", \"record\": true},"
	    "{\"name\": \"to-alice\", \"from\": \"user:zoe\", \"to\": \"user:alice\","
	    " \"media\": [\"data\"], \"action\": \"allow\"},"
	    "{\"name\": \"no-screens-for-contractors\", \"from\": \"group:contractors\", \"to\": \"*\","
	    " \"media\": [\"screen\"], \"action\": \"deny\"}]}");

	if (p == NULL)
		return;
	policy_each_user(p, collect, &users);
	CHECK_EQ_INT(users.n, 5);
	CHECK(strcmp(users.buf, "alice\nbob\ncarol\ndave\nzoe\n") == 0);

	policy_describe(p, collect, &rules);
	CHECK_EQ_INT(rules.n, 4);
	CHECK(strcmp(rules.buf,
	    "1. sales-calls: allow group:sales -> group:sales [audio, video, data, screen]\n"
	    "2. support-recorded: allow group:support -> user:dave [audio] record\n"
	    "3. to-alice: allow user:zoe -> user:alice [data]\n"
	    "4. no-screens-for-contractors: deny group:contractors -> * [screen]\n") == 0);
	if (strncmp(rules.buf, "1. sales-calls", 14) != 0)
		fprintf(stderr, "describe gave:\n%s", rules.buf);

	/* alice is in both groups from the file; zoe reaches her only by rule. */
	{
		struct policy_subject zoe = subj("zoe", NULL, 0), alice = subj("alice", NULL, 0);
		struct policy_subject dave = subj("dave", NULL, 0);

		CHECK_EQ_INT(policy_allowed_media(p, &zoe, &alice), POLICY_DATA);
		CHECK_EQ_INT(policy_allowed_media(p, &alice, &zoe), 0);
		CHECK_EQ_INT(policy_allowed_media(p, &alice, &dave), POLICY_AUDIO);
	}
	policy_free(p);

	/* Empty listings call nothing. */
	p = load("{\"rules\": []}");
	users.n = rules.n = 0;
	policy_each_user(p, collect, &users);
	policy_describe(p, collect, &rules);
	CHECK_EQ_INT(users.n, 0);
	CHECK_EQ_INT(rules.n, 0);
	policy_free(p);
}

static void test_media_names(void)
{
	CHECK_EQ_INT(policy_media_parse("audio"), POLICY_AUDIO);
	CHECK_EQ_INT(policy_media_parse("video"), POLICY_VIDEO);
	CHECK_EQ_INT(policy_media_parse("screen"), POLICY_SCREEN);
	CHECK_EQ_INT(policy_media_parse("data"), POLICY_DATA);
	CHECK_EQ_INT(policy_media_parse("Audio"), 0);
	CHECK_EQ_INT(policy_media_parse(""), 0);
	CHECK_EQ_INT(policy_media_parse(NULL), 0);
	CHECK(strcmp(policy_media_name(POLICY_AUDIO), "audio") == 0);
	CHECK(strcmp(policy_media_name(POLICY_DATA), "data") == 0);
	CHECK(policy_media_name(POLICY_AUDIO | POLICY_VIDEO) == NULL);
	CHECK(policy_media_name(0) == NULL);
}

int main(void)
{
	test_design_example();
	test_design_verbatim();
	test_deny_wins();
	test_partial_media();
	test_groups();
	test_many_groups();
	test_record();
	test_empty_rules();
	test_errors();
	test_prefixes();
	test_listings();
	test_media_names();
	return check_done("test_policy");
}
