/* privdrop.c: the /proc status parser, the "folder of its own" rule and
 * the file mode checks at start. The switch itself (privdrop_apply) needs
 * a root start and is covered by tests/integration/test_privdrop.py. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config.h"
#include "gateway/privdrop.h"
#include "tests/unit/check.h"

static char tmpdir[256];
static char err[1024];
static struct config cfg;

static const char status_root[] =
    "Name:\tgatehouse\n"
    "Umask:\t0022\n"
    "State:\tS (sleeping)\n"
    "Tgid:\t4242\n"
    "Uid:\t0\t0\t0\t0\n"
    "Gid:\t0\t0\t0\t0\n"
    "FDSize:\t64\n"
    "Groups:\t0 4 27 \n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t000001ffffffffff\n"
    "CapEff:\t000001ffffffffff\n"
    "CapBnd:\t000001ffffffffff\n"
    "CapAmb:\t0000000000000400\n"
    "NoNewPrivs:\t0\n"
    "Seccomp:\t0\n";

static const char status_dropped[] =
    "Name:\tgatehouse\n"
    "Uid:\t65534\t65534\t65534\t65534\n"
    "Gid:\t65534\t65534\t65534\t65534\n"
    "Groups:\t\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t0000000000000000\n"
    "CapEff:\t0000000000000000\n"
    "CapBnd:\t000001ffffffffff\n"
    "CapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t1\n";

/* Linux before 4.3 has no CapAmb line, before 4.10 no NoNewPrivs; the
 * last line may lack its newline. */
static const char status_old[] =
    "Uid:\t1000\t1001\t1002\t1003\n"
    "Gid:\t2000\t2001\t2002\t2003\n"
    "Groups:\t5\n"
    "CapInh:\t0000000000000000\n"
    "CapPrm:\t0000000000000000\n"
    "CapEff:\t0000000000000001";

static void test_status_parse(void)
{
	struct privdrop_status st;
	char buf[2048], *cut;
	const char *const need[] = { "Uid:", "Gid:", "Groups:", "CapInh:", "CapPrm:", "CapEff:" };
	size_t i;

	CHECK_EQ_INT(privdrop_status_parse(status_root, &st), 0);
	CHECK_EQ_INT(st.uid[0], 0);
	CHECK_EQ_INT(st.gid[3], 0);
	CHECK_EQ_INT(st.ngroups, 3);
	CHECK(st.cap_prm == 0x1ffffffffffULL && st.cap_eff == 0x1ffffffffffULL);
	CHECK(st.cap_amb == 0x400 && st.cap_inh == 0);
	CHECK_EQ_INT(st.no_new_privs, 0);

	CHECK_EQ_INT(privdrop_status_parse(status_dropped, &st), 0);
	for (i = 0; i < 4; i++) {
		CHECK_EQ_INT(st.uid[i], 65534);
		CHECK_EQ_INT(st.gid[i], 65534);
	}
	CHECK_EQ_INT(st.ngroups, 0);
	CHECK((st.cap_inh | st.cap_prm | st.cap_eff | st.cap_amb) == 0);
	CHECK_EQ_INT(st.no_new_privs, 1);

	CHECK_EQ_INT(privdrop_status_parse(status_old, &st), 0);
	CHECK(st.uid[0] == 1000 && st.uid[1] == 1001 && st.uid[2] == 1002 && st.uid[3] == 1003);
	CHECK(st.gid[0] == 2000 && st.gid[3] == 2003);
	CHECK_EQ_INT(st.ngroups, 1);
	CHECK(st.cap_eff == 1 && st.cap_amb == 0);
	CHECK_EQ_INT(st.no_new_privs, -1);

	/* Each line the checks rely on is required. */
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", status_dropped);
		cut = strstr(buf, need[i]);
		CHECK(cut != NULL);
		if (cut != NULL)
			cut[0] = 'X';
		CHECK_EQ_INT(privdrop_status_parse(buf, &st), -1);
	}
	/* Malformed values are errors, not zeros. */
	CHECK_EQ_INT(privdrop_status_parse("Uid:\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n"
	    "CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\n", &st), -1);
	CHECK_EQ_INT(privdrop_status_parse("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n"
	    "CapInh:\t0\nCapPrm:\tzz\nCapEff:\t0\n", &st), -1);
	CHECK_EQ_INT(privdrop_status_parse("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n"
	    "CapInh:\t0\nCapPrm:\t\nCapEff:\t0\n", &st), -1);
	CHECK_EQ_INT(privdrop_status_parse("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n"
	    "CapInh:\t0\nCapPrm:\t0\nCapEff:\t0\nNoNewPrivs:\t2\n", &st), -1);
	/* A key must match whole: "CapEffX" is not CapEff. */
	CHECK_EQ_INT(privdrop_status_parse("Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\n"
	    "CapInh:\t0\nCapPrm:\t0\nCapEffX:\t0\n", &st), -1);
	CHECK_EQ_INT(privdrop_status_parse("", &st), -1);

	/* This kernel's own file parses. */
	{
		FILE *f = fopen("/proc/self/status", "r");
		size_t n;

		CHECK(f != NULL);
		if (f != NULL) {
			n = fread(buf, 1, sizeof(buf) - 1, f);
			fclose(f);
			buf[n] = '\0';
			CHECK_EQ_INT(privdrop_status_parse(buf, &st), 0);
			CHECK_EQ_INT(st.uid[0], getuid());
			CHECK_EQ_INT(st.uid[1], geteuid());
		}
	}
}

static void test_dir_is_own(void)
{
	CHECK(privdrop_dir_is_own("/var/lib/gatehouse"));
	CHECK(privdrop_dir_is_own("/srv/gatehouse"));
	CHECK(privdrop_dir_is_own("/tmp/gatehouse-it-x/state"));
	CHECK(privdrop_dir_is_own("/etc/gatehouse"));
	CHECK(!privdrop_dir_is_own("/"));
	CHECK(!privdrop_dir_is_own("/var"));
	CHECK(!privdrop_dir_is_own("/etc"));
	CHECK(!privdrop_dir_is_own("/tmp"));
	CHECK(!privdrop_dir_is_own("/var/lib"));
	CHECK(!privdrop_dir_is_own("/var/log"));
	CHECK(!privdrop_dir_is_own("/usr/local"));
	CHECK(!privdrop_dir_is_own("/etc/ssl"));
	CHECK(!privdrop_dir_is_own("relative/path"));
	CHECK(!privdrop_dir_is_own(""));
}

static void write_mode(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
	if (chmod(path, mode) != 0) {
		perror(path);
		exit(2);
	}
}

/* Fails with a message that names path and says "chmod 600 <path>". */
static void expect_refused(const char *path)
{
	char fix[PATH_MAX + 16];

	err[0] = '\0';
	CHECK_EQ_INT(privdrop_check_files(&cfg, err, sizeof(err)), -1);
	snprintf(fix, sizeof(fix), "chmod 600 %s", path);
	CHECK(strncmp(err, path, strlen(path)) == 0);
	CHECK(strstr(err, fix) != NULL);
	if (strstr(err, fix) == NULL)
		fprintf(stderr, "  wanted \"%s\" in \"%s\"\n", fix, err);
}

static void expect_fine(void)
{
	err[0] = '\0';
	CHECK_EQ_INT(privdrop_check_files(&cfg, err, sizeof(err)), 0);
	if (err[0] != '\0')
		fprintf(stderr, "  unexpected: %s\n", err);
}

static void test_check_files(void)
{
	static const char *const state_files[] = {
		"turn_secret", "tls-key.pem", "users.db", "users.db-wal", "users.db-shm",
		"audit.jsonl",
	};
	char state[300], path[400], key[400], adm_key[400];
	size_t i;

	config_defaults(&cfg);
	snprintf(state, sizeof(state), "%s/state", tmpdir);
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", state);
	/* Nothing there yet: everything is made 0600 later. */
	expect_fine();

	CHECK_EQ_INT(mkdir(state, 0700), 0);
	expect_fine();
	for (i = 0; i < sizeof(state_files) / sizeof(state_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", state, state_files[i]);
		write_mode(path, "x\n", 0640);
		expect_refused(path);
		CHECK_EQ_INT(chmod(path, 0604), 0);
		expect_refused(path);
		CHECK_EQ_INT(chmod(path, 0620), 0);
		expect_refused(path);
		CHECK_EQ_INT(chmod(path, 0600), 0);
		expect_fine();
	}

	/* Configured key files, and an audit file elsewhere. */
	snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
	write_mode(key, "x\n", 0644);
	snprintf(cfg.signaling.tls.cert, sizeof(cfg.signaling.tls.cert), "%s/cert.pem", tmpdir);
	snprintf(cfg.signaling.tls.key, sizeof(cfg.signaling.tls.key), "%s", key);
	expect_refused(key);
	CHECK_EQ_INT(chmod(key, 0400), 0);
	expect_fine();
	/* admin.tls's key too. */
	snprintf(adm_key, sizeof(adm_key), "%s/admin-key.pem", tmpdir);
	write_mode(adm_key, "x\n", 0640);
	snprintf(cfg.admin_tls.cert, sizeof(cfg.admin_tls.cert), "%s/admin-cert.pem", tmpdir);
	snprintf(cfg.admin_tls.key, sizeof(cfg.admin_tls.key), "%s", adm_key);
	expect_refused(adm_key);
	CHECK_EQ_INT(chmod(adm_key, 0600), 0);
	expect_fine();
	snprintf(cfg.log.audit_file, sizeof(cfg.log.audit_file), "%s/audit-elsewhere.jsonl",
	    tmpdir);
	write_mode(cfg.log.audit_file, "", 0640);
	expect_refused(cfg.log.audit_file);
	CHECK_EQ_INT(chmod(cfg.log.audit_file, 0600), 0);
	expect_fine();

	/* The policy file may be readable: it holds no secret. */
	snprintf(cfg.policy_file, sizeof(cfg.policy_file), "%s/policy.json", state);
	write_mode(cfg.policy_file, "{}\n", 0644);
	expect_fine();

	/* A state_dir others may write to is refused with its fix. */
	CHECK_EQ_INT(chmod(state, 0770), 0);
	err[0] = '\0';
	CHECK_EQ_INT(privdrop_check_files(&cfg, err, sizeof(err)), -1);
	snprintf(path, sizeof(path), "chmod 700 %s", state);
	CHECK(strstr(err, path) != NULL);
	CHECK_EQ_INT(chmod(state, 0702), 0);
	CHECK_EQ_INT(privdrop_check_files(&cfg, err, sizeof(err)), -1);
	CHECK_EQ_INT(chmod(state, 0755), 0); /* readable is fine: the files are not */
	expect_fine();
	CHECK_EQ_INT(chmod(state, 0700), 0);

	/* Not a folder. */
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", key);
	CHECK_EQ_INT(privdrop_check_files(&cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "not a directory") != NULL);
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", tmpdir);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/gh-test-privdrop-XXXXXX",
	    base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_status_parse();
	test_dir_is_own();
	test_check_files();
	cleanup();
	return check_done("test_privdrop");
}
