/* Local users in SQLite (state_dir/users.db, mode 0600): argon2id
 * password hashes (libargon2), TOTP secrets (RFC 6238, sealed under the
 * secrets key: secret_seal.h), groups, a disabled flag and progressive
 * lockout after failures.
 *
 * The database is the only place these live; every write is one
 * transaction, so a crash never leaves half a user. */
#ifndef GH_SIGNALING_USERDB_H
#define GH_SIGNALING_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signaling/identity.h"

#define USERDB_FILE "users.db"
#define USERDB_LOCK_FILE "users.lock"      /* in state_dir: see userdb_open_exclusive */
#define USERDB_KEY_LEN 32                  /* the secrets key */
#define USERDB_TOTP_SECRET_LEN 20          /* bytes, RFC 4226 recommends 160 bits */
#define USERDB_LOCK_AFTER 5                /* failures before the first lockout */
#define USERDB_LOCK_BASE_S 30              /* doubles with each further failure */
#define USERDB_LOCK_MAX_S 3600

enum userdb_rc {
	USERDB_OK = 0,
	USERDB_NOTFOUND = -1,
	USERDB_EXISTS = -2,
	USERDB_BADPASSWORD = -3,  /* wrong password */
	USERDB_BADCODE = -4,      /* wrong, replayed or missing TOTP code */
	USERDB_LOCKED = -5,       /* locked out (too many failures) */
	USERDB_DISABLED = -6,
	USERDB_INVALID = -7,      /* bad name, group or password shape */
	USERDB_ERROR = -8,        /* database or crypto failure */
};

struct userdb;

/* Opens (creating if missing, mode 0600, schema migrated) state_dir's
 * users.db. key (USERDB_KEY_LEN bytes, the secrets key file's) seals the
 * TOTP secrets (secret_seal.h); a database whose secrets were sealed
 * with another key is refused, naming both keys' ids. Returns owned:
 * free with userdb_close(). NULL with err. */
struct userdb *userdb_open(const char *state_dir, const uint8_t key[USERDB_KEY_LEN],
    char *err, size_t errlen);
void userdb_close(struct userdb *db);

/* Each open holds a shared flock() on state_dir/users.lock (mode 0600,
 * made when missing) while it stays open (the daemon's two, a command's
 * one); a rekey needs the database alone. This open takes an exclusive
 * lock and does not wait: it fails, saying the daemon must be stopped
 * first, while any other open holds the lock. An ordinary open waits up
 * to 2 s for a rekey to finish. */
struct userdb *userdb_open_exclusive(const char *state_dir,
    const uint8_t key[USERDB_KEY_LEN], char *err, size_t errlen);

/* Seals every TOTP secret again under new_key and records its id, in one
 * transaction (on a database from userdb_open_exclusive): from then on
 * only new_key opens the database. A secret that does not open with the
 * key in use refuses the whole rekey, naming its user, and changes
 * nothing. Returns how many secrets were sealed again; -1 with err when
 * nothing changed; USERDB_REKEY_UNKNOWN with err when the COMMIT failed,
 * which may still have reached the write-ahead log: keep new_key. */
#define USERDB_REKEY_UNKNOWN -2
int userdb_rekey(struct userdb *db, const uint8_t new_key[USERDB_KEY_LEN], char *err,
    size_t errlen);

/* How the refusal of another key begins (after the file's path). */
#define USERDB_KEY_MISMATCH "its TOTP secrets are sealed with the secrets key of id"

/* The id of the key db seals with, in hex (what the refusal of another
 * key names). */
#define USERDB_KEY_ID_HEX 17
void userdb_key_id(const struct userdb *db, char out[USERDB_KEY_ID_HEX]);

/* Optional: called around each write to the database (a statement on its
 * own, or a transaction), which ends in an fsync and may wait for another
 * process's write; what before() returns is given to after(). The daemon
 * gives its state lock up meanwhile, so that relayed media does not wait
 * for users.db (gateway/state_lock.h). */
void userdb_set_write_hooks(struct userdb *db, unsigned (*before)(void),
    void (*after)(unsigned));

/* Whether userdb_add() and userdb_passwd() would take a name (or group)
 * and a password: callers that hash elsewhere refuse a bad request
 * before they spend a quarter of a second on argon2id. */
bool userdb_name_ok(const char *name);
bool userdb_password_ok(const char *password);

/* Names: 1..63 of [A-Za-z0-9._@-], not starting with '-' or '.'.
 * Groups likewise. Passwords: 8..1024 bytes. With want_totp, a fresh
 * secret is made and its base32 form written to totp_b32 (at least 33
 * bytes). */
int userdb_add(struct userdb *db, const char *name, const char *password,
    const char *const *groups, size_t ngroups, bool want_totp,
    char *totp_b32, size_t b32cap);
int userdb_del(struct userdb *db, const char *name);
int userdb_passwd(struct userdb *db, const char *name, const char *password);
/* The same with the password already hashed by password_hash(): the
 * daemon hashes on its login worker, and only the write is done on its
 * loop. */
int userdb_add_hashed(struct userdb *db, const char *name, const char *hash,
    const char *const *groups, size_t ngroups, bool want_totp,
    char *totp_b32, size_t b32cap);
int userdb_passwd_hashed(struct userdb *db, const char *name, const char *hash);
/* Replaces the TOTP secret (re-enrolment); writes the new base32. */
int userdb_totp_reset(struct userdb *db, const char *name, char *totp_b32, size_t b32cap);
int userdb_unlock(struct userdb *db, const char *name);
/* Locks an account until until_s (an automatic response to an alert);
 * userdb_unlock() undoes it. */
int userdb_lock(struct userdb *db, const char *name, uint64_t until_s);
int userdb_set_disabled(struct userdb *db, const char *name, bool disabled);

struct userdb_entry {
	char name[IDENTITY_NAME_MAX];
	char groups[IDENTITY_MAX_GROUPS][IDENTITY_NAME_MAX];
	size_t ngroups;
	bool has_totp;
	bool disabled;
	uint32_t failures;
	uint64_t locked_until_s;
	/* Changes whenever the password or the TOTP secret is set (by any
	 * process): a digest of the stored hash and secret, so that whatever
	 * was granted against the old credentials (an admin token) can be
	 * told apart. It never leaves the process. */
	uint64_t cred_tag;
};

/* Calls fn for every user in name order; stops early when fn returns
 * non-zero. */
int userdb_list(struct userdb *db, int (*fn)(void *ctx, const struct userdb_entry *e),
    void *ctx);
int userdb_get(struct userdb *db, const char *name, struct userdb_entry *out);

/* The changes that decide whether a user may be signed in, from any
 * process, numbered in the order they were made. Password and TOTP
 * changes are not among them: they end admin tokens (cred_tag), not
 * signaling sessions. */
enum userdb_change {
	USERDB_CHANGE_ADDED,
	USERDB_CHANGE_DELETED,
	USERDB_CHANGE_DISABLED,
	USERDB_CHANGE_ENABLED,
};

/* The newest change's number, 0 when there is none. */
int userdb_change_last(struct userdb *db, uint64_t *seq);

/* Calls fn for at most max changes numbered after *seq, oldest first, and
 * moves *seq to the last one. *missed is set when changes after *seq were
 * already dropped from the log (it keeps the newest 10,000). */
int userdb_changes(struct userdb *db, uint64_t *seq, size_t max, bool *missed,
    void (*fn)(void *ctx, const char *name, enum userdb_change kind), void *ctx);

/* Checks a password (always running argon2, also for unknown users, so
 * timing does not tell who exists) and, when check_totp, a TOTP code
 * (6 digits, 30 s steps, +-1 step, each step's code accepted once).
 * Counts failures and locks progressively; success resets the count.
 * A password set anew (by any process) while argon2 ran is refused with
 * USERDB_BADPASSWORD and counts no failure: out (cred_tag included) is
 * always the entry of the credentials that were checked.
 * Returns USERDB_OK, or the specific refusal for the logs. */
int userdb_verify(struct userdb *db, const char *name, const char *password,
    const char *totp, bool check_totp, uint64_t now_s, struct userdb_entry *out);

/* A fresh TOTP code from a user already authenticated otherwise (an
 * admin confirming a sensitive action): same window, replay refusal and
 * failure counting as userdb_verify. USERDB_OK or the refusal. */
int userdb_check_code(struct userdb *db, const char *name, const char *totp,
    uint64_t now_s);

#endif
