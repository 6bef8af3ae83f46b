/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The probes of one guard: a thread that lives in the tunnel's network
 * namespace, so its sockets are made there, and binds them to the tunnel.
 * Every interval it fetches the IP echo and gluetun's status, keeps the
 * result, and wakes the agent through an eventfd.
 */
#ifndef VG_PROBE_H
#define VG_PROBE_H

#include <stdbool.h>
#include "health.h"

struct vg_prober;

/* cfg and tunnel must outlive the prober; netns_fd is duplicated. NULL with errno. */
struct vg_prober *vg_prober_start(const struct vg_health_cfg *cfg, const char *tunnel,
				  int netns_fd, int notify_fd);

/* The latest round, when one finished since the last call. */
bool vg_prober_result(struct vg_prober *p, struct vg_probe_result *r);

/* Stops at once, aborting a request in flight. */
void vg_prober_stop(struct vg_prober *p);

#endif
