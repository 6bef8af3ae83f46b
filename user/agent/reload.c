// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include "agent_state.h"
#include "loader.h"
#include "pidfile.h"
#include "error.h"

/*
 * A reload after a container start that was refused is tried again this
 * often, this many times: a VPN container makes its tunnel a moment after
 * it starts, and until then the tunnel cannot be found in its namespace.
 */
#define RETRY_US 1000000ULL
#define RETRY_MAX 60

/*
 * Takes next as the running set: cgroups that left it are detached; the
 * guards' health starts again, their history goes on.
 */
static int take_set(struct agent *a, struct vg_guard_set *next, struct json_object *rec)
{
	__u64 gone[VG_MAX_CGROUP_ARGS * MAX_GROUPS];
	int n_gone = 0, err;

	probing_stop(a);
	for (int g = 0; g < a->set->n; g++)
		for (int i = 0; i < a->set->specs[g].n_cgroups; i++)
			if (!vg_guard_set_has(next, a->set->specs[g].cgroups[i].id))
				gone[n_gone++] = a->set->specs[g].cgroups[i].id;
	if (n_gone)
		vg_detach(gone, n_gone);
	json_object_object_add(rec, "guards", json_object_new_int(next->n));
	json_object_object_add(rec, "detached", json_object_new_int(n_gone));
	vg_guard_set_free(a->set);
	free(a->set);
	a->set = next;
	history_reloaded(a);
	alert_restart(a);
	web_apply(a);
	err = probing_start(a);
	remedy_reloaded(a);
	return err;
}

/*
 * A new set from the same command line and config file (SIGHUP), or with
 * containers looked up again (a container started: new cgroup, new
 * namespace), applied all or nothing; guards that stay keep their state. On
 * any error the running set and its policies stay, and the record says why.
 */
int reload_set(struct agent *a, const char *why)
{
	struct vg_guard_set *next = malloc(sizeof(*next));
	struct json_object *rec = vg_log_record(VG_REC_RELOAD);
	int lock, err;

	sd_notify(0, "RELOADING=1");
	vg_error_forget();
	/* One attach, detach or reload at a time: the set is checked and applied under the lock. */
	lock = vg_lock_take();
	err = lock < 0 ? lock : next ? vg_guard_set_prepare(a->cli, true, next) : -ENOMEM;
	if (!err)
		err = vg_guard_set_apply(next, true);
	json_object_object_add(rec, "trigger", json_object_new_string(why));
	json_object_object_add(rec, "config", a->set->config_path ?
			       json_object_new_string(a->set->config_path) : NULL);
	json_object_object_add(rec, "result", json_object_new_string(err ? "refused" : "applied"));
	if (err) {
		const char *cause = vg_error_last();

		json_object_object_add(rec, "error", json_object_new_string(
			cause[0] ? cause : strerror(-err)));
		/* Only a set that prepare began holds anything: a lock not taken left it unwritten. */
		if (next && lock >= 0)
			vg_guard_set_free(next);
		free(next);
	} else {
		take_set(a, next, rec);
	}
	vg_lock_drop(lock);
	agent_log(a, rec);
	json_object_put(rec);
	sd_notify(0, "READY=1");
	return err;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct agent *a = userdata;

	(void)s, (void)usec;
	a->retries_left--;
	reload_watched(a, "retry");
	return 0;
}

int reload_add_source(struct agent *a)
{
	int err = sd_event_add_time_relative(a->loop, &a->retry, CLOCK_MONOTONIC, RETRY_US, 0, on_retry, a);

	if (err >= 0)
		err = sd_event_source_set_enabled(a->retry, SD_EVENT_OFF);
	return err < 0 ? vg_error(err, "agent: the reload retry timer") : 0;
}

int reload_watched(struct agent *a, const char *why)
{
	int err = reload_set(a, why);

	watches_rebuild(a);
	if (!err) {
		a->retries_left = 0;
	} else if (a->retries_left > 0) {
		sd_event_source_set_time_relative(a->retry, RETRY_US);
		sd_event_source_set_enabled(a->retry, SD_EVENT_ONESHOT);
	}
	return err;
}

void reload_arm(struct agent *a)
{
	a->retries_left = RETRY_MAX;
}
