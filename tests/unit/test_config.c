// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the config file (user/cli/config.c, libinih): good files give the
 * same options as the command line; a bad file is refused with its name, the
 * line and the reason, and leaves nothing behind.
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

#include "config.h"

static int read_text(const char *text, struct vg_config *c, char *err, size_t errlen)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int rc;

	assert_non_null(f);
	err[0] = 0;
	rc = vg_config_read(f, "vg.conf", c, err, errlen);
	fclose(f);
	return rc;
}

/* The file is refused; the message starts with "vg.conf:LINE:" and names want. */
static void expect_refused(const char *text, int line, const char *want)
{
	struct vg_config c;
	char err[512], prefix[32];

	if (read_text(text, &c, err, sizeof(err)) != -EINVAL)
		fail_msg("accepted:\n%s", text);
	snprintf(prefix, sizeof(prefix), line ? "vg.conf:%d: " : "vg.conf: ", line);
	if (strncmp(err, prefix, strlen(prefix)))
		fail_msg("message '%s' does not start with '%s'", err, prefix);
	if (!strstr(err, want))
		fail_msg("message '%s' does not mention '%s'", err, want);
	assert_int_equal(c.n_guards, 0);
	assert_null(c.strings);
}

static void test_full_file(void **state)
{
	(void)state;
	static const char text[] =
		"# vpnguard\n"
		"[agent]\n"
		"log = /var/log/vg.jsonl\n"
		"webhook = https://ntfy.example/vpn\n"
		"\n"
		"[guard torrent]\n"
		"cgroup = /sys/fs/cgroup/vpnguard.slice\n"
		"cgroup = /sys/fs/cgroup/other.slice ; inline comment\n"
		"tunnel = wg0\n"
		"netns = /run/netns/vpn\n"
		"allow = 192.168.1.0/24\n"
		"allow = 172.18.0.0/16\n"
		"dns = 10.64.0.1\n"
		"probe-url = https://10.64.0.1/ip?format=text&x=1\n"
		"probe-interval = 10s\n"
		"probe-failures = 2\n"
		"real-ip = 192.0.2.7\n"
		"expect-ip = 10.64.0.0/10\n"
		"lease = 1m\n"
		"\n"
		"on-closed = pause\n"
		"\n"
		"[guard proxy]\n"
		"cgroup = /sys/fs/cgroup/proxy.slice\n"
		"gateway = 172.20.0.2:1080\n"
		"restart-dependents = no\n";
	struct vg_config c;
	char err[512];

	assert_int_equal(read_text(text, &c, err, sizeof(err)), 0);
	assert_string_equal(c.log, "/var/log/vg.jsonl");
	assert_string_equal(c.webhook, "https://ntfy.example/vpn");
	assert_int_equal(c.n_guards, 2);
	assert_string_equal(c.guards[0].name, "torrent");
	assert_int_equal(c.guards[0].line, 7);
	const struct vg_options *o = &c.guards[0].o;

	assert_int_equal(o->cmd, VG_CMD_ATTACH);
	assert_int_equal(o->n_cgroups, 2);
	assert_string_equal(o->cgroups[1], "/sys/fs/cgroup/other.slice");
	assert_string_equal(o->tunnel, "wg0");
	assert_string_equal(o->netns, "/run/netns/vpn");
	assert_int_equal(o->n_allows, 2);
	assert_string_equal(o->dns[0], "10.64.0.1");
	assert_string_equal(o->probe_url, "https://10.64.0.1/ip?format=text&x=1");
	assert_int_equal(o->probe_interval_ms, 10000);
	assert_int_equal(o->probe_failures, 2);
	assert_string_equal(o->real_ips[0], "192.0.2.7");
	assert_string_equal(o->expect_ips[0], "10.64.0.0/10");
	assert_int_equal(o->lease_ms, 60000);
	assert_int_equal(o->on_closed, VG_ON_CLOSED_PAUSE);
	assert_string_equal(c.guards[1].name, "proxy");
	assert_false(c.guards[1].o.restart_dependents);
	assert_string_equal(c.guards[1].o.gateways[0], "172.20.0.2:1080");
	assert_null(c.guards[1].o.tunnel);
	vg_config_free(&c);
	assert_int_equal(c.n_guards, 0);
}

/* A URL longer than inih's default 200-character line. */
static void test_long_line(void **state)
{
	(void)state;
	char text[2048], url[1500];
	struct vg_config c;
	char err[512];

	memset(url, 'a', sizeof(url) - 1);
	url[sizeof(url) - 1] = 0;
	memcpy(url, "https://", 8);
	snprintf(text, sizeof(text), "[guard g]\ncgroup = /a\ntunnel = wg0\nprobe-url = %s\n", url);
	assert_int_equal(read_text(text, &c, err, sizeof(err)), 0);
	assert_string_equal(c.guards[0].o.probe_url, url);
	vg_config_free(&c);
	/* Lines after it keep their numbers. */
	strcat(text, "bogus = 1\n");
	expect_refused(text, 5, "bogus");
}

static void test_refused(void **state)
{
	(void)state;
#define G "[guard g]\ncgroup = /a\ntunnel = wg0\n"
	expect_refused("", 0, "no [guard NAME] section");
	expect_refused("[agent]\nlog = /x\n", 0, "no [guard NAME] section");
	expect_refused("cgroup = /a\n", 1, "outside a section");
	expect_refused("[gaurd g]\ncgroup = /a\n", 2, "unknown section [gaurd g]");
	expect_refused("[guard]\ncgroup = /a\n", 2, "needs a name");
	expect_refused("[guardx]\ncgroup = /a\n", 2, "unknown section");
	expect_refused(G "[guard g]\ncgroup = /b\n", 5, "[guard g] given twice");
	expect_refused(G "[guard h]\ncgroup = /b\ntunnel = wg0\n[guard g]\ncgroup = /c\n", 8, "given twice");
	expect_refused(G "tunnnel = wg1\n", 4, "unknown option '--tunnnel'");
	expect_refused(G "tunnel = wg1\n", 4, "--tunnel given twice");
	expect_refused(G "probe-interval = soon\n", 4, "not a duration");
	expect_refused(G "probe-failures = 0\n", 4, "--probe-failures");
	expect_refused(G "allow =\n", 4, "--allow needs a value");
	expect_refused(G "log = /x\n", 4, "'log' is not a guard option");
	expect_refused(G "webhook = http://x/\n", 4, "'webhook' is not a guard option");
	expect_refused(G "config = /x\n", 4, "not a guard option");
	expect_refused(G "no-agent = yes\n", 4, "not a guard option");
	expect_refused(G "json =\n", 4, "unknown option '--json'");
	expect_refused(G "restart-dependents = true\n", 4, "restart-dependents = true: yes or no");
	expect_refused(G "restart-dependents = yes\n", 2, "give --tunnel-container");
	expect_refused(G "on-closed = freeze\n", 4, "not pause, stop or none");
	expect_refused(G "just words\n", 4, "not a 'key = value' line");
	expect_refused(G "[unclosed\n", 4, "not a 'key = value' line");
	expect_refused("[agent]\nlogfile = /x\n" G, 2, "[agent]: unknown key 'logfile'");
	expect_refused("[agent]\nlog = /x\nlog = /y\n" G, 3, "log given twice");
	expect_refused("[agent]\nwebhook =\n" G, 2, "webhook needs a value");
	/* The rules between options, reported at the guard's first key. */
	expect_refused("[guard g]\n\ncgroup = /a\n", 3, "give either --tunnel or --gateway");
	expect_refused("[guard g]\ntunnel = wg0\n", 2, "--cgroup (or --container) is required");
	expect_refused("[guard g]\ncgroup = /a\ngateway = 10.0.0.1\nprobe-url = http://x/\n", 2, "--tunnel");
	expect_refused(G "real-ip = 192.0.2.7\n", 2, "give --probe-url");
	/* The first error wins, even when a later line is bad in another way. */
	expect_refused(G "bogus = 1\nnot a pair\n", 4, "bogus");
	expect_refused(G "not a pair\nbogus = 1\n", 4, "not a 'key = value' line");
#undef G
}

static void test_load_missing_file(void **state)
{
	(void)state;
	struct vg_config c;
	char err[512];

	assert_int_equal(vg_config_load("/nonexistent/vg.conf", &c, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/vg.conf"));
	assert_non_null(strstr(err, "No such file"));
}

/* The text of a file of the tree: what a checkout's modes are is not the config's business here. */
static int read_file(const char *path, struct vg_config *c, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	int rc;

	if (!f)
		fail_msg("%s: %s", path, strerror(errno));
	rc = vg_config_read(f, path, c, err, errlen);
	fclose(f);
	return rc;
}

/* The sample that `make install` ships must be a file the agent takes. */
static void test_shipped_sample(void **state)
{
	(void)state;
	struct vg_config c;
	char err[512];

	if (read_file("scripts/dist/vpnguard.conf", &c, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(c.n_guards, 1);
	assert_string_equal(c.guards[0].name, "torrent");
	assert_string_equal(c.log, "/var/log/vpnguard/events.jsonl");
	vg_config_free(&c);
}

/* Every example's config, as the examples/ README promises. */
static void test_example_configs(void **state)
{
	(void)state;
	static const char *const files[] = {
		"examples/t1-host-wireguard/vpnguard.conf",
		"examples/t2-gluetun/vpnguard.conf",
		"examples/t3-warp-proxy/vpnguard.conf",
	};
	struct vg_config c;
	char err[512];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (read_file(files[i], &c, err, sizeof(err)))
			fail_msg("%s", err);
		assert_true(c.n_guards >= 1);
		vg_config_free(&c);
	}
	/* [agent] docker-host is the default of the guards. */
	assert_int_equal(read_file("examples/t2-gluetun/vpnguard.conf", &c, err, sizeof(err)), 0);
	assert_string_equal(c.guards[0].o.docker_host, "unix:///var/run/docker.sock");
	assert_string_equal(c.guards[0].o.tunnel_container, "gluetun");
	/* What examples/README.md says T2 does on a gluetun restart. */
	assert_true(c.guards[0].o.restart_dependents);
	assert_int_equal(c.guards[0].o.on_closed, VG_ON_CLOSED_PAUSE);
	vg_config_free(&c);
	/* T1's on-closed is there commented out: the default, none. */
	assert_int_equal(read_file("examples/t1-host-wireguard/vpnguard.conf", &c, err, sizeof(err)), 0);
	assert_false(c.guards[0].o.restart_dependents);
	assert_int_equal(c.guards[0].o.on_closed, VG_ON_CLOSED_NONE);
	vg_config_free(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_load_missing_file),
		cmocka_unit_test(test_shipped_sample),
		cmocka_unit_test(test_example_configs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
