/*
 * ui: how the client meets the person. Two kinds: a terminal, edited with
 * GNU readline, where typing is possible at any time and every line shown
 * goes above the line being typed; and plain standard input (a script, a
 * pipe, a file), read one line at a time when the turn allows it.
 *
 * The chat module decides what to say and hands over each line with its
 * kind; the ui decides how it looks (a notice marker and wrapping on a
 * terminal, standard error for problems in a script). Chat also tells the
 * ui what the prompt should show: whose turn it is, what is queued,
 * whether the partner is typing, how long we have waited.
 */
#ifndef TURNCHAT_UI_H
#define TURNCHAT_UI_H

#include <stdbool.h>
#include <stddef.h>

#include "buffer.h"
#include "event.h"

enum ui_turn {
	UI_UNPAIRED, /* nobody to talk to yet */
	UI_MY_TURN,
	UI_PEER_TURN,
	UI_FREE,    /* free mode, or the partner said /done: always ours */
	UI_LEAVING, /* /q sent or the conversation over: take no more lines */
};

/* What the prompt shows. */
struct ui_status {
	enum ui_turn turn;
	const char *peer; /* "" before pairing */
	size_t queued;    /* lines waiting in the chat module's outbox */
	bool peer_typing;
	bool waiting; /* in a room, waiting for a partner, for waited seconds */
	unsigned waited;
	bool done;         /* the person said /done */
	bool reconnecting; /* the connection dropped: lines wait until it is back */
};

enum ui_kind {
	UI_NOTICE,      /* the client speaking to the person */
	UI_PROBLEM,     /* the client reporting a failure: standard error in a script */
	UI_PEER_LINE,   /* "name: text", the partner's message */
	UI_OWN_LINE,    /* "name: text", the person's own message, when it was sent */
	UI_PEER_ACTION, /* "* name text", the partner's /me */
	UI_OWN_ACTION,
};

/* How lines look; from the options. */
struct ui_style {
	bool timestamps; /* [HH:MM] before each line */
	bool color;      /* names in colour */
	bool bell;       /* ring when the partner's line arrives (a terminal only) */
};

struct ui_handler {
	/* A line the person finished (Enter, or a line of a script). */
	void (*on_line)(void *ctx, const char *line, size_t len);
	/* End of input, or Ctrl-D on an empty input line: the person leaves. */
	void (*on_eof)(void *ctx);
	/* The person changed the input line (a terminal only). */
	void (*on_typing)(void *ctx);
	/* A line of a script too long to be a line at all: it is skipped. */
	void (*on_too_long)(void *ctx, size_t max);
};

struct ui;

struct ui *ui_plain_create(struct event_loop *loop, const struct ui_style *style,
			   const struct ui_handler *handler, void *ctx);
struct ui *ui_terminal_create(struct event_loop *loop, const char *name, const struct ui_style *style,
			      const struct ui_handler *handler, void *ctx);
/* Takes the input line off the screen and restores the terminal as it was. */
void ui_destroy(struct ui *ui);

/* Shows one line: text is safe to print (display_sanitize); name is the
 * speaker's for the kinds that have one. */
void ui_show(struct ui *ui, enum ui_kind kind, const char *name, const char *text, size_t len);
void ui_set_status(struct ui *ui, const struct ui_status *status);
/* The window changed size. */
void ui_resize(struct ui *ui);
/* Called by the main loop before it waits: standard input that epoll
 * cannot watch (a regular file) is read here. */
void ui_poll(struct ui *ui);
bool ui_is_terminal(const struct ui *ui);
/* The text in the input line, taken out of it (NULL when there is none);
 * the caller frees it. */
char *ui_take_input(struct ui *ui);
/* Puts text into the input line, for the person to edit (a terminal). */
void ui_set_input(struct ui *ui, const char *text, size_t len);
/* How many whole lines of a script's input were never handed over, looking
 * (never waiting) at what is there; *more when there may be others. */
size_t ui_unsent_input(struct ui *ui, bool *more);

/* What both kinds share: each kind fills in one of these. */
struct ui_ops {
	/* What is the kind's own; ui_destroy then ends the watch on stdin and
	 * frees the ui, which starts with struct ui. */
	void (*release)(struct ui *ui);
	void (*show)(struct ui *ui, enum ui_kind kind, const char *name, const char *text,
		     size_t len);
	void (*set_status)(struct ui *ui, const struct ui_status *status);
	void (*resize)(struct ui *ui);
	void (*poll)(struct ui *ui);
	char *(*take_input)(struct ui *ui);
	void (*set_input)(struct ui *ui, const char *text, size_t len);
	size_t (*unsent_input)(struct ui *ui, bool *more);
};

struct ui {
	const struct ui_ops *ops;
	struct ui_style style;
	bool terminal;
	struct event_source *source; /* stdin; NULL for a script reading a regular file */
	const struct ui_handler *handler;
	void *ctx;
};

/* A kind's zeroed struct of size bytes, starting with a struct ui filled in;
 * NULL without memory. For ui_plain_create and ui_terminal_create. */
void *ui_new(size_t size, const struct ui_ops *ops, const struct ui_style *style,
	     const struct ui_handler *handler, void *ctx);

/*
 * Appends one line as shown: the time when asked for, then the speaker's
 * name or, on a terminal (marked), the notice marker "-- ", then text
 * wrapped for a window cols wide (0: not wrapped), every row after the first
 * indented under the text (display_wrap), so a partner's text can never
 * start a row and pass for one of the client's notices. For ui_plain and
 * ui_terminal.
 */
int ui_format(struct buffer *out, const struct ui_style *style, bool marked, enum ui_kind kind,
	      const char *name, const char *text, size_t len, unsigned cols);

#endif
