// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clock.h"
#include "docker.h"
#include "log.h"
#include "remedy.h"
#include "worker.h"
#include "error.h"

#define QUEUE_LEN 16

struct vg_remedy {
	char sock[PATH_MAX];
	int notify_fd;
	struct vg_worker w;
	atomic_bool winding;        /* the agent stops: releases only (vg_remedy_wind_down) */
	struct vg_remedy_job *jobs[QUEUE_LEN];
	int jobs_head, n_jobs;
	struct vg_remedy_result results[QUEUE_LEN];
	int results_head, n_results;
};

static void job_free(struct vg_remedy_job *j)
{
	if (!j)
		return;
	for (int i = 0; i < j->n_words; i++)
		free(j->words[i]);
	for (int i = 0; i < j->n_rels; i++)
		free(j->rels[i]);
	free(j->words);
	free(j->rels);
	free(j);
}

static char **copy_list(char *const *src, int n)
{
	char **dst = calloc(n ? n : 1, sizeof(*dst));

	for (int i = 0; dst && i < n; i++)
		if (!(dst[i] = strdup(src[i]))) {
			while (i--)
				free(dst[i]);
			free(dst);
			return NULL;
		}
	return dst;
}

/* The network namespace a process is in, by inode (0 when it is gone). */
static ino_t netns_of(int pid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* Is the running container c one of the job's guard's: named, or with its cgroup under one of the guard's? */
static bool guards_it(const struct vg_remedy_job *j, const struct vg_docker_container *c)
{
	struct vg_cgroup cg;
	char why[PATH_MAX + 128];

	for (int i = 0; i < j->n_words; i++)
		if (vg_docker_designates(c->id, c->name, j->words[i]))
			return true;
	if (!c->running || vg_cgroup_of_pid(c->pid, &cg, why, sizeof(why)))
		return false;
	for (int i = 0; i < j->n_rels; i++) {
		size_t n = strlen(j->rels[i]);

		/* A guard is never on the root cgroup (attach refuses it): a prefix ends at a '/'. */
		if (!strncmp(cg.rel, j->rels[i], n) && (cg.rel[n] == '/' || !cg.rel[n]))
			return true;
	}
	return false;
}

/* One `docker` record of an action on container (id, name), or of the job as a whole (id NULL). */
static void record(struct vg_remedy_result *res, const struct vg_remedy_job *j, const char *action,
		   const char *id, const char *name, int err, const char *error, double took_s)
{
	struct json_object *rec = vg_log_record(VG_REC_DOCKER);

	json_object_object_add(rec, "guard", json_object_new_string(j->guard));
	json_object_object_add(rec, "action", json_object_new_string(action));
	if (id) {
		json_object_object_add(rec, "container", json_object_new_string(name));
		json_object_object_add(rec, "id", json_object_new_string(id));
	}
	json_object_object_add(rec, "why", json_object_new_string(j->why));
	json_object_object_add(rec, "result", json_object_new_string(
		!err ? "done" : err == -EALREADY ? "already" : "failed"));
	if (err && err != -EALREADY)
		json_object_object_add(rec, "error", json_object_new_string(error));
	if (id)
		json_object_object_add(rec, "took_s", json_object_new_double(took_s));
	json_object_array_add(res->records, rec);
	res->failed |= err && err != -EALREADY;
}

static void settle(struct vg_remedy_result *res, const char *id)
{
	if (res->n_ids < VG_REMEDY_MAX_IDS)
		snprintf(res->ids[res->n_ids++], sizeof(res->ids[0]), "%s", id);
}

/*
 * The action on one container; res->ids lists it when it is settled: done, or
 * for a release also already so or gone (nothing is left to give back).
 */
static void act(struct vg_remedy *r, const struct vg_remedy_job *j, struct vg_remedy_result *res,
		const char *action, const char *id, const char *name)
{
	char err[PATH_MAX + 256] = "";
	uint64_t t0 = vg_mono_ns();
	int rc = vg_docker_act(r->sock, id, action, &r->w.stop, err, sizeof(err));
	bool settled = !rc || (j->kind == VG_REMEDY_RELEASE && (rc == -EALREADY || rc == -ENOENT));

	record(res, j, action, id, name, rc, err, (double)(vg_mono_ns() - t0) / 1e9);
	if (settled)
		settle(res, id);
}

/* Each container of the engine's list that is running, with what inspect says of it, to fn. */
static int each_running(struct vg_remedy *r, const struct vg_remedy_job *j, struct vg_remedy_result *res,
			void (*fn)(struct vg_remedy *, const struct vg_remedy_job *, struct vg_remedy_result *,
				   const struct vg_docker_container *, void *), void *ctx)
{
	struct vg_docker_summary *list;
	struct vg_docker_container c;
	char err[PATH_MAX + 256];
	int n, rc = vg_docker_list(r->sock, &list, &n, err, sizeof(err));

	if (rc) {
		record(res, j, j->kind == VG_REMEDY_RESTART ? "restart" : j->how == VG_ON_CLOSED_STOP ?
		       "stop" : "pause", NULL, NULL, rc, err, 0);
		return rc;
	}
	/* The agent's stop cuts a restart or hold short here: what a hold took so far is given back. */
	for (int i = 0; i < n && !atomic_load(&r->w.stop) && !atomic_load(&r->winding); i++)
		if ((!strcmp(list[i].state, "running") || !strcmp(list[i].state, "paused")) &&
		    !vg_docker_inspect(r->sock, list[i].id, &c, err, sizeof(err)) && c.running)
			fn(r, j, res, &c, ctx);
	free(list);
	return 0;
}

struct vpn {
	struct vg_docker_container c;
	ino_t netns;
};

static void restart_if_left_behind(struct vg_remedy *r, const struct vg_remedy_job *j,
				   struct vg_remedy_result *res, const struct vg_docker_container *c, void *ctx)
{
	const struct vpn *vpn = ctx;
	ino_t ns = netns_of(c->pid);

	if (!vg_docker_joins(c->network_mode, vpn->c.id, vpn->c.name) || !ns || ns == vpn->netns ||
	    !guards_it(j, c))
		return;
	act(r, j, res, "restart", c->id, c->name);
}

static void run_restart(struct vg_remedy *r, const struct vg_remedy_job *j, struct vg_remedy_result *res)
{
	struct vpn vpn;
	char err[PATH_MAX + 256];

	/*
	 * A healthcheck that has not passed since the start (starting: gluetun's while it
	 * connects) is no better than a failing one: the dependents would come back to a
	 * VPN that may not work yet. No healthcheck: its running is all there is to go by.
	 */
	if (vg_docker_inspect(r->sock, j->vpn, &vpn.c, err, sizeof(err)) || !vpn.c.running ||
	    !strcmp(vpn.c.health, "unhealthy") || !strcmp(vpn.c.health, "starting") ||
	    !(vpn.netns = netns_of(vpn.c.pid))) {
		res->not_ready = true;
		return;
	}
	each_running(r, j, res, restart_if_left_behind, &vpn);
}

static void hold_if_ours(struct vg_remedy *r, const struct vg_remedy_job *j, struct vg_remedy_result *res,
			 const struct vg_docker_container *c, void *ctx)
{
	(void)ctx;
	/* A container already paused is not ours to unpause later; the VPN container is never held. */
	if (c->paused || vg_docker_designates(c->id, c->name, j->vpn) || !guards_it(j, c))
		return;
	/* What is taken must be given back: no more than can be remembered. */
	if (res->n_ids == VG_REMEDY_MAX_IDS) {
		char why[96];

		snprintf(why, sizeof(why), "the guard holds %d containers already: left running",
			 VG_REMEDY_MAX_IDS);
		record(res, j, j->how == VG_ON_CLOSED_STOP ? "stop" : "pause", c->id, c->name, -E2BIG, why, 0);
		return;
	}
	act(r, j, res, j->how == VG_ON_CLOSED_STOP ? "stop" : "pause", c->id, c->name);
}

static void run_release(struct vg_remedy *r, const struct vg_remedy_job *j, struct vg_remedy_result *res)
{
	struct vg_docker_container c;
	char err[PATH_MAX + 256];

	for (int i = 0; i < j->n_ids && !atomic_load(&r->w.stop); i++) {
		const char *action = j->how == VG_ON_CLOSED_STOP ? "start" : "unpause";
		bool known = !vg_docker_inspect(r->sock, j->ids[i], &c, err, sizeof(err));

		/*
		 * Unpaused meanwhile (docker unpause, a restart, it exited): nothing is left to give
		 * back, and the engine's answer to an unpause would be an error (500 "is not
		 * paused"), not "already": one that would be tried again every few seconds.
		 */
		if (known && j->how != VG_ON_CLOSED_STOP && !c.paused) {
			record(res, j, action, j->ids[i], c.name, -EALREADY, "", 0);
			settle(res, j->ids[i]);
			continue;
		}
		act(r, j, res, action, j->ids[i], known ? c.name : "");
	}
}

static void push_result(struct vg_remedy *r, struct vg_remedy_result *res)
{
	uint64_t one = 1;

	pthread_mutex_lock(&r->w.lock);
	if (r->n_results == QUEUE_LEN) {
		/* The loop drains at each wake: full means it is gone; the oldest results go. */
		json_object_put(r->results[r->results_head].records);
		r->results_head = (r->results_head + 1) % QUEUE_LEN;
		r->n_results--;
	}
	r->results[(r->results_head + r->n_results++) % QUEUE_LEN] = *res;
	pthread_mutex_unlock(&r->w.lock);
	if (write(r->notify_fd, &one, sizeof(one)) < 0)
		vg_error(-errno, "agent: remedy: wake the agent");
}

static void *run(void *arg)
{
	struct vg_remedy *r = arg;

	for (;;) {
		struct vg_remedy_job *j = NULL;

		pthread_mutex_lock(&r->w.lock);
		if (r->n_jobs) {
			j = r->jobs[r->jobs_head];
			r->jobs_head = (r->jobs_head + 1) % QUEUE_LEN;
			r->n_jobs--;
		}
		pthread_mutex_unlock(&r->w.lock);
		if (atomic_load(&r->w.stop)) {
			job_free(j);
			break;
		}
		if (!j) {
			if (vg_worker_sleep(&r->w, -1))
				break;
			continue;
		}
		struct vg_remedy_result res = { .kind = j->kind, .records = json_object_new_array() };

		snprintf(res.guard, sizeof(res.guard), "%s", j->guard);
		/* Winding down, a restart or hold is not begun: its empty result frees the guard's turn. */
		if (j->kind == VG_REMEDY_RELEASE)
			run_release(r, j, &res);
		else if (j->kind == VG_REMEDY_RESTART && !atomic_load(&r->winding))
			run_restart(r, j, &res);
		else if (j->kind == VG_REMEDY_HOLD && !atomic_load(&r->winding))
			each_running(r, j, &res, hold_if_ours, NULL);
		job_free(j);
		push_result(r, &res);
	}
	return NULL;
}

struct vg_remedy *vg_remedy_start(const char *sock, int notify_fd)
{
	struct vg_remedy *r = calloc(1, sizeof(*r));
	int err = r ? 0 : -ENOMEM;

	if (r) {
		snprintf(r->sock, sizeof(r->sock), "%s", sock);
		r->notify_fd = notify_fd;
		err = vg_worker_start(&r->w, run, r);
	}
	if (!err)
		return r;
	free(r);
	errno = -err;
	return NULL;
}

int vg_remedy_queue(struct vg_remedy *r, const struct vg_remedy_job *job)
{
	struct vg_remedy_job *j = malloc(sizeof(*j));
	int err = 0;

	if (!j)
		return -ENOMEM;
	*j = *job;
	j->words = copy_list(job->words, job->n_words);
	j->rels = copy_list(job->rels, job->n_rels);
	if (!j->words || !j->rels) {
		j->n_words = j->words ? j->n_words : 0;
		j->n_rels = j->rels ? j->n_rels : 0;
		job_free(j);
		return -ENOMEM;
	}
	pthread_mutex_lock(&r->w.lock);
	if (r->n_jobs == QUEUE_LEN)
		err = -EBUSY;
	else
		r->jobs[(r->jobs_head + r->n_jobs++) % QUEUE_LEN] = j;
	vg_worker_wake(&r->w);
	pthread_mutex_unlock(&r->w.lock);
	if (err)
		job_free(j);
	return err;
}

bool vg_remedy_take(struct vg_remedy *r, struct vg_remedy_result *out)
{
	bool got = false;

	pthread_mutex_lock(&r->w.lock);
	if (r->n_results) {
		*out = r->results[r->results_head];
		r->results_head = (r->results_head + 1) % QUEUE_LEN;
		r->n_results--;
		got = true;
	}
	pthread_mutex_unlock(&r->w.lock);
	return got;
}

void vg_remedy_wind_down(struct vg_remedy *r)
{
	if (r)
		atomic_store(&r->winding, true);
}

void vg_remedy_stop(struct vg_remedy *r)
{
	if (!r)
		return;
	vg_worker_stop(&r->w, -1);
	while (r->n_jobs) {
		job_free(r->jobs[r->jobs_head]);
		r->jobs_head = (r->jobs_head + 1) % QUEUE_LEN;
		r->n_jobs--;
	}
	for (; r->n_results; r->n_results--, r->results_head = (r->results_head + 1) % QUEUE_LEN)
		json_object_put(r->results[r->results_head].records);
	free(r);
}
