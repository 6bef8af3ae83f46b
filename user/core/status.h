/* SPDX-License-Identifier: GPL-2.0 */
/* What the kernel holds, as `status --json` and the agent's /api/v1/status show it. */
#ifndef VG_STATUS_H
#define VG_STATUS_H

#include <json-c/json.h>
#include <linux/types.h>

/*
 * {"pin_root", "guards": [one object per guard: cgroup, mode, tunnel or gateways, allow, dns,
 * state, lease_left_s, denied by reason, ...]} from the pinned maps (docs/maps.md); 0 or a
 * negative errno, reported.
 */
int vg_status_json(struct json_object **out);

/*
 * Does the guard of cgroup id let traffic out now, as its programs judge it: OPEN, its lease
 * not run out, and in tunnel mode its tunnel present? 0 yes; 1 no, with why ("tunnel missing"
 * first, then "closed", "lease run out"); -ENOENT when no guard has that cgroup; another -errno (not
 * reported) when the maps cannot be read.
 */
int vg_guard_check(__u64 id, const char **why);

#endif
