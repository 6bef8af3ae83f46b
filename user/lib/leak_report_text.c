// SPDX-License-Identifier: GPL-2.0
/* The report of leak_report.c for a person: from its JSON, so the two never say different things. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "event_fmt.h"
#include "leak_report.h"

void vg_format_span(double s, char *buf, size_t len)
{
	long long t = (long long)s;
	/* The two largest units, the second left out when it is 0: "24h", "1h 5m", "3d 2h". */
	static const struct { long long secs; const char *unit; } units[] = {
		{ 86400, "d" }, { 3600, "h" }, { 60, "m" }, { 1, "s" },
	};
	size_t u = t >= 2 * 86400 ? 0 : t >= 3600 ? 1 : t >= 60 ? 2 : 3;

	if (u == 3) {
		snprintf(buf, len, s == (double)t ? "%.0fs" : "%.3fs", s);
		return;
	}
	long long big = t / units[u].secs, small = t % units[u].secs / units[u + 1].secs;

	if (small)
		snprintf(buf, len, "%lld%s %lld%s", big, units[u].unit, small, units[u + 1].unit);
	else
		snprintf(buf, len, "%lld%s", big, units[u].unit);
}

static int by_count(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int64_t cx = json_object_get_int64(json_object_object_get(x, "count"));
	int64_t cy = json_object_get_int64(json_object_object_get(y, "count"));

	return cx != cy ? (cx < cy ? 1 : -1) : strcmp(vg_json_str(x, "key"), vg_json_str(y, "key"));
}

/* ---- for a person ---- */

/* One line: formatted, escaped (names, comms and errors are the log's text), then a newline. */
static void __attribute__((format(printf, 2, 3))) say(FILE *f, const char *fmt, ...)
{
	char *raw = NULL, *esc;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&raw, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((esc = malloc(4 * (size_t)n + 1))) {
		fprintf(f, "%s\n", vg_text_escape(raw, esc, 4 * (size_t)n + 1));
		free(esc);
	}
	free(raw);
}

static double num(struct json_object *o, const char *key)
{
	return json_object_get_double(json_object_object_get(o, key));
}

/* A person reads the commonest; the JSON has them all. */
#define SHOWN 10

/* "a 3, b 1": a counts object, the largest first, the first SHOWN of them. */
static void counts_line(struct json_object *counts, char *buf, size_t len)
{
	struct json_object *list = json_object_new_array();
	size_t at = 0;

	buf[0] = 0;
	json_object_object_foreach(counts, k, v) {
		struct json_object *d = json_object_new_object();

		json_object_object_add(d, "key", json_object_new_string(k));
		json_object_object_add(d, "count", json_object_get(v));
		json_object_array_add(list, d);
	}
	json_object_array_sort(list, by_count);
	for (size_t i = 0; i < json_object_array_length(list) && at < len; i++) {
		struct json_object *d = json_object_array_get_idx(list, i);
		int n = i == SHOWN ? snprintf(buf + at, len - at, " and %zu more", json_object_array_length(list) - SHOWN) :
			snprintf(buf + at, len - at, "%s%s %lld", i ? ", " : "", vg_json_str(d, "key"),
				 (long long)json_object_get_int64(json_object_object_get(d, "count")));

		at += n > 0 ? (size_t)n : 0;
		if (i == SHOWN)
			break;
	}
	json_object_put(list);
}

static void guard_text(FILE *f, struct json_object *g)
{
	struct json_object *cgs = json_object_object_get(g, "cgroups"), *ch = json_object_object_get(g, "changes"),
			   *checks = json_object_object_get(g, "checks"), *seen = json_object_object_get(g, "seen"),
			   *b = json_object_object_get(g, "blocked"), *top = json_object_object_get(b, "top_destinations");
	const char *name = vg_json_str(g, "guard"), *pct = vg_json_str(g, "protected_pct");
	char open[32], closed[32], unknown[32], tunnel[64] = "", list[1024] = "";
	size_t at = 0;

	for (size_t i = 0; i < json_object_array_length(cgs) && at < sizeof(list); i++) {
		int n = snprintf(list + at, sizeof(list) - at, "%s%s", i ? ", " : "",
				 json_object_get_string(json_object_array_get_idx(cgs, i)));
		at += n > 0 ? (size_t)n : 0;
	}
	say(f, "%s%s (%s)", name ? "guard " : "cgroup ", name ?: list, name ? list : "no guard of the agent's");
	vg_format_span(num(g, "open_s"), open, sizeof(open));
	vg_format_span(num(g, "closed_s"), closed, sizeof(closed));
	vg_format_span(num(g, "unknown_s"), unknown, sizeof(unknown));
	if (num(g, "tunnel_down_s") > 0) {
		char span[32];

		vg_format_span(num(g, "tunnel_down_s"), span, sizeof(span));
		snprintf(tunnel, sizeof(tunnel), " (%s of it without the tunnel)", span);
	}
	say(f, "  open %s, closed %s%s, unknown %s: %s%s", open, closed, tunnel, unknown, pct ?: "no state known",
	    pct ? "% protected" : "");
	say(f, "  state at the start: %s; at the end: %s", vg_json_str(g, "state_at_start"), vg_json_str(g, "state_now"));
	if (json_object_array_length(ch) || json_object_get_int64(json_object_object_get(g, "changes_omitted")))
		say(f, "  state changes: %zu%s", json_object_array_length(ch) +
		    (size_t)json_object_get_int64(json_object_object_get(g, "changes_omitted")),
		    json_object_get_int64(json_object_object_get(g, "changes_omitted")) ? " (the latest shown)" : "");
	for (size_t i = 0; i < json_object_array_length(ch); i++) {
		struct json_object *c = json_object_array_get_idx(ch, i);
		const char *seen_ip = vg_json_str(c, "seen"), *err = vg_json_str(c, "error");

		say(f, "    %s %s: %s%s%s%s%s", vg_json_str(c, "time"), vg_json_str(c, "state"), vg_json_str(c, "why"),
		    seen_ip ? ", saw " : "", seen_ip ?: "", err ? ": " : "", err ?: "");
	}
	counts_line(json_object_object_get(checks, "by_why"), list, sizeof(list));
	if (json_object_object_get(checks, "duration_mean_s"))
		say(f, "  checks: %lld (%s), %.3fs on average, %.3fs at most",
		    (long long)json_object_get_int64(json_object_object_get(checks, "total")), list,
		    num(checks, "duration_mean_s"), num(checks, "duration_max_s"));
	else
		say(f, "  checks: %lld%s%s%s", (long long)json_object_get_int64(json_object_object_get(checks, "total")),
		    list[0] ? " (" : "", list, list[0] ? ")" : "");
	size_t n_seen = json_object_array_length(seen), shown = 0;

	/* Every real address; of the others, the first SHOWN. */
	for (size_t i = 0; i < n_seen; i++) {
		struct json_object *s = json_object_array_get_idx(seen, i);
		bool real = json_object_get_boolean(json_object_object_get(s, "real_ip"));

		if (!real && shown++ >= SHOWN)
			continue;
		say(f, "  %s %s: %lld check(s), %s .. %s", real ? "REAL ADDRESS" : "seen", vg_json_str(s, "ip"),
		    (long long)json_object_get_int64(json_object_object_get(s, "checks")),
		    vg_json_str(s, "first"), vg_json_str(s, "last"));
	}
	if (shown > SHOWN)
		say(f, "  and %zu more addresses (--json lists them)", shown - SHOWN);
	say(f, "  %s", json_object_get_boolean(json_object_object_get(g, "real_ip_seen")) ?
	    "LEAK: a check saw the real address (why real_ip)" : "no check saw a real address");
	counts_line(json_object_object_get(b, "by_reason"), list, sizeof(list));
	say(f, "  blocked: %lld%s%s%s", (long long)json_object_get_int64(json_object_object_get(b, "total")),
	    list[0] ? " (" : "", list, list[0] ? ")" : "");
	if (!json_object_get_int64(json_object_object_get(b, "total")))
		return;
	counts_line(json_object_object_get(b, "by_comm"), list, sizeof(list));
	say(f, "    by process: %s", list);
	for (size_t i = 0; i < json_object_array_length(top); i++) {
		struct json_object *d = json_object_array_get_idx(top, i);
		const char *dst = vg_json_str(d, "dst");

		say(f, "    %s %s%s%s:%d: %lld", vg_json_str(d, "proto"), strchr(dst, ':') ? "[" : "", dst,
		    strchr(dst, ':') ? "]" : "", json_object_get_int(json_object_object_get(d, "dport")),
		    (long long)json_object_get_int64(json_object_object_get(d, "count")));
	}
}

char *vg_leak_report_text(struct json_object *rep)
{
	struct json_object *guards = json_object_object_get(rep, "guards"), *ev = json_object_object_get(rep, "events"),
			   *log = json_object_object_get(rep, "log");
	char *out = NULL, span[32], docker[512], reload[256];
	size_t n;
	FILE *f = open_memstream(&out, &n);

	if (!f)
		return NULL;
	vg_format_span(num(rep, "window_s"), span, sizeof(span));
	say(f, "vpnguard report: %s .. %s (%s)%s%s", vg_json_str(rep, "from"), vg_json_str(rep, "to"), span,
	    vg_json_str(rep, "log_path") ? ", log " : "", vg_json_str(rep, "log_path") ?: "");
	if (!json_object_array_length(guards))
		say(f, "no guard in the log in this window");
	for (size_t i = 0; i < json_object_array_length(guards); i++)
		guard_text(f, json_object_array_get_idx(guards, i));
	counts_line(json_object_object_get(ev, "docker"), docker, sizeof(docker));
	counts_line(json_object_object_get(ev, "reload"), reload, sizeof(reload));
	say(f, "events: tunnel down %lld, tunnel up %lld; docker: %s; reload: %s; scan findings %lld; "
	    "pins restored or lost %lld; log records lost %lld",
	    (long long)json_object_get_int64(json_object_object_get(ev, "tunnel_down")),
	    (long long)json_object_get_int64(json_object_object_get(ev, "tunnel_up")), docker[0] ? docker : "none",
	    reload[0] ? reload : "none", (long long)json_object_get_int64(json_object_object_get(ev, "scan")),
	    (long long)json_object_get_int64(json_object_object_get(ev, "pins")),
	    (long long)json_object_get_int64(json_object_object_get(ev, "log_lost")));
	say(f, "log: %lld lines, %lld records used, skipped %lld unreadable, %lld out of order, %lld after the window",
	    (long long)json_object_get_int64(json_object_object_get(log, "lines")),
	    (long long)json_object_get_int64(json_object_object_get(log, "records")),
	    (long long)json_object_get_int64(json_object_object_get(log, "garbage")),
	    (long long)json_object_get_int64(json_object_object_get(log, "unordered")),
	    (long long)json_object_get_int64(json_object_object_get(log, "outside")));
	say(f, "%s", vg_leak_report_leaked(rep) ? "LEAK: a check saw a real address in this window" :
	    "no leak seen in this window");
	fclose(f);
	return out;
}

void vg_leak_report_summary(struct json_object *rep, char *buf, size_t len)
{
	struct json_object *guards = json_object_object_get(rep, "guards");
	char raw[1024], span[32];
	size_t at;

	vg_format_span(num(rep, "window_s"), span, sizeof(span));
	at = (size_t)snprintf(raw, sizeof(raw), "vpnguard %s: %s", span,
			      vg_leak_report_leaked(rep) ? "LEAK seen" : "no leak");
	for (size_t i = 0; i < json_object_array_length(guards) && at < sizeof(raw); i++) {
		struct json_object *g = json_object_array_get_idx(guards, i);
		const char *name = vg_json_str(g, "guard"), *pct = vg_json_str(g, "protected_pct");
		int n = snprintf(raw + at, sizeof(raw) - at, "; %s %s%s, %lld blocked", name ?: "cgroup",
				 pct ?: "-", pct ? "% protected" : "",
				 (long long)json_object_get_int64(json_object_object_get(
					 json_object_object_get(g, "blocked"), "total")));

		at += n > 0 ? (size_t)n : 0;
	}
	vg_text_escape(raw, buf, len);
}
