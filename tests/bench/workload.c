/*
 * workload: called by main with the options; drives peer.c's sockets through
 * one run: set up the pairs, send, drain, check. Every message names its
 * sender and carries a sequence number and a send time, so the receiving end
 * proves each one arrived once, in order, at the right partner, and measures
 * its one-way latency; the run ends with a count of what was sent against
 * what arrived. All phases are bounded by the options' time limit.
 */
#include "bench.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_TLS
#include "tls.h"
#endif

/* How long in-flight messages may take to arrive once sending stops. */
#define DRAIN_LIMIT_NS 5000000000u
/* Errors described on stderr; the rest are only counted. */
#define ERRORS_SHOWN 20

void bench_fail(struct bench *b, const char *fmt, ...)
{
	if (b->result->errors++ < ERRORS_SHOWN) {
		va_list ap;
		va_start(ap, fmt);
		fputs("turnchat-bench: error: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
}

static bool can_send(struct bench *b, struct peer *peer)
{
	return b->phase == PHASE_RUN && b->budget > 0 &&
	       (b->opt->per_sender == 0 || peer->sent < b->opt->per_sender);
}

static size_t put_number(char *p, uint64_t v)
{
	char digits[20];
	size_t n = 0;
	do {
		digits[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v > 0);
	for (size_t i = 0; i < n; i++)
		p[i] = digits[n - 1 - i];
	return n;
}

/*
 * Queues one message "SEQ SENT_NS PAIRSIDE xxx..." in b->out. Against the
 * relay the sender writes what turnchatd would deliver, "MSG " and all, so
 * the receiving side runs the same code for both, and both senders the same
 * formatter. A resumable client says a message again after a resume as it
 * was, but for its time: it keeps no copy, since the text follows from seq.
 */
void workload_append(struct bench *b, struct peer *peer, uint64_t seq, uint64_t now)
{
	char text[4 + 4096];
	size_t start = b->opt->target == TARGET_TURNCHATD ? 4 : 0;
	memcpy(text, "MSG ", 4);
	size_t len = 4 + put_number(text + 4, seq);
	text[len++] = ' ';
	len += put_number(text + len, now);
	text[len++] = ' ';
	len += put_number(text + len, peer->pair);
	text[len++] = peer->side;
	if (len - 4 < b->opt->size) {
		text[len++] = ' ';
		memset(text + len, 'x', b->opt->size + 4 - len);
		len = b->opt->size + 4;
	}
	if (protocol_append_message(&b->out, text + start, len - start) < 0)
		bench_fail(b, "output scratch full");
}

static void append_message(struct bench *b, struct peer *peer, uint64_t now)
{
	workload_append(b, peer, peer->sent, now);
	peer->sent++;
	b->result->sent++;
	b->budget--;
}

void bench_write_out(struct bench *b, struct peer *peer)
{
	if (buffer_length(&b->out) > 0 &&
	    peer_write(peer, buffer_peek(&b->out), buffer_length(&b->out)) < 0)
		bench_fail(b, "pair %u side %c: write: %s", peer->pair, peer->side, strerror(errno));
	b->out.start = b->out.end = 0;
}

static void send_one(struct bench *b, struct peer *peer)
{
	if (can_send(b, peer) && peer->io.fd >= 0) {
		if (b->opt->resume)
			resumable_ack_first(b, peer);
		append_message(b, peer, now_ns());
		bench_write_out(b, peer);
	}
}

/* Flood: the sender fills its window with one write. */
static void top_up(struct bench *b, struct peer *sender)
{
	/* One clock reading for the batch: they all leave in this one write. */
	uint64_t now = now_ns();
	if (sender->io.fd < 0)
		return;
	if (b->opt->resume)
		resumable_ack_first(b, sender);
	while (sender->sent - sender->partner->received < b->opt->window && can_send(b, sender))
		append_message(b, sender, now);
	bench_write_out(b, sender);
}

static bool parse_number(const char **p, const char *end, uint64_t *v)
{
	const char *s = *p;
	*v = 0;
	while (s < end && *s >= '0' && *s <= '9')
		*v = *v * 10 + (uint64_t)(*s++ - '0');
	if (s == *p)
		return false;
	*p = s;
	return true;
}

static void receive_message(struct bench *b, struct peer *peer, const char *text, size_t len,
			    uint64_t now)
{
	const char *p = text, *end = text + len;
	uint64_t seq, sent_ns, pair;
	if (!parse_number(&p, end, &seq) || p == end || *p++ != ' ' ||
	    !parse_number(&p, end, &sent_ns) || p == end || *p++ != ' ' ||
	    !parse_number(&p, end, &pair) || p == end) {
		bench_fail(b, "pair %u side %c: not a bench message: %.*s", peer->pair, peer->side,
			   (int)(len < 80 ? len : 80), text);
		return;
	}
	if (pair != peer->pair || *p != peer->partner->side)
		bench_fail(b, "pair %u side %c: got pair %llu side %c's message", peer->pair,
			   peer->side, (unsigned long long)pair, *p);
	else if (seq != peer->received)
		bench_fail(b, "pair %u side %c: message %llu arrived when %llu was due (%s)",
			   peer->pair, peer->side, (unsigned long long)seq,
			   (unsigned long long)peer->received,
			   seq < peer->received ? "duplicate or reordered" : "lost or reordered");
	peer->received = seq + 1;
	b->result->received++;
	b->last_rx = now;
	if (b->opt->resume)
		resumable_numbered(peer, now);
	/* A storm's histogram is of how long each pair took to talk again. */
	if (b->opt->workload != WORKLOAD_STORM)
		histogram_add(&b->result->latency, now > sent_ns ? now - sent_ns : 0);
	if (b->opt->workload != WORKLOAD_FLOOD)
		send_one(b, peer); /* the reply: it is this side's turn now */
}

void workload_line(struct peer *peer, const char *line, size_t len, uint64_t now)
{
	struct bench *b = peer->bench;
	struct server_line parsed;

	if (!protocol_parse_server_line(line, len, &parsed)) {
		bench_fail(b, "pair %u side %c: bad server line: %.*s", peer->pair, peer->side,
			   (int)(len < 80 ? len : 80), line);
		return;
	}
	switch (parsed.keyword) {
	case SRV_MSG:
		receive_message(b, peer, parsed.text, parsed.text_len, now);
		break;
	case SRV_PAIRED:
		pairs_paired(b, peer, &parsed, now);
		break;
	case SRV_HELLO:
		if (parsed.version != PROTOCOL_VERSION)
			bench_fail(b, "server speaks protocol version %u", parsed.version);
		break;
	case SRV_BYE:
		/* Turned away while coming back (a restart under way): try again. */
		if (b->opt->resume && peer->away && resumable_dropped(peer, now))
			break;
		/* fall through */
	case SRV_ERR:
		bench_fail(b, "pair %u side %c: %.*s", peer->pair, peer->side, (int)len, line);
		break;
	case SRV_CAPS: /* asked for with --resume only */
	case SRV_TOKEN:
	case SRV_ACK:
	case SRV_RESUMED:
		resumable_line(peer, &parsed, now);
		break;
	case SRV_WAITING:
	case SRV_INFO: /* a partner's drop and return, among others */
	case SRV_TYPING:
	case SRV_ACTION:
	case SRV_DONE:
	case SRV_RELAYED:
	case SRV_SECURE:
	case SRV_PONG:
	case SRV_UNKNOWN:
		break;
	}
}

void workload_read_done(struct peer *peer)
{
	/* What peer read made room in its partner's window. */
	if (peer->bench->opt->workload == WORKLOAD_FLOOD)
		top_up(peer->bench, peer->partner);
}

void workload_connected(struct peer *peer)
{
	(void)peer; /* the handshake was queued at connect() and now goes out */
}

void workload_peer_failed(struct peer *peer, const char *why)
{
	struct bench *b = peer->bench;
	if (b->opt->resume && resumable_dropped(peer, now_ns()))
		return;
	bench_fail(b, "pair %u side %c: %s", peer->pair, peer->side, why);
	if (!(peer->paired && peer->partner->paired))
		b->dead++; /* it will never be ready: stop waiting for it */
	peer_close(peer);
	peer_close(peer->partner);
}

static void enter(struct bench *b, enum phase phase)
{
	b->phase = phase;
	b->phase_start = now_ns();
}

/* The server's CPU and ours count from here (each workload picks its span). */
static void measure_from(struct bench *b)
{
	b->window_start = now_ns();
	b->ticks_start = procs_cpu_ticks(b->pids, b->pid_count);
	b->self_start = self_cpu_seconds();
}

static void measure_to(struct bench *b)
{
	double seconds = (double)(now_ns() - b->window_start) / 1e9;
	long long ticks = procs_cpu_ticks(b->pids, b->pid_count);
	if (b->ticks_start >= 0 && ticks >= 0 && seconds > 0)
		b->result->server_cpu = 100.0 * (double)(ticks - b->ticks_start) /
					(double)sysconf(_SC_CLK_TCK) / seconds;
	if (seconds > 0)
		b->result->bench_cpu = 100.0 * (self_cpu_seconds() - b->self_start) / seconds;
}

static void start_sending(struct bench *b)
{
	unsigned pairs = b->opt->pairs;
	b->budget = b->opt->max_messages;
	enter(b, PHASE_RUN);
	if (b->opt->server_drops)
		fputs("turnchat-bench: every pair talking; waiting for the server to drop them\n",
		      stderr);
	if (b->opt->workload != WORKLOAD_IDLE)
		measure_from(b);
	b->last_rx = b->phase_start;
	for (unsigned i = 0; i < 2 * pairs; i++) {
		struct peer *peer = &b->peers[i];
		if (peer->io.fd < 0)
			continue;
		if (b->opt->workload == WORKLOAD_FLOOD)
			top_up(b, peer);
		else if (peer->first)
			send_one(b, peer);
	}
}

/* One step of the phase machine, run between batches of events. */
static void advance(struct bench *b, uint64_t now)
{
	const struct options *opt = b->opt;
	unsigned pairs = opt->pairs;

	switch (b->phase) {
	case PHASE_SETUP:
		while (b->started < pairs && b->started - b->paired - b->dead < opt->setup_window)
			pairs_start(b, b->started++);
		if (b->paired + b->dead < pairs)
			return;
		if (opt->workload == WORKLOAD_CONNECT) {
			measure_to(b);
			b->result->seconds = (double)(now_ns() - b->window_start) / 1e9;
			enter(b, PHASE_DONE);
		} else if (opt->workload == WORKLOAD_IDLE) {
			enter(b, PHASE_SETTLE);
			measure_from(b);
		} else {
			start_sending(b);
		}
		return;
	case PHASE_SETTLE:
		if (now - b->phase_start < (uint64_t)(opt->settle * 1e9))
			return;
		measure_to(b);
		b->result->rss_kib = procs_rss_kib(b->pids, b->pid_count);
		start_sending(b);
		return;
	case PHASE_RUN:
		/* A storm under way is seen through, within the time limit. */
		if ((b->budget > 0 && now - b->phase_start < (uint64_t)(opt->duration * 1e9) &&
		     !(opt->per_sender &&
		       b->result->sent == 2ull * opt->per_sender * (pairs - b->dead))) ||
		    !resumable_calm(b))
			return;
		enter(b, PHASE_DRAIN);
		return;
	case PHASE_DRAIN:
		if (b->result->received < b->result->sent && now - b->phase_start < DRAIN_LIMIT_NS)
			return;
		if (opt->workload != WORKLOAD_IDLE) {
			measure_to(b);
			b->result->rss_kib = procs_rss_kib(b->pids, b->pid_count);
		}
		if (b->last_rx > b->window_start)
			b->result->seconds = (double)(b->last_rx - b->window_start) / 1e9;
		/* Measured: the last acknowledgements cost nothing counted. */
		enter(b, opt->resume ? PHASE_ACKS : PHASE_DONE);
		return;
	case PHASE_ACKS:
		if (!resumable_all_acked(b) && now - b->phase_start < DRAIN_LIMIT_NS)
			return;
		enter(b, PHASE_DONE);
		return;
	case PHASE_DONE:
		return;
	}
}

/* Every message sent must have reached its partner: count what did not. */
static void check_delivery(struct bench *b)
{
	for (unsigned i = 0; i < 2 * b->opt->pairs; i++) {
		struct peer *peer = &b->peers[i];
		if (peer->partner && peer->partner->sent > peer->received)
			bench_fail(b, "pair %u side %c: %llu of %llu messages never arrived",
				   peer->pair, peer->side,
				   (unsigned long long)(peer->partner->sent - peer->received),
				   (unsigned long long)peer->partner->sent);
	}
}

/* The bench checks no certificate: it measures, and talks only to loopback. */
static int workload_tls_config(struct bench *b)
{
#ifdef HAVE_TLS
	char error[TLS_ERROR_MAX];
	b->tls = tls_client_config(NULL, error, sizeof(error));
	if (b->tls == NULL)
		fprintf(stderr, "turnchat-bench: TLS: %s\n", error);
	return b->tls ? 0 : -1;
#else
	(void)b;
	fprintf(stderr, "turnchat-bench: built without TLS (OpenSSL 3)\n");
	return -1;
#endif
}

int workload_run(const struct options *opt, struct result *result)
{
	static struct bench bench;
	struct bench *b = &bench;

	*b = (struct bench){.opt = opt, .result = result, .listener = -1};
	result->connections = 2 * opt->pairs;
	result->server_cpu = result->bench_cpu = -1;
	result->rss_base_kib = result->rss_kib = -1;
	if (pairs_resolve(b) < 0)
		return -1;
	memcpy(b->pids, opt->pids, sizeof(b->pids));
	b->pid_count = opt->pid_count;
	if (b->pid_count == 0 && opt->target != TARGET_DIRECT) {
		b->pids[0] = proc_find_listener((unsigned)strtoul(opt->port, NULL, 10));
		b->pid_count = b->pids[0] > 0;
	}
	result->rss_base_kib = procs_rss_kib(b->pids, b->pid_count);
	if (opt->tls && workload_tls_config(b) < 0)
		return -1;
	b->loop = event_loop_create();
	b->peers = calloc(2 * (size_t)opt->pairs, sizeof(*b->peers));
	if (b->loop == NULL || b->peers == NULL) {
		perror("turnchat-bench");
		return -1;
	}
	for (unsigned i = 0; i < 2 * opt->pairs; i++)
		b->peers[i].io.fd = -1;
	buffer_init(&b->out, 8u << 20);
	enter(b, PHASE_SETUP);
	measure_from(b);

	uint64_t deadline = b->phase_start + (uint64_t)(opt->time_limit * 1e9);
	while (b->phase != PHASE_DONE) {
		uint64_t now = now_ns();
		if (now >= deadline) {
			bench_fail(
				b,
				"time limit of %.0f s reached: %u of %u pairs paired, %llu of %llu "
				"messages arrived",
				opt->time_limit, b->paired, opt->pairs,
				(unsigned long long)result->received,
				(unsigned long long)result->sent);
			break;
		}
		if (opt->resume)
			resumable_tick(b, now);
		advance(b, now);
		if (b->phase != PHASE_DONE && event_loop_dispatch(b->loop, 5) < 0 && errno != EINTR) {
			bench_fail(b, "epoll: %s", strerror(errno));
			break;
		}
	}
	if (opt->workload != WORKLOAD_CONNECT)
		check_delivery(b);
	if (opt->resume) {
		resumable_check(b);
		resumable_leave(b);
	}
	for (unsigned i = 0; i < 2 * opt->pairs; i++)
		peer_close(&b->peers[i]);
	event_loop_dispatch(b->loop, 0); /* frees the removed sources */
	event_loop_destroy(b->loop);
	buffer_release(&b->out);
	free(b->peers);
	if (b->listener >= 0)
		close(b->listener);
#ifdef HAVE_TLS
	tls_config_free(b->tls);
#endif
	return 0;
}
