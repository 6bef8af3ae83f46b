/* SPDX-License-Identifier: GPL-2.0 */
/*
 * `vpnguard-bpf report`: the agent's log over a window of time, per guard.
 * Pure: lines of the log in, one JSON report out (and its text for a person);
 * user/cli/report_cmd.c reads the files and posts. The records and their
 * fields are docs/design.md's ("The agent").
 *
 * Per guard (by its "guard" name; blocked records, which carry only the
 * cgroup, are put with the guard whose cgroups name it):
 *  - time open, closed and unknown in [from, to]: a state record says the
 *    state; a probe record that passed means open and one that saw a wrong
 *    address or gluetun not running means closed (either would have been a
 *    state record otherwise); a failed probe says nothing. From a tunnel_down
 *    record that names the guard to its tunnel_up the guard is closed
 *    whatever those say (the kernel denies everything without the tunnel):
 *    tunnel_down_s is that part of closed_s. The state before the first
 *    record the log has is unknown; after the last, it lasts to `to`.
 *    protected_pct is open / (open + closed): the share of the known time in
 *    which the checks passed and traffic went out by the tunnel.
 *  - each state change, the checks by why, the addresses they saw, and
 *    whether one was a --real-ip (why real_ip): a leak.
 *  - blocked attempts by reason, by comm, and the 10 commonest destinations.
 * Besides: tunnel, docker, reload, scan, pins and log records counted.
 *
 * Lines that are no record (not a JSON object, no event, no readable time)
 * are skipped and counted as garbage; a state or probe record older than the
 * guard's last one (the clock stepped back) is skipped and counted as
 * unordered; records after `to` are skipped and counted as outside.
 */
#ifndef VG_LEAK_REPORT_H
#define VG_LEAK_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>
#include "event_fmt.h"

/* The changes kept per guard: the latest; older ones are counted as changes_omitted. */
#define VG_REPORT_MAX_CHANGES 100
#define VG_REPORT_TOP_DESTINATIONS 10

struct vg_leak_report;

/* A report of the window [from_ns, to_ns] (wall clock, ns since 1970); NULL on no memory. */
struct vg_leak_report *vg_leak_report_new(int64_t from_ns, int64_t to_ns);
void vg_leak_report_free(struct vg_leak_report *r);

/* One line of the log, len bytes, with or without its newline; the lines in file order. */
void vg_leak_report_line(struct vg_leak_report *r, const char *line, size_t len);

/* One record already parsed (a line's JSON; anything else counts as garbage). */
void vg_leak_report_record(struct vg_leak_report *r, struct json_object *rec);

/* A line the reader could not take whole (longer than any record): counted as garbage. */
void vg_leak_report_garbage(struct vg_leak_report *r);

/* The report as one JSON object (a new reference; the caller may add to it); NULL on no memory. */
struct json_object *vg_leak_report_result(struct vg_leak_report *r);

/* Did a check in the window see a real address? */
bool vg_leak_report_leaked(struct json_object *report);

/* The report for a person, lines each ending in a newline, log text escaped; malloc'd. */
char *vg_leak_report_text(struct json_object *report);

/* A one-line summary for a notification's title and message (escaped). */
void vg_leak_report_summary(struct json_object *report, char *buf, size_t len);

/* A length of time for a person: "2d 3h", "1h 5m", "42s", "0.250s". */
void vg_format_span(double seconds, char *buf, size_t len);

#endif
