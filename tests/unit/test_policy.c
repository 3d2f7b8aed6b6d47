/*
 * Unit tests for turn.h (who may speak), conversation.c (the rest of a
 * conversation's rules) and pairing.c (who meets whom).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "conversation.h"
#include "pairing.h"
#include "turn.h"

/* --- Turn policy --------------------------------------------------------- */

/* Asserts that exactly side `next` may speak, and what PAIRED tells each side. */
static void assert_turn_is(const struct turn *t, int next)
{
	assert_true(turn_may_speak(t, next));
	assert_false(turn_may_speak(t, 1 - next));
	assert_int_equal(turn_first_for(t, next), FIRST_YOU);
	assert_int_equal(turn_first_for(t, 1 - next), FIRST_PEER);
}

static void test_turns_first_side(void **state)
{
	struct turn t;

	(void)state;
	turn_start(&t, CHAT_MODE_TURNS, 1);
	assert_turn_is(&t, 1);
	turn_start(&t, CHAT_MODE_TURNS, 0);
	assert_turn_is(&t, 0);
}

static void test_turns_alternate(void **state)
{
	struct turn t;

	(void)state;
	turn_start(&t, CHAT_MODE_TURNS, 1);
	for (int i = 0; i < 10; i++) {
		int side = i % 2 == 0 ? 1 : 0;
		assert_turn_is(&t, side);
		turn_spoke(&t, side);
		assert_turn_is(&t, 1 - side);
	}
	assert_turn_is(&t, 1);
}

/* Speaking out of turn is refused before turn_spoke, but even if called it changes nothing. */
static void test_turns_wrong_side(void **state)
{
	struct turn t;

	(void)state;
	turn_start(&t, CHAT_MODE_TURNS, 1);
	turn_spoke(&t, 0);
	assert_turn_is(&t, 1);
	turn_spoke(&t, 0);
	assert_turn_is(&t, 1);
	turn_spoke(&t, 1);
	assert_turn_is(&t, 0);
	turn_spoke(&t, 1);
	assert_turn_is(&t, 0);
}

static void test_free_mode(void **state)
{
	struct turn t;
	static const int speakers[] = {0, 0, 1, 0, 1, 1, 1};

	(void)state;
	for (int first = 0; first < 2; first++) {
		turn_start(&t, CHAT_MODE_FREE, first);
		for (size_t i = 0; i < sizeof(speakers) / sizeof(speakers[0]); i++) {
			assert_true(turn_may_speak(&t, 0));
			assert_true(turn_may_speak(&t, 1));
			assert_int_equal(turn_first_for(&t, 0), FIRST_NONE);
			assert_int_equal(turn_first_for(&t, 1), FIRST_NONE);
			turn_spoke(&t, speakers[i]);
		}
	}
}

/* --- Conversation rules --------------------------------------------------- */

static void test_conversation_turns_and_counts(void **state)
{
	struct conversation *c = conversation_create(NULL, NULL, CHAT_MODE_TURNS, 1000);

	(void)state;
	assert_non_null(c);
	assert_int_equal(conversation_may_speak(c, 1), ERR_UNKNOWN);
	assert_int_equal(conversation_may_speak(c, 0), ERR_NOT_YOUR_TURN);
	conversation_spoke(c, 1, 2000);
	assert_int_equal(conversation_may_speak(c, 1), ERR_NOT_YOUR_TURN);
	assert_int_equal(conversation_may_speak(c, 0), ERR_UNKNOWN);
	conversation_relayed(c, 1);
	conversation_spoke(c, 0, 3000);
	conversation_relayed(c, 0);
	conversation_spoke(c, 1, 4000); /* and its line never reached the partner */
	assert_int_equal(c->relayed[0], 1);
	assert_int_equal(c->relayed[1], 1);
	assert_int_equal(c->last_line_ms, 4000);
	conversation_destroy(c);
}

/* Once one side is done, it may send nothing, and the other needs no turn. */
static void test_conversation_done(void **state)
{
	struct conversation *c = conversation_create(NULL, NULL, CHAT_MODE_TURNS, 1000);

	(void)state;
	conversation_spoke(c, 1, 1000);
	assert_false(conversation_done(c, 0));
	assert_int_equal(conversation_may_speak(c, 0), ERR_DONE);
	assert_int_equal(conversation_may_speak(c, 1), ERR_UNKNOWN);
	conversation_spoke(c, 1, 1100);
	assert_int_equal(conversation_may_speak(c, 1), ERR_UNKNOWN);
	assert_true(conversation_done(c, 1));
	assert_int_equal(conversation_may_speak(c, 1), ERR_DONE);
	conversation_destroy(c);
}

static void test_conversation_typing_pace(void **state)
{
	struct conversation *c = conversation_create(NULL, NULL, CHAT_MODE_FREE, 1000);

	(void)state;
	assert_true(conversation_typing(c, 0, 5000));
	assert_false(conversation_typing(c, 0, 5999));
	assert_true(conversation_typing(c, 1, 5999)); /* each side has its own pace */
	assert_true(conversation_typing(c, 0, 6000));
	/* A message, then typing again: told at once. */
	conversation_spoke(c, 0, 6100);
	assert_true(conversation_typing(c, 0, 6200));
	/* Typing is activity for the idle clock. */
	assert_int_equal(c->last_line_ms, 6200);
	conversation_destroy(c);
}

static void test_conversation_idle(void **state)
{
	struct conversation *c = conversation_create(NULL, NULL, CHAT_MODE_FREE, 0);

	(void)state;
	assert_int_equal(conversation_idle_lead(3600), 60);
	assert_int_equal(conversation_idle_lead(100), 50);
	assert_int_equal(conversation_idle_lead(1), 0);
	assert_int_equal(conversation_idle(c, 3539999, 3600), IDLE_NOT_YET);
	assert_int_equal(conversation_idle(c, 3540000, 3600), IDLE_WARN);
	assert_int_equal(conversation_idle(c, 3550000, 3600), IDLE_NOT_YET); /* once */
	assert_int_equal(conversation_idle(c, 3600000, 3600), IDLE_END);
	assert_int_equal(conversation_idle(c, 99999999, 0), IDLE_NOT_YET);
	/* Speaking starts a new quiet spell, with a warning of its own. */
	conversation_spoke(c, 0, 3599000);
	assert_int_equal(conversation_idle(c, 3600000, 3600), IDLE_NOT_YET);
	assert_int_equal(conversation_idle(c, 3599000 + 3540000, 3600), IDLE_WARN);
	/* Too short a timeout for a warning: it just ends. */
	assert_int_equal(conversation_idle(c, 3599000 + 999, 1), IDLE_NOT_YET);
	assert_int_equal(conversation_idle(c, 3599000 + 1000, 1), IDLE_END);
	conversation_destroy(c);
}

/* --- Pairing ------------------------------------------------------------- */

static int people[8]; /* opaque waiters: only their addresses matter */
#define A (&people[0])
#define B (&people[1])
#define C (&people[2])
#define D (&people[3])

static int setup_pairing(void **state)
{
	*state = pairing_create();
	return *state == NULL ? -1 : 0;
}

/* Names the meeting a test stopped at, if it did. */
static char at[64];

static int teardown_pairing(void **state)
{
	if (at[0] != '\0')
		print_error("stopped at %s\n", at);
	at[0] = '\0';
	pairing_destroy(*state);
	return 0;
}

/* Someone comes to room; asserts whom they meet (NULL: they wait) and the count after. */
static void meet(struct pairing *p, const char *room, void *who, void *want, size_t waiting)
{
	int error = -1;

	snprintf(at, sizeof(at), "meeting in %s", room);
	assert_ptr_equal(pairing_meet(p, room, who, &error), want);
	assert_int_equal(error, 0);
	assert_int_equal(pairing_waiting(p), waiting);
	at[0] = '\0';
}

static void test_pair_same_room(void **state)
{
	struct pairing *p = *state;

	assert_int_equal(pairing_waiting(p), 0);
	meet(p, "lobby", A, NULL, 1);
	meet(p, "lobby", B, A, 0);
	meet(p, "lobby", C, NULL, 1); /* the room was emptied: the third one waits anew */
	meet(p, "lobby", D, C, 0);
	meet(p, "lobby", A, NULL, 1);
}

static void test_pair_rooms_independent(void **state)
{
	struct pairing *p = *state;

	meet(p, "red", A, NULL, 1);
	meet(p, "blue", B, NULL, 2);
	meet(p, "Red", C, NULL, 3);  /* names are case sensitive */
	meet(p, "red1", D, NULL, 4); /* and whole */
	meet(p, "blue", D, B, 3);
	meet(p, "red", B, A, 2);
	meet(p, "red1", A, D, 1);
	meet(p, "Red", A, C, 0);
}

/* Rooms of the longest names that differ only in their last character. */
static void test_pair_long_names(void **state)
{
	struct pairing *p = *state;

	meet(p, "abcdefghijklmnopqrstuvwxyz01234a", A, NULL, 1);
	meet(p, "abcdefghijklmnopqrstuvwxyz01234b", B, NULL, 2);
	meet(p, "abcdefghijklmnopqrstuvwxyz01234b", C, B, 1);
	meet(p, "abcdefghijklmnopqrstuvwxyz01234a", C, A, 0);
}

static void test_pair_leave(void **state)
{
	struct pairing *p = *state;

	pairing_leave(p, "red", A); /* nobody waits anywhere: nothing happens */
	assert_int_equal(pairing_waiting(p), 0);
	meet(p, "red", A, NULL, 1);
	meet(p, "blue", B, NULL, 2);
	pairing_leave(p, "red", B); /* B waits, but not in red */
	pairing_leave(p, "green", A);
	pairing_leave(p, "red", C);
	assert_int_equal(pairing_waiting(p), 2);
	pairing_leave(p, "red", A);
	assert_int_equal(pairing_waiting(p), 1);
	pairing_leave(p, "red", A); /* twice is harmless */
	assert_int_equal(pairing_waiting(p), 1);
	meet(p, "red", C, NULL, 2); /* A is gone: C waits instead of meeting A */
	meet(p, "blue", D, B, 1);
	meet(p, "red", D, C, 0);
}

#define ROOMS 10000

/* Many rooms at once, named from one reused buffer: the table copies names and grows. */
static void test_pair_many_rooms(void **state)
{
	struct pairing *p = *state;
	int *first = calloc(ROOMS, sizeof(*first)), *second = calloc(ROOMS, sizeof(*second));
	char room[PROTOCOL_NAME_MAX + 1];
	int error;

	assert_non_null(first);
	assert_non_null(second);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < ROOMS; i++) {
			snprintf(room, sizeof(room), "room-%d", i);
			assert_null(pairing_meet(p, room, &first[i], &error));
			assert_int_equal(error, 0);
		}
		assert_int_equal(pairing_waiting(p), ROOMS);
		for (int i = 0; i < ROOMS; i += 7) {
			snprintf(room, sizeof(room), "room-%d", i);
			pairing_leave(p, room, &first[i]);
		}
		assert_int_equal(pairing_waiting(p), ROOMS - (ROOMS + 6) / 7);
		for (int i = ROOMS - 1; i >= 0; i--) {
			snprintf(room, sizeof(room), "room-%d", i);
			void *met = pairing_meet(p, room, &second[i], &error);
			assert_int_equal(error, 0);
			assert_ptr_equal(met, i % 7 == 0 ? NULL : &first[i]);
			if (met == NULL)
				pairing_leave(p, room, &second[i]);
		}
		assert_int_equal(pairing_waiting(p), 0);
	}
	free(first);
	free(second);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_turns_first_side),
		cmocka_unit_test(test_turns_alternate),
		cmocka_unit_test(test_turns_wrong_side),
		cmocka_unit_test(test_free_mode),
		cmocka_unit_test(test_conversation_turns_and_counts),
		cmocka_unit_test(test_conversation_done),
		cmocka_unit_test(test_conversation_typing_pace),
		cmocka_unit_test(test_conversation_idle),
		cmocka_unit_test_setup_teardown(test_pair_same_room, setup_pairing, teardown_pairing),
		cmocka_unit_test_setup_teardown(test_pair_rooms_independent, setup_pairing,
						teardown_pairing),
		cmocka_unit_test_setup_teardown(test_pair_long_names, setup_pairing,
						teardown_pairing),
		cmocka_unit_test_setup_teardown(test_pair_leave, setup_pairing, teardown_pairing),
		cmocka_unit_test_setup_teardown(test_pair_many_rooms, setup_pairing,
						teardown_pairing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
