/*
 * session: one person connected to the daemon, as an explicit state
 * machine: NEW (may set name, mode and capabilities) -> WAITING (at a
 * meeting point) -> PAIRED (in a conversation) -> CLOSING (BYE sent, output
 * draining), and GONE before it is created and once it is freed. Someone
 * granted resume whose connection drops is AWAY (PAIRED without a
 * connection) until they come back or resume_timeout ends their part, and
 * MISSED when the conversation ended meanwhile (its last lines and BYE
 * kept for them). Only the session module (session.c, session_resume.c)
 * writes the state; it also owns the conversations, whose rules are the
 * conversation module's (conversation.h, conversation.c). command.c turns each line into one of the
 * session_* actions below.
 */
#ifndef TURNCHAT_SESSION_H
#define TURNCHAT_SESSION_H

#include <stdint.h>

#include "address.h"
#include "connection.h"
#include "conversation.h"
#include "quota.h"
#include "resume.h"
#include "protocol.h"
#include "server.h"

enum session_state {
	SESSION_GONE,
	SESSION_NEW,
	SESSION_WAITING,
	SESSION_PAIRED,
	SESSION_AWAY,   /* paired, its connection gone: resume may bring it back */
	SESSION_MISSED, /* away when its conversation ended: resume hears how */
	SESSION_CLOSING,
};

/* The name a session has before /name ("guest"); not allocated. */
extern const char session_default_name[];

/* Every connection has one, so it is kept small (0.5 KiB a connection in all
 * is a benchmark target): the small fields in bits, in the 4 bytes the
 * address leaves before the next pointer, so that it fits malloc's 144-byte
 * chunk; the rarely needed ones made on demand. */
struct session {
	struct server *server;
	struct connection *conn;           /* NULL while AWAY or MISSED */
	LIST_ENTRY(session) entry;         /* in server->sessions */
	struct conversation *conversation; /* while PAIRED or AWAY */
	struct refusals *refused;          /* once a line was refused */
	struct resume *resume;             /* once paired, if granted resume */
	unsigned long id;
	uint64_t connected_ms;
	struct rate_bucket rate;
	union peer_address peer;
	unsigned state : 4;           /* enum session_state, written by session.c alone */
	unsigned caps : 6;            /* enum protocol_cap: what /caps granted */
	unsigned mode : 1;            /* enum chat_mode */
	unsigned side : 1;            /* 0 (waited) or 1 (came second) within the conversation */
	unsigned ipv6_prefix : 8;     /* as counted on arrival, so it is uncounted the same */
	unsigned resume_failures : 8; /* /resume refused on this connection */
	bool rate_paused : 1;         /* over the rate with resume: reading waits for the tick */
	bool turn_held : 1;           /* a line out of turn with resume: it waits for the turn */
	const char *name;             /* session_default_name, or its own copy */
	char *room;                   /* from /join until paired; NULL after */
};
_Static_assert(SESSION_CLOSING < 16 && PROTOCOL_CAP_COUNT <= 6 && CHAT_MODE_COUNT <= 2,
	       "struct session's bit fields hold every value");

/* The address key it was counted under: SESSION_KEY(s) in an argument list. */
static inline const struct address_key *session_key(const struct session *s, struct address_key *key)
{
	address_key_from(key, &s->peer.sa, s->ipv6_prefix);
	return key;
}
#define SESSION_KEY(s) session_key((s), &(struct address_key){0})

struct tls_config;

/* Takes over fd; its lines go to handler (command.c's), with the session as
 * context; with tls, the connection is encrypted. Returns NULL (fd closed)
 * when out of memory. */
struct session *session_create(struct server *server, int fd, const struct sockaddr *addr,
			       socklen_t addr_len, const struct connection_handler *handler,
			       struct tls_config *tls);
/* The connection's other events, for that handler. */
void session_drained(void *session);
void session_end(void *session, enum connection_end end);

/* The peer's address as text, for log lines. */
#define SESSION_WHERE(s) \
	peer_address_text(&(s)->peer, (char[PEER_ADDRESS_TEXT_MAX]){0}, PEER_ADDRESS_TEXT_MAX)

/* The partner while in a conversation, else NULL. Inline: every line
 * relayed asks for it several times. */
static inline struct session *session_partner(const struct session *session)
{
	return session->conversation ? session->conversation->side[1 - session->side] : NULL;
}

/* The once-a-second look at timeouts: idle conversation, join, slow reader, closing. */
void session_tick(struct session *session, uint64_t now);

/* Ends the connection at once, without a word to a peer that would not
 * understand one; why goes to the log. */
void session_drop(struct session *session, const char *why);

/* Sends BYE with reason and closes this session's connection gracefully. */
void session_bye(struct session *session, enum bye_reason reason, const char *text);

/* The server stops: BYE shutdown, to both sides of a conversation. */
void session_shutdown(struct session *session);

/*
 * What a person's lines ask for, called by command.c. Each returns the
 * code to refuse the line with, or ERR_UNKNOWN when it was done.
 */
enum error_code session_join(struct session *session, const char *room, size_t len);
/* A message, or with action a /me, to the partner. */
enum error_code session_say(struct session *session, const char *text, size_t len, bool action);
enum error_code session_typing(struct session *session);
enum error_code session_done(struct session *session);
void session_quit(struct session *session);

/* Resume (session_resume.c). session's client said something on its
 * connection: the token it came back with is spent for good. Inline, as
 * session_numbered_read: asked for every line. */
void session_forget_previous_token(struct session *session);
static inline void session_heard(struct session *session)
{
	if (session->resume && session->resume->previous_good)
		session_forget_previous_token(session);
}
/* A numbered line (protocol_is_numbered) of
 * session's was read; after it was acted on (refused or not), the sender
 * hears how far its lines have got. */
static inline void session_numbered_read(struct session *session)
{
	if (session->resume && session->state == SESSION_PAIRED)
		session->resume->read++;
}
void session_numbered_done(struct session *session);
/* /ack: the partner's lines up to count arrived. */
enum error_code session_ack(struct session *session, unsigned long count);
/* Whether count acknowledges anything new (such an /ack costs no rate). */
bool session_ack_is_news(const struct session *session, unsigned long count);
/* /resume: session (a new connection) takes the place of the person the
 * token names; session itself is freed when that succeeds. */
enum error_code session_resume(struct session *session, const char *token, unsigned long received);
/* Lines over the rate from someone granted resume are taken, and reading
 * waits for the next tick instead of refusing them. */
void session_over_rate(struct session *session);
/* The line just read was out of turn, from someone granted resume: it is
 * held (unread) until the turn comes, instead of refused. */
void session_wait_turn(struct session *session);

/* For state.c: whether session's part can outlive this daemon (it and its
 * partner, if any, granted resume). */
bool session_is_resumable(const struct session *session);
/* A person as the last daemon kept them: AWAY in conversation at side, or
 * MISSED when conversation is NULL. Takes over resume, name and room (even
 * when it fails, returning NULL). */
struct session *session_restore(struct server *server, struct resume *resume, char *name, char *room,
				uint8_t caps, enum chat_mode mode, struct conversation *conversation,
				int side);
/* A state that turned out unsound: every session restored from it goes
 * (at start, there are no others). */
void session_forget_restored(struct server *server);
/* Sends what a protocol_append_* call (its result rc) put in the output. */
void session_queued(struct session *session, int rc);
/* Ends this person's part for reason; a partner hears peer-lost. */
void session_expel(struct session *session, enum bye_reason reason);

#endif
