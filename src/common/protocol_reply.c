/*
 * protocol_reply: the lines the server sends. The daemon's session formats
 * them (protocol_append_*); the client parses them (protocol_parse_server_line).
 */
#include <stdio.h>
#include <string.h>

#include "protocol.h"

/* Sized by the enum, so the parser never reads past the end; each keyword
 * needs its entry (the round-trip unit test checks every one). */
static const char *const keywords[SRV_UNKNOWN] = {
	[SRV_HELLO] = "HELLO",     [SRV_WAITING] = "WAITING", [SRV_PAIRED] = "PAIRED",
	[SRV_MSG] = "MSG",         [SRV_ERR] = "ERR",         [SRV_INFO] = "INFO",
	[SRV_BYE] = "BYE",         [SRV_CAPS] = "CAPS",       [SRV_TYPING] = "TYPING",
	[SRV_ACTION] = "ACTION",   [SRV_DONE] = "DONE",       [SRV_RELAYED] = "RELAYED",
	[SRV_SECURE] = "SECURE",   [SRV_TOKEN] = "TOKEN",     [SRV_ACK] = "ACK",
	[SRV_RESUMED] = "RESUMED", [SRV_PONG] = "PONG",
};
/* Their lengths, so that formatting a MSG line measures nothing. */
static const unsigned char keyword_lengths[SRV_UNKNOWN] = {
	[SRV_HELLO] = 5,   [SRV_WAITING] = 7, [SRV_PAIRED] = 6, [SRV_MSG] = 3,    [SRV_ERR] = 3,
	[SRV_INFO] = 4,    [SRV_BYE] = 3,     [SRV_CAPS] = 4,   [SRV_TYPING] = 6, [SRV_ACTION] = 6,
	[SRV_DONE] = 4,    [SRV_RELAYED] = 7, [SRV_SECURE] = 6, [SRV_TOKEN] = 5,  [SRV_ACK] = 3,
	[SRV_RESUMED] = 7, [SRV_PONG] = 4,
};

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
	char words[64 + PROTOCOL_NAME_BYTES];
	snprintf(words, sizeof(words), "turnchat %d %s", PROTOCOL_VERSION, server_name);
	return append_words(out, SRV_HELLO, words, NULL);
}

int protocol_append_waiting(struct buffer *out, const char *room)
{
	return append_words(out, SRV_WAITING, room, NULL);
}

static const char *const firsts[] = {[FIRST_YOU] = "you", [FIRST_PEER] = "peer", [FIRST_NONE] = "-"};

int protocol_append_paired(struct buffer *out, const char *peer, enum chat_mode mode,
			   enum first_speaker first)
{
	char words[64 + PROTOCOL_NAME_BYTES];
	snprintf(words, sizeof(words), "%s %s %s", peer, protocol_mode_name(mode), firsts[first]);
	return append_words(out, SRV_PAIRED, words, NULL);
}

int protocol_append_resumed(struct buffer *out, unsigned long received, const char *peer,
			    enum chat_mode mode, enum first_speaker first)
{
	char words[64 + PROTOCOL_NAME_BYTES];
	snprintf(words, sizeof(words), "%lu %s %s %s", received, peer, protocol_mode_name(mode),
		 firsts[first]);
	return append_words(out, SRV_RESUMED, words, NULL);
}

int protocol_append_token(struct buffer *out, const char *token, unsigned seconds)
{
	char number[16];
	int len = snprintf(number, sizeof(number), "%u", seconds);
	return append_line(out, SRV_TOKEN, token, PROTOCOL_TOKEN_HEX, number, (size_t)len);
}

int protocol_append_pong(struct buffer *out)
{
	return append_line(out, SRV_PONG, NULL, 0, NULL, 0);
}

/* "KEYWORD n": RELAYED, and ACK, which goes out about as often as MSG:
 * the digits written by hand, not by snprintf. */
static int append_count(struct buffer *out, enum server_keyword keyword, unsigned long count)
{
	char digits[24];
	char *p = digits + sizeof(digits);

	do {
		*--p = (char)('0' + count % 10);
		count /= 10;
	} while (count);
	return append_line(out, keyword, p, (size_t)(digits + sizeof(digits) - p), NULL, 0);
}

int protocol_append_ack(struct buffer *out, unsigned long delivered)
{
	return append_count(out, SRV_ACK, delivered);
}

int protocol_append_msg(struct buffer *out, const char *text, size_t len)
{
	return append_line(out, SRV_MSG, text, len, NULL, 0);
}

int protocol_append_error(struct buffer *out, enum error_code code, const char *text)
{
	return append_words(out, SRV_ERR, protocol_error_name(code),
			    text ? text : protocol_error_text(code));
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

int protocol_append_caps(struct buffer *out, unsigned caps)
{
	char words[64];
	size_t len = protocol_format_caps(caps, words, sizeof(words));
	return append_line(out, SRV_CAPS, len ? words : NULL, len, NULL, 0);
}

int protocol_append_typing(struct buffer *out)
{
	return append_line(out, SRV_TYPING, NULL, 0, NULL, 0);
}

int protocol_append_action(struct buffer *out, const char *text, size_t len)
{
	return append_line(out, SRV_ACTION, text, len, NULL, 0);
}

int protocol_append_action_as_msg(struct buffer *out, const char *name, const char *text, size_t len)
{
	char who[PROTOCOL_NAME_BYTES + 4];
	int n = snprintf(who, sizeof(who), "* %s", name);
	return append_line(out, SRV_MSG, who, (size_t)n, text, len);
}

int protocol_append_done(struct buffer *out)
{
	return append_line(out, SRV_DONE, NULL, 0, NULL, 0);
}

int protocol_append_relayed(struct buffer *out, unsigned long count)
{
	return append_count(out, SRV_RELAYED, count);
}

int protocol_append_secure(struct buffer *out, bool both_encrypted)
{
	return append_line(out, SRV_SECURE, both_encrypted ? "yes" : "no", both_encrypted ? 3 : 2,
			   NULL, 0);
}

int protocol_append_bye(struct buffer *out, enum bye_reason reason, const char *text)
{
	return append_words(out, SRV_BYE, protocol_bye_name(reason), text);
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
	case SRV_TYPING:
	case SRV_DONE:
	case SRV_PONG:
		return pos >= len;
	case SRV_CAPS:
		parsed->caps = protocol_parse_caps(line + pos, pos < len ? len - pos : 0);
		return true;
	case SRV_SECURE:
		if (!next_word(line, len, &pos, &w, &w_len) || pos < len ||
		    !(word_is(w, w_len, "yes") || word_is(w, w_len, "no")))
			return false;
		parsed->secure = word_is(w, w_len, "yes");
		return true;
	case SRV_RELAYED:
	case SRV_ACK:
		return next_word(line, len, &pos, &w, &w_len) && pos >= len &&
		       protocol_parse_count(w, w_len, &parsed->count);
	case SRV_TOKEN:
		return next_word(line, len, &pos, &parsed->word, &parsed->word_len) &&
		       parsed->word_len == PROTOCOL_TOKEN_HEX &&
		       next_word(line, len, &pos, &w, &w_len) && pos >= len &&
		       protocol_parse_count(w, w_len, &parsed->count);
	case SRV_MSG:
	case SRV_ACTION:
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
			if (word_is(parsed->word, parsed->word_len, protocol_error_name(e)))
				parsed->error = (enum error_code)e;
		parsed->bye = BYE_UNKNOWN;
		for (int b = 0; parsed->keyword == SRV_BYE && b < BYE_UNKNOWN; b++)
			if (word_is(parsed->word, parsed->word_len, protocol_bye_name(b)))
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
	case SRV_RESUMED:
	case SRV_PAIRED:
		if (parsed->keyword == SRV_RESUMED &&
		    !(next_word(line, len, &pos, &w, &w_len) &&
		      protocol_parse_count(w, w_len, &parsed->count)))
			return false;
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
