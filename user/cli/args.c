// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include "args.h"
#include "listen.h"
#include "policy.h"

const char vg_usage[] =
	"usage:\n"
	"  vpnguard-bpf attach  --cgroup PATH [--cgroup PATH]...\n"
	"                       (--tunnel IFNAME [--netns PATH] | --gateway ADDR[:PORT] [--gateway ...])\n"
	"                       [--allow CIDR]... [--dns ADDR]...\n"
	"                       [--log FILE] [--no-agent] [--config FILE]\n"
	"                       [--probe-url URL [--probe-ca FILE]] [--gluetun-url URL]\n"
	"                       [--probe-interval DUR] [--probe-timeout DUR] [--probe-failures N]\n"
	"                       [--real-ip ADDR]... [--expect-ip CIDR]... [--lease DUR] [--webhook URL]\n"
	"                       [--http ADDR:PORT | --http unix:/PATH]\n"
	"                       [--container NAME]... [--tunnel-container NAME] [--docker-host unix:///PATH]\n"
	"                       [--fwmark MARK] [--route-table TABLE]\n"
	"                       [--restart-dependents] [--on-closed pause|stop|none]\n"
	"  vpnguard-bpf detach  [--cgroup PATH]...\n"
	"  vpnguard-bpf status  [--json] [--check GUARD]\n"
	"  vpnguard-bpf events  [--follow] [--json]\n"
	"  vpnguard-bpf scan    [--json]\n"
	"  vpnguard-bpf report  [--since DURATION] [--json] [--log FILE] [--config FILE] [--post]\n"
	"  vpnguard-bpf doctor  [--json]\n"
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
	{ "--log", ON(VG_CMD_ATTACH) | ON(VG_CMD_REPORT), true },
	{ "--config", ON(VG_CMD_ATTACH) | ON(VG_CMD_REPORT), true },
	{ "--no-agent", ON(VG_CMD_ATTACH), false },
	{ "--json", ON(VG_CMD_STATUS) | ON(VG_CMD_EVENTS) | ON(VG_CMD_SCAN) | ON(VG_CMD_REPORT) |
		    ON(VG_CMD_DOCTOR), false },
	{ "--follow", ON(VG_CMD_EVENTS), false },
	{ "--probe-url", ON(VG_CMD_ATTACH), true },
	{ "--probe-ca", ON(VG_CMD_ATTACH), true },
	{ "--gluetun-url", ON(VG_CMD_ATTACH), true },
	{ "--webhook", ON(VG_CMD_ATTACH), true },
	{ "--http", ON(VG_CMD_ATTACH), true },
	{ "--real-ip", ON(VG_CMD_ATTACH), true },
	{ "--expect-ip", ON(VG_CMD_ATTACH), true },
	{ "--probe-interval", ON(VG_CMD_ATTACH), true },
	{ "--probe-timeout", ON(VG_CMD_ATTACH), true },
	{ "--probe-failures", ON(VG_CMD_ATTACH), true },
	{ "--lease", ON(VG_CMD_ATTACH), true },
	{ "--container", ON(VG_CMD_ATTACH), true },
	{ "--tunnel-container", ON(VG_CMD_ATTACH), true },
	{ "--docker-host", ON(VG_CMD_ATTACH), true },
	{ "--fwmark", ON(VG_CMD_ATTACH), true },
	{ "--route-table", ON(VG_CMD_ATTACH), true },
	{ "--since", ON(VG_CMD_REPORT), true },
	{ "--post", ON(VG_CMD_REPORT), false },
	{ "--restart-dependents", ON(VG_CMD_ATTACH), false },
	{ "--on-closed", ON(VG_CMD_ATTACH), true },
	{ "--check", ON(VG_CMD_STATUS), true },
};

static const char *const cmd_names[] = {
	[VG_CMD_ATTACH] = "attach",
	[VG_CMD_DETACH] = "detach",
	[VG_CMD_STATUS] = "status",
	[VG_CMD_EVENTS] = "events",
	[VG_CMD_SCAN] = "scan",
	[VG_CMD_REPORT] = "report",
	[VG_CMD_DOCTOR] = "doctor",
};

const char *vg_cmd_name(enum vg_cmd cmd)
{
	return cmd < sizeof(cmd_names) / sizeof(cmd_names[0]) && cmd_names[cmd] ? cmd_names[cmd] : "vpnguard-bpf";
}

static int __attribute__((format(printf, 3, 4))) fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
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

/* The decimal digits at *p, at least one, up to max: stopped as it passes max, so it cannot wrap. */
static int digits(const char **p, unsigned long long max, unsigned long long *n)
{
	if (**p < '0' || **p > '9')
		return -EINVAL;
	for (*n = 0; **p >= '0' && **p <= '9'; (*p)++)
		if ((*n = *n * 10 + (unsigned)(**p - '0')) > max)
			return -EINVAL;
	return 0;
}

/* days: "d" is a unit too (report --since only: the other options keep their words). */
static int parse_duration(const char *s, unsigned long long max_ms, bool days, unsigned *ms)
{
	static const struct { const char *suffix; unsigned long long ms; } units[] = {
		{ "ms", 1 }, { "s", 1000 }, { "", 1000 }, { "m", 60000 }, { "h", 3600000 }, { "d", 86400000 },
	};
	unsigned long long n;
	const char *p = s;

	if (digits(&p, max_ms, &n))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) - !days; i++) {
		if (strcmp(p, units[i].suffix))
			continue;
		n *= units[i].ms;
		if (n < 1 || n > max_ms)
			return -EINVAL;
		*ms = (unsigned)n;
		return 0;
	}
	return -EINVAL;
}

int vg_parse_duration(const char *s, unsigned *ms)
{
	return parse_duration(s, 86400000ULL, false, ms);
}

int vg_parse_duration_max(const char *s, unsigned long long max_ms, unsigned *ms)
{
	return parse_duration(s, max_ms > 0xffffffffULL ? 0xffffffffULL : max_ms, true, ms);
}

static int parse_count(const char *s, unsigned *n)
{
	unsigned long long v;

	if (digits(&s, 100, &v) || *s || !v)
		return -EINVAL;
	*n = (unsigned)v;
	return 0;
}

static int take_number(unsigned *dst, const char *flag, const char *v, char *err, size_t errlen)
{
	bool is_duration = strcmp(flag, "--probe-failures");

	if (*dst)
		return fail(err, errlen, "%s given twice", flag);
	if (is_duration ? vg_parse_duration(v, dst) : parse_count(v, dst))
		return fail(err, errlen, is_duration ?
			    "%s %s: not a duration (e.g. 30s, 500ms, 2m; at most 1 day)" :
			    "%s %s: not a count from 1 to 100", flag, v);
	return 0;
}

/* A mark or table: decimal or 0x hex, 1 .. 2^32-1; the kernel's own tables are not ours to take. */
static int take_id(__u32 *dst, const char *flag, const char *v, char *err, size_t errlen)
{
	unsigned long long n = 0;
	int base = 10;
	const char *p = v;

	if (*dst)
		return fail(err, errlen, "%s given twice", flag);
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && p[2]) {
		base = 16;
		p += 2;
	}
	for (; *p; p++) {
		int d = *p >= '0' && *p <= '9' ? *p - '0' :
			base == 16 && *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 :
			base == 16 && *p >= 'A' && *p <= 'F' ? *p - 'A' + 10 : -1;

		if (d < 0 || (n = n * base + (unsigned)d) > 0xffffffffULL)
			return fail(err, errlen, "%s %s: not a number from 1 to 4294967295 (or 0x hex)", flag, v);
	}
	if (!n || !*v)
		return fail(err, errlen, "%s %s: not a number from 1 to 4294967295 (or 0x hex)", flag, v);
	if (!strcmp(flag, "--route-table") && n >= 253 && n <= 255)
		return fail(err, errlen, "%s %s: the kernel's default, main and local tables are not "
			    "vpnguard's to fill", flag, v);
	*dst = (__u32)n;
	return 0;
}

static int take(struct vg_options *o, const char *flag, const char *v, char *err, size_t errlen)
{
	static const struct { const char *flag; size_t list, n; int max; } lists[] = {
		{ "--cgroup", offsetof(struct vg_options, cgroups), offsetof(struct vg_options, n_cgroups), VG_MAX_CGROUP_ARGS },
		{ "--gateway", offsetof(struct vg_options, gateways), offsetof(struct vg_options, n_gateways), VG_MAX_GW },
		{ "--allow", offsetof(struct vg_options, allows), offsetof(struct vg_options, n_allows), VG_MAX_ALLOW },
		{ "--dns", offsetof(struct vg_options, dns), offsetof(struct vg_options, n_dns), VG_MAX_DNS },
		{ "--real-ip", offsetof(struct vg_options, real_ips), offsetof(struct vg_options, n_real_ips), VG_MAX_REAL_IPS },
		{ "--expect-ip", offsetof(struct vg_options, expect_ips), offsetof(struct vg_options, n_expect_ips), VG_MAX_EXPECT },
		{ "--container", offsetof(struct vg_options, containers), offsetof(struct vg_options, n_containers), VG_MAX_CGROUP_ARGS },
	};
	static const struct { const char *flag; size_t field; } numbers[] = {
		{ "--probe-interval", offsetof(struct vg_options, probe_interval_ms) },
		{ "--probe-timeout", offsetof(struct vg_options, probe_timeout_ms) },
		{ "--probe-failures", offsetof(struct vg_options, probe_failures) },
		{ "--lease", offsetof(struct vg_options, lease_ms) },
	};
	static const struct { const char *flag; size_t field; } singles[] = {
		{ "--tunnel", offsetof(struct vg_options, tunnel) },
		{ "--netns", offsetof(struct vg_options, netns) },
		{ "--log", offsetof(struct vg_options, log) },
		{ "--config", offsetof(struct vg_options, config) },
		{ "--probe-url", offsetof(struct vg_options, probe_url) },
		{ "--probe-ca", offsetof(struct vg_options, probe_ca) },
		{ "--gluetun-url", offsetof(struct vg_options, gluetun_url) },
		{ "--webhook", offsetof(struct vg_options, webhook) },
		{ "--http", offsetof(struct vg_options, http) },
		{ "--tunnel-container", offsetof(struct vg_options, tunnel_container) },
		{ "--docker-host", offsetof(struct vg_options, docker_host) },
		{ "--check", offsetof(struct vg_options, check) },
	};
	char *base = (char *)o;

	if (!strcmp(flag, "--since")) {
		if (o->since_ms)
			return fail(err, errlen, "%s given twice", flag);
		if (vg_parse_duration_max(v, VG_REPORT_MAX_SINCE_MS, &o->since_ms))
			return fail(err, errlen, "%s %s: not a duration (e.g. 24h, 7d, 90m; at most 31 days)", flag, v);
		return 0;
	}
	if (!strcmp(flag, "--on-closed")) {
		static const char *const words[] = { [VG_ON_CLOSED_NONE] = "none",
			[VG_ON_CLOSED_PAUSE] = "pause", [VG_ON_CLOSED_STOP] = "stop" };

		if (o->on_closed_set)
			return fail(err, errlen, "%s given twice", flag);
		for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
			if (!strcmp(v, words[i])) {
				o->on_closed = (enum vg_on_closed)i;
				o->on_closed_set = true;
				return 0;
			}
		return fail(err, errlen, "%s %s: not pause, stop or none", flag, v);
	}
	if (!strcmp(flag, "--fwmark"))
		return take_id(&o->fwmark, flag, v, err, errlen);
	if (!strcmp(flag, "--route-table"))
		return take_id(&o->route_table, flag, v, err, errlen);
	if (!strcmp(flag, "--http") && vg_listen_parse(v, &(struct vg_listen){ 0 }, err, errlen))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
		if (!strcmp(flag, lists[i].flag))
			return vg_word_check(flag, v, err, errlen) ?:
			       push((const char **)(base + lists[i].list), (int *)(base + lists[i].n),
				    lists[i].max, v, flag, err, errlen);
	for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
		if (!strcmp(flag, numbers[i].flag))
			return take_number((unsigned *)(base + numbers[i].field), flag, v, err, errlen);
	for (size_t i = 0; i < sizeof(singles) / sizeof(singles[0]); i++) {
		const char **single = (const char **)(base + singles[i].field);

		if (strcmp(flag, singles[i].flag))
			continue;
		if (*single)
			return fail(err, errlen, "%s given twice", flag);
		*single = v;
		return 0;
	}
	return fail(err, errlen, "unknown option '%s'", flag);
}

static void set_switch(struct vg_options *o, const char *flag)
{
	if (!strcmp(flag, "--no-agent"))
		o->no_agent = true;
	else if (!strcmp(flag, "--json"))
		o->json = true;
	else if (!strcmp(flag, "--post"))
		o->post = true;
	else if (!strcmp(flag, "--restart-dependents"))
		o->restart_dependents = true;
	else
		o->follow = true;
}

bool vg_options_have_guard(const struct vg_options *o)
{
	return o->n_containers || o->tunnel_container || o->docker_host ||
	       o->tunnel || o->netns || o->n_gateways || o->n_allows || o->n_dns || o->probe_url ||
	       o->probe_ca || o->gluetun_url || o->n_real_ips || o->n_expect_ips ||
	       o->probe_interval_ms || o->probe_timeout_ms || o->probe_failures || o->lease_ms ||
	       o->fwmark || o->route_table || o->restart_dependents || o->on_closed_set;
}

bool vg_options_need_agent(const struct vg_options *o)
{
	return o->probe_url || o->gluetun_url || o->webhook || o->http || o->restart_dependents ||
	       o->on_closed != VG_ON_CLOSED_NONE;
}

int vg_attach_options_check(const struct vg_options *o, char *err, size_t errlen)
{
	bool probes = o->probe_url || o->gluetun_url;

	if (!o->n_cgroups && !o->n_containers)
		return fail(err, errlen, "attach: --cgroup (or --container) is required");
	/* A container is one more cgroup to guard. */
	if (o->n_cgroups + o->n_containers > VG_MAX_CGROUP_ARGS) {
		char maxs[16];

		snprintf(maxs, sizeof(maxs), "%d", VG_MAX_CGROUP_ARGS);
		return fail(err, errlen, "attach: --cgroup and --container: at most %s together", maxs);
	}
	if (!o->tunnel == !o->n_gateways)
		return fail(err, errlen, "attach: give either --tunnel or --gateway");
	if (o->netns && !o->tunnel)
		return fail(err, errlen, "attach: --netns goes with --tunnel");
	if ((o->fwmark || o->route_table) && !o->tunnel)
		return fail(err, errlen, "attach: %s steers into the tunnel: it goes with --tunnel",
			    o->fwmark ? "--fwmark" : "--route-table");
	if (o->tunnel_container && !o->tunnel)
		return fail(err, errlen, "attach: --tunnel-container goes with --tunnel");
	if (o->tunnel_container && o->netns)
		return fail(err, errlen, "attach: --tunnel-container and --netns both name the tunnel's "
			    "namespace: give one");
	if (o->restart_dependents && !o->tunnel_container)
		return fail(err, errlen, "attach: --restart-dependents restarts the containers that share "
			    "--tunnel-container's namespace: give --tunnel-container");
	if (o->no_agent && (o->restart_dependents || o->on_closed != VG_ON_CLOSED_NONE))
		return fail(err, errlen, "attach: %s needs the agent: drop --no-agent",
			    o->restart_dependents ? "--restart-dependents" : "--on-closed");
	/* The kernel's own rule for interface names (dev_valid_name). */
	if (o->tunnel && (!*o->tunnel || strlen(o->tunnel) >= VG_IFNAMSIZ ||
			  strpbrk(o->tunnel, "/: \t\n\v\f\r") || !strcmp(o->tunnel, ".") ||
			  !strcmp(o->tunnel, "..")))
		return fail(err, errlen, "--tunnel %s: not an interface name", o->tunnel);
	if (o->no_agent && vg_options_need_agent(o))
		return fail(err, errlen, "attach: %s needs the agent: drop --no-agent",
			    o->probe_url ? "--probe-url" : o->gluetun_url ? "--gluetun-url" :
			    o->webhook ? "--webhook" : "--http");
	if (o->probe_url && !o->tunnel)
		return fail(err, errlen, "attach: --probe-url goes through the tunnel: it needs --tunnel");
	if (!o->probe_url && (o->n_real_ips || o->n_expect_ips || o->probe_ca))
		return fail(err, errlen, "attach: %s judges what --probe-url sees: give --probe-url",
			    o->n_real_ips ? "--real-ip" : o->n_expect_ips ? "--expect-ip" : "--probe-ca");
	if (!probes && (o->probe_timeout_ms || o->probe_failures))
		return fail(err, errlen, "attach: %s needs --probe-url or --gluetun-url",
			    o->probe_timeout_ms ? "--probe-timeout" : "--probe-failures");
	if (o->no_agent && o->probe_interval_ms)
		return fail(err, errlen, "attach: --probe-interval needs the agent: drop --no-agent");
	if (o->probe_timeout_ms && o->probe_interval_ms && o->probe_timeout_ms > o->probe_interval_ms)
		return fail(err, errlen, "attach: --probe-timeout is longer than --probe-interval");
	/* Each word was judged when set; what is left is the allow set as a whole. */
	struct vg_policy p;

	return vg_policy_build(o, &p, err, errlen);
}

bool vg_option_is_switch(enum vg_cmd cmd, const char *flag)
{
	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
		if (!strcmp(flag, flags[k].name))
			return !flags[k].takes_value && (flags[k].cmds & ON(cmd));
	return false;
}

int vg_option_set(struct vg_options *o, enum vg_cmd cmd, const char *flag, const char *value,
		  char *err, size_t errlen)
{
	const struct flag *f = NULL;

	for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]); k++)
		if (!strcmp(flag, flags[k].name))
			f = &flags[k];
	if (!f || !(f->cmds & ON(cmd)))
		return fail(err, errlen, "%s: unknown option '%s'", cmd_names[cmd], flag);
	if (!f->takes_value) {
		set_switch(o, f->name);
		return 0;
	}
	if (!value || !value[0])
		return fail(err, errlen, "%s needs a value", f->name);
	return take(o, f->name, value, err, errlen);
}

int vg_parse_args(int argc, char **argv, struct vg_options *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	if (argc < 2)
		return fail(err, errlen, "no command given");
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
		return fail(err, errlen, "unknown command '%s'", argv[1]);

	for (int i = 2; i < argc; i++) {
		const char *value = NULL;
		int r;

		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			o->cmd = VG_CMD_HELP;
			return 0;
		}
		for (size_t k = 0; k < sizeof(flags) / sizeof(flags[0]) && !value; k++)
			if (!strcmp(argv[i], flags[k].name) && flags[k].takes_value && i + 1 < argc)
				value = argv[++i];
		/* "--log --no-agent": the value was forgotten; taking the next option as it hides that. */
		if (value && (!strncmp(value, "--", 2) || !strcmp(value, "-h")))
			return fail(err, errlen, "%s needs a value, not the option '%s'", argv[i - 1], value);
		r = vg_option_set(o, o->cmd, argv[i - (value != NULL)], value, err, errlen);
		if (r)
			return r;
	}
	if (o->cmd != VG_CMD_ATTACH)
		return 0;
	/* Nothing about a guard: the guards come from the config file. */
	if (!o->n_cgroups && !vg_options_have_guard(o))
		return o->no_agent && (o->webhook || o->http) ?
		       fail(err, errlen, "attach: %s needs the agent: drop --no-agent",
			    o->webhook ? "--webhook" : "--http") : 0;
	return vg_attach_options_check(o, err, errlen);
}
