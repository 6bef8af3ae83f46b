// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the agent's history slots (user/agent/history_slots.c): a
 * guard whose container restarts (a new cgroup id each time) keeps its
 * history, and neither restarts nor guards that come and go use up the slots.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#include "history.h"

#define ROUNDS 300

static void test_restarted_container_keeps_history(void **state)
{
	struct history *slots = calloc(HISTORY_SLOTS, sizeof(*slots));
	struct vg_cgroup *cg = calloc(1, sizeof(*cg));
	struct vg_guard_spec spec = { .name = "web", .cgroups = cg, .n_cgroups = 1 };

	(void)state;
	assert_non_null(slots);
	assert_non_null(cg);
	for (int r = 0; r < ROUNDS; r++) {
		struct history *h;

		/* The container started again: same guard, new cgroup. */
		cg->id = 1000 + r;
		h = history_slot(slots, &spec, true);
		assert_non_null(h);
		assert_int_equal(h->n, r < HISTORY_CHANGES ? r : HISTORY_CHANGES);
		history_change(h, r, r % 2, NULL);
		assert_ptr_equal(history_slot(slots, &spec, false), h);
	}
	free(cg);
	free(slots);
}

/* Each reload a guard leaves the set and a new one comes; "web" stays throughout. */
static void test_guards_that_left_free_their_slots(void **state)
{
	struct history *slots = calloc(HISTORY_SLOTS, sizeof(*slots));
	struct vg_cgroup *cg = calloc(1, sizeof(*cg));
	struct vg_guard_spec set[2] = {
		{ .name = "web", .cgroups = cg, .n_cgroups = 1 },
		{ .cgroups = cg, .n_cgroups = 1 },
	};
	char name[32], before[32] = "";

	(void)state;
	assert_non_null(slots);
	assert_non_null(cg);
	history_change(history_slot(slots, &set[0], true), 0, true, NULL);
	for (int r = 0; r < ROUNDS; r++) {
		struct history *h;

		snprintf(name, sizeof(name), "guard %d", r);
		set[1].name = name;
		history_keep(slots, set, 2);
		if (before[0]) {
			set[1].name = before;
			assert_null(history_slot(slots, &set[1], false));
			set[1].name = name;
		}
		h = history_slot(slots, &set[1], true);
		assert_non_null(h);
		assert_int_equal(h->n, 0);
		history_change(h, r, true, NULL);
		assert_int_equal(history_slot(slots, &set[0], false)->n, 1);
		snprintf(before, sizeof(before), "%s", name);
	}
	history_keep(slots, set, 0);
	for (int i = 0; i < HISTORY_SLOTS; i++)
		assert_int_equal(slots[i].name[0], 0);
	free(cg);
	free(slots);
}

static void test_change_ring(void **state)
{
	struct history h = { 0 };

	(void)state;
	assert_null(history_last(&h));
	history_change(&h, 1, true, "probe_passed");
	history_change(&h, 2, true, "probe_passed");
	assert_int_equal(h.n, 1);
	for (int i = 0; i < 2 * HISTORY_CHANGES; i++)
		history_change(&h, 3 + i, i % 2, NULL);
	assert_int_equal(h.n, HISTORY_CHANGES);
	assert_int_equal(history_last(&h)->time_ns, 2 + 2 * HISTORY_CHANGES);
	assert_int_equal(h.changes[h.head].time_ns, 3 + HISTORY_CHANGES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restarted_container_keeps_history),
		cmocka_unit_test(test_guards_that_left_free_their_slots),
		cmocka_unit_test(test_change_ring),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
