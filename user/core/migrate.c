// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "cgroup.h"
#include "loader.h"
#include "migrate.h"
#include "netns.h"
#include "maps.h"
#include "error.h"

/* The guard record of layout 1: vg_guard_info without build. */
struct abi1_guard_info {
	char cgroup[192];
	char netns[64];
};

struct old_guard {
	__u64 id;
	struct vg_policy policy;     /* layout 1's: fwmark and route_table held other fields */
	struct vg_state state;
	struct abi1_guard_info info;
	struct vg_cgroup cg;
	bool live;
};

static int open_old(const char *root, const char *name, __u32 value_size)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, name);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.value_size != value_size) {
		close(fd);
		return vg_error(0, "%s: not the layout 1 this version takes over", path) ?: -EPROTO;
	}
	return fd;
}

/* Every guard of the old pins, and what it needs to be attached anew. */
static int read_old(const char *root, struct old_guard *g, int max)
{
	int pfd = open_old(root, "vg_policy", sizeof(struct vg_policy));
	int sfd = open_old(root, "vg_state", sizeof(struct vg_state));
	int gfd = open_old(root, "vg_guards", sizeof(struct abi1_guard_info));
	char mnt[PATH_MAX], path[PATH_MAX * 2], err[PATH_MAX + 256];
	__u64 key;
	int n = 0, r = pfd < 0 ? pfd : sfd < 0 ? sfd : gfd < 0 ? gfd : vg_cgroup2_mount(mnt, sizeof(mnt));

	vg_map_for_each_key(pfd, key) {
		struct old_guard *o = &g[n];

		if (r || n == max)
			break;
		memset(o, 0, sizeof(*o));
		o->id = key;
		if (bpf_map_lookup_elem(pfd, &key, &o->policy) || bpf_map_lookup_elem(gfd, &key, &o->info))
			continue;
		if (bpf_map_lookup_elem(sfd, &key, &o->state))
			o->state.state = VG_STATE_CLOSED;
		o->policy.fwmark = o->policy.route_table = 0; /* layout 1's cgroup_level and pad */
		o->info.cgroup[sizeof(o->info.cgroup) - 1] = o->info.netns[sizeof(o->info.netns) - 1] = 0;
		snprintf(path, sizeof(path), "%s%s", mnt, strcmp(o->info.cgroup, "/") ? o->info.cgroup : "");
		/* A cgroup that is gone took its programs with it: nothing to take over. */
		o->live = !vg_cgroup_resolve(path, &o->cg, err, sizeof(err)) && o->cg.id == key;
		n++;
	}
	for (int *fd = (int[]){ pfd, sfd, gfd, -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	return r ? r : n;
}

/* The maps of layout 1, held while their pins are out of the way. */
struct old_maps {
	int fd[16];
	char name[16][16];
	int n;
};

/* Takes the map pins of layout 1 out of the pin root, holding each map. */
static int unpin_old_maps(struct old_maps *m)
{
	static const char *const names[] = {
		"vg_policy", "vg_state", "vg_guards", "vg_tunnels", "vg_counters", "vg_ratelimit",
		"vg_events",
	};
	char path[PATH_MAX];

	m->n = 0;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int fd = bpf_obj_get(vg_pin_path(path, sizeof(path), names[i]));

		if (fd < 0)
			continue;
		m->fd[m->n] = fd;
		snprintf(m->name[m->n++], sizeof(m->name[0]), "%s", names[i]);
		if (unlink(path))
			return -errno;
	}
	return 0;
}

static void repin_old_maps(const struct old_maps *m)
{
	char path[PATH_MAX];

	for (int i = 0; i < m->n; i++)
		if (bpf_obj_pin(m->fd[i], vg_pin_path(path, sizeof(path), m->name[i])))
			vg_error(-errno, "put back pin %s", path);
}

static int old_map(const struct old_maps *m, const char *name)
{
	for (int i = 0; i < m->n; i++)
		if (!strcmp(m->name[i], name))
			return m->fd[i];
	return -1;
}

/* Layout 1's counts go on in the new vg_counters (same reasons, same CPUs). */
static void copy_counters(const struct old_maps *m, const struct old_guard *g, int n)
{
	int ofd = old_map(m, "vg_counters"), nfd = vg_map_open(VG_MAP_COUNTERS);
	int ncpu = libbpf_num_possible_cpus();
	__u64 *vals = ncpu > 0 ? calloc(ncpu, sizeof(*vals)) : NULL;

	for (int i = 0; vals && ofd >= 0 && nfd >= 0 && i < n; i++)
		for (__u32 r = 0; r < VG_R_MAX; r++) {
			struct vg_counter_key key = { .cgroup_id = g[i].id, .reason = r };

			if (!bpf_map_lookup_elem(ofd, &key, vals))
				bpf_map_update_elem(nfd, &key, vals, BPF_ANY);
		}
	free(vals);
	if (nfd >= 0)
		close(nfd);
}

/* What layout 1 left in a guard's directory: its tc links (its cgroup links were replaced). */
static bool old_tc_link(const char *name)
{
	return !strncmp(name, "tc_", 3) && strcmp(name, "tc_egress");
}

/* A guard that was not taken over (its cgroup is gone): all its pins. */
static bool any_pin(const char *name)
{
	return name[0] != '.';
}

/* Unpins what which() names in the guard's directory; the directory too when it is left empty. */
static void unpin_old(__u64 id, bool (*which)(const char *name))
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "%s/%" PRIu64, vg_pin_root(), (uint64_t)id);
	if (!(d = opendir(dir)))
		return;
	while ((de = readdir(d)))
		if (which(de->d_name)) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	closedir(d);
	rmdir(dir);
}

int vg_migrate_abi1(void)
{
	struct old_guard *g = calloc(VG_MAX_GUARDS, sizeof(*g));
	struct vg_attach_req *reqs = calloc(VG_MAX_GUARDS, sizeof(*reqs));
	struct old_maps maps = { .n = 0 };
	int n = 0, k = 0, err = 0;

	if (!g || !reqs) {
		err = -ENOMEM;
		goto out;
	}
	if ((n = read_old(vg_pin_root(), g, VG_MAX_GUARDS)) < 0) {
		err = n;
		n = 0;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		struct vg_attach_req *req = &reqs[k];
		__u64 cookie;

		if (!g[i].live)
			continue;
		*req = (struct vg_attach_req){ .cgroups = &g[i].cg, .n_cgroups = 1, .policy = g[i].policy,
					       .state = g[i].state, .netns_fd = -1 };
		req->netns_path = g[i].info.netns[0] ? g[i].info.netns : NULL;
		if (g[i].policy.mode == VG_MODE_TUNNEL) {
			req->netns_fd = vg_netns_open(req->netns_path);
			/*
			 * The tunnel's namespace is gone: the old guard denies everything
			 * (no socket is in the namespace its policy names), and so does the
			 * new one, taken over without tunnel facts or steering.
			 */
			if (req->netns_fd >= 0 && (vg_netns_cookie(req->netns_fd, &cookie) ||
						   cookie != g[i].policy.netns_cookie)) {
				close(req->netns_fd);
				req->netns_fd = -1;
			}
		}
		k++;
	}
	/*
	 * The old programs hold their maps: unpinned, the maps live on, and the
	 * new generation pins its own. Each new program takes its hook before the
	 * old link's pin is replaced by it: for that moment a packet must pass both.
	 */
	if ((err = unpin_old_maps(&maps)))
		vg_error(err, "unpin the maps of layout 1 in %s", vg_pin_root());
	if (!err && (err = vg_attach_requests(reqs, k))) {
		vg_remove_root_if_empty();
		repin_old_maps(&maps);
		goto out;
	}
	if (err) {
		repin_old_maps(&maps);
		goto out;
	}
	copy_counters(&maps, g, n);
	for (int i = 0; i < n; i++) {
		if (g[i].live)
			unpin_old(g[i].id, old_tc_link);
		else
			unpin_old(g[i].id, any_pin);
	}
	fprintf(stderr, "vpnguard-bpf: took over %d guard(s) from the pins of the first release "
		"(map layout 1)\n", k);
out:
	for (int i = 0; i < maps.n; i++)
		close(maps.fd[i]);
	for (int i = 0; reqs && i < k; i++)
		if (reqs[i].netns_fd >= 0)
			close(reqs[i].netns_fd);
	free(g);
	free(reqs);
	return err;
}
