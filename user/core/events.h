/* SPDX-License-Identifier: GPL-2.0 */
/* Events: drain the pinned ring buffer, write and read the JSON-lines log. */
#ifndef VG_EVENTS_H
#define VG_EVENTS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>
#include <json-c/json.h>

#include "paths.h"

#define VG_RUN_DIR vg_run_dir()
#define VG_AGENT_PIDFILE vg_agent_pidfile()

typedef int (*vg_record_fn)(struct json_object *rec, void *ctx);

struct vg_event_reader;

/* Opens the pinned vg_events ring buffer; each record goes to fn as JSON. */
struct vg_event_reader *vg_event_reader_open(vg_record_fn fn, void *ctx);
int vg_event_reader_fd(struct vg_event_reader *r);
/* Hands every waiting record to fn; returns how many or -errno. */
int vg_event_reader_drain(struct vg_event_reader *r);
int vg_event_reader_poll(struct vg_event_reader *r, int timeout_ms);
void vg_event_reader_close(struct vg_event_reader *r);

/* Wall clock minus boot clock, for stamping kernel times. */
long long vg_boot_to_real_ns(void);

/* The running agent's log, if an agent is running; else NULL. */
char *vg_agent_log_path(void);

/* The running agent's pid; 0 when none runs. */
pid_t vg_agent_pid(void);

#endif
