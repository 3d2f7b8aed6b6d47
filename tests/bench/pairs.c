/*
 * pairs: called by workload.c to open each pair and to hear that it is
 * paired. Two sides per pair, each with its own source address; the
 * turnchatd handshake (/name, /mode, /join a room of the pair's own) goes
 * out with the connection, and PAIRED is checked against the partner meant,
 * so a server pairing the wrong people is an error, not a measurement.
 */
#include "bench.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void pair_ready(struct bench *b, struct peer *a)
{
	struct peer *z = a->partner;
	if (b->opt->workload != WORKLOAD_FLOOD && a->first == z->first)
		bench_fail(b, "pair %u: both sides told first=%s", a->pair,
			   a->first ? "you" : "peer");
	b->paired++;
	if (b->opt->workload == WORKLOAD_CONNECT) {
		peer_close(a);
		peer_close(z);
	}
}

void pairs_paired(struct bench *b, struct peer *peer, const struct server_line *line, uint64_t now)
{
	const struct peer *partner = peer->partner;
	if (peer->paired) {
		bench_fail(b, "pair %u side %c: PAIRED twice", peer->pair, peer->side);
		return;
	}
	if (line->word_len != strlen(partner->name) ||
	    memcmp(line->word, partner->name, line->word_len) != 0)
		bench_fail(b, "pair %u side %c: paired with '%.*s', not '%s'", peer->pair, peer->side,
			   (int)line->word_len, line->word, partner->name);
	enum chat_mode want = b->opt->workload == WORKLOAD_FLOOD ? CHAT_MODE_FREE : CHAT_MODE_TURNS;
	if (b->opt->target == TARGET_TURNCHATD && line->mode != want)
		bench_fail(b, "pair %u side %c: paired in %s mode", peer->pair, peer->side,
			   protocol_mode_name(line->mode));
	peer->paired = true;
	peer->first = line->first == FIRST_YOU;
	if (b->opt->workload == WORKLOAD_CONNECT)
		histogram_add(&b->result->latency, now - peer->opened_ns);
	if (partner->paired)
		pair_ready(b, peer);
}

/* turnchatd: /caps resume if asked, /name, /mode for flood, and /join a
 * room of the pair's own. */
static void queue_handshake(struct bench *b, struct peer *peer)
{
	char room[PROTOCOL_NAME_MAX + 1];
	snprintf(room, sizeof(room), "r%u", peer->pair);
	if (b->opt->resume)
		resumable_handshake(b, peer);
	protocol_append_command(&b->out, "name", peer->name);
	if (b->opt->workload == WORKLOAD_FLOOD)
		protocol_append_command(&b->out, "mode", "free");
	protocol_append_command(&b->out, "join", room);
	bench_write_out(b, peer);
}

/* The source address of a side: the same for all its connections. */
int pairs_source(const struct bench *b, const struct peer *peer)
{
	unsigned sources = b->opt->sources;
	return sources > 0 ? (int)((2 * peer->pair + (unsigned)(peer->side - 'a')) % sources) : -1;
}

void pairs_start(struct bench *b, unsigned i)
{
	struct peer *p[2] = {&b->peers[2 * i], &b->peers[2 * i + 1]};

	for (int s = 0; s < 2; s++) {
		*p[s] = (struct peer){.bench = b,
				      .partner = p[1 - s],
				      .io = {.fd = -1},
				      .pair = i,
				      .side = (char)('a' + s)};
		snprintf(p[s]->name, sizeof(p[s]->name), "p%u%c", i, p[s]->side);
	}
	/* Both sides connect back to back: the relay pairs in accept order. */
	for (int s = 0; s < 2; s++) {
		int source = pairs_source(b, p[s]);
		if (b->opt->target == TARGET_DIRECT && s == 1) {
			int fd = accept4(b->listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd < 0 || peer_adopt(p[1], b->loop, fd) < 0)
				goto failed;
			continue;
		}
		if (peer_connect(p[s], b->loop, (struct sockaddr *)&b->server, b->server_len,
				 source) < 0)
			goto failed;
	}
	if (b->opt->target == TARGET_TURNCHATD) {
		queue_handshake(b, p[0]);
		queue_handshake(b, p[1]);
	} else if (b->opt->target == TARGET_RELAY) {
		peer_local_name(p[0]);
		peer_local_name(p[1]);
	} else {
		/* One TCP connection is the whole pair: nothing to wait for. */
		p[0]->paired = p[1]->paired = p[0]->first = true;
		if (b->opt->workload == WORKLOAD_CONNECT) {
			uint64_t took = now_ns() - p[0]->opened_ns;
			histogram_add(&b->result->latency, took);
			histogram_add(&b->result->latency, took);
		}
		pair_ready(b, p[0]);
	}
	return;
failed:
	bench_fail(b, "pair %u: connect: %s", i, strerror(errno));
	peer_close(p[0]);
	peer_close(p[1]);
	b->dead++;
}

int pairs_resolve(struct bench *b)
{
	const struct options *opt = b->opt;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
	int rc = getaddrinfo(opt->host, opt->port, &hints, &ai);
	if (rc != 0) {
		fprintf(stderr, "turnchat-bench: %s port %s: %s\n", opt->host, opt->port,
			gai_strerror(rc));
		return -1;
	}
	memcpy(&b->server, ai->ai_addr, ai->ai_addrlen);
	b->server_len = ai->ai_addrlen;
	freeaddrinfo(ai);
	/* Loopback only: this tool floods whatever it is pointed at. */
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)&b->server;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&b->server;
	bool v4 = b->server.ss_family == AF_INET;
	if (!(v4 && (ntohl(in4->sin_addr.s_addr) >> 24) == 127) &&
	    !(b->server.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))) {
		fprintf(stderr, "turnchat-bench: %s is not a loopback address\n", opt->host);
		return -1;
	}
	if (!v4 && (opt->sources > 0 || opt->target == TARGET_DIRECT)) {
		fprintf(stderr, "turnchat-bench: source addresses and -t direct need IPv4\n");
		return -1;
	}
	if (opt->target == TARGET_DIRECT) {
		/* The direct target's "server" is our own listener on the same host. */
		b->listener = socket(b->server.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
		((struct sockaddr_in *)&b->server)->sin_port = 0;
		if (b->listener < 0 ||
		    bind(b->listener, (struct sockaddr *)&b->server, b->server_len) < 0 ||
		    listen(b->listener, 4096) < 0 ||
		    getsockname(b->listener, (struct sockaddr *)&b->server, &b->server_len) < 0) {
			perror("turnchat-bench: direct listener");
			return -1;
		}
	}
	return 0;
}
