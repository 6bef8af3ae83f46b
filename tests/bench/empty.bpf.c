// SPDX-License-Identifier: GPL-2.0
/*
 * The floor of a guard on this machine: a program at each hook vpnguard uses that allows
 * everything at once (tests/bench/compare_builds.py --floor, tests/bench/prog_costs.sh). What
 * vpnguard costs above these is its rules; what these cost above no program is the kernel's
 * path into a program.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

/* fl_HOOK, the name prog_costs.sh and compare_builds.py attach it by (short: the kernel keeps
 * 15 bytes of a program's name, and the programs table shows them). */
#define ALLOW(section, hook, ctx_type)              \
	SEC(section)                                \
	int fl_##hook(ctx_type *ctx)                \
	{                                           \
		return 1;                           \
	}

ALLOW("cgroup/sock_create", sock_create, struct bpf_sock)
ALLOW("cgroup/connect4", connect4, struct bpf_sock_addr)
ALLOW("cgroup/connect6", connect6, struct bpf_sock_addr)
ALLOW("cgroup/sendmsg4", sendmsg4, struct bpf_sock_addr)
ALLOW("cgroup/sendmsg6", sendmsg6, struct bpf_sock_addr)
ALLOW("cgroup_skb/egress", egress, struct __sk_buff)

/* As vg_setsockopt does for an option it does not judge: the kernel keeps the caller's value. */
SEC("cgroup/setsockopt")
int fl_setsockopt(struct bpf_sockopt *ctx)
{
	ctx->optlen = 0;
	return 1;
}

char LICENSE[] SEC("license") = "GPL";
