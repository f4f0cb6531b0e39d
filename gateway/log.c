/* Operational log lines on stderr. */
#include "gateway/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The one process-wide setting outside the context object: logging must
 * work before a config exists and from every thread, and a level is a
 * single int, so an atomic is all the locking it needs. */
static atomic_int log_level = LOG_INFO;

/* One line, at most this long, is one write(2). Below PIPE_BUF (4096),
 * so lines from several threads never interleave even on a pipe. */
#define LOG_LINE_MAX 2048

static const char *const level_names[] = {
	[LOG_EMERG] = "error",
	[LOG_ALERT] = "error",
	[LOG_CRIT] = "error",
	[LOG_ERR] = "error",
	[LOG_WARNING] = "warning",
	[LOG_NOTICE] = "info",
	[LOG_INFO] = "info",
	[LOG_DEBUG] = "debug",
};

void log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int log_get_level(void)
{
	return atomic_load(&log_level);
}

int log_level_parse(const char *s)
{
	if (strcmp(s, "error") == 0)
		return LOG_ERR;
	if (strcmp(s, "warning") == 0)
		return LOG_WARNING;
	if (strcmp(s, "info") == 0)
		return LOG_INFO;
	if (strcmp(s, "debug") == 0)
		return LOG_DEBUG;
	return -1;
}

void log_msg(int level, const char *fmt, ...)
{
	static const char cut[] = "...";
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t len, i;
	ssize_t w;
	int n, saved_errno;

	if (level > atomic_load(&log_level))
		return;
	/* Callers log right after a failed call and may still read errno. */
	saved_errno = errno;
	if (level < LOG_EMERG)
		level = LOG_EMERG;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, ts.tv_nsec / 1000000L, level_names[level]);
	if (n < 0 || (size_t)n >= sizeof(line))
		goto out;
	len = (size_t)n;

	va_start(ap, fmt);
	errno = saved_errno; /* for %m */
	n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	/* Keep one byte for the newline; mark a cut line as such. */
	if ((size_t)n >= sizeof(line) - 1 - len) {
		len = sizeof(line) - 1;
		memcpy(line + len - (sizeof(cut) - 1), cut, sizeof(cut) - 1);
	} else {
		len += (size_t)n;
	}
	/* A newline from an argument that was not escaped would let one
	 * event forge the start of another line. */
	for (i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';

	do
		w = write(STDERR_FILENO, line, len);
	while (w < 0 && errno == EINTR);
out:
	errno = saved_errno;
}

char *log_escape(char *out, size_t cap, const uint8_t *in, size_t len)
{
	static const char hex[] = "0123456789abcdef";
	size_t need = 0, o = 0, i, limit;

	if (cap < 4) {
		if (cap > 0)
			out[0] = '\0';
		return out;
	}
	for (i = 0; i < len; i++)
		need += (in[i] < 0x20 || in[i] > 0x7e || in[i] == '"' || in[i] == '\\') ? 4 : 1;
	/* When it all fits, copy it all; otherwise leave room for "...".
	 * An escape is never split: a half "\x4" would mislead. */
	limit = need <= cap - 1 ? cap - 1 : cap - 4;
	for (i = 0; i < len; i++) {
		if (in[i] < 0x20 || in[i] > 0x7e || in[i] == '"' || in[i] == '\\') {
			if (o + 4 > limit)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[in[i] >> 4];
			out[o++] = hex[in[i] & 0xf];
		} else {
			if (o + 1 > limit)
				break;
			out[o++] = (char)in[i];
		}
	}
	if (i < len) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	return out;
}
