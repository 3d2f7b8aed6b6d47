/*
 * fuzz_util: what the fuzz harnesses share. A second, independent UTF-8
 * decoder written from RFC 3629's table (not from src/utf8.c), so the
 * harnesses check the protocol's text rules against the standard rather
 * than against the code under test; and a check macro that aborts, which
 * libFuzzer reports as a crash with the input that caused it.
 */
#ifndef TURNCHAT_FUZZ_UTIL_H
#define TURNCHAT_FUZZ_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                                    \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                            \
			fputc('\n', stderr);                                                     \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* Length of the well-formed sequence at s (RFC 3629, table 3-7), or 0. */
static inline size_t ref_utf8_sequence(const unsigned char *s, size_t len, uint32_t *code)
{
	static const struct {
		unsigned char lo, hi;   /* first byte */
		unsigned char lo2, hi2; /* second byte */
		int n;
	} rows[] = {
		{0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2}, {0xe0, 0xe0, 0xa0, 0xbf, 3},
		{0xe1, 0xec, 0x80, 0xbf, 3}, {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
		{0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4}, {0xf4, 0xf4, 0x80, 0x8f, 4},
	};

	if (len == 0)
		return 0;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		if (s[0] < rows[r].lo || s[0] > rows[r].hi)
			continue;
		int n = rows[r].n;
		if ((size_t)n > len)
			return 0;
		if (n == 1) {
			*code = s[0];
			return 1;
		}
		if (s[1] < rows[r].lo2 || s[1] > rows[r].hi2)
			return 0;
		uint32_t c = s[0] & (0xff >> (n + 1));
		for (int i = 1; i < n; i++) {
			if (i > 1 && (s[i] < 0x80 || s[i] > 0xbf))
				return 0;
			c = (c << 6) | (s[i] & 0x3f);
		}
		*code = c;
		return (size_t)n;
	}
	return 0;
}

/* The protocol's control characters: C0 but TAB, DEL, and C1. */
static inline bool ref_is_control(uint32_t c)
{
	return (c < 0x20 && c != 0x09) || c == 0x7f || (c >= 0x80 && c < 0xa0);
}

/* 0: valid and free of controls; 1: not UTF-8; 2: UTF-8 with a control. */
static inline int ref_check_text(const void *text, size_t len)
{
	const unsigned char *s = text;
	int result = 0;

	for (size_t i = 0; i < len;) {
		uint32_t c;
		size_t n = ref_utf8_sequence(s + i, len - i, &c);
		if (n == 0)
			return 1;
		if (ref_is_control(c))
			result = 2;
		i += n;
	}
	return result;
}

/* A tiny deterministic generator, so chunkings depend only on the input. */
static inline uint32_t fuzz_next(uint32_t *state)
{
	*state = *state * 1103515245u + 12345u;
	return *state >> 16;
}

#endif
