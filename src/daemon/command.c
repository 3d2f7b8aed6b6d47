/*
 * command: called by the connection (through command_handler, which the
 * server gives each session) with every line a person sends, and by the
 * server's tick for the refusal summaries; calls the protocol to parse a
 * line and the session to act on it, or refuses it. Settings made before
 * /join (name, mode, capabilities) are written here: they are not states.
 */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"
#include "state.h"
#include "tls.h"

/* The summary of what a window refused beyond its first line (see quota.h). */
void command_log_refusals(struct session *session, bool force)
{
	int last;
	unsigned n = refusals_summary(session->refused, event_now_ms(session->server->loop), force,
				      &last);
	if (n)
		log_info("#%lu %s: refused %u more line%s within %u seconds (the last: %s)",
			 session->id, session->name, n, n == 1 ? "" : "s", REFUSAL_WINDOW_MS / 1000,
			 protocol_error_name((enum error_code)last));
}

/* Answers the line just received with ERR code (it had no effect) and logs
 * it, or counts it for the summary; a flood ends the connection instead. */
static void refuse(struct session *session, enum error_code code)
{
	unsigned burst = session->server->config.server.rate_burst;

	command_log_refusals(session, false);
	switch (refusals_add(&session->refused, code, code == ERR_RATE_LIMITED, burst,
			     event_now_ms(session->server->loop))) {
	case REFUSAL_FLOOD:
		command_log_refusals(session, true);
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
	char text[80];
	/* Without the limit, nobody knows how much shorter to make it. */
	snprintf(text, sizeof(text), "Line too long (the limit is %zu bytes); it was not sent",
		 session->server->config.server.max_line);
	session_queued(session, protocol_append_error(connection_output(session->conn), code,
						      code == ERR_TOO_LONG ? text
						      : code == ERR_NO_SESSION
							      ? state_lost_note(session->server)
							      : NULL));
}

static enum error_code set_name(struct session *session, const char *name, size_t len)
{
	if (session->state != SESSION_NEW)
		return ERR_BUSY;
	char *copy = strndup(name, len);
	if (copy == NULL)
		return ERR_BUSY;
	if (session->name != session_default_name)
		free((char *)session->name);
	session->name = copy;
	return ERR_UNKNOWN;
}

static enum error_code set_mode(struct session *session, enum chat_mode mode)
{
	if (session->state != SESSION_NEW)
		return ERR_BUSY;
	if (!(session->server->config.server.modes & (1u << mode)))
		return ERR_BAD_MODE;
	session->mode = mode;
	return ERR_UNKNOWN;
}

/* Grants what this server offers of what was asked, and says so. */
static enum error_code set_caps(struct session *session, const char *words, size_t len)
{
	unsigned caps = protocol_parse_caps(words, len);

	if (session->state != SESSION_NEW)
		return ERR_BUSY;
	if (!session->server->config.server.typing)
		caps &= ~(unsigned)CAP_TYPING;
	if (!session->server->config.server.resume_timeout)
		caps &= ~(unsigned)CAP_RESUME;
	/* Every line with the partner's words is then a numbered one. */
	if (caps & CAP_RESUME)
		caps |= CAP_ACTION | CAP_DONE;
	session->caps = (uint8_t)caps;
	session_queued(session, protocol_append_caps(connection_output(session->conn), caps));
	return ERR_UNKNOWN;
}

/* Acts on one command; returns the code it is refused with, or ERR_UNKNOWN. */
static enum error_code act(struct session *session, const struct command *command)
{
	switch (command->kind) {
	case CMD_INVALID:
		return command->error;
	case CMD_MESSAGE:
	case CMD_ACTION:
		return session_say(session, command->arg, command->arg_len,
				   command->kind == CMD_ACTION);
	case CMD_NAME:
		return set_name(session, command->arg, command->arg_len);
	case CMD_MODE:
		return set_mode(session, command->mode);
	case CMD_CAPS:
		return set_caps(session, command->arg, command->arg_len);
	case CMD_JOIN:
		return session_join(session, command->arg, command->arg_len);
	case CMD_TYPING:
		return session_typing(session);
	case CMD_DONE:
		return session_done(session);
	case CMD_HELP:
		session_queued(session, protocol_append_help(connection_output(session->conn)));
		return ERR_UNKNOWN;
	case CMD_QUIT:
		session_quit(session);
		return ERR_UNKNOWN;
	case CMD_ACK:
		return session_ack(session, command->count);
	case CMD_RESUME:
		return session_resume(session, command->arg, command->count);
	case CMD_PING:
		session_queued(session, protocol_append_pong(connection_output(session->conn)));
		return ERR_UNKNOWN;
	}
	return ERR_UNKNOWN;
}

static void command_line(void *ctx, const char *line, size_t len)
{
	struct session *session = ctx;
	const struct server_config *cfg = &session->server->config.server;
	struct command command;
	enum error_code refused;
	/* Each message, /me or /done of someone granted resume has a number,
	 * refused or not: they count theirs the same way. */
	bool numbered = session->resume && protocol_is_numbered(line, len);

	protocol_parse_command(line, len, session->caps, &command);
	session_heard(session);
	if (numbered)
		session_numbered_read(session);
	/* Leaving is never refused, however fast someone types, and neither is
	 * news of what arrived. */
	if (command.kind == CMD_QUIT ||
	    (command.kind == CMD_ACK && session_ack_is_news(session, command.count)) ||
	    !cfg->rate_limit ||
	    rate_take(&session->rate, cfg->rate_limit, cfg->rate_burst,
		      event_now_ms(session->server->loop)))
		refused = act(session, &command);
	else if (session->caps & CAP_RESUME) {
		/* A numbered line is never lost to the rate: read more slowly. */
		session_over_rate(session);
		refused = act(session, &command);
	} else
		refused = ERR_RATE_LIMITED;
	if (refused == ERR_NOT_YOUR_TURN && (session->caps & CAP_RESUME)) {
		/* Numbered lines are never refused for the turn: it will come. */
		session_wait_turn(session);
		return;
	}
	/* A /resume that succeeded has freed session: nothing more of it. */
	if (refused != ERR_UNKNOWN)
		refuse(session, refused);
	if (numbered)
		session_numbered_done(session);
}

static void command_too_long(void *ctx)
{
	struct session *session = ctx;

	session_heard(session);
	if (session->resume)
		session_numbered_read(session);
	refuse(session, ERR_TOO_LONG);
	if (session->resume)
		session_numbered_done(session);
}

/* A TLS client at the plain-text port would wait for an answer it cannot
 * read: end it at once, without reading on. */
static bool command_first_bytes(void *ctx, const char *data, size_t len)
{
	struct session *session = ctx;
	char why[128];

	if (connection_tls(session->conn) ||
	    !tls_looks_like_handshake((const unsigned char *)data, len))
		return true;
	snprintf(why, sizeof(why), "a TLS handshake at the plain-text port (TLS is port %u); closing",
		 session->server->config.tls_port);
	session_drop(session, why);
	return false;
}

static void command_end(void *ctx, enum connection_end end)
{
	struct session *session = ctx;

	if (end == CONNECTION_ERROR && session->state != SESSION_CLOSING &&
	    connection_got_plaintext(session->conn)) {
		/* Someone with nc at the TLS port: say where plain text goes. */
		char bye[96];
		int n = snprintf(bye, sizeof(bye),
				 "BYE protocol This port speaks TLS; plain text goes to port %u\n",
				 session->server->config.port);
		connection_send_now(session->conn, bye, (size_t)n);
	}
	command_log_refusals(session, true);
	session_end(session, end);
}

const struct connection_handler command_handler = {
	.on_first_bytes = command_first_bytes,
	.on_line = command_line,
	.on_too_long = command_too_long,
	.on_drained = session_drained,
	.on_end = command_end,
};
