/*
 * net: the one place that turns host names and ports into socket
 * addresses and socket addresses into text, for the daemon's listener and
 * log lines, the socket generator and the client. Reports nothing itself:
 * callers say what went wrong in their own words.
 */
#ifndef TURNCHAT_NET_H
#define TURNCHAT_NET_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/*
 * The stream addresses of host and port: to listen on (passive) or to
 * connect to. Returns 0 with *list to give back with freeaddrinfo, or
 * getaddrinfo's error (for gai_strerror).
 */
int net_resolve(const char *host, unsigned port, bool passive, struct addrinfo **list);

/* The numeric host of an IPv4 or IPv6 address ("192.0.2.1", "2001:db8::1"). */
bool net_host_text(const struct sockaddr *addr, socklen_t len, char *host, size_t size);

/* "192.0.2.1 port 4000" or "2001:db8::1 port 4000"; false for other families. */
bool net_address_text(const struct sockaddr *addr, socklen_t len, char *text, size_t size);

#endif
