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
 * The relay thread must not call libwebsockets (it is not thread-safe):
 * work that would, such as ending a call in response to an alert, is
 * handed to the main thread (daemon.c). */
#ifndef GH_GATEWAY_STATE_LOCK_H
#define GH_GATEWAY_STATE_LOCK_H

void state_lock(void);
void state_unlock(void);

#endif
