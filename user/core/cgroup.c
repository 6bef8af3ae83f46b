// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include "cgroup.h"
#include "proc_parse.h"

int vg_cgroup2_mount(char *buf, size_t len)
{
	FILE *f = fopen("/proc/self/mounts", "re");
	char dev[256], dir[PATH_MAX], type[64];
	int err = -ENOENT;

	if (!f)
		return -errno;
	while (fscanf(f, "%255s %4095s %63s %*[^\n]", dev, dir, type) == 3) {
		if (!strcmp(type, "cgroup2")) {
			snprintf(buf, len, "%s", dir);
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

static int is_cgroup2_dir(const char *path, struct stat *st)
{
	struct statfs fs;

	if (stat(path, st))
		return -errno;
	if (!S_ISDIR(st->st_mode))
		return -ENOTDIR;
	if (statfs(path, &fs))
		return -errno;
	return fs.f_type == CGROUP2_SUPER_MAGIC ? 0 : -ENOTDIR;
}

static int fill(struct vg_cgroup *cg, const char *mnt, const char *path, const struct stat *st)
{
	char real[PATH_MAX];
	size_t mlen = strlen(mnt);

	if (!realpath(path, real))
		return -errno;
	if (strncmp(real, mnt, mlen) || (real[mlen] && real[mlen] != '/'))
		return -ENOTDIR;
	snprintf(cg->path, sizeof(cg->path), "%s", real);
	snprintf(cg->rel, sizeof(cg->rel), "%s", real[mlen] ? real + mlen : "/");
	cg->id = st->st_ino;
	cg->level = vg_cgroup_level(cg->rel);
	return 0;
}

__u32 vg_cgroup_level(const char *rel)
{
	__u32 level = 0;

	for (const char *p = rel; *p; p++)
		if (*p == '/' && p[1])
			level++;
	return level;
}

int vg_cgroup_resolve(const char *arg, struct vg_cgroup *cg, char *err, size_t errlen)
{
	static const char legacy_root[] = "/sys/fs/cgroup";
	char mnt[PATH_MAX], try[PATH_MAX * 2];
	struct stat st;
	int r;

	r = vg_cgroup2_mount(mnt, sizeof(mnt));
	if (r) {
		snprintf(err, errlen, "--cgroup %s: no cgroup v2 mount found in /proc/self/mounts", arg);
		return r;
	}
	r = is_cgroup2_dir(arg, &st);
	if (!r) {
		if (!fill(cg, mnt, arg, &st))
			return 0;
		snprintf(err, errlen, "--cgroup %s: outside the cgroup v2 mount %s", arg, mnt);
		return -ENOTDIR;
	}
	/* Written for a pure v2 layout on a hybrid one, or relative to the mount. */
	const char *rel = arg;
	if (!strncmp(arg, legacy_root, sizeof(legacy_root) - 1) &&
	    (arg[sizeof(legacy_root) - 1] == '/' || !arg[sizeof(legacy_root) - 1]))
		rel = arg + sizeof(legacy_root) - 1;
	snprintf(try, sizeof(try), "%s/%s", mnt, rel[0] == '/' ? rel + 1 : rel);
	if (!is_cgroup2_dir(try, &st) && !fill(cg, mnt, try, &st))
		return 0;
	snprintf(err, errlen, "--cgroup %s: %s (cgroup v2 is mounted at %s)", arg,
		 r == -ENOTDIR ? "not a cgroup v2 directory" : strerror(-r), mnt);
	return r;
}

int vg_cgroup_of_pid(int pid, struct vg_cgroup *cg, char *err, size_t errlen)
{
	char path[64], text[8192], rel[PATH_MAX], mnt[PATH_MAX], abs[PATH_MAX * 2];
	FILE *f;
	size_t n;
	int r;

	snprintf(path, sizeof(path), "/proc/%d/cgroup", pid);
	f = fopen(path, "re");
	if (!f) {
		r = -errno;
		snprintf(err, errlen, "%s: %s", path, strerror(-r));
		return r;
	}
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	r = vg_proc_cgroup_v2(text, rel, sizeof(rel));
	if (r) {
		snprintf(err, errlen, "%s: %s", path, r == -ENOENT ? "no cgroup v2 line (0::)" :
			 r == -EINVAL ? "cgroup v2 path outside this cgroup namespace" : strerror(-r));
		return r;
	}
	r = vg_cgroup2_mount(mnt, sizeof(mnt));
	if (r) {
		snprintf(err, errlen, "%s: no cgroup v2 mount found in /proc/self/mounts", path);
		return r;
	}
	/* Below the mount, never taken for a path of its own. */
	snprintf(abs, sizeof(abs), "%s%s", mnt, strcmp(rel, "/") ? rel : "");
	return vg_cgroup_resolve(abs, cg, err, errlen);
}
