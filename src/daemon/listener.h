/*
 * listener: the daemon's listening sockets, bound from host and port or
 * handed over by a service manager. Accepts every pending connection and
 * passes each one on, non-blocking, to the accept callback.
 */
#ifndef TURNCHAT_LISTENER_H
#define TURNCHAT_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "event.h"

typedef void listener_accept_fn(int fd, const struct sockaddr *addr, socklen_t addr_len, void *data);

struct listener;

struct listener *listener_create(struct event_loop *loop, listener_accept_fn *fn, void *data);
void listener_destroy(struct listener *listener);

/*
 * Binds and listens on every address host resolves to. Returns how many
 * sockets it opened; 0 with a message in error when it could open none.
 */
int listener_bind(struct listener *listener, const char *host, unsigned port, char *error,
		  size_t error_size);

/* Serves an already listening socket (systemd, inetd). */
int listener_add_fd(struct listener *listener, int fd);

/* Stops and resumes accepting, e.g. while out of file descriptors. */
void listener_pause(struct listener *listener, bool paused);

/* True when fd is a listening stream socket (inetd's "wait" mode hands one over as fd 0). */
bool listener_fd_is_listening(int fd);

/* Warns about each socket that is not where host and port say it should be. */
void listener_check_address(const struct listener *listener, const char *host, unsigned port);

/* True when it serves at least one socket. */
bool listener_has_sockets(const struct listener *listener);

/* True when a connection waits to be accepted (checked before exiting when idle). */
bool listener_has_pending(const struct listener *listener);

/* The port a socket is bound to; 0 for none (a Unix socket). */
unsigned listener_port(int fd);

/* Fills text with a printable "address port N" for a socket's local name. */
void listener_describe(int fd, char *text, size_t size);

#endif
