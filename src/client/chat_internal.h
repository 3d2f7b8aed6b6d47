/*
 * chat_internal: the conversation's state, shared by the three files of
 * the chat module and nobody else: chat.c (the event loop, signals, the
 * clock, showing and sending), reply.c (the server's side: each line it
 * sends) and input.c (the person's side: lines to queue and send, the
 * commands the client answers itself).
 */
#ifndef TURNCHAT_CHAT_INTERNAL_H
#define TURNCHAT_CHAT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "buffer.h"
#include "chat.h"
#include "connection.h"
#include "event.h"
#include "outbox.h"
#include "ui.h"

enum chat_state {
	CHAT_GREETING, /* connected, waiting for HELLO */
	CHAT_JOINING,  /* /caps, /name, /mode and /join sent */
	CHAT_PAIRED,
	CHAT_ENDED,
};

struct chat {
	const struct chat_options *options;
	struct event_loop *loop;
	struct connection *conn;
	struct ui *ui;
	enum chat_state state; /* written by chat.c and reply.c only */
	enum ui_turn turn;
	enum chat_mode mode;
	unsigned caps;     /* granted by the server */
	bool caps_pending; /* /caps sent, not answered yet */
	bool waiting;      /* WAITING seen, not paired yet */
	uint64_t waiting_since;
	bool quit_sent;
	uint64_t quit_sent_at;
	bool done_sent;        /* /done sent: no more messages from us */
	bool done_after_queue; /* /done typed with lines queued: it follows them */
	bool peer_done;
	bool peer_typing;
	uint64_t peer_typing_at;
	uint64_t typing_sent_at; /* the last /typing */
	uint64_t typing_due_at;  /* when the partner may be told again that we type */
	unsigned long sent;      /* messages (and /me) sent in this conversation */
	unsigned long refused;   /* of those, how many the server refused with ERR */
	unsigned long lost;      /* lines the person finished that never reached the partner */
	bool relayed_known;
	unsigned long relayed; /* RELAYED: how many of ours reached the partner */
	int exit_status;
	int forced_status; /* set by a failure or Ctrl-C before the goodbye; -1 if none */
	char peer[PROTOCOL_NAME_BYTES + 1];
	struct outbox outbox;
	struct buffer line;    /* scratch for one line made safe */
	unsigned shown_waited; /* the seconds of waiting the prompt shows */
	bool ticking;          /* the clock runs: something on screen changes with time */
};

/* chat.c */
void chat_say(struct chat *chat, enum ui_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Shows text from anywhere (the network, the person) made safe first. */
void chat_show(struct chat *chat, enum ui_kind kind, const char *name, const char *text, size_t len);
void chat_set_turn(struct chat *chat, enum ui_turn turn);
/* Tells the ui what the prompt shows now. */
void chat_update_status(struct chat *chat);
/* Sends what a protocol_append_* put in the output (rc its result). */
void chat_send(struct chat *chat, int rc);
/* Leaves at once (/q, Ctrl-D, Ctrl-C), saying what is left unsent. */
void chat_leave(struct chat *chat, bool interrupted);
/* Just /q: the server answers BYE. */
void chat_send_quit(struct chat *chat);

/* reply.c */
void reply_line(struct chat *chat, const char *text, size_t len);

/* input.c */
void input_line(struct chat *chat, const char *line, size_t len);
/* Sends queued lines for as long as the turn allows. */
void input_flush(struct chat *chat);
/* The person typed: the partner may be told. */
void input_typing(struct chat *chat);
/* Says what was never sent: the queue (and the half-typed line when
 * taken), why first. Counts it as lost. */
void input_report_unsent(struct chat *chat, const char *why, bool take_typed);
/* The end of a script's input. */
void input_eof(struct chat *chat);
/* A line of a script's input longer than max bytes, skipped. */
void input_too_long(struct chat *chat, size_t max);

#endif
