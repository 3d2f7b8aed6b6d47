/*
 * fuzz_session: the daemon's session, pairing and conversation state machine, fed
 * with sequences of events. The real struct server runs on a real event
 * loop; each client is a socketpair() whose far end is handed to
 * server_accept as an accepted socket, so connection.c does its real I/O.
 * The input is a script (see run_op): clients connect, write bytes or
 * protocol lines, half-close, close, stop reading; the loop runs; time
 * jumps and the once-a-second tick fires; the config is reloaded.
 *
 * Time is the harness's: the link wraps event_now_ms (so every timeout is
 * reachable in microseconds) and event_set_tick (so the tick runs only when
 * the script says). The server's paired hook tells the harness who was
 * paired with whom, even when a pair forms and ends within one loop pass.
 *
 * Checked after every step: everything each client reads is well-formed
 * protocol (client_line); a MSG reaches only the partner of its sender,
 * in order and never twice (it must be a subsequence of what the partner
 * sent); the server's own books agree with its sessions (check_server).
 * At the end the server stops: everyone still connected hears BYE, every
 * session goes away within the close grace, and nothing leaks.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "server.h"
#include "session.h"

#include "fuzz_clients.h"
#include "fuzz_util.h"

#define MAX_OPS 300

static struct {
	struct event_loop *loop;
	struct server server;
	struct config config;
	struct clients clients;
	uint64_t now;
	event_tick_fn *tick;
	void *tick_data;
} h;

uint64_t __wrap_event_now_ms(const struct event_loop *loop);
void __real_event_set_tick(struct event_loop *loop, unsigned interval_ms, event_tick_fn *fn,
			   void *data);
void __wrap_event_set_tick(struct event_loop *loop, unsigned interval_ms, event_tick_fn *fn,
			   void *data);

uint64_t __wrap_event_now_ms(const struct event_loop *loop)
{
	(void)loop;
	return h.now;
}

void __wrap_event_set_tick(struct event_loop *loop, unsigned interval_ms, event_tick_fn *fn,
			   void *data)
{
	h.tick = interval_ms ? fn : NULL;
	h.tick_data = data;
	__real_event_set_tick(loop, 0, NULL, NULL);
}

static void on_paired(void *data, struct session *waiter, struct session *caller)
{
	(void)data;
	clients_paired(&h.clients, waiter->id, caller->id);
}

/* The server's counts must agree with its list of sessions. */
static void check_server(void)
{
	unsigned open = 0, waiting = 0, paired = 0;
	struct session *s;

	LIST_FOREACH(s, &h.server.sessions, entry) {
		/* le_prev points at whatever points at s: the head or the one before. */
		FUZZ_CHECK(*s->entry.le_prev == s, "session list broken");
		if (s->state != SESSION_CLOSING)
			open++;
		if (s->state == SESSION_WAITING)
			waiting++;
		if (s->state != SESSION_PAIRED) {
			FUZZ_CHECK(s->conversation == NULL, "#%lu: a conversation while not paired",
				   s->id);
			continue;
		}
		paired++;
		struct session *p = session_partner(s);
		FUZZ_CHECK(p && p != s && p->side == 1 - s->side, "#%lu: not on its side", s->id);
		FUZZ_CHECK(p->state == SESSION_PAIRED && p->conversation == s->conversation &&
				   session_partner(p) == s,
			   "#%lu: its partner is elsewhere", s->id);
		FUZZ_CHECK(h.clients.c[clients_by_id(&h.clients, s->id)].partner ==
				   clients_by_id(&h.clients, p->id),
			   "#%lu: not the pair the hook was told of", s->id);
	}
	FUZZ_CHECK(open == h.server.clients, "%u open sessions, clients says %u", open,
		   h.server.clients);
	FUZZ_CHECK(paired == h.server.paired && paired == 2 * server_conversations(&h.server),
		   "%u paired, the server counts %u", paired, h.server.paired);
	FUZZ_CHECK(waiting == pairing_waiting(h.server.pairing), "%u waiting, pairing says %zu",
		   waiting, pairing_waiting(h.server.pairing));
	/* Every client here comes from one address (AF_UNIX), and no reload
	 * changes these two limits. */
	FUZZ_CHECK(open <= h.config.server.max_clients && open <= h.config.server.max_per_address,
		   "%u open sessions over the limits", open);
}

static void connect_client(void)
{
	int sv[2];
	if (h.clients.count >= FUZZ_MAX_CLIENTS)
		return;
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
		   "socketpair: %s", strerror(errno));
	/* A small kernel buffer, so a client that stops reading soon fills the
	 * daemon's queue and backpressure and too-slow are reached. */
	int small = 4096;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	unsigned long before = h.server.next_id;
	server_accept(sv[1], (struct sockaddr *)&addr, sizeof(sa_family_t), &h.server);
	FUZZ_CHECK(h.server.next_id == before + 1, "server_accept made no session");
	clients_add(&h.clients, sv[0], h.server.next_id);
}

/* One pass of turnchatd's main loop: queued output goes out, then events. */
static void dispatch(int rounds)
{
	for (int i = 0; i < rounds; i++) {
		if (event_loop_dispatch(h.loop, 0) <= 0)
			return;
	}
}

static void tick(uint64_t advance_ms)
{
	h.now += advance_ms;
	if (h.tick)
		h.tick(h.tick_data);
}

/* Lines the fuzzer would take long to find byte by byte. */
static const char *const canned[] = {
	"/join\n",
	"/join r\n",
	"/join s\n",
	"/name a\n",
	"/name b\n",
	"/mode free\n",
	"/mode turns\n",
	"/q\n",
	"/quit\n",
	"/help\n",
	"hi\n",
	"hello there\n",
	"//x\n",
	"\xff\xfe\n",
	"\x1b[2J\n",
	"\n",
	"/bogus\n",
	"/join bad room\n",
	"a\r\n",
	"\xc3\xa9t\xc3\xa9\n",
	"partial",
	"\r",
	"/caps typing action done\n",
	"/typing\n",
	"/me waves\n",
	"/done\n",
	"/name Zo\xc3\xab\n",
};
#define CANNED (sizeof(canned) / sizeof(canned[0]))

struct input {
	const uint8_t *data;
	size_t size, pos;
};

static unsigned next_byte(struct input *in)
{
	return in->pos < in->size ? in->data[in->pos++] : 0;
}

static void write_canned(struct client *c, unsigned which)
{
	static char big[8192];
	if (which < CANNED) {
		client_write(&h.clients, c, canned[which], strlen(canned[which]));
	} else if (which % 3 == 0) {
		/* One byte over the longest line allowed so far. */
		size_t n = h.clients.max_line_ever + 1;
		memset(big, 'L', n);
		big[n] = '\n';
		client_write(&h.clients, c, big, n + 1);
	} else {
		/* A burst past any rate limit, and past half a small queue. */
		for (size_t i = 0; i < 400; i++)
			memcpy(big + 20 * i,
			       which % 3 == 1 ? "flood of lines 0123\n" : "//flood of slashes\n\n",
			       20);
		client_write(&h.clients, c, big, 8000);
	}
}

/* One step of the script: what the first byte says, with its arguments. */
static void run_op(struct input *in)
{
	unsigned op = next_byte(in);
	struct client *c = &h.clients.c[(op / 10) % (unsigned)h.clients.count];

	switch (op % 10) {
	case 0: {
		size_t n = next_byte(in);
		n = n < in->size - in->pos ? n : in->size - in->pos;
		client_write(&h.clients, c, (const char *)in->data + in->pos, n);
		in->pos += n;
		break;
	}
	case 1:
		write_canned(c, next_byte(in) % (CANNED + 3));
		break;
	case 2:
		client_shut(c);
		break;
	case 3:
		client_close(c);
		break;
	case 4:
		dispatch(1);
		break;
	case 5:
		dispatch(8);
		break;
	case 6:
		tick(100 * (uint64_t)next_byte(in));
		break;
	case 7:
		c->reading = !c->reading;
		break;
	case 8:
		connect_client();
		break;
	case 9: {
		/* SIGHUP with a new max_line: lowered under lines half read, too. */
		static const size_t lines[] = {64, 200, 4096};
		struct config cfg = h.config;
		cfg.server.max_line = lines[next_byte(in) % 3];
		h.clients.max_line_ever = cfg.server.max_line > h.clients.max_line_ever
						  ? cfg.server.max_line
						  : h.clients.max_line_ever;
		server_apply_config(&h.server, &cfg);
		break;
	}
	}
}

/* The first two bytes choose the limits, so each input runs one config. */
static void configure(struct input *in)
{
	unsigned a = next_byte(in), b = next_byte(in);
	struct server_config *s = &h.config.server;

	config_set_defaults(&h.config);
	s->max_clients = 2 + a % 4;
	s->max_line = a & 4 ? 64 : 4096;
	s->modes = (a >> 3) % 3 == 0 ? 3u : 1u << ((a >> 3) % 3 - 1);
	s->default_mode = s->modes == 3 ? (enum chat_mode)((a >> 5) & 1)
					: (enum chat_mode)((a >> 3) % 3 - 1);
	s->idle_timeout = a & 0x40 ? 5 : 0;
	s->max_per_address = 2 + b % 6;
	s->join_timeout = b & 8 ? 3 : 0;
	s->max_queue = CONFIG_MAX_QUEUE_MIN;
	s->slow_timeout = 1 + (b >> 4) % 3;
	s->rate_limit = b & 0x40 ? 5 : 0;
	s->rate_burst = 3;
	h.clients.max_line_ever = s->max_line;
}

/* Stops the server as SIGTERM does and waits, on the harness's clock,
 * until every session is gone; then checks who heard what. */
static void stop_server(void)
{
	struct session *s;

	LIST_FOREACH(s, &h.server.sessions, entry) {
		struct client *c = &h.clients.c[clients_by_id(&h.clients, s->id)];
		c->must_hear_bye = s->state != SESSION_CLOSING && !connection_is_closing(s->conn) &&
				   c->fd >= 0 && !c->eof;
	}
	server_stop(&h.server);
	for (int round = 0; round < 50 && !server_idle(&h.server); round++) {
		clients_read(&h.clients, true);
		for (int i = 0; i < h.clients.count; i++)
			if (h.clients.c[i].bye || h.clients.c[i].eof)
				client_close(&h.clients.c[i]);
		dispatch(8);
		tick(600);
	}
	FUZZ_CHECK(server_idle(&h.server), "sessions left long after the server stopped");
	clients_read(&h.clients, true);
	for (int i = 0; i < h.clients.count; i++)
		FUZZ_CHECK(!h.clients.c[i].must_hear_bye || h.clients.c[i].bye,
			   "client %d was connected at the stop but heard no BYE", i);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	if (!once) {
		signal(SIGPIPE, SIG_IGN);
		log_init("fuzz_session", true, 0, -1); /* nothing is worth printing */
		once = true;
	}
	if (size > 16384)
		return -1;
	struct input in = {data, size, 0};
	memset(&h, 0, sizeof(h));
	h.clients.trace = getenv("FUZZ_TRACE") != NULL;
	h.clients.server_name = h.config.server.name;
	h.now = 1000000; /* closing_since 0 means "open": time must not start at 0 */
	configure(&in);
	h.loop = event_loop_create();
	FUZZ_CHECK(h.loop && server_init(&h.server, h.loop, &h.config) == 0, "server_init");
	h.server.paired_hook = on_paired;
	connect_client();
	connect_client();
	for (int ops = 0; ops < MAX_OPS && in.pos < in.size; ops++) {
		run_op(&in);
		clients_read(&h.clients, false);
		check_server();
	}
	stop_server();

	server_finish(&h.server);
	event_loop_destroy(h.loop);
	clients_free(&h.clients);
	return 0;
}
