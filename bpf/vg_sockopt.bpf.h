/* SPDX-License-Identifier: GPL-2.0 */
/* What a setsockopt() names: an interface for steering, or a multicast group join. */
#ifndef VG_SOCKOPT_BPF_H
#define VG_SOCKOPT_BPF_H

/* Is the option value, a device name, the tunnel's name? */
static __always_inline bool optval_is_ifname(struct bpf_sockopt *ctx, const char *name)
{
	char *v = ctx->optval;
	int len = ctx->optlen;

	for (int i = 0; i < VG_IFNAMSIZ; i++) {
		char c = 0;

		if (i < len) {
			if (v + i + 1 > (char *)ctx->optval_end)
				return false;
			c = v[i];
		}
		if (c != name[i])
			return false;
		if (!c)
			return true;
	}
	return false;
}

/* The 4 bytes at off of the option value, if the caller gave them. */
static __always_inline bool optval_u32(struct bpf_sockopt *ctx, int optlen, __u32 off, __u32 *out)
{
	__u8 *v = ctx->optval;

	if (optlen < (int)(off + sizeof(*out)) || v + off + sizeof(*out) > (__u8 *)ctx->optval_end)
		return false;
	__builtin_memcpy(out, v + off, sizeof(*out));
	return true;
}

enum option_kind { OPT_OTHER, OPT_STEER, OPT_JOIN };

/* Options that choose the egress interface or the routing of a socket, and group joins. */
static __always_inline enum option_kind option_kind(int level, int optname)
{
	if (level == SOL_SOCKET)
		return optname == SO_BINDTODEVICE || optname == SO_BINDTOIFINDEX ||
		       optname == SO_MARK ? OPT_STEER : OPT_OTHER;
	if (level == SOL_IP) {
		if (optname == IP_UNICAST_IF || optname == IP_MULTICAST_IF)
			return OPT_STEER;
		return optname == IP_ADD_MEMBERSHIP || optname == IP_ADD_SOURCE_MEMBERSHIP ||
		       optname == MCAST_JOIN_GROUP || optname == MCAST_JOIN_SOURCE_GROUP ?
		       OPT_JOIN : OPT_OTHER;
	}
	if (level == SOL_IPV6) {
		if (optname == IPV6_UNICAST_IF || optname == IPV6_MULTICAST_IF)
			return OPT_STEER;
		return optname == IPV6_ADD_MEMBERSHIP || optname == IPV6_JOIN_ANYCAST ||
		       optname == MCAST_JOIN_GROUP || optname == MCAST_JOIN_SOURCE_GROUP ?
		       OPT_JOIN : OPT_OTHER;
	}
	return OPT_OTHER;
}

/* An interface named by ifindex, or (ifindex 0) by one of its IPv4 addresses: the tunnel? */
static __always_inline bool names_tunnel(const struct vg_tunnel *tun, __u32 tun_ifindex,
					 __u32 ifindex, __u32 addr4)
{
	struct vg_addr a;

	if (!tun_ifindex)
		return false;
	if (ifindex)
		return ifindex == tun_ifindex;
	vg_addr_from_v4(&a, addr4);
	return addr4 && is_tunnel_addr(tun, &a);
}

/*
 * Where IPv4's multicast options name their interface: struct ip_mreqn
 * (12 bytes: group, address, ifindex), struct ip_mreq (8: group, address) or,
 * for IP_MULTICAST_IF alone, a bare address. An ifindex or address of 0 is
 * "any": routing picks, so not the tunnel.
 */
static __always_inline bool ip_mreq_interface(struct bpf_sockopt *ctx, int optlen, int optname,
					      __u32 *ifindex, __u32 *addr4)
{
	*ifindex = 0;
	if (optlen >= 12)
		return optval_u32(ctx, optlen, 8, ifindex) && optval_u32(ctx, optlen, 4, addr4);
	if (optlen >= 8)
		return optval_u32(ctx, optlen, 4, addr4);
	return optname == IP_MULTICAST_IF && optval_u32(ctx, optlen, 0, addr4);
}

/* Does a steering option point anywhere but the tunnel (clearing one is fine)? */
static __always_inline bool steers_off_tunnel(struct bpf_sockopt *ctx, int level, int optname,
					      int optlen, const struct vg_policy *p)
{
	struct vg_tunnel *tun = p->mode == VG_MODE_TUNNEL ? tunnel_of(p) : NULL;
	__u32 tun_ifindex = tunnel_ifindex(tun), v, addr4;

	/* An empty name (or none) unbinds: that is clearing it. */
	if (level == SOL_SOCKET && optname == SO_BINDTODEVICE)
		return !optval_is_ifname(ctx, "") && (!tun_ifindex || !optval_is_ifname(ctx, p->tunnel));
	if (level == SOL_IP && optname == IP_MULTICAST_IF)
		return !ip_mreq_interface(ctx, optlen, optname, &v, &addr4) ||
		       ((v || addr4) && !names_tunnel(tun, tun_ifindex, v, addr4));
	if (!optval_u32(ctx, optlen, 0, &v))
		return true;
	if (level == SOL_SOCKET) {
		struct bpf_sock *sk = ctx->sk;

		if (optname == SO_MARK)
			/* The mark that steers into the tunnel (or none, outside tunnel mode) stays. */
			return !sk || v != sk->mark;
		return v && (!tun_ifindex || v != tun_ifindex); /* SO_BINDTOIFINDEX; 0 unbinds */
	}
	/* IP(V6)_UNICAST_IF take the ifindex in network byte order, IPV6_MULTICAST_IF in host order. */
	if (optname != IPV6_MULTICAST_IF || level != SOL_IPV6)
		v = bpf_ntohl(v);
	return v && v != tun_ifindex;
}

/* Does a group join name the tunnel? The kernel reports the group on the interface joined. */
static __always_inline bool joins_on_tunnel(struct bpf_sockopt *ctx, int level, int optname,
					    int optlen, const struct vg_policy *p)
{
	struct vg_tunnel *tun = p->mode == VG_MODE_TUNNEL ? tunnel_of(p) : NULL;
	__u32 tun_ifindex = tunnel_ifindex(tun), ifindex = 0, addr4 = 0;

	if (optname == MCAST_JOIN_GROUP || optname == MCAST_JOIN_SOURCE_GROUP) {
		/* struct group_req and group_source_req start with the ifindex. */
		if (!optval_u32(ctx, optlen, 0, &ifindex))
			return false;
	} else if (level == SOL_IPV6) {
		/* struct ipv6_mreq: the group, then the ifindex. */
		if (!optval_u32(ctx, optlen, 16, &ifindex))
			return false;
	} else if (optname == IP_ADD_SOURCE_MEMBERSHIP) {
		/* struct ip_mreq_source: group, interface address, source. */
		if (!optval_u32(ctx, optlen, 4, &addr4))
			return false;
	} else if (!ip_mreq_interface(ctx, optlen, optname, &ifindex, &addr4)) {
		return false;
	}
	return names_tunnel(tun, tun_ifindex, ifindex, addr4);
}


#endif
