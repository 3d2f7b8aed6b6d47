/*
 * resume: what the daemon keeps of one person granted the resume
 * capability (turnchat-protocol(7), "Resuming a conversation"): the token
 * that lets them back in, the numbers of the lines in both directions, and
 * the replay, their partner's lines not yet acknowledged. No I/O beyond
 * the random token, no session states: session.c and session_resume.c own
 * those and call these; state_codec.c keeps the replay across restarts.
 */
#ifndef TURNCHAT_RESUME_H
#define TURNCHAT_RESUME_H

#include <stdbool.h>
#include <stdint.h>

#include "buffer.h"
#include "protocol.h"

struct resume {
	char token[PROTOCOL_TOKEN_HEX]; /* never logged */
	/* The token a /resume came with stays good until the client says a
	 * word on its new connection: a connection lost between /resume and
	 * TOKEN must not leave it with nothing to come back with. */
	char previous[PROTOCOL_TOKEN_HEX];
	bool previous_good;
	uint64_t away_since;      /* ms: when the connection dropped, while away */
	uint64_t unacked_since;   /* ms: since when the replay is over half full */
	unsigned long read;       /* this person's numbered lines read (their numbers) */
	unsigned long sent;       /* numbered lines sent to them (as they count) */
	unsigned long acked;      /* of those, how many they acknowledged */
	unsigned long acked_told; /* the last ACK this person was sent */
	/* Their conversation ended while they were away: what RESUMED, RELAYED
	 * and BYE will tell them. */
	char *missed_peer;
	unsigned long missed_relayed;
	uint8_t missed_bye;  /* enum bye_reason */
	uint8_t missed_mode; /* enum chat_mode */
	bool ended;          /* the missed_ fields say how its conversation ended */
	bool restored;       /* by this daemon from the last one's state (state.c) */
	bool kept;           /* in the state written as the daemon stops */
	/* Records, one per line sent and not acknowledged: the number the
	 * sender gave it, the line's length, then the line as sent, LF
	 * included (resume.c). */
	struct buffer replay;
	unsigned long first_unacked; /* the first record's number; 0 when none */
};

/* NULL when out of memory. The replay holds at most limit bytes. */
struct resume *resume_create(size_t limit);
void resume_destroy(struct resume *resume);

/* A new token, replacing the last (single use). -1 when the system has no
 * randomness to give, which the caller treats as out of memory. */
int resume_new_token(struct resume *resume);
/* Whether token lets this person back in: the current one, or the one just
 * used while previous_good. Compared in constant time: no timing tells how
 * much of a guess was right. */
bool resume_token_is(const struct resume *resume, const char *token);

/* Keeps a copy of line (len bytes, LF included), numbered seq by its
 * sender, and counts it sent; -1 when the replay cannot hold it. */
int resume_keep(struct resume *resume, unsigned long seq, const char *line, size_t len);

/* Or, where the line has nowhere else to be written: starts the record
 * of a line numbered seq by its sender; the caller appends the line itself (a protocol_append_* call
 * on &resume->replay), then calls resume_record_end with that call's result. */
size_t resume_record_begin(struct resume *resume, unsigned long seq);
/* Keeps the record if rc is 0 (and counts it sent), else takes it back.
 * Returns rc; the line is at *line for *len bytes while it is kept. */
int resume_record_end(struct resume *resume, size_t mark, int rc, const char **line, size_t *len);

/* The person acknowledged lines up to count: the records up to it go.
 * False when count is more than was sent (a client in error), unless the
 * state was restored: then the last daemon may have sent more than it
 * wrote down before it ended, and the lines up to count are not sent again. */
bool resume_acknowledge(struct resume *resume, unsigned long count);

/* The sender's number of the first line not yet acknowledged, or 0 when
 * all are: what the partner may be told in ACK is everything before it.
 * Kept, not looked up: it is asked for every line the partner sends. */
static inline unsigned long resume_first_unacked(const struct resume *resume)
{
	return resume->first_unacked;
}

/* Appends to out every line not yet acknowledged, without the numbers:
 * what a returning person has not seen. -1 when out cannot take them. */
int resume_replay(const struct resume *resume, struct buffer *out);

/* The replay as the state keeps it (state_codec.c): each record's number
 * (8 bytes) and its line, to and with its LF. resume_stored_length is
 * what resume_store appends, -1 when out cannot take it all. */
size_t resume_stored_length(const struct resume *resume);
int resume_store(const struct resume *resume, struct buffer *out);
/* Takes a replay in that form into an empty one, even past max_queue
 * (lowered since, perhaps): false when it is not sound. */
bool resume_restore_replay(struct resume *resume, const char *data, size_t len);

/* The bytes the replay holds, against max_queue. */
static inline size_t resume_replay_bytes(const struct resume *resume)
{
	return resume ? buffer_length(&resume->replay) : 0;
}

#endif
