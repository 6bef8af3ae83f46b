/* SPDX-License-Identifier: GPL-2.0 */
/*
 * leak_report.c's inside, shared with leak_report_result.c: the guards the
 * records build, and the helpers that turn them into the report's JSON.
 */
#ifndef VG_LEAK_REPORT_GUARD_H
#define VG_LEAK_REPORT_GUARD_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>
#include "blocked_tally.h"
#include "leak_report.h"

#define NS 1000000000LL  /* ns per second */

enum state { ST_UNKNOWN, ST_OPEN, ST_CLOSED };

struct guard {
	char *name;
	bool cgroup_only;               /* no guard's record names its cgroup: name is that cgroup */
	struct json_object *cgroups;    /* distinct paths, as the records name them */
	enum state state, at_start;     /* state: the last state or check's; at_start: shown() */
	bool no_tunnel;                 /* a tunnel_down record, no tunnel_up since */
	bool started;                   /* a record in the window was seen: at_start is set */
	int64_t since, last_t;
	bool any;                       /* last_t is set */
	int64_t ns[3];                  /* per enum state shown, inside the window */
	int64_t tunnel_ns;              /* of ns[ST_CLOSED], the time without the tunnel */
	struct json_object *changes;
	int64_t changes_omitted;
	int64_t checks;
	struct json_object *by_why;
	double dur_sum, dur_max;
	int64_t dur_n;
	struct json_object *seen;       /* ip -> { ip, checks, first, last, real_ip } */
	bool leak;
	struct vg_blocked b;
};

/* Blocked attempts of one cgroup, put with a guard once every record is read. */
struct cgroup_blocked {
	char *cgroup;
	struct vg_blocked b;
};

struct vg_leak_report {
	int64_t from, to;
	struct guard *g;
	int n_g;
	struct cgroup_blocked *cb;
	int n_cb;
	int64_t lines, records, garbage, unordered, outside;
	int64_t tunnel_down, tunnel_up, scan, pins, log_lost;
	struct json_object *docker, *reload;
	struct json_tokener *tok;       /* one for every line: a new one each costs a third of the time */
};

extern const char *const lr_state_names[];

struct json_object *lr_seconds(int64_t ns);
struct json_object *lr_time_str(int64_t ns);
struct guard *lr_guard_get(struct vg_leak_report *r, const char *name, bool cgroup_only);
void lr_guard_add_cgroups(struct guard *g, struct json_object *list);
enum state lr_shown(const struct guard *g);
void lr_guard_account(struct vg_leak_report *r, struct guard *g, int64_t t);

#endif
