/*
 * address: a peer's address kept small (28 bytes, not a string) for every
 * connection, and turned into text only when a log line needs it.
 */
#ifndef TURNCHAT_ADDRESS_H
#define TURNCHAT_ADDRESS_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

union peer_address {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Keeps an IPv4 or IPv6 address; anything else (a Unix socket) as "local". */
void peer_address_set(union peer_address *peer, const struct sockaddr *addr, socklen_t len);

/* "192.0.2.1 port 4000", "2001:db8::1 port 4000", or "local"; returns text. */
const char *peer_address_text(const union peer_address *peer, char *text, size_t size);
/* "192.0.2.1", "2001:db8::1", or "local": the host alone; returns text. */
const char *peer_address_host(const union peer_address *peer, char *text, size_t size);

/* True for loopback (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) and Unix sockets:
 * a connection from this host, which no network in between can read. */
bool peer_address_is_local(const struct sockaddr *addr);

#define PEER_ADDRESS_TEXT_MAX 64

#endif
