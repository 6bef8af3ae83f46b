// SPDX-License-Identifier: GPL-2.0
/* Unit tests of user/agent/restart_budget.c: back-off and the hourly cap of restart-dependents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "restart_budget.h"

#define S 1000000000LL

/* A VPN that starts every step: when is each round allowed, and how many are taken? */
static const struct {
	const char *name;
	int64_t step;       /* the VPN starts this often */
	int64_t span;       /* for this long */
	int rounds;         /* rounds taken in the span */
} loops[] = {
	{ "every second for a minute: at once, +10, +20 (30 s), +40 (70 s) is past it", 1 * S, 60 * S, 3 },
	{ "every 5 s for 10 minutes: 0 10 30 70 150 310 s", 5 * S, 600 * S, 6 },
	{ "every 5 s for an hour: still 6 (the cap)", 5 * S, 3599 * S, 6 },
	{ "every 20 minutes for an hour: each at once", 1200 * S, 3599 * S, 3 },
};

static void test_loops(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(loops) / sizeof(loops[0]); i++) {
		struct vg_restart_budget b = { 0 };
		int taken = 0;

		for (int64_t t = 1000 * S; t < 1000 * S + loops[i].span; t += loops[i].step)
			if (vg_restart_next(&b, t) == t) {
				vg_restart_took(&b, t);
				taken++;
			}
		if (taken != loops[i].rounds)
			fail_msg("%s: %d rounds", loops[i].name, taken);
	}
}

static void test_gaps_and_window(void **state)
{
	struct vg_restart_budget b = { 0 };
	int64_t t0 = 50 * S;

	(void)state;
	assert_true(vg_restart_next(&b, t0) == t0);
	vg_restart_took(&b, t0);
	assert_true(vg_restart_next(&b, t0 + S) == t0 + 10 * S);
	vg_restart_took(&b, t0 + 10 * S);
	assert_true(vg_restart_next(&b, t0 + 11 * S) == t0 + 30 * S);
	assert_int_equal(vg_restart_count(&b, t0 + 11 * S), 2);
	/* An hour later the rounds are forgotten: the next is at once again. */
	assert_int_equal(vg_restart_count(&b, t0 + 3700 * S), 0);
	assert_true(vg_restart_next(&b, t0 + 3700 * S) == t0 + 3700 * S);
}

static void test_cap_waits_for_the_oldest(void **state)
{
	struct vg_restart_budget b = { 0 };
	int64_t t = 0;

	(void)state;
	for (int i = 0; i < VG_RESTART_CAP; i++) {
		t = vg_restart_next(&b, t);
		vg_restart_took(&b, t);
	}
	/* 0 10 30 70 150 310 s: the seventh waits for the first to leave the hour. */
	assert_true(t == 310 * S);
	assert_true(vg_restart_next(&b, t + S) == VG_RESTART_WINDOW_NS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_loops),
		cmocka_unit_test(test_gaps_and_window),
		cmocka_unit_test(test_cap_waits_for_the_oldest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
