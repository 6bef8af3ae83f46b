// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of what vg_parse_args makes of each word:
 * every address, CIDR and gateway is judged while parsing, so a bad one is a
 * usage error for anyone, before the caller asks for root; a value that is
 * an option's name is an error, not taken as a value nor as the option; a
 * number too large for its field is refused, not wrapped.
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
#include "config.h"

#define ERRLEN 512
#define ARGV(...) ((char *[]){ "vpnguard-bpf", __VA_ARGS__, NULL })
#define BASE "attach", "--cgroup", "/a", "--tunnel", "wg0"
#define PROBED BASE, "--probe-url", "https://10.64.0.1/ip"

static void expect_refused(char **argv, const char *want1, const char *want2)
{
	struct vg_options o;
	char err[ERRLEN] = "";
	int argc = 0, r;

	while (argv[argc])
		argc++;
	r = vg_parse_args(argc, argv, &o, err, sizeof(err));
	if (r != -EINVAL) {
		char words[512] = "";

		for (int i = 1; i < argc; i++)
			snprintf(words + strlen(words), sizeof(words) - strlen(words), " %s", argv[i]);
		fail_msg("accepted (%d):%s", r, words);
	}
	if (!strstr(err, want1) || (want2 && !strstr(err, want2)))
		fail_msg("message '%s' does not say '%s' and '%s'", err, want1, want2 ? want2 : "");
}

static void test_bad_words(void **state)
{
	(void)state;
	expect_refused(ARGV(BASE, "--allow", "10.0.0.0/33"), "--allow 10.0.0.0/33", "not a CIDR");
	expect_refused(ARGV(BASE, "--allow", "lan"), "--allow lan", "not a CIDR");
	expect_refused(ARGV(BASE, "--allow", "0.0.0.0/0"), "--allow 0.0.0.0/0", "every public IPv4");
	expect_refused(ARGV(BASE, "--dns", "1.1.1"), "--dns 1.1.1", "not an IP address");
	expect_refused(ARGV("attach", "--cgroup", "/a", "--gateway", "10.0.0.1:0"),
		       "--gateway 10.0.0.1:0", NULL);
	expect_refused(ARGV(PROBED, "--real-ip", "203.0.113"), "--real-ip 203.0.113", NULL);
	expect_refused(ARGV(PROBED, "--expect-ip", "10.0.0.0/99"), "--expect-ip 10.0.0.0/99", NULL);
	/* A bad word is named even when a rule between options is broken too. */
	expect_refused(ARGV("attach", "--allow", "10.0.0.0/33"), "not a CIDR", NULL);
}

/* The config file's keys go through the same check: the message names the line of the key. */
static void test_bad_words_in_config(void **state)
{
	(void)state;
	static const char text[] = "[guard g]\ncgroup = /a\ntunnel = wg0\nallow = 10.0.0.0/33\n";
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	struct vg_config c;
	char err[ERRLEN] = "";

	assert_non_null(f);
	assert_int_equal(vg_config_read(f, "vg.conf", &c, err, sizeof(err)), -EINVAL);
	fclose(f);
	if (strncmp(err, "vg.conf:4: [guard g]: --allow 10.0.0.0/33", 41) || !strstr(err, "not a CIDR"))
		fail_msg("message '%s'", err);
}

/* A flag's name where a value belongs: the user forgot the value. */
static void test_flag_as_value(void **state)
{
	(void)state;
	expect_refused(ARGV(BASE, "--log", "--no-agent"), "--log", "--no-agent");
	expect_refused(ARGV(BASE, "--allow", "--dns", "10.0.0.1"), "--allow", "--dns");
	expect_refused(ARGV("attach", "--cgroup", "--tunnel", "wg0"), "--cgroup", "--tunnel");
	expect_refused(ARGV(BASE, "--log", "--help"), "--log", "--help");
	expect_refused(ARGV(BASE, "--config", "--version"), "--config", "--version");
	/* A word no flag has, but shaped like one: a typo of a flag, not a path. */
	expect_refused(ARGV(BASE, "--log", "--no-agnet"), "--log", "--no-agnet");
	expect_refused(ARGV("detach", "--cgroup", "--json"), "--cgroup", "--json");
}

static void test_numbers_overflow(void **state)
{
	(void)state;
	static const char *const failures[] = {
		"4294967297", "4294967296", "18446744073709551617", "99999999999999999999999", "101",
	};
	static const char *const durations[] = {
		"4294967297ms", "4294967297", "18446744073709551617s", "99999999999999999999999h", "25h",
		"86400001ms",
	};
	static const char *const ids[] = { "4294967296", "0x100000000", "18446744073709551617" };

	for (size_t i = 0; i < sizeof(failures) / sizeof(failures[0]); i++)
		expect_refused(ARGV(PROBED, "--probe-failures", (char *)failures[i]), "--probe-failures", NULL);
	for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		expect_refused(ARGV(PROBED, "--probe-interval", (char *)durations[i]), "--probe-interval", NULL);
		expect_refused(ARGV(BASE, "--lease", (char *)durations[i]), "--lease", NULL);
	}
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		expect_refused(ARGV(BASE, "--fwmark", (char *)ids[i]), "--fwmark", NULL);
		expect_refused(ARGV(BASE, "--route-table", (char *)ids[i]), "--route-table", NULL);
	}
}

static void test_good_words(void **state)
{
	(void)state;
	char *argv[] = { "vpnguard-bpf", PROBED, "--allow", "192.168.1.0/24", "--allow", "fd00::/8",
			 "--dns", "10.64.0.1", "--real-ip", "203.0.113.7", "--expect-ip", "10.64.0.0/10",
			 "--probe-failures", "100", "--lease", "24h", "--fwmark", "0xffffffff", NULL };
	struct vg_options o;
	char err[ERRLEN] = "";

	if (vg_parse_args(sizeof(argv) / sizeof(argv[0]) - 1, argv, &o, err, sizeof(err)))
		fail_msg("refused: %s", err);
	assert_int_equal(o.probe_failures, 100);
	assert_int_equal(o.lease_ms, 86400000);
	assert_true(o.fwmark == 0xffffffffu);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_words),
		cmocka_unit_test(test_bad_words_in_config),
		cmocka_unit_test(test_flag_as_value),
		cmocka_unit_test(test_numbers_overflow),
		cmocka_unit_test(test_good_words),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
