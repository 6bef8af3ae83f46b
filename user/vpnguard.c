// SPDX-License-Identifier: GPL-2.0
/* vpnguard-bpf: command line. The contract is design section 7. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "guards.h"
#include "args.h"
#include "cgroup.h"
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

static int resolve_cgroups(const struct vg_options *o, struct vg_cgroup *cgs)
{
	char err[PATH_MAX + 256];

	for (int i = 0; i < o->n_cgroups; i++) {
		if (vg_cgroup_resolve(o->cgroups[i], &cgs[i], err, sizeof(err))) {
			fprintf(stderr, "vpnguard-bpf: %s\n", err);
			return EXIT_USAGE;
		}
		for (int j = 0; j < i; j++)
			if (cgs[j].id == cgs[i].id) {
				fprintf(stderr, "vpnguard-bpf: --cgroup %s: given twice\n", o->cgroups[i]);
				return EXIT_USAGE;
			}
	}
	return 0;
}

/* Probes, alerts and config files belong to one agent: a second one could not honour them. */
static int refuse_beside_agent(const struct vg_options *o)
{
	pid_t pid = o->no_agent ? 0 : vg_agent_pid();

	if (!pid || (!vg_options_need_agent(o) && (o->n_cgroups || o->n_containers) && !o->config))
		return 0;
	fprintf(stderr, "vpnguard-bpf: attach: an agent is already running (pid %d); %s\n", (int)pid,
		vg_options_need_agent(o) ?
		"probes and alerts are the running agent's: put this guard in its config file and send it SIGHUP" :
		"it has its config file: edit that and send it SIGHUP");
	return EXIT_USAGE;
}

/* Everything that can be checked without changing anything, then the change. */
static int cmd_attach(const struct vg_options *o)
{
	struct vg_guard_set *set;
	int rc;

	if ((rc = need_root("attach")) || (rc = need_btf()) || (rc = refuse_beside_agent(o)))
		return rc;
	set = malloc(sizeof(*set));
	if (!set) {
		fprintf(stderr, "vpnguard-bpf: attach: %s\n", strerror(ENOMEM));
		return EXIT_RUNTIME;
	}
	/*
	 * Beside a running agent, a guard is followed by it, not leased (no one
	 * would renew), and a guard the agent already holds keeps the state it gave.
	 */
	bool beside_agent = vg_agent_pid() != 0;

	rc = vg_guard_set_prepare(o, !o->no_agent && !beside_agent, set);
	if (!rc)
		rc = vg_guard_set_apply(set, beside_agent);
	if (rc || o->no_agent) {
		vg_guard_set_free(set);
		free(set);
		return rc == -EINVAL ? EXIT_USAGE : rc ? EXIT_RUNTIME : EXIT_OK;
	}
	for (int g = 0; g < set->n; g++)
		for (int i = 0; i < set->specs[g].n_cgroups; i++)
			fprintf(stderr, "vpnguard-bpf: guarding %s (%s %s)\n", set->specs[g].cgroups[i].path,
				set->specs[g].o->tunnel ? "tunnel" : "gateway",
				set->specs[g].o->tunnel ?: "mode");
	rc = vg_agent_run(set, o);
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
