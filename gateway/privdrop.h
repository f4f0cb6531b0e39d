/* Least privilege for `gatehouse run`, and the file checks that go with
 * it.
 *
 * A daemon started as root binds its listeners and opens its files as
 * root, then becomes the configured unprivileged user ("run_as"; default
 * "gatehouse", or "nobody" where that user does not exist) with no
 * supplementary groups and no capabilities, in every thread, and with
 * no_new_privs set. Before switching it hands state_dir and the files it
 * keeps there to that user, so users.db, the audit file and a policy file
 * kept under state_dir stay writable. A daemon started as another user
 * changes identity never; if it holds capabilities (systemd's
 * AmbientCapabilities=CAP_NET_BIND_SERVICE) it drops them all once the
 * listeners are bound.
 *
 * What stays outside state_dir is not handed over: a policy file kept
 * elsewhere must be readable by run_as (the start is refused otherwise),
 * and PUT /api/policy works only where its folder is writable by run_as
 * (a warning at start says so). docs/configuration.md ("Privileges")
 * has the details, packaging/README.md the systemd side. */
#ifndef GH_GATEWAY_PRIVDROP_H
#define GH_GATEWAY_PRIVDROP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "gateway/config.h"

#define PRIVDROP_DEFAULT_USER "gatehouse"
#define PRIVDROP_FALLBACK_USER "nobody"

/* Run at start, before any state file is opened or created: refuses a
 * state_dir that group or others may write, or that belongs to someone
 * other than root, run_as or the current user, and any existing key or
 * state file (the TLS private keys, turn_secret, secrets.key, users.db
 * and its -wal, -shm and users.lock, the audit file) that group or others may read
 * or write. The message names the file and the fix ("chmod 600 /path").
 * 0 or -1 with err. */
int privdrop_check_files(const struct config *cfg, char *err, size_t errlen);

/* Run once every listener is bound and every file is open, before the
 * event loop runs; see the top of this file. Logs what it did. Returns 0,
 * or -1 with err when the switch failed, could be undone (setuid(0)
 * succeeded), left a capability in some thread, or left state_dir, the
 * user database, the audit file or the policy file unusable by the new
 * user: the daemon must then not serve. */
int privdrop_apply(const struct config *cfg, char *err, size_t errlen);

/* For the command line run as root on a state_dir that belongs to
 * another user (the daemon's, after a start as root): becomes that user,
 * so that whatever the command creates there is the daemon's too. No
 * change when not root, or when dir is missing or root's. 0 or -1 with
 * err. */
int privdrop_become_owner(const char *dir, char *err, size_t errlen);

/* What /proc/<pid>/task/<tid>/status says about one thread's identity. */
struct privdrop_status {
	uid_t uid[4];        /* real, effective, saved, file system */
	gid_t gid[4];
	size_t ngroups;      /* supplementary groups */
	uint64_t cap_inh, cap_prm, cap_eff, cap_amb;
	int no_new_privs;    /* 0, 1, or -1 when the kernel does not say */
};

/* Parses the text of a status file (NUL-terminated). 0, or -1 when the
 * Uid, Gid, Groups, CapInh, CapPrm or CapEff line is missing or
 * malformed. CapAmb (Linux 4.3) and NoNewPrivs (4.10) may be absent:
 * then 0 and -1. */
int privdrop_status_parse(const char *text, struct privdrop_status *st);

/* Whether a resolved (absolute, no "." or "..") folder may be handed to
 * another user wholesale: not "/", not a top-level folder, not a shared
 * system folder such as /var/lib or /usr/local. A state_dir must be the
 * daemon's own. */
bool privdrop_dir_is_own(const char *resolved);

#endif
