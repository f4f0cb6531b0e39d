/* `gatehouse policy ...` (DESIGN.md, "Command line"): check a policy file
 * and explain a decision. */
#ifndef GH_GATEWAY_CLI_POLICY_H
#define GH_GATEWAY_CLI_POLICY_H

/* argv[0] is the first word after "policy" ("check", "explain", "help");
 * argv is borrowed. Prints to stdout/stderr and returns the exit code:
 * 0 success, 1 runtime failure, 2 bad usage or invalid input. */
int cli_policy(int argc, char **argv);

#endif
