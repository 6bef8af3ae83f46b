/* SPDX-License-Identifier: GPL-2.0 */
/* Event records: kernel events to JSON, JSON to a human line, text made safe to show. Pure. */
#ifndef VG_EVENT_FMT_H
#define VG_EVENT_FMT_H

#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include <linux/types.h>
#include "vpnguard.h"

/*
 * The kinds of record of the agent's JSON-lines log, as its "event" field
 * names them (docs/design.md lists their fields). user/agent/log.c is the only
 * writer; `vpnguard-bpf events` reads them back with vg_record_to_line.
 */
enum vg_record {
	VG_REC_BLOCKED,             /* an attempt the kernel refused (vg_event_to_json) */
	VG_REC_TUNNEL_UP,
	VG_REC_TUNNEL_DOWN,
	VG_REC_PROBE,               /* a round that changed nothing but is worth saying */
	VG_REC_STATE,               /* a guard opened or closed */
	VG_REC_RELOAD,
	VG_REC_DOCKER,
	VG_REC_SCAN,                /* an escape the scan found */
	VG_REC_PINS,                /* pins vanished and were made again, or not */
	VG_REC_LOG,                 /* records the log could not take */
};

const char *vg_record_name(enum vg_record kind);

/*
 * The log record of a blocked attempt. boot_to_real_ns is added to the
 * kernel's boot-clock time to get wall-clock time; cgroup is the guard's path
 * (NULL when unknown).
 */
struct json_object *vg_event_to_json(const struct vg_event *e, int64_t boot_to_real_ns,
				     const char *cgroup);

/* ISO 8601 UTC with milliseconds, e.g. 2026-11-22T10:00:00.123Z. */
void vg_format_time(int64_t real_ns, char *buf, size_t len);

/* The other way: "2026-11-22T10:00:00.123Z" (any number of fraction digits, or none) into ns; -EINVAL otherwise. */
int vg_parse_time(const char *s, int64_t *ns);

/* The string form of rec[key]; NULL when absent or null. */
const char *vg_json_str(struct json_object *rec, const char *key);

/* One line for a person, from any log record, escaped as vg_text_escape does. */
void vg_record_to_line(struct json_object *rec, char *buf, size_t len);

/*
 * Text from the kernel (a comm), Docker (a name), the network (an error) or
 * a file, for a person: printed as it is, a newline forges a line and ESC
 * drives the terminal. s with \n \r \t, a backslash as \\, and any other C0
 * control, DEL, C1 control, bidirectional or line-separator format character
 * and every byte that is not UTF-8 as \xHH per byte; valid UTF-8 text stays.
 * Cut at a whole character or escape to fit len (terminated when len > 0).
 * Returns buf.
 */
char *vg_text_escape(const char *s, char *buf, size_t len);

/* fmt and its arguments, formatted, then escaped: for a line made of text from elsewhere. */
void vg_text_printf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
