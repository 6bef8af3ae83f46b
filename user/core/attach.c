// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "attach.h"
#include "vpnguard.h"

/* Programs one target can hold at once, more than any real setup attaches. */
#define MAX_QUERY 64
#define MAX_PROG_MAPS 16

const enum bpf_attach_type vg_cgroup_hooks[VG_N_CGROUP_HOOKS] = {
	BPF_CGROUP_INET_EGRESS, BPF_CGROUP_INET_SOCK_CREATE, BPF_CGROUP_SETSOCKOPT,
	BPF_CGROUP_INET4_CONNECT, BPF_CGROUP_INET6_CONNECT,
	BPF_CGROUP_UDP4_SENDMSG, BPF_CGROUP_UDP6_SENDMSG,
};

static bool vpnguard_prog(const char *name)
{
	static const char *const names[] = {
		"vg_egress", "vg_sock_create", "vg_setsockopt", "vg_connect4", "vg_connect6",
		"vg_sendmsg4", "vg_sendmsg6", "vg_tc_egress",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

int vg_prog_maps(int prog_fd, __u32 *ids, __u32 max)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	info.nr_map_ids = max;
	info.map_ids = (__u64)(uintptr_t)ids;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	return (int)(info.nr_map_ids < max ? info.nr_map_ids : max);
}

/*
 * The guard a program of vpnguard serves and the map layout it was made for,
 * from its read-only data; -ENOENT: not vpnguard's.
 */
static int guard_of(int prog_fd, __u64 *id, __u32 *abi)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info), ids[MAX_PROG_MAPS];
	int n, err = -ENOENT;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len))
		return -errno;
	if (!vpnguard_prog(info.name))
		return -ENOENT;
	n = vg_prog_maps(prog_fd, ids, MAX_PROG_MAPS);
	for (int i = 0; i < n && err == -ENOENT; i++) {
		struct bpf_map_info m;
		__u32 mlen = sizeof(m), zero = 0;
		int fd = bpf_map_get_fd_by_id(ids[i]);
		void *val;

		memset(&m, 0, sizeof(m));
		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &m, &mlen) && !strcmp(m.name, VG_RODATA_MAP) &&
		    m.value_size >= VG_RODATA_GUARD_ID_OFF + sizeof(*id) && (val = calloc(1, m.value_size))) {
			if (!bpf_map_lookup_elem(fd, &zero, val)) {
				memcpy(id, (char *)val + VG_RODATA_GUARD_ID_OFF, sizeof(*id));
				*abi = 1;
				if (m.value_size >= VG_RODATA_ABI_OFF + sizeof(*abi))
					memcpy(abi, (char *)val + VG_RODATA_ABI_OFF, sizeof(*abi));
				err = 0;
			}
			free(val);
		}
		close(fd);
	}
	return err;
}

int vg_attached_prog(int target, enum bpf_attach_type type, __u64 id)
{
	__u32 ids[MAX_QUERY], n = MAX_QUERY, flags = 0;

	if (bpf_prog_query(target, type, 0, &flags, ids, &n))
		return errno == ENOENT ? -ENOENT : -errno;
	for (__u32 i = 0; i < n && i < MAX_QUERY; i++) {
		int fd = bpf_prog_get_fd_by_id(ids[i]);
		__u64 owner = 0;
		__u32 abi = 0;

		if (fd < 0)
			continue;
		if (!guard_of(fd, &owner, &abi) && owner == id && abi == VG_ABI_VERSION)
			return fd;
		close(fd);
	}
	return -ENOENT;
}

int vg_attach_prog(int target, enum bpf_attach_type type, int prog_fd, __u64 id, int *old_fd)
{
	LIBBPF_OPTS(bpf_prog_attach_opts, opts);
	int old = vg_attached_prog(target, type, id);

	*old_fd = -1;
	if (old < 0 && old != -ENOENT)
		return old;
	/* Several programs per cgroup (other tools', nested guards'); tcx always takes several. */
	opts.flags = type == (enum bpf_attach_type)VG_BPF_TCX_EGRESS ? 0 : BPF_F_ALLOW_MULTI;
	if (old >= 0) {
		opts.flags |= BPF_F_REPLACE;
		opts.replace_prog_fd = old;
	}
	if (bpf_prog_attach_opts(prog_fd, target, type, &opts)) {
		int err = -errno;

		if (old >= 0)
			close(old);
		return err;
	}
	*old_fd = old;
	return 0;
}

int vg_detach_prog(int target, enum bpf_attach_type type, int prog_fd)
{
	if (!bpf_prog_detach2(prog_fd, target, type) || errno == ENOENT)
		return 0;
	return -errno;
}

int vg_detach_guard(int target, enum bpf_attach_type type, __u64 id)
{
	int fd = vg_attached_prog(target, type, id), err;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return fd;
	err = vg_detach_prog(target, type, fd);
	close(fd);
	return err;
}
