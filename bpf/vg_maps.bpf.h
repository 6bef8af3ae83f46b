/* SPDX-License-Identifier: GPL-2.0 */
/* The programs' constants, read-only data and maps (their layout: vpnguard.h), and what a hook judges. */
#ifndef VG_MAPS_BPF_H
#define VG_MAPS_BPF_H

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
 * What this CPU last read of its guard (vpnguard.h, "Facts read again"): the
 * policy, and that the guard was open and, in tunnel mode, that the tunnel the
 * policy names had ifindex, until until_ns on the coarse clock (0: read them
 * again at the next check).
 * Only this CPU writes its entry, but a program can interrupt or preempt
 * another one on it (softirq, a preemptible kernel): a writer claims the
 * entry by an atomic compare-and-exchange of seq from even to odd, writes,
 * and makes seq even again; a check that saw seq odd, or changed before it
 * was done, judges again from the pinned maps.
 * One entry per CPU in a plain array, the CPU's number its key, not a per-CPU
 * map: per-CPU memory costs a TLB miss after each entry into the kernel where
 * page tables are isolated without PCID, and an array's does not (`make
 * bench`, the helper table). The kernel does not align an array's values to
 * cache lines: 64 bytes of padding at both ends keep one CPU's writes off the
 * lines another CPU reads. Not pinned: one per copy of the programs, that is
 * per guard; the loader sizes it to the possible CPUs (a CPU past them
 * always reads the pinned maps).
 */
struct vg_facts {
	__u8 lead[64];
	__u32 seq;
	__u32 ifindex;  /* 0: read in gateway mode */
	__u64 until_ns;
	struct vg_policy policy;
	__u8 tail[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vg_facts);
} vg_facts SEC(".maps");

/* This CPU's facts, or NULL (a CPU the loader did not count). */
static __always_inline struct vg_facts *facts_here(void)
{
	__u32 cpu = bpf_get_smp_processor_id();

	return bpf_map_lookup_elem(&vg_facts, &cpu);
}

/* What a hook knows about the attempt it judges. */
struct attempt {
	struct vg_addr dst;
	__u16 dport;
	__u8 proto;
	__u8 hook;
	__u32 ifindex;
	__u64 netns_cookie;
};

#endif
