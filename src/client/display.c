/*
 * display: used by the client's chat module before any text reaches the
 * terminal, by ui to wrap lines and by ui_terminal to draw the input line.
 */
#include "display.h"

#include <stdio.h>
#include <wchar.h>

#include "utf8.h"

/* Below this many columns nothing is wrapped: there is no room for an indent. */
#define DISPLAY_MIN_WRAP 4
/* A continuation row keeps at least this much room for text, or the indent shrinks. */
#define DISPLAY_MIN_TEXT 10

bool display_is_escaped(uint32_t c)
{
	if (utf8_is_control(c))
		return true;
	/* Bidi controls reorder what follows, zero-width characters hide inside
	 * words (and join emoji the terminal and readline then measure apart),
	 * separators may start a new line. */
	return c == 0x061c || (c >= 0x200b && c <= 0x200f) || (c >= 0x2028 && c <= 0x202e) ||
	       (c >= 0x2060 && c <= 0x2064) || (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

/* Columns one code point takes; what the C library does not know takes one. */
static unsigned char_width(uint32_t c)
{
	int w = wcwidth((wchar_t)c);
	return w < 0 ? 1 : (unsigned)w;
}

/*
 * Appends the safe form of the n bytes at s (code point c when n > 0; n 0:
 * the byte at s is not UTF-8). Adds its width to *width when width is not NULL.
 */
static int put_safe(struct buffer *out, const unsigned char *s, size_t n, uint32_t c, unsigned *width)
{
	char escaped[16];
	int len;

	if (n == 0) {
		len = snprintf(escaped, sizeof(escaped), "\\x%02X", s[0]);
	} else if (utf8_is_control(c) && c < 0x80) {
		escaped[0] = '^';
		escaped[1] = (char)(c ^ 0x40); /* ESC -> ^[, DEL -> ^? */
		len = 2;
	} else if (display_is_escaped(c)) {
		len = snprintf(escaped, sizeof(escaped), "<U+%04X>", (unsigned)c);
	} else {
		if (width)
			*width += char_width(c);
		return buffer_append(out, s, n);
	}
	if (width)
		*width += (unsigned)len;
	return buffer_append(out, escaped, (size_t)len);
}

int display_sanitize(struct buffer *out, const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;

	for (size_t i = 0; i < len;) {
		uint32_t c = 0;
		size_t n = utf8_decode(s + i, len - i, &c);
		if (put_safe(out, s + i, n, c, NULL) < 0)
			return -1;
		i += n ? n : 1;
	}
	return 0;
}

static int put_spaces(struct buffer *out, unsigned count)
{
	static const char spaces[] = "        ";
	while (count > 0) {
		unsigned n = count < 8 ? count : 8;
		if (buffer_append(out, spaces, n) < 0)
			return -1;
		count -= n;
	}
	return 0;
}

int display_input(struct buffer *out, const char *line, size_t len, size_t point, unsigned col,
		  size_t *drawn_point)
{
	const unsigned char *s = (const unsigned char *)line;
	size_t start = buffer_length(out);
	unsigned x = col;

	*drawn_point = 0;
	for (size_t i = 0; i < len;) {
		uint32_t c = 0;
		size_t n = utf8_decode(s + i, len - i, &c);
		int rc;

		if (point >= i)
			*drawn_point = buffer_length(out) - start;
		if (n == 1 && c == '\t') {
			unsigned tab = 8 - x % 8;
			x += tab;
			rc = put_spaces(out, tab);
		} else {
			rc = put_safe(out, s + i, n, c, &x);
		}
		if (rc < 0)
			return -1;
		i += n ? n : 1;
	}
	if (point >= len)
		*drawn_point = buffer_length(out) - start;
	return 0;
}

/* The next character of safe text: its length (at least 1) and width. */
static size_t next_char(const char *text, size_t len, unsigned *width)
{
	uint32_t c = 0;
	size_t n = utf8_decode((const unsigned char *)text, len, &c);
	*width = n ? char_width(c) : 1;
	return n ? n : 1;
}

unsigned display_width(const char *text, size_t len)
{
	unsigned total = 0, w;
	for (size_t i = 0; i < len;) {
		i += next_char(text + i, len - i, &w);
		total += w;
	}
	return total;
}

void display_cursor(const char *text, size_t len, unsigned cols, bool more, unsigned *row,
		    unsigned *column)
{
	unsigned y = 0, x = 0, w;

	for (size_t i = 0; i < len && cols > 0;) {
		i += next_char(text + i, len - i, &w);
		if (x + w > cols) {
			y++;
			x = 0;
		}
		x += w;
	}
	/* A row filled to the last column: the cursor is on what follows, if anything. */
	if (cols > 0 && x >= cols && more) {
		y++;
		x = 0;
	}
	*row = y;
	*column = x;
}

struct wrap {
	struct buffer *out;
	unsigned x;      /* the column the next character goes to */
	unsigned limit;  /* the columns a row may use */
	unsigned indent; /* spaces that start a continuation row */
};

static int new_row(struct wrap *wrap)
{
	wrap->x = wrap->indent;
	if (buffer_append(wrap->out, "\n", 1) < 0)
		return -1;
	return put_spaces(wrap->out, wrap->indent);
}

/* A word that fits on no row is cut where a row ends. */
static int put_long_word(struct wrap *wrap, const char *word, size_t len)
{
	unsigned w;
	for (size_t i = 0, n; i < len; i += n) {
		n = next_char(word + i, len - i, &w);
		if (wrap->x + w > wrap->limit && wrap->x > wrap->indent && new_row(wrap) < 0)
			return -1;
		if (buffer_append(wrap->out, word + i, n) < 0)
			return -1;
		wrap->x += w;
	}
	return 0;
}

/* Puts one word after gap columns of spaces: on this row, or on the next without them. */
static int put_word(struct wrap *wrap, unsigned gap, const char *word, size_t len)
{
	unsigned width = display_width(word, len);

	if (wrap->x + gap + width <= wrap->limit) {
		if (put_spaces(wrap->out, gap) < 0)
			return -1;
		wrap->x += gap;
	} else if (width <= wrap->limit - wrap->indent) {
		if (new_row(wrap) < 0)
			return -1;
	} else {
		/* Longer than any row: it starts here, after its spaces if they fit. */
		if (wrap->x + gap < wrap->limit) {
			if (put_spaces(wrap->out, gap) < 0)
				return -1;
			wrap->x += gap;
		}
		return put_long_word(wrap, word, len);
	}
	wrap->x += width;
	return buffer_append(wrap->out, word, len);
}

int display_wrap(struct buffer *out, const char *text, size_t len, unsigned col, unsigned indent,
		 unsigned cols)
{
	if (cols < DISPLAY_MIN_WRAP)
		return buffer_append(out, text, len);

	struct wrap wrap = {.out = out, .x = col, .limit = cols - 1, .indent = indent};
	unsigned text_col = 0, gap = 0; /* text_col: where TAB stops are counted from */

	if (wrap.indent + DISPLAY_MIN_TEXT > wrap.limit)
		wrap.indent = wrap.limit > DISPLAY_MIN_TEXT ? 2 : 1;
	if (wrap.indent == 0)
		wrap.indent = 1;
	for (size_t i = 0; i < len;) {
		if (text[i] == ' ' || text[i] == '\t') {
			unsigned w = text[i] == ' ' ? 1 : 8 - text_col % 8;
			gap += w;
			text_col += w;
			i++;
			continue;
		}
		size_t end = i;
		while (end < len && text[end] != ' ' && text[end] != '\t')
			end++;
		if (put_word(&wrap, gap, text + i, end - i) < 0)
			return -1;
		text_col += display_width(text + i, end - i);
		gap = 0;
		i = end;
	}
	/* Spaces at the end stay when they fit: the text is shown as sent. */
	if (gap > 0 && wrap.x + gap <= wrap.limit)
		return put_spaces(out, gap);
	return 0;
}
