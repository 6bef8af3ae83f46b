// SPDX-License-Identifier: GPL-2.0
/*
 * status: every guard as the kernel holds it, as JSON or lines for a person;
 * status --check GUARD: one guard's verdict (verdict.h) as the exit status.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include "commands.h"
#include "config.h"
#include "docker.h"
#include "event_fmt.h"
#include "loader.h"
#include "pins.h"
#include "status.h"
#include "verdict.h"

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
		char first[PATH_MAX] = "";
		int n = vg_pins_missing(first, sizeof(first));

		if (n > 0)
			printf("no guards pinned in %s, but vpnguard's programs still enforce on %d "
			       "cgroup(s) with no pins (%s%s): the agent pins its own again within an "
			       "interval, `vpnguard-bpf detach` takes them off\n", vg_pin_root(), n, first,
			       n > 1 ? ", ..." : "");
		else
			puts("no guards attached");
	} else {
		for (size_t i = 0; i < json_object_array_length(guards); i++)
			print_guard(json_object_array_get_idx(guards, i));
	}
	json_object_put(root);
	return 0;
}

/* One cgroup of the guard checked: its path below the mount and its verdict. */
struct part {
	char cgroup[PATH_MAX];
	bool open;
	char why[512];
};

/* A --cgroup word: the guard on that cgroup (or the one whose record names it: it may be gone). */
static int cgroup_part(struct json_object *root, const char *arg, struct part *p, char *err, size_t errlen)
{
	struct json_object *g = NULL;
	struct vg_cgroup cg;
	__u64 id;

	err[0] = 0;
	if (!vg_cgroup_resolve(arg, &cg, err, errlen))
		g = vg_status_guard(root, cg.id);
	if (!g && !vg_guard_find(arg, &id))
		g = vg_status_guard(root, id);
	if (!g) {
		if (!err[0])
			snprintf(err, errlen, "cgroup %s: not guarded", arg);
		return -ENOENT;
	}
	snprintf(p->cgroup, sizeof(p->cgroup), "%s", vg_json_str(g, "cgroup") ?: arg);
	p->open = vg_guard_verdict(g, p->why, sizeof(p->why));
	return 0;
}

static void closed_part(struct part *p, const char *label, const char *why)
{
	*p = (struct part){ .open = false };
	snprintf(p->cgroup, sizeof(p->cgroup), "%s", label);
	snprintf(p->why, sizeof(p->why), "closed: %.500s", why);
}

/* A guard of the config file: every cgroup and container it names must be guarded and open. */
static int named_parts(struct json_object *root, const struct vg_config *c, const struct vg_options *o,
		       struct part *parts)
{
	char err[PATH_MAX + 256], sock[PATH_MAX], label[PATH_MAX];
	struct vg_docker_target t;
	int n = 0;

	for (int i = 0; i < o->n_cgroups; i++, n++)
		if (cgroup_part(root, o->cgroups[i], &parts[n], err, sizeof(err)))
			closed_part(&parts[n], o->cgroups[i], "not attached");
	for (int i = 0; i < o->n_containers; i++, n++) {
		snprintf(label, sizeof(label), "container %s", o->containers[i]);
		if (vg_docker_socket(o->docker_host ?: c->docker_host, sock, sizeof(sock), err, sizeof(err)) ||
		    vg_docker_resolve(sock, o->containers[i], &t, err, sizeof(err)) ||
		    cgroup_part(root, t.cg.path, &parts[n], err, sizeof(err)))
			closed_part(&parts[n], label, err);
		else
			snprintf(parts[n].cgroup, sizeof(parts[n].cgroup), "%s", label);
	}
	return n;
}

static void print_check(const char *guard, const struct part *parts, int n, bool named, bool json)
{
	char line[8192], out[8192 * 4];
	bool open = true;
	size_t len = 0;

	for (int i = 0; i < n; i++)
		open &= parts[i].open;
	if (json) {
		struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

		json_object_object_add(o, "guard", json_object_new_string(guard));
		json_object_object_add(o, "open", json_object_new_boolean(open));
		for (int i = 0; i < n; i++) {
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "cgroup", json_object_new_string(parts[i].cgroup));
			json_object_object_add(e, "open", json_object_new_boolean(parts[i].open));
			json_object_object_add(e, "why", json_object_new_string(parts[i].why));
			json_object_array_add(arr, e);
		}
		json_object_object_add(o, "cgroups", arr);
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
		json_object_put(o);
		return;
	}
	if (!named) {
		snprintf(line, sizeof(line), "%s: %s", parts[0].cgroup, parts[0].why);
	} else {
		len = snprintf(line, sizeof(line), "%s: %s (", guard, open ? "open" : "closed");
		for (int i = 0; i < n && len < sizeof(line); i++)
			len += snprintf(line + len, sizeof(line) - len, "%s%s %s", i ? "; " : "",
					parts[i].cgroup, parts[i].why);
		if (len < sizeof(line))
			snprintf(line + len, sizeof(line) - len, ")");
	}
	puts(vg_text_escape(line, out, sizeof(out)));
}

int vg_cmd_status_check(const char *guard, bool json)
{
	struct part parts[VG_MAX_CGROUP_ARGS];
	char err[PATH_MAX + 256] = "", cerr[PATH_MAX + 256] = "", msg[sizeof(err) * 3];
	struct vg_config c = { 0 };
	struct json_object *root;
	const struct vg_options *named = NULL;
	int n = 0, rc;
	bool have_conf;

	if (vg_status_json(&root))
		return EXIT_RUNTIME;
	have_conf = !vg_config_load(VG_DEFAULT_CONFIG, &c, cerr, sizeof(cerr));
	for (int i = 0; have_conf && i < c.n_guards; i++)
		if (!strcmp(c.guards[i].name, guard))
			named = &c.guards[i].o;
	if (named)
		n = named_parts(root, &c, named, parts);
	else if (!cgroup_part(root, guard, &parts[0], err, sizeof(err)))
		n = 1;
	if (!n) {
		if (have_conf)
			snprintf(cerr, sizeof(cerr), "no [guard %s] in %s", guard, VG_DEFAULT_CONFIG);
		/* The resolver speaks of --cgroup, the option it serves. */
		vg_text_printf(msg, sizeof(msg), "vpnguard-bpf: status --check %s: no such guard: %s; %s",
			       guard, err + (strncmp(err, "--", 2) ? 0 : 2), cerr);
		fprintf(stderr, "%s\n", msg);
		rc = EXIT_USAGE;
	} else {
		print_check(guard, parts, n, named, json);
		rc = EXIT_OK;
		for (int i = 0; i < n; i++)
			if (!parts[i].open)
				rc = EXIT_RUNTIME;
	}
	vg_config_free(&c);
	json_object_put(root);
	return rc;
}
