/* Audit events to a SIEM: syslog (RFC 5424) over UDP, TCP (octet
 * counting, RFC 6587) or TLS (RFC 5425). Used only from the audit writer
 * thread: sending may block briefly, never the event loop. */
#ifndef GH_GATEWAY_SYSLOG_OUT_H
#define GH_GATEWAY_SYSLOG_OUT_H

#include <stddef.h>

#include "gateway/config.h"

struct syslog_out;

/* Returns owned: free with syslog_out_free(). The connection is made on
 * the first send (and again after a failure). NULL with err. */
struct syslog_out *syslog_out_new(const struct config_log *cfg, char *err, size_t errlen);
void syslog_out_free(struct syslog_out *s);

/* One message: severity (LOG_* of syslog.h), MSGID (the event name), the
 * RFC 3339 timestamp and the JSON text as MSG. A message longer than
 * log.syslog.max_message_bytes (by default CONFIG_SYSLOG_MSG_DEFAULT_UDP
 * over UDP, CONFIG_SYSLOG_MSG_DEFAULT_STREAM over TCP and TLS) carries
 * the event's reduced form (audit_reduce.h), never a cut one. Returns 0,
 * or -1 when it could not be delivered (it is dropped and counted by the
 * caller); over UDP a failure loses that message only. */
int syslog_out_send(struct syslog_out *s, int severity, const char *msgid,
    const char *ts, const char *msg, size_t len);

#endif
