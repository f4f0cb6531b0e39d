/* Unit tests for signaling/userdb.c: users, groups, password and TOTP
 * checks, replay refusal, progressive lockout, the file's mode and
 * schema version, and persistence across reopening. */
#include "signaling/userdb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sqlite3.h>

#include "signaling/password.h"
#include "signaling/secret_seal.h"
#include "signaling/totp.h"
#include "tests/unit/check.h"

/* Any 32 bytes: the key that seals the TOTP secrets. */
static const uint8_t test_key[USERDB_KEY_LEN] = { 0x6b, 0x65, 0x79 };

#define T0 1700000000ull

static char tmpdir[256];
static char dbpath[PATH_MAX];
static char err[512];

static mode_t mode_of(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

static struct userdb *open_db(void)
{
	struct userdb *db = userdb_open(tmpdir, test_key, err, sizeof(err));

	if (db == NULL) {
		fprintf(stderr, "userdb_open: %s\n", err);
		exit(2);
	}
	return db;
}

/* The current code for a base32 secret at time t. */
static void code_at(const char *b32, uint64_t t, char out[8])
{
	uint8_t secret[64];
	int n = totp_base32_decode(b32, secret, sizeof(secret));

	CHECK_EQ_INT(n, USERDB_TOTP_SECRET_LEN);
	snprintf(out, 8, "%06u", (unsigned)totp_hotp(secret, (size_t)(n > 0 ? n : 0),
	    t / TOTP_STEP_S));
}

static void test_open_mode(void)
{
	struct userdb *db;
	char wal[PATH_MAX + 8];
	mode_t old;

	/* Whatever the umask, the database is the owner's only. */
	old = umask(0);
	db = userdb_open(tmpdir, test_key, err, sizeof(err));
	umask(old);
	CHECK(db != NULL);
	CHECK_EQ_INT(mode_of(dbpath), 0600);
	CHECK_EQ_INT(userdb_add(db, "walcheck", "password1", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	/* SQLite gives its write-ahead log the database's mode. */
	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	CHECK_EQ_INT(mode_of(wal), 0600);
	CHECK_EQ_INT(userdb_del(db, "walcheck"), USERDB_OK);
	userdb_close(db);
	userdb_close(NULL);
}

static void test_open_refusals(void)
{
	char link[PATH_MAX + 16], other[PATH_MAX + 16], sub[PATH_MAX];
	sqlite3 *raw;
	struct userdb *db;

	/* Readable by group: refused, naming the file. */
	CHECK_EQ_INT(chmod(dbpath, 0640), 0);
	db = userdb_open(tmpdir, test_key, err, sizeof(err));
	CHECK(db == NULL);
	CHECK(strstr(err, dbpath) != NULL);
	CHECK(strstr(err, "group") != NULL);
	CHECK_EQ_INT(chmod(dbpath, 0604), 0);
	CHECK(userdb_open(tmpdir, test_key, err, sizeof(err)) == NULL);
	CHECK_EQ_INT(chmod(dbpath, 0600), 0);

	/* A schema newer than ours is refused, not misread. */
	CHECK_EQ_INT(sqlite3_open(dbpath, &raw), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, "PRAGMA user_version = 4", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	db = userdb_open(tmpdir, test_key, err, sizeof(err));
	CHECK(db == NULL);
	CHECK(strstr(err, dbpath) != NULL);
	CHECK(strstr(err, "schema version 4") != NULL);
	CHECK_EQ_INT(sqlite3_open(dbpath, &raw), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);

	/* A symbolic link in place of the file. */
	snprintf(sub, sizeof(sub), "%s/linked", tmpdir);
	CHECK_EQ_INT(mkdir(sub, 0700), 0);
	snprintf(link, sizeof(link), "%s/" USERDB_FILE, sub);
	snprintf(other, sizeof(other), "%s/elsewhere.db", tmpdir);
	CHECK_EQ_INT(symlink(other, link), 0);
	db = userdb_open(sub, test_key, err, sizeof(err));
	CHECK(db == NULL);
	CHECK(strstr(err, "symbolic link") != NULL);
	CHECK(access(other, F_OK) != 0);
	unlink(link);
	rmdir(sub);

	/* A state folder that does not exist. */
	snprintf(sub, sizeof(sub), "%s/missing", tmpdir);
	CHECK(userdb_open(sub, test_key, err, sizeof(err)) == NULL);
	CHECK(strstr(err, sub) != NULL);
}

static void test_schema(void)
{
	sqlite3 *raw;
	sqlite3_stmt *st;

	CHECK_EQ_INT(sqlite3_open(dbpath, &raw), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_prepare_v2(raw, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int(st, 0), 3);
	sqlite3_finalize(st);
	/* The id of the key that seals the secrets, one row. */
	CHECK_EQ_INT(sqlite3_prepare_v2(raw, "SELECT COUNT(*), LENGTH(MIN(id)) FROM sealing_key",
	    -1, &st, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK_EQ_INT(sqlite3_column_int(st, 0), 1);
	CHECK_EQ_INT(sqlite3_column_int(st, 1), 8);
	sqlite3_finalize(st);
	CHECK_EQ_INT(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_ROW);
	CHECK(strcmp((const char *)sqlite3_column_text(st, 0), "wal") == 0);
	sqlite3_finalize(st);
	CHECK_EQ_INT(sqlite3_prepare_v2(raw, "SELECT name, pw_hash, totp_sealed, "
	    "totp_last_step, disabled, failures, locked_until, created FROM users", -1, &st,
	    NULL), SQLITE_OK);
	sqlite3_finalize(st);
	/* The raw column of version 2 is gone, so that a daemon of version 2
	 * still running fails to read rather than misread. */
	CHECK(sqlite3_prepare_v2(raw, "SELECT totp_secret FROM users", -1, &st, NULL) !=
	    SQLITE_OK);
	sqlite3_finalize(st);
	CHECK_EQ_INT(sqlite3_prepare_v2(raw, "SELECT name, grp FROM user_groups", -1, &st,
	    NULL), SQLITE_OK);
	sqlite3_finalize(st);
	CHECK_EQ_INT(sqlite3_prepare_v2(raw, "SELECT seq, name, kind FROM user_changes", -1, &st,
	    NULL), SQLITE_OK);
	sqlite3_finalize(st);
	sqlite3_close(raw);
}

struct changes {
	char log[512];
};

static void change_fn(void *ctx, const char *name, enum userdb_change kind)
{
	static const char *const kinds[] = { "added", "deleted", "disabled", "enabled" };
	struct changes *c = ctx;
	size_t used = strlen(c->log);

	snprintf(c->log + used, sizeof(c->log) - used, "%s%s %s", used ? "," : "", kinds[kind],
	    name);
}

/* Reads the changes after *seq into c->log. */
static int read_changes(struct userdb *db, uint64_t *seq, size_t max, bool *missed,
    struct changes *c)
{
	c->log[0] = '\0';
	return userdb_changes(db, seq, max, missed, change_fn, c);
}

/* The change log that tells the daemon of users added, deleted, disabled
 * or enabled by another process: every such change once, in order, and
 * nothing for changes that do not decide access. */
static void test_change_log(struct userdb *db)
{
	struct userdb *other = open_db();
	struct changes c;
	uint64_t seq, start;
	bool missed = true;

	CHECK_EQ_INT(userdb_change_last(db, &start), USERDB_OK);
	seq = start;
	CHECK_EQ_INT(read_changes(db, &seq, 100, &missed, &c), USERDB_OK);
	CHECK(strcmp(c.log, "") == 0);
	CHECK(!missed);
	CHECK(seq == start);

	/* Written through another connection, as `gatehouse user` would. */
	CHECK_EQ_INT(userdb_add(other, "logged", "a long enough password", NULL, 0, false,
	    NULL, 0), USERDB_OK);
	CHECK_EQ_INT(userdb_set_disabled(other, "logged", true), USERDB_OK);
	CHECK_EQ_INT(userdb_set_disabled(other, "logged", true), USERDB_OK); /* no change */
	CHECK_EQ_INT(userdb_passwd(other, "logged", "another long password"), USERDB_OK);
	CHECK_EQ_INT(userdb_lock(other, "logged", T0 + 60), USERDB_OK);
	CHECK_EQ_INT(userdb_set_disabled(other, "logged", false), USERDB_OK);
	CHECK_EQ_INT(userdb_del(other, "logged"), USERDB_OK);
	CHECK_EQ_INT(userdb_del(other, "logged"), USERDB_NOTFOUND);

	/* In batches of two: the position moves with each. */
	CHECK_EQ_INT(read_changes(db, &seq, 2, &missed, &c), USERDB_OK);
	CHECK(strcmp(c.log, "added logged,disabled logged") == 0);
	CHECK(seq == start + 2);
	CHECK_EQ_INT(read_changes(db, &seq, 2, &missed, &c), USERDB_OK);
	CHECK(strcmp(c.log, "enabled logged,deleted logged") == 0);
	CHECK_EQ_INT(read_changes(db, &seq, 2, &missed, &c), USERDB_OK);
	CHECK(strcmp(c.log, "") == 0);
	CHECK(!missed);
	CHECK_EQ_INT(userdb_change_last(other, &seq), USERDB_OK);
	CHECK(seq == start + 4);

	/* Changes pruned before they were read are reported. */
	CHECK_EQ_INT(userdb_add(other, "pruned1", "a long enough password", NULL, 0, false,
	    NULL, 0), USERDB_OK);
	CHECK_EQ_INT(userdb_add(other, "pruned2", "a long enough password", NULL, 0, false,
	    NULL, 0), USERDB_OK);
	{
		sqlite3 *raw;
		char sql[128];

		CHECK_EQ_INT(sqlite3_open(dbpath, &raw), SQLITE_OK);
		sqlite3_busy_timeout(raw, 2000);
		snprintf(sql, sizeof(sql), "DELETE FROM user_changes WHERE seq <= %llu",
		    (unsigned long long)(start + 5));
		CHECK_EQ_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(raw);
	}
	seq = start + 4;
	CHECK_EQ_INT(read_changes(db, &seq, 10, &missed, &c), USERDB_OK);
	CHECK(missed);
	CHECK(strcmp(c.log, "added pruned2") == 0);
	CHECK_EQ_INT(userdb_del(other, "pruned1"), USERDB_OK);
	CHECK_EQ_INT(userdb_del(other, "pruned2"), USERDB_OK);
	CHECK_EQ_INT(read_changes(db, &seq, 10, &missed, &c), USERDB_OK);
	CHECK(!missed);
	CHECK(strcmp(c.log, "deleted pruned1,deleted pruned2") == 0);
	userdb_close(other);
}

/* A password set anew while a login's argon2 runs: the login, checked
 * against the old password, is refused and counts no failure; otherwise
 * what it grants (an admin token bound to cred_tag) would carry the new
 * password's tag and outlive the change. Another process changes it
 * 0.1 s into a check that takes several times that. */
static void test_password_changed_during_check(struct userdb *db)
{
	struct userdb_entry e;
	int go[2], status = 0;
	char byte = 'g';
	pid_t pid;

	password_set_cost_for_tests(32768, 8);
	CHECK_EQ_INT(userdb_add(db, "racer", "the old password", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	password_set_cost_for_tests(8, 1);
	CHECK_EQ_INT(pipe(go), 0);
	pid = fork();
	if (pid == 0) {
		struct userdb *other = userdb_open(tmpdir, test_key, err, sizeof(err));
		int rc = USERDB_ERROR;

		close(go[1]);
		if (other != NULL && read(go[0], &byte, 1) == 1) {
			usleep(100 * 1000);
			rc = userdb_passwd(other, "racer", "the new password");
		}
		userdb_close(other);
		_exit(rc == USERDB_OK ? 0 : 1);
	}
	close(go[0]);
	CHECK(pid > 0);
	CHECK_EQ_INT(write(go[1], &byte, 1), 1);
	CHECK_EQ_INT(userdb_verify(db, "racer", "the old password", NULL, false, T0, &e),
	    USERDB_BADPASSWORD);
	close(go[1]);
	CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ_INT(userdb_get(db, "racer", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, 0);
	CHECK_EQ_INT(userdb_verify(db, "racer", "the new password", NULL, false, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_del(db, "racer"), USERDB_OK);
}

/* A version 1 file (sessions 1 to 3) gains the change log on open, and
 * keeps its users. */
/* The totp_secret column of name's row, as the file holds it, into out
 * (128 bytes); its length, or -1. */
static int sealed_of(const char *path, const char *name, uint8_t out[128])
{
	sqlite3 *raw;
	sqlite3_stmt *st;
	int n = -1;

	memset(out, 0, 128);
	if (sqlite3_open(path, &raw) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(raw, "SELECT totp_sealed FROM users WHERE name = ?1", -1, &st,
	    NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) <= 128) {
			n = sqlite3_column_bytes(st, 0);
			memcpy(out, sqlite3_column_blob(st, 0), (size_t)n);
		}
		sqlite3_finalize(st);
	}
	sqlite3_close(raw);
	return n;
}

/* 1 when the database file or its write-ahead log holds these bytes
 * anywhere (a free page included), 0 when neither does, -1 on error. */
static int file_holds(const char *path, const void *bytes, size_t len)
{
	char name[PATH_MAX + 8];
	static char buf[1 << 22];
	int i, found = 0;

	for (i = 0; i < 2; i++) {
		FILE *f;
		size_t n;

		snprintf(name, sizeof(name), "%s%s", path, i == 0 ? "" : "-wal");
		if ((f = fopen(name, "rb")) == NULL)
			continue;
		n = fread(buf, 1, sizeof(buf), f);
		fclose(f);
		if (n == sizeof(buf))
			return -1;
		found |= memmem(buf, n, bytes, len) != NULL;
	}
	return found;
}

/* Writes name's sealed secret as another process would. */
static void sealed_put(const char *path, const char *name, const uint8_t *blob, int len)
{
	sqlite3_stmt *st;
	sqlite3 *raw;

	CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_prepare_v2(raw, "UPDATE users SET totp_sealed = ?2 WHERE name = ?1",
	    -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, blob, len, SQLITE_STATIC);
	CHECK_EQ_INT(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(raw);
}

/* A login with the right password whose secret does not open: refused
 * as a wrong code, and not counted against the user. */
static void refused_uncounted(struct userdb *db, const char *name, const char *password,
    const char *code)
{
	struct userdb_entry e;

	CHECK_EQ_INT(userdb_verify(db, name, password, code, true, T0, NULL), USERDB_BADCODE);
	CHECK_EQ_INT(userdb_get(db, name, &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, 0);
}

#define RAW_SECRET_HEX "3132333435363738393031323334353637383930"
static const uint8_t raw_secret[USERDB_TOTP_SECRET_LEN] = "12345678901234567890";

static void raw_code_at(uint64_t t, char out[8])
{
	snprintf(out, 8, "%06u", (unsigned)totp_hotp(raw_secret, sizeof(raw_secret),
	    t / TOTP_STEP_S));
}

/* What the file holds is sealed: not the secret, in no page of the
 * database or its log; a sealed secret moved into another user's row
 * does not open (answered as a wrong code, and costing that user no
 * failure); and a database is refused with a key other than the one
 * that sealed it. */
static void test_sealed_at_rest(struct userdb *db)
{
	static const uint8_t other_key[USERDB_KEY_LEN] = { 0x6f, 0x74, 0x68 };
	uint8_t secret[64], blob[128], blob2[128];
	char b32[40], b32b[40], code[8];
	int n, m;

	CHECK_EQ_INT(userdb_add(db, "sealed1", "sealed1's password", NULL, 0, true, b32,
	    sizeof(b32)), USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "sealed2", "sealed2's password", NULL, 0, true, b32b,
	    sizeof(b32b)), USERDB_OK);
	n = totp_base32_decode(b32, secret, sizeof(secret));
	CHECK_EQ_INT(n, USERDB_TOTP_SECRET_LEN);
	m = sealed_of(dbpath, "sealed1", blob);
	CHECK_EQ_INT(m, 1 + 12 + USERDB_TOTP_SECRET_LEN + 16);
	CHECK_EQ_INT(blob[0], 1);
	CHECK(memmem(blob, sizeof(blob), secret, USERDB_TOTP_SECRET_LEN) == NULL);
	CHECK_EQ_INT(file_holds(dbpath, secret, USERDB_TOTP_SECRET_LEN), 0);
	/* The check can fail: the bytes it looks for are in the file. */
	CHECK_EQ_INT(file_holds(dbpath, blob, (size_t)m), 1);

	/* sealed1's sealed secret copied into sealed2's row: sealed2 with
	 * the right password and sealed1's code. */
	CHECK_EQ_INT(sealed_of(dbpath, "sealed2", blob2), m);
	sealed_put(dbpath, "sealed2", blob, m);
	code_at(b32, T0, code);
	refused_uncounted(db, "sealed2", "sealed2's password", code);
	/* One bit of the ciphertext flipped in sealed2's own. */
	blob2[20] ^= 1;
	sealed_put(dbpath, "sealed2", blob2, m);
	code_at(b32b, T0, code);
	refused_uncounted(db, "sealed2", "sealed2's password", code);
	/* sealed1's own still opens. */
	code_at(b32, T0, code);
	CHECK_EQ_INT(userdb_verify(db, "sealed1", "sealed1's password", code, true, T0, NULL),
	    USERDB_OK);

	CHECK(userdb_open(tmpdir, other_key, err, sizeof(err)) == NULL);
	CHECK(strstr(err, dbpath) != NULL);
	CHECK(strstr(err, "sealed with the secrets key of id") != NULL);
	CHECK(strstr(err, "identity.secrets_key_file") != NULL);
	CHECK_EQ_INT(userdb_del(db, "sealed1"), USERDB_OK);
	CHECK_EQ_INT(userdb_del(db, "sealed2"), USERDB_OK);
}

/* A daemon that starts while a rekey runs (in another process) waits for
 * it, then refuses the key it read before, saying why. */
static void test_open_during_rekey(const char *dir, const uint8_t key[USERDB_KEY_LEN])
{
	static const uint8_t third_key[USERDB_KEY_LEN] = { 0x74, 0x68, 0x69 };
	struct userdb *ex;
	int ready[2], status = -1;
	char c = 0;
	pid_t pid;

	CHECK_EQ_INT(pipe(ready), 0);
	pid = fork();
	if (pid == 0) {
		/* A new connection in the child: none is open at the fork. */
		ex = userdb_open_exclusive(dir, key, err, sizeof(err));
		if (ex == NULL || write(ready[1], "x", 1) != 1)
			_exit(1);
		usleep(300 * 1000);
		if (userdb_rekey(ex, third_key, err, sizeof(err)) != 1)
			_exit(2);
		userdb_close(ex);
		_exit(0);
	}
	CHECK(pid > 0);
	CHECK_EQ_INT(read(ready[0], &c, 1), 1);
	CHECK(userdb_open(dir, key, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "gatehouse user rekey changed the key while this waited") != NULL);
	CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(ready[0]);
	close(ready[1]);
	ex = userdb_open(dir, third_key, err, sizeof(err));
	CHECK(ex != NULL);
	userdb_close(ex);
}

/* A rekey seals every secret again under the new key, in one go, and
 * only with the database alone: a daemon that had it open would go on
 * with the old key. */
static void test_rekey(void)
{
	static const uint8_t new_key[USERDB_KEY_LEN] = { 0x6e, 0x65, 0x77 };
	char dir[PATH_MAX], path[PATH_MAX + 16], lock[PATH_MAX + 16], b32a[40], b32b[40];
	char code[8], id_old[USERDB_KEY_ID_HEX], id_new[USERDB_KEY_ID_HEX];
	uint8_t before[128], after[128], blob[128];
	struct userdb *db, *ex;
	int m;

	snprintf(dir, sizeof(dir), "%s/rekey", tmpdir);
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/" USERDB_FILE, dir);
	db = userdb_open(dir, test_key, err, sizeof(err));
	CHECK(db != NULL);
	if (db == NULL)
		return;
	CHECK_EQ_INT(userdb_add(db, "rk1", "rk1's password", NULL, 0, true, b32a, sizeof(b32a)),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "rk2", "rk2's password", NULL, 0, true, b32b, sizeof(b32b)),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "rk3", "rk3's password", NULL, 0, false, NULL, 0), USERDB_OK);
	snprintf(lock, sizeof(lock), "%s/" USERDB_LOCK_FILE, dir);
	CHECK_EQ_INT(mode_of(lock), 0600);
	CHECK_EQ_INT(userdb_rekey(db, new_key, err, sizeof(err)), -1);
	CHECK(userdb_open_exclusive(dir, test_key, err, sizeof(err)) == NULL);
	CHECK(strstr(err, path) != NULL && strstr(err, "stop the daemon first") != NULL);
	userdb_close(db);

	ex = userdb_open_exclusive(dir, test_key, err, sizeof(err));
	CHECK(ex != NULL);
	if (ex == NULL)
		return;
	/* An ordinary open waits for the rekey, then gives up, saying so. */
	CHECK(userdb_open(dir, test_key, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "gatehouse user rekey") != NULL);
	CHECK_EQ_INT(userdb_rekey(ex, test_key, err, sizeof(err)), -1);
	CHECK(strstr(err, "the one in use") != NULL);
	userdb_key_id(ex, id_old);
	m = sealed_of(path, "rk1", before);
	CHECK_EQ_INT(m, SEAL_OVERHEAD + USERDB_TOTP_SECRET_LEN);
	CHECK_EQ_INT(userdb_rekey(ex, new_key, err, sizeof(err)), 2);
	userdb_key_id(ex, id_new);
	CHECK(strcmp(id_old, id_new) != 0);
	CHECK_EQ_INT(sealed_of(path, "rk1", after), m);
	CHECK(memcmp(before, after, (size_t)m) != 0);
	/* The old sealed form is gone from the file and its log. */
	CHECK_EQ_INT(file_holds(path, after, (size_t)m), 1);
	CHECK_EQ_INT(file_holds(path, before, (size_t)m), 0);
	/* The handle goes on under the new key. */
	code_at(b32a, T0, code);
	CHECK_EQ_INT(userdb_verify(ex, "rk1", "rk1's password", code, true, T0, NULL), USERDB_OK);
	userdb_close(ex);

	/* The old key is refused by name; the new one opens every secret. */
	CHECK(userdb_open(dir, test_key, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "sealed with the secrets key of id") != NULL &&
	    strstr(err, id_new) != NULL && strstr(err, id_old) != NULL);
	db = userdb_open(dir, new_key, err, sizeof(err));
	CHECK(db != NULL);
	if (db == NULL)
		return;
	code_at(b32b, T0, code);
	CHECK_EQ_INT(userdb_verify(db, "rk2", "rk2's password", code, true, T0, NULL), USERDB_OK);
	CHECK_EQ_INT(userdb_verify(db, "rk3", "rk3's password", NULL, false, T0, NULL), USERDB_OK);
	userdb_close(db);

	/* A secret that does not open refuses the whole rekey, naming its
	 * user; nothing changes. */
	ex = userdb_open_exclusive(dir, new_key, err, sizeof(err));
	CHECK(ex != NULL);
	if (ex == NULL)
		return;
	CHECK_EQ_INT(sealed_of(path, "rk2", blob), m);
	blob[20] ^= 1;
	sealed_put(path, "rk2", blob, m);
	CHECK_EQ_INT(userdb_rekey(ex, test_key, err, sizeof(err)), -1);
	CHECK(strstr(err, "\"rk2\"") != NULL && strstr(err, "totp-reset") != NULL);
	CHECK_EQ_INT(sealed_of(path, "rk1", blob), m);
	CHECK(memcmp(blob, after, (size_t)m) == 0);
	userdb_key_id(ex, id_old);
	CHECK(strcmp(id_old, id_new) == 0);
	code_at(b32a, T0 + TOTP_STEP_S, code);
	CHECK_EQ_INT(userdb_verify(ex, "rk1", "rk1's password", code, true, T0 + TOTP_STEP_S,
	    NULL), USERDB_OK);
	CHECK_EQ_INT(userdb_del(ex, "rk2"), USERDB_OK);
	userdb_close(ex);

	test_open_during_rekey(dir, new_key);
	/* A lock file that others may read is refused like users.db. */
	CHECK_EQ_INT(chmod(lock, 0640), 0);
	CHECK(userdb_open(dir, test_key, err, sizeof(err)) == NULL);
	CHECK(strstr(err, lock) != NULL && strstr(err, "group or others") != NULL);
	CHECK_EQ_INT(chmod(lock, 0600), 0);
}

static void test_migrate_v1(void)
{
	static const char v1[] =
	    "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, pw_hash TEXT NOT NULL,"
	    " totp_secret BLOB, totp_last_step INTEGER NOT NULL DEFAULT 0,"
	    " disabled INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,"
	    " locked_until INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL) STRICT;"
	    "CREATE TABLE user_groups (name TEXT NOT NULL REFERENCES users(name)"
	    " ON DELETE CASCADE, grp TEXT NOT NULL, PRIMARY KEY (name, grp))"
	    " STRICT, WITHOUT ROWID;"
	    "PRAGMA user_version = 1;";
	char dir[PATH_MAX], path[PATH_MAX + 16], sql[1024], hash[PASSWORD_ENCODED_MAX];
	char code[8];
	uint8_t blob[128];
	struct userdb *db;
	struct changes c;
	uint64_t seq = 0;
	bool missed;
	sqlite3 *raw;
	int fd;

	snprintf(dir, sizeof(dir), "%s/v1", tmpdir);
	CHECK_EQ_INT(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/" USERDB_FILE, dir);
	fd = open(path, O_CREAT | O_EXCL | O_WRONLY, 0600);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ_INT(password_hash("a long enough password", hash, sizeof(hash)), PASSWORD_OK);
	snprintf(sql, sizeof(sql), "INSERT INTO users (name, pw_hash, created) "
	    "VALUES ('old', '%s', 1)", hash);
	CHECK_EQ_INT(sqlite3_open(path, &raw), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, v1, NULL, NULL, NULL), SQLITE_OK);
	CHECK_EQ_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	/* Two users whose secrets versions 1 and 2 kept raw. */
	snprintf(sql, sizeof(sql), "INSERT INTO users (name, pw_hash, totp_secret, created) "
	    "VALUES ('old-totp', '%s', X'%s', 1), ('old-totp2', '%s', X'%s', 1)", hash,
	    RAW_SECRET_HEX, hash, RAW_SECRET_HEX);
	CHECK_EQ_INT(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
	/* The check below can fail: the file holds them in the clear now. */
	CHECK_EQ_INT(file_holds(path, raw_secret, sizeof(raw_secret)), 1);

	db = userdb_open(dir, test_key, err, sizeof(err));
	CHECK(db != NULL);
	if (db == NULL)
		return;
	CHECK_EQ_INT(userdb_verify(db, "old", "a long enough password", NULL, false, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_change_last(db, &seq), USERDB_OK);
	CHECK(seq == 0);
	CHECK_EQ_INT(userdb_set_disabled(db, "old", true), USERDB_OK);
	CHECK_EQ_INT(read_changes(db, &seq, 10, &missed, &c), USERDB_OK);
	CHECK(strcmp(c.log, "disabled old") == 0);

	/* The raw secrets are sealed now, and gone from the files while the
	 * database is still open (in WAL mode, the pages they were in stay
	 * in the file until a checkpoint). */
	CHECK_EQ_INT(file_holds(path, raw_secret, sizeof(raw_secret)), 0);
	raw_code_at(T0, code);
	CHECK_EQ_INT(userdb_verify(db, "old-totp", "a long enough password", code, true, T0,
	    NULL), USERDB_OK);
	CHECK_EQ_INT(userdb_verify(db, "old-totp2", "a long enough password", code, true, T0,
	    NULL), USERDB_OK);
	userdb_close(db);
	CHECK_EQ_INT(sealed_of(path, "old-totp", blob), 1 + 12 + USERDB_TOTP_SECRET_LEN + 16);
	CHECK(memmem(blob, sizeof(blob), raw_secret, sizeof(raw_secret)) == NULL);
	CHECK_EQ_INT(file_holds(path, raw_secret, sizeof(raw_secret)), 0);
}

struct collect {
	char names[8][IDENTITY_NAME_MAX];
	size_t n, stop_after;
};

static int collect_fn(void *ctx, const struct userdb_entry *e)
{
	struct collect *c = ctx;

	if (c->n < 8)
		snprintf(c->names[c->n], IDENTITY_NAME_MAX, "%s", e->name);
	c->n++;
	return c->stop_after != 0 && c->n >= c->stop_after;
}

static void test_add_get_list_del(struct userdb *db)
{
	const char *const groups[] = { "support", "sales", "sales" };
	struct userdb_entry e;
	struct collect c;
	char b32[40];

	CHECK_EQ_INT(userdb_add(db, "bob", "correct horse", groups, 3, false, NULL, 0),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "alice", "battery staple", NULL, 0, true, b32,
	    sizeof(b32)), USERDB_OK);
	CHECK_EQ_INT(strlen(b32), 32);
	CHECK_EQ_INT(userdb_add(db, "carol@example.com", "12345678", groups, 1, false,
	    NULL, 0), USERDB_OK);
	/* The same name again, whatever else differs. */
	CHECK_EQ_INT(userdb_add(db, "bob", "other password", NULL, 0, true, b32,
	    sizeof(b32)), USERDB_EXISTS);

	CHECK_EQ_INT(userdb_get(db, "bob", &e), USERDB_OK);
	CHECK(strcmp(e.name, "bob") == 0);
	CHECK_EQ_INT(e.ngroups, 2);
	CHECK(strcmp(e.groups[0], "sales") == 0);
	CHECK(strcmp(e.groups[1], "support") == 0);
	CHECK(!e.has_totp);
	CHECK(!e.disabled);
	CHECK_EQ_INT(e.failures, 0);
	CHECK_EQ_INT(e.locked_until_s, 0);
	CHECK_EQ_INT(userdb_get(db, "alice", &e), USERDB_OK);
	CHECK(e.has_totp);
	CHECK_EQ_INT(e.ngroups, 0);
	CHECK_EQ_INT(userdb_get(db, "nobody", &e), USERDB_NOTFOUND);
	CHECK_EQ_INT(userdb_get(db, "Bob", &e), USERDB_NOTFOUND);
	CHECK_EQ_INT(userdb_get(db, "bad name", &e), USERDB_NOTFOUND);

	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(userdb_list(db, collect_fn, &c), USERDB_OK);
	CHECK_EQ_INT(c.n, 3);
	CHECK(strcmp(c.names[0], "alice") == 0);
	CHECK(strcmp(c.names[1], "bob") == 0);
	CHECK(strcmp(c.names[2], "carol@example.com") == 0);
	memset(&c, 0, sizeof(c));
	c.stop_after = 2;
	CHECK_EQ_INT(userdb_list(db, collect_fn, &c), USERDB_OK);
	CHECK_EQ_INT(c.n, 2);

	/* Deleting takes the groups along: the name comes back bare. */
	CHECK_EQ_INT(userdb_del(db, "bob"), USERDB_OK);
	CHECK_EQ_INT(userdb_del(db, "bob"), USERDB_NOTFOUND);
	CHECK_EQ_INT(userdb_get(db, "bob", &e), USERDB_NOTFOUND);
	CHECK_EQ_INT(userdb_add(db, "bob", "correct horse", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_get(db, "bob", &e), USERDB_OK);
	CHECK_EQ_INT(e.ngroups, 0);
	CHECK_EQ_INT(userdb_del(db, "-bob"), USERDB_INVALID);
}

static void test_invalid(struct userdb *db)
{
	static const char *const bad_names[] = {
		"", "-alice", ".alice", "al ice", "al/ice", "al:ice", "al\nice", "al%ice",
		"al\xc3\xa9", "a'b", "a\"b",
		"a234567890123456789012345678901234567890123456789012345678901234", /* 64 */
	};
	const char *groups[IDENTITY_MAX_GROUPS + 1];
	char longpw[PASSWORD_MAX_LEN + 2], b32[40], name[16];
	size_t i;

	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		CHECK_EQ_INT(userdb_add(db, bad_names[i], "password1", NULL, 0, false, NULL, 0),
		    USERDB_INVALID);
		groups[0] = bad_names[i];
		CHECK_EQ_INT(userdb_add(db, "dave", "password1", groups, 1, false, NULL, 0),
		    USERDB_INVALID);
	}
	CHECK_EQ_INT(userdb_add(db, NULL, "password1", NULL, 0, false, NULL, 0),
	    USERDB_INVALID);
	/* 63 characters is the longest name. */
	CHECK_EQ_INT(userdb_add(db,
	    "a2345678901234567890123456789012345678901234567890123456789012_",
	    "password1", NULL, 0, false, NULL, 0), USERDB_OK);
	CHECK_EQ_INT(userdb_add(db, "x", "password1", NULL, 0, false, NULL, 0), USERDB_OK);

	/* Passwords: 8..1024 bytes. */
	CHECK_EQ_INT(userdb_add(db, "dave", "1234567", NULL, 0, false, NULL, 0),
	    USERDB_INVALID);
	CHECK_EQ_INT(userdb_add(db, "dave", "", NULL, 0, false, NULL, 0), USERDB_INVALID);
	CHECK_EQ_INT(userdb_add(db, "dave", NULL, NULL, 0, false, NULL, 0), USERDB_INVALID);
	memset(longpw, 'p', sizeof(longpw));
	longpw[PASSWORD_MAX_LEN + 1] = '\0';
	CHECK_EQ_INT(userdb_add(db, "dave", longpw, NULL, 0, false, NULL, 0), USERDB_INVALID);
	longpw[PASSWORD_MAX_LEN] = '\0';
	CHECK_EQ_INT(userdb_add(db, "dave", longpw, NULL, 0, false, NULL, 0), USERDB_OK);
	CHECK_EQ_INT(userdb_verify(db, "dave", longpw, NULL, false, T0, NULL), USERDB_OK);

	/* At most IDENTITY_MAX_GROUPS groups. */
	for (i = 0; i < IDENTITY_MAX_GROUPS + 1; i++) {
		snprintf(name, sizeof(name), "g%zu", i);
		groups[i] = strdup(name);
	}
	CHECK_EQ_INT(userdb_add(db, "erin", "password1", groups, IDENTITY_MAX_GROUPS + 1,
	    false, NULL, 0), USERDB_INVALID);
	CHECK_EQ_INT(userdb_add(db, "erin", "password1", groups, IDENTITY_MAX_GROUPS,
	    false, NULL, 0), USERDB_OK);
	for (i = 0; i < IDENTITY_MAX_GROUPS + 1; i++)
		free((char *)groups[i]);
	CHECK_EQ_INT(userdb_add(db, "frank", "password1", NULL, 2, false, NULL, 0),
	    USERDB_INVALID);

	/* Room for the base32 secret. */
	CHECK_EQ_INT(userdb_add(db, "frank", "password1", NULL, 0, true, b32, 32),
	    USERDB_INVALID);
	CHECK_EQ_INT(userdb_add(db, "frank", "password1", NULL, 0, true, NULL, 40),
	    USERDB_INVALID);
	CHECK_EQ_INT(userdb_totp_reset(db, "x", b32, 32), USERDB_INVALID);

	/* Other writes check names and passwords the same way. */
	CHECK_EQ_INT(userdb_passwd(db, "x", "short"), USERDB_INVALID);
	CHECK_EQ_INT(userdb_passwd(db, "bad name", "password1"), USERDB_INVALID);
	CHECK_EQ_INT(userdb_unlock(db, ""), USERDB_INVALID);
	CHECK_EQ_INT(userdb_set_disabled(db, ".x", true), USERDB_INVALID);
}

static void test_verify(struct userdb *db)
{
	struct userdb_entry e;
	const char *const groups[] = { "staff" };

	CHECK_EQ_INT(userdb_add(db, "gina", "gina's password", groups, 1, false, NULL, 0),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_verify(db, "gina", "gina's password", NULL, false, T0, &e),
	    USERDB_OK);
	CHECK(strcmp(e.name, "gina") == 0);
	CHECK_EQ_INT(e.ngroups, 1);
	CHECK(strcmp(e.groups[0], "staff") == 0);
	CHECK_EQ_INT(userdb_verify(db, "gina", "gina's passwort", NULL, false, T0, &e),
	    USERDB_BADPASSWORD);
	/* On a refusal out says nothing. */
	CHECK(e.name[0] == '\0');
	CHECK_EQ_INT(userdb_verify(db, "gina", "", NULL, false, T0, NULL),
	    USERDB_BADPASSWORD);
	CHECK_EQ_INT(userdb_verify(db, "gina", NULL, NULL, false, T0, NULL),
	    USERDB_BADPASSWORD);
	CHECK_EQ_INT(userdb_get(db, "gina", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, 3);
	/* Success resets the count. */
	CHECK_EQ_INT(userdb_verify(db, "gina", "gina's password", NULL, false, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_get(db, "gina", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, 0);

	CHECK_EQ_INT(userdb_verify(db, "nobody", "gina's password", NULL, false, T0, &e),
	    USERDB_NOTFOUND);
	CHECK_EQ_INT(userdb_verify(db, "no body", "gina's password", NULL, false, T0, &e),
	    USERDB_NOTFOUND);
	CHECK_EQ_INT(userdb_verify(db, NULL, "gina's password", NULL, false, T0, &e),
	    USERDB_NOTFOUND);
	/* Asking for a code from a user without TOTP. */
	CHECK_EQ_INT(userdb_verify(db, "gina", "gina's password", "123456", true, T0, NULL),
	    USERDB_BADCODE);
}

static void test_totp(struct userdb *db)
{
	struct userdb_entry e;
	char b32[40], old_b32[40], code[8], next[8], prev[8], wrong[8];

	CHECK_EQ_INT(userdb_add(db, "hank", "hank's password", NULL, 0, true, b32,
	    sizeof(b32)), USERDB_OK);
	code_at(b32, T0, code);
	code_at(b32, T0 + TOTP_STEP_S, next);
	code_at(b32, T0 - TOTP_STEP_S, prev);

	/* A wrong password with the right code: refused, and the code is not
	 * used up by it. */
	CHECK_EQ_INT(userdb_verify(db, "hank", "wrong password", code, true, T0, NULL),
	    USERDB_BADPASSWORD);
	/* Wrong (one digit off), missing, empty. */
	snprintf(wrong, sizeof(wrong), "%c%s", code[0] == '9' ? '0' : code[0] + 1, code + 1);
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", wrong, true, T0, NULL),
	    USERDB_BADCODE);
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", NULL, true, T0, NULL),
	    USERDB_BADCODE);
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", "", true, T0, NULL),
	    USERDB_BADCODE);
	CHECK_EQ_INT(userdb_get(db, "hank", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, 4);
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", code, true, T0, &e),
	    USERDB_OK);
	CHECK(e.has_totp);
	CHECK_EQ_INT(e.failures, 0);
	/* Replayed: in the same step, and in the next, where it is still in
	 * the window. */
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", code, true, T0, NULL),
	    USERDB_BADCODE);
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", code, true,
	    T0 + TOTP_STEP_S, NULL), USERDB_BADCODE);
	/* An older step after a newer one. */
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", prev, true, T0, NULL),
	    USERDB_BADCODE);
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", next, true, T0, NULL),
	    USERDB_OK);
	/* Without check_totp, the code is not looked at. */
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", "garbage", false, T0, NULL),
	    USERDB_OK);

	/* The step used persists across reopening, like everything else. */
	userdb_close(db);
	db = open_db();
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", next, true, T0, NULL),
	    USERDB_BADCODE);

	/* Re-enrolment: a new secret, and the old one's codes stop working;
	 * the step count starts again. */
	snprintf(old_b32, sizeof(old_b32), "%s", b32);
	CHECK_EQ_INT(userdb_totp_reset(db, "hank", b32, sizeof(b32)), USERDB_OK);
	CHECK(strcmp(b32, old_b32) != 0);
	code_at(old_b32, T0 + 5 * TOTP_STEP_S, code);
	code_at(b32, T0 + 5 * TOTP_STEP_S, next);
	if (strcmp(code, next) != 0)
		CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", code, true,
		    T0 + 5 * TOTP_STEP_S, NULL), USERDB_BADCODE);
	code_at(b32, T0, code);
	CHECK_EQ_INT(userdb_verify(db, "hank", "hank's password", code, true, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_totp_reset(db, "nobody", b32, sizeof(b32)), USERDB_NOTFOUND);
	/* A user without TOTP can be enrolled. */
	CHECK_EQ_INT(userdb_totp_reset(db, "gina", b32, sizeof(b32)), USERDB_OK);
	CHECK_EQ_INT(userdb_get(db, "gina", &e), USERDB_OK);
	CHECK(e.has_totp);
	userdb_close(db);
}

static void test_lockout(struct userdb *db)
{
	struct userdb_entry e;
	uint64_t t = T0, expect;
	int i;

	CHECK_EQ_INT(userdb_add(db, "ivan", "ivan's password", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	for (i = 1; i < USERDB_LOCK_AFTER; i++) {
		CHECK_EQ_INT(userdb_verify(db, "ivan", "guess", NULL, false, t, NULL),
		    USERDB_BADPASSWORD);
		CHECK_EQ_INT(userdb_get(db, "ivan", &e), USERDB_OK);
		CHECK_EQ_INT(e.failures, i);
		CHECK_EQ_INT(e.locked_until_s, 0);
	}
	/* The fifth failure locks for USERDB_LOCK_BASE_S. */
	CHECK_EQ_INT(userdb_verify(db, "ivan", "guess", NULL, false, t, NULL),
	    USERDB_BADPASSWORD);
	CHECK_EQ_INT(userdb_get(db, "ivan", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, USERDB_LOCK_AFTER);
	CHECK_EQ_INT(e.locked_until_s, t + USERDB_LOCK_BASE_S);
	/* While locked even the right password is refused, and attempts
	 * neither count nor extend the lock. */
	CHECK_EQ_INT(userdb_verify(db, "ivan", "ivan's password", NULL, false, t + 1, NULL),
	    USERDB_LOCKED);
	CHECK_EQ_INT(userdb_verify(db, "ivan", "guess", NULL, false,
	    t + USERDB_LOCK_BASE_S - 1, NULL), USERDB_LOCKED);
	CHECK_EQ_INT(userdb_get(db, "ivan", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, USERDB_LOCK_AFTER);
	CHECK_EQ_INT(e.locked_until_s, t + USERDB_LOCK_BASE_S);

	/* After the period, each further failure doubles the lock, up to
	 * the cap. */
	expect = USERDB_LOCK_BASE_S;
	for (i = 0; i < 10; i++) {
		t = e.locked_until_s;
		CHECK_EQ_INT(userdb_verify(db, "ivan", "guess", NULL, false, t, NULL),
		    USERDB_BADPASSWORD);
		expect = expect * 2 < USERDB_LOCK_MAX_S ? expect * 2 : USERDB_LOCK_MAX_S;
		CHECK_EQ_INT(userdb_get(db, "ivan", &e), USERDB_OK);
		CHECK_EQ_INT(e.failures, USERDB_LOCK_AFTER + i + 1);
		CHECK_EQ_INT(e.locked_until_s, t + expect);
		CHECK_EQ_INT(userdb_verify(db, "ivan", "ivan's password", NULL, false,
		    t + expect - 1, NULL), USERDB_LOCKED);
	}
	CHECK_EQ_INT(expect, USERDB_LOCK_MAX_S);
	/* Once it expires, the right password works and resets it all. */
	t = e.locked_until_s;
	CHECK_EQ_INT(userdb_verify(db, "ivan", "ivan's password", NULL, false, t, &e),
	    USERDB_OK);
	CHECK_EQ_INT(e.failures, 0);
	CHECK_EQ_INT(e.locked_until_s, 0);

	/* An admin's unlock ends a lock at once. */
	for (i = 0; i < USERDB_LOCK_AFTER; i++)
		userdb_verify(db, "ivan", "guess", NULL, false, t, NULL);
	CHECK_EQ_INT(userdb_verify(db, "ivan", "ivan's password", NULL, false, t, NULL),
	    USERDB_LOCKED);
	CHECK_EQ_INT(userdb_unlock(db, "ivan"), USERDB_OK);
	CHECK_EQ_INT(userdb_get(db, "ivan", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, 0);
	CHECK_EQ_INT(e.locked_until_s, 0);
	CHECK_EQ_INT(userdb_verify(db, "ivan", "ivan's password", NULL, false, t, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_unlock(db, "nobody"), USERDB_NOTFOUND);

	/* Wrong codes count like wrong passwords. */
	CHECK_EQ_INT(userdb_totp_reset(db, "ivan", (char[40]){ 0 }, 40), USERDB_OK);
	for (i = 0; i < USERDB_LOCK_AFTER; i++)
		CHECK_EQ_INT(userdb_verify(db, "ivan", "ivan's password", "xxxxxx", true, t,
		    NULL), USERDB_BADCODE);
	CHECK_EQ_INT(userdb_verify(db, "ivan", "ivan's password", NULL, false, t, NULL),
	    USERDB_LOCKED);
	CHECK_EQ_INT(userdb_unlock(db, "ivan"), USERDB_OK);
}

static void test_disable_passwd(struct userdb *db)
{
	struct userdb_entry e;

	CHECK_EQ_INT(userdb_add(db, "judy", "judy's password", NULL, 0, false, NULL, 0),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_set_disabled(db, "judy", true), USERDB_OK);
	CHECK_EQ_INT(userdb_get(db, "judy", &e), USERDB_OK);
	CHECK(e.disabled);
	CHECK_EQ_INT(userdb_verify(db, "judy", "judy's password", NULL, false, T0, NULL),
	    USERDB_DISABLED);
	/* A disabled account does not count failures either. */
	CHECK_EQ_INT(userdb_verify(db, "judy", "guess", NULL, false, T0, NULL),
	    USERDB_DISABLED);
	CHECK_EQ_INT(userdb_get(db, "judy", &e), USERDB_OK);
	CHECK_EQ_INT(e.failures, 0);
	CHECK_EQ_INT(userdb_set_disabled(db, "judy", false), USERDB_OK);
	CHECK_EQ_INT(userdb_verify(db, "judy", "judy's password", NULL, false, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_set_disabled(db, "nobody", true), USERDB_NOTFOUND);

	CHECK_EQ_INT(userdb_passwd(db, "judy", "a new password"), USERDB_OK);
	CHECK_EQ_INT(userdb_verify(db, "judy", "judy's password", NULL, false, T0, NULL),
	    USERDB_BADPASSWORD);
	CHECK_EQ_INT(userdb_verify(db, "judy", "a new password", NULL, false, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_passwd(db, "nobody", "a new password"), USERDB_NOTFOUND);
}

/* The halves for callers that hash elsewhere: a hash made by
 * password_hash() is written as it is; anything else is refused. */
static void test_hashed(struct userdb *db)
{
	char h1[PASSWORD_ENCODED_MAX], h2[PASSWORD_ENCODED_MAX];
	const char *groups[] = { "team" };

	CHECK(userdb_name_ok("hashed"));
	CHECK(!userdb_name_ok("-hashed"));
	CHECK(userdb_password_ok("eight ch"));
	CHECK(!userdb_password_ok("seven c"));
	CHECK_EQ_INT(password_hash("hashed's password", h1, sizeof(h1)), PASSWORD_OK);
	CHECK_EQ_INT(password_hash("another password", h2, sizeof(h2)), PASSWORD_OK);
	CHECK_EQ_INT(userdb_add_hashed(db, "hashed", "not a hash", NULL, 0, false, NULL, 0),
	    USERDB_INVALID);
	CHECK_EQ_INT(userdb_add_hashed(db, "-hashed", h1, NULL, 0, false, NULL, 0),
	    USERDB_INVALID);
	CHECK_EQ_INT(userdb_add_hashed(db, "hashed", h1, groups, 1, false, NULL, 0), USERDB_OK);
	CHECK_EQ_INT(userdb_add_hashed(db, "hashed", h1, NULL, 0, false, NULL, 0), USERDB_EXISTS);
	CHECK_EQ_INT(userdb_verify(db, "hashed", "hashed's password", NULL, false, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_passwd_hashed(db, "hashed", "$argon2i$v=19$m=65536,t=3,p=1$x$y"),
	    USERDB_INVALID);
	CHECK_EQ_INT(userdb_passwd_hashed(db, "nobody", h2), USERDB_NOTFOUND);
	CHECK_EQ_INT(userdb_passwd_hashed(db, "hashed", h2), USERDB_OK);
	CHECK_EQ_INT(userdb_verify(db, "hashed", "hashed's password", NULL, false, T0, NULL),
	    USERDB_BADPASSWORD);
	CHECK_EQ_INT(userdb_verify(db, "hashed", "another password", NULL, false, T0, NULL),
	    USERDB_OK);
}

/* The hooks around a write: each before() is followed by one after()
 * with what it returned, for statements on their own and transactions,
 * refused or not; reads and refused arguments call none. */
static unsigned hooks_before, hooks_after, hooks_token, hooks_open;

static unsigned hook_before(void)
{
	hooks_before++;
	hooks_open++;
	return ++hooks_token;
}

static void hook_after(unsigned token)
{
	hooks_after++;
	CHECK_EQ_INT(token, hooks_token);
	hooks_open--;
}

static void test_write_hooks(struct userdb *db)
{
	char h[PASSWORD_ENCODED_MAX];
	struct userdb_entry e;

	CHECK_EQ_INT(password_hash("hooked's password", h, sizeof(h)), PASSWORD_OK);
	userdb_set_write_hooks(db, hook_before, hook_after);
	CHECK_EQ_INT(userdb_add_hashed(db, "hooked", h, NULL, 0, false, NULL, 0), USERDB_OK);
	CHECK_EQ_INT(hooks_before, 1);
	/* Refused by the database inside the transaction: the hooks pair up. */
	CHECK_EQ_INT(userdb_add_hashed(db, "hooked", h, NULL, 0, false, NULL, 0), USERDB_EXISTS);
	CHECK_EQ_INT(hooks_before, 2);
	CHECK_EQ_INT(userdb_set_disabled(db, "hooked", true), USERDB_OK);
	CHECK_EQ_INT(hooks_before, 3);
	CHECK_EQ_INT(userdb_set_disabled(db, "hooked", false), USERDB_OK);
	CHECK_EQ_INT(userdb_check_code(db, "hooked", "123456", T0), USERDB_BADCODE);
	CHECK_EQ_INT(hooks_before, 5);
	/* A read, and arguments refused before any write: no hook. */
	CHECK_EQ_INT(userdb_get(db, "hooked", &e), USERDB_OK);
	CHECK_EQ_INT(userdb_passwd_hashed(db, "hooked", "not a hash"), USERDB_INVALID);
	CHECK_EQ_INT(hooks_before, 5);
	CHECK_EQ_INT(hooks_after, hooks_before);
	CHECK_EQ_INT(hooks_open, 0);
	userdb_set_write_hooks(db, NULL, NULL);
	CHECK_EQ_INT(userdb_unlock(db, "hooked"), USERDB_OK);
	CHECK_EQ_INT(hooks_before, 5);
}

static void test_reopen(void)
{
	struct userdb *db = open_db();
	struct userdb_entry e;
	struct collect c;

	CHECK_EQ_INT(userdb_verify(db, "judy", "a new password", NULL, false, T0, NULL),
	    USERDB_OK);
	CHECK_EQ_INT(userdb_get(db, "carol@example.com", &e), USERDB_OK);
	CHECK_EQ_INT(e.ngroups, 1);
	CHECK(strcmp(e.groups[0], "support") == 0);
	memset(&c, 0, sizeof(c));
	CHECK_EQ_INT(userdb_list(db, collect_fn, &c), USERDB_OK);
	CHECK(c.n >= 8);
	CHECK_EQ_INT(mode_of(dbpath), 0600);
	userdb_close(db);
}

/* The daemon holds two connections (its own and the login worker's)
 * while `gatehouse user add` runs in another process. Opening the second
 * must not drop the first one's locks, or the other process finds itself
 * the last user on close and deletes the WAL that the daemon still reads:
 * its later additions are then never seen. */
static void test_two_connections_and_another_process(void)
{
	struct userdb *a = open_db(), *b = open_db();
	struct userdb_entry e;
	char wal[PATH_MAX + 8];
	int i, status = -1;
	pid_t pid;

	snprintf(wal, sizeof(wal), "%s-wal", dbpath);
	for (i = 0; i < 2; i++) {
		/* A new program, not just a fork: a forked child would share
		 * this process's SQLite lock bookkeeping. */
		pid = fork();
		if (pid == 0) {
			execl("/proc/self/exe", "test_userdb", "add-other-process", tmpdir,
			    i == 0 ? "late1" : "late2", (char *)NULL);
			_exit(127);
		}
		CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK(access(wal, F_OK) == 0);
	}
	CHECK_EQ_INT(userdb_get(a, "late1", &e), USERDB_OK);
	CHECK_EQ_INT(userdb_get(b, "late2", &e), USERDB_OK);
	CHECK_EQ_INT(userdb_get(a, "late2", &e), USERDB_OK);
	userdb_close(b);
	userdb_close(a);
}

/* Several processes open a users.db that does not exist yet at the same
 * time (`gatehouse user add` run in parallel by a provisioning script):
 * every one of them gets it, none fails with "database is locked" while
 * the first of them switches it to WAL. */
static void test_concurrent_first_opens(void)
{
	char dir[PATH_MAX], cmd[PATH_MAX + 16], name[16];
	int round, i, status, ok = 0, total = 0;
	pid_t pids[6];

	for (round = 0; round < 8; round++) {
		snprintf(dir, sizeof(dir), "%s/race%d", tmpdir, round);
		if (mkdir(dir, 0700) != 0) {
			CHECK(0);
			return;
		}
		for (i = 0; i < 6; i++) {
			snprintf(name, sizeof(name), "u%d", i);
			pids[i] = fork();
			if (pids[i] == 0) {
				execl("/proc/self/exe", "test_userdb", "add-other-process", dir, name,
				    (char *)NULL);
				_exit(127);
			}
		}
		for (i = 0; i < 6; i++, total++) {
			status = -1;
			if (pids[i] > 0 && waitpid(pids[i], &status, 0) == pids[i] &&
			    WIFEXITED(status) && WEXITSTATUS(status) == 0)
				ok++;
		}
	}
	CHECK_EQ_INT(ok, total);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'/race*", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s/race*\n", tmpdir);
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* The other process of test_two_connections_and_another_process(). */
static int add_other_process(const char *dir, const char *name)
{
	struct userdb *c = userdb_open(dir, test_key, err, sizeof(err));
	int rc;

	if (c == NULL) {
		fprintf(stderr, "add-other-process %s: %s\n", name, err);
		return 1;
	}
	password_set_cost_for_tests(8, 1);
	rc = userdb_add(c, name, "a long enough password", NULL, 0, false, NULL, 0);
	userdb_close(c);
	if (rc != USERDB_OK)
		fprintf(stderr, "add-other-process %s: userdb_add: %d\n", name, rc);
	return rc == USERDB_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct userdb *db;

	if (argc == 4 && strcmp(argv[1], "add-other-process") == 0)
		return add_other_process(argv[2], argv[3]);

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/gh-test-userdb-XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	snprintf(dbpath, sizeof(dbpath), "%s/" USERDB_FILE, tmpdir);
	/* libargon2's smallest cost: the tests check logic, not strength. */
	password_set_cost_for_tests(8, 1);

	test_open_mode();
	test_open_refusals();
	test_schema();
	db = open_db();
	test_add_get_list_del(db);
	test_invalid(db);
	test_verify(db);
	test_totp(db); /* closes db */
	db = open_db();
	test_lockout(db);
	test_disable_passwd(db);
	test_change_log(db);
	test_password_changed_during_check(db);
	test_hashed(db);
	test_write_hooks(db);
	test_sealed_at_rest(db);
	userdb_close(db);
	test_rekey();
	test_migrate_v1();
	test_reopen();
	test_two_connections_and_another_process();
	test_concurrent_first_opens();
	cleanup();
	return check_done("test_userdb");
}
