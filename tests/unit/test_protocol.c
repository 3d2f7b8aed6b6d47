/*
 * Unit tests for protocol.c, against turnchat-protocol(7): framing, text
 * checks, names, client commands, and every line formatted, then parsed back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buffer.h"
#include "protocol.h"

/* A string literal as (pointer, length), so embedded NULs count. */
#define S(lit) lit, sizeof(lit) - 1
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void assert_bytes(const char *got, size_t got_len, const char *want)
{
	assert_int_equal(got_len, strlen(want));
	if (got_len > 0)
		assert_memory_equal(got, want, got_len);
}

/* Asserts the buffer holds exactly want, then empties it. */
static void assert_buffer(struct buffer *b, const char *want)
{
	assert_bytes(buffer_length(b) ? buffer_peek(b) : "", buffer_length(b), want);
	buffer_release(b);
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

/* --- Framing ------------------------------------------------------------- */

#define MAX 8

/* One call; the line it finds, if any, must be line. */
static void step(struct framer *f, const char *data, size_t len, enum frame_result want,
		 const char *line, size_t want_consumed)
{
	size_t line_len = 9999, consumed = 9999;
	enum frame_result got = protocol_frame(f, data, len, MAX, &line_len, &consumed);

	if (got != want || consumed != want_consumed)
		print_error("frame \"%.*s\": result %d consumed %zu\n", (int)len, data, got,
			    consumed);
	assert_int_equal(got, want);
	assert_int_equal(consumed, want_consumed);
	if (want == FRAME_LINE)
		assert_bytes(data, line_len, line);
}

static void test_frame_lines(void **state)
{
	struct framer f = {false};

	(void)state;
	step(&f, S("hello\n"), FRAME_LINE, "hello", 6);
	step(&f, S("hello\r\n"), FRAME_LINE, "hello", 7);
	step(&f, S("a\rb\n"), FRAME_LINE, "a\rb", 4);   /* a CR elsewhere is kept */
	step(&f, S("ab\r\r\n"), FRAME_LINE, "ab\r", 5); /* only the one before LF goes */
	step(&f, S("\n"), FRAME_LINE, "", 1);
	step(&f, S("\r\n"), FRAME_LINE, "", 2);
	step(&f, S("hel"), FRAME_NEED_MORE, NULL, 0);
	step(&f, S("hel\r"), FRAME_NEED_MORE, NULL, 0);
	step(&f, "", 0, FRAME_NEED_MORE, NULL, 0);
	/* max_line bytes fit; max_line + 1 do not */
	step(&f, S("12345678\n"), FRAME_LINE, "12345678", 9);
	step(&f, S("12345678\r\n"), FRAME_LINE, "12345678", 10);
	step(&f, S("12345678"), FRAME_NEED_MORE, NULL, 0);
	step(&f, S("12345678\r"), FRAME_NEED_MORE, NULL, 0); /* the LF may still come */
	step(&f, S("123456789\n"), FRAME_TOO_LONG, NULL, 10);
	assert_false(f.discarding); /* that line is over: the next one is fine */
	step(&f, S("123456789\r\n"), FRAME_TOO_LONG, NULL, 11);
	step(&f, S("next\n"), FRAME_LINE, "next", 5);
}

/* An over-long line with no LF yet: refused once, then skipped up to its LF. */
static void test_frame_discard_across_calls(void **state)
{
	struct framer f = {false};

	(void)state;
	step(&f, S("1234567890"), FRAME_TOO_LONG, NULL, 10);
	assert_true(f.discarding);
	step(&f, S("abc"), FRAME_NEED_MORE, NULL, 3);
	step(&f, S("defghijklmnopqrstuvwxyz"), FRAME_NEED_MORE, NULL, 23);
	step(&f, S("\r"), FRAME_NEED_MORE, NULL, 1);
	step(&f, S("gh\nafter\n"), FRAME_NEED_MORE, NULL, 3);
	assert_false(f.discarding);
	step(&f, S("after\n"), FRAME_LINE, "after", 6);
}

/* max_line + 1 bytes, no LF, the last not a CR: no LF can make that line fit. */
static void test_frame_too_long_at_once(void **state)
{
	struct framer f = {false};

	(void)state;
	/* max_line + 1 bytes not ending in CR can never be a valid line:
	 * refuse at once (turnchat-protocol(7)). */
	step(&f, S("123456789"), FRAME_TOO_LONG, NULL, 9);
	assert_true(f.discarding);
	step(&f, S("0\nok\n"), FRAME_NEED_MORE, NULL, 2);
}

/* Frames one chunk the way the connection does; returns a trace of what came out. */
static size_t frame_all(const char *data, size_t len, char *trace)
{
	struct framer f = {false};
	size_t pos = 0, line_len, consumed;
	enum frame_result r;

	trace[0] = '\0';
	while ((r = protocol_frame(&f, data + pos, len - pos, MAX, &line_len, &consumed)) !=
		       FRAME_NEED_MORE ||
	       consumed > 0) {
		if (r == FRAME_LINE) {
			strcat(trace, "[");
			strncat(trace, data + pos, line_len);
			strcat(trace, "]");
		} else if (r == FRAME_TOO_LONG) {
			strcat(trace, "!");
		}
		pos += consumed;
	}
	return len - pos;
}

static void test_frame_several_lines(void **state)
{
	char trace[256];

	(void)state;
	assert_int_equal(frame_all(S("one\ntwo\r\n\nthree"), trace), 5);
	assert_string_equal(trace, "[one][two][]");
	assert_int_equal(frame_all(S("123456789012\nafter\n"), trace), 0);
	assert_string_equal(trace, "![after]");
	assert_int_equal(frame_all(S("a\n1234567890123456789\nb\r\n12345678\n"), trace), 0);
	assert_string_equal(trace, "[a]![b][12345678]");
}

/* --- Text checks and names ------------------------------------------------- */

struct text_case {
	const char *s;
	size_t len;
	enum text_check want;
};
#define OK(lit)                 \
	{                       \
		S(lit), TEXT_OK \
	}
#define BADU(lit)                     \
	{                             \
		S(lit), TEXT_BAD_UTF8 \
	}
#define CTRL(lit)                         \
	{                                 \
		S(lit), TEXT_CONTROL_CHAR \
	}

/* The word-at-a-time ASCII paths (16 bytes, then 8): one odd byte anywhere
 * in a line, at every offset within and across words, is still seen. */
static void test_check_text_every_offset(void **state)
{
	static const struct {
		const char *bytes;
		size_t len;
		enum text_check expect;
	} odd[] = {
		{"\x01", 1, TEXT_CONTROL_CHAR},
		{"\x1f", 1, TEXT_CONTROL_CHAR},
		{"\x7f", 1, TEXT_CONTROL_CHAR},
		{"\xc2\x85", 2, TEXT_CONTROL_CHAR},
		{"\xff", 1, TEXT_BAD_UTF8},
		{"\xc3", 1, TEXT_BAD_UTF8},
		{"\xc3\xa9", 2, TEXT_OK},
		{"\t", 1, TEXT_OK},
		{" ", 1, TEXT_OK},
		{"~", 1, TEXT_OK},
	};
	char line[48];

	(void)state;
	for (size_t k = 0; k < COUNT(odd); k++) {
		for (size_t pos = 0; pos + odd[k].len <= 41; pos++) {
			memset(line, 'a', sizeof(line));
			memcpy(line + pos, odd[k].bytes, odd[k].len);
			snprintf(at, sizeof(at), "case %zu at %zu", k, pos);
			assert_int_equal(protocol_check_text(line, 41), odd[k].expect);
		}
	}
	at[0] = '\0';
}

static void test_check_text(void **state)
{
	static const struct text_case cases[] = {
		OK(""),
		OK("plain ascii ~"),
		OK("a\tb"),
		OK("caf\xc3\xa9"),
		OK("\xc2\xa0"),
		OK("\xe2\x82\xac"),
		OK("\xed\x9f\xbf"),
		OK("\xee\x80\x80"),
		OK("\xef\xbf\xbf"),
		OK("\xf0\x9f\x98\x80"),
		OK("\xf4\x8f\xbf\xbf"),
		/* overlong forms; surrogates; past U+10FFFF; bytes never valid */
		BADU("\xc0\xaf"),
		BADU("\xc1\xbf"),
		BADU("\xe0\x80\xaf"),
		BADU("\xe0\x9f\xbf"),
		BADU("\xf0\x80\x80\xaf"),
		BADU("\xf0\x8f\xbf\xbf"),
		BADU("\xed\xa0\x80"),
		BADU("\xed\xbf\xbf"),
		BADU("\xf4\x90\x80\x80"),
		BADU("\xf5\x80\x80\x80"),
		BADU("\xf8\x88\x80\x80\x80"),
		BADU("\xfe"),
		BADU("\xff"),
		BADU("a\x80z"),
		/* truncated or interrupted sequences */
		BADU("\xc3"),
		BADU("ok\xe2\x82"),
		BADU("\xf0\x9f\x98"),
		BADU("\xc3x"),
		BADU("\xe2\x28\xa1"),
		BADU("\xf0\x9f\x98z"),
		{"\xc3\xa9", 1, TEXT_BAD_UTF8},
		{"\xf0\x9f\x98\x80", 3, TEXT_BAD_UTF8}, /* cut short by len, not by the bytes */
		/* C0 but TAB, DEL, C1 */
		CTRL("\0"),
		CTRL("a\0b"),
		CTRL("\x01"),
		CTRL("\x1b[2J"),
		CTRL("x\x1f"),
		CTRL("\r"),
		CTRL("\n"),
		CTRL("\x7f"),
		CTRL("\xc2\x80"),
		CTRL("\xc2\x85"),
		CTRL("\xc2\x9b"),
		CTRL("\xc2\x9f"),
		/* bad UTF-8 wins over a control, wherever each one is */
		BADU("\x1b\xff"),
		BADU("\xff\x1b"),
		BADU("\x7f\xc2\x85\xc3"),
	};

	(void)state;
	for (size_t i = 0; i < COUNT(cases); i++) {
		enum text_check got = protocol_check_text(cases[i].s, cases[i].len);
		if (got != cases[i].want)
			print_error("text case %zu\n", i);
		assert_int_equal(got, cases[i].want);
	}
}

static void test_valid_name(void **state)
{
	/* Letters and digits of any script; 32 characters, however many bytes. */
	static const char *const good[] = {
		"a",
		"Barret_the-2nd.x",
		"AZaz09_.-",
		"abcdefghijklmnopqrstuvwxyz012345",
		"Zo\xc3\xab",               /* Zoë */
		"\xd0\x90\xd0\xbd\xd1\x8f", /* Аня */
		"\xe5\xb1\xb1\xe7\x94\xb0", /* 山田 */
		"\xd9\xa3\xd9\xa4",         /* Arabic-Indic digits */
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"};
	static const char *const bad[] = {
		"",
		"abcdefghijklmnopqrstuvwxyz0123456",
		"a b",
		"a/b",
		"a@b",
		"a\tb",
		"room!",
		"a\xe2\x80\xae"
		"b", /* U+202E right-to-left override */
		"a\xe2\x80\x8d"
		"b", /* U+200D zero-width joiner */
		"a\xe2\x80\xa8"
		"b", /* U+2028 line separator */
		"a\xc2\xa0"
		"b", /* U+00A0 no-break space */
		"a\xe3\x80\x80"
		"b",                /* U+3000 ideographic space */
		"\xf0\x9f\x98\x80", /* an emoji is not a letter */
		"caf\xc3",          /* cut UTF-8 */
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"
		"\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f\xd1\x8f"
		"\xd1\x8f"};

	(void)state;
	for (size_t i = 0; i < COUNT(good); i++)
		assert_true(protocol_valid_name(good[i], strlen(good[i])));
	for (size_t i = 0; i < COUNT(bad); i++)
		assert_false(protocol_valid_name(bad[i], strlen(bad[i])));
	assert_false(protocol_valid_name(S("a\0b")));
}

/* --- Client commands --------------------------------------------------------- */

struct cmd_case {
	const char *line;
	size_t len;
	enum command_kind kind;
	const char *arg; /* what arg must hold, unless CMD_INVALID or CMD_MODE */
	enum chat_mode mode;
	enum error_code error;
};
#define CMD(lit, kind, arg)             \
	{                               \
		S(lit), kind, arg, 0, 0 \
	}
#define MODE(lit, mode)                         \
	{                                       \
		S(lit), CMD_MODE, NULL, mode, 0 \
	}
#define BAD(lit, error)                             \
	{                                           \
		S(lit), CMD_INVALID, NULL, 0, error \
	}

static void test_parse_command(void **state)
{
	static const struct cmd_case cases[] = {
		CMD("hello there", CMD_MESSAGE, "hello there"),
		CMD("a\tb", CMD_MESSAGE, "a\tb"),
		CMD("//x", CMD_MESSAGE, "/x"),
		CMD("//", CMD_MESSAGE, "/"),
		CMD("///", CMD_MESSAGE, "//"),
		CMD(" /quit", CMD_MESSAGE, " /quit"),
		CMD("caf\xc3\xa9", CMD_MESSAGE, "caf\xc3\xa9"),
		BAD("", ERR_EMPTY),
		CMD("/name Barret", CMD_NAME, "Barret"),
		BAD("/name", ERR_BAD_COMMAND),
		BAD("/name ", ERR_BAD_COMMAND),
		BAD("/name b@d", ERR_BAD_NAME),
		BAD("/name a b", ERR_BAD_NAME),
		BAD("/name abcdefghijklmnopqrstuvwxyz0123456", ERR_BAD_NAME),
		CMD("/name Zo\xc3\xab", CMD_NAME, "Zo\xc3\xab"),
		CMD("/caps typing action done", CMD_CAPS, "typing action done"),
		CMD("/caps later-thing", CMD_CAPS, "later-thing"),
		BAD("/caps", ERR_BAD_COMMAND),
		CMD("/typing", CMD_TYPING, ""),
		BAD("/typing now", ERR_BAD_COMMAND),
		CMD("/me waves", CMD_ACTION, "waves"),
		BAD("/me", ERR_BAD_COMMAND),
		CMD("/done", CMD_DONE, ""),
		BAD("/done x", ERR_BAD_COMMAND),
		CMD("/ack 12", CMD_ACK, "12"),
		CMD("/ack 0", CMD_ACK, "0"),
		BAD("/ack", ERR_BAD_COMMAND),
		CMD("/ping", CMD_PING, ""),
		BAD("/ping x", ERR_BAD_COMMAND),
		BAD("/ack -1", ERR_BAD_COMMAND),
		BAD("/ack 1 2", ERR_BAD_COMMAND),
		BAD("/ack 12345678901234567890", ERR_BAD_COMMAND),
		CMD("/resume 0123456789abcdef0123456789abcdef 7", CMD_RESUME,
		    "0123456789abcdef0123456789abcdef"),
		BAD("/resume 0123456789abcdef0123456789abcdef", ERR_BAD_COMMAND),
		BAD("/resume 0123456789abcdef0123456789abcdef ", ERR_BAD_COMMAND),
		BAD("/resume 0123456789abcdef0123456789abcdef x", ERR_BAD_COMMAND),
		BAD("/resume 0123456789ABCDEF0123456789ABCDEF 7", ERR_BAD_COMMAND),
		BAD("/resume 0123456789abcdef0123456789abcde 7", ERR_BAD_COMMAND),
		MODE("/mode turns", CHAT_MODE_TURNS),
		MODE("/mode free", CHAT_MODE_FREE),
		BAD("/mode bogus", ERR_BAD_MODE),
		BAD("/mode Turns", ERR_BAD_MODE),
		BAD("/mode", ERR_BAD_COMMAND),
		CMD("/join", CMD_JOIN, ""),
		CMD("/join kitchen", CMD_JOIN, "kitchen"),
		BAD("/join ", ERR_BAD_COMMAND),
		BAD("/join bad!room", ERR_BAD_NAME),
		CMD("/q", CMD_QUIT, ""),
		CMD("/quit", CMD_QUIT, ""),
		BAD("/q x", ERR_BAD_COMMAND),
		BAD("/quit now", ERR_BAD_COMMAND),
		CMD("/help", CMD_HELP, ""),
		BAD("/help me", ERR_BAD_COMMAND),
		BAD("/frob", ERR_BAD_COMMAND),
		BAD("/", ERR_BAD_COMMAND),
		BAD("/Name x", ERR_BAD_COMMAND),
		BAD("/names x", ERR_BAD_COMMAND),
		BAD("/qu", ERR_BAD_COMMAND),
		BAD("hi \xff there", ERR_BAD_UTF8),
		BAD("hi\x1b[2J", ERR_CONTROL_CHAR),
		BAD("hi\xc2\x85", ERR_CONTROL_CHAR),
		BAD("a\0b", ERR_CONTROL_CHAR),
		BAD("//\x7f", ERR_CONTROL_CHAR),
		BAD("/name \x1b", ERR_CONTROL_CHAR),
		BAD("\x1b\xc3", ERR_BAD_UTF8),
	};

	(void)state;
	for (size_t i = 0; i < COUNT(cases); i++) {
		const struct cmd_case *c = &cases[i];
		struct command cmd;

		protocol_parse_command(c->line, c->len, PROTOCOL_CAPS_ALL, &cmd);
		if (cmd.kind != c->kind || (c->kind == CMD_INVALID && cmd.error != c->error))
			print_error("command case %zu: kind %d error %d\n", i, cmd.kind, cmd.error);
		assert_int_equal(cmd.kind, c->kind);
		if (c->kind == CMD_INVALID)
			assert_int_equal(cmd.error, c->error);
		else if (c->kind == CMD_MODE)
			assert_int_equal(cmd.mode, c->mode);
		else
			assert_bytes(cmd.arg, cmd.arg_len, c->arg);
		if (c->kind == CMD_ACK)
			assert_int_equal(cmd.count, strtoul(c->arg, NULL, 10));
		if (c->kind == CMD_RESUME)
			assert_int_equal(cmd.count, 7);
	}
}

/* Without its capability a verb is unknown, exactly as in plain v1. */
static void test_parse_command_without_caps(void **state)
{
	static const char *const lines[] = {"/typing", "/me waves", "/done", "/ack 1",
					    "/resume 0123456789abcdef0123456789abcdef 1"};
	static const unsigned needs[] = {CAP_TYPING, CAP_ACTION, CAP_DONE, CAP_RESUME, CAP_RESUME};
	struct command cmd;

	(void)state;
	for (size_t i = 0; i < COUNT(lines); i++) {
		protocol_parse_command(lines[i], strlen(lines[i]), 0, &cmd);
		assert_int_equal(cmd.kind, CMD_INVALID);
		assert_int_equal(cmd.error, ERR_BAD_COMMAND);
		protocol_parse_command(lines[i], strlen(lines[i]), PROTOCOL_CAPS_ALL & ~needs[i],
				       &cmd);
		assert_int_equal(cmd.error, ERR_BAD_COMMAND);
		protocol_parse_command(lines[i], strlen(lines[i]), needs[i], &cmd);
		assert_int_not_equal(cmd.kind, CMD_INVALID);
	}
	/* /caps itself needs nothing: it is how a client asks. */
	protocol_parse_command(S("/caps typing"), 0, &cmd);
	assert_int_equal(cmd.kind, CMD_CAPS);
}

static void test_caps_words(void **state)
{
	char text[64];

	(void)state;
	assert_int_equal(protocol_parse_caps(S("typing action done secure resume")),
			 PROTOCOL_CAPS_ALL);
	assert_int_equal(protocol_parse_caps(S("done  bogus typing")), CAP_DONE | CAP_TYPING);
	assert_int_equal(protocol_parse_caps(S("")), 0);
	assert_int_equal(protocol_parse_caps(S("typingx actio")), 0);
	assert_int_equal(protocol_format_caps(CAP_ACTION | CAP_DONE, text, sizeof(text)), 11);
	assert_string_equal(text, "action done");
	assert_int_equal(protocol_format_caps(0, text, sizeof(text)), 0);
	assert_string_equal(text, "");
}

static void test_names_of_codes(void **state)
{
	static const char *const errs[] = {"not-your-turn", "not-paired",  "too-long",     "bad-utf8",
					   "control-char",  "bad-command", "bad-name",     "bad-mode",
					   "busy",          "empty",       "rate-limited", "done"};
	static const char *const byes[] = {
		"quit",        "peer-quit",     "peer-lost",    "shutdown", "idle",
		"server-full", "address-limit", "join-timeout", "too-slow", "flood",
		"protocol",    "done",          "tls-required"};

	(void)state;
	for (size_t i = 0; i < COUNT(errs); i++) {
		assert_string_equal(protocol_error_name((enum error_code)i), errs[i]);
		assert_true(strlen(protocol_error_text((enum error_code)i)) > 0);
	}
	for (size_t i = 0; i < COUNT(byes); i++)
		assert_string_equal(protocol_bye_name((enum bye_reason)i), byes[i]);
	assert_string_equal(protocol_mode_name(CHAT_MODE_TURNS), "turns");
	assert_string_equal(protocol_mode_name(CHAT_MODE_FREE), "free");
}

/* --- Formatting, and parsing it back ------------------------------------------ */

static int hello(struct buffer *b)
{
	return protocol_append_hello(b, "turnchatd");
}
static int waiting(struct buffer *b)
{
	return protocol_append_waiting(b, "lobby");
}
static int paired(struct buffer *b, enum chat_mode mode, enum first_speaker first)
{
	return protocol_append_paired(b, "Barret", mode, first);
}
static int paired_peer(struct buffer *b)
{
	return paired(b, CHAT_MODE_TURNS, FIRST_PEER);
}
static int paired_you(struct buffer *b)
{
	return paired(b, CHAT_MODE_TURNS, FIRST_YOU);
}
static int paired_free(struct buffer *b)
{
	return paired(b, CHAT_MODE_FREE, FIRST_NONE);
}
static int msg(struct buffer *b)
{
	return protocol_append_msg(b, S(" two  spaces "));
}
static int msg_slash(struct buffer *b)
{
	return protocol_append_msg(b, S("/x"));
}
static int msg_empty(struct buffer *b)
{
	return protocol_append_msg(b, "", 0);
}
static int err(struct buffer *b)
{
	return protocol_append_error(b, ERR_NOT_YOUR_TURN, NULL);
}
static int err_text(struct buffer *b)
{
	return protocol_append_error(b, ERR_BAD_NAME, "no");
}
static int info(struct buffer *b)
{
	return protocol_append_info(b, "Partner left");
}
static int bye(struct buffer *b)
{
	return protocol_append_bye(b, BYE_PEER_QUIT, NULL);
}
static int bye_text(struct buffer *b)
{
	return protocol_append_bye(b, BYE_IDLE, "60 s");
}
static int message(struct buffer *b)
{
	return protocol_append_message(b, S("hi /x"));
}
static int message_slash(struct buffer *b)
{
	return protocol_append_message(b, S("/x"));
}
static int command(struct buffer *b)
{
	return protocol_append_command(b, "name", "Bob");
}
static int command_bare(struct buffer *b)
{
	return protocol_append_command(b, "quit", NULL);
}
static int caps_request(struct buffer *b)
{
	return protocol_append_caps_request(b, PROTOCOL_CAPS_ALL & ~(unsigned)CAP_RESUME);
}
static int token(struct buffer *b)
{
	return protocol_append_token(b, "0123456789abcdef0123456789abcdef", 120);
}
static int ack(struct buffer *b)
{
	return protocol_append_ack(b, 1234567);
}
static int resumed(struct buffer *b)
{
	return protocol_append_resumed(b, 1234567, "Barret", CHAT_MODE_TURNS, FIRST_YOU);
}
static int pong(struct buffer *b)
{
	return protocol_append_pong(b);
}
static int ack_command(struct buffer *b)
{
	return protocol_append_ack_command(b, 42);
}
static int resume_command(struct buffer *b)
{
	return protocol_append_resume_command(b, "0123456789abcdef0123456789abcdef", 42);
}
static int caps(struct buffer *b)
{
	return protocol_append_caps(b, CAP_TYPING | CAP_DONE);
}
static int caps_none(struct buffer *b)
{
	return protocol_append_caps(b, 0);
}
static int typing(struct buffer *b)
{
	return protocol_append_typing(b);
}
static int action(struct buffer *b)
{
	return protocol_append_action(b, S("waves  back"));
}
static int action_as_msg(struct buffer *b)
{
	return protocol_append_action_as_msg(b, "Barret", S("waves"));
}
static int done(struct buffer *b)
{
	return protocol_append_done(b);
}
static int secure_yes(struct buffer *b)
{
	return protocol_append_secure(b, true);
}
static int secure_no(struct buffer *b)
{
	return protocol_append_secure(b, false);
}
static int relayed(struct buffer *b)
{
	return protocol_append_relayed(b, 1234567);
}

static const struct format_case {
	int (*format)(struct buffer *);
	const char *bytes;
	enum server_keyword keyword; /* SRV_UNKNOWN: a client's line, not parsed back */
	const char *word, *text;
	enum chat_mode mode;
	enum first_speaker first;
} formats[] = {
	{hello, "HELLO turnchat 1 turnchatd\n", SRV_HELLO, "turnchatd", "", 0, 0},
	{waiting, "WAITING lobby\n", SRV_WAITING, "lobby", "", 0, 0},
	{paired_peer, "PAIRED Barret turns peer\n", SRV_PAIRED, "Barret", "", CHAT_MODE_TURNS,
	 FIRST_PEER},
	{paired_you, "PAIRED Barret turns you\n", SRV_PAIRED, "Barret", "", CHAT_MODE_TURNS,
	 FIRST_YOU},
	{paired_free, "PAIRED Barret free -\n", SRV_PAIRED, "Barret", "", CHAT_MODE_FREE, FIRST_NONE},
	{msg, "MSG  two  spaces \n", SRV_MSG, "", " two  spaces ", 0, 0},
	{msg_slash, "MSG /x\n", SRV_MSG, "", "/x", 0, 0},
	{msg_empty, "MSG \n", SRV_MSG, "", "", 0, 0},
	{err, "ERR not-your-turn It is not your turn; wait for your partner's reply\n", SRV_ERR,
	 "not-your-turn", "It is not your turn; wait for your partner's reply", 0, 0},
	{err_text, "ERR bad-name no\n", SRV_ERR, "bad-name", "no", 0, 0},
	{info, "INFO Partner left\n", SRV_INFO, "", "Partner left", 0, 0},
	{bye, "BYE peer-quit\n", SRV_BYE, "peer-quit", "", 0, 0},
	{bye_text, "BYE idle 60 s\n", SRV_BYE, "idle", "60 s", 0, 0},
	{message, "hi /x\n", SRV_UNKNOWN, NULL, NULL, 0, 0},
	{message_slash, "//x\n", SRV_UNKNOWN, NULL, NULL, 0, 0},
	{command, "/name Bob\n", SRV_UNKNOWN, NULL, NULL, 0, 0},
	{command_bare, "/quit\n", SRV_UNKNOWN, NULL, NULL, 0, 0},
	{caps_request, "/caps typing action done secure\n", SRV_UNKNOWN, NULL, NULL, 0, 0},
	{caps, "CAPS typing done\n", SRV_CAPS, "", "", 0, 0},
	{caps_none, "CAPS\n", SRV_CAPS, "", "", 0, 0},
	{typing, "TYPING\n", SRV_TYPING, "", "", 0, 0},
	{action, "ACTION waves  back\n", SRV_ACTION, "", "waves  back", 0, 0},
	{action_as_msg, "MSG * Barret waves\n", SRV_MSG, "", "* Barret waves", 0, 0},
	{done, "DONE\n", SRV_DONE, "", "", 0, 0},
	{relayed, "RELAYED 1234567\n", SRV_RELAYED, "", "", 0, 0},
	{secure_yes, "SECURE yes\n", SRV_SECURE, "", "", 0, 0},
	{secure_no, "SECURE no\n", SRV_SECURE, "", "", 0, 0},
	{token, "TOKEN 0123456789abcdef0123456789abcdef 120\n", SRV_TOKEN,
	 "0123456789abcdef0123456789abcdef", "", 0, 0},
	{ack, "ACK 1234567\n", SRV_ACK, "", "", 0, 0},
	{resumed, "RESUMED 1234567 Barret turns you\n", SRV_RESUMED, "Barret", "", CHAT_MODE_TURNS,
	 FIRST_YOU},
	{pong, "PONG\n", SRV_PONG, "", "", 0, 0},
	{ack_command, "/ack 42\n", SRV_UNKNOWN, NULL, NULL, 0, 0},
	{resume_command, "/resume 0123456789abcdef0123456789abcdef 42\n", SRV_UNKNOWN, NULL, NULL, 0,
	 0},
};

/* Each line is appended whole when it fits exactly, and not at all when one byte short. */
static void test_format(void **state)
{
	struct buffer b;

	(void)state;
	for (size_t i = 0; i < COUNT(formats); i++) {
		size_t need = strlen(formats[i].bytes);

		snprintf(at, sizeof(at), "format %zu, %.*s", i, (int)need - 1, formats[i].bytes);
		buffer_init(&b, 3 + need - 1);
		assert_int_equal(buffer_append(&b, "old", 3), 0);
		assert_int_equal(formats[i].format(&b), -1);
		assert_buffer(&b, "old");
		buffer_init(&b, need - 1);
		assert_int_equal(formats[i].format(&b), -1);
		assert_buffer(&b, "");
		buffer_init(&b, need);
		assert_int_equal(formats[i].format(&b), 0);
		assert_buffer(&b, formats[i].bytes);
		buffer_init(&b, 3 + need);
		assert_int_equal(buffer_append(&b, "old", 3), 0);
		assert_int_equal(formats[i].format(&b), 0);
		assert_int_equal(buffer_length(&b), 3 + need);
		assert_memory_equal(buffer_peek(&b) + 3, formats[i].bytes, need);
		buffer_release(&b);
		at[0] = '\0';
	}
}

static void test_server_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < COUNT(formats); i++) {
		const struct format_case *c = &formats[i];
		struct server_line p;

		if (c->keyword == SRV_UNKNOWN)
			continue;
		snprintf(at, sizeof(at), "round trip case %zu, %s", i, c->bytes);
		assert_true(protocol_parse_server_line(c->bytes, strlen(c->bytes) - 1, &p));
		assert_int_equal(p.keyword, c->keyword);
		assert_bytes(p.word, p.word_len, c->word);
		assert_bytes(p.text, p.text_len, c->text);
		assert_int_equal(p.version, c->keyword == SRV_HELLO ? PROTOCOL_VERSION : 0);
		assert_int_equal(p.mode, c->mode);
		assert_int_equal(p.first, c->first);
		assert_int_equal(p.caps, c->format == caps ? CAP_TYPING | CAP_DONE : 0);
		assert_int_equal(p.count,
				 c->format == relayed || c->format == ack || c->format == resumed
					 ? 1234567
				 : c->format == token ? 120
						      : 0);
		assert_int_equal(p.secure, c->format == secure_yes);
		at[0] = '\0';
	}
}

static void parses_as(const char *line, enum server_keyword keyword, struct server_line *p)
{
	assert_true(protocol_parse_server_line(line, strlen(line), p));
	assert_int_equal(p->keyword, keyword);
}

static void test_server_parse_errors(void **state)
{
	static const char *const bad[] = {
		"",
		"HELLO chat 1 srv",
		"HELLO turnchat 0 srv",
		"HELLO turnchat 01 srv",
		"HELLO turnchat x srv",
		"HELLO turnchat 1x srv",
		"HELLO turnchat 12345 srv",
		"HELLO turnchat 1",
		"HELLO turnchat",
		"HELLO",
		"PAIRED Bob chatty you",
		"PAIRED Bob turns me",
		"PAIRED Bob turns",
		"PAIRED Bob",
		"PAIRED",
		"WAITING",
		"ERR",
		"BYE",
		"TYPING now",
		"DONE x",
		"RELAYED",
		"RELAYED -1",
		"RELAYED 1x",
		"RELAYED 1 2",
		"RELAYED 12345678901234567890",
		"ACK",
		"ACK x",
		"ACK 1 2",
		"TOKEN 0123456789abcdef0123456789abcdef",
		"TOKEN 0123456789abcdef0123456789abcde 120",
		"TOKEN 0123456789abcdef0123456789abcdef 120 x",
		"RESUMED Barret turns you",
		"RESUMED 3 Barret turns",
		"RESUMED 3 Barret turns now",
		"SECURE",
		"SECURE maybe",
		"SECURE yes no",
	};
	struct server_line p;

	(void)state;
	for (size_t i = 0; i < COUNT(bad); i++) {
		bool ok = protocol_parse_server_line(bad[i], strlen(bad[i]), &p);
		if (ok)
			print_error("accepted \"%s\"\n", bad[i]);
		assert_false(ok);
	}
	parses_as("HELLO turnchat 27 other", SRV_HELLO, &p);
	assert_int_equal(p.version, 27); /* a newer version parses; the client decides */
	assert_bytes(p.word, p.word_len, "other");
	parses_as("FUTURE thing here", SRV_UNKNOWN, &p); /* to be ignored, not an error */
	parses_as("msg lower case", SRV_UNKNOWN, &p);
	parses_as("MSG", SRV_MSG, &p);
	assert_int_equal(p.text_len, 0);
}

/* The client compares codes and reasons as enums, never as strings. */
static void test_server_codes_and_reasons(void **state)
{
	struct server_line p;

	(void)state;
	for (int e = 0; e < ERR_UNKNOWN; e++) {
		char line[128];
		snprintf(line, sizeof(line), "ERR %s %s", protocol_error_name((enum error_code)e),
			 protocol_error_text((enum error_code)e));
		parses_as(line, SRV_ERR, &p);
		assert_int_equal(p.error, e);
	}
	for (int b = 0; b < BYE_UNKNOWN; b++) {
		char line[64];
		snprintf(line, sizeof(line), "BYE %s", protocol_bye_name((enum bye_reason)b));
		parses_as(line, SRV_BYE, &p);
		assert_int_equal(p.bye, b);
	}
	parses_as("ERR not-your-turnX later", SRV_ERR, &p);
	assert_int_equal(p.error, ERR_UNKNOWN);
	parses_as("BYE moved-away Try the new server", SRV_BYE, &p);
	assert_int_equal(p.bye, BYE_UNKNOWN);
	assert_bytes(p.word, p.word_len, "moved-away");
}

static void test_is_message(void **state)
{
	(void)state;
	assert_true(protocol_is_message("hello", 5));
	assert_true(protocol_is_message("//slash", 7));
	assert_true(protocol_is_message("", 0));
	assert_false(protocol_is_message("/q", 2));
	assert_false(protocol_is_message("/", 1));
	assert_false(protocol_is_message("/help", 5));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_frame_lines),
		cmocka_unit_test(test_frame_discard_across_calls),
		cmocka_unit_test(test_frame_too_long_at_once),
		cmocka_unit_test(test_frame_several_lines),
		cmocka_unit_test(test_check_text),
		cmocka_unit_test_teardown(test_check_text_every_offset, report_at),
		cmocka_unit_test(test_valid_name),
		cmocka_unit_test(test_parse_command),
		cmocka_unit_test(test_parse_command_without_caps),
		cmocka_unit_test(test_caps_words),
		cmocka_unit_test(test_names_of_codes),
		cmocka_unit_test_teardown(test_format, report_at),
		cmocka_unit_test_teardown(test_server_round_trip, report_at),
		cmocka_unit_test(test_server_parse_errors),
		cmocka_unit_test(test_server_codes_and_reasons),
		cmocka_unit_test(test_is_message),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
