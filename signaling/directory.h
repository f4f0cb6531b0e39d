/* The users a contacts list can name, without their sessions: every
 * enabled local user (users.db) with its groups, and every user the policy
 * file names. Reading users.db for each contacts list cost three queries
 * per user, for every session at each push: with 2,000 users, 0.1 s of the
 * signaling thread per list. The directory reads it once, and again only
 * when told that users or the policy changed, or after
 * DIRECTORY_MAX_AGE_MS in case a change went unreported. The hub adds the
 * users signed in at the time. */
#ifndef GH_SIGNALING_DIRECTORY_H
#define GH_SIGNALING_DIRECTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"
#include "signaling/identity.h"
#include "signaling/userdb.h"

#define DIRECTORY_MAX_AGE_MS 60000

struct directory;

/* Returns owned: free with directory_free(). NULL on ENOMEM. yield, if
 * not NULL, is called with ctx every few dozen users read, so that the
 * daemon can let its relay thread run during a long read. */
struct directory *directory_new(void (*yield)(void *ctx), void *ctx);
void directory_free(struct directory *d);

/* Users or the policy changed: the next directory_refresh() reads again. */
void directory_invalidate(struct directory *d);

/* Reads users (may be NULL) and the names p gives (may be NULL) when the
 * directory is invalid or too old. On a database error it is left empty
 * (nothing half read) and read again at the next refresh. */
void directory_refresh(struct directory *d, struct userdb *users, const struct policy *p,
    uint64_t now_ms);

/* The users, sorted by name, each once. */
size_t directory_count(const struct directory *d);
const char *directory_name(const struct directory *d, size_t i);
/* Fills groups (IDENTITY_MAX_GROUPS entries, borrowed from d until the
 * next refresh) with user i's users.db groups; returns how many. */
size_t directory_groups(const struct directory *d, size_t i, const char **groups);
/* Whether name is in the directory. */
bool directory_has(const struct directory *d, const char *name);

#endif
