// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include "netns.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE 71
#endif

int vg_netns_open(const char *path)
{
	struct statfs fs;
	int fd = open(path ? path : "/proc/self/ns/net", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	/* Every namespace file is nsfs: the kind of namespace is the kernel's to say. */
	if (fstatfs(fd, &fs) || fs.f_type != NSFS_MAGIC || ioctl(fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		close(fd);
		return -EINVAL;
	}
	return fd;
}

int vg_netns_run(int netns_fd, int (*fn)(void *arg), void *arg)
{
	int home = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	int r;

	if (home < 0)
		return -errno;
	if (setns(netns_fd, CLONE_NEWNET)) {
		r = -errno;
		close(home);
		return r;
	}
	r = fn(arg);
	/* Staying in the wrong namespace would make every later step lie. */
	if (setns(home, CLONE_NEWNET)) {
		perror("vpnguard-bpf: cannot return to the original network namespace");
		_exit(1);
	}
	close(home);
	return r;
}

static int cookie_here(void *arg)
{
	socklen_t len = sizeof(__u64);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int r = 0;

	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, arg, &len))
		r = -errno;
	close(fd);
	return r;
}

int vg_netns_cookie(int netns_fd, __u64 *cookie)
{
	return vg_netns_run(netns_fd, cookie_here, cookie);
}

struct facts_req {
	const char *ifname;
	struct vg_tunnel *t;
	__u32 dev_ifindex;
};

static int facts_here(void *arg)
{
	struct facts_req *req = arg;
	struct ifaddrs *ifa, *i;

	memset(req->t, 0, sizeof(*req->t));
	req->t->ifindex = req->dev_ifindex = if_nametoindex(req->ifname);
	if (!req->t->ifindex)
		return -ENODEV;
	if (getifaddrs(&ifa))
		return -errno;
	for (i = ifa; i; i = i->ifa_next) {
		struct vg_addr *a = &req->t->addrs[req->t->n_addrs];

		if (!i->ifa_addr || strcmp(i->ifa_name, req->ifname) ||
		    req->t->n_addrs >= VG_MAX_TUN_ADDRS)
			continue;
		memset(a, 0, sizeof(*a));
		if (i->ifa_addr->sa_family == AF_INET) {
			vg_addr_from_v4(a, ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
		} else if (i->ifa_addr->sa_family == AF_INET6) {
			memcpy(a->w, &((struct sockaddr_in6 *)i->ifa_addr)->sin6_addr, sizeof(a->w));
		} else {
			continue;
		}
		req->t->n_addrs++;
	}
	for (i = ifa; i; i = i->ifa_next)
		if (!strcmp(i->ifa_name, req->ifname) && !(i->ifa_flags & IFF_UP)) {
			/* Down: like gone (no_tunnel), with the addresses kept for tc. */
			req->t->ifindex = 0;
			break;
		}
	freeifaddrs(ifa);
	return 0;
}

int vg_tunnel_facts(int netns_fd, const char *ifname, struct vg_tunnel *t, __u32 *dev_ifindex)
{
	struct facts_req req = { ifname, t, 0 };
	int err = vg_netns_run(netns_fd, facts_here, &req);

	if (dev_ifindex)
		*dev_ifindex = req.dev_ifindex;
	return err;
}

struct links_req {
	struct vg_link *links;
	int max;
};

static int links_here(void *arg)
{
	struct links_req *req = arg;
	struct if_nameindex *all = if_nameindex();
	int n = 0;

	if (!all)
		return -errno;
	for (struct if_nameindex *i = all; i->if_index && n < req->max; i++) {
		req->links[n].ifindex = i->if_index;
		snprintf(req->links[n].name, sizeof(req->links[n].name), "%s", i->if_name);
		n++;
	}
	if_freenameindex(all);
	return n;
}

int vg_netns_links(int netns_fd, struct vg_link *links, int max)
{
	struct links_req req = { links, max };

	return vg_netns_run(netns_fd, links_here, &req);
}
