/*
 * Unit tests for prompt.c, the terminal's prompt: whose turn, what is
 * queued, the partner typing, the time spent waiting, a connection being
 * made again, and a prompt that gives way in a narrow window.
 */
#include <locale.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "prompt.h"

static void prompt_is(const struct ui_status *status, unsigned cols, const char *want)
{
	char out[256];
	prompt_build(out, sizeof(out), "Barret", status, "\u2026", cols);
	assert_string_equal(out, want);
}

static void test_turns(void **state)
{
	(void)state;
	prompt_is(&(struct ui_status){.turn = UI_MY_TURN, .peer = "Cloud"}, 80, "Barret> ");
	prompt_is(&(struct ui_status){.turn = UI_FREE, .peer = "Cloud"}, 80, "Barret> ");
	prompt_is(&(struct ui_status){.turn = UI_PEER_TURN, .peer = "Cloud"}, 80,
		  "Barret (Cloud's turn)> ");
	prompt_is(&(struct ui_status){.turn = UI_LEAVING, .peer = "Cloud"}, 80, "");
}

static void test_queue_typing_done(void **state)
{
	(void)state;
	prompt_is(&(struct ui_status){.turn = UI_PEER_TURN, .peer = "Cloud", .queued = 2}, 80,
		  "Barret (Cloud's turn, 2 queued)> ");
	prompt_is(&(struct ui_status){.turn = UI_PEER_TURN, .peer = "Cloud", .peer_typing = true}, 80,
		  "Barret (Cloud's turn, typing\u2026)> ");
	prompt_is(&(struct ui_status){.turn = UI_FREE, .peer = "Cloud", .peer_typing = true}, 80,
		  "Barret (Cloud is typing\u2026)> ");
	prompt_is(&(struct ui_status){.turn = UI_FREE, .peer = "Cloud", .done = true}, 80,
		  "Barret (done)> ");
	prompt_is(&(struct ui_status){.turn = UI_UNPAIRED, .peer = "", .queued = 1}, 80,
		  "Barret (joining, 1 queued)> ");
}

static void test_reconnecting_comes_first(void **state)
{
	(void)state;
	prompt_is(&(struct ui_status){.turn = UI_FREE, .peer = "Cloud", .reconnecting = true}, 80,
		  "Barret (reconnecting\u2026)> ");
	prompt_is(
		&(struct ui_status){
			.turn = UI_PEER_TURN, .peer = "Cloud", .queued = 1, .reconnecting = true},
		80, "Barret (reconnecting\u2026, Cloud's turn, 1 queued)> ");
	/* Leaving, nothing more is typed: no prompt, reconnecting or not. */
	prompt_is(&(struct ui_status){.turn = UI_LEAVING, .peer = "Cloud", .reconnecting = true}, 80,
		  "");
}

static void test_waiting_clock(void **state)
{
	(void)state;
	prompt_is(&(struct ui_status){.turn = UI_UNPAIRED, .waiting = true}, 80,
		  "Barret (waiting 0:00)> ");
	prompt_is(&(struct ui_status){.turn = UI_UNPAIRED, .waiting = true, .waited = 42}, 80,
		  "Barret (waiting 0:42)> ");
	prompt_is(&(struct ui_status){.turn = UI_UNPAIRED, .waiting = true, .waited = 3599}, 80,
		  "Barret (waiting 59:59)> ");
	prompt_is(&(struct ui_status){.turn = UI_UNPAIRED, .waiting = true, .waited = 3723}, 80,
		  "Barret (waiting 1:02:03)> ");
}

static void test_narrow_window(void **state)
{
	const struct ui_status status = {.turn = UI_PEER_TURN, .peer = "Cloud", .queued = 3};

	(void)state;
	prompt_is(&status, 0, "Barret (Cloud's turn, 3 queued)> ");
	prompt_is(&status, 45, "Barret (Cloud's turn, 3 queued)> ");
	prompt_is(&status, 44, "(Cloud's turn, 3 queued)> ");
	prompt_is(&status, 38, "(Cloud's turn, 3 queued)> ");
	prompt_is(&status, 37, "> ");
	prompt_is(&(struct ui_status){.turn = UI_FREE}, 20, "Barret> ");
	prompt_is(&(struct ui_status){.turn = UI_FREE}, 19, "> ");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_turns),
		cmocka_unit_test(test_queue_typing_done),
		cmocka_unit_test(test_reconnecting_comes_first),
		cmocka_unit_test(test_waiting_clock),
		cmocka_unit_test(test_narrow_window),
	};

	if (setlocale(LC_CTYPE, "C.UTF-8") == NULL)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
