/*
 * trust: called by turnchat's main once the socket is connected, when the
 * person asked for TLS (--tls, client.tls); calls tls.c for the handshake
 * and the key, and reads and appends known_hosts.
 */
#include "trust.h"

#include <errno.h>
#include <poll.h>
#include <sys/epoll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "tls.h"

/* A handshake that takes longer has nobody sensible at the other end. */
#define TRUST_HANDSHAKE_MS 15000

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the handshake to its end; false with the reason in error. */
static bool handshake(struct tls *tls, int fd, char *error, size_t size)
{
	long long deadline = now_ms() + TRUST_HANDSHAKE_MS;

	for (;;) {
		uint32_t wait = 0;
		int rc = tls_handshake(tls, &wait);
		if (rc == 1)
			return true;
		if (rc < 0) {
			snprintf(error, size, "%s", tls_error(tls));
			return false;
		}
		long long left = deadline - now_ms();
		struct pollfd p = {.fd = fd, .events = (short)(wait == EPOLLOUT ? POLLOUT : POLLIN)};
		if (left <= 0 || (poll(&p, 1, (int)left) < 0 && errno != EINTR)) {
			snprintf(error, size, "no TLS handshake within %d seconds",
				 TRUST_HANDSHAKE_MS / 1000);
			return false;
		}
	}
}

/* Where known_hosts lives; false when there is no home to put it in. */
static bool known_hosts_path(char *path, size_t size)
{
	const char *state = getenv("XDG_STATE_HOME");
	const char *home = getenv("HOME");

	if (state && state[0] == '/')
		snprintf(path, size, "%s/turnchat/known_hosts", state);
	else if (home && home[0])
		snprintf(path, size, "%s/.local/state/turnchat/known_hosts", home);
	else
		return false;
	return true;
}

/* mkdir -p of path's folder, private to its owner like ~/.ssh. */
static void make_parent(const char *path)
{
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s", path);
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
}

/* The fingerprint known_hosts holds for who, and its line; 0 if none. */
static int lookup(const char *path, const char *who, char *known, size_t size)
{
	FILE *in = fopen(path, "r");
	char line[512];
	int number = 0;

	if (in == NULL)
		return 0;
	while (fgets(line, sizeof(line), in)) {
		char name[300], print[TLS_FINGERPRINT_MAX + 8];
		number++;
		if (line[0] == '#' || sscanf(line, "%299s %58s", name, print) != 2)
			continue;
		if (strcmp(name, who) == 0) {
			snprintf(known, size, "%s", print);
			fclose(in);
			return number;
		}
	}
	fclose(in);
	return 0;
}

/* Trust on first use; returns 0, or TRUST_REFUSED with the reasons said. */
static int pin(struct tls *tls, const char *host, unsigned port, char *how, size_t how_size)
{
	char path[4096], who[300], seen[TLS_FINGERPRINT_MAX], known[TLS_FINGERPRINT_MAX + 8];

	if (!tls_peer_fingerprint(tls, seen, sizeof(seen))) {
		fprintf(stderr, "turnchat: %s port %u sent no certificate\n", host, port);
		return TRUST_REFUSED;
	}
	snprintf(who, sizeof(who), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	if (!known_hosts_path(path, sizeof(path))) {
		fprintf(stderr,
			"turnchat: no HOME to keep known_hosts in; %s's key is %s, "
			"trusted for this connection only\n",
			who, seen);
		snprintf(how, how_size, "%s, key not remembered", tls_version(tls));
		return 0;
	}
	int line = lookup(path, who, known, sizeof(known));
	if (line && strcmp(known, seen) == 0) {
		snprintf(how, how_size, "%s, key as remembered", tls_version(tls));
		return 0;
	}
	if (line) {
		fprintf(stderr,
			"turnchat: WARNING: the TLS key of %s has changed!\n"
			"turnchat: it was %s (%s, line %d); now it is %s.\n"
			"turnchat: Someone may be listening in, or the server has a new key: ask its\n"
			"turnchat: administrator (turnchatd --fingerprint). If it does, remove line %d\n"
			"turnchat: of %s and connect again. Not connecting.\n",
			who, known, path, line, seen, line, path);
		return TRUST_REFUSED;
	}
	make_parent(path);
	FILE *out = fopen(path, "a");
	if (out == NULL || fprintf(out, "%s %s\n", who, seen) < 0 || fclose(out) != 0) {
		fprintf(stderr, "turnchat: cannot remember %s's key in %s: %s\n", who, path,
			strerror(errno));
		return TRUST_REFUSED;
	}
	fprintf(stderr,
		"turnchat: first TLS connection to %s; its key is %s.\n"
		"turnchat: Remembered in %s; compare it with 'turnchatd --fingerprint' on the "
		"server.\n",
		who, seen, path);
	snprintf(how, how_size, "%s, key remembered now", tls_version(tls));
	return 0;
}

struct tls *trust_connect(int fd, const struct config *cfg, const char *host, unsigned port,
			  char *how, size_t how_size, int *status)
{
	const char *ca = cfg->client.tls_ca[0] ? cfg->client.tls_ca : NULL;
	char error[TLS_ERROR_MAX + 512];
	struct tls_config *config = tls_client_config(ca, error, sizeof(error));
	struct tls *tls = config ? tls_client_start(config, fd, host) : NULL;

	tls_config_free(config); /* the connection holds what it needs */
	*status = 1;
	if (config == NULL || tls == NULL) {
		fprintf(stderr, "turnchat: TLS: %s\n", config ? "out of memory" : error);
		return NULL;
	}
	if (!handshake(tls, fd, error, sizeof(error))) {
		char why[256];
		if (ca && !tls_peer_verified(tls, why, sizeof(why))) {
			fprintf(stderr,
				"turnchat: %s port %u: its certificate is not trusted: %s "
				"(checked against %s). Not connecting.\n",
				host, port, why, ca);
			*status = TRUST_REFUSED;
		} else {
			fprintf(stderr, "turnchat: TLS with %s port %u failed: %s\n", host, port,
				error);
		}
		tls_free(tls);
		return NULL;
	}
	if (ca) {
		snprintf(how, how_size, "%s, certificate verified", tls_version(tls));
		return tls;
	}
	if ((*status = pin(tls, host, port, how, how_size)) != 0) {
		tls_free(tls);
		return NULL;
	}
	return tls;
}
