/*
 * prompt: the words before the input line on a terminal, made from what
 * chat says of the conversation: "Barret> " when a line would go now,
 * "Barret (Cloud's turn, 2 queued)> ", "Barret (waiting 0:42)> ",
 * "Barret (Cloud is typing…)> ", "Barret (reconnecting…, Cloud's turn)> ".
 * Pure; used by ui_terminal.
 */
#ifndef TURNCHAT_PROMPT_H
#define TURNCHAT_PROMPT_H

#include <stddef.h>

#include "ui.h"

/* Columns a prompt leaves for typing at least, or it is shortened. */
#define PROMPT_ROOM 12

/*
 * Writes the prompt for name in status into out (size bytes); ellipsis is
 * what follows "typing" ("…", or "..." where the locale is not UTF-8). In
 * a window of cols columns (0: unknown) a prompt that would leave less than
 * PROMPT_ROOM columns drops the name, then everything but "> ".
 */
void prompt_build(char *out, size_t size, const char *name, const struct ui_status *status,
		  const char *ellipsis, unsigned cols);

#endif
