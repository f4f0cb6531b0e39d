/* `gatehouse run`: wires configuration, secrets, TLS, the TURN server and
 * its sockets together, and runs until SIGINT or SIGTERM. */
#ifndef GH_GATEWAY_DAEMON_H
#define GH_GATEWAY_DAEMON_H

#include "gateway/config.h"

/* Returns the process exit code: 0 after a clean stop, 1 on a runtime
 * failure (logged). */
int daemon_run(const struct config *cfg);

#endif
