// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "metrics.h"

struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = o->failed ? 0 : vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (o->failed || n < 0 || o->len + (size_t)n < o->cap)
			break;
		char *more = realloc(o->buf, o->cap * 2 + (size_t)n);

		if (!more) {
			o->failed = true;
			break;
		}
		o->buf = more;
		o->cap = o->cap * 2 + (size_t)n;
	}
	if (!o->failed && n > 0)
		o->len += (size_t)n;
}

/* A label value as the text format wants it: backslash, quote and newline escaped. */
static const char *label(const char *s, char *buf, size_t len)
{
	size_t n = 0;

	for (; s && *s && n + 3 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			buf[n++] = '\\';
		buf[n++] = *s == '\n' ? 'n' : *s;
	}
	buf[n] = 0;
	return buf;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *str(struct json_object *g, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(g, key, &v) && v ? json_object_get_string(v) : NULL;
}

static bool num(struct json_object *g, const char *key, double *d)
{
	struct json_object *v;

	if (!json_object_object_get_ex(g, key, &v) || !v)
		return false;
	*d = json_object_get_double(v);
	return true;
}

typedef void (*sample_fn)(struct out *o, const char *name, struct json_object *g, const char *guard,
			  double now_s);

/* Open as the programs see it: the state open and, in tunnel mode, the tunnel there. */
static void guard_open(struct out *o, const char *name, struct json_object *g, const char *guard, double now_s)
{
	const char *state = str(g, "state");
	struct json_object *present;
	bool tunnel_ok = !str(g, "tunnel") || (json_object_object_get_ex(g, "tunnel_present", &present) &&
					       json_object_get_boolean(present));

	(void)now_s;
	put(o, "%s{guard=\"%s\"} %d\n", name, guard, state && !strcmp(state, "open") && tunnel_ok);
}

/* Blocked attempts by reason; the two event-bookkeeping reasons are families of their own. */
static void blocked(struct out *o, const char *name, struct json_object *g, const char *guard, double now_s)
{
	struct json_object *denied;

	(void)now_s;
	if (!json_object_object_get_ex(g, "denied", &denied) || !denied)
		return;
	json_object_object_foreach(denied, reason, count)
		if (strncmp(reason, "events_", 7))
			put(o, "%s{guard=\"%s\",reason=\"%s\"} %llu\n", name, guard, reason,
			    (unsigned long long)json_object_get_uint64(count));
}

static void denied_one(struct out *o, const char *name, struct json_object *g, const char *guard,
		       const char *reason)
{
	struct json_object *denied, *v;

	if (json_object_object_get_ex(g, "denied", &denied) && denied && json_object_object_get_ex(denied, reason, &v))
		put(o, "%s{guard=\"%s\"} %llu\n", name, guard, (unsigned long long)json_object_get_uint64(v));
}

static void suppressed(struct out *o, const char *name, struct json_object *g, const char *guard, double now_s)
{
	(void)now_s;
	denied_one(o, name, g, guard, "events_suppressed");
}

static void lost(struct out *o, const char *name, struct json_object *g, const char *guard, double now_s)
{
	(void)now_s;
	denied_one(o, name, g, guard, "events_lost");
}

static void tunnel_present(struct out *o, const char *name, struct json_object *g, const char *guard,
			   double now_s)
{
	struct json_object *v;
	char tun[64];

	(void)now_s;
	if (str(g, "tunnel") && json_object_object_get_ex(g, "tunnel_present", &v))
		put(o, "%s{guard=\"%s\",tunnel=\"%s\"} %d\n", name, guard, label(str(g, "tunnel"), tun, sizeof(tun)),
		    json_object_get_boolean(v));
}

static void lease_expiry(struct out *o, const char *name, struct json_object *g, const char *guard, double now_s)
{
	double left;

	if (num(g, "lease_left_s", &left))
		put(o, "%s{guard=\"%s\"} %.3f\n", name, guard, now_s + left);
}

static void probe_success(struct out *o, const char *name, struct json_object *g, const char *guard,
			  double now_s)
{
	double t;

	(void)now_s;
	if (num(g, "probe_last_success_unix", &t))
		put(o, "%s{guard=\"%s\"} %.3f\n", name, guard, t);
}

static void probe_duration(struct out *o, const char *name, struct json_object *g, const char *guard,
			   double now_s)
{
	struct json_object *p;
	double d;

	(void)now_s;
	if (json_object_object_get_ex(g, "last_probe", &p) && p && num(p, "duration_s", &d))
		put(o, "%s{guard=\"%s\"} %.6f\n", name, guard, d);
}

static void public_ip(struct out *o, const char *name, struct json_object *g, const char *guard, double now_s)
{
	struct json_object *p;
	char ip[128];

	(void)now_s;
	if (json_object_object_get_ex(g, "last_probe", &p) && p && str(p, "seen"))
		put(o, "%s{guard=\"%s\",ip=\"%s\"} 1\n", name, guard, label(str(p, "seen"), ip, sizeof(ip)));
}

static const struct {
	const char *name, *type, *help;
	sample_fn sample;
} families[] = {
	{ "vpnguard_guard_open", "gauge", "1 while the guard lets traffic out: open, and its tunnel there (tunnel mode).",
	  guard_open },
	{ "vpnguard_blocked_total", "counter", "Attempts the kernel refused, by reason.", blocked },
	{ "vpnguard_tunnel_present", "gauge", "1 while the guard's tunnel exists and is up.", tunnel_present },
	{ "vpnguard_lease_expiry_timestamp_seconds", "gauge",
	  "When the guard closes unless the agent renews its lease (Unix time).", lease_expiry },
	{ "vpnguard_probe_last_success_timestamp_seconds", "gauge",
	  "When the last check through the tunnel passed (Unix time).", probe_success },
	{ "vpnguard_probe_duration_seconds", "gauge", "How long the last check took.", probe_duration },
	{ "vpnguard_public_ip_info", "gauge", "The address the last check saw the Internet see.", public_ip },
	{ "vpnguard_events_suppressed_total", "counter",
	  "Denials counted but not reported as events (over the burst budget).", suppressed },
	{ "vpnguard_events_lost_total", "counter", "Denial events lost because the ring buffer was full.", lost },
};

char *vg_metrics_text(struct json_object *status, const char *version, double now_s)
{
	struct out o = { .buf = malloc(4096), .cap = 4096 };
	struct json_object *guards = NULL;
	char v[64], guard[4200];

	if (!o.buf)
		return NULL;
	o.buf[0] = 0;
	json_object_object_get_ex(status, "guards", &guards);
	family(&o, "vpnguard_build_info", "gauge", "The running vpnguard-bpf's version.");
	put(&o, "vpnguard_build_info{version=\"%s\"} 1\n", label(version, v, sizeof(v)));
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++) {
		family(&o, families[f].name, families[f].type, families[f].help);
		for (size_t i = 0; guards && i < json_object_array_length(guards); i++) {
			struct json_object *g = json_object_array_get_idx(guards, i);

			families[f].sample(&o, families[f].name, g, label(str(g, "cgroup"), guard, sizeof(guard)), now_s);
		}
	}
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
