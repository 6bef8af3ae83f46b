// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "args.h"

const char vg_usage[] =
	"usage:\n"
	"  vpnguard-bpf attach  --cgroup PATH [--cgroup PATH]...\n"
	"                       (--tunnel IFNAME [--netns PATH] | --gateway ADDR[:PORT] [--gateway ...])\n"
	"                       [--allow CIDR]... [--dns ADDR]...\n"
	"                       [--log FILE] [--no-agent] [--config FILE]\n"
	"                       [--container NAME]... [--tunnel-container NAME] [--docker-host unix:///PATH]\n"
	"  vpnguard-bpf detach  [--cgroup PATH]...\n"
	"  vpnguard-bpf status  [--json]\n"
	"  vpnguard-bpf events  [--follow] [--json]\n"
	"  vpnguard-bpf scan    [--json]\n"
	"  vpnguard-bpf --help | --version\n";

struct flag {
	const char *name;
	unsigned cmds;      /* bit per enum vg_cmd that takes the flag */
	bool takes_value;
};

#define ON(c) (1u << (c))

static const struct flag flags[] = {
	{ "--cgroup", ON(VG_CMD_ATTACH) | ON(VG_CMD_DETACH), true },
	{ "--tunnel", ON(VG_CMD_ATTACH), true },
	{ "--netns", ON(VG_CMD_ATTACH), true },
	{ "--gateway", ON(VG_CMD_ATTACH), true },
	{ "--allow", ON(VG_CMD_ATTACH), true },
	{ "--dns", ON(VG_CMD_ATTACH), true },
	{ "--log", ON(VG_CMD_ATTACH), true },
	{ "--config", ON(VG_CMD_ATTACH), true },
	{ "--no-agent", ON(VG_CMD_ATTACH), false },
	{ "--json", ON(VG_CMD_STATUS) | ON(VG_CMD_EVENTS) | ON(VG_CMD_SCAN), false },
	{ "--follow", ON(VG_CMD_EVENTS), false },
	{ "--container", ON(VG_CMD_ATTACH), true },
	{ "--tunnel-container", ON(VG_CMD_ATTACH), true },
	{ "--docker-host", ON(VG_CMD_ATTACH), true },
};

static const char *const cmd_names[] = {
	[VG_CMD_ATTACH] = "attach",
	[VG_CMD_DETACH] = "detach",
	[VG_CMD_STATUS] = "status",
	[VG_CMD_EVENTS] = "events",
	[VG_CMD_SCAN] = "scan",
};

static int fail(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
	snprintf(err, errlen, fmt, a, b);
	return -EINVAL;
}

static int push(const char **list, int *n, int max, const char *v, const char *flag,
		char *err, size_t errlen)
{
	char maxs[16];

	if (*n >= max) {
		snprintf(maxs, sizeof(maxs), "%d", max);
		return fail(err, errlen, "%s: at most %s allowed", flag, maxs);
	}
	list[(*n)++] = v;
	return 0;
}

static int take(struct vg_options *o, const char *flag, const char *v, char *err, size_t errlen)
{
	if (!strcmp(flag, "--cgroup"))
		return push(o->cgroups, &o->n_cgroups, VG_MAX_CGROUP_ARGS, v, flag, err, errlen);
	if (!strcmp(flag, "--gateway"))
		return push(o->gateways, &o->n_gateways, VG_MAX_GW, v, flag, err, errlen);
	if (!strcmp(flag, "--allow"))
		return push(o->allows, &o->n_allows, VG_MAX_ALLOW, v, flag, err, errlen);
	if (!strcmp(flag, "--dns"))
		return push(o->dns, &o->n_dns, VG_MAX_DNS, v, flag, err, errlen);
	if (!strcmp(flag, "--container"))
		return push(o->containers, &o->n_containers, VG_MAX_CGROUP_ARGS, v, flag, err, errlen);

	const char **single = !strcmp(flag, "--tunnel") ? &o->tunnel :
			      !strcmp(flag, "--netns")  ? &o->netns :
			      !strcmp(flag, "--log")    ? &o->log :
			      !strcmp(flag, "--tunnel-container") ? &o->tunnel_container :
			      !strcmp(flag, "--docker-host") ? &o->docker_host : &o->config;
	if (*single)
		return fail(err, errlen, "%s given twice%s", flag, "");
	*single = v;
	return 0;
}

static void set_switch(struct vg_options *o, const char *flag)
{
	if (!strcmp(flag, "--no-agent"))
		o->no_agent = true;
	else if (!strcmp(flag, "--json"))
		o->json = true;
	else
		o->follow = true;
}

static int check_attach(const struct vg_options *o, char *err, size_t errlen)
{
	if (!o->n_cgroups && !o->n_containers)
		return fail(err, errlen, "attach: --cgroup (or --container) is required%s%s", "", "");
	/* A container is one more cgroup to guard. */
	if (o->n_cgroups + o->n_containers > VG_MAX_CGROUP_ARGS) {
		char maxs[16];

		snprintf(maxs, sizeof(maxs), "%d", VG_MAX_CGROUP_ARGS);
		return fail(err, errlen, "attach: --cgroup and --container: at most %s together%s", maxs, "");
	}
	if (!o->tunnel == !o->n_gateways)
		return fail(err, errlen, "attach: give either --tunnel or --gateway%s%s", "", "");
	if (o->netns && !o->tunnel)
		return fail(err, errlen, "attach: --netns goes with --tunnel%s%s", "", "");
	if (o->tunnel_container && !o->tunnel)
		return fail(err, errlen, "attach: --tunnel-container goes with --tunnel%s%s", "", "");
	if (o->tunnel_container && o->netns)
		return fail(err, errlen, "attach: --tunnel-container and --netns both name the tunnel's "
			    "namespace: give one%s%s", "", "");
	/* The kernel's own rule for interface names (dev_valid_name). */
	if (o->tunnel && (!*o->tunnel || strlen(o->tunnel) >= VG_IFNAMSIZ ||
			  strpbrk(o->tunnel, "/: \t\n\v\f\r") || !strcmp(o->tunnel, ".") ||
			  !strcmp(o->tunnel, "..")))
		return fail(err, errlen, "--tunnel %s: not an interface name%s", o->tunnel, "");
	return 0;
}

int vg_parse_args(int argc, char **argv, struct vg_options *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return fail(err, errlen, "no command given%s%s", "", "");
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		o->cmd = VG_CMD_HELP;
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		o->cmd = VG_CMD_VERSION;
		return 0;
	}
	for (size_t c = 0; c < sizeof(cmd_names) / sizeof(cmd_names[0]); c++)
		if (cmd_names[c] && !strcmp(argv[1], cmd_names[c]))
			o->cmd = (enum vg_cmd)c;
	if (o->cmd == VG_CMD_NONE)
		return fail(err, errlen, "unknown command '%s'%s", argv[1], "");

	for (int i = 2; i < argc; i++) {
		const struct flag *f = NULL;

		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			o->cmd = VG_CMD_HELP;
			return 0;
		}
		for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
			if (!strcmp(argv[i], flags[k].name))
				f = &flags[k];
		if (!f || !(f->cmds & ON(o->cmd)))
			return fail(err, errlen, "%s: unknown option '%s'", cmd_names[o->cmd], argv[i]);
		if (!f->takes_value) {
			set_switch(o, f->name);
			continue;
		}
		if (i + 1 >= argc || !argv[i + 1][0])
			return fail(err, errlen, "%s needs a value%s", f->name, "");
		int r = take(o, f->name, argv[++i], err, errlen);
		if (r)
			return r;
	}
	return o->cmd == VG_CMD_ATTACH ? check_attach(o, err, errlen) : 0;
}
