/* SPDX-License-Identifier: GPL-2.0 */
/* Reading /proc/PID/{cgroup,stat,status} text: pure, unit-tested on fixtures. */
#ifndef VG_PROC_PARSE_H
#define VG_PROC_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define VG_CAP_NET_RAW 13

/*
 * The cgroup v2 path of a process: the "0::" line of /proc/PID/cgroup (the
 * one line a pure v2 system has, the last one of a hybrid system), relative
 * to the cgroup2 mount as the reader's cgroup namespace sees it. -ENOENT
 * when there is no such line (no cgroup v2 at all), -ENAMETOOLONG.
 */
int vg_proc_cgroup_v2(const char *text, char *rel, size_t len);

/*
 * comm and start time (field 22, clock ticks since boot) of /proc/PID/stat.
 * comm may hold spaces and parentheses: it runs to the last ')'.
 */
int vg_proc_stat(const char *text, char *comm, size_t commlen, uint64_t *start);

/* A capability set line of /proc/PID/status ("CapPrm:", "CapEff:", ...). */
int vg_proc_caps(const char *text, const char *field, uint64_t *caps);

#endif
