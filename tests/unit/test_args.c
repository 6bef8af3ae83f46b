// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of vg_parse_args (user/cli/args.c): the command line of
 * docs/design.md. Every bad usage must come back as -EINVAL with a message (the
 * caller turns it into exit code 2); nothing here touches the system.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "args.h"

#define ERRLEN 256

/* argv with the program name first and a NULL at the end. */
#define ARGV(...) ((char *[]){ "vpnguard-bpf", __VA_ARGS__, NULL })

static int argc_of(char **argv)
{
	int n = 0;

	while (argv[n])
		n++;
	return n;
}

static int parse(char **argv, struct vg_options *o, char *err)
{
	memset(err, 0, ERRLEN);
	return vg_parse_args(argc_of(argv), argv, o, err, ERRLEN);
}

/* Parses argv and expects it to be refused with a message containing want (if not NULL). */
static void expect_usage_error(char **argv, const char *want)
{
	struct vg_options o;
	char err[ERRLEN];
	int r = parse(argv, &o, err);

	if (r != -EINVAL) {
		fprintf(stderr, "accepted (%d):", r);
		for (int i = 1; argv[i]; i++)
			fprintf(stderr, " '%s'", argv[i]);
		fprintf(stderr, "\n");
	}
	assert_int_equal(r, -EINVAL);
	assert_true(err[0] != '\0');
	if (want && !strstr(err, want))
		fail_msg("message '%s' does not mention '%s'", err, want);
}

static void expect_ok(char **argv, struct vg_options *o)
{
	char err[ERRLEN];
	int r = parse(argv, o, err);

	if (r)
		fail_msg("refused (%d): %s", r, err);
}

/* A growing argv for the repetition limits. */
struct argbuf {
	char *v[512];
	int n;
	char words[256][32];
	int nw;
};

static void ab_init(struct argbuf *a, const char *cmd)
{
	memset(a, 0, sizeof(*a));
	a->v[a->n++] = "vpnguard-bpf";
	a->v[a->n++] = (char *)cmd;
}

static void ab_add(struct argbuf *a, const char *s)
{
	assert_true(a->n < (int)(sizeof(a->v) / sizeof(a->v[0])) - 1);
	a->v[a->n++] = (char *)s;
	a->v[a->n] = NULL;
}

static const char *ab_word(struct argbuf *a, const char *fmt, int i)
{
	assert_true(a->nw < 256);
	snprintf(a->words[a->nw], sizeof(a->words[0]), fmt, i);
	return a->words[a->nw++];
}

/* ---- no command, unknown command, --help, --version ---- */

static void test_no_command(void **state)
{
	(void)state;
	char *argv[] = { "vpnguard-bpf", NULL };
	struct vg_options o;
	char err[ERRLEN];

	assert_int_equal(parse(argv, &o, err), -EINVAL);
	assert_non_null(strstr(err, "no command"));
	assert_int_equal(o.cmd, VG_CMD_NONE);
}

static void test_unknown_command(void **state)
{
	(void)state;
	expect_usage_error(ARGV("start"), "start");
	expect_usage_error(ARGV("Attach", "--cgroup", "/a", "--tunnel", "wg0"), "Attach");
	expect_usage_error(ARGV("attachx"), "attachx");
	expect_usage_error(ARGV(""), NULL);
	expect_usage_error(ARGV("version"), "version");
	expect_usage_error(ARGV("help"), "help");
	/* The command comes first: a flag before it is not a command. */
	expect_usage_error(ARGV("--json", "status"), "--json");
	expect_usage_error(ARGV("--cgroup", "/a", "attach"), "--cgroup");
	expect_usage_error(ARGV("-v"), "-v");
}

static void test_help_first(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("--help"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
	expect_ok(ARGV("-h"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
	/* Whatever follows --help does not matter. */
	expect_ok(ARGV("--help", "attach", "--bogus"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
}

static void test_help_anywhere(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--help"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
	expect_ok(ARGV("detach", "-h"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
	expect_ok(ARGV("status", "--json", "--help"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
	expect_ok(ARGV("events", "--follow", "--help", "--json"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
	/* An attach that would be refused (no --tunnel/--gateway) still gives help. */
	expect_ok(ARGV("attach", "--cgroup", "/a", "--help"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "-h", "--no-agent"), &o);
	assert_int_equal(o.cmd, VG_CMD_HELP);
}

static void test_version(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("--version"), &o);
	assert_int_equal(o.cmd, VG_CMD_VERSION);
	assert_int_equal(o.n_cgroups, 0);
	assert_null(o.tunnel);
}

static void test_usage_text(void **state)
{
	(void)state;
	static const char *const words[] = {
		"attach", "detach", "status", "events", "--cgroup", "--tunnel", "--netns",
		"--gateway", "--allow", "--dns", "--log", "--no-agent", "--config", "--json",
		"--follow", "--help", "--version", "scan", "--container", "--tunnel-container",
		"--docker-host",
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strstr(vg_usage, words[i]))
			fail_msg("usage text does not mention %s", words[i]);
}

/* ---- accepted command lines ---- */

static void test_attach_tunnel_minimal(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--cgroup", "/sys/fs/cgroup/vpn.slice", "--tunnel", "wg0"), &o);
	assert_int_equal(o.cmd, VG_CMD_ATTACH);
	assert_int_equal(o.n_cgroups, 1);
	assert_string_equal(o.cgroups[0], "/sys/fs/cgroup/vpn.slice");
	assert_string_equal(o.tunnel, "wg0");
	assert_null(o.netns);
	assert_int_equal(o.n_gateways, 0);
	assert_int_equal(o.n_allows, 0);
	assert_int_equal(o.n_dns, 0);
	assert_null(o.log);
	assert_null(o.config);
	assert_false(o.no_agent);
	assert_false(o.json);
	assert_false(o.follow);
}

static void test_attach_tunnel_every_flag(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--cgroup", "/a", "--allow", "192.168.1.0/24", "--tunnel", "wg0",
		       "--dns", "10.2.0.1", "--cgroup", "/b", "--netns", "/run/netns/vpn",
		       "--allow", "172.17.0.0/16", "--log", "/tmp/ev.jsonl", "--no-agent",
		       "--dns", "1.1.1.1", "--config", "/etc/vg.conf"), &o);
	assert_int_equal(o.cmd, VG_CMD_ATTACH);
	assert_int_equal(o.n_cgroups, 2);
	assert_string_equal(o.cgroups[0], "/a");
	assert_string_equal(o.cgroups[1], "/b");
	assert_string_equal(o.tunnel, "wg0");
	assert_string_equal(o.netns, "/run/netns/vpn");
	assert_int_equal(o.n_allows, 2);
	assert_string_equal(o.allows[0], "192.168.1.0/24");
	assert_string_equal(o.allows[1], "172.17.0.0/16");
	assert_int_equal(o.n_dns, 2);
	assert_string_equal(o.dns[0], "10.2.0.1");
	assert_string_equal(o.dns[1], "1.1.1.1");
	assert_string_equal(o.log, "/tmp/ev.jsonl");
	assert_string_equal(o.config, "/etc/vg.conf");
	assert_true(o.no_agent);
	assert_int_equal(o.n_gateways, 0);
	assert_false(o.json);
	assert_false(o.follow);
}

static void test_attach_gateway(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--gateway", "10.0.0.1:1080", "--cgroup", "/a",
		       "--gateway", "[fd00::1]:8080", "--gateway", "10.0.0.2"), &o);
	assert_int_equal(o.cmd, VG_CMD_ATTACH);
	assert_null(o.tunnel);
	assert_null(o.netns);
	assert_int_equal(o.n_gateways, 3);
	assert_string_equal(o.gateways[0], "10.0.0.1:1080");
	assert_string_equal(o.gateways[1], "[fd00::1]:8080");
	assert_string_equal(o.gateways[2], "10.0.0.2");
	assert_int_equal(o.n_cgroups, 1);
	assert_false(o.no_agent);
}

static void test_detach(void **state)
{
	(void)state;
	struct vg_options o;

	/* No --cgroup: remove everything. */
	expect_ok(ARGV("detach"), &o);
	assert_int_equal(o.cmd, VG_CMD_DETACH);
	assert_int_equal(o.n_cgroups, 0);

	expect_ok(ARGV("detach", "--cgroup", "/a", "--cgroup", "/b"), &o);
	assert_int_equal(o.cmd, VG_CMD_DETACH);
	assert_int_equal(o.n_cgroups, 2);
	assert_string_equal(o.cgroups[0], "/a");
	assert_string_equal(o.cgroups[1], "/b");
	assert_null(o.tunnel);
}

static void test_status(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("status"), &o);
	assert_int_equal(o.cmd, VG_CMD_STATUS);
	assert_false(o.json);

	expect_ok(ARGV("status", "--json"), &o);
	assert_int_equal(o.cmd, VG_CMD_STATUS);
	assert_true(o.json);
	assert_false(o.follow);
}

static void test_events(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("events"), &o);
	assert_int_equal(o.cmd, VG_CMD_EVENTS);
	assert_false(o.json);
	assert_false(o.follow);

	expect_ok(ARGV("events", "--follow"), &o);
	assert_true(o.follow);
	assert_false(o.json);

	expect_ok(ARGV("events", "--json"), &o);
	assert_true(o.json);
	assert_false(o.follow);

	expect_ok(ARGV("events", "--json", "--follow"), &o);
	assert_true(o.json);
	assert_true(o.follow);

	expect_ok(ARGV("events", "--follow", "--json"), &o);
	assert_true(o.json);
	assert_true(o.follow);
}

/* The struct is filled from scratch: nothing of an earlier parse or of garbage survives. */
static void test_options_reset(void **state)
{
	(void)state;
	struct vg_options o;

	memset(&o, 0x5a, sizeof(o));
	expect_ok(ARGV("status"), &o);
	assert_int_equal(o.cmd, VG_CMD_STATUS);
	assert_int_equal(o.n_cgroups, 0);
	assert_int_equal(o.n_gateways, 0);
	assert_int_equal(o.n_allows, 0);
	assert_int_equal(o.n_dns, 0);
	assert_null(o.tunnel);
	assert_null(o.netns);
	assert_null(o.log);
	assert_null(o.config);
	assert_false(o.no_agent);
	assert_false(o.json);
	assert_false(o.follow);

	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--no-agent"), &o);
	expect_ok(ARGV("detach"), &o);
	assert_int_equal(o.n_cgroups, 0);
	assert_null(o.tunnel);
	assert_false(o.no_agent);
}

/* ---- flags not valid for a command, unknown options ---- */

struct flagdef {
	const char *name;
	bool value;
	unsigned cmds; /* bit per enum vg_cmd */
};

#define CMD(c) (1u << (c))

static const struct flagdef all_flags[] = {
	{ "--cgroup", true, CMD(VG_CMD_ATTACH) | CMD(VG_CMD_DETACH) },
	{ "--tunnel", true, CMD(VG_CMD_ATTACH) },
	{ "--netns", true, CMD(VG_CMD_ATTACH) },
	{ "--gateway", true, CMD(VG_CMD_ATTACH) },
	{ "--allow", true, CMD(VG_CMD_ATTACH) },
	{ "--dns", true, CMD(VG_CMD_ATTACH) },
	{ "--log", true, CMD(VG_CMD_ATTACH) },
	{ "--config", true, CMD(VG_CMD_ATTACH) },
	{ "--no-agent", false, CMD(VG_CMD_ATTACH) },
	{ "--json", false, CMD(VG_CMD_STATUS) | CMD(VG_CMD_EVENTS) | CMD(VG_CMD_SCAN) },
	{ "--follow", false, CMD(VG_CMD_EVENTS) },
	{ "--container", true, CMD(VG_CMD_ATTACH) },
	{ "--tunnel-container", true, CMD(VG_CMD_ATTACH) },
	{ "--docker-host", true, CMD(VG_CMD_ATTACH) },
	{ "--restart-dependents", false, CMD(VG_CMD_ATTACH) },
	{ "--on-closed", true, CMD(VG_CMD_ATTACH) },
	{ "--check", true, CMD(VG_CMD_STATUS) },
	/* Top-level only. */
	{ "--version", false, 0 },
};

static const struct {
	enum vg_cmd cmd;
	const char *name;
} commands[] = {
	{ VG_CMD_ATTACH, "attach" },
	{ VG_CMD_DETACH, "detach" },
	{ VG_CMD_STATUS, "status" },
	{ VG_CMD_EVENTS, "events" },
	{ VG_CMD_SCAN, "scan" },
};

static void test_flags_not_for_command(void **state)
{
	(void)state;
	int checked = 0;

	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		for (size_t f = 0; f < sizeof(all_flags) / sizeof(all_flags[0]); f++) {
			if (all_flags[f].cmds & CMD(commands[c].cmd))
				continue;
			/* A valid attach around the bad flag, so only the flag is wrong. */
			if (commands[c].cmd == VG_CMD_ATTACH) {
				if (all_flags[f].value)
					expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0",
								(char *)all_flags[f].name, "x"),
							   all_flags[f].name);
				else
					expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0",
								(char *)all_flags[f].name),
							   all_flags[f].name);
			} else if (all_flags[f].value) {
				expect_usage_error(ARGV((char *)commands[c].name,
							(char *)all_flags[f].name, "x"),
						   all_flags[f].name);
			} else {
				expect_usage_error(ARGV((char *)commands[c].name,
							(char *)all_flags[f].name),
						   all_flags[f].name);
			}
			checked++;
		}
	}
	/* attach: 4 + detach: 17 + status: 16 + events: 16 + scan: 17 */
	assert_int_equal(checked, 70);

	/* The examples of the brief, spelled out. */
	expect_usage_error(ARGV("status", "--cgroup", "x"), "--cgroup");
	expect_usage_error(ARGV("events", "--no-agent"), "--no-agent");
	expect_usage_error(ARGV("status", "--follow"), "--follow");
	expect_usage_error(ARGV("detach", "--json"), "--json");
	expect_usage_error(ARGV("detach", "--tunnel", "wg0"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--json"), "--json");
}

static void test_unknown_options(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof(commands) / sizeof(commands[0]); c++) {
		char *cmd = (char *)commands[c].name;

		expect_usage_error(ARGV(cmd, "--bogus"), "--bogus");
		expect_usage_error(ARGV(cmd, "-x"), "-x");
		expect_usage_error(ARGV(cmd, "stray"), "stray");
		expect_usage_error(ARGV(cmd, "-"), NULL);
		expect_usage_error(ARGV(cmd, "--"), NULL);
		expect_usage_error(ARGV(cmd, ""), NULL);
	}
	/* Only the spaced form is the contract; --flag=value is not silently taken. */
	expect_usage_error(ARGV("attach", "--cgroup=/a", "--tunnel", "wg0"), "--cgroup=/a");
	expect_usage_error(ARGV("detach", "--cgroup=/a"), "--cgroup=/a");
	expect_usage_error(ARGV("status", "--JSON"), "--JSON");
	/* A positional word after a valid attach. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "extra"), "extra");
	/* The message names the command too. */
	expect_usage_error(ARGV("status", "--bogus"), "status");
}

/* ---- missing values ---- */

static void test_missing_values(void **state)
{
	(void)state;
	for (size_t f = 0; f < sizeof(all_flags) / sizeof(all_flags[0]); f++) {
		char *name = (char *)all_flags[f].name;

		if (!all_flags[f].value)
			continue;
		/* Last word: no value at all. */
		expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", name), name);
		/* An empty value. */
		expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", name, ""),
				   name);
	}
	expect_usage_error(ARGV("attach", "--cgroup"), "--cgroup");
	expect_usage_error(ARGV("detach", "--cgroup"), "--cgroup");
	expect_usage_error(ARGV("detach", "--cgroup", ""), "--cgroup");
	expect_usage_error(ARGV("attach", "--tunnel"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--gateway"), "--gateway");
}

/* ---- attach rules ---- */

static void test_attach_needs_cgroup(void **state)
{
	(void)state;
	expect_usage_error(ARGV("attach", "--tunnel", "wg0"), "--cgroup");
	expect_usage_error(ARGV("attach", "--gateway", "10.0.0.1"), "--cgroup");
	expect_usage_error(ARGV("attach", "--tunnel", "wg0", "--no-agent", "--allow", "10.0.0.0/8"),
			   "--cgroup");
	expect_usage_error(ARGV("attach", "--probe-url", "http://10.0.0.1/"), "--cgroup");
	expect_usage_error(ARGV("attach", "--lease", "30s", "--no-agent"), "--cgroup");
}

/* With nothing about a guard, the guards come from the config file (default or --config). */
static void test_attach_guards_from_config(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach"), &o);
	assert_int_equal(o.n_cgroups, 0);
	assert_null(o.config);
	expect_ok(ARGV("attach", "--config", "/etc/a.conf", "--log", "/tmp/l", "--webhook",
		       "https://ntfy.example/t"), &o);
	assert_string_equal(o.config, "/etc/a.conf");
	assert_string_equal(o.webhook, "https://ntfy.example/t");
	expect_ok(ARGV("attach", "--no-agent"), &o);
	assert_true(o.no_agent);
	expect_usage_error(ARGV("attach", "--no-agent", "--webhook", "http://127.0.0.1/"), "--no-agent");
}

static void test_attach_health_flags(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--probe-url",
		       "https://10.0.0.1/ip", "--probe-ca", "/etc/ca.pem", "--probe-interval", "500ms",
		       "--probe-timeout", "250ms", "--probe-failures", "2", "--real-ip", "192.0.2.7",
		       "--real-ip", "2001:db8::7", "--expect-ip", "10.66.0.0/24", "--lease", "2m",
		       "--gluetun-url", "http://127.0.0.1:8000", "--webhook", "http://127.0.0.1:9/h"), &o);
	assert_string_equal(o.probe_url, "https://10.0.0.1/ip");
	assert_string_equal(o.probe_ca, "/etc/ca.pem");
	assert_string_equal(o.gluetun_url, "http://127.0.0.1:8000");
	assert_string_equal(o.webhook, "http://127.0.0.1:9/h");
	assert_int_equal(o.probe_interval_ms, 500);
	assert_int_equal(o.probe_timeout_ms, 250);
	assert_int_equal(o.probe_failures, 2);
	assert_int_equal(o.lease_ms, 120000);
	assert_int_equal(o.n_real_ips, 2);
	assert_string_equal(o.real_ips[1], "2001:db8::7");
	assert_int_equal(o.n_expect_ips, 1);
	assert_true(vg_options_need_agent(&o));

	/* A lease alone is what --no-agent users may ask for. */
	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--no-agent", "--lease", "90"), &o);
	assert_int_equal(o.lease_ms, 90000);
	assert_false(vg_options_need_agent(&o));
}

static void test_attach_health_rules(void **state)
{
	(void)state;
#define T "attach", "--cgroup", "/a", "--tunnel", "wg0"
	expect_usage_error(ARGV(T, "--no-agent", "--probe-url", "http://10.0.0.1/"), "--no-agent");
	expect_usage_error(ARGV(T, "--no-agent", "--webhook", "http://10.0.0.1/"), "--no-agent");
	expect_usage_error(ARGV(T, "--no-agent", "--probe-interval", "5s"), "--no-agent");
	expect_usage_error(ARGV(T, "--real-ip", "192.0.2.7"), "--probe-url");
	expect_usage_error(ARGV(T, "--expect-ip", "10.0.0.0/8"), "--probe-url");
	expect_usage_error(ARGV(T, "--probe-ca", "/ca.pem"), "--probe-url");
	expect_usage_error(ARGV(T, "--probe-failures", "3"), "--probe-failures");
	expect_usage_error(ARGV(T, "--probe-url", "http://10.0.0.1/", "--probe-failures", "0"), "--probe-failures");
	expect_usage_error(ARGV(T, "--probe-url", "http://10.0.0.1/", "--probe-failures", "101"), "--probe-failures");
	expect_usage_error(ARGV(T, "--probe-url", "http://10.0.0.1/", "--probe-failures", "3x"), "--probe-failures");
	expect_usage_error(ARGV(T, "--probe-url", "http://10.0.0.1/", "--probe-interval", "1s",
				"--probe-timeout", "2s"), "--probe-timeout");
	expect_usage_error(ARGV(T, "--lease", "1s", "--lease", "2s"), "--lease");
	expect_usage_error(ARGV(T, "--probe-url", "http://a/", "--probe-url", "http://b/"), "--probe-url");
#undef T
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1", "--probe-url",
				"http://10.0.0.1/"), "--tunnel");
}

static void test_durations(void **state)
{
	(void)state;
	static const struct { const char *s; unsigned ms; } good[] = {
		{ "30", 30000 }, { "30s", 30000 }, { "500ms", 500 }, { "2m", 120000 },
		{ "1h", 3600000 }, { "24h", 86400000 }, { "1ms", 1 },
	};
	static const char *const bad[] = {
		"", "s", "-1", "0", "0s", "1.5s", "10 s", "25h", "1d", "99999999999999", "5sec", " 5",
	};
	unsigned ms;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(vg_parse_duration(good[i].s, &ms), 0);
		assert_int_equal(ms, good[i].ms);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(vg_parse_duration(bad[i], &ms), -EINVAL);
}

static void test_attach_tunnel_xor_gateway(void **state)
{
	(void)state;
	/* Neither. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--allow", "10.0.0.0/8", "--no-agent"),
			   "--gateway");
	/* Both. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--gateway",
				"10.0.0.1"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1", "--gateway",
				"10.0.0.2", "--tunnel", "wg0"), "--gateway");
}

static void test_attach_netns_needs_tunnel(void **state)
{
	(void)state;
	struct vg_options o;

	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1", "--netns",
				"/run/netns/vpn"), "--netns");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--netns", "/proc/1/ns/net",
				"--gateway", "10.0.0.1:1080"), "--netns");
	/* Before or after --tunnel, both fine. */
	expect_ok(ARGV("attach", "--netns", "/proc/42/ns/net", "--cgroup", "/a", "--tunnel", "tun0"),
		  &o);
	assert_string_equal(o.netns, "/proc/42/ns/net");
	assert_string_equal(o.tunnel, "tun0");
}

static void test_attach_tunnel_name(void **state)
{
	(void)state;
	struct vg_options o;

	/* IFNAMSIZ is 16 with the NUL: 15 characters fit. */
	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "abcdefghijklmno"), &o);
	assert_string_equal(o.tunnel, "abcdefghijklmno");
	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg-vpn_0.1"), &o);

	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "abcdefghijklmnop"),
			   "abcdefghijklmnop");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel",
				"a-very-long-interface-name-indeed"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg/0"), "wg/0");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "/wg0"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "../wg0"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0/"), "--tunnel");
}

/*
 * Names the kernel can never give an interface (dev_valid_name(): ".", "..",
 * ':', '/' or white space). Accepting one gives exit 0 and a guard whose
 * tunnel never appears: everything denied (no_tunnel) with no usage error.
 */
static void test_attach_tunnel_name_kernel_rules(void **state)
{
	(void)state;
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "."), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", ".."), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg:0"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg 0"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0\n"), "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "\twg0"), "--tunnel");
}

/* ---- repetition limits ---- */

/* An attach with n times flag (values made from fmt) around a valid base. */
static int attach_with_n(const char *flag, const char *fmt, int n, bool tunnel,
			 struct vg_options *o, char *err)
{
	static struct argbuf a;

	ab_init(&a, "attach");
	if (strcmp(flag, "--cgroup")) {
		ab_add(&a, "--cgroup");
		ab_add(&a, "/base");
	}
	if (tunnel) {
		ab_add(&a, "--tunnel");
		ab_add(&a, "wg0");
	}
	for (int i = 0; i < n; i++) {
		ab_add(&a, flag);
		ab_add(&a, ab_word(&a, fmt, i));
	}
	memset(err, 0, ERRLEN);
	return vg_parse_args(a.n, a.v, o, err, ERRLEN);
}

static void check_limit(const char *flag, const char *fmt, int max, bool tunnel)
{
	struct vg_options o;
	char err[ERRLEN], want[32];
	int r;

	r = attach_with_n(flag, fmt, max, tunnel, &o, err);
	if (r)
		fail_msg("%d x %s refused: %s", max, flag, err);

	r = attach_with_n(flag, fmt, max + 1, tunnel, &o, err);
	assert_int_equal(r, -EINVAL);
	if (!strstr(err, flag))
		fail_msg("message '%s' does not name %s", err, flag);
	snprintf(want, sizeof(want), "%d", max);
	if (!strstr(err, want))
		fail_msg("message '%s' does not give the limit %d", err, max);
}

static void test_limit_cgroup(void **state)
{
	(void)state;
	struct vg_options o;
	char err[ERRLEN];

	check_limit("--cgroup", "/sys/fs/cgroup/c%d", VG_MAX_CGROUP_ARGS, true);
	assert_int_equal(attach_with_n("--cgroup", "/c%d", VG_MAX_CGROUP_ARGS, true, &o, err), 0);
	assert_int_equal(o.n_cgroups, VG_MAX_CGROUP_ARGS);
	assert_string_equal(o.cgroups[VG_MAX_CGROUP_ARGS - 1], "/c63");

	/* detach has the same limit. */
	static struct argbuf a;
	ab_init(&a, "detach");
	for (int i = 0; i <= VG_MAX_CGROUP_ARGS; i++) {
		ab_add(&a, "--cgroup");
		ab_add(&a, ab_word(&a, "/d%d", i));
	}
	assert_int_equal(vg_parse_args(a.n, a.v, &o, err, ERRLEN), -EINVAL);
	assert_non_null(strstr(err, "--cgroup"));
	assert_int_equal(vg_parse_args(a.n - 2, a.v, &o, err, ERRLEN), 0);
	assert_int_equal(o.n_cgroups, VG_MAX_CGROUP_ARGS);
}

static void test_limit_gateway(void **state)
{
	(void)state;
	struct vg_options o;
	char err[ERRLEN];

	check_limit("--gateway", "10.0.0.%d:1080", VG_MAX_GW, false);
	assert_int_equal(attach_with_n("--gateway", "10.0.0.%d", VG_MAX_GW, false, &o, err), 0);
	assert_int_equal(o.n_gateways, VG_MAX_GW);
	assert_string_equal(o.gateways[VG_MAX_GW - 1], "10.0.0.7");
}

static void test_limit_allow(void **state)
{
	(void)state;
	struct vg_options o;
	char err[ERRLEN];

	check_limit("--allow", "10.%d.0.0/16", VG_MAX_ALLOW, true);
	assert_int_equal(attach_with_n("--allow", "10.%d.0.0/16", VG_MAX_ALLOW, true, &o, err), 0);
	assert_int_equal(o.n_allows, VG_MAX_ALLOW);
	assert_string_equal(o.allows[VG_MAX_ALLOW - 1], "10.15.0.0/16");
}

static void test_limit_dns(void **state)
{
	(void)state;
	struct vg_options o;
	char err[ERRLEN];

	check_limit("--dns", "10.2.0.%d", VG_MAX_DNS, true);
	assert_int_equal(attach_with_n("--dns", "10.2.0.%d", VG_MAX_DNS, true, &o, err), 0);
	assert_int_equal(o.n_dns, VG_MAX_DNS);
	assert_string_equal(o.dns[VG_MAX_DNS - 1], "10.2.0.7");
}

/* ---- single flags given twice ---- */

static void test_duplicate_single_flags(void **state)
{
	(void)state;
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--tunnel", "wg1"),
			   "--tunnel");
	/* Even the same value twice. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--tunnel", "wg0"),
			   "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--netns", "/run/netns/a",
				"--netns", "/run/netns/b"), "--netns");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--log", "/tmp/a",
				"--log", "/tmp/b"), "--log");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--config", "/etc/a",
				"--config", "/etc/b"), "--config");
	expect_usage_error(ARGV("attach", "--log", "/tmp/a", "--cgroup", "/a", "--gateway", "10.0.0.1",
				"--log", "/tmp/a"), "twice");
}

/* ---- Docker: containers by name, the tunnel's container, the engine's socket ---- */

static void test_attach_containers(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--container", "qbit", "--tunnel", "wg0"), &o);
	assert_int_equal(o.n_containers, 1);
	assert_int_equal(o.n_cgroups, 0);
	assert_string_equal(o.containers[0], "qbit");
	assert_null(o.tunnel_container);
	assert_null(o.docker_host);
	/* Mixed with --cgroup, order kept within each. */
	expect_ok(ARGV("attach", "--container", "qbit", "--cgroup", "/a", "--container", "prowlarr",
		       "--gateway", "172.20.0.2:1080", "--cgroup", "/b"), &o);
	assert_int_equal(o.n_containers, 2);
	assert_int_equal(o.n_cgroups, 2);
	assert_string_equal(o.containers[1], "prowlarr");
	assert_string_equal(o.cgroups[1], "/b");
	/* The same name twice is for attach to refuse, once it knows the cgroups. */
	expect_ok(ARGV("attach", "--container", "a", "--container", "a", "--tunnel", "wg0"), &o);
	assert_int_equal(o.n_containers, 2);
	/* Still a cgroup or a container is needed. */
	expect_usage_error(ARGV("attach", "--tunnel-container", "gluetun", "--tunnel", "tun0"), "--container");
	expect_usage_error(ARGV("attach", "--docker-host", "unix:///d.sock", "--tunnel", "tun0"), "--cgroup");
}

static void test_attach_tunnel_container(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--cgroup", "/vpnguard.slice", "--tunnel", "tun0",
		       "--tunnel-container", "gluetun", "--docker-host", "unix:///run/d.sock"), &o);
	assert_string_equal(o.tunnel_container, "gluetun");
	assert_string_equal(o.docker_host, "unix:///run/d.sock");
	assert_null(o.netns);
	/* The tunnel's namespace is named once: by path or by container. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "tun0", "--tunnel-container",
				"gluetun", "--netns", "/run/netns/vpn"), "--tunnel-container");
	/* It names where the tunnel is: gateway mode has none. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1",
				"--tunnel-container", "warp"), "--tunnel-container");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "tun0", "--tunnel-container", "a",
				"--tunnel-container", "b"), "--tunnel-container");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "tun0", "--docker-host", "unix:///a",
				"--docker-host", "unix:///a"), "--docker-host");
	/* The socket's form is checked where it is used, with the environment's. */
	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "tun0", "--docker-host", "tcp://h:2375"), &o);
	assert_string_equal(o.docker_host, "tcp://h:2375");
	/* Not for the other commands. */
	expect_usage_error(ARGV("detach", "--container", "qbit"), "--container");
	expect_usage_error(ARGV("scan", "--docker-host", "unix:///a"), "--docker-host");
}

static void test_attach_remedy(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("attach", "--cgroup", "/vpnguard.slice", "--tunnel", "tun0", "--tunnel-container",
		       "gluetun", "--restart-dependents", "--on-closed", "pause"), &o);
	assert_true(o.restart_dependents);
	assert_int_equal(o.on_closed, VG_ON_CLOSED_PAUSE);
	expect_ok(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1", "--on-closed", "stop"), &o);
	assert_int_equal(o.on_closed, VG_ON_CLOSED_STOP);
	expect_ok(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--on-closed", "none"), &o);
	assert_int_equal(o.on_closed, VG_ON_CLOSED_NONE);
	assert_true(o.on_closed_set);
	/* Dependents are those of a tunnel container. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "tun0", "--restart-dependents"),
			   "--tunnel-container");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--on-closed", "kill"),
			   "not pause, stop or none");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--on-closed", "pause",
				"--on-closed", "pause"), "given twice");
	/* The agent acts on containers: not without it. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--on-closed", "pause",
				"--no-agent"), "--on-closed needs the agent");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "tun0", "--tunnel-container", "g",
				"--restart-dependents", "--no-agent"), "--restart-dependents needs the agent");
	/* status --check names one guard. */
	expect_ok(ARGV("status", "--check", "vpnguard.slice"), &o);
	assert_string_equal(o.check, "vpnguard.slice");
	expect_usage_error(ARGV("status", "--check"), "--check needs a value");
	expect_ok(ARGV("doctor", "--json"), &o);
	assert_int_equal(o.cmd, VG_CMD_DOCTOR);
	expect_usage_error(ARGV("doctor", "--cgroup", "/a"), "--cgroup");
}

static void test_limit_cgroups_and_containers(void **state)
{
	(void)state;
	static struct argbuf a;
	struct vg_options o;
	char err[ERRLEN];

	/* One limit for both: each container is one more cgroup to guard. */
	ab_init(&a, "attach");
	ab_add(&a, "--tunnel");
	ab_add(&a, "wg0");
	for (int i = 0; i < VG_MAX_CGROUP_ARGS / 2; i++) {
		ab_add(&a, "--cgroup");
		ab_add(&a, ab_word(&a, "/c%d", i));
		ab_add(&a, "--container");
		ab_add(&a, ab_word(&a, "k%d", i));
	}
	assert_int_equal(vg_parse_args(a.n, a.v, &o, err, ERRLEN), 0);
	assert_int_equal(o.n_cgroups + o.n_containers, VG_MAX_CGROUP_ARGS);
	ab_add(&a, "--container");
	ab_add(&a, "one-more");
	assert_int_equal(vg_parse_args(a.n, a.v, &o, err, ERRLEN), -EINVAL);
	assert_non_null(strstr(err, "--container"));
	assert_non_null(strstr(err, "64"));
}

static void test_scan(void **state)
{
	(void)state;
	struct vg_options o;

	expect_ok(ARGV("scan"), &o);
	assert_int_equal(o.cmd, VG_CMD_SCAN);
	assert_false(o.json);
	expect_ok(ARGV("scan", "--json"), &o);
	assert_true(o.json);
	expect_usage_error(ARGV("scan", "--follow"), "--follow");
	expect_usage_error(ARGV("scan", "--cgroup", "/a"), "--cgroup");
	expect_usage_error(ARGV("scan", "all"), "all");
	expect_usage_error(ARGV("Scan"), "Scan");
}

/* ---- steering: --fwmark and --route-table ---- */

static void test_attach_steering(void **state)
{
	(void)state;
	static const struct {
		const char *mark, *table;
		__u32 want_mark, want_table;
	} good[] = {
		{ "51821", NULL, 51821, 0 },
		{ "0x76670001", "100", 0x76670001, 100 },
		{ "0XFFFFFFFF", "0xfa", 0xffffffff, 0xfa },
		{ "7", "0xfe1", 7, 0xfe1 },
		{ NULL, "4294967295", 0, 4294967295u },
	};
	static const struct {
		const char *flag, *value, *want;
	} bad[] = {
		{ "--fwmark", "0", "not a number" },
		{ "--fwmark", "4294967296", "not a number" },
		{ "--fwmark", "0x", "not a number" },
		{ "--fwmark", "-1", "not a number" },
		{ "--fwmark", "12abc", "not a number" },
		{ "--fwmark", "0x1g", "not a number" },
		{ "--route-table", "254", "main" },
		{ "--route-table", "255", "local" },
		{ "--route-table", "253", "default" },
		{ "--route-table", "99999999999", "not a number" },
	};
	struct vg_options o;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		char *argv[] = { "vpnguard-bpf", "attach", "--cgroup", "/a", "--tunnel", "wg0",
				 good[i].mark ? "--fwmark" : "--dns", good[i].mark ? (char *)good[i].mark : "10.0.0.1",
				 good[i].table ? "--route-table" : "--dns", good[i].table ? (char *)good[i].table : "10.0.0.2",
				 NULL };

		expect_ok(argv, &o);
		assert_int_equal(o.fwmark, good[i].want_mark);
		assert_int_equal(o.route_table, good[i].want_table);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", (char *)bad[i].flag,
					(char *)bad[i].value), bad[i].want);
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--tunnel", "wg0", "--fwmark", "1",
				"--fwmark", "2"), "twice");
	/* Steering is the tunnel's. */
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1", "--fwmark", "7"),
			   "--tunnel");
	expect_usage_error(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1", "--route-table", "7"),
			   "--tunnel");
}

/* ---- messages fit the buffer they are given ---- */

static void test_error_message_truncated(void **state)
{
	(void)state;
	char *argv[] = { "vpnguard-bpf", "a-command-with-a-rather-long-name", NULL };
	struct vg_options o;
	char err[16 + 8];

	memset(err, 'Z', sizeof(err));
	assert_int_equal(vg_parse_args(2, argv, &o, err, 16), -EINVAL);
	assert_int_equal(strlen(err), 15);
	for (size_t i = 16; i < sizeof(err); i++)
		assert_int_equal(err[i], 'Z');
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_command),
		cmocka_unit_test(test_unknown_command),
		cmocka_unit_test(test_help_first),
		cmocka_unit_test(test_help_anywhere),
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_usage_text),
		cmocka_unit_test(test_attach_tunnel_minimal),
		cmocka_unit_test(test_attach_tunnel_every_flag),
		cmocka_unit_test(test_attach_gateway),
		cmocka_unit_test(test_detach),
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_options_reset),
		cmocka_unit_test(test_flags_not_for_command),
		cmocka_unit_test(test_unknown_options),
		cmocka_unit_test(test_missing_values),
		cmocka_unit_test(test_attach_needs_cgroup),
		cmocka_unit_test(test_attach_guards_from_config),
		cmocka_unit_test(test_attach_health_flags),
		cmocka_unit_test(test_attach_health_rules),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_attach_tunnel_xor_gateway),
		cmocka_unit_test(test_attach_netns_needs_tunnel),
		cmocka_unit_test(test_attach_tunnel_name),
		cmocka_unit_test(test_attach_tunnel_name_kernel_rules),
		cmocka_unit_test(test_limit_cgroup),
		cmocka_unit_test(test_limit_gateway),
		cmocka_unit_test(test_limit_allow),
		cmocka_unit_test(test_limit_dns),
		cmocka_unit_test(test_duplicate_single_flags),
		cmocka_unit_test(test_error_message_truncated),
		cmocka_unit_test(test_attach_containers),
		cmocka_unit_test(test_attach_tunnel_container),
		cmocka_unit_test(test_attach_remedy),
		cmocka_unit_test(test_limit_cgroups_and_containers),
		cmocka_unit_test(test_scan),
		cmocka_unit_test(test_attach_steering),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
