/*
 * quota: called by session and command (rates, refusals) and server (addresses).
 */
#include "quota.h"

#include "hash.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rate_start(struct rate_bucket *bucket, unsigned burst, uint64_t now_ms)
{
	bucket->tokens_milli = (uint64_t)burst * 1000;
	bucket->updated_ms = now_ms;
}

bool rate_take(struct rate_bucket *bucket, unsigned rate, unsigned burst, uint64_t now_ms)
{
	if (rate == 0)
		return true;
	uint64_t cap = (uint64_t)burst * 1000;
	uint64_t earned = (now_ms - bucket->updated_ms) * rate; /* ms * lines/s = milli-lines */
	bucket->tokens_milli = bucket->tokens_milli + earned > cap ? cap
								   : bucket->tokens_milli + earned;
	bucket->updated_ms = now_ms;
	if (bucket->tokens_milli < 1000)
		return false;
	bucket->tokens_milli -= 1000;
	return true;
}

enum refusal refusals_add(struct refusals **slot, int code, bool for_rate, unsigned burst,
			  uint64_t now_ms)
{
	struct refusals *r = *slot ? *slot : (*slot = calloc(1, sizeof(**slot)));

	if (r == NULL)
		return REFUSAL_LOG; /* out of memory: no summary, every line logged */
	if (now_ms - r->since >= REFUSAL_WINDOW_MS) {
		/* What the caller did not sum up of the old window is added in. */
		unsigned carried = r->unlogged;
		*r = (struct refusals){.since = now_ms, .unlogged = carried, .last = r->last};
	}
	if (for_rate && ++r->rate_limited > REFUSAL_FLOOD_FACTOR * burst)
		return REFUSAL_FLOOD;
	if (r->logged++ == 0)
		return REFUSAL_LOG;
	r->unlogged++;
	r->last = code;
	return REFUSAL_COUNTED;
}

unsigned refusals_summary(struct refusals *r, uint64_t now_ms, bool force, int *last)
{
	unsigned n = r ? r->unlogged : 0;

	if (n == 0 || (!force && now_ms - r->since < REFUSAL_WINDOW_MS))
		return 0;
	r->unlogged = 0;
	*last = r->last;
	return n;
}

void penalty_box_add(struct penalty_box *box, const struct address_key *key, const char *where,
		     uint64_t until)
{
	struct penalty *slot = &box->slots[0];

	for (size_t i = 0; i < PENALTY_BOX_SIZE; i++) {
		struct penalty *p = &box->slots[i];
		if (p->until && memcmp(&p->key, key, sizeof(*key)) == 0) {
			slot = p; /* held already: longer */
			break;
		}
		if (p->until < slot->until)
			slot = p; /* free (0), or ending sooner */
	}
	if (slot->until == 0 || memcmp(&slot->key, key, sizeof(*key)) != 0)
		*slot = (struct penalty){.key = *key};
	slot->until = until;
	snprintf(slot->where, sizeof(slot->where), "%s", where);
}

bool penalty_box_holds(struct penalty_box *box, const struct address_key *key, uint64_t now)
{
	for (size_t i = 0; i < PENALTY_BOX_SIZE; i++) {
		struct penalty *p = &box->slots[i];
		if (p->until > now && memcmp(&p->key, key, sizeof(*key)) == 0) {
			p->refused++;
			return true;
		}
	}
	return false;
}

bool penalty_box_expire(struct penalty_box *box, uint64_t now, struct penalty *done)
{
	for (size_t i = 0; i < PENALTY_BOX_SIZE; i++) {
		struct penalty *p = &box->slots[i];
		if (p->until && p->until <= now) {
			*done = *p;
			*p = (struct penalty){0};
			return true;
		}
	}
	return false;
}

void address_key_from(struct address_key *key, const struct sockaddr *addr, unsigned ipv6_prefix)
{
	memset(key, 0, sizeof(*key));
	key->bytes[0] = (uint8_t)addr->sa_family;
	if (addr->sa_family == AF_INET) {
		memcpy(key->bytes + 1, &((const struct sockaddr_in *)addr)->sin_addr, 4);
	} else if (addr->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a)) {
			/* An IPv4 peer on a dual-stack socket is the same IPv4 address. */
			key->bytes[0] = AF_INET;
			memcpy(key->bytes + 1, a->s6_addr + 12, 4);
		} else {
			unsigned whole = ipv6_prefix > 128 ? 16 : ipv6_prefix / 8;
			memcpy(key->bytes + 1, a->s6_addr, whole);
			if (whole < 16 && ipv6_prefix % 8)
				key->bytes[1 + whole] = (uint8_t)(a->s6_addr[whole] &
								  (0xff00u >> (ipv6_prefix % 8)));
		}
	}
}

struct address_entry {
	struct address_entry *next;
	struct address_key key;
	unsigned count;
};

#define ADDRESS_BUCKETS 1024

struct address_counts {
	struct address_entry *buckets[ADDRESS_BUCKETS];
};

static struct address_entry **find(struct address_counts *counts, const struct address_key *key)
{
	uint32_t h = hash_fnv1a(key->bytes, sizeof(key->bytes));
	struct address_entry **slot = &counts->buckets[h % ADDRESS_BUCKETS];
	while (*slot && memcmp(&(*slot)->key, key, sizeof(*key)) != 0)
		slot = &(*slot)->next;
	return slot;
}

struct address_counts *address_counts_create(void)
{
	return calloc(1, sizeof(struct address_counts));
}

void address_counts_destroy(struct address_counts *counts)
{
	if (counts == NULL)
		return;
	for (size_t i = 0; i < ADDRESS_BUCKETS; i++) {
		while (counts->buckets[i]) {
			struct address_entry *next = counts->buckets[i]->next;
			free(counts->buckets[i]);
			counts->buckets[i] = next;
		}
	}
	free(counts);
}

unsigned address_counts_add(struct address_counts *counts, const struct address_key *key)
{
	struct address_entry **slot = find(counts, key);
	if (*slot == NULL) {
		*slot = calloc(1, sizeof(**slot));
		if (*slot == NULL)
			return 0;
		(*slot)->key = *key;
	}
	return ++(*slot)->count;
}

void address_counts_remove(struct address_counts *counts, const struct address_key *key)
{
	struct address_entry **slot = find(counts, key);
	struct address_entry *entry = *slot;
	if (entry == NULL)
		return;
	if (--entry->count == 0) {
		*slot = entry->next;
		free(entry);
	}
}
