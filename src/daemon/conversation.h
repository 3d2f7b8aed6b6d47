/*
 * conversation: the rules of one conversation between two sessions, kept
 * pure (no I/O) so that they are tested without sockets: whose turn it is,
 * who has said /done, how many messages each side had relayed, how often a
 * TYPING goes out, and when an idle conversation is warned and ended. The
 * session module owns the conversations and acts on what these say.
 */
#ifndef TURNCHAT_CONVERSATION_H
#define TURNCHAT_CONVERSATION_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol.h"
#include "turn.h"

struct session;

/* Side 0 waited at the meeting point; side 1 came second and, in turns mode,
 * speaks first, as the original client called the waiting server. */
struct conversation {
	struct session *side[2];
	struct turn turn;
	uint64_t last_line_ms;    /* the last message, or typing: the idle clock */
	uint64_t typing_ms[2];    /* the last TYPING relayed from each side */
	unsigned long relayed[2]; /* each side's messages relayed to the other */
	bool done[2];             /* the side said /done */
	bool idle_warned;
};

/* NULL when out of memory. */
struct conversation *conversation_create(struct session *waiter, struct session *caller,
					 enum chat_mode mode, uint64_t now);
void conversation_destroy(struct conversation *conversation);

/* Why side may not send a message now, or ERR_UNKNOWN when it may. Inline,
 * as the ones below: asked for every message. */
static inline enum error_code conversation_may_speak(const struct conversation *conversation,
						     int side)
{
	if (conversation->done[side])
		return ERR_DONE;
	/* A partner who is done takes no more turns: the other may go on. */
	if (!turn_may_speak(&conversation->turn, side) && !conversation->done[1 - side])
		return ERR_NOT_YOUR_TURN;
	return ERR_UNKNOWN;
}

/* A message or typing at now: the idle clock starts again. */
static inline void conversation_active(struct conversation *conversation, uint64_t now)
{
	conversation->last_line_ms = now;
	conversation->idle_warned = false;
}

/* side's message was accepted at now: the turn passes. */
static inline void conversation_spoke(struct conversation *conversation, int side, uint64_t now)
{
	turn_spoke(&conversation->turn, side);
	/* Whoever types next is told "typing" at once, not a second later. */
	conversation->typing_ms[side] = 0;
	conversation_active(conversation, now);
}
/* side's message (or /me) reached the partner's queue, or the replay kept
 * for them: RELAYED counts it. */
static inline void conversation_relayed(struct conversation *conversation, int side)
{
	conversation->relayed[side]++;
}

/* The TYPING minimum interval: more often, /typing is not relayed. */
#define CONVERSATION_TYPING_MS 1000
/* side typed at now: true when a TYPING goes to the partner. Typing counts
 * as activity: nobody is cut off mid-sentence by the idle timeout. */
bool conversation_typing(struct conversation *conversation, int side, uint64_t now);

/* side said /done: true when that ends the conversation (both have). */
bool conversation_done(struct conversation *conversation, int side);

enum conversation_idle {
	IDLE_NOT_YET,
	IDLE_WARN, /* say it ends in CONVERSATION_IDLE_WARN_S (or half the timeout) */
	IDLE_END,
};
/* The idle warning comes this long before the end, or at half the timeout. */
#define CONVERSATION_IDLE_WARN_S 60
unsigned conversation_idle_lead(unsigned timeout_s);
/* What the idle timeout (seconds, 0 for none) says at now; a warning is
 * given once per quiet spell. */
enum conversation_idle conversation_idle(struct conversation *conversation, uint64_t now,
					 unsigned timeout_s);

#endif
