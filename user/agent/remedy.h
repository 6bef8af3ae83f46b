/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's hands on the engine: a thread that restarts, pauses, stops,
 * unpauses and starts containers through the Engine API, so the event loop
 * never waits for a container to stop. The loop (remedy.c) decides; this
 * thread (remedy_run.c) finds the containers a job concerns when it runs, acts,
 * and hands back one `docker` record per container it acted on.
 *
 * A guard's containers are those its --container words name and the running
 * ones whose cgroup v2 lies under one of its cgroups (a guarded slice). The
 * dependents of a tunnel container are those of the guard's containers whose
 * NetworkMode joins it ("container:<id or name>") and whose network namespace
 * is not the tunnel container's any more.
 */
#ifndef VG_REMEDY_H
#define VG_REMEDY_H

#include <stdbool.h>
#include <json-c/json.h>
#include "args.h"

enum vg_remedy_kind {
	VG_REMEDY_RESTART,          /* restart the dependents of the tunnel container */
	VG_REMEDY_HOLD,             /* pause (stop) the guard's running containers */
	VG_REMEDY_RELEASE,          /* unpause (start) the ones a hold took */
};

#define VG_REMEDY_MAX_IDS 64

struct vg_remedy_job {
	enum vg_remedy_kind kind;
	char guard[64];
	char why[128];              /* for the records: what the agent saw */
	enum vg_on_closed how;      /* hold and release */
	char vpn[256];              /* the tunnel container (restart; a hold never touches it) */
	char **words;               /* the guard's --container words */
	int n_words;
	char **rels;                /* its cgroups, below the cgroup2 mount */
	int n_rels;
	char ids[VG_REMEDY_MAX_IDS][65];   /* release: the containers the hold took */
	int n_ids;
};

struct vg_remedy_result {
	enum vg_remedy_kind kind;
	char guard[64];
	struct json_object *records;        /* an array of `docker` records, the caller's to put */
	/* hold: what it paused or stopped; restart: what it restarted; release: what is given back */
	char ids[VG_REMEDY_MAX_IDS][65];
	int n_ids;
	bool not_ready;             /* restart: the tunnel container is not running, or not healthy yet */
	bool failed;                /* some action (or the engine) failed */
};

struct vg_remedy;

/* A thread on the engine's socket sock; results wake notify_fd. NULL with errno. */
struct vg_remedy *vg_remedy_start(const char *sock, int notify_fd);

/* Queues a copy of job (its lists copied too); -EBUSY when the queue is full. */
int vg_remedy_queue(struct vg_remedy *r, const struct vg_remedy_job *job);

/* The oldest result; false when there is none. */
bool vg_remedy_take(struct vg_remedy *r, struct vg_remedy_result *out);

/*
 * From now on only releases run: restarts and holds queued are not begun (their
 * results are empty), one in flight ends after the container it acts on.
 */
void vg_remedy_wind_down(struct vg_remedy *r);

/* Stops after the action in flight (up to a minute: a container that is stopping). NULL: nothing. */
void vg_remedy_stop(struct vg_remedy *r);

#endif
