/*
 * session_restore: the part of the session module that lets the
 * conversations outlive the daemon, for state.c: which sessions can be
 * kept, how they leave when it stops, and how the next daemon makes them
 * again (AWAY, or MISSED) from what state_codec.c read. Resuming them is
 * session_resume.c's, as after any dropped connection.
 */
#include <stdlib.h>

#include "log.h"
#include "session_impl.h"

bool session_is_resumable(const struct session *session)
{
	const struct session *partner = session_partner(session);

	if (session->resume == NULL)
		return false;
	if (session->state == SESSION_MISSED)
		return true;
	return (session->state == SESSION_PAIRED || session->state == SESSION_AWAY) &&
	       partner->resume != NULL;
}

void session_leave_quietly(struct session *session)
{
	struct conversation *conversation = session->conversation;

	if (conversation) {
		/* Its partner is kept too, and goes the same way in its turn. */
		conversation->side[0]->conversation = NULL;
		conversation->side[1]->conversation = NULL;
		conversation_destroy(conversation);
	}
	if (session->conn == NULL) {
		session_free(session);
		return;
	}
	log_info("#%lu %s: closing without a word; they resume with the next turnchatd", session->id,
		 session->name);
	session_set_state(session, SESSION_CLOSING);
	connection_abort(session->conn);
}

struct session *session_restore(struct server *server, struct resume *resume, char *name, char *room,
				uint8_t caps, enum chat_mode mode, struct conversation *conversation,
				int side)
{
	struct session *session = calloc(1, sizeof(*session));

	if (session == NULL) {
		resume_destroy(resume);
		free(name);
		free(room);
		return NULL;
	}
	session->server = server;
	session->id = ++server->next_id;
	session->name = name;
	free(room); /* of no use once paired: see session_pair */
	session->caps = caps;
	session->mode = (uint8_t)mode;
	session->side = (uint8_t)side;
	session->resume = resume;
	resume->restored = true;
	/* Everyone has the whole resume_timeout from this start on. */
	if (resume->away_since == 0)
		resume->away_since = session_now(session);
	rate_start(&session->rate, server->config.server.rate_burst, session_now(session));
	if (conversation) {
		conversation->side[side] = session;
		session->conversation = conversation;
		session_set_state(session, SESSION_AWAY);
	} else {
		session_set_state(session, SESSION_MISSED);
	}
	return session;
}

void session_forget_restored(struct server *server)
{
	struct session *session;

	while ((session = LIST_FIRST(&server->sessions)) != NULL) {
		struct conversation *conversation = session->conversation;
		if (conversation) {
			for (int side = 0; side < 2; side++)
				if (conversation->side[side])
					conversation->side[side]->conversation = NULL;
			conversation_destroy(conversation);
		}
		session_free(session);
	}
}
