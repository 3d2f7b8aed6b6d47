/*
 * session: one person connected to the daemon, as an explicit state
 * machine: NEW (may set name and mode) -> WAITING (at a meeting point) ->
 * PAIRED (in a conversation) -> CLOSING (BYE sent, output draining), and
 * GONE before it is created and once it is freed. Only session.c writes
 * the state; it also owns the conversations (private to it).
 */
#ifndef TURNCHAT_SESSION_H
#define TURNCHAT_SESSION_H

#include <stdint.h>

#include "address.h"
#include "connection.h"
#include "limits.h"
#include "protocol.h"
#include "server.h"

enum session_state {
	SESSION_GONE,
	SESSION_NEW,
	SESSION_WAITING,
	SESSION_PAIRED,
	SESSION_CLOSING,
};

struct conversation;

/* Every connection has one, so it is kept small (0.5 KiB a connection in all
 * is a benchmark target): the small fields packed, the rarely needed ones
 * made on demand. */
struct session {
	struct server *server;
	struct connection *conn;
	LIST_ENTRY(session) entry;         /* in server->sessions */
	struct conversation *conversation; /* while PAIRED */
	struct refusals *refused;          /* once a line was refused */
	unsigned long id;
	uint64_t connected_ms;
	struct rate_bucket rate;
	union peer_address peer;
	char name[PROTOCOL_NAME_MAX + 1];
	char room[PROTOCOL_NAME_MAX + 1];
	uint8_t state;       /* enum session_state, written by session.c alone */
	uint8_t mode;        /* enum chat_mode */
	uint8_t side;        /* 0 (waited) or 1 (came second) within the conversation */
	uint8_t ipv6_prefix; /* as counted on arrival, so it is uncounted the same */
};

/* The address key it was counted under: SESSION_KEY(s) in an argument list. */
static inline const struct address_key *session_key(const struct session *s, struct address_key *key)
{
	address_key_from(key, &s->peer.sa, s->ipv6_prefix);
	return key;
}
#define SESSION_KEY(s) session_key((s), &(struct address_key){0})

/* Takes over fd. Returns NULL (fd closed) when out of memory. */
struct session *session_create(struct server *server, int fd, const struct sockaddr *addr,
			       socklen_t addr_len);

/* The peer's address as text, for log lines. */
#define SESSION_WHERE(s) \
	peer_address_text(&(s)->peer, (char[PEER_ADDRESS_TEXT_MAX]){0}, PEER_ADDRESS_TEXT_MAX)

/* The partner while PAIRED, else NULL. */
struct session *session_partner(const struct session *session);

/* The once-a-second look at timeouts: idle conversation, join, slow reader, closing. */
void session_tick(struct session *session, uint64_t now);

/* Sends BYE with reason and closes this session's connection gracefully. */
void session_bye(struct session *session, enum bye_reason reason, const char *text);

/* The server stops: BYE shutdown, to both sides of a conversation. */
void session_shutdown(struct session *session);

#endif
