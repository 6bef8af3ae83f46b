// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "policy.h"

int vg_parse_addr(const char *s, struct vg_addr *a)
{
	struct in_addr v4;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &v4) == 1) {
		vg_addr_from_v4(a, v4.s_addr);
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

static bool is_cidr(const char *s)
{
	struct vg_cidr c;

	return !vg_parse_cidr(s, &c);
}

static bool is_addr(const char *s)
{
	struct vg_addr a;

	return !vg_parse_addr(s, &a);
}

static bool is_gateway(const char *s)
{
	struct vg_gateway g;

	return !vg_parse_gateway(s, &g);
}

int vg_word_check(const char *flag, const char *v, char *err, size_t errlen)
{
	static const struct { const char *flag; bool (*ok)(const char *); const char *why; } words[] = {
		{ "--allow", is_cidr, "not a CIDR (e.g. 192.168.1.0/24 or fd00::/8)" },
		{ "--expect-ip", is_cidr, "not a CIDR (e.g. 10.64.0.0/10)" },
		{ "--dns", is_addr, "not an IP address" },
		{ "--real-ip", is_addr, "not an IPv4 or IPv6 address" },
		{ "--gateway", is_gateway, "not ADDR or ADDR:PORT (IPv6 as [ADDR]:PORT)" },
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(flag, words[i].flag) && !words[i].ok(v)) {
			snprintf(err, errlen, "%s %s: %s", flag, v, words[i].why);
			return -EINVAL;
		}
	return 0;
}

/* Over all 128 bits: vg_cidr_prefix counts an IPv4 network as IPv4 does. */
static int prefix128(const struct vg_cidr *c)
{
	int bits = 0;

	for (int i = 0; i < 4; i++)
		bits += __builtin_popcount(c->mask.w[i]);
	return bits;
}

static bool contains(const struct vg_cidr *outer, const struct vg_cidr *inner)
{
	if (prefix128(outer) > prefix128(inner))
		return false;
	for (int i = 0; i < 4; i++)
		if ((inner->net.w[i] & outer->mask.w[i]) != outer->net.w[i])
			return false;
	return true;
}

/*
 * Prefixes nest or are apart, so the target is covered when one of the set
 * holds it, or when both its halves are covered; a half none of the set lies
 * in is not. Only halves that hold a prefix of the set are split again: at
 * most 128 levels of n of them.
 */
bool vg_cidrs_cover(const struct vg_cidr *set, int n, const struct vg_cidr *target)
{
	int len = prefix128(target);
	bool split = false;
	struct vg_cidr lo, hi;

	for (int i = 0; i < n; i++) {
		if (contains(&set[i], target))
			return true;
		split |= contains(target, &set[i]);
	}
	if (!split || len == 128)
		return false;
	lo = hi = *target;
	lo.mask.w[len / 32] |= htonl(0x80000000u >> (len % 32));
	hi.mask.w[len / 32] = lo.mask.w[len / 32];
	hi.net.w[len / 32] |= htonl(0x80000000u >> (len % 32));
	return vg_cidrs_cover(set, n, &lo) && vg_cidrs_cover(set, n, &hi);
}

/*
 * IPv4 that is not the Internet (RFC 6890's blocks that are not globally
 * reachable; multicast and reserved): a set that allows all the rest allows
 * the Internet, so these count as covered already.
 */
static const char *const not_internet[] = {
	"0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
	"172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
	"198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/3",
};

#define N_NOT_INTERNET (sizeof(not_internet) / sizeof(not_internet[0]))

static int gather(const struct vg_policy *p, const bool *dropped, struct vg_cidr *set)
{
	int n = 0;

	for (size_t k = 0; k < N_NOT_INTERNET; k++)
		vg_parse_cidr(not_internet[k], &set[n++]);
	for (__u32 i = 0; i < p->n_allow; i++)
		if (!dropped[i])
			set[n++] = p->allow[i];
	return n;
}

/*
 * Refuses an allow set that holds all public IPv4 or all public IPv6: with
 * the tunnel gone, such a guard would let its traffic out the real way. The
 * message names the allows the covering needs (each one the rest cannot do
 * without), not a LAN beside them.
 */
static int refuse_internet(const struct vg_options *o, const struct vg_policy *p, char *err, size_t errlen)
{
	static const struct { const char *net, *what; } internets[] = {
		{ "::ffff:0:0/96", "every public IPv4 address" },
		{ "2000::/3", "every public IPv6 address" },
	};
	struct vg_cidr set[N_NOT_INTERNET + VG_MAX_ALLOW], target;

	for (size_t t = 0; t < sizeof(internets) / sizeof(internets[0]); t++) {
		bool dropped[VG_MAX_ALLOW] = { false };
		size_t len = 0;
		int named = 0;

		vg_parse_cidr(internets[t].net, &target);
		if (!vg_cidrs_cover(set, gather(p, dropped, set), &target))
			continue;
		for (__u32 i = 0; i < p->n_allow; i++) {
			dropped[i] = true;
			dropped[i] = vg_cidrs_cover(set, gather(p, dropped, set), &target);
		}
		len = (size_t)snprintf(err, errlen, "--allow");
		for (__u32 i = 0; i < p->n_allow && len < errlen; i++) {
			if (dropped[i])
				continue;
			named++;
			len += (size_t)snprintf(err + len, errlen - len, " %s", o->allows[i]);
		}
		if (len < errlen)
			snprintf(err + len, errlen - len, ": %s %s, so traffic would leave outside the "
				 "tunnel; allow only the subnets of your LAN", named > 1 ? "together cover" : "covers",
				 internets[t].what);
		return -EINVAL;
	}
	return 0;
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
	for (int i = 0; i < o->n_allows; i++)
		if (vg_parse_cidr(o->allows[i], &p->allow[p->n_allow++]))
			return vg_word_check("--allow", o->allows[i], err, errlen);
	if (refuse_internet(o, p, err, errlen))
		return -EINVAL;
	for (int i = 0; i < o->n_dns; i++)
		if (vg_parse_addr(o->dns[i], &p->dns[p->n_dns++]))
			return vg_word_check("--dns", o->dns[i], err, errlen);
	for (int i = 0; i < o->n_gateways; i++)
		if (vg_parse_gateway(o->gateways[i], &p->gw[p->n_gw++]))
			return vg_word_check("--gateway", o->gateways[i], err, errlen);
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
