/*
 * session_impl: what the two files of the session module share, and
 * nobody else includes. session.c holds a session's life and its states,
 * session_conversation.c the conversations between two, session_resume.c
 * what keeps a conversation going across connections (turnchat-protocol(7),
 * "Resuming a conversation"), and session_restore.c across daemons.
 */
#ifndef TURNCHAT_SESSION_IMPL_H
#define TURNCHAT_SESSION_IMPL_H

#include "conversation.h"
#include "resume.h"
#include "session.h"

/* The one writer of session->state. */
void session_set_state(struct session *session, enum session_state to);

static inline struct buffer *session_output(struct session *session)
{
	return connection_output(session->conn);
}

static inline uint64_t session_now(const struct session *session)
{
	return event_now_ms(session->server->loop);
}

/* Frees a session that is done (its connection, if any, destroyed). */
void session_free(struct session *session);

/*
 * Ends the conversation session is in. leaver (session, or NULL when it
 * ends for both alike) hears leaver_reason unless it is gone already
 * (tell_leaver false); the other side hears other_reason. Both then close;
 * those granted done learn first how many of their messages got through.
 * Someone away keeps all of it for when they come back.
 */
void session_end_conversation(struct session *session, struct session *leaver,
			      enum bye_reason leaver_reason, bool tell_leaver,
			      enum bye_reason other_reason);

/* Queues output for to, and holds back from's lines while to is behind
 * (reading, or acknowledging). */
void session_relayed(struct session *from, struct session *to, int rc);
/* Whether session's partner is not behind (reading, or acknowledging). */
bool session_partner_keeps_up(const struct session *session);
/* Reads session's lines again unless something still holds them back:
 * its partner behind, the rate, the turn, its closing. */
void session_read_on(struct session *session);

/* session_conversation.c, for session.c: */
/* waiter was at the meeting point first; caller came second and speaks
 * first. -1 when out of memory. */
int session_pair(struct session *waiter, struct session *caller, enum chat_mode mode);
/* Both people hear it before the idle timeout ends their conversation. */
void session_idle_warning(struct session *session, unsigned seconds);

/* session_resume.c, for session.c: */
/* After PAIRED: someone granted resume hears their token. -1 when out of memory. */
int session_grant_resume(struct session *session);
/* Relays one of from's messages, /me or /done to to (MSG, ACTION or DONE,
 * or what a partner without those capabilities understands), keeps it
 * until to acknowledges it if to was granted resume, and holds from back
 * while to is behind. A partner that can take no more loses the
 * conversation, never the line silently. */
void session_relay_numbered(struct session *from, struct session *to, enum command_kind kind,
			    const char *text, size_t len);
/* The partner spoke (or said /done): a line to waited with is read now. */
void session_turn_passed(struct session *to);
/* The connection of someone granted resume ended without a word: true
 * when they are now AWAY and may come back. */
bool session_go_away(struct session *session, enum connection_end end);
/* The conversation of someone granted resume ended with bye: they keep
 * what they are to be told of it, should their connection not deliver it;
 * someone AWAY becomes MISSED. */
void session_note_ending(struct session *session, const struct conversation *conversation,
			 enum bye_reason bye);
/* The once-a-second look for the resume part: an AWAY or MISSED session
 * whose time is up, a client that acknowledges nothing. True when session
 * was dealt with (freed, even). */
bool session_resume_tick(struct session *session, uint64_t now);
/* The daemon stops and session's part is in the state it kept: its
 * connection closes without a word (or, away, it is freed). */
void session_leave_quietly(struct session *session);

#endif
