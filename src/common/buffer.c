/*
 * buffer: byte queue used for every socket's input and output, and for the
 * client's standard input. Callers are the connection module, the protocol
 * formatters and the client.
 */
#include "buffer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Small first allocation: most chat lines are short, and idle peers hold nothing. */
#define BUFFER_FIRST_SIZE 1024
/* Released first-size blocks wait here for the next buffer, so a busy
 * relay takes no memory from malloc per line; the pool itself is bounded. */
#define BUFFER_POOL_MAX 128

static char *pool[BUFFER_POOL_MAX];
static size_t pooled;

void buffer_init(struct buffer *buf, size_t limit)
{
	memset(buf, 0, sizeof(*buf));
	buf->limit = limit;
}

void buffer_release(struct buffer *buf)
{
	if (buf->data && buf->size == BUFFER_FIRST_SIZE && pooled < BUFFER_POOL_MAX)
		pool[pooled++] = buf->data;
	else
		free(buf->data);
	buf->data = NULL;
	buf->start = buf->end = buf->size = 0;
}

char *buffer_grow(struct buffer *buf, size_t want, size_t *room)
{
	size_t used = buffer_length(buf);

	if (want > buffer_room(buf)) {
		want = buffer_room(buf);
		if (want == 0) {
			errno = ENOBUFS;
			return NULL;
		}
	}
	if (buf->size - buf->end < want) {
		/* Slide the unread bytes to the front before growing. */
		if (buf->start > 0) {
			memmove(buf->data, buf->data + buf->start, used);
			buf->start = 0;
			buf->end = used;
		}
		if (buf->data == NULL && want <= BUFFER_FIRST_SIZE &&
		    buf->limit >= BUFFER_FIRST_SIZE && pooled > 0) {
			buf->data = pool[--pooled];
			buf->size = BUFFER_FIRST_SIZE;
			buf->start = buf->end = 0;
		}
		if (buf->size - buf->end < want) {
			size_t size = buf->size ? buf->size : BUFFER_FIRST_SIZE;
			while (size - used < want)
				size *= 2;
			if (size > buf->limit)
				size = buf->limit; /* still enough: want <= limit - used */
			char *data = realloc(buf->data, size);
			if (data == NULL)
				return NULL;
			buf->data = data;
			buf->size = size;
		}
	}
	/* Free memory past a lowered limit is not room. */
	if (room != NULL)
		*room = buf->size - buf->end < buffer_room(buf) ? buf->size - buf->end
								: buffer_room(buf);
	return buf->data + buf->end;
}

int buffer_append(struct buffer *buf, const void *bytes, size_t len)
{
	if (len > buffer_room(buf)) {
		errno = ENOBUFS;
		return -1;
	}
	if (len == 0)
		return 0;
	char *dst = buffer_reserve(buf, len, NULL);
	if (dst == NULL)
		return -1;
	memcpy(dst, bytes, len);
	buf->end += len;
	return 0;
}

void buffer_consume(struct buffer *buf, size_t len)
{
	if (len >= buffer_length(buf)) {
		buf->start = buf->end = 0;
		return;
	}
	buf->start += len;
}

void buffer_trim(struct buffer *buf)
{
	if (buffer_length(buf) == 0)
		buffer_release(buf);
}

void buffer_trim_small(struct buffer *buf)
{
	if (buffer_length(buf) == 0 && buf->size <= BUFFER_FIRST_SIZE)
		buffer_release(buf);
}
