/*
 * relay-server: the reference turnchatd is measured against, started by
 * tests/bench/run. It does the least a relay can: one thread on epoll, pair
 * each connection with the next one accepted, copy bytes from one to the
 * other with one read and one write, no parsing, no per-message allocation.
 * It speaks only the greeting and pairing lines, so that the bench's
 * handshake code and its checks run unchanged against it:
 *   HELLO turnchat 1 relay          on accept
 *   WAITING relay                   to the first of a pair
 *   PAIRED ADDRESS turns peer|you   to both, ADDRESS being the partner's
 * The bench checks ADDRESS against the partner it meant, so a pairing out of
 * accept order is reported, not silently measured.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define RELAY_CHUNK 65536
/* What one side may owe the other before the relay stops reading it. */
#define RELAY_PENDING_LIMIT (1u << 20)

struct relay_conn {
	int fd;
	struct event_source *source;
	struct relay_conn *peer;
	struct buffer out; /* bytes the socket did not take yet; empty nearly always */
	char address[PROTOCOL_NAME_MAX + 1];
};

static struct event_loop *loop;
static struct relay_conn *waiting;
static volatile sig_atomic_t stopping;
static char chunk[RELAY_CHUNK];

static void conn_ready(int fd, uint32_t events, void *data);

static void conn_free(struct relay_conn *c)
{
	if (c == NULL)
		return;
	if (waiting == c)
		waiting = NULL;
	event_source_remove(c->source);
	close(c->fd);
	buffer_release(&c->out);
	free(c);
}

/* Either side ending ends both, as a conversation does. */
static void pair_end(struct relay_conn *c)
{
	struct relay_conn *peer = c->peer;
	if (peer)
		peer->peer = NULL;
	conn_free(c);
	conn_free(peer);
}

/*
 * Writes now what the socket takes; the rest waits and holds the sender
 * back. Returns -1 when the pair has ended (both are freed).
 */
static int relay_write(struct relay_conn *to, const char *data, size_t len)
{
	if (buffer_length(&to->out) == 0) {
		ssize_t n = send(to->fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			pair_end(to);
			return -1;
		}
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
	}
	if (len == 0)
		return 0;
	if (buffer_append(&to->out, data, len) < 0) {
		pair_end(to);
		return -1;
	}
	event_source_set_events(to->source, EPOLLIN | EPOLLOUT);
	if (to->peer)
		event_source_set_events(to->peer->source, 0);
	return 0;
}

static int say(struct relay_conn *c, const char *line)
{
	return relay_write(c, line, strlen(line));
}

static void conn_ready(int fd, uint32_t events, void *data)
{
	struct relay_conn *c = data;

	if (events & EPOLLOUT) {
		ssize_t n = send(fd, buffer_peek(&c->out), buffer_length(&c->out), MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			pair_end(c);
			return;
		}
		if (n > 0)
			buffer_consume(&c->out, (size_t)n);
		if (buffer_length(&c->out) == 0) {
			event_source_set_events(c->source, EPOLLIN);
			if (c->peer)
				event_source_set_events(c->peer->source, EPOLLIN);
		}
	}
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	ssize_t n = read(fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		pair_end(c);
		return;
	}
	/* Bytes from someone not yet paired have nowhere to go: dropped. */
	if (c->peer)
		relay_write(c->peer, chunk, (size_t)n);
}

static void pair_with_waiting(struct relay_conn *c)
{
	char line[128];
	if (waiting == NULL) {
		waiting = c;
		say(c, "WAITING relay\n");
		return;
	}
	struct relay_conn *w = waiting;
	waiting = NULL;
	w->peer = c;
	c->peer = w;
	snprintf(line, sizeof(line), "PAIRED %s turns peer\n", c->address);
	if (say(w, line) < 0)
		return;
	snprintf(line, sizeof(line), "PAIRED %s turns you\n", w->address);
	say(c, line);
}

static void accept_ready(int fd, uint32_t events, void *data)
{
	(void)events;
	(void)data;
	for (int i = 0; i < 256; i++) { /* bounded: let established pairs run too */
		struct sockaddr_in addr;
		socklen_t len = sizeof(addr);
		int cfd = accept4(fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (cfd < 0)
			return;
		struct relay_conn *c = calloc(1, sizeof(*c));
		int one = 1;
		setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (c == NULL) {
			close(cfd);
			continue;
		}
		c->fd = cfd;
		buffer_init(&c->out, RELAY_PENDING_LIMIT);
		char ip[INET_ADDRSTRLEN] = "?";
		if (addr.sin_family == AF_INET)
			inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
		snprintf(c->address, sizeof(c->address), "%s-%u", ip, (unsigned)ntohs(addr.sin_port));
		c->source = event_add_fd(loop, cfd, EPOLLIN, conn_ready, c);
		if (c->source == NULL) {
			close(cfd);
			free(c);
			continue;
		}
		if (say(c, "HELLO turnchat 1 relay\n") == 0)
			pair_with_waiting(c);
	}
}

static void on_signal(int signo, void *data)
{
	(void)signo;
	(void)data;
	stopping = 1;
}

int relay_server_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"host", required_argument, NULL, 'H'},
		{"port", required_argument, NULL, 'p'},
		{"time-limit", required_argument, NULL, 'T'},
		{NULL, 0, NULL, 0},
	};
	const char *host = "127.0.0.1", *port = NULL;
	double limit = 3600;
	int c;

	while ((c = getopt_long(argc, argv, "H:p:T:", longopts, NULL)) != -1) {
		if (c == 'H')
			host = optarg;
		else if (c == 'p')
			port = optarg;
		else if (c == 'T')
			limit = strtod(optarg, NULL);
		else
			return 64;
	}
	struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai;
	if (port == NULL || getaddrinfo(host, port, &hints, &ai) != 0) {
		fputs("usage: turnchat-bench relay-server [-H ipv4-loopback] -p port\n", stderr);
		return 64;
	}
	const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;
	if ((ntohl(in->sin_addr.s_addr) >> 24) != 127) {
		fprintf(stderr, "relay-server: %s is not a loopback address\n", host);
		return 64;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max; /* one descriptor per connection, 10,000+ */
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 4096) < 0) {
		perror("relay-server");
		return 69;
	}
	freeaddrinfo(ai);
	loop = event_loop_create();
	if (loop == NULL || event_add_fd(loop, fd, EPOLLIN, accept_ready, NULL) == NULL ||
	    event_add_signal(loop, SIGTERM, on_signal, NULL) < 0 ||
	    event_add_signal(loop, SIGINT, on_signal, NULL) < 0) {
		perror("relay-server");
		return 69;
	}
	fprintf(stderr, "relay-server ready on %s port %s\n", host, port);
	uint64_t end = event_now_ms(loop) + (uint64_t)(limit * 1000);
	while (!stopping && event_now_ms(loop) < end)
		event_loop_dispatch(loop, 1000);
	return 0;
}
