// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "clock.h"
#include "error.h"
#include "loader.h"
#include "netns.h"
#include "policy.h"
#include "status.h"
#include "steering.h"

struct maps {
	int policy, state, guards, tunnels, counters, tundev;
};

static void close_maps(struct maps *m)
{
	int *fds[] = { &m->policy, &m->state, &m->guards, &m->tunnels, &m->counters, &m->tundev };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (*fds[i] >= 0)
			close(*fds[i]);
}

static __u64 sum_counter(int fd, __u64 id, __u32 reason)
{
	struct vg_counter_key key = { .cgroup_id = id, .reason = reason };
	int ncpu = libbpf_num_possible_cpus();
	struct vg_counter *vals;
	__u64 sum = 0;

	if (ncpu <= 0)
		return 0;
	vals = calloc(ncpu, sizeof(*vals));
	if (vals && !bpf_map_lookup_elem(fd, &key, vals))
		for (int i = 0; i < ncpu; i++)
			sum += vals[i].denied;
	free(vals);
	return sum;
}

static struct json_object *addr_list(const struct vg_addr *a, __u32 n)
{
	struct json_object *arr = json_object_new_array();
	char buf[INET6_ADDRSTRLEN];

	for (__u32 i = 0; i < n; i++)
		json_object_array_add(arr, json_object_new_string(vg_addr_str(&a[i], buf, sizeof(buf))));
	return arr;
}

/* As the programs see it: up, and its device still there (vg_tundev is the kernel's word). */
static bool tunnel_present(const struct maps *m, const struct vg_policy *p, struct vg_tunnel *t)
{
	struct vg_tunnel_key key = vg_tunnel_key_of(p);
	struct vg_tundev dev;

	return !bpf_map_lookup_elem(m->tunnels, &key, t) && t->ifindex &&
	       !bpf_map_lookup_elem(m->tundev, &t->slot, &dev) && dev.ifindex == t->ifindex;
}

/* Is the guard's cgroup still there (the same one: a new cgroup of that path has another id)? */
static bool cgroup_present(const struct vg_guard_info *info, __u64 id)
{
	char mnt[PATH_MAX], path[PATH_MAX * 2];
	struct stat st;

	if (vg_cgroup2_mount(mnt, sizeof(mnt)))
		return false;
	snprintf(path, sizeof(path), "%s%s", mnt, strcmp(info->cgroup, "/") ? info->cgroup : "");
	return !stat(path, &st) && st.st_ino == id;
}

struct tc_req {
	__u64 id;
	int ifindex;
	bool held;
};

static int tc_held_here(void *arg)
{
	struct tc_req *req = arg;
	int fd = vg_attached_prog(req->ifindex, VG_BPF_TCX_EGRESS, req->id);

	req->held = fd >= 0;
	if (fd >= 0)
		close(fd);
	return 0;
}

/*
 * Whether the tunnel's namespace is there, and (as the kernel says: Debian's
 * bpftool does not show tcx) which of its interfaces hold the guard's tc program.
 */
static bool netns_present(const struct vg_guard_info *info, const struct vg_policy *p, __u64 id,
			  struct json_object *tc)
{
	int fd = vg_guard_netns_open(info, p->netns_cookie);
	struct vg_link links[VG_MAX_LINKS];
	int n = fd >= 0 ? vg_netns_links(fd, links, VG_MAX_LINKS) : 0;

	for (int i = 0; i < n; i++) {
		struct tc_req req = { id, links[i].ifindex, false };

		if (!vg_netns_run(fd, tc_held_here, &req) && req.held)
			json_object_array_add(tc, json_object_new_int(links[i].ifindex));
	}
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

static struct json_object *guard_json(const struct maps *m, __u64 id, const struct vg_policy *p)
{
	struct json_object *g = json_object_new_object(), *arr, *counters;
	struct vg_guard_info info = { 0 };
	struct vg_state st = { .state = VG_STATE_CLOSED };
	char buf[INET6_ADDRSTRLEN + 16], addr[INET6_ADDRSTRLEN];

	bpf_map_lookup_elem(m->guards, &id, &info);
	info.cgroup[sizeof(info.cgroup) - 1] = info.netns[sizeof(info.netns) - 1] = 0;
	json_object_object_add(g, "cgroup", json_object_new_string(info.cgroup));
	json_object_object_add(g, "cgroup_id", json_object_new_uint64(id));
	json_object_object_add(g, "cgroup_present", json_object_new_boolean(cgroup_present(&info, id)));
	json_object_object_add(g, "mode", json_object_new_string(vg_mode_name(p->mode)));
	if (p->mode == VG_MODE_TUNNEL) {
		struct vg_tunnel t;
		bool present = tunnel_present(m, p, &t);
		json_object_object_add(g, "tunnel", json_object_new_string(p->tunnel));
		json_object_object_add(g, "netns", json_object_new_string(info.netns[0] ? info.netns : "(attaching process's)"));
		json_object_object_add(g, "tunnel_ifindex", json_object_new_int(present ? (int)t.ifindex : 0));
		json_object_object_add(g, "tunnel_present", json_object_new_boolean(present));
		struct json_object *tc = json_object_new_array();

		json_object_object_add(g, "netns_present", json_object_new_boolean(netns_present(&info, p, id, tc)));
		json_object_object_add(g, "tc_ifindexes", tc);
		json_object_object_add(g, "fwmark", json_object_new_uint64(p->fwmark));
		json_object_object_add(g, "route_table", json_object_new_uint64(p->route_table));
	} else {
		arr = json_object_new_array();
		for (__u32 i = 0; i < p->n_gw; i++) {
			vg_addr_str(&p->gw[i].addr, addr, sizeof(addr));
			if (!p->gw[i].port)
				snprintf(buf, sizeof(buf), "%s", addr);
			else if (vg_addr_is_v4(&p->gw[i].addr))
				snprintf(buf, sizeof(buf), "%s:%u", addr, ntohs(p->gw[i].port));
			else
				snprintf(buf, sizeof(buf), "[%s]:%u", addr, ntohs(p->gw[i].port));
			json_object_array_add(arr, json_object_new_string(buf));
		}
		json_object_object_add(g, "gateways", arr);
	}
	arr = json_object_new_array();
	for (__u32 i = 0; i < p->n_allow; i++) {
		snprintf(buf, sizeof(buf), "%s/%d", vg_addr_str(&p->allow[i].net, addr, sizeof(addr)),
			 vg_cidr_prefix(&p->allow[i]));
		json_object_array_add(arr, json_object_new_string(buf));
	}
	json_object_object_add(g, "allow", arr);
	json_object_object_add(g, "dns", addr_list(p->dns, p->n_dns));

	bpf_map_lookup_elem(m->state, &id, &st);
	__u64 now_ns = vg_boot_ns();
	bool expired = st.lease_deadline_ns && now_ns > st.lease_deadline_ns;
	json_object_object_add(g, "state", json_object_new_string(
		st.state == VG_STATE_OPEN && !expired ? "open" : "closed"));
	json_object_object_add(g, "lease_left_s", !st.lease_deadline_ns ? NULL :
		json_object_new_double(expired ? 0 : (st.lease_deadline_ns - now_ns) / 1e9));

	counters = json_object_new_object();
	for (__u32 r = VG_R_NO_POLICY; r < VG_R_MAX; r++)
		json_object_object_add(counters, vg_reason_name(r),
				       json_object_new_uint64(sum_counter(m->counters, id, r)));
	json_object_object_add(g, "denied", counters);
	return g;
}

int vg_status_json(struct json_object **out)
{
	struct maps m = {
		vg_map_open(VG_MAP_POLICY), vg_map_open(VG_MAP_STATE), vg_map_open(VG_MAP_GUARDS),
		vg_map_open(VG_MAP_TUNNELS), vg_map_open(VG_MAP_COUNTERS), vg_map_open(VG_MAP_TUNDEV),
	};
	struct json_object *root = json_object_new_object(), *guards = json_object_new_array();
	int err = 0;
	__u64 key;

	json_object_object_add(root, "pin_root", json_object_new_string(VG_PIN_ROOT));
	json_object_object_add(root, "guards", guards);
	if (m.policy >= 0 && (m.state < 0 || m.guards < 0 || m.tunnels < 0 || m.counters < 0 ||
				m.tundev < 0))
		err = vg_error(-ENOENT, "%s is incomplete: a map is missing", VG_PIN_ROOT);
	else if (m.policy < 0 && m.policy != -ENOENT)
		err = vg_error(m.policy, "open %s/vg_policy", VG_PIN_ROOT);
	else
		vg_map_for_each_key(m.policy, key) {
			struct vg_policy p;

			if (!bpf_map_lookup_elem(m.policy, &key, &p))
				json_object_array_add(guards, guard_json(&m, key, &p));
		}
	close_maps(&m);
	if (err) {
		json_object_put(root);
		root = NULL;
	}
	*out = root;
	return err;
}
