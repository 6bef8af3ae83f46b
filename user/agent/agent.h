/* SPDX-License-Identifier: GPL-2.0 */
/* The agent: drains events to the log, follows the tunnels, probes, renews leases, alerts. */
#ifndef VG_AGENT_H
#define VG_AGENT_H

#include "guards.h"
#include "log.h"

/* What makes this process the agent, taken before anything is attached. */
struct vg_agent_claim {
	struct vg_log log;
	int pidfile_fd;
};

/*
 * Opens set's log and takes the agent's pidfile: -EALREADY when another
 * agent runs, other errors named on stderr.
 */
int vg_agent_claim(const struct vg_guard_set *set, struct vg_agent_claim *c);
void vg_agent_unclaim(struct vg_agent_claim *c);

/*
 * Runs until SIGTERM/SIGINT; enforcement stays when it returns. set (malloc'd,
 * the agent's from now on, freed when it returns) holds the guards it probes
 * and leases (it follows every guard's tunnel); on SIGHUP it prepares a new
 * set from cli (and its config file). It releases c when it returns.
 */
int vg_agent_run(struct vg_guard_set *set, const struct vg_options *cli, struct vg_agent_claim *c);

#endif
