// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <unistd.h>
#include "maps.h"
#include "paths.h"

static const char *const names[] = {
	[VG_MAP_ABI] = "vg_abi",
	[VG_MAP_POLICY] = "vg_policy",
	[VG_MAP_STATE] = "vg_state",
	[VG_MAP_GUARDS] = "vg_guards",
	[VG_MAP_TUNNELS] = "vg_tunnels",
	[VG_MAP_TUNDEV] = "vg_tundev",
	[VG_MAP_COUNTERS] = "vg_counters",
	[VG_MAP_RATELIMIT] = "vg_ratelimit",
	[VG_MAP_EVENTS] = "vg_events",
};

const char *vg_map_name(enum vg_map m)
{
	return names[m];
}

int vg_map_open(enum vg_map m)
{
	char path[PATH_MAX];
	int fd = bpf_obj_get(vg_pin_path(path, sizeof(path), names[m]));

	return fd < 0 ? -errno : fd;
}

int vg_map_read(enum vg_map m, const void *key, void *val)
{
	int fd = vg_map_open(m), err;

	if (fd < 0)
		return fd;
	err = bpf_map_lookup_elem(fd, key, val) ? -errno : 0;
	close(fd);
	return err;
}

int vg_state_write(__u64 id, const struct vg_state *st)
{
	int fd = vg_map_open(VG_MAP_STATE);
	int err;

	if (fd < 0)
		return fd;
	/* BPF_EXIST: a guard detached meanwhile is not brought back half-made. */
	err = bpf_map_update_elem(fd, &id, st, BPF_EXIST) ? -errno : 0;
	close(fd);
	return err;
}
