// SPDX-License-Identifier: GPL-2.0
/*
 * vgproginfo CGROUP: one line per program attached to CGROUP (every cgroup hook),
 * "NAME RUN_CNT RUN_TIME_NS VERIFIED_INSNS XLATED_INSNS JITED_BYTES", from the kernel's
 * bpf_prog_info: what make bench's programs table reads (tests/bench/prog_costs.sh).
 * bpftool of Debian 12 does not show the verifier's count; the kernel has kept it since 5.16.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>

#define MAX_PROGS 64

static const enum bpf_attach_type hooks[] = {
	BPF_CGROUP_INET_INGRESS,     BPF_CGROUP_INET_EGRESS,     BPF_CGROUP_INET_SOCK_CREATE,
	BPF_CGROUP_SOCK_OPS,         BPF_CGROUP_INET4_BIND,      BPF_CGROUP_INET6_BIND,
	BPF_CGROUP_INET4_CONNECT,    BPF_CGROUP_INET6_CONNECT,   BPF_CGROUP_INET4_POST_BIND,
	BPF_CGROUP_INET6_POST_BIND,  BPF_CGROUP_UDP4_SENDMSG,    BPF_CGROUP_UDP6_SENDMSG,
	BPF_CGROUP_SYSCTL,           BPF_CGROUP_UDP4_RECVMSG,    BPF_CGROUP_UDP6_RECVMSG,
	BPF_CGROUP_GETSOCKOPT,       BPF_CGROUP_SETSOCKOPT,      BPF_CGROUP_INET_SOCK_RELEASE,
};

static int show(__u32 id)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id), err = 0;

	if (fd < 0)
		return -errno;
	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		err = -errno;
	else
		printf("%s %llu %llu %u %u %u\n", info.name, (unsigned long long)info.run_cnt,
		       (unsigned long long)info.run_time_ns, info.verified_insns,
		       info.xlated_prog_len / 8, info.jited_prog_len);
	close(fd);
	return err;
}

int main(int argc, char **argv)
{
	int cg, err = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: vgproginfo CGROUP\n");
		return 2;
	}
	cg = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0) {
		fprintf(stderr, "vgproginfo: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (size_t h = 0; h < sizeof(hooks) / sizeof(hooks[0]) && !err; h++) {
		__u32 ids[MAX_PROGS], n = MAX_PROGS;

		if (bpf_prog_query(cg, hooks[h], 0, NULL, ids, &n))
			continue; /* a hook this kernel does not have */
		for (__u32 i = 0; i < n && !err; i++)
			err = show(ids[i]);
	}
	close(cg);
	if (err)
		fprintf(stderr, "vgproginfo: %s: %s\n", argv[1], strerror(-err));
	return err ? 1 : 0;
}
