/*
 * chat: called by turnchat's main (chat_run) once connected; runs the
 * client's event loop. Reacts to what the server says (on_server_line,
 * on_server_end) and to what the person does through the ui
 * (on_typed_line, on_typed_eof, Ctrl-C); the ui calls back into it.
 */
#include "chat.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "connection.h"
#include "display.h"
#include "event.h"
#include "ui.h"

#define CHAT_QUIT_WAIT_MS 5000
/* The longest line the client takes from a server. */
#define CHAT_MAX_LINE (1024 * 1024)

enum chat_state {
	CHAT_GREETING, /* connected, waiting for HELLO */
	CHAT_JOINING,  /* /join sent */
	CHAT_PAIRED,
	CHAT_ENDED,
};

struct chat {
	const struct chat_options *options;
	struct event_loop *loop;
	struct connection *conn;
	struct ui *ui;
	enum chat_state state;
	enum chat_mode mode;
	enum ui_turn turn;
	bool quit_sent;
	uint64_t quit_sent_at;
	int exit_status;
	int forced_status; /* set by a failure or Ctrl-C before the goodbye; -1 if none */
	char peer[PROTOCOL_NAME_BYTES + 1];
	struct buffer line; /* scratch for one printed line */
};

/* Starts a line to show: the time first, when asked for. */
static void begin_line(struct chat *chat)
{
	buffer_consume(&chat->line, buffer_length(&chat->line));
	if (chat->options->timestamps) {
		char stamp[16];
		time_t now = time(NULL);
		struct tm tm;
		localtime_r(&now, &tm);
		size_t n = strftime(stamp, sizeof(stamp), "[%H:%M] ", &tm);
		buffer_append(&chat->line, stamp, n);
	}
}

static void append_text(struct chat *chat, const char *text)
{
	buffer_append(&chat->line, text, strlen(text));
}

static void end_line(struct chat *chat)
{
	ui_show(chat->ui, buffer_peek(&chat->line), buffer_length(&chat->line));
}

/* Shows prefix, the network's text made safe, and suffix, as one line. */
static void show(struct chat *chat, const char *prefix, const char *text, size_t len,
		 const char *suffix)
{
	begin_line(chat);
	append_text(chat, prefix);
	if (display_sanitize(&chat->line, text, len) < 0)
		append_text(chat, "...");
	append_text(chat, suffix);
	end_line(chat);
}

static void say(struct chat *chat, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct chat *chat, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	begin_line(chat);
	append_text(chat, text);
	end_line(chat);
}

/* The partner's name, in colour where that is wanted. */
static void show_message(struct chat *chat, const char *text, size_t len)
{
	begin_line(chat);
	if (chat->options->color)
		append_text(chat, "\033[1;36m");
	append_text(chat, chat->peer);
	append_text(chat, ":");
	if (chat->options->color)
		append_text(chat, "\033[0m");
	append_text(chat, " ");
	if (display_sanitize(&chat->line, text, len) < 0)
		append_text(chat, "...");
	end_line(chat);
}

static void set_turn(struct chat *chat, enum ui_turn turn)
{
	chat->turn = turn;
	ui_set_turn(chat->ui, turn, chat->peer);
}

static void send_queued(struct chat *chat, int rc)
{
	if (rc < 0) {
		fprintf(stderr, "turnchat: the server is not reading; giving up\n");
		chat->exit_status = 1;
		chat->state = CHAT_ENDED;
		return;
	}
	connection_flush(chat->conn);
}

static void send_quit(struct chat *chat)
{
	if (chat->quit_sent)
		return;
	chat->quit_sent = true;
	chat->quit_sent_at = event_now_ms(chat->loop);
	set_turn(chat, UI_LEAVING);
	send_queued(chat, protocol_append_command(connection_output(chat->conn), "q", NULL));
}

static bool is_quit(const char *line, size_t len)
{
	return (len == 2 && memcmp(line, "/q", 2) == 0) ||
	       (len == 5 && memcmp(line, "/quit", 5) == 0);
}

/* A line the person entered; the ui only hands over what may go now. */
static void on_typed_line(void *ctx, const char *line, size_t len)
{
	struct chat *chat = ctx;

	if (chat->state == CHAT_ENDED || chat->quit_sent)
		return;
	if (is_quit(line, len)) {
		send_quit(chat);
		return;
	}
	if (len == 0)
		return;
	/* The line goes out as typed: "//" sends a leading "/", "/help" asks the
	 * server. Only a chat message uses up the turn. */
	struct buffer *out = connection_output(chat->conn);
	int rc = buffer_room(out) < len + 1 ? -1 : buffer_append(out, line, len);
	send_queued(chat, rc < 0 ? rc : buffer_append(out, "\n", 1));
	if (protocol_is_message(line, len) && chat->turn == UI_MY_TURN) {
		set_turn(chat, UI_PEER_TURN);
		say(chat, "Waiting for %s's reply...", chat->peer);
	}
}

static void on_typed_eof(void *ctx)
{
	send_quit(ctx);
}

static void start_pairing(struct chat *chat, const struct server_line *line)
{
	snprintf(chat->peer, sizeof(chat->peer), "%.*s", (int)line->word_len, line->word);
	if (!protocol_valid_name(chat->peer, strlen(chat->peer)))
		strcpy(chat->peer, "partner");
	chat->state = CHAT_PAIRED;
	say(chat, "Paired with '%s' (%s mode). Type '/q' to quit.", chat->peer,
	    protocol_mode_name(line->mode));
	if (line->mode == CHAT_MODE_FREE) {
		say(chat, "Type whenever you like; %s's lines appear as they arrive.", chat->peer);
		set_turn(chat, UI_FREE);
	} else if (line->first == FIRST_YOU) {
		say(chat, "You speak first.");
		set_turn(chat, UI_MY_TURN);
	} else {
		say(chat, "Waiting for %s's reply...", chat->peer);
		set_turn(chat, UI_PEER_TURN);
	}
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
	};
	const char *peer = chat->peer[0] ? chat->peer : "your partner";
	enum bye_reason bye = line->bye;

	chat->state = CHAT_ENDED;
	chat->exit_status = 1;
	if (bye >= sizeof(byes) / sizeof(byes[0]) || byes[bye].text == NULL) {
		show(chat, "The server ended the connection: ", line->word, line->word_len, "");
		return;
	}
	/* A script that quit knows it did: only a terminal is told. */
	if (ui_is_terminal(chat->ui) || bye != BYE_QUIT) {
		char text[128];
		snprintf(text, sizeof(text), byes[bye].text, peer);
		say(chat, "%s", text);
	}
	chat->exit_status = chat->forced_status >= 0 ? chat->forced_status : byes[bye].status;
}

static void on_server_line(void *ctx, const char *text, size_t len)
{
	struct chat *chat = ctx;
	const struct chat_options *options = chat->options;
	struct server_line line;

	if (!protocol_parse_server_line(text, len, &line) ||
	    (chat->state == CHAT_GREETING && line.keyword != SRV_HELLO)) {
		show(chat, "turnchat: not a turnchat server; it said: ", text, len, "");
		chat->exit_status = EX_PROTOCOL;
		chat->state = CHAT_ENDED;
		return;
	}
	switch (line.keyword) {
	case SRV_HELLO:
		if (line.version != PROTOCOL_VERSION) {
			fprintf(stderr, "turnchat: the server speaks protocol version %u, not %d\n",
				line.version, PROTOCOL_VERSION);
			chat->exit_status = EX_PROTOCOL;
			chat->state = CHAT_ENDED;
			return;
		}
		buffer_consume(&chat->line, buffer_length(&chat->line));
		display_sanitize(&chat->line, line.word, line.word_len);
		char server[4 * PROTOCOL_NAME_BYTES + 1];
		snprintf(server, sizeof(server), "%.*s", (int)buffer_length(&chat->line),
			 buffer_peek(&chat->line));
		say(chat, "Connected to turnchatd '%s' at '%s' on port number '%u'...", server,
		    options->host, options->port);
		chat->state = CHAT_JOINING;
		struct buffer *out = connection_output(chat->conn);
		int rc = protocol_append_command(out, "name", options->name);
		if (rc == 0)
			rc = protocol_append_command(out, "mode", protocol_mode_name(options->mode));
		if (rc == 0)
			rc = protocol_append_command(out, "join",
						     options->room[0] ? options->room : NULL);
		send_queued(chat, rc);
		return;
	case SRV_WAITING:
		show(chat, "Waiting for a partner in room '", line.word, line.word_len, "'...");
		return;
	case SRV_PAIRED:
		start_pairing(chat, &line);
		break;
	case SRV_MSG: {
		show_message(chat, line.text, line.text_len);
		if (chat->turn == UI_PEER_TURN)
			set_turn(chat, UI_MY_TURN);
		break;
	}
	case SRV_ERR:
		/* The server refused our last line, so the turn is still ours. */
		show(chat,
		     chat->state == CHAT_JOINING ? "turnchat: the server refused: " : "Not sent: ",
		     line.text, line.text_len, "");
		if (chat->turn == UI_PEER_TURN && line.error != ERR_NOT_YOUR_TURN)
			set_turn(chat, UI_MY_TURN);
		if (chat->state == CHAT_JOINING) {
			/* Our name, mode or room was refused: nothing good can follow. */
			chat->forced_status = EX_USAGE;
			send_quit(chat);
		}
		break;
	case SRV_INFO:
		show(chat, "", line.text, line.text_len, "");
		break;
	case SRV_BYE:
		end_with_bye(chat, &line);
		return;
	case SRV_CAPS: /* never asked for yet */
	case SRV_TYPING:
	case SRV_ACTION:
	case SRV_DONE:
	case SRV_RELAYED:
	case SRV_UNKNOWN:
		return;
	}
}

static void on_server_too_long(void *ctx)
{
	(void)ctx;
	fprintf(stderr, "turnchat: the server sent an over-long line; skipped\n");
}

static void on_server_end(void *ctx, enum connection_end end)
{
	struct chat *chat = ctx;
	(void)end;
	if (chat->state != CHAT_ENDED) {
		fprintf(stderr, "turnchat: the connection to %s port %u was lost\n",
			chat->options->host, chat->options->port);
		chat->exit_status = 1;
		chat->state = CHAT_ENDED;
	}
	connection_destroy(chat->conn);
	chat->conn = NULL;
}

static const struct connection_handler server_handler = {
	.on_line = on_server_line,
	.on_too_long = on_server_too_long,
	.on_end = on_server_end,
};

static void on_interrupt(int signo, void *data)
{
	struct chat *chat = data;
	(void)signo;
	chat->forced_status = 130;
	if (chat->state == CHAT_GREETING) {
		chat->exit_status = 130;
		chat->state = CHAT_ENDED;
	} else {
		send_quit(chat);
	}
}

static void on_resize(int signo, void *data)
{
	struct chat *chat = data;
	(void)signo;
	ui_resize(chat->ui);
}

static const struct ui_handler typed_handler = {
	.on_line = on_typed_line,
	.on_eof = on_typed_eof,
};

int chat_run(int fd, const struct chat_options *options)
{
	struct chat chat = {.options = options, .exit_status = 1, .forced_status = -1};

	buffer_init(&chat.line, 4 * CHAT_MAX_LINE + 64);
	chat.loop = event_loop_create();
	if (chat.loop == NULL) {
		perror("turnchat");
		return 1;
	}
	chat.conn = connection_create(chat.loop, fd, CHAT_MAX_LINE, 4 * CHAT_MAX_LINE,
				      &server_handler, &chat);
	chat.ui = options->interactive
			  ? ui_terminal_create(chat.loop, options->name, &typed_handler, &chat)
			  : ui_plain_create(chat.loop, &typed_handler, &chat);
	if (chat.conn == NULL || chat.ui == NULL) {
		perror("turnchat");
		return 1;
	}
	event_add_signal(chat.loop, SIGINT, on_interrupt, &chat);
	event_add_signal(chat.loop, SIGTERM, on_interrupt, &chat);
	event_add_signal(chat.loop, SIGWINCH, on_resize, &chat);
	signal(SIGPIPE, SIG_IGN);

	while (chat.state != CHAT_ENDED && chat.conn) {
		ui_poll(chat.ui);
		if (chat.quit_sent &&
		    event_now_ms(chat.loop) - chat.quit_sent_at > CHAT_QUIT_WAIT_MS) {
			fprintf(stderr, "turnchat: the server did not answer /q; leaving\n");
			break;
		}
		event_loop_dispatch(chat.loop, chat.quit_sent ? 200 : -1);
	}
	if (chat.conn)
		connection_destroy(chat.conn);
	ui_destroy(chat.ui);
	event_loop_destroy(chat.loop);
	buffer_release(&chat.line);
	return chat.exit_status;
}
