/*
 * state_codec: what state.c writes into its memfd and reads back: the
 * conversations both of whose people may resume, and those who missed the
 * end of theirs. Called by state.c alone.
 */
#ifndef TURNCHAT_STATE_CODEC_H
#define TURNCHAT_STATE_CODEC_H

#include <stdbool.h>
#include <stddef.h>

#include "buffer.h"

struct server;

/* Appends the body to out; with mark, notes in each session written that
 * it is kept (it then leaves quietly as the daemon stops). -1 when out
 * cannot take it. */
int state_encode(struct server *server, struct buffer *out, bool mark);
/* Restores the sessions and conversations of body; NULL, or what did not
 * make sense and *at which byte (some may have been restored then:
 * session_forget_restored). */
const char *state_decode(struct server *server, const char *body, size_t len, size_t *at);

#endif
