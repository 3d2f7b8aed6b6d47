/*
 * transport: called by the connection module for every read, write and
 * half-close; calls tls.c when the connection is encrypted.
 */
#include "transport.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#ifdef HAVE_TLS
#include "tls.h"
#endif

ssize_t transport_recv(struct transport *t, void *buf, size_t len)
{
#ifdef HAVE_TLS
	if (t->tls) {
		uint32_t wait = 0;
		ssize_t n = tls_read(t->tls, buf, len, &wait);
		t->read_wants_write = n < 0 && errno == EAGAIN && wait == EPOLLOUT;
		if (n >= 0 || errno != EAGAIN)
			t->write_wants_read = false; /* the handshake moved on, or ended */
		return n;
	}
#endif
	return read(t->fd, buf, len);
}

ssize_t transport_send(struct transport *t, const void *buf, size_t len)
{
#ifdef HAVE_TLS
	if (t->tls) {
		uint32_t wait = 0;
		ssize_t n = tls_write(t->tls, buf, len, &wait);
		t->write_wants_read = n < 0 && errno == EAGAIN && wait == EPOLLIN;
		return n;
	}
#endif
	return send(t->fd, buf, len, MSG_NOSIGNAL);
}

void transport_shutdown_write(struct transport *t)
{
#ifdef HAVE_TLS
	if (t->tls)
		tls_close_notify(t->tls);
#endif
	shutdown(t->fd, SHUT_WR);
}

bool transport_pending(const struct transport *t)
{
#ifdef HAVE_TLS
	return t->tls && tls_has_pending(t->tls);
#else
	(void)t;
	return false;
#endif
}

bool transport_handshaking(const struct transport *t)
{
#ifdef HAVE_TLS
	return t->tls && !tls_handshake_done(t->tls);
#else
	(void)t;
	return false;
#endif
}

const char *transport_tls_error(const struct transport *t)
{
#ifdef HAVE_TLS
	return t->tls ? tls_error(t->tls) : NULL;
#else
	(void)t;
	return NULL;
#endif
}

bool transport_got_plaintext(const struct transport *t)
{
#ifdef HAVE_TLS
	return t->tls && tls_error_was_plaintext(t->tls);
#else
	(void)t;
	return false;
#endif
}

void transport_close(struct transport *t)
{
#ifdef HAVE_TLS
	tls_free(t->tls);
	t->tls = NULL;
#endif
	close(t->fd);
}
