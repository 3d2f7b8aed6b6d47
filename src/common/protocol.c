/*
 * protocol: framing, checking, parsing and formatting of turnchat v1 lines.
 * Called by the connection module (framing), the session (commands, and
 * every line the daemon sends) and the client (everything the server says).
 */
#include "protocol.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

static const char *const mode_names[CHAT_MODE_COUNT] = {
	[CHAT_MODE_TURNS] = "turns",
	[CHAT_MODE_FREE] = "free",
};

static const struct {
	const char *name;
	const char *text;
} errors[] = {
	[ERR_NOT_YOUR_TURN] = {"not-your-turn", "It is not your turn; wait for your partner's reply"},
	[ERR_NOT_PAIRED] = {"not-paired", "You are not in a conversation yet; nothing was sent"},
	[ERR_TOO_LONG] = {"too-long", "Line too long; it was not sent"},
	[ERR_BAD_UTF8] = {"bad-utf8", "Line is not valid UTF-8; it was not sent"},
	[ERR_CONTROL_CHAR] = {"control-char", "Line contains control characters; it was not sent"},
	[ERR_BAD_COMMAND] = {"bad-command", "Unknown command or wrong arguments; try /help"},
	[ERR_BAD_NAME] = {"bad-name", "Names and rooms are 1-32 of A-Z a-z 0-9 _ . -"},
	[ERR_BAD_MODE] = {"bad-mode", "That mode is not offered here"},
	[ERR_BUSY] = {"busy", "Not now: you have already joined"},
	[ERR_EMPTY] = {"empty", "Empty line; nothing was sent"},
	[ERR_RATE_LIMITED] = {"rate-limited", "Too many lines too fast; this one was not sent"},
};

static const char *const bye_names[] = {
	[BYE_QUIT] = "quit",
	[BYE_PEER_QUIT] = "peer-quit",
	[BYE_PEER_LOST] = "peer-lost",
	[BYE_SHUTDOWN] = "shutdown",
	[BYE_IDLE] = "idle",
	[BYE_SERVER_FULL] = "server-full",
	[BYE_ADDRESS_LIMIT] = "address-limit",
	[BYE_JOIN_TIMEOUT] = "join-timeout",
	[BYE_TOO_SLOW] = "too-slow",
	[BYE_FLOOD] = "flood",
	[BYE_PROTOCOL] = "protocol",
};

static const char *const keywords[] = {
	[SRV_HELLO] = "HELLO", [SRV_WAITING] = "WAITING", [SRV_PAIRED] = "PAIRED", [SRV_MSG] = "MSG",
	[SRV_ERR] = "ERR",     [SRV_INFO] = "INFO",       [SRV_BYE] = "BYE",
};
/* Their lengths, so that formatting a MSG line measures nothing. */
static const unsigned char keyword_lengths[] = {
	[SRV_HELLO] = 5, [SRV_WAITING] = 7, [SRV_PAIRED] = 6, [SRV_MSG] = 3,
	[SRV_ERR] = 3,   [SRV_INFO] = 4,    [SRV_BYE] = 3,
};

const char *protocol_mode_name(enum chat_mode mode)
{
	return mode_names[mode];
}

bool protocol_parse_mode(const char *text, size_t len, enum chat_mode *mode)
{
	for (int m = 0; m < CHAT_MODE_COUNT; m++) {
		if (strlen(mode_names[m]) == len && memcmp(mode_names[m], text, len) == 0) {
			*mode = (enum chat_mode)m;
			return true;
		}
	}
	return false;
}

bool protocol_valid_name(const char *text, size_t len)
{
	if (len == 0 || len > PROTOCOL_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = text[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

enum frame_result protocol_frame(struct framer *framer, const char *data, size_t len, size_t max_line,
				 size_t *line_len, size_t *consumed)
{
	const char *lf = memchr(data, '\n', len);

	if (framer->discarding) {
		*consumed = lf ? (size_t)(lf - data) + 1 : len;
		if (lf)
			framer->discarding = false;
		return FRAME_NEED_MORE;
	}
	if (lf == NULL) {
		/* max_line bytes plus a CR may still be a valid line; more cannot. */
		if (len > max_line + 1 || (len == max_line + 1 && data[max_line] != '\r')) {
			framer->discarding = true;
			*consumed = len;
			return FRAME_TOO_LONG;
		}
		*consumed = 0;
		return FRAME_NEED_MORE;
	}
	size_t n = (size_t)(lf - data);
	*consumed = n + 1;
	if (n > 0 && data[n - 1] == '\r')
		n--;
	if (n > max_line)
		return FRAME_TOO_LONG;
	*line_len = n;
	return FRAME_LINE;
}

/* True when none of the 8 bytes at s is below 0x20 or above 0x7e: a word
 * of printable ASCII, tested at once (the bit tricks of "Bit Twiddling
 * Hacks": hasless(x, 0x20) and hasmore(x, 0x7e)). */
static inline bool printable_word(const unsigned char *s)
{
	const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
	uint64_t x;

	memcpy(&x, s, sizeof(x));
	return (((x - ones * 0x20) & ~x) | ((x + ones * (127 - 0x7e)) | x)) & highs ? false : true;
}

enum text_check protocol_check_text(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	enum text_check result = TEXT_OK;

	for (size_t i = 0; i < len;) {
		/* Most chat text is printable ASCII: pass it without decoding,
		 * a word at a time where it can. */
		if (len - i >= 8 && printable_word(s + i)) {
			i += 8;
			continue;
		}
		if (s[i] >= 0x20 && s[i] < 0x7f) {
			i++;
			continue;
		}
		uint32_t c;
		size_t n = utf8_decode(s + i, len - i, &c);
		if (n == 0)
			return TEXT_BAD_UTF8;
		if (utf8_is_control(c))
			result = TEXT_CONTROL_CHAR; /* keep going: bad UTF-8 is reported first */
		i += n;
	}
	return result;
}

const char *protocol_error_name(enum error_code code)
{
	return errors[code].name;
}

const char *protocol_error_text(enum error_code code)
{
	return errors[code].text;
}

const char *protocol_bye_name(enum bye_reason reason)
{
	return bye_names[reason];
}

/* Fills in command; returns why the line is refused, or ERR_UNKNOWN. */
static enum error_code parse_command(const char *line, size_t len, struct command *command)
{
	static const struct {
		const char *verb;
		enum command_kind kind;
		bool takes_arg, needs_arg;
	} verbs[] = {
		{"/name", CMD_NAME, true, true},   {"/mode", CMD_MODE, true, true},
		{"/join", CMD_JOIN, true, false},  {"/q", CMD_QUIT, false, false},
		{"/quit", CMD_QUIT, false, false}, {"/help", CMD_HELP, false, false},
	};

	switch (protocol_check_text(line, len)) {
	case TEXT_BAD_UTF8:
		return ERR_BAD_UTF8;
	case TEXT_CONTROL_CHAR:
		return ERR_CONTROL_CHAR;
	case TEXT_OK:
		break;
	}
	if (len == 0)
		return ERR_EMPTY;
	if (protocol_is_message(line, len)) {
		size_t skip = line[0] == '/' ? 1 : 0;
		command->kind = CMD_MESSAGE;
		command->arg = line + skip;
		command->arg_len = len - skip;
		return ERR_UNKNOWN;
	}
	const char *space = memchr(line, ' ', len);
	size_t verb_len = space ? (size_t)(space - line) : len;
	const char *arg = space ? space + 1 : line + len;
	size_t arg_len = space ? len - verb_len - 1 : 0;
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
		if (strlen(verbs[i].verb) != verb_len || memcmp(verbs[i].verb, line, verb_len) != 0)
			continue;
		if ((arg_len > 0 && !verbs[i].takes_arg) || (arg_len == 0 && verbs[i].needs_arg) ||
		    (space && arg_len == 0))
			return ERR_BAD_COMMAND;
		command->kind = verbs[i].kind;
		command->arg = arg;
		command->arg_len = arg_len;
		if (command->kind == CMD_MODE && !protocol_parse_mode(arg, arg_len, &command->mode))
			return ERR_BAD_MODE;
		if ((command->kind == CMD_NAME || command->kind == CMD_JOIN) && arg_len > 0 &&
		    !protocol_valid_name(arg, arg_len))
			return ERR_BAD_NAME;
		return ERR_UNKNOWN;
	}
	return ERR_BAD_COMMAND;
}

void protocol_parse_command(const char *line, size_t len, struct command *command)
{
	memset(command, 0, sizeof(*command));
	command->error = parse_command(line, len, command);
	if (command->error != ERR_UNKNOWN)
		command->kind = CMD_INVALID;
}

/* Appends "KEYWORD[ a][ b]\n" as one unit: all of it or, over the cap, none. */
static int append_line(struct buffer *out, enum server_keyword keyword, const char *a, size_t a_len,
		       const char *b, size_t b_len)
{
	/* On the daemon's hot path (every MSG): one reservation, plain copies. */
	size_t kw_len = keyword_lengths[keyword];
	size_t total = kw_len + (a ? 1 + a_len : 0) + (b ? 1 + b_len : 0) + 1;

	if (total > buffer_room(out))
		return -1;
	char *dst = buffer_reserve(out, total, NULL);
	if (dst == NULL)
		return -1;
	char *p = dst;
	memcpy(p, keywords[keyword], kw_len);
	p += kw_len;
	if (a) {
		*p++ = ' ';
		memcpy(p, a, a_len);
		p += a_len;
	}
	if (b) {
		*p++ = ' ';
		memcpy(p, b, b_len);
		p += b_len;
	}
	*p++ = '\n';
	buffer_commit(out, (size_t)(p - dst));
	return 0;
}

static int append_words(struct buffer *out, enum server_keyword keyword, const char *a, const char *b)
{
	return append_line(out, keyword, a, a ? strlen(a) : 0, b, b ? strlen(b) : 0);
}

int protocol_append_hello(struct buffer *out, const char *server_name)
{
	char words[64 + PROTOCOL_NAME_MAX];
	snprintf(words, sizeof(words), "turnchat %d %s", PROTOCOL_VERSION, server_name);
	return append_words(out, SRV_HELLO, words, NULL);
}

int protocol_append_waiting(struct buffer *out, const char *room)
{
	return append_words(out, SRV_WAITING, room, NULL);
}

int protocol_append_paired(struct buffer *out, const char *peer, enum chat_mode mode,
			   enum first_speaker first)
{
	static const char *const firsts[] = {
		[FIRST_YOU] = "you", [FIRST_PEER] = "peer", [FIRST_NONE] = "-"};
	char words[64 + PROTOCOL_NAME_MAX];
	snprintf(words, sizeof(words), "%s %s %s", peer, mode_names[mode], firsts[first]);
	return append_words(out, SRV_PAIRED, words, NULL);
}

int protocol_append_msg(struct buffer *out, const char *text, size_t len)
{
	return append_line(out, SRV_MSG, text, len, NULL, 0);
}

int protocol_append_error(struct buffer *out, enum error_code code, const char *text)
{
	return append_words(out, SRV_ERR, errors[code].name, text ? text : errors[code].text);
}

int protocol_append_info(struct buffer *out, const char *text)
{
	return append_words(out, SRV_INFO, text, NULL);
}

int protocol_append_help(struct buffer *out)
{
	static const char *const lines[] = {
		"Commands: /name NAME, /mode turns|free, /join [ROOM], /help, /q",
		"Before /join, /name and /mode say who you are and how you want to talk.",
		"/join waits at a meeting point; the next person to join it becomes your partner.",
		"Once paired, every line not starting with / goes to your partner; "
		"// sends a leading /.",
	};
	int rc = 0;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]) && rc == 0; i++)
		rc = protocol_append_info(out, lines[i]);
	return rc;
}

int protocol_append_bye(struct buffer *out, enum bye_reason reason, const char *text)
{
	return append_words(out, SRV_BYE, bye_names[reason], text);
}

int protocol_append_message(struct buffer *out, const char *text, size_t len)
{
	bool escape = len > 0 && text[0] == '/';
	size_t total = len + (escape ? 1 : 0) + 1;

	if (total > buffer_room(out))
		return -1;
	if (escape)
		buffer_append(out, "/", 1);
	buffer_append(out, text, len);
	return buffer_append(out, "\n", 1);
}

int protocol_append_command(struct buffer *out, const char *command, const char *arg)
{
	size_t c = strlen(command), a = arg ? strlen(arg) : 0;
	size_t total = 1 + c + (arg ? 1 + a : 0) + 1;

	if (total > buffer_room(out))
		return -1;
	buffer_append(out, "/", 1);
	buffer_append(out, command, c);
	if (arg) {
		buffer_append(out, " ", 1);
		buffer_append(out, arg, a);
	}
	return buffer_append(out, "\n", 1);
}

/* Splits off the next space-separated word of line[*pos, len). */
static bool next_word(const char *line, size_t len, size_t *pos, const char **word, size_t *word_len)
{
	if (*pos >= len)
		return false;
	const char *start = line + *pos;
	const char *space = memchr(start, ' ', len - *pos);
	*word = start;
	*word_len = space ? (size_t)(space - start) : len - *pos;
	*pos += *word_len + (space ? 1 : 0);
	return *word_len > 0;
}

static bool word_is(const char *word, size_t len, const char *literal)
{
	return strlen(literal) == len && memcmp(word, literal, len) == 0;
}

bool protocol_parse_server_line(const char *line, size_t len, struct server_line *parsed)
{
	size_t pos = 0;
	const char *kw, *w;
	size_t kw_len, w_len;

	memset(parsed, 0, sizeof(*parsed));
	parsed->keyword = SRV_UNKNOWN;
	if (!next_word(line, len, &pos, &kw, &kw_len))
		return false;
	for (int k = 0; k < SRV_UNKNOWN; k++)
		if (word_is(kw, kw_len, keywords[k]))
			parsed->keyword = (enum server_keyword)k;

	switch (parsed->keyword) {
	case SRV_MSG:
	case SRV_INFO:
		parsed->text = line + pos;
		parsed->text_len = len - pos;
		return true;
	case SRV_ERR:
	case SRV_BYE:
	case SRV_WAITING:
		if (!next_word(line, len, &pos, &parsed->word, &parsed->word_len))
			return false;
		parsed->text = line + pos;
		parsed->text_len = pos < len ? len - pos : 0;
		parsed->error = ERR_UNKNOWN;
		for (int e = 0; parsed->keyword == SRV_ERR && e < ERR_UNKNOWN; e++)
			if (word_is(parsed->word, parsed->word_len, errors[e].name))
				parsed->error = (enum error_code)e;
		parsed->bye = BYE_UNKNOWN;
		for (int b = 0; parsed->keyword == SRV_BYE && b < BYE_UNKNOWN; b++)
			if (word_is(parsed->word, parsed->word_len, bye_names[b]))
				parsed->bye = (enum bye_reason)b;
		return true;
	case SRV_HELLO:
		if (!next_word(line, len, &pos, &w, &w_len) || !word_is(w, w_len, "turnchat") ||
		    !next_word(line, len, &pos, &w, &w_len) || w_len > 4 || w[0] < '1' || w[0] > '9')
			return false;
		for (size_t i = 0; i < w_len; i++) {
			if (w[i] < '0' || w[i] > '9')
				return false;
			parsed->version = parsed->version * 10 + (unsigned)(w[i] - '0');
		}
		return next_word(line, len, &pos, &parsed->word, &parsed->word_len);
	case SRV_PAIRED:
		if (!next_word(line, len, &pos, &parsed->word, &parsed->word_len) ||
		    !next_word(line, len, &pos, &w, &w_len) ||
		    !protocol_parse_mode(w, w_len, &parsed->mode) ||
		    !next_word(line, len, &pos, &w, &w_len))
			return false;
		if (word_is(w, w_len, "you"))
			parsed->first = FIRST_YOU;
		else if (word_is(w, w_len, "peer"))
			parsed->first = FIRST_PEER;
		else if (word_is(w, w_len, "-"))
			parsed->first = FIRST_NONE;
		else
			return false;
		return true;
	case SRV_UNKNOWN:
		/* A later protocol version may add keywords; the client ignores them. */
		return true;
	}
	return false;
}
