/*
 * turn: who may speak next in a conversation, for conversation.c and the
 * session module. Pure, and all in this header, so the policy is tested
 * without sockets. In turns mode the two sides strictly alternate, and a
 * refused line never uses up a turn; in free mode anyone may speak anytime.
 */
#ifndef TURNCHAT_TURN_H
#define TURNCHAT_TURN_H

#include <stdbool.h>

#include "protocol.h"

struct turn {
	enum chat_mode mode;
	int next; /* side 0 or 1 that may speak, turns mode only */
};

/* Inline: asked before and after every message, and all of it is a
 * comparison or two. */
static inline void turn_start(struct turn *turn, enum chat_mode mode, int first_side)
{
	turn->mode = mode;
	turn->next = first_side;
}

static inline bool turn_may_speak(const struct turn *turn, int side)
{
	return turn->mode == CHAT_MODE_FREE || turn->next == side;
}

/* Records that side spoke (only after its line was relayed). */
static inline void turn_spoke(struct turn *turn, int side)
{
	if (turn->mode == CHAT_MODE_TURNS && turn->next == side)
		turn->next = 1 - side;
}

/* What PAIRED tells side about who starts. */
static inline enum first_speaker turn_first_for(const struct turn *turn, int side)
{
	if (turn->mode == CHAT_MODE_FREE)
		return FIRST_NONE;
	return turn->next == side ? FIRST_YOU : FIRST_PEER;
}

#endif
