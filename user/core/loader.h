/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Loader: a guard's programs (one copy per guard, its cgroup id in read-only
 * data) and the maps they share, pinned under the pin root (paths.h);
 * attach, refresh and detach.
 */
#ifndef VG_LOADER_H
#define VG_LOADER_H

#include <stdbool.h>
#include <linux/types.h>
#include "vpnguard.h"
#include "maps.h"
#include "cgroup.h"
#include "paths.h"

#define VG_PIN_ROOT vg_pin_root()

/* One attach: the same policy for every cgroup. */
struct vg_attach_req {
	const struct vg_cgroup *cgroups;
	int n_cgroups;
	struct vg_policy policy;     /* netns_cookie filled; fwmark and table 0 unless given */
	const char *netns_path;      /* NULL: the caller's; it and each cgroup must pass
					vg_guard_paths_fit */
	int netns_fd;                /* the tunnel's namespace (tunnel mode) */
	struct vg_state state;       /* what a new guard starts with */
	bool keep_state;             /* a guard already attached keeps its state (agent reload) */
};

/* The maps pinned under the pin root. */
extern const char *const vg_map_names[];
extern const int vg_n_map_names;

/* Do the paths fit the guard's record (struct vg_guard_info)? */
bool vg_guard_paths_fit(const char *cgroup_rel, const char *netns_path);

/*
 * Applies every request, all guards or none; pins of the first release are
 * taken over first (migrate.h). Errors are reported on stderr.
 */
int vg_attach(const struct vg_attach_req *reqs, int n);

/* vg_attach on pins of this layout (or none), for the migration. */
int vg_attach_requests(const struct vg_attach_req *reqs, int n);

/* Removes the guards of these cgroup ids, or everything when n == 0. */
int vg_detach(const __u64 *ids, int n);

/* The guard whose record names this cgroup path (as --cgroup takes it), even if it is gone. */
int vg_guard_find(const char *arg, __u64 *id);

/* Unpins the maps and removes the pin root once no guard is left. */
void vg_remove_root_if_empty(void);

/*
 * Makes the tunnel facts, steering and tc programs of one guard match what
 * its namespace holds now: used by the agent when links or rules change.
 */
int vg_guard_refresh(__u64 id, int netns_fd);

/* Takes the guard's tc programs off every interface of a namespace. */
int vg_tc_detach_guard(int netns_fd, __u64 id);

#endif
