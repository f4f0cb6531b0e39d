/* The gatehouse command line (DESIGN.md, "Command line"). Exit codes: 0
 * success, 1 runtime failure, 2 bad usage or invalid input. */
#include <stdio.h>
#include <string.h>

#include "gateway/cli_ctl.h"
#include "gateway/cli_policy.h"
#include "gateway/cli_user.h"
#include "gateway/config.h"
#include "gateway/daemon.h"
#include "gateway/log.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_text[] =
    "usage: gatehouse <command> [options]\n"
    "\n"
    "commands:\n"
    "  run [-c FILE]            start the gateway (embedded loopback defaults\n"
    "                           when no file is given)\n"
    "  check-config -c FILE     validate a configuration file and load the\n"
    "                           files it names (certificates, keys, JWKS,\n"
    "                           policy, syslog CA); creates and binds nothing\n"
    "  user add|del|list|passwd|unlock|disable|enable|totp-reset|rekey ...\n"
    "                           manage local users (gatehouse user help)\n"
    "  policy check FILE        validate a policy file and print its rules\n"
    "  policy explain FROM TO MEDIA [-c FILE | --policy FILE]\n"
    "                           say which rule decides a call\n"
    "  ctl login|status|sessions|calls|users|policy|audit ...\n"
    "                           drive the admin API (gatehouse ctl help)\n"
    "  help                     show this text\n"
    "  --version                print the version\n";

static int usage(FILE *out, int code)
{
	fputs(usage_text, out);
	return code;
}

/* Reads "-c FILE" / "--config FILE" / "--config=FILE"; anything else is
 * a usage error. */
static int parse_config_opt(int argc, char **argv, const char **path)
{
	int i;

	for (i = 0; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) &&
		    i + 1 < argc) {
			*path = argv[++i];
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			*path = argv[i] + 9;
		} else {
			fprintf(stderr, "gatehouse: unexpected argument '%s'\n", argv[i]);
			return -1;
		}
	}
	return 0;
}

static int load(const char *path, struct config *cfg)
{
	char err[512];

	if (path == NULL) {
		config_defaults(cfg);
		if (config_validate(cfg, err, sizeof(err)) != 0) {
			fprintf(stderr, "gatehouse: embedded defaults: %s\n", err);
			return -1;
		}
		return 0;
	}
	if (config_load(path, cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", path, err);
		return -1;
	}
	return 0;
}

/* The files the configuration names are input too: one that is missing,
 * unreadable or invalid is refused by check-config and by run alike,
 * with the same message and exit 2 (daemon.h). */
static int check_files(const char *path, const struct config *cfg)
{
	char err[1536];

	if (daemon_check_files(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "gatehouse: %s: %s\n", path != NULL ? path : "embedded defaults",
		    err);
		return -1;
	}
	return 0;
}

static int cmd_run(int argc, char **argv)
{
	static struct config cfg;
	const char *path = NULL;

	if (parse_config_opt(argc, argv, &path) != 0)
		return usage(stderr, EXIT_USAGE);
	if (load(path, &cfg) != 0 || check_files(path, &cfg) != 0)
		return EXIT_USAGE;
	if (path == NULL)
		log_info("no configuration file: running on embedded loopback defaults");
	return daemon_run(&cfg) == 0 ? 0 : EXIT_RUNTIME;
}

static int cmd_check_config(int argc, char **argv)
{
	static struct config cfg;
	const char *path = NULL;

	if (parse_config_opt(argc, argv, &path) != 0 || path == NULL)
		return usage(stderr, EXIT_USAGE);
	if (load(path, &cfg) != 0)
		return EXIT_USAGE;
	/* The daemon logs the same at start; valid, so still exit 0. */
	if (cfg.registry.type == CONFIG_REGISTRY_REDIS)
		fprintf(stderr, "gatehouse: %s: warning: %s\n", path, CONFIG_REDIS_UNBUILT_TEXT);
	if (check_files(path, &cfg) != 0)
		return EXIT_USAGE;
	printf("%s: ok\n", path);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage(stderr, EXIT_USAGE);
	if (strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (strcmp(argv[1], "check-config") == 0)
		return cmd_check_config(argc - 2, argv + 2);
	if (strcmp(argv[1], "user") == 0)
		return cli_user(argc - 2, argv + 2);
	if (strcmp(argv[1], "policy") == 0)
		return cli_policy(argc - 2, argv + 2);
	if (strcmp(argv[1], "ctl") == 0)
		return cli_ctl(argc - 2, argv + 2);
	if (strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
	    strcmp(argv[1], "-h") == 0)
		return usage(stdout, 0);
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("gatehouse %s\n", GH_VERSION);
		return 0;
	}
	fprintf(stderr, "gatehouse: unknown command '%s'\n", argv[1]);
	return usage(stderr, EXIT_USAGE);
}
