// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include "paths.h"
#include "error.h"

static const char *from_env(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && v[0] == '/' ? v : fallback;
}

int vg_bpffs_ensure(void)
{
	struct statfs fs;

	if (!statfs("/sys/fs/bpf", &fs) && fs.f_type == BPF_FS_MAGIC)
		return 0;
	if (mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700"))
		return vg_error(-errno, "mount bpffs on /sys/fs/bpf");
	return 0;
}

const char *vg_pin_root(void)
{
	return from_env("VPNGUARD_PIN_ROOT", "/sys/fs/bpf/vpnguard");
}

const char *vg_run_dir(void)
{
	return from_env("VPNGUARD_RUN_DIR", "/run/vpnguard");
}

const char *vg_agent_pidfile(void)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/agent.pid", vg_run_dir());
	return path;
}

const char *vg_pin_path(char *buf, unsigned long len, const char *name)
{
	snprintf(buf, len, "%s/%s", vg_pin_root(), name);
	return buf;
}

int vg_lock_take(void)
{
	char path[4096];
	int fd, err;

	snprintf(path, sizeof(path), "%s/lock", vg_run_dir());
	if (mkdir(vg_run_dir(), 0700) && errno != EEXIST) {
		err = -errno;
		vg_error(-errno, "create %s", vg_run_dir());
		return err;
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && !flock(fd, LOCK_EX | LOCK_NB))
		return fd;
	if (fd >= 0 && errno == EWOULDBLOCK) {
		fprintf(stderr, "vpnguard-bpf: waiting for another vpnguard-bpf to finish (it holds %s)\n",
			path);
		if (!flock(fd, LOCK_EX))
			return fd;
	}
	err = -errno;
	vg_error(-errno, "lock %s", path);
	if (fd >= 0)
		close(fd);
	return err;
}

int vg_lock_try(void)
{
	char path[4096];
	int fd, err;

	snprintf(path, sizeof(path), "%s/lock", vg_run_dir());
	if (mkdir(vg_run_dir(), 0700) && errno != EEXIST)
		return -errno;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0 && !flock(fd, LOCK_EX | LOCK_NB))
		return fd;
	err = -errno;
	if (fd >= 0)
		close(fd);
	return err;
}

void vg_lock_drop(int fd)
{
	if (fd >= 0)
		close(fd);
}
