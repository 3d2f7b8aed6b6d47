/*
 * certificate: the daemon's TLS certificate and key, from the config (or
 * the service manager's credentials), loaded, reloaded, fingerprinted and,
 * on request, made.
 */
#ifndef TURNCHAT_CERTIFICATE_H
#define TURNCHAT_CERTIFICATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "server.h"

/* Both server.tls_certificate and server.tls_key are set: TLS is wanted. */
bool certificate_configured(const struct server_config *cfg);
/* At start, before privileges are dropped: *tls is the configured pair, or
 * NULL when none is configured. -1 when it cannot be used, logged with what
 * to do (config_option: "-c FILE " or "", for the command named). */
int certificate_start(const struct server_config *cfg, const char *config_option,
		      struct tls_config **tls);
/* The pair as a TLS context, or NULL with the reason in error. */
struct tls_config *certificate_load(const struct server_config *cfg, char *error, size_t size);
/* Puts the configured pair in force for new connections; logs what it did. */
void certificate_reload(struct server *server, const struct server_config *cfg);

/* Lets go of the pair in force (at exit). */
void certificate_drop(struct server *server);

/* turnchatd --fingerprint and --make-certificate: exit statuses. */
int certificate_print_fingerprint(const struct server_config *cfg);
int certificate_make(const struct server_config *cfg);

#endif
