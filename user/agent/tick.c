// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "agent_state.h"
#include "clock.h"
#include "paths.h"
#include "pins.h"
#include "error.h"
#include "scan.h"
#include "scan_logic.h"

/* Leases are renewed on time to the millisecond; coarser would only save wake-ups nobody counts. */
#define TICK_ACCURACY_US 1000

void tick_scan_now(struct agent *a)
{
	struct json_object *res = NULL, *found;

	a->last_scan_ns = vg_boot_ns();
	if (vg_scan(&res))
		return;
	json_object_object_get_ex(res, "findings", &found);
	for (size_t i = 0; i < json_object_array_length(found); i++) {
		struct json_object *f = json_object_array_get_idx(found, i), *rec;

		if (vg_finding_listed(a->findings, f))
			continue;
		rec = vg_log_record(VG_REC_SCAN);
		json_object_object_add(rec, "reason", json_object_get(json_object_object_get(f, "kind")));
		json_object_object_foreach(f, key, val)
			if (strcmp(key, "kind"))
				json_object_object_add(rec, key, json_object_get(val));
		agent_log(a, rec);
		json_object_put(rec);
	}
	json_object_put(a->findings);
	a->findings = json_object_get(found);
	json_object_put(res);
}

/*
 * Pins are for people and the agent's own map lookups; enforcement is the
 * kernel's. When they vanish (rm -rf, a bpffs mount that went away), they are
 * made again from what the kernel holds, logged and alerted.
 */
static void restore_pins(struct agent *a, int g, const struct vg_cgroup *cg)
{
	const struct vg_guard_spec *spec = &a->set->specs[g];
	int fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int made = fd < 0 ? -errno : vg_pins_restore(fd, cg->id);
	struct json_object *rec = vg_log_record(VG_REC_PINS);

	if (fd >= 0)
		close(fd);
	agent_add_guard(rec, spec);
	/* The cgroup is there and holds none of the guard's programs: `detach` took it. */
	if (fd >= 0 && made == -ENOENT) {
		json_object_object_add(rec, "why", json_object_new_string("detached"));
		json_object_object_add(rec, "action", json_object_new_string("let go"));
		agent_log(a, rec);
		json_object_put(rec);
		probing_let_go(a, g);
		return;
	}
	json_object_object_add(rec, "why", json_object_new_string("pins_removed"));
	json_object_object_add(rec, "pin_root", json_object_new_string(vg_pin_root()));
	json_object_object_add(rec, "action", json_object_new_string(made < 0 ? "lost" : "restored"));
	if (made < 0)
		json_object_object_add(rec, "error", json_object_new_string(strerror(-made)));
	else
		json_object_object_add(rec, "pins", json_object_new_int(made));
	agent_log(a, rec);
	alert_send(a, rec, made < 0 ? "pins vanished and could not be made again" :
		   "pins vanished: made again, enforcement never stopped");
	json_object_put(rec);
}

void tick_check_pins(struct agent *a)
{
	int held = 0, lock = -1;

	for (int g = 0; g < a->set->n; g++) {
		const struct vg_guard_spec *spec = &a->set->specs[g];

		for (int i = 0; i < spec->n_cgroups && !a->groups[g].let_go; i++) {
			if (vg_pins_present(spec->cgroups[i].id))
				continue;
			/*
			 * Pins vanish for a moment while a detach (or attach) is at work: made again
			 * then, from programs it is about to take away, they would outlive it. The
			 * next tick looks again once it is done.
			 */
			if (lock < 0 && (lock = vg_lock_try()) < 0) {
				held = -1;
				goto out;
			}
			if (!vg_pins_present(spec->cgroups[i].id))
				restore_pins(a, g, &spec->cgroups[i]);
		}
		held += !a->groups[g].let_go;
	}
out:
	vg_lock_drop(lock);
	if (held < 0)
		return;
	/* Every guard detached: nothing is left to keep true. */
	if (!held && a->set->n) {
		fprintf(stderr, "vpnguard-bpf: agent: every guard was detached; exiting\n");
		sd_event_exit(a->loop, 0);
	}
}

/* Leases of guards with no probe, the pins, and the scan once VG_SCAN_INTERVAL_S has (about) passed. */
static int on_tick(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct agent *a = userdata;
	uint64_t now;

	/* Pins first: a guard someone detached is let go before its lease would be written. */
	tick_check_pins(a);
	probing_renew_unprobed(a);
	/* A lease that ran out closes a guard with no record of it: on-closed sees it here. */
	remedy_check(a);
	if (vg_boot_ns() - a->last_scan_ns + a->tick_us * 1000 / 2 >= VG_SCAN_INTERVAL_S * 1000000000ULL)
		tick_scan_now(a);
	/* From when it was due, so ticks do not drift; from now after a suspend that skipped some. */
	sd_event_now(sd_event_source_get_event(s), CLOCK_BOOTTIME, &now);
	usec += a->tick_us;
	sd_event_source_set_time(s, usec > now ? usec : now + a->tick_us);
	return 0;
}

int tick_add_source(struct agent *a)
{
	/* Armed by tick_set_period, once the set's intervals are known. */
	int err = sd_event_add_time(a->loop, &a->tick, CLOCK_BOOTTIME, 0, TICK_ACCURACY_US, on_tick, a);

	if (err >= 0)
		err = sd_event_source_set_enabled(a->tick, SD_EVENT_OFF);
	return err < 0 ? vg_error(err, "agent: the periodic timer") : 0;
}

int tick_set_period(struct agent *a, unsigned ms)
{
	uint64_t now;
	int err;

	a->tick_us = ms * 1000ULL;
	if ((err = sd_event_now(a->loop, CLOCK_BOOTTIME, &now)) < 0 ||
	    (err = sd_event_source_set_time(a->tick, now + a->tick_us)) < 0 ||
	    (err = sd_event_source_set_enabled(a->tick, SD_EVENT_ON)) < 0)
		return vg_error(err, "agent: arm the periodic timer (%u ms)", ms);
	return 0;
}
