/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Which mark and table a guard steers with, and keeping its rules and routes
 * (user/core/steer.c) in step with its policy: made by attach, made again by the
 * agent, retired when a new policy leaves them, removed by detach.
 */
#ifndef VG_STEERING_H
#define VG_STEERING_H

#include <stdbool.h>
#include "txn.h"
#include "vpnguard.h"

/*
 * Fills p->fwmark and p->route_table of a tunnel-mode guard: the ones given,
 * the ones it had (old) in the same namespace, or the first free
 * VG_FWMARK_BASE + n. -EINVAL (named on stderr) when given ones clash with
 * another guard's or a rule of the namespace.
 */
int vg_steering_choose(int policy_fd, __u64 id, int netns_fd, const struct vg_policy *old,
		       struct vg_policy *p);

/*
 * Given marks checked before anything changes: -EINVAL (named on stderr) when
 * another guard of the namespace or one of its rules uses them.
 */
int vg_steering_check(__u64 id, int netns_fd, const struct vg_policy *p);

/* Makes the namespace route p's marked sockets into its tunnel; *made: the mark's rule is new. */
int vg_steering_apply(int netns_fd, const struct vg_policy *p, bool *made);

/* vg_steering_apply inside an attach: a rollback puts old's back, a success retires old's. */
int vg_steering_txn(struct txn *t, int netns_fd, const struct vg_policy *p,
		    const struct vg_policy *old, const struct vg_guard_info *old_info);

/* Takes guard id's rules and routes out of its namespace, while that namespace exists. */
void vg_steering_remove(__u64 id);

/* Opens the namespace a guard was attached for, if it is still the one cookie names. */
int vg_guard_netns_open(const struct vg_guard_info *info, __u64 cookie);

#endif
