/* The login worker's queue (see login_queue.h).
 *
 * A source is a record with its own FIFO of queued jobs and the number
 * of its jobs in flight. The sources of a class that have jobs queued
 * form that class's ring, served in turn. Every job in flight holds its
 * source's record, so at most as many records are in use as jobs are in
 * flight: a fixed pool of that size never runs out, and a client that
 * sprays addresses cannot grow memory. */
#include "gateway/login_queue.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/source_key.h"

#define SOURCES (LOGIN_QUEUE_SIGNALING_MAX + LOGIN_QUEUE_ADMIN_MAX)

struct login_source {
	bool used;
	enum login_class cls;
	uint8_t key[SOURCE_KEY_LEN];  /* source_key(): an IPv4 address, or an IPv6 /64 */
	unsigned inflight;            /* jobs queued, running, or done and not released */
	unsigned limited;             /* of them, password checks */
	struct login_queue_item *head, *tail; /* queued, oldest first */
	bool ready;                   /* on its class's ring: head != NULL */
	struct login_source *next_ready;
};

struct login_queue {
	struct login_source src[SOURCES];
	struct login_source *ring_head[LOGIN_CLASSES], *ring_tail[LOGIN_CLASSES];
	size_t inflight[LOGIN_CLASSES];
	unsigned share[LOGIN_CLASSES]; /* password checks in flight per source */
	enum login_class last;        /* the class served last */
};

static const size_t class_max[LOGIN_CLASSES] = {
	[LOGIN_CLASS_SIGNALING] = LOGIN_QUEUE_SIGNALING_MAX,
	[LOGIN_CLASS_ADMIN] = LOGIN_QUEUE_ADMIN_MAX,
};

static struct login_source *source_find(struct login_queue *q, enum login_class cls,
    const uint8_t k[SOURCE_KEY_LEN])
{
	size_t i;

	for (i = 0; i < SOURCES; i++)
		if (q->src[i].used && q->src[i].cls == cls &&
		    memcmp(q->src[i].key, k, SOURCE_KEY_LEN) == 0)
			return &q->src[i];
	return NULL;
}

static struct login_source *source_new(struct login_queue *q, enum login_class cls,
    const uint8_t k[SOURCE_KEY_LEN])
{
	size_t i;

	for (i = 0; i < SOURCES; i++) {
		if (q->src[i].used)
			continue;
		memset(&q->src[i], 0, sizeof(q->src[i]));
		q->src[i].used = true;
		q->src[i].cls = cls;
		memcpy(q->src[i].key, k, SOURCE_KEY_LEN);
		return &q->src[i];
	}
	return NULL;
}

static void ring_append(struct login_queue *q, struct login_source *s)
{
	s->next_ready = NULL;
	if (q->ring_tail[s->cls] != NULL)
		q->ring_tail[s->cls]->next_ready = s;
	else
		q->ring_head[s->cls] = s;
	q->ring_tail[s->cls] = s;
	s->ready = true;
}

static void ring_remove(struct login_queue *q, struct login_source *s)
{
	struct login_source **pp = &q->ring_head[s->cls], *prev = NULL;

	for (; *pp != NULL && *pp != s; pp = &(*pp)->next_ready)
		prev = *pp;
	if (*pp == s) {
		*pp = s->next_ready;
		if (q->ring_tail[s->cls] == s)
			q->ring_tail[s->cls] = prev;
	}
	s->next_ready = NULL;
	s->ready = false;
}

struct login_queue *login_queue_new(unsigned signaling_share)
{
	struct login_queue *q = calloc(1, sizeof(struct login_queue));

	if (q != NULL) {
		q->share[LOGIN_CLASS_SIGNALING] = signaling_share;
		q->share[LOGIN_CLASS_ADMIN] = LOGIN_QUEUE_PER_SOURCE;
	}
	return q;
}

void login_queue_free(struct login_queue *q)
{
	free(q);
}

int login_queue_push(struct login_queue *q, struct login_queue_item *it,
    const struct sockaddr *from)
{
	uint8_t k[SOURCE_KEY_LEN];
	struct login_source *s;

	if (!login_queue_has_room(q, it->cls))
		return LOGIN_QUEUE_FULL;
	/* No address is a source of its own: all ones, a multicast /64 that
	 * no client sends from (the key of ::1, a /64 of zeros, is all zeros). */
	if (from != NULL)
		source_key(from, k);
	else
		memset(k, 0xff, sizeof(k));
	s = source_find(q, it->cls, k);
	if (s != NULL && it->limited && s->limited >= q->share[it->cls])
		return LOGIN_QUEUE_SOURCE_BUSY;
	if (s == NULL && (s = source_new(q, it->cls, k)) == NULL)
		return LOGIN_QUEUE_FULL; /* cannot happen: a record per job in flight */
	s->inflight++;
	s->limited += it->limited;
	q->inflight[it->cls]++;
	it->src = s;
	it->next = NULL;
	if (s->tail != NULL)
		s->tail->next = it;
	else
		s->head = it;
	s->tail = it;
	if (!s->ready)
		ring_append(q, s);
	return LOGIN_QUEUE_OK;
}

struct login_queue_item *login_queue_pop(struct login_queue *q)
{
	/* The class not served last goes first, so that neither waits for
	 * more than one job of the other. */
	enum login_class c = q->last == LOGIN_CLASS_ADMIN ? LOGIN_CLASS_SIGNALING :
	    LOGIN_CLASS_ADMIN;
	struct login_source *s;
	struct login_queue_item *it;

	if (q->ring_head[c] == NULL)
		c = c == LOGIN_CLASS_ADMIN ? LOGIN_CLASS_SIGNALING : LOGIN_CLASS_ADMIN;
	if ((s = q->ring_head[c]) == NULL)
		return NULL;
	ring_remove(q, s);
	it = s->head;
	s->head = it->next;
	if (s->head == NULL)
		s->tail = NULL;
	else
		ring_append(q, s); /* its next job waits for the other sources' */
	it->next = NULL;
	q->last = c;
	return it;
}

struct login_queue_item *login_queue_cancel(struct login_queue *q, enum login_class cls,
    uint64_t id)
{
	struct login_queue_item **pp, *it, *prev;
	struct login_source *s;
	size_t i;

	for (i = 0; i < SOURCES; i++) {
		s = &q->src[i];
		if (!s->used || s->cls != cls)
			continue;
		prev = NULL;
		for (pp = &s->head; (it = *pp) != NULL; pp = &it->next) {
			if (it->id != id) {
				prev = it;
				continue;
			}
			*pp = it->next;
			if (s->tail == it)
				s->tail = prev;
			if (s->head == NULL)
				ring_remove(q, s);
			it->next = NULL;
			login_queue_release(q, it);
			return it;
		}
	}
	return NULL;
}

void login_queue_release(struct login_queue *q, struct login_queue_item *it)
{
	struct login_source *s = it->src;

	if (s == NULL)
		return;
	s->inflight--;
	s->limited -= it->limited;
	q->inflight[it->cls]--;
	if (s->inflight == 0)
		s->used = false;
	it->src = NULL;
}

bool login_queue_has_room(const struct login_queue *q, enum login_class cls)
{
	return q->inflight[cls] < class_max[cls];
}

size_t login_queue_count(const struct login_queue *q, enum login_class cls)
{
	return q->inflight[cls];
}
