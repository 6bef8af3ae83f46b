/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's state, shared by its event sources, one file each:
 *   agent.c       the loop (sd-event), signals, claim and teardown
 *   watch.c       one netlink watch per tunnel namespace: tunnel maps and steering rules
 *   probing.c     the probes' results: judge, open or close, renew leases
 *   tick.c        the periodic timer: leases of unprobed guards, pins, the escape scan
 *   reload.c      a new set all or nothing (SIGHUP, a container start) and its retry timer
 *   containers.c  the engine's event stream
 *   remedy.c      what the agent does to containers (restart dependents, on-closed), by a thread
 *   alert.c       the webhook
 * The ring buffer of denials is drained to the log by agent.c's handler.
 */
#ifndef VG_AGENT_STATE_H
#define VG_AGENT_STATE_H

#include <stdbool.h>
#include <json-c/json.h>
#include <systemd/sd-event.h>
#include <linux/types.h>
#include "agent.h"
#include "events.h"
#include "follow.h"
#include "health.h"
#include "probe.h"
#include "webhook.h"

#define MAX_WATCHES VG_MAX_GUARDS
#define MAX_GROUPS (VG_MAX_CONF_GUARDS + 1)

/* The escape scan: at start, on SIGHUP, and this often. */
#define VG_SCAN_INTERVAL_S 30

struct watch {
	__u64 cookie;
	int netns_fd;
	struct mnl_socket *nl;
	sd_event_source *src;
	bool pending;               /* a change seen, not refreshed yet (the lock was held) */
	__u64 seen_us;              /* when the first of them was seen */
};

/* What the agent keeps of one guard of its set (same index as set->specs). */
struct group {
	struct vg_health h;
	struct vg_prober *prober;
	bool judged;                /* last_why is set */
	bool let_go;                /* detached by someone else: no more probes, leases, pins */
	enum vg_why last_why;
};

/* History (history.h has the guards' slots). */
#define HISTORY_BLOCKED 128         /* the last blocked attempts, of every guard */
#define HISTORY_SHOWN 20            /* of them, per guard in /api/v1/status */
struct history;
struct remedy;

struct agent {
	sd_event *loop;
	struct vg_log log;
	struct vg_event_reader *reader;
	struct watch watches[MAX_WATCHES];
	int n_watches;
	int probe_efd, docker_efd;
	sd_event_source *tick, *retry, *watch_retry;
	__u64 tick_us, last_scan_ns;
	int retries_left;
	struct vg_follower *follower;
	struct json_object *findings;   /* the last scan's, each logged once while it lasts */
	struct vg_guard_set *set;
	const struct vg_options *cli;
	struct group groups[MAX_GROUPS];
	struct vg_webhook *webhook;
	struct history *hist;           /* HISTORY_SLOTS of them */
	struct json_object *blocked[HISTORY_BLOCKED];
	int blocked_next;
	int64_t started_ns;
	struct vg_web *web;
	struct remedy *remedy;
};

/* Writes rec to the log (and frees nothing: the caller puts it). */
void agent_log(struct agent *a, struct json_object *rec);
/* rec's "guard" and "cgroups" fields from spec. */
void agent_add_guard(struct json_object *rec, const struct vg_guard_spec *spec);
/* The guard of the set that holds cgroup id, or NULL. */
const struct vg_guard_spec *agent_spec_of(const struct agent *a, __u64 id);

/* watch.c: watches the namespace of every tunnel-mode guard pinned now (the old ones dropped). */
int watches_add_source(struct agent *a);
int watches_rebuild(struct agent *a);
void watches_drop(struct agent *a);

/* probing.c */
int probing_add_source(struct agent *a);
/* Probers for the set's probed guards; the tick at the shortest interval of the others. */
int probing_start(struct agent *a);
void probing_stop(struct agent *a);
/* Guards with no probe: the lease only says the agent is alive. */
void probing_renew_unprobed(struct agent *a);
/* The guard g was detached (not by the agent): its probes stop, nothing is written for it. */
void probing_let_go(struct agent *a, int g);

/* tick.c */
int tick_add_source(struct agent *a);
int tick_set_period(struct agent *a, unsigned ms);
/* Logs each finding of the escape scan that the last scan did not have. */
void tick_scan_now(struct agent *a);
/* Pins that vanished are made again; a guard someone detached is let go (all: the agent ends). */
void tick_check_pins(struct agent *a);

/* reload.c */
int reload_add_source(struct agent *a);
/* The set again (why: what asked, for the log), all or nothing; -errno when refused. */
int reload_set(struct agent *a, const char *why);
/* reload_set, then the tunnels watched again; a refusal is retried while retries_left. */
int reload_watched(struct agent *a, const char *why);
/* The next reload_watched that is refused is retried (a container's tunnel comes a moment after it). */
void reload_arm(struct agent *a);

/* containers.c */
int containers_add_source(struct agent *a);
/* Starts following the engine when the set names containers and no follower runs yet. */
void containers_follow(struct agent *a);

/* remedy.c: what the agent does to containers through the engine (restart dependents, on-closed) */
int remedy_init(struct agent *a);
void remedy_free(struct agent *a);
/* A set was applied: a tunnel container in a new namespace has its dependents restarted. */
void remedy_reloaded(struct agent *a);
/* A guard's state or tunnel may have changed: containers paused or resumed to match (on-closed). */
void remedy_check(struct agent *a);

/* history.c */
int history_init(struct agent *a);
void history_free(struct agent *a);
/* A new set was taken: the history of guards that left it is dropped. */
void history_reloaded(struct agent *a);
/* A state the guard is in from now (the agent's view: a probe's verdict, or an unprobed guard's lease). */
void history_state(struct agent *a, const struct vg_guard_spec *spec, bool open, const char *why);
void history_probe(struct agent *a, const struct vg_guard_spec *spec, const struct vg_probe_result *r,
		   enum vg_why why);
void history_blocked(struct agent *a, struct json_object *rec);
/* The tunnel of the guard of cgroup id is there or not (the netlink watch's view, each refresh). */
void history_tunnel_seen(struct agent *a, __u64 id, bool present);
/* guard (an object of vg_status_json) with what the agent knows of it. */
void history_add_json(struct agent *a, struct json_object *guard);

/* web.c: the HTTP endpoint (--http), when the set asks for one; 0 or -errno. */
int web_apply(struct agent *a);
void web_stop(struct agent *a);

/* alert.c */
void alert_send(struct agent *a, struct json_object *rec, const char *what);
/* The webhook of the current set; 0 or -errno (alerts off until the next reload). */
int alert_restart(struct agent *a);

#endif
