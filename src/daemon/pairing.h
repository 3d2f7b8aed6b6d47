/*
 * pairing: the meeting points. A room holds at most one waiting person; the
 * next one to come to the same room takes them away into a conversation and
 * the room is empty again. Pure: waiters are opaque pointers, no I/O.
 */
#ifndef TURNCHAT_PAIRING_H
#define TURNCHAT_PAIRING_H

#include <stddef.h>

struct pairing;

struct pairing *pairing_create(void);
void pairing_destroy(struct pairing *pairing);

/*
 * Someone comes to room. If another waits there, that one is returned and
 * the room is emptied; otherwise newcomer now waits there and NULL is
 * returned (-1 with errno ENOMEM is reported through *error).
 */
void *pairing_meet(struct pairing *pairing, const char *room, void *newcomer, int *error);

/* The waiter gives up (disconnects); does nothing if it is not waiting there. */
void pairing_leave(struct pairing *pairing, const char *room, void *waiter);

size_t pairing_waiting(const struct pairing *pairing);

#endif
