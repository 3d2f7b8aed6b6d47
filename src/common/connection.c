/*
 * connection: socket I/O for the daemon's sessions and the client's chat
 * module, which create, feed and end them. Called from the event loop, for
 * readiness and for the deferred write of each pass; calls its owner's
 * handler with whole lines.
 */
#include "connection.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "line_reader.h"

/* Large reads let one syscall carry many lines under load. */
#define CONNECTION_READ_CHUNK 16384
/* Reads per readiness event: a peer that sends without pause must not keep
 * the loop from everyone else (level-triggered: the rest is read next pass). */
#define CONNECTION_READS_PER_EVENT 4

enum connection_state {
	CONNECTION_OPEN,
	CONNECTION_FLUSHING, /* closing: writing what is queued */
	CONNECTION_DRAINING, /* closing: half-closed, waiting for the peer's EOF */
	CONNECTION_ABORTED,
};

/* One per connection: kept small, the fields ordered to leave no holes. */
struct connection {
	int fd;
	uint32_t events;
	uint8_t state; /* enum connection_state */
	bool peer_eof; /* the peer half-closed; it may still read what we owe it */
	bool paused;   /* backpressure: no lines delivered, nothing read */
	bool reset;    /* closing without reading: a reset once the output is out */
	bool notify_drained;
	struct event_source *source; /* and, through it, the loop */
	struct line_reader reader;   /* input not yet handed out as lines */
	struct buffer output;
	size_t output_limit;    /* the cap in force; output.limit exceeds it only
				   until a queue from before a lowering drains */
	uint64_t last_progress; /* when output last moved, or started to wait */
	uint64_t closing_since;
	struct event_deferred flush; /* output to write at the end of this pass */
	const struct connection_handler *handler;
	void *ctx;
};

static void connection_ready(int fd, uint32_t events, void *data);
static bool write_output(struct connection *conn);

/* The loop runs this once per pass for each connection given output: one
 * send however many lines the pass queued. A failed write ends the
 * connection through on_end; nothing here touches it afterwards. */
static void flush_deferred(struct event_deferred *node)
{
	struct connection *conn = (struct connection *)((char *)node -
							offsetof(struct connection, flush));
	write_output(conn);
}

static struct event_loop *loop_of(const struct connection *conn)
{
	return event_source_loop(conn->source);
}

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

static const struct line_reader_handler reader_handler = {
	.may_deliver = may_deliver,
	.on_line = reader_line,
	.on_too_long = reader_too_long,
};

struct connection *connection_create(struct event_loop *loop, int fd, size_t max_line,
				     size_t output_limit, const struct connection_handler *handler,
				     void *ctx)
{
	struct connection *conn = calloc(1, sizeof(*conn));
	if (conn == NULL)
		return NULL;
	conn->fd = fd;
	conn->flush.fn = flush_deferred;
	conn->output_limit = output_limit;
	conn->handler = handler;
	conn->ctx = ctx;
	conn->events = EPOLLIN;
	line_reader_init(&conn->reader, max_line, CONNECTION_READ_CHUNK, &reader_handler);
	buffer_init(&conn->output, output_limit);
	conn->source = event_add_fd(loop, fd, conn->events, connection_ready, conn);
	if (conn->source == NULL) {
		free(conn);
		return NULL;
	}
	return conn;
}

void connection_destroy(struct connection *conn)
{
	if (conn == NULL)
		return;
	event_defer_cancel(loop_of(conn), &conn->flush);
	event_source_remove(conn->source);
	close(conn->fd);
	line_reader_release(&conn->reader);
	buffer_release(&conn->output);
	free(conn);
}

void connection_set_limits(struct connection *conn, size_t max_line, size_t output_limit)
{
	size_t queued = buffer_length(&conn->output);

	conn->output_limit = output_limit;
	if (conn->state != CONNECTION_ABORTED)
		/* Never below what waits: room stays for the goodbye, at least. */
		conn->output.limit = queued > output_limit / 2 ? queued + output_limit : output_limit;
	line_reader_set_max_line(&conn->reader, max_line, CONNECTION_READ_CHUNK);
	/* A partial line may now be too long: frame it again by the new rule. */
	line_reader_deliver(&conn->reader, false);
}

bool connection_backlogged(const struct connection *conn)
{
	return buffer_length(&conn->output) > conn->output.limit / 2;
}

bool connection_is_aborted(const struct connection *conn)
{
	return conn->state == CONNECTION_ABORTED;
}

struct buffer *connection_output(struct connection *conn)
{
	return &conn->output;
}

static void want_events(struct connection *conn, uint32_t events)
{
	if (events != conn->events && event_source_set_events(conn->source, events) == 0)
		conn->events = events;
}

void connection_flush(struct connection *conn)
{
	if (conn->state == CONNECTION_ABORTED)
		return;
	/* Ask for writability only while output waits: the loop then writes it
	 * all in one call per pass, however many lines were queued. */
	if (buffer_length(&conn->output) == 0 || conn->flush.queued || (conn->events & EPOLLOUT))
		return;
	conn->last_progress = event_now_ms(loop_of(conn));
	event_defer(loop_of(conn), &conn->flush);
}

void connection_trim(struct connection *conn)
{
	buffer_trim(&conn->reader.input);
	buffer_trim(&conn->output);
}

void connection_pause_reading(struct connection *conn, bool paused)
{
	if (conn->paused == paused || conn->state != CONNECTION_OPEN) {
		conn->paused = paused;
		return;
	}
	conn->paused = paused;
	if (paused) {
		want_events(conn, conn->events & ~(uint32_t)EPOLLIN);
		return;
	}
	/* Held lines go first; an end that came meanwhile is still readable,
	 * and the loop reports it again. */
	want_events(conn, (conn->events & ~(uint32_t)EPOLLET) | EPOLLIN);
	line_reader_deliver(&conn->reader, false);
}

void connection_notify_drained(struct connection *conn)
{
	conn->notify_drained = true;
}

uint64_t connection_stalled_since(const struct connection *conn)
{
	return buffer_length(&conn->output) > 0 ? conn->last_progress : 0;
}

static void start_draining(struct connection *conn)
{
	conn->state = CONNECTION_DRAINING;
	shutdown(conn->fd, SHUT_WR);
	want_events(conn, EPOLLIN);
}

void connection_close_after_flush(struct connection *conn)
{
	if (conn->state != CONNECTION_OPEN)
		return;
	conn->state = CONNECTION_FLUSHING;
	conn->closing_since = event_now_ms(loop_of(conn));
	line_reader_release(&conn->reader);
	if (buffer_length(&conn->output) == 0)
		start_draining(conn);
	else
		connection_flush(conn);
}

void connection_reset_after_flush(struct connection *conn)
{
	static const struct linger hard = {.l_onoff = 1, .l_linger = 0};

	connection_close_after_flush(conn);
	if (conn->state != CONNECTION_FLUSHING && conn->state != CONNECTION_DRAINING)
		return;
	conn->reset = true;
	/* Closed, the socket sends a reset, whatever the peer still sends. */
	setsockopt(conn->fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
	if (conn->state == CONNECTION_DRAINING) {
		connection_abort(conn);
		return;
	}
	/* Nothing it sends is read any more: TCP holds it back, at no cost here. */
	want_events(conn, conn->events & ~(uint32_t)EPOLLIN);
}

void connection_abort(struct connection *conn)
{
	if (conn->state == CONNECTION_ABORTED)
		return;
	if (conn->closing_since == 0)
		conn->closing_since = event_now_ms(loop_of(conn));
	conn->state = CONNECTION_ABORTED;
	buffer_release(&conn->output);
	/* Whatever its owner still appends fails at once and costs nothing. */
	conn->output.limit = 0;
	event_defer_cancel(loop_of(conn), &conn->flush);
	/* The socket reports readable at once; on_end then runs from the loop,
	 * never from under the caller's feet. */
	shutdown(conn->fd, SHUT_RDWR);
	want_events(conn, EPOLLIN);
}

bool connection_is_closing(const struct connection *conn)
{
	return conn->state != CONNECTION_OPEN;
}

uint64_t connection_closing_since(const struct connection *conn)
{
	return conn->closing_since;
}

/*
 * Most reads end on a line boundary: they are framed straight from one
 * shared scratch buffer, and only a partial line, or lines held back by
 * backpressure, is copied into the connection's own buffer.
 */
static char read_scratch[CONNECTION_READ_CHUNK];

/* Returns false when the connection has ended (the owner has been told). */
static bool read_input(struct connection *conn)
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
		ssize_t n = read(conn->fd, dst, room);
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
			if ((size_t)n < room || reads == CONNECTION_READS_PER_EVENT)
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
				want_events(conn, (conn->events & ~(uint32_t)EPOLLIN) | EPOLLET);
				return true;
			}
			if (conn->state == CONNECTION_FLUSHING) {
				/* Its last line was a goodbye: answer it before closing. */
				conn->peer_eof = true;
				want_events(conn, EPOLLOUT);
				return true;
			}
		}
		conn->handler->on_end(conn->ctx, n == 0 ? CONNECTION_EOF : CONNECTION_ERROR);
		return false;
	}
}

/* After we started closing, input is only drained to see the peer's EOF. */
static bool discard_input(struct connection *conn)
{
	for (int reads = 1;; reads++) {
		ssize_t n = read(conn->fd, read_scratch, sizeof(read_scratch));
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
			want_events(conn, EPOLLOUT);
			return true;
		}
		conn->handler->on_end(conn->ctx, conn->state == CONNECTION_ABORTED || n < 0
							 ? CONNECTION_ERROR
							 : CONNECTION_DONE);
		return false;
	}
}

static bool write_output(struct connection *conn)
{
	while (buffer_length(&conn->output) > 0) {
		ssize_t n = send(conn->fd, buffer_peek(&conn->output), buffer_length(&conn->output),
				 MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* The kernel is full: the loop tells us when it has room. */
				want_events(conn, conn->events | EPOLLOUT);
				return true;
			}
			conn->handler->on_end(conn->ctx, CONNECTION_ERROR);
			return false;
		}
		buffer_consume(&conn->output, (size_t)n);
		conn->last_progress = event_now_ms(loop_of(conn));
		/* A cap lowered by a reload takes hold once the old queue is down. */
		if (conn->output.limit > conn->output_limit &&
		    buffer_length(&conn->output) <= conn->output_limit / 2)
			conn->output.limit = conn->output_limit;
	}
	if (conn->state == CONNECTION_FLUSHING && (conn->peer_eof || conn->reset)) {
		conn->handler->on_end(conn->ctx, CONNECTION_DONE);
		return false;
	}
	if (conn->state == CONNECTION_FLUSHING) {
		start_draining(conn);
		return true;
	}
	want_events(conn, conn->events & ~(uint32_t)EPOLLOUT);
	buffer_trim_small(&conn->output);
	if (conn->notify_drained) {
		/* Last: the owner may queue more output or resume a sender here. */
		conn->notify_drained = false;
		if (conn->handler->on_drained)
			conn->handler->on_drained(conn->ctx);
	}
	return true;
}

static void connection_ready(int fd, uint32_t events, void *data)
{
	struct connection *conn = data;
	(void)fd;

	if ((events & EPOLLOUT) && conn->state != CONNECTION_ABORTED && !write_output(conn))
		return;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		/* Paused, only a broken connection is worth reading: to end it. */
		if (conn->state == CONNECTION_OPEN && conn->paused &&
		    !(events & (EPOLLHUP | EPOLLERR)))
			return;
		if (conn->state == CONNECTION_OPEN)
			read_input(conn);
		else
			discard_input(conn);
	}
}
