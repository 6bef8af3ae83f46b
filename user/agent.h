/* SPDX-License-Identifier: GPL-2.0 */
/* The agent: drains events to the log, follows the tunnels, probes, renews leases, alerts. */
#ifndef VG_AGENT_H
#define VG_AGENT_H

#include "guards.h"

/*
 * Runs until SIGTERM/SIGINT; enforcement stays when it returns. set (malloc'd,
 * the agent's from now on, freed when it returns) holds the
 * guards it probes and leases (it follows every guard's tunnel); on SIGHUP it
 * prepares a new set from cli (and its config file). Returns -EALREADY when
 * another agent holds the lock (it was asked to rescan).
 */
int vg_agent_run(struct vg_guard_set *set, const struct vg_options *cli);

#endif
