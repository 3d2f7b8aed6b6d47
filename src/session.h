/*
 * session: one person connected to the daemon, as an explicit state
 * machine: NEW (may set name and mode) -> WAITING (at a meeting point) ->
 * PAIRED (in a conversation) -> CLOSING (BYE sent, output draining).
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
	SESSION_NEW,
	SESSION_WAITING,
	SESSION_PAIRED,
	SESSION_CLOSING,
};

struct conversation;

/* Lines refused in the current window: logged one summary at a time, and
 * the count that tells a flood from someone typing fast. */
struct refusals {
	uint64_t since;        /* when the window began */
	unsigned rate_limited; /* refused for the rate in it */
	unsigned logged;       /* logged one by one in it */
	unsigned unlogged;     /* refused in it and not yet logged */
	enum error_code last;
};

struct session {
	struct server *server;
	struct connection *conn;
	struct session *prev, *next;
	enum session_state state;
	unsigned long id;
	char name[PROTOCOL_NAME_MAX + 1];
	char room[PROTOCOL_NAME_MAX + 1];
	enum chat_mode mode;
	struct conversation *conversation;
	int side; /* 0 or 1 within the conversation */
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
const char *session_address(const struct session *session, char *text, size_t size);
#define SESSION_WHERE(s) session_address((s), (char[PEER_ADDRESS_TEXT_MAX]){0}, PEER_ADDRESS_TEXT_MAX)

/* The once-a-second look at timeouts: join, slow reader, closing. */
void session_tick(struct session *session, uint64_t now);

/* Queues output appended by a protocol_append_* call; rc is that call's result. */
void session_queued(struct session *session, int rc);

/* True when more than half its output queue waits: it is not keeping up. */
bool session_backlogged(const struct session *session);

/* Answers the line just received with ERR code (it was not relayed), and
 * logs it, or counts it for the next summary; past the rate limit far too
 * often, ends the connection with BYE flood instead. */
void session_refuse(struct session *session, enum error_code code);

/* Sends BYE with reason and closes this session's connection gracefully. */
void session_bye(struct session *session, enum bye_reason reason, const char *text);

#endif
