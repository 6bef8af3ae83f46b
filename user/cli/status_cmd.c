// SPDX-License-Identifier: GPL-2.0
/* status: every guard as the kernel holds it, as JSON or lines for a person. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include "commands.h"
#include "event_fmt.h"
#include "status.h"

static const char *get(struct json_object *o, const char *key)
{
	return vg_json_str(o, key) ?: "-";
}

/* An array as "a, b, c", a scalar as itself; "-" when empty. */
static const char *joined(struct json_object *o, const char *key, char *buf, size_t len)
{
	struct json_object *v;
	size_t n = 0;

	if (!json_object_object_get_ex(o, key, &v) || !v)
		return "-";
	if (!json_object_is_type(v, json_type_array))
		return json_object_get_string(v);
	buf[0] = 0;
	for (size_t i = 0; i < json_object_array_length(v) && n < len; i++)
		n += snprintf(buf + n, len - n, "%s%s", i ? ", " : "",
			      json_object_get_string(json_object_array_get_idx(v, i)));
	return buf[0] ? buf : "-";
}

/* One line of text from the maps (cgroup and namespace names are anyone's), escaped. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	char raw[4096], line[4096 * 4];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	puts(vg_text_escape(raw, line, sizeof(line)));
}

static void print_guard(struct json_object *g)
{
	char a[1024], b[1024], denied[1024] = "";
	struct json_object *v;
	size_t n = 0;

	say("guard %s (cgroup id %s)", get(g, "cgroup"), get(g, "cgroup_id"));
	if (json_object_object_get_ex(g, "cgroup_present", &v) && !json_object_get_boolean(v))
		say("  cgroup    GONE: removed (vpnguard-bpf detach --cgroup %s cleans up)", get(g, "cgroup"));
	if (!strcmp(get(g, "mode"), "tunnel")) {
		say("  mode      tunnel %s in netns %s (%s)", get(g, "tunnel"), get(g, "netns"),
		    json_object_object_get_ex(g, "netns_present", &v) && !json_object_get_boolean(v) ?
		    "namespace GONE: all egress denied" :
		    json_object_object_get_ex(g, "tunnel_present", &v) && json_object_get_boolean(v) ?
		    "present" : "ABSENT: all egress denied");
		say("  steering  fwmark 0x%" PRIx64 " looks up table %s",
		    json_object_object_get_ex(g, "fwmark", &v) ? json_object_get_uint64(v) : 0,
		    get(g, "route_table"));
	} else {
		say("  mode      gateway %s", joined(g, "gateways", a, sizeof(a)));
	}
	say("  allow     %s", joined(g, "allow", a, sizeof(a)));
	say("  dns       %s", joined(g, "dns", b, sizeof(b)));
	if (json_object_object_get_ex(g, "lease_left_s", &v) && v)
		say("  state     %s, lease %.1f s left", get(g, "state"), json_object_get_double(v));
	else
		say("  state     %s", get(g, "state"));
	json_object_object_get_ex(g, "denied", &v);
	json_object_object_foreach(v, reason, count)
		if (json_object_get_uint64(count) && n < sizeof(denied))
			n += snprintf(denied + n, sizeof(denied) - n, " %s=%" PRIu64, reason,
				      json_object_get_uint64(count));
	say("  denied   %s", n ? denied : " nothing yet");
}

int vg_cmd_status(bool json)
{
	struct json_object *root, *guards;

	if (vg_status_json(&root))
		return 1;
	json_object_object_get_ex(root, "guards", &guards);
	if (json) {
		puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (!json_object_array_length(guards)) {
		puts("no guards attached");
	} else {
		for (size_t i = 0; i < json_object_array_length(guards); i++)
			print_guard(json_object_array_get_idx(guards, i));
	}
	json_object_put(root);
	return 0;
}
