/* Files under state_dir: safe modes, atomic replacement, and the key
 * files (the shared TURN secret, the secrets key). */
#include "gateway/secret.h"
#include "common/errmsg.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "signaling/userdb.h"

#define SECRET_FILE "turn_secret"
#define SECRET_MAX 64 /* bytes; the file holds twice as many hex digits */

static int mkdir_one(const char *dir)
{
	return mkdir(dir, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

int state_dir_ensure(const char *dir, char *err, size_t errlen)
{
	char buf[PATH_MAX];
	struct stat st;
	size_t n = strlen(dir), i;

	if (n == 0 || n >= sizeof(buf))
		return errmsg_fail(err, errlen, "state_dir: empty or too long");
	memcpy(buf, dir, n + 1);
	/* mkdir -p: parents too, all 0700, since nothing but us needs them. */
	for (i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir_one(buf) < 0)
			return errmsg_fail(err, errlen, "%s: cannot create: %s", buf, strerror(errno));
		buf[i] = '/';
	}
	if (mkdir_one(buf) < 0)
		return errmsg_fail(err, errlen, "%s: cannot create: %s", dir, strerror(errno));
	if (stat(dir, &st) < 0)
		return errmsg_fail(err, errlen, "%s: %s", dir, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return errmsg_fail(err, errlen, "%s: not a directory", dir);
	/* Whoever can write here can swap our key files for their own. */
	if (st.st_mode & (S_IWGRP | S_IWOTH))
		return errmsg_fail(err, errlen, "%s: writable by group or others (chmod 700)", dir);
	return 0;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The rename is only durable once the folder holding it is synced. */
static int fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	size_t n;
	int fd, rc, saved;

	if (slash == NULL) {
		snprintf(dir, sizeof(dir), ".");
	} else {
		n = slash == path ? 1 : (size_t)(slash - path);
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	rc = fsync(fd);
	saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* Moves tmp to path without replacing a file there (EEXIST): rename
 * with RENAME_NOREPLACE, or, where the file system cannot, link and
 * unlink (a crash between the two leaves tmp as a second name). */
static int move_noreplace(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(tmp, path) < 0)
		return -1;
	unlink(tmp);
	return 0;
}

/* Writes tmp, then moves it to path: replacing a file there, or not. */
static int write_then_move(const char *path, const void *data, size_t len, mode_t mode,
    bool replace)
{
	char tmp[PATH_MAX];
	int fd, n, saved;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	/* mkstemp creates the file 0600, so a secret is never readable by
	 * others even before the fchmod. */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 || fsync(fd) < 0)
		goto fail_open;
	if (close(fd) < 0) {
		fd = -1;
		goto fail_open;
	}
	fd = -1;
	if (replace ? rename(tmp, path) < 0 : move_noreplace(tmp, path) < 0)
		goto fail_open;
	return fsync_parent(path);

fail_open:
	saved = errno;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

int file_write_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_then_move(path, data, len, mode, true);
}

int file_create_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	return write_then_move(path, data, len, mode, false);
}

/* 2*len hex digits and an optional final newline, nothing else. */
static int hex_decode(const char *s, size_t slen, uint8_t *out, size_t len)
{
	size_t i;
	int hi, lo;

	if (slen == 2 * len + 1 && s[2 * len] == '\n')
		slen--;
	if (slen != 2 * len)
		return -1;
	for (i = 0; i < len; i++) {
		hi = OPENSSL_hexchar2int((unsigned char)s[2 * i]);
		lo = OPENSSL_hexchar2int((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

static int secret_load(const char *path, int fd, uint8_t *out, size_t len,
    char *err, size_t errlen)
{
	char buf[2 * SECRET_MAX + 2];
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int rc = -1;

	if (fstat(fd, &st) < 0) {
		errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		errmsg_fail(err, errlen, "%s: not a regular file", path);
		goto out;
	}
	if (st.st_mode & 077) {
		errmsg_fail(err, errlen, "%s: readable by group or others (chmod 600)", path);
		goto out;
	}
	/* Read one byte more than a valid file holds, to see a longer one. */
	while (got < sizeof(buf)) {
		n = read(fd, buf + got, sizeof(buf) - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (hex_decode(buf, got, out, len) < 0) {
		errmsg_fail(err, errlen, "%s: expected %zu hex digits and a newline", path, 2 * len);
		goto out;
	}
	rc = 0;
out:
	OPENSSL_cleanse(buf, sizeof(buf));
	return rc;
}

/* Writes key as a key file (hex and a newline, mode 0600), replacing
 * one there or never replacing one (errno EEXIST). 0 or -1 (errno). */
static int key_file_write(const char *path, const uint8_t *key, size_t len, bool replace)
{
	static const char hex[] = "0123456789abcdef";
	char buf[2 * SECRET_MAX + 1];
	size_t i;
	int rc, saved;

	if (len == 0 || len > SECRET_MAX) {
		errno = EINVAL;
		return -1;
	}
	for (i = 0; i < len; i++) {
		buf[2 * i] = hex[key[i] >> 4];
		buf[2 * i + 1] = hex[key[i] & 0xf];
	}
	buf[2 * len] = '\n';
	rc = write_then_move(path, buf, 2 * len + 1, 0600, replace);
	saved = errno;
	OPENSSL_cleanse(buf, sizeof(buf));
	errno = saved;
	return rc;
}

int secret_file_write(const char *path, const uint8_t *key, size_t len)
{
	return key_file_write(path, key, len, true);
}

int file_rename_durable(const char *from, const char *to)
{
	if (rename(from, to) < 0)
		return -1;
	return fsync_parent(to) < 0 ? 1 : 0;
}

/* 0 when made, 1 when a file is there already (made by another process
 * since the caller looked), -1 on failure; err says why, either way. */
static int secret_create(const char *path, uint8_t *out, size_t len,
    char *err, size_t errlen)
{
	if (RAND_bytes(out, (int)len) != 1)
		return errmsg_fail(err, errlen, "%s: the random generator failed", path);
	if (key_file_write(path, out, len, false) < 0) {
		int exists = errno == EEXIST;

		errmsg_fail(err, errlen, "%s: cannot write: %s", path, strerror(errno));
		OPENSSL_cleanse(out, len);
		return exists ? 1 : -1;
	}
	return 0;
}

/* With O_NOFOLLOW and fstat on the descriptor rather than lstat then
 * open, nothing can swap the file between the check and the read;
 * O_NONBLOCK, so that a FIFO planted here cannot hang the start. */
static int secret_open_load(const char *path, uint8_t *out, size_t len,
    bool *missing, char *err, size_t errlen)
{
	int fd, rc;

	*missing = false;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		rc = secret_load(path, fd, out, len, err, errlen);
		close(fd);
		return rc;
	}
	if (errno == ELOOP)
		return errmsg_fail(err, errlen, "%s: is a symbolic link; refusing it", path);
	*missing = errno == ENOENT;
	return errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
}

int secret_file_load(const char *path, bool create, uint8_t *out, size_t len,
    char *err, size_t errlen)
{
	bool missing;
	int rc;

	if (len == 0 || len > SECRET_MAX)
		return errmsg_fail(err, errlen, "secret length %zu not supported", len);
	if (secret_open_load(path, out, len, &missing, err, errlen) == 0)
		return 0;
	if (!create || !missing)
		return -1;
	rc = secret_create(path, out, len, err, errlen);
	if (rc <= 0)
		return rc;
	/* Another process (the daemon and `gatehouse user` at once) made it
	 * first: use theirs, never replace it. */
	return secret_open_load(path, out, len, &missing, err, errlen);
}

int secret_load_or_create(const char *dir, uint8_t *out, size_t len,
    char *err, size_t errlen)
{
	char path[PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s/" SECRET_FILE, dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return errmsg_fail(err, errlen, "%s: path too long", dir);
	return secret_file_load(path, true, out, len, err, errlen);
}

int secrets_key_load(const struct config *cfg, uint8_t *out, size_t len,
    char *err, size_t errlen)
{
	char path[PATH_MAX], msg[PATH_MAX + 256];
	int n;

	/* One the operator named is never made here: a typo would otherwise
	 * start a new key, and the database would not open with it. */
	if (cfg->identity.secrets_key_file[0] != '\0') {
		if (secret_file_load(cfg->identity.secrets_key_file, false, out, len, msg,
		    sizeof(msg)) == 0)
			return 0;
		return errmsg_fail(err, errlen, "identity.secrets_key_file: %s", msg);
	}
	n = snprintf(path, sizeof(path), "%s/" SECRETS_KEY_FILE, cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(path))
		return errmsg_fail(err, errlen, "%s: path too long", cfg->state_dir);
	return secret_file_load(path, true, out, len, err, errlen);
}

void secrets_key_hint(const struct config *cfg, char *err, size_t errlen)
{
	char staged[PATH_MAX];
	size_t used = strnlen(err, errlen);
	int n;

	/* Only when the key was refused: other failures have other causes. */
	if (cfg->identity.secrets_key_file[0] != '\0' || used + 1 >= errlen ||
	    strstr(err, USERDB_KEY_MISMATCH) == NULL)
		return;
	n = snprintf(staged, sizeof(staged), "%s/" SECRETS_KEY_FILE SECRETS_KEY_STAGED,
	    cfg->state_dir);
	if (n < 0 || (size_t)n >= sizeof(staged) || access(staged, F_OK) != 0)
		return;
	snprintf(err + used, errlen - used, " (%s exists: a gatehouse user rekey was cut "
	    "short; run it again to finish)", staged);
}
