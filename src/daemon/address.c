/*
 * address: used by server (on accept) and session (in log lines).
 */
#include "address.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>

void peer_address_set(union peer_address *peer, const struct sockaddr *addr, socklen_t len)
{
	memset(peer, 0, sizeof(*peer));
	if ((addr->sa_family == AF_INET || addr->sa_family == AF_INET6) && len <= sizeof(*peer))
		memcpy(peer, addr, len);
	else
		peer->sa.sa_family = AF_UNIX;
}

const char *peer_address_text(const union peer_address *peer, char *text, size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];
	socklen_t len = peer->sa.sa_family == AF_INET6 ? sizeof(peer->in6) : sizeof(peer->in);

	if (peer->sa.sa_family == AF_UNIX ||
	    getnameinfo(&peer->sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(text, size, "local");
	else
		snprintf(text, size, "%s port %s", host, port);
	return text;
}
