/* Audit trail queries off the event loop. A query reads the whole audit
 * file: about three quarters of a second at 300,000 records. Done on the
 * loop, it held up every signaling message and admin request for that
 * long. A thread of its own runs the queries, one at a time, and hands
 * the answers back through an eventfd that the loop watches. */
#ifndef GH_GATEWAY_AUDIT_READER_H
#define GH_GATEWAY_AUDIT_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/audit.h"
#include "signaling/identity.h"

/* Queries queued or running before new ones are refused: each reads the
 * whole file, so a client that asks faster than they finish is told to
 * wait rather than piling up work. */
#define AUDIT_READER_QUEUE 4

struct audit_filter {
	uint64_t since_ms, until_ms;    /* 0: unbounded */
	bool has_user, has_event;
	char user[IDENTITY_NAME_MAX];
	char event[64];
	size_t limit;                   /* the newest this many matches */
};

struct audit_reader;

/* Starts the thread over audit (borrowed; it must outlive the reader).
 * Returns owned: free with audit_reader_free(). NULL with err. */
struct audit_reader *audit_reader_new(struct audit *audit, char *err, size_t errlen);
/* Waits for the query in progress, then drops what is queued or done. */
void audit_reader_free(struct audit_reader *r);

/* Queues a query for request. 0, or -1 when AUDIT_READER_QUEUE are in
 * progress (or memory ran out). */
int audit_reader_submit(struct audit_reader *r, uint64_t request, const struct audit_filter *f);

/* Readable when answers are waiting. */
int audit_reader_fd(const struct audit_reader *r);

/* Hands every finished query to done, on the caller's thread: the answer
 * body ({"events": [...]}), or NULL when memory ran out. */
void audit_reader_drain(struct audit_reader *r,
    void (*done)(void *ctx, uint64_t request, const char *body), void *ctx);

#endif
