/* "gatehouse user rekey": the secrets key replaced, and every TOTP
 * secret in users.db sealed again under the new one.
 *
 * With the default key the order makes a crash at any point
 * recoverable: the new key is written to secrets.key.new first, then
 * users.db is sealed again in one transaction, then secrets.key.new
 * replaces secrets.key, all while the exclusive lock keeps the daemon
 * out. A crash before the commit leaves the database under the old key
 * (a stale secrets.key.new is overwritten by the next rekey); a crash
 * after it leaves the database under secrets.key.new, which the next
 * rekey finds and moves into place. */
#include "gateway/cli_rekey.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "common/errmsg.h"
#include "gateway/privdrop.h"
#include "gateway/secret.h"
#include "signaling/userdb.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

struct rekey {
	const struct config *cfg;
	uint8_t old[USERDB_KEY_LEN];   /* the key in use */
	uint8_t fresh[USERDB_KEY_LEN]; /* the one that replaces it */
	char err[PATH_MAX + 512];
	char id[USERDB_KEY_ID_HEX];
};

static int fail(struct rekey *r, int code)
{
	fprintf(stderr, "gatehouse: user rekey: %s\n", r->err);
	return code;
}

static void report(const struct rekey *r, int n, const char *where)
{
	printf("users.db: %d TOTP secret%s sealed again under the key in %s (key id %s)\n",
	    n, n == 1 ? "" : "s", where, r->id);
}

/* Moves the staged key into place: 0, or -1 with r->err. A folder that
 * could not be synced is only warned about: the move is done. */
static int move_key(struct rekey *r, const char *staged, const char *key_path)
{
	int rc = file_rename_durable(staged, key_path);

	if (rc == 1)
		fprintf(stderr, "gatehouse: user rekey: warning: %s: cannot sync its folder (%s): "
		    "the move is done, but may not survive a crash yet\n", key_path,
		    strerror(errno));
	if (rc >= 0)
		return 0;
	return errmsg_fail(r->err, sizeof(r->err), "users.db is sealed under the key in %s, "
	    "which could not replace %s (%s): run gatehouse user rekey again to finish",
	    staged, key_path, strerror(errno));
}

/* The database is under the staged key already: an earlier rekey
 * stopped after its commit. Moves the key into place. 0 when that was
 * the case and is mended, 1 when it was not, -1 on failure. */
static int finish_interrupted(struct rekey *r, const char *key_path, const char *staged)
{
	char msg[PATH_MAX + 256];
	struct userdb *db;

	if (secret_file_load(staged, false, r->fresh, sizeof(r->fresh), msg, sizeof(msg)) < 0 ||
	    (db = userdb_open_exclusive(r->cfg->state_dir, r->fresh, msg, sizeof(msg))) == NULL)
		return 1;
	userdb_key_id(db, r->id);
	/* Moved while the lock still keeps the daemon out. */
	if (move_key(r, staged, key_path) < 0) {
		userdb_close(db);
		return -1;
	}
	userdb_close(db);
	printf("users.db: finished an interrupted rekey: %s holds its key now (key id %s)\n",
	    key_path, r->id);
	return 0;
}

/* The default key: a new random one replaces state_dir/secrets.key. */
static int rekey_default(struct rekey *r)
{
	char key_path[PATH_MAX], staged[PATH_MAX + sizeof(SECRETS_KEY_STAGED)];
	struct userdb *db;
	int n;

	n = snprintf(key_path, sizeof(key_path), "%s/" SECRETS_KEY_FILE, r->cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(key_path)) {
		errmsg_fail(r->err, sizeof(r->err), "%s: path too long", r->cfg->state_dir);
		return fail(r, EXIT_USAGE);
	}
	snprintf(staged, sizeof(staged), "%s" SECRETS_KEY_STAGED, key_path);
	db = userdb_open_exclusive(r->cfg->state_dir, r->old, r->err, sizeof(r->err));
	if (db == NULL) {
		n = finish_interrupted(r, key_path, staged);
		return n == 0 ? 0 : fail(r, EXIT_RUNTIME);
	}
	/* On disk before the database depends on it. */
	if (RAND_bytes(r->fresh, sizeof(r->fresh)) != 1) {
		errmsg_fail(r->err, sizeof(r->err), "the random generator failed");
		goto fail;
	}
	if (secret_file_write(staged, r->fresh, sizeof(r->fresh)) < 0) {
		errmsg_fail(r->err, sizeof(r->err), "%s: cannot write: %s", staged, strerror(errno));
		goto fail;
	}
	n = userdb_rekey(db, r->fresh, r->err, sizeof(r->err));
	if (n == USERDB_REKEY_UNKNOWN) {
		/* The commit may have reached the log: the staged key stays. */
		fprintf(stderr, "gatehouse: user rekey: users.db may be sealed under the key in "
		    "%s already; it is kept: run gatehouse user rekey again, which finishes the "
		    "move or starts over\n", staged);
		goto fail;
	}
	if (n < 0) {
		unlink(staged);
		goto fail;
	}
	userdb_key_id(db, r->id);
	if (move_key(r, staged, key_path) < 0)
		goto fail;
	userdb_close(db);
	report(r, n, key_path);
	printf("The old key opens nothing in this users.db now; copies of users.db made "
	    "before need the copy of the old key made with them.\n");
	return 0;

fail:
	userdb_close(db);
	return fail(r, EXIT_RUNTIME);
}

/* A key the operator made: the database is sealed under it, and the
 * configuration must name it from now on. */
static int rekey_to_file(struct rekey *r, const char *new_key_path)
{
	char shown[PATH_MAX];
	struct userdb *db;
	int n;

	/* The path as the configuration must name it: a relative one there
	 * is taken from the configuration's folder, not from here. */
	if (realpath(new_key_path, shown) == NULL)
		snprintf(shown, sizeof(shown), "%s", new_key_path);
	db = userdb_open_exclusive(r->cfg->state_dir, r->old, r->err, sizeof(r->err));
	if (db == NULL) {
		secrets_key_hint(r->cfg, r->err, sizeof(r->err));
		return fail(r, EXIT_RUNTIME);
	}
	if (CRYPTO_memcmp(r->old, r->fresh, sizeof(r->old)) == 0) {
		userdb_close(db);
		printf("users.db: sealed with the key in %s already: nothing to do\n", shown);
		return 0;
	}
	n = userdb_rekey(db, r->fresh, r->err, sizeof(r->err));
	if (n >= 0)
		userdb_key_id(db, r->id);
	userdb_close(db);
	if (n == USERDB_REKEY_UNKNOWN)
		fprintf(stderr, "gatehouse: user rekey: users.db may be sealed under the key in %s "
		    "already: if the daemon then refuses the old key, set "
		    "identity.secrets_key_file to %s\n", shown, shown);
	if (n < 0)
		return fail(r, EXIT_RUNTIME);
	report(r, n, shown);
	printf("Set identity.secrets_key_file to %s before the daemon starts again: the old "
	    "key opens nothing in this users.db now%s.\n", shown,
	    r->cfg->identity.secrets_key_file[0] == '\0' ? ", and state_dir/" SECRETS_KEY_FILE
	    " is no longer used" : "");
	return 0;
}

int cli_rekey(const struct config *cfg, const char *new_key_path)
{
	static struct rekey r; /* large (messages); one per process */
	bool named = cfg->identity.secrets_key_file[0] != '\0';
	char msg[PATH_MAX + 256];
	int rc = EXIT_USAGE;

	memset(&r, 0, sizeof(r));
	r.cfg = cfg;
	if (named && new_key_path == NULL) {
		errmsg_fail(r.err, sizeof(r.err), "identity.secrets_key_file names the key in use, "
		    "and this command writes no file outside state_dir: make a new key file "
		    "(umask 077; openssl rand -hex 32 > FILE) and give it with --new-key FILE");
		return fail(&r, EXIT_USAGE);
	}
	/* Files the operator names may be root's alone: read them before
	 * becoming the daemon's user, as the daemon does. */
	if (named && secrets_key_load(cfg, r.old, sizeof(r.old), r.err, sizeof(r.err)) < 0)
		goto out_fail;
	if (new_key_path != NULL && secret_file_load(new_key_path, false, r.fresh,
	    sizeof(r.fresh), msg, sizeof(msg)) < 0) {
		errmsg_fail(r.err, sizeof(r.err), "--new-key: %s", msg);
		goto out_fail;
	}
	rc = EXIT_RUNTIME;
	if (privdrop_become_owner(cfg->state_dir, r.err, sizeof(r.err)) < 0 ||
	    state_dir_ensure(cfg->state_dir, r.err, sizeof(r.err)) < 0)
		goto out_fail;
	if (!named && secrets_key_load(cfg, r.old, sizeof(r.old), r.err, sizeof(r.err)) < 0)
		goto out_fail;
	rc = new_key_path != NULL ? rekey_to_file(&r, new_key_path) : rekey_default(&r);
	goto out;

out_fail:
	rc = fail(&r, rc);
out:
	OPENSSL_cleanse(&r, sizeof(r));
	return rc;
}
