/*
 * line_reader: bytes in, whole lines out, for every reader of lines: the
 * connection module (each socket, daemon and client) and the client's plain
 * ui (a script's standard input). It holds what is not yet a whole line,
 * frames with protocol_frame, refuses an over-long line once and discards
 * its rest, counts a last line without LF at the end of the stream, and
 * stops handing out lines the moment its owner says to (backpressure,
 * closing, not one's turn), keeping the rest for later.
 */
#ifndef TURNCHAT_LINE_READER_H
#define TURNCHAT_LINE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "protocol.h"

struct line_reader;

/* Each is called with the reader, which its owner embeds (and so finds
 * itself from): one pointer less in every connection. */
struct line_reader_handler {
	/* Asked before each line: false keeps the rest for a later call. */
	bool (*may_deliver)(struct line_reader *reader);
	void (*on_line)(struct line_reader *reader, const char *line, size_t len);
	/* A line passed max_line: it is not delivered, its rest is discarded. */
	void (*on_too_long)(struct line_reader *reader);
};

struct line_reader {
	struct buffer input; /* what is not handed out yet */
	const struct line_reader_handler *handler;
	uint32_t max_line; /* at most CONFIG_MAX_LINE_MAX; 32 bits keep a connection small */
	struct framer framer;
	/* Set by on_line: that line is not taken, and comes again first the
	 * next time the owner allows lines. */
	bool hold;
};

/* read_chunk: the most one read appends, which the buffer always has room for. */
void line_reader_init(struct line_reader *reader, size_t max_line, size_t read_chunk,
		      const struct line_reader_handler *handler);
void line_reader_release(struct line_reader *reader);
void line_reader_set_max_line(struct line_reader *reader, size_t max_line, size_t read_chunk);

static inline bool line_reader_empty(const struct line_reader *reader)
{
	return buffer_length(&reader->input) == 0;
}

/*
 * Hands out the complete lines of data[0, len), bytes that are not in the
 * reader (a read straight into a scratch buffer: most reads end on a line
 * boundary and need no copy). Keeps what is left over. Returns -1 (errno
 * set) when that does not fit, else 0.
 */
int line_reader_feed(struct line_reader *reader, const char *data, size_t len);

/* Where a read may put up to *room bytes into the reader; then commit them. */
char *line_reader_space(struct line_reader *reader, size_t want, size_t *room);
void line_reader_commit(struct line_reader *reader, size_t len);

/*
 * Hands out the lines the reader holds, while the owner allows. At the end
 * of the stream (at_eof) a last line without LF counts too. Returns true
 * when nothing is left to hand out.
 */
bool line_reader_deliver(struct line_reader *reader, bool at_eof);

#endif
