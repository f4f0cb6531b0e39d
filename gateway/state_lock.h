/* The one lock over the daemon's shared state (TURN server, relay
 * sockets, registry, hub, metrics, alerts, blocklist).
 *
 * Two threads run the daemon's logic: the main thread (libwebsockets'
 * loop: signaling, admin API, timers) and the relay thread (TURN packets,
 * see relay_thread.h). Each holds this lock for the whole of every piece
 * of work it does: the relay thread for one batch of socket events, the
 * main thread for every libwebsockets callback and loop callback. So the
 * state is only ever touched by one of them at a time, and code below
 * these entry points needs no locking of its own. The lock is recursive,
 * as libwebsockets may call a callback from inside another.
 *
 * The lock is fair: threads get it in the order they asked for it. Media
 * waits while the main thread holds it, and some main-thread work is long
 * (a contacts list of thousands of users, a push of them to every
 * session), so such work calls state_yield() between its steps; work
 * that touches no shared state at all (reading a policy file, writing
 * out an admin answer) runs between state_suspend() and state_resume().
 *
 * The relay thread must not call libwebsockets (it is not thread-safe):
 * work that would, such as ending a call in response to an alert, is
 * handed to the main thread (daemon.c). */
#ifndef GH_GATEWAY_STATE_LOCK_H
#define GH_GATEWAY_STATE_LOCK_H

void state_lock(void);
void state_unlock(void);

/* For the holder, around long work that touches none of the shared
 * state, such as reading a policy file: gives the lock up meanwhile.
 * state_suspend() returns the depth to give state_resume(), which takes
 * the lock back (after whoever has it now); 0 from a thread that does
 * not hold it, for which both do nothing. */
unsigned state_suspend(void);
void state_resume(unsigned held);

/* For the holder, between two steps of a long piece of work: lets a
 * thread that waits for the lock run its work first, and the relay
 * thread have the CPU if it woke up on this one, then takes the lock
 * back at the same depth. Without the second, a thread that computes
 * for milliseconds without a system call keeps its CPU until the
 * scheduler's next tick (4 ms at HZ=250 on kernels without full
 * preemption), however urgent the thread that woke up there.
 * Only for work whose own data the other thread never touches: the
 * hub's sessions and contacts, say, which the relay thread never sees.
 * Does nothing for a thread that does not hold the lock. */
void state_yield(void);

#endif
