/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's history of its guards (history.c puts it in /api/v1/status):
 * a slot per guard, found again by the same guard after a reload. A guard is
 * its name in the set, not a cgroup: a --container guard's cgroup is new at
 * each start of its container. Apart from the agent so the slots are
 * unit-tested without one.
 */
#ifndef VG_HISTORY_H
#define VG_HISTORY_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>
#include <json-c/json.h>
#include "guards.h"
#include "health.h"

/* The state changes kept per guard (a day's worth for any guard that flaps less). */
#define HISTORY_CHANGES 64
/* A set has no more guards, and the slots of guards that left it are freed at each reload. */
#define HISTORY_SLOTS (VG_MAX_CONF_GUARDS + 1)

struct history_change {
	int64_t time_ns;
	bool open;                      /* the kernel lets traffic out: the agent's open, the tunnel there */
	bool no_tunnel;                 /* closed because the tunnel is missing */
	const char *why;                /* static (vg_why_name, "tunnel_down", "tunnel_up") or NULL */
};

struct history {
	char name[sizeof(((struct vg_conf_guard *)0)->name)];  /* the spec's; "": a free slot */
	struct history_change changes[HISTORY_CHANGES];  /* a ring, oldest at head */
	int head, n;
	/* What the agent holds (probes, lease) and whether the tunnel is there: changes are both's. */
	bool agent_known, agent_open, tunnel_missing;
	const char *agent_why;
	bool probed;
	enum vg_why last_why;
	struct vg_probe_result last;
	int64_t last_success_ns;
};

/* spec's slot of the HISTORY_SLOTS, a free one taken when make; NULL when none. */
struct history *history_slot(struct history *slots, const struct vg_guard_spec *spec, bool make);
/* The set is now specs: the slots of guards not in it are freed. */
void history_keep(struct history *slots, const struct vg_guard_spec *specs, int n);
/* The agent holds the guard open or closed from at: kept when the guard's state changes. */
void history_change(struct history *h, int64_t at, bool open, const char *why);
/*
 * The guard's tunnel is present or missing from at. Missing, the kernel denies
 * everything whatever the agent holds: a closed change (why tunnel_down), and
 * on its return the agent's state (why tunnel_up when that is open).
 */
void history_tunnel(struct history *h, int64_t at, bool present);
/* The last change kept, NULL before the first. */
const struct history_change *history_last(const struct history *h);
/* A time as /api/v1/status has them. */
struct json_object *history_time_json(int64_t ns);
/* The changes of the day before now, the first dated at the day's start when older. */
struct json_object *history_timeline_json(const struct history *h, int64_t now);

#endif
