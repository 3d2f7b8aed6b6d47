/*
 * dial: called by reconnect.c for each attempt to reach the server again
 * after a dropped connection (see dial.h); calls net.c for the addresses
 * and tls.c for the handshake and the key. The first connection is
 * turnchat.c's, made before the event loop runs, where waiting is fine.
 */
#include "dial.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

#ifndef HAVE_TLS
/* Built without TLS, no dial has any (see handshake below). */
#define tls_free(tls) ((void)(tls))
#endif

struct dial {
	struct event_loop *loop;
	const struct dial_target *target;
	struct addrinfo *addresses, *next;
	int fd;
	struct event_source *source;
	struct tls *tls; /* once connected, over TLS: the handshake under way */
	dial_done_fn *done;
	void *ctx;
	char why[256];
};

static void on_ready(int fd, uint32_t events, void *data);

static void drop_socket(struct dial *dial)
{
	event_source_remove(dial->source);
	dial->source = NULL;
	if (dial->fd >= 0)
		close(dial->fd);
	dial->fd = -1;
}

static void release(struct dial *dial)
{
	if (dial->addresses)
		freeaddrinfo(dial->addresses);
	free(dial);
}

/* Ends a dial that hands nothing over: its handshake, socket and addresses. */
static void discard(struct dial *dial)
{
	if (dial->tls)
		tls_free(dial->tls);
	drop_socket(dial);
	release(dial);
}

/* Hands the outcome over; the dial is gone before the owner hears of it,
 * and the socket off this loop, so the owner's connection can watch it. */
static void finish(struct dial *dial, bool ok)
{
	dial_done_fn *done = dial->done;
	void *ctx = dial->ctx;
	int fd = dial->fd;
	struct tls *tls = dial->tls;
	char why[sizeof(dial->why)];

	if (!ok) {
		snprintf(why, sizeof(why), "%s", dial->why);
		discard(dial);
		done(ctx, -1, NULL, why);
		return;
	}
	event_source_remove(dial->source);
	release(dial);
	done(ctx, fd, tls, NULL);
}

/* Starts connecting to the next address; false when none is left. */
static bool connect_next(struct dial *dial)
{
	while (dial->next) {
		struct addrinfo *ai = dial->next;
		dial->next = ai->ai_next;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
				ai->ai_protocol);
		if (fd < 0 ||
		    (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
			snprintf(dial->why, sizeof(dial->why), "%s", strerror(errno));
			if (fd >= 0)
				close(fd);
			continue;
		}
		/* Writable once connected, or once it failed: SO_ERROR says which. */
		dial->fd = fd;
		dial->source = event_add_fd(dial->loop, fd, EPOLLOUT, on_ready, dial);
		if (dial->source)
			return true;
		snprintf(dial->why, sizeof(dial->why), "%s", strerror(errno));
		drop_socket(dial);
	}
	return false;
}

#ifdef HAVE_TLS
void dial_pin(struct dial_target *target, const struct tls *tls)
{
	if (!tls || !tls_peer_fingerprint(tls, target->pinned, sizeof(target->pinned)))
		target->pinned[0] = '\0';
}

/* The resume token goes only to the server the conversation started with. */
static bool trusted(struct dial *dial)
{
	char seen[TLS_FINGERPRINT_MAX + 1], why[200];

	if (dial->target->tls_ca) {
		if (tls_peer_verified(dial->tls, why, sizeof(why)))
			return true;
		snprintf(dial->why, sizeof(dial->why), "its certificate is not trusted: %s", why);
		return false;
	}
	if (tls_peer_fingerprint(dial->tls, seen, sizeof(seen)) &&
	    strcmp(seen, dial->target->pinned) == 0)
		return true;
	snprintf(dial->why, sizeof(dial->why),
		 "its TLS key is not the one it showed when the conversation began");
	return false;
}

/* One step of the handshake, started on the connected socket when needed. */
static void handshake(struct dial *dial)
{
	uint32_t wait = 0;

	if (dial->tls == NULL) {
		struct tls_config *config = tls_client_config(dial->target->tls_ca, dial->why,
							      sizeof(dial->why));
		dial->tls = config ? tls_client_start(config, dial->fd, dial->target->host) : NULL;
		tls_config_free(config);
		if (dial->tls == NULL) {
			if (config)
				snprintf(dial->why, sizeof(dial->why), "out of memory");
			finish(dial, false);
			return;
		}
	}
	int rc = tls_handshake(dial->tls, &wait);
	if (rc == 0 && event_source_set_events(dial->source, wait) == 0)
		return;
	if (rc < 0)
		snprintf(dial->why, sizeof(dial->why), "TLS failed: %s", tls_error(dial->tls));
	else if (rc == 0)
		snprintf(dial->why, sizeof(dial->why), "%s", strerror(errno));
	finish(dial, rc == 1 && trusted(dial));
}
#else
/* Built without TLS, turnchat refuses --tls before any dial. */
void dial_pin(struct dial_target *target, const struct tls *tls)
{
	(void)tls;
	target->pinned[0] = '\0';
}

static void handshake(struct dial *dial)
{
	snprintf(dial->why, sizeof(dial->why), "built without TLS");
	finish(dial, false);
}
#endif

static void on_ready(int fd, uint32_t events, void *data)
{
	struct dial *dial = data;
	int error = 0;
	socklen_t len = sizeof(error);
	(void)events;

	if (dial->tls) {
		handshake(dial);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
		error = errno;
	if (error == 0 && !dial->target->tls) {
		finish(dial, true);
	} else if (error == 0) {
		handshake(dial);
	} else {
		snprintf(dial->why, sizeof(dial->why), "%s", strerror(error));
		drop_socket(dial);
		if (!connect_next(dial))
			finish(dial, false);
	}
}

struct dial *dial_start(struct event_loop *loop, const struct dial_target *target, dial_done_fn *done,
			void *ctx, char *why, size_t why_size)
{
	struct dial *dial = calloc(1, sizeof(*dial));
	if (dial == NULL) {
		snprintf(why, why_size, "out of memory");
		return NULL;
	}
	*dial = (struct dial){.loop = loop, .target = target, .fd = -1, .done = done, .ctx = ctx};
	/* Looked up again each time: the network may be another one by now. */
	int rc = net_resolve(target->host, target->port, false, &dial->addresses);
	if (rc != 0) {
		snprintf(why, why_size, "cannot find host '%s': %s", target->host, gai_strerror(rc));
		free(dial);
		return NULL;
	}
	dial->next = dial->addresses;
	snprintf(dial->why, sizeof(dial->why), "no address");
	if (!connect_next(dial)) {
		snprintf(why, why_size, "%s", dial->why);
		release(dial);
		return NULL;
	}
	return dial;
}

void dial_cancel(struct dial *dial)
{
	if (dial)
		discard(dial);
}

void dial_close(int fd, struct tls *tls)
{
	if (tls)
		tls_free(tls);
	close(fd);
}
