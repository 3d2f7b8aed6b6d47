/*
 * chat_internal: the conversation's state, shared by the files of the chat
 * module and nobody else: chat.c (the event loop, signals, the clock,
 * showing and sending), reply.c (the server's side: each line it sends),
 * input.c (the person's side: lines to queue and send, the commands the
 * client answers itself), receipt.c (with resume: the numbered lines both
 * ways, acknowledgements, delivery) and reconnect.c (with resume: a
 * dropped connection, made again, the conversation carried on).
 */
#ifndef TURNCHAT_CHAT_INTERNAL_H
#define TURNCHAT_CHAT_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "buffer.h"
#include "chat.h"
#include "connection.h"
#include "dial.h"
#include "event.h"
#include "outbox.h"
#include "ui.h"

/* An acknowledgement waits this long for a line of ours to go with. */
#define CHAT_ACK_DELAY_MS 500
/* A script at the end of its input waits this long for its last receipts. */
#define CHAT_RECEIPT_WAIT_MS 5000

enum chat_state {
	CHAT_GREETING, /* connected, waiting for HELLO */
	CHAT_JOINING,  /* /caps, /name, /mode and /join sent */
	CHAT_PAIRED,
	CHAT_RECONNECTING, /* paired, the connection lost: a new one until TOKEN says go on */
	CHAT_ENDED,
};

/* What a conversation granted resume keeps across connections
 * (turnchat-protocol(7), "Resuming a conversation"). */
struct chat_resume {
	bool active;                        /* a TOKEN came: lines are numbered from here on */
	char token[PROTOCOL_TOKEN_HEX + 1]; /* the last TOKEN, empty if none: never shown */
	unsigned seconds;                   /* how long the server waits for us after a drop */
	unsigned long received;             /* the partner's numbered lines: MSG, ACTION, DONE */
	unsigned long acked;                /* of those, how many the server was told of */
	uint64_t ack_due_at;                /* when an /ack must go at the latest; 0: none due */
	unsigned long numbered;             /* our numbered lines: messages, /me, /done */
	unsigned long delivered;            /* of those, how many ACK covers */
	struct outbox unacked;              /* ours after delivered, as sent: kept to send again */
	uint64_t heard_at;                  /* the server's last line */
	uint64_t ping_at;                   /* /ping unanswered since; 0: none out */
	bool leave_when_delivered;          /* a script's end: /q once ACK covers all */
	uint64_t leave_by;                  /* ...or then at the latest */
	/* While reconnecting: */
	uint64_t dropped_at;
	unsigned attempts;   /* since the drop: the backoff doubles with each */
	uint64_t retry_at;   /* the next attempt; 0: none planned */
	uint64_t attempt_by; /* the one under way gives up then */
	struct dial *dial;
	struct dial_target target;
	bool resumed;             /* RESUMED read on this connection; TOKEN says go on */
	unsigned long resumed_at; /* RESUMED's count: ours after it go again */
	char why[256];            /* what the last attempt met */
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
	unsigned long writes;    /* chat_send calls: whether anything went since */
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
	int secure_shown;      /* the last SECURE said: 1 yes, 0 no, -1 none yet */
	struct chat_resume resume;
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

/* Ends the conversation for good with status, the connection too. */
void chat_end(struct chat *chat, int status);
/* The connection's handler, for reconnect.c's new ones. */
struct connection *chat_connect(struct chat *chat, int fd, struct tls *tls);

/* reply.c */
void reply_line(struct chat *chat, const char *text, size_t len);
/* The capabilities to ask for, the same on every connection. */
unsigned reply_wanted_caps(const struct chat *chat);

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

/* receipt.c: every function is a no-op unless resume was granted. */
bool receipt_on(const struct chat *chat);
/* One of ours went (after it was appended): it takes the next number. */
void receipt_sent(struct chat *chat, enum outbox_kind kind, const char *text, size_t len);
/* One of the partner's numbered lines arrived. */
void receipt_received(struct chat *chat);
/* Appends /ack if lines came since the last; with the next line, or on time. */
void receipt_append_ack(struct chat *chat);
/* ACK n: the server is done with ours up to n. */
void receipt_delivered(struct chat *chat, unsigned long count);
/* Ours after number from go again, as they were (RESUMED). */
void receipt_send_again(struct chat *chat, unsigned long from);
/* Lists ours no ACK covers, as maybe not delivered, why first; counts them lost. */
void receipt_report_undelivered(struct chat *chat, const char *why);
/* Ours that no ACK covers yet. */
size_t receipt_pending(const struct chat *chat);

/* reconnect.c */
/* The connection ended without a goodbye: true when reconnecting (again). */
bool reconnect_after_drop(struct chat *chat);
/* HELLO on a new connection: /caps and /resume. */
void reconnect_greeted(struct chat *chat);
/* RESUMED, then TOKEN (which also comes after PAIRED). */
void reconnect_resumed(struct chat *chat, const struct server_line *line);
void reconnect_token(struct chat *chat, const struct server_line *line);
/* ERR or BYE before RESUMED: the server would not resume. */
void reconnect_refused(struct chat *chat, const struct server_line *line);
/* /q, Ctrl-D or Ctrl-C while reconnecting: leaves at once. */
void reconnect_abandon(struct chat *chat, bool interrupted);
/* Runs what is due (acknowledging, keepalive, the next attempt, a script
 * that waited for its receipts); returns milliseconds to the next, or -1. */
int reconnect_timers(struct chat *chat);
void reconnect_release(struct chat *chat);

#endif
