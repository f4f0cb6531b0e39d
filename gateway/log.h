/* Operational log: one line per event on stderr, with a UTC timestamp and
 * level. Everything that came from outside must pass through log_escape()
 * first; secrets are never passed here at all. */
#ifndef GH_GATEWAY_LOG_H
#define GH_GATEWAY_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <syslog.h> /* LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG */

void log_set_level(int level);
int log_get_level(void);

/* Writes "2026-11-26T17:00:00.123Z warning <message>\n" to stderr when
 * level is at or above the configured level. Thread-safe (one write(2)
 * per line). */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

/* Copies untrusted bytes into out as printable ASCII: bytes outside
 * 0x20-0x7e, '"' and '\\' become \xNN; truncated with "..." to fit cap.
 * Always NUL-terminates (cap >= 4). Returns out. */
char *log_escape(char *out, size_t cap, const uint8_t *in, size_t len);

/* Parses "error", "warning", "info", "debug" into a LOG_* value; -1 if
 * unknown. */
int log_level_parse(const char *s);

#endif
