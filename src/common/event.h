/*
 * event: the single-threaded epoll loop both programs run on. Sources are
 * file descriptors with a callback (fd, events, data), signals delivered
 * through a signalfd (so no code runs in a signal handler), and one coarse
 * periodic tick for timeouts. The loop also owns what happens between two
 * passes: deferred work (the batched writes) and the cached clock.
 */
#ifndef TURNCHAT_EVENT_H
#define TURNCHAT_EVENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/queue.h>

struct event_loop;
struct event_source;

typedef void event_fd_fn(int fd, uint32_t events, void *data);
typedef void event_signal_fn(int signo, void *data);
typedef void event_tick_fn(void *data);

/*
 * Work to do once before the loop next waits, such as writing everything a
 * pass queued in one send. The owner embeds the node and sets fn; queueing
 * it again before it ran does nothing.
 */
struct event_deferred {
	void (*fn)(struct event_deferred *node);
	TAILQ_ENTRY(event_deferred) link; /* in the loop's queue while queued */
	unsigned pass;                    /* the run of deferred work it is due in */
	bool queued;
};

struct event_loop *event_loop_create(void);
void event_loop_destroy(struct event_loop *loop);

/* Watches fd for events (EPOLLIN, EPOLLOUT). Returns NULL with errno set. */
struct event_source *event_add_fd(struct event_loop *loop, int fd, uint32_t events, event_fd_fn *fn,
				  void *data);
int event_source_set_events(struct event_source *source, uint32_t events);
/* The loop a source is on. */
struct event_loop *event_source_loop(const struct event_source *source);
/* Stops watching; safe from inside any callback. Does not close the fd. */
void event_source_remove(struct event_source *source);

/* Blocks signo for the process and calls fn from the loop when it arrives. */
int event_add_signal(struct event_loop *loop, int signo, event_signal_fn *fn, void *data);

/* Calls fn about every interval_ms (0 turns it off). */
void event_set_tick(struct event_loop *loop, unsigned interval_ms, event_tick_fn *fn, void *data);

void event_defer(struct event_loop *loop, struct event_deferred *node);
/* Unqueues node if it is queued; for an owner about to free it. */
void event_defer_cancel(struct event_loop *loop, struct event_deferred *node);

/* Runs the deferred work, then waits at most timeout_ms (-1: no limit but
 * the tick) and runs what is ready. */
int event_loop_dispatch(struct event_loop *loop, int timeout_ms);

/* Milliseconds on the monotonic clock, as read once per pass of loop: every
 * line asks for the time several times, and a millisecond clock needs no more. */
uint64_t event_now_ms(const struct event_loop *loop);

#endif
