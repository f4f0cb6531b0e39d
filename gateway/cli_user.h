/* "gatehouse user ...": local user administration (DESIGN.md, "Command
 * line"). */
#ifndef GH_GATEWAY_CLI_USER_H
#define GH_GATEWAY_CLI_USER_H

/* argv[0] is the word after "user" (add, del, list, passwd, unlock,
 * disable, enable, totp-reset, rekey, help); argv is borrowed. Prints results on
 * stdout and errors on stderr. Returns the process exit code: 0 success,
 * 1 runtime failure, 2 bad usage or invalid input. */
int cli_user(int argc, char **argv);

#endif
