// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include "agent.h"
#include "event_fmt.h"
#include "events.h"
#include "loader.h"
#include "netns.h"
#include "scan.h"
#include "scan_logic.h"

#define MAX_WATCHES VG_MAX_GUARDS
/* The escape scan: at start, on SIGHUP, and this often. */
#define SCAN_INTERVAL_S 30
#define SCAN_TAG UINT32_MAX /* epoll tag; the watches' count up from 2 */

/* One netlink watch per tunnel namespace; the guards living there refresh together. */
struct watch {
	__u64 cookie;
	int netns_fd;
	struct mnl_socket *nl;
};

struct agent {
	FILE *log;
	struct watch watches[MAX_WATCHES];
	int n_watches;
	int epfd;
	struct json_object *findings;   /* the last scan's, each logged once while it lasts */
};

static int log_record(struct json_object *rec, void *ctx)
{
	struct agent *a = ctx;

	fprintf(a->log, "%s\n", json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	fflush(a->log);
	return 0;
}

/* A record of the agent's own, stamped now. */
static struct json_object *new_record(const char *event)
{
	struct json_object *rec = json_object_new_object();
	struct timespec ts;
	char when[64];

	clock_gettime(CLOCK_REALTIME, &ts);
	vg_format_time(ts.tv_sec * 1000000000LL + ts.tv_nsec, when, sizeof(when));
	json_object_object_add(rec, "time", json_object_new_string(when));
	json_object_object_add(rec, "event", json_object_new_string(event));
	return rec;
}

static void log_tunnel(struct agent *a, __u64 id, const struct vg_policy *p, int ifindex)
{
	struct json_object *rec = new_record(ifindex ? "tunnel_up" : "tunnel_down");

	json_object_object_add(rec, "cgroup_id", json_object_new_uint64(id));
	json_object_object_add(rec, "tunnel", json_object_new_string(p->tunnel));
	json_object_object_add(rec, "ifindex", json_object_new_int(ifindex));
	log_record(rec, a);
	json_object_put(rec);
}

static int open_nl_here(void *arg)
{
	struct mnl_socket **nl = arg;

	*nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!*nl)
		return -errno;
	if (mnl_socket_bind(*nl, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
			    MNL_SOCKET_AUTOPID)) {
		int err = -errno;

		mnl_socket_close(*nl);
		return err;
	}
	return 0;
}

static void drop_watches(struct agent *a)
{
	for (int i = 0; i < a->n_watches; i++) {
		mnl_socket_close(a->watches[i].nl);
		close(a->watches[i].netns_fd);
	}
	a->n_watches = 0;
}

static __u32 tunnel_ifindex(int tunnels_fd, const struct vg_policy *p)
{
	struct vg_tunnel_key key = { .netns_cookie = p->netns_cookie };
	struct vg_tunnel t;

	memcpy(key.ifname, p->tunnel, sizeof(key.ifname));
	return bpf_map_lookup_elem(tunnels_fd, &key, &t) ? 0 : t.ifindex;
}

/* Brings every guard of the namespace in line with it; logs tunnel changes. */
static void refresh_watch(struct agent *a, struct watch *w)
{
	int pfd = vg_map_open("vg_policy"), tfd = vg_map_open("vg_tunnels");
	struct vg_policy p;
	__u64 key, next;

	if (pfd < 0 || tfd < 0)
		goto out;
	for (void *prev = NULL; !bpf_map_get_next_key(pfd, prev, &next); prev = &key) {
		key = next;
		if (bpf_map_lookup_elem(pfd, &key, &p) || p.mode != VG_MODE_TUNNEL ||
		    p.netns_cookie != w->cookie)
			continue;
		__u32 before = tunnel_ifindex(tfd, &p);
		int err = vg_guard_refresh(key, w->netns_fd);
		__u32 after = tunnel_ifindex(tfd, &p);

		if (err)
			fprintf(stderr, "vpnguard-bpf: agent: refresh guard %" PRIu64 ": %s\n",
				(uint64_t)key, strerror(-err));
		if (before != after)
			log_tunnel(a, key, &p, after);
	}
out:
	if (pfd >= 0)
		close(pfd);
	if (tfd >= 0)
		close(tfd);
}

/* Watches the namespace of every tunnel-mode guard pinned now. */
static int scan_guards(struct agent *a)
{
	int pfd = vg_map_open("vg_policy"), gfd = vg_map_open("vg_guards");
	struct vg_guard_info info;
	struct vg_policy p;
	__u64 key, next;
	int err = 0;

	drop_watches(a);
	if (pfd < 0 || gfd < 0) {
		err = pfd < 0 ? pfd : gfd;
		goto out;
	}
	for (void *prev = NULL; !bpf_map_get_next_key(pfd, prev, &next); prev = &key) {
		struct watch *w = &a->watches[a->n_watches];
		bool seen = false;

		key = next;
		if (bpf_map_lookup_elem(pfd, &key, &p) || p.mode != VG_MODE_TUNNEL ||
		    bpf_map_lookup_elem(gfd, &key, &info))
			continue;
		for (int i = 0; i < a->n_watches; i++)
			seen |= a->watches[i].cookie == p.netns_cookie;
		if (seen || a->n_watches >= MAX_WATCHES)
			continue;
		info.netns[sizeof(info.netns) - 1] = 0;
		w->netns_fd = vg_netns_open(info.netns[0] ? info.netns : NULL);
		if (w->netns_fd < 0 || vg_netns_cookie(w->netns_fd, &w->cookie) ||
		    w->cookie != p.netns_cookie) {
			fprintf(stderr, "vpnguard-bpf: agent: tunnel namespace %s of guard %s is gone\n",
				info.netns[0] ? info.netns : "(own)", info.cgroup);
			if (w->netns_fd >= 0)
				close(w->netns_fd);
			continue;
		}
		err = vg_netns_run(w->netns_fd, open_nl_here, &w->nl);
		if (err) {
			fprintf(stderr, "vpnguard-bpf: agent: netlink in namespace of %s: %s\n",
				info.cgroup, strerror(-err));
			close(w->netns_fd);
			goto out;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 2 + a->n_watches };
		epoll_ctl(a->epfd, EPOLL_CTL_ADD, mnl_socket_get_fd(w->nl), &ev);
		a->n_watches++;
		/* Whatever changed before the watch existed. */
		refresh_watch(a, w);
	}
out:
	if (pfd >= 0)
		close(pfd);
	if (gfd >= 0)
		close(gfd);
	return err;
}

/* Logs each finding of the escape scan that the last scan did not have. */
static void scan_now(struct agent *a)
{
	struct json_object *res = NULL, *found;

	if (vg_scan(&res))
		return;
	json_object_object_get_ex(res, "findings", &found);
	for (size_t i = 0; i < json_object_array_length(found); i++) {
		struct json_object *f = json_object_array_get_idx(found, i), *rec;

		if (vg_finding_listed(a->findings, f))
			continue;
		rec = new_record("scan");
		json_object_object_add(rec, "reason", json_object_get(json_object_object_get(f, "kind")));
		json_object_object_foreach(f, key, val)
			if (strcmp(key, "kind"))
				json_object_object_add(rec, key, json_object_get(val));
		log_record(rec, a);
		json_object_put(rec);
	}
	json_object_put(a->findings);
	a->findings = json_object_get(found);
	json_object_put(res);
}

static void drain_netlink(struct mnl_socket *nl)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];

	/* The content does not matter: any link or address change means re-read. */
	while (mnl_socket_recvfrom(nl, buf, sizeof(buf)) > 0)
		;
}

static int take_lock(const char *log_path)
{
	char real[PATH_MAX];
	int fd;

	mkdir(VG_RUN_DIR, 0700);
	fd = open(VG_AGENT_PIDFILE, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		char buf[32] = { 0 };
		long pid;

		if (read(fd, buf, sizeof(buf) - 1) > 0 && (pid = strtol(buf, NULL, 10)) > 0)
			kill((pid_t)pid, SIGHUP);
		close(fd);
		return -EALREADY;
	}
	if (ftruncate(fd, 0) || dprintf(fd, "%d\n%s\n", getpid(),
					realpath(log_path, real) ? real : log_path) < 0) {
		close(fd);
		return -errno;
	}
	return fd;
}

static FILE *open_log(const char *path)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", path);
	mkdir(dirname(dir), 0750);
	return fopen(path, "ae");
}

int vg_agent_run(const char *log_path)
{
	struct agent a = { .epfd = -1 };
	struct vg_event_reader *reader = NULL;
	struct itimerspec every = { { SCAN_INTERVAL_S, 0 }, { SCAN_INTERVAL_S, 0 } };
	sigset_t mask;
	int lock, sfd = -1, tfd = -1, err = 0;

	a.log = open_log(log_path);
	if (!a.log) {
		fprintf(stderr, "vpnguard-bpf: open log %s: %s\n", log_path, strerror(errno));
		return -errno;
	}
	lock = take_lock(log_path);
	if (lock < 0) {
		fclose(a.log);
		return lock;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	reader = vg_event_reader_open(log_record, &a);
	if (sfd < 0 || a.epfd < 0 || tfd < 0 || timerfd_settime(tfd, 0, &every, NULL) || !reader) {
		err = -errno;
		fprintf(stderr, "vpnguard-bpf: agent setup: %s\n", strerror(errno));
		goto out;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = 0 };
	epoll_ctl(a.epfd, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.u32 = 1;
	epoll_ctl(a.epfd, EPOLL_CTL_ADD, vg_event_reader_fd(reader), &ev);
	ev.data.u32 = SCAN_TAG;
	epoll_ctl(a.epfd, EPOLL_CTL_ADD, tfd, &ev);
	err = scan_guards(&a);
	if (err)
		goto out;
	scan_now(&a);
	fprintf(stderr, "vpnguard-bpf: agent running (pid %d), events to %s\n", getpid(), log_path);

	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(a.epfd, evs, 8, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			__u32 tag = evs[i].data.u32;

			if (tag == 1) {
				vg_event_reader_drain(reader);
			} else if (tag == SCAN_TAG) {
				__u64 expirations;

				if (read(tfd, &expirations, sizeof(expirations)) == sizeof(expirations))
					scan_now(&a);
			} else if (tag >= 2 && tag - 2 < (__u32)a.n_watches) {
				/* Denials that happened before the change come first in the log. */
				vg_event_reader_drain(reader);
				drain_netlink(a.watches[tag - 2].nl);
				refresh_watch(&a, &a.watches[tag - 2]);
			} else if (tag == 0) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					scan_guards(&a);
					scan_now(&a);
					continue;
				}
				vg_event_reader_drain(reader);
				goto out;
			}
		}
	}
out:
	drop_watches(&a);
	vg_event_reader_close(reader);
	if (sfd >= 0)
		close(sfd);
	if (tfd >= 0)
		close(tfd);
	json_object_put(a.findings);
	if (a.epfd >= 0)
		close(a.epfd);
	unlink(VG_AGENT_PIDFILE);
	rmdir(VG_RUN_DIR);
	close(lock);
	fclose(a.log);
	return err;
}
