// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "agent_state.h"
#include "clock.h"
#include "loader.h"
#include "policy.h"
#include "error.h"

static void set_guard_state(struct agent *a, int g, __u32 state)
{
	const struct vg_guard_spec *spec = &a->set->specs[g];
	struct vg_state st = { .state = state };
	int err;

	if (a->groups[g].let_go)
		return;
	if (state == VG_STATE_OPEN)
		st.lease_deadline_ns = vg_boot_ns() + (__u64)spec->health.lease_ms * 1000000ULL;
	for (int i = 0; i < spec->n_cgroups && !a->groups[g].let_go; i++) {
		err = vg_state_write(spec->cgroups[i].id, &st);
		/* Not attached any more: detached, or its pins gone; the pin check tells which. */
		if (err == -ENOENT)
			tick_check_pins(a);
		else if (err)
			vg_error(err, "agent: write state of %s", spec->cgroups[i].path);
	}
}

static void judge_round(struct agent *a, int g, const struct vg_probe_result *r)
{
	const struct vg_guard_spec *spec = &a->set->specs[g];
	struct group *grp = &a->groups[g];
	enum vg_why why;
	bool leak;
	enum vg_verdict v = vg_health_judge(&spec->health, &grp->h, r, &why, &leak);
	bool new_leak = leak && (!grp->judged || grp->last_why != VG_WHY_REAL_IP);
	char seen[INET6_ADDRSTRLEN];

	grp->last_why = why;
	grp->judged = true;
	/*
	 * Every round writes what the agent holds true, not only changes: an open
	 * guard's lease is renewed, and a closed guard stays closed even if
	 * something else (a re-attach, bpftool) opened it meanwhile.
	 */
	set_guard_state(a, g, grp->h.open ? VG_STATE_OPEN : VG_STATE_CLOSED);
	history_probe(a, spec, r, why);
	if (v != VG_KEEP)
		history_state(a, spec, v == VG_OPEN, vg_why_name(why));

	/* Every check is in the log, passed or not: the log alone proves what the Internet saw. */
	struct json_object *rec = vg_log_record(v == VG_KEEP ? VG_REC_PROBE : VG_REC_STATE);

	agent_add_guard(rec, spec);
	if (v != VG_KEEP)
		json_object_object_add(rec, "state", json_object_new_string(v == VG_OPEN ? "open" : "closed"));
	json_object_object_add(rec, "why", json_object_new_string(vg_why_name(why)));
	if (r->ip_ok)
		json_object_object_add(rec, "seen", json_object_new_string(vg_addr_str(&r->seen, seen, sizeof(seen))));
	if (r->gluetun_ok)
		json_object_object_add(rec, "gluetun", json_object_new_string(r->gluetun_status));
	if (r->error[0])
		json_object_object_add(rec, "error", json_object_new_string(r->error));
	json_object_object_add(rec, "duration_s", json_object_new_double(r->duration_s));
	if (v == VG_KEEP && why == VG_WHY_PROBE_FAILED)
		json_object_object_add(rec, "failed_in_a_row", json_object_new_int((int)grp->h.failed));
	agent_log(a, rec);
	if (new_leak)
		alert_send(a, rec, "leak: the tunnel exits by the real address");
	else if (v != VG_KEEP)
		alert_send(a, rec, v == VG_OPEN ? "reopened" : "closed");
	json_object_put(rec);
	if (v != VG_KEEP)
		remedy_check(a);
}

static int on_results(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *a = userdata;
	struct vg_probe_result r;
	uint64_t n;

	(void)s, (void)revents;
	if (read(fd, &n, sizeof(n)) < 0)
		return 0;
	for (int g = 0; g < a->set->n; g++)
		if (a->groups[g].prober && vg_prober_result(a->groups[g].prober, &r))
			judge_round(a, g, &r);
	return 0;
}

int probing_add_source(struct agent *a)
{
	int err;

	a->probe_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->probe_efd < 0)
		return vg_error(-errno, "agent: eventfd for the probes");
	err = sd_event_add_io(a->loop, NULL, a->probe_efd, EPOLLIN, on_results, a);
	return err < 0 ? vg_error(err, "agent: watch the probes") : 0;
}

void probing_renew_unprobed(struct agent *a)
{
	for (int g = 0; g < a->set->n; g++)
		if (!vg_health_probes(&a->set->specs[g].health))
			set_guard_state(a, g, VG_STATE_OPEN);
}

static bool guard_is_open(const struct vg_guard_spec *spec)
{
	struct vg_state st;

	return !vg_map_read(VG_MAP_STATE, &spec->cgroups[0].id, &st) && st.state == VG_STATE_OPEN &&
	       (!st.lease_deadline_ns || st.lease_deadline_ns > vg_boot_ns());
}

void probing_let_go(struct agent *a, int g)
{
	vg_prober_stop(a->groups[g].prober);
	a->groups[g].prober = NULL;
	a->groups[g].let_go = true;
}

void probing_stop(struct agent *a)
{
	for (int g = 0; g < MAX_GROUPS; g++) {
		vg_prober_stop(a->groups[g].prober);
		a->groups[g] = (struct group){ 0 };
	}
}

int probing_start(struct agent *a)
{
	unsigned tick_ms = VG_SCAN_INTERVAL_S * 1000;

	for (int g = 0; g < a->set->n; g++) {
		const struct vg_guard_spec *spec = &a->set->specs[g];

		a->groups[g].h.open = guard_is_open(spec);
		history_state(a, spec, a->groups[g].h.open || !vg_health_probes(&spec->health), NULL);
		if (!vg_health_probes(&spec->health)) {
			if (spec->health.interval_ms < tick_ms)
				tick_ms = spec->health.interval_ms;
			continue;
		}
		a->groups[g].prober = vg_prober_start(&spec->health, spec->o->tunnel,
						      a->set->reqs[g].netns_fd, a->probe_efd);
		if (!a->groups[g].prober)
			return vg_error(-errno, "agent: start probes of %s", spec->name);
	}
	probing_renew_unprobed(a);
	return tick_set_period(a, tick_ms);
}
