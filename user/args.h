/* SPDX-License-Identifier: GPL-2.0 */
/* Command-line parsing: pure, no syscalls, so it is unit-tested without root. */
#ifndef VG_ARGS_H
#define VG_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "vpnguard.h"

#define VG_MAX_CGROUP_ARGS 64

enum vg_cmd {
	VG_CMD_NONE,
	VG_CMD_ATTACH,
	VG_CMD_DETACH,
	VG_CMD_STATUS,
	VG_CMD_EVENTS,
	VG_CMD_HELP,
	VG_CMD_VERSION,
	VG_CMD_SCAN,
};

struct vg_options {
	enum vg_cmd cmd;
	const char *cgroups[VG_MAX_CGROUP_ARGS];
	int n_cgroups;
	const char *tunnel;
	const char *netns;
	const char *gateways[VG_MAX_GW];
	int n_gateways;
	const char *allows[VG_MAX_ALLOW];
	int n_allows;
	const char *dns[VG_MAX_DNS];
	int n_dns;
	const char *log;
	const char *config;
	bool no_agent;
	bool json;
	bool follow;
	const char *containers[VG_MAX_CGROUP_ARGS];  /* guarded like --cgroup; together at most VG_MAX_CGROUP_ARGS */
	int n_containers;
	const char *tunnel_container;   /* the tunnel's netns is this container's */
	const char *docker_host;
};

#define VG_DEFAULT_LOG "/var/log/vpnguard/events.jsonl"

/* Fills *o from argv; on bad usage returns -EINVAL with a message in err. */
int vg_parse_args(int argc, char **argv, struct vg_options *o, char *err, size_t errlen);

extern const char vg_usage[];

#endif
