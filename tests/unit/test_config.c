/* config.c: the DESIGN.md example, the defaults, every class of error
 * (with the key path in its message), and the cross-field rules. */
#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "gateway/config.h"
#include "tests/unit/check.h"

/* Short, so that paths built from it always fit PATH_MAX. */
static char tmpdir[256];
static char err[512];
/* Static: a struct config is tens of kilobytes. */
static struct config cfg;

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

static int load_text(const char *text)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/c.json", tmpdir);
	write_file(path, text);
	err[0] = '\0';
	return config_load(path, &cfg, err, sizeof(err));
}

static void expect_error(const char *text, const char *needle)
{
	int rc = load_text(text);

	CHECK_EQ_INT(rc, -1);
	CHECK(strstr(err, needle) != NULL);
	if (rc != -1 || strstr(err, needle) == NULL)
		fprintf(stderr, "  wanted \"%s\", got \"%s\" for: %s\n", needle, err, text);
}

static void expect_ok(const char *text)
{
	int rc = load_text(text);

	CHECK_EQ_INT(rc, 0);
	if (rc != 0)
		fprintf(stderr, "  unexpected error \"%s\" for: %s\n", err, text);
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

static const char *fmt(const struct sockaddr_storage *ss)
{
	static char buf[64];

	return config_format_addr((const struct sockaddr *)ss, buf, sizeof(buf));
}

/* The example of DESIGN.md, verbatim. */
static const char design_example[] =
"{\n"
"  \"realm\": \"gatehouse.local\",\n"
"  \"state_dir\": \"./gatehouse-data\",\n"
"  \"tls\": { \"cert\": \"cert.pem\", \"key\": \"key.pem\" },\n"
"  \"signaling\": { \"listen\": \"127.0.0.1:8443\",\n"
"                 \"allowed_origins\": [\"https://localhost:8443\"] },\n"
"  \"turn\": { \"listen\": [ {\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"},\n"
"                        {\"addr\": \"127.0.0.1:3478\", \"transport\": \"tcp\"},\n"
"                        {\"addr\": \"127.0.0.1:5349\", \"transport\": \"tls\"} ],\n"
"            \"relay_ip\": \"127.0.0.1\", \"external_ip\": null,\n"
"            \"port_range\": \"49152-65535\",\n"
"            \"static_users\": { \"bench\": \"secret\" } },\n"
"  \"identity\": { \"mfa\": \"required\", \"backends\": [ {\"type\": \"local\"},\n"
"                {\"type\": \"jwt\", \"issuer\": \"https://idp.example\", \"audience\": \"gatehouse\",\n"
"                 \"jwks_file\": \"jwks.json\", \"user_claim\": \"sub\", \"groups_claim\": \"groups\"} ] },\n"
"  \"policy\": { \"file\": \"policy.json\" },\n"
"  \"admin\": { \"listen\": \"127.0.0.1:9443\" },\n"
"  \"log\": { \"level\": \"info\", \"audit_file\": \"audit.jsonl\",\n"
"           \"syslog\": {\"address\": \"127.0.0.1:514\", \"transport\": \"udp\"} },\n"
"  \"registry\": { \"type\": \"memory\" }\n"
"}\n";

static void test_design_example(void)
{
	char sub[PATH_MAX], real[PATH_MAX], path[PATH_MAX], want[PATH_MAX + 32];
	const struct config_backend *jwt;

	/* In a sub-folder named through "..", to see the folder resolved. */
	snprintf(sub, sizeof(sub), "%s/etc", tmpdir);
	CHECK_EQ_INT(mkdir(sub, 0700), 0);
	snprintf(path, sizeof(path), "%s/etc/../etc/gatehouse.json", tmpdir);
	write_file(path, design_example);
	CHECK(realpath(sub, real) != NULL);

	CHECK_EQ_INT(config_load(path, &cfg, err, sizeof(err)), 0);
	if (err[0] && cfg.realm[0] == '\0')
		fprintf(stderr, "  %s\n", err);
	CHECK(strcmp(cfg.dir, real) == 0);
	CHECK(strcmp(cfg.realm, "gatehouse.local") == 0);
	snprintf(want, sizeof(want), "%s/./gatehouse-data", real);
	CHECK(strcmp(cfg.state_dir, want) == 0);
	snprintf(want, sizeof(want), "%s/cert.pem", real);
	CHECK(strcmp(cfg.tls.cert, want) == 0);
	snprintf(want, sizeof(want), "%s/key.pem", real);
	CHECK(strcmp(cfg.tls.key, want) == 0);

	CHECK(strcmp(fmt(&cfg.signaling.listen), "127.0.0.1:8443") == 0);
	CHECK_EQ_INT(cfg.signaling.norigins, 1);
	CHECK(strcmp(cfg.signaling.allowed_origins[0], "https://localhost:8443") == 0);
	CHECK(!cfg.signaling.has_tls);
	CHECK(!cfg.admin_has_tls);

	CHECK_EQ_INT(cfg.turn.nlisten, 3);
	CHECK_EQ_INT(cfg.turn.listen[0].transport, CONFIG_UDP);
	CHECK_EQ_INT(cfg.turn.listen[1].transport, CONFIG_TCP);
	CHECK_EQ_INT(cfg.turn.listen[2].transport, CONFIG_TLS);
	CHECK(strcmp(fmt(&cfg.turn.listen[1].addr), "127.0.0.1:3478") == 0);
	CHECK_EQ_INT(port_of(&cfg.turn.listen[2].addr), 5349);
	CHECK(strcmp(fmt(&cfg.turn.relay_ip), "127.0.0.1:0") == 0);
	CHECK(!cfg.turn.has_external_ip);
	CHECK_EQ_INT(cfg.turn.port_min, 49152);
	CHECK_EQ_INT(cfg.turn.port_max, 65535);
	CHECK_EQ_INT(cfg.turn.nstatic_users, 1);
	CHECK(strcmp(cfg.turn.static_users[0].name, "bench") == 0);
	CHECK(strcmp(cfg.turn.static_users[0].password, "secret") == 0);
	CHECK_EQ_INT(cfg.turn.max_lifetime_s, 3600);
	CHECK_EQ_INT(cfg.turn.default_lifetime_s, 600);
	CHECK_EQ_INT(cfg.turn.limits.allocations_total, 10000);
	CHECK(!cfg.turn.has_tls);

	CHECK_EQ_INT(cfg.identity.mfa, CONFIG_MFA_REQUIRED);
	CHECK_EQ_INT(cfg.identity.nbackends, 2);
	CHECK_EQ_INT(cfg.identity.backends[0].type, CONFIG_BACKEND_LOCAL);
	jwt = &cfg.identity.backends[1];
	CHECK_EQ_INT(jwt->type, CONFIG_BACKEND_JWT);
	CHECK(strcmp(jwt->issuer, "https://idp.example") == 0);
	CHECK(strcmp(jwt->audience, "gatehouse") == 0);
	snprintf(want, sizeof(want), "%s/jwks.json", real);
	CHECK(strcmp(jwt->jwks_file, want) == 0);
	CHECK(strcmp(jwt->user_claim, "sub") == 0);
	CHECK(strcmp(jwt->groups_claim, "groups") == 0);

	snprintf(want, sizeof(want), "%s/policy.json", real);
	CHECK(strcmp(cfg.policy_file, want) == 0);
	CHECK(strcmp(fmt(&cfg.admin_listen), "127.0.0.1:9443") == 0);
	CHECK_EQ_INT(cfg.log.level, LOG_INFO);
	snprintf(want, sizeof(want), "%s/audit.jsonl", real);
	CHECK(strcmp(cfg.log.audit_file, want) == 0);
	CHECK(cfg.log.has_syslog);
	CHECK(strcmp(fmt(&cfg.log.syslog_addr), "127.0.0.1:514") == 0);
	CHECK_EQ_INT(cfg.log.syslog_transport, CONFIG_SYSLOG_UDP);
	/* Not given: 0, the transport's default (syslog_out.h). */
	CHECK_EQ_INT(cfg.log.syslog_max_message_bytes, 0);
	CHECK_EQ_INT(cfg.registry.type, CONFIG_REGISTRY_MEMORY);
}

static void test_syslog_max_message(void)
{
	expect_ok("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", "
	    "\"max_message_bytes\": 65507}}}");
	CHECK_EQ_INT(cfg.log.syslog_max_message_bytes, 65507);
	expect_ok("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:6514\", "
	    "\"transport\": \"tls\", \"max_message_bytes\": 1048576}}}");
	CHECK_EQ_INT(cfg.log.syslog_max_message_bytes, 1048576);
	CHECK_EQ_INT(cfg.log.syslog_transport, CONFIG_SYSLOG_TLS);
	expect_ok("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", "
	    "\"transport\": \"tcp\", \"max_message_bytes\": 1024}}}");
	CHECK_EQ_INT(cfg.log.syslog_max_message_bytes, 1024);
}

/* Everything the example leaves out, on public addresses. */
static void test_other_values(void)
{
	expect_ok("{\"tls\": {\"cert\": \"/etc/gh/cert.pem\", \"key\": \"/etc/gh/key.pem\"},"
	    " \"state_dir\": \"/var/lib/gatehouse\","
	    " \"signaling\": {\"listen\": \"[::]:443\"},"
	    " \"admin\": {\"listen\": \"[::1]:9443\"},"
	    " \"turn\": {\"listen\": [{\"addr\": \"0.0.0.0:3478\", \"transport\": \"udp\"},"
	    "                       {\"addr\": \"[2001:db8::1]:5349\", \"transport\": \"tls\"}],"
	    "          \"relay_ip\": \"192.0.2.10\", \"external_ip\": \"203.0.113.7\","
	    "          \"port_range\": \"40000-40100\", \"max_lifetime_s\": 7200,"
	    "          \"default_lifetime_s\": 7200,"
	    "          \"limits\": {\"allocations_total\": 5, \"bytes_per_s_per_allocation\": 8000000000,"
	    "                     \"connections_per_source\": 4096},"
	    "          \"allow_peers\": [\"10.1.0.0/16\"], \"deny_peers\": [\"198.51.100.0/24\", \"2001:db8::/32\"]},"
	    " \"identity\": {\"mfa\": \"off\", \"backends\": [{\"type\": \"jwt\", \"issuer\": \"i\","
	    "   \"audience\": \"a\", \"jwks_file\": \"/k.json\", \"groups_claim\": \"roles\"}]},"
	    " \"log\": {\"level\": \"debug\"},"
	    " \"registry\": {\"type\": \"redis\", \"url\": \"rediss://r:6380\", \"node\": \"relay-2\"}}");
	CHECK(strcmp(cfg.tls.cert, "/etc/gh/cert.pem") == 0);
	CHECK(strcmp(cfg.state_dir, "/var/lib/gatehouse") == 0);
	CHECK(strcmp(fmt(&cfg.signaling.listen), "[::]:443") == 0);
	CHECK(strcmp(fmt(&cfg.admin_listen), "[::1]:9443") == 0);
	CHECK_EQ_INT(cfg.turn.nlisten, 2);
	CHECK(strcmp(fmt(&cfg.turn.listen[1].addr), "[2001:db8::1]:5349") == 0);
	CHECK(cfg.turn.has_external_ip);
	CHECK(strcmp(fmt(&cfg.turn.external_ip), "203.0.113.7:0") == 0);
	CHECK(strcmp(fmt(&cfg.turn.relay_ip), "192.0.2.10:0") == 0);
	CHECK_EQ_INT(cfg.turn.port_min, 40000);
	CHECK_EQ_INT(cfg.turn.port_max, 40100);
	CHECK_EQ_INT(cfg.turn.max_lifetime_s, 7200);
	CHECK_EQ_INT(cfg.turn.default_lifetime_s, 7200);
	CHECK_EQ_INT(cfg.turn.limits.allocations_total, 5);
	CHECK(cfg.turn.limits.bytes_per_s_per_allocation == 8000000000ull);
	CHECK_EQ_INT(cfg.turn.limits.allocations_per_user, 16); /* default kept */
	CHECK_EQ_INT(cfg.turn.limits.auth_failures_per_source, 10);
	CHECK_EQ_INT(cfg.turn.limits.connections_per_source, 4096);
	CHECK_EQ_INT(cfg.turn.peers.nallow, 1);
	CHECK_EQ_INT(cfg.turn.peers.allow[0].prefix_len, 96 + 16);
	CHECK_EQ_INT(cfg.turn.peers.ndeny, 2);
	CHECK_EQ_INT(cfg.turn.peers.deny[1].prefix_len, 32);
	CHECK_EQ_INT(cfg.turn.nstatic_users, 0);
	CHECK_EQ_INT(cfg.identity.mfa, CONFIG_MFA_OFF);
	CHECK_EQ_INT(cfg.identity.nbackends, 1);
	CHECK(strcmp(cfg.identity.backends[0].user_claim, "sub") == 0);
	CHECK(strcmp(cfg.identity.backends[0].groups_claim, "roles") == 0);
	CHECK_EQ_INT(cfg.log.level, LOG_DEBUG);
	CHECK(!cfg.log.has_syslog);
	CHECK_EQ_INT(cfg.registry.type, CONFIG_REGISTRY_REDIS);
	CHECK(strcmp(cfg.registry.url, "rediss://r:6380") == 0);
	CHECK(strcmp(cfg.registry.node, "relay-2") == 0);

	/* An empty object changes nothing; defaults stay, relative to the
	 * file's folder. */
	expect_ok("{}");
	CHECK_EQ_INT(cfg.turn.nlisten, 3);
	CHECK(strstr(cfg.state_dir, "/gatehouse-data") != NULL);
	CHECK(cfg.state_dir[0] == '/');
}

/* admin.tls, like signaling.tls: paths from the config file's folder,
 * absolute ones kept; the top-level pair left alone. */
static void test_admin_tls(void)
{
	char want[PATH_MAX + 32], real[PATH_MAX];

	CHECK(realpath(tmpdir, real) != NULL);
	expect_ok("{\"admin\": {\"tls\": {\"cert\": \"adm/cert.pem\", \"key\": \"/etc/gh/adm-key.pem\"}},"
	    " \"signaling\": {\"tls\": {\"cert\": \"sig.pem\", \"key\": \"sig-key.pem\"}}}");
	CHECK(cfg.admin_has_tls);
	snprintf(want, sizeof(want), "%s/adm/cert.pem", real);
	CHECK(strcmp(cfg.admin_tls.cert, want) == 0);
	if (strcmp(cfg.admin_tls.cert, want) != 0)
		fprintf(stderr, "  admin.tls.cert: got \"%s\", wanted \"%s\"\n", cfg.admin_tls.cert, want);
	CHECK(strcmp(cfg.admin_tls.key, "/etc/gh/adm-key.pem") == 0);
	snprintf(want, sizeof(want), "%s/sig.pem", real);
	CHECK(strcmp(cfg.signaling.tls.cert, want) == 0);
	CHECK(cfg.tls.cert[0] == '\0');
	/* An empty object sets nothing. */
	expect_ok("{\"admin\": {\"tls\": {}}}");
	CHECK(!cfg.admin_has_tls);
}

static void test_defaults(void)
{
	config_defaults(&cfg);
	err[0] = '\0';
	CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "  defaults: %s\n", err);
	CHECK(strcmp(cfg.dir, ".") == 0);
	CHECK(strcmp(cfg.state_dir, "./gatehouse-data") == 0);
	CHECK(strcmp(cfg.realm, "gatehouse.local") == 0);
	CHECK(strcmp(fmt(&cfg.signaling.listen), "127.0.0.1:8443") == 0);
	CHECK(strcmp(fmt(&cfg.admin_listen), "127.0.0.1:9443") == 0);
	CHECK_EQ_INT(cfg.turn.nlisten, 3);
	CHECK_EQ_INT(cfg.turn.listen[0].transport, CONFIG_UDP);
	CHECK_EQ_INT(cfg.turn.listen[1].transport, CONFIG_TCP);
	CHECK_EQ_INT(cfg.turn.listen[2].transport, CONFIG_TLS);
	CHECK(strcmp(fmt(&cfg.turn.listen[2].addr), "127.0.0.1:5349") == 0);
	CHECK(strcmp(fmt(&cfg.turn.relay_ip), "127.0.0.1:0") == 0);
	CHECK_EQ_INT(cfg.turn.port_min, 49152);
	CHECK_EQ_INT(cfg.turn.port_max, 65535);
	CHECK_EQ_INT(cfg.turn.limits.bytes_per_s_per_allocation, 2 * 1024 * 1024);
	CHECK_EQ_INT(cfg.turn.limits.permissions_per_allocation, 32);
	CHECK_EQ_INT(cfg.turn.limits.connections_per_source, 32);
	CHECK_EQ_INT(cfg.signaling.calls_per_minute, 30);
	CHECK_EQ_INT(cfg.signaling.logins_per_source, 3);
	CHECK_EQ_INT(cfg.signaling.connections_per_source, 32);
	CHECK_EQ_INT(cfg.identity.nbackends, 1);
	CHECK_EQ_INT(cfg.identity.backends[0].type, CONFIG_BACKEND_LOCAL);
	CHECK_EQ_INT(cfg.log.level, LOG_INFO);
	CHECK(cfg.tls.cert[0] == '\0');
	CHECK(!cfg.admin_has_tls);
}

/* A file named without a folder: paths are relative to ".". */
static void test_bare_name(void)
{
	char cwd[PATH_MAX], path[PATH_MAX];

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	snprintf(path, sizeof(path), "%s/bare.json", tmpdir);
	write_file(path, "{\"policy\": {\"file\": \"p.json\"}}");
	CHECK_EQ_INT(chdir(tmpdir), 0);
	CHECK_EQ_INT(config_load("bare.json", &cfg, err, sizeof(err)), 0);
	CHECK(strcmp(cfg.dir, ".") == 0);
	CHECK(strcmp(cfg.policy_file, "./p.json") == 0);
	CHECK(strcmp(cfg.state_dir, "./gatehouse-data") == 0);
	CHECK_EQ_INT(chdir(cwd), 0);
}

static void test_errors(void)
{
	char path[PATH_MAX];

	/* Syntax: the message carries file, line and column. */
	expect_error("{\n  \"realm\": \"x\",\n  \"turn\" 5\n}\n", "c.json:3:");
	CHECK(strstr(err, tmpdir) == err);
	expect_error("{\"realm\": \"a\", \"realm\": \"b\"}", "duplicate object key");
	expect_error("{\"realm\": \"a\", \"turn\": {\"relay_ip\": \"1.2.3.4\", \"relay_ip\": \"1.2.3.5\"}}",
	    "duplicate object key");
	expect_error("", "c.json:");
	expect_error("[1, 2]", "expected a JSON object");
	snprintf(path, sizeof(path), "%s/missing.json", tmpdir);
	CHECK_EQ_INT(config_load(path, &cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "missing.json") != NULL);

	/* Unknown keys, at every level, named by their full path. */
	expect_error("{\"relm\": \"x\"}", "relm: unknown key");
	expect_error("{\"turn\": {\"listen\": [{\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"},"
	    " {\"addr\": \"127.0.0.1:3479\", \"transprt\": \"tcp\"}]}}",
	    "turn.listen[1].transprt: unknown key");
	expect_error("{\"turn\": {\"limits\": {\"allocations\": 5}}}",
	    "turn.limits.allocations: unknown key");
	expect_error("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", \"facility\": 1}}}",
	    "log.syslog.facility: unknown key");
	expect_error("{\"identity\": {\"backends\": [{\"type\": \"local\", \"issuer\": \"x\"}]}}",
	    "identity.backends[0].issuer: unknown key");
	expect_error("{\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"chain\": \"c\"}}",
	    "tls.chain: unknown key");
	expect_error("{\"admin\": {\"tls\": {\"cert\": \"a\", \"key\": \"b\", \"chain\": \"c\"}}}",
	    "admin.tls.chain: unknown key");
	expect_error("{\"admin\": {\"tls\": \"cert.pem\"}}", "admin.tls: expected an object");
	/* Names from the file are escaped in the message. */
	expect_error("{\"turn\": {\"a\\nb\": 1}}", "turn.a\\x0ab: unknown key");

	/* Wrong types. */
	expect_error("{\"turn\": {\"port_range\": 5}}",
	    "turn.port_range: expected a string like \"49152-65535\"");
	expect_error("{\"turn\": 5}", "turn: expected an object");
	expect_error("{\"realm\": 5}", "realm: expected 1 to 127");
	expect_error("{\"turn\": {\"max_lifetime_s\": \"600\"}}", "turn.max_lifetime_s: expected an integer");
	expect_error("{\"turn\": {\"max_lifetime_s\": 600.5}}", "turn.max_lifetime_s: expected an integer");
	expect_error("{\"turn\": {\"listen\": {\"addr\": \"127.0.0.1:1\"}}}", "turn.listen: expected an array");
	expect_error("{\"signaling\": {\"allowed_origins\": \"https://a\"}}",
	    "signaling.allowed_origins: expected an array");
	expect_error("{\"turn\": {\"static_users\": {\"bench\": 5}}}",
	    "turn.static_users.bench: expected a password");

	/* Values. */
	expect_error("{\"turn\": {\"port_range\": \"5-4\"}}",
	    "turn.port_range: ports must satisfy 1024 <= first <= last <= 65535");
	expect_error("{\"turn\": {\"port_range\": \"70000-70001\"}}", "turn.port_range: ports must satisfy");
	expect_error("{\"turn\": {\"port_range\": \"50000-49999\"}}", "turn.port_range: ports must satisfy");
	expect_error("{\"turn\": {\"port_range\": \"50000 - 50010\"}}", "turn.port_range: expected a string");
	expect_error("{\"turn\": {\"port_range\": \"-1-5\"}}", "turn.port_range: expected a string");
	expect_error("{\"turn\": {\"deny_peers\": [\"10.0.0.0/8\", \"10.0.0.1/8\"]}}",
	    "turn.deny_peers[1]: expected a CIDR");
	expect_error("{\"turn\": {\"allow_peers\": [\"example.com\"]}}", "turn.allow_peers[0]: expected a CIDR");
	expect_error("{\"turn\": {\"limits\": {\"allocations_per_user\": -1}}}",
	    "turn.limits.allocations_per_user: expected an integer from 1 to 4294967295");
	expect_error("{\"turn\": {\"limits\": {\"channels_per_allocation\": 0}}}",
	    "turn.limits.channels_per_allocation: expected an integer from 1");
	expect_error("{\"turn\": {\"limits\": {\"allocations_total\": 4294967296}}}",
	    "turn.limits.allocations_total: expected an integer from 1 to 4294967295");
	/* No source can hold more than every connection (RELAY_IO_MAX_CONNS). */
	expect_error("{\"turn\": {\"limits\": {\"connections_per_source\": 4097}}}",
	    "turn.limits.connections_per_source: expected an integer from 1 to 4096");
	expect_error("{\"turn\": {\"limits\": {\"connections_per_source\": 0}}}",
	    "turn.limits.connections_per_source: expected an integer from 1 to 4096");
	expect_error("{\"signaling\": {\"calls_per_minute\": 0}}",
	    "signaling.calls_per_minute: expected an integer from 1 to 1000000");
	expect_error("{\"signaling\": {\"logins_per_source\": 257}}",
	    "signaling.logins_per_source: expected an integer from 1 to 256");
	expect_error("{\"signaling\": {\"connections_per_source\": 0}}",
	    "signaling.connections_per_source: expected an integer from 1 to 20000");
	expect_error("{\"turn\": {\"max_lifetime_s\": 59}}", "turn.max_lifetime_s: expected an integer from 60 to 86400");
	expect_error("{\"turn\": {\"default_lifetime_s\": 4000}}",
	    "turn.default_lifetime_s: expected an integer from 60 to turn.max_lifetime_s (3600)");
	expect_error("{\"identity\": {\"mfa\": \"sometimes\"}}",
	    "identity.mfa: expected \"required\", \"optional\" or \"off\"");
	expect_error("{\"identity\": {\"backends\": [{\"type\": \"jwt\", \"audience\": \"a\", \"jwks_file\": \"j\"}]}}",
	    "identity.backends[0]: missing \"issuer\"");
	expect_error("{\"identity\": {\"backends\": [{\"type\": \"ldap\"}]}}",
	    "identity.backends[0].type: expected \"local\" or \"jwt\"");
	expect_error("{\"identity\": {\"backends\": [{}]}}", "identity.backends[0]: missing \"type\"");
	expect_error("{\"identity\": {\"backends\": []}}", "identity.backends: expected an array of 1 to 4");
	expect_error("{\"registry\": {\"type\": \"redis\"}}", "registry.url: required when registry.type is \"redis\"");
	expect_error("{\"registry\": {\"type\": \"redis\", \"url\": \"http://r\"}}", "registry.url: expected a URL");
	expect_error("{\"registry\": {\"url\": \"redis://r\"}}", "registry.url: only used when");
	expect_error("{\"realm\": \"a\\\"b\"}", "realm: expected 1 to 127 printable");
	expect_error("{\"realm\": \"\"}", "realm: expected 1 to 127 printable");
	expect_error("{\"turn\": {\"static_users\": {\"a:b\": \"pw\"}}}",
	    "turn.static_users.a:b: user names are 1 to 63");
	expect_error("{\"turn\": {\"static_users\": {\"bench\": \"\"}}}", "turn.static_users.bench: expected a password");
	expect_error("{\"signaling\": {\"allowed_origins\": [\"https://a.example/\"]}}",
	    "signaling.allowed_origins[0]: expected an origin");
	expect_error("{\"turn\": {\"relay_ip\": \"0.0.0.0\"}}", "turn.relay_ip: must be a concrete address");
	expect_error("{\"turn\": {\"relay_ip\": \"::\"}}", "turn.relay_ip: must be a concrete address");
	expect_error("{\"turn\": {\"relay_ip\": \"127.0.0.1:3478\"}}", "turn.relay_ip: expected an IP address");
	expect_error("{\"turn\": {\"external_ip\": \"localhost\"}}", "turn.external_ip: expected an IP address");
	expect_error("{\"admin\": {\"listen\": \"127.0.0.1\"}}", "admin.listen: expected \"ip:port\"");
	expect_error("{\"admin\": {\"listen\": \"127.0.0.1:0\"}}", "admin.listen: expected \"ip:port\"");
	expect_error("{\"admin\": {\"listen\": \"::1:9443\"}}", "admin.listen: expected \"ip:port\"");
	expect_error("{\"log\": {\"level\": \"verbose\"}}", "log.level: expected \"error\", \"warning\", \"info\" or \"debug\"");
	expect_error("{\"log\": {\"syslog\": {\"transport\": \"udp\"}}}", "log.syslog: missing \"address\"");
	expect_error("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", \"transport\": \"quic\"}}}",
	    "log.syslog.transport: expected \"udp\", \"tcp\" or \"tls\"");
	/* log.syslog.max_message_bytes: the UDP limit is the largest UDP
	 * payload; streams may carry more. */
	expect_error("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", "
	    "\"max_message_bytes\": 1023}}}",
	    "log.syslog.max_message_bytes: expected an integer from 1024 to 4194304");
	expect_error("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", "
	    "\"transport\": \"tcp\", \"max_message_bytes\": 4194305}}}",
	    "log.syslog.max_message_bytes: expected an integer from 1024 to 4194304");
	expect_error("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", "
	    "\"max_message_bytes\": 65508}}}",
	    "log.syslog.max_message_bytes: expected an integer from 1024 to 65507 with \"udp\"");
	expect_error("{\"log\": {\"syslog\": {\"address\": \"127.0.0.1:514\", "
	    "\"max_message_bytes\": \"8k\"}}}",
	    "log.syslog.max_message_bytes: expected an integer");
	expect_error("{\"turn\": {\"listen\": [{\"addr\": \"127.0.0.1:3478\"}]}}", "turn.listen[0]: missing \"transport\"");
	expect_error("{\"turn\": {\"listen\": []}}", "turn.listen: expected an array of 1 to 8");
	expect_error("{\"state_dir\": \"\"}", "state_dir: expected a file path");
	expect_error("{\"tls\": {\"cert\": \"c.pem\"}}", "tls: cert and key must be given together");
	expect_error("{\"turn\": {\"tls\": {\"key\": \"k.pem\"}}}", "turn.tls: cert and key must be given together");
	expect_error("{\"admin\": {\"tls\": {\"cert\": \"c.pem\"}}}",
	    "admin.tls: cert and key must be given together");
	expect_error("{\"admin\": {\"tls\": {\"key\": \"k.pem\"}}}",
	    "admin.tls: cert and key must be given together");
}

/* The rules that join keys: exposure of plain listeners, clashes. */
static void test_rules(void)
{
	/* Plain TCP TURN is for loopback only, however it is spelled. */
	expect_error("{\"turn\": {\"listen\": [{\"addr\": \"0.0.0.0:3478\", \"transport\": \"tcp\"}]}}",
	    "turn.listen[0]: plain TCP is only allowed on loopback; use \"tls\"");
	expect_error("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"turn\": {\"listen\": ["
	    "{\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"},"
	    "{\"addr\": \"192.0.2.1:3478\", \"transport\": \"tcp\"}]}}",
	    "turn.listen[1]: plain TCP is only allowed on loopback");
	expect_ok("{\"turn\": {\"listen\": [{\"addr\": \"[::1]:3478\", \"transport\": \"tcp\"}]}}");
	expect_ok("{\"turn\": {\"listen\": [{\"addr\": \"127.5.6.7:3478\", \"transport\": \"tcp\"}]}}");
	/* UDP anywhere. */
	expect_ok("{\"turn\": {\"listen\": [{\"addr\": \"0.0.0.0:3478\", \"transport\": \"udp\"}]}}");
	/* TLS away from loopback needs a real certificate. */
	expect_error("{\"turn\": {\"listen\": [{\"addr\": \"[::]:5349\", \"transport\": \"tls\"}]}}",
	    "turn.listen[0]: a non-loopback TLS listener needs a certificate");
	expect_ok("{\"turn\": {\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, "
	    "\"listen\": [{\"addr\": \"[::]:5349\", \"transport\": \"tls\"}]}}");
	CHECK(cfg.turn.has_tls);
	expect_ok("{\"turn\": {\"listen\": [{\"addr\": \"127.0.0.1:5349\", \"transport\": \"tls\"}]}}");

	expect_error("{\"signaling\": {\"listen\": \"0.0.0.0:8443\"}}",
	    "signaling.listen: a non-loopback listener needs TLS (set tls.cert and tls.key)");
	expect_ok("{\"signaling\": {\"listen\": \"0.0.0.0:8443\", \"tls\": {\"cert\": \"c\", \"key\": \"k\"}}}");
	CHECK(cfg.signaling.has_tls);
	expect_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"signaling\": {\"listen\": \"192.0.2.1:443\"}}");
	expect_error("{\"admin\": {\"listen\": \"192.0.2.1:9443\"}}",
	    "admin.listen: a non-loopback listener needs TLS");
	/* Either the top-level pair or admin's own will do off loopback;
	 * another component's pair will not. */
	expect_ok("{\"tls\": {\"cert\": \"c\", \"key\": \"k\"}, \"admin\": {\"listen\": \"192.0.2.1:9443\"}}");
	CHECK(!cfg.admin_has_tls);
	expect_ok("{\"admin\": {\"listen\": \"[::]:9443\", \"tls\": {\"cert\": \"c\", \"key\": \"k\"}}}");
	CHECK(cfg.admin_has_tls);
	expect_error("{\"signaling\": {\"tls\": {\"cert\": \"c\", \"key\": \"k\"}},"
	    " \"admin\": {\"listen\": \"192.0.2.1:9443\"}}",
	    "admin.listen: a non-loopback listener needs TLS");
	/* admin.tls does not serve signaling. */
	expect_error("{\"admin\": {\"tls\": {\"cert\": \"c\", \"key\": \"k\"}},"
	    " \"signaling\": {\"listen\": \"192.0.2.1:443\"}}",
	    "signaling.listen: a non-loopback listener needs TLS");

	/* Two sockets of the same kind on one address cannot both bind. */
	expect_error("{\"turn\": {\"listen\": [{\"addr\": \"127.0.0.1:3478\", \"transport\": \"tcp\"},"
	    "{\"addr\": \"127.0.0.1:3478\", \"transport\": \"tls\"}]}}",
	    "turn.listen[1]: 127.0.0.1:3478 is already used by turn.listen[0]");
	expect_error("{\"turn\": {\"listen\": [{\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"},"
	    "{\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"}]}}", "is already used by turn.listen[0]");
	expect_error("{\"turn\": {\"listen\": [{\"addr\": \"0.0.0.0:3478\", \"transport\": \"udp\"},"
	    "{\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"}]}}", "is already used by turn.listen[0]");
	expect_error("{\"admin\": {\"listen\": \"127.0.0.1:8443\"}}",
	    "admin.listen: 127.0.0.1:8443 is already used by signaling.listen");
	expect_ok("{\"turn\": {\"listen\": [{\"addr\": \"127.0.0.1:3478\", \"transport\": \"udp\"},"
	    "{\"addr\": \"127.0.0.1:3478\", \"transport\": \"tcp\"},"
	    "{\"addr\": \"127.0.0.2:3478\", \"transport\": \"tls\"}]}}");

	/* The same rules apply to a config built in code. */
	config_defaults(&cfg);
	cfg.turn.nlisten = 0;
	CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "turn.listen") != NULL);
	config_defaults(&cfg);
	memset(&cfg.turn.relay_ip, 0, sizeof(cfg.turn.relay_ip));
	CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "turn.relay_ip: required") != NULL);
	config_defaults(&cfg);
	cfg.turn.port_min = 2000;
	cfg.turn.port_max = 1999;
	CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "turn.port_range") != NULL);
	config_defaults(&cfg);
	cfg.identity.backends[0].type = CONFIG_BACKEND_JWT;
	CHECK_EQ_INT(config_validate(&cfg, err, sizeof(err)), -1);
	CHECK(strstr(err, "identity.backends[0]: missing \"issuer\"") != NULL);
	/* A tiny buffer is cut, never overrun. */
	config_defaults(&cfg);
	cfg.turn.nlisten = 0;
	err[5] = 'X';
	CHECK_EQ_INT(config_validate(&cfg, err, 5), -1);
	CHECK_EQ_INT(strlen(err), 4);
	CHECK_EQ_INT(err[5], 'X');
}

static void test_hostport(void)
{
	struct sockaddr_storage ss;
	char buf[64];
	static const char *const good[] = {
		"1.2.3.4:3478", "[::1]:1", "[2001:db8::1]:65535", "[::ffff:1.2.3.4]:80",
		"0.0.0.0:443",
	};
	static const char *const bad[] = {
		"", ":80", "1.2.3.4", "1.2.3.4:", "1.2.3.4:0", "1.2.3.4:65536",
		"1.2.3.4:+80", "1.2.3.4:80 ", " 1.2.3.4:80", "1.2.3:80", "::1:80",
		"[::1]", "[::1]80", "[1.2.3.4]:80", "[::1]:080000", "localhost:80",
		"1.2.3.4:8a", "[fe80::1%eth0]:80", "01.2.3.4:80",
	};
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		CHECK_EQ_INT(config_parse_hostport(good[i], &ss), 0);
		config_format_addr((const struct sockaddr *)&ss, buf, sizeof(buf));
		CHECK(strcmp(buf, good[i]) == 0 ||
		    (strcmp(good[i], "[::ffff:1.2.3.4]:80") == 0 && strcmp(buf, "[::ffff:1.2.3.4]:80") == 0));
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(config_parse_hostport(bad[i], &ss), -1);
		if (config_parse_hostport(bad[i], &ss) == 0)
			fprintf(stderr, "  accepted \"%s\"\n", bad[i]);
	}
	CHECK_EQ_INT(config_parse_hostport("[::1]:3478", &ss), 0);
	CHECK_EQ_INT(ss.ss_family, AF_INET6);
	CHECK_EQ_INT(port_of(&ss), 3478);
	/* Short buffers are cut and terminated. */
	config_format_addr((const struct sockaddr *)&ss, buf, 4);
	CHECK(strcmp(buf, "[::") == 0);
	memset(&ss, 0, sizeof(ss));
	config_format_addr((const struct sockaddr *)&ss, buf, sizeof(buf));
	CHECK(buf[0] != '\0');
}

static void cleanup(void)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
}

/* allow_peers may open private ranges, never the host or metadata. */
static void test_peer_lists(void)
{
	expect_ok("{\"turn\": {\"allow_peers\": [\"10.1.0.0/16\", \"fd00::/8\"], "
	    "\"nonce_lifetime_s\": 5}}");
	CHECK_EQ_INT(cfg.turn.peers.nallow, 2);
	CHECK_EQ_INT(cfg.turn.nonce_lifetime_s, 5);
	expect_error("{\"turn\": {\"allow_peers\": [\"10.0.0.0/8\", \"127.0.0.0/16\"]}}",
	    "turn.allow_peers[1]: overlaps 127.0.0.0/8");
	expect_error("{\"turn\": {\"allow_peers\": [\"0.0.0.0/0\"]}}",
	    "turn.allow_peers[0]: overlaps 0.0.0.0/8");
	expect_error("{\"turn\": {\"allow_peers\": [\"169.254.169.254/32\"]}}",
	    "overlaps 169.254.0.0/16");
	expect_error("{\"turn\": {\"allow_peers\": [\"::/0\"]}}", "turn.allow_peers[0]: overlaps");
	/* Loopback by another spelling is refused too. */
	expect_error("{\"turn\": {\"allow_peers\": [\"64:ff9b::7f00:0/120\"]}}",
	    "overlaps 64:ff9b::/96");
	expect_error("{\"turn\": {\"allow_peers\": [\"2002:7f00::/24\"]}}", "overlaps 2002::/16");
	expect_error("{\"turn\": {\"allow_peers\": [\"::7f00:0/104\"]}}", "overlaps ::/96");
	expect_error("{\"turn\": {\"nonce_lifetime_s\": 1}}", "turn.nonce_lifetime_s");
	expect_ok("{\"turn\": {\"public_host\": \"turn.example.com\"}}");
	CHECK(strcmp(cfg.turn.public_host, "turn.example.com") == 0);
	expect_error("{\"turn\": {\"public_host\": \"turn.example.com/x\"}}",
	    "turn.public_host: expected a DNS name");
	expect_error("{\"turn\": {\"static_users\": {\"gh1.x\": \"pw\"}}}",
	    "turn.static_users.gh1.x: names starting with \"gh1.\" are reserved");
}

/* run_as: a user name as useradd takes it; empty (the default) means
 * "gatehouse", else "nobody", resolved by privdrop at start. */
static void test_run_as(void)
{
	expect_ok("{}");
	CHECK(cfg.run_as[0] == '\0');
	expect_ok("{\"run_as\": \"gatehouse\"}");
	CHECK(strcmp(cfg.run_as, "gatehouse") == 0);
	expect_ok("{\"run_as\": \"_gh-svc_2\"}");
	expect_ok("{\"run_as\": \"abcdefghijklmnopqrstuvwxyz01234\"}");
	expect_error("{\"run_as\": \"abcdefghijklmnopqrstuvwxyz012345\"}", "run_as: expected a user name");
	expect_error("{\"run_as\": \"\"}", "run_as: expected a user name");
	expect_error("{\"run_as\": \"1gh\"}", "run_as: expected a user name");
	expect_error("{\"run_as\": \"-gh\"}", "run_as: expected a user name");
	expect_error("{\"run_as\": \"Gatehouse\"}", "run_as: expected a user name");
	expect_error("{\"run_as\": \"gh user\"}", "run_as: expected a user name");
	expect_error("{\"run_as\": \"../root\"}", "run_as: expected a user name");
	expect_error("{\"run_as\": 0}", "run_as: expected a user name");
}

int main(void)
{
	const char *base = getenv("TMPDIR");

	snprintf(tmpdir, sizeof(tmpdir), "%s/gh-test-config-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_design_example();
	test_other_values();
	test_syslog_max_message();
	test_admin_tls();
	test_defaults();
	test_bare_name();
	test_errors();
	test_run_as();
	test_rules();
	test_hostport();
	test_peer_lists();
	cleanup();
	return check_done("test_config");
}
