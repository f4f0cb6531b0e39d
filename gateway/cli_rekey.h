/* "gatehouse user rekey": seals every local user's TOTP secret again
 * under a new secrets key (docs/configuration.md, "Secrets at rest"). */
#ifndef GH_GATEWAY_CLI_REKEY_H
#define GH_GATEWAY_CLI_REKEY_H

#include "gateway/config.h"

/* With the default key (state_dir/secrets.key): a new random key
 * replaces it. With new_key_path: the key in that file, which the
 * operator made, and which identity.secrets_key_file must then name;
 * the only way when identity.secrets_key_file names the key in use,
 * since this command writes no file outside state_dir. Refused while the
 * daemon runs (userdb_open_exclusive). Returns the exit code: 0, 1 on a
 * runtime failure, 2 on invalid input (a key file that cannot be read,
 * no --new-key where one is needed). */
int cli_rekey(const struct config *cfg, const char *new_key_path);

#endif
