// SPDX-License-Identifier: GPL-2.0
/* vpnguard BPF programs: the rules are in vpnguard.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vpnguard.h"
#include "vg_maps.bpf.h"
#include "vg_rules.bpf.h"
#include "vg_sockopt.bpf.h"

/*
 * Steering needs the guard's mark on the socket. sock_create gave it to every
 * socket made since the guard exists; one made before (a running container
 * guarded by name) gets it here, and routing sees it from this connect, or
 * from the datagram after this one.
 */
static __always_inline void mark_for_steering(struct bpf_sock_addr *ctx, struct bpf_sock *sk)
{
	int mark = (int)guard_fwmark;

	if (guard_fwmark && sk && sk->mark != guard_fwmark)
		bpf_setsockopt(ctx, SOL_SOCKET, SO_MARK, &mark, sizeof(mark));
}

/*
 * connect(), and sendmsg() with an address, per datagram: the policy routing
 * of the mark takes the socket into the tunnel; nothing is bound.
 */
static __always_inline int on_addr_call(struct bpf_sock_addr *ctx, struct attempt *at)
{
	struct bpf_sock *sk = ctx->sk;
	struct verdict v;
	__u32 reason;

	at->dport = (__u16)ctx->user_port;
	at->proto = ctx->protocol;
	at->netns_cookie = bpf_get_netns_cookie(ctx);
	reason = judge(at, &v);
	if (reason)
		return deny(at, reason);
	mark_for_steering(ctx, sk);
	return 1;
}

SEC("cgroup/connect4")
int vg_connect4(struct bpf_sock_addr *ctx)
{
	struct attempt at = { .hook = VG_HOOK_CONNECT4 };

	vg_addr_from_v4(&at.dst, ctx->user_ip4);
	return on_addr_call(ctx, &at);
}

static __always_inline void addr_from_user_ip6(struct vg_addr *a, struct bpf_sock_addr *ctx)
{
	a->w[0] = ctx->user_ip6[0];
	a->w[1] = ctx->user_ip6[1];
	a->w[2] = ctx->user_ip6[2];
	a->w[3] = ctx->user_ip6[3];
}

SEC("cgroup/connect6")
int vg_connect6(struct bpf_sock_addr *ctx)
{
	struct attempt at = { .hook = VG_HOOK_CONNECT6 };

	addr_from_user_ip6(&at.dst, ctx);
	return on_addr_call(ctx, &at);
}

SEC("cgroup/sendmsg4")
int vg_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct attempt at = { .hook = VG_HOOK_SENDMSG4 };

	vg_addr_from_v4(&at.dst, ctx->user_ip4);
	return on_addr_call(ctx, &at);
}

SEC("cgroup/sendmsg6")
int vg_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct attempt at = { .hook = VG_HOOK_SENDMSG6 };

	addr_from_user_ip6(&at.dst, ctx);
	return on_addr_call(ctx, &at);
}

SEC("cgroup/setsockopt")
int vg_setsockopt(struct bpf_sockopt *ctx)
{
	/* Fields are read once: the verifier refuses ctx accesses through a pointer clang has offset. */
	int level = ctx->level, optname = ctx->optname, optlen = ctx->optlen;
	enum option_kind kind = option_kind(level, optname);
	struct attempt at = { .hook = VG_HOOK_SETSOCKOPT };
	__u64 id = guard_cgroup_id;
	struct vg_policy *p;

	/*
	 * 0 hands the kernel the caller's own value: past a page the program
	 * sees a truncated copy, and an option it does not judge then costs no
	 * kernel copy of its value (and no map lookup). One it judges keeps the
	 * copy judged, so that a thread cannot change it in between.
	 */
	if (optlen > PAGE_SIZE_MIN || kind == OPT_OTHER)
		ctx->optlen = 0;
	if (kind == OPT_OTHER)
		return 1;
	p = bpf_map_lookup_elem(&vg_policy, &id);
	if (p && optlen <= PAGE_SIZE_MIN &&
	    (kind == OPT_STEER ? !steers_off_tunnel(ctx, level, optname, optlen, p) :
				 joins_on_tunnel(ctx, level, optname, optlen, p)))
		return 1;
	at.proto = ctx->sk ? ctx->sk->protocol : 0;
	return deny(&at, !p ? VG_R_NO_POLICY : kind == OPT_JOIN ? VG_R_MULTICAST : VG_R_SOCKOPT);
}

SEC("cgroup/sock_create")
int vg_sock_create(struct bpf_sock *sk)
{
	struct attempt at = { .hook = VG_HOOK_SOCK_CREATE };
	__u64 id = guard_cgroup_id;

	if (sk->type == SOCK_RAW) {
		at.proto = sk->protocol;
		return deny(&at, VG_R_RAW);
	}
	/*
	 * Never true (the loader sets the id), so the verifier drops it; but the
	 * program now holds vg_guards and vg_abi, which no program reads: they
	 * live as long as the attachments, pins or not (user/core/pins.c).
	 */
	if (guard_cgroup_id == 0 && (bpf_map_lookup_elem(&vg_guards, &id) ||
				     bpf_map_lookup_elem(&vg_abi, &(__u32){ 0 })))
		return 0;
	/* Nested guards: the innermost runs first, and its mark stays. */
	if (guard_fwmark && !sk->mark)
		sk->mark = guard_fwmark;
	return 1;
}

/*
 * Copies len bytes at off from the network header on. A cgroup_skb program
 * sees the packet from its network header, and a local socket's headers are
 * in the linear part: it reads them in place, without a helper call (in_place).
 * At tc a link-layer header comes first: the helper finds the network header.
 */
static __always_inline int load_net(struct __sk_buff *skb, bool in_place, __u32 off, void *to,
				    __u32 len)
{
	if (in_place) {
		/* The mask bounds the offset for the verifier; headers end far before. */
		void *p = (void *)(long)skb->data + (off & 0xff);

		if (p + len <= (void *)(long)skb->data_end) {
			__builtin_memcpy(to, p, len);
			return 0;
		}
	}
	return bpf_skb_load_bytes_relative(skb, off, to, len, BPF_HDR_START_NET);
}

/* Reads destination, protocol and destination port of an outgoing IP packet. */
static __always_inline int parse_packet(struct __sk_buff *skb, bool in_place, struct attempt *at,
					struct vg_addr *src)
{
	__u32 l4_off;

	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		if (load_net(skb, in_place, 0, &ip, sizeof(ip)))
			return -1;
		vg_addr_from_v4(&at->dst, ip.daddr);
		if (src)
			vg_addr_from_v4(src, ip.saddr);
		at->proto = ip.protocol;
		if (ip.frag_off & bpf_htons(IP_OFFSET_MASK))
			return 0; /* later fragments carry no ports */
		l4_off = ip.ihl * 4;
	} else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (load_net(skb, in_place, 0, &ip6, sizeof(ip6)))
			return -1;
		__builtin_memcpy(&at->dst, &ip6.daddr, sizeof(at->dst));
		if (src)
			__builtin_memcpy(src, &ip6.saddr, sizeof(*src));
		/* Extension headers leave proto unknown: no port, so DNS rules see none. */
		at->proto = ip6.nexthdr;
		l4_off = sizeof(ip6);
	} else {
		return -1;
	}
	if (at->proto == IPPROTO_TCP || at->proto == IPPROTO_UDP) {
		__u16 ports[2];

		if (load_net(skb, in_place, l4_off, ports, sizeof(ports)))
			return -1;
		at->dport = ports[1];
	}
	return 0;
}

SEC("cgroup_skb/egress")
int vg_egress(struct __sk_buff *skb)
{
	struct attempt at = { .hook = VG_HOOK_EGRESS, .ifindex = skb->ifindex };
	struct verdict v;
	__u32 reason;

	if (skb->ifindex == LOOPBACK_IFINDEX)
		return 1;
	if (parse_packet(skb, true, &at, NULL))
		return deny(&at, VG_R_NO_POLICY);
	at.netns_cookie = bpf_get_netns_cookie(skb);
	reason = judge(&at, &v);
	if (!reason && v.tun_ifindex && skb->ifindex != v.tun_ifindex)
		reason = VG_R_OFF_TUNNEL;
	return reason ? deny(&at, reason) : 1;
}

/*
 * tc egress on the tunnel namespace's other interfaces: packets that no
 * socket hook of the guard saw (resets the kernel sends for a socket, packets
 * of sockets created before the guard) must not leave with the tunnel's
 * address or from the guard's cgroup.
 */
SEC("tc")
int vg_tc_egress(struct __sk_buff *skb)
{
	struct attempt at = { .hook = VG_HOOK_TC, .ifindex = skb->ifindex };
	__u64 id = guard_cgroup_id;
	struct vg_policy *p;
	struct vg_tunnel *tun;
	struct vg_addr src;

	/* The guard's own packets: those of its cgroup's sockets, AF_PACKET ones included. */
	bool ours = bpf_skb_ancestor_cgroup_id(skb, guard_cgroup_level) == id;

	p = bpf_map_lookup_elem(&vg_policy, &id);
	/* Rule 2 for what no cgroup hook saw: no policy, or headers it cannot read. */
	if (parse_packet(skb, false, &at, &src) || !p) {
		if (!ours || vg_addr_is_loopback(&at.dst))
			return TCX_NEXT;
		deny(&at, VG_R_NO_POLICY);
		return TC_ACT_SHOT;
	}
	tun = tunnel_of(p);
	if (tun && is_tunnel_addr(tun, &src)) {
		deny(&at, VG_R_TUNNEL_SRC);
		return TC_ACT_SHOT;
	}
	if (!ours || vg_addr_is_loopback(&at.dst) || in_allowed(p, &at.dst))
		return TCX_NEXT;
	deny(&at, VG_R_OFF_TUNNEL);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
