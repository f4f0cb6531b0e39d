/* The contacts directory, read from users.db and the policy (see
 * directory.h). */
#include "signaling/directory.h"

#include <stdlib.h>
#include <string.h>

struct dir_user {
	char name[IDENTITY_NAME_MAX];
	size_t first_group, ngroups;        /* into directory.groups */
};

struct directory {
	struct dir_user *users;
	size_t n, cap;
	char (*groups)[IDENTITY_NAME_MAX];
	size_t ngroups, gcap;
	bool valid;
	uint64_t built_ms;
	void (*yield)(void *ctx);
	void *yield_ctx;
	size_t rows;                        /* read from users.db by this refresh */
};

#define YIELD_EVERY 32

struct directory *directory_new(void (*yield)(void *ctx), void *ctx)
{
	struct directory *d = calloc(1, sizeof(struct directory));

	if (d != NULL) {
		d->yield = yield;
		d->yield_ctx = ctx;
	}
	return d;
}

void directory_free(struct directory *d)
{
	if (d == NULL)
		return;
	free(d->users);
	free(d->groups);
	free(d);
}

void directory_invalidate(struct directory *d)
{
	d->valid = false;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	size_t c = *cap ? *cap : 64;
	void *q;

	while (c < need)
		c *= 2;
	if (c == *cap)
		return 0;
	if ((q = realloc(*p, c * size)) == NULL)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

/* Adds a user; groups may be NULL. Names that do not fit are left out:
 * no session can carry them. */
static int add(struct directory *d, const char *name, const char (*groups)[IDENTITY_NAME_MAX],
    size_t ngroups)
{
	struct dir_user *u;
	size_t len = strlen(name), i;

	if (len == 0 || len >= IDENTITY_NAME_MAX)
		return 0;
	if (grow((void **)&d->users, &d->cap, d->n + 1, sizeof(*d->users)) != 0 ||
	    grow((void **)&d->groups, &d->gcap, d->ngroups + ngroups, sizeof(*d->groups)) != 0)
		return -1;
	u = &d->users[d->n++];
	memcpy(u->name, name, len + 1);
	u->first_group = d->ngroups;
	u->ngroups = ngroups;
	for (i = 0; i < ngroups; i++)
		memcpy(d->groups[d->ngroups++], groups[i], IDENTITY_NAME_MAX);
	return 0;
}

static int add_local(void *ctx, const struct userdb_entry *e)
{
	struct directory *d = ctx;

	if (d->yield != NULL && ++d->rows % YIELD_EVERY == 0)
		d->yield(d->yield_ctx);
	if (e->disabled)
		return 0;
	return add(d, e->name, e->groups, e->ngroups < IDENTITY_MAX_GROUPS ? e->ngroups :
	    IDENTITY_MAX_GROUPS) != 0;
}

static void add_named(void *ctx, const char *name)
{
	(void)add(ctx, name, NULL, 0);
}

static int by_name(const void *a, const void *b)
{
	const struct dir_user *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	/* Local users (with their groups) before the policy's mention of the
	 * same name, so that dropping duplicates keeps the former. */
	if (c != 0)
		return c;
	return x->first_group < y->first_group ? -1 : x->first_group > y->first_group;
}

void directory_refresh(struct directory *d, struct userdb *users, const struct policy *p,
    uint64_t now_ms)
{
	size_t i, kept;

	if (d->valid && now_ms < d->built_ms + DIRECTORY_MAX_AGE_MS && now_ms >= d->built_ms)
		return;
	d->n = 0;
	d->ngroups = 0;
	d->rows = 0;
	if (users != NULL && userdb_list(users, add_local, d) != USERDB_OK) {
		/* Keeps nothing half read; tries again at the next list. */
		d->n = 0;
		d->ngroups = 0;
		d->valid = false;
		return;
	}
	policy_each_user(p, add_named, d);
	if (d->n > 1)
		qsort(d->users, d->n, sizeof(*d->users), by_name);
	for (i = 0, kept = 0; i < d->n; i++)
		if (kept == 0 || strcmp(d->users[kept - 1].name, d->users[i].name) != 0)
			d->users[kept++] = d->users[i];
	d->n = kept;
	d->valid = true;
	d->built_ms = now_ms;
}

size_t directory_count(const struct directory *d)
{
	return d->n;
}

const char *directory_name(const struct directory *d, size_t i)
{
	return d->users[i].name;
}

size_t directory_groups(const struct directory *d, size_t i, const char **groups)
{
	const struct dir_user *u = &d->users[i];
	size_t k;

	for (k = 0; k < u->ngroups && k < IDENTITY_MAX_GROUPS; k++)
		groups[k] = d->groups[u->first_group + k];
	return k;
}

static int cmp_key(const void *key, const void *elem)
{
	return strcmp(key, ((const struct dir_user *)elem)->name);
}

bool directory_has(const struct directory *d, const char *name)
{
	return d->n > 0 && bsearch(name, d->users, d->n, sizeof(*d->users), cmp_key) != NULL;
}
