/*
 * protocol: the one place that knows turnchat's wire format, version 1
 * (man/turnchat-protocol.7), with the capabilities a client may ask for.
 * Pure: no I/O, no allocation. The daemon, the client and the tests all
 * frame, parse and format lines through it. protocol.c holds what both
 * directions share, protocol_command.c the client's lines and
 * protocol_reply.c the server's.
 */
#ifndef TURNCHAT_PROTOCOL_H
#define TURNCHAT_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "buffer.h"

#define PROTOCOL_VERSION 1
#define PROTOCOL_NAME_MAX 32 /* characters */
/* The bytes a name or room may take: PROTOCOL_NAME_MAX characters of UTF-8. */
#define PROTOCOL_NAME_BYTES (4 * PROTOCOL_NAME_MAX)
#define PROTOCOL_DEFAULT_PORT 52928
#define PROTOCOL_DEFAULT_TLS_PORT 52929
#define PROTOCOL_DEFAULT_MAX_LINE 4096
/* A resume token: 128 random bits, sent as 32 lowercase hex digits. */
#define PROTOCOL_TOKEN_BYTES 16
#define PROTOCOL_TOKEN_HEX (2 * PROTOCOL_TOKEN_BYTES)

enum chat_mode {
	CHAT_MODE_TURNS,
	CHAT_MODE_FREE,
};
#define CHAT_MODE_COUNT 2

const char *protocol_mode_name(enum chat_mode mode);
bool protocol_parse_mode(const char *text, size_t len, enum chat_mode *mode);

/* Names and rooms: 1 to PROTOCOL_NAME_MAX letters and digits of any script
 * (Unicode's classes, as the C.UTF-8 locale has them) and "_.-"; no spaces,
 * controls, format or bidi characters. */
bool protocol_valid_name(const char *text, size_t len);

/* --- Capabilities -------------------------------------------------------- */

/* What a client may ask for with /caps; v1 clients never see any of it. */
enum protocol_cap {
	CAP_TYPING = 1u << 0, /* /typing, and TYPING from the partner */
	CAP_ACTION = 1u << 1, /* /me, and ACTION from the partner */
	CAP_DONE = 1u << 2,   /* /done, DONE, BYE done, and RELAYED before a BYE */
	CAP_SECURE = 1u << 3, /* SECURE after PAIRED: is all of it encrypted? */
	CAP_RESUME = 1u << 4, /* TOKEN, /ack, ACK, /resume: a conversation outlives connections */
};
#define PROTOCOL_CAP_COUNT 5
#define PROTOCOL_CAPS_ALL ((1u << PROTOCOL_CAP_COUNT) - 1)

/* The word for capability number index (0 .. PROTOCOL_CAP_COUNT-1). */
const char *protocol_cap_name(unsigned index);
/* The capabilities named in a space-separated list; unknown words are skipped
 * (a later client may ask for more than this server knows). */
unsigned protocol_parse_caps(const char *text, size_t len);
/* Writes the words of caps, space-separated, into text; returns its length. */
size_t protocol_format_caps(unsigned caps, char *text, size_t size);

/* A count on the wire: 1 to 19 decimal digits. False for anything else. */
bool protocol_parse_count(const char *text, size_t len, unsigned long *count);

/* --- Framing: bytes to lines ------------------------------------------- */

enum frame_result {
	FRAME_NEED_MORE, /* no complete line yet; *consumed bytes may be dropped */
	FRAME_LINE,      /* a line of *line_len bytes starts at data */
	FRAME_TOO_LONG,  /* a line passed max_line: refuse it once, the rest is discarded */
};

struct framer {
	bool discarding; /* inside the tail of an over-long line */
};

/*
 * Looks at the unread bytes data[0, len) and says what comes first. The
 * caller drops *consumed bytes afterwards (after using the line, which lies
 * inside them). A CR right before the LF is not part of the line.
 */
enum frame_result protocol_frame(struct framer *framer, const char *data, size_t len, size_t max_line,
				 size_t *line_len, size_t *consumed);

/* --- Text checks -------------------------------------------------------- */

enum text_check {
	TEXT_OK,
	TEXT_BAD_UTF8,
	TEXT_CONTROL_CHAR, /* C0 other than TAB, DEL, or C1 */
};

enum text_check protocol_check_text(const char *text, size_t len);

/* --- Client to server --------------------------------------------------- */

enum error_code {
	ERR_NOT_YOUR_TURN,
	ERR_NOT_PAIRED,
	ERR_TOO_LONG,
	ERR_BAD_UTF8,
	ERR_CONTROL_CHAR,
	ERR_BAD_COMMAND,
	ERR_BAD_NAME,
	ERR_BAD_MODE,
	ERR_BUSY,
	ERR_EMPTY,
	ERR_RATE_LIMITED,
	ERR_DONE,       /* a message after /done (only clients granted done see it) */
	ERR_NO_SESSION, /* /resume with a token that names no conversation now */
	ERR_UNKNOWN,    /* a code this client does not know (a later server's) */
};

enum command_kind {
	CMD_MESSAGE, /* arg: the text to relay (a leading "//" already undone) */
	CMD_NAME,    /* arg: the name */
	CMD_MODE,    /* mode */
	CMD_JOIN,    /* arg: the room, arg_len 0 for the default */
	CMD_QUIT,
	CMD_HELP,
	CMD_CAPS,    /* arg: the capability words asked for */
	CMD_TYPING,  /* needs CAP_TYPING */
	CMD_ACTION,  /* /me; arg: the action. Needs CAP_ACTION */
	CMD_DONE,    /* needs CAP_DONE */
	CMD_ACK,     /* count: lines received. Needs CAP_RESUME */
	CMD_PING,    /* answered with PONG. Needs CAP_RESUME */
	CMD_RESUME,  /* arg: the token (PROTOCOL_TOKEN_HEX digits); count: lines received. Needs
			CAP_RESUME */
	CMD_INVALID, /* error: why */
};

struct command {
	enum command_kind kind;
	const char *arg;
	size_t arg_len;
	enum chat_mode mode;
	unsigned long count;   /* CMD_ACK, CMD_RESUME */
	enum error_code error; /* CMD_INVALID: why; otherwise ERR_UNKNOWN */
};

/* True when a line a client sends is a chat message, not a command: it does
 * not start with '/', or starts with "//" (which sends a leading '/'). */
static inline bool protocol_is_message(const char *line, size_t len)
{
	return len == 0 || line[0] != '/' || (len > 1 && line[1] == '/');
}

/* True when a line a client granted resume sends while paired takes a
 * number (turnchat-protocol(7)): a message, /me or /done, valid or not. */
static inline bool protocol_is_numbered(const char *line, size_t len)
{
	return protocol_is_message(line, len) ||
	       (len >= 3 && memcmp(line, "/me", 3) == 0 && (len == 3 || line[3] == ' ')) ||
	       (len == 5 && memcmp(line, "/done", 5) == 0);
}

/* Parses one line a client sent, already framed; checks UTF-8 and controls too.
 * caps: what this client was granted; a command needing another is refused
 * as bad-command, exactly as before capabilities existed. */
void protocol_parse_command(const char *line, size_t len, unsigned caps, struct command *command);

const char *protocol_error_name(enum error_code code);
const char *protocol_error_text(enum error_code code);

/* Appends a client's line: a chat message (escaping a leading '/'), or a command. */
int protocol_append_message(struct buffer *out, const char *text, size_t len);
int protocol_append_command(struct buffer *out, const char *command, const char *arg);
/* "/caps WORD..." for the capabilities in caps. */
int protocol_append_caps_request(struct buffer *out, unsigned caps);
/* "/ack N" and "/resume TOKEN N" (CAP_RESUME). */
int protocol_append_ack_command(struct buffer *out, unsigned long received);
int protocol_append_resume_command(struct buffer *out, const char *token, unsigned long received);

/* --- Server to client --------------------------------------------------- */

enum bye_reason {
	BYE_QUIT,
	BYE_PEER_QUIT,
	BYE_PEER_LOST,
	BYE_SHUTDOWN,
	BYE_IDLE,
	BYE_SERVER_FULL,
	BYE_ADDRESS_LIMIT,
	BYE_JOIN_TIMEOUT,
	BYE_TOO_SLOW,
	BYE_FLOOD,        /* kept sending far past the rate limit */
	BYE_PROTOCOL,     /* not a turnchat server, or one that spoke nonsense */
	BYE_DONE,         /* both sides sent /done (CAP_DONE) */
	BYE_TLS_REQUIRED, /* plain text from beyond loopback, where TLS is required */
	BYE_UNKNOWN,      /* a reason this client does not know (a later server's) */
};

enum first_speaker {
	FIRST_YOU,
	FIRST_PEER,
	FIRST_NONE, /* free mode */
};

const char *protocol_bye_name(enum bye_reason reason);

int protocol_append_hello(struct buffer *out, const char *server_name);
int protocol_append_waiting(struct buffer *out, const char *room);
int protocol_append_paired(struct buffer *out, const char *peer, enum chat_mode mode,
			   enum first_speaker first);
int protocol_append_msg(struct buffer *out, const char *text, size_t len);
int protocol_append_error(struct buffer *out, enum error_code code, const char *text);
int protocol_append_info(struct buffer *out, const char *text);
/* The INFO lines that answer /help. */
int protocol_append_help(struct buffer *out);
int protocol_append_bye(struct buffer *out, enum bye_reason reason, const char *text);
/* The lines only clients granted a capability receive. */
int protocol_append_caps(struct buffer *out, unsigned caps);
int protocol_append_typing(struct buffer *out);
int protocol_append_action(struct buffer *out, const char *text, size_t len);
/* A /me for a partner without CAP_ACTION: "MSG * name text", as IRC shows one. */
int protocol_append_action_as_msg(struct buffer *out, const char *name, const char *text, size_t len);
int protocol_append_done(struct buffer *out);
int protocol_append_relayed(struct buffer *out, unsigned long count);
/* "SECURE yes" when both people reach the server over TLS, else "SECURE no". */
int protocol_append_secure(struct buffer *out, bool both_encrypted);
/* CAP_RESUME: the token to come back with and for how many seconds after a
 * drop; how many of the client's lines reached its partner; and the answer
 * to /resume: how many of its lines the server has, and the conversation as
 * it stands (first: whose turn it is now). */
int protocol_append_token(struct buffer *out, const char *token, unsigned seconds);
int protocol_append_ack(struct buffer *out, unsigned long delivered);
int protocol_append_pong(struct buffer *out);
int protocol_append_resumed(struct buffer *out, unsigned long received, const char *peer,
			    enum chat_mode mode, enum first_speaker first);

enum server_keyword {
	SRV_HELLO,
	SRV_WAITING,
	SRV_PAIRED,
	SRV_MSG,
	SRV_ERR,
	SRV_INFO,
	SRV_BYE,
	SRV_CAPS,    /* the capabilities granted */
	SRV_TYPING,  /* the partner is typing */
	SRV_ACTION,  /* the partner's /me */
	SRV_DONE,    /* the partner sent /done */
	SRV_RELAYED, /* before BYE: how many of our messages reached the partner */
	SRV_SECURE,  /* after PAIRED: whether both legs are encrypted */
	SRV_TOKEN,   /* the resume token (word) and its seconds (count) */
	SRV_ACK,     /* count: our lines the partner has received */
	SRV_RESUMED, /* count: our lines the server has; word: peer; mode, first */
	SRV_PONG,    /* the answer to /ping */
	SRV_UNKNOWN,
};

/* A server line taken apart for the client; pointers into the line. */
struct server_line {
	enum server_keyword keyword;
	/* HELLO: server name; WAITING: room; PAIRED, RESUMED: peer; ERR: code;
	 * BYE: reason; TOKEN: the token */
	const char *word;
	size_t word_len;
	const char *text; /* MSG, ACTION, INFO, ERR and BYE: the rest (may be empty) */
	size_t text_len;
	unsigned version;    /* HELLO */
	enum chat_mode mode; /* PAIRED */
	enum first_speaker first;
	enum error_code error; /* ERR: word as a code, ERR_UNKNOWN if none known */
	enum bye_reason bye;   /* BYE: word as a reason, BYE_UNKNOWN if none known */
	unsigned caps;         /* CAPS */
	unsigned long count;   /* RELAYED, ACK, RESUMED; TOKEN: its seconds */
	bool secure;           /* SECURE yes */
};

/* Returns false when the line is not valid protocol (keyword known but fields wrong). */
bool protocol_parse_server_line(const char *line, size_t len, struct server_line *parsed);

#endif
