/*
 * server: what the whole daemon shares: the loop, the config in force, the
 * meeting points, every session, and the counts the service manager sees.
 */
#ifndef TURNCHAT_SERVER_H
#define TURNCHAT_SERVER_H

#include <stdbool.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include "config.h"
#include "event.h"
#include "quota.h"
#include "pairing.h"

struct session;
struct tls_config;

/* Called with each new pair, for tests and the fuzzer; NULL in the daemon. */
typedef void server_paired_fn(void *data, struct session *waiter, struct session *caller);

struct server {
	struct event_loop *loop;
	struct config config;
	struct pairing *pairing;
	struct address_counts *addresses; /* connections per address, for max_per_address */
	struct address_counts *waiting;   /* of those, waiting in a room */
	struct penalty_box flooders;      /* addresses turned away for a while */
	LIST_HEAD(, session) sessions;    /* every session, those away too */
	unsigned clients;                 /* sessions not yet closing */
	unsigned paired;                  /* sessions in a conversation, away ones too: two per
					     conversation */
	struct tls_config *tls;           /* the certificate in force; NULL: no TLS */
	int state_fd;                     /* state.c's memfd in the service manager's store; -1:
					     nothing is kept */
	bool state_changed;               /* since the state was last written */
	bool state_lost;                  /* a state passed at start was discarded */
	unsigned long next_id;
	bool stopping;
	server_paired_fn *paired_hook;
	void *paired_hook_data;
};

int server_init(struct server *server, struct event_loop *loop, const struct config *config);
void server_finish(struct server *server);

/* The listeners hand over each accepted, non-blocking socket: from the
 * plain-text port, and from the TLS port. */
void server_accept(int fd, const struct sockaddr *addr, socklen_t addr_len, void *data);
void server_accept_tls(int fd, const struct sockaddr *addr, socklen_t addr_len, void *data);

/* Says BYE shutdown to everyone and closes gracefully; done when no session is left. */
void server_stop(struct server *server);
bool server_idle(const struct server *server);
unsigned server_conversations(const struct server *server);

/*
 * The one place the list of sessions and the daemon-wide counts change:
 * session.c calls it on every state change of session, from the state it
 * left (SESSION_GONE for a new session; a freed one moves to SESSION_GONE).
 */
void server_session_moved(struct server *server, struct session *session, int from);

/* Whether session may wait in a room (max_waiting_per_address); if so, it
 * is counted until it leaves SESSION_WAITING, which it enters next. */
bool server_may_wait(struct server *server, const struct session *session);

/* session flooded: its address is turned away for the refusal window. */
void server_turn_away(struct server *server, const struct session *session);

/* Puts a new config in force for everyone connected. */
void server_apply_config(struct server *server, const struct config *config);

#endif
