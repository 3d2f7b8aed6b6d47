/*
 * outbox: the lines the person finished that have not gone to the server
 * yet, oldest first: typed or pasted while waiting for a partner or out of
 * turn. Each line stays a line of its own; nothing in here is joined,
 * dropped or changed until the chat module takes it out to send, or the
 * person takes it back (/unqueue) or clears it (/queue clear). The chat
 * module keeps a second one for the lines it sent that the server has not
 * acknowledged yet (receipt.c), /done among them. Pure: no I/O. Owned by
 * chat.
 */
#ifndef TURNCHAT_OUTBOX_H
#define TURNCHAT_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>

enum outbox_kind {
	OUTBOX_MESSAGE,
	OUTBOX_ACTION, /* /me */
	OUTBOX_DONE,   /* /done, text empty: only sent lines are ever one */
};

/* A queued line, as typed, without the LF. */
struct outbox_line {
	char *text;
	size_t len;
	enum outbox_kind kind;
};

struct outbox {
	struct outbox_line *lines; /* a ring of size slots */
	size_t first, count, size;
	size_t bytes;     /* of text held */
	size_t max_bytes; /* what it may hold in all */
};

void outbox_init(struct outbox *outbox, size_t max_bytes);
void outbox_release(struct outbox *outbox);

static inline size_t outbox_count(const struct outbox *outbox)
{
	return outbox->count;
}

/* Adds a copy of text[0, len) at the end. Returns 0, or -1 (errno ENOBUFS
 * past max_bytes, ENOMEM) and nothing added. */
int outbox_push(struct outbox *outbox, const char *text, size_t len, enum outbox_kind kind);

/* The i-th line from the oldest (i < count); it stays the outbox's. */
const struct outbox_line *outbox_peek(const struct outbox *outbox, size_t i);

/* Takes the oldest (or the newest) line out; false when empty. The caller
 * then owns line->text and frees it. */
bool outbox_take_first(struct outbox *outbox, struct outbox_line *line);
bool outbox_take_last(struct outbox *outbox, struct outbox_line *line);

/* Drops every line; returns how many there were. */
size_t outbox_clear(struct outbox *outbox);

#endif
