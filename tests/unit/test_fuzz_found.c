// SPDX-License-Identifier: GPL-2.0
/*
 * What the fuzzers (tests/fuzz) found, as unit tests, so the cases stay
 * checked where clang's fuzzer is not installed. Each names its corpus file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "event_fmt.h"

/*
 * event/regress-time-overflow: a record's boot time plus the boot-to-wall
 * offset passed INT64_MAX (undefined behaviour in C); any sum gives a time.
 */
static void test_event_time_overflow(void **state)
{
	(void)state;
	struct vg_event e;
	struct json_object *rec;
	const char *t;

	memset(&e, 0, sizeof(e));
	e.time_ns = 4189022124003041915ULL;
	rec = vg_event_to_json(&e, 8315385934991535906LL, NULL);
	t = vg_json_str(rec, "time");
	assert_non_null(t);
	assert_int_equal(strlen(t), strlen("2026-11-22T10:00:00.000Z"));
	json_object_put(rec);
}

/* Found beside it: before 1970 (a wall clock set wrong) the milliseconds went negative. */
static void test_format_time_before_1970(void **state)
{
	(void)state;
	char buf[64];

	vg_format_time(-1500000, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59.998Z");
	vg_format_time(-1, buf, sizeof(buf));
	assert_string_equal(buf, "1969-12-31T23:59:59.999Z");
	vg_format_time(INT64_MIN, buf, sizeof(buf));
	assert_string_equal(buf, "1677-09-21T00:12:43.145Z");
	vg_format_time(INT64_MAX, buf, sizeof(buf));
	assert_string_equal(buf, "2262-04-11T23:47:16.854Z");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_event_time_overflow),
		cmocka_unit_test(test_format_time_before_1970),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
