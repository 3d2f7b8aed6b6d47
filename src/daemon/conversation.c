/*
 * conversation: called by the session module when it pairs two people, and
 * before and after everything one of them says; by the unit tests.
 */
#include "conversation.h"

#include <stdlib.h>

struct conversation *conversation_create(struct session *waiter, struct session *caller,
					 enum chat_mode mode, uint64_t now)
{
	struct conversation *conversation = calloc(1, sizeof(*conversation));
	if (conversation == NULL)
		return NULL;
	conversation->side[0] = waiter;
	conversation->side[1] = caller;
	conversation->last_line_ms = now;
	turn_start(&conversation->turn, mode, 1);
	return conversation;
}

void conversation_destroy(struct conversation *conversation)
{
	free(conversation);
}

enum error_code conversation_may_speak(const struct conversation *conversation, int side)
{
	if (conversation->done[side])
		return ERR_DONE;
	/* A partner who is done takes no more turns: the other may go on. */
	if (!turn_may_speak(&conversation->turn, side) && !conversation->done[1 - side])
		return ERR_NOT_YOUR_TURN;
	return ERR_UNKNOWN;
}

static void active(struct conversation *conversation, uint64_t now)
{
	conversation->last_line_ms = now;
	conversation->idle_warned = false;
}

void conversation_spoke(struct conversation *conversation, int side, uint64_t now)
{
	turn_spoke(&conversation->turn, side);
	/* Whoever types next is told "typing" at once, not a second later. */
	conversation->typing_ms[side] = 0;
	active(conversation, now);
}

bool conversation_typing(struct conversation *conversation, int side, uint64_t now)
{
	active(conversation, now);
	if (conversation->typing_ms[side] &&
	    now - conversation->typing_ms[side] < CONVERSATION_TYPING_MS)
		return false;
	conversation->typing_ms[side] = now;
	return true;
}

bool conversation_done(struct conversation *conversation, int side)
{
	conversation->done[side] = true;
	return conversation->done[1 - side];
}

unsigned conversation_idle_lead(unsigned timeout_s)
{
	return timeout_s / 2 < CONVERSATION_IDLE_WARN_S ? timeout_s / 2 : CONVERSATION_IDLE_WARN_S;
}

enum conversation_idle conversation_idle(struct conversation *conversation, uint64_t now,
					 unsigned timeout_s)
{
	if (timeout_s == 0)
		return IDLE_NOT_YET;
	uint64_t quiet = now - conversation->last_line_ms;
	if (quiet >= (uint64_t)timeout_s * 1000)
		return IDLE_END;
	uint64_t warn_at = (uint64_t)(timeout_s - conversation_idle_lead(timeout_s)) * 1000;
	if (!conversation->idle_warned && conversation_idle_lead(timeout_s) > 0 && quiet >= warn_at) {
		conversation->idle_warned = true;
		return IDLE_WARN;
	}
	return IDLE_NOT_YET;
}
