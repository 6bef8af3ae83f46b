// SPDX-License-Identifier: GPL-2.0
/*
 * Event records: a raw struct vg_event as the ring buffer hands it (the
 * first bytes; the rest is the guard's cgroup path), and any log line read
 * back as JSON. Every human line is inert (fuzz_assert_inert), at every
 * buffer size the first byte picks.
 */
#include <stddef.h>
#include <stdint.h>
#include "event_fmt.h"
#include "fuzz.h"

static void check_line(struct json_object *rec, size_t small)
{
	char line[1024], cut[1024];

	vg_record_to_line(rec, line, sizeof(line));
	fuzz_assert_inert(line);
	vg_record_to_line(rec, cut, small);
	FUZZ_CHECK(strlen(cut) < small && !strncmp(cut, line, strlen(cut)), "cut '%s' of '%s'", cut, line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t small = size ? data[0] % 200 + 1 : 1;
	struct json_tokener *tok = json_tokener_new();
	struct json_object *rec;

	if (size >= sizeof(struct vg_event) + sizeof(int64_t)) {
		struct vg_event e;
		int64_t boot_to_real;
		char *cgroup = fuzz_string(data + sizeof(e) + sizeof(boot_to_real),
					   size - sizeof(e) - sizeof(boot_to_real));

		memcpy(&e, data, sizeof(e));
		memcpy(&boot_to_real, data + sizeof(e), sizeof(boot_to_real));
		rec = vg_event_to_json(&e, boot_to_real, cgroup);
		check_line(rec, small);
		json_object_put(rec);
		free(cgroup);
	}
	rec = tok ? json_tokener_parse_ex(tok, (const char *)data, (int)size) : NULL;
	if (rec)
		check_line(rec, small);
	json_object_put(rec);
	json_tokener_free(tok);
	return 0;
}
