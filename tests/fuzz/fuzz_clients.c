/*
 * fuzz_clients: what fuzz_session's clients write and what they are told.
 * Every line the daemon sends is checked as it is read (client_line); what
 * a client wrote is kept, so that a MSG can be traced to its sender.
 */
#include "fuzz_clients.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_util.h"

void clients_add(struct clients *all, int fd, unsigned long id)
{
	FUZZ_CHECK(all->count < FUZZ_MAX_CLIENTS, "too many clients");
	struct client *c = &all->c[all->count++];
	memset(c, 0, sizeof(*c));
	*c = (struct client){.fd = fd, .id = id, .reading = true, .partner = -1};
}

int clients_by_id(const struct clients *all, unsigned long id)
{
	for (int i = 0; i < all->count; i++)
		if (all->c[i].id == id)
			return i;
	FUZZ_CHECK(false, "session #%lu is no client of ours", id);
	return -1;
}

void clients_paired(struct clients *all, unsigned long waiter, unsigned long caller)
{
	int a = clients_by_id(all, waiter), b = clients_by_id(all, caller);
	FUZZ_CHECK(a != b && all->c[a].partner < 0 && all->c[b].partner < 0,
		   "clients %d and %d paired, but one was paired before", a, b);
	all->c[a].partner = b;
	all->c[b].partner = a;
}

/* Notes each complete line written so far, and at the end the last one. */
static void scan_sent(struct client *c, bool final)
{
	for (;;) {
		size_t start = c->scanned, end;
		char *lf = start < c->wrote_len ? memchr(c->wrote + start, '\n', c->wrote_len - start)
						: NULL;
		if (lf) {
			end = (size_t)(lf - c->wrote);
			c->scanned = end + 1;
			if (end > start && c->wrote[end - 1] == '\r')
				end--;
		} else if (final && start < c->wrote_len) {
			end = c->wrote_len;
			c->scanned = end;
		} else {
			return;
		}
		struct command cmd;
		protocol_parse_command(c->wrote + start, end - start, PROTOCOL_CAPS_ALL, &cmd);
		if (cmd.kind != CMD_MESSAGE && cmd.kind != CMD_ACTION)
			continue;
		c->msg_off = realloc(c->msg_off, (c->msg_count + 1) * sizeof(size_t));
		c->msg_len = realloc(c->msg_len, (c->msg_count + 1) * sizeof(size_t));
		c->msg_action = realloc(c->msg_action, (c->msg_count + 1) * sizeof(bool));
		FUZZ_CHECK(c->msg_off && c->msg_len && c->msg_action, "out of memory");
		c->msg_off[c->msg_count] = (size_t)(cmd.arg - c->wrote);
		c->msg_action[c->msg_count] = cmd.kind == CMD_ACTION;
		c->msg_len[c->msg_count++] = cmd.arg_len;
	}
}

void client_write(struct clients *all, struct client *c, const char *data, size_t len)
{
	if (c->fd < 0 || c->shut || len == 0)
		return;
	ssize_t n = send(c->fd, data, len, MSG_NOSIGNAL);
	if (n <= 0)
		return; /* full (backpressure reached us) or gone: nothing was sent */
	c->wrote = realloc(c->wrote, c->wrote_len + (size_t)n);
	FUZZ_CHECK(c->wrote, "out of memory");
	memcpy(c->wrote + c->wrote_len, data, (size_t)n);
	if (all->trace)
		fprintf(stderr, "%d > %.*s\n", (int)(c - all->c), n > 100 ? 100 : (int)n, data);
	c->wrote_len += (size_t)n;
	scan_sent(c, false);
}

static bool is_token(const char *word, size_t len)
{
	if (len == 0)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((word[i] >= 'a' && word[i] <= 'z') || (word[i] >= '0' && word[i] <= '9') ||
		      word[i] == '-'))
			return false;
	return true;
}

/* Whether the partner's message i is what arrived: a message as MSG with
 * its text, a /me as ACTION with its text or, to a client that did not ask
 * for actions, as MSG "* name text". */
static bool is_message(const struct client *from, size_t i, bool action, const char *text, size_t len)
{
	const char *sent = from->wrote + from->msg_off[i];
	size_t sent_len = from->msg_len[i];

	if (from->msg_action[i] && !action)
		return len > sent_len + 3 && memcmp(text, "* ", 2) == 0 &&
		       text[len - sent_len - 1] == ' ' &&
		       memcmp(text + len - sent_len, sent, sent_len) == 0;
	return from->msg_action[i] == action && sent_len == len && memcmp(sent, text, len) == 0;
}

/* A MSG or ACTION must be the partner's next message, or one after it that
 * was not refused: never from anyone else, never twice, never out of order. */
static void check_msg(struct clients *all, struct client *c, int index, bool action, const char *text,
		      size_t len)
{
	FUZZ_CHECK(c->paired && c->partner >= 0, "client %d: MSG while not paired", index);
	FUZZ_CHECK(len > 0 && len <= all->max_line_ever + 4 + PROTOCOL_NAME_BYTES &&
			   ref_check_text(text, len) == 0,
		   "client %d: MSG text is empty, too long or not clean", index);
	struct client *from = &all->c[c->partner];
	while (c->match < from->msg_count && !is_message(from, c->match, action, text, len))
		c->match++;
	FUZZ_CHECK(c->match < from->msg_count,
		   "client %d: MSG '%.*s' is not the next thing client %d sent", index, (int)len,
		   text, c->partner);
	c->match++;
}

static void client_line(struct clients *all, struct client *c, int index, const char *line,
			size_t len)
{
	struct server_line sl;
	FUZZ_CHECK(!c->bye, "client %d: a line after BYE: '%.*s'", index, (int)len, line);
	FUZZ_CHECK(!c->relayed || (len > 4 && memcmp(line, "BYE ", 4) == 0),
		   "client %d: '%.*s' after RELAYED, not BYE", index, (int)len, line);
	FUZZ_CHECK(protocol_parse_server_line(line, len, &sl) && sl.keyword != SRV_UNKNOWN,
		   "client %d: malformed line '%.*s'", index, (int)len, line);
	c->lines++;
	if (all->trace)
		fprintf(stderr, "%d < %.*s\n", index, len > 100 ? 100 : (int)len, line);
	if (!c->hello) {
		FUZZ_CHECK(sl.keyword == SRV_HELLO && sl.version == PROTOCOL_VERSION &&
				   sl.word_len == strlen(all->server_name) &&
				   memcmp(sl.word, all->server_name, sl.word_len) == 0,
			   "client %d: '%.*s' before HELLO", index, (int)len, line);
		c->hello = true;
		return;
	}
	switch (sl.keyword) {
	case SRV_HELLO:
	case SRV_UNKNOWN:
		FUZZ_CHECK(false, "client %d: a second HELLO", index);
		break;
	case SRV_WAITING:
		FUZZ_CHECK(!c->waiting && !c->paired && protocol_valid_name(sl.word, sl.word_len),
			   "client %d: WAITING twice, late or for a bad room", index);
		c->waiting = true;
		break;
	case SRV_PAIRED:
		FUZZ_CHECK(!c->paired && c->partner >= 0, "client %d: PAIRED twice or unpaired",
			   index);
		FUZZ_CHECK((sl.mode == CHAT_MODE_FREE) == (sl.first == FIRST_NONE),
			   "client %d: first speaker does not fit the mode", index);
		c->paired = true;
		c->mode = sl.mode;
		c->first = sl.first;
		if (all->c[c->partner].paired)
			FUZZ_CHECK(all->c[c->partner].mode == c->mode &&
					   (c->mode == CHAT_MODE_FREE ||
					    all->c[c->partner].first != c->first),
				   "clients %d and %d disagree about their conversation", index,
				   c->partner);
		break;
	case SRV_MSG:
	case SRV_ACTION:
		check_msg(all, c, index, sl.keyword == SRV_ACTION, sl.text, sl.text_len);
		break;
	case SRV_CAPS:
		FUZZ_CHECK(!c->waiting && !c->paired, "client %d: CAPS after /join", index);
		break;
	case SRV_TYPING:
	case SRV_DONE:
		FUZZ_CHECK(c->paired, "client %d: TYPING or DONE while not paired", index);
		break;
	case SRV_RELAYED:
		FUZZ_CHECK(c->paired, "client %d: RELAYED while not paired", index);
		c->relayed = true;
		break;
	case SRV_ERR:
		FUZZ_CHECK(is_token(sl.word, sl.word_len), "client %d: ERR code", index);
		break;
	case SRV_INFO:
		break;
	case SRV_BYE:
		FUZZ_CHECK(is_token(sl.word, sl.word_len), "client %d: BYE reason", index);
		/* Refusals at the door come right after HELLO. */
		if ((sl.word_len == 11 && memcmp(sl.word, "server-full", 11) == 0) ||
		    (sl.word_len == 13 && memcmp(sl.word, "address-limit", 13) == 0))
			FUZZ_CHECK(c->lines == 2, "client %d: refused after talking", index);
		c->bye = true;
		break;
	}
}

void client_close(struct client *c)
{
	if (c->fd < 0)
		return;
	scan_sent(c, true); /* the daemon may take a last line without LF */
	close(c->fd);
	c->fd = -1;
}

static void client_read(struct clients *all, int index, bool force)
{
	struct client *c = &all->c[index];
	if (c->fd < 0 || c->eof || !(c->reading || force))
		return;
	for (int round = 0; round < 64; round++) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			c->eof = true;
			FUZZ_CHECK(!c->bye || c->in_len == 0, "client %d: bytes after BYE", index);
			return;
		}
		c->in_len += (size_t)n;
		char *lf;
		while ((lf = memchr(c->in, '\n', c->in_len)) != NULL) {
			size_t len = (size_t)(lf - c->in);
			client_line(all, c, index, c->in, len);
			memmove(c->in, lf + 1, c->in_len - len - 1);
			c->in_len -= len + 1;
		}
		FUZZ_CHECK(c->in_len < sizeof(c->in), "client %d: a server line over 8 KiB", index);
	}
}

void clients_read(struct clients *all, bool force)
{
	for (int i = 0; i < all->count; i++)
		client_read(all, i, force);
}

void client_shut(struct client *c)
{
	if (c->fd < 0 || c->shut)
		return;
	scan_sent(c, true); /* a last line without LF counts at the end */
	shutdown(c->fd, SHUT_WR);
	c->shut = true;
}

void clients_free(struct clients *all)
{
	for (int i = 0; i < all->count; i++) {
		client_close(&all->c[i]);
		free(all->c[i].wrote);
		free(all->c[i].msg_off);
		free(all->c[i].msg_len);
		free(all->c[i].msg_action);
	}
}
