// SPDX-License-Identifier: GPL-2.0
/* The report of leak_report.c's records: each guard's JSON and the whole. */
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "leak_report_guard.h"

/*
 * A guard's path (absolute) and a blocked record's (below the cgroup2 mount):
 * how much longer a is than b when b is a's end at a '/', else -1.
 */
static long cgroup_fit(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la < lb)
		return cgroup_fit(b, a);
	return !strcmp(a + la - lb, b) && (la == lb || b[0] == '/') ? (long)(la - lb) : -1;
}

/* The guard of the closest fit: /x/vpn.slice's record is not /vpn.slice's, nor the other way round. */
static struct guard *guard_of_cgroup(struct vg_leak_report *r, const char *cg)
{
	struct guard *best = NULL;
	long best_fit = -1;

	for (int i = 0; i < r->n_g; i++)
		for (size_t k = 0; k < json_object_array_length(r->g[i].cgroups); k++) {
			long fit = cgroup_fit(json_object_get_string(json_object_array_get_idx(r->g[i].cgroups, k)), cg);

			if (fit >= 0 && (best_fit < 0 || fit < best_fit))
				best = &r->g[i], best_fit = fit;
		}
	return best;
}

static struct json_object *guard_json(struct vg_leak_report *r, struct guard *g)
{
	struct json_object *o = json_object_new_object(), *checks = json_object_new_object(),
			   *seen = json_object_new_array(), *real = json_object_new_array();
	int64_t known;

	if (!g->started)
		g->at_start = lr_shown(g);
	lr_guard_account(r, g, r->to);
	json_object_object_add(o, "guard", g->cgroup_only ? NULL : json_object_new_string(g->name));
	json_object_object_add(o, "cgroups", json_object_get(g->cgroups));
	known = g->ns[ST_OPEN] + g->ns[ST_CLOSED];
	json_object_object_add(o, "open_s", lr_seconds(g->ns[ST_OPEN]));
	json_object_object_add(o, "closed_s", lr_seconds(g->ns[ST_CLOSED]));
	json_object_object_add(o, "unknown_s", lr_seconds(g->ns[ST_UNKNOWN]));
	json_object_object_add(o, "tunnel_down_s", lr_seconds(g->tunnel_ns));
	if (known) {
		double pct = 100.0 * (double)g->ns[ST_OPEN] / (double)known;
		char s[16];

		snprintf(s, sizeof(s), "%.2f", pct);
		json_object_object_add(o, "protected_pct", json_object_new_double_s(pct, s));
	} else {
		json_object_object_add(o, "protected_pct", NULL);
	}
	json_object_object_add(o, "state_at_start", json_object_new_string(lr_state_names[g->at_start]));
	json_object_object_add(o, "state_now", json_object_new_string(lr_state_names[lr_shown(g)]));
	json_object_object_add(o, "changes", json_object_get(g->changes));
	json_object_object_add(o, "changes_omitted", json_object_new_int64(g->changes_omitted));
	json_object_object_add(checks, "total", json_object_new_int64(g->checks));
	json_object_object_add(checks, "by_why", json_object_get(g->by_why));
	if (g->dur_n) {
		char s[32];

		snprintf(s, sizeof(s), "%.3f", g->dur_sum / (double)g->dur_n);
		json_object_object_add(checks, "duration_mean_s", json_object_new_double_s(g->dur_sum / (double)g->dur_n, s));
		snprintf(s, sizeof(s), "%.3f", g->dur_max);
		json_object_object_add(checks, "duration_max_s", json_object_new_double_s(g->dur_max, s));
	}
	json_object_object_add(o, "checks", checks);
	json_object_object_foreach(g->seen, ip, s) {
		json_object_array_add(seen, json_object_get(s));
		if (json_object_get_boolean(json_object_object_get(s, "real_ip")))
			json_object_array_add(real, json_object_new_string(ip));
	}
	json_object_object_add(o, "seen", seen);
	json_object_object_add(o, "real_ip_seen", json_object_new_boolean(g->leak));
	json_object_object_add(o, "real_ips", real);
	json_object_object_add(o, "blocked", vg_blocked_json(&g->b, VG_REPORT_TOP_DESTINATIONS));
	return o;
}

/* The report's plain counts: the log's own ("log") and the other records' ("events"). */
static const struct {
	const char *name;
	size_t off;
	bool log;
} counts[] = {
	{ "tunnel_down", offsetof(struct vg_leak_report, tunnel_down), false },
	{ "tunnel_up", offsetof(struct vg_leak_report, tunnel_up), false },
	{ "scan", offsetof(struct vg_leak_report, scan), false },
	{ "pins", offsetof(struct vg_leak_report, pins), false },
	{ "log_lost", offsetof(struct vg_leak_report, log_lost), false },
	{ "lines", offsetof(struct vg_leak_report, lines), true },
	{ "records", offsetof(struct vg_leak_report, records), true },
	{ "garbage", offsetof(struct vg_leak_report, garbage), true },
	{ "unordered", offsetof(struct vg_leak_report, unordered), true },
	{ "outside", offsetof(struct vg_leak_report, outside), true },
};

struct json_object *vg_leak_report_result(struct vg_leak_report *r)
{
	struct json_object *o = json_object_new_object(), *guards = json_object_new_array(),
			   *log = json_object_new_object(), *ev = json_object_new_object();
	bool leak = false;

	/* Blocked attempts to their guards; a cgroup no guard names is a guard of its own. */
	for (int i = 0; i < r->n_cb; i++) {
		struct guard *g = guard_of_cgroup(r, r->cb[i].cgroup);

		if (!g && (g = lr_guard_get(r, r->cb[i].cgroup, true))) {
			struct json_object *one = json_object_new_array();

			json_object_array_add(one, json_object_new_string(r->cb[i].cgroup));
			lr_guard_add_cgroups(g, one);
			json_object_put(one);
		}
		if (g)
			vg_blocked_merge(&g->b, &r->cb[i].b);
		vg_blocked_put(&r->cb[i].b);
		vg_blocked_init(&r->cb[i].b);
	}
	json_object_object_add(o, "from", lr_time_str(r->from));
	json_object_object_add(o, "to", lr_time_str(r->to));
	json_object_object_add(o, "window_s", lr_seconds(r->to - r->from));
	for (int i = 0; i < r->n_g; i++) {
		json_object_array_add(guards, guard_json(r, &r->g[i]));
		leak |= r->g[i].leak;
	}
	json_object_object_add(o, "leak", json_object_new_boolean(leak));
	json_object_object_add(o, "guards", guards);
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		json_object_object_add(counts[i].log ? log : ev, counts[i].name,
				       json_object_new_int64(*(const int64_t *)((const char *)r + counts[i].off)));
	json_object_object_add(ev, "docker", json_object_get(r->docker));
	json_object_object_add(ev, "reload", json_object_get(r->reload));
	json_object_object_add(o, "events", ev);
	json_object_object_add(o, "log", log);
	return o;
}

bool vg_leak_report_leaked(struct json_object *report)
{
	return json_object_get_boolean(json_object_object_get(report, "leak"));
}
