/* SPDX-License-Identifier: GPL-2.0 */
/*
 * /metrics: the Prometheus text format (0.0.4) of a status object (the
 * agent's /api/v1/status). Every family is named vpnguard_, in base units,
 * counters end in _total and are the kernel's exact counts; labels are the
 * guard (its cgroup path), a reason, a tunnel or an address seen by the
 * probe - never a destination. Pure.
 */
#ifndef VG_METRICS_H
#define VG_METRICS_H

#include <json-c/json.h>

/* The text, malloc'd (NULL on ENOMEM); now_s: wall clock, for the lease's expiry. */
char *vg_metrics_text(struct json_object *status, const char *version, double now_s);

#endif
