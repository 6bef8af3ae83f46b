/* SPDX-License-Identifier: GPL-2.0 */
/* cgroup v2 discovery: where it is mounted, and what a --cgroup names. */
#ifndef VG_CGROUP_H
#define VG_CGROUP_H

#include <limits.h>
#include <stddef.h>
#include <linux/types.h>

struct vg_cgroup {
	char path[PATH_MAX];   /* absolute directory */
	char rel[PATH_MAX];    /* below the cgroup2 mount, starting with '/' */
	__u64 id;              /* inode number = kernel cgroup id */
	__u32 level;           /* 0 for the root */
};

/* Depth of a cgroup below the root, from its path below the mount ("/" is 0). */
__u32 vg_cgroup_level(const char *rel);

/* The first cgroup2 mount point (/sys/fs/cgroup or /sys/fs/cgroup/unified...). */
int vg_cgroup2_mount(char *buf, size_t len);

/*
 * Resolves a --cgroup argument: a cgroup v2 directory as given, or a path
 * relative to the cgroup2 mount (also when written below /sys/fs/cgroup on a
 * hybrid layout). Returns -ENOENT/-ENOTDIR with a message in err.
 */
int vg_cgroup_resolve(const char *arg, struct vg_cgroup *cg, char *err, size_t errlen);

/*
 * The cgroup v2 a process is in, from the "0::" line of /proc/PID/cgroup:
 * what the kernel says, whatever a container engine was asked for.
 */
int vg_cgroup_of_pid(int pid, struct vg_cgroup *cg, char *err, size_t errlen);

#endif
