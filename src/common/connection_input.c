/*
 * connection_input: the reading half of the connection module: called by
 * connection.c when its socket is readable (or TLS holds decrypted input);
 * frames the bytes into lines through the line reader and hands them to
 * the owner's handler.
 */
#include <errno.h>
#include <stddef.h>

#include "connection_impl.h"

/* The connection a line reader callback is about: its reader is inside it. */
static struct connection *of_reader(struct line_reader *reader)
{
	return (struct connection *)((char *)reader - offsetof(struct connection, reader));
}

/* The line reader asks before each line: only an open, unpaused
 * connection hands lines to its owner. */
static bool may_deliver(struct line_reader *reader)
{
	const struct connection *conn = of_reader(reader);
	return conn->state == CONNECTION_OPEN && !conn->paused;
}

static void reader_line(struct line_reader *reader, const char *line, size_t len)
{
	struct connection *conn = of_reader(reader);
	conn->handler->on_line(conn->ctx, line, len);
}

static void reader_too_long(struct line_reader *reader)
{
	struct connection *conn = of_reader(reader);
	conn->handler->on_too_long(conn->ctx);
}

const struct line_reader_handler connection_reader_handler = {
	.may_deliver = may_deliver,
	.on_line = reader_line,
	.on_too_long = reader_too_long,
};

/*
 * Most reads end on a line boundary: they are framed straight from one
 * shared scratch buffer, and only a partial line, or lines held back by
 * backpressure, is copied into the connection's own buffer.
 */
static char read_scratch[CONNECTION_READ_CHUNK];

/* Returns false when the connection has ended (the owner has been told). */
bool connection_read_input(struct connection *conn)
{
	for (int reads = 1;; reads++) {
		bool direct = line_reader_empty(&conn->reader);
		size_t room = sizeof(read_scratch);
		char *dst = direct ? read_scratch
				   : line_reader_space(&conn->reader, CONNECTION_READ_CHUNK, &room);
		if (dst == NULL) {
			conn->handler->on_end(conn->ctx, CONNECTION_ERROR);
			return false;
		}
		ssize_t n = transport_recv(&conn->io, dst, room);
		if (n > 0 && !conn->read_any) {
			/* The first bytes may show a peer speaking another protocol. */
			conn->read_any = true;
			if (conn->handler->on_first_bytes &&
			    !conn->handler->on_first_bytes(conn->ctx, dst, (size_t)n))
				return true;
		}
		if (n > 0) {
			if (direct) {
				int rc = line_reader_feed(&conn->reader, dst, (size_t)n);
				if (conn->state != CONNECTION_OPEN) {
					/* It is closing: what it sent after that is not read. */
					line_reader_release(&conn->reader);
				} else if (rc < 0) {
					conn->handler->on_end(conn->ctx, CONNECTION_ERROR);
					return false;
				}
			} else {
				line_reader_commit(&conn->reader, (size_t)n);
				line_reader_deliver(&conn->reader, false);
			}
			if (conn->state != CONNECTION_OPEN || conn->paused)
				return true;
			if (reads == CONNECTION_READS_PER_EVENT) {
				connection_read_pending_later(conn);
				return true;
			}
			if ((size_t)n < room && !transport_pending(&conn->io))
				return true;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return true;
		if (n == 0) {
			line_reader_deliver(&conn->reader, true);
			if (conn->state == CONNECTION_OPEN && conn->paused &&
			    !line_reader_empty(&conn->reader)) {
				/* Lines it sent before its end wait for the resume; until
				 * then a hang-up, which epoll always reports, is told once
				 * (edge-triggered), not on every pass. */
				connection_want_events(conn,
						       (conn->events & ~(uint32_t)EPOLLIN) | EPOLLET);
				return true;
			}
			if (conn->state == CONNECTION_FLUSHING) {
				/* Its last line was a goodbye: answer it before closing. */
				conn->peer_eof = true;
				connection_want_events(conn, EPOLLOUT);
				return true;
			}
		}
		conn->handler->on_end(conn->ctx, n == 0 ? CONNECTION_EOF : CONNECTION_ERROR);
		return false;
	}
}

/* After we started closing, input is only drained to see the peer's EOF. */
bool connection_discard_input(struct connection *conn)
{
	for (int reads = 1;; reads++) {
		ssize_t n = transport_recv(&conn->io, read_scratch, sizeof(read_scratch));
		if (n > 0 && reads == CONNECTION_READS_PER_EVENT)
			return true;
		if (n > 0)
			continue;
		if (n < 0 && errno == EAGAIN && conn->state != CONNECTION_ABORTED)
			return true;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 && conn->state == CONNECTION_FLUSHING) {
			conn->peer_eof = true;
			connection_want_events(conn, EPOLLOUT);
			return true;
		}
		conn->handler->on_end(conn->ctx, conn->state == CONNECTION_ABORTED || n < 0
							 ? CONNECTION_ERROR
							 : CONNECTION_DONE);
		return false;
	}
}
