/* Brings changes to users.db, made by any process, to the live signaling
 * sessions. `gatehouse user disable` or `del` on the host writes only the
 * database; the daemon reads its change log (userdb_changes()) once a
 * second and right after its own changes, and then does what the admin
 * API promises: a deleted or disabled user's sessions close, and every
 * signed-in user gets their contacts again. Each change is audited as
 * "user.changed", so changes made on the host reach the SIEM too. */
#ifndef GH_GATEWAY_USER_WATCH_H
#define GH_GATEWAY_USER_WATCH_H

#include "gateway/audit.h"
#include "signaling/hub.h"
#include "signaling/userdb.h"

struct user_watch;

/* Starts after the newest change already in the log: those came before
 * any session. users, hub and audit are borrowed. Returns owned (free
 * with user_watch_free()), or NULL with err. */
struct user_watch *user_watch_new(struct userdb *users, struct hub *hub, struct audit *audit,
    char *err, size_t errlen);
void user_watch_free(struct user_watch *w);

/* Applies the changes logged since the last call. */
void user_watch_poll(struct user_watch *w, uint64_t now_ms);

#endif
