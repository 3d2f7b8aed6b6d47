/*
 * connection: socket I/O for the daemon's sessions and the client's chat
 * module, which create, feed and end them. Called from the event loop, for
 * readiness and for the deferred write of each pass. Writes and closes
 * here; connection_input.c reads and hands the owner whole lines; both move
 * bytes through transport.c, in plain text or TLS.
 */
#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "connection_impl.h"

static void connection_ready(int fd, uint32_t events, void *data);

/* The loop runs this once per pass for each connection given output: one
 * send however many lines the pass queued. A failed write ends the
 * connection through on_end; nothing here touches it afterwards. Input
 * TLS decrypted ahead, which epoll cannot report, is read here too. */
static void flush_deferred(struct event_deferred *node)
{
	struct connection *conn = (struct connection *)((char *)node -
							offsetof(struct connection, flush));
	if (connection_write_output(conn) && conn->state == CONNECTION_OPEN && !conn->paused &&
	    transport_pending(&conn->io))
		connection_read_input(conn);
}

/* Bytes waiting inside TLS are read in the next pass, as epoll would. */
void connection_read_pending_later(struct connection *conn)
{
	if (transport_pending(&conn->io) && !conn->flush.queued)
		event_defer(event_source_loop(conn->source), &conn->flush);
}

static struct event_loop *loop_of(const struct connection *conn)
{
	return event_source_loop(conn->source);
}

struct connection *connection_create(struct event_loop *loop, int fd, size_t max_line,
				     size_t output_limit, const struct connection_handler *handler,
				     void *ctx)
{
	struct connection *conn = calloc(1, sizeof(*conn));
	if (conn == NULL)
		return NULL;
	conn->io.fd = fd;
	conn->flush.fn = flush_deferred;
	assert(output_limit <= UINT32_MAX);
	conn->output_limit = (uint32_t)output_limit;
	conn->handler = handler;
	conn->ctx = ctx;
	conn->events = EPOLLIN;
	line_reader_init(&conn->reader, max_line, CONNECTION_READ_CHUNK, &connection_reader_handler);
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
	transport_close(&conn->io);
	line_reader_release(&conn->reader);
	buffer_release(&conn->output);
	free(conn);
}

void connection_use_tls(struct connection *conn, struct tls *tls)
{
	conn->io.tls = tls;
}

struct tls *connection_tls(const struct connection *conn)
{
	return conn->io.tls;
}

bool connection_handshaking(const struct connection *conn)
{
	return transport_handshaking(&conn->io);
}

const char *connection_tls_error(const struct connection *conn)
{
	return transport_tls_error(&conn->io);
}

bool connection_got_plaintext(const struct connection *conn)
{
	return transport_got_plaintext(&conn->io);
}

void connection_send_now(struct connection *conn, const char *data, size_t len)
{
	char discard[4096];
	/* What it sent and nobody read would turn the close into a reset,
	 * which may destroy these words before the peer reads them. */
	for (int i = 0; i < 16 && recv(conn->io.fd, discard, sizeof(discard), MSG_DONTWAIT) > 0; i++)
		;
	(void)!send(conn->io.fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void connection_set_limits(struct connection *conn, size_t max_line, size_t output_limit)
{
	size_t queued = buffer_length(&conn->output);

	assert(output_limit <= UINT32_MAX);
	conn->output_limit = (uint32_t)output_limit;
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

void connection_want_events(struct connection *conn, uint32_t events)
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
		connection_want_events(conn, conn->events & ~(uint32_t)EPOLLIN);
		return;
	}
	/* Held lines go first; an end that came meanwhile is still readable,
	 * and the loop reports it again. */
	connection_want_events(conn, (conn->events & ~(uint32_t)EPOLLET) | EPOLLIN);
	line_reader_deliver(&conn->reader, false);
	connection_read_pending_later(conn);
}

void connection_hold_line(struct connection *conn)
{
	conn->reader.hold = true;
	connection_pause_reading(conn, true);
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
	transport_shutdown_write(&conn->io);
	connection_want_events(conn, EPOLLIN);
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
	setsockopt(conn->io.fd, SOL_SOCKET, SO_LINGER, &hard, sizeof(hard));
	if (conn->state == CONNECTION_DRAINING) {
		connection_abort(conn);
		return;
	}
	/* Nothing it sends is read any more: TCP holds it back, at no cost here. */
	connection_want_events(conn, conn->events & ~(uint32_t)EPOLLIN);
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
	shutdown(conn->io.fd, SHUT_RDWR);
	connection_want_events(conn, EPOLLIN);
}

void connection_set_owner(struct connection *conn, void *ctx)
{
	conn->ctx = ctx;
}

/* A disowned connection's only event: its end, when it frees itself. */
static void disowned_end(void *ctx, enum connection_end end)
{
	(void)end;
	connection_destroy(ctx);
}

static const struct connection_handler disowned_handler = {.on_end = disowned_end};

void connection_disown(struct connection *conn)
{
	conn->handler = &disowned_handler;
	conn->ctx = conn;
	connection_abort(conn);
}

bool connection_is_closing(const struct connection *conn)
{
	return conn->state != CONNECTION_OPEN;
}

uint64_t connection_closing_since(const struct connection *conn)
{
	return conn->closing_since;
}

bool connection_write_output(struct connection *conn)
{
	while (buffer_length(&conn->output) > 0) {
		ssize_t n = transport_send(&conn->io, buffer_peek(&conn->output),
					   buffer_length(&conn->output));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				/* The kernel is full, or TLS waits for input (EPOLLIN is
				 * on while open): the loop tells us when to go on. */
				if (!conn->io.write_wants_read)
					connection_want_events(conn, conn->events | EPOLLOUT);
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
	if (!conn->io.read_wants_write)
		connection_want_events(conn, conn->events & ~(uint32_t)EPOLLOUT);
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

	if ((events & EPOLLOUT) && conn->state != CONNECTION_ABORTED &&
	    !connection_write_output(conn))
		return;
	/* A TLS read that had to write first goes on now the socket takes it. */
	if ((events & EPOLLOUT) && conn->io.read_wants_write)
		events |= EPOLLIN;
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		/* Paused, only a broken connection is worth reading: to end it. */
		if (conn->state == CONNECTION_OPEN && conn->paused &&
		    !(events & (EPOLLHUP | EPOLLERR)))
			return;
		bool open = conn->state == CONNECTION_OPEN ? connection_read_input(conn)
							   : connection_discard_input(conn);
		/* A TLS write that waited for the handshake's input goes on. */
		if (open && conn->io.write_wants_read && conn->state != CONNECTION_ABORTED)
			connection_write_output(conn);
	}
}
