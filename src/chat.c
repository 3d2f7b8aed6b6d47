/*
 * chat: called by turnchat's main once connected. Reacts to server lines in
 * chat_on_server_line and to the person's lines in send_typed_line; the
 * state changes only in those two places.
 */
#include "chat.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "connection.h"
#include "display.h"
#include "event.h"

#define EX_UNAVAILABLE 69
#define EX_PROTOCOL 76
#define CHAT_QUIT_WAIT_MS 5000
/* The client never refuses what a server might accept; the server judges. */
#define CHAT_INPUT_MAX_LINE (1024 * 1024)

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
	struct event_source *input_source;
	struct buffer input;
	struct framer input_framer;
	bool input_eof;
	enum chat_state state;
	enum chat_mode mode;
	bool my_turn;
	bool quit_sent;
	uint64_t quit_sent_at;
	int exit_status;
	int forced_status; /* set by a failure or Ctrl-C before the goodbye; -1 if none */
	char peer[PROTOCOL_NAME_MAX + 1];
	struct buffer line; /* scratch for one printed line */
};

/* Prints prefix, the network's text made safe, suffix and a newline. */
static void show(struct chat *chat, const char *prefix, const char *text, size_t len,
		 const char *suffix)
{
	buffer_consume(&chat->line, buffer_length(&chat->line));
	buffer_append(&chat->line, prefix, strlen(prefix));
	if (display_sanitize(&chat->line, text, len) < 0)
		buffer_append(&chat->line, "...", 3);
	buffer_append(&chat->line, suffix, strlen(suffix));
	buffer_append(&chat->line, "\n", 1);
	fwrite(buffer_peek(&chat->line), 1, buffer_length(&chat->line), stdout);
	fflush(stdout);
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void prompt(const struct chat *chat)
{
	if (chat->options->interactive && chat->state == CHAT_PAIRED && chat->my_turn) {
		printf("%s> ", chat->options->name);
		fflush(stdout);
	}
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
	chat->quit_sent_at = event_now_ms();
	send_queued(chat, protocol_append_command(connection_output(chat->conn), "q", NULL));
}

/* Reads typed lines only while they may be sent: out of turn they wait. */
static void update_input_interest(struct chat *chat)
{
	bool want = chat->state == CHAT_PAIRED && chat->my_turn && !chat->quit_sent &&
		    !chat->input_eof;
	if (chat->input_source)
		event_source_set_events(chat->input_source, want ? EPOLLIN : 0);
}

static bool is_quit(const char *line, size_t len)
{
	return (len == 2 && memcmp(line, "/q", 2) == 0) ||
	       (len == 5 && memcmp(line, "/quit", 5) == 0);
}

static void send_typed_line(struct chat *chat, const char *line, size_t len)
{
	if (is_quit(line, len)) {
		send_quit(chat);
		return;
	}
	if (len == 0) {
		prompt(chat);
		return;
	}
	/* The line goes out as typed: "//" sends a leading "/", "/help" asks the
	 * server. Only a chat message uses up the turn. */
	send_queued(chat, buffer_append(connection_output(chat->conn), line, len) < 0
				  ? -1
				  : buffer_append(connection_output(chat->conn), "\n", 1));
	bool message = line[0] != '/' || (len > 1 && line[1] == '/');
	if (message && chat->mode == CHAT_MODE_TURNS) {
		chat->my_turn = false;
		say("Waiting for %s's reply...", chat->peer);
	}
}

/* Takes typed lines from the input buffer while the turn allows. */
static void process_input(struct chat *chat)
{
	while (chat->state == CHAT_PAIRED && chat->my_turn && !chat->quit_sent) {
		size_t line_len = 0, consumed = 0;
		enum frame_result result =
			protocol_frame(&chat->input_framer, buffer_peek(&chat->input),
				       buffer_length(&chat->input), CHAT_INPUT_MAX_LINE, &line_len,
				       &consumed);
		if (result == FRAME_LINE)
			send_typed_line(chat, buffer_peek(&chat->input), line_len);
		else if (result == FRAME_TOO_LONG)
			fprintf(stderr, "turnchat: line longer than %d bytes; not sent\n",
				CHAT_INPUT_MAX_LINE);
		else if (consumed == 0 && chat->input_eof && buffer_length(&chat->input) > 0) {
			send_typed_line(chat, buffer_peek(&chat->input), buffer_length(&chat->input));
			consumed = buffer_length(&chat->input);
		} else if (consumed == 0) {
			break;
		}
		buffer_consume(&chat->input, consumed);
	}
	if (chat->input_eof && buffer_length(&chat->input) == 0 && chat->state == CHAT_PAIRED &&
	    (chat->my_turn || chat->mode == CHAT_MODE_FREE))
		send_quit(chat);
	update_input_interest(chat);
}

static void on_input(int fd, uint32_t events, void *data)
{
	struct chat *chat = data;
	size_t room;
	(void)events;

	char *dst = buffer_reserve(&chat->input, 65536, &room);
	if (dst == NULL) {
		process_input(chat);
		return;
	}
	ssize_t n = read(fd, dst, room);
	if (n > 0)
		buffer_commit(&chat->input, (size_t)n);
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		chat->input_eof = true;
	process_input(chat);
}

static void start_pairing(struct chat *chat, const struct server_line *line)
{
	snprintf(chat->peer, sizeof(chat->peer), "%.*s", (int)line->word_len, line->word);
	if (!protocol_valid_name(chat->peer, strlen(chat->peer)))
		strcpy(chat->peer, "partner");
	chat->state = CHAT_PAIRED;
	chat->mode = line->mode;
	chat->my_turn = line->mode == CHAT_MODE_FREE || line->first == FIRST_YOU;
	say("Paired with '%s' (%s mode). Type '/q' to quit.", chat->peer,
	    protocol_mode_name(line->mode));
	if (line->mode == CHAT_MODE_FREE)
		say("Type whenever you like; %s's lines appear as they arrive.", chat->peer);
	else if (chat->my_turn)
		say("You speak first.");
	else
		say("Waiting for %s's reply...", chat->peer);
}

static void end_with_bye(struct chat *chat, const struct server_line *line)
{
	static const struct {
		const char *reason;
		const char *text;
		int status;
	} byes[] = {
		{"quit", "You left the conversation.", 0},
		{"peer-quit", "%s left the conversation.", 0},
		{"peer-lost", "The connection to %s was lost.", 1},
		{"shutdown", "The server is shutting down.", 1},
		{"idle", "The conversation was idle for too long and has ended.", 1},
		{"server-full", "The server is full; try again later.", EX_UNAVAILABLE},
	};
	const char *peer = chat->peer[0] ? chat->peer : "your partner";

	chat->state = CHAT_ENDED;
	chat->exit_status = 1;
	for (size_t i = 0; i < sizeof(byes) / sizeof(byes[0]); i++) {
		if (strlen(byes[i].reason) == line->word_len &&
		    memcmp(byes[i].reason, line->word, line->word_len) == 0) {
			if (chat->options->interactive || i != 0)
				say(byes[i].text, peer);
			chat->exit_status = chat->forced_status >= 0 ? chat->forced_status
								    : byes[i].status;
			return;
		}
	}
	show(chat, "The server ended the connection: ", line->word, line->word_len, "");
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
		say("Connected to turnchatd '%.*s' at '%s' on port number '%u'...",
		    (int)buffer_length(&chat->line), buffer_peek(&chat->line), options->host,
		    options->port);
		chat->state = CHAT_JOINING;
		struct buffer *out = connection_output(chat->conn);
		int rc = protocol_append_command(out, "name", options->name);
		if (rc == 0)
			rc = protocol_append_command(out, "mode", protocol_mode_name(options->mode));
		if (rc == 0)
			rc = protocol_append_command(out, "join", options->room[0] ? options->room : NULL);
		send_queued(chat, rc);
		return;
	case SRV_WAITING:
		show(chat, "Waiting for a partner in room '", line.word, line.word_len, "'...");
		return;
	case SRV_PAIRED:
		start_pairing(chat, &line);
		break;
	case SRV_MSG: {
		char prefix[PROTOCOL_NAME_MAX + 4];
		snprintf(prefix, sizeof(prefix), "%s: ", chat->peer);
		show(chat, prefix, line.text, line.text_len, "");
		if (chat->state == CHAT_PAIRED)
			chat->my_turn = true;
		break;
	}
	case SRV_ERR:
		/* The server refused our last line, so the turn is still ours. */
		show(chat, chat->state == CHAT_JOINING ? "turnchat: the server refused: " : "Not sent: ",
		     line.text, line.text_len, "");
		if (chat->state == CHAT_PAIRED && !chat->my_turn &&
		    (line.word_len != 13 || memcmp(line.word, "not-your-turn", 13) != 0))
			chat->my_turn = true;
		if (chat->state == CHAT_JOINING) {
			/* Our name, mode or room was refused: nothing good can follow. */
			chat->forced_status = 64;
			send_quit(chat);
		}
		break;
	case SRV_INFO:
		show(chat, "", line.text, line.text_len, "");
		break;
	case SRV_BYE:
		end_with_bye(chat, &line);
		return;
	case SRV_UNKNOWN:
		return;
	}
	prompt(chat);
	process_input(chat);
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
	if (chat->options->interactive)
		putchar('\n');
	chat->forced_status = 130;
	if (chat->state == CHAT_GREETING) {
		chat->exit_status = 130;
		chat->state = CHAT_ENDED;
	}
	else
		send_quit(chat);
}

int chat_run(int fd, const struct chat_options *options)
{
	struct chat chat = {.options = options, .exit_status = 1, .forced_status = -1};
	bool input_is_file = false;

	buffer_init(&chat.input, CHAT_INPUT_MAX_LINE + 2 + 65536);
	buffer_init(&chat.line, 4 * CHAT_INPUT_MAX_LINE + 64);
	chat.loop = event_loop_create();
	if (chat.loop == NULL) {
		perror("turnchat");
		return 1;
	}
	chat.conn = connection_create(chat.loop, fd, CHAT_INPUT_MAX_LINE, 4 * CHAT_INPUT_MAX_LINE,
				      &server_handler, &chat);
	chat.input_source = event_add_fd(chat.loop, STDIN_FILENO, 0, on_input, &chat);
	/* epoll refuses regular files and /dev/null: those are always readable. */
	if (chat.input_source == NULL)
		input_is_file = true;
	event_add_signal(chat.loop, SIGINT, on_interrupt, &chat);
	event_add_signal(chat.loop, SIGTERM, on_interrupt, &chat);
	signal(SIGPIPE, SIG_IGN);

	while (chat.state != CHAT_ENDED && chat.conn) {
		bool wants_input = chat.state == CHAT_PAIRED && chat.my_turn && !chat.quit_sent &&
				   !chat.input_eof;
		if (input_is_file && wants_input)
			on_input(STDIN_FILENO, EPOLLIN, &chat);
		if (chat.quit_sent && event_now_ms() - chat.quit_sent_at > CHAT_QUIT_WAIT_MS) {
			fprintf(stderr, "turnchat: the server did not answer /q; leaving\n");
			break;
		}
		event_loop_dispatch(chat.loop, chat.quit_sent ? 200 : -1);
	}
	/* Whatever we still owed the server (our /q) goes out before we close. */
	if (chat.conn)
		connection_destroy(chat.conn);
	event_source_remove(chat.input_source);
	event_loop_destroy(chat.loop);
	buffer_release(&chat.input);
	buffer_release(&chat.line);
	return chat.exit_status;
}
