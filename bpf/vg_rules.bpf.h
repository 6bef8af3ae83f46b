/* SPDX-License-Identifier: GPL-2.0 */
/* The rules of vpnguard.h as one judge, with the counting and the events of a denial. */
#ifndef VG_RULES_BPF_H
#define VG_RULES_BPF_H

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
 * tunnel mode the tunnel's ifindex (*ifindex, else 0). An open guard's facts
 * are kept in f with p, from coarse, the coarse clock read before the boot
 * clock: for VG_FACTS_TTL_NS, and never within VG_TICK_MAX_NS of the lease
 * deadline, the most the coarse clock lags. Facts that deny are not kept, so
 * that a guard that opens again allows at once.
 */
static __noinline __u32 read_facts(const struct vg_policy *p, struct vg_facts *f, __u64 coarse,
				   __u32 *ifindex)
{
	__u64 id = guard_cgroup_id, now = bpf_ktime_get_boot_ns(), keep = VG_FACTS_TTL_NS, left;
	struct vg_state *st = bpf_map_lookup_elem(&vg_state, &id);
	__u32 reason = 0, seq;

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
	/*
	 * The writer claims the entry by moving seq from even to odd in one step:
	 * a task preempted between a plain check and increment could otherwise
	 * write beside another one, and leave seq even over a mixed copy.
	 */
	if (!f)
		return reason;
	seq = f->seq;
	if (!(seq & 1) && __sync_val_compare_and_swap(&f->seq, seq, seq + 1) == seq) {
		barrier();
		f->until_ns = reason || !keep ? 0 : coarse + keep;
		f->ifindex = *ifindex;
		if (f->until_ns)
			__builtin_memcpy(&f->policy, p, sizeof(*p));
		barrier();
		f->seq = seq + 2;
	}
	return reason;
}

/* An allowed attempt: the tunnel it must use (0: any interface). */
struct verdict {
	__u32 tun_ifindex;
};

/*
 * Rules 3-8 of vpnguard.h without the interface part, which differs per hook,
 * under policy p, with rules 7 and 8 already read (facts: a reason, or 0 and
 * the tunnel's ifindex). Returns a reason (> 0) to deny, or 0 with *v filled.
 */
static __always_inline __u32 judge_by(const struct attempt *at, const struct vg_policy *p,
				      __u32 facts, __u32 ifindex, struct verdict *v)
{
	v->tun_ifindex = 0;
	if (p->netns_cookie && at->netns_cookie != p->netns_cookie)
		return VG_R_NETNS;
	if (port_is_dns(at->proto, at->dport) && !is_resolver(p, &at->dst))
		return VG_R_DNS;
	if (in_allowed(p, &at->dst))
		return port_is_discovery(at->proto, at->dport) ? VG_R_DISCOVERY : 0;
	if (!vg_addr_is_v4(&at->dst))
		return VG_R_IPV6;
	if (facts)
		return facts;
	if (p->mode == VG_MODE_GATEWAY)
		return is_gateway(p, &at->dst, at->dport) ? 0 : VG_R_NOT_GATEWAY;
	v->tun_ifindex = ifindex;
	return 0;
}

/*
 * Rules 1-8: from what this CPU kept while it holds (read_facts), else from
 * the pinned maps. Returns a reason (> 0) to deny, or 0 with *v filled.
 */
static __always_inline __u32 judge(const struct attempt *at, struct verdict *v)
{
	__u64 id = guard_cgroup_id, coarse;
	struct vg_facts *f = facts_here();
	struct vg_policy *p;
	__u32 seq = 1, reason, ifindex;

	if (vg_addr_is_loopback(&at->dst))
		return 0;
	if (f)
		seq = f->seq;
	/* After seq: a task preempted in between compares the facts with a time no older than they. */
	barrier();
	coarse = bpf_ktime_get_coarse_ns();
	if (f && !(seq & 1) && coarse < f->until_ns) {
		reason = judge_by(at, &f->policy, 0, f->ifindex, v);
		barrier();
		if (f->seq == seq)
			return reason;
	}
	p = bpf_map_lookup_elem(&vg_policy, &id);
	if (!p)
		return VG_R_NO_POLICY;
	reason = read_facts(p, f, coarse, &ifindex);
	return judge_by(at, p, reason, ifindex, v);
}


#endif
