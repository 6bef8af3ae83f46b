/* SPDX-License-Identifier: GPL-2.0 */
/* The agent: drains events to the log and follows the guards' tunnels. */
#ifndef VG_AGENT_H
#define VG_AGENT_H

/*
 * Runs until SIGTERM/SIGINT; enforcement stays when it returns. Returns
 * -EALREADY when another agent holds the lock (it was asked to rescan).
 */
int vg_agent_run(const char *log_path);

#endif
