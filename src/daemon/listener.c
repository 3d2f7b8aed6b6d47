/*
 * listener: called by turnchatd's main at start-up; calls
 * server_accept for each connection.
 */
#include "listener.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "net.h"

#define LISTENER_MAX 16
/* The kernel caps it at net.core.somaxconn; a burst of connects should wait, not retry. */
#define LISTENER_BACKLOG SOMAXCONN

struct listener {
	struct event_loop *loop;
	listener_accept_fn *fn;
	void *data;
	size_t count;
	int fds[LISTENER_MAX];
	struct event_source *sources[LISTENER_MAX];
	bool paused;
};

static void listener_ready(int fd, uint32_t events, void *data);

struct listener *listener_create(struct event_loop *loop, listener_accept_fn *fn, void *data)
{
	struct listener *listener = malloc(sizeof(*listener));
	if (listener)
		*listener = (struct listener){.loop = loop, .fn = fn, .data = data};
	return listener;
}

void listener_destroy(struct listener *listener)
{
	if (listener == NULL)
		return;
	for (size_t i = 0; i < listener->count; i++) {
		event_source_remove(listener->sources[i]);
		close(listener->fds[i]);
	}
	free(listener);
}

int listener_add_fd(struct listener *listener, int fd)
{
	if (listener->count == LISTENER_MAX) {
		errno = EMFILE;
		return -1;
	}
	struct event_source *source = event_add_fd(listener->loop, fd, EPOLLIN, listener_ready,
						   listener);
	if (source == NULL)
		return -1;
	listener->fds[listener->count] = fd;
	listener->sources[listener->count] = source;
	listener->count++;
	return 0;
}

bool listener_has_sockets(const struct listener *listener)
{
	return listener->count > 0;
}

unsigned listener_port(int fd)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);

	if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
		return 0;
	if (addr.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&addr)->sin_port);
	if (addr.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
	return 0;
}

void listener_describe(int fd, char *text, size_t size)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);

	if (getsockname(fd, (struct sockaddr *)&addr, &len) < 0)
		snprintf(text, size, "fd %d", fd);
	else if (addr.ss_family == AF_UNIX)
		snprintf(text, size, "%s", ((struct sockaddr_un *)&addr)->sun_path);
	else if (!net_address_text((struct sockaddr *)&addr, len, text, size))
		snprintf(text, size, "fd %d", fd);
}

static int open_socket(const struct addrinfo *ai, char *error, size_t error_size)
{
	int one = 1;
	int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* One socket per family, so "localhost" means both 127.0.0.1 and ::1. */
	if (ai->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, LISTENER_BACKLOG) < 0)
		goto fail;
	return fd;
fail:;
	char host[NI_MAXHOST] = "?";
	int saved = errno;
	if (!net_host_text(ai->ai_addr, ai->ai_addrlen, host, sizeof(host)))
		snprintf(host, sizeof(host), "?");
	snprintf(error, error_size, "cannot listen on %s: %s", host, strerror(saved));
	if (fd >= 0)
		close(fd);
	return -1;
}

int listener_bind(struct listener *listener, const char *host, unsigned port, char *error,
		  size_t error_size)
{
	struct addrinfo *list;
	int opened = 0;
	int rc = net_resolve(host, port, true, &list);
	if (rc != 0) {
		snprintf(error, error_size, "cannot resolve '%s': %s", host, gai_strerror(rc));
		return 0;
	}
	error[0] = '\0';
	for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		char why[256];
		int fd = open_socket(ai, why, sizeof(why));
		if (fd < 0) {
			/* A host without IPv6 still serves on IPv4: only warn. */
			log_warnx("%s", why);
			snprintf(error, error_size, "%s", why);
			continue;
		}
		if (listener_add_fd(listener, fd) < 0) {
			snprintf(error, error_size, "cannot watch a socket: %s", strerror(errno));
			close(fd);
			continue;
		}
		char where[128];
		listener_describe(fd, where, sizeof(where));
		log_info("listening on %s", where);
		opened++;
	}
	freeaddrinfo(list);
	return opened;
}

void listener_pause(struct listener *listener, bool paused)
{
	if (listener->paused == paused)
		return;
	listener->paused = paused;
	for (size_t i = 0; i < listener->count; i++)
		event_source_set_events(listener->sources[i], paused ? 0 : EPOLLIN);
}

static void listener_ready(int fd, uint32_t events, void *data)
{
	struct listener *listener = data;
	(void)events;

	for (;;) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		int client = accept4(fd, (struct sockaddr *)&addr, &len,
				     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (client >= 0) {
			/* Chat lines are small and should leave at once. */
			int one = 1;
			if (addr.ss_family != AF_UNIX)
				setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			listener->fn(client, (struct sockaddr *)&addr, len, listener->data);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			/* Waiting connections would wake us forever; the main loop
			 * resumes accepting on its next tick. */
			log_warn("cannot accept now");
			listener_pause(listener, true);
		}
		return;
	}
}

bool listener_fd_is_listening(int fd)
{
	int listening = 0, type = 0;
	socklen_t len = sizeof(listening);

	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0)
		return false;
	len = sizeof(type);
	return listening && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       type == SOCK_STREAM;
}

static bool same_address(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

void listener_check_address(const struct listener *listener, const char *host, unsigned port)
{
	struct addrinfo *list = NULL;

	if (net_resolve(host, port, true, &list) != 0)
		list = NULL;
	for (size_t i = 0; i < listener->count; i++) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		bool expected = false;

		if (getsockname(listener->fds[i], (struct sockaddr *)&addr, &len) < 0 ||
		    addr.ss_family == AF_UNIX)
			continue; /* a Unix socket is an extra way in, not a mismatch */
		for (struct addrinfo *ai = list; ai && !expected; ai = ai->ai_next)
			expected = same_address((struct sockaddr *)&addr, ai->ai_addr);
		if (!expected) {
			char where[128];
			listener_describe(listener->fds[i], where, sizeof(where));
			log_warnx("listening on %s, but the configuration says host '%s' port %u; "
				  "run 'systemctl daemon-reload' and restart turnchat.socket",
				  where, host, port);
		}
	}
	if (list)
		freeaddrinfo(list);
}

bool listener_has_pending(const struct listener *listener)
{
	struct pollfd fds[LISTENER_MAX];

	for (size_t i = 0; i < listener->count; i++)
		fds[i] = (struct pollfd){.fd = listener->fds[i], .events = POLLIN};
	return poll(fds, listener->count, 0) > 0;
}
