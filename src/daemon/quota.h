/*
 * quota: the pure bookkeeping behind the daemon's per-connection and
 * per-address limits: a token bucket for the line rate, the window of
 * refused lines (log summaries, floods), counts per address (per IPv6
 * prefix, server.ipv6_prefix bits, since one site may hold a whole /48) and
 * the addresses turned away after a flood. No I/O; the server, session and command
 * modules apply them.
 */
#ifndef TURNCHAT_QUOTA_H
#define TURNCHAT_QUOTA_H

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

/*
 * Lines refused on one connection, counted by window: the first of each
 * window is logged on its own, the rest in one summary, so no client can buy
 * log lines; and more than REFUSAL_FLOOD_FACTOR times rate_burst refused for
 * the rate in one window is not typing but flooding (a paste of a few
 * hundred lines stays well under it).
 */
#define REFUSAL_WINDOW_MS 10000
#define REFUSAL_FLOOD_FACTOR 10

struct refusals {
	uint64_t since;        /* when the window began */
	unsigned rate_limited; /* refused for the rate in it */
	unsigned logged;       /* logged one by one in it */
	unsigned unlogged;     /* refused in it and not yet summed up */
	int last;              /* the code of the last one not logged */
};

enum refusal {
	REFUSAL_LOG,     /* log this one on its own */
	REFUSAL_COUNTED, /* counted for the summary */
	REFUSAL_FLOOD,   /* end the connection */
};

/* Counts one refused line with code; for_rate when refused for the rate.
 * *r is made on the first refusal: most connections never need one. */
enum refusal refusals_add(struct refusals **r, int code, bool for_rate, unsigned burst,
			  uint64_t now_ms);
/* The lines to sum up (0: none; r may be NULL) once their window is over,
 * or at once with force; *last gets the code of the last of them. */
unsigned refusals_summary(struct refusals *r, uint64_t now_ms, bool force, int *last);

/* What counts as one address: IPv4 as is, IPv6 by its first ipv6_prefix
 * bits; Unix sockets are all one. */
struct address_key {
	uint8_t bytes[17]; /* family tag, then up to 16 bytes */
};

void address_key_from(struct address_key *key, const struct sockaddr *addr, unsigned ipv6_prefix);

struct address_counts;

/*
 * Addresses that flooded lately, turned away at once until a time: a
 * flooder that reconnects at once would otherwise buy a HELLO, hundreds of
 * ERRs and a few log lines with every connection. A small table; when it is
 * full the entry that ends first makes room.
 */
#define PENALTY_BOX_SIZE 64

struct penalty_box {
	struct penalty {
		struct address_key key;
		uint64_t until;   /* 0: a free slot */
		unsigned refused; /* connections turned away meanwhile */
		char where[48];   /* the address as text, for the summary */
	} slots[PENALTY_BOX_SIZE];
};

void penalty_box_add(struct penalty_box *box, const struct address_key *key, const char *where,
		     uint64_t until);
/* True, and counted, when key is held at now. */
bool penalty_box_holds(struct penalty_box *box, const struct address_key *key, uint64_t now);
/* Takes out an entry whose time is up, into *done; false when there is none. */
bool penalty_box_expire(struct penalty_box *box, uint64_t now, struct penalty *done);

struct address_counts *address_counts_create(void);
void address_counts_destroy(struct address_counts *counts);
/* Counts one more connection from key and returns how many there are now; 0 on ENOMEM. */
unsigned address_counts_add(struct address_counts *counts, const struct address_key *key);
void address_counts_remove(struct address_counts *counts, const struct address_key *key);

#endif
