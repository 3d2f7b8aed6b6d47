/*
 * state: the resumable conversations as bytes, and the memfd they live in.
 * Called by turnchatd's main, the server's tick and its stop (state.h).
 * The session module makes the restored sessions (session_restore); this
 * file only reads sessions to write them.
 *
 * The memfd holds a header and a body. The whole of it is written with one
 * pwrite, which a signal cannot cut short: a daemon killed at any moment
 * leaves either the last state or the one before. Times are CLOCK_MONOTONIC
 * milliseconds, which go on across restarts (the store itself does not
 * survive a reboot).
 */
#include "state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "activation.h"
#include "conversation.h"
#include "hash.h"
#include "log.h"
#include "resume.h"
#include "server.h"
#include "session.h"

static const char magic[8] = {'t', 'u', 'r', 'n', 'c', 'h', 'a', 't'};

struct header {
	char magic[8];
	uint32_t version;
	uint32_t attempts; /* loads begun: one that never ended crashed the daemon */
	uint64_t length;   /* of the body */
	uint32_t checksum; /* FNV-1a of the body */
	uint32_t unused;
};

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
	put_bytes(w, buffer_peek(&r->replay), buffer_length(&r->replay));
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
static int encode(struct server *server, struct buffer *out, bool mark)
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

static int write_all(int fd, const struct buffer *out)
{
	const char *data = buffer_peek(out);
	size_t len = buffer_length(out), done = 0;

	while (done < len) {
		ssize_t n = pwrite(fd, data + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	/* Only what follows the state goes; the header says where it ends. */
	return ftruncate(fd, (off_t)len);
}

static int save(struct server *server, bool mark)
{
	struct buffer out;
	struct header h = {.version = STATE_VERSION};
	int rc = -1;

	buffer_init(&out, SIZE_MAX);
	memcpy(h.magic, magic, sizeof(magic));
	if (buffer_append(&out, &h, sizeof(h)) == 0 && encode(server, &out, mark) == 0) {
		struct header *head = (struct header *)out.data;
		head->length = buffer_length(&out) - sizeof(h);
		head->checksum = hash_fnv1a(out.data + sizeof(h), head->length);
		rc = write_all(server->state_fd, &out);
	}
	if (rc < 0)
		log_warn("cannot write the conversations' state; a restart now would end them");
	buffer_release(&out);
	server->state_changed = rc < 0;
	return rc;
}

void state_save_if_changed(struct server *server)
{
	if (server->state_fd >= 0 && server->state_changed && !server->stopping)
		save(server, false);
}

bool state_save_for_stop(struct server *server)
{
	if (server->state_fd < 0)
		return false;
	if (save(server, true) < 0) {
		/* Nothing was written: better a BYE to everyone than silence. */
		struct session *s;
		LIST_FOREACH(s, &server->sessions, entry)
			if (s->resume)
				s->resume->kept = false;
		return false;
	}
	log_notice("conversations kept for the next turnchatd: %u", server_conversations(server));
	return true;
}

/* --- Reading ------------------------------------------------------------ */

struct reader {
	const char *data;
	size_t left;
	bool failed;
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

/* Records as resume.c writes them: a number, then a line up to its LF. */
static bool replay_is_sound(const char *data, size_t len)
{
	size_t at = 0;
	while (at < len) {
		if (len - at < sizeof(uint64_t) + 1)
			return false;
		const char *lf = memchr(data + at + sizeof(uint64_t), '\n',
					len - at - sizeof(uint64_t));
		if (lf == NULL)
			return false;
		at = (size_t)(lf - data) + 1;
	}
	return true;
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
		if (!r->failed && replay_is_sound(replay, replay_len)) {
			/* The cap may have been lowered meanwhile: what was kept stays. */
			resume->replay.limit = replay_len > resume->replay.limit
						       ? replay_len
						       : resume->replay.limit;
			r->failed = buffer_append(&resume->replay, replay, replay_len) < 0;
		} else {
			r->failed = true;
		}
	}
	bool sound = !r->failed && resume && side < 2 && mode < CHAT_MODE_COUNT &&
		     resume->missed_mode < CHAT_MODE_COUNT && resume->missed_bye < BYE_UNKNOWN &&
		     (conversation ? state == SESSION_AWAY : state == SESSION_MISSED) &&
		     resume->acked <= resume->sent;
	if (!sound) {
		r->failed = true;
		resume_destroy(resume);
		free(name);
		free(room);
		free(peer);
		return NULL;
	}
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

static bool decode(struct server *server, const char *body, size_t len)
{
	struct reader r = {body, len, false};
	uint64_t conversations = get_u64(&r);

	for (uint64_t i = 0; i < conversations && !r.failed; i++)
		if (!get_conversation(server, &r))
			return false;
	uint64_t missed = get_u64(&r);
	for (uint64_t i = 0; i < missed && !r.failed; i++)
		if (get_person(server, &r, NULL) == NULL)
			return false;
	return !r.failed && r.left == 0;
}

/* Reads the state in fd; false, with why logged, when it is discarded. */
static bool load(struct server *server, int fd)
{
	struct header h;
	struct stat st;
	char *body = NULL;
	bool ok = false;

	if (fstat(fd, &st) < 0 || (size_t)st.st_size < sizeof(h) ||
	    pread(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    memcmp(h.magic, magic, sizeof(magic)) != 0) {
		log_warnx("the kept state is not turnchatd's; discarding it");
		return false;
	}
	if (h.version != STATE_VERSION) {
		log_warnx("the kept state is of version %u, this turnchatd reads %u; discarding it",
			  h.version, STATE_VERSION);
		return false;
	}
	if (h.attempts >= STATE_MAX_ATTEMPTS) {
		log_warnx("loading the kept state ended turnchatd %u times; discarding it",
			  h.attempts);
		return false;
	}
	/* Counted before it is read: should reading it end this daemon, the
	 * next one knows. */
	h.attempts++;
	if (h.length > (uint64_t)st.st_size - sizeof(h) ||
	    pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h) ||
	    (body = malloc(h.length ? h.length : 1)) == NULL ||
	    pread(fd, body, h.length, sizeof(h)) != (ssize_t)h.length) {
		log_warnx("the kept state cannot be read; discarding it");
	} else if (hash_fnv1a(body, h.length) != h.checksum) {
		log_warnx("the kept state is damaged (checksum); discarding it");
	} else if (!decode(server, body, h.length)) {
		log_warnx("the kept state does not make sense; discarding it");
		session_forget_restored(server);
	} else {
		ok = true;
	}
	free(body);
	return ok;
}

void state_start(struct server *server)
{
	int fd = activation_take_state();

	if (fd >= 0) {
		if (load(server, fd)) {
			log_notice("%u conversation%s and %u people kept by the last turnchatd; they "
				   "have %u seconds to come back",
				   server_conversations(server),
				   server_conversations(server) == 1 ? "" : "s", server->clients,
				   server->config.server.resume_timeout);
		} else {
			server->state_lost = true;
			close(fd);
			activation_forget_state();
			fd = -1;
		}
	}
	if (fd < 0 && activation_can_keep_state()) {
		fd = memfd_create("turnchatd-state", MFD_CLOEXEC);
		if (fd < 0 || activation_keep_state(fd) < 0) {
			log_warn("cannot keep state with the service manager; a restart will end "
				 "every conversation");
			if (fd >= 0)
				close(fd);
			fd = -1;
		}
	}
	server->state_fd = fd;
	server->state_changed = fd >= 0;
}

const char *state_lost_note(const struct server *server)
{
	return server->state_lost ? "No conversation to resume with that token: the server "
				    "restarted and could not keep its conversations"
				  : NULL;
}

void state_finish(struct server *server)
{
	if (server->state_fd >= 0)
		close(server->state_fd);
	server->state_fd = -1;
}
