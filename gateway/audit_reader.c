/* The audit reader (see audit_reader.h): a ring of job slots under one
 * mutex, a condition variable to wake the thread and an eventfd to wake
 * the loop. A slot goes from queued to running to done, in order. */
#include "gateway/audit_reader.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#define AUDIT_READER_NICE 10

struct job {
	uint64_t request;
	struct audit_filter filter;
	char *body;                     /* the answer, once done; NULL: no memory */
	bool done;
};

struct audit_reader {
	struct audit *audit;            /* borrowed */
	pthread_t thread;
	bool started, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* jobs[head], ... in submission order; the first not done is the one
	 * running or next to run. */
	struct job jobs[AUDIT_READER_QUEUE];
	size_t head, count, next_run;   /* next_run: jobs run so far, from head */
	int efd;
};

static struct job *slot(struct audit_reader *r, size_t i)
{
	return &r->jobs[(r->head + i) % AUDIT_READER_QUEUE];
}

static char *run_query(struct audit *audit, const struct audit_filter *f)
{
	json_t *events = audit_query(audit, f->since_ms, f->until_ms,
	    f->has_user ? f->user : NULL, f->has_event ? f->event : NULL, f->limit);
	json_t *answer = events != NULL ? json_pack("{s:o}", "events", events) : NULL;
	char *body = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;

	json_decref(answer);
	return body;
}

static void *reader_main(void *arg)
{
	struct audit_reader *r = arg;
	struct audit_filter f;
	uint64_t one = 1;
	char *body;

	/* A query computes for up to a second: at a lower priority it gives
	 * way to the main and relay threads at once (login_worker.c). */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), AUDIT_READER_NICE);
	pthread_mutex_lock(&r->mu);
	for (;;) {
		while (!r->stop && r->next_run == r->count)
			pthread_cond_wait(&r->cv, &r->mu);
		if (r->stop)
			break;
		f = slot(r, r->next_run)->filter;
		pthread_mutex_unlock(&r->mu);
		body = run_query(r->audit, &f);
		pthread_mutex_lock(&r->mu);
		/* The slot stays put: only drain() moves head, and only past
		 * slots that are done. */
		slot(r, r->next_run)->body = body;
		slot(r, r->next_run)->done = true;
		r->next_run++;
		if (write(r->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			break;
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

struct audit_reader *audit_reader_new(struct audit *audit, char *err, size_t errlen)
{
	struct audit_reader *r = calloc(1, sizeof(*r));

	if (r == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->audit = audit;
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (pthread_create(&r->thread, NULL, reader_main, r) != 0) {
		snprintf(err, errlen, "cannot start the audit reader");
		goto fail;
	}
	r->started = true;
	(void)pthread_setname_np(r->thread, "gh-audit-query");
	return r;
fail:
	audit_reader_free(r);
	return NULL;
}

void audit_reader_free(struct audit_reader *r)
{
	size_t i;

	if (r == NULL)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->mu);
		r->stop = true;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->thread, NULL);
	}
	for (i = 0; i < r->count; i++)
		free(slot(r, i)->body);
	if (r->efd >= 0)
		close(r->efd);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

int audit_reader_submit(struct audit_reader *r, uint64_t request, const struct audit_filter *f)
{
	struct job *j;
	int rc = -1;

	pthread_mutex_lock(&r->mu);
	if (r->count < AUDIT_READER_QUEUE) {
		j = slot(r, r->count);
		memset(j, 0, sizeof(*j));
		j->request = request;
		j->filter = *f;
		r->count++;
		pthread_cond_signal(&r->cv);
		rc = 0;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

int audit_reader_fd(const struct audit_reader *r)
{
	return r->efd;
}

void audit_reader_drain(struct audit_reader *r,
    void (*done)(void *ctx, uint64_t request, const char *body), void *ctx)
{
	struct job finished[AUDIT_READER_QUEUE];
	size_t n = 0, i;
	uint64_t count;

	(void)!read(r->efd, &count, sizeof(count));
	pthread_mutex_lock(&r->mu);
	while (r->count > 0 && slot(r, 0)->done) {
		finished[n++] = *slot(r, 0);
		r->head = (r->head + 1) % AUDIT_READER_QUEUE;
		r->count--;
		r->next_run--;
	}
	pthread_mutex_unlock(&r->mu);
	/* Outside the lock: answering may take a while, and the thread can
	 * go on with the next query meanwhile. */
	for (i = 0; i < n; i++) {
		done(ctx, finished[i].request, finished[i].body);
		free(finished[i].body);
	}
}
