/*
 * session_conversation: the part of the session module that runs the
 * conversation between two sessions: pairing them, relaying what one says
 * to the other (with backpressure), /done, the idle warning, and the end
 * of it all. session.c calls in from /join, its tick and the endings;
 * command.c through session_say, session_typing and session_done. The
 * rules of a conversation are the conversation module's.
 */
#include <stdio.h>
#include <stdlib.h>

#include "log.h"
#include "session_impl.h"
#include "tls.h"

bool session_partner_keeps_up(const struct session *session)
{
	const struct session *partner = session_partner(session);
	size_t half = session->server->config.server.max_queue / 2;

	return partner == NULL || ((partner->conn == NULL || !connection_backlogged(partner->conn)) &&
				   resume_replay_bytes(partner->resume) <= half);
}

/* Whether all of the conversation is encrypted: to those who asked, and to
 * someone on TLS whose partner is not (no v1 line changes for anyone else). */
static void tell_encryption(struct session *session, const struct session *partner)
{
	bool mine = connection_tls(session->conn), theirs = connection_tls(partner->conn);
	char text[PROTOCOL_NAME_BYTES + 120];

	if (session->caps & CAP_SECURE) {
		session_queued(session,
			       protocol_append_secure(session_output(session), mine && theirs));
	} else if (mine && !theirs) {
		snprintf(text, sizeof(text),
			 "%s is connected without TLS: what you both write crosses their network "
			 "unencrypted.",
			 partner->name);
		session_queued(session, protocol_append_info(session_output(session), text));
	}
}

int session_pair(struct session *waiter, struct session *caller, enum chat_mode mode)
{
	struct server *server = waiter->server;
	struct conversation *conversation = conversation_create(waiter, caller, mode,
								session_now(waiter));
	if (conversation == NULL)
		return -1;
	for (int side = 0; side < 2; side++) {
		struct session *session = conversation->side[side];
		session->conversation = conversation;
		session->side = side;
		session_set_state(session, SESSION_PAIRED);
	}
	for (int side = 0; side < 2; side++) {
		struct session *session = conversation->side[side];
		session_queued(session,
			       protocol_append_paired(session_output(session),
						      session_partner(session)->name, mode,
						      turn_first_for(&conversation->turn, side)));
		tell_encryption(session, session_partner(session));
		if ((session->caps & CAP_RESUME) && session_grant_resume(session) < 0)
			return -1;
	}
	log_info("#%lu %s (%s) and #%lu %s (%s) paired in room '%s', %s mode", waiter->id,
		 waiter->name, SESSION_WHERE(waiter), caller->id, caller->name, SESSION_WHERE(caller),
		 caller->room, protocol_mode_name(mode));
	/* Out of the pairing now: the room is of no more use to either. */
	for (int side = 0; side < 2; side++) {
		free(conversation->side[side]->room);
		conversation->side[side]->room = NULL;
	}
	if (server->paired_hook)
		server->paired_hook(server->paired_hook_data, waiter, caller);
	return 0;
}

/* A partner that is behind holds back from's lines (in its socket, and in
 * TCP's window beyond) until it has read, or acknowledged, what it has. */
void session_relayed(struct session *from, struct session *to, int rc)
{
	session_queued(to, rc);
	if (from->conn && !session_partner_keeps_up(from))
		connection_pause_reading(from->conn, true);
}

enum error_code session_say(struct session *from, const char *text, size_t len, bool action)
{
	struct conversation *conversation = from->conversation;
	struct session *to = session_partner(from);
	enum error_code refused;

	if (from->state != SESSION_PAIRED)
		return ERR_NOT_PAIRED;
	if ((refused = conversation_may_speak(conversation, from->side)) != ERR_UNKNOWN)
		return refused;
	conversation_spoke(conversation, from->side, session_now(from));
	session_relay_numbered(from, to, action ? CMD_ACTION : CMD_MESSAGE, text, len);
	return ERR_UNKNOWN;
}

enum error_code session_typing(struct session *from)
{
	if (from->state != SESSION_PAIRED)
		return ERR_NOT_PAIRED;
	struct session *to = session_partner(from);
	if (conversation_typing(from->conversation, from->side, session_now(from)) &&
	    (to->caps & CAP_TYPING) && to->conn)
		session_relayed(from, to, protocol_append_typing(session_output(to)));
	return ERR_UNKNOWN;
}

void session_end_conversation(struct session *session, struct session *leaver,
			      enum bye_reason leaver_reason, bool tell_leaver,
			      enum bye_reason other_reason)
{
	struct conversation *conversation = session->conversation;
	struct session *a = conversation->side[0], *b = conversation->side[1];

	log_info("conversation of #%lu %s and #%lu %s ended: %s%s%s", a->id, a->name, b->id, b->name,
		 leaver ? leaver->name : "", leaver ? " " : "",
		 protocol_bye_name(leaver ? leaver_reason : other_reason));
	for (int side = 0; side < 2; side++) {
		struct session *s = conversation->side[side];
		s->conversation = NULL;
		if (s == leaver && !tell_leaver)
			continue;
		enum bye_reason reason = s == leaver ? leaver_reason : other_reason;
		session_note_ending(s, conversation, reason);
		if (s->state == SESSION_MISSED)
			continue;
		if (s->caps & CAP_DONE)
			session_queued(s, protocol_append_relayed(session_output(s),
								  conversation->relayed[side]));
		session_bye(s, reason, NULL);
	}
	conversation_destroy(conversation);
}

enum error_code session_done(struct session *session)
{
	if (session->state != SESSION_PAIRED)
		return ERR_NOT_PAIRED;
	struct conversation *conversation = session->conversation;
	struct session *partner = session_partner(session);
	if (conversation->done[session->side])
		return ERR_UNKNOWN;
	log_info("#%lu %s is done sending", session->id, session->name);
	if (conversation_done(conversation, session->side)) {
		session_end_conversation(session, NULL, BYE_DONE, false, BYE_DONE);
		return ERR_UNKNOWN;
	}
	session_relay_numbered(session, partner, CMD_DONE, NULL, 0);
	return ERR_UNKNOWN;
}

void session_idle_warning(struct session *session, unsigned seconds)
{
	char text[96];
	snprintf(text, sizeof(text),
		 "Nothing has been said for a while; this conversation ends in %u seconds "
		 "unless someone writes.",
		 seconds);
	for (int side = 0; side < 2; side++) {
		struct session *s = session->conversation->side[side];
		if (s->conn)
			session_queued(s, protocol_append_info(session_output(s), text));
	}
}
