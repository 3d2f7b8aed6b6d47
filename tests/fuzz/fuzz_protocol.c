/*
 * fuzz_protocol: the wire codec (src/protocol.c) and the client's terminal
 * guard (src/display.c) on arbitrary bytes. Input: one byte picks max_line,
 * one seeds how the stream is cut into reads, the rest is the stream.
 *
 * Checked: framing gives the same lines whatever the chunking, and the same
 * as a plain split at LF (the man page's rules); text checks agree with an
 * independent RFC 3629 decoder; every parse result points inside its line;
 * what the client formats the server parses back, and what the server
 * formats the client parses back; sanitized output is valid UTF-8 with no
 * control character but TAB, and none of the bidi, zero-width and separator
 * characters the client shows escaped (issue 12).
 */
#include <stdint.h>
#include <string.h>

#include "buffer.h"
#include "display.h"
#include "protocol.h"

#include "fuzz_util.h"

/* What the connection hands its owner, in order. */
struct events {
	char kinds[4096];    /* 'L' line, 'T' too long */
	size_t starts[4096]; /* of each line in lines */
	size_t lens[4096];
	char lines[1 << 16];
	size_t count, used;
};

static void add_event(struct events *ev, char kind, const char *line, size_t len)
{
	FUZZ_CHECK(ev->count < 4096 && ev->used + len <= sizeof(ev->lines), "too many events");
	ev->kinds[ev->count] = kind;
	ev->starts[ev->count] = ev->used;
	ev->lens[ev->count] = len;
	if (len > 0)
		memcpy(ev->lines + ev->used, line, len);
	ev->used += len;
	ev->count++;
}

/* The man page: lines end at LF, a CR before it is dropped, longer than
 * max_line is refused once; a last line without LF counts at the end. */
static void frame_reference(const char *data, size_t len, size_t max_line, struct events *ev)
{
	size_t start = 0;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		size_t n = i - start;
		if (n > 0 && data[i - 1] == '\r')
			n--;
		if (n > max_line)
			add_event(ev, 'T', NULL, 0);
		else
			add_event(ev, 'L', data + start, n);
		start = i + 1;
	}
	size_t rest = len - start;
	if (rest > max_line + 1 || (rest == max_line + 1 && data[len - 1] != '\r'))
		add_event(ev, 'T', NULL, 0);
	else if (rest > 0)
		add_event(ev, 'L', data + start, rest);
}

/* As src/connection.c reads: an input buffer of max_line + 2 + one read,
 * reads of random sizes up to chunk (seed 0: always chunk). */
static void frame_chunked(const char *data, size_t len, size_t max_line, size_t chunk, uint32_t seed,
			  struct events *ev)
{
	struct buffer in;
	struct framer framer = {false};
	size_t pos = 0;

	buffer_init(&in, max_line + 2 + chunk);
	for (int round = 0; pos < len || round == 0; round++) {
		bool eof = pos >= len;
		if (!eof) {
			size_t want = seed ? 1 + fuzz_next(&seed) % chunk : chunk, room;
			char *dst = buffer_reserve(&in, want, &room);
			/* The framer must never leave the reader without room. */
			FUZZ_CHECK(dst != NULL && room > 0, "input buffer full at %zu", pos);
			size_t n = want < room ? want : room;
			n = n < len - pos ? n : len - pos;
			memcpy(dst, data + pos, n);
			buffer_commit(&in, n);
			pos += n;
		}
		for (;;) {
			size_t have = buffer_length(&in), line_len = 0, consumed = 0;
			if (have == 0)
				break;
			const char *p = buffer_peek(&in);
			enum frame_result r = protocol_frame(&framer, p, have, max_line, &line_len,
							     &consumed);
			FUZZ_CHECK(consumed <= have, "consumed %zu of %zu", consumed, have);
			if (r == FRAME_NEED_MORE && consumed == 0) {
				if (pos >= len && !framer.discarding) {
					add_event(ev, 'L', p, have);
					buffer_consume(&in, have);
				}
				break;
			}
			if (r == FRAME_LINE) {
				FUZZ_CHECK(line_len <= max_line && line_len < consumed, "line %zu",
					   line_len);
				FUZZ_CHECK(memchr(p, '\n', line_len) == NULL, "LF inside a line");
				add_event(ev, 'L', p, line_len);
			} else if (r == FRAME_TOO_LONG) {
				add_event(ev, 'T', NULL, 0);
			}
			FUZZ_CHECK(consumed > 0, "no progress");
			buffer_consume(&in, consumed);
		}
		if (eof)
			break;
	}
	buffer_release(&in);
}

static void check_same(const struct events *a, const struct events *b)
{
	FUZZ_CHECK(a->count == b->count, "%zu events, reference %zu", a->count, b->count);
	for (size_t i = 0; i < a->count; i++) {
		FUZZ_CHECK(a->kinds[i] == b->kinds[i], "event %zu kind", i);
		FUZZ_CHECK(a->lens[i] == b->lens[i] &&
				   memcmp(a->lines + a->starts[i], b->lines + b->starts[i],
					  a->lens[i]) == 0,
			   "event %zu differs", i);
	}
}

/* A line the client formatted, framed and parsed as the server would. */
static void parse_framed(const struct buffer *out, struct command *command)
{
	struct framer framer = {false};
	size_t line_len = 0, consumed = 0;
	enum frame_result r = protocol_frame(&framer, buffer_peek(out), buffer_length(out),
					     PROTOCOL_DEFAULT_MAX_LINE * 4, &line_len, &consumed);
	FUZZ_CHECK(r == FRAME_LINE && consumed == buffer_length(out), "formatted line frames");
	protocol_parse_command(buffer_peek(out), line_len, PROTOCOL_CAPS_ALL, command);
}

static void check_command(const char *line, size_t len)
{
	struct command c;
	protocol_parse_command(line, len, PROTOCOL_CAPS_ALL, &c);
	int ref = ref_check_text(line, len);

	if (ref != 0) {
		FUZZ_CHECK(c.kind == CMD_INVALID &&
				   c.error == (ref == 1 ? ERR_BAD_UTF8 : ERR_CONTROL_CHAR),
			   "text check disagrees with RFC 3629 (%d)", ref);
		return;
	}
	if (len == 0) {
		FUZZ_CHECK(c.kind == CMD_INVALID && c.error == ERR_EMPTY, "empty line");
		return;
	}
	FUZZ_CHECK(c.kind == CMD_INVALID || c.kind == CMD_MODE || c.kind == CMD_QUIT ||
			   c.kind == CMD_HELP || (c.arg >= line && c.arg + c.arg_len == line + len),
		   "argument outside the line");
	bool message = line[0] != '/' || (len > 1 && line[1] == '/');
	FUZZ_CHECK(message == (c.kind == CMD_MESSAGE), "message or command");
	if ((c.kind == CMD_NAME || c.kind == CMD_JOIN) && c.arg_len > 0)
		FUZZ_CHECK(protocol_valid_name(c.arg, c.arg_len), "name accepted");
	FUZZ_CHECK(c.kind != CMD_NAME || c.arg_len > 0, "/name without a name");

	struct buffer out;
	struct command back;
	buffer_init(&out, len + 64);
	if (c.kind == CMD_MESSAGE) {
		FUZZ_CHECK(c.arg_len > 0 && c.arg_len >= len - 1, "message text");
		/* The client escapes, the server unescapes: the same text arrives. */
		FUZZ_CHECK(protocol_append_message(&out, c.arg, c.arg_len) == 0, "append message");
		parse_framed(&out, &back);
		FUZZ_CHECK(back.kind == CMD_MESSAGE && back.arg_len == c.arg_len &&
				   memcmp(back.arg, c.arg, c.arg_len) == 0,
			   "message round trip");
		buffer_consume(&out, buffer_length(&out));

		/* The server's MSG line, parsed by the client, carries it too. */
		struct server_line sl;
		FUZZ_CHECK(protocol_append_msg(&out, c.arg, c.arg_len) == 0, "append MSG");
		FUZZ_CHECK(
			protocol_parse_server_line(buffer_peek(&out), buffer_length(&out) - 1, &sl) &&
				sl.keyword == SRV_MSG && sl.text_len == c.arg_len &&
				memcmp(sl.text, c.arg, c.arg_len) == 0,
			"MSG round trip");
	} else if (c.kind == CMD_NAME || c.kind == CMD_JOIN) {
		char arg[PROTOCOL_NAME_MAX + 1];
		memcpy(arg, c.arg, c.arg_len);
		arg[c.arg_len] = '\0';
		protocol_append_command(&out, c.kind == CMD_NAME ? "name" : "join",
					c.arg_len ? arg : NULL);
		parse_framed(&out, &back);
		FUZZ_CHECK(back.kind == c.kind && back.arg_len == c.arg_len &&
				   memcmp(back.arg, c.arg, c.arg_len) == 0,
			   "command round trip");
	}
	buffer_release(&out);
}

static void check_server_line(const char *line, size_t len)
{
	struct server_line sl;
	if (!protocol_parse_server_line(line, len, &sl))
		return;
	const char *end = line + len;
	FUZZ_CHECK(sl.word == NULL || (sl.word >= line && sl.word + sl.word_len <= end), "word");
	FUZZ_CHECK(sl.text == NULL || (sl.text >= line && sl.text + sl.text_len <= end), "text");
	if (sl.keyword == SRV_HELLO)
		FUZZ_CHECK(sl.version >= 1 && sl.word_len > 0, "HELLO");
	if (sl.keyword == SRV_PAIRED)
		FUZZ_CHECK(sl.mode < CHAT_MODE_COUNT && sl.word_len > 0, "PAIRED");
}

/* Formats every server line from fuzzed words and parses it back. */
static void check_server_round_trip(const char *data, size_t len)
{
	char text[256], name[PROTOCOL_NAME_MAX + 1] = "x";
	size_t n = 0;
	for (size_t i = 0; i < len && n < sizeof(text) - 1; i++)
		if (data[i] != '\n' && data[i] != '\0')
			text[n++] = data[i];
	text[n] = '\0';
	size_t name_len = 0;
	for (size_t i = 0; i < n && name_len < PROTOCOL_NAME_MAX; i++)
		if (protocol_valid_name(&text[i], 1))
			name[name_len++] = text[i];
	if (name_len > 0)
		name[name_len] = '\0';

	struct buffer out;
	struct server_line sl;
	buffer_init(&out, 1024);
#define PARSED() protocol_parse_server_line(buffer_peek(&out), buffer_length(&out) - 1, &sl)
#define SAME(p, l, s) ((l) == strlen(s) && memcmp((p), (s), (l)) == 0)
	enum error_code code = (enum error_code)(n % (ERR_EMPTY + 1));
	protocol_append_error(&out, code, text);
	FUZZ_CHECK(PARSED() && sl.keyword == SRV_ERR &&
			   SAME(sl.word, sl.word_len, protocol_error_name(code)) &&
			   SAME(sl.text, sl.text_len, text),
		   "ERR");
	buffer_consume(&out, buffer_length(&out));
	enum bye_reason reason = (enum bye_reason)(n % (BYE_PROTOCOL + 1));
	protocol_append_bye(&out, reason, text);
	FUZZ_CHECK(PARSED() && sl.keyword == SRV_BYE &&
			   SAME(sl.word, sl.word_len, protocol_bye_name(reason)) &&
			   SAME(sl.text, sl.text_len, text),
		   "BYE");
	buffer_consume(&out, buffer_length(&out));
	protocol_append_info(&out, text);
	FUZZ_CHECK(PARSED() && sl.keyword == SRV_INFO && SAME(sl.text, sl.text_len, text), "INFO");
	buffer_consume(&out, buffer_length(&out));
	protocol_append_waiting(&out, name);
	FUZZ_CHECK(PARSED() && sl.keyword == SRV_WAITING && SAME(sl.word, sl.word_len, name),
		   "WAITING");
	buffer_consume(&out, buffer_length(&out));
	protocol_append_hello(&out, name);
	FUZZ_CHECK(PARSED() && sl.keyword == SRV_HELLO && sl.version == PROTOCOL_VERSION &&
			   SAME(sl.word, sl.word_len, name),
		   "HELLO");
	buffer_consume(&out, buffer_length(&out));
	enum chat_mode mode = (enum chat_mode)(n % CHAT_MODE_COUNT);
	enum first_speaker first = mode == CHAT_MODE_FREE ? FIRST_NONE : (enum first_speaker)(n % 2);
	protocol_append_paired(&out, name, mode, first);
	FUZZ_CHECK(PARSED() && sl.keyword == SRV_PAIRED && SAME(sl.word, sl.word_len, name) &&
			   sl.mode == mode && sl.first == first,
		   "PAIRED");
#undef PARSED
#undef SAME
	buffer_release(&out);
}

/* What the client shows as <U+XXXX> beside the controls: bidi controls,
 * zero-width characters, the line and paragraph separators (display.h). */
static bool ref_display_escaped(uint32_t c)
{
	static const uint32_t ranges[][2] = {
		{0x061c, 0x061c}, {0x200b, 0x200f}, {0x2028, 0x202e},
		{0x2060, 0x2064}, {0x2066, 0x2069}, {0xfeff, 0xfeff},
	};
	for (size_t i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++)
		if (c >= ranges[i][0] && c <= ranges[i][1])
			return true;
	return false;
}

/* True when text (valid UTF-8) holds a character the client shows escaped. */
static bool has_display_escaped(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	for (size_t i = 0; i < len;) {
		uint32_t c;
		size_t k = ref_utf8_sequence(s + i, len - i, &c);
		if (k == 0 || ref_display_escaped(c))
			return true;
		i += k;
	}
	return false;
}

static void check_display(const char *text, size_t len)
{
	struct buffer out;
	buffer_init(&out, len * 8 + 16);
	FUZZ_CHECK(display_sanitize(&out, text, len) == 0, "display fits 8 bytes per byte");
	size_t n = buffer_length(&out);
	/* An empty buffer has no memory yet: nothing to peek at. */
	const unsigned char *s = n ? (const unsigned char *)buffer_peek(&out)
				   : (const unsigned char *)"";
	for (size_t i = 0; i < n;) {
		uint32_t c;
		size_t k = ref_utf8_sequence(s + i, n - i, &c);
		FUZZ_CHECK(k > 0, "sanitized output is not UTF-8 at %zu", i);
		FUZZ_CHECK(!ref_is_control(c), "control U+%04X reaches the terminal", (unsigned)c);
		FUZZ_CHECK(!ref_display_escaped(c), "U+%04X reaches the terminal", (unsigned)c);
		i += k;
	}
	if (ref_check_text(text, len) == 0 && !has_display_escaped(text, len))
		FUZZ_CHECK(n == len && memcmp(s, text, len) == 0, "clean text changed");
	buffer_release(&out);

	/* A full buffer is refused, never overrun. */
	buffer_init(&out, len / 2 + 1);
	display_sanitize(&out, text, len);
	FUZZ_CHECK(buffer_length(&out) <= len / 2 + 1, "display overran its limit");
	buffer_release(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
	static struct events reference, one_shot, chunked;
	if (size < 2 || size > 8192)
		return 0;
	size_t max_line = 1 + input[0] % 80;
	uint32_t seed = input[1];
	const char *data = (const char *)input + 2;
	size_t len = size - 2;

	reference.count = reference.used = 0;
	one_shot.count = one_shot.used = 0;
	chunked.count = chunked.used = 0;
	frame_reference(data, len, max_line, &reference);
	frame_chunked(data, len, max_line, 64, seed | 1, &chunked);
	check_same(&chunked, &reference);
	/* One read of everything (a reader with a huge chunk) agrees too. */
	frame_chunked(data, len, max_line, len + 1, 0, &one_shot);
	check_same(&one_shot, &reference);

	for (size_t i = 0; i < reference.count; i++) {
		const char *line = reference.lines + reference.starts[i];
		if (reference.kinds[i] != 'L')
			continue;
		check_command(line, reference.lens[i]);
		check_server_line(line, reference.lens[i]);
	}
	check_command(data, len);
	check_server_line(data, len);
	check_server_round_trip(data, len);
	check_display(data, len);
	return 0;
}
