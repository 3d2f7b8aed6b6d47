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

/* Enough for a few hundred queued lines; beyond it a reader is too slow. */
#define SESSION_OUTPUT_LIMIT (256 * 1024)

static const char *const help_lines[] = {
	"Commands: /name NAME, /mode turns|free, /join [ROOM], /help, /q",
	"Before /join, /name and /mode say who you are and how you want to talk.",
	"/join waits at a meeting point; the next person to join it becomes your partner.",
	"Once paired, every line not starting with / goes to your partner; // sends a leading /.",
};

static void session_line(void *ctx, const char *line, size_t len);
static void session_too_long(void *ctx);
static void session_end(void *ctx, enum connection_end end);

static const struct connection_handler session_handler = {
	.on_line = session_line,
	.on_too_long = session_too_long,
	.on_end = session_end,
};

struct session *session_create(struct server *server, int fd, const char *address)
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
	snprintf(session->address, sizeof(session->address), "%s", address);
	session->conn = connection_create(server->loop, fd, server->config.server.max_line,
					  SESSION_OUTPUT_LIMIT, &session_handler, session);
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

void session_queued(struct session *session, int rc)
{
	if (rc < 0) {
		/* It stopped reading while output piled up: drop it rather than
		 * let it hold the daemon's memory; its partner hears peer-lost. */
		log_notice("#%lu %s: too much unread output, dropping the connection",
			   session->id, session->address);
		connection_abort(session->conn);
		return;
	}
	connection_flush(session->conn);
}

void session_bye(struct session *session, enum bye_reason reason, const char *text)
{
	if (session->state == SESSION_CLOSING)
		return;
	if (session->state == SESSION_WAITING)
		pairing_leave(session->server->pairing, session->room, session);
	session->state = SESSION_CLOSING;
	session->conversation = NULL;
	session->server->clients--;
	session_queued(session, protocol_append_bye(connection_output(session->conn), reason, text));
	connection_close_after_flush(session->conn);
}

static void refuse(struct session *session, enum error_code code)
{
	log_info("#%lu %s: refused a line: %s", session->id, session->name,
		 protocol_error_name(code));
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
		session->state = SESSION_WAITING;
		log_info("#%lu %s (%s) waits in room '%s'", session->id, session->name,
			 session->address, session->room);
		session_queued(session,
			       protocol_append_waiting(connection_output(session->conn), session->room));
		return;
	}
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
		{ refuse(session, command->error); return; }
	case CMD_MESSAGE:
		if (session->state != SESSION_PAIRED)
			{ refuse(session, ERR_NOT_PAIRED); return; }
		{ relay_message(session, command->arg, command->arg_len); return; }
	case CMD_NAME:
		if (joined)
			{ refuse(session, ERR_BUSY); return; }
		snprintf(session->name, sizeof(session->name), "%.*s", (int)command->arg_len,
			 command->arg);
		return;
	case CMD_MODE:
		if (joined)
			{ refuse(session, ERR_BUSY); return; }
		if (!(cfg->modes & (1u << command->mode)))
			{ refuse(session, ERR_BAD_MODE); return; }
		session->mode = command->mode;
		return;
	case CMD_JOIN:
		if (joined)
			{ refuse(session, ERR_BUSY); return; }
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
	struct command command;

	protocol_parse_command(line, len, &command);
	session_handle_command(session, &command);
}

static void session_too_long(void *ctx)
{
	refuse(ctx, ERR_TOO_LONG);
}

/* The connection is over: whoever depended on this person learns it. */
static void session_end(void *ctx, enum connection_end end)
{
	struct session *session = ctx;
	struct server *server = session->server;

	if (session->state != SESSION_CLOSING) {
		log_info("#%lu %s (%s): connection %s", session->id, session->name,
			 session->address, end == CONNECTION_EOF ? "closed" : "lost");
		if (session->state == SESSION_WAITING)
			pairing_leave(server->pairing, session->room, session);
		if (session->state == SESSION_PAIRED)
			relay_end(session->conversation, session, BYE_PEER_LOST, false,
				  BYE_PEER_LOST);
		if (session->state != SESSION_CLOSING)
			server->clients--;
	}
	log_debug("#%lu disconnected", session->id);
	if (session->prev)
		session->prev->next = session->next;
	else
		server->sessions = session->next;
	if (session->next)
		session->next->prev = session->prev;
	connection_destroy(session->conn);
	free(session);
}
