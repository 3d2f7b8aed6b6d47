/*
 * turnchat-socket-generator: makes /etc/turnchat.conf the one place that
 * says where turnchat listens, also when systemd holds the socket. systemd
 * runs it at boot and on every daemon-reload (systemd.generator(7)); it
 * writes a drop-in for turnchat.socket whose ListenStream= lines are the
 * addresses of the config's host and port, and of tls_port too when the
 * config names a TLS certificate and key.
 *
 * With TLS it also writes a drop-in for turnchat.service that hands the
 * sandboxed service, whose dynamic user cannot read a root-only key, the
 * pair as credentials (LoadCredential=, systemd 252). systemd copies
 * credentials only at start; so that `systemctl reload` can put a renewed
 * certificate in force, the drop-in's ExecReload= first copies the pair as
 * root into the service's runtime directory, where turnchatd's certificate
 * module looks before the credentials.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "build_info.h"
#include "config.h"
#include "net.h"

#define SOCKET_DROPIN_DIR "turnchat.socket.d"
#define SOCKET_DROPIN_FILE "50-turnchat-conf.conf"
#define SERVICE_DROPIN_DIR "turnchat.service.d"
#define SERVICE_DROPIN_FILE "50-turnchat-tls.conf"

/* What to write, decided once. */
struct plan {
	const struct config *cfg;
	bool tls; /* the socket listens on tls_port too, the service gets the pair */
};

/* Generators log to the kernel log through stderr; say who is talking. */
static void report(void *ctx, const char *message)
{
	(void)ctx;
	fprintf(stderr, "turnchat-socket-generator: %s\n", message);
}

#ifdef HAVE_TLS
/*
 * A path systemd and sh take as written: no quoting, '%' specifiers or '$'
 * to escape in LoadCredential= and ExecReload=. Other paths are refused
 * rather than escaped by hand; the config already insists on absolute ones.
 */
static bool plain_path(const char *path)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789/._-+,:@=~";

	return path[0] == '/' && strspn(path, allowed) == strlen(path);
}
#endif

/* True when the config asks for TLS and the pair can be handed to systemd. */
static bool tls_wanted(const struct config *cfg)
{
	const struct server_config *s = &cfg->server;

	if (!s->tls_certificate[0] || !s->tls_key[0])
		return false;
#ifdef HAVE_TLS
	const char *odd = !plain_path(s->tls_certificate) ? s->tls_certificate
			  : !plain_path(s->tls_key)       ? s->tls_key
							  : NULL;
	if (odd == NULL)
		return true;
	fprintf(stderr,
		"turnchat-socket-generator: %s: '%s' has characters this generator does not "
		"pass to systemd (use letters, digits and / . _ - + , : @ = ~); "
		"turnchat.service gets no TLS credentials and the socket no TLS port\n",
		TURNCHAT_CONFIG_PATH, odd);
#else
	fprintf(stderr,
		"turnchat-socket-generator: built without TLS; the TLS settings of %s "
		"open no port\n",
		TURNCHAT_CONFIG_PATH);
#endif
	return false;
}

/* One ListenStream= line for each address of list, on port. */
static int listen_lines(FILE *out, const struct addrinfo *list, unsigned port)
{
	int written = 0;

	for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		char host[NI_MAXHOST];
		if (!net_host_text(ai->ai_addr, ai->ai_addrlen, host, sizeof(host)))
			continue;
		/* "::" and "0.0.0.0" mean everywhere; systemd says that with the port alone. */
		if (strcmp(host, "::") == 0 || strcmp(host, "0.0.0.0") == 0)
			fprintf(out, "ListenStream=%u\n", port);
		else if (ai->ai_family == AF_INET6)
			fprintf(out, "ListenStream=[%s]:%u\n", host, port);
		else
			fprintf(out, "ListenStream=%s:%u\n", host, port);
		written++;
	}
	return written;
}

static int write_socket_dropin(FILE *out, const struct plan *plan)
{
	const struct config *cfg = plan->cfg;
	struct addrinfo *list;
	bool tls = plan->tls;
	char tls_note[64] = "";
	int rc = net_resolve(cfg->host, cfg->port, true, &list);

	if (rc != 0) {
		fprintf(stderr,
			"turnchat-socket-generator: cannot resolve '%s': %s; "
			"turnchat.socket keeps its own ListenStream=\n",
			cfg->host, gai_strerror(rc));
		return -1;
	}
	if (tls)
		snprintf(tls_note, sizeof(tls_note), ", TLS port %u", cfg->tls_port);
	fprintf(out,
		"# Written by turnchat-socket-generator from %s: host \"%s\", port %u%s.\n"
		"# Change that file, not this one, then run\n"
		"# systemctl daemon-reload && systemctl restart turnchat.socket\n"
		"[Socket]\n"
		"ListenStream=\n",
		TURNCHAT_CONFIG_PATH, cfg->host, cfg->port, tls_note);
	int written = listen_lines(out, list, cfg->port);
	/* turnchatd tells the TLS sockets by their port (one unit names all
	 * its sockets alike), so the same addresses again. */
	if (written > 0 && tls)
		listen_lines(out, list, cfg->tls_port);
	/* An address that is not up yet at boot must not fail the socket. */
	fprintf(out, "FreeBind=yes\n");
	freeaddrinfo(list);
	return written > 0 ? 0 : -1;
}

static int write_service_dropin(FILE *out, const struct plan *plan)
{
	const struct config *cfg = plan->cfg;
	const char *crt = cfg->server.tls_certificate, *key = cfg->server.tls_key;

	fprintf(out,
		"# Written by turnchat-socket-generator from %s: server.tls_certificate\n"
		"# and server.tls_key.  Change that file, not this one, then run\n"
		"# systemctl daemon-reload && systemctl restart turnchat.socket\n"
		"[Service]\n"
		"# The dynamic user cannot read a key only root may read: systemd reads\n"
		"# both files as root at each start and hands the service copies in\n"
		"# $CREDENTIALS_DIRECTORY.  A missing file fails the start (243/CREDENTIALS):\n"
		"# turnchatd --make-certificate makes a self-signed pair.\n"
		"LoadCredential=%s:%s\n"
		"LoadCredential=%s:%s\n",
		TURNCHAT_CONFIG_PATH, CONFIG_CERTIFICATE_CREDENTIAL, crt, CONFIG_KEY_CREDENTIAL, key);
	/* The same names as the credentials: certificate.c looks for both. */
#define CRT CONFIG_CERTIFICATE_CREDENTIAL
#define KEY CONFIG_KEY_CREDENTIAL
	fprintf(out,
		"# systemd 252 copies credentials only at start.  So that a reload puts a\n"
		"# renewed certificate in force without dropping anyone, root first copies\n"
		"# the pair into the runtime directory, where turnchatd looks before the\n"
		"# credentials, then the unit's own SIGHUP follows.\n"
		"RuntimeDirectory=turnchat\n"
		"RuntimeDirectoryMode=0700\n"
		"ExecReload=\n"
		"ExecReload=-+/bin/sh -c 'umask 077 && cd \"$$RUNTIME_DIRECTORY\" && "
		"cp -- \"$$1\" " CRT ".new && cp -- \"$$2\" " KEY ".new && "
		"chown --reference=. " CRT ".new " KEY ".new && "
		"mv -f " CRT ".new " CRT " && mv -f " KEY ".new " KEY "' turnchat-renew %s %s\n"
		"ExecReload=/bin/sh -c 'kill -HUP $$MAINPID'\n",
		crt, key);
#undef CRT
#undef KEY
	return 0;
}

/*
 * Writes normal_dir/unit_dir/file through a temporary file, so systemd never
 * reads half of it. fill returning -1 means "no drop-in" (said already).
 * Returns -1 only on an I/O error.
 */
static int write_dropin(const char *normal_dir, const char *unit_dir, const char *file,
			int (*fill)(FILE *, const struct plan *), const struct plan *plan)
{
	char dir[4096], path[4200], tmp[4300];

	snprintf(dir, sizeof(dir), "%s/%s", normal_dir, unit_dir);
	snprintf(path, sizeof(path), "%s/%s", dir, file);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "turnchat-socket-generator: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	FILE *out = fopen(tmp, "we");
	if (out == NULL) {
		fprintf(stderr, "turnchat-socket-generator: %s: %s\n", tmp, strerror(errno));
		return -1;
	}
	int rc = fill(out, plan);
	if (fclose(out) != 0 || rc < 0) {
		remove(tmp);
		if (rc < 0)
			remove(path); /* no drop-in, not an old one */
		return rc < 0 ? 0 : -1;
	}
	if (rename(tmp, path) < 0) {
		fprintf(stderr, "turnchat-socket-generator: %s: %s\n", path, strerror(errno));
		remove(tmp);
		return -1;
	}
	return 0;
}

/* systemd empties the generator directories before each run; should this
 * one ever be run twice into the same one, no old TLS drop-in survives. */
static void remove_dropin(const char *normal_dir, const char *unit_dir, const char *file)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s/%s", normal_dir, unit_dir, file);
	if (unlink(path) < 0 && errno != ENOENT)
		fprintf(stderr, "turnchat-socket-generator: %s: %s\n", path, strerror(errno));
}

int main(int argc, char **argv)
{
	struct config cfg;

	if (argc != 2 && argc != 4) {
		fprintf(stderr, "usage: turnchat-socket-generator NORMAL_DIR [EARLY_DIR LATE_DIR]\n");
		return 64;
	}
	config_set_defaults(&cfg);
	if (config_load_file(&cfg, TURNCHAT_CONFIG_PATH, false, report, NULL) > 0 ||
	    config_check(&cfg, TURNCHAT_CONFIG_PATH, report, NULL) > 0) {
		/* Better the unit's own port than no socket at all. */
		fprintf(stderr,
			"turnchat-socket-generator: %s has errors; turnchat.socket "
			"keeps its own ListenStream=\n",
			TURNCHAT_CONFIG_PATH);
		remove_dropin(argv[1], SOCKET_DROPIN_DIR, SOCKET_DROPIN_FILE);
		remove_dropin(argv[1], SERVICE_DROPIN_DIR, SERVICE_DROPIN_FILE);
		return 0;
	}
	struct plan plan = {.cfg = &cfg, .tls = tls_wanted(&cfg)};
	if (write_dropin(argv[1], SOCKET_DROPIN_DIR, SOCKET_DROPIN_FILE, write_socket_dropin, &plan) <
	    0)
		return 1;
	if (!plan.tls) {
		remove_dropin(argv[1], SERVICE_DROPIN_DIR, SERVICE_DROPIN_FILE);
		return 0;
	}
	if (write_dropin(argv[1], SERVICE_DROPIN_DIR, SERVICE_DROPIN_FILE, write_service_dropin,
			 &plan) < 0)
		return 1;
	return 0;
}
