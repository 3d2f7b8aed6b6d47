/*
 * session: one person's state machine. command.c calls in with what each
 * line asks for, the connection with its other events, the server with
 * accepted sockets, its tick and its stop; session calls the pairing
 * policy and writes to the connections. Every change of a session's state
 * goes through session_set_state, which checks the transition, keeps the
 * server's counts and leaves the room a waiter was in. The conversations
 * between two are session_conversation.c's; what outlives a connection is
 * session_resume.c's.
 */
#include "session.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "session_impl.h"
#include "tls.h"

/* How long a closing connection may take to read its last lines. */
#define SESSION_CLOSE_GRACE_MS 5000

const char session_default_name[] = "guest";

void session_set_state(struct session *session, enum session_state to)
{
	enum session_state from = session->state;
	/* Forward only, but for coming back from AWAY. */
	assert(to == SESSION_CLOSING || to == SESSION_GONE || to > from ||
	       (from == SESSION_AWAY && to == SESSION_PAIRED) ||
	       (from == SESSION_CLOSING && to == SESSION_MISSED));
	/* Born NEW, or away, restored from the last daemon's state. */
	assert((from == SESSION_GONE) ==
		       (to == SESSION_NEW ||
			(session->resume && session->resume->restored && session->conn == NULL &&
			 (to == SESSION_AWAY || to == SESSION_MISSED) && from == SESSION_GONE)) &&
	       (from != SESSION_CLOSING || to == SESSION_GONE || to == SESSION_MISSED));
	/* In a conversation exactly while paired or away, and on its own side there. */
	assert((session->conversation != NULL) == (to == SESSION_PAIRED || to == SESSION_AWAY));
	assert(session->conversation == NULL ||
	       session->conversation->side[session->side] == session);
	/* Away exactly while it has no connection, and only with resume. */
	assert(to == SESSION_GONE || to == SESSION_AWAY || to == SESSION_MISSED ||
	       session->conn != NULL);
	assert(to != SESSION_AWAY || session->resume != NULL);
	/* Still in the room unless the pairing just took it away. */
	if (from == SESSION_WAITING)
		pairing_leave(session->server->pairing, session->room, session);
	session->state = to;
	server_session_moved(session->server, session, (int)from);
}

struct session *session_create(struct server *server, int fd, const struct sockaddr *addr,
			       socklen_t addr_len, const struct connection_handler *handler,
			       struct tls_config *tls)
{
	struct session *session = calloc(1, sizeof(*session));
	if (session == NULL) {
		close(fd);
		return NULL;
	}
	session->server = server;
	session->id = ++server->next_id;
	session->mode = server->config.server.default_mode;
	session->name = session_default_name;
	peer_address_set(&session->peer, addr, addr_len);
	session->ipv6_prefix = (uint8_t)server->config.server.ipv6_prefix;
	session->connected_ms = event_now_ms(server->loop);
	rate_start(&session->rate, server->config.server.rate_burst, session->connected_ms);
	session->conn = connection_create(server->loop, fd, server->config.server.max_line,
					  server->config.server.max_queue, handler, session);
#ifdef HAVE_TLS
	struct tls *encrypted = session->conn && tls ? tls_server_start(tls, fd) : NULL;
#else
	struct tls *encrypted = NULL;
#endif
	if (session->conn == NULL || (tls && encrypted == NULL)) {
		if (session->conn)
			connection_destroy(session->conn);
		else
			close(fd);
		free(session);
		return NULL;
	}
	connection_use_tls(session->conn, encrypted);
	session_set_state(session, SESSION_NEW);
	session_queued(session,
		       protocol_append_hello(session_output(session), server->config.server.name));
	return session;
}

void session_queued(struct session *session, int rc)
{
	/* Dropped already: its ending is logged once, when the loop ends it. */
	if (session->conn == NULL || connection_is_aborted(session->conn))
		return;
	if (rc < 0) {
		/* Backpressure keeps queues under half; a full one means the
		 * peer sent nothing we could hold back. Drop it, never the line
		 * silently: its partner hears peer-lost. */
		log_notice("#%lu %s: output queue full, dropping the connection", session->id,
			   SESSION_WHERE(session));
		connection_abort(session->conn);
		return;
	}
	connection_flush(session->conn);
	if (connection_backlogged(session->conn)) {
		/* It does not read our answers: stop reading its lines until it does. */
		connection_pause_reading(session->conn, true);
		connection_notify_drained(session->conn);
	}
}

/* Its queue is empty again: whoever waited on it may go on. */
void session_drained(void *ctx)
{
	struct session *session = ctx;
	struct session *partner = session_partner(session);

	if (partner)
		session_read_on(partner);
	session_read_on(session);
}

void session_read_on(struct session *session)
{
	if (session->conn && session->state != SESSION_CLOSING && !session->rate_paused &&
	    !session->turn_held && session_partner_keeps_up(session))
		connection_pause_reading(session->conn, false);
}

void session_bye(struct session *session, enum bye_reason reason, const char *text)
{
	if (session->state == SESSION_CLOSING)
		return;
	session->conversation = NULL;
	session_set_state(session, SESSION_CLOSING);
	session_queued(session, protocol_append_bye(session_output(session), reason, text));
	connection_close_after_flush(session->conn);
}

void session_expel(struct session *session, enum bye_reason reason)
{
	if (session->state == SESSION_PAIRED)
		session_end_conversation(session, session, reason, true, BYE_PEER_LOST);
	else
		session_bye(session, reason, NULL);
}

void session_shutdown(struct session *session)
{
	if (session->resume && session->resume->kept) {
		session_leave_quietly(session);
		return;
	}
	if (session->state == SESSION_PAIRED || session->state == SESSION_AWAY)
		session_end_conversation(session, NULL, BYE_SHUTDOWN, false, BYE_SHUTDOWN);
	if (session->state == SESSION_MISSED) {
		/* Nobody can come back to a server that is gone. */
		session_free(session);
		return;
	}
	session_bye(session, BYE_SHUTDOWN, NULL);
}

void session_drop(struct session *session, const char *why)
{
	log_info("#%lu %s: %s", session->id, SESSION_WHERE(session), why);
	if (session->state == SESSION_PAIRED)
		session_end_conversation(session, session, BYE_PEER_LOST, false, BYE_PEER_LOST);
	if (session->state != SESSION_CLOSING)
		session_set_state(session, SESSION_CLOSING);
	connection_abort(session->conn);
}

/* --- What lines ask for ---------------------------------------------------- */

enum error_code session_join(struct session *session, const char *room, size_t room_len)
{
	struct server *server = session->server;
	int error;

	if (session->state != SESSION_NEW)
		return ERR_BUSY;
	session->room = room_len ? strndup(room, room_len)
				 : strdup(server->config.server.default_room);
	struct session *waiter = session->room ? pairing_meet(server->pairing, session->room, session,
							      &error)
					       : NULL;
	if (waiter == NULL && session->room && error == 0) {
		/* Waiting is the cheapest way to hold a slot: a few addresses
		 * waiting in many rooms could leave no one else a place. */
		if (!server_may_wait(server, session)) {
			pairing_leave(server->pairing, session->room, session);
			log_notice("#%lu %s (%s) refused: %u people from this address waiting is the "
				   "limit (max_waiting_per_address)",
				   session->id, session->name, SESSION_WHERE(session),
				   server->config.server.max_waiting_per_address);
			session_bye(session, BYE_ADDRESS_LIMIT,
				    "Too many people from your address are waiting; try later");
			return ERR_UNKNOWN;
		}
		session_set_state(session, SESSION_WAITING);
		log_info("#%lu %s (%s) waits in room '%s'", session->id, session->name,
			 SESSION_WHERE(session), session->room);
		session_queued(session,
			       protocol_append_waiting(session_output(session), session->room));
		return ERR_UNKNOWN;
	}
	if (waiter == NULL || session_pair(waiter, session, waiter->mode) < 0) {
		log_warnx("#%lu: out of memory while joining", session->id);
		if (waiter)
			session_bye(waiter, BYE_SHUTDOWN, "The server is out of memory");
		session_bye(session, BYE_SHUTDOWN, "The server is out of memory");
	}
	return ERR_UNKNOWN;
}

void session_quit(struct session *session)
{
	log_info("#%lu %s quits", session->id, session->name);
	if (session->state == SESSION_PAIRED)
		session_end_conversation(session, session, BYE_QUIT, true, BYE_PEER_QUIT);
	else
		session_bye(session, BYE_QUIT, NULL);
}

/* The connection is over: whoever depended on this person learns it. */
void session_end(void *ctx, enum connection_end end)
{
	struct session *session = ctx;
	const char *why = end == CONNECTION_ERROR ? connection_tls_error(session->conn) : NULL;
	if (session_go_away(session, end))
		return;
	if (session->state != SESSION_CLOSING) {
		log_info("#%lu %s (%s): connection %s%s%s", session->id, session->name,
			 SESSION_WHERE(session), end == CONNECTION_EOF ? "closed" : "lost",
			 why ? ": " : "", why ? why : "");
		if (session->state == SESSION_PAIRED)
			session_end_conversation(session, session, BYE_PEER_LOST, false,
						 BYE_PEER_LOST);
	}
	log_debug("#%lu disconnected", session->id);
	session_free(session);
}

void session_free(struct session *session)
{
	session_set_state(session, SESSION_GONE);
	if (session->conn)
		connection_destroy(session->conn);
	resume_destroy(session->resume);
	free(session->refused);
	if (session->name != session_default_name)
		free((char *)session->name);
	free(session->room);
	free(session);
}

void session_tick(struct session *session, uint64_t now)
{
	const struct server_config *cfg = &session->server->config.server;

	if (session_resume_tick(session, now))
		return;
	uint64_t closing = connection_closing_since(session->conn);
	uint64_t stalled = connection_stalled_since(session->conn);

	connection_trim(session->conn);
	/* A conversation is looked at once, from its first side. */
	switch (session->state == SESSION_PAIRED && session->side == 0
			? conversation_idle(session->conversation, now, cfg->idle_timeout)
			: IDLE_NOT_YET) {
	case IDLE_END:
		session_end_conversation(session, NULL, BYE_IDLE, false, BYE_IDLE);
		return;
	case IDLE_WARN:
		session_idle_warning(session, conversation_idle_lead(cfg->idle_timeout));
		break;
	case IDLE_NOT_YET:
		break;
	}
	if (closing) {
		/* When stopping, the service manager is waiting on us: be brief. */
		uint64_t grace = session->server->stopping ? 1000 : SESSION_CLOSE_GRACE_MS;
		if (now - closing > grace)
			connection_abort(session->conn);
		return;
	}
	bool joining_late = session->state == SESSION_NEW && cfg->join_timeout &&
			    now - session->connected_ms >= (uint64_t)cfg->join_timeout * 1000;
	bool stuck = stalled && now - stalled >= (uint64_t)cfg->slow_timeout * 1000;
	if ((joining_late || stuck) && connection_handshaking(session->conn)) {
		/* No BYE can reach a peer that never finished its handshake. */
		session_drop(session, "no TLS handshake in time (a client without TLS?); closing");
	} else if (joining_late) {
		log_info("#%lu %s: no /join within %u seconds", session->id, SESSION_WHERE(session),
			 cfg->join_timeout);
		session_bye(session, BYE_JOIN_TIMEOUT, NULL);
	} else if (stuck) {
		log_notice("#%lu %s (%s): read nothing with output waiting for %u seconds; dropping",
			   session->id, session->name, SESSION_WHERE(session), cfg->slow_timeout);
		session_expel(session, BYE_TOO_SLOW);
	}
}
