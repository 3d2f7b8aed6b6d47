/*
 * fuzz_clients: the far ends of fuzz_session's socketpairs, each a model of
 * one protocol client that checks everything the daemon says to it. Used
 * only by fuzz_session.c, which decides when they write, read and close.
 */
#ifndef TURNCHAT_FUZZ_CLIENTS_H
#define TURNCHAT_FUZZ_CLIENTS_H

#include <stdbool.h>
#include <stddef.h>

#include "protocol.h"

#define FUZZ_MAX_CLIENTS 12

struct client {
	int fd;             /* our end; -1 once we closed it */
	unsigned long id;   /* the daemon's session id */
	bool reading, shut; /* we read what arrives; we half-closed */
	bool hello, waiting, paired, bye, eof, must_hear_bye;
	bool relayed; /* RELAYED came: BYE must come next */
	int lines;    /* lines read */
	int partner;  /* index, -1 before relay_start */
	enum chat_mode mode;
	enum first_speaker first;
	size_t match; /* MSGs matched so far in the partner's messages */
	char in[8192];
	size_t in_len;
	char *wrote; /* every byte the daemon may have read from us */
	size_t wrote_len, scanned;
	size_t *msg_off, *msg_len, msg_count; /* the messages in it */
	bool *msg_action;                     /* that message was a /me */
};

struct clients {
	struct client c[FUZZ_MAX_CLIENTS];
	int count;
	size_t max_line_ever;    /* the longest a relayed line may be */
	const char *server_name; /* what HELLO must say */
	bool trace;              /* FUZZ_TRACE=1: print what is read and written */
};

/* A new client on our end fd of a socketpair, for daemon session id. */
void clients_add(struct clients *all, int fd, unsigned long id);
/* Index of the client of session id; aborts if there is none. */
int clients_by_id(const struct clients *all, unsigned long id);
/* relay_start paired these two sessions. */
void clients_paired(struct clients *all, unsigned long waiter, unsigned long caller);
/* Reads and checks what arrived for those reading (all of them if force). */
void clients_read(struct clients *all, bool force);
void clients_free(struct clients *all);

/* Sends what the kernel takes now; only that is what the daemon may read. */
void client_write(struct clients *all, struct client *c, const char *data, size_t len);
void client_shut(struct client *c);
void client_close(struct client *c);

#endif
