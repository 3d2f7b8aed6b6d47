/*
 * protocol_command: the lines a client sends. The daemon's session parses
 * them (protocol_parse_command); the client and the tests format them.
 */
#include <stdio.h>
#include <string.h>

#include "protocol.h"

/* "/resume TOKEN N": the token is exactly PROTOCOL_TOKEN_HEX lowercase hex
 * digits, so that it can be compared as it stands. */
static bool parse_resume(struct command *command)
{
	const char *token = command->arg;
	size_t len = command->arg_len;

	if (len < PROTOCOL_TOKEN_HEX + 2 || token[PROTOCOL_TOKEN_HEX] != ' ')
		return false;
	for (size_t i = 0; i < PROTOCOL_TOKEN_HEX; i++)
		if (!((token[i] >= '0' && token[i] <= '9') || (token[i] >= 'a' && token[i] <= 'f')))
			return false;
	command->arg_len = PROTOCOL_TOKEN_HEX;
	return protocol_parse_count(token + PROTOCOL_TOKEN_HEX + 1, len - PROTOCOL_TOKEN_HEX - 1,
				    &command->count);
}

/* Fills in command; returns why the line is refused, or ERR_UNKNOWN. */
static enum error_code parse_command(const char *line, size_t len, unsigned caps,
				     struct command *command)
{
	static const struct {
		const char *verb;
		enum command_kind kind;
		bool takes_arg, needs_arg;
		unsigned cap; /* needed to use it at all */
	} verbs[] = {
		{"/name", CMD_NAME, true, true, 0},
		{"/mode", CMD_MODE, true, true, 0},
		{"/join", CMD_JOIN, true, false, 0},
		{"/q", CMD_QUIT, false, false, 0},
		{"/quit", CMD_QUIT, false, false, 0},
		{"/help", CMD_HELP, false, false, 0},
		{"/caps", CMD_CAPS, true, true, 0},
		{"/typing", CMD_TYPING, false, false, CAP_TYPING},
		{"/me", CMD_ACTION, true, true, CAP_ACTION},
		{"/done", CMD_DONE, false, false, CAP_DONE},
		{"/ack", CMD_ACK, true, true, CAP_RESUME},
		{"/resume", CMD_RESUME, true, true, CAP_RESUME},
		{"/ping", CMD_PING, false, false, CAP_RESUME},
	};

	switch (protocol_check_text(line, len)) {
	case TEXT_BAD_UTF8:
		return ERR_BAD_UTF8;
	case TEXT_CONTROL_CHAR:
		return ERR_CONTROL_CHAR;
	case TEXT_OK:
		break;
	}
	if (len == 0)
		return ERR_EMPTY;
	if (protocol_is_message(line, len)) {
		size_t skip = line[0] == '/' ? 1 : 0;
		command->kind = CMD_MESSAGE;
		command->arg = line + skip;
		command->arg_len = len - skip;
		return ERR_UNKNOWN;
	}
	const char *space = memchr(line, ' ', len);
	size_t verb_len = space ? (size_t)(space - line) : len;
	const char *arg = space ? space + 1 : line + len;
	size_t arg_len = space ? len - verb_len - 1 : 0;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].verb) != verb_len || memcmp(verbs[i].verb, line, verb_len) != 0)
			continue;
		/* Without the capability the verb does not exist, as in plain v1. */
		if (verbs[i].cap & ~caps)
			return ERR_BAD_COMMAND;
		if ((arg_len > 0 && !verbs[i].takes_arg) || (arg_len == 0 && verbs[i].needs_arg) ||
		    (space && arg_len == 0))
			return ERR_BAD_COMMAND;
		command->kind = verbs[i].kind;
		command->arg = arg;
		command->arg_len = arg_len;
		if (command->kind == CMD_MODE && !protocol_parse_mode(arg, arg_len, &command->mode))
			return ERR_BAD_MODE;
		if ((command->kind == CMD_NAME || command->kind == CMD_JOIN) && arg_len > 0 &&
		    !protocol_valid_name(arg, arg_len))
			return ERR_BAD_NAME;
		if (command->kind == CMD_ACK && !protocol_parse_count(arg, arg_len, &command->count))
			return ERR_BAD_COMMAND;
		if (command->kind == CMD_RESUME && !parse_resume(command))
			return ERR_BAD_COMMAND;
		return ERR_UNKNOWN;
	}
	return ERR_BAD_COMMAND;
}

void protocol_parse_command(const char *line, size_t len, unsigned caps, struct command *command)
{
	memset(command, 0, sizeof(*command));
	/* "/ack N" comes about as often as a message from a client granted
	 * resume: digits only, so no text check and no walk of the verbs. */
	if ((caps & CAP_RESUME) && len > 5 && memcmp(line, "/ack ", 5) == 0 &&
	    protocol_parse_count(line + 5, len - 5, &command->count)) {
		command->kind = CMD_ACK;
		command->arg = line + 5;
		command->arg_len = len - 5;
		command->error = ERR_UNKNOWN;
		return;
	}
	command->error = parse_command(line, len, caps, command);
	if (command->error != ERR_UNKNOWN)
		command->kind = CMD_INVALID;
}

int protocol_append_message(struct buffer *out, const char *text, size_t len)
{
	bool escape = len > 0 && text[0] == '/';
	size_t total = len + (escape ? 1 : 0) + 1;

	if (total > buffer_room(out))
		return -1;
	if (escape)
		buffer_append(out, "/", 1);
	buffer_append(out, text, len);
	return buffer_append(out, "\n", 1);
}

int protocol_append_command(struct buffer *out, const char *command, const char *arg)
{
	size_t c = strlen(command), a = arg ? strlen(arg) : 0;
	size_t total = 1 + c + (arg ? 1 + a : 0) + 1;

	if (total > buffer_room(out))
		return -1;
	buffer_append(out, "/", 1);
	buffer_append(out, command, c);
	if (arg) {
		buffer_append(out, " ", 1);
		buffer_append(out, arg, a);
	}
	return buffer_append(out, "\n", 1);
}

int protocol_append_caps_request(struct buffer *out, unsigned caps)
{
	char words[64];
	protocol_format_caps(caps, words, sizeof(words));
	return protocol_append_command(out, "caps", words);
}

int protocol_append_ack_command(struct buffer *out, unsigned long received)
{
	char number[24];
	snprintf(number, sizeof(number), "%lu", received);
	return protocol_append_command(out, "ack", number);
}

int protocol_append_resume_command(struct buffer *out, const char *token, unsigned long received)
{
	char words[PROTOCOL_TOKEN_HEX + 24];
	snprintf(words, sizeof(words), "%.*s %lu", PROTOCOL_TOKEN_HEX, token, received);
	return protocol_append_command(out, "resume", words);
}
