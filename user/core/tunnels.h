/* SPDX-License-Identifier: GPL-2.0 */
/* The tunnel facts the programs read: vg_tunnels (ifindex, addresses, slot) and vg_tundev. */
#ifndef VG_TUNNELS_H
#define VG_TUNNELS_H

#include "txn.h"
#include "vpnguard.h"

/*
 * Writes what namespace netns_fd holds now of the tunnel p names; t records
 * the change for a rollback (NULL: no transaction, as the agent refreshes).
 */
int vg_tunnel_maps_write(struct txn *t, int tunnels_fd, int tundev_fd, const struct vg_policy *p,
			 int netns_fd);

/* Removes the vg_tunnels entries no guard's policy names any more, with their vg_tundev slots. */
void vg_tunnel_maps_prune(void);

#endif
