/*
 * command: called by the connection (through command_handler, which the
 * server gives each session) with every line a person sends; calls the
 * protocol to parse it and the session to act on it. Settings made before
 * /join (name, mode, capabilities) are written here: they are not states.
 */
#include "command.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session.h"

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
	}
	return ERR_UNKNOWN;
}

static void command_line(void *ctx, const char *line, size_t len)
{
	struct session *session = ctx;
	const struct server_config *cfg = &session->server->config.server;
	struct command command;
	enum error_code refused;

	protocol_parse_command(line, len, session->caps, &command);
	/* Leaving is never refused, however fast someone types. */
	if (command.kind != CMD_QUIT && cfg->rate_limit &&
	    !rate_take(&session->rate, cfg->rate_limit, cfg->rate_burst,
		       event_now_ms(session->server->loop)))
		refused = ERR_RATE_LIMITED;
	else
		refused = act(session, &command);
	if (refused != ERR_UNKNOWN)
		session_refuse(session, refused);
}

static void command_too_long(void *ctx)
{
	session_refuse(ctx, ERR_TOO_LONG);
}

const struct connection_handler command_handler = {
	.on_line = command_line,
	.on_too_long = command_too_long,
	.on_drained = session_drained,
	.on_end = session_end,
};
