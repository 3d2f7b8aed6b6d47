/*
 * state_codec: the resumable conversations as the bytes of state.c's body,
 * and back. Called by state.c alone. It reads sessions to write them; the
 * session module makes the restored ones (session_restore). Numbers are
 * written as they are in memory: the state never leaves this machine, nor
 * a daemon of this version (the header says which).
 */
#include "state_codec.h"

#include <stdlib.h>
#include <string.h>

#include "conversation.h"
#include "resume.h"
#include "server.h"
#include "session.h"

/* --- Writing ------------------------------------------------------------ */

struct writer {
	struct buffer *out;
	bool failed;
};

static void put(struct writer *w, const void *data, size_t len)
{
	if (!w->failed && buffer_append(w->out, data, len) < 0)
		w->failed = true;
}

static void put_u8(struct writer *w, unsigned value)
{
	uint8_t v = (uint8_t)value;
	put(w, &v, 1);
}

static void put_u64(struct writer *w, uint64_t value)
{
	put(w, &value, sizeof(value));
}

static void put_bytes(struct writer *w, const void *data, size_t len)
{
	put_u64(w, len);
	put(w, data, len);
}

static void put_text(struct writer *w, const char *text)
{
	put_bytes(w, text ? text : "", text ? strlen(text) : 0);
}

static void put_person(struct writer *w, const struct session *s)
{
	const struct resume *r = s->resume;

	put_u8(w, s->state == SESSION_MISSED ? SESSION_MISSED : SESSION_AWAY);
	put_u8(w, s->side);
	put_u8(w, s->caps);
	put_u8(w, s->mode);
	put_text(w, s->name);
	put_text(w, s->room);
	put(w, r->token, sizeof(r->token));
	put_u64(w, r->read);
	put_u64(w, r->sent);
	put_u64(w, r->acked);
	put_u64(w, r->acked_told);
	/* Someone connected now is away from the next daemon's start on. */
	put_u64(w, s->conn ? 0 : r->away_since);
	put_u64(w, r->missed_relayed);
	put_u8(w, r->missed_bye);
	put_u8(w, r->missed_mode);
	put_text(w, r->missed_peer);
	put_u64(w, resume_stored_length(r));
	if (!w->failed && resume_store(r, w->out) < 0)
		w->failed = true;
}

static void put_conversation(struct writer *w, const struct conversation *c)
{
	put_u8(w, c->turn.mode);
	put_u8(w, (unsigned)c->turn.next);
	put_u8(w, c->done[0]);
	put_u8(w, c->done[1]);
	put_u8(w, c->idle_warned);
	put_u64(w, c->last_line_ms);
	put_u64(w, c->relayed[0]);
	put_u64(w, c->relayed[1]);
	put_person(w, c->side[0]);
	put_person(w, c->side[1]);
}

/* The body: the conversations both of whose people may resume, then those
 * who missed the end of theirs. mark: note in each that it is kept. */
int state_encode(struct server *server, struct buffer *out, bool mark)
{
	struct writer w = {out, false};
	struct session *s;
	uint64_t conversations = 0, missed = 0;

	LIST_FOREACH(s, &server->sessions, entry) {
		if (!session_is_resumable(s))
			continue;
		if (mark)
			s->resume->kept = true;
		if (s->conversation && s->side == 0)
			conversations++;
		else if (s->state == SESSION_MISSED)
			missed++;
	}
	put_u64(&w, conversations);
	LIST_FOREACH(s, &server->sessions, entry)
		if (session_is_resumable(s) && s->conversation && s->side == 0)
			put_conversation(&w, s->conversation);
	put_u64(&w, missed);
	LIST_FOREACH(s, &server->sessions, entry)
		if (session_is_resumable(s) && s->state == SESSION_MISSED)
			put_person(&w, s);
	return w.failed ? -1 : 0;
}

/* --- Reading ------------------------------------------------------------ */

struct reader {
	const char *data;
	size_t left;
	bool failed;
	const char *why; /* what did not make sense, for the log */
};

static const char *take(struct reader *r, size_t len)
{
	if (r->failed || len > r->left) {
		r->failed = true;
		return NULL;
	}
	const char *at = r->data;
	r->data += len;
	r->left -= len;
	return at;
}

static unsigned get_u8(struct reader *r)
{
	const char *at = take(r, 1);
	return at ? (uint8_t)*at : 0;
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t value = 0;
	const char *at = take(r, sizeof(value));
	if (at)
		memcpy(&value, at, sizeof(value));
	return value;
}

static const char *get_bytes(struct reader *r, size_t *len)
{
	uint64_t n = get_u64(r);
	*len = (size_t)n;
	return take(r, *len);
}

/* A name as it was written: valid, or the state is refused. */
static char *get_name(struct reader *r, bool may_be_empty)
{
	size_t len;
	const char *text = get_bytes(r, &len);
	if (text == NULL || (len == 0 && !may_be_empty) || (len && !protocol_valid_name(text, len))) {
		r->failed = true;
		return NULL;
	}
	char *copy = strndup(text, len);
	if (copy == NULL)
		r->failed = true;
	return copy;
}

/* One person, made AWAY in conversation (at side) or MISSED without one. */
static struct session *get_person(struct server *server, struct reader *r,
				  struct conversation *conversation)
{
	unsigned state = get_u8(r), side = get_u8(r), caps = get_u8(r), mode = get_u8(r);
	char *name = get_name(r, false), *room = get_name(r, true), *peer = NULL;
	const char *token = take(r, PROTOCOL_TOKEN_HEX), *replay;
	struct resume *resume = resume_create(server->config.server.max_queue);
	size_t replay_len;

	if (resume && token) {
		memcpy(resume->token, token, PROTOCOL_TOKEN_HEX);
		resume->read = get_u64(r);
		resume->sent = get_u64(r);
		resume->acked = get_u64(r);
		resume->acked_told = get_u64(r);
		resume->away_since = get_u64(r);
		resume->missed_relayed = get_u64(r);
		resume->missed_bye = (uint8_t)get_u8(r);
		resume->missed_mode = (uint8_t)get_u8(r);
		peer = get_name(r, true);
		replay = get_bytes(r, &replay_len);
		if (r->failed || !resume_restore_replay(resume, replay, replay_len))
			r->failed = true;
	}
	bool sound = !r->failed && resume && side < 2 && mode < CHAT_MODE_COUNT &&
		     caps < (1u << PROTOCOL_CAP_COUNT) && resume->missed_mode < CHAT_MODE_COUNT &&
		     resume->missed_bye < BYE_UNKNOWN &&
		     (conversation ? state == SESSION_AWAY : state == SESSION_MISSED);
	if (!sound) {
		if (r->why == NULL)
			r->why = r->failed ? "a person's fields" : "a person's values";
		r->failed = true;
		resume_destroy(resume);
		free(name);
		free(room);
		free(peer);
		return NULL;
	}
	resume->ended = conversation == NULL;
	resume->missed_peer = peer && *peer ? peer : NULL;
	if (resume->missed_peer == NULL)
		free(peer);
	struct session *session = session_restore(server, resume, name, room, (uint8_t)caps,
						  (enum chat_mode)mode, conversation, (int)side);
	r->failed = session == NULL;
	return session;
}

static bool get_conversation(struct server *server, struct reader *r)
{
	unsigned mode = get_u8(r), next = get_u8(r);
	struct conversation *c = conversation_create(NULL, NULL, (enum chat_mode)(mode & 1), 0);

	if (c == NULL || mode >= CHAT_MODE_COUNT || next > 1) {
		r->why = "a conversation's mode or turn";
		conversation_destroy(c);
		return false;
	}
	c->turn.next = (int)next;
	c->done[0] = get_u8(r);
	c->done[1] = get_u8(r);
	c->idle_warned = get_u8(r);
	c->last_line_ms = get_u64(r);
	c->relayed[0] = get_u64(r);
	c->relayed[1] = get_u64(r);
	/* The session module owns the conversation once a side is made (and
	 * state_load forgets both if the second fails). */
	if (get_person(server, r, c) == NULL) {
		conversation_destroy(c);
		return false;
	}
	return get_person(server, r, c) != NULL;
}

const char *state_decode(struct server *server, const char *body, size_t len, size_t *at)
{
	struct reader r = {body, len, false, NULL};
	uint64_t conversations = get_u64(&r), missed = 0;

	for (uint64_t i = 0; i < conversations && !r.failed; i++)
		if (!get_conversation(server, &r))
			r.failed = true;
	if (!r.failed)
		missed = get_u64(&r);
	for (uint64_t i = 0; i < missed && !r.failed; i++)
		if (get_person(server, &r, NULL) == NULL)
			r.failed = true;
	*at = len - r.left;
	if (!r.failed && r.left != 0)
		return "bytes after the end";
	return r.failed ? (r.why ? r.why : "its length") : NULL;
}
