/* SPDX-License-Identifier: GPL-2.0 */
/* Network namespaces: cookies, interfaces and tunnel facts, seen from inside. */
#ifndef VG_NETNS_H
#define VG_NETNS_H

#include <stddef.h>
#include <linux/types.h>
#include "vpnguard.h"

/* Interfaces of one namespace vpnguard looks at, more than a VPN container has. */
#define VG_MAX_LINKS 64

struct vg_link {
	int ifindex;
	char name[VG_IFNAMSIZ];
};

/* Opens a namespace file (/run/netns/NAME, /proc/PID/ns/net; NULL: the caller's). */
int vg_netns_open(const char *path);

/* Runs fn(arg) with the calling thread inside the namespace netns_fd. */
int vg_netns_run(int netns_fd, int (*fn)(void *arg), void *arg);

int vg_netns_cookie(int netns_fd, __u64 *cookie);

/*
 * Index and addresses of ifname in the namespace (index 0 while it is down;
 * *dev_ifindex, if not NULL, the device's index either way); -ENODEV if it is
 * not there. t->slot is left 0.
 */
int vg_tunnel_facts(int netns_fd, const char *ifname, struct vg_tunnel *t, __u32 *dev_ifindex);

/* Every interface of the namespace; returns how many (at most max) or -errno. */
int vg_netns_links(int netns_fd, struct vg_link *links, int max);

#endif
