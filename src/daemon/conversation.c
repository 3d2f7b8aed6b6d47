/*
 * conversation: called by the session module when it pairs two people, on
 * typing, /done and the idle tick; by the unit tests. What it asks before
 * and after every message is inline in conversation.h.
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

bool conversation_typing(struct conversation *conversation, int side, uint64_t now)
{
	conversation_active(conversation, now);
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
