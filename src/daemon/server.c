/*
 * server: daemon-wide bookkeeping, called by turnchatd's main loop: new
 * connections from the listener, the once-a-second sweep for timeouts,
 * reloads and the orderly stop; and by session.c, for every state change.
 */
#include "server.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "command.h"
#include "session.h"
#include "state.h"

static void server_tick(void *data);

int server_init(struct server *server, struct event_loop *loop, const struct config *config)
{
	memset(server, 0, sizeof(*server));
	server->loop = loop;
	server->state_fd = -1;
	LIST_INIT(&server->sessions);
	server->config = *config;
	server->pairing = pairing_create();
	server->addresses = address_counts_create();
	server->waiting = address_counts_create();
	if (server->pairing == NULL || server->addresses == NULL || server->waiting == NULL)
		return -1;
	event_set_tick(loop, 1000, server_tick, server);
	return 0;
}

void server_finish(struct server *server)
{
	state_finish(server);
	pairing_destroy(server->pairing);
	server->pairing = NULL;
	address_counts_destroy(server->addresses);
	server->addresses = NULL;
	address_counts_destroy(server->waiting);
	server->waiting = NULL;
}

static void accept_session(struct server *server, int fd, const struct sockaddr *addr,
			   socklen_t addr_len, struct tls_config *tls)
{
	bool full = server->clients >= server->config.server.max_clients;
	struct address_key key;

	address_key_from(&key, addr, server->config.server.ipv6_prefix);
	/* Counted before the session exists, so that session_end can uncount. */
	unsigned from_address = address_counts_add(server->addresses, &key);
	struct session *session = from_address ? session_create(server, fd, addr, addr_len,
								&command_handler, tls)
					       : NULL;
	if (session == NULL) {
		if (from_address)
			address_counts_remove(server->addresses, &key);
		else
			close(fd);
		log_warnx("out of memory: refused a connection");
		return;
	}
	if (penalty_box_holds(&server->flooders, &key, event_now_ms(server->loop))) {
		/* Counted, and summed up in one line when the time is up. */
		session_bye(session, BYE_FLOOD, "Your address sent far too many lines; try later");
		connection_reset_after_flush(session->conn);
		return;
	}
	log_info("#%lu connection from %s", session->id, SESSION_WHERE(session));
	if (from_address > server->config.server.max_per_address) {
		log_notice("#%lu refused: %u connections from this address is the limit "
			   "(max_per_address)",
			   session->id, server->config.server.max_per_address);
		session_bye(session, BYE_ADDRESS_LIMIT, "Too many connections from your address");
	} else if (full) {
		log_notice("#%lu refused: %u clients is the limit (max_clients)", session->id,
			   server->config.server.max_clients);
		session_bye(session, BYE_SERVER_FULL, "Too many people are connected; try later");
	} else if (server->stopping) {
		session_bye(session, BYE_SHUTDOWN, "The server is shutting down");
	} else if (!tls && server->config.server.require_tls && !peer_address_is_local(addr)) {
		char text[64];
		snprintf(text, sizeof(text), "Connect with TLS, on port %u", server->config.tls_port);
		log_info("#%lu refused: plain text from beyond this host (require_tls)", session->id);
		session_bye(session, BYE_TLS_REQUIRED, text);
	}
}

void server_accept(int fd, const struct sockaddr *addr, socklen_t addr_len, void *data)
{
	accept_session(data, fd, addr, addr_len, NULL);
}

void server_accept_tls(int fd, const struct sockaddr *addr, socklen_t addr_len, void *data)
{
	struct server *server = data;
	if (server->tls == NULL) {
		/* A TLS socket passed by the service manager, but no certificate. */
		close(fd);
		return;
	}
	accept_session(server, fd, addr, addr_len, server->tls);
}

static void server_tick(void *data)
{
	struct server *server = data;
	uint64_t now = event_now_ms(server->loop);
	struct penalty done;
	struct session *session, *next;

	while (penalty_box_expire(&server->flooders, now, &done))
		log_notice("%s: no longer turned away; %u connection%s turned away meanwhile",
			   done.where, done.refused, done.refused == 1 ? "" : "s");

	/* Ending a conversation or a connected session here only queues BYEs
	 * and aborts: those are freed from the loop, never during this walk. */
	for (session = LIST_FIRST(&server->sessions); session; session = next) {
		/* A session whose time away is up is freed by its tick. */
		next = LIST_NEXT(session, entry);
		command_log_refusals(session, false);
		session_tick(session, now);
	}
	state_save_if_changed(server);
}

void server_stop(struct server *server)
{
	struct session *session, *next;

	if (server->stopping)
		return;
	server->stopping = true;
	log_notice("shutting down: %u clients, %u conversations", server->clients,
		   server_conversations(server));
	/* Those kept in the state hear nothing: they resume with the next daemon. */
	state_save_for_stop(server);
	/* Those away are freed as they are told, and only they. */
	for (session = LIST_FIRST(&server->sessions); session; session = next) {
		next = LIST_NEXT(session, entry);
		session_shutdown(session);
	}
}

void server_turn_away(struct server *server, const struct session *session)
{
	char where[PEER_ADDRESS_TEXT_MAX];

	peer_address_host(&session->peer, where, sizeof(where));
	penalty_box_add(&server->flooders, SESSION_KEY(session), where,
			event_now_ms(server->loop) + REFUSAL_WINDOW_MS);
}

bool server_idle(const struct server *server)
{
	return LIST_EMPTY(&server->sessions);
}

unsigned server_conversations(const struct server *server)
{
	return server->paired / 2;
}

/* Someone away or missing their end still holds a place. */
static bool is_open(enum session_state state)
{
	return state != SESSION_GONE && state != SESSION_CLOSING;
}

static bool in_conversation(enum session_state state)
{
	return state == SESSION_PAIRED || state == SESSION_AWAY;
}

void server_session_moved(struct server *server, struct session *session, int from_state)
{
	enum session_state from = (enum session_state)from_state, to = session->state;

	if (from == SESSION_GONE)
		LIST_INSERT_HEAD(&server->sessions, session, entry);
	server->state_changed = true;
	server->clients += is_open(to) - is_open(from);
	server->paired += in_conversation(to) - in_conversation(from);
	/* Counted by server_may_wait on the way in. */
	if (from == SESSION_WAITING)
		address_counts_remove(server->waiting, SESSION_KEY(session));
	/* Counted by server_accept before the session was made, for as long
	 * as it has its connection (a person who comes back takes over the
	 * newcomer's, and with it its count). */
	if ((to == SESSION_GONE || to == SESSION_AWAY || to == SESSION_MISSED) && session->conn)
		address_counts_remove(server->addresses, SESSION_KEY(session));
	if (to == SESSION_GONE)
		LIST_REMOVE(session, entry);
}

bool server_may_wait(struct server *server, const struct session *session)
{
	unsigned waiting = address_counts_add(server->waiting, SESSION_KEY(session));
	if (waiting == 0 || waiting > server->config.server.max_waiting_per_address) {
		if (waiting)
			address_counts_remove(server->waiting, SESSION_KEY(session));
		return false;
	}
	return true;
}

/*
 * Everyone connected takes the new limits; nobody is dropped for them (a
 * lowered max_clients or max_per_address only turns newcomers away).
 */
void server_apply_config(struct server *server, const struct config *config)
{
	struct session *session;

	server->config = *config;
	LIST_FOREACH(session, &server->sessions, entry)
		if (session->conn)
			connection_set_limits(session->conn, config->server.max_line,
					      config->server.max_queue);
}
