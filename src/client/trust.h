/*
 * trust: whether the client trusts the TLS server it reached. With a CA
 * (client.tls_ca), the certificate chain and the host name decide. Without
 * one, trust on first use, as ssh's accept-new does: the server's key
 * fingerprint is remembered per host and port in known_hosts
 * ($XDG_STATE_HOME/turnchat/known_hosts, by default
 * ~/.local/state/turnchat/known_hosts), and a changed key is refused.
 */
#ifndef TURNCHAT_TRUST_H
#define TURNCHAT_TRUST_H

#include <stddef.h>

#include "config.h"

struct tls;

/* Exit status for a server whose key or certificate cannot be trusted. */
#define TRUST_REFUSED 76

/*
 * Connects TLS over the connected, non-blocking socket fd and decides
 * trust, saying what it decided on stderr when that is news (a first
 * use, a refusal). Returns the TLS connection, with a few words for the
 * screen in how ("TLS 1.3, key as remembered"), or NULL and *status set.
 */
struct tls *trust_connect(int fd, const struct config *cfg, const char *host, unsigned port,
			  char *how, size_t how_size, int *status);

#endif
