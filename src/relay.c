/*
 * relay: called by session for pairing, messages and endings, and by the
 * server's tick for idle conversations. The only code that writes one
 * person's words into the other's connection.
 */
#include "relay.h"

#include <stdlib.h>

#include "event.h"
#include "log.h"
#include "session.h"

int relay_start(struct session *waiter, struct session *caller, enum chat_mode mode)
{
	struct conversation *conversation = calloc(1, sizeof(*conversation));
	if (conversation == NULL)
		return -1;
	conversation->side[0] = waiter;
	conversation->side[1] = caller;
	conversation->last_line_ms = event_now_ms(waiter->server->loop);
	/* The caller speaks first, as the original client called the waiting server. */
	turn_start(&conversation->turn, mode, 1);
	for (int side = 0; side < 2; side++) {
		struct session *session = conversation->side[side];
		struct session *peer = conversation->side[1 - side];
		session->state = SESSION_PAIRED;
		session->conversation = conversation;
		session->side = side;
		session_queued(session,
			       protocol_append_paired(connection_output(session->conn), peer->name,
						      mode, turn_first_for(&conversation->turn, side)));
	}
	waiter->server->conversations++;
	log_info("#%lu %s (%s) and #%lu %s (%s) paired in room '%s', %s mode", waiter->id,
		 waiter->name, SESSION_WHERE(waiter), caller->id, caller->name, SESSION_WHERE(caller),
		 caller->room, protocol_mode_name(mode));
	return 0;
}

void relay_message(struct session *from, const char *text, size_t len)
{
	struct conversation *conversation = from->conversation;
	struct session *to = conversation->side[1 - from->side];

	if (!turn_may_speak(&conversation->turn, from->side)) {
		session_refuse(from, ERR_NOT_YOUR_TURN);
		return;
	}
	turn_spoke(&conversation->turn, from->side);
	conversation->last_line_ms = event_now_ms(from->server->loop);
	session_queued(to, protocol_append_msg(connection_output(to->conn), text, len));
	/* The partner is behind: hold the sender's lines (in its socket, and in
	 * TCP's window beyond) until the partner has read what it has. */
	if (session_backlogged(to))
		connection_pause_reading(from->conn, true);
}

void relay_end(struct conversation *conversation, struct session *leaver,
	       enum bye_reason leaver_reason, bool tell_leaver, enum bye_reason other_reason)
{
	struct session *a = conversation->side[0], *b = conversation->side[1];

	log_info("conversation of #%lu %s and #%lu %s ended: %s%s%s", a->id, a->name, b->id,
		 b->name, leaver ? leaver->name : "", leaver ? " " : "",
		 protocol_bye_name(leaver ? leaver_reason : other_reason));
	for (int side = 0; side < 2; side++) {
		struct session *session = conversation->side[side];
		session->conversation = NULL;
		if (session != leaver)
			session_bye(session, other_reason, NULL);
		else if (tell_leaver)
			session_bye(session, leaver_reason, NULL);
	}
	a->server->conversations--;
	free(conversation);
}

void relay_check_idle(struct conversation *conversation, uint64_t now, uint64_t idle_ms)
{
	if (idle_ms > 0 && now - conversation->last_line_ms >= idle_ms)
		relay_end(conversation, NULL, BYE_IDLE, false, BYE_IDLE);
}
