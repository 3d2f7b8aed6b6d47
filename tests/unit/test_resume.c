/*
 * Unit tests for resume (src/daemon/resume.c): the records of the replay
 * that session_resume.c relays and keeps until a /ack. Covers a record
 * kept and handed back whole, acknowledgements taking records off the
 * front, the first number not acknowledged, the replay of what is left,
 * records kept after acknowledgements, when the buffer slides what it
 * holds to the front to make room, the replay's stored form (the
 * state's, version 1) taken back as it was, or refused when unsound, with
 * the cap raised to what it holds and no further; and resume_keep, the
 * copy of a line already in the output, beside a record taken back.
 *
 * The last two failed at 4eb6639: resume_record_begin kept the buffer's end
 * as an absolute offset, and the appends after it may slide the contents
 * to the front, so resume_record_end handed session_relay_numbered a line
 * cut short at the front, or a length wrapped around (the append to the
 * output failed, and a connection that kept up was dropped as "output
 * queue full"). Fixed in 7fbc4bc.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "resume.h"

#define LIMIT (64 * 1024)

/* Keeps text as line seq, as session_relay_numbered does; returns the
 * kept line as (line, len). */
static void keep(struct resume *r, unsigned long seq, const char *text, const char **line,
		 size_t *len)
{
	size_t mark = resume_record_begin(r, seq);
	int rc = protocol_append_msg(&r->replay, text, strlen(text));
	assert_int_equal(resume_record_end(r, mark, rc, line, len), 0);
}

static void assert_line(const char *line, size_t len, const char *text)
{
	char want[256];
	int n = snprintf(want, sizeof(want), "MSG %s\n", text);
	assert_int_equal(len, (size_t)n);
	assert_memory_equal(line, want, len);
}

/* A text of exactly n bytes, numbered, so that each record is told apart. */
static const char *text_of(char *buf, size_t n, unsigned long seq)
{
	int k = snprintf(buf, n + 1, "line %lu ", seq);
	memset(buf + k, 'x', n - (size_t)k);
	buf[n] = '\0';
	return buf;
}

/* Made and freed around each test, so that a failed assertion, which
 * leaves the test at once, leaks nothing for LeakSanitizer to report. */
static int make(void **state)
{
	*state = resume_create(LIMIT);
	return *state ? 0 : -1;
}

static int destroy(void **state)
{
	resume_destroy(*state);
	return 0;
}

static void test_kept_acknowledged_and_replayed(void **state)
{
	struct resume *r = *state;
	const char *line;
	size_t len;
	struct buffer out;

	keep(r, 5, "one", &line, &len);
	assert_line(line, len, "one");
	keep(r, 6, "two", &line, &len);
	keep(r, 7, "three", &line, &len);
	assert_int_equal(r->sent, 3);
	assert_int_equal(resume_first_unacked(r), 5);

	assert_true(resume_acknowledge(r, 2));
	assert_int_equal(resume_first_unacked(r), 7);
	assert_false(resume_acknowledge(r, 4)); /* more than was sent */
	buffer_init(&out, LIMIT);
	assert_int_equal(resume_replay(r, &out), 0);
	assert_int_equal(buffer_length(&out), strlen("MSG three\n"));
	assert_memory_equal(buffer_peek(&out), "MSG three\n", buffer_length(&out));
	assert_true(resume_acknowledge(r, 3));
	assert_int_equal(resume_first_unacked(r), 0);
	assert_int_equal(resume_replay_bytes(r), 0);
	buffer_release(&out);
}

/* Fills the buffer's first block so that the next record does not fit
 * after the last one; the first record is short. Returns the next number. */
static unsigned long fill_first_block(struct resume *r)
{
	char text[128];
	const char *line;
	size_t len;
	unsigned long seq = 1;

	keep(r, seq++, "hi", &line, &len);
	while (r->replay.size - r->replay.end >= 12 + 4 + 100 + 1) /* header, MSG, text, LF */
		keep(r, seq, text_of(text, 100, seq), &line, &len), seq++;
	return seq;
}

static void test_a_line_kept_after_a_slide_is_whole(void **state)
{
	struct resume *r = *state;
	char text[128];
	const char *line;
	size_t len;

	unsigned long seq = fill_first_block(r);
	/* The short first record goes: room at the front, not at the end. */
	assert_true(resume_acknowledge(r, 1));
	keep(r, seq, text_of(text, 100, seq), &line, &len);
	assert_line(line, len, text);
}

static void test_a_line_kept_after_a_slide_has_its_length(void **state)
{
	struct resume *r = *state;
	char text[128];
	const char *line;
	size_t len;

	unsigned long seq = fill_first_block(r);
	/* Everything but the last record goes: more room at the front than a line. */
	assert_true(resume_acknowledge(r, r->sent - 1));
	keep(r, seq, text_of(text, 100, seq), &line, &len);
	assert_line(line, len, text);
}

/* What the state keeps: each number (8 bytes) and its line, no lengths. */
static void test_stored_and_restored(void **state)
{
	struct resume *r = *state, *back = resume_create(LIMIT);
	const char *line;
	size_t len;
	struct buffer stored, out;
	uint64_t seven = 7;

	keep(r, 5, "one", &line, &len);
	keep(r, 6, "two", &line, &len);
	keep(r, 7, "three", &line, &len);
	assert_true(resume_acknowledge(r, 1));
	buffer_init(&stored, LIMIT);
	assert_int_equal(resume_store(r, &stored), 0);
	assert_int_equal(buffer_length(&stored), resume_stored_length(r));
	assert_int_equal(buffer_length(&stored), 8 + strlen("MSG two\n") + 8 + strlen("MSG three\n"));
	assert_memory_equal(buffer_peek(&stored) + 8 + strlen("MSG two\n"), &seven, 8);

	assert_true(resume_restore_replay(back, buffer_peek(&stored), buffer_length(&stored)));
	assert_int_equal(resume_first_unacked(back), 6);
	buffer_init(&out, LIMIT);
	assert_int_equal(resume_replay(back, &out), 0);
	assert_int_equal(buffer_length(&out), strlen("MSG two\nMSG three\n"));
	assert_memory_equal(buffer_peek(&out), "MSG two\nMSG three\n", buffer_length(&out));
	back->sent = 2;
	assert_true(resume_acknowledge(back, 1));
	assert_int_equal(resume_first_unacked(back), 7);
	buffer_release(&out);
	resume_destroy(back);

	/* A line cut short of its LF, or a number with no line, is refused. */
	back = resume_create(LIMIT);
	assert_false(resume_restore_replay(back, buffer_peek(&stored), buffer_length(&stored) - 1));
	resume_destroy(back);
	back = resume_create(LIMIT);
	assert_false(resume_restore_replay(back, buffer_peek(&stored), 8));
	resume_destroy(back);
	buffer_release(&stored);
}

/* A cap lowered since the state was kept: the replay keeps all it had, and
 * the cap rises to just that; a cap with room to spare stays as it was. */
static void test_restored_cap(void **state)
{
	struct resume *r = *state, *small = resume_create(64), *roomy = resume_create(LIMIT);
	struct buffer stored;
	char text[128];
	const char *line;
	size_t len;

	for (unsigned long seq = 1; seq <= 3; seq++)
		keep(r, seq, text_of(text, 100, seq), &line, &len);
	buffer_init(&stored, LIMIT);
	assert_int_equal(resume_store(r, &stored), 0);
	assert_true(resume_restore_replay(small, buffer_peek(&stored), buffer_length(&stored)));
	assert_int_equal(resume_replay_bytes(small), resume_replay_bytes(r));
	assert_int_equal(small->replay.limit, resume_replay_bytes(r));
	assert_true(resume_restore_replay(roomy, buffer_peek(&stored), buffer_length(&stored)));
	assert_int_equal(roomy->replay.limit, LIMIT);
	buffer_release(&stored);
	resume_destroy(small);
	resume_destroy(roomy);
}

/* resume_keep copies a line written elsewhere (the partner's output); a
 * record begun and taken back leaves nothing, not even a first number. */
static void test_keep_and_take_back(void **state)
{
	struct resume *r = *state;
	const char *line;
	size_t len;
	struct buffer out;

	size_t mark = resume_record_begin(r, 4);
	assert_int_equal(resume_record_end(r, mark, -1, &line, &len), -1);
	assert_int_equal(resume_replay_bytes(r), 0);
	assert_int_equal(resume_first_unacked(r), 0);
	assert_int_equal(r->sent, 0);

	assert_int_equal(resume_keep(r, 4, "MSG four\n", 9), 0);
	assert_int_equal(resume_keep(r, 5, "MSG five\n", 9), 0);
	assert_int_equal(r->sent, 2);
	assert_int_equal(resume_first_unacked(r), 4);
	assert_true(resume_acknowledge(r, 1));
	assert_int_equal(resume_first_unacked(r), 5);
	buffer_init(&out, LIMIT);
	assert_int_equal(resume_replay(r, &out), 0);
	assert_int_equal(buffer_length(&out), 9);
	assert_memory_equal(buffer_peek(&out), "MSG five\n", 9);
	buffer_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kept_acknowledged_and_replayed, make, destroy),
		cmocka_unit_test_setup_teardown(test_a_line_kept_after_a_slide_is_whole, make,
						destroy),
		cmocka_unit_test_setup_teardown(test_a_line_kept_after_a_slide_has_its_length, make,
						destroy),
		cmocka_unit_test_setup_teardown(test_stored_and_restored, make, destroy),
		cmocka_unit_test_setup_teardown(test_restored_cap, make, destroy),
		cmocka_unit_test_setup_teardown(test_keep_and_take_back, make, destroy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
