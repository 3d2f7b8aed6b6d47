/*
 * transport: how the connection module moves bytes: straight through a
 * socket, or through TLS. Both look like read(2) and send(2) to it; a TLS
 * call that must wait for the other direction says so in the flags, and
 * bytes OpenSSL has already read are reported as pending, since epoll
 * cannot see them.
 */
#ifndef TURNCHAT_TRANSPORT_H
#define TURNCHAT_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct tls;

/* 16 bytes: a connection each, and idle connections are meant to be cheap. */
struct transport {
	struct tls *tls; /* NULL: plain text */
	int fd;
	bool read_wants_write; /* the last read waits for the socket to take output */
	bool write_wants_read; /* the last write waits for input (a handshake) */
};

ssize_t transport_recv(struct transport *t, void *buf, size_t len);
ssize_t transport_send(struct transport *t, const void *buf, size_t len);
/* Half-closes: TLS's close_notify first, then the socket's write side. */
void transport_shutdown_write(struct transport *t);
bool transport_pending(const struct transport *t);
/* True while a TLS handshake has not finished. */
bool transport_handshaking(const struct transport *t);
/* Why TLS failed, in words (NULL in plain text); and whether it was plain
 * text arriving where TLS was expected. */
const char *transport_tls_error(const struct transport *t);
bool transport_got_plaintext(const struct transport *t);
/* Frees the TLS state, if any, and closes the socket. */
void transport_close(struct transport *t);

#endif
