/*
 * dial: the client's connections to the server after the first one, made
 * without ever blocking the event loop (a person may type, quit or press
 * Ctrl-C meanwhile): a non-blocking connect to each address of the host in
 * turn, then, over TLS, the handshake, and a server that must show the key
 * the first connection showed (or, with client.tls_ca, a certificate that
 * checks out), since the line that follows carries the conversation's
 * resume token. Used by reconnect.c; says nothing itself.
 */
#ifndef TURNCHAT_DIAL_H
#define TURNCHAT_DIAL_H

#include <stdbool.h>

#include "event.h"
#include "tls.h"

/* Where to connect, and whom to trust there: the first connection's settings. */
struct dial_target {
	const char *host;
	unsigned port;
	bool tls;
	const char *tls_ca;                   /* NULL: trust the pinned key */
	char pinned[TLS_FINGERPRINT_MAX + 1]; /* the first connection's key */
};

/* Remembers the key the first connection's server showed, for dial to insist on. */
void dial_pin(struct dial_target *target, const struct tls *tls);

struct dial;

/* Called once, when the attempt ends: fd is the connected, non-blocking
 * socket (and tls its TLS, past the handshake and trusted, or NULL in
 * plain text), both the callee's; or fd is -1 and why says what failed. The
 * dial is gone when this is called. */
typedef void dial_done_fn(void *ctx, int fd, struct tls *tls, const char *why);

/* Starts an attempt; NULL (with nothing called) when it failed at once,
 * why filled in. */
struct dial *dial_start(struct event_loop *loop, const struct dial_target *target, dial_done_fn *done,
			void *ctx, char *why, size_t why_size);
/* Gives up an attempt under way; done is not called. */
void dial_cancel(struct dial *dial);
/* Closes what a dial handed over, for an owner that could not use it. */
void dial_close(int fd, struct tls *tls);

#endif
