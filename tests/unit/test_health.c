// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of user/agent/health.c: reading IP-echo and gluetun answers (good,
 * malformed, hostile), and the open/close decisions of docs/design.md's
 * state machine as the agent drives it.
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

#include "health.h"
#include "policy.h"

static void expect_ip(const char *body, const char *want)
{
	struct vg_addr a, w;

	if (vg_parse_ip_answer(body, strlen(body), &a))
		fail_msg("refused: '%s'", body);
	assert_int_equal(vg_parse_addr(want, &w), 0);
	assert_memory_equal(&a, &w, sizeof(a));
}

static void test_ip_answers(void **state)
{
	(void)state;
	expect_ip("203.0.113.9", "203.0.113.9");
	expect_ip("203.0.113.9\n", "203.0.113.9");
	expect_ip("  \t203.0.113.9\r\n", "203.0.113.9");
	expect_ip("2001:db8::9\n", "2001:db8::9");
	expect_ip("{\"public_ip\":\"10.66.0.2\",\"region\":\"x\"}", "10.66.0.2");
	expect_ip("{\"ip\": \"198.51.100.4\"}\n", "198.51.100.4");
	expect_ip("{ \"public_ip\" : \" 10.66.0.2 \" }", "10.66.0.2");
}

static void test_ip_answers_refused(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"", "\n", "not an ip", "203.0.113", "203.0.113.9.1", "203.0.113.9/32",
		"203.0.113.9 198.51.100.1", "<html>203.0.113.9</html>", "{}", "[\"203.0.113.9\"]",
		"{\"public_ip\": 203}", "{\"public_ip\": null}", "{\"public_ip\": \"\"}",
		"{\"address\": \"203.0.113.9\"}", "{\"public_ip\": \"203.0.113.9\"", "{\"ip\":\"a\"}",
		"{\"ip\": \"203.0.113.9\"} trailing", "{\"ip\": \"203.0.113.9\"}{\"ip\": \"1.2.3.4\"}",
		"\"203.0.113.9\"",
	};
	struct vg_addr a;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vg_parse_ip_answer(bad[i], strlen(bad[i]), &a) != -EINVAL)
			fail_msg("accepted: '%s'", bad[i]);
	/* Embedded NUL: the length is what was received, not strlen. */
	assert_int_equal(vg_parse_ip_answer("203.0.113.9\0" "1", 13, &a), -EINVAL);
	/* Longer than any answer should be. */
	char big[5000];

	memset(big, ' ', sizeof(big));
	memcpy(big + 4000, "203.0.113.9", 11);
	assert_int_equal(vg_parse_ip_answer(big, sizeof(big), &a), -EINVAL);
}

static void test_gluetun_status(void **state)
{
	(void)state;
	char st[32];
	static const char *const bad[] = {
		"", "running", "{}", "{\"status\": 1}", "{\"status\": \"\"}", "{\"state\":\"running\"}",
		"{\"status\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
	};

	assert_int_equal(vg_parse_gluetun_status("{\"status\":\"running\"}", 20, st, sizeof(st)), 0);
	assert_string_equal(st, "running");
	assert_int_equal(vg_parse_gluetun_status("{\"status\": \"stopped\"}\n", 22, st, sizeof(st)), 0);
	assert_string_equal(st, "stopped");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vg_parse_gluetun_status(bad[i], strlen(bad[i]), st, sizeof(st)) != -EINVAL)
			fail_msg("accepted: '%s'", bad[i]);
}

static struct vg_health_cfg cfg_of(char **argv_opts, int n)
{
	struct vg_options o = { .cmd = VG_CMD_ATTACH };
	struct vg_health_cfg c;
	char err[256];

	for (int i = 0; i < n; i += 2)
		assert_int_equal(vg_option_set(&o, VG_CMD_ATTACH, argv_opts[i], argv_opts[i + 1], err,
					       sizeof(err)), 0);
	assert_int_equal(vg_health_cfg_build(&o, &c, err, sizeof(err)), 0);
	return c;
}

#define CFG(...) cfg_of((char *[]){ __VA_ARGS__ }, sizeof((char *[]){ __VA_ARGS__ }) / sizeof(char *))

static void test_defaults(void **state)
{
	(void)state;
	struct vg_health_cfg c = CFG("--probe-url", "http://10.0.0.1/");

	assert_int_equal(c.interval_ms, 30000);
	assert_int_equal(c.timeout_ms, 10000);
	assert_int_equal(c.failures, 3);
	assert_int_equal(c.lease_ms, 90000);
	c = CFG("--probe-url", "http://10.0.0.1/", "--probe-interval", "2s");
	assert_int_equal(c.timeout_ms, 2000);
	assert_int_equal(c.lease_ms, 6000);
	c = CFG("--lease", "5m");
	assert_int_equal(c.lease_ms, 300000);
	assert_false(vg_health_probes(&c));
}

static void test_bad_addresses(void **state)
{
	(void)state;
	struct vg_options o = { .cmd = VG_CMD_ATTACH, .real_ips = { "10.0.0.256" }, .n_real_ips = 1 };
	struct vg_health_cfg c;
	char err[256];

	assert_int_equal(vg_health_cfg_build(&o, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--real-ip 10.0.0.256"));
	o = (struct vg_options){ .cmd = VG_CMD_ATTACH, .expect_ips = { "10.0.0.0/33" }, .n_expect_ips = 1 };
	assert_int_equal(vg_health_cfg_build(&o, &c, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--expect-ip 10.0.0.0/33"));
}

static struct vg_probe_result seen(const char *ip)
{
	struct vg_probe_result r = { .ip_ok = true };

	assert_int_equal(vg_parse_addr(ip, &r.seen), 0);
	return r;
}

static const struct vg_probe_result failed = { .error = "timeout" };

static void step(const struct vg_health_cfg *c, struct vg_health *h, struct vg_probe_result r,
		 enum vg_verdict want, const char *want_why, bool want_leak)
{
	enum vg_why why = VG_WHY_PROBE_PASSED;
	bool leak = !want_leak;

	assert_int_equal(vg_health_judge(c, h, &r, &why, &leak), want);
	assert_string_equal(vg_why_name(why), want_why);
	assert_int_equal(leak, want_leak);
}

static void test_judge_failures_then_recovery(void **state)
{
	(void)state;
	struct vg_health_cfg c = CFG("--probe-url", "http://10.0.0.1/", "--probe-failures", "3");
	struct vg_health h = { 0 };

	/* Starts closed; the first pass opens. */
	step(&c, &h, seen("10.66.0.2"), VG_OPEN, "probe_passed", false);
	step(&c, &h, seen("10.66.0.2"), VG_KEEP, "probe_passed", false);
	step(&c, &h, failed, VG_KEEP, "probe_failed", false);
	step(&c, &h, failed, VG_KEEP, "probe_failed", false);
	assert_int_equal(h.failed, 2);
	step(&c, &h, failed, VG_CLOSE, "probe_failed", false);
	step(&c, &h, failed, VG_KEEP, "probe_failed", false);
	step(&c, &h, seen("10.66.0.2"), VG_OPEN, "probe_passed", false);
	assert_int_equal(h.failed, 0);
	/* A pass in between starts the count again. */
	step(&c, &h, failed, VG_KEEP, "probe_failed", false);
	step(&c, &h, failed, VG_KEEP, "probe_failed", false);
	step(&c, &h, seen("10.66.0.2"), VG_KEEP, "probe_passed", false);
	step(&c, &h, failed, VG_KEEP, "probe_failed", false);
	assert_true(h.open);
}

static void test_judge_real_ip_closes_at_once(void **state)
{
	(void)state;
	struct vg_health_cfg c = CFG("--probe-url", "http://10.0.0.1/", "--real-ip", "10.99.0.1",
				     "--real-ip", "fd00:99::1");
	struct vg_health h = { .open = true };

	step(&c, &h, seen("10.99.0.1"), VG_CLOSE, "real_ip", true);
	step(&c, &h, seen("10.99.0.1"), VG_KEEP, "real_ip", true);
	step(&c, &h, seen("10.66.0.2"), VG_OPEN, "probe_passed", false);
	step(&c, &h, seen("fd00:99::1"), VG_CLOSE, "real_ip", true);
	/* The mapped form of a real IPv4 address is that address. */
	h.open = true;
	step(&c, &h, seen("::ffff:10.99.0.1"), VG_CLOSE, "real_ip", true);
}

static void test_judge_expect_ip(void **state)
{
	(void)state;
	struct vg_health_cfg c = CFG("--probe-url", "http://10.0.0.1/", "--expect-ip", "10.66.0.0/24",
				     "--expect-ip", "2001:db8:66::/48");
	struct vg_health h = { 0 };

	step(&c, &h, seen("10.66.0.200"), VG_OPEN, "probe_passed", false);
	step(&c, &h, seen("2001:db8:66:1::5"), VG_KEEP, "probe_passed", false);
	step(&c, &h, seen("10.67.0.1"), VG_CLOSE, "unexpected_ip", false);
	step(&c, &h, seen("2001:db8:67::1"), VG_KEEP, "unexpected_ip", false);
	step(&c, &h, seen("10.66.0.1"), VG_OPEN, "probe_passed", false);
}

static void test_judge_gluetun(void **state)
{
	(void)state;
	struct vg_health_cfg c = CFG("--gluetun-url", "http://127.0.0.1:8000", "--probe-failures", "2");
	struct vg_health h = { 0 };
	struct vg_probe_result running = { .gluetun_ok = true, .gluetun_status = "running" };
	struct vg_probe_result stopped = { .gluetun_ok = true, .gluetun_status = "stopped" };

	step(&c, &h, running, VG_OPEN, "probe_passed", false);
	step(&c, &h, stopped, VG_CLOSE, "gluetun_not_running", false);
	step(&c, &h, running, VG_OPEN, "probe_passed", false);
	step(&c, &h, failed, VG_KEEP, "probe_failed", false);
	step(&c, &h, failed, VG_CLOSE, "probe_failed", false);

	/* Both signals: the IP probe passing does not hide gluetun's word. */
	c = CFG("--probe-url", "http://10.0.0.1/", "--gluetun-url", "http://127.0.0.1:8000");
	h = (struct vg_health){ .open = true };
	struct vg_probe_result both = seen("10.66.0.2");

	both.gluetun_ok = true;
	strcpy(both.gluetun_status, "paused");
	step(&c, &h, both, VG_CLOSE, "gluetun_not_running", false);
	both = seen("10.66.0.2");
	step(&c, &h, both, VG_KEEP, "probe_failed", false);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ip_answers),
		cmocka_unit_test(test_ip_answers_refused),
		cmocka_unit_test(test_gluetun_status),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_judge_failures_then_recovery),
		cmocka_unit_test(test_judge_real_ip_closes_at_once),
		cmocka_unit_test(test_judge_expect_ip),
		cmocka_unit_test(test_judge_gluetun),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
