/* Events to logs and the audit trail (see events.h). Every value that
 * came from outside goes into the audit record as a JSON string (escaped
 * by jansson) and into the log through log_escape(). */
#include "common/clock.h"
#include "common/source_key.h"
#include "gateway/events.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "gateway/alerts.h"
#include "gateway/audit.h"
#include "gateway/config.h"
#include "gateway/log.h"
#include "gateway/metrics.h"
#include "policy/policy.h"

#define MAX_ALERTS_PER_INPUT 4

struct events {
	struct audit *audit;
	struct metrics *metrics;
	struct alerts *alerts;
	struct events_responder resp;
};

struct events *events_new(struct audit *audit, struct metrics *metrics,
    struct alerts *alerts, const struct events_responder *responder)
{
	struct events *ev = calloc(1, sizeof(*ev));

	if (ev == NULL)
		return NULL;
	ev->audit = audit;
	ev->metrics = metrics;
	ev->alerts = alerts;
	if (responder != NULL)
		ev->resp = *responder;
	return ev;
}


void events_free(struct events *ev)
{
	free(ev);
}

/* Adds a string field when present. */
static void put(json_t *o, const char *k, const char *v)
{
	if (v != NULL && v[0] != '\0')
		json_object_set_new(o, k, json_string(v));
}

static void put_addr(json_t *o, const char *k, const struct sockaddr *sa)
{
	char buf[INET6_ADDRSTRLEN + 8];

	if (sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6))
		put(o, k, config_format_addr(sa, buf, sizeof(buf)));
}

static json_t *media_json(unsigned media)
{
	json_t *a = json_array();
	unsigned bit;

	for (bit = 1; bit <= POLICY_DATA; bit <<= 1)
		if (media & bit)
			json_array_append_new(a, json_string(policy_media_name(bit)));
	return a;
}

static const char *esc(char *buf, size_t cap, const char *s)
{
	return log_escape(buf, cap, (const uint8_t *)(s != NULL ? s : ""),
	    s != NULL ? strlen(s) : 0);
}

/* Reasons a login failed that mean the second factor, and the lockout. */
static bool mfa_reason(const char *why)
{
	return why != NULL && (strstr(why, "code") != NULL || strstr(why, "MFA") != NULL ||
	    strstr(why, "TOTP") != NULL);
}

/* What an alert lacks for its response to act (configuration.md,
 * "Responses"), or NULL: an alert on a static user's allocation has no
 * call to end, one on a signaling flood before login no user to lock. */
static const char *response_lacks(const struct alert *a)
{
	switch (a->response) {
	case ALERT_RESPONSE_BLOCK_SOURCE: return a->source[0] == '\0' ? "source" : NULL;
	case ALERT_RESPONSE_LOCK_USER: return a->user[0] == '\0' ? "user" : NULL;
	case ALERT_RESPONSE_END_CALL: return a->call[0] == '\0' ? "call" : NULL;
	default: return NULL;
	}
}

/* An alert: audited, logged, counted, sent to the webhook, and its
 * response carried out (and audited, so an operator can undo it). */
static void raise_alert(struct events *ev, const struct alert *a, uint64_t now)
{
	const char *kind = alert_kind_name(a->kind), *resp = alert_response_name(a->response);
	json_t *f = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "kind", kind, "key", a->key,
	    "response", resp, "value", (json_int_t)a->value, "threshold",
	    (json_int_t)a->threshold, "outcome", "alert");
	const char *lacks = response_lacks(a);
	char key[300], *text;

	put(f, "user", a->user);
	put(f, "source", a->source);
	put(f, "call", a->call);
	if (a->response == ALERT_RESPONSE_BLOCK_SOURCE)
		json_object_set_new(f, "block_s", json_integer(a->block_s));
	metrics_alert(ev->metrics, a->kind);
	/* The log says when the response cannot act, rather than name one
	 * that nothing follows. */
	log_warn("alert: %s on %s (%llu, threshold %u), response %s%s%s%s", kind,
	    esc(key, sizeof(key), a->key), (unsigned long long)a->value, a->threshold, resp,
	    lacks != NULL ? " (not applied: the alert names no " : "", lacks != NULL ? lacks : "",
	    lacks != NULL ? ")" : "");
	text = json_dumps(f, JSON_COMPACT);
	if (text != NULL && ev->resp.notify != NULL)
		ev->resp.notify(ev->resp.ctx, text, strlen(text));
	free(text);
	audit_log(ev->audit, now, "alert", f);
	switch (a->response) {
	case ALERT_RESPONSE_BLOCK_SOURCE:
		if (a->source[0] != '\0' && ev->resp.block_source != NULL)
			ev->resp.block_source(ev->resp.ctx, a->source, a->block_s, kind);
		break;
	case ALERT_RESPONSE_LOCK_USER:
		if (a->user[0] != '\0' && ev->resp.lock_user != NULL)
			ev->resp.lock_user(ev->resp.ctx, a->user, a->block_s);
		break;
	case ALERT_RESPONSE_END_CALL:
		if (a->call[0] != '\0' && ev->resp.end_call != NULL)
			ev->resp.end_call(ev->resp.ctx, a->call);
		break;
	default:
		break;
	}
}

/* The detectors' windows run on the monotonic clock, so that a step of
 * the system clock neither forgets what a window holds (forwards) nor
 * keeps it for the length of the step (backwards: alerts_feed() holds
 * each key's time at its latest, and a window would not slide until the
 * wall clock caught up); an alert is stamped with the wall clock, as
 * every audit record is. */
static void feed(struct events *ev, const struct alert_input *in)
{
	struct alert out[MAX_ALERTS_PER_INPUT];
	size_t n, i;

	if (ev->alerts == NULL)
		return;
	n = alerts_feed(ev->alerts, in, clock_mono_ms(), out, MAX_ALERTS_PER_INPUT);
	for (i = 0; i < n; i++)
		raise_alert(ev, &out[i], clock_wall_ms());
}

/* The source an address is in, as the detectors key it and a
 * block_source response blocks it: the IPv4 address, or the IPv6 /64
 * (common/source_key.h), so that a client rotating through the addresses
 * of its /64 is counted, and blocked, as one. */
static const char *source_text(const struct sockaddr *sa, char *buf, size_t cap)
{
	if (sa == NULL || (sa->sa_family != AF_INET && sa->sa_family != AF_INET6))
		return NULL;
	source_name(sa, buf, cap);
	return buf;
}

void events_admin_login_failed(struct events *ev, const char *user, const char *source_ip)
{
	struct alert_input in = { .kind = ALERT_IN_LOGIN_FAILED, .user = user };
	uint8_t key[SOURCE_KEY_LEN];
	char src[SOURCE_NAME_MAX];

	if (source_ip != NULL && source_key_parse(source_ip, key) == 0) {
		source_key_name(key, src, sizeof(src));
		in.source = src;
	}
	feed(ev, &in);
}

void events_alloc_traffic(struct events *ev, const struct turn_alloc *a)
{
	struct alert_input in = { .kind = ALERT_IN_ALLOC_TRAFFIC };
	char key[INET6_ADDRSTRLEN + 8];

	config_format_addr((const struct sockaddr *)&a->advertised, key, sizeof(key));
	in.alloc_key = key;
	in.user = a->id.user;
	in.call = a->id.call;
	in.bytes = a->bytes_to_peer + a->bytes_from_peer;
	feed(ev, &in);
}

static void hub_metrics_and_alerts(struct events *ev, const struct hub_event *e)
{
	struct alert_input in;
	char ip[SOURCE_NAME_MAX];

	memset(&in, 0, sizeof(in));
	in.user = e->user;
	in.source = source_text(e->source, ip, sizeof(ip));
	in.call = e->call;
	switch (e->kind) {
	/* A login whose client had gone counts like any other; it only has
	 * no time to an answer. */
	case HUB_EV_LOGIN_OK:
		metrics_inc(ev->metrics, M_LOGINS_SUCCESS, 1);
		if (!e->unanswered)
			metrics_observe(ev->metrics, M_LOGIN_SECONDS, (double)e->setup_ms / 1000.0);
		break;
	case HUB_EV_LOGIN_FAILED:
		metrics_inc(ev->metrics, M_LOGINS_FAILURE, 1);
		if (!e->unanswered)
			metrics_observe(ev->metrics, M_LOGIN_SECONDS, (double)e->setup_ms / 1000.0);
		in.kind = ALERT_IN_LOGIN_FAILED;
		feed(ev, &in);
		break;
	case HUB_EV_CALL_DECIDED:
		if (e->reason != NULL)
			break; /* a re-evaluation, not a call placed */
		metrics_inc(ev->metrics, e->allowed ? M_CALLS_ALLOWED : M_CALLS_DENIED, 1);
		in.kind = ALERT_IN_CALL_PLACED;
		feed(ev, &in);
		break;
	case HUB_EV_CALL_ACCEPTED:
		metrics_observe(ev->metrics, M_CALL_SETUP_SECONDS, (double)e->setup_ms / 1000.0);
		break;
	case HUB_EV_CALL_ENDED:
		metrics_inc(ev->metrics, M_CALLS_ENDED, 1);
		break;
	case HUB_EV_CANDIDATE_REMOVED:
		metrics_inc(ev->metrics, M_CANDIDATES_REMOVED, e->count);
		break;
	case HUB_EV_ABUSE:
		metrics_inc(ev->metrics, M_SESSIONS_ABUSE, 1);
		in.kind = ALERT_IN_SESSION_ABUSE;
		feed(ev, &in);
		break;
	default:
		break;
	}
}

void events_hub(struct events *ev, const struct hub_event *e)
{
	json_t *f = json_object();
	const char *name = "signaling", *outcome = "success";
	char u[300], p[300], r[300];

	put(f, "user", e->user);
	put_addr(f, "source", e->source);
	if (e->session != 0)
		json_object_set_new(f, "session", json_integer((json_int_t)e->session));
	put(f, "call", e->call);
	put(f, "peer", e->peer);
	put(f, "rule", e->rule);
	put(f, "reason", e->reason);
	if (e->unanswered)
		json_object_set_new(f, "unanswered", json_true());
	esc(u, sizeof(u), e->user);
	esc(p, sizeof(p), e->peer);
	esc(r, sizeof(r), e->reason);
	switch (e->kind) {
	case HUB_EV_LOGIN_OK:
		name = "login.success";
		json_object_set_new(f, "mfa", json_boolean(e->mfa));
		log_info("signaling: login.ok: session %llu: user %s%s%s",
		    (unsigned long long)e->session, u, e->mfa ? " (mfa)" : "",
		    e->unanswered ? " (unanswered: the connection had closed)" : "");
		break;
	case HUB_EV_LOGIN_FAILED:
		outcome = "failure";
		name = e->reason != NULL && strcmp(e->reason, "locked") == 0 ? "lockout" :
		    mfa_reason(e->reason) ? "mfa.failure" : "login.failure";
		log_info("signaling: login.failed: session %llu: user \"%s\": %s%s",
		    (unsigned long long)e->session, u, r,
		    e->unanswered ? " (unanswered: the connection had closed)" : "");
		break;
	case HUB_EV_LOGOUT:
		name = "logout";
		log_info("signaling: logout: session %llu: user %s",
		    (unsigned long long)e->session, u);
		break;
	case HUB_EV_CALL_DECIDED:
		name = "call.decided";
		outcome = e->allowed ? "allow" : "deny";
		json_object_set_new(f, "media", media_json(e->media));
		if (e->allowed)
			json_object_set_new(f, "record", json_boolean(e->record));
		log_info("signaling: call.decided: %s -> %s: %s by rule \"%s\"%s%s%s", u, p,
		    e->allowed ? "allow" : "deny", e->rule != NULL ? e->rule : "",
		    e->record ? " (the rule asks for recording, which is not built yet: "
		    "the call is not recorded)" : "", e->reason != NULL ? " after a " : "", r);
		break;
	case HUB_EV_CALL_ACCEPTED:
		name = "call.accepted";
		json_object_set_new(f, "setup_ms", json_integer((json_int_t)e->setup_ms));
		log_info("signaling: call.accepted: call %s %s -> %s", e->call, u, p);
		break;
	case HUB_EV_CALL_ENDED:
		name = "call.ended";
		json_object_set_new(f, "duration_ms", json_integer((json_int_t)e->duration_ms));
		log_info("signaling: call.ended: call %s %s -> %s ended: %s (after %llu ms)",
		    e->call, u, p, r, (unsigned long long)e->duration_ms);
		break;
	case HUB_EV_CANDIDATE_REMOVED:
		name = "candidate.removed";
		json_object_set_new(f, "count", json_integer(e->count));
		log_info("signaling: candidate.removed: call %s: %u candidates from %s removed (%s)",
		    e->call, e->count, u, r);
		break;
	case HUB_EV_SDP_REFUSED:
		/* A refusal like a denied call: deny, and a warning to syslog. */
		name = "call.sdp_refused";
		outcome = "deny";
		put(f, "medium", e->medium);
		json_object_set_new(f, "media", media_json(e->media));
		log_info("signaling: call.sdp_refused: call %s: %s from %s refused: "
		    "%s is not among the call's media", e->call, r, u,
		    e->medium != NULL ? e->medium : "");
		break;
	case HUB_EV_ABUSE:
		name = "session.abuse";
		outcome = "closed";
		log_warn("signaling: session.abuse: session %llu closed after %u %s",
		    (unsigned long long)e->session, e->count, r);
		break;
	}
	json_object_set_new(f, "outcome", json_string(outcome));
	audit_log(ev->audit, clock_wall_ms(), name, f);
	hub_metrics_and_alerts(ev, e);
}

void events_turn(struct events *ev, enum turn_event kind, const struct turn_client *c,
    const struct turn_identity *id, const struct sockaddr *peer)
{
	json_t *f = json_object();
	char client[INET6_ADDRSTRLEN + 8], target[INET6_ADDRSTRLEN + 8];
	char user[TURN_ID_MAX * 4 + 4] = "";
	const char *name = "turn";

	config_format_addr((const struct sockaddr *)&c->remote, client, sizeof(client));
	if (id != NULL) {
		log_escape(user, sizeof(user), (const uint8_t *)id->user, strlen(id->user));
		put(f, "user", id->user);
		put(f, "call", id->call);
	}
	put(f, "source", client);
	switch (kind) {
	case TURN_EV_AUTH_FAILED:
		metrics_inc(ev->metrics, M_TURN_AUTH_FAILURES, 1);
		name = "turn.auth.failure";
		log_info("turn: authentication failed from %s%s%s", client,
		    id != NULL ? " for user " : "", user);
		break;
	case TURN_EV_SOURCE_BLOCKED:
		/* Not audited one by one: a blocked source may send thousands. */
		json_decref(f);
		log_debug("turn: ignoring %s: too many authentication failures", client);
		return;
	case TURN_EV_REFRESHED:
		json_object_set_new(f, "outcome", json_string("success"));
		audit_log(ev->audit, clock_wall_ms(), "allocation.refreshed", f);
		log_debug("turn: allocation of \"%s\" from %s refreshed", user, client);
		return;
	case TURN_EV_CALL_ENDED:
		name = "turn.auth.call_ended";
		log_debug("turn: credentials of ended call refused from %s", client);
		break;
	case TURN_EV_PEER_REFUSED:
		metrics_inc(ev->metrics, M_PERMISSIONS_REFUSED, 1);
		name = "permission.refused";
		config_format_addr(peer, target, sizeof(target));
		put(f, "peer", target);
		log_info("turn: peer %s refused for user \"%s\" from %s", target, user, client);
		break;
	}
	json_object_set_new(f, "outcome", json_string("failure"));
	audit_log(ev->audit, clock_wall_ms(), name, f);
	/* The cause is in the trail before any alert it raises. */
	if (kind == TURN_EV_PEER_REFUSED) {
		struct alert_input in = { .kind = ALERT_IN_PERMISSION_REFUSED };
		char ip[SOURCE_NAME_MAX];

		in.user = id != NULL ? id->user : NULL;
		in.source = source_text((const struct sockaddr *)&c->remote, ip, sizeof(ip));
		in.call = id != NULL ? id->call : NULL;
		feed(ev, &in);
	}
}

void events_alloc(struct events *ev, const struct turn_alloc *a, bool created,
    const char *reason)
{
	json_t *f = json_object();
	char user[TURN_ID_MAX * 4 + 4], relayed[INET6_ADDRSTRLEN + 8];
	char client[INET6_ADDRSTRLEN + 8];
	const char *tp = a->client.transport == TURN_TP_UDP ? "udp" :
	    a->client.transport == TURN_TP_TCP ? "tcp" : "tls";

	log_escape(user, sizeof(user), (const uint8_t *)a->id.user, strlen(a->id.user));
	config_format_addr((const struct sockaddr *)&a->advertised, relayed, sizeof(relayed));
	config_format_addr((const struct sockaddr *)&a->client.remote, client, sizeof(client));
	put(f, "user", a->id.user);
	put(f, "call", a->id.call);
	put(f, "source", client);
	put(f, "relayed", relayed);
	put(f, "transport", tp);
	if (created) {
		metrics_inc(ev->metrics, M_ALLOCATIONS_CREATED, 1);
		log_info("turn: allocation %s for user \"%s\"%s%s from %s (%s)", relayed, user,
		    a->id.call[0] ? " in call " : "", a->id.call, client, tp);
		json_object_set_new(f, "outcome", json_string("success"));
		audit_log(ev->audit, clock_wall_ms(), "allocation.created", f);
		return;
	}
	if (ev->alerts != NULL)
		alerts_forget_alloc(ev->alerts, relayed);
	put(f, "reason", reason);
	json_object_set_new(f, "bytes_to_peer", json_integer((json_int_t)a->bytes_to_peer));
	json_object_set_new(f, "bytes_from_peer", json_integer((json_int_t)a->bytes_from_peer));
	json_object_set_new(f, "packets_to_peer", json_integer((json_int_t)a->pkts_to_peer));
	json_object_set_new(f, "packets_from_peer", json_integer((json_int_t)a->pkts_from_peer));
	json_object_set_new(f, "outcome", json_string("success"));
	log_info("turn: allocation %s of user \"%s\" removed (%s): "
	    "%llu bytes/%llu packets to peers, %llu bytes/%llu packets from peers",
	    relayed, user, reason, (unsigned long long)a->bytes_to_peer,
	    (unsigned long long)a->pkts_to_peer, (unsigned long long)a->bytes_from_peer,
	    (unsigned long long)a->pkts_from_peer);
	audit_log(ev->audit, clock_wall_ms(), "allocation.deleted", f);
}
