/* Alerts to a webhook: each alert's JSON is POSTed to alerts.webhook.
 * Only plain HTTP to a loopback address for now (a local relay to the
 * SOAR or chat tool carries it on), so nothing leaves the host in clear.
 * Called from the audit writer thread: a slow receiver never blocks the
 * event loop. */
#ifndef GH_GATEWAY_WEBHOOK_H
#define GH_GATEWAY_WEBHOOK_H

#include <stddef.h>
#include <sys/socket.h>

/* Parses "http://IP:PORT/path" (IPv6 in brackets) and requires a
 * loopback IP. 0, or -1 with a reason in *why (static). */
int webhook_parse(const char *url, struct sockaddr_storage *addr, char *path,
    size_t pathcap, const char **why);

/* POSTs body (JSON) and waits at most about two seconds for the status
 * line. 0 when the answer was 2xx, -1 otherwise. */
int webhook_post(const struct sockaddr_storage *addr, const char *path, const char *body,
    size_t len);

#define WEBHOOK_QUEUE_MAX 256

/* A sender thread with its own bounded queue, so a slow receiver holds up
 * nothing else (not even the audit writer). */
struct webhook;

/* Returns owned: free with webhook_free() (which gives up on what is
 * still queued). NULL on failure. */
struct webhook *webhook_new(const struct sockaddr_storage *addr, const char *path);
void webhook_free(struct webhook *w);
/* Queues a copy of body; dropped (and counted) when the queue is full. */
void webhook_send(struct webhook *w, const char *body, size_t len);

#endif
