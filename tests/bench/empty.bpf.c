// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of a guard on this machine: a program at each hook vpnguard uses that allows
 * everything at once (tests/bench/compare_builds.py --floor). What vpnguard costs above these
 * is its rules; what these cost above no program is the kernel's path into a program.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("cgroup/sock_create")
int floor_sock_create(struct bpf_sock *sk)
{
	return 1;
}

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/connect6")
int floor_connect6(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg4")
int floor_sendmsg4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("cgroup/sendmsg6")
int floor_sendmsg6(struct bpf_sock_addr *ctx)
{
	return 1;
}

/* As vg_setsockopt does for an option it does not judge: the kernel keeps the caller's value. */
SEC("cgroup/setsockopt")
int floor_setsockopt(struct bpf_sockopt *ctx)
{
	ctx->optlen = 0;
	return 1;
}

SEC("cgroup_skb/egress")
int floor_egress(struct __sk_buff *skb)
{
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
