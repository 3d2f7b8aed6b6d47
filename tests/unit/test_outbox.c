/*
 * Unit tests for outbox.c, the client's queue of lines waiting for their
 * turn: order kept across the ring's wrap and growth, lines never joined,
 * taken back from either end, cleared with a count, bounded in bytes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outbox.h"

static void push(struct outbox *outbox, const char *text)
{
	assert_int_equal(outbox_push(outbox, text, strlen(text), OUTBOX_MESSAGE), 0);
}

static void take_first(struct outbox *outbox, const char *want)
{
	struct outbox_line line;
	assert_true(outbox_take_first(outbox, &line));
	assert_int_equal(line.len, strlen(want));
	assert_memory_equal(line.text, want, line.len);
	free(line.text);
}

static void test_in_order_each_line_apart(void **state)
{
	struct outbox outbox;
	struct outbox_line line;

	(void)state;
	outbox_init(&outbox, 1 << 20);
	assert_false(outbox_take_first(&outbox, &line));
	assert_false(outbox_take_last(&outbox, &line));
	push(&outbox, "typed two");
	push(&outbox, "typed three");
	push(&outbox, "");
	assert_int_equal(outbox_count(&outbox), 3);
	assert_string_equal(outbox_peek(&outbox, 1)->text, "typed three");
	assert_null(outbox_peek(&outbox, 3));
	take_first(&outbox, "typed two");
	take_first(&outbox, "typed three");
	take_first(&outbox, "");
	assert_int_equal(outbox_count(&outbox), 0);
	assert_int_equal(outbox.bytes, 0);
	outbox_release(&outbox);
}

/* Pushes and takes interleaved so the ring wraps and grows in between. */
static void test_order_survives_wrap_and_growth(void **state)
{
	struct outbox outbox;
	char text[32];
	unsigned next_in = 0, next_out = 0;

	(void)state;
	outbox_init(&outbox, 1 << 20);
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < round % 7 + 1; i++) {
			snprintf(text, sizeof(text), "line %u", next_in++);
			push(&outbox, text);
		}
		for (int i = 0; i < round % 5 && outbox_count(&outbox) > 0; i++) {
			snprintf(text, sizeof(text), "line %u", next_out++);
			take_first(&outbox, text);
		}
	}
	while (outbox_count(&outbox) > 0) {
		snprintf(text, sizeof(text), "line %u", next_out++);
		take_first(&outbox, text);
	}
	assert_int_equal(next_in, next_out);
	outbox_release(&outbox);
}

static void test_take_last_and_clear(void **state)
{
	struct outbox outbox;
	struct outbox_line line;

	(void)state;
	outbox_init(&outbox, 1 << 20);
	push(&outbox, "one");
	assert_int_equal(outbox_push(&outbox, "waves", 5, OUTBOX_ACTION), 0);
	push(&outbox, "three");
	assert_true(outbox_take_last(&outbox, &line));
	assert_string_equal(line.text, "three");
	assert_int_equal(line.kind, OUTBOX_MESSAGE);
	free(line.text);
	assert_int_equal(outbox_peek(&outbox, 1)->kind, OUTBOX_ACTION);
	push(&outbox, "four");
	assert_string_equal(outbox_peek(&outbox, 2)->text, "four");
	assert_int_equal(outbox_clear(&outbox), 3);
	assert_int_equal(outbox_count(&outbox), 0);
	assert_int_equal(outbox.bytes, 0);
	assert_int_equal(outbox_clear(&outbox), 0);
	push(&outbox, "after");
	take_first(&outbox, "after");
	outbox_release(&outbox);
}

static void test_bounded_in_bytes(void **state)
{
	struct outbox outbox;

	(void)state;
	outbox_init(&outbox, 10);
	push(&outbox, "123456");
	errno = 0;
	assert_int_equal(outbox_push(&outbox, "12345", 5, OUTBOX_MESSAGE), -1);
	assert_int_equal(errno, ENOBUFS);
	assert_int_equal(outbox_count(&outbox), 1);
	push(&outbox, "1234");
	take_first(&outbox, "123456");
	push(&outbox, "abcdef");
	assert_int_equal(outbox.bytes, 10);
	outbox_release(&outbox);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_in_order_each_line_apart),
		cmocka_unit_test(test_order_survives_wrap_and_growth),
		cmocka_unit_test(test_take_last_and_clear),
		cmocka_unit_test(test_bounded_in_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
