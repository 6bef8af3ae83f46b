// SPDX-License-Identifier: GPL-2.0
/* vpnguard-bpf: command line. The contract is design section 7. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "args.h"
#include "cgroup.h"
#include "docker.h"
#include "events.h"
#include "loader.h"
#include "netns.h"
#include "policy.h"
#include "scan.h"
#include "status.h"

#define VG_VERSION "0.1.0"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static int usage_error(const char *msg)
{
	fprintf(stderr, "vpnguard-bpf: %s\n%s", msg, vg_usage);
	return EXIT_USAGE;
}

static int need_root(const char *cmd)
{
	if (geteuid() == 0)
		return 0;
	fprintf(stderr, "vpnguard-bpf: %s needs root (CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN)\n", cmd);
	return EXIT_RUNTIME;
}

static int need_btf(void)
{
	if (!access("/sys/kernel/btf/vmlinux", R_OK))
		return 0;
	fprintf(stderr, "vpnguard-bpf: kernel BTF /sys/kernel/btf/vmlinux: %s "
		"(CO-RE programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y)\n", strerror(errno));
	return EXIT_RUNTIME;
}

/* cgs[n] was just resolved from FLAG ARG: refuse a cgroup given twice, whichever way. */
static int check_unique(const struct vg_cgroup *cgs, int n, const char *flag, const char *arg)
{
	for (int j = 0; j < n; j++)
		if (cgs[j].id == cgs[n].id) {
			fprintf(stderr, "vpnguard-bpf: %s %s: given twice (cgroup %s)\n", flag, arg, cgs[n].rel);
			return EXIT_USAGE;
		}
	return 0;
}

static int resolve_cgroups(const struct vg_options *o, struct vg_cgroup *cgs)
{
	char err[PATH_MAX + 256];
	int rc;

	for (int i = 0; i < o->n_cgroups; i++) {
		if (vg_cgroup_resolve(o->cgroups[i], &cgs[i], err, sizeof(err))) {
			fprintf(stderr, "vpnguard-bpf: %s\n", err);
			return EXIT_USAGE;
		}
		if ((rc = check_unique(cgs, i, "--cgroup", o->cgroups[i])))
			return rc;
	}
	return 0;
}

/* A Docker answer's error as an exit code: a name the engine does not know is bad input. */
static int docker_failed(int err, const char *msg)
{
	fprintf(stderr, "vpnguard-bpf: %s\n", msg);
	return err == -ENOENT || err == -EINVAL || err == -EPROTONOSUPPORT ? EXIT_USAGE : EXIT_RUNTIME;
}

/*
 * --container NAME: one more cgroup each, after the --cgroup ones, in
 * cgs[o->n_cgroups...]; --tunnel-container: the tunnel's namespace, in tun.
 */
static int resolve_containers(const struct vg_options *o, struct vg_cgroup *cgs,
			      struct vg_docker_target *tun)
{
	static struct vg_docker_target t;
	char sock[PATH_MAX], err[PATH_MAX + 512];
	int r, rc;

	if (!o->n_containers && !o->tunnel_container)
		return 0;
	if ((r = vg_docker_socket(o->docker_host, sock, sizeof(sock), err, sizeof(err))))
		return docker_failed(r, err);
	for (int i = 0; i < o->n_containers; i++) {
		int n = o->n_cgroups + i;

		if ((r = vg_docker_resolve(sock, o->containers[i], &t, err, sizeof(err))))
			return docker_failed(r, err);
		cgs[n] = t.cg;
		if ((rc = check_unique(cgs, n, "--container", o->containers[i])))
			return rc;
	}
	if (o->tunnel_container &&
	    (r = vg_docker_resolve(sock, o->tunnel_container, tun, err, sizeof(err))))
		return docker_failed(r, err);
	return 0;
}

/* Everything that can be checked without changing anything, then the change. */
static int cmd_attach(const struct vg_options *o)
{
	static struct vg_cgroup cgs[VG_MAX_CGROUP_ARGS];
	static struct vg_docker_target tun;
	int n_cgs = o->n_cgroups + o->n_containers;
	struct vg_attach_req req = { .cgroups = cgs, .n_cgroups = n_cgs, .netns_fd = -1 };
	char err[512];
	int rc;

	if (o->config)
		return usage_error("--config: configuration files are not supported yet");
	if (vg_policy_build(o, &req.policy, err, sizeof(err)))
		return usage_error(err);
	if ((rc = need_root("attach")) || (rc = need_btf()) || (rc = resolve_cgroups(o, cgs)) ||
	    (rc = resolve_containers(o, cgs, &tun)))
		return rc;
	/* The tunnel container's namespace, by the path of its init process. */
	const char *netns = o->tunnel_container ? tun.netns : o->netns;
	for (int i = 0; i < n_cgs; i++)
		if (!vg_guard_paths_fit(cgs[i].rel, netns)) {
			fprintf(stderr, "vpnguard-bpf: --%s %s / --netns %s: path too long to record "
				"(cgroup below the mount: %zu at most; netns: use /run/netns/NAME)\n",
				i < o->n_cgroups ? "cgroup" : "container",
				i < o->n_cgroups ? o->cgroups[i] : o->containers[i - o->n_cgroups],
				netns ? netns : "-", sizeof(((struct vg_guard_info *)0)->cgroup) - 1);
			return EXIT_USAGE;
		}
	if (o->tunnel) {
		struct vg_tunnel facts;

		req.netns_path = netns;
		req.netns_fd = vg_netns_open(netns);
		if (req.netns_fd < 0) {
			fprintf(stderr, "vpnguard-bpf: --netns %s: %s\n", netns,
				req.netns_fd == -EINVAL ? "not a network namespace file" : strerror(-req.netns_fd));
			return EXIT_USAGE;
		}
		rc = vg_netns_cookie(req.netns_fd, &req.policy.netns_cookie);
		if (!rc)
			rc = vg_tunnel_facts(req.netns_fd, o->tunnel, &facts);
		if (rc) {
			fprintf(stderr, "vpnguard-bpf: --tunnel %s: %s in %s\n", o->tunnel,
				rc == -ENODEV ? "no such interface" : strerror(-rc),
				netns ? netns : "this network namespace");
			close(req.netns_fd);
			return rc == -ENODEV ? EXIT_USAGE : EXIT_RUNTIME;
		}
	}
	rc = vg_attach(&req);
	if (req.netns_fd >= 0)
		close(req.netns_fd);
	if (rc)
		return EXIT_RUNTIME;
	for (int i = 0; i < n_cgs; i++)
		fprintf(stderr, "vpnguard-bpf: guarding %s (%s %s)\n", cgs[i].path,
			o->tunnel ? "tunnel" : "gateway", o->tunnel ? o->tunnel : "mode");
	if (o->no_agent)
		return EXIT_OK;
	rc = vg_agent_run(o->log ? o->log : VG_DEFAULT_LOG);
	if (rc == -EALREADY) {
		fprintf(stderr, "vpnguard-bpf: an agent is already running (%s); it follows this guard too\n",
			VG_AGENT_PIDFILE);
		return EXIT_OK;
	}
	return rc ? EXIT_RUNTIME : EXIT_OK;
}

static int cmd_detach(const struct vg_options *o)
{
	static struct vg_cgroup cgs[VG_MAX_CGROUP_ARGS];
	__u64 ids[VG_MAX_CGROUP_ARGS];
	int rc;

	if ((rc = need_root("detach")) || (rc = resolve_cgroups(o, cgs)))
		return rc;
	for (int i = 0; i < o->n_cgroups; i++)
		ids[i] = cgs[i].id;
	return vg_detach(ids, o->n_cgroups) ? EXIT_RUNTIME : EXIT_OK;
}

int main(int argc, char **argv)
{
	struct vg_options o;
	char err[512];
	int rc;

	if (vg_parse_args(argc, argv, &o, err, sizeof(err)))
		return usage_error(err);
	switch (o.cmd) {
	case VG_CMD_HELP:
		fputs(vg_usage, stdout);
		return EXIT_OK;
	case VG_CMD_VERSION:
		puts("vpnguard-bpf " VG_VERSION);
		return EXIT_OK;
	case VG_CMD_ATTACH:
		return cmd_attach(&o);
	case VG_CMD_DETACH:
		return cmd_detach(&o);
	case VG_CMD_STATUS:
		if ((rc = need_root("status")))
			return rc;
		return vg_cmd_status(o.json);
	case VG_CMD_EVENTS:
		if ((rc = need_root("events")))
			return rc;
		return vg_cmd_events(o.follow, o.json);
	case VG_CMD_SCAN:
		if ((rc = need_root("scan")))
			return rc;
		return vg_cmd_scan(o.json);
	default:
		return usage_error("no command given");
	}
}
