/* Unit tests for signaling/directory.c: local users with their groups and
 * the policy's names, sorted and each once, disabled users left out, and
 * read again only when invalidated or too old. */
#include "signaling/directory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signaling/password.h"
#include "tests/unit/check.h"

/* Any 32 bytes: the key that seals the TOTP secrets. */
static const uint8_t test_key[USERDB_KEY_LEN] = { 0x6b, 0x65, 0x79 };

static char tmpdir[64];

static struct policy *policy_of(const char *text)
{
	char err[256];
	struct policy *p = policy_parse(text, strlen(text), err, sizeof(err));

	if (p == NULL)
		fprintf(stderr, "test bug: policy: %s\n", err);
	return p;
}

/* "name:g1+g2,name2,..." of the directory's contents. */
static void render(const struct directory *d, char *out, size_t cap)
{
	const char *groups[IDENTITY_MAX_GROUPS];
	size_t i, k, n, used = 0;

	out[0] = '\0';
	for (i = 0; i < directory_count(d); i++) {
		used += (size_t)snprintf(out + used, cap - used, "%s%s", i ? "," : "",
		    directory_name(d, i));
		n = directory_groups(d, i, groups);
		for (k = 0; k < n; k++)
			used += (size_t)snprintf(out + used, cap - used, "%c%s", k ? '+' : ':',
			    groups[k]);
	}
}

int main(void)
{
	static const char *const sales[] = { "sales" }, *const two[] = { "ops", "sales" };
	struct directory *d = directory_new(NULL, NULL);
	struct userdb *db;
	struct policy *p;
	char err[256], text[512], cmd[128];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gh-test-directory-XXXXXX");
	if (mkdtemp(tmpdir) == NULL || d == NULL)
		return 2;
	password_set_cost_for_tests(8, 1);
	if ((db = userdb_open(tmpdir, test_key, err, sizeof(err))) == NULL) {
		fprintf(stderr, "userdb_open: %s\n", err);
		return 2;
	}
	CHECK_EQ_INT(userdb_add(db, "carol", "a long enough password", two, 2, false, NULL, 0),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "alice", "a long enough password", sales, 1, false, NULL, 0),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "mallory", "a long enough password", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_set_disabled(db, "mallory", true), USERDB_OK);
	p = policy_of("{\"groups\": {\"team\": [\"dave\", \"alice\"]}, \"rules\": ["
	    "{\"name\": \"r\", \"from\": \"group:team\", \"to\": \"user:bob\","
	    " \"media\": [\"audio\"], \"action\": \"allow\"}]}");

	/* Empty before the first refresh; then sorted, once each: alice
	 * keeps her users.db groups although the policy names her too;
	 * mallory is disabled; bob and dave come from the policy only. */
	CHECK_EQ_INT(directory_count(d), 0);
	CHECK(!directory_has(d, "alice"));
	directory_refresh(d, db, p, 1000);
	render(d, text, sizeof(text));
	CHECK(strcmp(text, "alice:sales,bob,carol:ops+sales,dave") == 0);
	CHECK(directory_has(d, "dave") && !directory_has(d, "mallory") && !directory_has(d, "zed"));

	/* Not read again until invalidated... */
	CHECK_EQ_INT(userdb_add(db, "erin", "a long enough password", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	directory_refresh(d, db, p, 2000);
	CHECK(!directory_has(d, "erin"));
	directory_invalidate(d);
	directory_refresh(d, db, p, 3000);
	CHECK(directory_has(d, "erin"));
	/* ...or too old (a change nobody reported). */
	CHECK_EQ_INT(userdb_del(db, "erin"), USERDB_OK);
	directory_refresh(d, db, p, 3000 + DIRECTORY_MAX_AGE_MS - 1);
	CHECK(directory_has(d, "erin"));
	directory_refresh(d, db, p, 3000 + DIRECTORY_MAX_AGE_MS);
	CHECK(!directory_has(d, "erin"));

	/* No users.db and no policy: empty. */
	directory_invalidate(d);
	directory_refresh(d, NULL, NULL, 100000);
	CHECK_EQ_INT(directory_count(d), 0);

	directory_free(d);
	policy_free(p);
	userdb_close(db);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
	return check_done("test_directory");
}
