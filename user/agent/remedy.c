// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>
#include "agent_state.h"
#include "clock.h"
#include "docker.h"
#include "log.h"
#include "remedy.h"
#include "restart_budget.h"
#include "status.h"
#include "verdict.h"
#include "error.h"

/* A tunnel container not ready yet (not running, unhealthy), or an engine that failed: again this often. */
#define RETRY_NS (5 * 1000000000LL)
/*
 * What the agent holds when it stops is given back within this: nobody else would (the next
 * agent leaves paused containers alone and never sees stopped ones), and a stop must not wait
 * long for an engine that does not answer.
 */
#define GIVE_BACK_NS (5 * 1000000000LL)

/* What the agent keeps per guard, by name: it outlives reloads, which renumber the guards. */
struct remedy_guard {
	char name[64];
	ino_t vpn_netns;            /* the tunnel container's namespace in the last applied set */
	bool restart_due;           /* it changed: its dependents are restarted once the tunnel is there */
	int64_t due_at;             /* not before (monotonic ns) */
	struct vg_restart_budget budget;
	bool busy;                  /* a job of this guard is with the thread */
	int64_t hold_retry_at;      /* a hold or release failed: not again before (monotonic ns) */
	bool held;                  /* on-closed: its containers are paused or stopped */
	enum vg_on_closed held_how;
	char held_ids[VG_REMEDY_MAX_IDS][65];
	int n_held;
};

struct remedy {
	struct vg_remedy *thread;
	int efd;
	sd_event_source *timer;
	struct remedy_guard guards[MAX_GROUPS];
	int n;
};

static struct remedy_guard *guard_of(struct remedy *r, const char *name)
{
	for (int i = 0; i < r->n; i++)
		if (!strcmp(r->guards[i].name, name))
			return &r->guards[i];
	if (r->n == MAX_GROUPS) {
		/* Guards that left the set hold nothing (released when they left): reuse one. */
		for (int i = 0; i < r->n; i++)
			if (!r->guards[i].busy && !r->guards[i].held) {
				memset(&r->guards[i], 0, sizeof(r->guards[i]));
				snprintf(r->guards[i].name, sizeof(r->guards[i].name), "%s", name);
				return &r->guards[i];
			}
		return NULL;
	}
	snprintf(r->guards[r->n].name, sizeof(r->guards[0].name), "%s", name);
	return &r->guards[r->n++];
}

static bool wants_remedy(const struct vg_options *o)
{
	return o->restart_dependents || o->on_closed != VG_ON_CLOSED_NONE;
}

/* The thread on the engine, started when a guard first asks for it. */
static struct vg_remedy *thread_of(struct agent *a, const struct vg_options *o)
{
	char sock[PATH_MAX], err[PATH_MAX + 128];

	if (a->remedy->thread)
		return a->remedy->thread;
	if (vg_docker_socket(o->docker_host, sock, sizeof(sock), err, sizeof(err))) {
		vg_error(-EINVAL, "agent: %s", err);
		return NULL;
	}
	a->remedy->thread = vg_remedy_start(sock, a->remedy->efd);
	if (!a->remedy->thread)
		vg_error(-errno, "agent: start the thread that acts on containers (%s)", sock);
	return a->remedy->thread;
}

/* A job of guard rg; spec NULL: a release for a guard that left the set (it needs no spec). */
static int queue(struct agent *a, const struct vg_guard_spec *spec, struct remedy_guard *rg,
		 enum vg_remedy_kind kind, const char *why)
{
	struct vg_remedy_job *j = calloc(1, sizeof(*j));
	char *rels[VG_MAX_CGROUP_ARGS];
	struct vg_remedy *t = spec ? thread_of(a, spec->o) : a->remedy->thread;
	int err;

	if (!j || !t) {
		free(j);
		return -ENOMEM;
	}
	j->kind = kind;
	snprintf(j->guard, sizeof(j->guard), "%s", rg->name);
	snprintf(j->why, sizeof(j->why), "%s", why);
	j->how = kind == VG_REMEDY_RELEASE ? rg->held_how : spec->o->on_closed;
	if (spec) {
		snprintf(j->vpn, sizeof(j->vpn), "%s", spec->o->tunnel_container ?: "");
		j->words = (char **)spec->o->containers;
		j->n_words = spec->o->n_containers;
		/* Only the --cgroup ones: a --container's own cgroup is found by its name. */
		for (int i = 0; i < spec->o->n_cgroups; i++)
			rels[i] = (char *)spec->cgroups[i].rel;
		j->rels = rels;
		j->n_rels = spec->o->n_cgroups;
	}
	if (kind == VG_REMEDY_RELEASE) {
		memcpy(j->ids, rg->held_ids, sizeof(j->ids));
		j->n_ids = rg->n_held;
	}
	err = vg_remedy_queue(t, j);
	free(j);
	if (err)
		return vg_error(err, "agent: guard %s: queue a job for the engine", rg->name);
	rg->busy = true;
	return 0;
}

static void arm(struct agent *a, int64_t at)
{
	uint64_t usec = at > 0 ? (uint64_t)at / 1000 : 0, now;
	uint64_t cur = 0;
	int on = SD_EVENT_OFF;

	sd_event_now(a->loop, CLOCK_MONOTONIC, &now);
	sd_event_source_get_enabled(a->remedy->timer, &on);
	sd_event_source_get_time(a->remedy->timer, &cur);
	if (on != SD_EVENT_OFF && cur <= usec && cur > now)
		return;
	sd_event_source_set_time(a->remedy->timer, usec > now ? usec : now + 1);
	sd_event_source_set_enabled(a->remedy->timer, SD_EVENT_ONESHOT);
}

/* The guard's object of status --json (NULL when the kernel holds no guard on its first cgroup). */
static struct json_object *status_of(struct json_object *status, const struct vg_guard_spec *spec)
{
	return status ? vg_status_guard(status, spec->cgroups[0].id) : NULL;
}

static void check_restart(struct agent *a, int g, struct remedy_guard *rg, struct json_object *st, int64_t now)
{
	struct json_object *present;
	int64_t at;

	if (!rg->restart_due || rg->busy)
		return;
	/* Nothing while the new tunnel is missing: the dependents would only come back to no tunnel. */
	if (!st || !json_object_object_get_ex(st, "tunnel_present", &present) || !json_object_get_boolean(present))
		return;
	at = vg_restart_next(&rg->budget, now);
	if (at < rg->due_at)
		at = rg->due_at;
	if (at > now) {
		arm(a, at);
		return;
	}
	if (!queue(a, &a->set->specs[g], rg, VG_REMEDY_RESTART, "tunnel container started in a new namespace"))
		rg->restart_due = false;
}

/* What rg holds is given back, once its job in flight is done and not at once after one that failed. */
static void give_back(struct agent *a, const struct vg_guard_spec *spec, struct remedy_guard *rg,
		      const char *why, int64_t now)
{
	if (!rg->held || rg->busy)
		return;
	if (now < rg->hold_retry_at) {
		arm(a, rg->hold_retry_at);
		return;
	}
	queue(a, spec, rg, VG_REMEDY_RELEASE, why);
}

static void check_on_closed(struct agent *a, int g, struct remedy_guard *rg, struct json_object *st, int64_t now)
{
	const struct vg_guard_spec *spec = &a->set->specs[g];
	char why[256];

	/* Turned off by a reload while held: nothing would give the containers back when it opens. */
	if (spec->o->on_closed == VG_ON_CLOSED_NONE) {
		give_back(a, spec, rg, "on-closed turned off", now);
		return;
	}
	if (rg->busy || !st)
		return;
	if (now < rg->hold_retry_at) {
		arm(a, rg->hold_retry_at);
		return;
	}
	if (vg_guard_verdict(st, why, sizeof(why))) {
		give_back(a, spec, rg, why, now);
	} else if (!rg->held) {
		rg->held_how = spec->o->on_closed;
		queue(a, spec, rg, VG_REMEDY_HOLD, why);
	}
}

static const struct vg_guard_spec *spec_named(const struct vg_guard_set *s, const char *name)
{
	for (int g = 0; g < s->n; g++)
		if (!strcmp(s->specs[g].name, name))
			return &s->specs[g];
	return NULL;
}

void remedy_check(struct agent *a)
{
	int64_t now = (int64_t)vg_mono_ns();
	struct json_object *status = NULL;
	bool asked = false;

	if (!a->remedy)
		return;
	for (int g = 0; g < a->set->n; g++) {
		const struct vg_guard_spec *spec = &a->set->specs[g];
		struct remedy_guard *rg;

		if (!wants_remedy(spec->o) || !(rg = guard_of(a->remedy, spec->name)))
			continue;
		/* Detached by someone else: the agent keeps nothing of it, its containers included. */
		if (a->groups[g].let_go) {
			give_back(a, spec, rg, "guard let go", now);
			continue;
		}
		/* What the kernel holds, read once for every guard (and only when one asks for it). */
		if (!asked) {
			asked = true;
			if (vg_status_json(&status))
				status = NULL;
		}
		check_restart(a, g, rg, status_of(status, spec), now);
		check_on_closed(a, g, rg, status_of(status, spec), now);
	}
	json_object_put(status);
	/* Here, not at the reload only: a hold in flight then is held once its result is in. */
	for (int i = 0; i < a->remedy->n; i++) {
		const struct vg_guard_spec *spec = spec_named(a->set, a->remedy->guards[i].name);

		if (!spec || !wants_remedy(spec->o))
			give_back(a, NULL, &a->remedy->guards[i], spec ? "on-closed turned off" : "guard left the set",
				  now);
	}
}

void remedy_reloaded(struct agent *a)
{
	struct remedy *r = a->remedy;

	for (int g = 0; r && g < a->set->n; g++) {
		const struct vg_guard_spec *spec = &a->set->specs[g];
		struct remedy_guard *rg;
		struct stat st;

		if (!spec->o->restart_dependents || !(rg = guard_of(r, spec->name)) ||
		    a->set->reqs[g].netns_fd < 0 || fstat(a->set->reqs[g].netns_fd, &st))
			continue;
		/* A new namespace, or the first look: dependents left in another one are restarted. */
		if (rg->vpn_netns != st.st_ino)
			rg->restart_due = true;
		rg->vpn_netns = st.st_ino;
	}
	remedy_check(a);
}

/* "restarted qbit" or "could not restart qbit": the alert's title after the guard's name. */
static void alert_words(struct json_object *rec, char *buf, size_t len)
{
	static const struct { const char *action, *done; } words[] = {
		{ "restart", "restarted" }, { "pause", "paused" }, { "stop", "stopped" },
		{ "unpause", "unpaused" }, { "start", "started" },
	};
	const char *action = vg_json_str(rec, "action"), *done = action;
	const char *name = vg_json_str(rec, "container");

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strcmp(action, words[i].action))
			done = words[i].done;
	if (!strcmp(vg_json_str(rec, "result"), "failed"))
		snprintf(buf, len, "could not %s %s", action, name ?: "its containers");
	else if (!strcmp(vg_json_str(rec, "result"), "already"))
		snprintf(buf, len, "found %s %s already", name ?: "its containers", done);
	else
		snprintf(buf, len, "%s %s", done, name ?: "");
}

/* The containers of res (given back, or restarted) are not rg's to give back any more. */
static void forget_held(struct remedy_guard *rg, const struct vg_remedy_result *res)
{
	int kept = 0;

	for (int i = 0; i < rg->n_held; i++) {
		bool given = false;

		for (int k = 0; k < res->n_ids && !given; k++)
			given = !strcmp(rg->held_ids[i], res->ids[k]);
		if (!given)
			memmove(rg->held_ids[kept++], rg->held_ids[i], sizeof(rg->held_ids[0]));
	}
	rg->n_held = kept;
	rg->held = kept > 0;
}

static void took(struct agent *a, struct vg_remedy_result *res)
{
	struct remedy_guard *rg = guard_of(a->remedy, res->guard);
	int64_t now = (int64_t)vg_mono_ns();

	for (size_t i = 0; i < json_object_array_length(res->records); i++) {
		struct json_object *rec = json_object_array_get_idx(res->records, i);
		char what[320];

		agent_log(a, rec);
		alert_words(rec, what, sizeof(what));
		alert_send(a, rec, what);
	}
	json_object_put(res->records);
	if (!rg)
		return;
	rg->busy = false;
	if (res->kind == VG_REMEDY_RESTART) {
		if (res->n_ids)
			vg_restart_took(&rg->budget, now);
		/*
		 * A paused one restarted runs again: the restart gave it back, and an unpause
		 * now would only fail (the engine answers 500 "is not paused"), again and again.
		 */
		if (rg->held)
			forget_held(rg, res);
		/* Not ready, or a restart that failed (the engine gone): the round is due again. */
		if (res->not_ready || res->failed) {
			rg->restart_due = true;
			rg->due_at = now + RETRY_NS;
		}
		return;
	}
	/* The engine failed: not again at once (it may be gone), but after a pause. */
	if (res->failed)
		rg->hold_retry_at = now + RETRY_NS;
	if (res->kind == VG_REMEDY_HOLD) {
		/* Held even when nothing ran: the release is then empty, and containers that start meanwhile stay. */
		rg->held = !res->failed || res->n_ids;
		memcpy(rg->held_ids, res->ids, sizeof(rg->held_ids));
		rg->n_held = res->n_ids;
		return;
	}
	/* What could not be given back is kept, to be tried again. */
	forget_held(rg, res);
}

static int on_results(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *a = userdata;
	struct vg_remedy_result res;
	uint64_t n;

	(void)s, (void)revents;
	if (read(fd, &n, sizeof(n)) < 0)
		return 0;
	while (a->remedy->thread && vg_remedy_take(a->remedy->thread, &res))
		took(a, &res);
	remedy_check(a);
	return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s, (void)usec;
	remedy_check(userdata);
	return 0;
}

int remedy_init(struct agent *a)
{
	int err;

	if (!(a->remedy = calloc(1, sizeof(*a->remedy))))
		return vg_error(-ENOMEM, "agent: remedy");
	a->remedy->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->remedy->efd < 0)
		return vg_error(-errno, "agent: eventfd for the engine's actions");
	err = sd_event_add_io(a->loop, NULL, a->remedy->efd, EPOLLIN, on_results, a);
	if (err >= 0)
		err = sd_event_add_time(a->loop, &a->remedy->timer, CLOCK_MONOTONIC, 0, 1000, on_timer, a);
	if (err >= 0)
		err = sd_event_source_set_enabled(a->remedy->timer, SD_EVENT_OFF);
	return err < 0 ? vg_error(err, "agent: watch the engine's actions") : 0;
}

/* One record for a guard whose containers the agent's stop may leave held (ids: what it knows of). */
static void left_held(struct agent *a, const struct remedy_guard *rg)
{
	struct json_object *rec = vg_log_record(VG_REC_DOCKER), *ids = json_object_new_array();
	char error[96];

	for (int i = 0; i < rg->n_held; i++)
		json_object_array_add(ids, json_object_new_string(rg->held_ids[i]));
	json_object_object_add(rec, "guard", json_object_new_string(rg->name));
	json_object_object_add(rec, "action", json_object_new_string(
		rg->held_how == VG_ON_CLOSED_STOP ? "start" : "unpause"));
	json_object_object_add(rec, "ids", ids);
	json_object_object_add(rec, "why", json_object_new_string("agent stopping"));
	json_object_object_add(rec, "result", json_object_new_string("failed"));
	snprintf(error, sizeof(error), "not given back within %lld s of the agent's stop: left as they are",
		 GIVE_BACK_NS / 1000000000LL);
	json_object_object_add(rec, "error", json_object_new_string(error));
	agent_log(a, rec);
	alert_send(a, rec, rg->held_how == VG_ON_CLOSED_STOP ? "could not start its containers" :
		   "could not unpause its containers");
	json_object_put(rec);
}

/*
 * At the agent's stop, before the thread goes: every hold given back, each once (what fails
 * says so in its record), within GIVE_BACK_NS. A hold in flight ends after its container and
 * is given back too; restarts are not begun.
 */
static void give_back_all(struct agent *a)
{
	struct remedy *r = a->remedy;
	int64_t until = (int64_t)vg_mono_ns() + GIVE_BACK_NS, left;
	bool asked[MAX_GROUPS] = { false };
	struct vg_remedy_result res;

	if (!r->thread)
		return;
	vg_remedy_wind_down(r->thread);
	for (;;) {
		struct pollfd pfd = { .fd = r->efd, .events = POLLIN };
		bool waiting = false;
		uint64_t n;

		for (int i = 0; i < r->n; i++) {
			struct remedy_guard *rg = &r->guards[i];

			if (rg->held && rg->n_held && !rg->busy && !asked[i]) {
				asked[i] = true;
				queue(a, NULL, rg, VG_REMEDY_RELEASE, "agent stopping");
			}
			waiting |= rg->busy;
		}
		left = until - (int64_t)vg_mono_ns();
		if (!waiting || left <= 0)
			break;
		if (poll(&pfd, 1, (int)(left / 1000000) + 1) > 0)
			(void)!read(r->efd, &n, sizeof(n));
		while (vg_remedy_take(r->thread, &res))
			took(a, &res);
	}
	for (int i = 0; i < r->n; i++)
		if (r->guards[i].busy || (r->guards[i].n_held && !asked[i]))
			left_held(a, &r->guards[i]);
}

void remedy_free(struct agent *a)
{
	if (!a->remedy)
		return;
	give_back_all(a);
	vg_remedy_stop(a->remedy->thread);
	a->remedy->timer = sd_event_source_unref(a->remedy->timer);
	if (a->remedy->efd >= 0)
		close(a->remedy->efd);
	free(a->remedy);
	a->remedy = NULL;
}
