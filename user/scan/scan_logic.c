// SPDX-License-Identifier: GPL-2.0
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include "event_fmt.h"
#include "proc_parse.h"
#include "scan_logic.h"

/* Is cgroup the guard's cgroup or below it? */
static bool inside(const char *guard, const char *cgroup)
{
	size_t n = strlen(guard);

	if (!strcmp(guard, "/"))
		return true;
	return !strncmp(guard, cgroup, n) && (cgroup[n] == 0 || cgroup[n] == '/');
}

/* Is s n lowercase hex digits, as Docker writes ids? */
static bool hex_id(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

bool vg_cgroup_container_id(const char *cgroup, char id[VG_CONTAINER_ID_LEN + 1])
{
	static const char pre[] = "docker-", post[] = ".scope";
	const size_t np = sizeof(pre) - 1, ns = sizeof(post) - 1, n = VG_CONTAINER_ID_LEN;
	const char *found = NULL, *name = cgroup;

	while (*name) {
		size_t len;

		name += strspn(name, "/");
		len = strcspn(name, "/");
		if (len == n && hex_id(name, n))
			found = name;
		else if (len == np + n + ns && !strncmp(name, pre, np) && hex_id(name + np, n) &&
			 !strncmp(name + np + n, post, ns))
			found = name + np;
		name += len;
	}
	if (found) {
		memcpy(id, found, n);
		id[n] = 0;
	}
	return found;
}

bool vg_scan_state_owns(const char *state)
{
	return strcmp(state, "exited") && strcmp(state, "dead");
}

int vg_scan_guard_of(const struct vg_scan_input *in, const char *cgroup)
{
	int best = -1;

	for (int g = 0; g < in->n_guards; g++)
		if (inside(in->guards[g].cgroup, cgroup) &&
		    (best < 0 || strlen(in->guards[g].cgroup) > strlen(in->guards[best].cgroup)))
			best = g;
	return best;
}

/* The oldest process of the cgroup procs[i] is in. */
static int ref_of(const struct vg_scan_input *in, int i)
{
	int best = i;

	for (int j = 0; j < in->n_procs; j++) {
		const struct vg_proc *p = &in->procs[j], *b = &in->procs[best];

		if (strcmp(p->cgroup, in->procs[i].cgroup))
			continue;
		if (p->start < b->start || (p->start == b->start && p->pid < b->pid))
			best = j;
	}
	return best;
}

static void add(struct vg_finding *out, int max, int *n, enum vg_finding_kind kind,
		int proc, int ref, int guard)
{
	if (*n < max)
		out[*n] = (struct vg_finding){ kind, proc, ref, guard };
	(*n)++;
}

/*
 * A container's init with a PID namespace of its own, met for the first time:
 * a second cgroup of the same guard sharing that namespace names no new
 * processes.
 */
static bool first_container(const struct vg_scan_input *in, int i, int g)
{
	if (in->procs[i].pidns == in->own_pidns || ref_of(in, i) != i)
		return false;
	for (int j = 0; j < i; j++)
		if (in->procs[j].pidns == in->procs[i].pidns && ref_of(in, j) == j &&
		    vg_scan_guard_of(in, in->procs[j].cgroup) == g)
			return false;
	return true;
}

int vg_scan_judge(const struct vg_scan_input *in, struct vg_finding *out, int max)
{
	int n = 0;

	for (int i = 0; i < in->n_procs; i++) {
		const struct vg_proc *p = &in->procs[i];
		int g = vg_scan_guard_of(in, p->cgroup), r;

		if (g < 0)
			continue;
		r = ref_of(in, i);
		if (p->netns != in->procs[r].netns)
			add(out, max, &n, VG_FIND_NETNS, i, r, g);
		if (p->pidns != in->procs[r].pidns)
			add(out, max, &n, VG_FIND_PIDNS, i, r, g);
		if ((p->cap_eff | p->cap_prm) & (1ULL << VG_CAP_NET_RAW))
			add(out, max, &n, VG_FIND_NET_RAW, i, -1, g);
	}
	for (int i = 0; i < in->n_procs; i++) {
		int g = vg_scan_guard_of(in, in->procs[i].cgroup);

		if (g < 0 || !first_container(in, i, g))
			continue;
		for (int q = 0; q < in->n_procs; q++)
			if (in->procs[q].pidns == in->procs[i].pidns &&
			    !inside(in->guards[g].cgroup, in->procs[q].cgroup))
				add(out, max, &n, VG_FIND_OUTSIDE, q, i, g);
	}
	return n;
}

/* Is the container with this id one of the n the engine has processes of? */
static bool engine_runs(const char (*running)[VG_CONTAINER_ID_LEN + 1], int n, const char *id)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(running[i], id))
			return true;
	return false;
}

int vg_scan_ghosts(const struct vg_scan_input *in, const char (*running)[VG_CONTAINER_ID_LEN + 1], int n_running,
		   struct vg_finding *out, int max)
{
	char id[VG_CONTAINER_ID_LEN + 1];
	int n = 0;

	for (int i = 0; i < in->n_procs; i++) {
		int g = vg_scan_guard_of(in, in->procs[i].cgroup);

		if (g >= 0 && vg_cgroup_container_id(in->procs[i].cgroup, id) && !engine_runs(running, n_running, id))
			add(out, max, &n, VG_FIND_GHOST, i, ref_of(in, i), g);
	}
	return n;
}

const char *vg_finding_name(enum vg_finding_kind kind)
{
	static const char *const names[] = {
		[VG_FIND_NETNS] = "netns",
		[VG_FIND_PIDNS] = "pidns",
		[VG_FIND_NET_RAW] = "net_raw",
		[VG_FIND_OUTSIDE] = "outside",
		[VG_FIND_GHOST] = "ghost",
	};

	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "unknown";
}

struct json_object *vg_finding_to_json(const struct vg_scan_input *in, const struct vg_finding *f)
{
	const struct vg_proc *p = &in->procs[f->proc];
	const struct vg_proc *r = f->ref >= 0 ? &in->procs[f->ref] : NULL;
	struct json_object *o = json_object_new_object();
	char detail[256], id[VG_CONTAINER_ID_LEN + 1] = "";

	switch (f->kind) {
	case VG_FIND_NETNS:
		snprintf(detail, sizeof(detail), "network namespace net:[%llu], its container's (pid %d) "
			 "is net:[%llu]", (unsigned long long)p->netns, r->pid, (unsigned long long)r->netns);
		break;
	case VG_FIND_PIDNS:
		snprintf(detail, sizeof(detail), "PID namespace pid:[%llu], its container's (pid %d) "
			 "is pid:[%llu]", (unsigned long long)p->pidns, r->pid, (unsigned long long)r->pidns);
		break;
	case VG_FIND_NET_RAW:
		snprintf(detail, sizeof(detail), "holds CAP_NET_RAW (%s): packet sockets bypass the "
			 "guard; drop it (cap_drop: [NET_RAW])",
			 p->cap_eff & (1ULL << VG_CAP_NET_RAW) ? "effective" : "permitted");
		break;
	case VG_FIND_OUTSIDE:
		snprintf(detail, sizeof(detail), "in the PID namespace of the container of pid %d "
			 "(cgroup %s) but outside its guard", r->pid, r->cgroup);
		break;
	case VG_FIND_GHOST:
		vg_cgroup_container_id(p->cgroup, id);
		snprintf(detail, sizeof(detail), "its cgroup names container %.12s, which the engine does "
			 "not run (a ghost): end its processes and remove its cgroup", id);
		break;
	}
	json_object_object_add(o, "kind", json_object_new_string(vg_finding_name(f->kind)));
	json_object_object_add(o, "pid", json_object_new_int(p->pid));
	json_object_object_add(o, "comm", json_object_new_string(p->comm));
	json_object_object_add(o, "cgroup", json_object_new_string(p->cgroup));
	json_object_object_add(o, "guard", json_object_new_string(in->guards[f->guard].cgroup));
	json_object_object_add(o, "guard_id", json_object_new_uint64(in->guards[f->guard].id));
	json_object_object_add(o, "container_pid", r ? json_object_new_int(r->pid) : NULL);
	json_object_object_add(o, "detail", json_object_new_string(detail));
	if (id[0])
		json_object_object_add(o, "container_id", json_object_new_string(id));
	return o;
}

bool vg_finding_listed(struct json_object *list, struct json_object *f)
{
	const char *kind = vg_json_str(f, "kind"), *pid = vg_json_str(f, "pid");

	for (size_t i = 0; list && i < json_object_array_length(list); i++) {
		struct json_object *e = json_object_array_get_idx(list, i);
		const char *k = vg_json_str(e, "kind"), *p = vg_json_str(e, "pid");

		if (kind && pid && k && p && !strcmp(kind, k) && !strcmp(pid, p))
			return true;
	}
	return false;
}

void vg_finding_to_line(struct json_object *f, char *buf, size_t len)
{
	vg_text_printf(buf, len, "FOUND %-7s pid %s (%s) in %s: %s", vg_json_str(f, "kind") ?: "?",
		       vg_json_str(f, "pid") ?: "?", vg_json_str(f, "comm") ?: "?",
		       vg_json_str(f, "cgroup") ?: "?", vg_json_str(f, "detail") ?: "");
}
