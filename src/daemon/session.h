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

struct session {
	struct server *server;
	struct connection *conn;
	struct session *prev, *next;
	enum session_state state;
	unsigned long id;
	char name[PROTOCOL_NAME_MAX + 1];
	char room[PROTOCOL_NAME_MAX + 1];
	enum chat_mode mode;
	struct conversation *conversation; /* while PAIRED */
	int side;                          /* 0 (waited) or 1 (came second) within the conversation */
	union peer_address peer;
	struct address_key key; /* as counted on arrival, so it is uncounted the same */
	uint64_t connected_ms;
	struct rate_bucket rate;
	struct refusals refused;
};

/* Takes over fd. Returns NULL (fd closed) when out of memory. */
struct session *session_create(struct server *server, int fd, const struct sockaddr *addr,
			       socklen_t addr_len, const struct address_key *key);

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
