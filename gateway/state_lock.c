/* The daemon's state lock (see state_lock.h). */
#include "gateway/state_lock.h"

#include <pthread.h>

static pthread_mutex_t state = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;

void state_lock(void)
{
	pthread_mutex_lock(&state);
}

void state_unlock(void)
{
	pthread_mutex_unlock(&state);
}
