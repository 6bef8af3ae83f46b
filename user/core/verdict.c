// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "event_fmt.h"
#include "verdict.h"

static bool flag(struct json_object *g, const char *key, bool dflt)
{
	struct json_object *v;

	return json_object_object_get_ex(g, key, &v) && v ? json_object_get_boolean(v) : dflt;
}

#define CLOSED "closed: "

/* One more cause of a closed guard, after CLOSED or a comma. */
static void add(char *buf, size_t len, size_t *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t len, size_t *n, const char *fmt, ...)
{
	va_list ap;

	if (*n > strlen(CLOSED) && *n < len)
		*n += snprintf(buf + *n, len - *n, ", ");
	if (*n >= len)
		return;
	va_start(ap, fmt);
	*n += vsnprintf(buf + *n, len - *n, fmt, ap);
	va_end(ap);
}

bool vg_guard_verdict(struct json_object *g, char *why, size_t len)
{
	const char *state = vg_json_str(g, "state"), *mode = vg_json_str(g, "mode");
	const char *tunnel = vg_json_str(g, "tunnel") ?: "?";
	bool tunnel_mode = mode && !strcmp(mode, "tunnel");
	struct json_object *lease;
	size_t n;

	n = snprintf(why, len, CLOSED);
	if (!flag(g, "cgroup_present", true))
		add(why, len, &n, "cgroup gone");
	/* status says closed for a lease run out (the programs deny then): a lease of 0 s left is why. */
	if (json_object_object_get_ex(g, "lease_left_s", &lease) && lease &&
	    json_object_get_double(lease) <= 0)
		add(why, len, &n, "lease run out");
	else if (!state || strcmp(state, "open"))
		add(why, len, &n, "state closed");
	if (tunnel_mode && !flag(g, "netns_present", true))
		add(why, len, &n, "tunnel namespace gone");
	else if (tunnel_mode && !flag(g, "tunnel_present", false))
		add(why, len, &n, "tunnel %s missing", tunnel);
	if (n > strlen(CLOSED))
		return false;
	if (tunnel_mode)
		snprintf(why, len, "open: tunnel %s present", tunnel);
	else
		snprintf(why, len, "open: gateway mode");
	return true;
}

struct json_object *vg_status_guard(struct json_object *root, uint64_t id)
{
	struct json_object *guards, *g, *v;

	if (!json_object_object_get_ex(root, "guards", &guards))
		return NULL;
	for (size_t i = 0; i < json_object_array_length(guards); i++) {
		g = json_object_array_get_idx(guards, i);
		if (json_object_object_get_ex(g, "cgroup_id", &v) && json_object_get_uint64(v) == id)
			return g;
	}
	return NULL;
}
