// SPDX-License-Identifier: GPL-2.0
/* vpnguard BPF programs: the rules are in vpnguard.h. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "vpnguard.h"

/* uapi values vmlinux.h cannot carry (they are macros). */
#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define SOCK_RAW 3
#define SOL_SOCKET 1
#define SOL_IP 0
#define SOL_IPV6 41
#define SO_BINDTODEVICE 25
#define SO_MARK 36
#define SO_BINDTOIFINDEX 62
#define IP_MULTICAST_IF 32
#define IP_ADD_MEMBERSHIP 35
#define IP_ADD_SOURCE_MEMBERSHIP 39
#define MCAST_JOIN_GROUP 42
#define MCAST_JOIN_SOURCE_GROUP 46
#define IP_UNICAST_IF 50
#define IPV6_MULTICAST_IF 17
#define IPV6_ADD_MEMBERSHIP 20
#define IPV6_JOIN_ANYCAST 27
#define IPV6_UNICAST_IF 76
#define LOOPBACK_IFINDEX 1
#define IP_OFFSET_MASK 0x1fff
#define PAGE_SIZE_MIN 4096
#define TCX_NEXT -1
#define TC_ACT_SHOT 2
#define BPF_SK_STORAGE_GET_F_CREATE 1
/* Keeps the compiler from moving stores across it; this CPU sees them in order. */
#define barrier() asm volatile("" ::: "memory")

/* Set by the loader before load: which guard this copy of the programs serves. */
const volatile __u64 guard_cgroup_id = 0;
const volatile __u32 guard_cgroup_level = 0;
/* Never read here: it tells the loader which map layout an attached program was made for. */
const volatile __u32 guard_abi = VG_ABI_VERSION;
/* The guard's policy.fwmark, so that marking a socket needs no lookup; a new mark means new programs. */
const volatile __u32 guard_fwmark = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, __u64);
	__type(value, struct vg_policy);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_policy SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, __u64);
	__type(value, struct vg_state);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, __u64);
	__type(value, struct vg_guard_info);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_guards SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, struct vg_tunnel_key);
	__type(value, struct vg_tunnel);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_tunnels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, __u32);
	__type(value, struct vg_tundev);
	/*
	 * Pinned by the loader, not by name: the kernel marks device maps
	 * read-only to programs, a flag libbpf's reuse check then misses.
	 */
} vg_tundev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, VG_MAX_GUARDS * VG_REASON_SLOTS);
	__type(key, struct vg_counter_key);
	__type(value, struct vg_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VG_MAX_GUARDS * VG_REASON_SLOTS);
	__type(key, struct vg_counter_key);
	__type(value, struct vg_rate);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_ratelimit SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vg_abi);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_abi SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} vg_events SEC(".maps");

/*
 * What sendmsg() last allowed on an unconnected UDP socket: the IPv4
 * destination it judged and the tunnel the datagram must leave by (0: not a
 * tunnel verdict). The egress program then need not judge that datagram a
 * second time (egress_judged_at_sendmsg). Not pinned: every guard's copy of
 * the programs has its own, so nested guards never read each other's verdicts.
 */
struct vg_sk_verdict {
	__u32 daddr;
	__u32 ifindex;
};

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct vg_sk_verdict);
} vg_sk_verdict SEC(".maps");

/*
 * The guard-wide facts of rules 7 and 8, per CPU (vpnguard.h, "Facts read
 * again"): the guard was open, and in tunnel mode the tunnel the policy names
 * ({netns_cookie, tunnel}) had ifindex, until until_ns on the coarse clock.
 * Only this CPU writes it, but a program can interrupt another one's write
 * (softirq, preemption): writing marks it incomplete, so that the interrupting
 * program neither reads it nor writes it. Not pinned: one per copy of the
 * programs, that is per guard.
 */
struct vg_facts {
	__u64 until_ns;
	__u64 netns_cookie;
	__u64 tunnel[VG_IFNAMSIZ / 8];
	__u32 ifindex;  /* 0: read in gateway mode */
	__u32 writing;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vg_facts);
} vg_facts SEC(".maps");

/* What a hook knows about the attempt it judges. */
struct attempt {
	struct vg_addr dst;
	__u16 dport;
	__u8 proto;
	__u8 hook;
	__u32 ifindex;
	__u64 netns_cookie;
};

static __always_inline bool port_is_dns(__u8 proto, __u16 dport)
{
	if (proto != IPPROTO_UDP && proto != IPPROTO_TCP)
		return false;
	return dport == bpf_htons(53) || dport == bpf_htons(853) ||
	       dport == bpf_htons(5353) || dport == bpf_htons(5355);
}

/* LAN discovery and port mapping: LSD, SSDP/UPnP, NAT-PMP/PCP. */
static __always_inline bool port_is_discovery(__u8 proto, __u16 dport)
{
	return proto == IPPROTO_UDP && (dport == bpf_htons(6771) || dport == bpf_htons(1900) ||
					dport == bpf_htons(5351));
}

static bool in_allowed(const struct vg_policy *p, const struct vg_addr *a)
{
	for (__u32 i = 0; i < VG_MAX_ALLOW; i++) {
		if (i >= p->n_allow)
			break;
		if (vg_cidr_contains(&p->allow[i], a))
			return true;
	}
	return false;
}

static bool is_resolver(const struct vg_policy *p, const struct vg_addr *a)
{
	for (__u32 i = 0; i < VG_MAX_DNS; i++) {
		if (i >= p->n_dns)
			break;
		if (vg_addr_eq(&p->dns[i], a))
			return true;
	}
	return false;
}

static bool is_gateway(const struct vg_policy *p, const struct vg_addr *a, __u16 dport)
{
	for (__u32 i = 0; i < VG_MAX_GW; i++) {
		if (i >= p->n_gw)
			break;
		if (vg_addr_eq(&p->gw[i].addr, a) && (!p->gw[i].port || p->gw[i].port == dport))
			return true;
	}
	return false;
}

static __always_inline struct vg_tunnel *tunnel_of(const struct vg_policy *p)
{
	struct vg_tunnel_key key = vg_tunnel_key_of(p);

	return bpf_map_lookup_elem(&vg_tunnels, &key);
}

static __always_inline bool is_tunnel_addr(const struct vg_tunnel *t, const struct vg_addr *a)
{
	for (__u32 i = 0; i < VG_MAX_TUN_ADDRS; i++) {
		if (i >= t->n_addrs)
			break;
		if (vg_addr_eq(&t->addrs[i], a))
			return true;
	}
	return false;
}

/* The ifindex of tun, 0 when it is down or its device is gone (vg_tundev: the kernel's word). */
static __always_inline __u32 tunnel_ifindex(const struct vg_tunnel *tun)
{
	struct vg_tundev *dev;
	__u32 slot;

	if (!tun || !tun->ifindex)
		return 0;
	slot = tun->slot;
	dev = bpf_map_lookup_elem(&vg_tundev, &slot);
	return dev && dev->ifindex == tun->ifindex ? tun->ifindex : 0;
}

static __always_inline void count(__u32 reason)
{
	struct vg_counter_key key = { .cgroup_id = guard_cgroup_id, .reason = reason };
	struct vg_counter *c = bpf_map_lookup_elem(&vg_counters, &key);

	if (c) {
		c->denied++;
		return;
	}
	struct vg_counter one = { .denied = 1 };
	/* A racing first insert on another CPU keeps its own per-CPU slot. */
	if (bpf_map_update_elem(&vg_counters, &key, &one, BPF_NOEXIST)) {
		c = bpf_map_lookup_elem(&vg_counters, &key);
		if (c)
			c->denied++;
	}
}

static bool event_budget_left(__u32 reason)
{
	struct vg_counter_key key = { .cgroup_id = guard_cgroup_id, .reason = reason };
	__u64 now = bpf_ktime_get_boot_ns();
	struct vg_rate *r = bpf_map_lookup_elem(&vg_ratelimit, &key);

	if (!r) {
		struct vg_rate first = { .window_start_ns = now, .sent = 1 };

		bpf_map_update_elem(&vg_ratelimit, &key, &first, BPF_ANY);
		return true;
	}
	if (now - r->window_start_ns > VG_EVENT_WINDOW_NS) {
		r->window_start_ns = now;
		r->sent = 1;
		return true;
	}
	/* Racy across CPUs by design: the budget is a flood guard, not a count. */
	if (r->sent >= VG_EVENT_BURST)
		return false;
	r->sent++;
	return true;
}

/* Counts the denial, reports it if the budget allows, returns the verdict 0. */
static __noinline int deny(const struct attempt *at, __u32 reason)
{
	struct vg_event *e;
	__u64 pid_tgid;

	count(reason);
	if (!event_budget_left(reason)) {
		count(VG_R_EVENTS_SUPPRESSED);
		return 0;
	}
	e = bpf_ringbuf_reserve(&vg_events, sizeof(*e), 0);
	if (!e) {
		count(VG_R_EVENTS_LOST);
		return 0;
	}
	pid_tgid = bpf_get_current_pid_tgid();
	e->time_ns = bpf_ktime_get_boot_ns();
	e->guard_cgroup = guard_cgroup_id;
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->pid = pid_tgid >> 32;
	e->uid = (__u32)bpf_get_current_uid_gid();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->hook = at->hook;
	e->reason = reason;
	e->family = vg_addr_is_v4(&at->dst) ? AF_INET : AF_INET6;
	e->proto = at->proto;
	e->dport = at->dport;
	e->pad = 0;
	e->ifindex = at->ifindex;
	e->pad2 = 0;
	e->dst = at->dst;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/*
 * Rules 7 and 8 from the maps: the guard's state with its lease, and in
 * tunnel mode the tunnel's ifindex (*ifindex, else 0). An open guard is kept
 * in f from coarse, the coarse clock read before the boot clock: for
 * VG_FACTS_TTL_NS, and never within VG_TICK_MAX_NS of the lease deadline, the
 * most the coarse clock lags. A denial clears f, so it is read again next time.
 */
static __noinline __u32 read_facts(const struct vg_policy *p, struct vg_facts *f, __u64 coarse,
				   __u32 *ifindex)
{
	__u64 id = guard_cgroup_id, now = bpf_ktime_get_boot_ns(), keep = VG_FACTS_TTL_NS, left;
	struct vg_state *st = bpf_map_lookup_elem(&vg_state, &id);
	__u32 reason = 0;

	*ifindex = 0;
	/* No state yet means the agent never opened the guard. */
	if (!st || st->state != VG_STATE_OPEN ||
	    (st->lease_deadline_ns && now > st->lease_deadline_ns))
		reason = VG_R_CLOSED;
	else if (p->mode == VG_MODE_TUNNEL && !(*ifindex = tunnel_ifindex(tunnel_of(p))))
		reason = VG_R_NO_TUNNEL;
	if (!reason && st && st->lease_deadline_ns) {
		left = st->lease_deadline_ns - now;
		if (left < keep + VG_TICK_MAX_NS)
			keep = left > VG_TICK_MAX_NS ? left - VG_TICK_MAX_NS : 0;
	}
	if (f && !f->writing) {
		f->writing = 1;
		barrier();
		f->until_ns = reason || !keep ? 0 : coarse + keep;
		f->netns_cookie = p->netns_cookie;
		__builtin_memcpy(f->tunnel, p->tunnel, VG_IFNAMSIZ);
		f->ifindex = *ifindex;
		barrier();
		f->writing = 0;
	}
	return reason;
}

/* Are f's facts complete, fresh, and about the tunnel p names now? */
static __always_inline bool facts_hold(const struct vg_facts *f, const struct vg_policy *p,
				       __u64 coarse)
{
	__u64 tunnel[VG_IFNAMSIZ / 8];

	__builtin_memcpy(tunnel, p->tunnel, VG_IFNAMSIZ);
	return !f->writing && coarse < f->until_ns && f->netns_cookie == p->netns_cookie &&
	       f->tunnel[0] == tunnel[0] && f->tunnel[1] == tunnel[1] &&
	       (p->mode != VG_MODE_TUNNEL || f->ifindex);
}

/* An allowed attempt: the tunnel it must use (0: any interface). */
struct verdict {
	__u32 tun_ifindex;
};

/*
 * Rules 1-8 of vpnguard.h without the interface part, which differs per hook.
 * Returns a reason (> 0) to deny, or 0 with *v filled.
 */
static __always_inline __u32 judge(const struct attempt *at, struct verdict *v)
{
	__u64 id = guard_cgroup_id, coarse;
	struct vg_policy *p = bpf_map_lookup_elem(&vg_policy, &id);
	__u32 zero = 0, ifindex;
	struct vg_facts *f;
	__u32 reason;

	v->tun_ifindex = 0;
	if (!p)
		return vg_addr_is_loopback(&at->dst) ? 0 : VG_R_NO_POLICY;
	if (vg_addr_is_loopback(&at->dst))
		return 0;
	if (p->netns_cookie && at->netns_cookie != p->netns_cookie)
		return VG_R_NETNS;
	if (port_is_dns(at->proto, at->dport) && !is_resolver(p, &at->dst))
		return VG_R_DNS;
	if (in_allowed(p, &at->dst))
		return port_is_discovery(at->proto, at->dport) ? VG_R_DISCOVERY : 0;
	if (!vg_addr_is_v4(&at->dst))
		return VG_R_IPV6;
	f = bpf_map_lookup_elem(&vg_facts, &zero);
	coarse = bpf_ktime_get_coarse_ns();
	if (f && facts_hold(f, p, coarse))
		ifindex = f->ifindex;
	else if ((reason = read_facts(p, f, coarse, &ifindex)))
		return reason;
	if (p->mode == VG_MODE_GATEWAY)
		return is_gateway(p, &at->dst, at->dport) ? 0 : VG_R_NOT_GATEWAY;
	v->tun_ifindex = ifindex;
	return 0;
}

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

/* connect(): the policy routing of the mark takes the socket into the tunnel; nothing is bound. */
static __always_inline int on_connect(struct bpf_sock_addr *ctx, struct attempt *at)
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

/* sendmsg() with an address: judged like connect(), per datagram. */
static __always_inline int on_sendmsg(struct bpf_sock_addr *ctx, struct attempt *at)
{
	/* Read once: the verifier refuses ctx accesses through a pointer clang has offset. */
	struct bpf_sock *sk = ctx->sk;
	struct vg_sk_verdict *sv;
	struct verdict v;
	__u32 reason;

	at->dport = (__u16)ctx->user_port;
	at->proto = IPPROTO_UDP;
	at->netns_cookie = bpf_get_netns_cookie(ctx);
	reason = judge(at, &v);
	if (reason)
		return deny(at, reason);
	mark_for_steering(ctx, sk);
	/*
	 * A tunnel verdict (IPv4 only) for the egress program; any other clears
	 * the socket's last one. No storage (no memory): egress judges in full.
	 */
	sv = bpf_sk_storage_get(&vg_sk_verdict, sk, 0,
				v.tun_ifindex ? BPF_SK_STORAGE_GET_F_CREATE : 0);
	if (sv) {
		sv->daddr = at->dst.w[3];
		sv->ifindex = v.tun_ifindex;
	}
	return 1;
}

SEC("cgroup/connect4")
int vg_connect4(struct bpf_sock_addr *ctx)
{
	struct attempt at = { .hook = VG_HOOK_CONNECT4 };

	vg_addr_from_v4(&at.dst, ctx->user_ip4);
	return on_connect(ctx, &at);
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
	return on_connect(ctx, &at);
}

SEC("cgroup/sendmsg4")
int vg_sendmsg4(struct bpf_sock_addr *ctx)
{
	struct attempt at = { .hook = VG_HOOK_SENDMSG4 };

	vg_addr_from_v4(&at.dst, ctx->user_ip4);
	return on_sendmsg(ctx, &at);
}

SEC("cgroup/sendmsg6")
int vg_sendmsg6(struct bpf_sock_addr *ctx)
{
	struct attempt at = { .hook = VG_HOOK_SENDMSG6 };

	addr_from_user_ip6(&at.dst, ctx);
	return on_sendmsg(ctx, &at);
}

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

	if (level == SOL_SOCKET && optname == SO_BINDTODEVICE)
		return !tun_ifindex || !optval_is_ifname(ctx, p->tunnel);
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
		return !tun_ifindex || v != tun_ifindex; /* SO_BINDTOIFINDEX */
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

SEC("cgroup/setsockopt")
int vg_setsockopt(struct bpf_sockopt *ctx)
{
	/* Fields are read once: the verifier refuses ctx accesses through a pointer clang has offset. */
	int level = ctx->level, optname = ctx->optname, optlen = ctx->optlen;
	enum option_kind kind = option_kind(level, optname);
	struct attempt at = { .hook = VG_HOOK_SETSOCKOPT };
	__u64 id = guard_cgroup_id;
	struct vg_policy *p;

	/* Past a page the program sees a truncated copy; 0 hands the kernel the original. */
	if (optlen > PAGE_SIZE_MIN)
		ctx->optlen = 0;
	/* Every other option passes without a map lookup. */
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

/*
 * The hot path of a torrent client, unconnected UDP: a datagram of such a
 * socket cannot be sent without an address, so sendmsg() has just judged it
 * under the policy of the moment (and facts no older than vpnguard.h allows).
 * It passes if it goes to the destination judged and leaves by the tunnel it
 * was judged for; anything else (another interface, IP options that change
 * the destination, a verdict that was not "tunnel") is judged in full.
 * Connected sockets are judged on every packet, so that CLOSED and policy
 * changes reach connections that exist (CLOSED within the facts' bound).
 */
static __always_inline bool egress_judged_at_sendmsg(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data;
	struct bpf_sock *sk = skb->sk;
	struct vg_sk_verdict *v;

	if (!sk || skb->protocol != bpf_htons(ETH_P_IP) || (void *)(ip + 1) > end)
		return false;
	sk = bpf_sk_fullsock(sk);
	if (!sk || sk->protocol != IPPROTO_UDP || sk->state != BPF_TCP_CLOSE)
		return false;
	v = bpf_sk_storage_get(&vg_sk_verdict, sk, 0, 0);
	return v && v->ifindex == skb->ifindex && v->daddr == ip->daddr;
}

SEC("cgroup_skb/egress")
int vg_egress(struct __sk_buff *skb)
{
	struct attempt at = { .hook = VG_HOOK_EGRESS, .ifindex = skb->ifindex };
	struct verdict v;
	__u32 reason;

	if (skb->ifindex == LOOPBACK_IFINDEX || egress_judged_at_sendmsg(skb))
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

	p = bpf_map_lookup_elem(&vg_policy, &id);
	if (!p || parse_packet(skb, false, &at, &src))
		return TCX_NEXT;
	tun = tunnel_of(p);
	if (tun && is_tunnel_addr(tun, &src)) {
		deny(&at, VG_R_TUNNEL_SRC);
		return TC_ACT_SHOT;
	}
	if (bpf_skb_ancestor_cgroup_id(skb, guard_cgroup_level) != id ||
	    vg_addr_is_loopback(&at.dst) || in_allowed(p, &at.dst))
		return TCX_NEXT;
	deny(&at, VG_R_OFF_TUNNEL);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
