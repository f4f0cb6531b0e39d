/* "gatehouse ctl ...": the admin API (gateway/admin.h, docs/admin-api.md)
 * driven from a shell. */
#ifndef GH_GATEWAY_CLI_CTL_H
#define GH_GATEWAY_CLI_CTL_H

/* argv[0] is the word after "ctl" (login, logout, status, health,
 * sessions, calls, users, policy, audit, help), or an option; options may
 * come anywhere. argv is borrowed. Results go to stdout, errors to stderr
 * ("gatehouse: <message> (<HTTP status>)" for refusals of the API).
 * Returns the process exit code: 0 success, 1 runtime failure (the API
 * refused, the server cannot be reached, not logged in), 2 bad usage or
 * invalid input. */
int cli_ctl(int argc, char **argv);

#endif
