/* The relay thread (see relay_thread.h). */
#include "gateway/relay_thread.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/state_lock.h"

struct relay_thread {
	pthread_t thread;
	struct relay_io *io;
	atomic_bool stop;
};

static void *relay_main(void *arg)
{
	struct relay_thread *t = arg;
	struct relay_io_events e;

	while (!atomic_load(&t->stop)) {
		/* No timeout: the relay's own timer ends a wait once a second,
		 * so expiry runs with no packet arriving. */
		relay_io_wait(t->io, &e, -1);
		state_lock();
		relay_io_handle(t->io, &e);
		state_unlock();
	}
	return NULL;
}

struct relay_thread *relay_thread_start(struct relay_io *io, char *err, size_t errlen)
{
	struct relay_thread *t = calloc(1, sizeof(*t));
	int rc;

	if (t == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->io = io;
	atomic_init(&t->stop, false);
	rc = pthread_create(&t->thread, NULL, relay_main, t);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the relay thread: %s", strerror(rc));
		free(t);
		return NULL;
	}
	(void)pthread_setname_np(t->thread, "gh-relay");
	return t;
}

void relay_thread_stop(struct relay_thread *t)
{
	if (t == NULL)
		return;
	atomic_store(&t->stop, true);
	relay_io_wake(t->io);
	pthread_join(t->thread, NULL);
	free(t);
}
