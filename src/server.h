/*
 * server: what the whole daemon shares: the loop, the config in force, the
 * meeting points, every session, and the counts the service manager sees.
 */
#ifndef TURNCHAT_SERVER_H
#define TURNCHAT_SERVER_H

#include <stdbool.h>
#include <sys/socket.h>

#include "config.h"
#include "event.h"
#include "limits.h"
#include "pairing.h"

struct session;

struct server {
	struct event_loop *loop;
	struct config config;
	struct pairing *pairing;
	struct address_counts *addresses; /* connections per address, for max_per_address */
	struct address_counts *waiting;   /* of those, waiting in a room */
	struct session *sessions; /* every open connection, a doubly linked list */
	unsigned clients;         /* sessions not yet closing */
	unsigned conversations;
	unsigned long next_id;
	bool stopping;
};

int server_init(struct server *server, struct event_loop *loop, const struct config *config);
void server_finish(struct server *server);

/* The listener hands over each accepted, non-blocking socket. */
void server_accept(int fd, const struct sockaddr *addr, socklen_t addr_len, void *data);

/* Says BYE shutdown to everyone and closes gracefully; done when no session is left. */
void server_stop(struct server *server);
bool server_idle(const struct server *server);

/* Puts a new config in force for everyone connected. */
void server_apply_config(struct server *server, const struct config *config);

#endif
