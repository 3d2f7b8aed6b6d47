/*
 * certificate: the daemon's TLS certificate and key. Called by turnchatd's
 * main at start, on every reload (SIGHUP: renewal without dropping anyone;
 * a broken new pair leaves the old one in force), and for --fingerprint and
 * --make-certificate.
 *
 * Under systemd the service has no right to read a root-only key: the
 * socket generator has systemd pass both files in as credentials
 * (LoadCredential=, see systemd.exec(5)), read from $CREDENTIALS_DIRECTORY.
 * systemd 252 copies them once, at start; a reload does not refresh them,
 * so the generator's ExecReload= first copies the renewed pair, as root,
 * into $RUNTIME_DIRECTORY, and that copy wins over the credentials.
 */
#include "certificate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"

bool certificate_configured(const struct server_config *cfg)
{
	return cfg->tls_certificate[0] && cfg->tls_key[0];
}

#ifdef HAVE_TLS
/* Where the pair is read from. */
struct pair {
	const char *certificate, *key;
	const char *origin; /* NULL: the configured files themselves */
	char certificate_buf[4200], key_buf[4200];
};

/* Both files of the pair in directory dir, if the service manager put them there. */
static bool copies_in(const char *dir, struct pair *p)
{
	char certificate[sizeof(p->certificate_buf)], key[sizeof(p->key_buf)];

	if (dir == NULL || dir[0] != '/')
		return false;
	snprintf(certificate, sizeof(certificate), "%s/%s", dir, CONFIG_CERTIFICATE_CREDENTIAL);
	snprintf(key, sizeof(key), "%s/%s", dir, CONFIG_KEY_CREDENTIAL);
	if (access(certificate, R_OK) < 0 || access(key, R_OK) < 0)
		return false;
	memcpy(p->certificate_buf, certificate, sizeof(certificate));
	memcpy(p->key_buf, key, sizeof(key));
	p->certificate = p->certificate_buf;
	p->key = p->key_buf;
	return true;
}

static void find_pair(const struct server_config *cfg, struct pair *p)
{
	p->certificate = cfg->tls_certificate;
	p->key = cfg->tls_key;
	p->origin = NULL;
	/* A renewed copy counts only beside credentials: it replaces them. */
	if (copies_in(getenv("CREDENTIALS_DIRECTORY"), p)) {
		p->origin = "systemd's credentials";
		if (copies_in(getenv("RUNTIME_DIRECTORY"), p))
			p->origin = "the copy systemctl reload made";
	}
}

/* The reason a configured file cannot be read, in words, or false if it can. */
static bool unreadable(const char *path, char *error, size_t size)
{
	if (access(path, R_OK) == 0)
		return false;
	int saved = errno;
	snprintf(error, size, "cannot read %s: %s", path, strerror(saved));
	return true;
}

static struct tls_config *load(const struct server_config *cfg, struct pair *p, char *error,
			       size_t size)
{
	if (!certificate_configured(cfg)) {
		snprintf(error, size, "server.tls_certificate and server.tls_key are not both set");
		return NULL;
	}
	find_pair(cfg, p);
	if (p->origin == NULL &&
	    (unreadable(p->certificate, error, size) || unreadable(p->key, error, size)))
		return NULL;
	return tls_server_config(p->certificate, p->key, error, size);
}

struct tls_config *certificate_load(const struct server_config *cfg, char *error, size_t size)
{
	struct pair p;
	return load(cfg, &p, error, size);
}

int certificate_start(const struct server_config *cfg, const char *config_option,
		      struct tls_config **tls)
{
	char why[1024];

	*tls = NULL;
	if (!certificate_configured(cfg))
		return 0;
	*tls = certificate_load(cfg, why, sizeof(why));
	if (*tls)
		return 0;
	log_warnx("TLS: %s", why);
	if (access(cfg->tls_certificate, F_OK) < 0 && access(cfg->tls_key, F_OK) < 0)
		log_warnx("to make a self-signed pair there, run: turnchatd %s--make-certificate",
			  config_option);
	else if (geteuid() != 0 && access(cfg->tls_key, F_OK) == 0 && access(cfg->tls_key, R_OK) < 0)
		log_warnx("start it as root: it reads the key, then becomes server.user");
	return -1;
}

void certificate_reload(struct server *server, const struct server_config *cfg)
{
	char error[TLS_ERROR_MAX + 512], print[TLS_FINGERPRINT_MAX] = "";
	struct pair p;

	if (!certificate_configured(cfg)) {
		if (server->tls)
			log_warnx("TLS settings removed: the TLS port keeps the certificate in force "
				  "until turnchatd is restarted");
		return;
	}
	struct tls_config *fresh = load(cfg, &p, error, sizeof(error));
	if (fresh == NULL) {
		log_warnx("%s; %s", error,
			  server->tls ? "the certificate in force stays" : "TLS is not served");
		return;
	}
	/* Open connections keep the context they started with (OpenSSL counts
	 * its references); new ones get the new pair. */
	tls_config_free(server->tls);
	server->tls = fresh;
	tls_file_fingerprint(p.certificate, print, sizeof(print), error, sizeof(error));
	log_info("TLS certificate %s loaded%s%s%s, key %s", cfg->tls_certificate,
		 p.origin ? " (from " : "", p.origin ? p.origin : "", p.origin ? ")" : "",
		 print[0] ? print : "of unknown fingerprint");
}

void certificate_drop(struct server *server)
{
	tls_config_free(server->tls);
	server->tls = NULL;
}

int certificate_print_fingerprint(const struct server_config *cfg)
{
	char text[TLS_FINGERPRINT_MAX], error[TLS_ERROR_MAX + 512];
	struct pair p;

	if (!certificate_configured(cfg)) {
		fprintf(stderr, "turnchatd: no certificate configured (server.tls_certificate)\n");
		return 1;
	}
	find_pair(cfg, &p);
	if (!tls_file_fingerprint(p.certificate, text, sizeof(text), error, sizeof(error))) {
		fprintf(stderr, "turnchatd: %s\n", error);
		return 1;
	}
	printf("%s\n", text);
	return 0;
}

/* The directory a file goes in, made (0755, as /etc/ssh) if it is missing. */
static bool make_parent(const char *file)
{
	char dir[4200];
	snprintf(dir, sizeof(dir), "%s", file);
	char *slash = strrchr(dir, '/');
	if (slash == NULL || slash == dir)
		return true;
	*slash = '\0';
	if (access(dir, F_OK) == 0)
		return true;
	if (!make_parent(dir))
		return false;
	if (mkdir(dir, 0755) == 0) {
		/* Whatever the umask: others must reach the certificate. */
		chmod(dir, 0755);
	} else if (errno != EEXIST) {
		fprintf(stderr, "turnchatd: cannot make %s: %s\n", dir, strerror(errno));
		return false;
	}
	return true;
}

int certificate_make(const struct server_config *cfg)
{
	char host[256] = "turnchatd", error[TLS_ERROR_MAX + 512];

	if (!certificate_configured(cfg)) {
		fprintf(stderr, "turnchatd: set server.tls_certificate and server.tls_key first\n");
		return 1;
	}
	if (access(cfg->tls_certificate, F_OK) == 0 && access(cfg->tls_key, F_OK) == 0) {
		printf("%s and %s exist already; nothing to do\n", cfg->tls_certificate,
		       cfg->tls_key);
		return 0;
	}
	if (!make_parent(cfg->tls_key) || !make_parent(cfg->tls_certificate))
		return 1;
	gethostname(host, sizeof(host) - 1);
	if (!tls_make_self_signed(cfg->tls_certificate, cfg->tls_key, host, error, sizeof(error))) {
		fprintf(stderr, "turnchatd: %s\n", error);
		return 1;
	}
	printf("made %s and %s (self-signed, for '%s')\n", cfg->tls_key, cfg->tls_certificate, host);
	return certificate_print_fingerprint(cfg);
}
#else
struct tls_config *certificate_load(const struct server_config *cfg, char *error, size_t size)
{
	(void)cfg;
	snprintf(error, size, "this turnchatd was built without TLS");
	return NULL;
}

/* The shipped configuration names a pair: a build without TLS serves plain
 * text only, and says so, rather than refusing to start. */
int certificate_start(const struct server_config *cfg, const char *config_option,
		      struct tls_config **tls)
{
	(void)config_option;
	*tls = NULL;
	if (certificate_configured(cfg))
		log_warnx("built without TLS: server.tls_certificate and server.tls_key do "
			  "nothing");
	return 0;
}

void certificate_reload(struct server *server, const struct server_config *cfg)
{
	(void)server;
	if (certificate_configured(cfg))
		log_warnx("this turnchatd was built without TLS; the TLS settings do nothing");
}

void certificate_drop(struct server *server)
{
	(void)server;
}

int certificate_print_fingerprint(const struct server_config *cfg)
{
	(void)cfg;
	fprintf(stderr, "turnchatd: built without TLS\n");
	return 1;
}

int certificate_make(const struct server_config *cfg)
{
	return certificate_print_fingerprint(cfg);
}
#endif
