// SPDX-License-Identifier: GPL-2.0
/*
 * What the agent has seen, beyond what the maps hold, for /api/v1/status and
 * /metrics: each guard's state changes of the last day, its last check, and
 * the last blocked attempts. Kept by the guard's name (history.h), so a reload
 * that keeps a guard keeps its history, new cgroups and all.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "agent_state.h"
#include "clock.h"
#include "event_fmt.h"
#include "history.h"
#include "policy.h"

int history_init(struct agent *a)
{
	a->hist = calloc(HISTORY_SLOTS, sizeof(*a->hist));
	return a->hist ? 0 : -ENOMEM;
}

void history_free(struct agent *a)
{
	free(a->hist);
	for (int i = 0; i < HISTORY_BLOCKED; i++)
		json_object_put(a->blocked[i]);
}

void history_reloaded(struct agent *a)
{
	history_keep(a->hist, a->set->specs, a->set->n);
}

void history_state(struct agent *a, const struct vg_guard_spec *spec, bool open, const char *why)
{
	struct history *h = history_slot(a->hist, spec, true);

	if (h)
		history_change(h, vg_real_ns(), open, why);
}

void history_probe(struct agent *a, const struct vg_guard_spec *spec, const struct vg_probe_result *r,
		   enum vg_why why)
{
	struct history *h = history_slot(a->hist, spec, true);

	if (!h)
		return;
	h->probed = true;
	h->last = *r;
	h->last_why = why;
	if (why == VG_WHY_PROBE_PASSED)
		h->last_success_ns = r->done_ns;
}

void history_blocked(struct agent *a, struct json_object *rec)
{
	json_object_put(a->blocked[a->blocked_next]);
	a->blocked[a->blocked_next] = json_object_get(rec);
	a->blocked_next = (a->blocked_next + 1) % HISTORY_BLOCKED;
}

static struct json_object *probe_json(const struct history *h)
{
	struct json_object *o = json_object_new_object();
	char seen[INET6_ADDRSTRLEN];

	json_object_object_add(o, "time", history_time_json(h->last.done_ns));
	json_object_object_add(o, "seen", h->last.ip_ok ?
			       json_object_new_string(vg_addr_str(&h->last.seen, seen, sizeof(seen))) : NULL);
	json_object_object_add(o, "verdict", json_object_new_string(vg_why_name(h->last_why)));
	json_object_object_add(o, "duration_s", json_object_new_double(h->last.duration_s));
	json_object_object_add(o, "error", h->last.error[0] ? json_object_new_string(h->last.error) : NULL);
	return o;
}

/* The last blocked attempts of the guard, newest first. */
static struct json_object *blocked_json(const struct agent *a, __u64 id)
{
	struct json_object *list = json_object_new_array();
	static const char *const keep[] = { "time", "reason", "comm", "pid", "dst", "dport", "proto" };

	for (int k = 1; k <= HISTORY_BLOCKED && json_object_array_length(list) < HISTORY_SHOWN; k++) {
		struct json_object *rec = a->blocked[(a->blocked_next - k + HISTORY_BLOCKED) % HISTORY_BLOCKED], *o;

		if (!rec || json_object_get_uint64(json_object_object_get(rec, "cgroup_id")) != id)
			continue;
		o = json_object_new_object();
		for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
			json_object_object_add(o, keep[i], json_object_get(json_object_object_get(rec, keep[i])));
		json_object_array_add(list, o);
	}
	return list;
}

void history_tunnel_seen(struct agent *a, __u64 id, bool present)
{
	const struct vg_guard_spec *spec = agent_spec_of(a, id);
	struct history *h = spec ? history_slot(a->hist, spec, true) : NULL;

	if (h)
		history_tunnel(h, vg_real_ns(), present);
}

void history_add_json(struct agent *a, struct json_object *guard)
{
	__u64 id = json_object_get_uint64(json_object_object_get(guard, "cgroup_id"));
	const struct vg_guard_spec *spec = agent_spec_of(a, id);
	const struct history *h = spec ? history_slot(a->hist, spec, false) : NULL;
	int64_t now = vg_real_ns();

	json_object_object_add(guard, "guard", spec ? json_object_new_string(spec->name) : NULL);
	json_object_object_add(guard, "recent_blocked", blocked_json(a, id));
	if (!h)
		return;
	if (history_last(h))
		json_object_object_add(guard, "state_since", history_time_json(history_last(h)->time_ns));
	json_object_object_add(guard, "timeline", history_timeline_json(h, now));
	json_object_object_add(guard, "last_probe", h->probed ? probe_json(h) : NULL);
	if (h->last_success_ns)
		json_object_object_add(guard, "probe_last_success_unix",
				       json_object_new_double((double)h->last_success_ns / 1e9));
}
