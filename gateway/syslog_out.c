/* Syslog sender (see syslog_out.h). */
#include "gateway/syslog_out.h"

#include "gateway/audit_reduce.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define SYSLOG_FACILITY 10          /* authpriv: security events */
#define SYSLOG_CONNECT_TIMEOUT_MS 2000
#define SYSLOG_RETRY_MS 1000        /* no reconnect storm when the collector is down */

struct syslog_out {
	struct sockaddr_storage addr;
	enum config_syslog_transport transport;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	char host[256];
	char ip[64];
	uint64_t next_try_ms;
	size_t max;                     /* the longest message, header included */
	char *buf;                      /* one formatted message: max bytes */
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void disconnect(struct syslog_out *s)
{
	if (s->ssl != NULL) {
		SSL_free(s->ssl);
		s->ssl = NULL;
	}
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

struct syslog_out *syslog_out_new(const struct config_log *cfg, char *err, size_t errlen)
{
	struct syslog_out *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->max = cfg->syslog_max_message_bytes != 0 ? cfg->syslog_max_message_bytes :
	    cfg->syslog_transport == CONFIG_SYSLOG_UDP ? CONFIG_SYSLOG_MSG_DEFAULT_UDP :
	    CONFIG_SYSLOG_MSG_DEFAULT_STREAM;
	if ((s->buf = malloc(s->max)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->addr = cfg->syslog_addr;
	s->transport = cfg->syslog_transport;
	if (gethostname(s->host, sizeof(s->host)) != 0 || s->host[0] == '\0')
		snprintf(s->host, sizeof(s->host), "-");
	config_format_addr((const struct sockaddr *)&s->addr, s->ip, sizeof(s->ip));
	if (s->transport == CONFIG_SYSLOG_TLS) {
		char ip[64], *colon;
		s->ctx = SSL_CTX_new(TLS_client_method());
		if (s->ctx == NULL || SSL_CTX_set_min_proto_version(s->ctx, TLS1_2_VERSION) != 1 ||
		    (cfg->syslog_ca_file[0] != '\0' ?
		    SSL_CTX_load_verify_locations(s->ctx, cfg->syslog_ca_file, NULL) :
		    SSL_CTX_set_default_verify_paths(s->ctx)) != 1) {
			snprintf(err, errlen, "log.syslog: cannot set up TLS (CA file %s)",
			    cfg->syslog_ca_file[0] ? cfg->syslog_ca_file : "system store");
			syslog_out_free(s);
			return NULL;
		}
		SSL_CTX_set_verify(s->ctx, SSL_VERIFY_PEER, NULL);
		/* The collector is named by address: its certificate must name
		 * that IP. */
		snprintf(ip, sizeof(ip), "%s", s->ip[0] == '[' ? s->ip + 1 : s->ip);
		colon = strrchr(ip, s->ip[0] == '[' ? ']' : ':');
		if (colon != NULL)
			*colon = '\0';
		X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(s->ctx), ip);
	}
	return s;
}

void syslog_out_free(struct syslog_out *s)
{
	if (s == NULL)
		return;
	disconnect(s);
	SSL_CTX_free(s->ctx);
	free(s->buf);
	free(s);
}

static int wait_fd(int fd, short events, int timeout_ms)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, timeout_ms) == 1 ? 0 : -1;
}

static int connect_now(struct syslog_out *s)
{
	socklen_t len = s->addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	int type = s->transport == CONFIG_SYSLOG_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int soerr = 0, rc;
	socklen_t sl = sizeof(soerr);

	if (mono_ms() < s->next_try_ms)
		return -1;
	s->next_try_ms = mono_ms() + SYSLOG_RETRY_MS;
	s->fd = socket(s->addr.ss_family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0)
		return -1;
	rc = connect(s->fd, (const struct sockaddr *)&s->addr, len);
	if (rc != 0 && errno != EINPROGRESS)
		goto fail;
	if (rc != 0 && (wait_fd(s->fd, POLLOUT, SYSLOG_CONNECT_TIMEOUT_MS) != 0 ||
	    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0))
		goto fail;
	if (s->transport == CONFIG_SYSLOG_TLS) {
		s->ssl = SSL_new(s->ctx);
		if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
			goto fail;
		for (;;) {
			ERR_clear_error();
			rc = SSL_connect(s->ssl);
			if (rc == 1)
				break;
			rc = SSL_get_error(s->ssl, rc);
			if ((rc != SSL_ERROR_WANT_READ && rc != SSL_ERROR_WANT_WRITE) ||
			    wait_fd(s->fd, rc == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT,
			    SYSLOG_CONNECT_TIMEOUT_MS) != 0)
				goto fail;
		}
	}
	return 0;
fail:
	disconnect(s);
	return -1;
}

static int send_all(struct syslog_out *s, const char *p, size_t n)
{
	ssize_t w;
	int e;

	while (n > 0) {
		if (s->ssl != NULL) {
			ERR_clear_error();
			w = SSL_write(s->ssl, p, (int)n);
			if (w <= 0) {
				e = SSL_get_error(s->ssl, (int)w);
				if ((e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) &&
				    wait_fd(s->fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, 1000) == 0)
					continue;
				return -1;
			}
		} else {
			w = send(s->fd, p, n, MSG_NOSIGNAL);
			if (w < 0) {
				if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
				    wait_fd(s->fd, POLLOUT, 1000) == 0)
					continue;
				return -1;
			}
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Over UDP nothing ties one message to the next, so a failed send loses
 * that message only: the socket is kept, as there is no connection to
 * make again, and pausing would lose the events after it too. An earlier
 * datagram's ICMP refusal (the collector was down) is reported by the
 * next send, which then did not go out: it is tried once more. */
static int send_datagram(struct syslog_out *s, const char *p, size_t n)
{
	int tries;

	for (tries = 0; tries < 2; tries++) {
		if (send(s->fd, p, n, MSG_NOSIGNAL) == (ssize_t)n)
			return 0;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			(void)wait_fd(s->fd, POLLOUT, 1000);
		else if (errno != ECONNREFUSED)
			return -1;
	}
	return -1;
}

int syslog_out_send(struct syslog_out *s, int severity, const char *msgid,
    const char *ts, const char *msg, size_t len)
{
	char *reduced = NULL;
	size_t head, total, rlen;
	int n;

	/* RFC 5424 §6: <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG */
	n = snprintf(s->buf, s->max, "<%d>1 %s %s gatehouse %d %.32s - ",
	    SYSLOG_FACILITY * 8 + severity, ts, s->host, (int)getpid(), msgid);
	if (n < 0 || (size_t)n >= s->max)
		return -1;
	head = (size_t)n;
	/* Never cut an event: cut JSON is useless to a SIEM, and a datagram
	 * over the UDP limit is not sent at all. One too large for this
	 * transport goes in its reduced form, valid JSON that says so
	 * (audit_reduce.h); the audit file has it whole. */
	if (len > s->max - head) {
		reduced = audit_reduce(msg, len, s->max - head, &rlen);
		if (reduced == NULL)
			return -1;
		msg = reduced;
		len = rlen;
	}
	memcpy(s->buf + head, msg, len);
	free(reduced);
	total = head + len;
	if (s->fd < 0 && connect_now(s) != 0)
		return -1;
	if (s->transport == CONFIG_SYSLOG_UDP)
		return send_datagram(s, s->buf, total);
	/* RFC 6587 §3.4.1 / RFC 5425 §4.3: octet counting. */
	{
		char frame[24];
		n = snprintf(frame, sizeof(frame), "%zu ", total);
		if (send_all(s, frame, (size_t)n) != 0 || send_all(s, s->buf, total) != 0) {
			disconnect(s);
			return -1;
		}
	}
	return 0;
}
