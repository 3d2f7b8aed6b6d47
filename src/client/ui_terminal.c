/*
 * ui_terminal: called through ui.c by chat: the client on a terminal, built on GNU readline's
 * callback interface so that the client's own event loop stays in charge. Readline gives line editing
 * and history; this file makes sure incoming lines are printed above the line being typed, which is
 * then drawn again intact.
 *
 * In turns mode a chat line entered out of turn is not sent and not lost:
 * it stays in the input line, marked as queued, and goes out as soon as the
 * turn comes. Commands (/q, /help) are never held back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "protocol.h"
#include "ui.h"

struct ui_terminal {
	struct ui base;
	struct event_source *source;
	const struct ui_handler *handler;
	void *ctx;
	enum ui_turn turn;
	bool queued;    /* the input line waits for our turn */
	bool installed; /* readline is drawing the prompt */
	char name[PROTOCOL_NAME_BYTES + 1];
	char peer[PROTOCOL_NAME_BYTES + 1];
	char prompt[2 * PROTOCOL_NAME_BYTES + 64];
};

/* Readline's callbacks carry no context; there is one terminal. */
static struct ui_terminal *active;

static void update_prompt(struct ui_terminal *ui)
{
	switch (ui->turn) {
	case UI_MY_TURN:
	case UI_FREE:
		snprintf(ui->prompt, sizeof(ui->prompt), "%s> ", ui->name);
		break;
	case UI_PEER_TURN:
		snprintf(ui->prompt, sizeof(ui->prompt), "%s (%s's turn%s)> ", ui->name, ui->peer,
			 ui->queued ? ", yours is queued" : "");
		break;
	case UI_UNPAIRED:
		snprintf(ui->prompt, sizeof(ui->prompt), "%s (no partner yet)> ", ui->name);
		break;
	case UI_LEAVING:
		ui->prompt[0] = '\0';
		break;
	}
	if (ui->installed) {
		rl_set_prompt(ui->prompt);
		rl_redisplay();
	}
}

static bool is_chat_line(const char *line)
{
	return protocol_is_message(line, strlen(line));
}

static void send_line(struct ui_terminal *ui, const char *line)
{
	if (line[0] != '\0')
		add_history(line);
	ui->handler->on_line(ui->ctx, line, strlen(line));
}

static bool may_send(const struct ui_terminal *ui)
{
	return ui->turn == UI_MY_TURN || ui->turn == UI_FREE;
}

/* Enter: a chat line out of turn stays where it is, queued; all else is accepted. */
static int enter_pressed(int count, int key)
{
	struct ui_terminal *ui = active;

	if (!may_send(ui) && ui->turn != UI_LEAVING && rl_end > 0 && is_chat_line(rl_line_buffer)) {
		ui->queued = true;
		update_prompt(ui);
		return 0;
	}
	return rl_newline(count, key);
}

static void line_entered(char *line)
{
	struct ui_terminal *ui = active;

	if (line == NULL) {
		/* Ctrl-D on an empty line: leave, as /q does. */
		ui->handler->on_eof(ui->ctx);
	} else if (line[0] != '\0' && ui->turn != UI_LEAVING) {
		send_line(ui, line);
	}
	free(line);
}

static void terminal_ready(int fd, uint32_t events, void *data)
{
	(void)fd;
	(void)events;
	(void)data;
	rl_callback_read_char();
}

static void terminal_show(struct ui *base, const char *line, size_t len)
{
	(void)base;
	/* Take the half-typed line off the screen, print, then draw it again. */
	int point = rl_point;
	char *typed = rl_copy_text(0, rl_end);
	rl_save_prompt();
	rl_replace_line("", 0);
	rl_redisplay();
	fwrite(line, 1, len, stdout);
	putchar('\n');
	rl_restore_prompt();
	rl_replace_line(typed, 0);
	rl_point = point;
	rl_redisplay();
	free(typed);
	fflush(stdout);
}

static void terminal_set_turn(struct ui *base, enum ui_turn turn, const char *peer)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;

	ui->turn = turn;
	if (peer)
		snprintf(ui->peer, sizeof(ui->peer), "%s", peer);
	if (ui->queued && (may_send(ui) || turn == UI_LEAVING)) {
		ui->queued = false;
		if (may_send(ui) && rl_end > 0) {
			/* The turn came: the queued line goes, shown as if typed now. */
			char *line = rl_copy_text(0, rl_end);
			rl_replace_line("", 0);
			update_prompt(ui);
			char *shown = malloc(strlen(ui->prompt) + strlen(line) + 1);
			if (shown) {
				strcpy(shown, ui->prompt);
				strcat(shown, line);
				terminal_show(base, shown, strlen(shown));
				free(shown);
			}
			send_line(ui, line);
			free(line);
			return;
		}
	}
	update_prompt(ui);
}

static void terminal_resize(struct ui *base)
{
	(void)base;
	rl_resize_terminal();
}

static void terminal_destroy(struct ui *base)
{
	struct ui_terminal *ui = (struct ui_terminal *)base;
	/* Puts the terminal back in the mode it had before. */
	rl_callback_handler_remove();
	if (rl_end > 0 || ui->turn != UI_LEAVING)
		putchar('\n');
	fflush(stdout);
	event_source_remove(ui->source);
	active = NULL;
	free(ui);
}

static const struct ui_ops terminal_ops = {
	.destroy = terminal_destroy,
	.show = terminal_show,
	.set_turn = terminal_set_turn,
	.resize = terminal_resize,
};

struct ui *ui_terminal_create(struct event_loop *loop, const char *name,
			      const struct ui_handler *handler, void *ctx)
{
	struct ui_terminal *ui = calloc(1, sizeof(*ui));
	if (ui == NULL)
		return NULL;
	ui->base.ops = &terminal_ops;
	ui->base.terminal = true;
	ui->handler = handler;
	ui->ctx = ctx;
	ui->turn = UI_UNPAIRED;
	snprintf(ui->name, sizeof(ui->name), "%s", name);
	ui->source = event_add_fd(loop, STDIN_FILENO, EPOLLIN, terminal_ready, ui);
	if (ui->source == NULL) {
		free(ui);
		return NULL;
	}
	active = ui;
	/* Signals reach the client through its event loop, never readline's handlers. */
	rl_catch_signals = 0;
	rl_catch_sigwinch = 0;
	rl_readline_name = "turnchat";
	using_history();
	update_prompt(ui);
	rl_callback_handler_install(ui->prompt, line_entered);
	/* After install: it reads inputrc, which could bind Enter otherwise. */
	rl_bind_key('\r', enter_pressed);
	rl_bind_key('\n', enter_pressed);
	ui->installed = true;
	return &ui->base;
}
