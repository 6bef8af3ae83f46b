/* SPDX-License-Identifier: GPL-2.0 */
/* The pinned maps, by name once: opened by their enum, walked by one loop. */
#ifndef VG_MAPS_H
#define VG_MAPS_H

#include <bpf/bpf.h>

enum vg_map {
	VG_MAP_ABI,
	VG_MAP_POLICY,
	VG_MAP_STATE,
	VG_MAP_GUARDS,
	VG_MAP_TUNNELS,
	VG_MAP_TUNDEV,
	VG_MAP_COUNTERS,
	VG_MAP_RATELIMIT,
	VG_MAP_EVENTS,
};

/* Its pin's name under the pin root (the map's name in the programs). */
const char *vg_map_name(enum vg_map m);

/* The pinned map; -ENOENT when nothing is attached. */
int vg_map_open(enum vg_map m);

/* Reads one entry of a pinned map; -errno. */
int vg_map_read(enum vg_map m, const void *key, void *val);

/* Writes a guard's state (OPEN/CLOSED and lease); -ENOENT when it is not attached. */
struct vg_state;
int vg_state_write(__u64 id, const struct vg_state *st);

/*
 * Every key of the map at fd into key (a variable of the key's type), in the
 * kernel's order. Deleting the current key is safe: the walk goes on from the
 * copy in key (a hash map may then start again from its first key).
 */
#define vg_map_for_each_key(fd, key)                                                     \
	for (__typeof__(key) vg_next_, *vg_prev_ = NULL;                                 \
	     !bpf_map_get_next_key((fd), vg_prev_, &vg_next_) && ((key) = vg_next_, vg_prev_ = &(key));)

#endif
