/* Files under state_dir: created with safe modes and written atomically
 * (temporary file, fsync, rename), so a crash never leaves half a file. */
#ifndef GH_GATEWAY_SECRET_H
#define GH_GATEWAY_SECRET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Creates dir (mode 0700) if missing. 0, or -1 with err. */
int state_dir_ensure(const char *dir, char *err, size_t errlen);

/* Writes data to path atomically with the given mode. 0 or -1 (errno). */
int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);

/* Loads the shared TURN secret from dir/turn_secret (64 hex digits),
 * creating it from RAND_bytes with mode 0600 if absent. Refuses a file
 * that group or others may read, naming it in err. 0 or -1 with err. */
int secret_load_or_create(const char *dir, uint8_t *out, size_t len,
    char *err, size_t errlen);

#endif
