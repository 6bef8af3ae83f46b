/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Pins are for people, bpftool and vpnguard's own commands; enforcement is
 * the kernel's attachments (attach.h). When pins vanish (rm -rf, a bpffs
 * mounted in a namespace that went away), they are made again from what the
 * kernel holds: the maps a guard's attached programs use, and the programs.
 */
#ifndef VG_PINS_H
#define VG_PINS_H

#include <stdbool.h>
#include <linux/types.h>

/* Are the pins of guard id there (its directory and the shared maps)? */
bool vg_pins_present(__u64 id);

/*
 * Pins again, where they are missing, the maps and programs of the guard
 * whose programs are attached to cg_fd (its id: id). Returns how many pins
 * it made, -ENOENT when no program of that guard is attached there.
 */
int vg_pins_restore(int cg_fd, __u64 id);

/* vg_pins_restore for every cgroup v2 directory that holds a guard's programs; how many it found. */
int vg_pins_restore_all(void);

/*
 * How many cgroups hold this root's guard programs with their pins gone
 * (enforced, but invisible to status and bpftool until pinned again); the
 * first one's path below the cgroup2 mount in first. Changes nothing.
 */
int vg_pins_missing(char *first, size_t len);

#endif
