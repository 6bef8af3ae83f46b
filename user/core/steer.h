/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Steering: the policy routing that takes a guard's marked sockets into its
 * tunnel, in the tunnel's namespace, over netlink (vpnguard.h, "Steering").
 */
#ifndef VG_STEER_H
#define VG_STEER_H

#include <stdbool.h>
#include <linux/types.h>
#include "policy.h"

/* What one guard needs routed. */
struct vg_steer {
	__u32 fwmark;
	__u32 table;
	__u32 tun_ifindex;              /* 0: the tunnel is down or gone (no route to it yet) */
	struct vg_prefix4 allow[VG_MAX_ALLOW];
	int n_allow;
};

/*
 * Makes the namespace hold exactly the guard's rules and routes: allow rules
 * that the policy dropped are removed. *made_mark_rule: the mark's rule was
 * not there before (a new guard, for a rollback to remove).
 */
int vg_steer_apply(int netns_fd, const struct vg_steer *s, bool *made_mark_rule);

/* Removes every rule of the mark at vpnguard's priorities, and table's default routes. */
int vg_steer_remove(int netns_fd, __u32 fwmark, __u32 table);

/* Does any rule of the namespace use this mark or look up this table? */
int vg_steer_taken(int netns_fd, __u32 fwmark, __u32 table, bool *taken);

#endif
