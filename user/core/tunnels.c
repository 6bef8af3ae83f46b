// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "loader.h"
#include "netns.h"
#include "tunnels.h"
#include "error.h"
#include "maps.h"

/* A vg_tundev slot no vg_tunnels entry holds; 0 when all are taken. */
static __u32 free_tundev_slot(int tunnels_fd)
{
	bool used[VG_MAX_GUARDS + 1] = { false };
	struct vg_tunnel_key key;
	struct vg_tunnel t;

	vg_map_for_each_key(tunnels_fd, key) {
		if (!bpf_map_lookup_elem(tunnels_fd, &key, &t) && t.slot <= VG_MAX_GUARDS)
			used[t.slot] = true;
	}
	for (__u32 s = 1; s <= VG_MAX_GUARDS; s++)
		if (!used[s])
			return s;
	return 0;
}

struct tundev_req {
	int map_fd;
	__u32 slot;
	struct vg_tundev dev;
};

/* A device map takes its ifindex in the updater's namespace. */
static int tundev_write_here(void *arg)
{
	struct tundev_req *req = arg;

	return bpf_map_update_elem(req->map_fd, &req->slot, &req->dev, BPF_ANY) ? -errno : 0;
}

/*
 * The device first: once vg_tunnels names an ifindex, vg_tundev holds it
 * (the programs want both to agree).
 */
int vg_tunnel_maps_write(struct txn *t, int tunnels_fd, int tundev_fd, const struct vg_policy *p,
			 int netns_fd)
{
	struct vg_tunnel_key key = vg_tunnel_key_of(p);
	struct tundev_req dev = { .map_fd = tundev_fd };
	struct vg_tunnel facts, old;
	bool had;
	int err;

	had = !bpf_map_lookup_elem(tunnels_fd, &key, &old);
	err = vg_tunnel_facts(netns_fd, p->tunnel, &facts, &dev.dev.ifindex);
	if (err == -ENODEV) {
		/*
		 * Gone: ifindex 0 makes the programs deny with no_tunnel until it is
		 * back (the kernel dropped its vg_tundev entry already), and the last
		 * addresses stay so that tc still drops packets sent with them by
		 * another way out.
		 */
		if (!had)
			return 0;
		old.ifindex = 0;
		return bpf_map_update_elem(tunnels_fd, &key, &old, BPF_ANY) ?
		       vg_error(-errno, "write vg_tunnels entry for %s", p->tunnel) : 0;
	}
	if (err)
		return vg_error(err, "read tunnel interface %s", p->tunnel);
	facts.slot = dev.slot = had ? old.slot : free_tundev_slot(tunnels_fd);
	if (!facts.slot)
		return vg_error(-ENOSPC, "find a vg_tundev slot for %s", p->tunnel);
	if (t && bpf_map_lookup_elem(tundev_fd, &dev.slot, &(struct vg_tundev){ 0 }) &&
	    (err = txn_map_new(t, tundev_fd, &dev.slot, sizeof(dev.slot))))
		return vg_error(err, "write vg_tundev entry for %s", p->tunnel);
	err = vg_netns_run(netns_fd, tundev_write_here, &dev);
	if (err == -ENODEV)
		return 0; /* gone meanwhile: vg_tunnels keeps what it said, no_tunnel holds */
	if (err)
		return vg_error(err, "write vg_tundev entry for %s", p->tunnel);
	if (t)
		err = txn_map_update(t, tunnels_fd, &key, sizeof(key), &facts, sizeof(facts));
	else
		err = bpf_map_update_elem(tunnels_fd, &key, &facts, BPF_ANY) ? -errno : 0;
	return err ? vg_error(err, "write vg_tunnels entry for %s", p->tunnel) : 0;
}

void vg_tunnel_maps_prune(void)
{
	int tfd = vg_map_open(VG_MAP_TUNNELS), pfd = vg_map_open(VG_MAP_POLICY), dfd = vg_map_open(VG_MAP_TUNDEV);
	struct vg_tunnel_key key, stale[VG_MAX_GUARDS];
	int n_stale = 0;

	if (tfd < 0 || pfd < 0)
		goto out;
	vg_map_for_each_key(tfd, key) {
		bool used = false;
		__u64 id;

		vg_map_for_each_key(pfd, id) {
			struct vg_policy p;

			used = !bpf_map_lookup_elem(pfd, &id, &p) &&
			       p.netns_cookie == key.netns_cookie &&
			       !strncmp(p.tunnel, key.ifname, VG_IFNAMSIZ);
			if (used)
				break;
		}
		if (!used && n_stale < VG_MAX_GUARDS)
			stale[n_stale++] = key;
	}
	for (int i = 0; i < n_stale; i++) {
		struct vg_tunnel t;

		if (dfd >= 0 && !bpf_map_lookup_elem(tfd, &stale[i], &t))
			bpf_map_delete_elem(dfd, &t.slot);
		bpf_map_delete_elem(tfd, &stale[i]);
	}
out:
	for (int *fd = (int[]){ tfd, pfd, dfd, -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
}
