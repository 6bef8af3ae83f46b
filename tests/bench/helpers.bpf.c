// SPDX-License-Identifier: GPL-2.0
/*
 * helpers.bpf.c - what one helper call or map access costs on this machine,
 * each in isolation: a cgroup_skb program per operation, run by
 * BPF_PROG_TEST_RUN (the kernel hands it an skb with a socket of its own)
 * doing the operation `loops` times in a loop: LOOPS for its price in a
 * tight loop, 1 for its price once per system call, as a hook pays it;
 * tests/bench/helpers.c subtracts the empty program. The operations are the
 * ones of vpnguard's programs (bpf/vpnguard.bpf.c), with maps of the same
 * kinds, key sizes and value sizes, plus lookups in other kinds of map to
 * compare.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "vpnguard.h"

#define LOOPS 1000
#define BPF_SK_STORAGE_GET_F_CREATE 1

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, __u64);
	__type(value, struct vg_policy);
} policy SEC(".maps");

/* The policy in an array instead of a hash: what the lookup's memory costs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vg_policy);
} policy_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, struct vg_tunnel_key);
	__type(value, struct vg_tunnel);
} tunnels SEC(".maps");

/* vg_facts as the programs hold it: one struct per CPU in a plain array (helpers.c sizes it). */
struct facts {
	__u8 lead[64];
	__u32 seq;
	__u32 ifindex;
	__u64 until_ns;
	__u8 syn[48];
	struct vg_policy policy;
	__u8 tail[64];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct facts);
} facts SEC(".maps");

/* The same in a per-CPU array, to compare. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct facts);
} facts_percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
	__uint(max_entries, VG_MAX_GUARDS);
	__type(key, __u32);
	__type(value, struct vg_tundev);
} tundev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, VG_MAX_GUARDS * VG_REASON_SLOTS);
	__type(key, struct vg_counter_key);
	__type(value, struct vg_counter);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} sk_store SEC(".maps");

/* The keys the loader wrote, as the programs look them up. */
const volatile __u64 policy_key = 0;
const volatile __u32 tundev_key = 0;
/* LOOPS, or 1: set by the loader. */
const volatile __u32 loops = LOOPS;
struct vg_tunnel_key tunnel_key = {};

/* What a loop leaves behind, so that the compiler keeps every call. */
__u64 sink;

/* One program per operation: `loops` of it, the loop not unrolled (as the verifier walks it). */
#define BENCH(name, ...)                                                      \
	SEC("cgroup_skb/egress")                                                \
	int name(struct __sk_buff *skb)                                         \
	{                                                                       \
		/* Read once: the verifier refuses ctx loads clang has offset. */ \
		struct bpf_sock *sk0 __attribute__((unused)) = skb->sk;         \
		__u64 acc = 0;                                                  \
									\
		_Pragma("clang loop unroll(disable)")                           \
		for (__u32 i = 0; i < loops; i++) {                             \
			__VA_ARGS__;                                            \
		}                                                               \
		sink = acc;                                                     \
		return 1;                                                       \
	}

BENCH(empty, acc += i; asm volatile("" : "+r"(acc)))
/* A lookup and the first field read, as judge() reads the policy. */
BENCH(hash_lookup_u64, {
	__u64 k = policy_key;
	struct vg_policy *p = bpf_map_lookup_elem(&policy, &k);
	acc += p ? p->n_allow : 0;
})
BENCH(array_lookup, {
	__u32 z = 0;
	struct vg_policy *p = bpf_map_lookup_elem(&policy_array, &z);
	acc += p ? p->n_allow : 0;
})
BENCH(hash_lookup_tunnel_key, acc += bpf_map_lookup_elem(&tunnels, &tunnel_key) != 0)
/* This CPU's facts, their freshness and the policy's first field, as judge() reads them. */
BENCH(cpu_array_lookup, {
	__u32 cpu = bpf_get_smp_processor_id();
	struct facts *f = bpf_map_lookup_elem(&facts, &cpu);
	acc += f ? f->seq + f->until_ns + f->policy.n_allow : 0;
})
BENCH(percpu_array_lookup, {
	__u32 z = 0;
	struct facts *f = bpf_map_lookup_elem(&facts_percpu, &z);
	acc += f ? f->seq + f->until_ns + f->policy.n_allow : 0;
})
BENCH(devmap_hash_lookup, {
	__u32 k = tundev_key;
	acc += bpf_map_lookup_elem(&tundev, &k) != 0;
})
BENCH(percpu_hash_lookup_counter, {
	struct vg_counter_key k = { .cgroup_id = policy_key, .reason = VG_R_DNS };
	acc += bpf_map_lookup_elem(&counters, &k) != 0;
})
BENCH(ktime_get_coarse_ns, acc += bpf_ktime_get_coarse_ns())
BENCH(ktime_get_boot_ns, acc += bpf_ktime_get_boot_ns())
BENCH(ktime_get_ns, acc += bpf_ktime_get_ns())
BENCH(get_netns_cookie, acc += bpf_get_netns_cookie(skb))
BENCH(get_socket_cookie, acc += bpf_get_socket_cookie(skb))
BENCH(sk_fullsock, {
	struct bpf_sock *sk = sk0;
	if (sk)
		acc += bpf_sk_fullsock(sk) != 0;
})
BENCH(sk_storage_get, {
	struct bpf_sock *sk = sk0;
	if (sk && (sk = bpf_sk_fullsock(sk)))
		acc += bpf_sk_storage_get(&sk_store, sk, 0, 0) != 0;
})
BENCH(sk_storage_get_create, {
	struct bpf_sock *sk = sk0;
	if (sk && (sk = bpf_sk_fullsock(sk)))
		acc += bpf_sk_storage_get(&sk_store, sk, 0, BPF_SK_STORAGE_GET_F_CREATE) != 0;
})
BENCH(get_current_pid_tgid, acc += bpf_get_current_pid_tgid())
BENCH(skb_cgroup_id, acc += bpf_skb_cgroup_id(skb))

char LICENSE[] SEC("license") = "GPL";
