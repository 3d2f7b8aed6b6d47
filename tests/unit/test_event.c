/*
 * Unit tests for event (src/common/event.c), the epoll loop, on real pipes:
 * fd sources and their events, set_events(0) silencing a source, removing
 * a source from inside another callback while its own event is queued in
 * the same batch, signals through the loop (signalfd), the tick, deferred
 * work (event_defer, event_defer_cancel) and the per-pass clock.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "event.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits without sleeping past the few milliseconds asked for. */
static void spin_ms(unsigned ms)
{
	uint64_t until = mono_ms() + ms + 1;
	while (mono_ms() < until)
		usleep(500);
}

/* --- Fixture: a loop and two pipes ------------------------------------- */

struct fx;

struct hit {
	struct fx *fx;
	int index;
	int calls;
	int fd;
	uint32_t events;
	struct event_source *source;
	/* Another source this one's callback removes, once. */
	struct hit *removes;
	bool remove_self;
	char order; /* what this callback writes into fx->order */
};

struct fx {
	struct event_loop *loop;
	int pipe_a[2];
	int pipe_b[2];
	struct hit a, b;
	char order[32];
	size_t order_len;
};

static void note(struct fx *fx, char c)
{
	if (fx->order_len + 1 < sizeof(fx->order))
		fx->order[fx->order_len++] = c;
}

static void on_fd(int fd, uint32_t events, void *data)
{
	struct hit *hit = data;
	hit->calls++;
	hit->fd = fd;
	hit->events = events;
	note(hit->fx, hit->order);
	if (hit->removes && hit->removes->source) {
		event_source_remove(hit->removes->source);
		hit->removes->source = NULL;
		hit->removes = NULL;
	}
	if (hit->remove_self && hit->source) {
		event_source_remove(hit->source);
		hit->source = NULL;
	}
}

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));
	if (fx == NULL)
		return -1;
	fx->loop = event_loop_create();
	if (fx->loop == NULL || pipe2(fx->pipe_a, O_NONBLOCK | O_CLOEXEC) < 0 ||
	    pipe2(fx->pipe_b, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	fx->a = (struct hit){.fx = fx, .index = 0, .order = 'a'};
	fx->b = (struct hit){.fx = fx, .index = 1, .order = 'b'};
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	event_source_remove(fx->a.source);
	event_source_remove(fx->b.source);
	event_loop_destroy(fx->loop);
	close(fx->pipe_a[0]);
	close(fx->pipe_a[1]);
	close(fx->pipe_b[0]);
	close(fx->pipe_b[1]);
	free(fx);
	return 0;
}

static void add_reader(struct fx *fx, struct hit *hit, int fd, uint32_t events)
{
	hit->source = event_add_fd(fx->loop, fd, events, on_fd, hit);
	assert_non_null(hit->source);
}

static void put_byte(int fd)
{
	assert_int_equal(write(fd, "x", 1), 1);
}

/* --- fd sources --------------------------------------------------------- */

static void test_fd_source_gets_epollin(void **state)
{
	struct fx *fx = *state;
	add_reader(fx, &fx->a, fx->pipe_a[0], EPOLLIN);

	/* Nothing to read: nothing called. */
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 0);
	assert_int_equal(fx->a.calls, 0);

	put_byte(fx->pipe_a[1]);
	assert_int_equal(event_loop_dispatch(fx->loop, 1000), 1);
	assert_int_equal(fx->a.calls, 1);
	assert_int_equal(fx->a.fd, fx->pipe_a[0]);
	assert_true(fx->a.events & EPOLLIN);

	/* Level-triggered: still readable, called again. */
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(fx->a.calls, 2);

	/* Drained: quiet again. */
	char c;
	assert_int_equal(read(fx->pipe_a[0], &c, 1), 1);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 0);
	assert_int_equal(fx->a.calls, 2);

	/* A writer end reports EPOLLOUT. */
	add_reader(fx, &fx->b, fx->pipe_b[1], EPOLLOUT);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(fx->b.calls, 1);
	assert_true(fx->b.events & EPOLLOUT);

	/* Adding an fd twice fails with errno set. */
	errno = 0;
	assert_null(event_add_fd(fx->loop, fx->pipe_a[0], EPOLLIN, on_fd, &fx->a));
	assert_int_equal(errno, EEXIST);
}

static void test_set_events_zero_stops_callbacks(void **state)
{
	struct fx *fx = *state;
	add_reader(fx, &fx->a, fx->pipe_a[0], EPOLLIN);
	put_byte(fx->pipe_a[1]);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(fx->a.calls, 1);

	assert_int_equal(event_source_set_events(fx->a.source, 0), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(event_loop_dispatch(fx->loop, 0), 0);
	put_byte(fx->pipe_a[1]);
	assert_int_equal(event_loop_dispatch(fx->loop, 2), 0);
	assert_int_equal(fx->a.calls, 1);

	/* Back on: the bytes still waiting are reported at once. */
	assert_int_equal(event_source_set_events(fx->a.source, EPOLLIN), 0);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(fx->a.calls, 2);
}

static void test_remove_other_source_with_queued_event(void **state)
{
	struct fx *fx = *state;
	add_reader(fx, &fx->a, fx->pipe_a[0], EPOLLIN);
	add_reader(fx, &fx->b, fx->pipe_b[0], EPOLLIN);
	/* Whichever runs first removes the other, whose event is already in
	 * the same batch: it must not be called, nor its memory touched (ASan). */
	fx->a.removes = &fx->b;
	fx->b.removes = &fx->a;
	put_byte(fx->pipe_a[1]);
	put_byte(fx->pipe_b[1]);

	assert_int_equal(event_loop_dispatch(fx->loop, 1000), 2); /* one batch of two */
	assert_int_equal(fx->a.calls + fx->b.calls, 1);
	struct hit *ran = fx->a.calls ? &fx->a : &fx->b;
	struct hit *gone = fx->a.calls ? &fx->b : &fx->a;
	assert_null(gone->source);
	assert_non_null(ran->source);

	/* The removed one stays quiet though its pipe is still readable. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(gone->calls, 0);
	assert_int_equal(ran->calls, 4);

	/* A source may also remove itself, then close its fd. */
	ran->remove_self = true;
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(ran->calls, 5);
	assert_null(ran->source);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 0);
	assert_int_equal(ran->calls, 5);
}

static void test_remove_outside_dispatch_and_twice(void **state)
{
	struct fx *fx = *state;
	add_reader(fx, &fx->a, fx->pipe_a[0], EPOLLIN);
	put_byte(fx->pipe_a[1]);
	event_source_remove(fx->a.source);
	event_source_remove(fx->a.source); /* harmless */
	event_source_remove(NULL);
	fx->a.source = NULL;
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 0);
	assert_int_equal(fx->a.calls, 0);
	/* The fd is free to be watched again. */
	add_reader(fx, &fx->a, fx->pipe_a[0], EPOLLIN);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(fx->a.calls, 1);
}

/* --- signals ------------------------------------------------------------ */

struct signal_hits {
	int usr1, usr2;
	int last;
	void *data;
};

static void on_signal(int signo, void *data)
{
	struct signal_hits *hits = data;
	hits->last = signo;
	hits->data = data;
	if (signo == SIGUSR1)
		hits->usr1++;
	if (signo == SIGUSR2)
		hits->usr2++;
}

static bool signal_blocked(int signo)
{
	sigset_t now;
	sigprocmask(SIG_BLOCK, NULL, &now);
	return sigismember(&now, signo) == 1;
}

static void test_signals_through_the_loop(void **state)
{
	struct fx *fx = *state;
	struct signal_hits hits = {0};

	assert_int_equal(event_add_signal(fx->loop, SIGUSR1, on_signal, &hits), 0);
	assert_int_equal(event_add_signal(fx->loop, SIGUSR2, on_signal, &hits), 0);
	assert_true(signal_blocked(SIGUSR1));
	assert_true(signal_blocked(SIGUSR2));

	/* Blocked, the signal waits: no handler runs until dispatch. */
	assert_int_equal(raise(SIGUSR1), 0);
	assert_int_equal(hits.usr1, 0);
	for (int i = 0; i < 50 && hits.usr1 == 0; i++)
		event_loop_dispatch(fx->loop, 20);
	assert_int_equal(hits.usr1, 1);
	assert_int_equal(hits.last, SIGUSR1);
	assert_ptr_equal(hits.data, &hits);

	assert_int_equal(kill(getpid(), SIGUSR2), 0);
	for (int i = 0; i < 50 && hits.usr2 == 0; i++)
		event_loop_dispatch(fx->loop, 20);
	assert_int_equal(hits.usr2, 1);
	assert_int_equal(hits.usr1, 1);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 0);

	/* Bad signal numbers are refused. */
	errno = 0;
	assert_int_equal(event_add_signal(fx->loop, 0, on_signal, &hits), -1);
	assert_int_equal(errno, EINVAL);
	assert_int_equal(event_add_signal(fx->loop, 1000, on_signal, &hits), -1);

	/* Destroying the loop unblocks them again. */
	event_loop_destroy(fx->loop);
	fx->loop = event_loop_create();
	assert_non_null(fx->loop);
	assert_false(signal_blocked(SIGUSR1));
	assert_false(signal_blocked(SIGUSR2));
}

/* --- the tick ----------------------------------------------------------- */

static void on_tick(void *data)
{
	int *ticks = data;
	(*ticks)++;
}

static void test_tick_fires_from_dispatch(void **state)
{
	struct fx *fx = *state;
	int ticks = 0;

	uint64_t start = mono_ms();
	event_set_tick(fx->loop, 5, on_tick, &ticks);
	assert_int_equal(ticks, 0);
	/* No source at all: only the tick makes an endless wait return. */
	for (int i = 0; i < 50 && ticks == 0; i++)
		assert_true(event_loop_dispatch(fx->loop, -1) >= 0);
	uint64_t took = mono_ms() - start;
	assert_int_equal(ticks, 1);
	assert_true(took >= 4);
	assert_true(took < 1000);

	/* It keeps firing, about once per interval. */
	for (int i = 0; i < 50 && ticks < 3; i++)
		event_loop_dispatch(fx->loop, -1);
	assert_int_equal(ticks, 3);

	/* An fd event before the tick is due does not fire it. */
	add_reader(fx, &fx->a, fx->pipe_a[0], EPOLLIN);
	event_set_tick(fx->loop, 1000, on_tick, &ticks);
	put_byte(fx->pipe_a[1]);
	assert_int_equal(event_loop_dispatch(fx->loop, -1), 1);
	assert_int_equal(ticks, 3);

	/* 0 turns it off. */
	char c;
	assert_int_equal(read(fx->pipe_a[0], &c, 1), 1);
	event_set_tick(fx->loop, 0, NULL, NULL);
	assert_int_equal(event_loop_dispatch(fx->loop, 10), 0);
	assert_int_equal(ticks, 3);
}

/* --- deferred work ------------------------------------------------------ */

struct job {
	struct event_deferred node; /* first: the callback gets it back */
	struct fx *fx;
	struct event_loop *loop;
	int runs;
	int requeue_until; /* queues itself again while runs is below this */
	struct job *cancels;
	char order;
};

static void job_run(struct event_deferred *node)
{
	struct job *job = (struct job *)node;
	job->runs++;
	if (job->fx)
		note(job->fx, job->order);
	if (job->cancels) {
		event_defer_cancel(job->loop, &job->cancels->node);
		job->cancels = NULL;
	}
	if (job->runs < job->requeue_until)
		event_defer(job->loop, &job->node);
}

static void job_init(struct job *job, struct fx *fx, char order)
{
	*job = (struct job){.node.fn = job_run, .fx = fx, .loop = fx->loop, .order = order};
}

static void test_defer_runs_once_at_start_of_next_dispatch(void **state)
{
	struct fx *fx = *state;
	struct job job;
	job_init(&job, fx, 'd');

	add_reader(fx, &fx->a, fx->pipe_a[0], EPOLLIN);
	put_byte(fx->pipe_a[1]);
	event_defer(fx->loop, &job.node);
	event_defer(fx->loop, &job.node); /* queued twice: runs once */
	assert_true(job.node.queued);
	assert_int_equal(job.runs, 0); /* not before dispatch */

	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(job.runs, 1);
	assert_false(job.node.queued);
	/* Before the events of that pass. */
	assert_string_equal(fx->order, "da");

	assert_int_equal(event_loop_dispatch(fx->loop, 0), 1);
	assert_int_equal(job.runs, 1);

	/* Queued again between passes: again first thing in the next one. */
	fx->order_len = 0;
	memset(fx->order, 0, sizeof(fx->order));
	event_defer(fx->loop, &job.node);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs, 2);
	assert_string_equal(fx->order, "da");
}

static void test_defer_several_nodes(void **state)
{
	struct fx *fx = *state;
	struct job jobs[3];
	for (int i = 0; i < 3; i++) {
		job_init(&jobs[i], fx, (char)('1' + i));
		event_defer(fx->loop, &jobs[i].node);
	}
	event_loop_dispatch(fx->loop, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(jobs[i].runs, 1);
	assert_int_equal(fx->order_len, 3);
	event_loop_dispatch(fx->loop, 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(jobs[i].runs, 1);
}

/* Known bug (event.c run_deferred): a node whose fn queues it again runs
 * again in the same pass, in a loop, instead of once per pass; one that
 * always queues itself never lets dispatch reach epoll_wait. Bounded here
 * by requeue_until, so the failure shows as runs == 3 after one pass. */
static void test_defer_requeued_from_fn_runs_next_pass(void **state)
{
	struct fx *fx = *state;
	struct job job;
	job_init(&job, fx, 'r');
	job.requeue_until = 3;

	event_defer(fx->loop, &job.node);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs, 1);
	assert_true(job.node.queued);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs, 2);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs, 3);
	assert_false(job.node.queued);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs, 3);
}

static void test_defer_cancel(void **state)
{
	struct fx *fx = *state;
	struct job job, other;
	job_init(&job, fx, 'j');
	job_init(&other, fx, 'o');

	/* Cancelling what is not queued does nothing. */
	event_defer_cancel(fx->loop, &job.node);
	assert_false(job.node.queued);

	event_defer(fx->loop, &job.node);
	event_defer(fx->loop, &other.node);
	event_defer_cancel(fx->loop, &job.node);
	assert_false(job.node.queued);
	assert_true(other.node.queued);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs, 0);
	assert_int_equal(other.runs, 1);

	/* Cancelled, it may be queued again and then runs. */
	event_defer(fx->loop, &job.node);
	event_defer_cancel(fx->loop, &job.node);
	event_defer(fx->loop, &job.node);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs, 1);

	/* A running fn may cancel another queued node: it does not run. */
	job.cancels = &other;
	other.cancels = &job;
	event_defer(fx->loop, &job.node);
	event_defer(fx->loop, &other.node);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs + other.runs, 3); /* one of the two, once */
	assert_false(job.node.queued);
	assert_false(other.node.queued);
	event_loop_dispatch(fx->loop, 0);
	assert_int_equal(job.runs + other.runs, 3);
}

/* --- the clock ---------------------------------------------------------- */

struct clock_probe {
	struct event_loop *loop;
	uint64_t first, second;
};

static void probe_clock(int fd, uint32_t events, void *data)
{
	struct clock_probe *probe = data;
	char c;
	(void)events;
	assert_int_equal(read(fd, &c, 1), 1);
	probe->first = event_now_ms(probe->loop);
	spin_ms(3); /* real time passes within the pass... */
	probe->second = event_now_ms(probe->loop);
}

static void test_now_is_fixed_within_a_pass(void **state)
{
	struct fx *fx = *state;
	struct clock_probe probe = {.loop = fx->loop};

	/* Before any pass it still tells the time. */
	uint64_t before = event_now_ms(fx->loop);
	assert_true(before > 0);
	assert_true(before <= mono_ms());

	/* Kept in the fixture, so teardown removes it even if a check fails. */
	fx->a.source = event_add_fd(fx->loop, fx->pipe_a[0], EPOLLIN, probe_clock, &probe);
	assert_non_null(fx->a.source);
	put_byte(fx->pipe_a[1]);
	assert_int_equal(event_loop_dispatch(fx->loop, 1000), 1);
	/* ...but the loop's clock does not move. */
	assert_true(probe.first >= before);
	assert_int_equal(probe.second, probe.first);
	assert_int_equal(event_now_ms(fx->loop), probe.first);
	spin_ms(3);
	assert_int_equal(event_now_ms(fx->loop), probe.first);

	/* The next pass reads it again. */
	uint64_t pass1 = probe.first;
	put_byte(fx->pipe_a[1]);
	assert_int_equal(event_loop_dispatch(fx->loop, 1000), 1);
	assert_true(probe.first >= pass1 + 6);
	assert_int_equal(probe.second, probe.first);
	uint64_t after = event_now_ms(fx->loop);
	assert_int_equal(after, probe.first);
	assert_true(after <= mono_ms());

	/* A pass that finds nothing moves it too. */
	spin_ms(2);
	assert_int_equal(event_loop_dispatch(fx->loop, 0), 0);
	assert_true(event_now_ms(fx->loop) >= after + 2);
}

int main(void)
{
	/* Ignored, but blocked by the loop they still reach its signalfd; a
	 * test that fails with one pending then cannot kill the whole run. */
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fd_source_gets_epollin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_events_zero_stops_callbacks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remove_other_source_with_queued_event, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_remove_outside_dispatch_and_twice, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_signals_through_the_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tick_fires_from_dispatch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_runs_once_at_start_of_next_dispatch, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_defer_several_nodes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_now_is_fixed_within_a_pass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_defer_requeued_from_fn_runs_next_pass, setup,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
