/*
 * limits: the pure bookkeeping behind the daemon's per-connection and
 * per-address limits: a token bucket for the line rate, and counts per
 * address (per IPv6 prefix, server.ipv6_prefix bits, since one site may
 * hold a whole /48). No I/O; the server and session modules apply them.
 */
#ifndef TURNCHAT_LIMITS_H
#define TURNCHAT_LIMITS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct rate_bucket {
	uint64_t tokens_milli; /* thousandths of a line, so slow rates stay exact */
	uint64_t updated_ms;
};

void rate_start(struct rate_bucket *bucket, unsigned burst, uint64_t now_ms);
/* Takes one line's token if there is one; rate 0 means no limit. */
bool rate_take(struct rate_bucket *bucket, unsigned rate, unsigned burst, uint64_t now_ms);

/* What counts as one address: IPv4 as is, IPv6 by its first ipv6_prefix
 * bits; Unix sockets are all one. */
struct address_key {
	uint8_t bytes[17]; /* family tag, then up to 16 bytes */
};

void address_key_from(struct address_key *key, const struct sockaddr *addr,
		      unsigned ipv6_prefix);

struct address_counts;

struct address_counts *address_counts_create(void);
void address_counts_destroy(struct address_counts *counts);
/* Counts one more connection from key and returns how many there are now; 0 on ENOMEM. */
unsigned address_counts_add(struct address_counts *counts, const struct address_key *key);
void address_counts_remove(struct address_counts *counts, const struct address_key *key);

#endif
