/* `gatehouse run` (see daemon.h): configuration, secrets, TLS, identity,
 * policy, the registry, the TURN server and its sockets, the signaling
 * hub and its WebSocket listener, all on one event loop.
 *
 * This file is also where the two halves meet: the TURN server's permit
 * hook and the hub's "is this a relay address of this call" are both
 * answered here from the registry, so turn/ and signaling/ never call
 * each other. */
#include "gateway/daemon.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/errmsg.h"
#include "common/source_key.h"
#include "gateway/admin.h"
#include "gateway/admin_http.h"
#include "gateway/alerts.h"
#include "gateway/audit.h"
#include "gateway/audit_reader.h"
#include "gateway/blocklist.h"
#include "gateway/events.h"
#include "gateway/metrics.h"
#include "gateway/log.h"
#include "gateway/media_check.h"
#include "gateway/login_worker.h"
#include "gateway/loop.h"
#include "gateway/privdrop.h"
#include "gateway/registry.h"
#include "gateway/relay_io.h"
#include "gateway/relay_thread.h"
#include "gateway/secret.h"
#include "gateway/state_lock.h"
#include "gateway/syslog_out.h"
#include "gateway/tls.h"
#include "gateway/user_watch.h"
#include "policy/policy.h"
#include "signaling/hub.h"
#include "signaling/identity.h"
#include "signaling/jwt.h"
#include "signaling/userdb.h"
#include "signaling/ws_server.h"
#include "turn/server.h"

#define POLICY_MAX_BYTES (1024 * 1024)
#define DEFERRED_MAX 64

/* An alert response raised on the relay thread, carried out on the main
 * thread because it reaches signaling sessions (state_lock.h), or frees
 * allocations the relay thread may be using at that moment. */
enum deferred_kind { DEFER_END_CALL, DEFER_LOCK_USER, DEFER_CLOSE_SOURCE, DEFER_END_INSPECTED };

struct deferred_response {
	enum deferred_kind kind;
	char name[128];         /* call id, user name or source */
	uint32_t seconds;
};

static const char *const deferred_what[] = {
	[DEFER_END_CALL] = "ending call",
	[DEFER_LOCK_USER] = "locking user",
	[DEFER_CLOSE_SOURCE] = "closing what is open from",
	[DEFER_END_INSPECTED] = "ending call",
};

/* How the signaling or the admin listener is served (listener_tls_pick). */
struct listener_tls {
	bool tls;                     /* HTTPS/WSS with cert/key */
	bool also_plain;              /* and plain beside it: loopback only */
	char cert[PATH_MAX + 32], key[PATH_MAX + 32];
};

struct daemon {
	const struct config *cfg;
	bool serving;                /* daemon.start was audited */
	const char *stop_reason;     /* for daemon.stop */
	char secrets_key_id[USERDB_KEY_ID_HEX]; /* "" without local users */
	struct loop *loop;
	struct relay_io *io;
	struct relay_thread *relay;  /* runs io once the daemon serves */
	pthread_t main_thread;
	int deferred_fd;             /* eventfd: deferred responses waiting */
	struct deferred_response deferred[DEFERRED_MAX];
	size_t ndeferred;
	bool walking_allocs;         /* main thread: inside turn_server_each_alloc */
	struct turn_server *turn;
	struct turn_auth auth;       /* for minting call credentials */
	struct peer_policy peers;
	struct registry *registry;
	struct userdb *users;
	struct user_watch *user_watch;   /* NULL without local users */
	struct identity *identity;
	struct policy *policy;
	struct hub *hub;
	struct ws_server *ws;
	struct login_worker *logins;
	struct audit_reader *audit_reader;
	struct audit *audit;
	struct events *events;
	struct metrics *metrics;
	struct alerts *alerts;
	struct blocklist *blocks;
	struct admin *admin;
	struct admin_http *admin_http;
	struct timespec policy_mtime;    /* of the file the running policy came from */
	char *policy_src;                /* the running policy's text (owned) */
	struct listener_tls sig_tls, admin_tls;
};

/* --- TURN ops ----------------------------------------------------------- */

static void turn_send_client(void *ctx, const struct turn_client *c,
    const uint8_t *buf, size_t len)
{
	relay_io_send_client(((struct daemon *)ctx)->io, c, buf, len);
}

static int turn_relay_open(void *ctx, struct turn_alloc *owner,
    const struct turn_relay_req *req, struct sockaddr_storage *relayed, void **handle)
{
	return relay_io_relay_open(((struct daemon *)ctx)->io, owner, req, relayed, handle);
}

static void turn_relay_close(void *ctx, void *handle)
{
	relay_io_relay_close(((struct daemon *)ctx)->io, handle);
}

static void turn_relay_unreserve(void *ctx, uint16_t port)
{
	relay_io_relay_unreserve(((struct daemon *)ctx)->io, port);
}

static void turn_relay_send(void *ctx, void *handle, const struct sockaddr *peer,
    const uint8_t *buf, size_t len)
{
	relay_io_relay_send(((struct daemon *)ctx)->io, handle, peer, buf, len);
}

/* The permit hook: an address the policy refuses is reachable only when it
 * is exactly the relayed address of another allocation that `from` may
 * reach. A call's allocation reaches the other participants' allocations
 * of the same live call; a static user's (tools, benchmarks) reaches other
 * static users' allocations. Nothing else.
 *
 * It runs for every relayed datagram, so it asks nothing about the call
 * itself: that `to` is in the registry already proves its call live. At
 * hangup hub_call_ended() ends the call in the registry and removes every
 * allocation of it (each leaves the registry through turn_on_alloc), under
 * the same state lock as this hook; and no allocation of an ended call
 * can be made or refreshed afterwards, because turn_credential_ok()
 * refuses its credentials. `from` is an allocation of the TURN server, so
 * the same holds for it. */
static bool turn_permit_peer(void *ctx, const struct turn_alloc *from,
    const struct sockaddr *peer)
{
	struct daemon *d = ctx;
	const struct registry_alloc *to = registry_alloc_find(d->registry, peer);

	if (to == NULL || sockaddr_equal(peer, (const struct sockaddr *)&from->advertised))
		return false;
	if (from->id.kind == TURN_ID_STATIC)
		return to->call[0] == '\0';
	return strcmp(to->call, from->id.call) == 0 &&
	    strcmp(to->user, from->id.user) != 0;
}

/* Call credentials work only while the registry knows their call as live:
 * from the first mint (hub_mint) to the hangup (hub_call_ended). Anything
 * else, an ended call or one from before a restart, is refused. Asked for
 * TURN requests (Allocate, Refresh, CreatePermission, ChannelBind), never
 * for relayed datagrams. */
static bool turn_credential_ok(void *ctx, const struct turn_identity *id)
{
	struct daemon *d = ctx;

	return registry_call_live(d->registry, id->call, relay_io_now_ms() / 1000);
}

static void turn_on_alloc(void *ctx, const struct turn_alloc *a, bool created,
    const char *reason)
{
	struct daemon *d = ctx;

	if (created) {
		if (registry_alloc_add(d->registry, (const struct sockaddr *)&a->advertised,
		    a->id.user, a->id.call) != 0)
			log_err("registry: out of memory");
	} else {
		registry_alloc_del(d->registry, (const struct sockaddr *)&a->advertised);
	}
	events_alloc(d->events, a, created, reason);
}

static void turn_on_event(void *ctx, enum turn_event ev, const struct turn_client *c,
    const struct turn_identity *id, const struct sockaddr *peer)
{
	events_turn(((struct daemon *)ctx)->events, ev, c, id, peer);
}

/* --- hub ops ------------------------------------------------------------ */

static void hub_send(void *ctx, uint64_t session, const char *text, size_t len)
{
	ws_server_send(((struct daemon *)ctx)->ws, session, text, len);
}

static void hub_send_update(void *ctx, uint64_t session, const char *text, size_t len)
{
	ws_server_send_update(((struct daemon *)ctx)->ws, session, text, len);
}

static void hub_close(void *ctx, uint64_t session, const char *why)
{
	ws_server_close(((struct daemon *)ctx)->ws, session, why);
}

static int hub_login(void *ctx, uint64_t session, const struct sockaddr *from,
    const char *user, const char *password, const char *totp, const char *token,
    uint64_t now_s)
{
	return login_worker_submit(((struct daemon *)ctx)->logins, session, from, user,
	    password, totp, token, now_s) == 0 ? 0 : -1;
}

static void hub_login_cancel(void *ctx, uint64_t session)
{
	(void)login_worker_cancel(((struct daemon *)ctx)->logins, false, session);
}

static void login_done(void *ctx, const struct login_result *r)
{
	struct daemon *d = ctx;
	struct hub_login_result hr;

	if (r->hash) {
		admin_hash_done(d->admin, r, clock_now());
	} else if (r->admin) {
		admin_login_done(d->admin, r, clock_now());
	} else {
		memset(&hr, 0, sizeof(hr));
		hr.session = r->session;
		hr.rc = r->rc;
		hr.who = &r->who;
		hr.why = r->why;
		hr.from = (const struct sockaddr *)&r->from;
		hr.user = r->user;
		hub_login_done(d->hub, &hr, clock_now());
	}
}

static void on_logins_ready(void *arg)
{
	struct daemon *d = arg;

	login_worker_drain(d->logins, login_done, d);
}

static void audit_done(void *ctx, uint64_t request, const char *body)
{
	admin_audit_done(((struct daemon *)ctx)->admin, request, body);
}

static void on_audit_ready(void *arg)
{
	struct daemon *d = arg;

	audit_reader_drain(d->audit_reader, audit_done, d);
}

/* Minting a call's credentials is what makes the call live for the relay:
 * the hub mints only for calls it holds, and tells hub_call_ended() when
 * each ends. A call that cannot be recorded gets no credentials. */
static int hub_mint(void *ctx, const char *user, const char *call, uint64_t expires_s,
    char *username, size_t ucap, char *password, size_t pcap)
{
	struct daemon *d = ctx;

	if (turn_cred_mint(&d->auth, user, call, expires_s, username, ucap, password,
	    pcap) != TURN_AUTH_OK)
		return -1;
	if (registry_call_start(d->registry, call, expires_s, relay_io_now_ms() / 1000) != 0) {
		log_err("registry: out of memory, call %s refused", call);
		OPENSSL_cleanse(password, pcap);
		return -1;
	}
	return 0;
}

static bool hub_relay_of(void *ctx, const char *user, const char *call,
    const struct sockaddr *addr)
{
	const struct registry_alloc *owner =
	    registry_alloc_find(((struct daemon *)ctx)->registry, addr);

	return owner != NULL && strcmp(owner->user, user) == 0 && strcmp(owner->call, call) == 0;
}

/* A call is over: its credentials are revoked (the registry forgets the
 * call, so they are refused until they expire and after) and its
 * allocations go now, not when their lifetime runs out. Nothing is kept
 * of it: see turn_permit_peer() for why none is needed. */
static void hub_call_ended(void *ctx, const char *call, uint64_t expires_s)
{
	struct daemon *d = ctx;
	struct turn_stats t;
	size_t n;

	(void)expires_s;
	registry_call_end(d->registry, call);
	n = turn_server_remove_call(d->turn, call, &t);
	if (n > 0)
		log_info("turn: %zu allocations of call %s removed", n, call);
	/* What the call's allocations relayed, at hangup, for the audit. */
	audit_log(d->audit, relay_io_now_ms(), "call.traffic", json_pack(
	    "{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "call", call, "allocations", (json_int_t)n,
	    "bytes_to_peer", (json_int_t)t.bytes_to_peers, "bytes_from_peer",
	    (json_int_t)t.bytes_from_peers, "packets_to_peer", (json_int_t)t.packets_to_peers,
	    "packets_from_peer", (json_int_t)t.packets_from_peers, "packets_unclassified",
	    (json_int_t)t.packets_unclassified, "outcome", "success"));
}

static void hub_yield(void *ctx)
{
	(void)ctx;
	state_yield();
}

static void hub_event(void *ctx, const struct hub_event *e)
{
	events_hub(((struct daemon *)ctx)->events, e);
}

/* --- automatic responses to alerts ---------------------------------------- */

/* What defer_response() did. */
enum deferred { DEFER_HERE, DEFER_QUEUED, DEFER_DROPPED };

static enum deferred defer_response(struct daemon *d, enum deferred_kind kind,
    const char *name, uint32_t seconds);

struct source_sessions {
	struct daemon *d;
	uint8_t key[SOURCE_KEY_LEN];
	size_t n;
};

/* The hub lets go of the sessions closed here when its walk is over, so
 * closing is safe while it walks them. */
static void close_source_session(void *ctx, const struct hub_session_info *s)
{
	struct source_sessions *ss = ctx;

	if (s->from != NULL && source_key_matches(s->from, ss->key))
		ss->n += (size_t)hub_close_session(ss->d->hub, s->id, "source blocked");
}

/* A block also ends what the source already has open: its signaling
 * sessions (new ones are refused at the upgrade) and its allocations,
 * which would otherwise go on relaying peers' media to it until they
 * expire (only what it sends is dropped). source is an address or a
 * source's name; every address of the source is closed. */
static void close_source(struct daemon *d, const char *source)
{
	struct source_sessions ss;
	size_t allocs;

	if (defer_response(d, DEFER_CLOSE_SOURCE, source, 0) != DEFER_HERE)
		return;
	memset(&ss, 0, sizeof(ss));
	ss.d = d;
	if (source_key_parse(source, ss.key) != 0)
		return;
	allocs = d->turn != NULL ? turn_server_remove_source(d->turn, ss.key) : 0;
	if (d->hub != NULL)
		hub_each_session(d->hub, close_source_session, &ss);
	if (allocs > 0 || ss.n > 0)
		log_warn("response: closed %zu signaling session(s) and %zu allocation(s) of %s",
		    ss.n, allocs, source);
}

/* source is the alert's: an IPv4 address or an IPv6 /64 (events.c). */
static void respond_block(void *ctx, const char *source, uint32_t seconds, const char *why)
{
	struct daemon *d = ctx;
	uint64_t now = relay_io_now_ms();

	if (seconds == 0)
		seconds = 300; /* a response must do something */
	/* A block's length is a duration: monotonic (blocklist.h). */
	if (blocklist_add(d->blocks, source, clock_mono_ms() + (uint64_t)seconds * 1000, why) != 0)
		return;
	audit_log(d->audit, now, "response.block", json_pack("{s:s, s:s, s:i, s:s}", "source",
	    source, "reason", why, "block_s", (int)seconds, "outcome", "success"));
	log_warn("response: source %s blocked for %u s (%s)", source, seconds, why);
	close_source(d, source);
}

/* Off the main thread, queues the response for it (the state lock is
 * held by both sides when they touch the queue): DEFER_QUEUED, or
 * DEFER_DROPPED when the queue is full. The main thread queues it too
 * while it walks the allocations (on_tick): ending a call or closing a
 * source frees allocations, the walk's next one among them. Otherwise
 * DEFER_HERE: the caller carries it out. */
static enum deferred defer_response(struct daemon *d, enum deferred_kind kind,
    const char *name, uint32_t seconds)
{
	struct deferred_response *r;
	uint64_t one = 1;

	if (pthread_equal(pthread_self(), d->main_thread) && !d->walking_allocs)
		return DEFER_HERE;
	if (d->ndeferred == DEFERRED_MAX) {
		log_warn("response: queue full, %s %s not carried out",
		    deferred_what[kind], name);
		return DEFER_DROPPED;
	}
	r = &d->deferred[d->ndeferred++];
	r->kind = kind;
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->seconds = seconds;
	(void)write(d->deferred_fd, &one, sizeof(one));
	return DEFER_QUEUED;
}

static void respond_lock(void *ctx, const char *user, uint32_t seconds);
static void respond_end_call(void *ctx, const char *call);
static bool end_inspected_call(void *ctx, const char *call);

static void on_deferred(void *arg)
{
	struct daemon *d = arg;
	struct deferred_response todo[DEFERRED_MAX];
	size_t i, n = d->ndeferred;
	uint64_t count;

	(void)read(d->deferred_fd, &count, sizeof(count));
	memcpy(todo, d->deferred, n * sizeof(todo[0]));
	d->ndeferred = 0;
	for (i = 0; i < n; i++) {
		if (todo[i].kind == DEFER_END_CALL)
			respond_end_call(d, todo[i].name);
		else if (todo[i].kind == DEFER_END_INSPECTED)
			(void)end_inspected_call(d, todo[i].name);
		else if (todo[i].kind == DEFER_LOCK_USER)
			respond_lock(d, todo[i].name, todo[i].seconds);
		else
			close_source(d, todo[i].name);
	}
}

static void respond_lock(void *ctx, const char *user, uint32_t seconds)
{
	struct daemon *d = ctx;
	uint64_t now = relay_io_now_ms();

	if (defer_response(d, DEFER_LOCK_USER, user, seconds) != DEFER_HERE)
		return;
	if (seconds == 0)
		seconds = 300;
	if (d->users == NULL || userdb_lock(d->users, user, now / 1000 + seconds) != USERDB_OK)
		return;
	audit_log(d->audit, now, "response.lock", json_pack("{s:s, s:i, s:s}", "user", user,
	    "lock_s", (int)seconds, "outcome", "success"));
	log_warn("response: user %s locked for %u s", user, seconds);
}

static void respond_end_call(void *ctx, const char *call)
{
	struct daemon *d = ctx;

	if (defer_response(d, DEFER_END_CALL, call, 0) != DEFER_HERE)
		return;
	if (hub_end_call(d->hub, call, "alert") == 0) {
		audit_log(d->audit, relay_io_now_ms(), "response.end_call", json_pack("{s:s, s:s}",
		    "call", call, "outcome", "success"));
		log_warn("response: call %s ended", call);
	}
}

/* The relay's DTLS check failed (media_check.h): it runs on the relay
 * thread inside the allocation's own packet path, so the call, and the
 * allocation with it, goes on the main thread. */
static bool end_inspected_call(void *ctx, const char *call)
{
	struct daemon *d = ctx;
	enum deferred how = defer_response(d, DEFER_END_INSPECTED, call, 0);

	if (how != DEFER_HERE)
		return how == DEFER_QUEUED;
	if (hub_end_call(d->hub, call, "inspection") == 0)
		log_warn("inspection: call %s ended", call);
	return true;
}

static bool turn_on_dtls(void *ctx, struct turn_alloc *from, const struct dtls_peek *p)
{
	struct daemon *d = ctx;
	struct media_check_env env = { .registry = d->registry, .audit = d->audit,
	    .metrics = d->metrics, .ctx = d, .end_call = end_inspected_call };

	return media_check_dtls(&env, from, p, relay_io_now_ms());
}

static void hub_fingerprints(void *ctx, const char *call, const char *user,
    const struct sdp_fingerprint *fps, size_t n)
{
	if (registry_call_fps_set(((struct daemon *)ctx)->registry, call, user, fps, n) != 0)
		log_err("registry: out of memory");
}

static int start_events(struct daemon *d)
{
	struct events_responder r;
	struct alerts_config ac;

	ac = d->cfg->alerts;
	d->metrics = metrics_new();
	d->alerts = alerts_new(&ac, 4096);
	d->blocks = blocklist_new();
	memset(&r, 0, sizeof(r));
	r.ctx = d;
	r.block_source = respond_block;
	r.lock_user = respond_lock;
	r.end_call = respond_end_call;
	if (d->metrics == NULL || d->alerts == NULL || d->blocks == NULL)
		return -1;
	d->events = events_new(d->audit, d->metrics, d->alerts, &r);
	return d->events != NULL ? 0 : -1;
}

static bool turn_source_blocked(void *ctx, const struct sockaddr *src, uint64_t mono_ms)
{
	struct daemon *d = ctx;

	return blocklist_has_addr(d->blocks, src, mono_ms);
}

static bool ws_blocked(void *ctx, const char *ip)
{
	struct daemon *d = ctx;

	return blocklist_has(d->blocks, ip, clock_mono_ms());
}

static void sample_traffic(void *ctx, const struct turn_alloc *a)
{
	struct daemon *d = ctx;

	events_alloc_traffic(d->events, a);
}

static void count_block(void *ctx, const char *ip, uint64_t until_ms, const char *why)
{
	(void)ip;
	(void)until_ms;
	(void)why;
	(*(uint64_t *)ctx)++;
}

static char *render_metrics(void *ctx)
{
	struct daemon *d = ctx;
	struct metrics_gauges g;
	struct turn_stats ts;
	struct relay_io_stats rs;

	turn_server_stats(d->turn, &ts);
	memset(&rs, 0, sizeof(rs));
	if (d->io != NULL)
		relay_io_stats(d->io, &rs);
	memset(&g, 0, sizeof(g));
	g.sessions = hub_session_count(d->hub);
	g.calls = hub_call_count(d->hub);
	g.allocations = turn_server_alloc_count(d->turn);
	g.bytes_to_peers = ts.bytes_to_peers;
	g.bytes_from_peers = ts.bytes_from_peers;
	g.packets_to_peers = ts.packets_to_peers;
	g.packets_from_peers = ts.packets_from_peers;
	g.packets_relayed_locally = ts.packets_relayed_locally;
	g.packets_unclassified = ts.packets_unclassified;
	g.turn_conns = rs.conns;
	g.turn_conns_refused_per_source = rs.refused_per_source;
	g.turn_conns_refused_total = rs.refused_total;
	audit_losses(d->audit, &g.audit_dropped, &g.syslog_failed);
	blocklist_each(d->blocks, clock_mono_ms(), 0, count_block, &g.blocked_sources);
	return metrics_render(d->metrics, &g);
}

/* --- set-up ------------------------------------------------------------- */

/* Loads and checks a policy file; *mtime (may be NULL) is the version
 * that was read, taken from the open file so a write racing the read is
 * not mistaken for one already seen. */
static struct policy *policy_load(const char *path, struct timespec *mtime, char **src,
    char *err, size_t errlen)
{
	char *text = NULL, perr[400];
	struct policy *p = NULL;
	FILE *f = fopen(path, "rb");
	struct stat st;
	size_t n;

	if (f == NULL) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return NULL;
	}
	if (mtime != NULL && fstat(fileno(f), &st) == 0)
		*mtime = st.st_mtim;
	text = malloc(POLICY_MAX_BYTES + 1);
	if (text == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	n = fread(text, 1, POLICY_MAX_BYTES + 1, f);
	fclose(f);
	if (n > POLICY_MAX_BYTES)
		snprintf(err, errlen, "%s: larger than %d bytes", path, POLICY_MAX_BYTES);
	else if ((p = policy_parse(text, n, perr, sizeof(perr))) == NULL)
		snprintf(err, errlen, "%s: %s", path, perr);
	if (p != NULL && src != NULL) {
		text[n] = '\0';
		*src = text;
		return p;
	}
	free(text);
	return p;
}

static bool policy_mtime(const char *path, struct timespec *out)
{
	struct stat st;

	if (stat(path, &st) != 0)
		return false;
	*out = st.st_mtim;
	return true;
}

static void warn_undeclared_one(void *ctx, const char *group)
{
	log_warn("policy %s: group \"%s\" " POLICY_UNDECLARED_TEXT, (const char *)ctx, group);
}

static void warn_recording_one(void *ctx, const char *rule)
{
	log_warn("policy %s: rule \"%s\" " POLICY_RECORD_TEXT, (const char *)ctx, rule);
}

/* Accepted, but said aloud at every load: a group that rules name
 * without listing it (DESIGN.md's example needs one; a misspelt group
 * looks the same, and would silently weaken a deny rule), and a rule
 * that asks for recording, which nothing does yet. */
static void warn_policy(const struct daemon *d, const struct policy *p)
{
	policy_each_undeclared(p, warn_undeclared_one, (void *)d->cfg->policy_file);
	policy_each_recording_rule(p, warn_recording_one, (void *)d->cfg->policy_file);
}

/* Swaps in a checked policy: every live call is decided again (ending
 * those no longer allowed, reason "policy") and contacts are pushed. */
static void policy_apply(struct daemon *d, struct policy *p, char *src, const char *how)
{
	warn_policy(d, p);
	free(d->policy_src);
	d->policy_src = src;
	hub_set_policy(d->hub, p);
	policy_free(d->policy);
	d->policy = p;
	hub_push_contacts(d->hub);
	audit_log(d->audit, relay_io_now_ms(), "policy.reload", json_pack("{s:s, s:s, s:s}",
	    "outcome", "success", "reason", how, "target", d->cfg->policy_file));
	log_info("policy reloaded from %s (%s)", d->cfg->policy_file, how);
}

/* A new policy replaces the old only once it has been parsed and checked;
 * on any error the running policy stays and the error says where. */
static void policy_reload(struct daemon *d, const char *how)
{
	struct policy *p;
	char err[512], *src = NULL;
	unsigned held;

	if (d->cfg->policy_file[0] == '\0')
		return;
	/* Reading and checking up to a megabyte of rules touches nothing
	 * the relay thread does: media goes on meanwhile. */
	held = state_suspend();
	p = policy_load(d->cfg->policy_file, &d->policy_mtime, &src, err, sizeof(err));
	state_resume(held);
	if (p == NULL) {
		log_err("policy reload refused, keeping the running policy: %s", err);
		audit_log(d->audit, relay_io_now_ms(), "policy.reload", json_pack("{s:s, s:s, s:s}",
		    "outcome", "failed", "reason", err, "target", d->cfg->policy_file));
		return;
	}
	policy_apply(d, p, src, how);
}

static void on_hup(void *arg)
{
	policy_reload(arg, "SIGHUP");
}

static void on_usr1(void *arg)
{
	audit_reopen(((struct daemon *)arg)->audit);
	log_info("audit: reopening the audit file (SIGUSR1)");
}

/* A change of the policy file is picked up within a second. */
static void policy_watch(struct daemon *d)
{
	struct timespec now;

	if (d->cfg->policy_file[0] == '\0' || !policy_mtime(d->cfg->policy_file, &now))
		return;
	if (now.tv_sec != d->policy_mtime.tv_sec || now.tv_nsec != d->policy_mtime.tv_nsec)
		policy_reload(d, "file changed");
}

/* The admin API's PUT /api/policy: checked, written atomically, applied. */
static int admin_policy_replace(void *ctx, const char *text, size_t len, char *err,
    size_t errlen)
{
	struct daemon *d = ctx;
	struct policy *p;
	unsigned held;
	int written;

	if (len > POLICY_MAX_BYTES) {
		snprintf(err, errlen, "larger than %d bytes", POLICY_MAX_BYTES);
		return -1;
	}
	/* Checking the rules and writing them out (with an fsync) touch
	 * nothing the relay thread does: media goes on meanwhile. */
	held = state_suspend();
	p = policy_parse(text, len, err, errlen);
	written = p != NULL ? file_write_atomic(d->cfg->policy_file, text, len, 0600) : 0;
	if (written != 0)
		snprintf(err, errlen, "%s: cannot write: %s", d->cfg->policy_file, strerror(errno));
	state_resume(held);
	if (p == NULL)
		return -1;
	if (written != 0) {
		policy_free(p);
		return -2;
	}
	/* What we just wrote is what runs: the file watch need not reload it. */
	(void)policy_mtime(d->cfg->policy_file, &d->policy_mtime);
	policy_apply(d, p, strndup(text, len), "admin API");
	return 0;
}

static void on_tick(void *arg)
{
	struct daemon *d = arg;

	hub_tick(d->hub, clock_now());
	policy_watch(d);
	if (d->user_watch != NULL)
		user_watch_poll(d->user_watch, relay_io_now_ms());
	d->walking_allocs = true;
	turn_server_each_alloc(d->turn, sample_traffic, d);
	d->walking_allocs = false;
}

static void admin_login_failed(void *ctx, const char *user, const char *source_ip)
{
	events_admin_login_failed(((struct daemon *)ctx)->events, user, source_ip);
}

static void admin_reply(void *ctx, uint64_t request, int status, const char *body,
    size_t len)
{
	admin_http_reply(((struct daemon *)ctx)->admin_http, request, status, body, len);
}

static void admin_users_changed(void *ctx)
{
	struct daemon *d = ctx;

	if (d->user_watch != NULL)
		user_watch_poll(d->user_watch, relay_io_now_ms());
}

static char *admin_policy_text(void *ctx)
{
	struct daemon *d = ctx;

	return d->policy_src != NULL ? strdup(d->policy_src) : NULL;
}

static size_t admin_alloc_count(void *ctx)
{
	return turn_server_alloc_count(((struct daemon *)ctx)->turn);
}

static bool needs_tls(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->turn.nlisten; i++)
		if (cfg->turn.listen[i].transport == CONFIG_TLS)
			return true;
	return false;
}


/* Every address the gateway itself answers on is refused as a peer, so
 * the relay cannot reach services that share its IP. */
static int add_own_addresses(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	size_t i;
	int rc = 0;

	for (i = 0; i < cfg->turn.nlisten; i++)
		rc |= peer_policy_add_own(&d->peers,
		    (const struct sockaddr *)&cfg->turn.listen[i].addr);
	rc |= peer_policy_add_own(&d->peers, (const struct sockaddr *)&cfg->turn.relay_ip);
	if (cfg->turn.has_external_ip)
		rc |= peer_policy_add_own(&d->peers,
		    (const struct sockaddr *)&cfg->turn.external_ip);
	rc |= peer_policy_add_own(&d->peers, (const struct sockaddr *)&cfg->signaling.listen);
	rc |= peer_policy_add_own(&d->peers, (const struct sockaddr *)&cfg->admin_listen);
	return rc;
}

static void turn_config_from(const struct config *cfg, const struct peer_policy *peers,
    const struct turn_auth *auth, struct turn_server_config *tc)
{
	const struct config_turn_limits *lim = &cfg->turn.limits;

	memset(tc, 0, sizeof(*tc));
	snprintf(tc->realm, sizeof(tc->realm), "%s", cfg->realm);
	tc->auth = *auth;
	tc->peers = peers;
	tc->relay_family = cfg->turn.relay_ip.ss_family;
	tc->has_external = cfg->turn.has_external_ip;
	tc->external = cfg->turn.external_ip;
	tc->default_lifetime_s = cfg->turn.default_lifetime_s;
	tc->max_lifetime_s = cfg->turn.max_lifetime_s;
	tc->allocations_total = lim->allocations_total;
	tc->allocations_per_user = lim->allocations_per_user;
	tc->permissions_per_allocation = lim->permissions_per_allocation;
	tc->channels_per_allocation = lim->channels_per_allocation;
	tc->bytes_per_s_per_allocation = lim->bytes_per_s_per_allocation;
	tc->auth_failures_per_source = lim->auth_failures_per_source;
	tc->media_only = cfg->turn.media_only;
}

/* The TURN URLs handed to call participants: UDP first (some clients use
 * only the first), then TCP and TLS, on the address clients reach. */
static void ice_urls(const struct config *cfg, struct hub_ice_servers *ice)
{
	char host[256], ip[INET6_ADDRSTRLEN];
	static const struct {
		enum config_transport t;
		const char *scheme, *transport;
	} order[] = {
		{ CONFIG_UDP, "turn", "udp" },
		{ CONFIG_TCP, "turn", "tcp" },
		{ CONFIG_TLS, "turns", "tcp" },
	};
	const struct sockaddr_storage *a;
	size_t i, j;
	uint16_t port;

	ice->nurls = 0;
	for (j = 0; j < sizeof(order) / sizeof(order[0]); j++) {
		for (i = 0; i < cfg->turn.nlisten && ice->nurls < HUB_MAX_ICE_URLS; i++) {
			if (cfg->turn.listen[i].transport != order[j].t)
				continue;
			a = &cfg->turn.listen[i].addr;
			port = ntohs(a->ss_family == AF_INET6 ?
			    ((const struct sockaddr_in6 *)a)->sin6_port :
			    ((const struct sockaddr_in *)a)->sin_port);
			if (cfg->turn.has_external_ip)
				a = &cfg->turn.external_ip;
			if (cfg->turn.public_host[0] != '\0') {
				snprintf(host, sizeof(host), "%.*s", (int)sizeof(host) - 1,
				    cfg->turn.public_host);
			} else if (a->ss_family == AF_INET6) {
				inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)a)->sin6_addr,
				    ip, sizeof(ip));
				snprintf(host, sizeof(host), "[%s]", ip);
			} else {
				inet_ntop(AF_INET, &((const struct sockaddr_in *)a)->sin_addr,
				    host, sizeof(host));
			}
			snprintf(ice->urls[ice->nurls++], sizeof(ice->urls[0]),
			    "%s:%s:%u?transport=%s", order[j].scheme, host, port,
			    order[j].transport);
		}
	}
}

static bool has_local_backend(const struct config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->identity.nbackends; i++)
		if (cfg->identity.backends[i].type == CONFIG_BACKEND_LOCAL)
			return true;
	return false;
}

/* DESIGN.md: the top-level pair (or the component's own, t) serves every
 * TLS listener, and plain listeners are for loopback only. So a listener
 * with a certificate is served over TLS wherever it is; on loopback it
 * also keeps serving plain HTTP/WS on the same port, so that local
 * clients and scripts that use http:// and ws:// keep working. With no
 * certificate, a loopback listener is plain. Off loopback,
 * config_validate() made sure a certificate is configured; the
 * self-signed fallback of tls_server_ctx_new() is kept as a last guard. */
static int listener_tls_pick(const struct config *cfg, const struct sockaddr_storage *listen,
    const struct config_tls *t, struct listener_tls *out, char *err, size_t errlen)
{
	bool loopback = config_addr_is_loopback(listen);
	SSL_CTX *probe;
	int nc, nk;

	memset(out, 0, sizeof(*out));
	if (loopback && t->cert[0] == '\0')
		return 0;
	/* Loaded once here, so that a bad certificate or key is reported
	 * with OpenSSL's reason rather than as a vhost that would not start. */
	probe = tls_server_ctx_new(t, cfg->state_dir, err, errlen);
	if (probe == NULL)
		return -1;
	SSL_CTX_free(probe);
	if (t->cert[0] != '\0') {
		nc = snprintf(out->cert, sizeof(out->cert), "%s", t->cert);
		nk = snprintf(out->key, sizeof(out->key), "%s", t->key);
	} else {
		nc = snprintf(out->cert, sizeof(out->cert), "%s/tls-cert.pem", cfg->state_dir);
		nk = snprintf(out->key, sizeof(out->key), "%s/tls-key.pem", cfg->state_dir);
	}
	if (nc < 0 || (size_t)nc >= sizeof(out->cert) || nk < 0 || (size_t)nk >= sizeof(out->key)) {
		snprintf(err, errlen, "the certificate or key path is too long");
		return -1;
	}
	out->tls = true;
	out->also_plain = loopback;
	return 0;
}

/* The warning for each plain way into a listener (DESIGN.md: plain
 * listeners on loopback only, with a warning). plain and secure name
 * what it speaks without and with TLS. */
static void listener_tls_warn(const char *what, const char *name, const char *plain,
    const char *secure, const struct listener_tls *l)
{
	if (!l->tls)
		log_warn("%s: %s is plain %s (no certificate configured); it is allowed "
		    "on loopback only, set tls.cert and tls.key for anything else", what, name,
		    plain);
	else if (l->also_plain)
		log_warn("%s: %s serves %s and, on loopback only, plain %s too", what, name,
		    secure, plain);
}

static int start_signaling(struct daemon *d, char *err, size_t errlen)
{
	const struct config *cfg = d->cfg;
	struct ws_server_config wc;
	struct hub_config hc;
	struct hub_ops ho;
	size_t i;

	memset(&wc, 0, sizeof(wc));
	wc.listen = cfg->signaling.listen;
	wc.conns_per_source = cfg->signaling.connections_per_source;
	wc.blocked = ws_blocked;
	wc.blocked_ctx = d;
	for (i = 0; i < cfg->signaling.norigins && i < WS_MAX_ORIGINS; i++)
		wc.origins[wc.norigins++] = cfg->signaling.allowed_origins[i];
	if (listener_tls_pick(cfg, &cfg->signaling.listen,
	    cfg->signaling.has_tls ? &cfg->signaling.tls : &cfg->tls, &d->sig_tls,
	    err, errlen) != 0)
		return -1;
	if (d->sig_tls.tls) {
		wc.cert_file = d->sig_tls.cert;
		wc.key_file = d->sig_tls.key;
		wc.also_plain = d->sig_tls.also_plain;
	}
	d->ws = ws_server_new(loop_lws(d->loop), &wc, err, errlen);
	if (d->ws == NULL)
		return -1;
	memset(&hc, 0, sizeof(hc));
	hc.identity = d->identity;
	hc.users = d->users;
	hc.policy = d->policy;
	hc.calls_per_min = cfg->signaling.calls_per_minute;
	ice_urls(cfg, &hc.ice);
	memset(&ho, 0, sizeof(ho));
	ho.ctx = d;
	ho.send = hub_send;
	ho.send_update = hub_send_update;
	ho.login = hub_login;
	ho.login_cancel = hub_login_cancel;
	ho.close = hub_close;
	ho.mint = hub_mint;
	ho.relay_of = hub_relay_of;
	ho.call_ended = hub_call_ended;
	ho.event = hub_event;
	ho.fingerprints = hub_fingerprints;
	ho.yield = hub_yield;
	d->hub = hub_new(&hc, &ho);
	if (d->hub == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ws_server_set_hub(d->ws, d->hub);
	return 0;
}

/* Its address and localhost under one scheme, if both fit. */
static void admin_origins_add(struct admin_env *env, const struct sockaddr_storage *listen,
    const char *scheme)
{
	if (env->norigins + 2 > ADMIN_MAX_ORIGINS)
		return;
	config_own_origins(listen, scheme, env->origins + env->norigins);
	env->norigins += 2;
}

static int start_admin(struct daemon *d, char *err, size_t errlen)
{
	const struct config *cfg = d->cfg;
	struct admin_env env;
	const struct listener_tls *l = &d->admin_tls;

	if (listener_tls_pick(cfg, &cfg->admin_listen,
	    cfg->admin_has_tls ? &cfg->admin_tls : &cfg->tls, &d->admin_tls, err, errlen) != 0)
		return -1;
	d->admin_http = admin_http_new(loop_lws(d->loop), &cfg->admin_listen,
	    l->tls ? l->cert : NULL, l->tls ? l->key : NULL, l->also_plain, err, errlen);
	if (d->admin_http == NULL)
		return -1;
	memset(&env, 0, sizeof(env));
	env.ctx = d;
	env.hub = d->hub;
	env.users = d->users;
	env.audit = d->audit;
	env.logins = d->logins;
	env.audit_reader = d->audit_reader;
	env.policy_path = cfg->policy_file;
	env.policy_replace = admin_policy_replace;
	env.alloc_count = admin_alloc_count;
	env.policy_text = admin_policy_text;
	env.metrics = render_metrics;
	env.blocks = d->blocks;
	env.reply = admin_reply;
	env.login_failed = admin_login_failed;
	env.users_changed = admin_users_changed;
	env.started_ms = clock_mono_ms();
	env.token_ttl_s = cfg->admin_token_ttl_s;
	/* Browser requests only from the API's own origins: a page is on
	 * https or http as the listener serves it (both on a loopback
	 * listener with a certificate). */
	if (l->tls)
		admin_origins_add(&env, &cfg->admin_listen, "https");
	if (!l->tls || l->also_plain)
		admin_origins_add(&env, &cfg->admin_listen, "http");
	d->admin = admin_new(&env);
	if (d->admin == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	admin_http_set_admin(d->admin_http, d->admin);
	return 0;
}

static int start_turn(struct daemon *d, const uint8_t *secret, char *err, size_t errlen)
{
	const struct config *cfg = d->cfg;
	struct turn_server_config tc;
	struct turn_server_ops ops;
	SSL_CTX *tls = NULL;
	char name[INET6_ADDRSTRLEN + 8];
	size_t i;

	if (needs_tls(cfg)) {
		tls = tls_server_ctx_new(cfg->turn.has_tls ? &cfg->turn.tls : &cfg->tls,
		    cfg->state_dir, err, errlen);
		if (tls == NULL)
			return -1;
	}
	d->peers = cfg->turn.peers;
	if (add_own_addresses(d) != 0) {
		snprintf(err, errlen, "too many gateway addresses for the peer policy");
		SSL_CTX_free(tls);
		return -1;
	}
	d->io = relay_io_new(&cfg->turn, tls, err, errlen);
	SSL_CTX_free(tls); /* relay_io holds its own reference */
	if (d->io == NULL)
		return -1;
	memcpy(d->auth.secret, secret, TURN_SECRET_LEN);
	d->auth.nonce_lifetime_s = cfg->turn.nonce_lifetime_s;
	d->auth.static_users = cfg->turn.static_users;
	d->auth.nstatic = cfg->turn.nstatic_users;
	turn_config_from(cfg, &d->peers, &d->auth, &tc);
	memset(&ops, 0, sizeof(ops));
	ops.ctx = d;
	ops.send_client = turn_send_client;
	ops.relay_open = turn_relay_open;
	ops.relay_close = turn_relay_close;
	ops.relay_unreserve = turn_relay_unreserve;
	ops.relay_send = turn_relay_send;
	ops.permit_peer = turn_permit_peer;
	ops.credential_ok = turn_credential_ok;
	ops.source_blocked = turn_source_blocked;
	ops.on_event = turn_on_event;
	ops.on_alloc = turn_on_alloc;
	ops.on_dtls = turn_on_dtls;
	d->turn = turn_server_new(&tc, &ops);
	OPENSSL_cleanse(&tc.auth, sizeof(tc.auth));
	if (d->turn == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	relay_io_set_server(d->io, d->turn);
	for (i = 0; i < cfg->turn.nlisten; i++) {
		config_format_addr((const struct sockaddr *)&cfg->turn.listen[i].addr,
		    name, sizeof(name));
		log_info("turn: listening on %s/%s", name,
		    cfg->turn.listen[i].transport == CONFIG_UDP ? "udp" :
		    cfg->turn.listen[i].transport == CONFIG_TCP ? "tcp" : "tls");
		/* config_validate() refuses plain TCP off loopback. */
		if (cfg->turn.listen[i].transport == CONFIG_TCP)
			log_warn("turn: %s/tcp is plain TCP; it is allowed on loopback "
			    "only, use \"tls\" for anything else", name);
	}
	return 0;
}

/* Every session and relay is a descriptor: take what the system allows
 * rather than the 1024 a shell usually starts with. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static struct audit *open_audit(const struct config *cfg, char *err, size_t errlen)
{
	char path[PATH_MAX + 32];

	if (cfg->log.audit_file[0] != '\0')
		snprintf(path, sizeof(path), "%s", cfg->log.audit_file);
	else
		snprintf(path, sizeof(path), "%s/audit.jsonl", cfg->state_dir);
	return audit_open(path, &cfg->log, cfg->alerts.webhook, err, errlen);
}

/* The audit trail records when it starts and stops being kept, so that
 * a SIEM can tell a quiet gateway from one that is not running, and
 * which secrets key users.db is sealed with, so that a rekey shows. */
static void audit_lifecycle(struct daemon *d, const char *event, const char *outcome,
    const char *reason, bool last)
{
	json_t *f = json_pack("{s:s, s:s, s:I}", "outcome", outcome, "version", GH_VERSION,
	    "pid", (json_int_t)getpid());

	if (f != NULL && reason != NULL)
		json_object_set_new(f, "reason", json_string(reason));
	if (f != NULL && d->secrets_key_id[0] != '\0')
		json_object_set_new(f, "secrets_key_id", json_string(d->secrets_key_id));
	(last ? audit_log_last : audit_log)(d->audit, clock_wall_ms(), event, f);
}

static void shutdown_all(struct daemon *d)
{
	/* Destroying the loop closes every WebSocket session through the
	 * hub (ending calls, which removes allocations), so it goes first;
	 * the TURN server then closes its relays through the I/O layer. The
	 * relay thread stops before either. */
	relay_thread_stop(d->relay);
	/* A login being checked is finished and accounted for like any
	 * other (answered, audited); what is still queued never ran and is
	 * dropped with the sessions. */
	if (d->logins != NULL) {
		login_worker_stop(d->logins);
		if (d->hub != NULL && d->admin != NULL)
			login_worker_drain(d->logins, login_done, d);
	}
	loop_free(d->loop);
	login_worker_free(d->logins);
	audit_reader_free(d->audit_reader);
	admin_free(d->admin);
	admin_http_free(d->admin_http);
	user_watch_free(d->user_watch);
	hub_free(d->hub);
	ws_server_free(d->ws);
	turn_server_free(d->turn);
	if (d->io != NULL) {
		relay_io_set_server(d->io, NULL);
		relay_io_free(d->io);
	}
	policy_free(d->policy);
	free(d->policy_src);
	identity_free(d->identity);
	userdb_close(d->users);
	registry_free(d->registry);
	events_free(d->events);
	alerts_free(d->alerts);
	metrics_free(d->metrics);
	blocklist_free(d->blocks);
	/* Last, after the sessions' and calls' own closing events. */
	if (d->serving)
		audit_lifecycle(d, "daemon.stop", d->stop_reason != NULL ? "failed" : "success",
		    d->stop_reason != NULL ? d->stop_reason : "signal", true);
	audit_close(d->audit);
	if (d->deferred_fd >= 0)
		close(d->deferred_fd);
	OPENSSL_cleanse(&d->auth, sizeof(d->auth));
}

/* --- files the configuration names ---------------------------------------- */

/* Opened, not read: the loaders below say what is wrong with the
 * content, this says that the file is not there or not ours to read.
 * The uid is in the message because check-config may be run by another
 * user than the one that starts the daemon. */
static int check_open(const char *key, const char *path, char *err, size_t errlen)
{
	struct stat st;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM))
		return errmsg_fail(err, errlen, "%s: %s: cannot be read as uid %ju: %s", key,
		    path, (uintmax_t)geteuid(), strerror(errno));
	if (fd < 0)
		return errmsg_fail(err, errlen, "%s: %s: cannot open: %s", key, path,
		    strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		rc = errmsg_fail(err, errlen, "%s: %s: not a regular file", key, path);
	close(fd);
	return rc;
}

/* A configured pair, loaded as every TLS listener loads it (and matched
 * key to certificate). An empty pair is the self-signed one that the
 * start makes in state_dir: nothing the operator named, nothing to
 * check, and tls_server_ctx_new() is not called for it since it would
 * make the pair. */
static int check_tls(const char *name, const struct config_tls *t, const char *state_dir,
    char *err, size_t errlen)
{
	char cert_key[48], key_key[48], msg[1024];
	const char *which = name;
	SSL_CTX *ctx;
	size_t nk = strlen(t->key), nc = strlen(t->cert);

	if (t->cert[0] == '\0')
		return 0;
	snprintf(cert_key, sizeof(cert_key), "%s.cert", name);
	snprintf(key_key, sizeof(key_key), "%s.key", name);
	if (check_open(cert_key, t->cert, err, errlen) != 0 ||
	    check_open(key_key, t->key, err, errlen) != 0)
		return -1;
	msg[0] = '\0';
	if ((ctx = tls_server_ctx_new(t, state_dir, msg, sizeof(msg))) != NULL) {
		SSL_CTX_free(ctx);
		return 0;
	}
	/* Its message starts with the file at fault (tls.h): the key for a
	 * key that does not load or does not match, the certificate for a
	 * chain that does not load. */
	if (strncmp(msg, t->key, nk) == 0 && msg[nk] == ':')
		which = key_key;
	else if (strncmp(msg, t->cert, nc) == 0 && msg[nc] == ':')
		which = cert_key;
	return errmsg_fail(err, errlen, "%s: %s", which, msg);
}

int daemon_check_files(const struct config *cfg, char *err, size_t errlen)
{
	const struct config_backend *b;
	struct jwt_verifier *v;
	struct syslog_out *so;
	struct policy *p;
	char key[64], msg[1024];
	size_t i;

	if (check_tls("tls", &cfg->tls, cfg->state_dir, err, errlen) != 0 ||
	    (cfg->signaling.has_tls && check_tls("signaling.tls", &cfg->signaling.tls,
	    cfg->state_dir, err, errlen) != 0) ||
	    (cfg->turn.has_tls && check_tls("turn.tls", &cfg->turn.tls, cfg->state_dir,
	    err, errlen) != 0) ||
	    (cfg->admin_has_tls && check_tls("admin.tls", &cfg->admin_tls, cfg->state_dir,
	    err, errlen) != 0))
		return -1;
	/* A key file that is named must be there: made only in state_dir. */
	if (cfg->identity.secrets_key_file[0] != '\0') {
		uint8_t users_key[USERDB_KEY_LEN];
		int rc = secrets_key_load(cfg, users_key, sizeof(users_key), err, errlen);

		OPENSSL_cleanse(users_key, sizeof(users_key));
		if (rc != 0)
			return -1;
	}
	for (i = 0; i < cfg->identity.nbackends && i < CONFIG_MAX_BACKENDS; i++) {
		b = &cfg->identity.backends[i];
		if (b->type != CONFIG_BACKEND_JWT)
			continue;
		snprintf(key, sizeof(key), "identity.backends[%zu].jwks_file", i);
		if (check_open(key, b->jwks_file, err, errlen) != 0)
			return -1;
		msg[0] = '\0';
		if ((v = jwt_verifier_new(b, msg, sizeof(msg))) == NULL)
			return errmsg_fail(err, errlen, "%s: %s", key, msg);
		jwt_verifier_free(v);
	}
	if (cfg->policy_file[0] != '\0') {
		if (check_open("policy.file", cfg->policy_file, err, errlen) != 0)
			return -1;
		if ((p = policy_load(cfg->policy_file, NULL, NULL, msg, sizeof(msg))) == NULL)
			return errmsg_fail(err, errlen, "policy.file: %s", msg);
		policy_free(p);
	}
	/* Only a CA file that is named: the system store is not the
	 * operator's input. syslog_out_new() loads it and connects later. */
	if (cfg->log.has_syslog && cfg->log.syslog_transport == CONFIG_SYSLOG_TLS &&
	    cfg->log.syslog_ca_file[0] != '\0') {
		if (check_open("log.syslog.ca_file", cfg->log.syslog_ca_file, err, errlen) != 0)
			return -1;
		if ((so = syslog_out_new(&cfg->log, msg, sizeof(msg))) == NULL)
			return errmsg_fail(err, errlen, "%s", msg);
		syslog_out_free(so);
	}
	return 0;
}

int daemon_run(const struct config *cfg)
{
	struct daemon d;
	uint8_t secret[TURN_SECRET_LEN], users_key[USERDB_KEY_LEN];
	char err[PATH_MAX + 512], name[INET6_ADDRSTRLEN + 8];
	bool local = has_local_backend(cfg);
	int rc = 1;

	memset(&d, 0, sizeof(d));
	d.cfg = cfg;
	d.main_thread = pthread_self();
	d.deferred_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	log_set_level(cfg->log.level);
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	/* Parsed, so that files written for scale-out load, but not built
	 * (DESIGN.md, "Coming next"): an operator who believes the nodes
	 * share revocations must hear that they do not. */
	if (cfg->registry.type == CONFIG_REGISTRY_REDIS)
		log_warn("%s", CONFIG_REDIS_UNBUILT_TEXT);

	if (privdrop_check_files(cfg, err, sizeof(err)) != 0 ||
	    state_dir_ensure(cfg->state_dir, err, sizeof(err)) != 0 ||
	    secret_load_or_create(cfg->state_dir, secret, sizeof(secret), err,
	    sizeof(err)) != 0 ||
	    (local && secrets_key_load(cfg, users_key, sizeof(users_key), err, sizeof(err)) != 0))
		goto fail;
	d.registry = registry_memory_new();
	d.loop = loop_new(err, sizeof(err));
	if (d.registry == NULL || d.loop == NULL) {
		if (d.registry == NULL)
			snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if ((d.audit = open_audit(cfg, err, sizeof(err))) == NULL ||
	    (d.audit_reader = audit_reader_new(d.audit, err, sizeof(err))) == NULL)
		goto fail;
	if (start_events(&d) != 0) {
		snprintf(err, sizeof(err), "out of memory");
		goto fail;
	}
	if (local && (d.users = userdb_open(cfg->state_dir, users_key, err, sizeof(err))) == NULL) {
		secrets_key_hint(cfg, err, sizeof(err));
		goto fail;
	}
	/* Its writes (the admin API's, alert responses' locks) end in an
	 * fsync: media goes on meanwhile. */
	if (d.users != NULL)
		userdb_set_write_hooks(d.users, state_suspend, state_resume);
	if ((d.identity = identity_new(&cfg->identity, d.users, err, sizeof(err))) == NULL ||
	    (d.logins = login_worker_new(cfg, users_key, err, sizeof(err))) == NULL)
		goto fail;
	/* Both databases have their subkey now. */
	OPENSSL_cleanse(users_key, sizeof(users_key));
	if (cfg->policy_file[0] != '\0') {
		if ((d.policy = policy_load(cfg->policy_file, &d.policy_mtime, &d.policy_src,
		    err, sizeof(err))) == NULL)
			goto fail;
		warn_policy(&d, d.policy);
	} else {
		log_warn("no policy file configured: every call is denied");
	}
	if (start_turn(&d, secret, err, sizeof(err)) != 0 ||
	    start_signaling(&d, err, sizeof(err)) != 0 ||
	    (d.users != NULL && (d.user_watch = user_watch_new(d.users, d.hub, d.audit,
	    err, sizeof(err))) == NULL) ||
	    start_admin(&d, err, sizeof(err)) != 0)
		goto fail;
	if (d.deferred_fd < 0 ||
	    loop_add_fd(d.loop, d.deferred_fd, on_deferred, &d) != 0 ||
	    loop_add_fd(d.loop, login_worker_fd(d.logins), on_logins_ready, &d) != 0 ||
	    loop_add_fd(d.loop, audit_reader_fd(d.audit_reader), on_audit_ready, &d) != 0 ||
	    loop_add_timer(d.loop, 1000, on_tick, &d) != 0) {
		snprintf(err, sizeof(err), "cannot set up the event loop");
		goto fail;
	}
	loop_on_hup(d.loop, on_hup, &d);
	loop_on_usr1(d.loop, on_usr1, &d);
	/* Every listener is bound and every file open: no root from here on. */
	if (privdrop_apply(cfg, err, sizeof(err)) != 0)
		goto fail;
	/* Before the relay thread, which may audit its first packets at once. */
	if (d.users != NULL)
		userdb_key_id(d.users, d.secrets_key_id);
	audit_lifecycle(&d, "daemon.start", "success", NULL, false);
	d.serving = true;
	/* After the drop, so the thread starts with no privilege at all. */
	if ((d.relay = relay_thread_start(d.io, err, sizeof(err))) == NULL) {
		d.stop_reason = "relay thread did not start";
		goto fail;
	}
	config_format_addr((const struct sockaddr *)&cfg->signaling.listen, name, sizeof(name));
	log_info("signaling: listening on %s (demo page at %s://%s/)", name,
	    d.sig_tls.tls ? "https" : "http", name);
	listener_tls_warn("signaling", name, "HTTP/WS", "HTTPS/WSS", &d.sig_tls);
	config_format_addr((const struct sockaddr *)&cfg->admin_listen, name, sizeof(name));
	log_info("admin: API on %s://%s/api/", d.admin_tls.tls ? "https" : "http", name);
	listener_tls_warn("admin", name, "HTTP", "HTTPS", &d.admin_tls);
	log_info("turn: relay %s ports %u-%u, realm \"%s\"",
	    config_format_addr((const struct sockaddr *)&cfg->turn.relay_ip, name, sizeof(name)),
	    cfg->turn.port_min, cfg->turn.port_max, cfg->realm);
	/* The challenge (no reason phrase, 45-byte nonce, the algorithms)
	 * fits four times the smallest Allocate only with a realm of at most
	 * 16 bytes; beyond, such clients get no answer (docs/turn.md). */
	if (strlen(cfg->realm) > 16)
		log_warn("realm \"%s\" is longer than 16 bytes: clients whose first "
		    "Allocate is minimal (28 bytes) will not be answered", cfg->realm);
	log_info("gatehouse %s ready", GH_VERSION);
	rc = loop_run(d.loop) == 0 ? 0 : 1;
	if (rc != 0)
		d.stop_reason = "event loop error";
	goto out;
fail:
	log_err("%s", err);
out:
	shutdown_all(&d);
	OPENSSL_cleanse(secret, sizeof(secret));
	OPENSSL_cleanse(users_key, sizeof(users_key));
	return rc;
}
