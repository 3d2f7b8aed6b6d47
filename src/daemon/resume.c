/*
 * resume: the token and the replay of one person granted resume, for
 * session.c and session_resume.c. A record's number is stored in its
 * first 8 bytes; the line after it runs to its LF, which no line contains
 * otherwise.
 */
#include "resume.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define RECORD_HEADER sizeof(uint64_t)

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

size_t resume_record_begin(struct resume *resume, unsigned long seq)
{
	/* From the first byte kept, not from the memory's: an append may move
	 * what is kept to the front of its block. */
	size_t mark = buffer_length(&resume->replay);
	uint64_t number = seq;

	if (buffer_append(&resume->replay, &number, sizeof(number)) < 0)
		return SIZE_MAX;
	return mark;
}

int resume_record_end(struct resume *resume, size_t mark, int rc, const char **line, size_t *len)
{
	if (mark == SIZE_MAX)
		return -1;
	if (rc < 0) {
		/* Nothing of it stays: neither its number nor part of a line. */
		resume->replay.end = resume->replay.start + mark;
		return rc;
	}
	*line = buffer_peek(&resume->replay) + mark + RECORD_HEADER;
	*len = buffer_length(&resume->replay) - mark - RECORD_HEADER;
	resume->sent++;
	return 0;
}

/* The length of the record at data (its header and line). */
static size_t record_length(const char *data, size_t available)
{
	const char *lf = memchr(data + RECORD_HEADER, '\n', available - RECORD_HEADER);
	return (size_t)(lf - data) + 1;
}

bool resume_acknowledge(struct resume *resume, unsigned long count)
{
	if (count > resume->sent && !resume->restored)
		return false;
	while (resume->acked < count) {
		size_t len = buffer_length(&resume->replay);
		if (len == 0)
			break; /* acknowledged already in another life (a restored state) */
		buffer_consume(&resume->replay, record_length(buffer_peek(&resume->replay), len));
		resume->acked++;
	}
	resume->acked = count > resume->acked ? count : resume->acked;
	if (buffer_length(&resume->replay) == 0)
		buffer_trim(&resume->replay);
	return true;
}

unsigned long resume_first_unacked(const struct resume *resume)
{
	uint64_t number;

	if (buffer_length(&resume->replay) == 0)
		return 0;
	memcpy(&number, buffer_peek(&resume->replay), sizeof(number));
	return (unsigned long)number;
}

int resume_replay(const struct resume *resume, struct buffer *out)
{
	const char *data = buffer_peek(&resume->replay);
	size_t len = buffer_length(&resume->replay);

	for (size_t at = 0; at < len;) {
		size_t record = record_length(data + at, len - at);
		if (buffer_append(out, data + at + RECORD_HEADER, record - RECORD_HEADER) < 0)
			return -1;
		at += record;
	}
	return 0;
}
