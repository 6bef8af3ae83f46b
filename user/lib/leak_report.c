// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "event_fmt.h"
#include "leak_report_guard.h"

/* The report from the events log's records, one at a time (the result: leak_report_result.c). */

const char *const lr_state_names[] = { "unknown", "open", "closed" };

struct json_object *lr_seconds(int64_t ns)
{
	char s[32];

	snprintf(s, sizeof(s), "%.3f", (double)ns / NS);
	return json_object_new_double_s((double)ns / NS, s);
}

struct json_object *lr_time_str(int64_t ns)
{
	char s[40];

	vg_format_time(ns, s, sizeof(s));
	return json_object_new_string(s);
}

struct guard *lr_guard_get(struct vg_leak_report *r, const char *name, bool cgroup_only)
{
	struct guard *g;

	for (int i = 0; i < r->n_g; i++)
		if (r->g[i].cgroup_only == cgroup_only && !strcmp(r->g[i].name, name))
			return &r->g[i];
	g = realloc(r->g, (size_t)(r->n_g + 1) * sizeof(*g));
	if (!g)
		return NULL;
	r->g = g;
	g = &r->g[r->n_g++];
	memset(g, 0, sizeof(*g));
	g->name = strdup(name);
	g->cgroup_only = cgroup_only;
	g->cgroups = json_object_new_array();
	g->changes = json_object_new_array();
	g->by_why = json_object_new_object();
	g->seen = json_object_new_object();
	vg_blocked_init(&g->b);
	return g;
}

void lr_guard_add_cgroups(struct guard *g, struct json_object *list)
{
	if (!json_object_is_type(list, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(list); i++) {
		const char *c = json_object_get_string(json_object_array_get_idx(list, i));
		bool have = false;

		for (size_t k = 0; c && k < json_object_array_length(g->cgroups) && !have; k++)
			have = !strcmp(c, json_object_get_string(json_object_array_get_idx(g->cgroups, k)));
		if (c && !have)
			json_object_array_add(g->cgroups, json_object_new_string(c));
	}
}

/* Without its tunnel the kernel lets nothing out, whatever the records said of the state. */
enum state lr_shown(const struct guard *g)
{
	return g->no_tunnel ? ST_CLOSED : g->state;
}

/* The time from the guard's last record (or the window's start) to t, to the state it was in. */
void lr_guard_account(struct vg_leak_report *r, struct guard *g, int64_t t)
{
	int64_t since = g->since > r->from ? g->since : r->from;

	if (t > r->to)
		t = r->to;
	if (t > since) {
		g->ns[lr_shown(g)] += t - since;
		if (g->no_tunnel)
			g->tunnel_ns += t - since;
	}
	if (t >= since)
		g->since = t;
}

static void check_seen(struct guard *g, const char *ip, const char *why, const char *when)
{
	struct json_object *s;

	if (!json_object_object_get_ex(g->seen, ip, &s)) {
		s = json_object_new_object();
		json_object_object_add(s, "ip", json_object_new_string(ip));
		json_object_object_add(s, "checks", json_object_new_int64(0));
		json_object_object_add(s, "first", json_object_new_string(when));
		json_object_object_add(s, "real_ip", json_object_new_boolean(0));
		json_object_object_add(g->seen, ip, s);
	}
	json_object_int_inc(json_object_object_get(s, "checks"), 1);
	json_object_object_add(s, "last", json_object_new_string(when));
	if (!strcmp(why, "real_ip"))
		json_object_object_add(s, "real_ip", json_object_new_boolean(1));
}

/* A change of the guard's shown state (or of its cause) at rec's time; the latest kept. */
static void guard_change(struct guard *g, struct json_object *rec, const char *state, const char *why)
{
	struct json_object *c = json_object_new_object();
	const char *seen = vg_json_str(rec, "seen"), *error = vg_json_str(rec, "error");

	json_object_object_add(c, "time", json_object_new_string(vg_json_str(rec, "time")));
	json_object_object_add(c, "state", json_object_new_string(state));
	json_object_object_add(c, "why", json_object_new_string(why));
	if (seen)
		json_object_object_add(c, "seen", json_object_new_string(seen));
	if (error)
		json_object_object_add(c, "error", json_object_new_string(error));
	if (json_object_array_length(g->changes) >= VG_REPORT_MAX_CHANGES) {
		json_object_array_del_idx(g->changes, 0, 1);
		g->changes_omitted++;
	}
	json_object_array_add(g->changes, c);
}

/* The guard rec names, when rec is in its order (the clock did not step back); NULL: counted. */
static struct guard *guard_of_record(struct vg_leak_report *r, struct json_object *rec, const char *name, int64_t t)
{
	struct guard *g;

	if (!name || !(g = lr_guard_get(r, name, false))) {
		r->garbage++;
		return NULL;
	}
	if (g->any && t < g->last_t) {
		r->unordered++;
		return NULL;
	}
	g->any = true;
	g->last_t = t;
	lr_guard_add_cgroups(g, json_object_object_get(rec, "cgroups"));
	return g;
}

/* The window began at or before t: the state the guard was in then is set. */
static void guard_start(struct guard *g)
{
	if (!g->started) {
		g->started = true;
		g->at_start = lr_shown(g);
	}
}

/* A tunnel record of a guard: closed from tunnel_down, back to its state at tunnel_up. */
static void guard_tunnel(struct vg_leak_report *r, struct json_object *rec, struct guard *g, bool down, int64_t t)
{
	bool changed = g->no_tunnel != down;

	if (t < r->from) {
		/* Before the window: only whether the tunnel was there when it began. */
		g->no_tunnel = down;
		return;
	}
	guard_start(g);
	lr_guard_account(r, g, t);
	g->no_tunnel = down;
	/* One change for the guard, not one per cgroup's record. */
	if (changed)
		guard_change(g, rec, lr_state_names[lr_shown(g)], down ? "tunnel_down" : "tunnel_up");
}

/* A state or probe record: the guard's state, its check, what it saw. */
static void guard_round(struct vg_leak_report *r, struct json_object *rec, const char *event, int64_t t)
{
	const char *why = vg_json_str(rec, "why") ?: "-",
		   *state = vg_json_str(rec, "state"), *seen = vg_json_str(rec, "seen");
	bool is_state = !strcmp(event, "state");
	enum state s = ST_UNKNOWN;
	struct json_object *dur;
	struct guard *g = guard_of_record(r, rec, vg_json_str(rec, "guard"), t);

	if (!g)
		return;
	r->records++;
	if (is_state)
		s = state && !strcmp(state, "open") ? ST_OPEN : state && !strcmp(state, "closed") ? ST_CLOSED : ST_UNKNOWN;
	else if (!strcmp(why, "probe_passed"))
		s = ST_OPEN;
	else if (!strcmp(why, "real_ip") || !strcmp(why, "unexpected_ip") || !strcmp(why, "gluetun_not_running"))
		s = ST_CLOSED;
	if (t < r->from) {
		/* Before the window: only what the guard was in when it began. */
		if (s != ST_UNKNOWN)
			g->state = s;
		return;
	}
	guard_start(g);
	lr_guard_account(r, g, t);
	if (s != ST_UNKNOWN)
		g->state = s;
	g->checks++;
	vg_count_inc(g->by_why, why, 1);
	if (json_object_object_get_ex(rec, "duration_s", &dur) &&
	    (json_object_is_type(dur, json_type_double) || json_object_is_type(dur, json_type_int))) {
		double d = json_object_get_double(dur);

		g->dur_sum += d;
		g->dur_n++;
		if (d > g->dur_max)
			g->dur_max = d;
	}
	if (seen)
		check_seen(g, seen, why, vg_json_str(rec, "time"));
	if (!strcmp(why, "real_ip"))
		g->leak = true;
	if (is_state)
		guard_change(g, rec, state ?: "unknown", why);
}

static void blocked_record(struct vg_leak_report *r, struct json_object *rec)
{
	const char *cg = vg_json_str(rec, "cgroup"), *dst = vg_json_str(rec, "dst");
	struct cgroup_blocked *cb = NULL;
	char id[48];

	if (!cg) {
		snprintf(id, sizeof(id), "cgroup id %s", vg_json_str(rec, "cgroup_id") ?: "?");
		cg = id;
	}
	for (int i = 0; i < r->n_cb && !cb; i++)
		if (!strcmp(r->cb[i].cgroup, cg))
			cb = &r->cb[i];
	if (!cb) {
		cb = realloc(r->cb, (size_t)(r->n_cb + 1) * sizeof(*cb));
		if (!cb)
			return;
		r->cb = cb;
		cb = &r->cb[r->n_cb++];
		cb->cgroup = strdup(cg);
		memset(&cb->b, 0, sizeof(cb->b));
		vg_blocked_init(&cb->b);
	}
	r->records++;
	vg_blocked_add(&cb->b, vg_json_str(rec, "reason"), vg_json_str(rec, "comm"), dst,
		       json_object_get_int(json_object_object_get(rec, "dport")), vg_json_str(rec, "proto"));
}

void vg_leak_report_record(struct vg_leak_report *r, struct json_object *rec)
{
	const char *event, *when;
	int64_t t;

	if (!json_object_is_type(rec, json_type_object) || !(event = vg_json_str(rec, "event")) ||
	    !(when = vg_json_str(rec, "time")) || vg_parse_time(when, &t)) {
		r->garbage++;
		return;
	}
	if (t > r->to) {
		r->outside++;
		return;
	}
	if (!strcmp(event, "state") || !strcmp(event, "probe")) {
		guard_round(r, rec, event, t);
		return;
	}
	/* A guard's tunnel record (older agents named no guard in them): its time, then counted below. */
	bool down = !strcmp(event, "tunnel_down");

	if ((down || !strcmp(event, "tunnel_up")) && vg_json_str(rec, "guard")) {
		struct guard *g = guard_of_record(r, rec, vg_json_str(rec, "guard"), t);

		if (!g)
			return;
		guard_tunnel(r, rec, g, down, t);
	}
	if (t < r->from) {
		r->outside++;
		return;
	}
	if (!strcmp(event, "blocked"))
		return blocked_record(r, rec);
	r->records++;
	if (!strcmp(event, "tunnel_down"))
		r->tunnel_down++;
	else if (!strcmp(event, "tunnel_up"))
		r->tunnel_up++;
	else if (!strcmp(event, "docker"))
		vg_count_inc(r->docker, vg_json_str(rec, "action") ?: "-", 1);
	else if (!strcmp(event, "reload"))
		vg_count_inc(r->reload, vg_json_str(rec, "result") ?: "-", 1);
	else if (!strcmp(event, "scan"))
		r->scan++;
	else if (!strcmp(event, "pins"))
		r->pins++;
	else if (!strcmp(event, "log")) {
		int64_t lost = json_object_get_int64(json_object_object_get(rec, "lost"));

		/* The file's word, not ours: added up without wrapping. */
		if (lost > 0)
			r->log_lost = lost > INT64_MAX - r->log_lost ? INT64_MAX : r->log_lost + lost;
	}
}

void vg_leak_report_line(struct vg_leak_report *r, const char *line, size_t len)
{
	struct json_tokener *tok = r->tok;
	struct json_object *rec = NULL;

	while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
		len--;
	r->lines++;
	if (tok && len < (size_t)INT32_MAX) {
		json_tokener_reset(tok);
		rec = json_tokener_parse_ex(tok, line, (int)len);
		/* "{...} trailing": one record and something else on a line is no record. */
		if (rec && (json_tokener_get_error(tok) != json_tokener_success ||
			    tok->char_offset != (int)len)) {
			json_object_put(rec);
			rec = NULL;
		}
	}
	vg_leak_report_record(r, rec);
	json_object_put(rec);
}

void vg_leak_report_garbage(struct vg_leak_report *r)
{
	r->lines++;
	r->garbage++;
}

struct vg_leak_report *vg_leak_report_new(int64_t from_ns, int64_t to_ns)
{
	struct vg_leak_report *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->from = from_ns;
	r->to = to_ns;
	r->docker = json_object_new_object();
	r->reload = json_object_new_object();
	if (!(r->tok = json_tokener_new())) {
		vg_leak_report_free(r);
		return NULL;
	}
	return r;
}

void vg_leak_report_free(struct vg_leak_report *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n_g; i++) {
		free(r->g[i].name);
		json_object_put(r->g[i].cgroups);
		json_object_put(r->g[i].changes);
		json_object_put(r->g[i].by_why);
		json_object_put(r->g[i].seen);
		vg_blocked_put(&r->g[i].b);
	}
	for (int i = 0; i < r->n_cb; i++) {
		free(r->cb[i].cgroup);
		vg_blocked_put(&r->cb[i].b);
	}
	json_object_put(r->docker);
	json_object_put(r->reload);
	if (r->tok)
		json_tokener_free(r->tok);
	free(r->g);
	free(r->cb);
	free(r);
}
