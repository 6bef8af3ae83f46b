// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "listen.h"

static int bad(char *err, size_t errlen, const char *s, const char *why)
{
	snprintf(err, errlen, "--http %s: %s", s, why);
	return -EINVAL;
}

int vg_listen_parse(const char *s, struct vg_listen *l, char *err, size_t errlen)
{
	const char *colon, *host = s;
	char addr[INET6_ADDRSTRLEN + 2];
	unsigned long port;
	char *end;
	size_t n;

	memset(l, 0, sizeof(*l));
	snprintf(l->shown, sizeof(l->shown), "%s", s);
	if (!strncmp(s, "unix:", 5)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&l->addr;

		if (s[5] != '/')
			return bad(err, errlen, s, "a socket path must be absolute (unix:/run/vpnguard/http.sock)");
		if (strlen(s + 5) >= sizeof(un->sun_path))
			return bad(err, errlen, s, "socket path too long");
		un->sun_family = AF_UNIX;
		strcpy(un->sun_path, s + 5);
		l->len = sizeof(*un);
		return 0;
	}
	colon = strrchr(s, ':');
	if (!colon || colon == s)
		return bad(err, errlen, s, "give ADDR:PORT, [ADDR6]:PORT or unix:/PATH");
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port == 0 || port > 65535)
		return bad(err, errlen, s, "the port must be a number from 1 to 65535");
	n = (size_t)(colon - host);
	if (host[0] == '[') {
		if (n < 3 || host[n - 1] != ']')
			return bad(err, errlen, s, "an IPv6 address goes in brackets: [::1]:PORT");
		host++;
		n -= 2;
	}
	if (n >= sizeof(addr))
		return bad(err, errlen, s, "not an IP address");
	memcpy(addr, host, n);
	addr[n] = 0;
	struct sockaddr_in *in4 = (struct sockaddr_in *)&l->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&l->addr;

	if (s[0] != '[' && inet_pton(AF_INET, addr, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((unsigned short)port);
		l->len = sizeof(*in4);
		return 0;
	}
	if (s[0] == '[' && inet_pton(AF_INET6, addr, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((unsigned short)port);
		l->len = sizeof(*in6);
		return 0;
	}
	return bad(err, errlen, s, "not an IP address (names are not resolved: say 127.0.0.1 or [::1])");
}
