/*
 * ui: how the client meets the person. Two kinds: a terminal, edited with
 * GNU readline, where typing is possible at any time and incoming lines
 * never garble the line being typed; and plain standard input (a script,
 * a pipe, a file), read one line at a time when the turn allows it.
 * The chat module decides what to show and tells the ui whose turn it is.
 */
#ifndef TURNCHAT_UI_H
#define TURNCHAT_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "event.h"

enum ui_turn {
	UI_UNPAIRED, /* nobody to talk to yet */
	UI_MY_TURN,
	UI_PEER_TURN,
	UI_FREE,    /* free mode: always ours */
	UI_LEAVING, /* /q sent: take no more lines */
};

struct ui_handler {
	/* A line the person entered, to send now. */
	void (*on_line)(void *ctx, const char *line, size_t len);
	/* End of input or Ctrl-D: the person leaves. */
	void (*on_eof)(void *ctx);
};

struct ui;

struct ui *ui_plain_create(struct event_loop *loop, const struct ui_handler *handler, void *ctx);
struct ui *ui_terminal_create(struct event_loop *loop, const char *name,
			      const struct ui_handler *handler, void *ctx);
/* Restores the terminal as it was. */
void ui_destroy(struct ui *ui);

/* Shows one line (already safe to print) without disturbing typing. */
void ui_show(struct ui *ui, const char *line, size_t len);
void ui_set_turn(struct ui *ui, enum ui_turn turn, const char *peer);
/* The window changed size. */
void ui_resize(struct ui *ui);
/* Called by the main loop before it waits: standard input that epoll
 * cannot watch (a regular file) is read here. */
void ui_poll(struct ui *ui);
bool ui_is_terminal(const struct ui *ui);

/* What both kinds share: each kind fills in one of these. */
struct ui_ops {
	void (*destroy)(struct ui *ui);
	void (*show)(struct ui *ui, const char *line, size_t len);
	void (*set_turn)(struct ui *ui, enum ui_turn turn, const char *peer);
	void (*resize)(struct ui *ui);
	void (*poll)(struct ui *ui);
};

struct ui {
	const struct ui_ops *ops;
	bool terminal;
};

#endif
