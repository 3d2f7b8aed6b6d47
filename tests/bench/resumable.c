/*
 * resumable: the resume capability as a client uses it, for workload.c and
 * pairs.c (--resume), and the storm workload built on it. A resumable
 * client asks for resume, keeps its TOKEN, counts the numbered lines it
 * reads and acknowledges them with its next line (one /ack for all that
 * came since the last), or alone when it has had nothing to say for
 * ACK_IDLE_NS, as turnchat(1) does; ACK must say how far the server is
 * with its own lines, and at the end that it has them all.
 *
 * The storm: after --settle seconds of pingpong every connection is closed
 * at once (or, with --server-drops, the server closes them: a restart).
 * Each client connects again after 0.5 to 1.5 times --reconnect-ms
 * (turnchat(1) waits 200 ms so, jittered; 0 is everyone at once, and the
 * base doubles with every try), resumes with its count, says again what
 * RESUMED says the server did not get, and the pair talks on. It is over
 * when every pair has had a message arrive on both of its new connections.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* turnchat(1) acknowledges within CHAT_ACK_DELAY_MS when it says nothing. */
#define ACK_IDLE_NS 100000000u
#define SWEEP_NS 20000000u

void resumable_handshake(struct bench *b, struct peer *peer)
{
	(void)peer;
	protocol_append_caps_request(&b->out, CAP_RESUME);
}

void resumable_ack_first(struct bench *b, struct peer *peer)
{
	if (peer->numbered > peer->acked_told &&
	    protocol_append_ack_command(&b->out, (unsigned long)peer->numbered) == 0)
		peer->acked_told = peer->numbered;
}

/* Every pair talks again: how long it took, and what it cost the server. */
static void storm_over(struct bench *b, uint64_t now)
{
	long long ticks = procs_cpu_ticks(b->pids, b->pid_count);
	b->result->storm_s = (double)(now - b->storm_at) / 1e9;
	if (ticks >= 0 && b->storm_ticks >= 0 && b->dropped > 0)
		b->result->storm_cpu_us = (double)(ticks - b->storm_ticks) /
					  (double)sysconf(_SC_CLK_TCK) * 1e6 / b->dropped;
}

void resumable_numbered(struct peer *peer, uint64_t now)
{
	struct bench *b = peer->bench;

	peer->numbered++;
	peer->numbered_at = now;
	if (!peer->back || peer->flowing)
		return;
	peer->flowing = true;
	if (!peer->partner->flowing)
		return;
	histogram_add(&b->result->latency, now - b->storm_at);
	if (++b->flowing == b->opt->pairs - b->dead)
		storm_over(b, now);
}

static void resumed(struct bench *b, struct peer *peer, const struct server_line *line, uint64_t now)
{
	const struct peer *partner = peer->partner;

	if (!peer->away || line->count > peer->sent || line->count < peer->acked) {
		bench_fail(b, "pair %u side %c: RESUMED %lu (%s, %llu sent, %llu acknowledged)",
			   peer->pair, peer->side, line->count, peer->away ? "away" : "not away",
			   (unsigned long long)peer->sent, (unsigned long long)peer->acked);
		return;
	}
	if (line->word_len != strlen(partner->name) ||
	    memcmp(line->word, partner->name, line->word_len) != 0)
		bench_fail(b, "pair %u side %c: resumed with '%.*s'", peer->pair, peer->side,
			   (int)line->word_len, line->word);
	peer->away = false;
	peer->back = true;
	b->away--;
	/* What the server did not get goes again, in order. */
	for (uint64_t seq = line->count; seq < peer->sent; seq++)
		workload_append(b, peer, seq, now);
	bench_write_out(b, peer);
}

void resumable_line(struct peer *peer, const struct server_line *line, uint64_t now)
{
	struct bench *b = peer->bench;

	switch (line->keyword) {
	case SRV_CAPS:
		if (!(line->caps & CAP_RESUME))
			bench_fail(b, "pair %u side %c: resume not granted", peer->pair, peer->side);
		break;
	case SRV_TOKEN:
		if (line->word_len == PROTOCOL_TOKEN_HEX)
			memcpy(peer->token, line->word, PROTOCOL_TOKEN_HEX);
		else
			bench_fail(b, "pair %u side %c: a token of %zu characters", peer->pair,
				   peer->side, line->word_len);
		break;
	case SRV_ACK:
		if (line->count < peer->acked || line->count > peer->sent)
			bench_fail(b, "pair %u side %c: ACK %lu after %llu, with %llu sent",
				   peer->pair, peer->side, line->count,
				   (unsigned long long)peer->acked, (unsigned long long)peer->sent);
		peer->acked = line->count;
		break;
	case SRV_RESUMED:
		resumed(b, peer, line, now);
		break;
	default:
		break;
	}
}

/* peer's connection is gone: it comes back after a jittered delay whose
 * base doubles with each try, up to 10 s, as turnchat(1)'s does. */
static void drop(struct bench *b, struct peer *peer, uint64_t now)
{
	double base_ns = b->opt->reconnect_ms * 1e6 *
			 (double)(1u << (peer->tries < 6 ? peer->tries : 6));

	if (base_ns > 10e9)
		base_ns = 10e9;
	peer_close(peer);
	if (!peer->away) {
		peer->away = true;
		peer->back = peer->flowing = false;
		peer->tries = 0;
		b->away++;
		b->dropped++;
	}
	peer->reconnect_at = now + (base_ns > 0 ? (uint64_t)(base_ns * (0.5 + drand48())) : 0);
}

static void storm_begins(struct bench *b, uint64_t now)
{
	b->storm_at = now;
	b->storm_ticks = procs_cpu_ticks(b->pids, b->pid_count);
	srand48((long)now);
}

bool resumable_dropped(struct peer *peer, uint64_t now)
{
	struct bench *b = peer->bench;

	if (!b->opt->server_drops || b->phase != PHASE_RUN || !(peer->paired || peer->away))
		return false;
	if (b->storm_at == 0)
		storm_begins(b, now);
	drop(b, peer, now);
	return true;
}

static void come_back(struct bench *b, struct peer *peer)
{
	peer->framer = (struct framer){0};
	peer->reconnect_at = 0;
	peer->tries++;
	if (peer_connect(peer, b->loop, (struct sockaddr *)&b->server, b->server_len,
			 pairs_source(b, peer)) < 0) {
		bench_fail(b, "pair %u side %c: connect again: %s", peer->pair, peer->side,
			   strerror(errno));
		return;
	}
	/* /resume carries the count: nothing is owed after it. */
	protocol_append_caps_request(&b->out, CAP_RESUME);
	protocol_append_resume_command(&b->out, peer->token, (unsigned long)peer->numbered);
	peer->acked_told = peer->numbered;
	bench_write_out(b, peer);
}

void resumable_tick(struct bench *b, uint64_t now)
{
	unsigned n = 2 * b->opt->pairs;

	if (now - b->ack_sweep >= SWEEP_NS) {
		b->ack_sweep = now;
		for (unsigned i = 0; i < n; i++) {
			struct peer *peer = &b->peers[i];
			if (peer->io.fd >= 0 && !peer->away && peer->numbered > peer->acked_told &&
			    now - peer->numbered_at >= ACK_IDLE_NS) {
				resumable_ack_first(b, peer);
				bench_write_out(b, peer);
			}
		}
	}
	if (b->opt->workload != WORKLOAD_STORM || b->phase != PHASE_RUN)
		return;
	if (b->storm_at == 0 && !b->opt->server_drops &&
	    now - b->phase_start >= (uint64_t)(b->opt->settle * 1e9)) {
		/* Every connection at once. */
		storm_begins(b, now);
		for (unsigned i = 0; i < n; i++)
			if (b->peers[i].io.fd >= 0)
				drop(b, &b->peers[i], now);
	}
	for (unsigned i = 0; b->away > 0 && i < n; i++)
		if (b->peers[i].reconnect_at && b->peers[i].reconnect_at <= now)
			come_back(b, &b->peers[i]);
}

bool resumable_calm(const struct bench *b)
{
	return b->opt->workload != WORKLOAD_STORM ||
	       (b->storm_at != 0 && b->flowing >= b->opt->pairs - b->dead);
}

bool resumable_all_acked(const struct bench *b)
{
	for (unsigned i = 0; i < 2 * b->opt->pairs; i++)
		if (b->peers[i].io.fd >= 0 && b->peers[i].acked < b->peers[i].sent)
			return false;
	return true;
}

void resumable_check(struct bench *b)
{
	for (unsigned i = 0; i < 2 * b->opt->pairs; i++) {
		const struct peer *peer = &b->peers[i];
		if (peer->io.fd >= 0 && peer->acked != peer->sent)
			bench_fail(b, "pair %u side %c: ACK says %llu of its %llu lines", peer->pair,
				   peer->side, (unsigned long long)peer->acked,
				   (unsigned long long)peer->sent);
	}
	if (b->opt->workload == WORKLOAD_STORM && b->flowing < b->opt->pairs - b->dead)
		bench_fail(b, "%u of %u pairs never talked again after the storm",
			   b->opt->pairs - b->dead - b->flowing, b->opt->pairs - b->dead);
}

/* Leaving with /q: a resumable client that just went would be kept away. */
void resumable_leave(struct bench *b)
{
	for (unsigned i = 0; i < 2 * b->opt->pairs; i++)
		if (b->peers[i].io.fd >= 0)
			peer_write(&b->peers[i], "/q\n", 3);
}
