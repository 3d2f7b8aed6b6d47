/*
 * turn: called by the session before and after every message of a
 * conversation, and when it starts one.
 */
#include "turn.h"

void turn_start(struct turn *turn, enum chat_mode mode, int first_side)
{
	turn->mode = mode;
	turn->next = first_side;
}

bool turn_may_speak(const struct turn *turn, int side)
{
	return turn->mode == CHAT_MODE_FREE || turn->next == side;
}

void turn_spoke(struct turn *turn, int side)
{
	if (turn->mode == CHAT_MODE_TURNS && turn->next == side)
		turn->next = 1 - side;
}

enum first_speaker turn_first_for(const struct turn *turn, int side)
{
	if (turn->mode == CHAT_MODE_FREE)
		return FIRST_NONE;
	return turn->next == side ? FIRST_YOU : FIRST_PEER;
}
