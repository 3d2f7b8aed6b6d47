/*
 * turn: who may speak next in a conversation. Pure, so the policy is tested
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

void turn_start(struct turn *turn, enum chat_mode mode, int first_side);
bool turn_may_speak(const struct turn *turn, int side);
/* Records that side spoke (only after its line was relayed). */
void turn_spoke(struct turn *turn, int side);
/* What PAIRED tells side about who starts. */
enum first_speaker turn_first_for(const struct turn *turn, int side);

#endif
