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

/*
 * vg_scan, and ghosts: processes of guarded cgroups named for a container
 * that the engine (DOCKER_HOST, else the default socket) does not run. The
 * engine is asked only when a guarded cgroup names a container, and that
 * blocks (the client's 2 s connect, 10 s answer): not for the agent's loop.
 * Then *out also has "engine": {"socket", "running": N} or, when it could not
 * be asked, {"socket", "error"} and "note" (a sentence for people): no ghosts
 * were looked for, and that is not an error.
 */
int vg_scan_docker(struct json_object **out);

#endif
