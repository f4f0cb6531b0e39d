/* Unit tests for gateway/state_lock.c: recursive, mutually exclusive, a
 * yield hands the lock to a thread that waits for it before the holder
 * goes on (the relay thread must not wait for a whole contacts list), and
 * a suspended holder gets it back at its depth. */
#include "gateway/state_lock.h"

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "tests/unit/check.h"

static atomic_int step;
static int shared;           /* touched only under the lock */
static int overlap;          /* a second holder seen inside the section */

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* Waits (bounded) until step reaches at least n. */
static int wait_step(int n)
{
	int i;

	for (i = 0; i < 5000 && atomic_load(&step) < n; i++)
		sleep_ms(1);
	return atomic_load(&step) >= n;
}

static void *waiter(void *arg)
{
	(void)arg;
	atomic_store(&step, 1);
	state_lock();                /* blocks: main holds it */
	atomic_store(&step, 2);      /* only reached when main yields */
	state_unlock();
	return NULL;
}

static void *hammer(void *arg)
{
	int i, seen;

	(void)arg;
	for (i = 0; i < 20000; i++) {
		state_lock();
		seen = ++shared;
		if (shared != seen)
			overlap++;
		state_unlock();
	}
	return NULL;
}

int main(void)
{
	pthread_t t, h[2];
	unsigned held;
	int i, before;

	/* Recursive: the holder may lock again, and keeps the lock until
	 * the last unlock. A yield with nobody waiting changes nothing, and
	 * one by a thread that does not hold the lock does nothing. */
	state_yield();
	state_lock();
	state_lock();
	state_yield();
	state_unlock();
	atomic_store(&step, 0);
	CHECK_EQ_INT(pthread_create(&t, NULL, waiter, NULL), 0);
	CHECK(wait_step(1));
	sleep_ms(50);
	CHECK_EQ_INT(atomic_load(&step), 1);   /* still held after one unlock */

	/* A yield lets the waiter run to the end of its section before the
	 * holder gets the lock back, at the same depth. (The waiter queues
	 * for the lock just after it says step 1: on a slow machine, it may
	 * not have yet at the first yield.) */
	state_lock();
	for (i = 0; i < 1000 && atomic_load(&step) < 2; i++) {
		state_yield();
		if (atomic_load(&step) < 2)
			sleep_ms(1);
	}
	CHECK_EQ_INT(atomic_load(&step), 2);
	state_unlock();
	CHECK_EQ_INT(atomic_load(&step), 2);
	state_unlock();
	CHECK_EQ_INT(pthread_join(t, NULL), 0);

	/* Suspended, the lock is the waiter's; resumed, it is ours again at
	 * the depth we had. */
	atomic_store(&step, 0);
	state_lock();
	state_lock();
	CHECK_EQ_INT(pthread_create(&t, NULL, waiter, NULL), 0);
	CHECK(wait_step(1));
	held = state_suspend();
	CHECK_EQ_INT(held, 2);
	CHECK(wait_step(2));
	state_resume(held);
	state_unlock();
	CHECK_EQ_INT(pthread_join(t, NULL), 0);
	atomic_store(&step, 0);
	CHECK_EQ_INT(pthread_create(&t, NULL, waiter, NULL), 0);
	CHECK(wait_step(1));
	sleep_ms(50);
	CHECK_EQ_INT(atomic_load(&step), 1);   /* depth 1 left: still ours */
	state_unlock();
	CHECK_EQ_INT(pthread_join(t, NULL), 0);
	CHECK_EQ_INT(atomic_load(&step), 2);
	CHECK_EQ_INT(state_suspend(), 0);      /* not held: nothing to give up */
	state_resume(0);

	/* Mutual exclusion: two threads and this one, yielding, never see
	 * another holder inside the section, and no increment is lost. */
	shared = 0;
	overlap = 0;
	for (i = 0; i < 2; i++)
		CHECK_EQ_INT(pthread_create(&h[i], NULL, hammer, NULL), 0);
	for (i = 0; i < 2000; i++) {
		state_lock();
		before = shared;
		state_yield();
		if (shared < before)
			overlap++;
		state_unlock();
	}
	for (i = 0; i < 2; i++)
		CHECK_EQ_INT(pthread_join(h[i], NULL), 0);
	CHECK_EQ_INT(shared, 40000);
	CHECK_EQ_INT(overlap, 0);
	return check_done("test_state_lock");
}
