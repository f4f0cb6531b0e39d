/* Webhook POSTs (see webhook.h). */
#include "gateway/webhook.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/config.h"

#define WEBHOOK_TIMEOUT_MS 2000

int webhook_parse(const char *url, struct sockaddr_storage *addr, char *path,
    size_t pathcap, const char **why)
{
	char hostport[128];
	const char *p, *slash;
	size_t n;

	if (strncmp(url, "http://", 7) != 0) {
		*why = "expected http://IP:PORT/path (loopback only)";
		return -1;
	}
	p = url + 7;
	slash = strchr(p, '/');
	n = slash != NULL ? (size_t)(slash - p) : strlen(p);
	if (n == 0 || n >= sizeof(hostport)) {
		*why = "expected http://IP:PORT/path";
		return -1;
	}
	memcpy(hostport, p, n);
	hostport[n] = '\0';
	if (config_parse_hostport(hostport, addr) != 0) {
		*why = "expected an IP address and port, no names";
		return -1;
	}
	if (!config_addr_is_loopback(addr)) {
		*why = "plain HTTP only to a loopback address (relay it on from there)";
		return -1;
	}
	snprintf(path, pathcap, "%s", slash != NULL ? slash : "/");
	if (strpbrk(path, " \r\n") != NULL) {
		*why = "the path has spaces or line breaks";
		return -1;
	}
	return 0;
}

static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };

	return poll(&p, 1, WEBHOOK_TIMEOUT_MS) == 1 ? 0 : -1;
}

int webhook_post(const struct sockaddr_storage *addr, const char *path, const char *body,
    size_t len)
{
	char head[512], reply[64];
	socklen_t alen = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	int fd, n, soerr = 0, rc = -1;
	socklen_t sl = sizeof(soerr);
	ssize_t got;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)addr, alen) != 0 &&
	    (errno != EINPROGRESS || wait_fd(fd, POLLOUT) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0))
		goto out;
	n = snprintf(head, sizeof(head), "POST %s HTTP/1.1\r\nHost: gatehouse\r\n"
	    "Content-Type: application/json\r\nContent-Length: %zu\r\n"
	    "Connection: close\r\n\r\n", path, len);
	if (n < 0 || (size_t)n >= sizeof(head) ||
	    send(fd, head, (size_t)n, MSG_NOSIGNAL) != n ||
	    send(fd, body, len, MSG_NOSIGNAL) != (ssize_t)len)
		goto out;
	if (wait_fd(fd, POLLIN) != 0)
		goto out;
	got = recv(fd, reply, sizeof(reply) - 1, 0);
	if (got >= 12) {
		reply[got] = '\0';
		rc = strncmp(reply, "HTTP/1.", 7) == 0 && reply[9] == '2' ? 0 : -1;
	}
out:
	close(fd);
	return rc;
}

struct hook_item {
	struct hook_item *next;
	size_t len;
	char body[];
};

struct webhook {
	struct sockaddr_storage addr;
	char path[256];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hook_item *head, *tail;
	size_t queued;
	bool stop;
	uint64_t dropped;
};

static void *hook_main(void *arg)
{
	struct webhook *w = arg;
	struct hook_item *it;

	pthread_mutex_lock(&w->mu);
	for (;;) {
		while (!w->stop && w->head == NULL)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->stop)
			break;
		it = w->head;
		w->head = it->next;
		if (w->head == NULL)
			w->tail = NULL;
		w->queued--;
		pthread_mutex_unlock(&w->mu);
		(void)webhook_post(&w->addr, w->path, it->body, it->len);
		free(it);
		pthread_mutex_lock(&w->mu);
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct webhook *webhook_new(const struct sockaddr_storage *addr, const char *path)
{
	struct webhook *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->addr = *addr;
	snprintf(w->path, sizeof(w->path), "%s", path);
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	if (pthread_create(&w->thread, NULL, hook_main, w) != 0) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
		free(w);
		return NULL;
	}
	return w;
}

void webhook_free(struct webhook *w)
{
	struct hook_item *it, *next;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	for (it = w->head; it != NULL; it = next) {
		next = it->next;
		free(it);
	}
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

void webhook_send(struct webhook *w, const char *body, size_t len)
{
	struct hook_item *it;

	if (w == NULL)
		return;
	it = malloc(sizeof(*it) + len);
	if (it == NULL)
		return;
	it->next = NULL;
	it->len = len;
	memcpy(it->body, body, len);
	pthread_mutex_lock(&w->mu);
	if (w->queued >= WEBHOOK_QUEUE_MAX) {
		w->dropped++;
		pthread_mutex_unlock(&w->mu);
		free(it);
		return;
	}
	if (w->tail != NULL)
		w->tail->next = it;
	else
		w->head = it;
	w->tail = it;
	w->queued++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}
