/*
 * reply: the chat module's reaction to each line the server sends, called
 * by chat.c for every one: the greeting (answered with /caps, /name, /mode
 * and /join at once), the capabilities granted, waiting, pairing, the
 * partner's messages, actions, typing and /done, refusals, and the BYE that
 * ends it all, with the RELAYED count that tells whether every line we sent
 * arrived. The lines of resume go on to receipt.c (numbers and receipts)
 * and reconnect.c (a new connection). chat->state is written here, in
 * chat.c and in reconnect.c only.
 */
#include <stdio.h>
#include <string.h>
#include <sysexits.h>

#include "chat_internal.h"

static void start_pairing(struct chat *chat, const struct server_line *line)
{
	const char *peer = chat->peer;

	snprintf(chat->peer, sizeof(chat->peer), "%.*s", (int)line->word_len, line->word);
	if (!protocol_valid_name(chat->peer, strlen(chat->peer)))
		strcpy(chat->peer, "partner");
	chat->state = CHAT_PAIRED;
	chat->mode = line->mode;
	chat_say(chat, UI_NOTICE, "Paired with '%s' (%s mode). Type '/q' to quit.", peer,
		 protocol_mode_name(line->mode));
	/* The one who waited chose the mode: a joiner who asked for the other
	 * one learns why it did not get it. */
	if (!chat->waiting && line->mode != chat->options->mode)
		chat_say(chat, UI_NOTICE, "%s waited in %s mode, so %s.", peer,
			 protocol_mode_name(line->mode),
			 line->mode == CHAT_MODE_TURNS ? "you take turns" : "you both type freely");
	chat->waiting = false;
	if (line->mode == CHAT_MODE_FREE) {
		chat_say(chat, UI_NOTICE, "Type whenever you like; %s's lines appear as they arrive.",
			 peer);
		chat_set_turn(chat, UI_FREE);
	} else if (line->first == FIRST_YOU) {
		chat_say(chat, UI_NOTICE, "You speak first.");
		chat_set_turn(chat, UI_MY_TURN);
	} else {
		chat_say(chat, UI_NOTICE, "Waiting for %s's reply...", peer);
		chat_set_turn(chat, UI_PEER_TURN);
	}
	input_flush(chat);
}

/* Says what the server's RELAYED count tells: lines that never arrived. */
static void check_delivery(struct chat *chat)
{
	unsigned long arrived = chat->relayed + chat->refused;

	if (chat->relayed_known && chat->sent > arrived) {
		unsigned long missing = chat->sent - arrived;
		chat_say(chat, UI_PROBLEM, "turnchat: %lu of your lines did not reach %s", missing,
			 chat->peer[0] ? chat->peer : "your partner");
		chat->lost += missing;
		if (chat->exit_status == 0)
			chat->exit_status = 1;
	}
	/* A script learns from its exit status that a line of it was refused. */
	if (!ui_is_terminal(chat->ui) && chat->lost > 0 && chat->exit_status == 0)
		chat->exit_status = 1;
}

static void end_with_bye(struct chat *chat, const struct server_line *line)
{
	static const struct {
		const char *text;
		int status;
	} byes[] = {
		[BYE_QUIT] = {"You left the conversation.", 0},
		[BYE_PEER_QUIT] = {"%s left the conversation.", 0},
		[BYE_PEER_LOST] = {"The connection to %s was lost.", 1},
		[BYE_SHUTDOWN] = {"The server is shutting down.", 1},
		[BYE_IDLE] = {"The conversation was idle for too long and has ended.", 1},
		[BYE_SERVER_FULL] = {"The server is full; try again later.", EX_UNAVAILABLE},
		[BYE_ADDRESS_LIMIT] = {"Too many connections from your address; try later.",
				       EX_UNAVAILABLE},
		[BYE_JOIN_TIMEOUT] = {"The server gave up waiting for you to join.", 1},
		[BYE_TOO_SLOW] = {"You were not reading fast enough; the server let you go.", 1},
		[BYE_FLOOD] = {"You sent far too many lines too fast; the server let you go.", 1},
		[BYE_DONE] = {"You and %s are both done; the conversation is over.", 0},
	};
	const char *peer = chat->peer[0] ? chat->peer : "your partner";
	enum bye_reason bye = line->bye;

	chat_end(chat, 1);
	chat->resume.token[0] = '\0'; /* nothing left to come back to */
	if (bye >= sizeof(byes) / sizeof(byes[0]) || byes[bye].text == NULL) {
		chat_say(chat, UI_NOTICE, "The server ended the connection: %.*s",
			 (int)line->word_len, line->word);
	} else {
		/* A script that left knows it did: only a terminal is told. */
		if (ui_is_terminal(chat->ui) || (bye != BYE_QUIT && bye != BYE_DONE))
			chat_say(chat, UI_NOTICE, byes[bye].text, peer);
		chat->exit_status = chat->forced_status >= 0 ? chat->forced_status : byes[bye].status;
	}
	if (!chat->quit_sent)
		input_report_unsent(chat, "The conversation is over", true);
	check_delivery(chat);
	chat_set_turn(chat, UI_LEAVING);
}

/* The server refused a line: ours to say so, and the turn is still ours. */
static void refused(struct chat *chat, const struct server_line *line)
{
	if (chat->state == CHAT_RECONNECTING) {
		reconnect_refused(chat, line);
		return;
	}
	if (chat->state == CHAT_JOINING) {
		/* Our name, mode or room was refused: nothing good can follow. */
		chat_say(chat, UI_NOTICE, "turnchat: the server refused: %.*s", (int)line->text_len,
			 line->text);
		chat->forced_status = EX_USAGE;
		if (!chat->quit_sent)
			chat_send_quit(chat);
		return;
	}
	switch (line->error) {
	case ERR_NOT_YOUR_TURN:
	case ERR_NOT_PAIRED:
	case ERR_TOO_LONG:
	case ERR_BAD_UTF8:
	case ERR_CONTROL_CHAR:
	case ERR_EMPTY:
	case ERR_RATE_LIMITED:
	case ERR_DONE:
		chat->refused++;
		chat->lost++;
		break;
	default:
		break;
	}
	chat_say(chat, UI_PROBLEM, "Not sent: %.*s", (int)line->text_len, line->text);
	if (chat->turn == UI_PEER_TURN && line->error != ERR_NOT_YOUR_TURN)
		chat_set_turn(chat, UI_MY_TURN);
	input_flush(chat);
}

unsigned reply_wanted_caps(const struct chat *chat)
{
	unsigned caps = CAP_ACTION | CAP_DONE;

	if (chat->options->typing && ui_is_terminal(chat->ui))
		caps |= CAP_TYPING;
	/* Over TLS, the other half of the way matters too: ask to be told. */
	if (chat->options->security)
		caps |= CAP_SECURE;
	if (chat->options->resume)
		caps |= CAP_RESUME;
	return caps;
}

static void greeted(struct chat *chat, const struct server_line *line)
{
	const struct chat_options *options = chat->options;

	if (line->version != PROTOCOL_VERSION) {
		chat_say(chat, UI_PROBLEM, "turnchat: the server speaks protocol version %u, not %d",
			 line->version, PROTOCOL_VERSION);
		chat_end(chat, EX_PROTOCOL);
		return;
	}
	if (chat->state == CHAT_RECONNECTING) {
		reconnect_greeted(chat);
		return;
	}
	chat_say(chat, UI_NOTICE,
		 "Connected to turnchatd '%.*s' at '%s' on port number '%u'%s%s%s...",
		 (int)line->word_len, line->word, options->host, options->port,
		 options->security ? " (" : "", options->security ? options->security : "",
		 options->security ? ")" : "");
	chat->state = CHAT_JOINING;
	/* All at once: an older server answers /caps with ERR bad-command, then the rest. */
	struct buffer *out = connection_output(chat->conn);
	int rc = protocol_append_caps_request(out, reply_wanted_caps(chat));
	if (rc == 0)
		rc = protocol_append_command(out, "name", options->name);
	if (rc == 0)
		rc = protocol_append_command(out, "mode", protocol_mode_name(options->mode));
	if (rc == 0)
		rc = protocol_append_command(out, "join", options->room[0] ? options->room : NULL);
	chat->caps_pending = true;
	chat_send(chat, rc);
}

/* The partner's message or action: their typing is over, and maybe it is our turn. */
static void received(struct chat *chat, const struct server_line *line, enum ui_kind kind)
{
	chat->peer_typing = false;
	receipt_received(chat);
	chat_show(chat, kind, chat->peer, line->text, line->text_len);
	if (chat->turn == UI_PEER_TURN)
		chat_set_turn(chat, UI_MY_TURN);
	input_flush(chat);
}

void reply_line(struct chat *chat, const char *text, size_t len)
{
	struct server_line line;

	if (!protocol_parse_server_line(text, len, &line) ||
	    (chat->state == CHAT_GREETING && line.keyword != SRV_HELLO)) {
		chat_say(chat, UI_PROBLEM, "turnchat: not a turnchat server; it said: %.*s",
			 (int)(len < 200 ? len : 200), text);
		chat_end(chat, EX_PROTOCOL);
		return;
	}
	if (chat->caps_pending && line.keyword != SRV_CAPS) {
		/* No CAPS: a server older than capabilities, which grants none. */
		chat->caps_pending = false;
		if (line.keyword == SRV_ERR && line.error == ERR_BAD_COMMAND)
			return;
	}
	switch (line.keyword) {
	case SRV_HELLO:
		greeted(chat, &line);
		return;
	case SRV_CAPS:
		chat->caps_pending = false;
		chat->caps = line.caps;
		input_flush(chat);
		return;
	case SRV_WAITING:
		chat_say(chat, UI_NOTICE, "Waiting for a partner in room '%.*s'...",
			 (int)line.word_len, line.word);
		chat->waiting = true;
		chat->waiting_since = event_now_ms(chat->loop);
		chat_update_status(chat);
		return;
	case SRV_PAIRED:
		start_pairing(chat, &line);
		return;
	case SRV_MSG:
		received(chat, &line, UI_PEER_LINE);
		return;
	case SRV_ACTION:
		received(chat, &line, UI_PEER_ACTION);
		return;
	case SRV_TYPING:
		if (chat->options->typing) {
			chat->peer_typing = true;
			chat->peer_typing_at = event_now_ms(chat->loop);
			chat_update_status(chat);
		}
		return;
	case SRV_DONE:
		receipt_received(chat);
		chat->peer_done = true;
		chat->peer_typing = false;
		chat_say(chat, UI_NOTICE, "%s has nothing more to send.", chat->peer);
		/* In turns mode their turn never comes again: we no longer wait for it. */
		if (chat->turn == UI_PEER_TURN || chat->turn == UI_MY_TURN)
			chat_set_turn(chat, UI_FREE);
		input_flush(chat);
		return;
	case SRV_RELAYED:
		chat->relayed_known = true;
		chat->relayed = line.count;
		return;
	case SRV_ERR:
		refused(chat, &line);
		return;
	case SRV_INFO:
		chat_show(chat, UI_NOTICE, NULL, line.text, line.text_len);
		return;
	case SRV_BYE:
		if (chat->state == CHAT_RECONNECTING && !chat->resume.resumed)
			reconnect_refused(chat, &line);
		else
			end_with_bye(chat, &line);
		return;
	case SRV_SECURE:
		/* Said again after each resume: news only when it changed. */
		if (chat->secure_shown == (int)line.secure)
			return;
		chat->secure_shown = line.secure;
		if (line.secure)
			chat_say(chat, UI_NOTICE,
				 "Both of you reach the server over TLS: nobody on the way can read "
				 "this conversation.");
		else
			chat_say(chat, UI_NOTICE,
				 "%s is connected without TLS: what you both write crosses their "
				 "network unencrypted.",
				 chat->peer);
		return;
	case SRV_TOKEN:
		reconnect_token(chat, &line);
		return;
	case SRV_ACK:
		receipt_delivered(chat, line.count);
		return;
	case SRV_RESUMED:
		reconnect_resumed(chat, &line);
		return;
	case SRV_PONG: /* chat.c noted that the server spoke */
	case SRV_UNKNOWN:
		return;
	}
}
