// SPDX-License-Identifier: GPL-2.0
/*
 * vg_text_escape and vg_url_redact on any bytes, at a buffer size the first
 * byte picks: inert output, and a cut is a prefix of the whole. A redacted
 * URL shows nothing of its query values (checked where the input has one
 * '?' and no '@' or '#', so where the query starts is plain).
 */
#include <stddef.h>
#include <stdint.h>
#include "event_fmt.h"
#include "fuzz.h"
#include "redact.h"

static void check(char *(*fn)(const char *, char *, size_t), const char *s, size_t small)
{
	char full[4096], cut[256];

	fn(s, full, sizeof(full));
	fuzz_assert_inert(full);
	fn(s, cut, small);
	FUZZ_CHECK(strlen(cut) < small && !strncmp(cut, full, strlen(cut)), "cut '%s' of '%s'", cut, full);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t small = size ? data[0] % 255 + 1 : 1;
	char *s = fuzz_string(data, size), out[4096];
	const char *q = strchr(s, '?');

	check(vg_text_escape, s, small);
	check(vg_url_redact, s, small);
	/* Short enough that the whole redacted form fits in out. */
	if (q && !strchr(q + 1, '?') && !strpbrk(s, "@#") && strlen(s) < 256) {
		const char *query = strchr(vg_url_redact(s, out, sizeof(out)), '?');

		FUZZ_CHECK(query, "'%s' lost its '?': '%s'", s, out);
		/* Keys hold no '=': each '=' of the shown query is followed by the marker, never the value. */
		for (const char *eq = strchr(query, '='); eq; eq = strchr(eq + 1, '='))
			FUZZ_CHECK(!strncmp(eq + 1, "<redacted>", 10), "'%s' shows '%s'", s, out);
	}
	free(s);
	return 0;
}
