/*
 * session_resume: the part of the session module that keeps a
 * conversation going across connections (turnchat-protocol(7), "Resuming a
 * conversation"): tokens, numbered lines kept until acknowledged, AWAY and
 * MISSED, and /resume, which hands a new connection to the person its
 * token names. session.c calls in on pairing, relaying, a connection's end
 * and the tick; command.c with /ack and /resume. The lines and their
 * numbers are resume.c's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "session_impl.h"
#include "tls.h"

/* Refused /resume on one connection before its address is turned away:
 * a token is 128 random bits, so nobody honest needs more. */
#define RESUME_TRIES 3

static unsigned resume_timeout(const struct session *session)
{
	return session->server->config.server.resume_timeout;
}

int session_grant_resume(struct session *session)
{
	if (session->resume == NULL)
		session->resume = resume_create(session->server->config.server.max_queue);
	if (session->resume == NULL || resume_new_token(session->resume) < 0)
		return -1;
	session->server->state_changed = true;
	session_queued(session, protocol_append_token(session_output(session), session->resume->token,
						      resume_timeout(session)));
	return 0;
}

/* Tells sender how far its numbered lines have got: all it sent, but for
 * those its partner has not acknowledged yet. */
static void tell_ack(struct session *sender)
{
	struct resume *r = sender->resume;
	struct session *to = session_partner(sender);
	unsigned long ack;

	if (r == NULL || sender->conn == NULL)
		return;
	ack = r->read;
	if (to && to->resume && resume_first_unacked(to->resume))
		ack = resume_first_unacked(to->resume) - 1;
	if (ack > r->acked_told) {
		r->acked_told = ack;
		session_queued(sender, protocol_append_ack(session_output(sender), ack));
	}
}

void session_forget_previous_token(struct session *session)
{
	session->resume->previous_good = false;
	explicit_bzero(session->resume->previous, PROTOCOL_TOKEN_HEX);
}

void session_numbered_done(struct session *session)
{
	if (session->state == SESSION_PAIRED)
		tell_ack(session);
}

/* A numbered line as to understands it. */
static int append_numbered(struct buffer *out, const struct session *from, const struct session *to,
			   enum command_kind kind, const char *text, size_t len)
{
	char info[PROTOCOL_NAME_BYTES + 40];

	switch (kind) {
	case CMD_ACTION:
		return to->caps & CAP_ACTION
			       ? protocol_append_action(out, text, len)
			       : protocol_append_action_as_msg(out, from->name, text, len);
	case CMD_DONE:
		if (to->caps & CAP_DONE)
			return protocol_append_done(out);
		snprintf(info, sizeof(info), "%s has nothing more to send.", from->name);
		return protocol_append_info(out, info);
	default:
		return protocol_append_msg(out, text, len);
	}
}

/* A line for to that its replay cannot keep: to has acknowledged nothing
 * for half of max_queue and more. It is let go, as a reader that reads
 * nothing is; its partner hears peer-lost with the count of what arrived. */
static void cannot_keep(struct session *to)
{
	log_notice("#%lu %s (%s): acknowledged nothing while %zu bytes waited; ending its part",
		   to->id, to->name, to->conn ? SESSION_WHERE(to) : "away",
		   resume_replay_bytes(to->resume));
	if (to->conn) {
		session_expel(to, BYE_TOO_SLOW);
		return;
	}
	session_end_conversation(to, to, BYE_PEER_LOST, false, BYE_PEER_LOST);
	session_free(to);
}

/* RELAYED counts messages and /me that reached the partner, or are kept
 * for them: not one whose queue was full, which ends their connection. */
static void count_relayed(struct session *from, enum command_kind kind)
{
	if (kind != CMD_DONE)
		conversation_relayed(from->conversation, from->side);
}

void session_relay_numbered(struct session *from, struct session *to, enum command_kind kind,
			    const char *text, size_t len)
{
	struct resume *r = to->resume;
	const char *line;
	size_t line_len;
	int rc;

	if (r == NULL) {
		rc = append_numbered(session_output(to), from, to, kind, text, len);
		if (rc == 0)
			count_relayed(from, kind);
		session_relayed(from, to, rc);
		return;
	}
	to->server->state_changed = true;
	if (r->sent < r->acked) {
		/* They had it before the daemon restarted from an older state. */
		r->sent++;
		count_relayed(from, kind);
		session_turn_passed(to);
		return;
	}
	/* A v1 sender has no numbers of its own; only ACK would use them. */
	unsigned long seq = from->resume ? from->resume->read : r->sent + 1;
	struct buffer *out = to->conn ? session_output(to) : NULL;
	size_t before = out ? buffer_length(out) : 0;
	int kept;

	/* Written once, into the output, and kept from there. Away, or with
	 * an output too full to take it, the line is written into the replay
	 * itself, and is there when they come back. */
	rc = out ? append_numbered(out, from, to, kind, text, len) : -1;
	if (rc == 0) {
		kept = resume_keep(r, seq, buffer_peek(out) + before, buffer_length(out) - before);
	} else {
		size_t mark = resume_record_begin(r, seq);
		kept = resume_record_end(
			r, mark,
			mark == SIZE_MAX ? -1
					 : append_numbered(&r->replay, from, to, kind, text, len),
			&line, &line_len);
	}
	if (kept < 0) {
		if (rc == 0)
			buffer_truncate(out, before); /* neither sent nor kept */
		cannot_keep(to);
		return;
	}
	count_relayed(from, kind);
	if (to->conn)
		session_relayed(from, to, rc);
	else if (from->conn && !session_partner_keeps_up(from))
		connection_pause_reading(from->conn, true);
	session_turn_passed(to);
}

void session_turn_passed(struct session *to)
{
	/* A line that came out of turn waited for this one. */
	if (to->turn_held) {
		to->turn_held = false;
		session_read_on(to);
	}
}

bool session_ack_is_news(const struct session *session, unsigned long count)
{
	return session->resume && count > session->resume->acked;
}

enum error_code session_ack(struct session *session, unsigned long count)
{
	struct session *partner = session_partner(session);

	if (session->resume == NULL || !resume_acknowledge(session->resume, count))
		return ERR_BAD_COMMAND;
	session->resume->unacked_since = 0;
	session->server->state_changed = true;
	if (partner) {
		tell_ack(partner);
		session_read_on(partner);
	}
	return ERR_UNKNOWN;
}

bool session_go_away(struct session *session, enum connection_end end)
{
	struct session *partner = session_partner(session);
	char text[PROTOCOL_NAME_BYTES + 96];

	if (session->resume == NULL || resume_timeout(session) == 0 || session->server->stopping)
		return false;
	if (session->state == SESSION_CLOSING && session->resume->ended && end == CONNECTION_ERROR) {
		/* Its BYE may never have arrived (a connection broken without a
		 * word, found out by the closing's time limit): it is kept, with
		 * the lines not acknowledged, for when they come back. */
		log_info("#%lu %s (%s): connection lost before the end of the conversation was read; "
			 "kept up to %u seconds",
			 session->id, session->name, SESSION_WHERE(session), resume_timeout(session));
		session_set_state(session, SESSION_MISSED);
		connection_destroy(session->conn);
		session->conn = NULL;
		session->resume->away_since = session_now(session);
		return true;
	}
	if (session->state != SESSION_PAIRED)
		return false;
	log_info("#%lu %s (%s): connection %s; their part waits up to %u seconds", session->id,
		 session->name, SESSION_WHERE(session), end == CONNECTION_EOF ? "closed" : "lost",
		 resume_timeout(session));
	/* Counted without its connection from here on. */
	session_set_state(session, SESSION_AWAY);
	connection_destroy(session->conn);
	session->conn = NULL;
	session->rate_paused = false;
	session->resume->away_since = session_now(session);
	session->resume->unacked_since = 0;
	if (partner->conn) {
		snprintf(text, sizeof(text),
			 "%s's connection dropped; waiting up to %u seconds for them to come back.",
			 session->name, resume_timeout(session));
		session_queued(partner, protocol_append_info(session_output(partner), text));
	}
	return true;
}

void session_note_ending(struct session *session, const struct conversation *conversation,
			 enum bye_reason bye)
{
	struct resume *r = session->resume;
	int side = conversation->side[0] == session ? 0 : 1;

	if (r == NULL)
		return;
	free(r->missed_peer);
	r->missed_peer = strdup(conversation->side[1 - side]->name);
	r->missed_mode = (uint8_t)conversation->turn.mode;
	r->missed_bye = (uint8_t)bye;
	r->missed_relayed = conversation->relayed[side];
	r->ended = true;
	if (session->state == SESSION_AWAY)
		session_set_state(session, SESSION_MISSED);
}

bool session_resume_tick(struct session *session, uint64_t now)
{
	const struct server_config *cfg = &session->server->config.server;
	struct resume *r = session->resume;

	if (session->state == SESSION_AWAY || session->state == SESSION_MISSED) {
		if (now - r->away_since < (uint64_t)cfg->resume_timeout * 1000)
			return true;
		log_info("#%lu %s did not come back within %u seconds", session->id, session->name,
			 cfg->resume_timeout);
		if (session->state == SESSION_AWAY)
			session_end_conversation(session, session, BYE_PEER_LOST, false,
						 BYE_PEER_LOST);
		session_free(session);
		return true;
	}
	if (session->rate_paused) {
		session->rate_paused = false;
		session_read_on(session);
	}
	if (r == NULL || session->state != SESSION_PAIRED)
		return false;
	if (resume_replay_bytes(r) <= cfg->max_queue / 2) {
		r->unacked_since = 0;
	} else if (r->unacked_since == 0) {
		r->unacked_since = now;
	} else if (now - r->unacked_since >= (uint64_t)cfg->slow_timeout * 1000) {
		cannot_keep(session);
		return true;
	}
	return false;
}

void session_wait_turn(struct session *session)
{
	/* It comes again when the turn does, and is counted then. */
	session->resume->read--;
	session->turn_held = true;
	connection_hold_line(session->conn);
}

void session_over_rate(struct session *session)
{
	session->rate_paused = true;
	connection_pause_reading(session->conn, true);
}

/* The person token names, if they may come back now. */
static struct session *find_token(struct session *asking, const char *token)
{
	struct session *s;

	LIST_FOREACH(s, &asking->server->sessions, entry)
		if (s != asking && s->resume &&
		    (s->state == SESSION_PAIRED || s->state == SESSION_AWAY ||
		     s->state == SESSION_MISSED ||
		     (s->state == SESSION_CLOSING && s->resume->ended && !s->resume->kept)) &&
		    resume_token_is(s->resume, token))
			return s;
	return NULL;
}

static enum error_code refuse_resume(struct session *session)
{
	if (++session->resume_failures < RESUME_TRIES) {
		log_info("#%lu %s: /resume refused: no conversation for that token", session->id,
			 SESSION_WHERE(session));
		return ERR_NO_SESSION;
	}
	log_notice("#%lu %s: %u /resume refused; ending the connection and turning its address "
		   "away for %u seconds",
		   session->id, SESSION_WHERE(session), RESUME_TRIES, REFUSAL_WINDOW_MS / 1000);
	session_bye(session, BYE_FLOOD, "Too many unknown resume tokens; try later");
	connection_reset_after_flush(session->conn);
	server_turn_away(session->server, session);
	return ERR_UNKNOWN;
}

/* The connection, address and capabilities of newcomer become person's;
 * newcomer is freed. */
static void take_over(struct session *person, struct session *newcomer)
{
	if (person->conn) {
		/* Broken without a word, as far as we can tell: the newest wins. */
		log_info("#%lu %s: its old connection (%s) is replaced; closing it", person->id,
			 person->name, SESSION_WHERE(person));
		session_set_state(person,
				  person->state == SESSION_CLOSING ? SESSION_MISSED : SESSION_AWAY);
		connection_disown(person->conn);
		person->conn = NULL;
	}
	log_info("#%lu %s comes back on #%lu (%s)", person->id, person->name, newcomer->id,
		 SESSION_WHERE(newcomer));
	person->conn = newcomer->conn;
	newcomer->conn = NULL;
	connection_set_owner(person->conn, person);
	person->peer = newcomer->peer;
	person->ipv6_prefix = newcomer->ipv6_prefix;
	person->caps = newcomer->caps;
	rate_start(&person->rate, person->server->config.server.rate_burst, session_now(person));
	session_free(newcomer);
}

enum error_code session_resume(struct session *session, const char *token, unsigned long received)
{
	struct session *person, *partner;
	struct resume *r;
	char text[PROTOCOL_NAME_BYTES + 96];

	if (session->state != SESSION_NEW)
		return ERR_BUSY;
	person = find_token(session, token);
	if (person == NULL)
		return refuse_resume(session);
	r = person->resume;
	if (!resume_acknowledge(r, received))
		return ERR_BAD_COMMAND; /* more than was ever sent: not this client's count */
	/* Its partner heard of a drop only if it was AWAY. */
	bool was_away = person->conn == NULL;
	take_over(person, session);
	/* Good until the client speaks on this connection (session_heard). */
	memcpy(r->previous, token, PROTOCOL_TOKEN_HEX);
	r->previous_good = true;
	r->acked_told = 0;
	r->unacked_since = 0;
	if (person->state == SESSION_MISSED) {
		session_queued(person,
			       protocol_append_resumed(session_output(person), r->read,
						       r->missed_peer ? r->missed_peer : "guest",
						       (enum chat_mode)r->missed_mode, FIRST_NONE));
		session_queued(person, resume_replay(r, session_output(person)));
		if (person->caps & CAP_DONE)
			session_queued(person, protocol_append_relayed(session_output(person),
								       r->missed_relayed));
		session_bye(person, (enum bye_reason)r->missed_bye, NULL);
		return ERR_UNKNOWN;
	}
	session_set_state(person, SESSION_PAIRED);
	partner = session_partner(person);
	session_queued(person, protocol_append_resumed(
				       session_output(person), r->read, partner->name,
				       person->conversation->turn.mode,
				       turn_first_for(&person->conversation->turn, person->side)));
	if (session_grant_resume(person) < 0) {
		log_warnx("#%lu: out of memory while resuming", person->id);
		session_expel(person, BYE_SHUTDOWN);
		return ERR_UNKNOWN;
	}
	if (person->caps & CAP_SECURE)
		session_queued(person,
			       protocol_append_secure(session_output(person),
						      connection_tls(person->conn) && partner->conn &&
							      connection_tls(partner->conn)));
	tell_ack(person);
	session_queued(person, resume_replay(r, session_output(person)));
	if (partner->conn == NULL) {
		snprintf(text, sizeof(text),
			 "%s is not back yet; their part waits up to %u seconds from when they left.",
			 partner->name, resume_timeout(person));
		session_queued(person, protocol_append_info(session_output(person), text));
	} else {
		snprintf(text, sizeof(text), "%s is back.", person->name);
		if (was_away)
			session_queued(partner, protocol_append_info(session_output(partner), text));
		tell_ack(partner);
		session_read_on(partner);
	}
	return ERR_UNKNOWN;
}
