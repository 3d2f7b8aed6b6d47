/*
 * turnchat-socket-generator: makes /etc/turnchat.conf the one place that
 * says where turnchat listens, also when systemd holds the socket. systemd
 * runs it at boot and on every daemon-reload (systemd.generator(7)); it
 * writes a drop-in for turnchat.socket whose ListenStream= lines are the
 * addresses of the config's host and port.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/socket.h>

#include "build_info.h"
#include "config.h"
#include "net.h"

#define DROPIN_DIR "turnchat.socket.d"
#define DROPIN_FILE "50-turnchat-conf.conf"

/* Generators log to the kernel log through stderr; say who is talking. */
static void report(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "turnchat-socket-generator: %s\n", message);
}

static int write_dropin(FILE *out, const struct config *cfg)
{
	struct addrinfo *list;
	int written = 0;
	int rc = net_resolve(cfg->host, cfg->port, true, &list);
	if (rc != 0) {
		fprintf(stderr,
			"turnchat-socket-generator: cannot resolve '%s': %s; "
			"turnchat.socket keeps its own ListenStream=\n",
			cfg->host, gai_strerror(rc));
		return -1;
	}
	fprintf(out,
		"# Written by turnchat-socket-generator from %s: host \"%s\", port %u.\n"
		"# Change that file, not this one, then run\n"
		"# systemctl daemon-reload && systemctl restart turnchat.socket\n"
		"[Socket]\n"
		"ListenStream=\n",
		TURNCHAT_CONFIG_PATH, cfg->host, cfg->port);
	for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		char host[NI_MAXHOST];
		if (!net_host_text(ai->ai_addr, ai->ai_addrlen, host, sizeof(host)))
			continue;
		/* "::" and "0.0.0.0" mean everywhere; systemd says that with the port alone. */
		if (strcmp(host, "::") == 0 || strcmp(host, "0.0.0.0") == 0)
			fprintf(out, "ListenStream=%u\n", cfg->port);
		else if (ai->ai_family == AF_INET6)
			fprintf(out, "ListenStream=[%s]:%u\n", host, cfg->port);
		else
			fprintf(out, "ListenStream=%s:%u\n", host, cfg->port);
		written++;
	}
	/* An address that is not up yet at boot must not fail the socket. */
	fprintf(out, "FreeBind=yes\n");
	freeaddrinfo(list);
	return written > 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct config cfg;
	char dir[4096], path[4200], tmp[4300];

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: turnchat-socket-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n");
		return 64;
	}
	config_set_defaults(&cfg);
	if (config_load_file(&cfg, TURNCHAT_CONFIG_PATH, false, report, NULL) > 0) {
		/* Better the unit's own port than no socket at all. */
		fprintf(stderr,
			"turnchat-socket-generator: %s has errors; turnchat.socket "
			"keeps its own ListenStream=\n",
			TURNCHAT_CONFIG_PATH);
		return 0;
	}
	snprintf(dir, sizeof(dir), "%s/%s", argv[1], DROPIN_DIR);
	snprintf(path, sizeof(path), "%s/%s", dir, DROPIN_FILE);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "turnchat-socket-generator: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	FILE *out = fopen(tmp, "we");
	if (out == NULL) {
		fprintf(stderr, "turnchat-socket-generator: %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	int rc = write_dropin(out, &cfg);
	if (fclose(out) != 0 || rc < 0) {
		remove(tmp);
		return rc < 0 ? 0 : 1;
	}
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "turnchat-socket-generator: %s: %s\n", path, strerror(errno));
		remove(tmp);
		return 1;
	}
	return 0;
}
