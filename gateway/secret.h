/* Files under state_dir: created with safe modes and written atomically
 * (temporary file, fsync, rename), so a crash never leaves half a file. */
#ifndef GH_GATEWAY_SECRET_H
#define GH_GATEWAY_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gateway/config.h"

/* Creates dir (mode 0700) if missing. 0, or -1 with err. */
int state_dir_ensure(const char *dir, char *err, size_t errlen);

/* Writes data to path atomically with the given mode. 0 or -1 (errno). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Like file_write_atomic, but never replaces a file: -1 with errno
 * EEXIST when path exists. */
int file_create_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Loads a key file: 2*len hex digits and a newline, a regular file (not
 * a symbolic link) that group and others cannot access. With create, a
 * missing one is made from RAND_bytes (mode 0600), and one that another
 * process makes meanwhile is read, not replaced. 0 or -1 with err, which
 * names the file. */
int secret_file_load(const char *path, bool create, uint8_t *out, size_t len,
    char *err, size_t errlen);

/* Writes key (len bytes) as a key file that secret_file_load() reads:
 * atomically, mode 0600, replacing one there. 0 or -1 (errno). */
int secret_file_write(const char *path, const uint8_t *key, size_t len);

/* rename(from, to), and the folder synced so that it lasts a crash. 0;
 * 1 when renamed but the folder could not be synced; -1 when not renamed
 * (errno, either way). */
int file_rename_durable(const char *from, const char *to);

#define SECRETS_KEY_FILE "secrets.key"
/* Where `gatehouse user rekey` writes the new key before users.db is
 * sealed under it (gateway/cli_rekey.c). */
#define SECRETS_KEY_STAGED ".new"

/* When users.db refused the key: appends to err that a rekey was cut
 * short, if its staged key is there (the default key only). */
void secrets_key_hint(const struct config *cfg, char *err, size_t errlen);

/* The secrets key, which seals what is kept at rest (the local users'
 * TOTP secrets, signaling/userdb.h): from identity.secrets_key_file,
 * which must exist, else from state_dir/secrets.key, made at the first
 * start. 0 or -1 with err, which names the file (and the setting). */
int secrets_key_load(const struct config *cfg, uint8_t *out, size_t len,
    char *err, size_t errlen);

/* Loads the shared TURN secret from dir/turn_secret (64 hex digits),
 * creating it from RAND_bytes with mode 0600 if absent. Refuses a file
 * that group or others may read, naming it in err. 0 or -1 with err. */
int secret_load_or_create(const char *dir, uint8_t *out, size_t len,
    char *err, size_t errlen);

#endif
