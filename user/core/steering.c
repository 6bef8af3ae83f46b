// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "loader.h"
#include "netns.h"
#include "policy.h"
#include "steer.h"
#include "steering.h"
#include "error.h"
#include "maps.h"

/*
 * A guard whose steering an attach made or changed: what a rollback puts
 * back, and what a success retires (the old mark's rules, when it changed).
 */
struct steer_change {
	int netns_fd;               /* the new policy's namespace (owned) */
	struct vg_policy policy;
	bool made;                  /* the mark's rule is new */
	bool had_old;
	struct vg_policy old;
	struct vg_guard_info old_info;
};

/* Makes the namespace route p's marked sockets into its tunnel (steer.h). */
int vg_steering_apply(int netns_fd, const struct vg_policy *p, bool *made)
{
	struct vg_steer s = { .fwmark = p->fwmark, .table = p->route_table };
	struct vg_tunnel facts;
	int err;

	if (made)
		*made = false;
	if (p->mode != VG_MODE_TUNNEL || !p->fwmark)
		return 0;
	err = vg_tunnel_facts(netns_fd, p->tunnel, &facts, NULL);
	if (err && err != -ENODEV)
		return vg_error(err, "read tunnel interface %s", p->tunnel);
	s.tun_ifindex = err ? 0 : facts.ifindex;
	s.n_allow = vg_policy_allow4(p, s.allow, VG_MAX_ALLOW);
	err = vg_steer_apply(netns_fd, &s, made);
	if (err)
		vg_error(err, "route fwmark 0x%x into %s (rules at priority %u-%u, table %u)", p->fwmark,
			  p->tunnel, VG_RULE_PREF_ALLOW, VG_RULE_PREF_MARK, p->route_table);
	return err;
}

/* Opens the namespace a guard was attached for, if it is still the one its policy names. */
int vg_guard_netns_open(const struct vg_guard_info *info, __u64 cookie)
{
	char path[sizeof(info->netns) + 1];
	__u64 now;
	int fd;

	snprintf(path, sizeof(path), "%s", info->netns);
	fd = vg_netns_open(path[0] ? path : NULL);
	if (fd >= 0 && (vg_netns_cookie(fd, &now) || now != cookie)) {
		close(fd);
		fd = -ENOENT;
	}
	return fd;
}

/* A rollback: the old policy's steering back, or none where there was none. */
static void steer_rollback(void *arg)
{
	const struct steer_change *c = arg;
	const struct vg_policy *o = &c->old;
	bool same = c->had_old && o->mode == VG_MODE_TUNNEL && o->fwmark == c->policy.fwmark &&
		    o->netns_cookie == c->policy.netns_cookie;

	if (same)
		vg_steering_apply(c->netns_fd, o, NULL);
	else if (c->made)
		vg_steer_remove(c->netns_fd, c->policy.fwmark, c->policy.route_table);
}

/* Takes out the rules and routes of an old policy whose mark or namespace the new one left. */
static void steer_retire(void *arg)
{
	const struct steer_change *c = arg;
	const struct vg_policy *o = &c->old;
	int fd;

	if (!c->had_old || o->mode != VG_MODE_TUNNEL || !o->fwmark ||
	    (c->policy.mode == VG_MODE_TUNNEL && o->fwmark == c->policy.fwmark &&
	     o->netns_cookie == c->policy.netns_cookie))
		return;
	fd = vg_guard_netns_open(&c->old_info, o->netns_cookie);
	if (fd < 0)
		return; /* that namespace is gone, and its rules with it */
	vg_steer_remove(fd, o->fwmark, o->route_table);
	close(fd);
}

static void steer_release(void *arg)
{
	struct steer_change *c = arg;

	if (c->netns_fd >= 0)
		close(c->netns_fd);
}

int vg_steering_txn(struct txn *t, int netns_fd, const struct vg_policy *p,
		    const struct vg_policy *old, const struct vg_guard_info *old_info)
{
	struct steer_change *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return -ENOMEM;
	c->policy = *p;
	c->had_old = old != NULL;
	if (old) {
		c->old = *old;
		c->old_info = *old_info;
	}
	c->netns_fd = netns_fd >= 0 ? dup(netns_fd) : -1;
	if (p->fwmark && c->netns_fd < 0) {
		err = -errno;
		free(c);
		return err;
	}
	err = p->fwmark ? vg_steering_apply(c->netns_fd, p, &c->made) : 0;
	if (err) {
		/* Whatever it made before failing goes too. */
		steer_rollback(c);
		steer_release(c);
		free(c);
		return err;
	}
	return txn_push(t, steer_rollback, steer_retire, steer_release, c);
}

/* Does another guard in p's namespace use p's mark or table? */
static bool steering_clashes(int policy_fd, __u64 id, const struct vg_policy *p)
{
	struct vg_policy q;
	__u64 key;

	if (policy_fd < 0)
		return false; /* no guard yet */
	vg_map_for_each_key(policy_fd, key) {
		if (key != id && !bpf_map_lookup_elem(policy_fd, &key, &q) &&
		    q.mode == VG_MODE_TUNNEL && q.netns_cookie == p->netns_cookie &&
		    (q.fwmark == p->fwmark || q.route_table == p->route_table))
			return true;
	}
	return false;
}

/*
 * The mark and table of a tunnel-mode guard: the ones given, the ones it
 * had in the same namespace, or the first VG_FWMARK_BASE + n pair that no
 * guard and no rule of the namespace uses.
 */
/* Given ones are refused when they clash: bad input (-EINVAL), as a bad word would be, said
 * whole by vg_error (the agent logs it when a reload is refused). */
static int check_given(int policy_fd, __u64 id, int netns_fd, const struct vg_policy *old,
		       const struct vg_policy *p)
{
	bool taken = false;
	int err;

	if (policy_fd >= 0 && steering_clashes(policy_fd, id, p))
		return vg_error(0, "--fwmark 0x%x / --route-table %u: another guard in the namespace "
				"of %s uses the same mark or table", p->fwmark, p->route_table,
				p->tunnel) ?: -EINVAL;
	/* The guard's own rules, from its previous attach, are not a clash. */
	if (old && old->mode == VG_MODE_TUNNEL && old->netns_cookie == p->netns_cookie &&
	    old->fwmark == p->fwmark && old->route_table == p->route_table)
		return 0;
	if ((err = vg_steer_taken(netns_fd, p->fwmark, p->route_table, &taken)))
		return vg_error(err, "list routing rules of the namespace of %s", p->tunnel);
	if (taken)
		return vg_error(0, "--fwmark 0x%x / --route-table %u: a routing rule in the namespace "
				"of %s already uses the same mark or table", p->fwmark, p->route_table,
				p->tunnel) ?: -EINVAL;
	return 0;
}

int vg_steering_check(__u64 id, int netns_fd, const struct vg_policy *p)
{
	int fd = vg_map_open(VG_MAP_POLICY), err;
	struct vg_policy old;
	bool had = false;

	if (fd < 0 && fd != -ENOENT)
		return vg_error(fd, "open pinned map vg_policy");
	if (fd >= 0)
		had = !bpf_map_lookup_elem(fd, &id, &old);
	err = check_given(fd, id, netns_fd, had ? &old : NULL, p);
	if (fd >= 0)
		close(fd);
	return err;
}

int vg_steering_choose(int policy_fd, __u64 id, int netns_fd, const struct vg_policy *old,
		       struct vg_policy *p)
{
	bool taken;
	int err;

	if (p->mode != VG_MODE_TUNNEL) {
		p->fwmark = p->route_table = 0;
		return 0;
	}
	if (p->fwmark)
		return check_given(policy_fd, id, netns_fd, old, p);
	if (old && old->mode == VG_MODE_TUNNEL && old->fwmark && old->netns_cookie == p->netns_cookie) {
		p->fwmark = old->fwmark;
		p->route_table = old->route_table;
		return 0;
	}
	for (__u32 n = 1; n <= VG_MAX_GUARDS; n++) {
		p->fwmark = p->route_table = VG_FWMARK_BASE + n;
		if (steering_clashes(policy_fd, id, p))
			continue;
		if ((err = vg_steer_taken(netns_fd, p->fwmark, p->route_table, &taken)))
			return vg_error(err, "list routing rules of the namespace of %s", p->tunnel);
		if (!taken)
			return 0;
	}
	return vg_error(-ENOSPC, "find a free fwmark and routing table for %s", p->tunnel);
}

/* Takes a guard's rules and routes out of its namespace, while that namespace exists. */
void vg_steering_remove(__u64 id)
{
	int pfd = vg_map_open(VG_MAP_POLICY), gfd = vg_map_open(VG_MAP_GUARDS), nfd, err;
	struct vg_guard_info info;
	struct vg_policy p;

	if (pfd >= 0 && gfd >= 0 && !bpf_map_lookup_elem(pfd, &id, &p) &&
	    !bpf_map_lookup_elem(gfd, &id, &info) && p.mode == VG_MODE_TUNNEL && p.fwmark) {
		nfd = vg_guard_netns_open(&info, p.netns_cookie);
		/* A namespace that is gone took its rules with it. */
		if (nfd >= 0 && (err = vg_steer_remove(nfd, p.fwmark, p.route_table)))
			vg_error(err, "remove the routing rules of fwmark 0x%x (table %u)", p.fwmark,
				  p.route_table);
		if (nfd >= 0)
			close(nfd);
	}
	if (pfd >= 0)
		close(pfd);
	if (gfd >= 0)
		close(gfd);
}
