/* Server-side TLS contexts (OpenSSL) for every TLS listener. */
#ifndef GH_GATEWAY_TLS_H
#define GH_GATEWAY_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

#include "gateway/config.h"

/* Returns owned: free with SSL_CTX_free(). TLS 1.2 minimum, forward-secret
 * AEAD cipher suites only, no compression, no renegotiation. With an empty
 * tls->cert, uses state_dir/tls-cert.pem and tls-key.pem, generating a
 * self-signed P-256 certificate (CN and SAN "localhost", SAN IP 127.0.0.1
 * and ::1, valid one year, key file mode 0600) when they do not exist.
 * Refuses a key file that group or others may read. NULL with err on
 * failure; a message about one file starts with that file's path
 * ("KEY: does not match the certificate CERT: ..."), which
 * daemon_check_files() relies on to name the configuration key. */
SSL_CTX *tls_server_ctx_new(const struct config_tls *tls, const char *state_dir,
    char *err, size_t errlen);

#endif
