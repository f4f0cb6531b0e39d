/* `gatehouse run`: wires configuration, secrets, TLS, the TURN server and
 * its sockets together, and runs until SIGINT or SIGTERM. */
#ifndef GH_GATEWAY_DAEMON_H
#define GH_GATEWAY_DAEMON_H

#include "gateway/config.h"

/* Loads every file the configuration names, with the loaders the start
 * uses, and throws the result away: the TLS pairs (tls, signaling.tls,
 * turn.tls: read, key mode, key matches certificate), each JWT backend's
 * jwks_file, policy.file, and log.syslog.ca_file. Creates nothing (no
 * state_dir, no self-signed pair, no secret, no users.db), binds nothing,
 * and leaves alone what the start may make (state files, the audit
 * file). Returns 0, or -1 with err naming the key first:
 * "policy.file: /x/policy.json: cannot open: No such file or directory".
 *
 * This is where "invalid input" ends: what it refuses, check-config and
 * run both refuse with exit 2; what fails later in daemon_run() is a
 * runtime failure (exit 1). */
int daemon_check_files(const struct config *cfg, char *err, size_t errlen);

/* Returns the process exit code: 0 after a clean stop, 1 on a runtime
 * failure (logged). Call daemon_check_files() first. */
int daemon_run(const struct config *cfg);

#endif
