/*
 * session: turns each line a person sends into an action, according to the
 * state they are in. The connection calls in with lines; session calls the
 * pairing, then the relay. All state changes happen in session_handle_line
 * and session_end.
 */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "relay.h"

/* How long a closing connection may take to read its last lines. */
#define SESSION_CLOSE_GRACE_MS 5000
/* Refused lines are logged one summary per connection per window, so no
 * client can buy log lines; and one refused for the rate more than
 * SESSION_FLOOD_FACTOR times rate_burst in a window is not typing, it is
 * flooding. A paste of a few hundred lines stays well under that. */
#define SESSION_REFUSAL_WINDOW_MS 10000
#define SESSION_FLOOD_FACTOR 10

static const char *const help_lines[] = {
	"Commands: /name NAME, /mode turns|free, /join [ROOM], /help, /q",
	"Before /join, /name and /mode say who you are and how you want to talk.",
	"/join waits at a meeting point; the next person to join it becomes your partner.",
	"Once paired, every line not starting with / goes to your partner; // sends a leading /.",
};

static void session_line(void *ctx, const char *line, size_t len);
static void session_too_long(void *ctx);
static void session_end(void *ctx, enum connection_end end);
static void session_drained(void *ctx);

static const struct connection_handler session_handler = {
	.on_line = session_line,
	.on_too_long = session_too_long,
	.on_drained = session_drained,
	.on_end = session_end,
};

const char *session_address(const struct session *session, char *text, size_t size)
{
	return peer_address_text(&session->peer, text, size);
}

struct session *session_create(struct server *server, int fd, const struct sockaddr *addr,
			       socklen_t addr_len, const struct address_key *key)
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
	session->key = *key;
	session->connected_ms = event_now_ms(server->loop);
	session->refused.since = session->connected_ms;
	rate_start(&session->rate, server->config.server.rate_burst, session->connected_ms);
	session->conn = connection_create(server->loop, fd, server->config.server.max_line,
					  server->config.server.max_queue, &session_handler, session);
	if (session->conn == NULL) {
		close(fd);
		free(session);
		return NULL;
	}
	session->next = server->sessions;
	if (server->sessions)
		server->sessions->prev = session;
	server->sessions = session;
	server->clients++;
	session_queued(session, protocol_append_hello(connection_output(session->conn),
						      server->config.server.name));
	return session;
}

bool session_backlogged(const struct session *session)
{
	return connection_backlogged(session->conn);
}

void session_queued(struct session *session, int rc)
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
	if (session_backlogged(session)) {
		/* It does not read our answers: stop reading its lines until it does. */
		connection_pause_reading(session->conn, true);
		connection_notify_drained(session->conn);
	}
}

/* Its queue is empty again: whoever waited on it may go on. */
static void session_drained(void *ctx)
{
	struct session *session = ctx;
	if (session->state == SESSION_PAIRED) {
		struct session *peer = session->conversation->side[1 - session->side];
		connection_pause_reading(peer->conn, false);
	}
	if (session->state != SESSION_CLOSING)
		connection_pause_reading(session->conn, false);
}

/* Leaves the room it waits in, and its address's count of waiters. */
static void stop_waiting(struct session *session)
{
	pairing_leave(session->server->pairing, session->room, session);
	address_counts_remove(session->server->waiting, &session->key);
}

void session_bye(struct session *session, enum bye_reason reason, const char *text)
{
	if (session->state == SESSION_CLOSING)
		return;
	if (session->state == SESSION_WAITING)
		stop_waiting(session);
	session->state = SESSION_CLOSING;
	session->conversation = NULL;
	session->server->clients--;
	session_queued(session, protocol_append_bye(connection_output(session->conn), reason, text));
	connection_close_after_flush(session->conn);
}

/* Ends this person's part for reason; a partner hears peer-lost. */
static void session_expel(struct session *session, enum bye_reason reason)
{
	if (session->state == SESSION_PAIRED)
		relay_end(session->conversation, session, reason, true, BYE_PEER_LOST);
	else
		session_bye(session, reason, NULL);
}

/* The summary of what the window refused beyond its first line. */
static void log_refusals(struct session *session)
{
	struct refusals *r = &session->refused;

	if (r->unlogged == 0)
		return;
	log_info("#%lu %s: refused %u more line%s within %u seconds (the last: %s)", session->id,
		 session->name, r->unlogged, r->unlogged == 1 ? "" : "s",
		 SESSION_REFUSAL_WINDOW_MS / 1000, protocol_error_name(r->last));
	r->unlogged = 0;
}

void session_refuse(struct session *session, enum error_code code)
{
	unsigned burst = session->server->config.server.rate_burst;
	struct refusals *r = &session->refused;
	uint64_t now = event_now_ms(session->server->loop);

	if (now - r->since >= SESSION_REFUSAL_WINDOW_MS) {
		log_refusals(session);
		*r = (struct refusals){.since = now};
	}
	if (code == ERR_RATE_LIMITED && ++r->rate_limited > SESSION_FLOOD_FACTOR * burst) {
		log_refusals(session);
		log_notice("#%lu %s (%s): over %u lines past the rate limit within %u seconds; "
			   "ending the connection",
			   session->id, session->name, SESSION_WHERE(session),
			   SESSION_FLOOD_FACTOR * burst, SESSION_REFUSAL_WINDOW_MS / 1000);
		session_expel(session, BYE_FLOOD);
		return;
	}
	if (r->logged++ == 0) {
		log_info("#%lu %s: refused a line: %s", session->id, session->name,
			 protocol_error_name(code));
	} else {
		r->unlogged++;
		r->last = code;
	}
	session_queued(session, protocol_append_error(connection_output(session->conn), code, NULL));
}

static void join(struct session *session, const char *room, size_t room_len)
{
	struct server *server = session->server;
	int error;

	if (room_len == 0)
		snprintf(session->room, sizeof(session->room), "%s", server->config.server.default_room);
	else
		snprintf(session->room, sizeof(session->room), "%.*s", (int)room_len, room);

	struct session *waiter = pairing_meet(server->pairing, session->room, session, &error);
	if (waiter == NULL && error == 0) {
		/* Waiting is the cheapest way to hold a slot: a few addresses
		 * waiting in many rooms could leave no one else a place. */
		unsigned waiting = address_counts_add(server->waiting, &session->key);
		if (waiting == 0 || waiting > server->config.server.max_waiting_per_address) {
			if (waiting)
				address_counts_remove(server->waiting, &session->key);
			pairing_leave(server->pairing, session->room, session);
			log_notice("#%lu %s (%s) refused: %u people from this address waiting is the "
				   "limit (max_waiting_per_address)",
				   session->id, session->name, SESSION_WHERE(session),
				   server->config.server.max_waiting_per_address);
			session_bye(session, BYE_ADDRESS_LIMIT,
				    "Too many people from your address are waiting; try later");
			return;
		}
		session->state = SESSION_WAITING;
		log_info("#%lu %s (%s) waits in room '%s'", session->id, session->name,
			 SESSION_WHERE(session), session->room);
		session_queued(session,
			       protocol_append_waiting(connection_output(session->conn), session->room));
		return;
	}
	if (waiter)
		address_counts_remove(server->waiting, &waiter->key);
	if (waiter == NULL || relay_start(waiter, session, waiter->mode) < 0) {
		log_warnx("#%lu: out of memory while joining", session->id);
		if (waiter)
			session_bye(waiter, BYE_SHUTDOWN, "The server is out of memory");
		session_bye(session, BYE_SHUTDOWN, "The server is out of memory");
	}
}

static void session_handle_command(struct session *session, const struct command *command)
{
	const struct server_config *cfg = &session->server->config.server;
	bool joined = session->state != SESSION_NEW;

	switch (command->kind) {
	case CMD_INVALID:
		{ session_refuse(session, command->error); return; }
	case CMD_MESSAGE:
		if (session->state != SESSION_PAIRED)
			{ session_refuse(session, ERR_NOT_PAIRED); return; }
		{ relay_message(session, command->arg, command->arg_len); return; }
	case CMD_NAME:
		if (joined)
			{ session_refuse(session, ERR_BUSY); return; }
		snprintf(session->name, sizeof(session->name), "%.*s", (int)command->arg_len,
			 command->arg);
		return;
	case CMD_MODE:
		if (joined)
			{ session_refuse(session, ERR_BUSY); return; }
		if (!(cfg->modes & (1u << command->mode)))
			{ session_refuse(session, ERR_BAD_MODE); return; }
		session->mode = command->mode;
		return;
	case CMD_JOIN:
		if (joined)
			{ session_refuse(session, ERR_BUSY); return; }
		{ join(session, command->arg, command->arg_len); return; }
	case CMD_HELP:
		for (size_t i = 0; i < sizeof(help_lines) / sizeof(help_lines[0]); i++)
			session_queued(session, protocol_append_info(connection_output(session->conn),
								     help_lines[i]));
		return;
	case CMD_QUIT:
		log_info("#%lu %s quits", session->id, session->name);
		if (session->state == SESSION_PAIRED)
			{ relay_end(session->conversation, session, BYE_QUIT, true,
					 BYE_PEER_QUIT); return; }
		{ session_bye(session, BYE_QUIT, NULL); return; }
	}
}

static void session_line(void *ctx, const char *line, size_t len)
{
	struct session *session = ctx;
	const struct server_config *cfg = &session->server->config.server;
	struct command command;

	protocol_parse_command(line, len, &command);
	/* Leaving is never refused, however fast someone types. */
	if (command.kind != CMD_QUIT && !rate_take(&session->rate, cfg->rate_limit, cfg->rate_burst,
						   event_now_ms(session->server->loop))) {
		session_refuse(session, ERR_RATE_LIMITED);
		return;
	}
	session_handle_command(session, &command);
}

static void session_too_long(void *ctx)
{
	session_refuse(ctx, ERR_TOO_LONG);
}

/* The connection is over: whoever depended on this person learns it. */
static void session_end(void *ctx, enum connection_end end)
{
	struct session *session = ctx;
	struct server *server = session->server;

	if (session->state != SESSION_CLOSING) {
		log_info("#%lu %s (%s): connection %s", session->id, session->name,
			 SESSION_WHERE(session), end == CONNECTION_EOF ? "closed" : "lost");
		if (session->state == SESSION_WAITING)
			stop_waiting(session);
		if (session->state == SESSION_PAIRED)
			relay_end(session->conversation, session, BYE_PEER_LOST, false,
				  BYE_PEER_LOST);
		server->clients--;
	}
	log_refusals(session);
	log_debug("#%lu disconnected", session->id);
	address_counts_remove(server->addresses, &session->key);
	if (session->prev)
		session->prev->next = session->next;
	else
		server->sessions = session->next;
	if (session->next)
		session->next->prev = session->prev;
	connection_destroy(session->conn);
	free(session);
}

void session_tick(struct session *session, uint64_t now)
{
	const struct server_config *cfg = &session->server->config.server;
	uint64_t closing = connection_closing_since(session->conn);
	uint64_t stalled = connection_stalled_since(session->conn);

	connection_trim(session->conn);
	if (session->refused.unlogged && now - session->refused.since >= SESSION_REFUSAL_WINDOW_MS)
		log_refusals(session);
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
