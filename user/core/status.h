/* SPDX-License-Identifier: GPL-2.0 */
/* What the kernel holds, as `status --json` and the agent's /api/v1/status show it. */
#ifndef VG_STATUS_H
#define VG_STATUS_H

#include <json-c/json.h>

/*
 * {"pin_root", "guards": [one object per guard: cgroup, mode, tunnel or gateways, allow, dns,
 * state, lease_left_s, denied by reason, ...]} from the pinned maps (docs/maps.md); 0 or a
 * negative errno, reported.
 */
int vg_status_json(struct json_object **out);

#endif
