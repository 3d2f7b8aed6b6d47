/*
 * net: called by the daemon's listener and address modules, the socket
 * generator and the client's main.
 */
#include "net.h"

#include <stdio.h>

int net_resolve(const char *host, unsigned port, bool passive, struct addrinfo **list)
{
	/* Numeric service: a port is never looked up in /etc/services. */
	struct addrinfo hints = {.ai_family = AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
	char service[16];

	snprintf(service, sizeof(service), "%u", port);
	return getaddrinfo(host, service, &hints, list);
}

bool net_host_text(const struct sockaddr *addr, socklen_t len, char *host, size_t size)
{
	if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
		return false;
	return getnameinfo(addr, len, host, (socklen_t)size, NULL, 0, NI_NUMERICHOST) == 0;
}

bool net_address_text(const struct sockaddr *addr, socklen_t len, char *text, size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if ((addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
	    getnameinfo(addr, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		return false;
	snprintf(text, size, "%s port %s", host, port);
	return true;
}
