/* SPDX-License-Identifier: GPL-2.0 */
/* Command-line parsing: pure, no syscalls, so it is unit-tested without root. */
#ifndef VG_ARGS_H
#define VG_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "vpnguard.h"

#define VG_MAX_CGROUP_ARGS 64
#define VG_MAX_REAL_IPS 8
#define VG_MAX_EXPECT 8

enum vg_cmd {
	VG_CMD_NONE,
	VG_CMD_ATTACH,
	VG_CMD_DETACH,
	VG_CMD_STATUS,
	VG_CMD_EVENTS,
	VG_CMD_SCAN,
	VG_CMD_HELP,
	VG_CMD_VERSION,
	VG_CMD_REPORT,
	VG_CMD_DOCTOR,
};

/* What the agent does to a guard's containers while the guard is closed (--on-closed). */
enum vg_on_closed { VG_ON_CLOSED_NONE, VG_ON_CLOSED_PAUSE, VG_ON_CLOSED_STOP };

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
	/* Health: what the agent probes and how long a lease lasts. Durations in ms, 0: not given. */
	const char *probe_url;
	const char *probe_ca;
	const char *gluetun_url;
	const char *webhook;
	const char *http;           /* --http: the agent's endpoint (user/agent/web.c) */
	const char *real_ips[VG_MAX_REAL_IPS];
	int n_real_ips;
	const char *expect_ips[VG_MAX_EXPECT];
	int n_expect_ips;
	unsigned probe_interval_ms;
	unsigned probe_timeout_ms;
	unsigned probe_failures;
	unsigned lease_ms;
	/* Docker */
	const char *containers[VG_MAX_CGROUP_ARGS];  /* guarded like --cgroup; together at most VG_MAX_CGROUP_ARGS */
	int n_containers;
	const char *tunnel_container;   /* the tunnel's netns is this container's */
	const char *docker_host;
	bool restart_dependents;        /* the tunnel container started in a new netns: restart the rest */
	enum vg_on_closed on_closed;
	bool on_closed_set;             /* given (even as none): a guard was described */
	/* Steering (tunnel mode); 0: chosen by the loader. */
	__u32 fwmark;
	__u32 route_table;
	/* report: the window in ms (0: VG_REPORT_DEFAULT_SINCE_MS), and post it to [agent]'s webhook */
	unsigned since_ms;
	bool post;
	/* status --check: the guard (its name or cgroup) whose verdict is the exit status */
	const char *check;
};

#define VG_DEFAULT_LOG "/var/log/vpnguard/events.jsonl"
#define VG_DEFAULT_CONFIG "/etc/vpnguard/vpnguard.conf"
#define VG_REPORT_DEFAULT_SINCE_MS (24u * 3600 * 1000)
#define VG_REPORT_MAX_SINCE_MS (31u * 24 * 3600 * 1000)

/* Fills *o from argv; on bad usage returns -EINVAL with a message in err. */
int vg_parse_args(int argc, char **argv, struct vg_options *o, char *err, size_t errlen);

/*
 * One option of command cmd by its long name ("--allow"), as the command line
 * and the config file give it; value is NULL for a switch. -EINVAL with err.
 */
int vg_option_set(struct vg_options *o, enum vg_cmd cmd, const char *flag, const char *value,
		  char *err, size_t errlen);

/* Is the option a switch of cmd ("--no-agent")? false for unknown ones and other commands'. */
bool vg_option_is_switch(enum vg_cmd cmd, const char *flag);

/* The subcommand's word on the command line. */
const char *vg_cmd_name(enum vg_cmd cmd);

/* The rules between an attach's options, once all are set. */
int vg_attach_options_check(const struct vg_options *o, char *err, size_t errlen);

/* Does the attach say anything about a guard (beyond --log, --config, --no-agent, --webhook)? */
bool vg_options_have_guard(const struct vg_options *o);

/* Does the attach ask for anything only a running agent does (probes, alerts, container actions)? */
bool vg_options_need_agent(const struct vg_options *o);

/* "30", "30s", "500ms", "2m", "1h" into ms (1 ms .. 1 day); -EINVAL otherwise. */
int vg_parse_duration(const char *s, unsigned *ms);

/* The same words and "7d", 1 ms .. max_ms (report --since: up to 31 days); -EINVAL otherwise. */
int vg_parse_duration_max(const char *s, unsigned long long max_ms, unsigned *ms);

extern const char vg_usage[];

#endif
