/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One agent per pin root: <run dir>/agent.pid, held with flock by the agent
 * (so a stale file of a dead agent means nothing), holding its pid and the
 * path of its log.
 */
#ifndef VG_PIDFILE_H
#define VG_PIDFILE_H

#include <sys/types.h>

/* Takes the pidfile for this process; -EALREADY when another agent holds it, -errno (named). */
int vg_pidfile_take(const char *log_path);

/* Removes the pidfile and lets go of it. */
void vg_pidfile_drop(int fd);

/* The running agent's pid (0: none) and, when log_path is given, its log (malloc'd). */
pid_t vg_pidfile_holder(char **log_path);

#endif
