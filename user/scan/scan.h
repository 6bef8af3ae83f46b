/* SPDX-License-Identifier: GPL-2.0 */
/* The namespace-escape scan (rules: scan_logic.h) over /proc and the pinned guards. */
#ifndef VG_SCAN_H
#define VG_SCAN_H

#include <stdbool.h>
#include <json-c/json.h>

/* The scan command's exit status when it found something (0: nothing, 1: could not scan). */
#define VG_SCAN_EXIT_FOUND 3

/*
 * Scans every process now. *out: {"guards": [cgroup...], "processes": N in
 * guards, "findings": [record...]}. Returns 0 or -errno (reported on stderr).
 */
int vg_scan(struct json_object **out);

#endif
