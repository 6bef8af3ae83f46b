// SPDX-License-Identifier: GPL-2.0
/* attach: check everything, then guard all or nothing; without --no-agent, become the agent. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "agent.h"
#include "commands.h"
#include "events.h"
#include "guards.h"
#include "error.h"

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
		"probes, alerts and actions on containers are the running agent's: put this guard in its "
		"config file and send it SIGHUP" :
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
int vg_cmd_attach(const struct vg_options *o)
{
	struct vg_agent_claim claim = { .pidfile_fd = -1 };
	struct vg_guard_set *set;
	int rc, lock, code = EXIT_OK;
	bool agent, beside;
	pid_t pid;

	if ((rc = need_btf()))
		return rc;
	set = malloc(sizeof(*set));
	if (!set) {
		vg_error(-ENOMEM, "attach");
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
