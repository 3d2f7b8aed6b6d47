/*
 * Unit tests for quota: the token bucket behind rate_limit/rate_burst and
 * the address key and counts behind max_per_address.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "quota.h"

static void test_bucket_allows_burst_then_rate(void **state)
{
	struct rate_bucket b;
	(void)state;
	rate_start(&b, 3, 1000);
	for (int i = 0; i < 3; i++)
		assert_true(rate_take(&b, 2, 3, 1000));
	assert_false(rate_take(&b, 2, 3, 1000));
	assert_false(rate_take(&b, 2, 3, 1499)); /* 0.998 of a token */
	assert_true(rate_take(&b, 2, 3, 1500));
	assert_false(rate_take(&b, 2, 3, 1500));
	/* A long pause refills only up to the burst. */
	for (int i = 0; i < 3; i++)
		assert_true(rate_take(&b, 2, 3, 100000));
	assert_false(rate_take(&b, 2, 3, 100000));
}

static void test_rate_zero_is_unlimited(void **state)
{
	struct rate_bucket b;
	(void)state;
	rate_start(&b, 1, 0);
	for (int i = 0; i < 10000; i++)
		assert_true(rate_take(&b, 0, 1, 0));
}

static void key_v4(struct address_key *key, const char *text)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	inet_pton(AF_INET, text, &sin.sin_addr);
	address_key_from(key, (struct sockaddr *)&sin, 48);
}

static void key_v6_prefix(struct address_key *key, const char *text, unsigned prefix)
{
	struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
	inet_pton(AF_INET6, text, &sin6.sin6_addr);
	address_key_from(key, (struct sockaddr *)&sin6, prefix);
}

static void key_v6(struct address_key *key, const char *text)
{
	key_v6_prefix(key, text, 48);
}

static void test_address_keys(void **state)
{
	struct address_key a, b;
	(void)state;
	key_v4(&a, "192.0.2.1");
	key_v4(&b, "192.0.2.2");
	assert_memory_not_equal(&a, &b, sizeof(a));
	/* By default one IPv6 /48 is one address; another /48 is another. */
	key_v6(&a, "2001:db8:1:2::1");
	key_v6(&b, "2001:db8:1:ffff:ffff::9");
	assert_memory_equal(&a, &b, sizeof(a));
	key_v6(&b, "2001:db8:2::1");
	assert_memory_not_equal(&a, &b, sizeof(a));
	/* A prefix that ends inside a byte: /52 keeps the top 4 bits of the 7th. */
	key_v6_prefix(&a, "2001:db8:1:0fff::1", 52);
	key_v6_prefix(&b, "2001:db8:1:0000::2", 52);
	assert_memory_equal(&a, &b, sizeof(a));
	key_v6_prefix(&b, "2001:db8:1:1000::1", 52);
	assert_memory_not_equal(&a, &b, sizeof(a));
	/* /128: every address on its own. */
	key_v6_prefix(&a, "2001:db8::1", 128);
	key_v6_prefix(&b, "2001:db8::2", 128);
	assert_memory_not_equal(&a, &b, sizeof(a));
	/* An IPv4 peer on a dual-stack socket is that IPv4 address. */
	key_v4(&a, "192.0.2.7");
	key_v6(&b, "::ffff:192.0.2.7");
	assert_memory_equal(&a, &b, sizeof(a));
}

static void test_counts(void **state)
{
	struct address_counts *counts = address_counts_create();
	struct address_key a, b;
	(void)state;
	key_v4(&a, "198.51.100.1");
	key_v4(&b, "198.51.100.2");
	assert_int_equal(address_counts_add(counts, &a), 1);
	assert_int_equal(address_counts_add(counts, &a), 2);
	assert_int_equal(address_counts_add(counts, &b), 1);
	address_counts_remove(counts, &a);
	assert_int_equal(address_counts_add(counts, &a), 2);
	address_counts_remove(counts, &a);
	address_counts_remove(counts, &a);
	address_counts_remove(counts, &a); /* one too many: harmless */
	assert_int_equal(address_counts_add(counts, &a), 1);
	/* Many addresses, each counted apart. */
	for (int i = 0; i < 5000; i++) {
		struct address_key k;
		char text[32];
		snprintf(text, sizeof(text), "10.%d.%d.1", i / 256, i % 256);
		key_v4(&k, text);
		assert_int_equal(address_counts_add(counts, &k), 1);
	}
	address_counts_destroy(counts);
}

/* The first refusal of a window is logged, the rest summed up once. */
static void test_refusals_logged_once_per_window(void **state)
{
	struct refusals *r = NULL;
	int last = -1;
	(void)state;
	assert_int_equal(refusals_add(&r, 5, false, 40, 100000), REFUSAL_LOG);
	for (int i = 0; i < 99; i++)
		assert_int_equal(refusals_add(&r, 6 + i % 2, false, 40, 100000 + i), REFUSAL_COUNTED);
	/* Nothing to sum up before the window is over, unless forced. */
	assert_int_equal(refusals_summary(r, 105000, false, &last), 0);
	assert_int_equal(refusals_summary(r, 110000, false, &last), 99);
	assert_int_equal(last, 6);
	assert_int_equal(refusals_summary(r, 110000, true, &last), 0);
	/* A new window logs its first one again. */
	assert_int_equal(refusals_add(&r, 5, false, 40, 110001), REFUSAL_LOG);
	assert_int_equal(refusals_add(&r, 7, false, 40, 110002), REFUSAL_COUNTED);
	assert_int_equal(refusals_summary(r, 110003, true, &last), 1);
	assert_int_equal(last, 7);
	free(r);
}

/* More than ten bursts refused for the rate in one window is a flood;
 * the same spread over windows is not. */
static void test_refusals_flood(void **state)
{
	struct refusals *r = NULL;
	(void)state;
	for (int i = 0; i < 10 * 40; i++)
		assert_int_not_equal(refusals_add(&r, 1, true, 40, 1000), REFUSAL_FLOOD);
	assert_int_equal(refusals_add(&r, 1, true, 40, 1000), REFUSAL_FLOOD);

	struct refusals *slow = NULL;
	for (int w = 0; w < 5; w++)
		for (int i = 0; i < 300; i++)
			assert_int_not_equal(refusals_add(&slow, 1, true, 40,
							  1000 + (uint64_t)w * REFUSAL_WINDOW_MS),
					     REFUSAL_FLOOD);
	/* Refused for other reasons, never a flood. */
	struct refusals *other = NULL;
	for (int i = 0; i < 10000; i++)
		assert_int_not_equal(refusals_add(&other, 2, false, 40, 1000), REFUSAL_FLOOD);
	free(r);
	free(slow);
	free(other);
}

static void test_penalty_box(void **state)
{
	struct penalty_box *box = calloc(1, sizeof(*box));
	struct address_key a, b, k;
	struct penalty done;
	(void)state;
	assert_non_null(box);
	key_v4(&a, "192.0.2.1");
	key_v4(&b, "192.0.2.2");
	assert_false(penalty_box_holds(box, &a, 1000));
	penalty_box_add(box, &a, "192.0.2.1", 11000);
	assert_true(penalty_box_holds(box, &a, 1000));
	assert_true(penalty_box_holds(box, &a, 10999));
	assert_false(penalty_box_holds(box, &b, 1000));
	assert_false(penalty_box_holds(box, &a, 11000)); /* its time is up */
	assert_false(penalty_box_expire(box, 10999, &done));
	assert_true(penalty_box_expire(box, 11000, &done));
	assert_string_equal(done.where, "192.0.2.1");
	assert_int_equal(done.refused, 2);
	assert_false(penalty_box_expire(box, 11000, &done));

	/* Full: the entry that ends first makes room; one held longer keeps its count. */
	for (int i = 0; i < PENALTY_BOX_SIZE; i++) {
		char text[32];
		snprintf(text, sizeof(text), "10.0.0.%d", i);
		key_v4(&k, text);
		penalty_box_add(box, &k, text, 20000 + (uint64_t)i);
	}
	key_v4(&k, "10.0.0.5");
	assert_true(penalty_box_holds(box, &k, 1000));
	penalty_box_add(box, &k, "10.0.0.5", 50000);
	penalty_box_add(box, &a, "192.0.2.1", 30000); /* takes 10.0.0.0's place */
	key_v4(&k, "10.0.0.0");
	assert_false(penalty_box_holds(box, &k, 1000));
	assert_true(penalty_box_holds(box, &a, 1000));
	int expired = 0;
	while (penalty_box_expire(box, 40000, &done))
		expired++;
	assert_int_equal(expired, PENALTY_BOX_SIZE - 1); /* all but 10.0.0.5 */
	assert_true(penalty_box_expire(box, 50000, &done));
	assert_string_equal(done.where, "10.0.0.5");
	assert_int_equal(done.refused, 1);
	free(box);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_allows_burst_then_rate),
		cmocka_unit_test(test_rate_zero_is_unlimited),
		cmocka_unit_test(test_address_keys),
		cmocka_unit_test(test_counts),
		cmocka_unit_test(test_refusals_logged_once_per_window),
		cmocka_unit_test(test_refusals_flood),
		cmocka_unit_test(test_penalty_box),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
