/*
 * chat: the client's side of one conversation, from the server's HELLO to
 * its BYE. Lines typed (or piped) on standard input are queued and go to
 * the server when the turn allows; what the server says is shown, made safe
 * first. Called by turnchat's main.
 */
#ifndef TURNCHAT_CHAT_H
#define TURNCHAT_CHAT_H

#include <stdbool.h>

#include "protocol.h"

struct chat_options {
	const char *host; /* as the user named it, for messages */
	unsigned port;
	const char *name;
	const char *room; /* empty: the server's default */
	enum chat_mode mode;
	bool interactive;     /* a terminal: line editing with readline */
	bool timestamps;      /* show the time before each line */
	bool color;           /* colour names (a terminal, and no NO_COLOR) */
	bool typing;          /* tell the partner when we type; show when they do */
	bool bell;            /* ring the terminal bell when the partner's line arrives */
	const char *security; /* over TLS: "TLSv1.3, key as remembered"; NULL in plain text */
	const char *tls_ca;   /* client.tls_ca: NULL to trust the key pinned */
	bool resume;          /* ask for resume: reconnect after a drop and carry on */
	unsigned keepalive;   /* seconds of silence before /ping; 0: never */
};

struct tls;

/* Runs the conversation on the connected socket fd, encrypted with tls if
 * not NULL (the conversation takes it over); returns the exit status. */
int chat_run(int fd, struct tls *tls, const struct chat_options *options);

#endif
