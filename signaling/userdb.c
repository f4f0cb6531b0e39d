/* Local users in SQLite: argon2id hashes, TOTP secrets, groups, a
 * disabled flag and progressive lockout.
 *
 * Every statement is prepared with its values bound, never built from
 * strings. The file is created 0600 before SQLite opens it (SQLite gives
 * its -wal and -shm files the mode of the database). TOTP secrets are
 * stored sealed under the secrets key (secret_seal.h), which lives in a
 * file of its own: the database alone gives no one a second factor.
 * PRAGMA secure_delete makes SQLite overwrite what a delete or an update
 * frees, so a removed user's hash and secret do not linger in free
 * pages.
 *
 * A password check takes a quarter of a second of argon2, so it runs
 * outside any transaction; the counters and the TOTP step that depend on
 * it are then read again and written in one BEGIN IMMEDIATE transaction,
 * so two logins at once can neither both use one code nor lose a
 * failure. */
#include "signaling/userdb.h"
#include "common/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>

#include "gateway/log.h"
#include "signaling/password.h"
#include "signaling/secret_seal.h"
#include "signaling/totp.h"

#define USERDB_SCHEMA_VERSION 3
#define USERDB_BUSY_MS 2000
#define USERDB_B32_MIN 33 /* base32 of the 20-byte secret and a NUL */

_Static_assert((USERDB_TOTP_SECRET_LEN * 8 + 4) / 5 < USERDB_B32_MIN, "USERDB_B32_MIN");
_Static_assert(USERDB_KEY_ID_HEX == 2 * SEAL_KEY_ID_LEN + 1, "USERDB_KEY_ID_HEX");

struct userdb {
	sqlite3 *db;
	char path[PATH_MAX];
	/* The daemon reads the change log every second: compiled once, at
	 * the first read, rather than at every one. */
	sqlite3_stmt *changes_st;
	struct seal_key key;              /* seals the TOTP secrets */
	int lock_fd;                      /* USERDB_LOCK_FILE, flock()ed: lock_take() */
	bool exclusive;                   /* userdb_open_exclusive() */
	bool waited;                      /* for a rekey, at open */
	unsigned (*write_before)(void);   /* userdb_set_write_hooks() */
	void (*write_after)(unsigned);
};

/* Everything about one user that a check needs. Wiped after use. */
struct row {
	struct userdb_entry e;
	char pw_hash[256];
	uint8_t sealed[SEAL_SEALED_MAX];  /* the TOTP secret, sealed */
	size_t sealed_len;
	uint64_t last_step;
};

static const char schema_v1[] =
    "CREATE TABLE users ("
    " name TEXT PRIMARY KEY NOT NULL,"
    " pw_hash TEXT NOT NULL,"
    " totp_secret BLOB,"
    " totp_last_step INTEGER NOT NULL DEFAULT 0,"
    " disabled INTEGER NOT NULL DEFAULT 0,"
    " failures INTEGER NOT NULL DEFAULT 0,"
    " locked_until INTEGER NOT NULL DEFAULT 0,"
    " created INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TABLE user_groups ("
    " name TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
    " grp TEXT NOT NULL,"
    " PRIMARY KEY (name, grp)"
    ") STRICT, WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

/* Version 2: a log of the changes that decide whether a user may be
 * signed in, written by triggers, so that the daemon learns of those made
 * by another process (`gatehouse user disable` on the host) and ends the
 * user's sessions as the admin API would. Only the newest 10,000 are
 * kept (userdb.h); the daemon reads it every second. */
static const char schema_v2[] =
    "CREATE TABLE user_changes ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " name TEXT NOT NULL,"
    " kind INTEGER NOT NULL"
    ") STRICT;"
    "CREATE TRIGGER user_changes_added AFTER INSERT ON users BEGIN"
    " INSERT INTO user_changes (name, kind) VALUES (NEW.name, 0); END;"
    "CREATE TRIGGER user_changes_deleted AFTER DELETE ON users BEGIN"
    " INSERT INTO user_changes (name, kind) VALUES (OLD.name, 1); END;"
    "CREATE TRIGGER user_changes_disabled AFTER UPDATE OF disabled ON users"
    " WHEN NEW.disabled IS NOT OLD.disabled BEGIN"
    " INSERT INTO user_changes (name, kind) VALUES (NEW.name,"
    " CASE WHEN NEW.disabled THEN 2 ELSE 3 END); END;"
    "CREATE TRIGGER user_changes_kept AFTER INSERT ON user_changes BEGIN"
    " DELETE FROM user_changes WHERE seq <= NEW.seq - 10000; END;"
    "PRAGMA user_version = 2;";

/* Version 3: TOTP secrets sealed (secret_seal.h) in a column of their
 * own, and the id of the key they are sealed with. migrate() seals the
 * raw secrets of version 2 into it, then drops the old column: a daemon
 * of version 2 still running then fails every read loudly ("no such
 * column") instead of taking a sealed secret for a raw one, locking
 * every TOTP user out. */
static const char schema_v3[] =
    "ALTER TABLE users ADD COLUMN totp_sealed BLOB;"
    "CREATE TABLE sealing_key (id BLOB NOT NULL) STRICT;";
static const char schema_v3_end[] =
    "ALTER TABLE users DROP COLUMN totp_secret;"
    "PRAGMA user_version = 3;";

_Static_assert(USERDB_CHANGE_ADDED == 0 && USERDB_CHANGE_DELETED == 1 &&
    USERDB_CHANGE_DISABLED == 2 && USERDB_CHANGE_ENABLED == 3, "kinds in schema_v2");

/* SQLite's messages name tables and columns, never the values bound. */
static int db_error(struct userdb *u, const char *what)
{
	log_err("%s: %s: %s", u->path, what, sqlite3_errmsg(u->db));
	return USERDB_ERROR;
}

static int name_ok(const char *s)
{
	size_t i;
	char c;

	if (s == NULL || s[0] == '\0' || s[0] == '-' || s[0] == '.')
		return 0;
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= IDENTITY_NAME_MAX - 1)
			return 0;
		c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@' || c == '-'))
			return 0;
	}
	return 1;
}

static int password_ok(const char *pw)
{
	size_t n;

	if (pw == NULL)
		return 0;
	n = strnlen(pw, PASSWORD_MAX_LEN + 1);
	return n >= PASSWORD_MIN_LEN && n <= PASSWORD_MAX_LEN;
}

/* What password_hash() writes: an argon2id encoding. A hash made
 * elsewhere is checked for its form before it replaces a password, so
 * that a mistake cannot lock a user out with a string no check accepts. */
static int hash_ok(const char *hash)
{
	return hash != NULL && strncmp(hash, "$argon2id$", 10) == 0 &&
	    strnlen(hash, PASSWORD_ENCODED_MAX) < PASSWORD_ENCODED_MAX;
}

/* SQLite integers are signed 64-bit; times beyond that do not occur,
 * and clamping keeps "now + lock" from overflowing. */
static int64_t to_db_time(uint64_t t)
{
	const uint64_t max = (uint64_t)INT64_MAX - USERDB_LOCK_MAX_S;

	return (int64_t)(t < max ? t : max);
}

static uint64_t from_db_u64(int64_t v)
{
	return v > 0 ? (uint64_t)v : 0;
}

/* After USERDB_LOCK_AFTER failures in a row, USERDB_LOCK_BASE_S, doubled
 * for each failure after that, up to USERDB_LOCK_MAX_S. */
static uint64_t lock_s(uint32_t failures)
{
	uint64_t s = USERDB_LOCK_BASE_S;
	uint32_t i;

	for (i = USERDB_LOCK_AFTER; i < failures && s < USERDB_LOCK_MAX_S; i++)
		s *= 2;
	return s < USERDB_LOCK_MAX_S ? s : USERDB_LOCK_MAX_S;
}

static int prepare(struct userdb *u, const char *sql, sqlite3_stmt **st)
{
	if (sqlite3_prepare_v2(u->db, sql, -1, st, NULL) != SQLITE_OK) {
		*st = NULL;
		return db_error(u, "prepare");
	}
	return USERDB_OK;
}

static int exec(struct userdb *u, const char *sql)
{
	if (sqlite3_exec(u->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(u, sql);
	return USERDB_OK;
}

/* For userdb_open, whose caller reports the failure from err. */
static int exec_quiet(struct userdb *u, const char *sql)
{
	return sqlite3_exec(u->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
}

static void rollback(struct userdb *u)
{
	/* Fails harmlessly when the error already ended the transaction. */
	(void)sqlite3_exec(u->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Around each write (a statement on its own, or a transaction): the
 * hooks of userdb_set_write_hooks(). */
static unsigned write_start(struct userdb *u)
{
	return u->write_before != NULL ? u->write_before() : 0;
}

static void write_done(struct userdb *u, unsigned held)
{
	if (u->write_after != NULL)
		u->write_after(held);
}

/* Runs a prepared UPDATE or DELETE of one user and finalizes it:
 * USERDB_NOTFOUND when no row matched. Inside a transaction; write_alone()
 * for a statement on its own. */
static int write_one(struct userdb *u, sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(u, "write");
	return sqlite3_changes(u->db) > 0 ? USERDB_OK : USERDB_NOTFOUND;
}

static int write_alone(struct userdb *u, sqlite3_stmt *st)
{
	unsigned held = write_start(u);
	int rc = write_one(u, st);

	write_done(u, held);
	return rc;
}

/* ---- opening ---- */

/* users.db and users.lock: a regular file (not a link) that only its
 * owner may read or write. 0, or -1 with err naming path. */
static int state_file_ok(const char *path, const struct stat *st, char *err, size_t errlen)
{
	if (S_ISLNK(st->st_mode))
		return errmsg_fail(err, errlen, "%s: is a symbolic link; refusing it", path);
	if (!S_ISREG(st->st_mode))
		return errmsg_fail(err, errlen, "%s: not a regular file", path);
	if (st->st_mode & 077)
		return errmsg_fail(err, errlen, "%s: readable or writable by group or others "
		    "(chmod 600)", path);
	return 0;
}

/* Creates the file 0600 if missing, and refuses one that is not a plain
 * file or that group or others may read or write. An existing file is
 * only looked at, never opened here: closing any descriptor of it would
 * drop the POSIX locks that another connection of this process holds
 * (the daemon has two, its own and the login worker's), and a
 * `gatehouse user` run would then find itself the last user of the
 * database and delete the WAL from under the daemon
 * (https://www.sqlite.org/howtocorrupt.html, section 2.2). */
static int file_prepare(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd;

	/* O_EXCL: a planted symbolic link or FIFO is not followed or opened
	 * but found by the lstat below; nothing has a new file open yet. */
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
	    O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
	else if (errno != EEXIST)
		return errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
	if (lstat(path, &st) < 0)
		return errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
	return state_file_ok(path, &st, err, errlen);
}

static int user_version(struct userdb *u, int *v)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(u->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return -1;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -1;
}

/* What a pass over the TOTP secrets makes of one user's stored blob: its
 * new sealed form (the length), or -1 to stop the pass. */
typedef int (*reseal_fn)(struct userdb *u, const struct seal_key *to, const char *name,
    const void *blob, int len, uint8_t sealed[SEAL_SEALED_MAX]);

/* Rewrites totp_sealed of every user that select finds (SQL taking the
 * last name done as ?1 and giving the next name and its blob, in name
 * order: no statement reads the table while another writes it), with
 * what redo makes of the blob, inside the caller's transaction. The
 * number of users rewritten; -1 with err on a database error or a
 * malformed row; -2 when redo refused a user, whose name is left in
 * name. */
static int reseal_rows(struct userdb *u, const char *select, reseal_fn redo,
    const struct seal_key *to, char name[IDENTITY_NAME_MAX], char *err, size_t errlen)
{
	uint8_t sealed[SEAL_SEALED_MAX];
	sqlite3_stmt *next = NULL, *put = NULL;
	const unsigned char *t;
	const void *blob;
	int n, count = 0, rc = -1;

	name[0] = '\0';
	if (sqlite3_prepare_v2(u->db, select, -1, &next, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(u->db, "UPDATE users SET totp_sealed = ?2 WHERE name = ?1", -1,
	    &put, NULL) != SQLITE_OK)
		goto fail_db;
	for (;;) {
		sqlite3_bind_text(next, 1, name, -1, SQLITE_TRANSIENT);
		if ((n = sqlite3_step(next)) == SQLITE_DONE)
			break;
		if (n != SQLITE_ROW)
			goto fail_db;
		t = sqlite3_column_text(next, 0);
		n = sqlite3_column_bytes(next, 0);
		if (t == NULL || n <= 0 || n >= IDENTITY_NAME_MAX) {
			errmsg_fail(err, errlen, "%s: table users: a name of %d bytes", u->path, n);
			goto out;
		}
		memcpy(name, t, (size_t)n + 1);
		/* The blob first, then its length (SQLite's documented order);
		 * both before the reset, which frees them. */
		blob = sqlite3_column_blob(next, 1);
		n = redo(u, to, name, blob, sqlite3_column_bytes(next, 1), sealed);
		sqlite3_reset(next);
		if (n < 0) {
			rc = -2;
			goto out;
		}
		sqlite3_bind_text(put, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(put, 2, sealed, n, SQLITE_STATIC);
		if (sqlite3_step(put) != SQLITE_DONE)
			goto fail_db;
		sqlite3_reset(put);
		count++;
	}
	rc = count;
	goto out;
fail_db:
	errmsg_fail(err, errlen, "%s: %s", u->path, sqlite3_errmsg(u->db));
out:
	sqlite3_finalize(next);
	sqlite3_finalize(put);
	OPENSSL_cleanse(sealed, sizeof(sealed));
	return rc;
}

/* Version 2 kept the raw secret: sealed under the key in use. */
static int seal_raw(struct userdb *u, const struct seal_key *to, const char *name,
    const void *blob, int len, uint8_t sealed[SEAL_SEALED_MAX])
{
	(void)u;
	if (blob == NULL || len <= 0 || len > SEAL_SECRET_MAX)
		return -1;
	return seal_totp(to, name, blob, (size_t)len, sealed, SEAL_SEALED_MAX);
}

/* Version 3's migration, in migrate()'s transaction: records the key's id
 * and seals each raw secret that version 2 kept. */
static int seal_all(struct userdb *u)
{
	char name[IDENTITY_NAME_MAX];
	sqlite3_stmt *put;
	int n;

	if (sqlite3_prepare_v2(u->db, "INSERT INTO sealing_key (id) VALUES (?1)", -1, &put,
	    NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_blob(put, 1, u->key.id, sizeof(u->key.id), SQLITE_STATIC);
	n = sqlite3_step(put);
	sqlite3_finalize(put);
	if (n != SQLITE_DONE)
		return -1;
	return reseal_rows(u, "SELECT name, totp_secret FROM users WHERE name > ?1 AND "
	    "totp_secret IS NOT NULL ORDER BY name LIMIT 1", seal_raw, &u->key, name, NULL,
	    0) < 0 ? -1 : 0;
}

/* The key given must be the one the secrets were sealed with: a wrong
 * key file is refused at start, by name, rather than failing every TOTP
 * login later as if the codes were wrong. */
static int key_check(struct userdb *u, char *err, size_t errlen)
{
	char want[2 * SEAL_KEY_ID_LEN + 1], have[2 * SEAL_KEY_ID_LEN + 1];
	uint8_t id[SEAL_KEY_ID_LEN];
	sqlite3_stmt *st;
	const void *b;
	int rc = -1;
	size_t i;

	if (sqlite3_prepare_v2(u->db, "SELECT id FROM sealing_key", -1, &st, NULL) != SQLITE_OK)
		return errmsg_fail(err, errlen, "%s: %s", u->path, sqlite3_errmsg(u->db));
	/* The blob is copied before the next step, which frees it. */
	if (sqlite3_step(st) != SQLITE_ROW || (b = sqlite3_column_blob(st, 0)) == NULL ||
	    sqlite3_column_bytes(st, 0) != SEAL_KEY_ID_LEN ||
	    (memcpy(id, b, sizeof(id)), sqlite3_step(st)) != SQLITE_DONE) {
		errmsg_fail(err, errlen, "%s: table sealing_key: expected one key id", u->path);
		goto out;
	}
	if (CRYPTO_memcmp(id, u->key.id, SEAL_KEY_ID_LEN) != 0) {
		for (i = 0; i < SEAL_KEY_ID_LEN; i++) {
			snprintf(want + 2 * i, 3, "%02x", id[i]);
			snprintf(have + 2 * i, 3, "%02x", u->key.id[i]);
		}
		errmsg_fail(err, errlen, "%s: " USERDB_KEY_MISMATCH " %s, not with the one given "
		    "(id %s): %s", u->path, want, have, u->waited ? "gatehouse user rekey "
		    "changed the key while this waited for it: start again" : "give it the key "
		    "file it was made with (identity.secrets_key_file)");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Copies the WAL into the database and empties it, so that the pages
 * an update replaced (what) are overwritten now, not whenever the WAL
 * grows. Logged when another connection's read holds part of it back. */
static void checkpoint_now(struct userdb *u, const char *what)
{
	sqlite3_stmt *st;

	if (sqlite3_prepare_v2(u->db, "PRAGMA wal_checkpoint(TRUNCATE)", -1, &st, NULL) !=
	    SQLITE_OK)
		return;
	if (sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int(st, 0) != 0)
		log_warn("%s: could not checkpoint: %s stay in the file until the next "
		    "checkpoint", u->path, what);
	sqlite3_finalize(st);
}

/* The schema version lives in the header's user_version: 0 is a new
 * file. Each version's statements run in turn, in one transaction, and
 * BEGIN IMMEDIATE so that two processes opening the file at once do not
 * both run them. */
static int migrate(struct userdb *u, char *err, size_t errlen)
{
	int v = 0;

	if (exec_quiet(u, "BEGIN IMMEDIATE") < 0)
		return errmsg_fail(err, errlen, "%s: %s", u->path, sqlite3_errmsg(u->db));
	if (user_version(u, &v) < 0 || (v == 0 && exec_quiet(u, schema_v1) < 0) ||
	    (v < 2 && exec_quiet(u, schema_v2) < 0) ||
	    (v < 3 && (exec_quiet(u, schema_v3) < 0 || seal_all(u) < 0 ||
	    exec_quiet(u, schema_v3_end) < 0)))
		goto fail_db;
	if (v > USERDB_SCHEMA_VERSION) {
		rollback(u);
		return errmsg_fail(err, errlen, "%s: schema version %d is newer than this "
		    "gatehouse knows (%d)", u->path, v, USERDB_SCHEMA_VERSION);
	}
	if (exec_quiet(u, "COMMIT") < 0)
		goto fail_db;
	/* The raw secrets of version 2 are still in the pages that the WAL
	 * has replaced, in the database file itself, until a checkpoint
	 * writes the new ones over them: now, not whenever the WAL grows. */
	if (v > 0 && v < 3)
		checkpoint_now(u, "the TOTP secrets' raw form");
	return key_check(u, err, errlen);

fail_db:
	errmsg_fail(err, errlen, "%s: %s", u->path, sqlite3_errmsg(u->db));
	rollback(u);
	return -1;
}

static int pragmas(struct userdb *u, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *mode;
	int rc, waited_ms;

	sqlite3_busy_timeout(u->db, USERDB_BUSY_MS);
	if (exec_quiet(u, "PRAGMA foreign_keys = ON") < 0 ||
	    exec_quiet(u, "PRAGMA secure_delete = ON") < 0 ||
	    sqlite3_prepare_v2(u->db, "PRAGMA journal_mode = WAL", -1, &st, NULL) != SQLITE_OK)
		return errmsg_fail(err, errlen, "%s: %s", u->path, sqlite3_errmsg(u->db));
	/* The pragma answers with the mode in effect, which stays the old
	 * one where WAL is impossible (some network file systems): slower
	 * there, but still correct. While another process switches a new
	 * file to WAL at the same moment, SQLite answers "locked" at once
	 * rather than through the busy handler: try again for as long as the
	 * busy timeout. */
	for (waited_ms = 0; (rc = sqlite3_step(st)) == SQLITE_BUSY &&
	    waited_ms < USERDB_BUSY_MS; waited_ms += 10) {
		sqlite3_reset(st);
		sqlite3_sleep(10);
	}
	if (rc != SQLITE_ROW) {
		errmsg_fail(err, errlen, "%s: journal_mode: %s", u->path, sqlite3_errmsg(u->db));
		sqlite3_finalize(st);
		return -1;
	}
	mode = sqlite3_column_text(st, 0);
	if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
		log_warn("%s: cannot use WAL; journal mode is %s", u->path,
		    mode != NULL ? (const char *)mode : "unknown");
	sqlite3_finalize(st);
	return 0;
}

/* Every open holds a lock for as long as it stays open: shared for the
 * daemon and the commands, exclusive for a rekey (userdb_open_exclusive),
 * because a process that opened the database with the old key would go
 * on sealing and opening with it. flock() on a file of its own, not on
 * users.db, whose descriptors must stay SQLite's alone (closing another
 * descriptor of that file would drop SQLite's POSIX locks); mode 0600
 * like users.db, so that only the daemon's user can take it. A shared
 * lock waits, for as long as the busy timeout, while a rekey runs (it
 * takes well under a second); an exclusive one does not wait. */
static int lock_open(struct userdb *u, const char *state_dir, char *err, size_t errlen)
{
	char path[PATH_MAX];
	struct stat st;
	int n;

	n = snprintf(path, sizeof(path), "%s/" USERDB_LOCK_FILE, state_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return errmsg_fail(err, errlen, "%s: path too long", state_dir);
	/* O_NONBLOCK: a FIFO planted here opens without hanging and is
	 * refused by the fstat below. */
	/* O_RDWR: where flock() is emulated with fcntl() locks (NFS), an
	 * exclusive one needs a descriptor open for writing. */
	u->lock_fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK |
	    O_CLOEXEC, 0600);
	if (u->lock_fd < 0)
		return errmsg_fail(err, errlen, "%s: %s", path, errno == ELOOP ?
		    "is a symbolic link; refusing it" : strerror(errno));
	if (fstat(u->lock_fd, &st) < 0)
		return errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
	return state_file_ok(path, &st, err, errlen);
}

static int lock_take(struct userdb *u, const char *state_dir, bool exclusive,
    char *err, size_t errlen)
{
	int waited_ms;

	if (lock_open(u, state_dir, err, errlen) < 0)
		return -1;
	for (waited_ms = 0;; waited_ms += 10) {
		if (flock(u->lock_fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0)
			return 0;
		if (errno == EINTR)
			continue;
		if (errno != EWOULDBLOCK)
			break;
		if (exclusive)
			return errmsg_fail(err, errlen, "%s: in use by a gatehouse daemon or "
			    "another gatehouse user command: stop the daemon first", u->path);
		if (waited_ms >= USERDB_BUSY_MS)
			return errmsg_fail(err, errlen, "%s: gatehouse user rekey has held it for "
			    "over %d ms: try again once it has finished", u->path, USERDB_BUSY_MS);
		u->waited = true;
		usleep(10 * 1000);
	}
	/* A file system without flock(): a rekey cannot tell whether the
	 * daemon runs, so it is refused there; everything else goes on. */
	if (exclusive)
		return errmsg_fail(err, errlen, "%s: cannot lock " USERDB_LOCK_FILE " (%s), so "
		    "a rekey cannot tell whether the daemon runs", state_dir, strerror(errno));
	log_warn("%s: cannot lock " USERDB_LOCK_FILE " (%s): gatehouse user rekey will be "
	    "refused", state_dir, strerror(errno));
	close(u->lock_fd);
	u->lock_fd = -1;
	return 0;
}

static struct userdb *open_locked(const char *state_dir, const uint8_t key[USERDB_KEY_LEN],
    bool exclusive, char *err, size_t errlen)
{
	struct userdb *u;
	int n;

	if (state_dir == NULL || state_dir[0] == '\0') {
		errmsg_fail(err, errlen, "state_dir: empty");
		return NULL;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		errmsg_fail(err, errlen, "out of memory");
		return NULL;
	}
	u->lock_fd = -1;
	u->exclusive = exclusive;
	if (seal_key_derive(key, &u->key) != 0) {
		errmsg_fail(err, errlen, "cannot derive the sealing key");
		goto fail;
	}
	n = snprintf(u->path, sizeof(u->path), "%s/" USERDB_FILE, state_dir);
	if (n < 0 || (size_t)n >= sizeof(u->path)) {
		errmsg_fail(err, errlen, "%s: path too long", state_dir);
		goto fail;
	}
	if (file_prepare(u->path, err, errlen) < 0 ||
	    lock_take(u, state_dir, exclusive, err, errlen) < 0)
		goto fail;
	/* The file exists now, so no SQLITE_OPEN_CREATE: if it vanished in
	 * between, SQLite must not make one with the umask's mode. */
	if (sqlite3_open_v2(u->path, &u->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW,
	    NULL) != SQLITE_OK) {
		errmsg_fail(err, errlen, "%s: %s", u->path,
		    u->db != NULL ? sqlite3_errmsg(u->db) : "out of memory");
		goto fail;
	}
	if (pragmas(u, err, errlen) < 0 || migrate(u, err, errlen) < 0)
		goto fail;
	return u;

fail:
	userdb_close(u);
	return NULL;
}

struct userdb *userdb_open(const char *state_dir, const uint8_t key[USERDB_KEY_LEN],
    char *err, size_t errlen)
{
	return open_locked(state_dir, key, false, err, errlen);
}

struct userdb *userdb_open_exclusive(const char *state_dir,
    const uint8_t key[USERDB_KEY_LEN], char *err, size_t errlen)
{
	return open_locked(state_dir, key, true, err, errlen);
}

void userdb_close(struct userdb *u)
{
	if (u == NULL)
		return;
	/* v2 closes once the last statement is finalized; the only one kept
	 * between calls is finalized first, so this closes now. */
	sqlite3_finalize(u->changes_st);
	sqlite3_close_v2(u->db);
	/* Only once the database is closed: the lock covers its use. */
	if (u->lock_fd >= 0)
		close(u->lock_fd);
	OPENSSL_cleanse(&u->key, sizeof(u->key));
	free(u);
}

void userdb_key_id(const struct userdb *u, char out[USERDB_KEY_ID_HEX])
{
	size_t i;

	for (i = 0; i < SEAL_KEY_ID_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", u->key.id[i]);
}

/* A rekey: opened with the key in use, sealed under the new one. */
static int reseal_one(struct userdb *u, const struct seal_key *to, const char *name,
    const void *blob, int len, uint8_t sealed[SEAL_SEALED_MAX])
{
	uint8_t secret[SEAL_SECRET_MAX];
	int n;

	n = blob != NULL && len > 0 ? open_totp(&u->key, name, blob, (size_t)len, secret,
	    sizeof(secret)) : -1;
	if (n > 0)
		n = seal_totp(to, name, secret, (size_t)n, sealed, SEAL_SEALED_MAX);
	OPENSSL_cleanse(secret, sizeof(secret));
	return n > 0 ? n : -1;
}

int userdb_rekey(struct userdb *u, const uint8_t new_key[USERDB_KEY_LEN], char *err,
    size_t errlen)
{
	char name[IDENTITY_NAME_MAX];
	sqlite3_stmt *id = NULL;
	struct seal_key nk;
	int count, rc = -1;

	if (!u->exclusive)
		return errmsg_fail(err, errlen, "%s: a rekey needs userdb_open_exclusive()", u->path);
	if (seal_key_derive(new_key, &nk) != 0) {
		errmsg_fail(err, errlen, "cannot derive the sealing key");
		goto out;
	}
	if (CRYPTO_memcmp(nk.id, u->key.id, SEAL_KEY_ID_LEN) == 0) {
		errmsg_fail(err, errlen, "%s: the new key is the one in use", u->path);
		goto out;
	}
	/* One transaction: every secret is under the old key or every one
	 * under the new, and the key id with them. */
	if (exec_quiet(u, "BEGIN IMMEDIATE") < 0)
		goto fail_db;
	count = reseal_rows(u, "SELECT name, totp_sealed FROM users WHERE name > ?1 AND "
	    "totp_sealed IS NOT NULL ORDER BY name LIMIT 1", reseal_one, &nk, name, err,
	    errlen);
	if (count == -2) {
		errmsg_fail(err, errlen, "%s: user \"%s\": the TOTP secret does not open "
		    "with the key in use (altered?); nothing was changed: give the user a "
		    "new one first (gatehouse user totp-reset)", u->path, name);
		goto fail;
	}
	if (count < 0)
		goto fail;
	if (sqlite3_prepare_v2(u->db, "UPDATE sealing_key SET id = ?1", -1, &id, NULL) !=
	    SQLITE_OK)
		goto fail_db;
	sqlite3_bind_blob(id, 1, nk.id, sizeof(nk.id), SQLITE_STATIC);
	if (sqlite3_step(id) != SQLITE_DONE)
		goto fail_db;
	if (sqlite3_changes(u->db) != 1) {
		errmsg_fail(err, errlen, "%s: table sealing_key: expected one key id", u->path);
		goto fail;
	}
	/* A COMMIT that fails may still have reached the log, which the next
	 * open replays: from here, the outcome is unknown. */
	if (exec_quiet(u, "COMMIT") < 0) {
		errmsg_fail(err, errlen, "%s: %s", u->path, sqlite3_errmsg(u->db));
		rollback(u);
		rc = USERDB_REKEY_UNKNOWN;
		goto out;
	}
	u->key = nk;
	checkpoint_now(u, "the secrets sealed under the old key");
	rc = count;
	goto out;

fail_db:
	errmsg_fail(err, errlen, "%s: %s", u->path, sqlite3_errmsg(u->db));
fail:
	rollback(u);
out:
	sqlite3_finalize(id);
	OPENSSL_cleanse(&nk, sizeof(nk));
	return rc;
}

/* ---- reading ---- */

#define GROUPS_SQL "SELECT grp FROM user_groups WHERE name = ?1 ORDER BY grp"

/* Reads e's groups with st (prepared from GROUPS_SQL, reset after). */
static int groups_read(struct userdb *u, sqlite3_stmt *st, struct userdb_entry *e)
{
	const unsigned char *g;
	int rc, n;

	e->ngroups = 0;
	sqlite3_bind_text(st, 1, e->name, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		g = sqlite3_column_text(st, 0);
		n = sqlite3_column_bytes(st, 0);
		/* userdb_add never writes more, or longer ones; a file that
		 * holds them was not written by us. */
		if (g == NULL || n <= 0 || n >= IDENTITY_NAME_MAX ||
		    e->ngroups >= IDENTITY_MAX_GROUPS) {
			sqlite3_reset(st);
			log_err("%s: user_groups: unexpected row", u->path);
			return USERDB_ERROR;
		}
		memcpy(e->groups[e->ngroups], g, (size_t)n + 1);
		e->ngroups++;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? USERDB_OK : db_error(u, "read groups");
}

static int groups_load(struct userdb *u, struct userdb_entry *e)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(u, GROUPS_SQL, &st)) != USERDB_OK)
		return rc;
	rc = groups_read(u, st, e);
	sqlite3_finalize(st);
	return rc;
}

#define ROW_COLUMNS "name, pw_hash, totp_sealed, totp_last_step, disabled, failures, " \
	"locked_until"

/* The salted hash changes with every password set, even to the same
 * password, and the sealed secret with every TOTP enrolment (a fresh
 * IV, even were the secret the same). */
static void cred_tag_of(struct row *r)
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	r->e.cred_tag = 0;
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, r->pw_hash, strlen(r->pw_hash) + 1) == 1 &&
	    EVP_DigestUpdate(c, r->sealed, r->sealed_len) == 1 &&
	    EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen >= 8)
		memcpy(&r->e.cred_tag, md, 8);
	EVP_MD_CTX_free(c);
	OPENSSL_cleanse(md, sizeof(md));
}

/* Fills r from the current row of st (selected with ROW_COLUMNS). */
static int row_read(struct userdb *u, sqlite3_stmt *st, struct row *r)
{
	const unsigned char *s;
	const void *b;
	int n;
	int64_t f;

	memset(r, 0, sizeof(*r));
	s = sqlite3_column_text(st, 0);
	n = sqlite3_column_bytes(st, 0);
	if (s == NULL || n <= 0 || n >= IDENTITY_NAME_MAX)
		goto corrupt;
	memcpy(r->e.name, s, (size_t)n + 1);
	s = sqlite3_column_text(st, 1);
	n = sqlite3_column_bytes(st, 1);
	if (s == NULL || n <= 0 || (size_t)n >= sizeof(r->pw_hash))
		goto corrupt;
	memcpy(r->pw_hash, s, (size_t)n + 1);
	if (sqlite3_column_type(st, 2) != SQLITE_NULL) {
		b = sqlite3_column_blob(st, 2);
		n = sqlite3_column_bytes(st, 2);
		if (b == NULL || n <= SEAL_OVERHEAD || (size_t)n > sizeof(r->sealed))
			goto corrupt;
		memcpy(r->sealed, b, (size_t)n);
		r->sealed_len = (size_t)n;
		r->e.has_totp = true;
	}
	r->last_step = from_db_u64(sqlite3_column_int64(st, 3));
	r->e.disabled = sqlite3_column_int64(st, 4) != 0;
	f = sqlite3_column_int64(st, 5);
	r->e.failures = f <= 0 ? 0 : f >= UINT32_MAX ? UINT32_MAX : (uint32_t)f;
	r->e.locked_until_s = from_db_u64(sqlite3_column_int64(st, 6));
	cred_tag_of(r);
	return USERDB_OK;

corrupt:
	log_err("%s: users: unexpected row", u->path);
	OPENSSL_cleanse(r, sizeof(*r));
	return USERDB_ERROR;
}

/* USERDB_OK, USERDB_NOTFOUND or USERDB_ERROR. */
static int row_load(struct userdb *u, const char *name, struct row *r)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(u, "SELECT " ROW_COLUMNS " FROM users WHERE name = ?1", &st)) !=
	    USERDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = row_read(u, st, r);
	else if (rc == SQLITE_DONE)
		rc = USERDB_NOTFOUND;
	else
		rc = db_error(u, "read user");
	sqlite3_finalize(st);
	if (rc == USERDB_OK)
		rc = groups_load(u, &r->e);
	return rc;
}

int userdb_get(struct userdb *u, const char *name, struct userdb_entry *out)
{
	struct row r;
	int rc;

	if (!name_ok(name))
		return USERDB_NOTFOUND;
	rc = row_load(u, name, &r);
	if (rc == USERDB_OK && out != NULL)
		*out = r.e;
	OPENSSL_cleanse(&r, sizeof(r));
	return rc;
}

int userdb_list(struct userdb *u, int (*fn)(void *ctx, const struct userdb_entry *e),
    void *ctx)
{
	sqlite3_stmt *st, *groups = NULL;
	struct row r;
	int rc;

	/* One read transaction: the list is a snapshot even while another
	 * process writes. */
	if ((rc = exec(u, "BEGIN")) != USERDB_OK)
		return rc;
	if ((rc = prepare(u, "SELECT " ROW_COLUMNS " FROM users ORDER BY name", &st)) !=
	    USERDB_OK) {
		rollback(u);
		return rc;
	}
	/* One statement for every user's groups: preparing it anew for
	 * each was most of the time of a list of thousands. */
	if ((rc = prepare(u, GROUPS_SQL, &groups)) != USERDB_OK) {
		sqlite3_finalize(st);
		rollback(u);
		return rc;
	}
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = row_read(u, st, &r)) != USERDB_OK ||
		    (rc = groups_read(u, groups, &r.e)) != USERDB_OK)
			break;
		OPENSSL_cleanse(r.pw_hash, sizeof(r.pw_hash));
		OPENSSL_cleanse(r.sealed, sizeof(r.sealed));
		if (fn(ctx, &r.e) != 0) {
			rc = SQLITE_DONE;
			break;
		}
	}
	OPENSSL_cleanse(&r, sizeof(r));
	if (rc == SQLITE_DONE)
		rc = USERDB_OK;
	else if (rc != USERDB_ERROR)
		rc = db_error(u, "list users");
	sqlite3_finalize(groups);
	sqlite3_finalize(st);
	rollback(u);
	return rc;
}

int userdb_change_last(struct userdb *u, uint64_t *seq)
{
	sqlite3_stmt *st;
	int rc;

	if ((rc = prepare(u, "SELECT IFNULL(MAX(seq), 0) FROM user_changes", &st)) != USERDB_OK)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		*seq = from_db_u64(sqlite3_column_int64(st, 0));
		rc = USERDB_OK;
	} else {
		rc = db_error(u, "read the change log");
	}
	sqlite3_finalize(st);
	return rc;
}

int userdb_changes(struct userdb *u, uint64_t *seq, size_t max, bool *missed,
    void (*fn)(void *ctx, const char *name, enum userdb_change kind), void *ctx)
{
	sqlite3_stmt *st;
	const unsigned char *name;
	uint64_t at;
	int rc, kind;
	bool first = true;

	*missed = false;
	/* One statement is one read transaction: the oldest row kept and the
	 * rows after *seq come from the same snapshot. */
	if (u->changes_st == NULL &&
	    (rc = prepare(u, "SELECT seq, name, kind, (SELECT MIN(seq) FROM user_changes) "
	    "FROM user_changes WHERE seq > ?1 ORDER BY seq LIMIT ?2", &u->changes_st)) != USERDB_OK)
		return rc;
	st = u->changes_st;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)*seq); /* read from the log: fits */
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(max < INT32_MAX ? max : INT32_MAX));
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		at = from_db_u64(sqlite3_column_int64(st, 0));
		/* Rows are only ever pruned from the old end: when the oldest
		 * kept is past the next one wanted, some were never seen. */
		if (first && from_db_u64(sqlite3_column_int64(st, 3)) > *seq + 1)
			*missed = true;
		first = false;
		name = sqlite3_column_text(st, 1);
		kind = sqlite3_column_int(st, 2);
		*seq = at;
		if (name != NULL && kind >= USERDB_CHANGE_ADDED && kind <= USERDB_CHANGE_ENABLED)
			fn(ctx, (const char *)name, (enum userdb_change)kind);
	}
	rc = rc == SQLITE_DONE ? USERDB_OK : db_error(u, "read the change log");
	/* Ends the read transaction, which would otherwise hold back the
	 * write-ahead log's checkpoints. */
	sqlite3_reset(st);
	return rc;
}

/* ---- writing ---- */

/* A fresh TOTP secret for name: its base32 form for the user, and the
 * sealed form for the database. The raw secret is kept nowhere. Returns
 * the sealed length, or -1. */
static int new_secret(struct userdb *u, const char *name, uint8_t sealed[SEAL_SEALED_MAX],
    char *b32, size_t b32cap)
{
	uint8_t secret[USERDB_TOTP_SECRET_LEN];
	int n = -1;

	if (RAND_bytes(secret, sizeof(secret)) == 1 &&
	    totp_base32_encode(secret, sizeof(secret), b32, b32cap) >= 0)
		n = seal_totp(&u->key, name, secret, sizeof(secret), sealed, SEAL_SEALED_MAX);
	OPENSSL_cleanse(secret, sizeof(secret));
	return n;
}

static int insert_groups(struct userdb *u, const char *name, const char *const *groups,
    size_t ngroups)
{
	sqlite3_stmt *st;
	size_t i;
	int rc = USERDB_OK;

	if (ngroups == 0)
		return USERDB_OK;
	/* A group named twice is one membership. */
	if ((rc = prepare(u, "INSERT OR IGNORE INTO user_groups (name, grp) VALUES (?1, ?2)",
	    &st)) != USERDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	for (i = 0; i < ngroups && rc == USERDB_OK; i++) {
		sqlite3_bind_text(st, 2, groups[i], -1, SQLITE_STATIC);
		if (sqlite3_step(st) != SQLITE_DONE)
			rc = db_error(u, "add group");
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	return rc;
}

void userdb_set_write_hooks(struct userdb *u, unsigned (*before)(void),
    void (*after)(unsigned))
{
	u->write_before = before;
	u->write_after = after;
}

bool userdb_name_ok(const char *name)
{
	return name_ok(name);
}

bool userdb_password_ok(const char *password)
{
	return password_ok(password);
}

/* Everything userdb_add() takes but the password. */
static bool add_args_ok(const char *name, const char *const *groups, size_t ngroups,
    bool want_totp, const char *totp_b32, size_t b32cap)
{
	size_t i;

	if (!name_ok(name) || ngroups > IDENTITY_MAX_GROUPS || (ngroups > 0 && groups == NULL) ||
	    (want_totp && (totp_b32 == NULL || b32cap < USERDB_B32_MIN)))
		return false;
	for (i = 0; i < ngroups; i++)
		if (!name_ok(groups[i]))
			return false;
	return true;
}

int userdb_add(struct userdb *u, const char *name, const char *password,
    const char *const *groups, size_t ngroups, bool want_totp,
    char *totp_b32, size_t b32cap)
{
	char hash[PASSWORD_ENCODED_MAX];
	int rc;

	/* Refused before the quarter of a second of hashing. */
	if (!add_args_ok(name, groups, ngroups, want_totp, totp_b32, b32cap) ||
	    !password_ok(password))
		return USERDB_INVALID;
	if (password_hash(password, hash, sizeof(hash)) != PASSWORD_OK) {
		log_err("%s: password hashing failed", u->path);
		return USERDB_ERROR;
	}
	rc = userdb_add_hashed(u, name, hash, groups, ngroups, want_totp, totp_b32, b32cap);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

int userdb_add_hashed(struct userdb *u, const char *name, const char *hash,
    const char *const *groups, size_t ngroups, bool want_totp,
    char *totp_b32, size_t b32cap)
{
	char b32[USERDB_B32_MIN];
	uint8_t sealed[SEAL_SEALED_MAX];
	sqlite3_stmt *st = NULL;
	unsigned held;
	int rc, sealed_len = 0;

	if (!add_args_ok(name, groups, ngroups, want_totp, totp_b32, b32cap) || !hash_ok(hash))
		return USERDB_INVALID;
	held = write_start(u);
	if (want_totp && (sealed_len = new_secret(u, name, sealed, b32, sizeof(b32))) < 0) {
		rc = USERDB_ERROR;
		goto out;
	}

	if ((rc = exec(u, "BEGIN IMMEDIATE")) != USERDB_OK)
		goto out;
	if ((rc = prepare(u, "INSERT INTO users (name, pw_hash, totp_sealed, created) "
	    "VALUES (?1, ?2, ?3, ?4)", &st)) != USERDB_OK)
		goto out_rollback;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	if (want_totp)
		sqlite3_bind_blob(st, 3, sealed, sealed_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 3);
	sqlite3_bind_int64(st, 4, to_db_time((uint64_t)time(NULL)));
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if ((rc & 0xff) == SQLITE_CONSTRAINT) {
		rc = USERDB_EXISTS;
		goto out_rollback;
	}
	if (rc != SQLITE_DONE) {
		rc = db_error(u, "add user");
		goto out_rollback;
	}
	if ((rc = insert_groups(u, name, groups, ngroups)) != USERDB_OK)
		goto out_rollback;
	if ((rc = exec(u, "COMMIT")) != USERDB_OK)
		goto out_rollback;
	if (want_totp)
		memcpy(totp_b32, b32, strlen(b32) + 1);
	goto out;

out_rollback:
	rollback(u);
out:
	write_done(u, held);
	OPENSSL_cleanse(b32, sizeof(b32));
	return rc;
}

int userdb_del(struct userdb *u, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	if (!name_ok(name))
		return USERDB_INVALID;
	/* user_groups rows go with it: ON DELETE CASCADE. */
	if ((rc = prepare(u, "DELETE FROM users WHERE name = ?1", &st)) != USERDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return write_alone(u, st);
}

int userdb_passwd(struct userdb *u, const char *name, const char *password)
{
	char hash[PASSWORD_ENCODED_MAX];
	int rc;

	if (!name_ok(name) || !password_ok(password))
		return USERDB_INVALID;
	if (password_hash(password, hash, sizeof(hash)) != PASSWORD_OK) {
		log_err("%s: password hashing failed", u->path);
		return USERDB_ERROR;
	}
	rc = userdb_passwd_hashed(u, name, hash);
	OPENSSL_cleanse(hash, sizeof(hash));
	return rc;
}

int userdb_passwd_hashed(struct userdb *u, const char *name, const char *hash)
{
	sqlite3_stmt *st;
	int rc;

	if (!name_ok(name) || !hash_ok(hash))
		return USERDB_INVALID;
	if ((rc = prepare(u, "UPDATE users SET pw_hash = ?2 WHERE name = ?1", &st)) != USERDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, hash, -1, SQLITE_STATIC);
	return write_alone(u, st);
}

int userdb_totp_reset(struct userdb *u, const char *name, char *totp_b32, size_t b32cap)
{
	uint8_t sealed[SEAL_SEALED_MAX];
	char b32[USERDB_B32_MIN];
	sqlite3_stmt *st;
	int rc, sealed_len;

	if (!name_ok(name) || totp_b32 == NULL || b32cap < USERDB_B32_MIN)
		return USERDB_INVALID;
	if ((sealed_len = new_secret(u, name, sealed, b32, sizeof(b32))) < 0) {
		rc = USERDB_ERROR;
		goto out;
	}
	/* A new secret starts a new sequence of steps. */
	if ((rc = prepare(u, "UPDATE users SET totp_sealed = ?2, totp_last_step = 0 "
	    "WHERE name = ?1", &st)) != USERDB_OK)
		goto out;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(st, 2, sealed, sealed_len, SQLITE_STATIC);
	if ((rc = write_alone(u, st)) == USERDB_OK)
		memcpy(totp_b32, b32, strlen(b32) + 1);
out:
	OPENSSL_cleanse(b32, sizeof(b32));
	return rc;
}

int userdb_unlock(struct userdb *u, const char *name)
{
	sqlite3_stmt *st;
	int rc;

	if (!name_ok(name))
		return USERDB_INVALID;
	if ((rc = prepare(u, "UPDATE users SET failures = 0, locked_until = 0 "
	    "WHERE name = ?1", &st)) != USERDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	return write_alone(u, st);
}

int userdb_lock(struct userdb *u, const char *name, uint64_t until_s)
{
	sqlite3_stmt *st;
	int rc;

	if (!name_ok(name))
		return USERDB_INVALID;
	if ((rc = prepare(u, "UPDATE users SET locked_until = MAX(locked_until, ?2) "
	    "WHERE name = ?1", &st)) != USERDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, to_db_time(until_s));
	return write_alone(u, st);
}

int userdb_set_disabled(struct userdb *u, const char *name, bool disabled)
{
	sqlite3_stmt *st;
	int rc;

	if (!name_ok(name))
		return USERDB_INVALID;
	if ((rc = prepare(u, "UPDATE users SET disabled = ?2 WHERE name = ?1", &st)) !=
	    USERDB_OK)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, disabled ? 1 : 0);
	return write_alone(u, st);
}

/* ---- verifying ---- */

/* The code against r's secret, opened only for this: USERDB_OK (step
 * advanced), USERDB_BADCODE, or USERDB_ERROR when the secret does not
 * open (altered, or moved from another user's row). */
static int code_check(struct userdb *u, const struct row *r, const char *totp,
    uint64_t now_s, uint64_t *step)
{
	uint8_t secret[SEAL_SECRET_MAX];
	int n, rc;

	n = open_totp(&u->key, r->e.name, r->sealed, r->sealed_len, secret, sizeof(secret));
	if (n < 0) {
		log_err("%s: user %s: the TOTP secret does not open with the secrets key "
		    "(altered, or not this user's)", u->path, r->e.name);
		return USERDB_ERROR;
	}
	rc = totp_check(secret, (size_t)n, totp, now_s, step) == 0 ? USERDB_OK : USERDB_BADCODE;
	OPENSSL_cleanse(secret, sizeof(secret));
	return rc;
}

/* The second half of userdb_verify, in one write transaction: reads the
 * user again (another login may have changed the counters or used the
 * code while argon2 ran), checks the code when the password was right,
 * and records the outcome. checked is the hash the password was checked
 * against, NULL when only a code is checked (userdb_check_code). */
static int settle_tx(struct userdb *u, const char *name, const char *checked, bool pw_ok,
    const char *totp, bool check_totp, uint64_t now_s, struct row *r)
{
	sqlite3_stmt *st;
	uint64_t step;
	uint32_t failures;
	int64_t locked_until;
	int rc, verdict;

	if ((rc = exec(u, "BEGIN IMMEDIATE")) != USERDB_OK)
		return rc;
	if ((rc = row_load(u, name, r)) != USERDB_OK)
		goto out_rollback;
	/* The password was set anew while argon2 ran: what was checked is no
	 * longer the password, and what this login would be granted (an
	 * admin token bound to cred_tag) would carry the new one's tag. */
	if (checked != NULL && pw_ok && (strlen(r->pw_hash) != strlen(checked) ||
	    CRYPTO_memcmp(r->pw_hash, checked, strlen(checked)) != 0)) {
		rc = USERDB_BADPASSWORD;
		goto out_rollback;
	}
	if (r->e.disabled) {
		rc = USERDB_DISABLED;
		goto out_rollback;
	}
	if (r->e.locked_until_s > now_s) {
		rc = USERDB_LOCKED;
		goto out_rollback;
	}

	step = r->last_step;
	if (!pw_ok)
		verdict = USERDB_BADPASSWORD;
	else if (!check_totp)
		verdict = USERDB_OK;
	/* The code is looked at only after the right password, so a wrong
	 * password never uses up a step. */
	else if (!r->e.has_totp || totp == NULL)
		verdict = USERDB_BADCODE;
	else if ((verdict = code_check(u, r, totp, now_s, &step)) == USERDB_ERROR) {
		/* Answered as a wrong code, so the answer tells nobody that the
		 * password was right; not counted, as it is not the user's. */
		rc = USERDB_BADCODE;
		goto out_rollback;
	}

	if (verdict == USERDB_OK) {
		failures = 0;
		locked_until = 0;
	} else {
		/* A wrong code counts like a wrong password: otherwise the
		 * six digits could be guessed without limit by whoever has the
		 * password. */
		failures = r->e.failures < UINT32_MAX ? r->e.failures + 1 : UINT32_MAX;
		locked_until = failures >= USERDB_LOCK_AFTER ?
		    to_db_time(now_s) + (int64_t)lock_s(failures) : 0;
	}
	if ((rc = prepare(u, "UPDATE users SET failures = ?2, locked_until = ?3, "
	    "totp_last_step = ?4 WHERE name = ?1", &st)) != USERDB_OK)
		goto out_rollback;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, failures);
	sqlite3_bind_int64(st, 3, locked_until);
	sqlite3_bind_int64(st, 4, to_db_time(step));
	if ((rc = write_one(u, st)) != USERDB_OK || (rc = exec(u, "COMMIT")) != USERDB_OK)
		goto out_rollback;
	r->e.failures = failures;
	r->e.locked_until_s = (uint64_t)locked_until;
	return verdict;

out_rollback:
	rollback(u);
	return rc;
}

static int settle(struct userdb *u, const char *name, const char *checked, bool pw_ok,
    const char *totp, bool check_totp, uint64_t now_s, struct row *r)
{
	unsigned held = write_start(u);
	int rc = settle_tx(u, name, checked, pw_ok, totp, check_totp, now_s, r);

	write_done(u, held);
	return rc;
}

int userdb_verify(struct userdb *u, const char *name, const char *password,
    const char *totp, bool check_totp, uint64_t now_s, struct userdb_entry *out)
{
	char checked[sizeof(((struct row *)0)->pw_hash)];
	struct row r;
	int rc, pw;

	memset(&r, 0, sizeof(r));
	if (out != NULL)
		memset(out, 0, sizeof(*out));
	if (password == NULL)
		password = "";
	/* Every refusal that does not get as far as a real hash still spends
	 * the time of one (password_dummy_verify), so that an unknown, a
	 * disabled and a locked account all answer as slowly as a wrong
	 * password. */
	if (!name_ok(name)) {
		password_dummy_verify(password);
		return USERDB_NOTFOUND;
	}
	rc = row_load(u, name, &r);
	if (rc != USERDB_OK) {
		password_dummy_verify(password);
		goto out;
	}
	if (r.e.disabled) {
		password_dummy_verify(password);
		rc = USERDB_DISABLED;
		goto out;
	}
	/* While locked, the password is not even looked at: guesses made
	 * during a lock learn nothing and do not extend it. */
	if (r.e.locked_until_s > now_s) {
		password_dummy_verify(password);
		rc = USERDB_LOCKED;
		goto out;
	}
	if (strnlen(password, PASSWORD_MAX_LEN + 1) > PASSWORD_MAX_LEN) {
		password_dummy_verify("");
		pw = PASSWORD_MISMATCH;
	} else {
		pw = password_verify(r.pw_hash, password);
	}
	if (pw == PASSWORD_ERROR) {
		log_err("%s: password check failed (corrupt hash or out of memory)", u->path);
		rc = USERDB_ERROR;
		goto out;
	}
	memcpy(checked, r.pw_hash, sizeof(checked));
	rc = settle(u, name, checked, pw == PASSWORD_OK, totp, check_totp, now_s, &r);
	if (rc == USERDB_OK && out != NULL)
		*out = r.e;
out:
	OPENSSL_cleanse(&r, sizeof(r));
	OPENSSL_cleanse(checked, sizeof(checked));
	return rc;
}

int userdb_check_code(struct userdb *u, const char *name, const char *totp,
    uint64_t now_s)
{
	struct row r;
	int rc;

	memset(&r, 0, sizeof(r));
	if (!name_ok(name))
		return USERDB_NOTFOUND;
	/* As after a right password: the code alone is checked, a wrong one
	 * counts as a failure, a right one is used up. */
	rc = settle(u, name, NULL, true, totp, true, now_s, &r);
	OPENSSL_cleanse(&r, sizeof(r));
	return rc;
}
