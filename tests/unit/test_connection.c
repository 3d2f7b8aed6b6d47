/*
 * Unit tests for connection (src/common/connection.c) on AF_UNIX
 * socketpairs with a real event loop: lines from the peer reaching on_line,
 * output written in one send per pass, the graceful close (everything
 * queued, then EOF, then on_end DONE), the peer closing first (EOF after
 * its last line), pausing and resuming, backlog against the output cap,
 * abort, new limits on a live connection, and since when output has waited.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "connection.h"
#include "event.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* --- Fixture: a loop, one connection and the peer's end of its socket ---- */

#define LOG_CAP (1u << 20)

struct fx {
	struct event_loop *loop;
	struct connection *conn;
	int peer;
	/* What the owner saw: each line then "\n", and the other calls as
	 * "[too-long]\n", "[drained]\n", "[end:done]\n" and so on. */
	char *log;
	size_t log_len;
	int lines;
	int ends;
	enum connection_end end;
	int drained;
	/* Optional owner behaviour on each line. */
	void (*on_line_hook)(struct fx *fx, const char *line, size_t len);
	/* Test memory, freed by teardown even when a check fails. */
	void *mem[4];
};

static void *fx_alloc(struct fx *fx, size_t size)
{
	for (size_t i = 0; i < sizeof(fx->mem) / sizeof(fx->mem[0]); i++) {
		if (fx->mem[i] == NULL) {
			fx->mem[i] = malloc(size);
			assert_non_null(fx->mem[i]);
			return fx->mem[i];
		}
	}
	fail();
	return NULL;
}

static void log_text(struct fx *fx, const char *text, size_t len)
{
	assert_true(fx->log_len + len < LOG_CAP);
	memcpy(fx->log + fx->log_len, text, len);
	fx->log_len += len;
	fx->log[fx->log_len] = '\0';
}

static void log_str(struct fx *fx, const char *text)
{
	log_text(fx, text, strlen(text));
}

static void owner_line(void *ctx, const char *line, size_t len)
{
	struct fx *fx = ctx;
	assert_int_equal(fx->ends, 0); /* never a line after the end */
	fx->lines++;
	log_text(fx, line, len);
	log_str(fx, "\n");
	if (fx->on_line_hook)
		fx->on_line_hook(fx, line, len);
}

static void owner_too_long(void *ctx)
{
	struct fx *fx = ctx;
	log_str(fx, "[too-long]\n");
}

static void owner_drained(void *ctx)
{
	struct fx *fx = ctx;
	fx->drained++;
	log_str(fx, "[drained]\n");
}

/* As every owner does: the end is the last call, then it destroys. */
static void owner_end(void *ctx, enum connection_end end)
{
	struct fx *fx = ctx;
	fx->ends++;
	fx->end = end;
	log_str(fx, end == CONNECTION_DONE  ? "[end:done]\n"
		    : end == CONNECTION_EOF ? "[end:eof]\n"
					    : "[end:error]\n");
	connection_destroy(fx->conn);
	fx->conn = NULL;
}

static const struct connection_handler handler = {
	.on_line = owner_line,
	.on_too_long = owner_too_long,
	.on_drained = owner_drained,
	.on_end = owner_end,
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	fx->peer = -1;
	fx->log = calloc(1, LOG_CAP);
	fx->loop = event_loop_create();
	if (fx->log == NULL || fx->loop == NULL)
		return -1;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	connection_destroy(fx->conn);
	if (fx->peer >= 0)
		close(fx->peer);
	event_loop_destroy(fx->loop);
	for (size_t i = 0; i < sizeof(fx->mem) / sizeof(fx->mem[0]); i++)
		free(fx->mem[i]);
	free(fx->log);
	free(fx);
	return 0;
}

/* A socketpair: our end goes to a new connection, the other is the peer.
 * sndbuf > 0 shrinks our send buffer, so a peer that does not read soon
 * leaves output waiting in the connection. */
static void open_pair(struct fx *fx, int type, size_t max_line, size_t output_limit, int sndbuf)
{
	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	if (sndbuf > 0)
		assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)),
				 0);
	fx->conn = connection_create(fx->loop, sv[0], max_line, output_limit, &handler, fx);
	assert_non_null(fx->conn);
	fx->peer = sv[1];
}

static void peer_send(struct fx *fx, const char *text, size_t len)
{
	assert_int_equal(write(fx->peer, text, len), (ssize_t)len);
}

static void peer_say(struct fx *fx, const char *text)
{
	peer_send(fx, text, strlen(text));
}

static void peer_close(struct fx *fx)
{
	close(fx->peer);
	fx->peer = -1;
}

/* Runs the loop until cond holds, a bounded number of short passes. */
#define PUMP_UNTIL(fx, cond)                                               \
	do {                                                               \
		for (int pump_i_ = 0; pump_i_ < 200 && !(cond); pump_i_++) \
			event_loop_dispatch((fx)->loop, 10);               \
		assert_true(cond);                                         \
	} while (0)

/* A few passes, for checking that nothing happens. */
static void settle(struct fx *fx)
{
	for (int i = 0; i < 3; i++)
		event_loop_dispatch(fx->loop, 2);
}

static int append_str(struct fx *fx, const char *text)
{
	return buffer_append(connection_output(fx->conn), text, strlen(text));
}

static size_t queued(struct fx *fx)
{
	return buffer_length(connection_output(fx->conn));
}

/* Reads what the peer has without waiting: bytes, 0 at EOF, -1 if none yet. */
static ssize_t peer_read(struct fx *fx, char *buf, size_t cap)
{
	ssize_t n = read(fx->peer, buf, cap);
	if (n < 0)
		assert_true(errno == EAGAIN || errno == ECONNRESET);
	return n;
}

/* Lets the loop write while the peer reads, until want bytes came (and, if
 * until_eof, EOF after them). Returns the bytes read. */
static size_t peer_collect(struct fx *fx, char *out, size_t cap, bool until_eof, bool *eof)
{
	size_t got = 0;
	*eof = false;
	for (int i = 0; i < 5000 && !*eof && (until_eof || got < cap); i++) {
		event_loop_dispatch(fx->loop, 1);
		for (;;) {
			char scratch[65536];
			ssize_t n = peer_read(fx, scratch, sizeof(scratch));
			if (n == 0)
				*eof = true;
			if (n <= 0)
				break;
			assert_true(got + (size_t)n <= cap);
			memcpy(out + got, scratch, (size_t)n);
			got += (size_t)n;
		}
	}
	return got;
}

/* --- lines in ----------------------------------------------------------- */

static void test_lines_reach_on_line(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);

	peer_say(fx, "hello\nworld\r\npart");
	PUMP_UNTIL(fx, fx->lines == 2);
	assert_string_equal(fx->log, "hello\nworld\n");
	settle(fx);
	assert_int_equal(fx->lines, 2);
	peer_say(fx, "ial\n");
	PUMP_UNTIL(fx, fx->lines == 3);
	assert_string_equal(fx->log, "hello\nworld\npartial\n");

	/* More than one read's worth in one go: lines cut by the read size
	 * arrive whole and in order. */
	char *burst = fx_alloc(fx, 400 * 100 + 1);
	size_t len = 0;
	for (int i = 0; i < 400; i++) {
		/* "line NNN " then x up to 99 bytes, then LF: 100 bytes a line. */
		len += (size_t)sprintf(burst + len, "line %03d ", i);
		memset(burst + len, 'x', 90);
		len += 90;
		burst[len++] = '\n';
	}
	assert_int_equal(len, 40000);
	fx->log_len = 0;
	peer_send(fx, burst, len);
	PUMP_UNTIL(fx, fx->lines == 403);
	assert_int_equal(fx->log_len, len);
	assert_memory_equal(fx->log, burst, len);

	/* An over-long line is refused once; the connection goes on. */
	fx->log_len = 0;
	char longline[1500];
	memset(longline, 'y', sizeof(longline));
	peer_send(fx, longline, sizeof(longline));
	peer_say(fx, "\nafter\n");
	PUMP_UNTIL(fx, fx->lines == 404);
	assert_string_equal(fx->log, "[too-long]\nafter\n");
	assert_int_equal(fx->ends, 0);
	assert_false(connection_is_closing(fx->conn));
}

static void test_peer_close_first_gives_eof_after_last_line(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);

	/* The last line has no LF: it still counts, before the end. */
	peer_say(fx, "one\ntwo");
	peer_close(fx);
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_int_equal(fx->end, CONNECTION_EOF);
	assert_string_equal(fx->log, "one\ntwo\n[end:eof]\n");
	assert_null(fx->conn);
}

static void test_peer_half_close_gives_eof(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);

	peer_say(fx, "only\n");
	assert_int_equal(shutdown(fx->peer, SHUT_WR), 0);
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_int_equal(fx->end, CONNECTION_EOF);
	assert_string_equal(fx->log, "only\n[end:eof]\n");
}

/* --- output ------------------------------------------------------------- */

static void test_flush_is_one_write_at_next_dispatch(void **state)
{
	struct fx *fx = *state;
	/* SOCK_SEQPACKET keeps each send a record of its own: the peer sees
	 * exactly how many writes the connection made. */
	open_pair(fx, SOCK_SEQPACKET, 1000, 65536, 0);
	char buf[256];

	assert_int_equal(append_str(fx, "a\n"), 0);
	connection_flush(fx->conn);
	assert_int_equal(append_str(fx, "bb\n"), 0);
	connection_flush(fx->conn);
	assert_int_equal(append_str(fx, "ccc\n"), 0);
	connection_flush(fx->conn);
	/* Nothing is written before the loop's next pass. */
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), -1);
	assert_int_equal(queued(fx), 9);

	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(queued(fx), 0);
	ssize_t n = peer_read(fx, buf, sizeof(buf));
	assert_int_equal(n, 9);
	assert_memory_equal(buf, "a\nbb\nccc\n", 9);
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), -1);

	/* A flush with nothing queued writes nothing; neither does a pass
	 * without a flush. */
	connection_flush(fx->conn);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), -1);
	assert_int_equal(append_str(fx, "later\n"), 0);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), -1);
	connection_flush(fx->conn);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), 6);
	assert_memory_equal(buf, "later\n", 6);
	assert_int_equal(fx->ends, 0);
}

static void test_notify_drained(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	char buf[64];

	connection_notify_drained(fx->conn);
	assert_int_equal(append_str(fx, "x\n"), 0);
	connection_flush(fx->conn);
	assert_int_equal(fx->drained, 0);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(fx->drained, 1);
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), 2);
	/* Once per request. */
	assert_int_equal(append_str(fx, "y\n"), 0);
	connection_flush(fx->conn);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(fx->drained, 1);
}

/* --- the graceful close ------------------------------------------------- */

static void test_close_after_flush_sends_all_then_eof_then_done(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 1 << 20, 4096);

	/* Far more than the socket takes at once. */
	const size_t total = 300000;
	char *sent = fx_alloc(fx, total), *got = fx_alloc(fx, total);
	for (size_t i = 0; i < total; i++)
		sent[i] = (char)('a' + (i * 7) % 26);
	for (size_t off = 0; off < total; off += 1000)
		assert_int_equal(buffer_append(connection_output(fx->conn), sent + off, 1000), 0);
	connection_flush(fx->conn);
	event_loop_dispatch(fx->loop, 0);
	assert_true(queued(fx) > 0); /* the kernel did not take it all */

	uint64_t before = event_now_ms(fx->loop);
	connection_close_after_flush(fx->conn);
	assert_true(connection_is_closing(fx->conn));
	assert_true(connection_closing_since(fx->conn) >= before);
	/* What the peer says from now on is not taken as lines. */
	peer_say(fx, "late\n");

	bool eof;
	size_t n = peer_collect(fx, got, total, true, &eof);
	assert_true(eof);
	assert_int_equal(n, total);
	assert_memory_equal(got, sent, total);
	/* Our side is half-closed and waits for the peer's EOF. */
	assert_int_equal(fx->ends, 0);
	assert_non_null(fx->conn);

	peer_close(fx);
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_int_equal(fx->end, CONNECTION_DONE);
	assert_string_equal(fx->log, "[end:done]\n");
}

static void test_close_after_flush_with_nothing_queued(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	char buf[64];

	connection_close_after_flush(fx->conn);
	/* Nothing to write: the half-close is at once. */
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), 0);
	settle(fx);
	assert_int_equal(fx->ends, 0);
	/* Closing twice changes nothing. */
	connection_close_after_flush(fx->conn);
	peer_close(fx);
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_int_equal(fx->end, CONNECTION_DONE);
}

static void say_goodbye(struct fx *fx, const char *line, size_t len)
{
	if (len == 3 && memcmp(line, "bye", 3) == 0) {
		assert_int_equal(append_str(fx, "ok bye\n"), 0);
		connection_flush(fx->conn);
		connection_close_after_flush(fx->conn);
	}
}

static void test_goodbye_answered_after_peer_eof(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	fx->on_line_hook = say_goodbye;

	/* The peer's last line, without LF, then its half-close: the answer
	 * still goes out, then our close completes. */
	peer_say(fx, "hi\nbye");
	assert_int_equal(shutdown(fx->peer, SHUT_WR), 0);
	char got[64];
	bool eof;
	size_t n = peer_collect(fx, got, sizeof(got), true, &eof);
	assert_true(eof);
	assert_int_equal(n, 7);
	assert_memory_equal(got, "ok bye\n", 7);
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_int_equal(fx->end, CONNECTION_DONE);
	assert_string_equal(fx->log, "hi\nbye\n[end:done]\n");
}

/* --- pausing ------------------------------------------------------------ */

static void pause_on_first(struct fx *fx, const char *line, size_t len)
{
	(void)line;
	(void)len;
	if (fx->lines == 1)
		connection_pause_reading(fx->conn, true);
}

static void test_pause_holds_lines_resume_delivers(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	fx->on_line_hook = pause_on_first;

	/* Paused by the owner from its first line, in the middle of a read. */
	peer_say(fx, "a\nb\nc\n");
	PUMP_UNTIL(fx, fx->lines == 1);
	settle(fx);
	assert_string_equal(fx->log, "a\n");
	/* The peer goes on sending: still nothing. */
	peer_say(fx, "d\n");
	settle(fx);
	assert_string_equal(fx->log, "a\n");

	/* Resumed: the held lines come at once, from within the call. */
	connection_pause_reading(fx->conn, false);
	assert_string_equal(fx->log, "a\nb\nc\n");
	/* And what waited in the socket on the next pass. */
	PUMP_UNTIL(fx, fx->lines == 4);
	assert_string_equal(fx->log, "a\nb\nc\nd\n");

	/* Paused with nothing held: the socket is not even read. */
	connection_pause_reading(fx->conn, true);
	connection_pause_reading(fx->conn, true); /* twice is the same */
	peer_say(fx, "e\nf");
	settle(fx);
	assert_int_equal(fx->lines, 4);
	connection_pause_reading(fx->conn, false);
	PUMP_UNTIL(fx, fx->lines == 5);
	peer_say(fx, "\n");
	PUMP_UNTIL(fx, fx->lines == 6);
	assert_string_equal(fx->log, "a\nb\nc\nd\ne\nf\n");
	assert_int_equal(fx->ends, 0);
}

/* Known bug (connection_ready/read_input): while paused, a peer that sends
 * lines and then closes its socket makes EPOLLHUP, which is read at once:
 * the held lines are never delivered and on_end(CONNECTION_EOF) comes while
 * paused. A peer that only half-closes (SHUT_WR) gets its lines delivered
 * on resume, then EOF, so the two ways of hanging up differ. */
static void test_paused_lines_survive_peer_close(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	fx->on_line_hook = pause_on_first;

	peer_say(fx, "a\nb\nlast\n");
	PUMP_UNTIL(fx, fx->lines == 1);
	peer_close(fx);
	settle(fx);
	assert_string_equal(fx->log, "a\n"); /* held lines first */
	assert_int_equal(fx->ends, 0);
	connection_pause_reading(fx->conn, false);
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_string_equal(fx->log, "a\nb\nlast\n[end:eof]\n");
}

static void test_paused_lines_survive_peer_half_close(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	fx->on_line_hook = pause_on_first;

	peer_say(fx, "a\nb\nlast");
	PUMP_UNTIL(fx, fx->lines == 1);
	assert_int_equal(shutdown(fx->peer, SHUT_WR), 0);
	settle(fx);
	assert_int_equal(fx->ends, 0);
	assert_string_equal(fx->log, "a\n");
	connection_pause_reading(fx->conn, false);
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_string_equal(fx->log, "a\nb\nlast\n[end:eof]\n");
}

/* --- backlog and stalls ------------------------------------------------- */

static void test_backlogged_past_half_the_cap(void **state)
{
	struct fx *fx = *state;
	const size_t cap = 16384;
	open_pair(fx, SOCK_STREAM, 1000, cap, 4096);
	char chunk[512];
	memset(chunk, 'z', sizeof(chunk));

	/* The rule itself, before anything is written: more than half. */
	assert_false(connection_backlogged(fx->conn));
	for (size_t i = 0; i < cap / 2 / sizeof(chunk); i++)
		assert_int_equal(buffer_append(connection_output(fx->conn), chunk, sizeof(chunk)), 0);
	assert_int_equal(queued(fx), cap / 2);
	assert_false(connection_backlogged(fx->conn));
	assert_int_equal(buffer_append(connection_output(fx->conn), "z", 1), 0);
	assert_true(connection_backlogged(fx->conn));

	/* A peer that does not read: the kernel takes a little, the rest waits
	 * in the connection until more than half the cap is queued. */
	size_t appended = cap / 2 + 1;
	connection_flush(fx->conn);
	event_loop_dispatch(fx->loop, 0);
	for (int i = 0; i < 200 && !connection_backlogged(fx->conn); i++) {
		assert_int_equal(buffer_append(connection_output(fx->conn), chunk, sizeof(chunk)), 0);
		appended += sizeof(chunk);
		connection_flush(fx->conn);
		event_loop_dispatch(fx->loop, 0);
		assert_int_equal(connection_backlogged(fx->conn), queued(fx) > cap / 2);
	}
	assert_true(connection_backlogged(fx->conn));
	assert_true(queued(fx) > cap / 2);
	assert_true(connection_stalled_since(fx->conn) > 0);
	/* Filling up to the cap, then refused. */
	while (buffer_room(connection_output(fx->conn)) > 0) {
		size_t n = buffer_room(connection_output(fx->conn));
		if (n > sizeof(chunk))
			n = sizeof(chunk);
		assert_int_equal(buffer_append(connection_output(fx->conn), chunk, n), 0);
		appended += n;
	}
	errno = 0;
	assert_int_equal(buffer_append(connection_output(fx->conn), "z", 1), -1);
	assert_int_equal(errno, ENOBUFS);
	connection_flush(fx->conn);

	/* The peer reads it all: the backlog clears. */
	char *got = fx_alloc(fx, appended);
	bool eof;
	assert_int_equal(peer_collect(fx, got, appended, false, &eof), appended);
	PUMP_UNTIL(fx, queued(fx) == 0);
	assert_false(connection_backlogged(fx->conn));
	assert_int_equal(connection_stalled_since(fx->conn), 0);
	assert_int_equal(fx->ends, 0);
}

static void test_stalled_since(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 1 << 16, 4096);
	char buf[65536];

	assert_int_equal(connection_stalled_since(fx->conn), 0);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(append_str(fx, "small\n"), 0);
	connection_flush(fx->conn);
	assert_int_equal(connection_stalled_since(fx->conn), event_now_ms(fx->loop));
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(queued(fx), 0);
	assert_int_equal(connection_stalled_since(fx->conn), 0);
	assert_int_equal(peer_read(fx, buf, sizeof(buf)), 6);

	/* More than the socket takes: output waits, and while none of it moves
	 * the time it started waiting stays put. */
	memset(buf, 'q', sizeof(buf));
	assert_int_equal(buffer_append(connection_output(fx->conn), buf, 60000), 0);
	connection_flush(fx->conn);
	event_loop_dispatch(fx->loop, 0);
	assert_true(queued(fx) > 0);
	uint64_t since = connection_stalled_since(fx->conn);
	assert_true(since > 0);
	assert_true(since <= event_now_ms(fx->loop));
	uint64_t start = mono_ms();
	while (mono_ms() < start + 3)
		event_loop_dispatch(fx->loop, 1);
	assert_true(event_now_ms(fx->loop) > since);
	assert_int_equal(connection_stalled_since(fx->conn), since);

	/* Once the peer reads, it moves, then waits no more. */
	bool eof;
	assert_int_equal(peer_collect(fx, buf, 60000, false, &eof), 60000);
	PUMP_UNTIL(fx, queued(fx) == 0);
	assert_int_equal(connection_stalled_since(fx->conn), 0);
}

/* --- abort -------------------------------------------------------------- */

static void test_abort(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	char buf[64];

	assert_int_equal(append_str(fx, "never sent\n"), 0);
	connection_flush(fx->conn);
	connection_abort(fx->conn);
	/* Not from within abort: the owner may still use it until the loop. */
	assert_int_equal(fx->ends, 0);
	assert_non_null(fx->conn);
	assert_true(connection_is_aborted(fx->conn));
	assert_true(connection_is_closing(fx->conn));
	assert_true(connection_closing_since(fx->conn) > 0);
	assert_int_equal(queued(fx), 0);
	errno = 0;
	assert_int_equal(append_str(fx, "x"), -1);
	assert_int_equal(errno, ENOBUFS);
	connection_flush(fx->conn);
	connection_abort(fx->conn); /* twice is the same */
	connection_set_limits(fx->conn, 1000, 65536);
	assert_int_equal(append_str(fx, "x"), -1); /* a reload does not revive it */

	PUMP_UNTIL(fx, fx->ends == 1);
	assert_int_equal(fx->end, CONNECTION_ERROR);
	assert_string_equal(fx->log, "[end:error]\n");
	/* The peer got nothing of the queued output. */
	ssize_t n = peer_read(fx, buf, sizeof(buf));
	assert_true(n <= 0);
	settle(fx);
	assert_int_equal(fx->ends, 1);
}

static void abort_on_bad(struct fx *fx, const char *line, size_t len)
{
	if (len == 3 && memcmp(line, "bad", 3) == 0)
		connection_abort(fx->conn);
}

static void test_abort_from_on_line(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 65536, 0);
	fx->on_line_hook = abort_on_bad;

	peer_say(fx, "good\nbad\nmore\n");
	PUMP_UNTIL(fx, fx->ends == 1);
	assert_int_equal(fx->end, CONNECTION_ERROR);
	assert_string_equal(fx->log, "good\nbad\n[end:error]\n");
}

/* --- new limits --------------------------------------------------------- */

static void test_lowered_max_line_under_partial_line(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 100, 65536, 0);
	char partial[50];
	memset(partial, 'p', sizeof(partial));

	peer_send(fx, partial, sizeof(partial));
	settle(fx);
	assert_int_equal(fx->log_len, 0);

	connection_set_limits(fx->conn, 20, 65536);
	assert_string_equal(fx->log, "[too-long]\n");
	/* Its rest, up to the LF, is dropped; the connection goes on. */
	peer_say(fx, "tail\nnext\n");
	PUMP_UNTIL(fx, fx->lines == 1);
	assert_string_equal(fx->log, "[too-long]\nnext\n");
	assert_int_equal(fx->ends, 0);
	assert_false(connection_is_closing(fx->conn));
	/* The new limit holds. */
	peer_say(fx, "012345678901234567890\n01234567890123456789\n");
	PUMP_UNTIL(fx, fx->lines == 2);
	assert_string_equal(fx->log, "[too-long]\nnext\n[too-long]\n01234567890123456789\n");
}

static void test_output_cap_raised_and_lowered(void **state)
{
	struct fx *fx = *state;
	open_pair(fx, SOCK_STREAM, 1000, 100, 0);
	char block[1000];
	memset(block, 'o', sizeof(block));
	struct buffer *out = connection_output(fx->conn);

	assert_int_equal(buffer_append(out, block, 100), 0);
	errno = 0;
	assert_int_equal(buffer_append(out, block, 1), -1);
	assert_int_equal(errno, ENOBUFS);

	/* Raised above a full queue: appends succeed again, up to the new cap. */
	connection_set_limits(fx->conn, 1000, 1000);
	assert_int_equal(buffer_append(out, block, 900), 0);
	assert_int_equal(buffer_append(out, block, 1), -1);
	connection_flush(fx->conn);
	char got[1000];
	bool eof;
	assert_int_equal(peer_collect(fx, got, sizeof(got), false, &eof), 1000);
	PUMP_UNTIL(fx, queued(fx) == 0);

	/* Lowered under a queue: it stays and still has room for a goodbye;
	 * once drained, the new cap holds. */
	assert_int_equal(buffer_append(out, block, 800), 0);
	connection_set_limits(fx->conn, 1000, 40);
	assert_int_equal(queued(fx), 800);
	assert_int_equal(buffer_append(out, "bye\n", 4), 0);
	connection_flush(fx->conn);
	assert_int_equal(peer_collect(fx, got, 804, false, &eof), 804);
	PUMP_UNTIL(fx, queued(fx) == 0);
	assert_int_equal(buffer_append(out, block, 41), -1);
	assert_int_equal(buffer_append(out, block, 40), 0);
	assert_int_equal(fx->ends, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines_reach_on_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_close_first_gives_eof_after_last_line,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_peer_half_close_gives_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_is_one_write_at_next_dispatch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_notify_drained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_after_flush_sends_all_then_eof_then_done,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_after_flush_with_nothing_queued, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_goodbye_answered_after_peer_eof, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pause_holds_lines_resume_delivers, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_paused_lines_survive_peer_half_close, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_backlogged_past_half_the_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stalled_since, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abort_from_on_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lowered_max_line_under_partial_line, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_output_cap_raised_and_lowered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_paused_lines_survive_peer_close, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
