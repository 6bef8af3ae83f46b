// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the --allow coverage rule (user/core/policy.c):
 * an allow set whose union holds every public IPv4 address, or every public
 * IPv6 address (2000::/3), lets the guard's traffic leave outside the tunnel
 * when the tunnel is gone. Such sets are refused, whatever prefixes make them.
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

#include "policy.h"

#define MAX_WORDS VG_MAX_ALLOW

struct allow_case {
	const char *words[MAX_WORDS + 1];  /* NULL-terminated */
	const char *why;                   /* NULL: accepted; else a word of the message */
	const char *names[MAX_WORDS + 1];  /* the allows the message must name */
};

static int build(const struct allow_case *t, char *err, size_t errlen)
{
	struct vg_options o;
	struct vg_policy p;

	memset(&o, 0, sizeof(o));
	o.tunnel = "wg0";
	for (int i = 0; t->words[i]; i++)
		o.allows[o.n_allows++] = t->words[i];
	err[0] = 0;
	return vg_policy_build(&o, &p, err, errlen);
}

static void run_table(const struct allow_case *t, size_t n)
{
	char err[1024];

	for (size_t i = 0; i < n; i++) {
		int rc = build(&t[i], err, sizeof(err));

		if (!t[i].why) {
			if (rc)
				fail_msg("case %zu (%s ...) refused: %s", i, t[i].words[0], err);
			continue;
		}
		if (rc != -EINVAL)
			fail_msg("case %zu (%s ...) accepted", i, t[i].words[0]);
		if (!strstr(err, t[i].why) || strncmp(err, "--allow ", 8))
			fail_msg("case %zu: message '%s' does not start with --allow or say '%s'", i, err, t[i].why);
		for (int k = 0; t[i].names[k]; k++)
			if (!strstr(err, t[i].names[k]))
				fail_msg("case %zu: message '%s' does not name %s", i, err, t[i].names[k]);
	}
}

#define V4 "every public IPv4 address"
#define V6 "every public IPv6 address"

static void test_cover_ipv4(void **state)
{
	(void)state;
	static const struct allow_case t[] = {
		{ { "0.0.0.0/0" }, V4, { "0.0.0.0/0" } },
		{ { "10.1.2.3/0" }, V4, { "10.1.2.3/0" } },        /* host bits dropped: still /0 */
		{ { "0.0.0.0/1", "128.0.0.0/1" }, V4, { "0.0.0.0/1", "128.0.0.0/1" } },
		{ { "128.0.0.0/1", "0.0.0.0/1" }, V4, { "0.0.0.0/1", "128.0.0.0/1" } },
		{ { "0.0.0.0/2", "64.0.0.0/2", "128.0.0.0/1" }, V4, { "0.0.0.0/2", "64.0.0.0/2" } },
		/* Overlaps and a LAN beside them: the message names what covers, not the LAN. */
		{ { "192.168.1.0/24", "0.0.0.0/1", "0.0.0.0/2", "128.0.0.0/1" }, V4, { "0.0.0.0/1", "128.0.0.0/1" } },
		/* Sixteen /4s: the whole space in the most words one guard may have. */
		{ { "0.0.0.0/4", "16.0.0.0/4", "32.0.0.0/4", "48.0.0.0/4", "64.0.0.0/4", "80.0.0.0/4",
		    "96.0.0.0/4", "112.0.0.0/4", "128.0.0.0/4", "144.0.0.0/4", "160.0.0.0/4", "176.0.0.0/4",
		    "192.0.0.0/4", "208.0.0.0/4", "224.0.0.0/4", "240.0.0.0/4" }, V4, { "112.0.0.0/4" } },
		/* Multicast and reserved (224/3) are no Internet: all the rest is all of it. */
		{ { "0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/3" }, V4, { "192.0.0.0/3" } },
		/* So is everything but a private range. */
		{ { "0.0.0.0/5", "8.0.0.0/7", "11.0.0.0/8", "12.0.0.0/6", "16.0.0.0/4", "32.0.0.0/3",
		    "64.0.0.0/2", "128.0.0.0/1" }, V4, { "11.0.0.0/8", "128.0.0.0/1" } },
		/* Everything but a public /8 is not everything. */
		{ { "0.0.0.0/5", "9.0.0.0/8", "10.0.0.0/7", "12.0.0.0/6", "16.0.0.0/4", "32.0.0.0/3",
		    "64.0.0.0/2", "128.0.0.0/1" }, NULL, { NULL } },
		/* IPv4 written the IPv6 way is the same block. */
		{ { "::ffff:0:0/96" }, V4, { "::ffff:0:0/96" } },
		{ { "::ffff:0.0.0.0/97", "128.0.0.0/1" }, V4, { "::ffff:0.0.0.0/97", "128.0.0.0/1" } },
		/* Short IPv6 prefixes hold ::ffff:0:0/96. */
		{ { "::/64" }, V4, { "::/64" } },
		{ { "::/80" }, V4, { "::/80" } },
		/* Half, or all but one public /8: not everything. */
		{ { "0.0.0.0/1" }, NULL, { NULL } },
		{ { "0.0.0.0/1", "128.0.0.0/2", "192.0.0.0/4" }, NULL, { NULL } },
		{ { "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10" }, NULL, { NULL } },
		{ { "0.0.0.0/2", "128.0.0.0/1" }, NULL, { NULL } },
	};

	run_table(t, sizeof(t) / sizeof(t[0]));
}

static void test_cover_ipv6(void **state)
{
	(void)state;
	static const struct allow_case t[] = {
		{ { "2000::/3" }, V6, { "2000::/3" } },
		{ { "2000::/4", "3000::/4" }, V6, { "2000::/4", "3000::/4" } },
		{ { "3000::/4", "2000::/5", "2800::/5" }, V6, { "2000::/5", "2800::/5", "3000::/4" } },
		/* Host bits dropped: this is ::/2, which holds ::ffff:0:0/96 too. */
		{ { "2000::/2" }, "every public", { "2000::/2" } },
		{ { "3fff::/3" }, V6, { "3fff::/3" } },
		{ { "::/1" }, "every public", { "::/1" } },
		/* ::/0 holds both families: refused, naming it. */
		{ { "::/0" }, "every public", { "::/0" } },
		{ { "fd00::/8", "2000::/4", "3000::/4" }, V6, { "2000::/4", "3000::/4" } },
		{ { "2000::/4", "3000::/5", "3800::/6" }, NULL, { NULL } },
		{ { "2000::/4" }, NULL, { NULL } },
		{ { "2000::/4", "3000::/5" }, NULL, { NULL } },
		{ { "fd00::/8", "fe80::/10", "4000::/2" }, NULL, { NULL } },
		{ { "2001:db8::/32" }, NULL, { NULL } },
	};

	run_table(t, sizeof(t) / sizeof(t[0]));
}

/* The union check stands alone too: a target and a set of prefixes. */
static void test_cover_function(void **state)
{
	(void)state;
	struct vg_cidr set[3], target;

	assert_int_equal(vg_parse_cidr("10.0.0.0/8", &target), 0);
	assert_int_equal(vg_parse_cidr("10.0.0.0/9", &set[0]), 0);
	assert_false(vg_cidrs_cover(set, 1, &target));
	assert_int_equal(vg_parse_cidr("10.128.0.0/9", &set[1]), 0);
	assert_true(vg_cidrs_cover(set, 2, &target));
	assert_int_equal(vg_parse_cidr("10.1.2.3/32", &target), 0);
	assert_true(vg_cidrs_cover(set, 2, &target));
	assert_int_equal(vg_parse_cidr("11.0.0.0/8", &target), 0);
	assert_false(vg_cidrs_cover(set, 2, &target));
	assert_false(vg_cidrs_cover(set, 0, &target));
	/* A host route covers only itself. */
	assert_int_equal(vg_parse_cidr("fd00::1/128", &set[2]), 0);
	assert_int_equal(vg_parse_cidr("fd00::1", &target), 0);
	assert_true(vg_cidrs_cover(&set[2], 1, &target));
	assert_int_equal(vg_parse_cidr("fd00::/127", &target), 0);
	assert_false(vg_cidrs_cover(&set[2], 1, &target));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cover_ipv4),
		cmocka_unit_test(test_cover_ipv6),
		cmocka_unit_test(test_cover_function),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
