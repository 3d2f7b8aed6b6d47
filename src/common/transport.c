/*
 * transport: called by the connection module for every read, write and
 * half-close, and for what its owner asks about TLS; calls tls.c when the
 * connection is encrypted.
 */
#include "transport.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls.h"

#ifndef HAVE_TLS
/* Built without TLS (-Dtls=disabled), no connection has any: t->tls is
 * always NULL, so none of these is ever reached, and tls.c is not built. */
#define tls_read(tls, buf, len, wait) ((void)(wait), -1)
#define tls_write(tls, buf, len, wait) ((void)(wait), -1)
#define tls_close_notify(tls) ((void)0)
#define tls_has_pending(tls) false
#define tls_handshake_done(tls) true
#define tls_error(tls) NULL
#define tls_error_was_plaintext(tls) false
#define tls_free(tls) ((void)0)
#endif

ssize_t transport_recv(struct transport *t, void *buf, size_t len)
{
	if (t->tls == NULL)
		return read(t->fd, buf, len);
	uint32_t wait = 0;
	ssize_t n = tls_read(t->tls, buf, len, &wait);
	t->read_wants_write = n < 0 && errno == EAGAIN && wait == EPOLLOUT;
	if (n >= 0 || errno != EAGAIN)
		t->write_wants_read = false; /* the handshake moved on, or ended */
	return n;
}

ssize_t transport_send(struct transport *t, const void *buf, size_t len)
{
	if (t->tls == NULL)
		return send(t->fd, buf, len, MSG_NOSIGNAL);
	uint32_t wait = 0;
	ssize_t n = tls_write(t->tls, buf, len, &wait);
	t->write_wants_read = n < 0 && errno == EAGAIN && wait == EPOLLIN;
	return n;
}

void transport_shutdown_write(struct transport *t)
{
	if (t->tls)
		tls_close_notify(t->tls);
	shutdown(t->fd, SHUT_WR);
}

bool transport_pending(const struct transport *t)
{
	return t->tls && tls_has_pending(t->tls);
}

bool transport_handshaking(const struct transport *t)
{
	return t->tls && !tls_handshake_done(t->tls);
}

const char *transport_tls_error(const struct transport *t)
{
	return t->tls ? tls_error(t->tls) : NULL;
}

bool transport_got_plaintext(const struct transport *t)
{
	return t->tls && tls_error_was_plaintext(t->tls);
}

void transport_close(struct transport *t)
{
	if (t->tls)
		tls_free(t->tls);
	t->tls = NULL;
	close(t->fd);
}
