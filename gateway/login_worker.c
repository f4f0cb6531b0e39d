/* The login worker (see login_worker.h): the job queue (login_queue.c,
 * which decides what runs next) and a done list under one mutex, a
 * condition variable to wake the worker and an eventfd to wake the loop.
 * A job counts against its source and class from its submission until
 * the loop has drained its result. */
#include "gateway/login_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "gateway/log.h"
#include "signaling/userdb.h"

#define WORKER_NICE 10

struct job {
	struct login_queue_item qi;   /* cls, id (the session or request), limited */
	struct job *next;             /* on the done list */
	bool hash;
	uint64_t now_s;
	char *user, *password, *totp, *token; /* owned, wiped on free */
	struct login_result result;
};

struct login_worker {
	pthread_t thread;
	bool started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct login_queue *queue;
	struct job *done_head, *done_tail;
	bool stop;
	int efd;
	struct userdb *users;      /* the worker's own connection */
	struct identity *identity; /* over it */
};

static char *dup_secret(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static void wipe_free(char *s)
{
	if (s != NULL) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void job_free(struct job *j)
{
	wipe_free(j->user);
	wipe_free(j->password);
	wipe_free(j->totp);
	wipe_free(j->token);
	free(j);
}

static const char *userdb_why(int rc)
{
	switch (rc) {
	case USERDB_NOTFOUND: return "unknown user";
	case USERDB_BADPASSWORD: return "bad password";
	case USERDB_BADCODE: return "bad code";
	case USERDB_LOCKED: return "locked";
	case USERDB_DISABLED: return "disabled";
	default: return "user database error";
	}
}

static void run_admin(struct login_worker *w, struct job *j, struct login_result *r)
{
	struct userdb_entry e;
	size_t i;
	int rc;

	r->rc = IDENTITY_FAILED;
	if (w->users == NULL) {
		r->why = "no local backend";
		return;
	}
	rc = userdb_verify(w->users, j->user, j->password, j->totp, true, j->now_s, &e);
	if (rc != USERDB_OK) {
		r->why = userdb_why(rc);
		return;
	}
	snprintf(r->who.name, sizeof(r->who.name), "%s", e.name);
	for (i = 0; i < e.ngroups && i < IDENTITY_MAX_GROUPS; i++)
		snprintf(r->who.groups[i], sizeof(r->who.groups[i]), "%s", e.groups[i]);
	r->who.ngroups = i;
	r->who.mfa = true;
	r->cred_tag = e.cred_tag;
	r->rc = IDENTITY_OK;
	OPENSSL_cleanse(&e, sizeof(e));
}

static struct job *job_of(struct login_queue_item *it)
{
	return (struct job *)((char *)it - offsetof(struct job, qi));
}

static void run_job(struct login_worker *w, struct job *j)
{
	struct login_result *r = &j->result;

	r->why = "bad request";
	if (j->hash) {
		r->rc = password_hash(j->password, r->pw_hash, sizeof(r->pw_hash)) == PASSWORD_OK ?
		    IDENTITY_OK : IDENTITY_FAILED;
		r->why = "password hashing failed";
	} else if (j->qi.cls == LOGIN_CLASS_ADMIN)
		run_admin(w, j, r);
	else if (j->token != NULL)
		r->rc = identity_login_token(w->identity, j->token, strlen(j->token),
		    j->now_s, &r->who, &r->why);
	else
		r->rc = identity_login_password(w->identity, j->user, j->password,
		    j->totp, j->now_s, &r->who, &r->why);
}

static void *worker_main(void *arg)
{
	struct login_worker *w = arg;
	struct login_queue_item *it;
	struct job *j;
	uint64_t one = 1;

	/* argon2id computes for a quarter of a second without a system call.
	 * At normal priority the scheduler lets it run out its time slice on
	 * the CPU where the main thread may be holding the state lock, and
	 * relayed media waits for both (milliseconds). A lower priority
	 * makes it give way at once; logins are slow on purpose anyway. */
	(void)setpriority(PRIO_PROCESS, (id_t)gettid(), WORKER_NICE);

	pthread_mutex_lock(&w->mu);
	for (;;) {
		it = NULL;
		while (!w->stop && (it = login_queue_pop(w->queue)) == NULL)
			pthread_cond_wait(&w->cv, &w->mu);
		if (it == NULL)
			break;
		/* Popped, it can no longer be cancelled: from here on it runs,
		 * and its result is drained, answered if the client is still
		 * there, and audited either way. */
		j = job_of(it);
		pthread_mutex_unlock(&w->mu);
		/* Tests wait for this line: from here a close no longer cancels. */
		log_debug("login: checking %s %llu", j->hash ? "a hash for request" :
		    "a login of session", (unsigned long long)j->qi.id);
		run_job(w, j);
		/* The secrets are not needed once checked. */
		wipe_free(j->password);
		wipe_free(j->totp);
		wipe_free(j->token);
		j->password = j->totp = j->token = NULL;
		pthread_mutex_lock(&w->mu);
		j->next = NULL;
		if (w->done_tail != NULL)
			w->done_tail->next = j;
		else
			w->done_head = j;
		w->done_tail = j;
		if (write(w->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			break;
	}
	pthread_mutex_unlock(&w->mu);
	return NULL;
}

struct login_worker *login_worker_new(const struct config *cfg, const uint8_t *users_key,
    char *err, size_t errlen)
{
	struct login_worker *w = calloc(1, sizeof(*w));
	size_t i;
	bool local = false;

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->efd < 0) {
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if ((w->queue = login_queue_new(cfg->signaling.logins_per_source)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (i = 0; i < cfg->identity.nbackends; i++)
		local |= cfg->identity.backends[i].type == CONFIG_BACKEND_LOCAL;
	if (local && (w->users = userdb_open(cfg->state_dir, users_key, err, errlen)) == NULL)
		goto fail;
	if ((w->identity = identity_new(&cfg->identity, w->users, err, errlen)) == NULL)
		goto fail;
	if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
		snprintf(err, errlen, "cannot start the login worker");
		goto fail;
	}
	w->started = true;
	(void)pthread_setname_np(w->thread, "gh-login");
	return w;
fail:
	login_worker_free(w);
	return NULL;
}

void login_worker_stop(struct login_worker *w)
{
	if (w == NULL || !w->started)
		return;
	pthread_mutex_lock(&w->mu);
	w->stop = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	pthread_join(w->thread, NULL);
	w->started = false;
}

void login_worker_free(struct login_worker *w)
{
	struct login_queue_item *it;
	struct job *j, *next;

	if (w == NULL)
		return;
	login_worker_stop(w);
	while (w->queue != NULL && (it = login_queue_pop(w->queue)) != NULL)
		job_free(job_of(it));
	for (j = w->done_head; j != NULL; j = next) {
		next = j->next;
		OPENSSL_cleanse(&j->result, sizeof(j->result));
		job_free(j);
	}
	login_queue_free(w->queue);
	identity_free(w->identity);
	userdb_close(w->users);
	if (w->efd >= 0)
		close(w->efd);
	pthread_cond_destroy(&w->cv);
	pthread_mutex_destroy(&w->mu);
	free(w);
}

static int submit(struct login_worker *w, enum login_class cls, bool hash, uint64_t id,
    const struct sockaddr *from, const char *user, const char *password, const char *totp,
    const char *token, uint64_t now_s)
{
	struct job *j;
	int rc;

	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return LOGIN_QUEUE_FULL;
	j->qi.cls = cls;
	j->qi.id = id;
	/* What costs the worker its time: argon2id. */
	j->qi.limited = !hash && token == NULL;
	j->hash = hash;
	j->now_s = now_s;
	j->user = dup_secret(user);
	j->password = dup_secret(password);
	j->totp = dup_secret(totp);
	j->token = dup_secret(token);
	if ((user != NULL && j->user == NULL) || (password != NULL && j->password == NULL) ||
	    (totp != NULL && j->totp == NULL) || (token != NULL && j->token == NULL)) {
		job_free(j);
		return LOGIN_QUEUE_FULL;
	}
	j->result.session = id;
	j->result.admin = cls == LOGIN_CLASS_ADMIN && !hash;
	j->result.hash = hash;
	if (from != NULL && (from->sa_family == AF_INET || from->sa_family == AF_INET6))
		memcpy(&j->result.from, from, from->sa_family == AF_INET ?
		    sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
	snprintf(j->result.user, sizeof(j->result.user), "%s", user != NULL ? user : "");
	pthread_mutex_lock(&w->mu);
	rc = login_queue_push(w->queue, &j->qi, from);
	if (rc == LOGIN_QUEUE_OK)
		pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	if (rc != LOGIN_QUEUE_OK)
		job_free(j);
	return rc;
}

int login_worker_submit(struct login_worker *w, uint64_t session, const struct sockaddr *from,
    const char *user, const char *password, const char *totp, const char *token,
    uint64_t now_s)
{
	return submit(w, LOGIN_CLASS_SIGNALING, false, session, from, user, password, totp,
	    token, now_s);
}

int login_worker_submit_admin(struct login_worker *w, uint64_t request,
    const struct sockaddr *from, const char *user, const char *password, const char *totp,
    uint64_t now_s)
{
	return submit(w, LOGIN_CLASS_ADMIN, false, request, from, user, password, totp, NULL,
	    now_s);
}

int login_worker_submit_hash(struct login_worker *w, uint64_t request,
    const struct sockaddr *from, const char *password)
{
	return submit(w, LOGIN_CLASS_ADMIN, true, request, from, NULL, password, NULL, NULL, 0);
}

bool login_worker_cancel(struct login_worker *w, bool admin, uint64_t id)
{
	struct login_queue_item *it;

	pthread_mutex_lock(&w->mu);
	it = login_queue_cancel(w->queue, admin ? LOGIN_CLASS_ADMIN : LOGIN_CLASS_SIGNALING, id);
	pthread_mutex_unlock(&w->mu);
	if (it == NULL)
		return false;
	job_free(job_of(it));
	return true;
}

bool login_worker_admin_has_room(struct login_worker *w)
{
	bool room;

	pthread_mutex_lock(&w->mu);
	room = login_queue_has_room(w->queue, LOGIN_CLASS_ADMIN);
	pthread_mutex_unlock(&w->mu);
	return room;
}

int login_worker_fd(const struct login_worker *w)
{
	return w->efd;
}

void login_worker_drain(struct login_worker *w,
    void (*done)(void *ctx, const struct login_result *r), void *ctx)
{
	struct job *list, *j, *next;
	uint64_t n;

	(void)!read(w->efd, &n, sizeof(n));
	pthread_mutex_lock(&w->mu);
	list = w->done_head;
	w->done_head = w->done_tail = NULL;
	for (j = list; j != NULL; j = j->next)
		login_queue_release(w->queue, &j->qi);
	pthread_mutex_unlock(&w->mu);
	for (j = list; j != NULL; j = next) {
		next = j->next;
		done(ctx, &j->result);
		OPENSSL_cleanse(&j->result, sizeof(j->result));
		job_free(j);
	}
}
