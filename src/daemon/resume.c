/*
 * resume: the token and the replay of one person granted resume, for
 * session.c and session_resume.c, and the replay's stored form for
 * state_codec.c. A record's line runs to its LF, which no line contains
 * otherwise.
 */
#include "resume.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct resume *resume_create(size_t limit)
{
	struct resume *resume = calloc(1, sizeof(*resume));
	if (resume)
		buffer_init(&resume->replay, limit);
	return resume;
}

void resume_destroy(struct resume *resume)
{
	if (resume == NULL)
		return;
	buffer_release(&resume->replay);
	free(resume->missed_peer);
	/* The token must not outlive its session in freed memory. */
	explicit_bzero(resume->token, sizeof(resume->token));
	explicit_bzero(resume->previous, sizeof(resume->previous));
	free(resume);
}

int resume_new_token(struct resume *resume)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char random[PROTOCOL_TOKEN_BYTES];
	size_t got = 0;

	while (got < sizeof(random)) {
		ssize_t n = getrandom(random + got, sizeof(random) - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(random); i++) {
		resume->token[2 * i] = hex[random[i] >> 4];
		resume->token[2 * i + 1] = hex[random[i] & 0xf];
	}
	explicit_bzero(random, sizeof(random));
	return 0;
}

static bool same_token(const char *a, const char *b)
{
	unsigned char differ = 0;

	for (size_t i = 0; i < PROTOCOL_TOKEN_HEX; i++)
		differ |= (unsigned char)(a[i] ^ b[i]);
	return differ == 0;
}

bool resume_token_is(const struct resume *resume, const char *token)
{
	bool current = same_token(resume->token, token);
	bool previous = same_token(resume->previous, token);
	return current || (resume->previous_good && previous);
}

/* A record in memory: the sender's number, the length of the line, then
 * the line. The length spares an acknowledgement a search for each LF. */
struct record_header {
	uint64_t number;
	uint32_t length;
};
#define RECORD_HEADER (sizeof(uint64_t) + sizeof(uint32_t))

static struct record_header header_at(const char *data)
{
	struct record_header h;
	memcpy(&h.number, data, sizeof(h.number));
	memcpy(&h.length, data + sizeof(h.number), sizeof(h.length));
	return h;
}

static void put_header(char *data, uint64_t number, uint32_t length)
{
	memcpy(data, &number, sizeof(number));
	memcpy(data + sizeof(number), &length, sizeof(length));
}

size_t resume_record_begin(struct resume *resume, unsigned long seq)
{
	/* From the first byte kept, not from the memory's: an append may move
	 * what is kept to the front of its block. */
	size_t mark = buffer_length(&resume->replay), room;
	char *header = buffer_reserve(&resume->replay, RECORD_HEADER, &room);

	if (header == NULL || room < RECORD_HEADER)
		return SIZE_MAX;
	put_header(header, seq, 0);
	buffer_commit(&resume->replay, RECORD_HEADER);
	return mark;
}

int resume_record_end(struct resume *resume, size_t mark, int rc, const char **line, size_t *len)
{
	if (mark == SIZE_MAX)
		return -1;
	char *record = (char *)buffer_peek(&resume->replay) + mark;
	size_t length = buffer_length(&resume->replay) - mark - RECORD_HEADER;
	if (rc < 0 || length > UINT32_MAX) {
		/* Nothing of it stays: neither its number nor part of a line. */
		buffer_truncate(&resume->replay, mark);
		return rc < 0 ? rc : -1;
	}
	struct record_header h = header_at(record);
	put_header(record, h.number, (uint32_t)length);
	if (mark == 0)
		resume->first_unacked = (unsigned long)h.number;
	*line = record + RECORD_HEADER;
	*len = length;
	resume->sent++;
	return 0;
}

/* Appends a whole record in one reservation; -1 when it does not fit. */
static int append_record(struct resume *resume, uint64_t number, const char *line, size_t len)
{
	size_t room;
	char *record = len > UINT32_MAX ? NULL
					: buffer_reserve(&resume->replay, RECORD_HEADER + len, &room);

	if (record == NULL || room < RECORD_HEADER + len)
		return -1;
	put_header(record, number, (uint32_t)len);
	memcpy(record + RECORD_HEADER, line, len);
	if (buffer_length(&resume->replay) == 0)
		resume->first_unacked = (unsigned long)number;
	buffer_commit(&resume->replay, RECORD_HEADER + len);
	return 0;
}

int resume_keep(struct resume *resume, unsigned long seq, const char *line, size_t len)
{
	if (append_record(resume, seq, line, len) < 0)
		return -1;
	resume->sent++;
	return 0;
}

bool resume_acknowledge(struct resume *resume, unsigned long count)
{
	if (count > resume->sent && !resume->restored)
		return false;
	const char *data = buffer_peek(&resume->replay);
	size_t len = buffer_length(&resume->replay), gone = 0;

	/* Past the end: acknowledged already in another life (a restored state). */
	for (; resume->acked < count && gone < len; resume->acked++)
		gone += RECORD_HEADER + header_at(data + gone).length;
	buffer_consume(&resume->replay, gone);
	resume->acked = count > resume->acked ? count : resume->acked;
	if (buffer_length(&resume->replay) == 0) {
		buffer_trim(&resume->replay);
		resume->first_unacked = 0;
	} else {
		resume->first_unacked = (unsigned long)header_at(buffer_peek(&resume->replay)).number;
	}
	return true;
}

int resume_replay(const struct resume *resume, struct buffer *out)
{
	const char *data = buffer_peek(&resume->replay);
	size_t len = buffer_length(&resume->replay);

	for (size_t at = 0; at < len;) {
		struct record_header h = header_at(data + at);
		if (buffer_append(out, data + at + RECORD_HEADER, h.length) < 0)
			return -1;
		at += RECORD_HEADER + h.length;
	}
	return 0;
}

/* The state (state_codec.c) keeps each record as its number and its line
 * to the LF, without the length, as version 1 of the state always has. */

size_t resume_stored_length(const struct resume *resume)
{
	size_t records = 0, len = buffer_length(&resume->replay);
	const char *data = buffer_peek(&resume->replay);

	for (size_t at = 0; at < len; records++)
		at += RECORD_HEADER + header_at(data + at).length;
	return len - records * sizeof(uint32_t);
}

int resume_store(const struct resume *resume, struct buffer *out)
{
	const char *data = buffer_peek(&resume->replay);
	size_t len = buffer_length(&resume->replay);

	for (size_t at = 0; at < len;) {
		struct record_header h = header_at(data + at);
		if (buffer_append(out, &h.number, sizeof(h.number)) < 0 ||
		    buffer_append(out, data + at + RECORD_HEADER, h.length) < 0)
			return -1;
		at += RECORD_HEADER + h.length;
	}
	return 0;
}

/* The records of the stored form into the replay; false when unsound. */
static bool take_stored(struct resume *resume, const char *data, size_t len)
{
	for (size_t at = 0; at < len;) {
		uint64_t number;
		if (len - at < sizeof(number) + 1)
			return false;
		memcpy(&number, data + at, sizeof(number));
		const char *line = data + at + sizeof(number);
		const char *lf = memchr(line, '\n', len - at - sizeof(number));
		if (lf == NULL)
			return false;
		size_t length = (size_t)(lf - line) + 1;
		if (append_record(resume, number, line, length) < 0)
			return false;
		at += sizeof(number) + length;
	}
	return true;
}

bool resume_restore_replay(struct resume *resume, const char *data, size_t len)
{
	/* The cap may have been lowered meanwhile: what was kept stays, and
	 * the cap is raised to just that, never further. */
	size_t cap = resume->replay.limit;

	resume->replay.limit = SIZE_MAX;
	bool sound = take_stored(resume, data, len);
	size_t kept = buffer_length(&resume->replay);
	resume->replay.limit = sound && kept > cap ? kept : cap;
	return sound;
}
