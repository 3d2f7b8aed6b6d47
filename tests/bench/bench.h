/*
 * turnchat-bench: a single-threaded load generator for turnchatd, the pure
 * byte relay it is compared with, and the generator's own ceiling. See
 * BENCHMARKS.md. One header for the tool's few files:
 *   main.c         options, limits, result lines
 *   workload.c     messages and their checks, the phases of the four workloads
 *   pairs.c        opening each pair and checking whom it was paired with
 *   peer.c         one bench-side socket: connect, TLS if asked, read lines, write
 *   resumable.c    the resume capability as a client uses it, and the storm
 *   stats.c        latency histogram, /proc readings of the server
 *   relay_server.c the reference relay (its own subcommand)
 */
#ifndef TURNCHAT_BENCH_H
#define TURNCHAT_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "buffer.h"
#include "event.h"
#include "protocol.h"
#include "transport.h"

enum workload {
	WORKLOAD_PINGPONG, /* turns mode, one message in flight per pair */
	WORKLOAD_FLOOD,    /* free mode, both sides, a window in flight per sender */
	WORKLOAD_IDLE,     /* paired and silent; the server's RSS per connection */
	WORKLOAD_CONNECT,  /* connections per second until PAIRED */
	WORKLOAD_STORM,    /* resumable pingpong; every connection dropped at once, resumed */
};

/* Processes measured together as "the server". */
#define BENCH_PIDS 4

enum target {
	TARGET_TURNCHATD, /* speaks the protocol: /name, /mode, /join, MSG */
	TARGET_RELAY,     /* relay-server: pairs consecutive connections, copies bytes */
	TARGET_DIRECT,    /* no server: each pair is one TCP connection (the ceiling) */
};

struct options {
	enum workload workload;
	enum target target;
	const char *host;
	const char *port;
	unsigned pairs;
	double duration;       /* seconds of sending */
	uint64_t max_messages; /* sending stops after this many in all */
	unsigned per_sender;   /* at most this many from each connection; 0: no limit */
	unsigned window;       /* flood: messages in flight per sender */
	unsigned size;         /* bytes of message text */
	unsigned sources;      /* source addresses 127.0.0.2 and up */
	unsigned setup_window; /* pairs being connected at once */
	double settle;         /* idle: seconds before reading the server's RSS */
	double time_limit;     /* the whole run, setup and drain included */
	bool verbose;

	bool tls;            /* every connection speaks TLS: turnchatd's tls_port, or stunnel */
	bool resume;         /* clients ask for resume: numbered lines, /ack, ACK */
	double reconnect_ms; /* storm: a dropped client tries again after 0.5-1.5x this */
	bool server_drops;   /* storm: the server drops everyone (a restart), not us */
	/* The server's processes, measured as one (stunnel in front of
	 * turnchatd is two); none given: the one listening on the port. */
	pid_t pids[BENCH_PIDS];
	unsigned pid_count;
};

/* Latency in nanoseconds, log-linear: 64 sub-buckets per power of two (~1.6%). */
#define HISTOGRAM_SUB_BITS 6
#define HISTOGRAM_BUCKETS (64 << HISTOGRAM_SUB_BITS)

struct histogram {
	uint64_t count;
	uint64_t max;
	uint64_t buckets[HISTOGRAM_BUCKETS];
};

void histogram_add(struct histogram *h, uint64_t ns);
uint64_t histogram_percentile(const struct histogram *h, double percent);

struct result {
	unsigned connections;
	uint64_t sent, received;
	uint64_t errors;
	double seconds;           /* from the start of sending to the last message received */
	struct histogram latency; /* one-way message latency; connect: connect() to PAIRED */
	double server_cpu;        /* percent of one core; < 0 when unknown */
	double bench_cpu;
	long rss_base_kib, rss_kib; /* the server's VmRSS; < 0 when unknown */
	double storm_s;             /* storm: from the drop until every pair talks again */
	double storm_cpu_us;        /* ... and the server's CPU time per connection meanwhile */
};

int workload_run(const struct options *opt, struct result *result);

/* --- workload.c and pairs.c: one run's state ---------------------------- */

/* PHASE_ACKS: resumable clients wait for the ACKs of their last lines. */
enum phase { PHASE_SETUP, PHASE_SETTLE, PHASE_RUN, PHASE_DRAIN, PHASE_ACKS, PHASE_DONE };

struct bench {
	const struct options *opt;
	struct result *result;
	struct event_loop *loop;
	struct peer *peers; /* [2i] is pair i's side a, [2i + 1] its side b */
	struct sockaddr_storage server;
	socklen_t server_len;
	int listener;           /* the direct target's own listening socket */
	struct tls_config *tls; /* the client side's, when opt->tls */
	enum phase phase;
	unsigned started, paired, dead; /* pairs */
	uint64_t budget;                /* messages that may still be sent */
	uint64_t phase_start, window_start, last_rx;
	long long ticks_start;
	double self_start;
	pid_t pids[BENCH_PIDS];
	unsigned pid_count;
	struct buffer out; /* formatting scratch, reused without freeing */
	/* resumable.c: the last sweep for acknowledgements owed, and the storm */
	uint64_t ack_sweep;
	uint64_t storm_at; /* 0: not yet */
	long long storm_ticks;
	unsigned flowing; /* pairs talking again since the storm */
	unsigned away;    /* connections dropped and not yet resumed */
	unsigned dropped; /* connections dropped in the storm */
};

/* Counts an error; the first few are described on stderr. */
void bench_fail(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes what b->out holds to peer, and empties b->out. */
void bench_write_out(struct bench *b, struct peer *peer);

/* Queues a message numbered seq from peer in b->out (seq == peer->sent for
 * a new one; the caller counts it then). */
void workload_append(struct bench *b, struct peer *peer, uint64_t seq, uint64_t now);

int pairs_resolve(struct bench *b);
int pairs_source(const struct bench *b, const struct peer *peer);
void pairs_start(struct bench *b, unsigned i);
void pairs_paired(struct bench *b, struct peer *peer, const struct server_line *line, uint64_t now);

/* --- peer.c ------------------------------------------------------------ */

struct peer {
	struct bench *bench;
	struct peer *partner;
	struct transport io; /* io.fd < 0: closed; io.tls when speaking TLS */
	struct event_source *source;
	unsigned pair;
	char side; /* 'a' or 'b' */
	bool connected;
	bool paired;
	bool first; /* speaks first (PAIRED ... you) */
	bool out_wanted;
	char name[PROTOCOL_NAME_MAX + 1]; /* /name, or the local address for the relay */
	uint64_t sent, received;          /* messages; also the next sequence numbers */
	/* With --resume: numbered lines read, the last /ack, the last ACK */
	uint64_t numbered, acked_told, acked;
	uint64_t numbered_at; /* when the last one was read */
	char token[PROTOCOL_TOKEN_HEX];
	bool away;     /* storm: dropped, not yet resumed */
	uint8_t tries; /* ... connections made since the drop */
	uint64_t reconnect_at;
	bool back;    /* storm: resumed on this connection */
	bool flowing; /* storm: a message arrived since */
	uint64_t opened_ns;
	struct buffer carry;   /* the start of a line a read cut off */
	struct buffer pending; /* output the socket did not take yet */
	struct framer framer;
};

/* Connects from 127.0.0.(2 + source) when source >= 0, and starts TLS
 * over it when the bench has a TLS config; returns -1 with errno. */
int peer_connect(struct peer *peer, struct event_loop *loop, const struct sockaddr *server,
		 socklen_t len, int source);
/* Takes an already connected socket (the direct target). */
int peer_adopt(struct peer *peer, struct event_loop *loop, int fd);
/* Writes now as far as the socket takes it; the rest goes out when writable. */
int peer_write(struct peer *peer, const char *data, size_t len);
void peer_close(struct peer *peer);
void peer_local_name(struct peer *peer);
uint64_t now_ns(void);

/* Called by peer.c, in workload.c. */
void workload_connected(struct peer *peer);
void workload_line(struct peer *peer, const char *line, size_t len, uint64_t now);
void workload_read_done(struct peer *peer);
void workload_peer_failed(struct peer *peer, const char *why);

/* --- resumable.c ------------------------------------------------------- */

/* /caps resume in the handshake. */
void resumable_handshake(struct bench *b, struct peer *peer);
/* Before peer's messages in b->out: its /ack, when lines came since the last. */
void resumable_ack_first(struct bench *b, struct peer *peer);
/* TOKEN, ACK, RESUMED, CAPS. */
void resumable_line(struct peer *peer, const struct server_line *line, uint64_t now);
/* A message arrived at peer (a numbered line). */
void resumable_numbered(struct peer *peer, uint64_t now);
/* Between batches of events: idle acknowledgements, the storm's steps. */
void resumable_tick(struct bench *b, uint64_t now);
/* The storm is over, or there is none. */
bool resumable_calm(const struct bench *b);
/* The server ended peer's connection: true when that is a drop to come
 * back from (--server-drops), rather than a failure. */
bool resumable_dropped(struct peer *peer, uint64_t now);
bool resumable_all_acked(const struct bench *b);
void resumable_check(struct bench *b);
void resumable_leave(struct bench *b);

/* --- stats.c ----------------------------------------------------------- */

long proc_rss_kib(pid_t pid);
long long proc_cpu_ticks(pid_t pid);
/* The same, summed over several processes; -1 when any is unknown. */
long procs_rss_kib(const pid_t *pids, unsigned count);
long long procs_cpu_ticks(const pid_t *pids, unsigned count);
double self_cpu_seconds(void);
pid_t proc_find_listener(unsigned port);

/* --- relay_server.c ---------------------------------------------------- */

int relay_server_main(int argc, char **argv);

#endif
