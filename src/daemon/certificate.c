/*
 * certificate: the daemon's TLS certificate and key. Called by turnchatd's
 * main at start, on every reload (SIGHUP: renewal without dropping anyone;
 * a broken new pair leaves the old one in force), and for --fingerprint and
 * --make-certificate.
 *
 * Under systemd the service has no right to read a root-only key: the
 * socket generator has systemd pass both files in as credentials
 * (LoadCredential=, see systemd.exec(5)), which are read from
 * $CREDENTIALS_DIRECTORY first.
 */
#include "certificate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"

bool certificate_configured(const struct server_config *cfg)
{
	return cfg->tls_certificate[0] && cfg->tls_key[0];
}

/* Where to read one of the two files: its credential, if systemd passed it. */
static const char *source(const char *path, const char *credential, char *buf, size_t size)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");

	if (dir && dir[0] == '/') {
		snprintf(buf, size, "%s/%s", dir, credential);
		if (access(buf, R_OK) == 0)
			return buf;
	}
	return path;
}

#ifdef HAVE_TLS
struct tls_config *certificate_load(const struct server_config *cfg, char *error, size_t size)
{
	char cert_buf[4200], key_buf[4200];

	if (!certificate_configured(cfg)) {
		snprintf(error, size, "server.tls_certificate and server.tls_key are not both set");
		return NULL;
	}
	return tls_server_config(
		source(cfg->tls_certificate, CERTIFICATE_CREDENTIAL, cert_buf, sizeof(cert_buf)),
		source(cfg->tls_key, KEY_CREDENTIAL, key_buf, sizeof(key_buf)), error, size);
}

void certificate_reload(struct server *server, const struct server_config *cfg)
{
	char error[TLS_ERROR_MAX + 512];

	if (!certificate_configured(cfg)) {
		if (server->tls)
			log_warnx("TLS settings removed: the TLS port keeps the certificate in force "
				  "until turnchatd is restarted");
		return;
	}
	struct tls_config *fresh = certificate_load(cfg, error, sizeof(error));
	if (fresh == NULL) {
		log_warnx("%s; %s", error,
			  server->tls ? "the certificate in force stays" : "TLS is not served");
		return;
	}
	/* Open connections keep the context they started with (OpenSSL counts
	 * its references); new ones get the new pair. */
	tls_config_free(server->tls);
	server->tls = fresh;
	log_info("TLS certificate %s loaded", cfg->tls_certificate);
}

void certificate_drop(struct server *server)
{
	tls_config_free(server->tls);
	server->tls = NULL;
}

int certificate_print_fingerprint(const struct server_config *cfg)
{
	char buf[4200], text[TLS_FINGERPRINT_MAX], error[TLS_ERROR_MAX + 512];

	if (!certificate_configured(cfg)) {
		fprintf(stderr, "turnchatd: no certificate configured (server.tls_certificate)\n");
		return 1;
	}
	if (!tls_file_fingerprint(
		    source(cfg->tls_certificate, CERTIFICATE_CREDENTIAL, buf, sizeof(buf)), text,
		    sizeof(text), error, sizeof(error))) {
		fprintf(stderr, "turnchatd: %s\n", error);
		return 1;
	}
	printf("%s\n", text);
	return 0;
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
