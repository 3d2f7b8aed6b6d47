/*
 * outbox: the chat module's queue of lines waiting for their turn (see
 * outbox.h); a ring of owned copies that grows by doubling.
 */
#include "outbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define OUTBOX_FIRST_SIZE 8

void outbox_init(struct outbox *outbox, size_t max_bytes)
{
	*outbox = (struct outbox){.max_bytes = max_bytes};
}

void outbox_release(struct outbox *outbox)
{
	outbox_clear(outbox);
	free(outbox->lines);
	outbox_init(outbox, outbox->max_bytes);
}

static struct outbox_line *slot(const struct outbox *outbox, size_t i)
{
	return &outbox->lines[(outbox->first + i) % outbox->size];
}

/* Doubles the ring, the oldest line moving to slot 0. */
static int grow(struct outbox *outbox)
{
	size_t size = outbox->size ? 2 * outbox->size : OUTBOX_FIRST_SIZE;
	struct outbox_line *lines = calloc(size, sizeof(*lines));
	if (lines == NULL)
		return -1;
	for (size_t i = 0; i < outbox->count; i++)
		lines[i] = *slot(outbox, i);
	free(outbox->lines);
	outbox->lines = lines;
	outbox->size = size;
	outbox->first = 0;
	return 0;
}

int outbox_push(struct outbox *outbox, const char *text, size_t len, enum outbox_kind kind)
{
	if (len > outbox->max_bytes - outbox->bytes) {
		errno = ENOBUFS;
		return -1;
	}
	if (outbox->count == outbox->size && grow(outbox) < 0)
		return -1;
	char *copy = malloc(len + 1);
	if (copy == NULL)
		return -1;
	memcpy(copy, text, len);
	copy[len] = '\0'; /* for the caller's convenience; len still counts */
	*slot(outbox, outbox->count) = (struct outbox_line){.text = copy, .len = len, .kind = kind};
	outbox->count++;
	outbox->bytes += len;
	return 0;
}

const struct outbox_line *outbox_peek(const struct outbox *outbox, size_t i)
{
	return i < outbox->count ? slot(outbox, i) : NULL;
}

bool outbox_take_first(struct outbox *outbox, struct outbox_line *line)
{
	if (outbox->count == 0)
		return false;
	*line = *slot(outbox, 0);
	outbox->first = (outbox->first + 1) % outbox->size;
	outbox->count--;
	outbox->bytes -= line->len;
	return true;
}

bool outbox_take_last(struct outbox *outbox, struct outbox_line *line)
{
	if (outbox->count == 0)
		return false;
	*line = *slot(outbox, outbox->count - 1);
	outbox->count--;
	outbox->bytes -= line->len;
	return true;
}

size_t outbox_clear(struct outbox *outbox)
{
	size_t dropped = outbox->count;
	struct outbox_line line;
	while (outbox_take_first(outbox, &line))
		free(line.text);
	return dropped;
}
