/* Prometheus metrics (text exposition format 0.0.4), served at /metrics
 * on the admin listener. Counters and histograms are kept here and bumped
 * from the event path; gauges are read at scrape time from their owners.
 * Single-threaded like the loop that updates it. */
#ifndef GH_GATEWAY_METRICS_H
#define GH_GATEWAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/alerts.h"

enum metric_counter {
	M_LOGINS_SUCCESS = 0,
	M_LOGINS_FAILURE,
	M_CALLS_ALLOWED,
	M_CALLS_DENIED,
	M_CALLS_ENDED,
	M_PERMISSIONS_REFUSED,
	M_CANDIDATES_REMOVED,
	M_TURN_AUTH_FAILURES,
	M_ALLOCATIONS_CREATED,
	M_SESSIONS_ABUSE,
	M_DTLS_MATCH,             /* DTLS certificates on the relay, by fingerprint check */
	M_DTLS_MISMATCH,
	M_DTLS_UNSIGNALED,
	M_DTLS_SPLIT,
	M_DTLS_HELLO_REFUSED,     /* ServerHellos whose version, suite or profile do not protect */
	M_COUNTER_COUNT,
};

enum metric_histogram {
	M_LOGIN_SECONDS = 0,
	M_CALL_SETUP_SECONDS,
	M_HISTOGRAM_COUNT,
};

/* Read at scrape time. */
struct metrics_gauges {
	uint64_t sessions;
	uint64_t calls;
	uint64_t allocations;
	uint64_t bytes_to_peers, bytes_from_peers;     /* totals since start */
	uint64_t packets_to_peers, packets_from_peers;
	uint64_t packets_relayed_locally;
	uint64_t packets_unclassified;
	uint64_t audit_dropped;                         /* since start */
	uint64_t syslog_failed;                         /* since start */
	uint64_t blocked_sources;
	uint64_t turn_conns;                            /* TCP/TLS, open now */
	uint64_t turn_conns_refused_per_source;         /* since start */
	uint64_t turn_conns_refused_total;              /* since start */
};

struct metrics;

/* Returns owned: free with metrics_free(). NULL on ENOMEM. */
struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

void metrics_inc(struct metrics *m, enum metric_counter c, uint64_t n);
void metrics_observe(struct metrics *m, enum metric_histogram h, double seconds);
void metrics_alert(struct metrics *m, enum alert_kind k);

/* The exposition text. Returns owned (free()), NULL on ENOMEM. */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g);

#endif
