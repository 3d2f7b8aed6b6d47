/*
 * session: one person's state machine, and the conversations between two
 * of them. The connection calls in with lines, the server with accepted
 * sockets, its tick and its stop; session calls the pairing and turn
 * policies and writes to the connections. Every change of a session's
 * state goes through set_state, which checks the transition, keeps the
 * server's counts and leaves the room a waiter was in.
 */
#include "session.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "turn.h"

/* How long a closing connection may take to read its last lines. */
#define SESSION_CLOSE_GRACE_MS 5000

/* Two people paired: side 0 waited, side 1 came and, in turns mode, starts. */
struct conversation {
	struct session *side[2];
	struct turn turn;
	uint64_t last_line_ms;
};

static void session_line(void *ctx, const char *line, size_t len);
static void session_too_long(void *ctx);
static void session_end(void *ctx, enum connection_end end);
static void session_drained(void *ctx);
static void session_queued(struct session *session, int rc);
static void session_refuse(struct session *session, enum error_code code);

static const struct connection_handler session_handler = {
	.on_line = session_line,
	.on_too_long = session_too_long,
	.on_drained = session_drained,
	.on_end = session_end,
};

struct session *session_partner(const struct session *session)
{
	return session->conversation ? session->conversation->side[1 - session->side] : NULL;
}

/* The one writer of session->state. */
static void set_state(struct session *session, enum session_state to)
{
	enum session_state from = session->state;
	assert(to == SESSION_CLOSING || to == SESSION_GONE || to > from);
	assert((from == SESSION_GONE) == (to == SESSION_NEW) &&
	       (from != SESSION_CLOSING || to == SESSION_GONE));
	/* In a conversation exactly while paired, and on its own side there. */
	assert((session->conversation != NULL) == (to == SESSION_PAIRED));
	assert(to != SESSION_PAIRED || session->conversation->side[session->side] == session);
	if (from == SESSION_WAITING) {
		/* Still in the room unless the pairing just took it away. */
		pairing_leave(session->server->pairing, session->room, session);
		address_counts_remove(session->server->waiting, SESSION_KEY(session));
	}
	session->state = to;
	server_session_moved(session->server, session, (int)from);
}

struct session *session_create(struct server *server, int fd, const struct sockaddr *addr,
			       socklen_t addr_len)
{
	struct session *session = calloc(1, sizeof(*session));
	if (session == NULL) {
		close(fd);
		return NULL;
	}
	session->server = server;
	session->id = ++server->next_id;
	session->mode = server->config.server.default_mode;
	strcpy(session->name, "guest");
	peer_address_set(&session->peer, addr, addr_len);
	session->ipv6_prefix = (uint8_t)server->config.server.ipv6_prefix;
	session->connected_ms = event_now_ms(server->loop);
	rate_start(&session->rate, server->config.server.rate_burst, session->connected_ms);
	session->conn = connection_create(server->loop, fd, server->config.server.max_line,
					  server->config.server.max_queue, &session_handler, session);
	if (session->conn == NULL) {
		close(fd);
		free(session);
		return NULL;
	}
	set_state(session, SESSION_NEW);
	session_queued(session, protocol_append_hello(connection_output(session->conn),
						      server->config.server.name));
	return session;
}

/* Queues output appended by a protocol_append_* call; rc is that call's result. */
static void session_queued(struct session *session, int rc)
{
	/* Dropped already: its ending is logged once, when the loop ends it. */
	if (connection_is_aborted(session->conn))
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
static void session_drained(void *ctx)
{
	struct session *session = ctx;
	if (session->state == SESSION_PAIRED)
		connection_pause_reading(session_partner(session)->conn, false);
	if (session->state != SESSION_CLOSING)
		connection_pause_reading(session->conn, false);
}

void session_bye(struct session *session, enum bye_reason reason, const char *text)
{
	if (session->state == SESSION_CLOSING)
		return;
	session->conversation = NULL;
	set_state(session, SESSION_CLOSING);
	session_queued(session, protocol_append_bye(connection_output(session->conn), reason, text));
	connection_close_after_flush(session->conn);
}

/* --- Conversations ------------------------------------------------------- */

/* waiter was at the meeting point first; caller came second and speaks first. */
static int pair(struct session *waiter, struct session *caller, enum chat_mode mode)
{
	struct server *server = waiter->server;
	struct conversation *conversation = calloc(1, sizeof(*conversation));
	if (conversation == NULL)
		return -1;
	conversation->side[0] = waiter;
	conversation->side[1] = caller;
	conversation->last_line_ms = event_now_ms(server->loop);
	/* The caller speaks first, as the original client called the waiting server. */
	turn_start(&conversation->turn, mode, 1);
	for (int side = 0; side < 2; side++) {
		struct session *session = conversation->side[side];
		session->conversation = conversation;
		session->side = side;
		set_state(session, SESSION_PAIRED);
	}
	for (int side = 0; side < 2; side++) {
		struct session *session = conversation->side[side];
		session_queued(session,
			       protocol_append_paired(connection_output(session->conn),
						      session_partner(session)->name, mode,
						      turn_first_for(&conversation->turn, side)));
	}
	log_info("#%lu %s (%s) and #%lu %s (%s) paired in room '%s', %s mode", waiter->id,
		 waiter->name, SESSION_WHERE(waiter), caller->id, caller->name, SESSION_WHERE(caller),
		 caller->room, protocol_mode_name(mode));
	if (server->paired_hook)
		server->paired_hook(server->paired_hook_data, waiter, caller);
	return 0;
}

/* Carries a message to the partner, if it is the sender's turn. */
static void relay(struct session *from, const char *text, size_t len)
{
	struct conversation *conversation = from->conversation;
	struct session *to = session_partner(from);

	if (!turn_may_speak(&conversation->turn, from->side)) {
		session_refuse(from, ERR_NOT_YOUR_TURN);
		return;
	}
	turn_spoke(&conversation->turn, from->side);
	conversation->last_line_ms = event_now_ms(from->server->loop);
	session_queued(to, protocol_append_msg(connection_output(to->conn), text, len));
	/* The partner is behind: hold the sender's lines (in its socket, and in
	 * TCP's window beyond) until the partner has read what it has. */
	if (connection_backlogged(to->conn))
		connection_pause_reading(from->conn, true);
}

/*
 * Ends the conversation session is in. leaver (session, or NULL when it
 * ends for both alike) hears leaver_reason unless it is gone already
 * (tell_leaver false); the other side hears other_reason. Both then close.
 */
static void end_conversation(struct session *session, struct session *leaver,
			     enum bye_reason leaver_reason, bool tell_leaver,
			     enum bye_reason other_reason)
{
	struct conversation *conversation = session->conversation;
	struct session *a = conversation->side[0], *b = conversation->side[1];

	log_info("conversation of #%lu %s and #%lu %s ended: %s%s%s", a->id, a->name, b->id, b->name,
		 leaver ? leaver->name : "", leaver ? " " : "",
		 protocol_bye_name(leaver ? leaver_reason : other_reason));
	for (int side = 0; side < 2; side++) {
		struct session *s = conversation->side[side];
		s->conversation = NULL;
		if (s != leaver)
			session_bye(s, other_reason, NULL);
		else if (tell_leaver)
			session_bye(s, leaver_reason, NULL);
	}
	free(conversation);
}

/* Ends this person's part for reason; a partner hears peer-lost. */
static void session_expel(struct session *session, enum bye_reason reason)
{
	if (session->state == SESSION_PAIRED)
		end_conversation(session, session, reason, true, BYE_PEER_LOST);
	else
		session_bye(session, reason, NULL);
}

void session_shutdown(struct session *session)
{
	if (session->state == SESSION_PAIRED)
		end_conversation(session, NULL, BYE_SHUTDOWN, false, BYE_SHUTDOWN);
	else
		session_bye(session, BYE_SHUTDOWN, NULL);
}

/* --- Lines --------------------------------------------------------------- */

/* The summary of what a window refused beyond its first line (see limits.h). */
static void log_refusals(struct session *session, bool force)
{
	int last;
	unsigned n = refusals_summary(session->refused, event_now_ms(session->server->loop), force,
				      &last);
	if (n)
		log_info("#%lu %s: refused %u more line%s within %u seconds (the last: %s)",
			 session->id, session->name, n, n == 1 ? "" : "s", REFUSAL_WINDOW_MS / 1000,
			 protocol_error_name((enum error_code)last));
}

/* Answers the line just received with ERR code (it was not relayed) and logs
 * it, or counts it for the summary; a flood ends the connection instead. */
static void session_refuse(struct session *session, enum error_code code)
{
	unsigned burst = session->server->config.server.rate_burst;

	log_refusals(session, false);
	switch (refusals_add(&session->refused, code, code == ERR_RATE_LIMITED, burst,
			     event_now_ms(session->server->loop))) {
	case REFUSAL_FLOOD:
		log_refusals(session, true);
		log_notice("#%lu %s (%s): over %u lines past the rate limit within %u seconds; "
			   "ending the connection and turning its address away as long",
			   session->id, session->name, SESSION_WHERE(session),
			   REFUSAL_FLOOD_FACTOR * burst, REFUSAL_WINDOW_MS / 1000);
		session_expel(session, BYE_FLOOD);
		/* Reading the rest of a flood would cost what the limit saves. */
		connection_reset_after_flush(session->conn);
		server_turn_away(session->server, session);
		return;
	case REFUSAL_LOG:
		log_info("#%lu %s: refused a line: %s", session->id, session->name,
			 protocol_error_name(code));
		break;
	case REFUSAL_COUNTED:
		break;
	}
	session_queued(session, protocol_append_error(connection_output(session->conn), code, NULL));
}

/* --- Commands ------------------------------------------------------------ */

static void join(struct session *session, const char *room, size_t room_len)
{
	struct server *server = session->server;
	int error;

	if (room_len == 0)
		snprintf(session->room, sizeof(session->room), "%s",
			 server->config.server.default_room);
	else
		snprintf(session->room, sizeof(session->room), "%.*s", (int)room_len, room);

	struct session *waiter = pairing_meet(server->pairing, session->room, session, &error);
	if (waiter == NULL && error == 0) {
		/* Waiting is the cheapest way to hold a slot: a few addresses
		 * waiting in many rooms could leave no one else a place. */
		unsigned waiting = address_counts_add(server->waiting, SESSION_KEY(session));
		if (waiting == 0 || waiting > server->config.server.max_waiting_per_address) {
			if (waiting)
				address_counts_remove(server->waiting, SESSION_KEY(session));
			pairing_leave(server->pairing, session->room, session);
			log_notice("#%lu %s (%s) refused: %u people from this address waiting is the "
				   "limit (max_waiting_per_address)",
				   session->id, session->name, SESSION_WHERE(session),
				   server->config.server.max_waiting_per_address);
			session_bye(session, BYE_ADDRESS_LIMIT,
				    "Too many people from your address are waiting; try later");
			return;
		}
		set_state(session, SESSION_WAITING);
		log_info("#%lu %s (%s) waits in room '%s'", session->id, session->name,
			 SESSION_WHERE(session), session->room);
		session_queued(session, protocol_append_waiting(connection_output(session->conn),
								session->room));
		return;
	}
	if (waiter == NULL || pair(waiter, session, waiter->mode) < 0) {
		log_warnx("#%lu: out of memory while joining", session->id);
		if (waiter)
			session_bye(waiter, BYE_SHUTDOWN, "The server is out of memory");
		session_bye(session, BYE_SHUTDOWN, "The server is out of memory");
	}
}

/* Acts on one command; returns the code it is refused with, or ERR_UNKNOWN. */
static enum error_code session_handle_command(struct session *session, const struct command *command)
{
	const struct server_config *cfg = &session->server->config.server;
	bool joined = session->state != SESSION_NEW;

	switch (command->kind) {
	case CMD_INVALID:
		return command->error;
	case CMD_MESSAGE:
		if (session->state != SESSION_PAIRED)
			return ERR_NOT_PAIRED;
		relay(session, command->arg, command->arg_len);
		break;
	case CMD_NAME:
		if (joined)
			return ERR_BUSY;
		snprintf(session->name, sizeof(session->name), "%.*s", (int)command->arg_len,
			 command->arg);
		break;
	case CMD_MODE:
		if (joined)
			return ERR_BUSY;
		if (!(cfg->modes & (1u << command->mode)))
			return ERR_BAD_MODE;
		session->mode = command->mode;
		break;
	case CMD_JOIN:
		if (joined)
			return ERR_BUSY;
		join(session, command->arg, command->arg_len);
		break;
	case CMD_HELP:
		session_queued(session, protocol_append_help(connection_output(session->conn)));
		break;
	case CMD_QUIT:
		log_info("#%lu %s quits", session->id, session->name);
		if (session->state == SESSION_PAIRED)
			end_conversation(session, session, BYE_QUIT, true, BYE_PEER_QUIT);
		else
			session_bye(session, BYE_QUIT, NULL);
		break;
	}
	return ERR_UNKNOWN;
}

static void session_line(void *ctx, const char *line, size_t len)
{
	struct session *session = ctx;
	const struct server_config *cfg = &session->server->config.server;
	struct command command;

	protocol_parse_command(line, len, &command);
	bool leaving = command.kind == CMD_QUIT;
	enum error_code refused;

	/* Leaving is never refused, however fast someone types. */
	if (!leaving && cfg->rate_limit &&
	    !rate_take(&session->rate, cfg->rate_limit, cfg->rate_burst,
		       event_now_ms(session->server->loop)))
		refused = ERR_RATE_LIMITED;
	else
		refused = session_handle_command(session, &command);
	if (refused != ERR_UNKNOWN)
		session_refuse(session, refused);
}

static void session_too_long(void *ctx)
{
	session_refuse(ctx, ERR_TOO_LONG);
}

/* The connection is over: whoever depended on this person learns it. */
static void session_end(void *ctx, enum connection_end end)
{
	struct session *session = ctx;

	if (session->state != SESSION_CLOSING) {
		log_info("#%lu %s (%s): connection %s", session->id, session->name,
			 SESSION_WHERE(session), end == CONNECTION_EOF ? "closed" : "lost");
		if (session->state == SESSION_PAIRED)
			end_conversation(session, session, BYE_PEER_LOST, false, BYE_PEER_LOST);
	}
	log_refusals(session, true);
	log_debug("#%lu disconnected", session->id);
	set_state(session, SESSION_GONE);
	connection_destroy(session->conn);
	free(session->refused);
	free(session);
}

void session_tick(struct session *session, uint64_t now)
{
	const struct server_config *cfg = &session->server->config.server;
	uint64_t closing = connection_closing_since(session->conn);
	uint64_t stalled = connection_stalled_since(session->conn);

	connection_trim(session->conn);
	/* A conversation is looked at once, from its first side. */
	if (session->state == SESSION_PAIRED && session->side == 0 && cfg->idle_timeout &&
	    now - session->conversation->last_line_ms >= (uint64_t)cfg->idle_timeout * 1000) {
		end_conversation(session, NULL, BYE_IDLE, false, BYE_IDLE);
		return;
	}
	log_refusals(session, false);
	if (closing) {
		/* When stopping, the service manager is waiting on us: be brief. */
		uint64_t grace = session->server->stopping ? 1000 : SESSION_CLOSE_GRACE_MS;
		if (now - closing > grace)
			connection_abort(session->conn);
		return;
	}
	if (session->state == SESSION_NEW && cfg->join_timeout &&
	    now - session->connected_ms >= (uint64_t)cfg->join_timeout * 1000) {
		log_info("#%lu %s: no /join within %u seconds", session->id, SESSION_WHERE(session),
			 cfg->join_timeout);
		session_bye(session, BYE_JOIN_TIMEOUT, NULL);
		return;
	}
	if (stalled && now - stalled >= (uint64_t)cfg->slow_timeout * 1000) {
		log_notice("#%lu %s: read nothing for %u seconds with output waiting; dropping",
			   session->id, session->name, cfg->slow_timeout);
		session_expel(session, BYE_TOO_SLOW);
	}
}
