// SPDX-License-Identifier: GPL-2.0
/* vpnguard-bpf: command line. The contract is docs/design.md, "The command line". */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#include "pins.h"
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

/*
 * Probes, alerts, config files and containers to follow belong to one agent:
 * beside a running one (pid), an attach that needs them is refused.
 */
static int refuse_beside_agent(const struct vg_options *o, pid_t pid)
{
	const char *why = vg_options_need_agent(o) ?
		"probes and alerts are the running agent's: put this guard in its config file and send it SIGHUP" :
		o->lease_ms ?
		"it renews the leases of its own guards only: put this guard in its config file and send it SIGHUP" :
		o->n_containers || o->tunnel_container ?
		"only the running agent could follow these containers' restarts, and it does not know them: "
		"put this guard in its config file and send it SIGHUP" :
		o->config || !(o->n_cgroups || o->n_containers) ?
		"it has its config file: edit that and send it SIGHUP" : NULL;

	if (!pid || !why)
		return 0;
	fprintf(stderr, "vpnguard-bpf: attach: an agent is already running (pid %d); %s\n", (int)pid, why);
	return EXIT_USAGE;
}

/*
 * Everything that can be checked without changing anything, then the change,
 * all under the lock that serialises attach, detach and the agent's reloads;
 * an agent takes its pidfile and log before anything is attached, so an agent
 * that cannot start attaches nothing.
 */
static int cmd_attach(const struct vg_options *o)
{
	struct vg_agent_claim claim = { .pidfile_fd = -1 };
	struct vg_guard_set *set;
	int rc, lock, code = EXIT_OK;
	bool agent, beside;
	pid_t pid;

	if ((rc = need_root("attach")) || (rc = need_btf()))
		return rc;
	set = malloc(sizeof(*set));
	if (!set) {
		fprintf(stderr, "vpnguard-bpf: attach: %s\n", strerror(ENOMEM));
		return EXIT_RUNTIME;
	}
	lock = vg_lock_take();
	if (lock < 0) {
		free(set);
		return EXIT_RUNTIME;
	}
	/*
	 * Beside a running agent, a guard is followed by it, not leased (no one
	 * would renew), and a guard the agent already holds keeps the state it gave.
	 */
	pid = vg_agent_pid();
	beside = pid != 0;
	agent = !o->no_agent && !beside;
	if ((code = refuse_beside_agent(o, o->no_agent ? 0 : pid))) {
		vg_lock_drop(lock);
		free(set);
		return code;
	}
	rc = vg_guard_set_prepare(o, agent, set);
	if (rc)
		code = rc == -EINVAL ? EXIT_USAGE : EXIT_RUNTIME;
	if (!code && agent && vg_agent_claim(set, &claim))
		code = EXIT_RUNTIME;
	if (!code && vg_guard_set_apply(set, beside))
		code = EXIT_RUNTIME;
	vg_lock_drop(lock);
	if (code && claim.pidfile_fd >= 0)
		vg_agent_unclaim(&claim);
	if (code || !agent) {
		if (!code && beside && !o->no_agent) {
			kill(pid, SIGHUP);
			fprintf(stderr, "vpnguard-bpf: an agent is already running (pid %d): it follows this "
				"guard's tunnel from now on\n", (int)pid);
		}
		vg_guard_set_free(set);
		free(set);
		return code;
	}
	for (int g = 0; g < set->n; g++)
		for (int i = 0; i < set->specs[g].n_cgroups; i++)
			fprintf(stderr, "vpnguard-bpf: guarding %s (%s %s)\n", set->specs[g].cgroups[i].path,
				set->specs[g].o->tunnel ? "tunnel" : "gateway",
				set->specs[g].o->tunnel ?: "mode");
	return vg_agent_run(set, o, &claim) ? EXIT_RUNTIME : EXIT_OK;
}

/*
 * A guard's cgroup removed: its path no longer resolves, but the guard's
 * record still names it. Detach finds it there and cleans it up.
 */
static int resolve_detach(const struct vg_options *o, __u64 *ids)
{
	static struct vg_cgroup cg;
	char err[PATH_MAX + 256];

	for (int i = 0; i < o->n_cgroups; i++) {
		if (!vg_cgroup_resolve(o->cgroups[i], &cg, err, sizeof(err))) {
			int fd = open(cg.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			ids[i] = cg.id;
			/* Pins gone, programs not: make the pins again so detach finds everything. */
			if (fd >= 0 && !vg_pins_present(cg.id))
				vg_pins_restore(fd, cg.id);
			if (fd >= 0)
				close(fd);
		} else if (vg_guard_find(o->cgroups[i], &ids[i])) {
			fprintf(stderr, "vpnguard-bpf: %s (and no guard records that cgroup)\n", err);
			return EXIT_USAGE;
		}
		for (int j = 0; j < i; j++)
			if (ids[j] == ids[i]) {
				fprintf(stderr, "vpnguard-bpf: --cgroup %s: given twice\n", o->cgroups[i]);
				return EXIT_USAGE;
			}
	}
	return 0;
}

static int cmd_detach(const struct vg_options *o)
{
	__u64 ids[VG_MAX_CGROUP_ARGS];
	int rc, lock;

	if ((rc = need_root("detach")))
		return rc;
	lock = vg_lock_take();
	if (lock < 0)
		return EXIT_RUNTIME;
	rc = resolve_detach(o, ids);
	if (!rc && !o->n_cgroups)
		vg_pins_restore_all();
	if (!rc)
		rc = vg_detach(ids, o->n_cgroups) ? EXIT_RUNTIME : EXIT_OK;
	vg_lock_drop(lock);
	return rc;
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
