/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Attachments: a guard's programs on its cgroup and on the other interfaces
 * of its tunnel's namespace (tcx egress), held by the kernel itself
 * (BPF_PROG_ATTACH), not by links: they stay until detach, whatever becomes
 * of the pins, of the bpffs mount or of the agent. A program attached there
 * is the guard's when its name is one of vpnguard's and its read-only data
 * names the guard: known from the kernel alone, so also when no pin is left.
 */
#ifndef VG_ATTACH_H
#define VG_ATTACH_H

#include <linux/types.h>
#include <bpf/bpf.h>

/* Debian 12's uapi headers predate tcx (Linux 6.6); the value is fixed ABI. */
#define VG_BPF_TCX_EGRESS 47

/*
 * The programs' read-only data as the kernel names its map, where the guard's
 * id is in it, and the map layout they were made for (none: layout 1).
 */
#define VG_RODATA_MAP "vpnguard.rodata"
#define VG_RODATA_GUARD_ID_OFF 0
#define VG_RODATA_ABI_OFF 12

/* The cgroup hooks of a guard, the per-packet guarantee first: from its first moment nothing leaks. */
#define VG_N_CGROUP_HOOKS 7
extern const enum bpf_attach_type vg_cgroup_hooks[VG_N_CGROUP_HOOKS];

/*
 * The guard's program attached to target (a cgroup fd, or for
 * VG_BPF_TCX_EGRESS an ifindex in the calling thread's namespace) for type:
 * its fd, -ENOENT when there is none. Programs of another map layout are not
 * counted: they go with their own pins (user/core/migrate.c).
 */
int vg_attached_prog(int target, enum bpf_attach_type type, __u64 id);

/*
 * Attaches prog_fd to target for type, in place of the guard's program of
 * that type if one is there (atomically: no moment with neither). *old_fd
 * gets the replaced program (-1: none), for a rollback; the caller closes it.
 */
int vg_attach_prog(int target, enum bpf_attach_type type, int prog_fd, __u64 id, int *old_fd);

/* Takes prog_fd off target (type); a program already gone is not an error. */
int vg_detach_prog(int target, enum bpf_attach_type type, int prog_fd);

/* Takes the guard's program of type off target, if it has one there. */
int vg_detach_guard(int target, enum bpf_attach_type type, __u64 id);

/* The ids of the maps a program uses, at most max; returns how many or -errno. */
int vg_prog_maps(int prog_fd, __u32 *ids, __u32 max);

#endif
