/* The admin API's HTTP listener (libwebsockets vhost on the loop). */
#ifndef GH_GATEWAY_ADMIN_HTTP_H
#define GH_GATEWAY_ADMIN_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gateway/admin.h"

struct lws_context;
struct admin_http;

/* Listens on listen; with cert_file/key_file (borrowed: read during the
 * call) over TLS, and with also_plain plain HTTP beside it on the same
 * port, which is refused unless listen is a loopback address.
 * Returns owned: free with admin_http_free() after the context is
 * destroyed. NULL with err. */
struct admin_http *admin_http_new(struct lws_context *ctx,
    const struct sockaddr_storage *listen, const char *cert_file, const char *key_file,
    bool also_plain, char *err, size_t errlen);
void admin_http_free(struct admin_http *s);
void admin_http_set_admin(struct admin_http *s, struct admin *a);

/* env->reply of the admin core (ctx is the admin_http). */
void admin_http_reply(void *ctx, uint64_t request, int status, const char *body, size_t len);

#endif
