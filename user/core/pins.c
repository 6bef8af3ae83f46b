// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "attach.h"
#include "cgroup.h"
#include "loader.h"
#include "pins.h"

#define MAX_MAPS 32

bool vg_pins_present(__u64 id)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%" PRIu64, vg_pin_root(), (uint64_t)id);
	return !access(path, F_OK) && !access(vg_pin_path(path, sizeof(path), "vg_policy"), F_OK);
}

static bool pinned_name(const char *name)
{
	for (int i = 0; i < vg_n_map_names; i++)
		if (!strcmp(name, vg_map_names[i]))
			return true;
	return false;
}

/* Pins fd at path unless something is pinned there; 1 if it pinned. */
static int pin_missing(int fd, const char *path)
{
	if (!access(path, F_OK))
		return 0;
	return bpf_obj_pin(fd, path) ? -errno : 1;
}

static int restore_maps(int prog_fd)
{
	__u32 ids[MAX_MAPS];
	int n = vg_prog_maps(prog_fd, ids, MAX_MAPS), made = 0;
	char path[PATH_MAX];

	for (int i = 0; i < n; i++) {
		struct bpf_map_info info;
		__u32 len = sizeof(info);
		int fd = bpf_map_get_fd_by_id(ids[i]), r = 0;

		memset(&info, 0, sizeof(info));
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) && pinned_name(info.name))
			r = pin_missing(fd, vg_pin_path(path, sizeof(path), info.name));
		close(fd);
		if (r < 0)
			return r;
		made += r;
	}
	return n < 0 ? n : made;
}

/* The id of the map pinned at path; 0 when there is none. */
static __u32 pinned_map_id(const char *path)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info), id = 0;
	int fd = bpf_obj_get(path);

	if (fd < 0)
		return 0;
	memset(&info, 0, sizeof(info));
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		id = info.id;
	close(fd);
	return id;
}

#define MAX_OWNED 256

/* The ids of the shared maps pinned in this root, or when it has none, in every root on bpffs. */
static struct {
	__u32 ids[MAX_OWNED];
	int n;
} owned;

static void own(__u32 id)
{
	if (id && owned.n < MAX_OWNED)
		owned.ids[owned.n++] = id;
}

static int note_shared_pin(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	(void)st;
	if (type == FTW_F && pinned_name(path + ftw->base))
		own(pinned_map_id(path));
	return 0;
}

static bool uses_owned(const int *fds)
{
	for (int i = 0; i < VG_N_CGROUP_HOOKS; i++) {
		__u32 ids[MAX_MAPS];
		int n = fds[i] >= 0 ? vg_prog_maps(fds[i], ids, MAX_MAPS) : 0;

		for (int m = 0; m < n; m++)
			for (int o = 0; o < owned.n; o++)
				if (ids[m] == owned.ids[o])
					return true;
	}
	return false;
}

/*
 * A guard belongs to the pin root whose shared maps its programs use: this
 * root's when it has them pinned; when it has none (wiped, or its bpffs gone
 * with a mount namespace), any guard whose maps no root on /sys/fs/bpf holds.
 * Never another root's: a second install, or test suites beside the
 * machine's own vpnguard, whose guards a plain detach here must not touch.
 */
static bool of_this_root(const int *fds)
{
	char path[PATH_MAX];

	owned.n = 0;
	for (int i = 0; i < vg_n_map_names; i++)
		own(pinned_map_id(vg_pin_path(path, sizeof(path), vg_map_names[i])));
	if (owned.n)
		return uses_owned(fds);
	nftw("/sys/fs/bpf", note_shared_pin, 16, FTW_PHYS | FTW_MOUNT);
	return !uses_owned(fds);
}

/* Guard id's program at each hook of cg_fd, or -1; whether there is any. */
static bool guard_progs_open(int cg_fd, __u64 id, int *fds)
{
	bool any = false;

	for (int i = 0; i < VG_N_CGROUP_HOOKS; i++) {
		fds[i] = vg_attached_prog(cg_fd, vg_cgroup_hooks[i], id);
		any |= fds[i] >= 0;
	}
	return any;
}

static void guard_progs_close(const int *fds)
{
	for (int i = 0; i < VG_N_CGROUP_HOOKS; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int vg_pins_restore(int cg_fd, __u64 id)
{
	int fds[VG_N_CGROUP_HOOKS], made = 0, err = 0;
	char path[PATH_MAX];

	if (!guard_progs_open(cg_fd, id, fds))
		return -ENOENT;
	if (!of_this_root(fds)) {
		err = -ENOENT;
		goto out;
	}
	if ((err = vg_bpffs_ensure()))
		goto out;
	if (mkdir(vg_pin_root(), 0700) && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	snprintf(path, sizeof(path), "%s/%" PRIu64, vg_pin_root(), (uint64_t)id);
	if (mkdir(path, 0700) && errno != EEXIST) {
		err = -errno;
		goto out;
	}
	for (int i = 0; i < VG_N_CGROUP_HOOKS && !err; i++) {
		struct bpf_prog_info info;
		__u32 len = sizeof(info);
		int r;

		if (fds[i] < 0)
			continue;
		/* Every program uses the shared maps (vg_guards and vg_abi too: vpnguard.bpf.c). */
		if ((r = restore_maps(fds[i])) < 0) {
			err = r;
			break;
		}
		made += r;
		memset(&info, 0, sizeof(info));
		if (bpf_obj_get_info_by_fd(fds[i], &info, &len))
			continue;
		snprintf(path, sizeof(path), "%s/%" PRIu64 "/%s", vg_pin_root(), (uint64_t)id,
			 info.name + strlen("vg_"));
		if ((r = pin_missing(fds[i], path)) < 0)
			err = r;
		else
			made += r;
	}
out:
	guard_progs_close(fds);
	return err ? err : made;
}

/* Does a guard of this root sit on cg_fd (its id: id) with its pins gone? */
static bool unpinned_here(int cg_fd, __u64 id)
{
	int fds[VG_N_CGROUP_HOOKS];
	bool unpinned = guard_progs_open(cg_fd, id, fds) && !vg_pins_present(id) && of_this_root(fds);

	guard_progs_close(fds);
	return unpinned;
}

/* The walk over every cgroup: restore (pin again) or only count, and the first path found. */
static struct {
	bool restore;
	int found;
	char *first;
	size_t len;
	size_t mnt_len;
} walk;

static int guard_dir(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	int fd;
	bool hit;

	(void)ftw;
	if (type != FTW_D)
		return 0;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* A guard's programs sit on its own cgroup: their guard id is the directory's inode. */
	hit = walk.restore ? vg_pins_restore(fd, st->st_ino) >= 0 : unpinned_here(fd, st->st_ino);
	close(fd);
	if (hit && !walk.found++ && walk.first)
		snprintf(walk.first, walk.len, "%s", path[walk.mnt_len] ? path + walk.mnt_len : "/");
	return 0;
}

static int walk_cgroups(bool restore, char *first, size_t len)
{
	char mnt[PATH_MAX];
	int err = vg_cgroup2_mount(mnt, sizeof(mnt));

	if (err)
		return err;
	walk.restore = restore;
	walk.found = 0;
	walk.first = first;
	walk.len = len;
	walk.mnt_len = strlen(mnt);
	if (nftw(mnt, guard_dir, 16, FTW_PHYS | FTW_MOUNT))
		return -errno;
	return walk.found;
}

int vg_pins_restore_all(void)
{
	return walk_cgroups(true, NULL, 0);
}

int vg_pins_missing(char *first, size_t len)
{
	return walk_cgroups(false, first, len);
}
