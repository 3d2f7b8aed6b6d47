/*
 * line_reader: called by connection.c for every socket and by the client's
 * ui_plain.c for standard input; calls its owner's handler with lines.
 */
#include "line_reader.h"

#include <assert.h>

void line_reader_init(struct line_reader *reader, size_t max_line, size_t read_chunk,
		      const struct line_reader_handler *handler)
{
	buffer_init(&reader->input, max_line + 2 + read_chunk);
	reader->framer = (struct framer){0};
	assert(max_line <= UINT32_MAX);
	reader->max_line = (uint32_t)max_line;
	reader->handler = handler;
}

void line_reader_release(struct line_reader *reader)
{
	buffer_release(&reader->input);
}

void line_reader_set_max_line(struct line_reader *reader, size_t max_line, size_t read_chunk)
{
	assert(max_line <= UINT32_MAX);
	reader->max_line = (uint32_t)max_line;
	/* A line of max_line, its CR LF, and one more read. */
	reader->input.limit = max_line + 2 + read_chunk;
}

/* The lines of data[0, len) while the owner allows; returns the bytes used. */
static size_t deliver_from(struct line_reader *reader, const char *data, size_t len, bool at_eof)
{
	const struct line_reader_handler *h = reader->handler;
	size_t used = 0;

	while (used < len && h->may_deliver(reader)) {
		size_t line_len = 0, consumed = 0;
		enum frame_result result = protocol_frame(&reader->framer, data + used, len - used,
							  reader->max_line, &line_len, &consumed);
		if (result == FRAME_NEED_MORE && consumed == 0) {
			/* A last line without LF still counts when the stream ends;
			 * a CR at its end is the half of a CR LF that never came. */
			if (at_eof && !reader->framer.discarding) {
				size_t n = len - used;
				h->on_line(reader, data + used, n - (data[len - 1] == '\r'));
				used = reader->hold ? used : len;
				reader->hold = false;
			}
			break;
		}
		if (result == FRAME_LINE)
			h->on_line(reader, data + used, line_len);
		else if (result == FRAME_TOO_LONG)
			h->on_too_long(reader);
		if (reader->hold) {
			reader->hold = false;
			break;
		}
		used += consumed;
	}
	return used;
}

int line_reader_feed(struct line_reader *reader, const char *data, size_t len)
{
	size_t used = line_reader_empty(reader) ? deliver_from(reader, data, len, false) : 0;

	return buffer_append(&reader->input, data + used, len - used);
}

char *line_reader_space(struct line_reader *reader, size_t want, size_t *room)
{
	return buffer_reserve(&reader->input, want, room);
}

void line_reader_commit(struct line_reader *reader, size_t len)
{
	buffer_commit(&reader->input, len);
}

bool line_reader_deliver(struct line_reader *reader, bool at_eof)
{
	size_t used = deliver_from(reader, buffer_peek(&reader->input), buffer_length(&reader->input),
				   at_eof);
	buffer_consume(&reader->input, used);
	/* Freed at once, the memory serves the next reader that needs some:
	 * thousands of quiet connections then hold no buffers at all (a
	 * larger block waits for connection_trim, once a second). */
	buffer_trim_small(&reader->input);
	return line_reader_empty(reader);
}
