/* SPDX-License-Identifier: GPL-2.0 */
/* The subcommands, one file each (<name>_cmd.c); each returns the process's exit status. */
#ifndef VG_COMMANDS_H
#define VG_COMMANDS_H

#include <stdbool.h>
#include "args.h"

/* The exit statuses of docs/design.md; scan's VG_SCAN_EXIT_FOUND (3) is the one more. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

int vg_cmd_attach(const struct vg_options *o);
int vg_cmd_detach(const struct vg_options *o);
/* Every guard and its counters, from the pinned maps. */
int vg_cmd_status(bool json);
/* 0: the guard (a cgroup, or a [guard NAME] of the default config) is open; 1: it is not; 2: no such guard. */
int vg_cmd_status_check(const char *guard, bool json);
/* 0: the host has what the kill switch needs; 1: a check failed. */
int vg_cmd_doctor(bool json);
int vg_cmd_events(bool follow, bool json);
/* 0 nothing found, 1 could not scan, VG_SCAN_EXIT_FOUND. */
int vg_cmd_scan(bool json);
/* 0 no leak seen, 1 could not read the log or post, VG_REPORT_EXIT_LEAK. */
#define VG_REPORT_EXIT_LEAK 3
int vg_cmd_report(const struct vg_options *o);

#endif
