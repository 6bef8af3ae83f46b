/* SPDX-License-Identifier: GPL-2.0 */
/* Loader: programs, maps and pins under /sys/fs/bpf/vpnguard. */
#ifndef VG_LOADER_H
#define VG_LOADER_H

#include <stdbool.h>
#include <linux/types.h>
#include "vpnguard.h"
#include "cgroup.h"

#define VG_PIN_ROOT "/sys/fs/bpf/vpnguard"

/* One attach: the same policy for every cgroup. */
struct vg_attach_req {
	const struct vg_cgroup *cgroups;
	int n_cgroups;
	struct vg_policy policy;     /* netns_cookie filled; cgroup_level per guard */
	const char *netns_path;      /* NULL: the caller's; it and each cgroup must pass
					vg_guard_paths_fit */
	int netns_fd;                /* the tunnel's namespace (tunnel mode) */
	struct vg_state state;       /* what a new guard starts with */
	bool keep_state;             /* a guard already attached keeps its state (agent reload) */
};

/* Do the paths fit the guard's record (struct vg_guard_info)? */
bool vg_guard_paths_fit(const char *cgroup_rel, const char *netns_path);

/* Applies every request, all guards or none. Errors are reported on stderr. */
int vg_attach(const struct vg_attach_req *reqs, int n);

/* Writes a guard's state (OPEN/CLOSED and lease); -ENOENT when it is not attached. */
int vg_state_write(__u64 id, const struct vg_state *st);

/* Removes the guards of these cgroup ids, or everything when n == 0. */
int vg_detach(const __u64 *ids, int n);

/* Opens a pinned map by name (vg_policy, ...); -ENOENT when nothing is attached. */
int vg_map_open(const char *name);

/*
 * Makes the tunnel facts and tc links of one guard match what its namespace
 * holds now: used at attach and by the agent when links change.
 */
int vg_guard_refresh(__u64 id, int netns_fd);

/* Mounts bpffs on /sys/fs/bpf when nothing is mounted there. */
int vg_bpffs_ensure(void);

#endif
