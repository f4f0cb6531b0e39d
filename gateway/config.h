/* The configuration file of the contract (DESIGN.md), parsed once with
 * jansson into plain structs that are const after load.
 *
 * Defaults live in one place (config_defaults); config_load() starts from
 * them, applies the file, then rejects impossible combinations. Unknown
 * keys, wrong types and impossible values are errors whose message names
 * the key ("turn.port_range: ..."). Relative paths are resolved against
 * the config file's folder. */
#ifndef GH_GATEWAY_CONFIG_H
#define GH_GATEWAY_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "gateway/alerts.h"
#include "turn/auth.h"
#include "turn/peer_policy.h"

#define CONFIG_MAX_LISTEN 8
#define CONFIG_MAX_ORIGINS 16
#define CONFIG_MAX_STATIC_USERS 16
#define CONFIG_MAX_BACKENDS 4

enum config_transport {
	CONFIG_UDP = 0,
	CONFIG_TCP = 1,
	CONFIG_TLS = 2,
};

struct config_tls {
	char cert[PATH_MAX]; /* empty: none configured */
	char key[PATH_MAX];
};

struct config_listen {
	enum config_transport transport;
	struct sockaddr_storage addr; /* IP and port */
};

/* TCP/TLS connections the relay holds in all (RELAY_IO_MAX_CONNS), so
 * also the most connections_per_source can allow. */
#define CONFIG_MAX_TURN_CONNS 4096

struct config_turn_limits {
	uint32_t allocations_total;          /* default 10000 */
	uint32_t allocations_per_user;       /* default 16 */
	uint32_t permissions_per_allocation; /* default 32 */
	uint32_t channels_per_allocation;    /* default 32 */
	uint64_t bytes_per_s_per_allocation; /* default 2 MiB/s (16 Mbit/s) */
	uint32_t auth_failures_per_source;   /* per 10 s before refusal; 10 */
	/* Concurrent TCP/TLS connections from one IPv4 address or IPv6 /64;
	 * 32, at most CONFIG_MAX_TURN_CONNS. */
	uint32_t connections_per_source;
};

struct config_turn {
	struct config_listen listen[CONFIG_MAX_LISTEN];
	size_t nlisten;
	struct sockaddr_storage relay_ip;    /* port 0 */
	bool has_external_ip;
	struct sockaddr_storage external_ip; /* port 0 */
	/* DNS name for the TURN URLs handed to clients (turns: needs one its
	 * certificate names); empty: the external or listen IP. */
	char public_host[256];
	uint16_t port_min, port_max;         /* "49152-65535" */
	struct turn_static_user static_users[CONFIG_MAX_STATIC_USERS];
	size_t nstatic_users;
	uint32_t max_lifetime_s;             /* allocation cap, default 3600 */
	uint32_t default_lifetime_s;         /* default 600 */
	uint32_t nonce_lifetime_s;           /* default 600, 5..3600 */
	struct config_turn_limits limits;
	/* Drop what a call's allocation sends that is not STUN, DTLS or
	 * RTP/RTCP (default false: count it only). */
	bool media_only;
	/* "allow_peers"/"deny_peers": CIDR lists; own addresses are added
	 * by the gateway at start. */
	struct peer_policy peers;
	bool has_tls;                        /* component override */
	struct config_tls tls;
};

struct config_signaling {
	struct sockaddr_storage listen;
	char allowed_origins[CONFIG_MAX_ORIGINS][256];
	size_t norigins;
	uint32_t calls_per_minute;    /* placed per user, all sessions */
	uint32_t logins_per_source;   /* password checks in flight per source (login_queue.h) */
	uint32_t connections_per_source; /* WebSocket connections at once per source */
	bool has_tls;
	struct config_tls tls;
};

enum config_mfa { CONFIG_MFA_REQUIRED = 0, CONFIG_MFA_OPTIONAL = 1, CONFIG_MFA_OFF = 2 };
enum config_backend_type { CONFIG_BACKEND_LOCAL = 1, CONFIG_BACKEND_JWT = 2 };

struct config_backend {
	enum config_backend_type type;
	char issuer[512];      /* jwt */
	char audience[256];    /* jwt */
	char jwks_file[PATH_MAX];
	char user_claim[64];   /* default "sub" */
	char groups_claim[64]; /* default "groups" */
};

struct config_identity {
	enum config_mfa mfa;
	/* The key that seals the local users' TOTP secrets (userdb.h);
	 * empty: state_dir/secrets.key, made at the first start. */
	char secrets_key_file[PATH_MAX];
	struct config_backend backends[CONFIG_MAX_BACKENDS];
	size_t nbackends;
};

enum config_syslog_transport { CONFIG_SYSLOG_UDP = 0, CONFIG_SYSLOG_TCP = 1, CONFIG_SYSLOG_TLS = 2 };

/* log.syslog.max_message_bytes. Over UDP the default stays well below
 * the 65,507-byte datagram limit and matches rsyslog's default
 * maxMessageSize (8 KiB); RFC 5426 §3.2 asks receivers for 2048 bytes at
 * least and encourages more. Over TCP and TLS it is the former fixed cut.
 * The minimum leaves room for the largest header and the smallest
 * reduced event (audit_reduce.h). */
#define CONFIG_SYSLOG_MSG_MIN 1024u
#define CONFIG_SYSLOG_MSG_DEFAULT_UDP 8192u
#define CONFIG_SYSLOG_MSG_MAX_UDP 65507u
#define CONFIG_SYSLOG_MSG_DEFAULT_STREAM 65536u
#define CONFIG_SYSLOG_MSG_MAX_STREAM (4u * 1024 * 1024)

struct config_log {
	int level;                     /* LOG_ERR..LOG_DEBUG (syslog.h values); default LOG_INFO */
	char audit_file[PATH_MAX];     /* empty: none */
	bool has_syslog;
	struct sockaddr_storage syslog_addr;
	enum config_syslog_transport syslog_transport;
	char syslog_ca_file[PATH_MAX];  /* tls: CA to verify the collector; empty: system store */
	/* The longest syslog message (header and MSG, without TCP framing);
	 * 0: the transport's default (syslog_out.h). */
	uint32_t syslog_max_message_bytes;
};

enum config_registry_type { CONFIG_REGISTRY_MEMORY = 0, CONFIG_REGISTRY_REDIS = 1 };

/* Said by check-config (on stderr) and at start (in the log) when
 * registry.type is "redis": the key parses, so that files written for
 * scale-out load, but nothing uses it yet (DESIGN.md, "Coming next"). */
#define CONFIG_REDIS_UNBUILT_TEXT "registry: type \"redis\" is not built yet: this " \
    "node runs alone and shares nothing (calls, revocations, quotas)"

struct config_registry {
	enum config_registry_type type;
	char url[256];  /* redis */
	char node[64];  /* redis */
};

struct config {
	char dir[PATH_MAX];       /* folder of the config file ("." for defaults) */
	char realm[128];
	char state_dir[PATH_MAX];
	/* "run_as": the user a daemon started as root becomes once its
	 * listeners are bound (gateway/privdrop.h); empty: "gatehouse",
	 * or "nobody" where no such user exists. */
	char run_as[32];
	struct config_tls tls;    /* empty cert: a self-signed one is made in state_dir */
	struct config_signaling signaling;
	struct config_turn turn;
	struct config_identity identity;
	char policy_file[PATH_MAX]; /* empty: none */
	struct sockaddr_storage admin_listen;
	uint32_t admin_token_ttl_s;   /* idle lifetime of admin tokens, default 900 */
	bool admin_has_tls;           /* "admin.tls": component override */
	struct config_tls admin_tls;
	struct config_log log;
	struct config_registry registry;
	struct alerts_config alerts;  /* detectors: thresholds and responses */
};

/* The embedded defaults: loopback listeners (signaling 127.0.0.1:8443,
 * TURN udp+tcp 127.0.0.1:3478 and tls 127.0.0.1:5349, admin
 * 127.0.0.1:9443), relay_ip 127.0.0.1, port range 49152-65535, state in
 * ./gatehouse-data, realm "gatehouse.local", mfa required, a local
 * identity backend, memory registry. */
void config_defaults(struct config *c);

/* Loads and validates a file on top of the defaults. On failure returns
 * -1 and writes a one-line message naming the key into err (errlen bytes).
 * *c is left in an unspecified state on failure. */
int config_load(const char *path, struct config *c, char *err, size_t errlen);

/* Checks cross-field rules (called by config_load; also for defaults):
 * port range non-empty, at least one TURN listener, non-loopback plain
 * listeners refused without TLS where TLS is required, etc. Returns 0 or
 * -1 with err. Warnings (plain listener on loopback) are not errors. */
int config_validate(const struct config *c, char *err, size_t errlen);

/* Parses "ip:port" or "[v6]:port" into *out; 0 or -1. */
int config_parse_hostport(const char *s, struct sockaddr_storage *out);

/* True for 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104: the one rule for
 * which listeners may go without TLS. */
bool config_addr_is_loopback(const struct sockaddr_storage *ss);

/* Formats an address as "ip:port" / "[v6]:port" into buf. Returns buf. */
const char *config_format_addr(const struct sockaddr *sa, char *buf, size_t len);

/* The two origins of a page that this listener serves under scheme,
 * into out[0] and out[1]: "scheme://ip:port", "scheme://localhost:port". */
void config_own_origins(const struct sockaddr_storage *listen, const char *scheme,
    char (*out)[256]);

#endif
