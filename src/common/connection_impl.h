/*
 * connection_impl: what connection.c and connection_input.c share about a
 * connection; nobody else includes it. connection.c owns a connection's
 * life, its output and its closing; connection_input.c reads and frames.
 */
#ifndef TURNCHAT_CONNECTION_IMPL_H
#define TURNCHAT_CONNECTION_IMPL_H

#include "connection.h"
#include "line_reader.h"
#include "transport.h"

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

/* One per connection: kept small, ordered, and the cap in 32 bits (max_queue is at most
 * 64 MiB), so that it fits malloc's 208-byte chunk (an idle connection's
 * 0.5 KiB in all is a benchmark target). */
struct connection {
	struct transport io;         /* the socket, and TLS over it if any */
	struct event_source *source; /* and, through it, the loop */
	struct line_reader reader;   /* input not yet handed out as lines */
	struct buffer output;
	uint64_t last_progress; /* when output last moved, or started to wait */
	uint64_t closing_since;
	struct event_deferred flush; /* output to write at the end of this pass */
	const struct connection_handler *handler;
	void *ctx;
	uint32_t output_limit; /* the cap in force; output.limit exceeds it only
				  until a queue from before a lowering drains */
	uint32_t events;
	uint8_t state; /* enum connection_state */
	bool peer_eof; /* the peer half-closed; it may still read what we owe it */
	bool paused;   /* backpressure: no lines delivered, nothing read */
	bool reset;    /* closing without reading: a reset once the output is out */
	bool notify_drained;
	bool read_any; /* on_first_bytes has been asked */
};

/* connection_input.c: each returns false when the connection has ended
 * (its owner has been told and may have freed it). */
bool connection_read_input(struct connection *conn);
bool connection_discard_input(struct connection *conn);
extern const struct line_reader_handler connection_reader_handler;

/* connection.c */
void connection_want_events(struct connection *conn, uint32_t events);
/* Bytes waiting inside TLS are read in the next pass, as epoll would. */
void connection_read_pending_later(struct connection *conn);
bool connection_write_output(struct connection *conn);

#endif
