/*
 * Unit tests for display.c (terminal-safe text) and buffer.c (the byte queue
 * under it and under every connection).
 */
#include <errno.h>
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

/* Safe output: valid UTF-8 holding no control but TAB. */
static void assert_safe(const struct buffer *b)
{
	const unsigned char *s = (const unsigned char *)buffer_peek(b);
	size_t len = buffer_length(b);

	for (size_t i = 0; i < len;) {
		uint32_t c;
		size_t n = utf8_decode(s + i, len - i, &c);
		assert_int_not_equal(n, 0);
		assert_false(utf8_is_control(c));
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
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_sanitize_unchanged, report_at),
		cmocka_unit_test_teardown(test_sanitize_controls, report_at),
		cmocka_unit_test_teardown(test_sanitize_bad_utf8, report_at),
		cmocka_unit_test(test_sanitize_never_unsafe),
		cmocka_unit_test(test_sanitize_limit),
		cmocka_unit_test(test_buffer_append_consume),
		cmocka_unit_test(test_buffer_limit),
		cmocka_unit_test(test_buffer_reserve_commit),
		cmocka_unit_test(test_buffer_limit_lowered),
		cmocka_unit_test(test_buffer_stream),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
