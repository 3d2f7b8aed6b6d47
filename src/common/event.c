/*
 * event: epoll loop used by turnchatd's main, the turnchat client (chat.c)
 * and the connection module (sources and deferred writes). Removed sources
 * are freed only after the current batch of events, so a callback may drop
 * any source, even one whose event is still queued.
 */
#include "event.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#define EVENT_BATCH 64
#define EVENT_SIGNAL_MAX 65

/* One per connection: ordered so that it fits malloc's 48-byte chunk. */
struct event_source {
	struct event_loop *loop;
	event_fd_fn *fn;
	void *data;
	SLIST_ENTRY(event_source) next_removed; /* freed after the current batch */
	int fd;
	bool removed;
};

struct event_loop {
	int epoll_fd;
	int signal_fd;
	sigset_t signals;
	struct event_source *signal_source;
	struct {
		event_signal_fn *fn;
		void *data;
	} signal_handlers[EVENT_SIGNAL_MAX];
	unsigned tick_ms;
	uint64_t next_tick;
	event_tick_fn *tick_fn;
	void *tick_data;
	SLIST_HEAD(, event_source) removed;
	TAILQ_HEAD(, event_deferred) deferred; /* queued work, oldest first */
	unsigned pass;                         /* counts the runs of deferred work */
	uint64_t now; /* the clock as read after the last wait; 0 before one */
};

static uint64_t clock_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t event_now_ms(const struct event_loop *loop)
{
	return loop->now ? loop->now : clock_ms();
}

void event_defer(struct event_loop *loop, struct event_deferred *node)
{
	if (node->queued)
		return;
	/* Last in line, and due in the pass after the one running now. */
	node->queued = true;
	node->pass = loop->pass;
	TAILQ_INSERT_TAIL(&loop->deferred, node, link);
}

void event_defer_cancel(struct event_loop *loop, struct event_deferred *node)
{
	if (!node->queued)
		return;
	TAILQ_REMOVE(&loop->deferred, node, link);
	node->queued = false;
}

/*
 * Runs, oldest first, what was queued before this pass; what that queues
 * runs in the next one, so work that queues itself again cannot keep the
 * loop from waiting. Each node is unqueued before it runs, so its fn may
 * queue it again, or cancel and free any node, itself included. Returns
 * true when work is still queued: then the loop must not block before it.
 */
static bool run_deferred(struct event_loop *loop)
{
	unsigned pass = loop->pass++;
	struct event_deferred *node;

	while ((node = TAILQ_FIRST(&loop->deferred)) != NULL && node->pass == pass) {
		event_defer_cancel(loop, node);
		node->fn(node);
	}
	return !TAILQ_EMPTY(&loop->deferred);
}

struct event_loop *event_loop_create(void)
{
	struct event_loop *loop = calloc(1, sizeof(*loop));
	if (loop == NULL)
		return NULL;
	loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (loop->epoll_fd < 0) {
		free(loop);
		return NULL;
	}
	loop->signal_fd = -1;
	sigemptyset(&loop->signals);
	SLIST_INIT(&loop->removed);
	TAILQ_INIT(&loop->deferred); /* an empty TAILQ, unlike the SLIST, is not all zeros */
	return loop;
}

static void free_removed(struct event_loop *loop)
{
	struct event_source *source;

	while ((source = SLIST_FIRST(&loop->removed)) != NULL) {
		SLIST_REMOVE_HEAD(&loop->removed, next_removed);
		free(source);
	}
}

void event_loop_destroy(struct event_loop *loop)
{
	if (loop == NULL)
		return;
	if (loop->signal_source)
		event_source_remove(loop->signal_source);
	free_removed(loop);
	if (loop->signal_fd >= 0) {
		close(loop->signal_fd);
		sigprocmask(SIG_UNBLOCK, &loop->signals, NULL);
	}
	close(loop->epoll_fd);
	free(loop);
}

struct event_source *event_add_fd(struct event_loop *loop, int fd, uint32_t events, event_fd_fn *fn,
				  void *data)
{
	struct event_source *source = calloc(1, sizeof(*source));
	if (source == NULL)
		return NULL;
	*source = (struct event_source){.loop = loop, .fd = fd, .fn = fn, .data = data};
	struct epoll_event ev = {.events = events, .data.ptr = source};
	if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int saved = errno;
		free(source);
		errno = saved;
		return NULL;
	}
	return source;
}

int event_source_set_events(struct event_source *source, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = source};
	return epoll_ctl(source->loop->epoll_fd, EPOLL_CTL_MOD, source->fd, &ev);
}

struct event_loop *event_source_loop(const struct event_source *source)
{
	return source->loop;
}

void event_source_remove(struct event_source *source)
{
	if (source == NULL || source->removed)
		return;
	/* The fd may already be closed by the owner; then the kernel dropped it. */
	epoll_ctl(source->loop->epoll_fd, EPOLL_CTL_DEL, source->fd, NULL);
	source->removed = true;
	SLIST_INSERT_HEAD(&source->loop->removed, source, next_removed);
}

static void read_signals(int fd, uint32_t events, void *data)
{
	struct event_loop *loop = data;
	struct signalfd_siginfo info;
	(void)events;

	while (read(fd, &info, sizeof(info)) == (ssize_t)sizeof(info)) {
		unsigned signo = info.ssi_signo;
		if (signo < EVENT_SIGNAL_MAX && loop->signal_handlers[signo].fn)
			loop->signal_handlers[signo].fn((int)signo,
							loop->signal_handlers[signo].data);
	}
}

int event_add_signal(struct event_loop *loop, int signo, event_signal_fn *fn, void *data)
{
	if (signo <= 0 || signo >= EVENT_SIGNAL_MAX) {
		errno = EINVAL;
		return -1;
	}
	sigaddset(&loop->signals, signo);
	if (sigprocmask(SIG_BLOCK, &loop->signals, NULL) < 0)
		return -1;
	int fd = signalfd(loop->signal_fd, &loop->signals, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (loop->signal_fd < 0) {
		loop->signal_fd = fd;
		loop->signal_source = event_add_fd(loop, fd, EPOLLIN, read_signals, loop);
		if (loop->signal_source == NULL)
			return -1;
	}
	loop->signal_handlers[signo].fn = fn;
	loop->signal_handlers[signo].data = data;
	return 0;
}

void event_set_tick(struct event_loop *loop, unsigned interval_ms, event_tick_fn *fn, void *data)
{
	loop->tick_ms = interval_ms;
	loop->tick_fn = fn;
	loop->tick_data = data;
	loop->next_tick = clock_ms() + interval_ms;
}

int event_loop_dispatch(struct event_loop *loop, int timeout_ms)
{
	struct epoll_event events[EVENT_BATCH];

	if (run_deferred(loop))
		timeout_ms = 0;
	if (loop->tick_ms > 0) {
		uint64_t now = clock_ms();
		int until_tick = loop->next_tick > now ? (int)(loop->next_tick - now) : 0;
		if (timeout_ms < 0 || until_tick < timeout_ms)
			timeout_ms = until_tick;
	}
	int n = epoll_wait(loop->epoll_fd, events, EVENT_BATCH, timeout_ms);
	loop->now = clock_ms();
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		struct event_source *source = events[i].data.ptr;
		if (!source->removed)
			source->fn(source->fd, events[i].events, source->data);
	}
	if (loop->tick_ms > 0 && loop->now >= loop->next_tick) {
		loop->next_tick = loop->now + loop->tick_ms;
		loop->tick_fn(loop->tick_data);
	}
	free_removed(loop);
	return n;
}
