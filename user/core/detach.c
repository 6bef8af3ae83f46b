// SPDX-License-Identifier: GPL-2.0
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "attach.h"
#include "cgroup.h"
#include "loader.h"
#include "netns.h"
#include "steering.h"
#include "tunnels.h"
#include "error.h"
#include "maps.h"

/* Unpins what the guard's directory holds (for people: enforcement is the kernel's attachments). */
static int remove_guard_dir(__u64 id)
{
	char dir[PATH_MAX], path[PATH_MAX * 2];
	struct dirent *de;
	DIR *d;
	int err = 0;

	snprintf(dir, sizeof(dir), "%s/%" PRIu64, vg_pin_root(), (uint64_t)id);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : vg_error(-errno, "open %s", dir);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (unlink(path) && !err)
			err = vg_error(-errno, "unpin %s", path);
	}
	closedir(d);
	if (rmdir(dir) && !err)
		err = vg_error(-errno, "remove %s", dir);
	return err;
}

/*
 * Takes the guard's programs off its cgroup and off the interfaces of its
 * tunnel's namespace. A cgroup or namespace that is gone took its
 * attachments with it.
 */
static int detach_programs(__u64 id, const struct vg_guard_info *info, const struct vg_policy *p)
{
	char mnt[PATH_MAX], path[PATH_MAX * 2];
	int fd, err = 0;

	if (!vg_cgroup2_mount(mnt, sizeof(mnt))) {
		snprintf(path, sizeof(path), "%s%s", mnt, strcmp(info->cgroup, "/") ? info->cgroup : "");
		fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		for (size_t i = 0; fd >= 0 && i < VG_N_CGROUP_HOOKS; i++) {
			int r = vg_detach_guard(fd, vg_cgroup_hooks[i], id);

			if (r && !err)
				err = vg_error(r, "detach program from cgroup %s", path);
		}
		if (fd >= 0)
			close(fd);
	}
	if (p->mode == VG_MODE_TUNNEL && (fd = vg_guard_netns_open(info, p->netns_cookie)) >= 0) {
		err = vg_tc_detach_guard(fd, id) ?: err;
		close(fd);
	}
	return err;
}

static void delete_guard_entries(__u64 id)
{
	static const enum vg_map by_id[] = { VG_MAP_POLICY, VG_MAP_STATE, VG_MAP_GUARDS };
	static const enum vg_map by_reason[] = { VG_MAP_COUNTERS, VG_MAP_RATELIMIT };

	for (size_t i = 0; i < sizeof(by_id) / sizeof(by_id[0]); i++) {
		int fd = vg_map_open(by_id[i]);

		if (fd >= 0) {
			bpf_map_delete_elem(fd, &id);
			close(fd);
		}
	}
	for (size_t i = 0; i < sizeof(by_reason) / sizeof(by_reason[0]); i++) {
		int fd = vg_map_open(by_reason[i]);

		if (fd < 0)
			continue;
		for (__u32 r = 0; r < VG_R_MAX; r++) {
			struct vg_counter_key key = { .cgroup_id = id, .reason = r };

			bpf_map_delete_elem(fd, &key);
		}
		close(fd);
	}
}

static int count_guards(void)
{
	int fd = vg_map_open(VG_MAP_POLICY);
	__u64 key;
	int n = 0;

	if (fd < 0)
		return 0;
	vg_map_for_each_key(fd, key)
		n++;
	close(fd);
	return n;
}

void vg_remove_root_if_empty(void)
{
	char path[PATH_MAX];

	if (count_guards())
		return;
	for (int i = 0; i < vg_n_map_names; i++)
		unlink(vg_pin_path(path, sizeof(path), vg_map_names[i]));
	rmdir(vg_pin_root());
}

/* Everything of one guard: its programs leave the cgroup and the interfaces, then steering, maps, pins. */
static int remove_guard(__u64 id)
{
	int pfd = vg_map_open(VG_MAP_POLICY), gfd = vg_map_open(VG_MAP_GUARDS), err = 0;
	struct vg_guard_info info;
	struct vg_policy p;

	if (pfd >= 0 && gfd >= 0 && !bpf_map_lookup_elem(pfd, &id, &p) &&
	    !bpf_map_lookup_elem(gfd, &id, &info)) {
		info.cgroup[sizeof(info.cgroup) - 1] = info.netns[sizeof(info.netns) - 1] = 0;
		err = detach_programs(id, &info, &p);
	}
	if (pfd >= 0)
		close(pfd);
	if (gfd >= 0)
		close(gfd);
	vg_steering_remove(id);
	delete_guard_entries(id);
	return remove_guard_dir(id) ?: err;
}

int vg_detach(const __u64 *ids, int n)
{
	int err = 0;

	if (access(vg_pin_root(), F_OK))
		return 0;
	if (n == 0) {
		DIR *d = opendir(vg_pin_root());
		struct dirent *de;

		if (!d)
			return vg_error(-errno, "open %s", vg_pin_root());
		/* Only numeric directories are guards; anything else is not ours to remove. */
		while ((de = readdir(d))) {
			char *end;
			__u64 id = strtoull(de->d_name, &end, 10);

			if (!de->d_name[0] || *end || de->d_name[0] == '.')
				continue;
			err = remove_guard(id) ?: err;
		}
		closedir(d);
		/* Guards whose directories are already gone (removed by hand). */
		int fd = vg_map_open(VG_MAP_POLICY);
		__u64 key;

		while (fd >= 0 && !bpf_map_get_next_key(fd, NULL, &key))
			err = remove_guard(key) ?: err;
		if (fd >= 0)
			close(fd);
	}
	for (int i = 0; i < n; i++)
		err = remove_guard(ids[i]) ?: err;
	vg_tunnel_maps_prune();
	vg_remove_root_if_empty();
	if (!access(vg_pin_root(), F_OK) && !count_guards())
		fprintf(stderr, "vpnguard-bpf: %s still holds files vpnguard did not make; left in place\n",
			vg_pin_root());
	return err;
}

int vg_guard_find(const char *arg, __u64 *id)
{
	static const char legacy_root[] = "/sys/fs/cgroup";
	char mnt[PATH_MAX] = "", want[PATH_MAX];
	const char *rel = arg;
	struct vg_guard_info info;
	__u64 key;
	size_t n;
	int fd, err = -ENOENT;

	vg_cgroup2_mount(mnt, sizeof(mnt));
	n = strlen(mnt);
	/* The forms --cgroup takes: below the mount, or written for a pure v2 layout, or relative. */
	if (n && !strncmp(rel, mnt, n) && (rel[n] == '/' || !rel[n]))
		rel += n;
	else if (!strncmp(rel, legacy_root, sizeof(legacy_root) - 1) &&
		 (rel[sizeof(legacy_root) - 1] == '/' || !rel[sizeof(legacy_root) - 1]))
		rel += sizeof(legacy_root) - 1;
	snprintf(want, sizeof(want), "/%s", rel + (rel[0] == '/'));
	for (n = strlen(want); n > 1 && want[n - 1] == '/'; n--)
		want[n - 1] = 0;
	if ((fd = vg_map_open(VG_MAP_GUARDS)) < 0)
		return fd;
	vg_map_for_each_key(fd, key) {
		if (!bpf_map_lookup_elem(fd, &key, &info) &&
		    !strncmp(info.cgroup, want, sizeof(info.cgroup))) {
			*id = key;
			err = 0;
			break;
		}
	}
	close(fd);
	return err;
}
