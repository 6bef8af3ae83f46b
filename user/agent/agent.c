// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <arpa/inet.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>
#include <bpf/bpf.h>
#include <systemd/sd-daemon.h>
#include "agent.h"
#include "pins.h"
#include "redact.h"
#include "log.h"
#include "pidfile.h"
#include "event_fmt.h"
#include "events.h"
#include "follow.h"
#include "http.h"
#include "loader.h"
#include "netns.h"
#include "policy.h"
#include "probe.h"
#include "scan.h"
#include "scan_logic.h"
#include "webhook.h"

#define MAX_WATCHES VG_MAX_GUARDS
#define MAX_GROUPS (VG_MAX_CONF_GUARDS + 1)

/* The escape scan: at start, on SIGHUP, and this often. */
#define SCAN_INTERVAL_S 30

/*
 * A reload after a container start that was refused is tried again this
 * often, this many times: a VPN container makes its tunnel a moment after
 * it starts, and until then the tunnel cannot be found in its namespace.
 */
#define RETRY_MS 1000
#define RETRY_MAX 60

/* epoll tags; netlink watch i is TAG_WATCH + i. */
enum { TAG_SIGNAL, TAG_RINGBUF, TAG_PROBES, TAG_TICK, TAG_DOCKER, TAG_RETRY, TAG_WATCH };

/* One netlink watch per tunnel namespace; the guards living there refresh together. */
struct watch {
	__u64 cookie;
	int netns_fd;
	struct mnl_socket *nl;
};

/* What the agent keeps of one guard of its set (same index as set->specs). */
struct group {
	struct vg_health h;
	struct vg_prober *prober;
	const char *last_why;
};

struct agent {
	struct vg_log log;
	struct watch watches[MAX_WATCHES];
	int n_watches;
	int epfd, probe_efd, tick_tfd, docker_efd, retry_tfd;
	/* The one periodic timer: lease renewals and the scan, so idle means one wake-up a period. */
	__u64 tick_ns, last_scan_ns;
	int retries_left;
	struct vg_follower *follower;
	struct json_object *findings;   /* the last scan's, each logged once while it lasts */
	struct vg_guard_set *set;
	const struct vg_options *cli;
	struct group groups[MAX_GROUPS];
	struct vg_webhook *webhook;
};

static int log_record(struct json_object *rec, void *ctx)
{
	struct agent *a = ctx;

	vg_log_write(&a->log, rec);
	return 0;
}

static __s64 mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* woke_ns: when the netlink message was seen, so the log shows how long the map took. */
static void log_tunnel(struct agent *a, __u64 id, const struct vg_policy *p, int ifindex, __s64 woke_ns)
{
	struct json_object *rec = vg_log_record(ifindex ? "tunnel_up" : "tunnel_down");

	json_object_object_add(rec, "cgroup_id", json_object_new_uint64(id));
	json_object_object_add(rec, "tunnel", json_object_new_string(p->tunnel));
	json_object_object_add(rec, "ifindex", json_object_new_int(ifindex));
	if (woke_ns)
		json_object_object_add(rec, "map_updated_after_us",
				       json_object_new_int64((mono_ns() - woke_ns) / 1000));
	log_record(rec, a);
	json_object_put(rec);
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
static void refresh_watch(struct agent *a, struct watch *w, __s64 woke_ns)
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
			log_tunnel(a, key, &p, after, woke_ns);
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
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = TAG_WATCH + a->n_watches };
		epoll_ctl(a->epfd, EPOLL_CTL_ADD, mnl_socket_get_fd(w->nl), &ev);
		a->n_watches++;
		/* Whatever changed before the watch existed. */
		refresh_watch(a, w, 0);
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

	a->last_scan_ns = vg_boot_ns();
	if (vg_scan(&res))
		return;
	json_object_object_get_ex(res, "findings", &found);
	for (size_t i = 0; i < json_object_array_length(found); i++) {
		struct json_object *f = json_object_array_get_idx(found, i), *rec;

		if (vg_finding_listed(a->findings, f))
			continue;
		rec = vg_log_record("scan");
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

/* ---- health: probes, leases, alerts ---- */

static void set_guard_state(struct agent *a, int g, __u32 state)
{
	const struct vg_guard_spec *spec = &a->set->specs[g];
	struct vg_state st = { .state = state };
	int err;

	if (state == VG_STATE_OPEN)
		st.lease_deadline_ns = vg_boot_ns() + (__u64)spec->health.lease_ms * 1000000ULL;
	for (int i = 0; i < spec->n_cgroups; i++)
		if ((err = vg_state_write(spec->cgroups[i].id, &st)))
			fprintf(stderr, "vpnguard-bpf: agent: write state of %s: %s\n",
				spec->cgroups[i].path, strerror(-err));
}

static void add_cgroups(struct json_object *rec, const struct vg_guard_spec *spec)
{
	struct json_object *list = json_object_new_array();

	for (int i = 0; i < spec->n_cgroups; i++)
		json_object_array_add(list, json_object_new_string(spec->cgroups[i].path));
	json_object_object_add(rec, "guard", json_object_new_string(spec->name));
	json_object_object_add(rec, "cgroups", list);
}

/*
 * The webhook's body: the log record plus the fields common receivers read
 * (Discord: content; Gotify: title, message, priority; ntfy JSON: title,
 * message, priority).
 */
static void alert(struct agent *a, struct json_object *rec, const char *what)
{
	const char *guard = vg_json_str(rec, "guard"), *why = vg_json_str(rec, "why"),
		   *seen = vg_json_str(rec, "seen"), *error = vg_json_str(rec, "error");
	struct json_object *body = NULL; /* json_object_deep_copy wants it NULL */
	char title[160], msg[512];

	if (!a->webhook || json_object_deep_copy(rec, &body, NULL))
		return;
	snprintf(title, sizeof(title), "vpnguard: %s %s", guard, what);
	snprintf(msg, sizeof(msg), "%s: %s%s%s%s%s", title, why, seen ? ", address seen " : "",
		 seen ?: "", error ? ": " : "", error ?: "");
	json_object_object_add(body, "title", json_object_new_string(title));
	json_object_object_add(body, "message", json_object_new_string(msg));
	json_object_object_add(body, "content", json_object_new_string(msg));
	json_object_object_add(body, "priority", json_object_new_int(strcmp(what, "reopened") ? 8 : 4));
	vg_webhook_send(a->webhook, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	json_object_put(body);
}

/* The webhook of the current set; the old thread goes with the set whose URL it used. */
static void restart_webhook(struct agent *a)
{
	/* The same receiver: keep the thread and its queue (stopping it may wait on a hung POST). */
	if (a->webhook && a->set->webhook && !strcmp(vg_webhook_url(a->webhook), a->set->webhook))
		return;
	vg_webhook_stop(a->webhook, false);
	a->webhook = a->set->webhook ? vg_webhook_start(a->set->webhook) : NULL;
	if (a->set->webhook && !a->webhook) {
		char url[1024];

		fprintf(stderr, "vpnguard-bpf: agent: webhook %s: %s (alerts off until the next reload)\n",
			vg_url_redact(a->set->webhook, url, sizeof(url)), strerror(errno));
	}
}

static void judge_round(struct agent *a, int g, const struct vg_probe_result *r)
{
	const struct vg_guard_spec *spec = &a->set->specs[g];
	struct group *grp = &a->groups[g];
	const char *why;
	bool leak;
	enum vg_verdict v = vg_health_judge(&spec->health, &grp->h, r, &why, &leak);
	bool new_leak = leak && (!grp->last_why || strcmp(grp->last_why, "real_ip"));
	char seen[INET6_ADDRSTRLEN];

	grp->last_why = why;
	/*
	 * Every round writes what the agent holds true, not only changes: an open
	 * guard's lease is renewed, and a closed guard stays closed even if
	 * something else (a re-attach, bpftool) opened it meanwhile.
	 */
	set_guard_state(a, g, grp->h.open ? VG_STATE_OPEN : VG_STATE_CLOSED);
	if (v == VG_KEEP && !strcmp(why, "probe_passed"))
		return;

	struct json_object *rec = vg_log_record(v == VG_KEEP ? "probe" : "state");

	add_cgroups(rec, spec);
	if (v != VG_KEEP)
		json_object_object_add(rec, "state", json_object_new_string(v == VG_OPEN ? "open" : "closed"));
	json_object_object_add(rec, "why", json_object_new_string(why));
	if (r->ip_ok)
		json_object_object_add(rec, "seen", json_object_new_string(vg_addr_str(&r->seen, seen, sizeof(seen))));
	if (r->gluetun_ok)
		json_object_object_add(rec, "gluetun", json_object_new_string(r->gluetun_status));
	if (r->error[0])
		json_object_object_add(rec, "error", json_object_new_string(r->error));
	if (v == VG_KEEP && !strcmp(why, "probe_failed"))
		json_object_object_add(rec, "failed_in_a_row", json_object_new_int((int)grp->h.failed));
	log_record(rec, a);
	if (new_leak)
		alert(a, rec, "leak: the tunnel exits by the real address");
	else if (v != VG_KEEP)
		alert(a, rec, v == VG_OPEN ? "reopened" : "closed");
	json_object_put(rec);
}

static void take_probe_results(struct agent *a)
{
	struct vg_probe_result r;
	uint64_t n;

	if (read(a->probe_efd, &n, sizeof(n)) < 0)
		return;
	for (int g = 0; g < a->set->n; g++)
		if (a->groups[g].prober && vg_prober_result(a->groups[g].prober, &r))
			judge_round(a, g, &r);
}

/* Guards with no probe: the lease only says the agent is alive. */
static void renew_unprobed(struct agent *a)
{
	for (int g = 0; g < a->set->n; g++)
		if (!vg_health_probes(&a->set->specs[g].health))
			set_guard_state(a, g, VG_STATE_OPEN);
}

static bool guard_is_open(const struct vg_guard_spec *spec)
{
	int fd = vg_map_open("vg_state");
	struct vg_state st;
	bool open = false;

	if (fd >= 0 && !bpf_map_lookup_elem(fd, &spec->cgroups[0].id, &st))
		open = st.state == VG_STATE_OPEN &&
		       (!st.lease_deadline_ns || st.lease_deadline_ns > vg_boot_ns());
	if (fd >= 0)
		close(fd);
	return open;
}

static void stop_health(struct agent *a)
{
	for (int g = 0; g < MAX_GROUPS; g++) {
		vg_prober_stop(a->groups[g].prober);
		a->groups[g] = (struct group){ 0 };
	}
}

/*
 * Pins are for people and the agent's own map lookups; enforcement is the
 * kernel's. When they vanish (rm -rf, a bpffs mount that went away), they are
 * made again from what the kernel holds, logged and alerted.
 */
static void check_pins(struct agent *a)
{
	for (int g = 0; g < a->set->n; g++) {
		const struct vg_guard_spec *spec = &a->set->specs[g];

		for (int i = 0; i < spec->n_cgroups; i++) {
			const struct vg_cgroup *cg = &spec->cgroups[i];
			struct json_object *rec;
			int fd, made;

			if (vg_pins_present(cg->id))
				continue;
			fd = open(cg->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			made = fd < 0 ? -errno : vg_pins_restore(fd, cg->id);
			if (fd >= 0)
				close(fd);
			rec = vg_log_record("pins");
			add_cgroups(rec, spec);
			json_object_object_add(rec, "why", json_object_new_string("pins_removed"));
			json_object_object_add(rec, "pin_root", json_object_new_string(vg_pin_root()));
			json_object_object_add(rec, "action", json_object_new_string(made < 0 ? "lost" : "restored"));
			if (made < 0)
				json_object_object_add(rec, "error", json_object_new_string(strerror(-made)));
			else
				json_object_object_add(rec, "pins", json_object_new_int(made));
			log_record(rec, a);
			alert(a, rec, made < 0 ? "pins vanished and could not be made again" :
			      "pins vanished: made again, enforcement never stopped");
			json_object_put(rec);
		}
	}
}

/* Renews the leases of guards with no probe; scans once SCAN_INTERVAL_S has (about) passed. */
static void on_tick(struct agent *a)
{
	uint64_t ticks;

	if (read(a->tick_tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		return;
	renew_unprobed(a);
	check_pins(a);
	if (vg_boot_ns() - a->last_scan_ns + a->tick_ns / 2 >= SCAN_INTERVAL_S * 1000000000ULL)
		scan_now(a);
}

/* Probers for the set's probed guards; the tick at the shortest interval of the others. */
static int start_health(struct agent *a)
{
	struct itimerspec tick = { 0 };
	unsigned min_ms = SCAN_INTERVAL_S * 1000;

	for (int g = 0; g < a->set->n; g++) {
		const struct vg_guard_spec *spec = &a->set->specs[g];

		a->groups[g].h.open = guard_is_open(spec);
		if (!vg_health_probes(&spec->health)) {
			if (spec->health.interval_ms < min_ms)
				min_ms = spec->health.interval_ms;
			continue;
		}
		a->groups[g].prober = vg_prober_start(&spec->health, spec->o->tunnel,
						      a->set->reqs[g].netns_fd, a->probe_efd);
		if (!a->groups[g].prober) {
			fprintf(stderr, "vpnguard-bpf: agent: start probes of %s: %s\n", spec->name,
				strerror(errno));
			return -errno;
		}
	}
	tick.it_interval.tv_sec = min_ms / 1000;
	tick.it_interval.tv_nsec = (long)(min_ms % 1000) * 1000000;
	tick.it_value = tick.it_interval;
	a->tick_ns = min_ms * 1000000ULL;
	timerfd_settime(a->tick_tfd, 0, &tick, NULL);
	renew_unprobed(a);
	return 0;
}

/*
 * A new set from the same command line and config file (SIGHUP), or with
 * containers looked up again (a container started: new cgroup, new
 * namespace), applied all or nothing; guards that stay keep their state, and
 * cgroups that left the set are detached. On any error the running set and
 * its policies stay. why: what asked for it, for the log.
 */
static int reload(struct agent *a, const char *why)
{
	struct vg_guard_set *next = malloc(sizeof(*next));
	struct json_object *rec = vg_log_record("reload");
	/* One attach, detach or reload at a time: the set is checked and applied under the lock. */
	int lock = vg_lock_take(), err = lock < 0 ? lock : next ? vg_guard_set_prepare(a->cli, true, next) : -ENOMEM;

	sd_notify(0, "RELOADING=1");
	if (!err)
		err = vg_guard_set_apply(next, true);
	json_object_object_add(rec, "trigger", json_object_new_string(why));
	json_object_object_add(rec, "config", a->set->config_path ?
			       json_object_new_string(a->set->config_path) : NULL);
	json_object_object_add(rec, "result", json_object_new_string(err ? "refused" : "applied"));
	if (err) {
		json_object_object_add(rec, "error", json_object_new_string(
			err == -EINVAL ? "bad configuration or a container that does not run (the agent's "
					 "stderr names it); old policy kept" : strerror(-err)));
		if (next)
			vg_guard_set_free(next);
		free(next);
	} else {
		__u64 gone[VG_MAX_CGROUP_ARGS * MAX_GROUPS];
		int n_gone = 0;

		stop_health(a);
		for (int g = 0; g < a->set->n; g++)
			for (int i = 0; i < a->set->specs[g].n_cgroups; i++)
				if (!vg_guard_set_has(next, a->set->specs[g].cgroups[i].id))
					gone[n_gone++] = a->set->specs[g].cgroups[i].id;
		if (n_gone)
			vg_detach(gone, n_gone);
		vg_lock_drop(lock);
		lock = -1;
		json_object_object_add(rec, "guards", json_object_new_int(next->n));
		json_object_object_add(rec, "detached", json_object_new_int(n_gone));
		vg_guard_set_free(a->set);
		free(a->set);
		a->set = next;
		restart_webhook(a);
		start_health(a);
	}
	vg_lock_drop(lock);
	log_record(rec, a);
	json_object_put(rec);
	sd_notify(0, "READY=1");
	return err;
}

/* ---- Docker: follow the containers the set names ---- */

/* Starts the follower when the set names containers and none runs yet. */
static void follow_docker(struct agent *a)
{
	const struct vg_options *o = vg_guard_set_docker(a->set);
	char sock[PATH_MAX], err[PATH_MAX + 128];

	if (a->follower || !o)
		return;
	/* The set was prepared with this host, so it parses. */
	if (vg_docker_socket(o->docker_host, sock, sizeof(sock), err, sizeof(err)))
		return;
	a->follower = vg_follower_start(sock, a->set->resolved_ns, a->docker_efd);
	if (!a->follower)
		fprintf(stderr, "vpnguard-bpf: agent: follow Docker events on %s: %s "
			"(container restarts will not be followed)\n", sock, strerror(errno));
}

static bool set_names(const struct vg_guard_set *s, const struct vg_docker_event *ev)
{
	for (int g = 0; g < s->n; g++) {
		const struct vg_options *o = s->specs[g].o;

		if (o->tunnel_container && vg_docker_event_names(ev, o->tunnel_container))
			return true;
		for (int i = 0; i < o->n_containers; i++)
			if (vg_docker_event_names(ev, o->containers[i]))
				return true;
	}
	return false;
}

static void log_docker(struct agent *a, const struct vg_follow_item *it, const char *result)
{
	struct json_object *rec = vg_log_record("docker");
	struct timespec now;

	if (it->error[0] || it->lost) {
		json_object_object_add(rec, "action", json_object_new_string(it->lost ? "lost" : "stream"));
		json_object_object_add(rec, "error", json_object_new_string(
			it->lost ? "events queue full: some were dropped" : it->error));
	} else {
		json_object_object_add(rec, "container", json_object_new_string(it->ev.name));
		json_object_object_add(rec, "id", json_object_new_string(it->ev.id));
		json_object_object_add(rec, "action", json_object_new_string(it->ev.action));
	}
	if (result)
		json_object_object_add(rec, "reload", json_object_new_string(result));
	/* How long the container ran before its guard was in place: the window of guarding by name. */
	if (result && !it->lost && it->ev.time_ns) {
		clock_gettime(CLOCK_REALTIME, &now);
		json_object_object_add(rec, "after_start_ms", json_object_new_double(
			(double)(now.tv_sec * 1000000000LL + now.tv_nsec - it->ev.time_ns) / 1e6));
	}
	log_record(rec, a);
	json_object_put(rec);
}

/* The set again, its tunnels watched again; a refusal is retried (RETRY_MS, RETRY_MAX). */
static int reload_watched(struct agent *a, const char *why)
{
	struct itimerspec later = { .it_value = { RETRY_MS / 1000, (RETRY_MS % 1000) * 1000000L } };
	int err = reload(a, why);

	scan_guards(a);
	if (!err)
		a->retries_left = 0;
	else if (a->retries_left > 0)
		timerfd_settime(a->retry_tfd, 0, &later, NULL);
	return err;
}

/*
 * Container events: a start of a container the set names (a new cgroup, a
 * new namespace) reloads the set; deaths are only logged (the cgroup of a
 * dead container holds no process, and looking it up would fail until it
 * runs again).
 */
static void take_docker_events(struct agent *a)
{
	struct vg_follow_item its[8];
	bool start = false;
	uint64_t n;
	int k = 0, err;

	if (read(a->docker_efd, &n, sizeof(n)) < 0)
		return;
	while (k < (int)(sizeof(its) / sizeof(its[0])) && vg_follower_take(a->follower, &its[k])) {
		struct vg_follow_item *it = &its[k];

		if (it->error[0]) {
			log_docker(a, it, NULL);
			continue;
		}
		if (!it->lost && !set_names(a->set, &it->ev))
			continue;
		start |= it->lost || !strcmp(it->ev.action, "start");
		k++;
	}
	/* More than fit here: the next wake takes them. */
	if (k == (int)(sizeof(its) / sizeof(its[0])))
		eventfd_write(a->docker_efd, 1);
	if (!start) {
		for (int i = 0; i < k; i++)
			log_docker(a, &its[i], NULL);
		return;
	}
	a->retries_left = RETRY_MAX;
	err = reload_watched(a, "docker");
	for (int i = 0; i < k; i++)
		log_docker(a, &its[i], strcmp(its[i].ev.action, "start") && !its[i].lost ? NULL :
			   err ? "refused" : "applied");
}

static void retry_reload(struct agent *a)
{
	uint64_t expirations;

	if (read(a->retry_tfd, &expirations, sizeof(expirations)) != sizeof(expirations))
		return;
	a->retries_left--;
	reload_watched(a, "retry");
}

int vg_agent_claim(const struct vg_guard_set *set, struct vg_agent_claim *c)
{
	const char *log_path = set->log ? set->log : VG_DEFAULT_LOG;
	int err = vg_log_open(&c->log, log_path);

	if (err)
		return err;
	c->pidfile_fd = vg_pidfile_take(log_path);
	if (c->pidfile_fd < 0) {
		vg_log_close(&c->log);
		return c->pidfile_fd;
	}
	return 0;
}

void vg_agent_unclaim(struct vg_agent_claim *c)
{
	vg_pidfile_drop(c->pidfile_fd);
	vg_log_close(&c->log);
}

int vg_agent_run(struct vg_guard_set *set, const struct vg_options *cli, struct vg_agent_claim *c)
{
	struct agent a = { .log = c->log, .epfd = -1, .probe_efd = -1, .tick_tfd = -1,
			   .docker_efd = -1, .retry_tfd = -1, .set = set, .cli = cli };
	struct vg_event_reader *reader = NULL;
	sigset_t mask;
	int sfd = -1, err = 0;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	/* Blocked before any thread starts, so the probes and the webhook inherit it. */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	a.epfd = epoll_create1(EPOLL_CLOEXEC);
	a.probe_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a.tick_tfd = timerfd_create(CLOCK_BOOTTIME, TFD_CLOEXEC | TFD_NONBLOCK);
	a.docker_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	a.retry_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	reader = vg_event_reader_open(log_record, &a);
	if (sfd < 0 || a.epfd < 0 || a.probe_efd < 0 || a.tick_tfd < 0 ||
	    a.docker_efd < 0 || a.retry_tfd < 0 ||
	    !reader) {
		err = -errno ?: -EIO;
		fprintf(stderr, "vpnguard-bpf: agent setup: %s\n", strerror(-err));
		goto out;
	}
	if (set->webhook && !(a.webhook = vg_webhook_start(set->webhook))) {
		err = -errno;
		char url[1024];

		fprintf(stderr, "vpnguard-bpf: agent: webhook %s: %s\n",
			vg_url_redact(set->webhook, url, sizeof(url)), strerror(errno));
		goto out;
	}
	int by_tag[] = { [TAG_SIGNAL] = sfd, [TAG_RINGBUF] = vg_event_reader_fd(reader),
			 [TAG_PROBES] = a.probe_efd, [TAG_TICK] = a.tick_tfd,
			 [TAG_DOCKER] = a.docker_efd, [TAG_RETRY] = a.retry_tfd };

	for (__u32 tag = 0; tag < TAG_WATCH; tag++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = tag };

		epoll_ctl(a.epfd, EPOLL_CTL_ADD, by_tag[tag], &ev);
	}
	if ((err = scan_guards(&a)) || (err = start_health(&a)))
		goto out;
	scan_now(&a);
	follow_docker(&a);
	fprintf(stderr, "vpnguard-bpf: agent running (pid %d), events to %s\n", getpid(), a.log.path);
	sd_notifyf(0, "READY=1\nMAINPID=%d\nSTATUS=guarding %d guard(s)", getpid(), set->n);

	for (;;) {
		struct epoll_event evs[8];
		int n = epoll_wait(a.epfd, evs, 8, -1);
		__s64 woke_ns = mono_ns();

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			__u32 tag = evs[i].data.u32;

			if (tag == TAG_RINGBUF) {
				vg_event_reader_drain(reader);
			} else if (tag == TAG_PROBES) {
				take_probe_results(&a);
			} else if (tag == TAG_TICK) {
				on_tick(&a);
			} else if (tag == TAG_DOCKER) {
				take_docker_events(&a);
				follow_docker(&a);
			} else if (tag == TAG_RETRY) {
				retry_reload(&a);
			} else if (tag >= TAG_WATCH && tag - TAG_WATCH < (__u32)a.n_watches) {
				struct watch *w = &a.watches[tag - TAG_WATCH];

				/* Denials that happened before the change come first in the log. */
				vg_event_reader_drain(reader);
				drain_netlink(w->nl);
				refresh_watch(&a, w, woke_ns);
			} else if (tag == TAG_SIGNAL) {
				struct signalfd_siginfo si;

				if (read(sfd, &si, sizeof(si)) != sizeof(si))
					continue;
				if (si.ssi_signo == SIGHUP) {
					vg_log_reopen(&a.log);
					if (a.set->config_path)
						reload(&a, "sighup");
					scan_guards(&a);
					follow_docker(&a);
					scan_now(&a);
					continue;
				}
				vg_event_reader_drain(reader);
				goto out;
			}
		}
	}
out:
	sd_notify(0, "STOPPING=1");
	vg_follower_stop(a.follower);
	stop_health(&a);
	vg_webhook_stop(a.webhook, true);
	drop_watches(&a);
	vg_event_reader_close(reader);
	for (int *fd = (int[]){ sfd, a.epfd, a.probe_efd, a.tick_tfd, a.docker_efd, a.retry_tfd, -2 };
	     *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	json_object_put(a.findings);
	c->log = a.log;
	vg_agent_unclaim(c);
	vg_guard_set_free(a.set);
	free(a.set);
	return err;
}
