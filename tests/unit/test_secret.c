/* secret.c: state folder modes, atomic writes, the key files (the TURN
 * secret, the secrets key). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gateway/config.h"
#include "gateway/secret.h"
#include "tests/unit/check.h"

/* Short, so that paths built from it always fit PATH_MAX. */
static char tmpdir[256];
static char err[512];

static size_t read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL)
		return 0;
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
		perror(path);
		exit(2);
	}
	fchmod(fd, mode);
	close(fd);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* Counts entries whose name contains ".tmp." (left-over temporaries). */
static int count_tmp(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp.") != NULL)
			n++;
	closedir(d);
	return n;
}

static void test_state_dir(void)
{
	char dir[PATH_MAX], file[PATH_MAX];

	/* Parents are made too, and everything is 0700 whatever the umask. */
	snprintf(dir, sizeof(dir), "%s/a/b/state", tmpdir);
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), 0);
	CHECK_EQ_INT(mode_of(dir), 0700);
	snprintf(file, sizeof(file), "%s/a", tmpdir);
	CHECK_EQ_INT(mode_of(file), 0700);
	/* Existing is fine, with or without a trailing slash. */
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), 0);
	snprintf(dir, sizeof(dir), "%s/a/b/state/", tmpdir);
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), 0);

	/* Writable by others: anyone could replace our files. */
	snprintf(dir, sizeof(dir), "%s/a/b/state", tmpdir);
	CHECK_EQ_INT(chmod(dir, 0770), 0);
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), -1);
	CHECK(strstr(err, "writable by group or others") != NULL);
	CHECK(strstr(err, dir) != NULL);
	CHECK_EQ_INT(chmod(dir, 0755), 0); /* readable is allowed */
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), 0);
	CHECK_EQ_INT(chmod(dir, 0700), 0);

	snprintf(file, sizeof(file), "%s/plain", tmpdir);
	write_file(file, "x", 0600);
	CHECK_EQ_INT(state_dir_ensure(file, err, sizeof(err)), -1);
	CHECK(strstr(err, "plain") != NULL);
	CHECK_EQ_INT(state_dir_ensure("", err, sizeof(err)), -1);
}

static void test_write_atomic(void)
{
	char path[PATH_MAX], buf[64];

	snprintf(path, sizeof(path), "%s/atomic", tmpdir);
	CHECK_EQ_INT(file_write_atomic(path, "hello\n", 6, 0644), 0);
	CHECK_EQ_INT(read_file(path, buf, sizeof(buf)), 6);
	CHECK(strcmp(buf, "hello\n") == 0);
	CHECK_EQ_INT(mode_of(path), 0644);
	/* Replacing takes the new mode and content; no temporary remains. */
	CHECK_EQ_INT(file_write_atomic(path, "bye", 3, 0600), 0);
	CHECK_EQ_INT(read_file(path, buf, sizeof(buf)), 3);
	CHECK(strcmp(buf, "bye") == 0);
	CHECK_EQ_INT(mode_of(path), 0600);
	CHECK_EQ_INT(file_write_atomic(path, "", 0, 0600), 0);
	CHECK_EQ_INT(read_file(path, buf, sizeof(buf)), 0);
	CHECK_EQ_INT(count_tmp(tmpdir), 0);

	snprintf(path, sizeof(path), "%s/no/such/dir/f", tmpdir);
	errno = 0;
	CHECK_EQ_INT(file_write_atomic(path, "x", 1, 0600), -1);
	CHECK_EQ_INT(errno, ENOENT);
	/* A rename onto a directory fails, and the temporary is removed. */
	snprintf(path, sizeof(path), "%s/a", tmpdir);
	CHECK_EQ_INT(file_write_atomic(path, "x", 1, 0600), -1);
	CHECK_EQ_INT(count_tmp(tmpdir), 0);
}

static void test_secret(void)
{
	char dir[512], path[PATH_MAX], link[PATH_MAX], buf[256], hex[65];
	uint8_t s1[32], s2[32], s3[32];
	size_t i;

	snprintf(dir, sizeof(dir), "%s/s", tmpdir);
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), 0);
	snprintf(path, sizeof(path), "%s/turn_secret", dir);

	/* Created: 0600, 64 lowercase hex digits and a newline. */
	memset(buf, 0, sizeof(buf));
	CHECK_EQ_INT(secret_load_or_create(dir, s1, sizeof(s1), err, sizeof(err)), 0);
	CHECK_EQ_INT(mode_of(path), 0600);
	CHECK_EQ_INT(read_file(path, buf, sizeof(buf)), 65);
	CHECK_EQ_INT(strspn(buf, "0123456789abcdef"), 64);
	CHECK_EQ_INT(buf[64], '\n');
	for (i = 0; i < sizeof(s1); i++)
		snprintf(hex + 2 * i, 3, "%02x", s1[i]);
	CHECK(strncmp(buf, hex, 64) == 0);
	CHECK_EQ_INT(count_tmp(dir), 0);

	/* Loaded again: the same secret. */
	memset(s2, 0, sizeof(s2));
	CHECK_EQ_INT(secret_load_or_create(dir, s2, sizeof(s2), err, sizeof(err)), 0);
	CHECK(memcmp(s1, s2, sizeof(s1)) == 0);

	/* A secret others may read is refused, naming the file. */
	CHECK_EQ_INT(chmod(path, 0644), 0);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	CHECK(strstr(err, "/turn_secret: readable by group or others (chmod 600)") != NULL);
	CHECK(strstr(err, dir) == err);
	CHECK_EQ_INT(chmod(path, 0640), 0);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	CHECK_EQ_INT(chmod(path, 0600), 0);

	/* As written by "openssl rand -hex 32 > turn_secret". */
	write_file(path, "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff\n", 0600);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), 0);
	CHECK_EQ_INT(s3[0], 0x00);
	CHECK_EQ_INT(s3[10], 0xaa);
	CHECK_EQ_INT(s3[31], 0xff);
	write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 0600);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), 0);

	/* Anything else is refused, not guessed at. */
	write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeef\n", 0600);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	CHECK(strstr(err, "expected 64 hex digits") != NULL);
	write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff0\n", 0600);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n\n", 0600);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	write_file(path, "g0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	write_file(path, "", 0600);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);

	/* A symbolic link is refused, even to a good file. */
	CHECK_EQ_INT(unlink(path), 0);
	snprintf(link, sizeof(link), "%s/real_secret", tmpdir);
	write_file(link, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	CHECK_EQ_INT(symlink(link, path), 0);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	CHECK(strstr(err, "symbolic link") != NULL);
	CHECK_EQ_INT(unlink(path), 0);

	/* A directory in its place. */
	CHECK_EQ_INT(mkdir(path, 0700), 0);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	CHECK(strstr(err, "not a regular file") != NULL);
	CHECK_EQ_INT(rmdir(path), 0);

	/* Removed: a new, different one is made. */
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), 0);
	CHECK(memcmp(s1, s3, sizeof(s1)) != 0);

	/* No folder: an error naming the file, nothing created elsewhere. */
	snprintf(dir, sizeof(dir), "%s/none", tmpdir);
	CHECK_EQ_INT(secret_load_or_create(dir, s3, sizeof(s3), err, sizeof(err)), -1);
	CHECK(strstr(err, "turn_secret") != NULL);
}

/* The secrets key: the file the configuration names must exist (it is
 * never made); the default one in state_dir is made once, and kept. */
static void test_secrets_key(void)
{
	static struct config cfg;
	char dir[512], path[PATH_MAX], named[PATH_MAX];
	uint8_t k1[32], k2[32];

	snprintf(dir, sizeof(dir), "%s/k", tmpdir);
	CHECK_EQ_INT(state_dir_ensure(dir, err, sizeof(err)), 0);
	config_defaults(&cfg);
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", dir);
	snprintf(path, sizeof(path), "%s/" SECRETS_KEY_FILE, dir);

	CHECK_EQ_INT(secrets_key_load(&cfg, k1, sizeof(k1), err, sizeof(err)), 0);
	CHECK_EQ_INT(mode_of(path), 0600);
	CHECK_EQ_INT(secrets_key_load(&cfg, k2, sizeof(k2), err, sizeof(err)), 0);
	CHECK(memcmp(k1, k2, sizeof(k1)) == 0);

	snprintf(named, sizeof(named), "%s/elsewhere.key", tmpdir);
	snprintf(cfg.identity.secrets_key_file, sizeof(cfg.identity.secrets_key_file), "%s",
	    named);
	CHECK_EQ_INT(secrets_key_load(&cfg, k2, sizeof(k2), err, sizeof(err)), -1);
	CHECK(strstr(err, "identity.secrets_key_file: ") == err);
	CHECK(strstr(err, named) != NULL);
	CHECK(strstr(err, "No such file") != NULL);
	CHECK_EQ_INT(access(named, F_OK), -1);
	write_file(named, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
	CHECK_EQ_INT(secrets_key_load(&cfg, k2, sizeof(k2), err, sizeof(err)), 0);
	CHECK_EQ_INT(k2[31], 0xff);
	CHECK_EQ_INT(chmod(named, 0640), 0);
	CHECK_EQ_INT(secrets_key_load(&cfg, k2, sizeof(k2), err, sizeof(err)), -1);
	CHECK(strstr(err, "readable by group or others") != NULL);

	/* file_create_atomic never replaces: the key another process made
	 * first is the one that stays. */
	CHECK_EQ_INT(file_create_atomic(path, "x", 1, 0600), -1);
	CHECK_EQ_INT(errno, EEXIST);
	cfg.identity.secrets_key_file[0] = '\0';
	CHECK_EQ_INT(secrets_key_load(&cfg, k2, sizeof(k2), err, sizeof(err)), 0);
	CHECK(memcmp(k1, k2, sizeof(k1)) == 0);

	/* What a rekey writes reads back as a key file, and replaces. */
	snprintf(named, sizeof(named), "%s/" SECRETS_KEY_FILE ".new", dir);
	memset(k2, 0xa5, sizeof(k2));
	CHECK_EQ_INT(secret_file_write(named, k2, sizeof(k2)), 0);
	CHECK_EQ_INT(mode_of(named), 0600);
	CHECK_EQ_INT(file_rename_durable(named, path), 0);
	CHECK_EQ_INT(access(named, F_OK), -1);
	CHECK_EQ_INT(secrets_key_load(&cfg, k1, sizeof(k1), err, sizeof(err)), 0);
	CHECK(memcmp(k1, k2, sizeof(k1)) == 0);
	CHECK_EQ_INT(count_tmp(dir), 0);
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	/* A permissive umask, to see that the modes do not depend on it. */
	umask(0);
	snprintf(tmpdir, sizeof(tmpdir), "%s/gh-test-secret-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_state_dir();
	test_write_atomic();
	test_secret();
	test_secrets_key();
	cleanup();
	return check_done("test_secret");
}
