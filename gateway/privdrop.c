/* Least privilege (see privdrop.h).
 *
 * Linux keeps capabilities and no_new_privs per thread, and capset() only
 * changes the calling thread's. The audit writer, the audit reader and
 * the login worker already run when the listeners are bound, so dropping
 * in the main thread alone would leave them privileged, and a thread's
 * privileges are the whole process's to anyone who runs code in it. glibc
 * applies setgroups/setresgid/setresuid to every thread itself; for the
 * rest, each thread is signalled and drops its own (what libcap's psx
 * does).
 * Whatever the mechanism, the result is then read back from
 * /proc/self/task/<tid>/status for every thread, and the start is refused
 * unless it is exactly what was asked for. */
#include "gateway/privdrop.h"
#include "common/errmsg.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/capability.h>

#include "gateway/log.h"
#include "gateway/secret.h"
#include "signaling/userdb.h"

/* The files the daemon keeps in state_dir (secret.c, tls.c, daemon.c and
 * userdb.h name them; only the key-holding ones are listed here). */
#define STATE_SECRET "turn_secret"
#define STATE_TLS_KEY "tls-key.pem"
#define STATE_AUDIT "audit.jsonl"

/* How long the other threads get to drop their capabilities. They wait
 * on a condition variable at worst, which a signal interrupts. */
#define DROP_WAIT_MS 2000

struct who {
	char name[64];
	uid_t uid;
	gid_t gid;
};

static bool started_as_root(void)
{
	uid_t r, e, s;

	return getresuid(&r, &e, &s) == 0 && (r == 0 || e == 0 || s == 0);
}

/* run_as, or the default: "gatehouse", else "nobody". A configured name
 * that does not exist is an error, never a fallback. */
static int who_resolve(const struct config *cfg, struct who *w, char *err, size_t errlen)
{
	const char *name = cfg->run_as[0] != '\0' ? cfg->run_as : PRIVDROP_DEFAULT_USER;
	struct passwd *pw;

	errno = 0;
	pw = getpwnam(name);
	if (pw == NULL && cfg->run_as[0] == '\0') {
		name = PRIVDROP_FALLBACK_USER;
		pw = getpwnam(name);
	}
	if (pw == NULL)
		return errmsg_fail(err, errlen, "run_as: no user named \"%s\" on this system "
		    "(create it: useradd --system --no-create-home --shell /usr/sbin/nologin %s)",
		    name, name);
	snprintf(w->name, sizeof(w->name), "%s", name);
	w->uid = pw->pw_uid;
	w->gid = pw->pw_gid;
	return 0;
}

/* ---- files: modes at start ---------------------------------------------- */

/* A file that group or others may read or write is refused, naming the
 * fix. Missing files are fine: they are created 0600. */
static int check_private(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return errno == ENOENT ? 0 : errmsg_fail(err, errlen, "%s: %s", path, strerror(errno));
	if (S_ISREG(st.st_mode) && (st.st_mode & 077) != 0)
		return errmsg_fail(err, errlen, "%s: group or others have access to it (mode %04o); "
		    "it holds keys or state for the daemon only: chmod 600 %s",
		    path, (unsigned)(st.st_mode & 07777), path);
	return 0;
}

int privdrop_check_files(const struct config *cfg, char *err, size_t errlen)
{
	static const char *const state_files[] = {
		STATE_SECRET, SECRETS_KEY_FILE, STATE_TLS_KEY, USERDB_FILE, USERDB_FILE "-wal",
		USERDB_FILE "-shm", USERDB_LOCK_FILE,
	};
	const char *keys[] = { cfg->tls.key, cfg->signaling.tls.key, cfg->turn.tls.key,
	    cfg->admin_tls.key };
	char path[PATH_MAX + 64], real[PATH_MAX];
	bool root = started_as_root();
	struct who w = { "", 0, 0 };
	struct stat st;
	size_t i;

	/* A run_as that does not exist is found before anything is made. */
	if (root && who_resolve(cfg, &w, err, errlen) != 0)
		return -1;
	if (stat(cfg->state_dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode))
			return errmsg_fail(err, errlen, "state_dir %s: not a directory", cfg->state_dir);
		/* Whoever can write there can swap the key files for their own. */
		if ((st.st_mode & 022) != 0)
			return errmsg_fail(err, errlen, "state_dir %s: group or others may write to it "
			    "(mode %04o): chmod 700 %s", cfg->state_dir,
			    (unsigned)(st.st_mode & 07777), cfg->state_dir);
		/* Root hands the folder to run_as, not to whoever owns it now,
		 * and never a folder that is not the daemon's own. */
		if (root && w.uid != 0 && st.st_uid != 0 && st.st_uid != w.uid)
			return errmsg_fail(err, errlen, "state_dir %s: owned by uid %ju, which is "
			    "neither root nor run_as (%s): chown -R %s: %s, or point "
			    "state_dir elsewhere", cfg->state_dir, (uintmax_t)st.st_uid,
			    w.name, w.name, cfg->state_dir);
		if (root && w.uid != 0 && (realpath(cfg->state_dir, real) == NULL ||
		    !privdrop_dir_is_own(real)))
			return errmsg_fail(err, errlen, "state_dir %s: a system folder, which would be "
			    "handed to %s: give gatehouse a folder of its own (e.g. "
			    "/var/lib/gatehouse)", cfg->state_dir, w.name);
	} else if (errno != ENOENT) {
		return errmsg_fail(err, errlen, "state_dir %s: %s", cfg->state_dir, strerror(errno));
	}
	for (i = 0; i < sizeof(state_files) / sizeof(state_files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", cfg->state_dir, state_files[i]);
		if (check_private(path, err, errlen) != 0)
			return -1;
	}
	if (cfg->log.audit_file[0] != '\0')
		snprintf(path, sizeof(path), "%s", cfg->log.audit_file);
	else
		snprintf(path, sizeof(path), "%s/" STATE_AUDIT, cfg->state_dir);
	if (check_private(path, err, errlen) != 0)
		return -1;
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (keys[i][0] != '\0' && check_private(keys[i], err, errlen) != 0)
			return -1;
	return 0;
}

/* ---- files: handing state_dir over --------------------------------------- */

bool privdrop_dir_is_own(const char *resolved)
{
	static const char *const shared[] = {
		"/usr/local", "/usr/lib", "/usr/share", "/usr/bin", "/usr/sbin",
		"/usr/libexec", "/usr/include", "/var/lib", "/var/log", "/var/cache",
		"/var/spool", "/var/tmp", "/var/run", "/var/backups", "/var/mail",
		"/var/opt", "/var/local", "/etc/ssl", "/etc/default", "/etc/systemd",
		"/run/user", "/dev/shm",
	};
	const char *p;
	size_t i, depth = 0;

	if (resolved[0] != '/')
		return false;
	for (p = resolved; *p != '\0'; p++)
		if (*p == '/' && p[1] != '/' && p[1] != '\0')
			depth++;
	if (depth < 2)
		return false;
	for (i = 0; i < sizeof(shared) / sizeof(shared[0]); i++)
		if (strcmp(resolved, shared[i]) == 0)
			return false;
	return true;
}

/* Hands one plain file of dirfd to w. The entry is opened without
 * following a link, and checked and changed through that one descriptor,
 * so nothing can be swapped in between. A file with other hard links is
 * refused: it may be a link to a file elsewhere, planted by whoever could
 * write here before. Folders are skipped; symbolic links and special
 * files are left alone with a warning. */
static int chown_at(int dirfd, const char *name, const char *shown, const struct who *w,
    char *err, size_t errlen)
{
	struct stat st;
	int fd, rc = 0;

	fd = openat(dirfd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : errmsg_fail(err, errlen, "%s: %s", shown, strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = errmsg_fail(err, errlen, "%s: %s", shown, strerror(errno));
	} else if (S_ISDIR(st.st_mode)) {
		/* not descended into */
	} else if (!S_ISREG(st.st_mode)) {
		log_warn("%s: not a plain file; not handing it to %s", shown, w->name);
	} else if (st.st_nlink != 1) {
		rc = errmsg_fail(err, errlen, "%s: has %ju hard links; refusing to hand it to %s "
		    "(copy it to a file of its own)", shown, (uintmax_t)st.st_nlink, w->name);
	} else if ((st.st_uid != w->uid || st.st_gid != w->gid) &&
	    fchownat(fd, "", w->uid, w->gid, AT_EMPTY_PATH) != 0) {
		rc = errmsg_fail(err, errlen, "%s: cannot hand it to %s: %s", shown, w->name,
		    strerror(errno));
	}
	close(fd);
	return rc;
}

/* state_dir itself and every plain file directly in it (subfolders are
 * not descended into). */
static int chown_state_dir(const char *real, const struct who *w, char *err, size_t errlen)
{
	char shown[PATH_MAX + NAME_MAX + 2];
	struct dirent *e;
	struct stat st;
	DIR *d;
	int fd, rc = 0;

	if (!privdrop_dir_is_own(real))
		return errmsg_fail(err, errlen, "state_dir %s: a system folder; it would be handed to "
		    "%s: give gatehouse a folder of its own (e.g. /var/lib/gatehouse)", real,
		    w->name);
	fd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errmsg_fail(err, errlen, "state_dir %s: %s", real, strerror(errno));
	if (fstat(fd, &st) != 0) {
		close(fd);
		return errmsg_fail(err, errlen, "state_dir %s: %s", real, strerror(errno));
	}
	if ((st.st_mode & S_ISVTX) != 0) {
		close(fd);
		return errmsg_fail(err, errlen, "state_dir %s: a shared (sticky) folder; give "
		    "gatehouse a folder of its own", real);
	}
	if ((d = fdopendir(dup(fd))) == NULL) {
		close(fd);
		return errmsg_fail(err, errlen, "state_dir %s: %s", real, strerror(errno));
	}
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)
			continue;
		snprintf(shown, sizeof(shown), "%s/%s", real, e->d_name);
		rc = chown_at(dirfd(d), e->d_name, shown, w, err, errlen);
	}
	closedir(d);
	if (rc == 0 && (st.st_uid != w->uid || st.st_gid != w->gid) &&
	    fchown(fd, w->uid, w->gid) != 0)
		rc = errmsg_fail(err, errlen, "state_dir %s: cannot hand it to %s: %s", real, w->name,
		    strerror(errno));
	close(fd);
	return rc;
}

/* True when folder (resolved) is state_dir or below it. */
static bool is_under(const char *folder, const char *state_real)
{
	size_t n = strlen(state_real);

	return strncmp(folder, state_real, n) == 0 && (folder[n] == '\0' || folder[n] == '/');
}

/* A file the daemon writes outside the plain files of state_dir (the
 * audit file, the policy file): handed over, with its folder, when it is
 * under state_dir; elsewhere only the file, and only when file_anywhere. */
static int chown_file(const char *path, const char *state_real, bool file_anywhere,
    const struct who *w, char *err, size_t errlen)
{
	char dir[PATH_MAX], base[PATH_MAX], real[PATH_MAX];
	bool under;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	snprintf(base, sizeof(base), "%s", path);
	if (realpath(dirname(dir), real) == NULL)
		return 0; /* the folder is gone: what needs it fails later, by name */
	under = is_under(real, state_real);
	if (!under && !file_anywhere)
		return 0;
	if ((fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return errmsg_fail(err, errlen, "%s: %s", real, strerror(errno));
	rc = chown_at(fd, basename(base), path, w, err, errlen);
	if (rc == 0 && under && strcmp(real, state_real) != 0 && fchown(fd, w->uid, w->gid) != 0)
		rc = errmsg_fail(err, errlen, "%s: cannot hand it to %s: %s", real, w->name,
		    strerror(errno));
	close(fd);
	return rc;
}

static int hand_over(const struct config *cfg, const struct who *w, char *err, size_t errlen)
{
	char real[PATH_MAX];

	if (realpath(cfg->state_dir, real) == NULL)
		return errmsg_fail(err, errlen, "state_dir %s: %s", cfg->state_dir, strerror(errno));
	if (chown_state_dir(real, w, err, errlen) != 0)
		return -1;
	if (cfg->log.audit_file[0] != '\0' &&
	    chown_file(cfg->log.audit_file, real, true, w, err, errlen) != 0)
		return -1;
	if (cfg->policy_file[0] != '\0' &&
	    chown_file(cfg->policy_file, real, false, w, err, errlen) != 0)
		return -1;
	return 0;
}

/* ---- every thread drops ---------------------------------------------------- */

/* The only state a signal handler can reach: how many threads have
 * dropped, and how many of them failed. Lock-free, so safe there. */
static atomic_int drop_done, drop_failed;

/* Async-signal-safe: system calls only. */
static int thread_drop(void)
{
	static struct __user_cap_data_struct none[_LINUX_CAPABILITY_U32S_3];
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return -1;
	/* EINVAL: a kernel before 4.3, without an ambient set. */
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
		return -1;
	return syscall(SYS_capset, &hdr, none) == 0 ? 0 : -1;
}

static void on_drop_signal(int sig)
{
	int saved = errno;

	(void)sig;
	if (thread_drop() != 0)
		atomic_fetch_add(&drop_failed, 1);
	atomic_fetch_add(&drop_done, 1);
	errno = saved;
}

static int drop_every_thread(char *err, size_t errlen)
{
	const struct timespec tick = { 0, 1000000 };
	struct sigaction sa, old;
	pid_t pid = getpid(), self = gettid();
	int sig = SIGRTMIN + 3, sent = 0, i;
	struct dirent *e;
	char *end;
	long tid;
	DIR *d;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_drop_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(sig, &sa, &old) != 0)
		return errmsg_fail(err, errlen, "cannot drop capabilities: sigaction: %s", strerror(errno));
	if ((old.sa_flags & SA_SIGINFO) != 0 ||
	    (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN)) {
		sigaction(sig, &old, NULL);
		return errmsg_fail(err, errlen, "cannot drop capabilities: signal %d is in use", sig);
	}
	atomic_store(&drop_done, 0);
	atomic_store(&drop_failed, 0);
	if ((d = opendir("/proc/self/task")) == NULL)
		return errmsg_fail(err, errlen, "cannot drop capabilities: /proc/self/task: %s",
		    strerror(errno));
	while ((e = readdir(d)) != NULL) {
		errno = 0;
		tid = strtol(e->d_name, &end, 10);
		if (errno != 0 || *end != '\0' || tid <= 0 || tid == (long)self)
			continue;
		if (syscall(SYS_tgkill, pid, (pid_t)tid, sig) == 0)
			sent++;
		else if (errno != ESRCH) /* ESRCH: the thread has just ended */
			atomic_fetch_add(&drop_failed, 1);
	}
	closedir(d);
	for (i = 0; i < DROP_WAIT_MS && atomic_load(&drop_done) < sent; i++)
		nanosleep(&tick, NULL);
	/* A signal still on its way would kill the process once the default
	 * action is back, so the handler stays unless every thread answered. */
	if (atomic_load(&drop_done) < sent)
		return errmsg_fail(err, errlen, "cannot drop capabilities: %d of %d threads did not "
		    "answer", sent - atomic_load(&drop_done), sent);
	sigaction(sig, &old, NULL);
	if (thread_drop() != 0)
		return errmsg_fail(err, errlen, "cannot drop capabilities: %s", strerror(errno));
	if (atomic_load(&drop_failed) > 0)
		return errmsg_fail(err, errlen, "cannot drop capabilities in %d threads",
		    atomic_load(&drop_failed));
	return 0;
}

/* ---- reading back what the kernel holds ------------------------------------ */

static int parse_ids(const char *s, unsigned long out[4])
{
	char *end;
	int i;

	for (i = 0; i < 4; i++) {
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		out[i] = strtoul(s, &end, 10);
		if (errno != 0)
			return -1;
		s = end;
	}
	return 0;
}

static int parse_hex(const char *s, uint64_t *out)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	errno = 0;
	*out = strtoull(s, &end, 16);
	return end == s || errno != 0 || (*end != '\n' && *end != '\0') ? -1 : 0;
}

/* The line starts with "key:" and v is just past that colon. */
static bool key_is(const char *line, const char *v, const char *key)
{
	size_t n = strlen(key);

	return (size_t)(v - line) == n + 1 && strncmp(line, key, n) == 0;
}

int privdrop_status_parse(const char *text, struct privdrop_status *st)
{
	enum { UID = 1, GID = 2, GROUPS = 4, INH = 8, PRM = 16, EFF = 32, ALL = 63 };
	unsigned long ids[4];
	const char *line, *v, *eol;
	unsigned seen = 0;
	int i;

	memset(st, 0, sizeof(*st));
	st->no_new_privs = -1;
	for (line = text; *line != '\0'; line = *eol ? eol + 1 : eol) {
		eol = strchr(line, '\n');
		if (eol == NULL)
			eol = line + strlen(line);
		if ((v = memchr(line, ':', (size_t)(eol - line))) == NULL)
			continue;
		v++;
		if (key_is(line, v, "Uid") || key_is(line, v, "Gid")) {
			if (parse_ids(v, ids) != 0)
				return -1;
			for (i = 0; i < 4; i++) {
				if (line[0] == 'U')
					st->uid[i] = (uid_t)ids[i];
				else
					st->gid[i] = (gid_t)ids[i];
			}
			seen |= line[0] == 'U' ? UID : GID;
		} else if (key_is(line, v, "Groups")) {
			/* Each number starts after the colon or a blank. */
			for (; v < eol; v++)
				if (*v >= '0' && *v <= '9' &&
				    (v[-1] == ' ' || v[-1] == '\t' || v[-1] == ':'))
					st->ngroups++;
			seen |= GROUPS;
		} else if (key_is(line, v, "CapInh") || key_is(line, v, "CapPrm") ||
		    key_is(line, v, "CapEff") || key_is(line, v, "CapAmb")) {
			uint64_t *to = line[3] == 'I' ? &st->cap_inh : line[3] == 'P' ? &st->cap_prm :
			    line[3] == 'E' ? &st->cap_eff : &st->cap_amb;
			if (parse_hex(v, to) != 0)
				return -1;
			seen |= line[3] == 'I' ? INH : line[3] == 'P' ? PRM : line[3] == 'E' ? EFF : 0;
		} else if (key_is(line, v, "NoNewPrivs")) {
			while (*v == ' ' || *v == '\t')
				v++;
			if ((*v != '0' && *v != '1') || (v[1] != '\n' && v[1] != '\0'))
				return -1;
			st->no_new_privs = *v - '0';
		}
	}
	return seen == ALL ? 0 : -1;
}

static int read_status(const char *path, struct privdrop_status *st)
{
	char buf[8192];
	size_t n;
	FILE *f = fopen(path, "re");

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if (privdrop_status_parse(buf, st) != 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

/* Every thread: no capability in any set, no_new_privs, and, when w is
 * given, w's uid and gid in all four slots and no supplementary group. */
static int verify_threads(const struct who *w, char *err, size_t errlen)
{
	char path[64 + NAME_MAX];
	struct privdrop_status st;
	struct dirent *e;
	int i, rc = 0, n = 0;
	DIR *d;

	if ((d = opendir("/proc/self/task")) == NULL)
		return errmsg_fail(err, errlen, "cannot check the threads' privileges: "
		    "/proc/self/task: %s", strerror(errno));
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		if (read_status(path, &st) != 0) {
			if (errno == ENOENT) /* the thread has just ended */
				continue;
			rc = errmsg_fail(err, errlen, "cannot check the privileges of thread %s: %s: %s",
			    e->d_name, path, strerror(errno));
			break;
		}
		n++;
		if (st.cap_inh | st.cap_prm | st.cap_eff | st.cap_amb)
			rc = errmsg_fail(err, errlen, "thread %s still holds capabilities (permitted "
			    "%016" PRIx64 ", effective %016" PRIx64 ", ambient %016" PRIx64 ")",
			    e->d_name, st.cap_prm, st.cap_eff, st.cap_amb);
		else if (st.no_new_privs == 0)
			rc = errmsg_fail(err, errlen, "thread %s: no_new_privs is not set", e->d_name);
		for (i = 0; rc == 0 && w != NULL && i < 4; i++)
			if (st.uid[i] != w->uid || st.gid[i] != w->gid)
				rc = errmsg_fail(err, errlen, "thread %s: uid %ju gid %ju remain, not %s's",
				    e->d_name, (uintmax_t)st.uid[i], (uintmax_t)st.gid[i], w->name);
		if (rc == 0 && w != NULL && st.ngroups != 0)
			rc = errmsg_fail(err, errlen, "thread %s: %zu supplementary groups remain",
			    e->d_name, st.ngroups);
	}
	closedir(d);
	if (rc == 0 && n == 0)
		rc = errmsg_fail(err, errlen, "cannot check the threads' privileges: no thread found");
	return rc;
}

static bool holds_capabilities(void)
{
	struct privdrop_status st;

	/* Unreadable: assume the worst, and let the drop find out. */
	if (read_status("/proc/self/status", &st) != 0)
		return true;
	return (st.cap_prm | st.cap_eff | st.cap_amb) != 0;
}

/* ---- after the switch: can the new user do its work? ------------------- */

/* A missing file is fine when may_be_missing (created later, or not
 * used); anything else the user cannot do is an error naming the fix. */
static int need_access(const char *what, const char *path, int mode, bool may_be_missing,
    const struct who *w, const char *fix, char *err, size_t errlen)
{
	if (access(path, mode) == 0 || (errno == ENOENT && may_be_missing))
		return 0;
	return errmsg_fail(err, errlen, "%s %s: not usable by %s (uid %ju) after dropping "
	    "privileges: %s; %s", what, path, w->name, (uintmax_t)w->uid, strerror(errno), fix);
}

static void folder_of(const char *path, char *out, size_t len)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", path);
	snprintf(out, len, "%s", dirname(buf));
}

static int check_usable(const struct config *cfg, const struct who *w, char *err,
    size_t errlen)
{
	static const char fix_parents[] = "every folder above it must be searchable "
	    "by that user (chmod o+x), or set run_as";
	char path[PATH_MAX + 64], folder[PATH_MAX];

	if (need_access("state_dir", cfg->state_dir, R_OK | W_OK | X_OK, false, w, fix_parents,
	    err, errlen) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/" USERDB_FILE, cfg->state_dir);
	if (need_access("user database", path, R_OK | W_OK, true, w, "chown it to that user",
	    err, errlen) != 0)
		return -1;
	if (cfg->log.audit_file[0] != '\0') {
		if (need_access("audit file", cfg->log.audit_file, R_OK | W_OK, false, w,
		    "its folders must be searchable by that user", err, errlen) != 0)
			return -1;
		folder_of(cfg->log.audit_file, folder, sizeof(folder));
		if (access(folder, W_OK | X_OK) != 0)
			log_warn("audit: %s is not writable by %s: after a rotation that renames "
			    "the file, SIGUSR1 cannot make a new one (rotate with copytruncate, or "
			    "keep the audit file in state_dir)", folder, w->name);
	}
	if (cfg->policy_file[0] == '\0')
		return 0;
	if (need_access("policy file", cfg->policy_file, R_OK, false, w, "make it readable by "
	    "that user (chmod o+r, its folders o+x) or keep it in state_dir", err, errlen) != 0)
		return -1;
	folder_of(cfg->policy_file, folder, sizeof(folder));
	if (access(folder, W_OK | X_OK) != 0)
		log_warn("policy: %s is not writable by %s: PUT /api/policy will be refused "
		    "(keep the policy file in state_dir to allow it)", folder, w->name);
	return 0;
}

/* ---- the switch ----------------------------------------------------------- */

static int become(const struct who *w, char *err, size_t errlen)
{
	/* Groups first: once the uid is gone, so is the right to change them. */
	if (setgroups(0, NULL) != 0)
		return errmsg_fail(err, errlen, "setgroups: %s", strerror(errno));
	if (setresgid(w->gid, w->gid, w->gid) != 0)
		return errmsg_fail(err, errlen, "setresgid(%ju): %s", (uintmax_t)w->gid, strerror(errno));
	if (setresuid(w->uid, w->uid, w->uid) != 0)
		return errmsg_fail(err, errlen, "setresuid(%ju): %s", (uintmax_t)w->uid, strerror(errno));
	/* The point of no return must be one: a way back is a failure. */
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
		return errmsg_fail(err, errlen, "could become root again after switching to %s; "
		    "refusing to run", w->name);
	return 0;
}

int privdrop_apply(const struct config *cfg, char *err, size_t errlen)
{
	struct who w;

	if (!started_as_root()) {
		if (!holds_capabilities()) {
			log_debug("running as uid %ju: no privileges to drop", (uintmax_t)getuid());
			return 0;
		}
		if (drop_every_thread(err, errlen) != 0 || verify_threads(NULL, err, errlen) != 0)
			return -1;
		log_info("running as uid %ju: capabilities dropped now that the listeners "
		    "are bound", (uintmax_t)getuid());
		return 0;
	}
	if (who_resolve(cfg, &w, err, errlen) != 0)
		return -1;
	if (w.uid == 0) {
		log_warn("run_as \"%s\" is root: keeping every privilege", w.name);
		return 0;
	}
	if (cfg->run_as[0] == '\0' && strcmp(w.name, PRIVDROP_FALLBACK_USER) == 0)
		log_warn("no user \"%s\": running as \"%s\", which other services may share; "
		    "create one (useradd --system --no-create-home --shell /usr/sbin/nologin %s)",
		    PRIVDROP_DEFAULT_USER, w.name, PRIVDROP_DEFAULT_USER);
	if (hand_over(cfg, &w, err, errlen) != 0 || become(&w, err, errlen) != 0 ||
	    drop_every_thread(err, errlen) != 0 || verify_threads(&w, err, errlen) != 0 ||
	    check_usable(cfg, &w, err, errlen) != 0)
		return -1;
	log_info("dropped privileges to %s (uid %ju, gid %ju): no capabilities, no "
	    "supplementary groups", w.name, (uintmax_t)w.uid, (uintmax_t)w.gid);
	return 0;
}

int privdrop_become_owner(const char *dir, char *err, size_t errlen)
{
	struct stat st;
	struct who w;

	if (geteuid() != 0)
		return 0;
	if (stat(dir, &st) != 0)
		return errno == ENOENT ? 0 : errmsg_fail(err, errlen, "%s: %s", dir, strerror(errno));
	if (st.st_uid == 0)
		return 0;
	snprintf(w.name, sizeof(w.name), "uid %ju", (uintmax_t)st.st_uid);
	w.uid = st.st_uid;
	w.gid = st.st_gid;
	if (become(&w, err, errlen) != 0)
		return -1;
	return 0;
}
