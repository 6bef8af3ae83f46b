/* SPDX-License-Identifier: GPL-2.0 */
/*
 * vpnguard.h - the contract between the BPF programs and the vpnguard-bpf agent.
 *
 * A guard is one guarded cgroup (key: its cgroup id, the inode number of its
 * cgroup v2 directory) plus one policy. Programs are loaded once per guard with
 * the guard's cgroup id in read-only data, so a packet finds its guard with one
 * hash lookup, whatever the depth of the cgroup that sent it.
 *
 * Rule semantics, evaluated for every connect(), sendmsg() with an address and
 * egress packet of the guarded cgroup and its descendants; the first rule that
 * matches decides:
 *
 *   1. Loopback destination (127.0.0.0/8, ::1): allow, whatever else holds
 *      (no policy included). A packet that leaves by the loopback device is
 *      local too.
 *   2. No policy for the guard (never written, or half-removed), or a packet
 *      whose headers cannot be read: deny (VG_R_NO_POLICY). Fail closed.
 *   3. Socket in another network namespace than policy.netns_cookie (when it
 *      is not 0): deny (VG_R_NETNS). This catches processes of the guarded
 *      cgroup that run in the host's namespace when the tunnel is elsewhere.
 *   4. DNS (UDP or TCP to port 53, 853, 5353 or 5355): deny (VG_R_DNS) unless
 *      the destination is one of policy.dns; an allowed resolver is then
 *      judged by the rules below like any other destination.
 *   5. Destination in policy.allow: allow, on whatever interface routing picks,
 *      except LAN discovery and port mapping (UDP to port 6771 LSD, 1900
 *      SSDP/UPnP, 5351 NAT-PMP/PCP): deny (VG_R_DISCOVERY), they announce the
 *      client to the home router and open ports to the real address. To any
 *      other destination they are ordinary traffic (rules 6-8).
 *   6. IPv6 destination: deny (VG_R_IPV6). IPv4-mapped IPv6 (::ffff:a.b.c.d)
 *      is IPv4: addresses are held as IPv6, IPv4 ones mapped, so both families
 *      meet the same rules with the same values.
 *   7. Guard CLOSED, or its lease (vg_state.lease_deadline_ns, boot clock,
 *      0 = no lease) has run out: deny (VG_R_CLOSED).
 *   8. Tunnel mode: the tunnel (vg_tunnels[{netns cookie, policy.tunnel}])
 *      must be up (ifindex not 0) and still exist (vg_tundev[slot] holds its
 *      ifindex: the kernel removes the entry when the device goes, agent or
 *      not), else deny (VG_R_NO_TUNNEL); a packet must leave by it, else it
 *      is dropped (VG_R_OFF_TUNNEL).
 *      Gateway mode: the destination must be one of policy.gw (port 0 = any
 *      port), else deny (VG_R_NOT_GATEWAY).
 *
 * Steering (tunnel mode): every inet socket created in the guard gets
 * policy.fwmark as its mark (cgroup/sock_create; a socket that predates the
 * guard gets it at its next connect() or sendmsg()), and the tunnel's
 * namespace holds, made by the agent and attach, removed by detach:
 *   ip rule pref VG_RULE_PREF_ALLOW fwmark M to <each IPv4 allow> lookup main
 *   ip rule pref VG_RULE_PREF_MARK  fwmark M lookup T
 *   table T: default dev <tunnel>; unreachable default metric 4294967295
 * so the guard's traffic goes through the tunnel whatever the main table says,
 * and never falls back to it when the tunnel is gone. No socket is bound to
 * the tunnel's ifindex: a recreated tunnel carries existing connections again.
 * The programs above stay the proof: steering only makes allowed traffic work.
 *
 * Facts read again: each CPU judges from what it last read of its guard (the
 * policy, the guard's state, the tunnel the policy names) until VG_FACTS_TTL_NS
 * past that read on the kernel's coarse clock, which moves at each tick (a
 * hash lookup costs more than the rest of a check). So a policy changed or
 * deleted behind vpnguard's back (bpftool), closing a guard, or a tunnel's
 * change reaches every socket, existing connections included, within 1 ms
 * plus a tick (2-11 ms; more where a tick is late). A check that copies a
 * policy while it is being written can keep a mixed copy, for no longer.
 * attach and reload that write over a guard return only once the coarse
 * clock, read after their last write, has moved VG_FACTS_TTL_NS: no CPU then
 * judges by what they replaced (detach takes the programs away). Facts that
 * deny (a closed guard, no tunnel, no policy) are not kept: a guard that opens
 * again allows at once. What is kept stops VG_TICK_MAX_NS before the lease
 * deadline, so a lease runs out on time as long as the coarse clock lags by
 * less than that; after a suspend (the coarse clock stops, the lease's does
 * not), facts kept just before it hold for at most the rest of their 1 ms
 * plus a tick. The judged options of cgroup/setsockopt and the tc program
 * read the policy each time.
 *
 * Beside the rules, cgroup/setsockopt refuses (VG_R_SOCKOPT) SO_BINDTODEVICE,
 * SO_BINDTOIFINDEX, IP_UNICAST_IF, IPV6_UNICAST_IF, IP_MULTICAST_IF and
 * IPV6_MULTICAST_IF naming anything but the tunnel (clearing them is fine),
 * and SO_MARK of anything but the socket's mark; and it refuses multicast
 * group joins (IP_ADD_MEMBERSHIP, IP_ADD_SOURCE_MEMBERSHIP, MCAST_JOIN_GROUP,
 * MCAST_JOIN_SOURCE_GROUP, IPV6_ADD_MEMBERSHIP, IPV6_JOIN_ANYCAST) on any
 * interface but the tunnel, "any interface" included (VG_R_MULTICAST): the
 * kernel sends the IGMP/MLD reports itself, with no socket no later layer
 * sees. In gateway mode there is no tunnel: every join is refused. Raw inet
 * sockets (SOCK_RAW of AF_INET, AF_INET6) are refused at creation (VG_R_RAW).
 * On the tunnel namespace's other interfaces, a tc program drops packets whose
 * source is one of the tunnel's own addresses (VG_R_TUNNEL_SRC), and packets of
 * the guard (VG_R_OFF_TUNNEL) unless rule 1 or 5 allows them; with no policy
 * for the guard, or headers it cannot read, it drops the guard's packets that
 * are not to loopback (VG_R_NO_POLICY, rule 2). tc is the only layer that sees
 * packet sockets (AF_PACKET): no cgroup hook exists for them, so in any other
 * namespace than the tunnel's their packets are judged by nothing (the
 * README's first limit: take CAP_NET_RAW from guarded processes).
 *
 * Every denial increments vg_counters[{guard, reason}] (exact) and emits a
 * struct vg_event on vg_events, at most VG_EVENT_BURST per guard and reason
 * per VG_EVENT_WINDOW_NS (the rest are counted in VG_R_EVENTS_SUPPRESSED).
 *
 * All fields are fixed width with explicit padding; addresses and ports are
 * in network byte order, everything else in host byte order.
 */
#ifndef VPNGUARD_H
#define VPNGUARD_H

#include "vg_addr.h"

#define VG_MAX_ALLOW 16
#define VG_MAX_DNS 8
#define VG_MAX_GW 8
#define VG_MAX_TUN_ADDRS 4
#define VG_MAX_GUARDS 256
#define VG_IFNAMSIZ 16

/* Steering defaults: the n-th guard gets mark and table VG_FWMARK_BASE + n. */
#define VG_FWMARK_BASE 0x76670000u  /* "vg": not wg-quick's or gluetun's 51820, nor Tailscale's 0x40000/0x80000 under 0xff0000 */
#define VG_RULE_PREF_ALLOW 5200     /* before Tailscale's 5210-5270, wg-quick's 32764 and main's 32766 */
#define VG_RULE_PREF_MARK 5201

#define VG_FACTS_TTL_NS 1000000ULL
#define VG_TICK_MAX_NS 10000000ULL  /* CONFIG_HZ=100 */

#define VG_EVENT_BURST 20
#define VG_EVENT_WINDOW_NS 1000000000ULL

enum vg_mode {
	VG_MODE_TUNNEL = 1,
	VG_MODE_GATEWAY = 2,
};

enum vg_guard_state {
	VG_STATE_OPEN = 0,
	VG_STATE_CLOSED = 1,
};

enum vg_reason {
	VG_R_NONE = 0,
	VG_R_NO_POLICY,
	VG_R_NETNS,
	VG_R_DNS,
	VG_R_CLOSED,
	VG_R_IPV6,
	VG_R_NO_TUNNEL,
	VG_R_OFF_TUNNEL,
	VG_R_NOT_GATEWAY,
	VG_R_SOCKOPT,
	VG_R_RAW,
	VG_R_TUNNEL_SRC,
	VG_R_EVENTS_SUPPRESSED,
	VG_R_EVENTS_LOST,
	VG_R_MULTICAST,
	VG_R_DISCOVERY,
	VG_R_MAX,
};

/* Room in the per-reason maps, so that a new reason does not change their size. */
#define VG_REASON_SLOTS 32

enum vg_hook {
	VG_HOOK_CONNECT4 = 1,
	VG_HOOK_CONNECT6,
	VG_HOOK_SENDMSG4,
	VG_HOOK_SENDMSG6,
	VG_HOOK_SETSOCKOPT,
	VG_HOOK_SOCK_CREATE,
	VG_HOOK_EGRESS,
	VG_HOOK_TC,
	VG_HOOK_MAX,
};

struct vg_gateway {
	struct vg_addr addr;
	__u16 port; /* 0: any port */
	__u16 pad[3];
};

/* vg_policy: key __u64 guard cgroup id. Replaced whole, so atomically. */
struct vg_policy {
	__u32 mode;      /* enum vg_mode */
	__u32 n_allow;
	__u32 n_dns;
	__u32 n_gw;
	__u64 netns_cookie;    /* namespace the guard expects; 0: any */
	char tunnel[VG_IFNAMSIZ];
	__u32 fwmark;          /* tunnel mode: the mark of the guard's sockets; 0: none */
	__u32 route_table;     /* tunnel mode: the routing table that mark looks up */
	struct vg_cidr allow[VG_MAX_ALLOW];
	struct vg_addr dns[VG_MAX_DNS];
	struct vg_gateway gw[VG_MAX_GW];
};

/* vg_state: key __u64 guard cgroup id. Written by the agent alone. */
struct vg_state {
	__u32 state;             /* enum vg_guard_state */
	__u32 pad;
	__u64 lease_deadline_ns; /* CLOCK_BOOTTIME; 0: no lease */
};

/* vg_guards: key __u64 guard cgroup id. For people and the agent; no program reads it. */
struct vg_guard_info {
	char cgroup[192];   /* path below the cgroup2 mount */
	char netns[64];     /* the --netns given, "" for the attaching process's */
	__u64 build;        /* which programs are attached: a hash of the BPF object that made them */
};

/*
 * vg_abi (one entry, key 0): the layout of every pinned map. A binary of
 * another ABI does not reuse them as they are; the pins of ABI 1 (the first
 * release) had no vg_abi.
 */
#define VG_ABI_VERSION 2

struct vg_abi {
	__u32 version;
	__u32 pad;
};

/* vg_tunnels: what the agent last saw of a tunnel interface. */
struct vg_tunnel_key {
	__u64 netns_cookie;
	char ifname[VG_IFNAMSIZ];
};

/* The tunnel a tunnel-mode policy names: its device name in the namespace it was attached for. */
static inline struct vg_tunnel_key vg_tunnel_key_of(const struct vg_policy *p)
{
	struct vg_tunnel_key key = { .netns_cookie = p->netns_cookie };

	__builtin_memcpy(key.ifname, p->tunnel, VG_IFNAMSIZ);
	return key;
}

struct vg_tunnel {
	__u32 ifindex;  /* 0: down or gone */
	__u32 n_addrs;
	__u32 slot;     /* its vg_tundev key, 1..VG_MAX_GUARDS */
	__u32 pad;
	struct vg_addr addrs[VG_MAX_TUN_ADDRS];
};

/* vg_tundev (a device map, key: vg_tunnel.slot): the kernel drops an entry when its device goes. */
struct vg_tundev {
	__u32 ifindex;
};

/* vg_counters (per CPU): denials per guard and reason. */
struct vg_counter_key {
	__u64 cgroup_id;
	__u32 reason; /* enum vg_reason */
	__u32 pad;
};

struct vg_counter {
	__u64 denied;
};

/* vg_ratelimit: the event budget of a guard and reason. */
struct vg_rate {
	__u64 window_start_ns;
	__u64 sent;
};

/* vg_events: one record per reported denial. */
struct vg_event {
	__u64 time_ns;       /* CLOCK_BOOTTIME */
	__u64 guard_cgroup;  /* the guard */
	__u64 cgroup_id;     /* the cgroup of the process or socket */
	__u32 pid;           /* 0 when no process context (softirq) */
	__u32 uid;
	char comm[16];
	__u8 hook;           /* enum vg_hook */
	__u8 reason;         /* enum vg_reason */
	__u8 family;         /* AF_INET or AF_INET6, as the destination is judged */
	__u8 proto;          /* IPPROTO_*; 0 if unknown */
	__u16 dport;         /* network byte order */
	__u16 pad;
	__u32 ifindex;       /* egress interface for packets, else 0 */
	__u32 pad2;
	struct vg_addr dst;
};

#endif /* VPNGUARD_H */
