/*
 * ui_plain: called through ui.c by chat, when standard input is not a
 * terminal. Lines (framed by the shared line reader) are handed over one
 * at a time and only while they may be sent, so a script's lines go out in
 * turn; the rest waits, unread, in the pipe or in our buffer. What chat
 * shows goes to standard output as plain lines, problems to standard error.
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buffer.h"
#include "line_reader.h"
#include "ui.h"

/* The client never refuses what a server might accept; the server judges. */
#define PLAIN_MAX_LINE (1024 * 1024)
#define PLAIN_READ_CHUNK 65536

struct ui_plain {
	struct ui base;
	struct line_reader reader;
	bool eof;
	bool eof_told;
	bool delivering;   /* the handler may set the turn from inside deliver */
	bool handing;      /* a line is being handed over... */
	size_t handed_end; /* ...and its text ends here in input */
	enum ui_turn turn;
	bool reconnecting;  /* nothing is handed over, the end of input neither */
	struct buffer line; /* scratch for one line shown */
};

static bool may_send(const struct ui_plain *ui)
{
	return (ui->turn == UI_MY_TURN || ui->turn == UI_FREE) && !ui->reconnecting;
}

/* The ui a line reader callback is about: its reader is inside it. */
static struct ui_plain *of_reader(struct line_reader *reader)
{
	return (struct ui_plain *)((char *)reader - offsetof(struct ui_plain, reader));
}

static bool may_deliver(struct line_reader *reader)
{
	return may_send(of_reader(reader));
}

static void reader_line(struct line_reader *reader, const char *line, size_t len)
{
	struct ui_plain *ui = of_reader(reader);
	/* The reader drops a line from its buffer only after this returns: a
	 * handler that asks what input is left (plain_unsent_input, when /q
	 * ends the conversation) must not count this one. */
	ui->handed_end = (size_t)(line + len - buffer_peek(&reader->input));
	ui->handing = true;
	ui->base.handler->on_line(ui->base.ctx, line, len);
	ui->handing = false;
}

static void reader_too_long(struct line_reader *reader)
{
	struct ui_plain *ui = of_reader(reader);
	ui->base.handler->on_too_long(ui->base.ctx, PLAIN_MAX_LINE);
}

static const struct line_reader_handler reader_handler = {
	.may_deliver = may_deliver,
	.on_line = reader_line,
	.on_too_long = reader_too_long,
};

/* Hands over buffered lines while the turn allows; the handler may change it. */
static void deliver(struct ui_plain *ui)
{
	if (ui->delivering)
		return;
	ui->delivering = true;
	/* Then the end of input, once every line before it is out. */
	if (line_reader_deliver(&ui->reader, ui->eof) && ui->eof && !ui->eof_told && may_send(ui)) {
		ui->eof_told = true;
		ui->base.handler->on_eof(ui->base.ctx);
	}
	ui->delivering = false;
	if (ui->base.source)
		event_source_set_events(ui->base.source, may_send(ui) && !ui->eof ? EPOLLIN : 0);
}

static void read_some(struct ui_plain *ui)
{
	size_t room;
	char *dst = line_reader_space(&ui->reader, PLAIN_READ_CHUNK, &room);
	if (dst != NULL) {
		ssize_t n = read(STDIN_FILENO, dst, room);
		if (n > 0)
			line_reader_commit(&ui->reader, (size_t)n);
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			ui->eof = true;
	}
	deliver(ui);
}

static void plain_ready(int fd, uint32_t events, void *data)
{
	(void)fd;
	(void)events;
	read_some(data);
}

static void plain_poll(struct ui *base)
{
	struct ui_plain *ui = (struct ui_plain *)base;
	if (ui->base.source == NULL && may_send(ui) && !ui->eof)
		read_some(ui);
}

static void plain_show(struct ui *base, enum ui_kind kind, const char *name, const char *text,
		       size_t len)
{
	struct ui_plain *ui = (struct ui_plain *)base;
	FILE *stream = kind == UI_PROBLEM ? stderr : stdout;

	buffer_consume(&ui->line, buffer_length(&ui->line));
	if (ui_format(&ui->line, &base->style, false, kind, name, text, len, 0) < 0)
		buffer_append(&ui->line, "...", 3);
	fwrite(buffer_peek(&ui->line), 1, buffer_length(&ui->line), stream);
	putc('\n', stream);
	fflush(stream);
}

static void plain_set_status(struct ui *base, const struct ui_status *status)
{
	struct ui_plain *ui = (struct ui_plain *)base;
	ui->turn = status->turn;
	ui->reconnecting = status->reconnecting;
	deliver(ui);
}

static size_t plain_unsent_input(struct ui *base, bool *more)
{
	struct ui_plain *ui = (struct ui_plain *)base;
	struct pollfd input = {.fd = STDIN_FILENO, .events = POLLIN};
	size_t room, lines = 0, end = 0;

	/* One look at what is there already; a read that would wait is not made. */
	char *dst = line_reader_space(&ui->reader, PLAIN_READ_CHUNK, &room);
	if (!ui->eof && dst != NULL && poll(&input, 1, 0) > 0) {
		ssize_t n = read(STDIN_FILENO, dst, room);
		if (n > 0)
			line_reader_commit(&ui->reader, (size_t)n);
		else if (n == 0)
			ui->eof = true;
	}
	const char *data = buffer_peek(&ui->reader.input);
	size_t len = buffer_length(&ui->reader.input), from = 0;
	if (ui->handing) {
		/* Past the line being handed over, and its line feed. */
		const char *lf = memchr(data + ui->handed_end, '\n', len - ui->handed_end);
		from = end = lf ? (size_t)(lf - data) + 1 : len;
	}
	for (size_t i = from; i < len; i++) {
		if (data[i] == '\n') {
			lines++;
			end = i + 1;
		}
	}
	if (end < len && ui->eof)
		lines++; /* a last line without LF counts too */
	*more = !ui->eof;
	return lines;
}

static void plain_release(struct ui *base)
{
	struct ui_plain *ui = (struct ui_plain *)base;
	line_reader_release(&ui->reader);
	buffer_release(&ui->line);
}

static const struct ui_ops plain_ops = {
	.release = plain_release,
	.show = plain_show,
	.set_status = plain_set_status,
	.poll = plain_poll,
	.unsent_input = plain_unsent_input,
};

struct ui *ui_plain_create(struct event_loop *loop, const struct ui_style *style,
			   const struct ui_handler *handler, void *ctx)
{
	struct ui_plain *ui = ui_new(sizeof(*ui), &plain_ops, style, handler, ctx);
	if (ui == NULL)
		return NULL;
	ui->base.style.bell = false; /* a script has no bell to ring */
	buffer_init(&ui->line, 4 * PLAIN_MAX_LINE + 256);
	line_reader_init(&ui->reader, PLAIN_MAX_LINE, PLAIN_READ_CHUNK, &reader_handler);
	/* epoll refuses regular files and /dev/null: plain_poll reads those. */
	ui->base.source = event_add_fd(loop, STDIN_FILENO, 0, plain_ready, ui);
	return &ui->base;
}
