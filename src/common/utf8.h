/*
 * utf8: decoding one UTF-8 sequence strictly, and what counts as a control
 * character. Shared by the protocol's checks and the client's display.
 */
#ifndef TURNCHAT_UTF8_H
#define TURNCHAT_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Length of the valid sequence at s (its code point in *code), or 0. Rejects
 * overlong forms, surrogates and values past U+10FFFF. */
size_t utf8_decode(const unsigned char *s, size_t len, uint32_t *code);

/* C0 other than TAB, DEL, and C1: what may never reach a terminal raw. */
static inline bool utf8_is_control(uint32_t c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

#endif
