/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A guard set: the guards of one attach, from its command line and its config
 * file, checked against the kernel (cgroups, namespaces, tunnels) before
 * anything changes. The agent prepares a new set on SIGHUP the same way.
 */
#ifndef VG_GUARDS_H
#define VG_GUARDS_H

#include <stdint.h>
#include "cgroup.h"
#include "config.h"
#include "health.h"
#include "loader.h"

struct vg_guard_spec {
	const char *name;               /* "command line" or the section's name */
	const struct vg_options *o;
	struct vg_cgroup *cgroups;      /* --cgroup ones, then --container ones (allocated: 8 KiB each) */
	int n_cgroups;
	char tunnel_netns[64];          /* --tunnel-container's /proc/PID/ns/net */
	struct vg_health_cfg health;
};

struct vg_guard_set {
	struct vg_config conf;
	const char *config_path;        /* NULL: no file was read */
	int64_t resolved_ns;            /* wall clock when its containers were looked up */
	const char *log;
	const char *webhook;
	const char *http;
	struct vg_guard_spec specs[VG_MAX_CONF_GUARDS + 1];
	struct vg_attach_req reqs[VG_MAX_CONF_GUARDS + 1];
	int n;
};

/*
 * Reads cli's guard and, when cli names one or gives no --cgroup, the config
 * file; checks everything. by_agent: this process will be the guards' agent
 * (their leases are its to renew). Errors are reported on stderr; returns
 * -EINVAL for bad input, another -errno for a failure of the machine.
 */
int vg_guard_set_prepare(const struct vg_options *cli, bool by_agent, struct vg_guard_set *s);

/* Attaches every guard of the set, all or nothing. */
int vg_guard_set_apply(struct vg_guard_set *s, bool keep_state);

void vg_guard_set_free(struct vg_guard_set *s);

/*
 * The first guard that names containers (--container, --tunnel-container):
 * its --docker-host is the engine to follow. NULL when none does.
 */
const struct vg_options *vg_guard_set_docker(const struct vg_guard_set *s);

/* Is id one of the set's guards? */
bool vg_guard_set_has(const struct vg_guard_set *s, __u64 id);

/* Boot-clock now, the clock of vg_state.lease_deadline_ns. */

#endif
