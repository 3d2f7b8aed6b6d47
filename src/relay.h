/*
 * relay: a private conversation between two sessions. It starts them
 * (PAIRED), carries each message to the partner (MSG) under the turn
 * policy, and ends them both with the right BYE.
 */
#ifndef TURNCHAT_RELAY_H
#define TURNCHAT_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol.h"
#include "turn.h"

struct session;

struct conversation {
	struct session *side[2];
	struct turn turn;
	uint64_t last_line_ms;
};

/* waiter was at the meeting point first; caller came second and speaks first. */
int relay_start(struct session *waiter, struct session *caller, enum chat_mode mode);

void relay_message(struct session *from, const char *text, size_t len);

/*
 * Ends the conversation. leaver (one side, or NULL) hears leaver_reason
 * unless it is gone already (tell_leaver false); the other hears
 * other_reason. Both sessions then close.
 */
void relay_end(struct conversation *conversation, struct session *leaver,
	       enum bye_reason leaver_reason, bool tell_leaver, enum bye_reason other_reason);

/* Ends it with BYE idle when nobody wrote for idle_ms. */
void relay_check_idle(struct conversation *conversation, uint64_t now, uint64_t idle_ms);

#endif
