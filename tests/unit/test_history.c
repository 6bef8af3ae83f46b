// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the agent's history slots (user/agent/history_slots.c): a
 * guard whose container restarts (a new cgroup id each time) keeps its
 * history, and neither restarts nor guards that come and go use up the slots;
 * a time without the tunnel is not open, whatever the probes said before it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>
#include <string.h>
#include <json-c/json.h>

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

static void assert_last(const struct history *h, int64_t at, bool open, const char *why)
{
	const struct history_change *c = history_last(h);

	assert_non_null(c);
	assert_int_equal(c->time_ns, at);
	assert_int_equal(c->open, open);
	if (why)
		assert_string_equal(c->why, why);
	else
		assert_null(c->why);
}

/* Open by the probes, then the tunnel is deleted: the kernel denies everything from then on. */
static void test_tunnel_down_is_not_open(void **state)
{
	struct history h = { 0 };

	(void)state;
	history_change(&h, 10, true, "probe_passed");
	history_tunnel(&h, 11, true);
	assert_int_equal(h.n, 1);
	history_tunnel(&h, 20, false);
	assert_int_equal(h.n, 2);
	assert_last(&h, 20, false, "tunnel_down");
	/* The probes fail without the tunnel: still the same closed time, not a new one. */
	history_change(&h, 23, false, "probe_failed");
	history_tunnel(&h, 24, false);
	assert_int_equal(h.n, 2);
	/* Back, but the agent holds it closed until a probe passes: closed for the agent's cause. */
	history_tunnel(&h, 30, true);
	assert_int_equal(h.n, 3);
	assert_last(&h, 30, false, "probe_failed");
	history_change(&h, 31, true, "probe_passed");
	assert_last(&h, 31, true, "probe_passed");
	/* An unprobed guard (open by its lease alone) opens again with its tunnel. */
	history_tunnel(&h, 40, false);
	history_change(&h, 41, true, NULL);
	history_tunnel(&h, 42, true);
	assert_int_equal(h.n, 6);
	assert_last(&h, 42, true, "tunnel_up");
}

/* The watch saw the tunnel missing before the agent's first state: that state is not open. */
static void test_tunnel_missing_before_the_first_state(void **state)
{
	struct history h = { 0 };

	(void)state;
	history_tunnel(&h, 1, false);
	assert_null(history_last(&h));
	history_change(&h, 2, true, NULL);
	assert_int_equal(h.n, 1);
	assert_last(&h, 2, false, "tunnel_down");
}

/* /api/v1/status's timeline: the tunnel's time is closed (why tunnel_down), then open again. */
static void test_timeline_shows_tunnel_down_closed(void **state)
{
	const int64_t s = 1000000000LL, now = 1800000000LL * s;
	struct history h = { 0 };
	struct json_object *tl, *e;

	(void)state;
	history_change(&h, now - 2 * 86400 * s, true, "probe_passed");
	history_tunnel(&h, now - 600 * s, false);
	history_tunnel(&h, now - 60 * s, true);
	tl = history_timeline_json(&h, now);
	assert_int_equal(json_object_array_length(tl), 3);
	e = json_object_array_get_idx(tl, 0);
	/* The state at the window's start, dated at the start. */
	assert_string_equal(json_object_get_string(json_object_object_get(e, "state")), "open");
	e = json_object_array_get_idx(tl, 1);
	assert_string_equal(json_object_get_string(json_object_object_get(e, "state")), "closed");
	assert_string_equal(json_object_get_string(json_object_object_get(e, "why")), "tunnel_down");
	e = json_object_array_get_idx(tl, 2);
	assert_string_equal(json_object_get_string(json_object_object_get(e, "state")), "open");
	assert_string_equal(json_object_get_string(json_object_object_get(e, "why")), "tunnel_up");
	json_object_put(tl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_restarted_container_keeps_history),
		cmocka_unit_test(test_guards_that_left_free_their_slots),
		cmocka_unit_test(test_change_ring),
		cmocka_unit_test(test_tunnel_down_is_not_open),
		cmocka_unit_test(test_tunnel_missing_before_the_first_state),
		cmocka_unit_test(test_timeline_shows_tunnel_down_closed),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
