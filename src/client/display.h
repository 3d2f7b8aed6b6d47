/*
 * display: makes text safe for a terminal and lays it out. Nothing a
 * partner or a server sends may move the cursor, retitle the window, clear
 * the screen, reorder what is shown or hide a character, so every control
 * character is shown escaped: C0 and DEL in caret notation (^[ for ESC),
 * and as <U+XXXX> the C1 controls, the bidi controls (U+061C, U+200E,
 * U+200F, U+202A-U+202E, U+2066-U+2069), the zero-width characters (U+200B-
 * U+200D, U+2060-U+2064, U+FEFF) and the line and paragraph separators
 * (U+2028, U+2029); bytes that are not UTF-8 as \xNN.
 *
 * Widths are the C library's wcwidth() in the current locale, so the
 * caller sets an LC_CTYPE locale first. Pure: no I/O. Used by the chat
 * module (every line it shows), ui (wrapping a line at the terminal's
 * width), prompt (its width) and ui_terminal (drawing the input line,
 * finding the cursor after a resize).
 */
#ifndef TURNCHAT_DISPLAY_H
#define TURNCHAT_DISPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buffer.h"

/* True for a code point that is shown escaped, never as itself (but TAB). */
bool display_is_escaped(uint32_t c);

/* Appends the safe form of text[0, len) to out. Returns 0, or -1 when out is full. */
int display_sanitize(struct buffer *out, const char *text, size_t len);

/*
 * The input line as the terminal shows it: line[0, len) made safe as above,
 * with TABs as spaces up to the next multiple of 8 counted from column col
 * (where the line starts, after the prompt), so that every character drawn
 * has the width the terminal gives it and the cursor stays where readline
 * thinks it is. *drawn_point is where byte offset point of the line is in
 * the result. Returns 0, or -1 when out is full.
 */
int display_input(struct buffer *out, const char *line, size_t len, size_t point, unsigned col,
		  size_t *drawn_point);

/* Columns text[0, len) takes, safe text without TABs. */
unsigned display_width(const char *text, size_t len);

/*
 * Where the cursor is after text[0, len) (safe, no TABs) is drawn from the
 * start of a row cols wide and wrapped by the terminal: its row (from 0) and
 * column. A wide character that does not fit at the end of a row moves to
 * the next row, as terminals do. When the text fills its last row exactly,
 * the cursor is at the start of the next row if a character follows it on
 * the line (more), else it waits at the end of the row (column cols).
 */
void display_cursor(const char *text, size_t len, unsigned cols, bool more, unsigned *row,
		    unsigned *column);

/*
 * Appends safe text[0, len) wrapped for a terminal cols wide, the first row
 * already holding col columns (a prefix such as a name). Rows break at
 * spaces where they can (the spaces at a break are dropped) and every row
 * after the first starts with indent spaces, fewer when the window is too
 * narrow for that but never none, so that text from the network never
 * starts a row. TABs become spaces (stops every 8 columns of the text). One
 * column is left free, in case the terminal finds a character wider than
 * the C library does. cols 0: no wrapping at all. Returns 0, or -1 when out
 * is full.
 */
int display_wrap(struct buffer *out, const char *text, size_t len, unsigned col, unsigned indent,
		 unsigned cols);

#endif
