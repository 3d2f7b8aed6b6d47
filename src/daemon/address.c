/*
 * address: used by server (on accept, for require_tls, and for the
 * addresses it turns away) and session (in log lines).
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

bool peer_address_is_local(const struct sockaddr *addr)
{
	if (addr->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (addr->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
		return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
	}
	return addr->sa_family == AF_UNIX;
}
