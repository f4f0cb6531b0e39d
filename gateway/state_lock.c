/* The daemon's state lock (see state_lock.h).
 *
 * A ticket lock: each thread that has to wait takes the next ticket and
 * owns the lock when the ticket is served. A plain mutex would let the
 * main thread, yielding, take the lock straight back before the waiting
 * relay thread had even woken up. */
#include "gateway/state_lock.h"

#include <pthread.h>
#include <sched.h>

static pthread_mutex_t guard = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t served = PTHREAD_COND_INITIALIZER;
static unsigned long next_ticket, now_serving;
static pthread_t owner;
static unsigned depth;             /* 0: nobody holds the lock */

/* With guard held: waits for a ticket of its own, then owns the lock. */
static void take_turn(unsigned at_depth)
{
	unsigned long ticket = next_ticket++;

	while (ticket != now_serving)
		pthread_cond_wait(&served, &guard);
	owner = pthread_self();
	depth = at_depth;
}

/* With guard held: hands the lock to the next ticket. */
static void pass_turn(void)
{
	depth = 0;
	now_serving++;
	if (next_ticket != now_serving)
		pthread_cond_broadcast(&served);
}

void state_lock(void)
{
	pthread_mutex_lock(&guard);
	if (depth > 0 && pthread_equal(owner, pthread_self()))
		depth++;
	else
		take_turn(1);
	pthread_mutex_unlock(&guard);
}

void state_unlock(void)
{
	pthread_mutex_lock(&guard);
	if (--depth == 0)
		pass_turn();
	pthread_mutex_unlock(&guard);
}

unsigned state_suspend(void)
{
	unsigned held = 0;

	pthread_mutex_lock(&guard);
	if (depth > 0 && pthread_equal(owner, pthread_self())) {
		held = depth;
		pass_turn();
	}
	pthread_mutex_unlock(&guard);
	return held;
}

void state_resume(unsigned held)
{
	if (held == 0)
		return;
	pthread_mutex_lock(&guard);
	take_turn(held);
	pthread_mutex_unlock(&guard);
}

void state_yield(void)
{
	unsigned held = state_suspend();

	if (held == 0)
		return;
	sched_yield();
	state_resume(held);
}
