/*
 * pairing: a hash table from room name to the one person waiting there,
 * so joining costs O(1) however many rooms are in use. Called by session.
 */
#include "pairing.h"

#include "hash.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol.h"

#define PAIRING_FIRST_BUCKETS 64

struct room {
	struct room *next;
	void *waiter;
	char name[]; /* as long as it is: names may take 128 bytes, most take few */
};

/* The first table comes with the struct (as Tcl's staticBuckets do), so
 * that making a pairing is one allocation that either works or does not. */
struct pairing {
	struct room **buckets; /* first_buckets until the table grows */
	size_t bucket_count;   /* a power of two */
	size_t waiting;
	struct room *first_buckets[PAIRING_FIRST_BUCKETS];
};

static uint32_t hash_name(const char *name)
{
	return hash_fnv1a(name, strlen(name));
}

static void free_buckets(struct pairing *pairing)
{
	if (pairing->buckets != pairing->first_buckets)
		free(pairing->buckets);
}

struct pairing *pairing_create(void)
{
	struct pairing *pairing = calloc(1, sizeof(*pairing));
	if (pairing) {
		pairing->buckets = pairing->first_buckets;
		pairing->bucket_count = PAIRING_FIRST_BUCKETS;
	}
	return pairing;
}

void pairing_destroy(struct pairing *pairing)
{
	if (pairing == NULL)
		return;
	for (size_t i = 0; i < pairing->bucket_count; i++) {
		while (pairing->buckets[i]) {
			struct room *next = pairing->buckets[i]->next;
			free(pairing->buckets[i]);
			pairing->buckets[i] = next;
		}
	}
	free_buckets(pairing);
	free(pairing);
}

static struct room **find_slot(const struct pairing *pairing, const char *room)
{
	struct room **slot = &pairing->buckets[hash_name(room) & (pairing->bucket_count - 1)];
	while (*slot && strcmp((*slot)->name, room) != 0)
		slot = &(*slot)->next;
	return slot;
}

/* Doubles the table when it gets crowded; on failure it just stays slower. */
static void maybe_grow(struct pairing *pairing)
{
	if (pairing->waiting < pairing->bucket_count)
		return;
	size_t count = pairing->bucket_count * 2;
	struct room **buckets = calloc(count, sizeof(*buckets));
	if (buckets == NULL)
		return;
	for (size_t i = 0; i < pairing->bucket_count; i++) {
		while (pairing->buckets[i]) {
			struct room *room = pairing->buckets[i];
			pairing->buckets[i] = room->next;
			size_t b = hash_name(room->name) & (count - 1);
			room->next = buckets[b];
			buckets[b] = room;
		}
	}
	free_buckets(pairing);
	pairing->buckets = buckets;
	pairing->bucket_count = count;
}

void *pairing_meet(struct pairing *pairing, const char *room_name, void *newcomer, int *error)
{
	struct room **slot = find_slot(pairing, room_name);

	*error = 0;
	if (*slot) {
		struct room *room = *slot;
		void *waiter = room->waiter;
		*slot = room->next;
		free(room);
		pairing->waiting--;
		return waiter;
	}
	size_t len = strnlen(room_name, PROTOCOL_NAME_BYTES);
	struct room *room = calloc(1, sizeof(*room) + len + 1);
	if (room == NULL) {
		*error = ENOMEM;
		return NULL;
	}
	memcpy(room->name, room_name, len);
	room->waiter = newcomer;
	*slot = room;
	pairing->waiting++;
	maybe_grow(pairing);
	return NULL;
}

void pairing_leave(struct pairing *pairing, const char *room_name, void *waiter)
{
	struct room **slot = find_slot(pairing, room_name);
	if (*slot == NULL || (*slot)->waiter != waiter)
		return;
	struct room *room = *slot;
	*slot = room->next;
	free(room);
	pairing->waiting--;
}

size_t pairing_waiting(const struct pairing *pairing)
{
	return pairing->waiting;
}
