// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include "agent_state.h"
#include "clock.h"
#include "loader.h"
#include "maps.h"
#include "netns.h"
#include "paths.h"
#include "error.h"

/* seen_us: when netlink woke the loop, so the log shows how long the map took. */
static void log_tunnel(struct agent *a, __u64 id, const struct vg_policy *p, int ifindex, __u64 seen_us)
{
	struct json_object *rec = vg_log_record(ifindex ? VG_REC_TUNNEL_UP : VG_REC_TUNNEL_DOWN);
	const struct vg_guard_spec *spec = agent_spec_of(a, id);

	/* The guard's name too: report counts the time without the tunnel as the guard's. */
	if (spec)
		agent_add_guard(rec, spec);
	json_object_object_add(rec, "cgroup_id", json_object_new_uint64(id));
	json_object_object_add(rec, "tunnel", json_object_new_string(p->tunnel));
	json_object_object_add(rec, "ifindex", json_object_new_int(ifindex));
	if (seen_us)
		json_object_object_add(rec, "map_updated_after_us",
				       json_object_new_int64((int64_t)(vg_mono_ns() / 1000 - seen_us)));
	agent_log(a, rec);
	json_object_put(rec);
}

static __u32 tunnel_ifindex(int tunnels_fd, const struct vg_policy *p)
{
	struct vg_tunnel_key key = vg_tunnel_key_of(p);
	struct vg_tunnel t;

	return bpf_map_lookup_elem(tunnels_fd, &key, &t) ? 0 : t.ifindex;
}

/* Brings every guard of the namespace in line with it; logs tunnel changes. */
static void refresh_watch(struct agent *a, struct watch *w, __u64 seen_us)
{
	int pfd = vg_map_open(VG_MAP_POLICY), tfd = vg_map_open(VG_MAP_TUNNELS);
	struct vg_policy p;
	bool changed = false;
	__u64 key;

	if (pfd < 0 || tfd < 0)
		goto out;
	vg_map_for_each_key(pfd, key) {
		if (bpf_map_lookup_elem(pfd, &key, &p) || p.mode != VG_MODE_TUNNEL ||
		    p.netns_cookie != w->cookie)
			continue;
		__u32 before = tunnel_ifindex(tfd, &p);
		int err = vg_guard_refresh(key, w->netns_fd);
		__u32 after = tunnel_ifindex(tfd, &p);

		if (err)
			vg_error(err, "agent: refresh guard %" PRIu64, (uint64_t)key);
		/* Every refresh, not only changes: a tunnel missing when the watch began is a time closed. */
		history_tunnel_seen(a, key, after != 0);
		if (before != after) {
			log_tunnel(a, key, &p, after, seen_us);
			changed = true;
		}
	}
	if (changed)
		remedy_check(a);
out:
	if (pfd >= 0)
		close(pfd);
	if (tfd >= 0)
		close(tfd);
}

/*
 * Refreshes the watches that saw a change, unless an attach, detach or reload
 * holds the lock: a detach's own rule changes wake the agent while it takes
 * the guard away, and a refresh then (it loads the programs to attach tc to new
 * interfaces) would pin again the maps the detach is removing. They are
 * refreshed once the lock is free, RETRY_US later.
 */
#define RETRY_US 20000

static void refresh_pending(struct agent *a)
{
	int lock = vg_lock_try();

	if (lock < 0) {
		sd_event_source_set_time_relative(a->watch_retry, RETRY_US);
		sd_event_source_set_enabled(a->watch_retry, SD_EVENT_ONESHOT);
		return;
	}
	for (int i = 0; i < a->n_watches; i++)
		if (a->watches[i].pending) {
			a->watches[i].pending = false;
			refresh_watch(a, &a->watches[i], a->watches[i].seen_us);
		}
	vg_lock_drop(lock);
}

static int on_watch_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	(void)s, (void)usec;
	refresh_pending(userdata);
	return 0;
}

int watches_add_source(struct agent *a)
{
	int err = sd_event_add_time_relative(a->loop, &a->watch_retry, CLOCK_MONOTONIC, RETRY_US, 0,
					     on_watch_retry, a);

	if (err >= 0)
		err = sd_event_source_set_enabled(a->watch_retry, SD_EVENT_OFF);
	return err < 0 ? vg_error(err, "agent: the netlink retry timer") : 0;
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *a = userdata;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint64_t seen_us = 0;

	(void)fd, (void)revents;
	sd_event_now(sd_event_source_get_event(s), CLOCK_MONOTONIC, &seen_us);
	for (int i = 0; i < a->n_watches; i++) {
		struct watch *w = &a->watches[i];

		if (w->src != s)
			continue;
		/* Denials that happened before the change come first in the log. */
		vg_event_reader_drain(a->reader);
		/* The content does not matter: any link, address or rule change means re-read. */
		while (mnl_socket_recvfrom(w->nl, buf, sizeof(buf)) > 0)
			;
		if (!w->pending)
			w->seen_us = seen_us;
		w->pending = true;
	}
	refresh_pending(a);
	return 0;
}

static int open_nl_here(void *arg)
{
	struct mnl_socket **nl = arg;

	*nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!*nl)
		return -errno;
	/* Rule changes too: steering rules someone removed are made again (refresh_watch). */
	if (mnl_socket_bind(*nl, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
				 RTMGRP_IPV4_RULE, MNL_SOCKET_AUTOPID)) {
		int err = -errno;

		mnl_socket_close(*nl);
		return err;
	}
	return 0;
}

void watches_drop(struct agent *a)
{
	for (int i = 0; i < a->n_watches; i++) {
		struct watch *w = &a->watches[i];

		sd_event_source_disable_unref(w->src);
		mnl_socket_close(w->nl);
		close(w->netns_fd);
	}
	a->n_watches = 0;
}

/* A watch of the namespace info names, for the guard with policy p; 0, 1 when it is gone, or -errno. */
static int watch_add(struct agent *a, const struct vg_guard_info *info, const struct vg_policy *p)
{
	struct watch *w = &a->watches[a->n_watches];
	const char *ns = info->netns[0] ? info->netns : NULL;
	int err;

	w->netns_fd = vg_netns_open(ns);
	if (w->netns_fd < 0 || vg_netns_cookie(w->netns_fd, &w->cookie) || w->cookie != p->netns_cookie) {
		vg_error(0, "agent: tunnel namespace %s of guard %s is gone", ns ?: "(own)", info->cgroup);
		if (w->netns_fd >= 0)
			close(w->netns_fd);
		return 1;
	}
	err = vg_netns_run(w->netns_fd, open_nl_here, &w->nl);
	if (err) {
		close(w->netns_fd);
		return vg_error(err, "agent: netlink in namespace of %s", info->cgroup);
	}
	err = sd_event_add_io(a->loop, &w->src, mnl_socket_get_fd(w->nl), EPOLLIN, on_netlink, a);
	if (err < 0) {
		mnl_socket_close(w->nl);
		close(w->netns_fd);
		return vg_error(err, "agent: watch netlink of the namespace of %s", info->cgroup);
	}
	a->n_watches++;
	/* Whatever changed before the watch existed. */
	w->pending = true;
	w->seen_us = 0;
	refresh_pending(a);
	return 0;
}

int watches_rebuild(struct agent *a)
{
	int pfd = vg_map_open(VG_MAP_POLICY), gfd = vg_map_open(VG_MAP_GUARDS), err = 0;
	struct vg_guard_info info;
	struct vg_policy p;
	__u64 key;

	watches_drop(a);
	if (pfd < 0 || gfd < 0) {
		err = pfd < 0 ? pfd : gfd;
		goto out;
	}
	vg_map_for_each_key(pfd, key) {
		bool seen = false;

		if (bpf_map_lookup_elem(pfd, &key, &p) || p.mode != VG_MODE_TUNNEL ||
		    bpf_map_lookup_elem(gfd, &key, &info))
			continue;
		for (int i = 0; i < a->n_watches; i++)
			seen |= a->watches[i].cookie == p.netns_cookie;
		if (seen || a->n_watches >= MAX_WATCHES)
			continue;
		info.netns[sizeof(info.netns) - 1] = 0;
		if ((err = watch_add(a, &info, &p)) < 0)
			break;
		err = 0;
	}
out:
	if (pfd >= 0)
		close(pfd);
	if (gfd >= 0)
		close(gfd);
	return err;
}
