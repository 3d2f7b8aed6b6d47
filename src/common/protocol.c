/*
 * protocol: what both directions of turnchat v1 share: modes, names,
 * capabilities, the ERR and BYE words, framing and the text checks. Called
 * by the connection module (framing), the daemon's session and config
 * (names, modes), the client, and protocol_command.c / protocol_reply.c.
 */
#include "protocol.h"

#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <wctype.h>

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
	[ERR_BAD_NAME] = {"bad-name", "Names and rooms are 1-32 letters, digits, _ . or -"},
	[ERR_BAD_MODE] = {"bad-mode", "That mode is not offered here"},
	[ERR_BUSY] = {"busy", "Not now: you have already joined"},
	[ERR_EMPTY] = {"empty", "Empty line; nothing was sent"},
	[ERR_RATE_LIMITED] = {"rate-limited", "Too many lines too fast; this one was not sent"},
	[ERR_DONE] = {"done", "You said /done; nothing more can be sent"},
	[ERR_NO_SESSION] = {"no-session",
			    "No conversation to resume with that token: it ended, or was resumed "
			    "already"},
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
	[BYE_DONE] = "done",
	[BYE_TLS_REQUIRED] = "tls-required",
};

static const char *const cap_names[PROTOCOL_CAP_COUNT] = {"typing", "action", "done", "secure",
							  "resume"};

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

/* Unicode's letters and digits, as the C.UTF-8 locale classes them; made
 * once, without touching the process's own locale. NULL where the locale is
 * missing: then only ASCII letters and digits are names. */
static locale_t name_locale(void)
{
	static locale_t locale;
	static bool tried;

	if (!tried) {
		tried = true;
		locale = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	}
	return locale;
}

/* A letter or digit may carry combining marks (the "e" and U+0308 that
 * some keyboards type for "ë"); nothing else may. */
static bool name_char(uint32_t c, bool after_letter)
{
	if (c < 0x80)
		return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		       c == '_' || c == '.' || c == '-';
	locale_t locale = name_locale();
	if (locale == (locale_t)0)
		return false;
	return iswalnum_l((wint_t)c, locale) ||
	       (after_letter && iswctype_l((wint_t)c, wctype_l("combining", locale), locale));
}

bool protocol_valid_name(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t chars = 0;
	bool after_letter = false;

	if (len == 0 || len > PROTOCOL_NAME_BYTES)
		return false;
	for (size_t i = 0; i < len; chars++) {
		uint32_t c;
		size_t n = utf8_decode(s + i, len - i, &c);
		if (n == 0 || !name_char(c, after_letter))
			return false;
		after_letter = !(c == '_' || c == '.' || c == '-');
		i += n;
	}
	return chars <= PROTOCOL_NAME_MAX;
}

const char *protocol_cap_name(unsigned index)
{
	return cap_names[index];
}

unsigned protocol_parse_caps(const char *text, size_t len)
{
	unsigned caps = 0;

	for (size_t i = 0; i < len;) {
		const char *space = memchr(text + i, ' ', len - i);
		size_t word = space ? (size_t)(space - (text + i)) : len - i;
		for (unsigned c = 0; c < PROTOCOL_CAP_COUNT; c++)
			if (strlen(cap_names[c]) == word && memcmp(cap_names[c], text + i, word) == 0)
				caps |= 1u << c;
		i += word + 1;
	}
	return caps;
}

size_t protocol_format_caps(unsigned caps, char *text, size_t size)
{
	size_t len = 0;

	text[0] = '\0';
	for (unsigned c = 0; c < PROTOCOL_CAP_COUNT; c++) {
		if (!(caps & (1u << c)))
			continue;
		int n = snprintf(text + len, size - len, "%s%s", len ? " " : "", cap_names[c]);
		if (n < 0 || (size_t)n >= size - len)
			break;
		len += (size_t)n;
	}
	return len;
}

bool protocol_parse_count(const char *text, size_t len, unsigned long *count)
{
	unsigned long n = 0;

	if (len == 0 || len > 19)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (text[i] < '0' || text[i] > '9')
			return false;
		n = n * 10 + (unsigned long)(text[i] - '0');
	}
	*count = n;
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

#define WORD_HIGHS 0x8080808080808080u

/* Nonzero in WORD_HIGHS when one of the 8 bytes at s is below 0x20 or
 * above 0x7e, zero for a word of printable ASCII, tested at once (the bit
 * tricks of "Bit Twiddling Hacks": hasless(x, 0x20) and hasmore(x, 0x7e)). */
static inline uint64_t unprintable_bits(const unsigned char *s)
{
	const uint64_t ones = 0x0101010101010101u;
	uint64_t x;

	memcpy(&x, s, sizeof(x));
	return (((x - ones * 0x20) & ~x) | ((x + ones * (127 - 0x7e)) | x)) & WORD_HIGHS;
}

enum text_check protocol_check_text(const char *text, size_t len)
{
	const unsigned char *s = (const unsigned char *)text;
	enum text_check result = TEXT_OK;
	size_t i = 0;

	/* Most chat text is printable ASCII: two words at a time, one branch. */
	while (len - i >= 16 && !(unprintable_bits(s + i) | unprintable_bits(s + i + 8)))
		i += 16;
	while (i < len) {
		/* The rest, and text beyond ASCII: ASCII passes without
		 * decoding, a word at a time where it can. */
		if (len - i >= 8 && !unprintable_bits(s + i)) {
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
