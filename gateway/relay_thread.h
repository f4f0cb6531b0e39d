/* The relay thread: TURN packets handled apart from the signaling loop.
 *
 * The main thread's loop (libwebsockets) polls every signaling session's
 * socket on each wake-up, so with thousands of sessions open a relay
 * inside it would pay for all of them on every packet. This thread waits
 * on the relay's own epoll set only, and handles each batch of events
 * with the state lock held (state_lock.h). */
#ifndef GH_GATEWAY_RELAY_THREAD_H
#define GH_GATEWAY_RELAY_THREAD_H

#include <stddef.h>

#include "gateway/relay_io.h"

struct relay_thread;

/* Starts the thread on io (borrowed: it must outlive the thread). Returns
 * owned, or NULL with a message in err. */
struct relay_thread *relay_thread_start(struct relay_io *io, char *err, size_t errlen);
/* Stops the thread and waits for it; NULL is a no-op. Must be called
 * without the state lock held. */
void relay_thread_stop(struct relay_thread *t);

#endif
