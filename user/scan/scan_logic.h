/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The namespace-escape scan, judged: pure (no syscalls), so its rules are
 * unit-tested on made-up process tables. scan.c reads /proc and the maps.
 *
 * "Its container" of a process in a guarded cgroup is the oldest process
 * (earliest start time, then lowest PID) of the very cgroup it is in: for a
 * container that is its init (State.Pid), which starts first and lives as
 * long as the container; for anything else it is the process the others
 * were started from. No engine is needed for these, so the scan also covers
 * slices that hold host processes (T1) and works while the engine is down.
 *
 * Findings:
 *   netns    a process of a guarded cgroup in another network namespace than
 *            its container (the s6-overlay escape: right cgroup, wrong
 *            namespaces);
 *   pidns    likewise for the PID namespace;
 *   net_raw  a process of a guarded cgroup holding CAP_NET_RAW (effective or
 *            permitted): packet sockets skip every cgroup program;
 *   outside  a process in the PID namespace of a guarded container (one whose
 *            init has a PID namespace of its own) whose cgroup is not inside
 *            that guard at all;
 *   ghost    a process of a guarded cgroup whose path names a Docker container
 *            (docker-<id>.scope with the systemd driver, a <id> component with
 *            cgroupfs) that the engine does not run: judged apart
 *            (vg_scan_ghosts), once the engine was asked.
 */
#ifndef VG_SCAN_LOGIC_H
#define VG_SCAN_LOGIC_H

#include <stdbool.h>
#include <stdint.h>
#include <json-c/json.h>

#define VG_CONTAINER_ID_LEN 64

struct vg_proc {
	int pid;
	char comm[16];
	const char *cgroup;      /* cgroup v2 path below the mount */
	uint64_t start;          /* clock ticks since boot */
	uint64_t netns, pidns;   /* namespace inode numbers */
	uint64_t cap_eff, cap_prm;
};

struct vg_scan_guard {
	uint64_t id;
	const char *cgroup;      /* below the mount, as recorded in vg_guards */
};

enum vg_finding_kind {
	VG_FIND_NETNS,
	VG_FIND_PIDNS,
	VG_FIND_NET_RAW,
	VG_FIND_OUTSIDE,
	VG_FIND_GHOST,
};

struct vg_finding {
	enum vg_finding_kind kind;
	int proc;                /* index in the process table */
	int ref;                 /* its container's init (index), -1 for net_raw */
	int guard;               /* the guard it belongs to (outside: its container's) */
};

struct vg_scan_input {
	const struct vg_proc *procs;
	int n_procs;
	const struct vg_scan_guard *guards;
	int n_guards;
	uint64_t own_pidns;      /* the scanner's: a container's is any other */
};

/*
 * The Docker container a cgroup path names: its deepest component that is
 * docker-<64 hex>.scope (systemd driver) or <64 hex> (cgroupfs driver).
 * false when none is; id gets the 64 hex digits.
 */
bool vg_cgroup_container_id(const char *cgroup, char id[VG_CONTAINER_ID_LEN + 1]);

/*
 * Does a container the engine lists in this State own processes? Every state
 * but exited and dead may (created: its init waits for the start; paused,
 * restarting, removing): only a process of a container it calls ended, or
 * of one it does not list, is a ghost.
 */
bool vg_scan_state_owns(const char *state);

/* The deepest guard whose cgroup holds this one (itself or an ancestor); -1 if none. */
int vg_scan_guard_of(const struct vg_scan_input *in, const char *cgroup);

/* Writes at most max findings to out; returns how many there are in all. */
int vg_scan_judge(const struct vg_scan_input *in, struct vg_finding *out, int max);

/* Ghosts, as vg_scan_judge: running holds the full ids of the n containers the engine has processes of. */
int vg_scan_ghosts(const struct vg_scan_input *in, const char (*running)[VG_CONTAINER_ID_LEN + 1], int n,
		   struct vg_finding *out, int max);

const char *vg_finding_name(enum vg_finding_kind kind);

/* A finding as a record: kind, pid, comm, cgroup, guard, container_pid, detail (ghost: container_id). */
struct json_object *vg_finding_to_json(const struct vg_scan_input *in, const struct vg_finding *f);

/* A finding record as `scan` prints it, escaped: a process chose its comm and cgroup. */
void vg_finding_to_line(struct json_object *f, char *buf, size_t len);

/* Does list (an array of finding records) hold one of the same kind and pid? */
bool vg_finding_listed(struct json_object *list, struct json_object *f);

#endif
