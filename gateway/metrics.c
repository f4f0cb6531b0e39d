/* Prometheus metrics (see metrics.h). The names follow the Prometheus
 * conventions: a gatehouse_ prefix, _total on counters, base units
 * (seconds, bytes), labels for the dimensions of one quantity. */
#include "gateway/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Login and call set-up: from a few milliseconds to a few seconds. */
static const double buckets[] = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct histogram {
	uint64_t counts[NBUCKETS]; /* per bucket, not cumulative */
	uint64_t count;
	double sum;
};

struct metrics {
	uint64_t counters[M_COUNTER_COUNT];
	struct histogram hist[M_HISTOGRAM_COUNT];
	uint64_t alerts[ALERT_KIND_COUNT];
};

struct metrics *metrics_new(void)
{
	return calloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
	free(m);
}

void metrics_inc(struct metrics *m, enum metric_counter c, uint64_t n)
{
	if (m != NULL && c < M_COUNTER_COUNT)
		m->counters[c] += n;
}

void metrics_observe(struct metrics *m, enum metric_histogram h, double seconds)
{
	size_t i;

	if (m == NULL || h >= M_HISTOGRAM_COUNT)
		return;
	for (i = 0; i < NBUCKETS; i++) {
		if (seconds <= buckets[i]) {
			m->hist[h].counts[i]++;
			break;
		}
	}
	m->hist[h].count++;
	m->hist[h].sum += seconds;
}

void metrics_alert(struct metrics *m, enum alert_kind k)
{
	if (m != NULL && k < ALERT_KIND_COUNT)
		m->alerts[k]++;
}

/* A growing text buffer; on ENOMEM it stays failed and render gives NULL. */
struct out {
	char *p;
	size_t len, cap;
	int failed;
};

static void add(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *grown;

	for (;;) {
		if (o->failed)
			return;
		va_start(ap, fmt);
		n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = 1;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		grown = realloc(o->p, o->cap * 2 + (size_t)n);
		if (grown == NULL) {
			o->failed = 1;
			return;
		}
		o->p = grown;
		o->cap = o->cap * 2 + (size_t)n;
	}
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
	add(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
	    (unsigned long long)v);
}

static void gauge(struct out *o, const char *name, const char *help, uint64_t v)
{
	add(o, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", name, help, name, name,
	    (unsigned long long)v);
}

static void histogram(struct out *o, const char *name, const char *help,
    const struct histogram *h)
{
	uint64_t cum = 0;
	size_t i;

	add(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	for (i = 0; i < NBUCKETS; i++) {
		cum += h->counts[i];
		add(o, "%s_bucket{le=\"%g\"} %llu\n", name, buckets[i], (unsigned long long)cum);
	}
	add(o, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.6f\n%s_count %llu\n", name,
	    (unsigned long long)h->count, name, h->sum, name, (unsigned long long)h->count);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g)
{
	struct out o = { malloc(8192), 0, 8192, 0 };
	const uint64_t *c = m->counters;
	size_t k;

	if (o.p == NULL)
		return NULL;
	gauge(&o, "gatehouse_sessions", "Open signaling sessions.", g->sessions);
	add(&o, "# HELP gatehouse_logins_total Signaling logins by outcome.\n"
	    "# TYPE gatehouse_logins_total counter\n"
	    "gatehouse_logins_total{outcome=\"success\"} %llu\n"
	    "gatehouse_logins_total{outcome=\"failure\"} %llu\n",
	    (unsigned long long)c[M_LOGINS_SUCCESS], (unsigned long long)c[M_LOGINS_FAILURE]);
	add(&o, "# HELP gatehouse_calls_total Call requests by policy decision.\n"
	    "# TYPE gatehouse_calls_total counter\n"
	    "gatehouse_calls_total{decision=\"allow\"} %llu\n"
	    "gatehouse_calls_total{decision=\"deny\"} %llu\n",
	    (unsigned long long)c[M_CALLS_ALLOWED], (unsigned long long)c[M_CALLS_DENIED]);
	counter(&o, "gatehouse_calls_ended_total", "Calls ended, for any reason.", c[M_CALLS_ENDED]);
	gauge(&o, "gatehouse_active_calls", "Calls ringing or in progress.", g->calls);
	gauge(&o, "gatehouse_active_allocations", "TURN allocations.", g->allocations);
	counter(&o, "gatehouse_allocations_created_total", "TURN allocations created.",
	    c[M_ALLOCATIONS_CREATED]);
	add(&o, "# HELP gatehouse_relayed_bytes_total Bytes relayed, by direction.\n"
	    "# TYPE gatehouse_relayed_bytes_total counter\n"
	    "gatehouse_relayed_bytes_total{direction=\"to_peer\"} %llu\n"
	    "gatehouse_relayed_bytes_total{direction=\"from_peer\"} %llu\n",
	    (unsigned long long)g->bytes_to_peers, (unsigned long long)g->bytes_from_peers);
	add(&o, "# HELP gatehouse_relayed_packets_total Datagrams relayed, by direction.\n"
	    "# TYPE gatehouse_relayed_packets_total counter\n"
	    "gatehouse_relayed_packets_total{direction=\"to_peer\"} %llu\n"
	    "gatehouse_relayed_packets_total{direction=\"from_peer\"} %llu\n",
	    (unsigned long long)g->packets_to_peers, (unsigned long long)g->packets_from_peers);
	counter(&o, "gatehouse_relayed_packets_local_total",
	    "Datagrams to peers that were another allocation of this relay, handed over in process.",
	    g->packets_relayed_locally);
	counter(&o, "gatehouse_relayed_packets_unclassified_total",
	    "Datagrams sent by calls' allocations that were not STUN, DTLS or RTP/RTCP (RFC 9443).",
	    g->packets_unclassified);
	add(&o, "# HELP gatehouse_dtls_certificates_total DTLS certificates seen on calls' media "
	    "paths, by their check against the fingerprints the sender signaled.\n"
	    "# TYPE gatehouse_dtls_certificates_total counter\n"
	    "gatehouse_dtls_certificates_total{fingerprint=\"match\"} %llu\n"
	    "gatehouse_dtls_certificates_total{fingerprint=\"mismatch\"} %llu\n"
	    "gatehouse_dtls_certificates_total{fingerprint=\"unsignaled\"} %llu\n"
	    "gatehouse_dtls_certificates_total{fingerprint=\"split\"} %llu\n",
	    (unsigned long long)c[M_DTLS_MATCH], (unsigned long long)c[M_DTLS_MISMATCH],
	    (unsigned long long)c[M_DTLS_UNSIGNALED], (unsigned long long)c[M_DTLS_SPLIT]);
	counter(&o, "gatehouse_dtls_server_hellos_refused_total",
	    "DTLS ServerHellos on calls' media paths whose version, cipher suite or SRTP profile "
	    "does not protect the call (the call is ended).", c[M_DTLS_HELLO_REFUSED]);
	counter(&o, "gatehouse_permissions_refused_total", "TURN peer addresses refused (403).",
	    c[M_PERMISSIONS_REFUSED]);
	counter(&o, "gatehouse_turn_auth_failures_total", "TURN requests with bad credentials.",
	    c[M_TURN_AUTH_FAILURES]);
	counter(&o, "gatehouse_candidates_removed_total",
	    "ICE candidates removed by the relay-only filter.", c[M_CANDIDATES_REMOVED]);
	counter(&o, "gatehouse_sessions_abuse_total", "Signaling sessions closed for abuse.",
	    c[M_SESSIONS_ABUSE]);
	counter(&o, "gatehouse_audit_dropped_total",
	    "Audit events dropped because the writer could not keep up.", g->audit_dropped);
	counter(&o, "gatehouse_syslog_failed_total",
	    "Audit events the syslog collector did not get (unreachable, connection lost).",
	    g->syslog_failed);
	gauge(&o, "gatehouse_blocked_sources", "Source addresses blocked by a response.",
	    g->blocked_sources);
	gauge(&o, "gatehouse_turn_connections", "TURN client connections over TCP and TLS.",
	    g->turn_conns);
	add(&o, "# HELP gatehouse_turn_connections_refused_total TURN TCP/TLS connections "
	    "closed at accept, by the limit they were over.\n"
	    "# TYPE gatehouse_turn_connections_refused_total counter\n"
	    "gatehouse_turn_connections_refused_total{limit=\"per_source\"} %llu\n"
	    "gatehouse_turn_connections_refused_total{limit=\"total\"} %llu\n",
	    (unsigned long long)g->turn_conns_refused_per_source,
	    (unsigned long long)g->turn_conns_refused_total);
	add(&o, "# HELP gatehouse_alerts_total Anomaly alerts by kind.\n"
	    "# TYPE gatehouse_alerts_total counter\n");
	for (k = 0; k < ALERT_KIND_COUNT; k++)
		add(&o, "gatehouse_alerts_total{kind=\"%s\"} %llu\n",
		    alert_kind_name((enum alert_kind)k), (unsigned long long)m->alerts[k]);
	histogram(&o, "gatehouse_login_duration_seconds",
	    "Time from a login request to its answer.", &m->hist[M_LOGIN_SECONDS]);
	histogram(&o, "gatehouse_call_setup_duration_seconds",
	    "Time from a call request to its acceptance.", &m->hist[M_CALL_SETUP_SECONDS]);
	if (o.failed) {
		free(o.p);
		return NULL;
	}
	return o.p;
}
