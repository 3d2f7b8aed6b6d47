/*
 * buffer: a byte queue with a hard cap. Memory is taken on first use and
 * given back once drained, so an idle connection holds none.
 */
#ifndef TURNCHAT_BUFFER_H
#define TURNCHAT_BUFFER_H

#include <assert.h>
#include <stddef.h>

struct buffer {
	char *data;
	size_t start; /* first unread byte */
	size_t end;   /* one past the last byte */
	size_t size;  /* allocated bytes */
	size_t limit; /* most bytes it may hold; appends beyond it fail */
};

void buffer_init(struct buffer *buf, size_t limit);
void buffer_release(struct buffer *buf);

static inline size_t buffer_length(const struct buffer *buf)
{
	return buf->end - buf->start;
}

static inline const char *buffer_peek(const struct buffer *buf)
{
	/* An empty buffer may have no memory at all, and NULL + 0 is undefined. */
	return buf->data ? buf->data + buf->start : "";
}

/* How many more bytes it may take; none when a lowered limit is already passed. */
static inline size_t buffer_room(const struct buffer *buf)
{
	size_t used = buffer_length(buf);
	return used >= buf->limit ? 0 : buf->limit - used;
}

/* Returns 0, or -1 with errno ENOBUFS (over the limit: nothing appended) or ENOMEM. */
int buffer_append(struct buffer *buf, const void *bytes, size_t len);

/* buffer_reserve when the room is not there yet: slides or grows. */
char *buffer_grow(struct buffer *buf, size_t want, size_t *room);

/* Makes room for want bytes at the end (fewer only where the limit leaves
 * fewer); returns where to write them, NULL without memory or room, and
 * *room, if asked, how many may be written. Inline: on the hot path the
 * room is there already, and the call would cost more than the check. */
static inline char *buffer_reserve(struct buffer *buf, size_t want, size_t *room)
{
	size_t tail = buf->size - buf->end, may = buffer_room(buf);

	if (buf->data == NULL || want > tail || want > may)
		return buffer_grow(buf, want, room);
	if (room != NULL)
		*room = tail < may ? tail : may;
	return buf->data + buf->end;
}

static inline void buffer_commit(struct buffer *buf, size_t len)
{
	buf->end += len;
}

/* Keeps the first len bytes (len <= buffer_length): takes back what was
 * appended after them. */
static inline void buffer_truncate(struct buffer *buf, size_t len)
{
	assert(len <= buffer_length(buf));
	buf->end = buf->start + len;
}

/* Drops len bytes from the front. Emptied memory is kept for the next
 * bytes: a busy connection allocates nothing per line. */
void buffer_consume(struct buffer *buf, size_t len);

/* Gives the memory back if the buffer is empty: for connections gone idle. */
void buffer_trim(struct buffer *buf);
/* The same, but only a small block, which goes back to the pool at no cost:
 * a busy buffer keeps its larger block instead of asking malloc for it again
 * on every pass; buffer_trim gives that back once the buffer is quiet. */
void buffer_trim_small(struct buffer *buf);

#endif
