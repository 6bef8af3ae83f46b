// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy.h"

bool vg_addr_is_v4(const struct vg_addr *a)
{
	return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == htonl(0xffff);
}

int vg_parse_addr(const char *s, struct vg_addr *a)
{
	struct in_addr v4;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &v4) == 1) {
		a->w[2] = htonl(0xffff);
		a->w[3] = v4.s_addr;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->w) == 1)
		return 0;
	return -EINVAL;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return (errno || *end || *out > max) ? -EINVAL : 0;
}

int vg_parse_cidr(const char *s, struct vg_cidr *c)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash = strchr(s, '/');
	unsigned long prefix;
	size_t len = slash ? (size_t)(slash - s) : strlen(s);

	if (len >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, len);
	buf[len] = 0;
	if (vg_parse_addr(buf, &c->net))
		return -EINVAL;
	bool v4 = vg_addr_is_v4(&c->net) && !strchr(buf, ':');
	unsigned long max = v4 ? 32 : 128;
	if (!slash)
		prefix = max;
	else if (parse_uint(slash + 1, max, &prefix))
		return -EINVAL;
	if (v4)
		prefix += 96;
	for (int i = 0; i < 4; i++) {
		unsigned bits = prefix > 32u * i ? prefix - 32u * i : 0;
		uint32_t m = bits >= 32 ? 0xffffffffu : bits ? ~(0xffffffffu >> bits) : 0;

		c->mask.w[i] = htonl(m);
		/* Host bits are dropped: 192.168.1.5/24 means the /24 it is in. */
		c->net.w[i] &= c->mask.w[i];
	}
	return 0;
}

int vg_parse_gateway(const char *s, struct vg_gateway *g)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *port = NULL;
	size_t len = strlen(s);
	unsigned long p = 0;

	memset(g, 0, sizeof(*g));
	if (len >= sizeof(buf))
		return -EINVAL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || (close[1] && close[1] != ':'))
			return -EINVAL;
		len = close - s - 1;
		memcpy(buf, s + 1, len);
		port = close[1] ? close + 2 : NULL;
	} else {
		const char *colon = strchr(s, ':');

		/* One colon is a port; more is a bare IPv6 address. */
		if (colon && !strchr(colon + 1, ':')) {
			len = colon - s;
			port = colon + 1;
		}
		memcpy(buf, s, len);
	}
	buf[len] = 0;
	if (vg_parse_addr(buf, &g->addr))
		return -EINVAL;
	if (port && (parse_uint(port, 65535, &p) || p == 0))
		return -EINVAL;
	g->port = htons((uint16_t)p);
	return 0;
}

static int bad(char *err, size_t errlen, const char *flag, const char *v, const char *why)
{
	snprintf(err, errlen, "%s %s: %s", flag, v, why);
	return -EINVAL;
}

int vg_policy_build(const struct vg_options *o, struct vg_policy *p, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	p->mode = o->tunnel ? VG_MODE_TUNNEL : VG_MODE_GATEWAY;
	if (o->tunnel)
		snprintf(p->tunnel, sizeof(p->tunnel), "%s", o->tunnel);
	/* 0: the loader picks a free pair; a table of its own mark's number unless given. */
	p->fwmark = o->fwmark;
	p->route_table = o->route_table ? o->route_table : o->fwmark;
	for (int i = 0; i < o->n_allows; i++) {
		struct vg_cidr *c = &p->allow[p->n_allow++];

		if (vg_parse_cidr(o->allows[i], c))
			return bad(err, errlen, "--allow", o->allows[i],
				   "not a CIDR (e.g. 192.168.1.0/24 or fd00::/8)");
		/* IPv4 is held as ::ffff:a.b.c.d, so a short IPv6 prefix would open all of it. */
		if (!vg_addr_is_v4(&c->net) && c->mask.w[2] != htonl(0xffffffff) &&
		    (htonl(0xffff) & c->mask.w[2]) == c->net.w[2] && !c->net.w[0] && !c->net.w[1])
			return bad(err, errlen, "--allow", o->allows[i],
				   "covers every IPv4 address (::ffff:0:0/96); give narrower subnets");
	}
	for (int i = 0; i < o->n_dns; i++)
		if (vg_parse_addr(o->dns[i], &p->dns[p->n_dns++]))
			return bad(err, errlen, "--dns", o->dns[i], "not an IP address");
	for (int i = 0; i < o->n_gateways; i++)
		if (vg_parse_gateway(o->gateways[i], &p->gw[p->n_gw++]))
			return bad(err, errlen, "--gateway", o->gateways[i],
				   "not ADDR or ADDR:PORT (IPv6 as [ADDR]:PORT)");
	return 0;
}

int vg_policy_allow4(const struct vg_policy *p, struct vg_prefix4 *out, int max)
{
	int n = 0;

	for (__u32 i = 0; i < p->n_allow && i < VG_MAX_ALLOW && n < max; i++) {
		const struct vg_cidr *c = &p->allow[i];

		if (!vg_addr_is_v4(&c->net) || c->mask.w[2] != htonl(0xffffffff))
			continue;
		out[n].addr = c->net.w[3];
		out[n++].len = (__u8)vg_cidr_prefix(c);
	}
	return n;
}

const char *vg_addr_str(const struct vg_addr *a, char *buf, size_t len)
{
	if (vg_addr_is_v4(a))
		return inet_ntop(AF_INET, &a->w[3], buf, len);
	return inet_ntop(AF_INET6, a->w, buf, len);
}

int vg_cidr_prefix(const struct vg_cidr *c)
{
	int bits = 0;

	for (int i = 0; i < 4; i++)
		bits += __builtin_popcount(c->mask.w[i]);
	return vg_addr_is_v4(&c->net) && bits >= 96 ? bits - 96 : bits;
}

static const char *const reason_names[VG_R_MAX] = {
	[VG_R_NONE] = "none",
	[VG_R_NO_POLICY] = "no_policy",
	[VG_R_NETNS] = "netns",
	[VG_R_DNS] = "dns",
	[VG_R_CLOSED] = "closed",
	[VG_R_IPV6] = "ipv6",
	[VG_R_NO_TUNNEL] = "no_tunnel",
	[VG_R_OFF_TUNNEL] = "off_tunnel",
	[VG_R_NOT_GATEWAY] = "not_gateway",
	[VG_R_SOCKOPT] = "sockopt",
	[VG_R_RAW] = "raw_socket",
	[VG_R_TUNNEL_SRC] = "tunnel_src",
	[VG_R_EVENTS_SUPPRESSED] = "events_suppressed",
	[VG_R_EVENTS_LOST] = "events_lost",
	[VG_R_MULTICAST] = "multicast",
	[VG_R_DISCOVERY] = "discovery",
};

static const char *const hook_names[VG_HOOK_MAX] = {
	[VG_HOOK_CONNECT4] = "connect4",
	[VG_HOOK_CONNECT6] = "connect6",
	[VG_HOOK_SENDMSG4] = "sendmsg4",
	[VG_HOOK_SENDMSG6] = "sendmsg6",
	[VG_HOOK_SETSOCKOPT] = "setsockopt",
	[VG_HOOK_SOCK_CREATE] = "sock_create",
	[VG_HOOK_EGRESS] = "egress",
	[VG_HOOK_TC] = "tc",
};

const char *vg_reason_name(unsigned reason)
{
	return reason < VG_R_MAX && reason_names[reason] ? reason_names[reason] : "unknown";
}

const char *vg_hook_name(unsigned hook)
{
	return hook < VG_HOOK_MAX && hook_names[hook] ? hook_names[hook] : "unknown";
}

const char *vg_proto_name(unsigned proto)
{
	switch (proto) {
	case IPPROTO_TCP: return "tcp";
	case IPPROTO_UDP: return "udp";
	case IPPROTO_ICMP: return "icmp";
	case IPPROTO_ICMPV6: return "icmpv6";
	case 0: return "";
	}
	return "other";
}

const char *vg_mode_name(unsigned mode)
{
	return mode == VG_MODE_TUNNEL ? "tunnel" : mode == VG_MODE_GATEWAY ? "gateway" : "unknown";
}
