/*
 * state: the conversations that may be resumed, kept outside the process
 * so that a restart, a crash or a package upgrade ends none of them. They
 * are written, versioned and checksummed, into a memfd that the service
 * manager holds for the service (its file descriptor store, through
 * activation.c): at least once a second while something changed, and last
 * when the daemon stops. The next turnchatd reads them back at start, and
 * the people come back with /resume as after any dropped connection.
 * Called by turnchatd's main (state_start), the server's tick and its stop.
 */
#ifndef TURNCHAT_STATE_H
#define TURNCHAT_STATE_H

#include <stdbool.h>

struct server;

/* The format's version: a daemon reads only its own, and discards others. */
#define STATE_VERSION 1
/* A state whose loading ended the daemon this many times is discarded. */
#define STATE_MAX_ATTEMPTS 2

/*
 * Takes the state the service manager passed (if any) and restores its
 * conversations, then keeps the server's state from now on, when a service
 * manager can hold it. Without one (standalone, inetd) nothing is kept, and
 * a stop ends every conversation as in protocol version 1.
 */
void state_start(struct server *server);

/* Writes the state if it changed since it was last written. */
void state_save_if_changed(struct server *server);

/* The daemon stops: writes the state, marking whose part is in it; those
 * are let go without a word (session_shutdown), to resume with the next
 * daemon. False when nothing is kept. */
bool state_save_for_stop(struct server *server);

/* What a /resume that names nothing is told, when a state was discarded at
 * start; NULL otherwise. */
const char *state_lost_note(const struct server *server);

/* Forgets the memfd at exit. */
void state_finish(struct server *server);

#endif
