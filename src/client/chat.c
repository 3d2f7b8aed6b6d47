/*
 * chat: called by turnchat's main (chat_run) once connected; runs the
 * client's event loop for one conversation (struct chat, in
 * chat_internal.h). Hands what the server says to reply.c, what the person
 * enters to input.c (both through the ui), and reacts itself to signals
 * (Ctrl-C, a resized window), to the clock (the time spent waiting, the
 * partner's typing hint fading; reconnect.c's timers) and to a lost
 * connection, which reconnect.c may make again. The other files call back
 * here to show lines, change the turn, send and leave.
 */
#include "chat.h"

#include <signal.h>
#include <sysexits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chat_internal.h"
#include "display.h"

#define CHAT_QUIT_WAIT_MS 5000
/* turnchatd greets at once; silence this long means something else listens. */
#define CHAT_GREETING_WAIT_MS 10000
/* The longest line the client takes from a server. */
#define CHAT_MAX_LINE (1024 * 1024)
/* Often enough to show each second of waiting as it passes. */
#define CHAT_TICK_MS 250
/* The partner's typing hint lasts this long after their last TYPING. */
#define CHAT_TYPING_SHOWN_MS 5000
/* What the person may queue up in all, a huge paste included. */
#define CHAT_OUTBOX_BYTES (16 * 1024 * 1024)

void chat_show(struct chat *chat, enum ui_kind kind, const char *name, const char *text, size_t len)
{
	buffer_consume(&chat->line, buffer_length(&chat->line));
	if (display_sanitize(&chat->line, text, len) < 0)
		buffer_append(&chat->line, "...", 3);
	ui_show(chat->ui, kind, name, buffer_peek(&chat->line), buffer_length(&chat->line));
}

void chat_say(struct chat *chat, enum ui_kind kind, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	chat_show(chat, kind, NULL, text, strlen(text));
}

static void on_tick(void *data);

/* The clock runs only while the prompt changes with time, on a terminal. */
static void wind_clock(struct chat *chat)
{
	bool needed = ui_is_terminal(chat->ui) && (chat->waiting || chat->peer_typing);
	if (needed != chat->ticking) {
		chat->ticking = needed;
		event_set_tick(chat->loop, needed ? CHAT_TICK_MS : 0, on_tick, chat);
	}
}

void chat_update_status(struct chat *chat)
{
	uint64_t now = event_now_ms(chat->loop);
	struct ui_status status = {
		.turn = chat->turn,
		.peer = chat->peer,
		.queued = outbox_count(&chat->outbox),
		.peer_typing = chat->peer_typing,
		.waiting = chat->waiting,
		.waited = chat->waiting ? (unsigned)((now - chat->waiting_since) / 1000) : 0,
		.done = chat->done_sent || chat->done_after_queue,
		.reconnecting = chat->state == CHAT_RECONNECTING,
	};
	chat->shown_waited = status.waited;
	ui_set_status(chat->ui, &status);
	wind_clock(chat);
}

void chat_set_turn(struct chat *chat, enum ui_turn turn)
{
	chat->turn = turn;
	chat_update_status(chat);
}

void chat_end(struct chat *chat, int status)
{
	chat->exit_status = status;
	chat->state = CHAT_ENDED;
	chat->peer_typing = false;
}

void chat_send(struct chat *chat, int rc)
{
	if (rc < 0) {
		chat_say(chat, UI_PROBLEM, "turnchat: the server is not reading; giving up");
		chat_end(chat, 1);
		return;
	}
	/* An acknowledgement due goes with the line, in the same write. */
	receipt_append_ack(chat);
	chat->writes++;
	connection_flush(chat->conn);
}

void chat_send_quit(struct chat *chat)
{
	chat->quit_sent = true;
	chat->quit_sent_at = event_now_ms(chat->loop);
	chat->peer_typing = false;
	chat_set_turn(chat, UI_LEAVING);
	chat_send(chat, protocol_append_command(connection_output(chat->conn), "q", NULL));
}

void chat_leave(struct chat *chat, bool interrupted)
{
	if (interrupted)
		chat->forced_status = 130;
	if (chat->state == CHAT_ENDED)
		return;
	if (chat->quit_sent) {
		/* Ctrl-C again while the server has not answered: no more waiting. */
		if (interrupted)
			chat_end(chat, 130);
		return;
	}
	if (chat->state == CHAT_RECONNECTING) {
		reconnect_abandon(chat, interrupted);
		return;
	}
	input_report_unsent(chat, interrupted ? "Leaving (Ctrl-C)" : "Leaving", interrupted);
	if (chat->state == CHAT_GREETING) {
		chat->exit_status = interrupted ? 130 : 0;
		chat->state = CHAT_ENDED;
		return;
	}
	chat_send_quit(chat);
}

static void on_server_line(void *ctx, const char *text, size_t len)
{
	struct chat *chat = ctx;
	/* Any line shows the connection works: keepalive has nothing to ask. */
	chat->resume.heard_at = event_now_ms(chat->loop);
	chat->resume.ping_at = 0;
	reply_line(chat, text, len);
}

static void on_server_too_long(void *ctx)
{
	chat_say(ctx, UI_PROBLEM, "turnchat: the server sent an over-long line; skipped");
}

static void on_server_end(void *ctx, enum connection_end end)
{
	struct chat *chat = ctx;
	(void)end;
	connection_destroy(chat->conn);
	chat->conn = NULL;
	if (chat->state == CHAT_ENDED || reconnect_after_drop(chat))
		return;
	chat_say(chat, UI_PROBLEM, "turnchat: the connection to %s port %u was lost",
		 chat->options->host, chat->options->port);
	if (!chat->quit_sent)
		input_report_unsent(chat, "The connection is lost", true);
	chat_end(chat, 1);
}

static const struct connection_handler server_handler = {
	.on_line = on_server_line,
	.on_too_long = on_server_too_long,
	.on_end = on_server_end,
};

struct connection *chat_connect(struct chat *chat, int fd, struct tls *tls)
{
	struct connection *conn = connection_create(chat->loop, fd, CHAT_MAX_LINE, 4 * CHAT_MAX_LINE,
						    &server_handler, chat);
	if (conn)
		connection_use_tls(conn, tls);
	return conn;
}

static void on_interrupt(int signo, void *data)
{
	(void)signo;
	chat_leave(data, true);
}

static void on_resize(int signo, void *data)
{
	struct chat *chat = data;
	(void)signo;
	ui_resize(chat->ui);
}

/* The clock: the seconds spent waiting go by, the partner's typing hint fades. */
static void on_tick(void *data)
{
	struct chat *chat = data;
	uint64_t now = event_now_ms(chat->loop);
	bool changed = false;

	if (chat->peer_typing && now - chat->peer_typing_at >= CHAT_TYPING_SHOWN_MS) {
		chat->peer_typing = false;
		changed = true;
	}
	if (chat->waiting && (now - chat->waiting_since) / 1000 != chat->shown_waited)
		changed = true;
	if (changed)
		chat_update_status(chat);
}

static void on_typed_line(void *ctx, const char *line, size_t len)
{
	input_line(ctx, line, len);
}

static void on_typed_eof(void *ctx)
{
	struct chat *chat = ctx;
	/* Ctrl-D leaves; the end of a script's input may rather say /done. */
	if (ui_is_terminal(chat->ui))
		chat_leave(chat, false);
	else
		input_eof(chat);
}

static void on_typing(void *ctx)
{
	input_typing(ctx);
}

static void on_too_long(void *ctx, size_t max)
{
	input_too_long(ctx, max);
}

static const struct ui_handler typed_handler = {
	.on_line = on_typed_line,
	.on_eof = on_typed_eof,
	.on_typing = on_typing,
	.on_too_long = on_too_long,
};

int chat_run(int fd, struct tls *tls, const struct chat_options *options)
{
	struct chat chat = {
		.options = options, .exit_status = 1, .forced_status = -1, .secure_shown = -1};
	struct ui_style style = {
		.timestamps = options->timestamps, .color = options->color, .bell = options->bell};

	buffer_init(&chat.line, 4 * CHAT_MAX_LINE + 64);
	outbox_init(&chat.outbox, CHAT_OUTBOX_BYTES);
	outbox_init(&chat.resume.unacked, CHAT_OUTBOX_BYTES);
	chat.resume.target = (struct dial_target){.host = options->host,
						  .port = options->port,
						  .tls = options->security != NULL,
						  .tls_ca = options->tls_ca};
	dial_pin(&chat.resume.target, tls);
	chat.loop = event_loop_create();
	if (chat.loop == NULL) {
		perror("turnchat");
		return 1;
	}
	chat.conn = chat_connect(&chat, fd, tls);
	chat.ui = options->interactive ? ui_terminal_create(chat.loop, options->name, &style,
							    &typed_handler, &chat)
				       : ui_plain_create(chat.loop, &style, &typed_handler, &chat);
	if (chat.conn == NULL || chat.ui == NULL) {
		perror("turnchat");
		return 1;
	}
	event_add_signal(chat.loop, SIGINT, on_interrupt, &chat);
	event_add_signal(chat.loop, SIGTERM, on_interrupt, &chat);
	event_add_signal(chat.loop, SIGWINCH, on_resize, &chat);
	signal(SIGPIPE, SIG_IGN);

	uint64_t started = event_now_ms(chat.loop);
	while (chat.state != CHAT_ENDED && (chat.conn || chat.state == CHAT_RECONNECTING)) {
		ui_poll(chat.ui);
		int wait = reconnect_timers(&chat);
		if (chat.state == CHAT_ENDED)
			break;
		if (chat.state == CHAT_GREETING &&
		    event_now_ms(chat.loop) - started > CHAT_GREETING_WAIT_MS) {
			chat_say(&chat, UI_PROBLEM,
				 "turnchat: %s port %u said nothing in %d seconds: not a turnchat "
				 "server%s",
				 options->host, options->port, CHAT_GREETING_WAIT_MS / 1000,
				 options->security ? "" : " (if it is the TLS port, add --tls)");
			chat.exit_status = EX_PROTOCOL;
			break;
		}
		if (chat.quit_sent &&
		    event_now_ms(chat.loop) - chat.quit_sent_at > CHAT_QUIT_WAIT_MS) {
			chat_say(&chat, UI_PROBLEM,
				 "turnchat: the server did not answer /q; leaving");
			receipt_report_undelivered(&chat, "Leaving without an answer");
			break;
		}
		if (chat.quit_sent || chat.state == CHAT_GREETING)
			wait = wait >= 0 && wait < 200 ? wait : 200;
		event_loop_dispatch(chat.loop, wait);
	}
	reconnect_release(&chat);
	if (chat.conn)
		connection_destroy(chat.conn);
	ui_destroy(chat.ui);
	event_loop_destroy(chat.loop);
	outbox_release(&chat.outbox);
	outbox_release(&chat.resume.unacked);
	buffer_release(&chat.line);
	return chat.exit_status;
}
