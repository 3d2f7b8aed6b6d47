/*
 * connection: the one module that reads and writes sockets. It turns bytes
 * into lines (through protocol_frame) for its owner, queues the owner's
 * output, writes it when the socket is ready, and closes gracefully: all
 * queued output first, then a half-close, then the peer's EOF.
 */
#ifndef TURNCHAT_CONNECTION_H
#define TURNCHAT_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"
#include "event.h"

enum connection_end {
	CONNECTION_DONE,  /* our graceful close finished */
	CONNECTION_EOF,   /* the peer closed first */
	CONNECTION_ERROR, /* reset, or any other socket error (errno says which) */
};

struct tls;

struct connection_handler {
	/* Optional: the first bytes read, before they are framed. Returning
	 * false means the owner ended or aborted the connection over them. */
	bool (*on_first_bytes)(void *ctx, const char *data, size_t len);
	void (*on_line)(void *ctx, const char *line, size_t len);
	void (*on_too_long)(void *ctx);
	/* All queued output has been written, after connection_notify_drained. */
	void (*on_drained)(void *ctx);
	/* Last call for this connection; the owner then calls connection_destroy. */
	void (*on_end)(void *ctx, enum connection_end end);
};

struct connection;

/* Takes over fd (non-blocking) unless it returns NULL (the caller then still
 * owns it). output_limit caps what may wait unsent. */
struct connection *connection_create(struct event_loop *loop, int fd, size_t max_line,
				     size_t output_limit, const struct connection_handler *handler,
				     void *ctx);
void connection_destroy(struct connection *conn);

/* Encrypts the connection, before anything is written or read: it takes
 * over tls (tls.h), whose handshake then goes on with the first I/O. */
void connection_use_tls(struct connection *conn, struct tls *tls);
/* Its TLS, for the owner's questions (tls.h); NULL when in plain text. */
struct tls *connection_tls(const struct connection *conn);
/* True while its TLS handshake has not finished (never in plain text). */
bool connection_handshaking(const struct connection *conn);
/* After an error end: why TLS failed, in words; NULL in plain text. */
const char *connection_tls_error(const struct connection *conn);
/* True when the TLS peer turned out to speak plain text. */
bool connection_got_plaintext(const struct connection *conn);
/* Writes data at once, unqueued, unencrypted and unchecked: the last word
 * to a peer that does not speak TLS where TLS was expected. */
void connection_send_now(struct connection *conn, const char *data, size_t len);

/*
 * Puts new limits in force (a reload). A partial line already longer than
 * the new max_line is refused through on_too_long and its rest discarded;
 * output already queued beyond a lowered cap stays and is written, and the
 * cap takes hold once the queue has drained to half of it.
 */
void connection_set_limits(struct connection *conn, size_t max_line, size_t output_limit);

/* Where the owner appends its lines; call connection_flush afterwards. */
struct buffer *connection_output(struct connection *conn);
/* Has the loop write the output at the end of this pass: one send however
 * many lines the pass queued; only what the kernel does not take at once
 * waits for EPOLLOUT. */
void connection_flush(struct connection *conn);
/* Gives back the buffers' memory if both are empty: idle connections cost little. */
void connection_trim(struct connection *conn);

/* Reads no more lines; writes what is queued, then closes (on_end DONE). */
void connection_close_after_flush(struct connection *conn);
/* As connection_close_after_flush, but reads nothing more at all and ends
 * with a reset once the output is written: for a peer that sends without
 * end, whose input is not worth draining. */
void connection_reset_after_flush(struct connection *conn);
/* Drops the connection now, queued output too; on_end comes from the loop. */
void connection_abort(struct connection *conn);
/* Its events go to ctx from now on (the same handler): a person who came
 * back on a new connection takes it over from the session that took it in. */
void connection_set_owner(struct connection *conn, void *ctx);
/* Aborts the connection for an owner that forgets it now: the connection
 * frees itself once the loop has ended it. */
void connection_disown(struct connection *conn);

/* Stops taking lines (and reading) until resumed: backpressure. Resuming
 * delivers the lines already read at once. */
void connection_pause_reading(struct connection *conn, bool paused);
/* From on_line: this line is not taken now. Reading pauses, and the line
 * comes again, first, once connection_pause_reading(conn, false). */
void connection_hold_line(struct connection *conn);
/* True when more than half of its output cap waits: it is not keeping up. */
bool connection_backlogged(const struct connection *conn);
/* True once aborted: nothing appended to its output is ever written. */
bool connection_is_aborted(const struct connection *conn);
/* Asks for one on_drained call when the output queue is next empty. */
void connection_notify_drained(struct connection *conn);
/* Since when output has waited without any of it being written; 0 if none waits. */
uint64_t connection_stalled_since(const struct connection *conn);

bool connection_is_closing(const struct connection *conn);
/* Milliseconds (event_now_ms) when closing began, 0 while open. */
uint64_t connection_closing_since(const struct connection *conn);

#endif
