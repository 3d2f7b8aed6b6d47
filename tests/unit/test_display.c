/*
 * Unit tests for display.c (terminal-safe text, the input line as drawn,
 * the cursor after a resize, wrapping) and buffer.c (the byte queue under
 * it and under every connection). Widths come from the C.UTF-8 locale.
 */
#include <errno.h>
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buffer.h"
#include "display.h"
#include "utf8.h"

#define S(lit) lit, sizeof(lit) - 1

/* Asserts the buffer holds exactly want[0, want_len). */
static void assert_holds(const struct buffer *b, const char *want, size_t want_len)
{
	assert_int_equal(buffer_length(b), want_len);
	if (want_len > 0)
		assert_memory_equal(buffer_peek(b), want, want_len);
}

/* The case a table-driven test is at; its teardown prints it if the test stopped there. */
static char at[160];

static int report_at(void **state)
{
	(void)state;
	if (at[0] != '\0')
		print_error("stopped at %s\n", at);
	at[0] = '\0';
	return 0;
}

/* --- display_sanitize ------------------------------------------------------ */

static void sanitized(const char *in, size_t len, const char *want)
{
	struct buffer out;

	snprintf(at, sizeof(at), "sanitize to \"%s\"", want);
	buffer_init(&out, 4096);
	assert_int_equal(display_sanitize(&out, in, len), 0);
	assert_holds(&out, want, strlen(want));
	buffer_release(&out);
	at[0] = '\0';
}

static void test_sanitize_unchanged(void **state)
{
	(void)state;
	sanitized("", 0, "");
	sanitized(S("Hello, world! ~{}[]\\"), "Hello, world! ~{}[]\\");
	sanitized(S("a\tb\t"), "a\tb\t");
	sanitized(S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0"),
		  "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xc2\xa0");
	sanitized(S("\xf4\x8f\xbf\xbf"), "\xf4\x8f\xbf\xbf");
}

static void test_sanitize_controls(void **state)
{
	(void)state;
	sanitized(S("\x1b"), "^[");
	sanitized(S("\x1b]0;title\x07"), "^[]0;title^G");
	sanitized(S("\x1b[2J"), "^[[2J");
	sanitized(S("a\x7f"), "a^?");
	sanitized(S("\0"), "^@");
	sanitized(S("x\0y"), "x^@y");
	sanitized(S("\r\n"), "^M^J");
	sanitized(S("\x01\x1f"), "^A^_");
	sanitized(S("\xc2\x9b"), "<U+009B>");
	sanitized(S("\xc2\x85"
		    "1"),
		  "<U+0085>1");
	sanitized(S("\xc2\x80\xc2\x9f"), "<U+0080><U+009F>");
}

/* Characters that reorder, hide or break lines are shown as code points. */
static void test_sanitize_bidi_zero_width_separators(void **state)
{
	(void)state;
	sanitized(S("abc\xe2\x80\xae"
		    "fed"),
		  "abc<U+202E>fed");
	sanitized(S("\xd8\x9c"), "<U+061C>");
	sanitized(S("\xe2\x80\x8e\xe2\x80\x8f"), "<U+200E><U+200F>");
	sanitized(S("\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad"),
		  "<U+202A><U+202B><U+202C><U+202D>");
	sanitized(S("\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9"),
		  "<U+2066><U+2067><U+2068><U+2069>");
	sanitized(S("a\xe2\x80\x8b\xe2\x80\x8c\xe2\x80\x8d"
		    "b"),
		  "a<U+200B><U+200C><U+200D>b");
	sanitized(S("\xe2\x81\xa0\xe2\x81\xa4\xef\xbb\xbf"), "<U+2060><U+2064><U+FEFF>");
	sanitized(S("one\xe2\x80\xa8two\xe2\x80\xa9three"), "one<U+2028>two<U+2029>three");
	/* The family emoji: three people joined by U+200D. */
	sanitized(S("\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7"),
		  "\xf0\x9f\x91\xa8<U+200D>\xf0\x9f\x91\xa9<U+200D>\xf0\x9f\x91\xa7");
	/* Their neighbours are ordinary text. */
	sanitized(S("\xe2\x80\x8a\xe2\x80\xaf\xe2\x81\x9f\xd8\x9b"),
		  "\xe2\x80\x8a\xe2\x80\xaf\xe2\x81\x9f\xd8\x9b");
}

static void test_sanitize_bad_utf8(void **state)
{
	(void)state;
	sanitized(S("\xff"), "\\xFF");
	sanitized(S("a\x80z"), "a\\x80z");
	sanitized(S("\xc3"), "\\xC3");
	sanitized(S("\xe2\x82"), "\\xE2\\x82");
	sanitized("\xc3\xa9", 1, "\\xC3"); /* the sequence goes on past len */
	sanitized(S("\xc0\xaf"), "\\xC0\\xAF");
	sanitized(S("\xed\xa0\x80"), "\\xED\\xA0\\x80");
	sanitized(S("\xc3\x1b"), "\\xC3^["); /* a control never hides inside a broken sequence */
	sanitized(S("\xe2\xc2\x9b"), "\\xE2<U+009B>");
	sanitized(S("\xf0\x9f\x98"
		    "A"),
		  "\\xF0\\x9F\\x98A");
}

/* Safe output: valid UTF-8 holding nothing display_is_escaped() names. */
static void assert_safe(const struct buffer *b)
{
	const unsigned char *s = (const unsigned char *)buffer_peek(b);
	size_t len = buffer_length(b);

	for (size_t i = 0; i < len;) {
		uint32_t c;
		size_t n = utf8_decode(s + i, len - i, &c);
		assert_int_not_equal(n, 0);
		assert_false(display_is_escaped(c));
		i += n;
	}
}

/* Every input of one and two bytes, and a pseudo-random sample of longer ones. */
static void test_sanitize_never_unsafe(void **state)
{
	struct buffer out;
	unsigned char in[6];
	uint32_t seed = 12345;

	(void)state;
	buffer_init(&out, 64);
	for (unsigned v = 0; v < 0x10000; v++) {
		in[0] = (unsigned char)(v >> 8);
		in[1] = (unsigned char)v;
		assert_int_equal(display_sanitize(&out, (const char *)in + 1, 1), 0);
		assert_int_equal(display_sanitize(&out, (const char *)in, 2), 0);
		assert_safe(&out);
		buffer_consume(&out, buffer_length(&out));
	}
	for (int round = 0; round < 200000; round++) {
		for (size_t i = 0; i < sizeof(in); i++) {
			seed = seed * 1103515245u + 12345u;
			in[i] = (unsigned char)(seed >> 16);
		}
		assert_int_equal(display_sanitize(&out, (const char *)in, sizeof(in)), 0);
		assert_safe(&out);
		buffer_consume(&out, buffer_length(&out));
	}
	buffer_release(&out);
}

/* Every code point on its own: the escaped ones escaped, the rest as they are. */
static void test_sanitize_every_code_point(void **state)
{
	struct buffer out;
	unsigned char in[4];

	(void)state;
	buffer_init(&out, 64);
	for (uint32_t c = 0; c <= 0x10ffff; c++) {
		size_t n;
		if (c >= 0xd800 && c <= 0xdfff)
			continue;
		if (c < 0x80) {
			in[0] = (unsigned char)c, n = 1;
		} else if (c < 0x800) {
			in[0] = (unsigned char)(0xc0 | c >> 6), n = 2;
		} else if (c < 0x10000) {
			in[0] = (unsigned char)(0xe0 | c >> 12), n = 3;
		} else {
			in[0] = (unsigned char)(0xf0 | c >> 18), n = 4;
		}
		for (size_t i = 1; i < n; i++)
			in[i] = (unsigned char)(0x80 | ((c >> (6 * (n - 1 - i))) & 0x3f));
		assert_int_equal(display_sanitize(&out, (const char *)in, n), 0);
		assert_safe(&out);
		if (display_is_escaped(c))
			assert_true(buffer_length(&out) > n || buffer_peek(&out)[0] == '^');
		else
			assert_holds(&out, (const char *)in, n);
		buffer_consume(&out, buffer_length(&out));
	}
	buffer_release(&out);
}

/* --- display_input ---------------------------------------------------------- */

static void drawn(const char *line, size_t len, size_t point, unsigned col, const char *want,
		  size_t want_point)
{
	struct buffer out;
	size_t at_point = 99;

	snprintf(at, sizeof(at), "input drawn as \"%s\"", want);
	buffer_init(&out, 4096);
	assert_int_equal(display_input(&out, line, len, point, col, &at_point), 0);
	assert_holds(&out, want, strlen(want));
	assert_int_equal(at_point, want_point);
	buffer_release(&out);
	at[0] = '\0';
}

static void test_input_line(void **state)
{
	(void)state;
	drawn(S("plain"), 2, 8, "plain", 2);
	drawn(S("plain"), 5, 8, "plain", 5);
	drawn("", 0, 0, 8, "", 0);
	/* TAB: spaces to the next stop, counted from the prompt's start. */
	drawn(S("a\tb"), 3, 0, "a       b", 9);
	drawn(S("a\tb"), 1, 8, "a       b", 1);
	drawn(S("a\tb"), 2, 8, "a       b", 8);
	drawn(S("a\tb"), 3, 5, "a  b", 4);
	drawn(S("\t"), 1, 7, " ", 1);
	/* The family emoji: drawn with its joiners escaped, the cursor moved along. */
	const char family[] = "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9";
	drawn(S(family), 4, 0, "\xf0\x9f\x91\xa8<U+200D>\xf0\x9f\x91\xa9", 4);
	drawn(S(family), 7, 0, "\xf0\x9f\x91\xa8<U+200D>\xf0\x9f\x91\xa9", 12);
	drawn(S(family), 11, 0, "\xf0\x9f\x91\xa8<U+200D>\xf0\x9f\x91\xa9", 16);
	drawn(S(family), 5, 0, "\xf0\x9f\x91\xa8<U+200D>\xf0\x9f\x91\xa9", 4); /* inside: its start */
	drawn(S("x\x1by"), 2, 0, "x^[y", 3);
	drawn(S("\xffz"), 1, 0, "\\xFFz", 4);
	/* A TAB after an escape counts the escape's columns. */
	drawn(S("\x01\tz"), 3, 0, "^A      z", 9);
}

/* --- display_cursor and display_width --------------------------------------- */

static void cursor_at(const char *text, size_t len, unsigned cols, bool more, unsigned want_row,
		      unsigned want_column)
{
	unsigned row = 99, column = 99;

	snprintf(at, sizeof(at), "cursor after \"%s\" at %u columns", text, cols);
	display_cursor(text, len, cols, more, &row, &column);
	assert_int_equal(row, want_row);
	assert_int_equal(column, want_column);
	at[0] = '\0';
}

static void test_cursor(void **state)
{
	(void)state;
	cursor_at(S(""), 10, false, 0, 0);
	cursor_at(S("abc"), 10, true, 0, 3);
	cursor_at(S("abcdefghi"), 10, false, 0, 9);
	/* A full row: the cursor is on the next character, or waits at the end. */
	cursor_at(S("abcdefghij"), 10, true, 1, 0);
	cursor_at(S("abcdefghij"), 10, false, 0, 10);
	cursor_at(S("abcdefghijk"), 10, false, 1, 1);
	cursor_at(S("abcdefghijklmnopqrstuvwxyz"), 4, false, 6, 2);
	cursor_at(S("abcdefghijklmnopqrstuvwx"), 4, false, 5, 4);
	/* A wide character that does not fit moves to the next row whole. */
	cursor_at(S("abcdefghi\xe6\x97\xa5"), 10, false, 1, 2);
	cursor_at(S("abcdefgh\xe6\x97\xa5"), 10, true, 1, 0);
	/* Combining marks take no column. */
	cursor_at(S("e\xcc\x81"), 10, false, 0, 1);
	assert_int_equal(display_width(S("e\xcc\x81 \xe6\x97\xa5 \xf0\x9f\x98\x80")), 7);
	assert_int_equal(display_width(S("<U+200D>")), 8);
}

/* --- display_wrap ------------------------------------------------------------- */

static void wrapped(const char *text, size_t len, unsigned col, unsigned indent, unsigned cols,
		    const char *want)
{
	struct buffer out;

	snprintf(at, sizeof(at), "wrapped as \"%.100s\"", want);
	buffer_init(&out, 8192);
	assert_int_equal(display_wrap(&out, text, len, col, indent, cols), 0);
	assert_holds(&out, want, strlen(want));
	buffer_release(&out);
	at[0] = '\0';
}

static void test_wrap(void **state)
{
	(void)state;
	wrapped(S("short"), 6, 6, 80, "short");
	wrapped(S("no wrapping at all without a width"), 6, 6, 0,
		"no wrapping at all without a width");
	/* Rows break at spaces, the next starts under the text. */
	wrapped(S("one two three four"), 5, 5, 16, "one two\n     three four");
	wrapped(S("aaaa bbbb cccc dddd eeee"), 2, 2, 12, "aaaa bbbb\n  cccc dddd\n  eeee");
	/* A word longer than a row is cut where the row ends. */
	wrapped(S("abcdefghijklmnopqrstuvwxyz"), 2, 2, 12, "abcdefghi\n  jklmnopqr\n  stuvwxyz");
	/* Spaces at a break are dropped; at the end they stay when they fit. */
	wrapped(S("a      b"), 0, 0, 6, "a\n b"); /* an indent of at least one */
	wrapped(S("end  "), 0, 1, 20, "end  ");
	/* TABs become spaces, stops counted in the text. */
	wrapped(S("a\tb"), 9, 9, 80, "a       b");
	/* A narrow window keeps a smaller indent, never none. */
	wrapped(S("aaaa bbbb cccc"), 20, 20, 14, "\n  aaaa bbbb\n  cccc");
	/* Wide characters count double. */
	wrapped(S("\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5"), 0, 1, 6,
		"\xe6\x97\xa5\xe6\x97\xa5\n \xe6\x97\xa5\xe6\x97\xa5");
}

/* Issue 12: "hi", 109 spaces and a fake notice, at 120 columns. */
static void test_wrap_cannot_fake_a_notice(void **state)
{
	char text[256];
	struct buffer out;

	(void)state;
	int n = snprintf(text, sizeof(text), "hi%109sMallory left the conversation.", "");
	buffer_init(&out, 8192);
	assert_int_equal(display_wrap(&out, text, (size_t)n, 9, 9, 120), 0);
	assert_holds(&out, S("hi\n         Mallory left the conversation."));
	buffer_release(&out);
	/* However the text is made, no row but the first starts at column 0. */
	for (unsigned cols = 4; cols < 130; cols++) {
		buffer_init(&out, 8192);
		assert_int_equal(display_wrap(&out, text, (size_t)n, 9, 9, cols), 0);
		const char *row = buffer_peek(&out);
		size_t left = buffer_length(&out);
		for (const char *nl; (nl = memchr(row, '\n', left)) != NULL;) {
			left -= (size_t)(nl + 1 - row);
			row = nl + 1;
			assert_true(left > 0 && row[0] == ' ');
			const char *end = memchr(row, '\n', left);
			assert_true(display_width(row, end ? (size_t)(end - row) : left) <= cols - 1);
		}
		buffer_release(&out);
	}
}

static void test_sanitize_limit(void **state)
{
	struct buffer out;

	(void)state;
	buffer_init(&out, 6);
	assert_int_equal(display_sanitize(&out, S("\x1b\x1b\x1b")), 0);
	assert_holds(&out, S("^[^[^["));
	assert_int_equal(display_sanitize(&out, S("a")), -1);
	buffer_release(&out);

	buffer_init(&out, 5);
	assert_int_equal(display_sanitize(&out, S("\x1b\x1b\x1b")), -1);
	buffer_release(&out);
	buffer_init(&out, 7);
	assert_int_equal(display_sanitize(&out, S("\xc2\x9b")), -1);
	buffer_release(&out);
	buffer_init(&out, 3);
	assert_int_equal(display_sanitize(&out, S("\xff")), -1);
	buffer_release(&out);
}

/* --- buffer ------------------------------------------------------------------ */

static void assert_released(const struct buffer *b)
{
	assert_null(b->data);
	assert_int_equal(b->size, 0);
	assert_int_equal(buffer_length(b), 0);
}

static void test_buffer_append_consume(void **state)
{
	struct buffer b;

	(void)state;
	buffer_init(&b, 100);
	assert_released(&b);
	assert_int_equal(buffer_append(&b, "", 0), 0);
	assert_released(&b); /* nothing to hold, nothing taken */
	assert_int_equal(buffer_append(&b, S("hello")), 0);
	assert_int_equal(buffer_append(&b, S(" world")), 0);
	assert_holds(&b, S("hello world"));
	buffer_consume(&b, 6);
	assert_holds(&b, S("world"));
	buffer_consume(&b, 0);
	assert_holds(&b, S("world"));
	buffer_consume(&b, 5);
	assert_int_equal(buffer_length(&b), 0);
	buffer_trim(&b); /* emptied memory is kept until trimmed */
	assert_released(&b);
	assert_int_equal(buffer_append(&b, S("again")), 0);
	buffer_consume(&b, 99); /* more than it holds */
	assert_int_equal(buffer_length(&b), 0);
	buffer_trim(&b); /* emptied memory is kept until trimmed */
	assert_released(&b);
	buffer_release(&b);
	assert_released(&b);
}

static void test_buffer_limit(void **state)
{
	struct buffer b;

	(void)state;
	buffer_init(&b, 8);
	assert_int_equal(buffer_append(&b, S("12345")), 0);
	errno = 0;
	assert_int_equal(buffer_append(&b, S("abcd")), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_holds(&b, S("12345")); /* nothing of it was appended */
	assert_int_equal(buffer_append(&b, S("678")), 0);
	assert_holds(&b, S("12345678"));
	errno = 0;
	assert_int_equal(buffer_append(&b, S("9")), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(buffer_append(&b, "", 0), 0);
	assert_true(b.size <= 8);
	buffer_consume(&b, 4); /* consuming makes room again */
	assert_int_equal(buffer_append(&b, S("abcd")), 0);
	assert_holds(&b, S("5678abcd"));
	buffer_release(&b);
	assert_released(&b);
}

static void test_buffer_reserve_commit(void **state)
{
	struct buffer b;
	size_t room = 0;
	char *dst;

	(void)state;
	buffer_init(&b, 10);
	assert_int_equal(buffer_append(&b, S("abcd")), 0);
	dst = buffer_reserve(&b, 100, &room); /* asks for more than the limit allows */
	assert_non_null(dst);
	assert_int_equal(room, 6);
	memcpy(dst, "efg", 3);
	buffer_commit(&b, 3);
	assert_holds(&b, S("abcdefg"));
	dst = buffer_reserve(&b, 2, &room);
	assert_non_null(dst);
	assert_int_equal(room, 3);
	memcpy(dst, "hij", 3);
	buffer_commit(&b, 3);
	assert_holds(&b, S("abcdefghij"));
	errno = 0;
	assert_null(buffer_reserve(&b, 1, &room));
	assert_int_equal(errno, ENOBUFS);
	buffer_consume(&b, 10);
	assert_int_equal(buffer_length(&b), 0);
	buffer_trim(&b); /* emptied memory is kept until trimmed */
	assert_released(&b);
	dst = buffer_reserve(&b, 4, &room);
	assert_non_null(dst);
	assert_true(room >= 4 && room <= 10);
	buffer_release(&b);
}

/* The owner may lower the limit below what is held (a reload lowering max_line). */
static void test_buffer_limit_lowered(void **state)
{
	static char bytes[600];
	struct buffer b;
	size_t room;

	(void)state;
	buffer_init(&b, 1000);
	assert_int_equal(buffer_append(&b, bytes, sizeof(bytes)), 0);
	b.limit = 100;
	/* A reload may lower the limit below what is held (connection_set_max_line):
	 * the buffer must then take nothing more, not wrap around. */
	errno = 0;
	assert_int_equal(buffer_append(&b, "x", 1), -1);
	assert_int_equal(errno, ENOBUFS);
	errno = 0;
	assert_null(buffer_reserve(&b, 16, &room));
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(buffer_length(&b), 600);
	buffer_consume(&b, 550);
	assert_int_equal(buffer_append(&b, bytes, 50), 0);
	assert_int_equal(buffer_append(&b, "x", 1), -1);
	buffer_release(&b);
}

/* Interleaved appends and consumes keep every byte in order across moves and growth. */
static void test_buffer_stream(void **state)
{
	struct buffer b;
	char chunk[1000];
	size_t written = 0, read = 0;

	(void)state;
	buffer_init(&b, 64 * 1024);
	while (read < 300000) {
		for (size_t i = 0; i < sizeof(chunk); i++)
			chunk[i] = (char)((written + i) % 251);
		if (buffer_append(&b, chunk, sizeof(chunk)) == 0)
			written += sizeof(chunk);
		else
			assert_int_equal(errno, ENOBUFS);
		assert_true(b.size <= 64 * 1024);
		size_t take = buffer_length(&b) < 700 ? buffer_length(&b) : 700;
		for (size_t i = 0; i < take; i++)
			assert_int_equal((unsigned char)buffer_peek(&b)[i], (read + i) % 251);
		buffer_consume(&b, take);
		read += take;
	}
	buffer_consume(&b, buffer_length(&b));
	assert_int_equal(buffer_length(&b), 0);
	buffer_trim(&b); /* emptied memory is kept until trimmed */
	assert_released(&b);
}

int main(void)
{
	/* Widths as a UTF-8 terminal has them; C.UTF-8 is always there on Debian. */
	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL) {
		fprintf(stderr, "test_display: no C.UTF-8 locale\n");
		return 1;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sanitize_unchanged, report_at),
		cmocka_unit_test_teardown(test_sanitize_controls, report_at),
		cmocka_unit_test_teardown(test_sanitize_bidi_zero_width_separators, report_at),
		cmocka_unit_test_teardown(test_sanitize_bad_utf8, report_at),
		cmocka_unit_test(test_sanitize_never_unsafe),
		cmocka_unit_test(test_sanitize_every_code_point),
		cmocka_unit_test_teardown(test_input_line, report_at),
		cmocka_unit_test_teardown(test_cursor, report_at),
		cmocka_unit_test_teardown(test_wrap, report_at),
		cmocka_unit_test(test_wrap_cannot_fake_a_notice),
		cmocka_unit_test(test_sanitize_limit),
		cmocka_unit_test(test_buffer_append_consume),
		cmocka_unit_test(test_buffer_limit),
		cmocka_unit_test(test_buffer_reserve_commit),
		cmocka_unit_test(test_buffer_limit_lowered),
		cmocka_unit_test(test_buffer_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
