/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's events log: JSON lines, the only writer. A record is written
 * whole or not at all (a short write on a full disk is cut off again), a
 * record that cannot be written is counted, said once on stderr, and
 * reported by a "log" record once writing works again.
 */
#ifndef VG_LOG_H
#define VG_LOG_H

#include <limits.h>
#include <stdbool.h>
#include <json-c/json.h>
#include "event_fmt.h"

struct vg_log {
	int fd;
	char path[PATH_MAX];
	unsigned long long lost;    /* records not written since the last that was */
};

/* Opens (creates 0600, never through a symlink) path for appending; -errno, named on stderr. */
int vg_log_open(struct vg_log *l, const char *path);

/* Opens the same path again (logrotate moved it); on failure the old one stays. */
void vg_log_reopen(struct vg_log *l);

void vg_log_close(struct vg_log *l);

/* A record with the time and its kind, for the caller to fill. */
struct json_object *vg_log_record(enum vg_record kind);

/* Writes rec as one line. */
void vg_log_write(struct vg_log *l, struct json_object *rec);

#endif
