/*
 * address: used by server (on accept, and for the addresses it turns away)
 * and session (in log lines).
 */
#include "address.h"

#include <stdio.h>
#include <string.h>

#include "net.h"

void peer_address_set(union peer_address *peer, const struct sockaddr *addr, socklen_t len)
{
	memset(peer, 0, sizeof(*peer));
	if ((addr->sa_family == AF_INET || addr->sa_family == AF_INET6) && len <= sizeof(*peer))
		memcpy(peer, addr, len);
	else
		peer->sa.sa_family = AF_UNIX;
}

const char *peer_address_host(const union peer_address *peer, char *text, size_t size)
{
	socklen_t len = peer->sa.sa_family == AF_INET6 ? sizeof(peer->in6) : sizeof(peer->in);

	if (!net_host_text(&peer->sa, len, text, size))
		snprintf(text, size, "local");
	return text;
}

const char *peer_address_text(const union peer_address *peer, char *text, size_t size)
{
	socklen_t len = peer->sa.sa_family == AF_INET6 ? sizeof(peer->in6) : sizeof(peer->in);

	if (!net_address_text(&peer->sa, len, text, size))
		snprintf(text, size, "local");
	return text;
}
