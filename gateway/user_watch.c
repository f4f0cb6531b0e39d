/* Applies users.db's change log to the live sessions (see user_watch.h). */
#include "gateway/user_watch.h"

#include <stdlib.h>
#include <string.h>

#include "common/errmsg.h"
#include "gateway/log.h"

/* Changes read per transaction. They are applied only after it ends:
 * closing a session must not run inside a read of the database. */
#define WATCH_BATCH 64
/* At most this many batches a poll, so a burst of changes cannot hold the
 * event loop; the rest wait for the next poll. */
#define WATCH_BATCHES 40

struct change {
	char name[IDENTITY_NAME_MAX];
	enum userdb_change kind;
};

struct user_watch {
	struct userdb *users;
	struct hub *hub;
	struct audit *audit;
	uint64_t seq;               /* the last change applied */
	struct change batch[WATCH_BATCH];
	size_t n;
};

static const char *const change_names[] = {
	[USERDB_CHANGE_ADDED] = "added",
	[USERDB_CHANGE_DELETED] = "deleted",
	[USERDB_CHANGE_DISABLED] = "disabled",
	[USERDB_CHANGE_ENABLED] = "enabled",
};

struct user_watch *user_watch_new(struct userdb *users, struct hub *hub, struct audit *audit,
    char *err, size_t errlen)
{
	struct user_watch *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		errmsg_fail(err, errlen, "out of memory");
		return NULL;
	}
	w->users = users;
	w->hub = hub;
	w->audit = audit;
	if (userdb_change_last(users, &w->seq) != USERDB_OK) {
		errmsg_fail(err, errlen, "users.db: cannot read its change log");
		free(w);
		return NULL;
	}
	return w;
}

void user_watch_free(struct user_watch *w)
{
	free(w);
}

static void note(void *ctx, const char *name, enum userdb_change kind)
{
	struct user_watch *w = ctx;
	struct change *c = &w->batch[w->n];
	size_t len = strlen(name);

	/* The database checks names on the way in; one that does not fit
	 * cannot be a signed-in user's. */
	if (w->n == WATCH_BATCH || len >= sizeof(c->name))
		return;
	memcpy(c->name, name, len + 1);
	c->kind = kind;
	w->n++;
}

static void apply(struct user_watch *w, const struct change *c, uint64_t now_ms)
{
	char shown[4 * IDENTITY_NAME_MAX];
	size_t closed = 0;

	if (c->kind == USERDB_CHANGE_DELETED)
		closed = hub_close_user(w->hub, c->name, "user deleted");
	else if (c->kind == USERDB_CHANGE_DISABLED)
		closed = hub_close_user(w->hub, c->name, "user disabled");
	/* Names are checked on the way into users.db, but the file is not
	 * ours alone: escaped all the same. */
	if (closed > 0)
		log_info("users.db: user %s %s: %zu signaling session%s closed",
		    log_escape(shown, sizeof(shown), (const uint8_t *)c->name, strlen(c->name)),
		    change_names[c->kind], closed, closed == 1 ? "" : "s");
	audit_log(w->audit, now_ms, "user.changed", json_pack("{s:s, s:s, s:s, s:I}",
	    "outcome", "success", "user", c->name, "reason", change_names[c->kind],
	    "sessions_closed", (json_int_t)closed));
}

void user_watch_poll(struct user_watch *w, uint64_t now_ms)
{
	bool missed = false, any = false, gap;
	size_t i, round;

	for (round = 0; round < WATCH_BATCHES; round++) {
		w->n = 0;
		if (userdb_changes(w->users, &w->seq, WATCH_BATCH, &gap, note, w) != USERDB_OK)
			break;
		missed |= gap;
		for (i = 0; i < w->n; i++)
			apply(w, &w->batch[i], now_ms);
		any |= w->n > 0;
		if (w->n < WATCH_BATCH)
			break;
	}
	if (missed)
		log_warn("users.db: changes left its log before the daemon read them; a user "
		    "deleted or disabled meanwhile may still be signed in (gatehouse ctl "
		    "sessions lists them)");
	if (any)
		hub_push_contacts(w->hub);
}
