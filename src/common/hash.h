/*
 * hash: FNV-1a, for the daemon's hash tables (pairing's rooms, limits'
 * addresses). Keys are short and the tables hold at most max_clients
 * entries, so even keys chosen to collide only make a chain of that length.
 */
#ifndef TURNCHAT_HASH_H
#define TURNCHAT_HASH_H

#include <stddef.h>
#include <stdint.h>

static inline uint32_t hash_fnv1a(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

#endif
