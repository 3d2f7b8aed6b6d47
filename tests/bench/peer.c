/*
 * peer: one bench-side socket, called by workload.c to connect and write and
 * calling back into it with whole lines. Reads land in one shared scratch
 * area and only a line cut off by a read is kept per socket, so 10,000
 * connections cost the generator little memory and no allocation per
 * message. Bytes move through the project's transport (transport.c), so
 * with --tls every socket speaks TLS through tls.c, as the daemon's do:
 * the handshake is driven by the first write, and a read or write that
 * must wait for the other direction says so.
 */
#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_TLS
#include "tls.h"
#endif

/* One read carries many lines in flood; more gains nothing on loopback. */
#define READ_CHUNK 65536
/* Longest line we accept from a server; ours are far shorter. */
#define MAX_LINE 8192
/* Output held per socket: a flood window of the longest messages fits. */
#define PENDING_LIMIT (4u << 20)

static char scratch[READ_CHUNK + MAX_LINE];

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void peer_ready(int fd, uint32_t events, void *data);

static void want_out(struct peer *peer, bool on)
{
	if (peer->out_wanted == on)
		return;
	peer->out_wanted = on;
	event_source_set_events(peer->source, EPOLLIN | (on ? EPOLLOUT : 0));
}

/* Why the last transport call failed, in words. */
static const char *failure(const struct peer *peer, int error)
{
#ifdef HAVE_TLS
	if (peer->io.tls && error == EPROTO)
		return tls_error(peer->io.tls);
#else
	(void)peer;
#endif
	return strerror(error);
}

static void drop_fd(struct peer *peer)
{
	int saved = errno;
	transport_close(&peer->io);
	peer->io = (struct transport){.fd = -1};
	errno = saved;
}

static int watch(struct peer *peer, struct event_loop *loop, bool connecting)
{
	int one = 1;
	/* Every message is one small write; Nagle would only add delay. */
	setsockopt(peer->io.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	buffer_init(&peer->carry, MAX_LINE);
	buffer_init(&peer->pending, PENDING_LIMIT);
#ifdef HAVE_TLS
	if (peer->bench->tls && (peer->io.tls = tls_client_start(peer->bench->tls, peer->io.fd,
								 peer->bench->opt->host)) == NULL) {
		errno = ENOMEM;
		drop_fd(peer);
		return -1;
	}
#endif
	peer->out_wanted = connecting;
	peer->source = event_add_fd(loop, peer->io.fd, EPOLLIN | (connecting ? EPOLLOUT : 0),
				    peer_ready, peer);
	if (peer->source == NULL) {
		drop_fd(peer);
		return -1;
	}
	peer->connected = !connecting;
	return 0;
}

int peer_connect(struct peer *peer, struct event_loop *loop, const struct sockaddr *server,
		 socklen_t len, int source)
{
	peer->io = (struct transport){
		.fd = socket(server->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
	if (peer->io.fd < 0)
		return -1;
	if (source >= 0) {
		/* Many source addresses: each has its own ephemeral ports, and the
		 * daemon's per-address limit sees many clients, as in real life.
		 * The port is picked at connect() time, per destination. */
		struct sockaddr_in from = {.sin_family = AF_INET};
		int one = 1;
		from.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)source);
		setsockopt(peer->io.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(peer->io.fd, (struct sockaddr *)&from, sizeof(from)) < 0)
			goto fail;
	}
	peer->opened_ns = now_ns();
	if (connect(peer->io.fd, server, len) < 0 && errno != EINPROGRESS)
		goto fail;
	return watch(peer, loop, true);
fail:
	drop_fd(peer);
	return -1;
}

int peer_adopt(struct peer *peer, struct event_loop *loop, int fd)
{
	peer->io = (struct transport){.fd = fd};
	peer->opened_ns = now_ns();
	return watch(peer, loop, false);
}

/* The relay names each side by its address: "127.0.0.5-40001". */
void peer_local_name(struct peer *peer)
{
	struct sockaddr_in addr;
	socklen_t len = sizeof(addr);
	char ip[INET_ADDRSTRLEN] = "?";

	if (getsockname(peer->io.fd, (struct sockaddr *)&addr, &len) == 0 &&
	    addr.sin_family == AF_INET)
		inet_ntop(AF_INET, &addr.sin_addr, ip, sizeof(ip));
	snprintf(peer->name, sizeof(peer->name), "%s-%u", ip, (unsigned)ntohs(addr.sin_port));
}

/* EPOLLOUT while output waits for the socket, or a TLS read must write;
 * not while a TLS write waits for input (EPOLLIN is always on). */
static void want_out_as_needed(struct peer *peer)
{
	want_out(peer, peer->io.read_wants_write ||
			       (buffer_length(&peer->pending) > 0 && !peer->io.write_wants_read));
}

static int flush(struct peer *peer)
{
	while (buffer_length(&peer->pending) > 0) {
		ssize_t n = transport_send(&peer->io, buffer_peek(&peer->pending),
					   buffer_length(&peer->pending));
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			return -1;
		}
		buffer_consume(&peer->pending, (size_t)n);
	}
	want_out_as_needed(peer);
	return 0;
}

int peer_write(struct peer *peer, const char *data, size_t len)
{
	if (peer->io.fd < 0)
		return -1;
	if (peer->connected && buffer_length(&peer->pending) == 0) {
		ssize_t n = transport_send(&peer->io, data, len);
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if (n > 0) {
			data += n;
			len -= (size_t)n;
		}
		if (len == 0)
			return 0;
	}
	/* A TLS write that waited keeps its bytes at the front of pending:
	 * OpenSSL is handed the same bytes, and more, when it goes on. */
	if (buffer_append(&peer->pending, data, len) < 0)
		return -1;
	if (peer->connected)
		want_out_as_needed(peer);
	return 0;
}

void peer_close(struct peer *peer)
{
	if (peer->io.fd < 0)
		return;
	event_source_remove(peer->source);
	drop_fd(peer);
	peer->source = NULL;
	buffer_release(&peer->carry);
	buffer_release(&peer->pending);
}

/* Hands every complete line of data[0, len) to the workload; keeps the rest. */
static int split_lines(struct peer *peer, const char *data, size_t len, uint64_t now)
{
	while (len > 0 && peer->io.fd >= 0) {
		size_t line_len = 0, consumed = 0;
		enum frame_result r = protocol_frame(&peer->framer, data, len, MAX_LINE, &line_len,
						     &consumed);
		if (r == FRAME_TOO_LONG)
			return -1;
		if (r == FRAME_NEED_MORE && consumed == 0)
			break;
		if (r == FRAME_LINE)
			workload_line(peer, data, line_len, now);
		data += consumed;
		len -= consumed;
	}
	if (len > 0 && peer->io.fd >= 0 && buffer_append(&peer->carry, data, len) < 0)
		return -1;
	return 0;
}

/* One read; false when there was nothing (more) to read or the peer failed. */
static bool read_once(struct peer *peer)
{
	/* A line cut off by the last read goes in front of this one's bytes. */
	size_t carried = buffer_length(&peer->carry);
	memcpy(scratch, buffer_peek(&peer->carry), carried);
	buffer_consume(&peer->carry, carried);

	ssize_t n = transport_recv(&peer->io, scratch + carried, READ_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
		if (carried > 0)
			buffer_append(&peer->carry, scratch, carried);
		return false;
	}
	if (n <= 0) {
		workload_peer_failed(peer, n == 0 ? "the server closed the connection"
						  : failure(peer, errno));
		return false;
	}
	if (split_lines(peer, scratch, carried + (size_t)n, now_ns()) < 0) {
		workload_peer_failed(peer, "a line from the server is too long");
		return false;
	}
	return peer->io.fd >= 0;
}

static void read_input(struct peer *peer)
{
	/* One read takes what the socket has; TLS hands out a record per read,
	 * and what it holds already is read now, since epoll cannot see it. */
	bool any = false;
	while (read_once(peer)) {
		any = true;
		if (!transport_pending(&peer->io))
			break;
	}
	if (peer->io.fd < 0)
		return;
	/* A TLS write that waited for the handshake's input goes on now. */
	if (peer->io.write_wants_read && buffer_length(&peer->pending) > 0 && flush(peer) < 0) {
		workload_peer_failed(peer, failure(peer, errno));
		return;
	}
	if (peer->connected)
		want_out_as_needed(peer);
	if (any)
		workload_read_done(peer);
}

static void peer_ready(int fd, uint32_t events, void *data)
{
	struct peer *peer = data;

	if (!peer->connected && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int error = 0;
		socklen_t len = sizeof(error);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
		if (error != 0) {
			workload_peer_failed(peer, strerror(error));
			return;
		}
		peer->connected = true;
		workload_connected(peer);
	}
	if ((events & EPOLLOUT) && peer->io.fd >= 0 && flush(peer) < 0) {
		workload_peer_failed(peer, failure(peer, errno));
		return;
	}
	/* A TLS read that had to write first goes on now the socket takes it. */
	if ((events & EPOLLOUT) && peer->io.read_wants_write)
		events |= EPOLLIN;
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && peer->io.fd >= 0)
		read_input(peer);
}
