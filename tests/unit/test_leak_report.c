// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of user/lib/leak_report.c (`vpnguard-bpf report`): logs made
 * here line by line, the window [FROM, FROM + 1000 s]; each table row is one
 * log and what the report must say of it. Run one binary alone:
 * make CLANG=false BPFTOOL=false build/test_leak_report && build/test_leak_report
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "args.h"
#include "event_fmt.h"
#include "leak_report.h"

#define NS 1000000000LL
#define FROM (1764633600LL * NS)     /* 2025-12-02T00:00:00Z */
#define WINDOW_S 1000
#define TO (FROM + WINDOW_S * NS)

/* A record at FROM + off seconds: {"time": ..., FIELDS}. */
struct row {
	int off;
	const char *fields;
};

#define END { 0, NULL }
#define G ",\"guard\":\"torrent\",\"cgroups\":[\"/sys/fs/cgroup/unified/vpn.slice\"]"
#define STATE(s, why) "\"event\":\"state\"" G ",\"state\":\"" s "\",\"why\":\"" why "\""
#define PROBE(why) "\"event\":\"probe\"" G ",\"why\":\"" why "\""
/* The watch's records as the agent writes them for a guard of its set (with its name). */
#define TUNNEL(ev, ifindex) "\"event\":\"" ev "\"" G ",\"cgroup_id\":7,\"tunnel\":\"wg0\",\"ifindex\":" #ifindex
#define TDOWN TUNNEL("tunnel_down", 0)
#define TUP TUNNEL("tunnel_up", 9)

static struct vg_leak_report *feed(const struct row *rows)
{
	struct vg_leak_report *r = vg_leak_report_new(FROM, TO);

	assert_non_null(r);
	for (const struct row *w = rows; w->fields; w++) {
		char when[40], line[2048];

		vg_format_time(FROM + (int64_t)w->off * NS, when, sizeof(when));
		snprintf(line, sizeof(line), "{\"time\":\"%s\",%s}\n", when, w->fields);
		vg_leak_report_line(r, line, strlen(line));
	}
	return r;
}

static struct json_object *report_of(const struct row *rows)
{
	struct vg_leak_report *r = feed(rows);
	struct json_object *rep = vg_leak_report_result(r);

	vg_leak_report_free(r);
	assert_non_null(rep);
	return rep;
}

static struct json_object *get(struct json_object *o, const char *path)
{
	char key[64];
	const char *dot;

	while (o && (dot = strchr(path, '.'))) {
		snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
		o = json_object_object_get(o, key);
		path = dot + 1;
	}
	return o ? json_object_object_get(o, path) : NULL;
}

static double num(struct json_object *o, const char *path)
{
	return json_object_get_double(get(o, path));
}

static struct json_object *guard(struct json_object *rep, size_t i)
{
	struct json_object *gs = get(rep, "guards");

	if (i >= json_object_array_length(gs))
		fail_msg("no guard %zu in %s", i, json_object_to_json_string(rep));
	return json_object_array_get_idx(gs, i);
}

/* ---- time open and closed across the window's start ---- */

static const struct account_case {
	const char *id;
	struct row rows[8];
	double open_s, closed_s, unknown_s;
	const char *at_start, *now;
	bool leak;
} account_cases[] = {
	{ "open before the window, nothing since: open all through",
	  { { -5000, STATE("open", "probe_passed") }, END }, 1000, 0, 0, "open", "open", false },
	{ "closed before, reopened at +300",
	  { { -50, STATE("closed", "probe_failed") }, { 300, STATE("open", "probe_passed") }, END },
	  700, 300, 0, "closed", "open", false },
	{ "the state before the window: the last record before it wins",
	  { { -90, STATE("closed", "probe_failed") }, { -10, STATE("open", "probe_passed") }, END },
	  1000, 0, 0, "open", "open", false },
	{ "no record before the window: unknown up to the first",
	  { { 250, STATE("closed", "probe_failed") }, { 400, STATE("open", "probe_passed") }, END },
	  600, 150, 250, "unknown", "open", false },
	{ "a passing check means open (a state record says a change only)",
	  { { -30, PROBE("probe_passed") }, { 500, PROBE("probe_passed") }, END }, 1000, 0, 0, "open", "open", false },
	{ "a failed check changes nothing",
	  { { -30, STATE("closed", "probe_failed") }, { 100, PROBE("probe_failed") }, { 200, PROBE("probe_failed") }, END },
	  0, 1000, 0, "closed", "closed", false },
	{ "the real address seen: a leak, closed from then on",
	  { { -30, STATE("open", "probe_passed") }, { 600, STATE("closed", "real_ip") ",\"seen\":\"198.51.100.7\"" }, END },
	  600, 400, 0, "open", "closed", true },
	{ "a check that saw it again while closed: still a leak",
	  { { -30, STATE("closed", "real_ip") }, { 100, PROBE("real_ip") ",\"seen\":\"198.51.100.7\"" }, END },
	  0, 1000, 0, "closed", "closed", true },
	{ "the real address before the window: closed, but no leak in it",
	  { { -30, STATE("closed", "real_ip") ",\"seen\":\"198.51.100.7\"" }, END }, 0, 1000, 0, "closed", "closed", false },
	{ "unexpected address and gluetun: closed, no leak",
	  { { -30, STATE("open", "probe_passed") }, { 100, STATE("closed", "unexpected_ip") },
	    { 200, PROBE("gluetun_not_running") }, END }, 100, 900, 0, "open", "closed", false },
	{ "a record after the window counts nothing",
	  { { -30, STATE("open", "probe_passed") }, { 1500, STATE("closed", "real_ip") }, END },
	  1000, 0, 0, "open", "open", false },
	{ "a state record older than the last (the clock stepped back) is skipped",
	  { { -30, STATE("open", "probe_passed") }, { 500, STATE("closed", "probe_failed") },
	    { 400, STATE("open", "probe_passed") }, { 700, STATE("open", "probe_passed") }, END },
	  500 + 300, 200, 0, "open", "open", false },
	{ "a change at the window's very start",
	  { { 0, STATE("closed", "probe_failed") }, END }, 0, 1000, 0, "unknown", "closed", false },
	/* Without its tunnel the guard lets nothing out, whatever the last state record said. */
	{ "the tunnel gone under an open guard: closed until it is back",
	  { { -30, STATE("open", "probe_passed") }, { 200, TDOWN }, { 500, TUP }, END },
	  700, 300, 0, "open", "open", false },
	{ "the tunnel gone before the window: closed at its start",
	  { { -30, STATE("open", "probe_passed") }, { -10, TDOWN }, { 400, TUP }, END },
	  600, 400, 0, "closed", "open", false },
	{ "probes fail without the tunnel; back, closed until one passes",
	  { { -30, STATE("open", "probe_passed") }, { 100, TDOWN }, { 130, STATE("closed", "probe_failed") },
	    { 300, TUP }, { 310, STATE("open", "probe_passed") }, END },
	  100 + 690, 210, 0, "open", "open", false },
	{ "no state known: closed while the tunnel is gone, unknown again after",
	  { { 200, TDOWN }, { 300, TUP }, END }, 0, 100, 900, "unknown", "unknown", false },
	{ "still gone at the window's end",
	  { { -30, STATE("open", "probe_passed") }, { 900, TDOWN }, END }, 900, 100, 0, "open", "closed", false },
};

static void test_accounting(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(account_cases) / sizeof(account_cases[0]); i++) {
		const struct account_case *c = &account_cases[i];
		struct json_object *rep = report_of(c->rows), *g = guard(rep, 0);

		if (num(g, "open_s") != c->open_s || num(g, "closed_s") != c->closed_s ||
		    num(g, "unknown_s") != c->unknown_s || strcmp(vg_json_str(g, "state_at_start"), c->at_start) ||
		    strcmp(vg_json_str(g, "state_now"), c->now) || vg_leak_report_leaked(rep) != c->leak ||
		    json_object_get_boolean(get(g, "real_ip_seen")) != c->leak)
			fail_msg("%s: want open %g closed %g unknown %g, %s -> %s, leak %d; got %s", c->id, c->open_s,
				 c->closed_s, c->unknown_s, c->at_start, c->now, c->leak,
				 json_object_to_json_string(rep));
		json_object_put(rep);
	}
}

static void test_protected_pct(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ -50, STATE("closed", "probe_failed") }, { 250, STATE("open", "probe_passed") }, END
	};
	static const struct row unknown[] = { { 10, PROBE("probe_failed") }, END };
	struct json_object *rep = report_of(rows);

	assert_true(num(guard(rep, 0), "protected_pct") == 75.0);
	json_object_put(rep);
	/* No state known at all: no share to give. */
	rep = report_of(unknown);
	assert_null(get(guard(rep, 0), "protected_pct"));
	assert_true(num(guard(rep, 0), "unknown_s") == WINDOW_S);
	json_object_put(rep);
}

/* The tunnel's time: not protected, its part of closed_s named, a change each way, no check. */
static void test_tunnel_time(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ -50, STATE("open", "probe_passed") }, { 250, TDOWN }, { 250, TDOWN }, { 500, TUP }, END
	};
	struct json_object *rep = report_of(rows), *g = guard(rep, 0), *ch = get(g, "changes");
	char *text;

	assert_true(num(g, "protected_pct") == 75.0);
	assert_true(num(g, "closed_s") == 250 && num(g, "tunnel_down_s") == 250);
	/* The second record (another cgroup of the guard) is no second change. */
	assert_int_equal(json_object_array_length(ch), 2);
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 0), "state"), "closed");
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 0), "why"), "tunnel_down");
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 1), "state"), "open");
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 1), "why"), "tunnel_up");
	assert_int_equal(json_object_get_int(get(g, "checks.total")), 0);
	assert_int_equal(json_object_get_int(get(rep, "events.tunnel_down")), 2);
	assert_int_equal(json_object_get_int(get(rep, "events.tunnel_up")), 1);
	text = vg_leak_report_text(rep);
	assert_non_null(strstr(text, "closed 4m 10s (4m 10s of it without the tunnel), unknown 0s: 75.00% protected"));
	free(text);
	json_object_put(rep);
}

/* ---- what the checks saw, and the changes ---- */

static void test_changes_and_seen(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ -30, STATE("open", "probe_passed") ",\"seen\":\"203.0.113.1\"" },
		{ 100, PROBE("probe_passed") ",\"seen\":\"203.0.113.1\",\"duration_s\":0.5" },
		{ 200, STATE("closed", "probe_failed") ",\"error\":\"connect: timed out\",\"duration_s\":10.0" },
		{ 300, STATE("open", "probe_passed") ",\"seen\":\"203.0.113.2\",\"duration_s\":1.5" },
		{ 400, STATE("closed", "real_ip") ",\"seen\":\"198.51.100.7\"" },
		{ 500, PROBE("real_ip") ",\"seen\":\"198.51.100.7\"" },
		END
	};
	struct json_object *rep = report_of(rows), *g = guard(rep, 0), *ch = get(g, "changes"), *seen = get(g, "seen");

	/* Changes in the window only: the one before it is the state at the start. */
	assert_int_equal(json_object_array_length(ch), 3);
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 0), "why"), "probe_failed");
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 0), "error"), "connect: timed out");
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 1), "state"), "open");
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, 2), "seen"), "198.51.100.7");
	assert_int_equal(json_object_get_int(get(g, "checks.total")), 5);
	assert_int_equal(json_object_get_int(get(g, "checks.by_why.probe_passed")), 2);
	assert_int_equal(json_object_get_int(get(g, "checks.by_why.real_ip")), 2);
	/* The mean and the longest of the checks that say how long they took; the others are not zeros. */
	assert_true(num(g, "checks.duration_mean_s") == 4.0);
	assert_true(num(g, "checks.duration_max_s") == 10.0);
	assert_int_equal(json_object_array_length(seen), 3);
	for (size_t i = 0; i < 3; i++) {
		struct json_object *s = json_object_array_get_idx(seen, i);
		bool real = !strcmp(vg_json_str(s, "ip"), "198.51.100.7");

		assert_int_equal(json_object_get_boolean(get(s, "real_ip")), real);
		assert_int_equal(json_object_get_int(get(s, "checks")), real ? 2 : 1);
	}
	assert_int_equal(json_object_array_length(get(g, "real_ips")), 1);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(get(g, "real_ips"), 0)), "198.51.100.7");
	json_object_put(rep);
}

static void test_no_duration(void **state)
{
	(void)state;
	static const struct row rows[] = { { 10, PROBE("probe_passed") }, END };
	struct json_object *rep = report_of(rows);

	assert_null(get(guard(rep, 0), "checks.duration_mean_s"));
	assert_int_equal(json_object_get_int(get(guard(rep, 0), "checks.total")), 1);
	json_object_put(rep);
}

static void test_changes_capped(void **state)
{
	(void)state;
	struct row rows[VG_REPORT_MAX_CHANGES + 30];
	int n = VG_REPORT_MAX_CHANGES + 20;

	for (int i = 0; i < n; i++)
		rows[i] = (struct row){ i, i % 2 ? STATE("open", "probe_passed") : STATE("closed", "probe_failed") };
	rows[n] = (struct row)END;
	struct json_object *rep = report_of(rows), *ch = get(guard(rep, 0), "changes");

	assert_int_equal(json_object_array_length(ch), VG_REPORT_MAX_CHANGES);
	assert_int_equal(json_object_get_int(get(guard(rep, 0), "changes_omitted")), 20);
	/* The latest are kept. */
	char want[40];

	vg_format_time(FROM + (int64_t)(n - 1) * NS, want, sizeof(want));
	assert_string_equal(vg_json_str(json_object_array_get_idx(ch, VG_REPORT_MAX_CHANGES - 1), "time"), want);
	json_object_put(rep);
}

/* ---- lines that are no record ---- */

static void test_garbage_counted(void **state)
{
	(void)state;
	static const char *const lines[] = {
		"not json at all",
		"[1,2]",
		"443,\"ifindex\":0}",                   /* a torn line */
		"{}",                                   /* no event */
		"{\"event\":\"state\"}",                /* no time */
		"{\"time\":\"yesterday\",\"event\":\"probe\",\"guard\":\"g\",\"why\":\"probe_passed\"}",
		"{\"time\":\"2025-12-02T00:00:10.000Z\",\"event\":\"probe\",\"guard\":\"g\",\"why\":\"probe_passed\"} {}",
		"{\"time\":\"2025-12-02T00:00:10.000Z\",\"event\":\"probe\",\"why\":\"probe_passed\"}",   /* no guard */
		"",
	};
	struct vg_leak_report *r = vg_leak_report_new(FROM, TO);
	struct json_object *rep;
	const char *good = "{\"time\":\"2025-12-02T00:00:20.000Z\",\"event\":\"probe\",\"guard\":\"g\",\"why\":\"probe_passed\"}";

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		vg_leak_report_line(r, lines[i], strlen(lines[i]));
	vg_leak_report_line(r, good, strlen(good));
	vg_leak_report_garbage(r);              /* a line too long for the reader */
	rep = vg_leak_report_result(r);
	vg_leak_report_free(r);
	assert_int_equal(json_object_get_int(get(rep, "log.lines")), sizeof(lines) / sizeof(lines[0]) + 2);
	assert_int_equal(json_object_get_int(get(rep, "log.garbage")), sizeof(lines) / sizeof(lines[0]) + 1);
	assert_int_equal(json_object_get_int(get(rep, "log.records")), 1);
	assert_int_equal(json_object_array_length(get(rep, "guards")), 1);
	assert_true(num(guard(rep, 0), "open_s") == WINDOW_S - 20);
	json_object_put(rep);
}

static void test_unordered_and_outside_counted(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ 500, STATE("closed", "probe_failed") },
		{ 400, STATE("open", "probe_passed") },            /* older than the last: skipped */
		{ 450, PROBE("real_ip") },                         /* so is this: no leak from it */
		{ 1200, STATE("open", "probe_passed") },           /* after the window */
		{ -100, "\"event\":\"blocked\",\"reason\":\"dns\",\"cgroup\":\"/a\"" },  /* before it */
		END
	};
	struct json_object *rep = report_of(rows);

	assert_int_equal(json_object_get_int(get(rep, "log.unordered")), 2);
	assert_int_equal(json_object_get_int(get(rep, "log.outside")), 2);
	assert_false(vg_leak_report_leaked(rep));
	/* The skipped blocked record made no guard of its cgroup. */
	assert_int_equal(json_object_array_length(get(rep, "guards")), 1);
	json_object_put(rep);
}

/* ---- blocked attempts and the other records ---- */

#define BLOCKED(cg, reason, comm, dst, port) \
	"\"event\":\"blocked\",\"reason\":\"" reason "\",\"hook\":\"connect4\",\"cgroup\":\"" cg "\",\"cgroup_id\":7," \
	"\"pid\":9,\"uid\":0,\"comm\":\"" comm "\",\"proto\":\"tcp\",\"family\":\"ipv4\",\"dst\":\"" dst "\"," \
	"\"dport\":" #port ",\"ifindex\":0"

static void test_blocked(void **state)
{
	(void)state;
	struct row rows[64];
	int n = 0;
	static const char *const dsts[] = { "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5",
					    "192.0.2.6", "192.0.2.7", "192.0.2.8", "192.0.2.9", "192.0.2.10",
					    "192.0.2.11", "192.0.2.12" };
	static char fields[12][512];

	rows[n++] = (struct row){ -10, STATE("open", "probe_passed") };
	/* Destination i is tried i + 1 times (the last, 12 times, is the commonest). */
	for (int i = 0; i < 12; i++) {
		snprintf(fields[i], sizeof(fields[i]), BLOCKED("/vpn.slice", "no_tunnel", "curl", "%s", 443), dsts[i]);
		for (int k = 0; k <= i && k < 3; k++)
			rows[n++] = (struct row){ 10 + i, fields[i] };
	}
	rows[n++] = (struct row){ 50, BLOCKED("/vpn.slice", "dns", "dig", "192.0.2.99", 53) };
	rows[n++] = (struct row){ 60, "\"event\":\"blocked\",\"reason\":\"raw\",\"hook\":\"sock_create\",\"cgroup\":"
				      "\"/vpn.slice\",\"comm\":\"ping\",\"proto\":\"raw\",\"dst\":null,\"dport\":null" };
	rows[n++] = (struct row){ 70, BLOCKED("/other.slice", "ipv6", "x", "192.0.2.1", 80) };
	rows[n++] = (struct row){ 80, "\"event\":\"blocked\",\"reason\":\"dns\",\"cgroup\":null,\"cgroup_id\":4242,"
				      "\"comm\":\"y\",\"proto\":\"udp\",\"dst\":\"192.0.2.53\",\"dport\":53" };
	rows[n] = (struct row)END;
	struct json_object *rep = report_of(rows), *g = guard(rep, 0), *top = get(g, "blocked.top_destinations");

	/* 1+2+3*10 no_tunnel, 1 dns, 1 raw: the guard's, matched by its absolute cgroup path. */
	assert_int_equal(json_object_get_int(get(g, "blocked.total")), 35);
	assert_int_equal(json_object_get_int(get(g, "blocked.by_reason.no_tunnel")), 33);
	assert_int_equal(json_object_get_int(get(g, "blocked.by_reason.raw")), 1);
	assert_int_equal(json_object_get_int(get(g, "blocked.by_comm.curl")), 33);
	assert_int_equal(json_object_get_int(get(g, "blocked.by_comm.dig")), 1);
	/* 13 destinations (the raw socket has none), the 10 commonest shown, ties by address. */
	assert_int_equal(json_object_get_int(get(g, "blocked.destinations")), 13);
	assert_int_equal(json_object_array_length(top), VG_REPORT_TOP_DESTINATIONS);
	assert_string_equal(vg_json_str(json_object_array_get_idx(top, 0), "dst"), "192.0.2.10");
	assert_int_equal(json_object_get_int(get(json_object_array_get_idx(top, 0), "count")), 3);
	assert_int_equal(json_object_get_int(get(json_object_array_get_idx(top, 9), "count")), 3);
	assert_int_equal(json_object_get_int(get(json_object_array_get_idx(top, 9), "dport")), 443);
	/* Cgroups no guard names: each on its own, without a guard name. */
	assert_int_equal(json_object_array_length(get(rep, "guards")), 3);
	assert_null(get(guard(rep, 1), "guard"));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(get(guard(rep, 1), "cgroups"), 0)),
			    "/other.slice");
	assert_string_equal(json_object_get_string(json_object_array_get_idx(get(guard(rep, 2), "cgroups"), 0)),
			    "cgroup id 4242");
	assert_int_equal(json_object_get_int(get(guard(rep, 2), "blocked.by_reason.dns")), 1);
	json_object_put(rep);
}

/* /vpn.slice and /x/vpn.slice both guarded: each blocked record to its own, by the closest fit. */
static void test_blocked_closest_cgroup(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ -10, "\"event\":\"state\",\"guard\":\"deep\",\"cgroups\":[\"/sys/fs/cgroup/x/vpn.slice\"],\"state\":\"open\",\"why\":\"probe_passed\"" },
		{ -10, "\"event\":\"state\",\"guard\":\"top\",\"cgroups\":[\"/sys/fs/cgroup/vpn.slice\"],\"state\":\"open\",\"why\":\"probe_passed\"" },
		{ 10, BLOCKED("/vpn.slice", "dns", "a", "192.0.2.1", 53) },
		{ 11, BLOCKED("/x/vpn.slice", "dns", "b", "192.0.2.1", 53) },
		{ 12, BLOCKED("/x/vpn.slice", "dns", "b", "192.0.2.1", 53) },
		{ 13, BLOCKED("/sys/fs/cgroup/vpn.slice", "dns", "a", "192.0.2.1", 53) },
		{ 14, BLOCKED("pn.slice", "dns", "c", "192.0.2.1", 53) },   /* no fit at a '/' */
		/* A guard named like a cgroup is still a guard, and no cgroup's stand-in. */
		{ 15, "\"event\":\"probe\",\"guard\":\"pn.slice\",\"why\":\"probe_passed\"" },
		END
	};
	struct json_object *rep = report_of(rows);

	assert_string_equal(vg_json_str(guard(rep, 0), "guard"), "deep");
	assert_int_equal(json_object_get_int(get(guard(rep, 0), "blocked.by_comm.b")), 2);
	assert_int_equal(json_object_get_int(get(guard(rep, 0), "blocked.total")), 2);
	assert_int_equal(json_object_get_int(get(guard(rep, 1), "blocked.by_comm.a")), 2);
	assert_int_equal(json_object_get_int(get(guard(rep, 1), "blocked.total")), 2);
	assert_int_equal(json_object_array_length(get(rep, "guards")), 4);
	assert_string_equal(vg_json_str(guard(rep, 2), "guard"), "pn.slice");
	assert_int_equal(json_object_get_int(get(guard(rep, 2), "blocked.total")), 0);
	assert_null(get(guard(rep, 3), "guard"));
	assert_int_equal(json_object_get_int(get(guard(rep, 3), "blocked.total")), 1);
	json_object_put(rep);
}

static void test_other_events(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ 1, "\"event\":\"tunnel_down\",\"cgroup_id\":7,\"tunnel\":\"wg0\",\"ifindex\":0" },
		{ 2, "\"event\":\"tunnel_up\",\"cgroup_id\":7,\"tunnel\":\"wg0\",\"ifindex\":9" },
		{ 3, "\"event\":\"tunnel_down\",\"cgroup_id\":7,\"tunnel\":\"wg0\",\"ifindex\":0" },
		{ 4, "\"event\":\"docker\",\"container\":\"qb\",\"id\":\"ab\",\"action\":\"start\",\"reload\":\"applied\"" },
		{ 5, "\"event\":\"docker\",\"container\":\"qb\",\"id\":\"ab\",\"action\":\"die\"" },
		{ 6, "\"event\":\"docker\",\"container\":\"qb\",\"id\":\"ab\",\"action\":\"start\"" },
		{ 7, "\"event\":\"reload\",\"trigger\":\"sighup\",\"result\":\"applied\"" },
		{ 8, "\"event\":\"reload\",\"trigger\":\"sighup\",\"result\":\"refused\",\"error\":\"x\"" },
		{ 9, "\"event\":\"scan\",\"reason\":\"netns\",\"pid\":3" },
		{ 10, "\"event\":\"pins\",\"action\":\"restored\"" },
		{ 11, "\"event\":\"log\",\"lost\":17" },
		{ 12, "\"event\":\"something_new\"" },
		{ -500, "\"event\":\"tunnel_down\",\"cgroup_id\":7" },    /* before the window */
		END
	};
	struct json_object *rep = report_of(rows);

	assert_int_equal(json_object_get_int(get(rep, "events.tunnel_down")), 2);
	assert_int_equal(json_object_get_int(get(rep, "events.tunnel_up")), 1);
	assert_int_equal(json_object_get_int(get(rep, "events.docker.start")), 2);
	assert_int_equal(json_object_get_int(get(rep, "events.docker.die")), 1);
	assert_int_equal(json_object_get_int(get(rep, "events.reload.applied")), 1);
	assert_int_equal(json_object_get_int(get(rep, "events.reload.refused")), 1);
	assert_int_equal(json_object_get_int(get(rep, "events.scan")), 1);
	assert_int_equal(json_object_get_int(get(rep, "events.pins")), 1);
	assert_int_equal(json_object_get_int(get(rep, "events.log_lost")), 17);
	assert_int_equal(json_object_array_length(get(rep, "guards")), 0);
	assert_false(vg_leak_report_leaked(rep));
	json_object_put(rep);
}

static void test_guards_apart(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ -10, "\"event\":\"state\",\"guard\":\"a\",\"cgroups\":[\"/a\"],\"state\":\"open\",\"why\":\"probe_passed\"" },
		{ -10, "\"event\":\"state\",\"guard\":\"b\",\"cgroups\":[\"/b\"],\"state\":\"closed\",\"why\":\"probe_failed\"" },
		{ 100, "\"event\":\"state\",\"guard\":\"b\",\"cgroups\":[\"/b\"],\"state\":\"closed\",\"why\":\"real_ip\"" },
		/* Another guard's record in between is no step back for this one. */
		{ 50, "\"event\":\"probe\",\"guard\":\"a\",\"cgroups\":[\"/a\"],\"why\":\"probe_passed\"" },
		END
	};
	struct json_object *rep = report_of(rows);

	assert_string_equal(vg_json_str(guard(rep, 0), "guard"), "a");
	assert_true(num(guard(rep, 0), "open_s") == WINDOW_S);
	assert_false(json_object_get_boolean(get(guard(rep, 0), "real_ip_seen")));
	assert_true(num(guard(rep, 1), "closed_s") == WINDOW_S);
	assert_true(json_object_get_boolean(get(guard(rep, 1), "real_ip_seen")));
	assert_true(vg_leak_report_leaked(rep));
	assert_int_equal(json_object_get_int(get(rep, "log.unordered")), 0);
	json_object_put(rep);
}

/* ---- the words ---- */

static void test_parse_time(void **state)
{
	(void)state;
	static const struct { const char *s; int ok; int64_t ns; } t[] = {
		{ "1970-01-01T00:00:00.000Z", 1, 0 },
		{ "2025-12-02T00:00:00Z", 1, FROM },
		{ "2025-12-02T00:00:01.5Z", 1, FROM + NS + NS / 2 },
		{ "2025-12-02T00:00:00.123456789123Z", 1, FROM + 123456789 },
		{ "2024-02-29T12:00:00.000Z", 1, 1709208000LL * NS },
		{ "2026-11-22T10:00:00.123Z", 1, 1795341600LL * NS + 123000000 },
		{ "2261-12-31T23:59:59.999Z", 1, 9214646399LL * NS + 999000000 },
		{ "2262-01-01T00:00:00.000Z", 0, 0 },       /* past what 64-bit ns hold */
		{ "9999-12-31T23:59:59.999Z", 0, 0 },
		{ "1969-12-31T23:59:59.999Z", 0, 0 },
		{ "2025-12-02T00:00:00.000", 0, 0 },
		{ "2025-12-02 00:00:00.000Z", 0, 0 },
		{ "2025-13-02T00:00:00.000Z", 0, 0 },
		{ "2025-02-30T00:00:00.000Z", 0, 0 },
		{ "2025-12-02T24:00:00.000Z", 0, 0 },
		{ "2025-12-02T00:00:00.Z", 0, 0 },
		{ "2025-12-02T00:00:00.000Z trailing", 0, 0 },
		{ "", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		int64_t ns = -1;
		int rc = vg_parse_time(t[i].s, &ns);

		if ((rc == 0) != t[i].ok || (t[i].ok && ns != t[i].ns))
			fail_msg("'%s': rc %d ns %lld", t[i].s, rc, (long long)ns);
	}
	assert_int_not_equal(vg_parse_time(NULL, &(int64_t){ 0 }), 0);
}

static void test_format_span(void **state)
{
	(void)state;
	static const struct { double s; const char *want; } t[] = {
		{ 0, "0s" }, { 0.25, "0.250s" }, { 42, "42s" }, { 60, "1m" }, { 65, "1m 5s" }, { 3600, "1h" },
		{ 3900, "1h 5m" }, { 86400, "24h" }, { 90000, "25h" }, { 7 * 86400, "7d" }, { 3 * 86400 + 7200, "3d 2h" },
	};
	char buf[32];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		vg_format_span(t[i].s, buf, sizeof(buf));
		assert_string_equal(buf, t[i].want);
	}
}

static void test_text(void **state)
{
	(void)state;
	static const struct row rows[] = {
		{ -30, "\"event\":\"state\",\"guard\":\"g\\nno leak seen\",\"cgroups\":[\"/a\"],\"state\":\"open\",\"why\":\"probe_passed\"" },
		{ 500, "\"event\":\"state\",\"guard\":\"g\\nno leak seen\",\"cgroups\":[\"/a\"],\"state\":\"closed\","
		       "\"why\":\"real_ip\",\"seen\":\"198.51.100.7\"" },
		{ 600, BLOCKED("/a", "no_tunnel", "curl\\u001b[2J", "192.0.2.1", 443) },
		END
	};
	struct json_object *rep = report_of(rows);
	char *text = vg_leak_report_text(rep), summary[512];

	assert_non_null(text);
	assert_non_null(strstr(text, "guard g\\nno leak seen (/a)"));
	assert_non_null(strstr(text, "open 8m 20s, closed 8m 20s, unknown 0s: 50.00% protected"));
	assert_non_null(strstr(text, "REAL ADDRESS 198.51.100.7"));
	assert_non_null(strstr(text, "by process: curl\\x1b[2J 1"));
	assert_non_null(strstr(text, "tcp 192.0.2.1:443: 1"));
	assert_null(strchr(text, 0x1b));
	/* The verdict is the last line, and the forged one in the name is no line of its own. */
	assert_non_null(strstr(text, "\nLEAK: a check saw a real address in this window\n"));
	assert_null(strstr(text, "\nno leak seen"));
	vg_leak_report_summary(rep, summary, sizeof(summary));
	assert_non_null(strstr(summary, "LEAK seen"));
	assert_non_null(strstr(summary, "50.00% protected, 1 blocked"));
	assert_null(strchr(summary, '\n'));
	free(text);
	json_object_put(rep);
}

/* ---- the command line of report (user/cli/args.c) ---- */

static const struct args_case {
	const char *id;
	const char *argv[8];
	int ok;
	unsigned since_ms;
	bool json, post;
	const char *log, *err;
} args_cases[] = {
	{ "bare: the default window", { "report" }, 1, 0, false, false, NULL, NULL },
	{ "everything", { "report", "--since", "7d", "--json", "--log", "/tmp/x.jsonl", "--post" }, 1,
	  7 * 86400000u, true, true, "/tmp/x.jsonl", NULL },
	{ "hours", { "report", "--since", "36h" }, 1, 36 * 3600000u, false, false, NULL, NULL },
	{ "31 days is the most", { "report", "--since", "31d" }, 1, 31 * 86400000u, false, false, NULL, NULL },
	{ "744h is 31 days", { "report", "--since", "744h" }, 1, 744 * 3600000u, false, false, NULL, NULL },
	{ "32 days is too long", { "report", "--since", "32d" }, 0, 0, false, false, NULL, "at most 31 days" },
	{ "not a duration", { "report", "--since", "soon" }, 0, 0, false, false, NULL, "--since soon" },
	{ "zero", { "report", "--since", "0s" }, 0, 0, false, false, NULL, "not a duration" },
	{ "given twice", { "report", "--since", "1h", "--since", "2h" }, 0, 0, false, false, NULL, "given twice" },
	{ "a forgotten value", { "report", "--since", "--json" }, 0, 0, false, false, NULL, "needs a value" },
	{ "attach's options are not report's", { "report", "--tunnel", "wg0" }, 0, 0, false, false, NULL, "unknown option" },
	{ "nor is --since attach's", { "status", "--since", "1h" }, 0, 0, false, false, NULL, "unknown option" },
};

static void test_report_args(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(args_cases) / sizeof(args_cases[0]); i++) {
		const struct args_case *c = &args_cases[i];
		char *argv[10] = { "vpnguard-bpf" }, err[256] = "";
		struct vg_options o;
		int argc = 1, rc;

		for (int k = 0; k < 8 && c->argv[k]; k++)
			argv[argc++] = (char *)c->argv[k];
		rc = vg_parse_args(argc, argv, &o, err, sizeof(err));
		if ((rc == 0) != c->ok || (c->err && !strstr(err, c->err)))
			fail_msg("%s: rc %d, err '%s'", c->id, rc, err);
		if (!c->ok)
			continue;
		if (o.cmd != VG_CMD_REPORT || o.since_ms != c->since_ms || o.json != c->json || o.post != c->post ||
		    (c->log ? !o.log || strcmp(o.log, c->log) : o.log != NULL))
			fail_msg("%s: cmd %d since %u json %d post %d", c->id, o.cmd, o.since_ms, o.json, o.post);
	}
	/* The other options keep their words: a day is their most, and "d" is not one of them. */
	unsigned ms;

	assert_int_not_equal(vg_parse_duration("1d", &ms), 0);
	assert_int_equal(vg_parse_duration("24h", &ms), 0);
	assert_int_not_equal(vg_parse_duration("25h", &ms), 0);
	assert_non_null(strstr(vg_usage, "vpnguard-bpf report  [--since DURATION] [--json] [--log FILE]"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accounting),
		cmocka_unit_test(test_protected_pct),
		cmocka_unit_test(test_tunnel_time),
		cmocka_unit_test(test_changes_and_seen),
		cmocka_unit_test(test_no_duration),
		cmocka_unit_test(test_changes_capped),
		cmocka_unit_test(test_garbage_counted),
		cmocka_unit_test(test_unordered_and_outside_counted),
		cmocka_unit_test(test_blocked),
		cmocka_unit_test(test_blocked_closest_cgroup),
		cmocka_unit_test(test_other_events),
		cmocka_unit_test(test_guards_apart),
		cmocka_unit_test(test_parse_time),
		cmocka_unit_test(test_format_span),
		cmocka_unit_test(test_text),
		cmocka_unit_test(test_report_args),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
