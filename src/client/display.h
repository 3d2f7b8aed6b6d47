/*
 * display: makes text from the network safe for a terminal. Nothing a
 * partner or a server sends may move the cursor, retitle the window or
 * clear the screen, so every control character is shown escaped: C0 and
 * DEL in caret notation (^[ for ESC), C1 as <U+0085>, and bytes that are
 * not UTF-8 as \xNN. Pure; the client calls it for every line it prints.
 */
#ifndef TURNCHAT_DISPLAY_H
#define TURNCHAT_DISPLAY_H

#include <stddef.h>

#include "buffer.h"

/* Appends the safe form of text[0, len) to out. Returns 0, or -1 when out is full. */
int display_sanitize(struct buffer *out, const char *text, size_t len);

#endif
