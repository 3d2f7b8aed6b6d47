/*
 * ui_terminal: called through ui.c by chat: the client on a terminal, built
 * on GNU readline's callback interface so that the client's own event loop
 * stays in charge. Readline gives line editing and history; this file keeps
 * the screen true:
 *
 * - Enter is ours (accept_line), not readline's: the line is copied out and
 *   the input line emptied in place, so readline never leaves a copy of it
 *   behind or draws the prompt twice. Chat prints the line when it is sent.
 * - Every line shown goes above the input line (print_above): readline
 *   clears the rows it drew, the line is printed, the input line is drawn
 *   again below it.
 * - The input line is drawn escaped (redisplay): TABs as spaces, and what
 *   display_sanitize escapes (controls, bidi controls, zero-width joiners)
 *   as <U+XXXX>, so each character drawn has one width that readline and
 *   the terminal agree on; a family emoji's joiners no longer put the cursor
 *   where the text is not.
 * - After a resize the terminal has re-wrapped the input line at the new
 *   width: the cursor's row in it is found again (display_cursor), the rows
 *   from the first one down are cleared and the line drawn anew, so nothing
 *   above it is erased and no copy of it stays behind.
 * - TAB inserts a TAB; nothing completes file names.
 */
#include <langinfo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "display.h"
#include "prompt.h"
#include "protocol.h"
#include "ui.h"

/* The longest line shown: a server line of 1 MiB, every byte escaped. */
#define TERMINAL_MAX_SHOWN (8 * 1024 * 1024)

struct ui_terminal {
	struct ui base;
	struct ui_status status;
	bool installed; /* readline is drawing the prompt */
	bool eof;       /* Ctrl-D on an empty line: handed over once readline is done */
	bool reflows;   /* the terminal re-wraps lines when its width changes */
	char *entered;  /* a line readline accepted itself (a key we did not bind) */
	unsigned cols;
	size_t seen_len; /* the input line as last seen, to notice typing */
	uint64_t seen_hash;
	const char *ellipsis;
	struct buffer drawn; /* the input line as drawn */
	struct buffer shown; /* scratch for a line shown */
	char name[PROTOCOL_NAME_BYTES + 1];
	char peer[PROTOCOL_NAME_BYTES + 1];
	char prompt[2 * PROTOCOL_NAME_BYTES + 96];
};

/* Readline's callbacks carry no context; there is one terminal. */
static struct ui_terminal *active;

static void build_prompt(struct ui_terminal *ui)
{
	prompt_build(ui->prompt, sizeof(ui->prompt), ui->name, &ui->status, ui->ellipsis, ui->cols);
}

/*
 * Readline's redisplay on the input line as it is drawn: the real line is
 * swapped for its escaped form (display_input) just while readline draws,
 * so readline measures exactly what the terminal is sent.
 */
static int draw_input(struct ui_terminal *ui, unsigned col, size_t *point, size_t *mark)
{
	buffer_consume(&ui->drawn, buffer_length(&ui->drawn));
	if (display_input(&ui->drawn, rl_line_buffer, (size_t)rl_end, (size_t)rl_mark, col, mark) < 0)
		return -1;
	buffer_consume(&ui->drawn, buffer_length(&ui->drawn));
	if (display_input(&ui->drawn, rl_line_buffer, (size_t)rl_end, (size_t)rl_point, col, point) <
	    0)
		return -1;
	return buffer_append(&ui->drawn, "", 1);
}

static void redisplay(void)
{
	struct ui_terminal *ui = active;
	unsigned col = display_width(rl_display_prompt, strlen(rl_display_prompt));
	size_t point = 0, mark = 0;

	if (draw_input(ui, col, &point, &mark) < 0) {
		rl_redisplay();
		return;
	}
	char *line = rl_line_buffer;
	int end = rl_end, saved_point = rl_point, saved_mark = rl_mark;
	rl_line_buffer = (char *)buffer_peek(&ui->drawn);
	rl_end = (int)buffer_length(&ui->drawn) - 1;
	rl_point = (int)point;
	rl_mark = (int)mark;
	rl_redisplay();
	rl_line_buffer = line;
	rl_end = end;
	rl_point = saved_point;
	rl_mark = saved_mark;
}

static uint64_t hash_line(const char *text, size_t len)
{
	uint64_t h = 0xcbf29ce484222325u; /* FNV-1a */
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)text[i]) * 0x100000001b3u;
	return h;
}

/* Remembers the input line; true when the person changed it since. */
static bool note_line(struct ui_terminal *ui)
{
	uint64_t h = hash_line(rl_line_buffer, (size_t)rl_end);
	bool changed = h != ui->seen_hash || (size_t)rl_end != ui->seen_len;
	ui->seen_hash = h;
	ui->seen_len = (size_t)rl_end;
	return changed;
}

static void empty_input_line(struct ui_terminal *ui)
{
	rl_replace_line("", 1);
	rl_point = rl_mark = 0;
	if (ui->installed)
		redisplay();
	note_line(ui);
}

/* Each line of what was entered goes to chat on its own; a paste may hold several. */
static void hand_over(struct ui_terminal *ui, const char *text)
{
	while (*text) {
		size_t len = strcspn(text, "\r\n");
		if (len > 0) {
			char *line = strndup(text, len);
			if (line) {
				add_history(line);
				ui->base.handler->on_line(ui->base.ctx, line, len);
				free(line);
			}
		}
		text += len;
		text += *text ? 1 : 0;
	}
	using_history();
}

/* Enter: the line goes to chat, the input line stays where it is, empty. */
static int accept_line(int count, int key)
{
	struct ui_terminal *ui = active;
	(void)count;
	(void)key;
	char *line = rl_copy_text(0, rl_end);
	empty_input_line(ui);
	if (line)
		hand_over(ui, line);
	free(line);
	return 0;
}

static void line_entered(char *line)
{
	struct ui_terminal *ui = active;

	if (line == NULL) {
		/* Ctrl-D on an empty line. Readline draws the prompt again when this
		 * returns, at the start of the row: take the old one off first. */
		rl_clear_visible_line();
		ui->eof = true;
	} else if (ui->entered == NULL) {
		ui->entered = line;
		return;
	}
	free(line);
}

/* Nothing is completed: the partner cannot see this machine's files. */
static char **no_completion(const char *text, int start, int end)
{
	(void)text;
	(void)start;
	(void)end;
	rl_attempted_completion_over = 1;
	return NULL;
}

static void terminal_ready(int fd, uint32_t events, void *data)
{
	struct ui_terminal *ui = data;
	(void)fd;
	(void)events;
	rl_callback_read_char();
	if (ui->entered) {
		char *line = ui->entered;
		ui->entered = NULL;
		hand_over(ui, line);
		free(line);
	}
	if (ui->eof) {
		/* Nothing more is read; Ctrl-C still works, through its signal. */
		event_source_set_events(ui->base.source, 0);
		ui->base.handler->on_eof(ui->base.ctx);
	} else if (note_line(ui) && rl_end > 0 && ui->base.handler->on_typing) {
		ui->base.handler->on_typing(ui->base.ctx);
	}
}

static void print_above(struct ui_terminal *ui, const char *text, size_t len)
{
	if (ui->installed)
		rl_clear_visible_line();
	fwrite(text, 1, len, stdout);
	putchar('\n');
	if (ui->installed) {
		rl_on_new_line();
		redisplay();
	}
	fflush(stdout);
}

static void terminal_show(struct ui *base, enum ui_kind kind, const char *name, const char *text,
			  size_t len)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;

	buffer_consume(&ui->shown, buffer_length(&ui->shown));
	if (ui_format(&ui->shown, &base->style, true, kind, name, text, len, ui->cols) < 0)
		buffer_append(&ui->shown, "...", 3);
	if (base->style.bell && (kind == UI_PEER_LINE || kind == UI_PEER_ACTION))
		buffer_append(&ui->shown, "\a", 1);
	print_above(ui, buffer_peek(&ui->shown), buffer_length(&ui->shown));
}

static void terminal_set_status(struct ui *base, const struct ui_status *status)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;
	char before[sizeof(ui->prompt)];

	ui->status = *status;
	snprintf(ui->peer, sizeof(ui->peer), "%s", status->peer ? status->peer : "");
	ui->status.peer = ui->peer;
	strcpy(before, ui->prompt);
	build_prompt(ui);
	if (ui->installed && strcmp(before, ui->prompt) != 0) {
		rl_set_prompt(ui->prompt);
		redisplay();
	}
}

static void terminal_resize(struct ui *base)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;
	struct winsize ws;
	unsigned row, column, old_cols = ui->cols;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
		return;
	ui->cols = ws.ws_col;
	if (!ui->installed)
		return;
	/* The cursor's row in the input line, as the terminal has it now: the
	 * prompt and the line up to the cursor, wrapped at the new width (or at
	 * the old one, by a terminal that cuts rows instead of re-wrapping). A
	 * character follows the cursor if the line goes on, or if readline
	 * wrote a space to wrap a line that filled its last row. */
	const char *prompt = rl_display_prompt ? rl_display_prompt : ui->prompt;
	unsigned col = display_width(prompt, strlen(prompt));
	size_t point = 0, mark = 0;
	if (draw_input(ui, col, &point, &mark) < 0)
		return;
	unsigned total = col + display_width(buffer_peek(&ui->drawn), buffer_length(&ui->drawn) - 1);
	bool more = point < buffer_length(&ui->drawn) - 1 ||
		    (old_cols > 0 && total > 0 && total % old_cols == 0);
	buffer_consume(&ui->drawn, buffer_length(&ui->drawn));
	if (buffer_append(&ui->drawn, prompt, strlen(prompt)) < 0 ||
	    display_input(&ui->drawn, rl_line_buffer, (size_t)rl_point, (size_t)rl_point, col,
			  &point) < 0)
		return;
	display_cursor(buffer_peek(&ui->drawn), buffer_length(&ui->drawn),
		       ui->reflows || old_cols == 0 ? ui->cols : old_cols, more, &row, &column);
	printf("\r");
	if (row > 0)
		printf("\033[%uA", row);
	printf("\033[J");
	rl_set_screen_size(ws.ws_row, ws.ws_col);
	build_prompt(ui); /* it may be shorter in a narrower window */
	rl_set_prompt(ui->prompt);
	rl_on_new_line();
	redisplay();
	fflush(stdout);
}

static char *terminal_take_input(struct ui *base)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;
	if (rl_end == 0)
		return NULL;
	char *text = rl_copy_text(0, rl_end);
	empty_input_line(ui);
	return text;
}

static void terminal_set_input(struct ui *base, const char *text, size_t len)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;
	char *copy = strndup(text, len);
	if (copy == NULL)
		return;
	rl_replace_line(copy, 1);
	rl_point = rl_end;
	free(copy);
	if (ui->installed)
		redisplay();
	note_line(ui); /* put there, not typed */
}

static void terminal_release(struct ui *base)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;
	/* No prompt and no half-typed line stay behind; chat has said what was not sent. */
	if (ui->installed) {
		rl_clear_visible_line();
		fflush(stdout);
		rl_callback_handler_remove();
	}
	free(ui->entered);
	buffer_release(&ui->drawn);
	buffer_release(&ui->shown);
	active = NULL;
}

static const struct ui_ops terminal_ops = {
	.release = terminal_release,
	.show = terminal_show,
	.set_status = terminal_set_status,
	.resize = terminal_resize,
	.take_input = terminal_take_input,
	.set_input = terminal_set_input,
};

/* Enter, and whatever else accepts a line in the user's inputrc, is accept_line. */
static void bind_keys(void)
{
	Keymap maps[] = {emacs_standard_keymap, vi_insertion_keymap, vi_movement_keymap};
	for (size_t m = 0; m < sizeof(maps) / sizeof(maps[0]); m++) {
		char **keys = rl_invoking_keyseqs_in_map(rl_newline, maps[m]);
		for (size_t i = 0; keys && keys[i]; i++) {
			rl_bind_keyseq_in_map(keys[i], accept_line, maps[m]);
			free(keys[i]);
		}
		free(keys);
		rl_bind_key_in_map('\r', accept_line, maps[m]);
		rl_bind_key_in_map('\n', accept_line, maps[m]);
	}
	rl_bind_key_in_map('\t', rl_insert, emacs_standard_keymap);
	rl_bind_key_in_map('\t', rl_insert, vi_insertion_keymap);
}

struct ui *ui_terminal_create(struct event_loop *loop, const char *name, const struct ui_style *style,
			      const struct ui_handler *handler, void *ctx)
{
	struct ui_terminal *ui = ui_new(sizeof(*ui), &terminal_ops, style, handler, ctx);
	if (ui == NULL)
		return NULL;
	ui->base.terminal = true;
	ui->status = (struct ui_status){.turn = UI_UNPAIRED, .peer = ""};
	ui->ellipsis = strcmp(nl_langinfo(CODESET), "UTF-8") == 0 ? "\u2026" : "...";
	/* xterm cuts rows when it narrows; tmux (inside it too) and most others re-wrap. */
	ui->reflows = getenv("XTERM_VERSION") == NULL || getenv("TMUX") != NULL;
	buffer_init(&ui->drawn, TERMINAL_MAX_SHOWN);
	buffer_init(&ui->shown, TERMINAL_MAX_SHOWN);
	snprintf(ui->name, sizeof(ui->name), "%s", name);
	ui->base.source = event_add_fd(loop, STDIN_FILENO, EPOLLIN, terminal_ready, ui);
	if (ui->base.source == NULL) {
		free(ui);
		return NULL;
	}
	struct winsize ws;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
		ui->cols = ws.ws_col;
	active = ui;
	/* Signals reach the client through its event loop, never readline's handlers. */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_readline_name = "turnchat";
	rl_attempted_completion_function = no_completion;
	using_history();
	build_prompt(ui);
	rl_callback_handler_install(ui->prompt, line_entered);
	/* After install: it reads inputrc, which could bind these keys otherwise;
	 * and readline skips the terminal's capabilities when it finds its
	 * redisplay function replaced at its first start. */
	bind_keys();
	rl_redisplay_function = redisplay;
	ui->installed = true;
	return &ui->base;
}
