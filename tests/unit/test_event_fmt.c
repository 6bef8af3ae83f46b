// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of user/lib/event_fmt.c: struct vg_event to its JSON log record
 * (docs/design.md: time, event, reason, hook, cgroup, pid, comm, proto,
 * dst, dport, ...), wall-clock time formatting, and the human line.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "event_fmt.h"
#include "policy.h"

#define NS 1000000000LL

/* 2023-11-14T22:13:20.123456789Z */
#define REAL_NS (1700000000LL * NS + 123456789LL)
/* The event happened 12345.5 s after boot. */
#define BOOT_NS (12345LL * NS + 500000000LL)
#define BOOT_TO_REAL (REAL_NS - BOOT_NS)

static struct vg_event v4_event(void)
{
	struct vg_event e;

	memset(&e, 0, sizeof(e));
	e.time_ns = BOOT_NS;
	e.guard_cgroup = 4242;
	e.cgroup_id = 4343;
	e.pid = 1234;
	e.uid = 1000;
	memcpy(e.comm, "curl", 5);
	e.hook = VG_HOOK_CONNECT4;
	e.reason = VG_R_NO_TUNNEL;
	e.family = AF_INET;
	e.proto = IPPROTO_TCP;
	e.dport = htons(443);
	assert_int_equal(inet_pton(AF_INET, "93.184.216.34", &e.dst.w[3]), 1);
	e.dst.w[2] = htonl(0xffff);
	return e;
}

static struct vg_event v6_event(void)
{
	struct vg_event e = v4_event();

	e.hook = VG_HOOK_CONNECT6;
	e.reason = VG_R_IPV6;
	e.family = AF_INET6;
	e.proto = IPPROTO_UDP;
	e.dport = htons(8443);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::1", e.dst.w), 1);
	return e;
}

static struct json_object *get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!json_object_object_get_ex(o, key, &v))
		fail_msg("no key '%s' in %s", key, json_object_to_json_string(o));
	return v;
}

static void assert_json_str(struct json_object *o, const char *key, const char *want)
{
	struct json_object *v = get(o, key);

	if (!json_object_is_type(v, json_type_string))
		fail_msg("'%s' is not a string: %s", key, json_object_to_json_string(o));
	assert_string_equal(json_object_get_string(v), want);
}

static void assert_json_int(struct json_object *o, const char *key, int64_t want)
{
	struct json_object *v = get(o, key);

	if (!json_object_is_type(v, json_type_int))
		fail_msg("'%s' is not an integer: %s", key, json_object_to_json_string(o));
	assert_int_equal(json_object_get_int64(v), want);
}

static void assert_json_null(struct json_object *o, const char *key)
{
	struct json_object *v = get(o, key);

	if (v != NULL && !json_object_is_type(v, json_type_null))
		fail_msg("'%s' is not null: %s", key, json_object_to_json_string(o));
}

/* Serialises as the log does and parses back, as `events` reads it. */
static struct json_object *through_text(struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	struct json_object *back;

	assert_non_null(s);
	assert_null(strchr(s, '\n')); /* one record per line */
	back = json_tokener_parse(s);
	assert_non_null(back);
	return back;
}

static void assert_contains(const char *s, const char *part)
{
	if (!strstr(s, part))
		fail_msg("'%s' does not contain '%s'", s, part);
}

static void assert_lacks(const char *s, const char *part)
{
	if (strstr(s, part))
		fail_msg("'%s' contains '%s'", s, part);
}

/* ---- vg_event_to_json ---- */

static void check_v4_fields(struct json_object *o)
{
	assert_json_str(o, "time", "2023-11-14T22:13:20.123Z");
	assert_json_str(o, "event", "blocked");
	assert_json_str(o, "reason", "no_tunnel");
	assert_json_str(o, "hook", "connect4");
	assert_json_str(o, "cgroup", "/system.slice/qbittorrent.service");
	assert_json_int(o, "cgroup_id", 4242); /* the guard's */
	assert_json_int(o, "pid", 1234);
	assert_json_int(o, "uid", 1000);
	assert_json_str(o, "comm", "curl");
	assert_json_str(o, "proto", "tcp");
	assert_json_str(o, "family", "ipv4");
	assert_json_str(o, "dst", "93.184.216.34");
	assert_json_int(o, "dport", 443);
	assert_json_int(o, "ifindex", 0);
}

static void test_json_blocked_v4(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o = vg_event_to_json(&e, BOOT_TO_REAL,
						 "/system.slice/qbittorrent.service");

	assert_non_null(o);
	assert_true(json_object_is_type(o, json_type_object));
	check_v4_fields(o);

	struct json_object *back = through_text(o);
	check_v4_fields(back);
	json_object_put(back);
	json_object_put(o);
}

static void test_json_blocked_v6(void **state)
{
	(void)state;
	struct vg_event e = v6_event();
	struct json_object *o = vg_event_to_json(&e, BOOT_TO_REAL, "/vpn.slice");

	assert_json_str(o, "reason", "ipv6");
	assert_json_str(o, "hook", "connect6");
	assert_json_str(o, "proto", "udp");
	assert_json_str(o, "family", "ipv6");
	assert_json_str(o, "dst", "2001:db8::1");
	assert_json_int(o, "dport", 8443);
	json_object_put(o);
}

/* The BPF side writes the port as it is on the wire; the record has the number. */
static void test_json_dport_host_order(void **state)
{
	(void)state;
	static const uint16_t ports[] = { 1, 53, 80, 0x1234, 0x8000, 51820, 65535 };
	struct vg_event e = v4_event();

	for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		e.dport = htons(ports[i]);
		struct json_object *o = vg_event_to_json(&e, 0, NULL);

		assert_json_int(o, "dport", ports[i]);
		json_object_put(o);
	}
}

/* comm is 16 bytes and the kernel fills it without a NUL when the name is 16 long. */
static void test_json_comm_without_nul(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o;

	assert_int_equal(sizeof(e.comm), 16);
	memcpy(e.comm, "abcdefghijklmnop", 16);
	/* What follows comm in the struct must not leak into the name. */
	e.hook = VG_HOOK_EGRESS;
	e.reason = VG_R_OFF_TUNNEL;
	o = vg_event_to_json(&e, 0, NULL);
	assert_json_str(o, "comm", "abcdefghijklmnop");
	assert_int_equal(strlen(json_object_get_string(get(o, "comm"))), 16);
	json_object_put(o);

	/* A NUL inside ends the name; bytes after it do not show. */
	memcpy(e.comm, "ab\0cdefghijklmno", 16);
	o = vg_event_to_json(&e, 0, NULL);
	assert_json_str(o, "comm", "ab");
	json_object_put(o);

	/* No process context (softirq): empty comm, pid 0. */
	memset(e.comm, 0, sizeof(e.comm));
	e.pid = 0;
	o = vg_event_to_json(&e, 0, NULL);
	assert_json_str(o, "comm", "");
	assert_json_int(o, "pid", 0);
	json_object_put(o);
}

static void test_json_no_dst_hooks(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o;

	e.hook = VG_HOOK_SOCK_CREATE;
	e.reason = VG_R_RAW;
	e.proto = IPPROTO_RAW;
	o = vg_event_to_json(&e, BOOT_TO_REAL, "/a");
	assert_json_str(o, "hook", "sock_create");
	assert_json_str(o, "reason", "raw_socket");
	assert_json_null(o, "dst");
	assert_json_null(o, "dport");
	assert_json_str(o, "event", "blocked");
	assert_json_int(o, "pid", 1234);
	/* Still null after a trip through the log. */
	struct json_object *back = through_text(o);
	assert_json_null(back, "dst");
	assert_json_null(back, "dport");
	json_object_put(back);
	json_object_put(o);

	e = v6_event();
	e.hook = VG_HOOK_SETSOCKOPT;
	e.reason = VG_R_SOCKOPT;
	o = vg_event_to_json(&e, BOOT_TO_REAL, "/a");
	assert_json_str(o, "hook", "setsockopt");
	assert_json_str(o, "reason", "sockopt");
	assert_json_null(o, "dst");
	assert_json_null(o, "dport");
	json_object_put(o);
}

static void test_json_dst_hooks(void **state)
{
	(void)state;
	static const unsigned hooks[] = {
		VG_HOOK_CONNECT4, VG_HOOK_CONNECT6, VG_HOOK_SENDMSG4, VG_HOOK_SENDMSG6,
		VG_HOOK_EGRESS, VG_HOOK_TC,
	};
	struct vg_event e = v4_event();

	for (size_t i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
		e.hook = hooks[i];
		e.ifindex = hooks[i] >= VG_HOOK_EGRESS ? 3 : 0;
		struct json_object *o = vg_event_to_json(&e, 0, NULL);

		assert_json_str(o, "hook", vg_hook_name(hooks[i]));
		assert_json_str(o, "dst", "93.184.216.34");
		assert_json_int(o, "dport", 443);
		assert_json_int(o, "ifindex", e.ifindex);
		json_object_put(o);
	}
}

static void test_json_cgroup_unknown(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o = vg_event_to_json(&e, BOOT_TO_REAL, NULL);

	assert_json_null(o, "cgroup");
	assert_json_int(o, "cgroup_id", 4242);
	json_object_put(o);
}

static void test_json_out_of_range_values(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o;

	e.hook = 0;
	e.reason = 250;
	e.proto = 132; /* SCTP */
	o = vg_event_to_json(&e, 0, NULL);
	assert_json_str(o, "hook", "unknown");
	assert_json_str(o, "reason", "unknown");
	assert_json_str(o, "proto", "other");
	json_object_put(o);

	e.hook = VG_HOOK_MAX;
	e.proto = 0;
	o = vg_event_to_json(&e, 0, NULL);
	assert_json_str(o, "hook", "unknown");
	assert_json_str(o, "proto", "");
	json_object_put(o);
}

/* Large unsigned values keep their value (no sign flip). */
static void test_json_large_ids(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o;

	e.pid = 4000000000u;
	e.uid = 4294967295u;
	e.guard_cgroup = 0x8000000000000001ull;
	o = vg_event_to_json(&e, 0, NULL);
	assert_json_int(o, "pid", 4000000000LL);
	assert_json_int(o, "uid", 4294967295LL);
	assert_true(json_object_get_uint64(get(o, "cgroup_id")) == 0x8000000000000001ull);
	json_object_put(o);
}

/* ---- vg_format_time ---- */

static void expect_time(int64_t ns, const char *want)
{
	char buf[64];

	memset(buf, 'Z', sizeof(buf));
	vg_format_time(ns, buf, sizeof(buf));
	assert_string_equal(buf, want);
}

static void test_format_time(void **state)
{
	(void)state;
	expect_time(0, "1970-01-01T00:00:00.000Z");
	expect_time(REAL_NS, "2023-11-14T22:13:20.123Z");
	expect_time(1234567890LL * NS, "2009-02-13T23:31:30.000Z");
	/* Leap day. */
	expect_time(951782400LL * NS + 7000000, "2000-02-29T00:00:00.007Z");
	/* Milliseconds are cut, not rounded. */
	expect_time(999999999LL, "1970-01-01T00:00:00.999Z");
	expect_time(4102444799LL * NS + 999999999LL, "2099-12-31T23:59:59.999Z");
	expect_time(1000000LL, "1970-01-01T00:00:00.001Z");
	expect_time(999999LL, "1970-01-01T00:00:00.000Z");
	/* Past 2038 (64-bit time_t). */
	expect_time(2147483648LL * NS + 50000000LL, "2038-01-19T03:14:08.050Z");
}

static void test_format_time_small_buffer(void **state)
{
	(void)state;
	char buf[16];

	memset(buf, 'Z', sizeof(buf));
	vg_format_time(REAL_NS, buf, 11);
	assert_string_equal(buf, "2023-11-14");
	for (size_t i = 11; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 'Z');
}

/* ---- vg_record_to_line ---- */

static void test_line_blocked_v4(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o = vg_event_to_json(&e, BOOT_TO_REAL, "/system.slice/x.service");
	char line[512];

	vg_record_to_line(o, line, sizeof(line));
	assert_true(strncmp(line, "2023-11-14T22:13:20.123Z ", 25) == 0);
	assert_contains(line, " BLOCKED ");
	assert_contains(line, " tcp ");
	assert_contains(line, " 93.184.216.34:443 ");
	assert_contains(line, " no_tunnel ");
	assert_contains(line, " by curl ");
	assert_contains(line, "(pid 1234)");
	assert_contains(line, " in /system.slice/x.service");
	assert_contains(line, "hook connect4");
	assert_null(strchr(line, '\n'));
	json_object_put(o);
}

static void test_line_blocked_v6(void **state)
{
	(void)state;
	struct vg_event e = v6_event();
	struct json_object *o = vg_event_to_json(&e, BOOT_TO_REAL, "/vpn.slice");
	char line[512];

	vg_record_to_line(o, line, sizeof(line));
	assert_contains(line, " BLOCKED ");
	assert_contains(line, " udp ");
	assert_contains(line, " [2001:db8::1]:8443 ");
	assert_contains(line, " ipv6 ");
	assert_contains(line, "hook connect6");
	json_object_put(o);
}

static void test_line_blocked_no_dst(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o;
	char line[512];

	e.hook = VG_HOOK_SETSOCKOPT;
	e.reason = VG_R_SOCKOPT;
	o = vg_event_to_json(&e, BOOT_TO_REAL, "/a");
	vg_record_to_line(o, line, sizeof(line));
	assert_contains(line, " BLOCKED ");
	assert_contains(line, "tcp socket");
	assert_contains(line, " sockopt ");
	assert_contains(line, "hook setsockopt");
	assert_lacks(line, "93.184.216.34");
	assert_lacks(line, ":443");
	json_object_put(o);

	e.hook = VG_HOOK_SOCK_CREATE;
	e.reason = VG_R_RAW;
	e.proto = 0;
	o = vg_event_to_json(&e, BOOT_TO_REAL, "/a");
	vg_record_to_line(o, line, sizeof(line));
	assert_contains(line, "a socket");
	assert_contains(line, " raw_socket ");
	json_object_put(o);
}

/* No cgroup path known: the line names the guard by its id. */
static void test_line_blocked_cgroup_id(void **state)
{
	(void)state;
	struct vg_event e = v4_event();
	struct json_object *o = vg_event_to_json(&e, BOOT_TO_REAL, NULL);
	char line[512];

	vg_record_to_line(o, line, sizeof(line));
	assert_contains(line, " in 4242,");
	json_object_put(o);
}

/* A record as `events` reads it from the log: text, not built here. */
static void test_line_blocked_from_text(void **state)
{
	(void)state;
	struct json_object *o = json_tokener_parse(
		"{\"time\":\"2026-11-22T10:00:00.123Z\",\"event\":\"blocked\",\"reason\":\"dns\","
		"\"hook\":\"sendmsg4\",\"cgroup\":\"/docker/abc\",\"cgroup_id\":77,\"pid\":99,"
		"\"uid\":0,\"comm\":\"dig\",\"proto\":\"udp\",\"family\":\"ipv4\","
		"\"dst\":\"8.8.8.8\",\"dport\":53,\"ifindex\":0}");
	char line[512];

	assert_non_null(o);
	vg_record_to_line(o, line, sizeof(line));
	assert_true(strncmp(line, "2026-11-22T10:00:00.123Z BLOCKED ", 33) == 0);
	assert_contains(line, " udp ");
	assert_contains(line, " 8.8.8.8:53 ");
	assert_contains(line, " dns ");
	assert_contains(line, " by dig ");
	assert_contains(line, "(pid 99)");
	assert_contains(line, " in /docker/abc");
	assert_contains(line, "hook sendmsg4");
	json_object_put(o);
}

/*
 * Every kind of record the agent writes (docs/design.md, "The agent"), as
 * `events` reads it from the log: a sentence for a person, with every field
 * it holds visible (those the words do not say as key=value), and the time
 * and kind never repeated as key=value.
 */
#define T "2026-11-22T10:00:01.000Z"
#define REC(kind, fields) "{\"time\":\"" T "\",\"event\":\"" kind "\"" fields "}"
#define CG ",\"guard\":\"torrent\",\"cgroups\":[\"/sys/fs/cgroup/vpn.slice\",\"/docker/abc\"]"

static const struct line_case {
	const char *id, *json;
	const char *has[6];
	const char *lacks[4];
} line_cases[] = {
	{ "state closed, probe failed",
	  REC("state", CG ",\"state\":\"closed\",\"why\":\"probe_failed\",\"error\":\"connect: timed out\",\"duration_s\":10.0"),
	  { T " CLOSED guard torrent (/sys/fs/cgroup/vpn.slice, /docker/abc): the check failed [probe_failed]",
	    ", in 10.000 s: connect: timed out" },
	  { "why=", "state=", "guard=", "error=" } },
	{ "state open, probe passed",
	  REC("state", CG ",\"state\":\"open\",\"why\":\"probe_passed\",\"seen\":\"5.6.7.8\",\"duration_s\":0.25"),
	  { T " OPEN guard torrent (", "): the check passed [probe_passed], address seen 5.6.7.8, in 0.250 s" },
	  { "seen=", "duration_s=", "cgroups=" } },
	{ "state closed, real address: a leak",
	  REC("state", CG ",\"state\":\"closed\",\"why\":\"real_ip\",\"seen\":\"198.51.100.7\""),
	  { "CLOSED guard torrent", "LEAK: the check saw the real address [real_ip], address seen 198.51.100.7" }, { NULL } },
	{ "state closed, gluetun",
	  REC("state", CG ",\"state\":\"closed\",\"why\":\"gluetun_not_running\",\"gluetun\":\"stopped\""),
	  { "CLOSED guard torrent", "gluetun is not running [gluetun_not_running], gluetun stopped" },
	  { "gluetun=" } },
	{ "state with a field the words do not know",
	  REC("state", CG ",\"state\":\"closed\",\"why\":\"unexpected_ip\",\"seen\":\"203.0.113.9\",\"expected\":\"10.0.0.0/8\""),
	  { "outside --expect-ip [unexpected_ip], address seen 203.0.113.9", " expected=10.0.0.0/8" }, { NULL } },
	{ "probe passed",
	  REC("probe", CG ",\"why\":\"probe_passed\",\"seen\":\"5.6.7.8\",\"duration_s\":0.125"),
	  { T " check of guard torrent (", "): passed [probe_passed], address seen 5.6.7.8, in 0.125 s" },
	  { "OPEN", "CLOSED", "why=" } },
	{ "probe failed, in a row",
	  REC("probe", CG ",\"why\":\"probe_failed\",\"error\":\"HTTP 503\",\"failed_in_a_row\":2"),
	  { "check of guard torrent", ": failed [probe_failed], 2 in a row: HTTP 503" },
	  { "failed_in_a_row=" } },
	{ "probe without duration or cgroups",
	  REC("probe", ",\"guard\":\"g\",\"why\":\"probe_passed\""),
	  { T " check of guard g: passed [probe_passed]" }, { " in ", "duration" } },
	{ "tunnel up",
	  REC("tunnel_up", ",\"tunnel\":\"wg0\",\"ifindex\":7,\"cgroup\":null"),
	  { T " TUNNEL UP wg0 (ifindex 7) for the guard of cgroup id ?", " cgroup=-" },
	  { "tunnel=", "ifindex=", "event=", "time=" } },
	{ "tunnel down",
	  REC("tunnel_down", ",\"cgroup_id\":4242,\"tunnel\":\"wg0\",\"ifindex\":0,\"map_updated_after_us\":180"),
	  { T " TUNNEL DOWN wg0 (ifindex 0) for the guard of cgroup id 4242, maps updated 180 us after" },
	  { "map_updated_after_us=", "cgroup_id=" } },
	{ "reload applied",
	  REC("reload", ",\"trigger\":\"sighup\",\"config\":\"/etc/vpnguard/vpnguard.conf\",\"result\":\"applied\",\"guards\":2,\"detached\":1"),
	  { T " reload (sighup) of /etc/vpnguard/vpnguard.conf: applied, 2 guards, 1 cgroup detached" },
	  { "result=", "trigger=" } },
	{ "reload refused",
	  REC("reload", ",\"trigger\":\"sighup\",\"config\":null,\"result\":\"refused\",\"error\":\"x.conf:3: unknown key\""),
	  { "reload (sighup) of the command line: refused: x.conf:3: unknown key" }, { "error=" } },
	{ "docker start",
	  REC("docker", ",\"container\":\"qbit\",\"id\":\"0123456789abcdef0123\",\"action\":\"start\",\"reload\":\"applied\",\"after_start_ms\":42.5"),
	  { T " docker: container qbit (id 0123456789ab) start; reload applied, 42.5 ms after it started" },
	  { "container=", "after_start_ms=" } },
	{ "docker stream error",
	  REC("docker", ",\"action\":\"stream\",\"error\":\"connect: No such file or directory\""),
	  { "docker: the engine's events stream: connect: No such file or directory" }, { NULL } },
	{ "docker engine gone",
	  REC("docker", ",\"action\":\"engine_gone\",\"error\":\"docker: /run/docker.sock: Connection refused\""),
	  { T " docker: the engine is gone: docker: /run/docker.sock: Connection refused" }, { NULL } },
	{ "docker engine back",
	  REC("docker", ",\"action\":\"engine_back\",\"gone_s\":4.27,\"reload\":\"applied\""),
	  { T " docker: the engine is back after 4.3 s; reload applied" }, { "gone_s=" } },
	{ "docker events lost",
	  REC("docker", ",\"action\":\"lost\",\"error\":\"events queue full: some were dropped\""),
	  { "docker: the engine's events were lost: events queue full" }, { NULL } },
	{ "scan",
	  REC("scan", ",\"reason\":\"netns\",\"pid\":321,\"comm\":\"s6-svscan\",\"cgroup\":\"/docker/abc\","
	      "\"guard\":\"/vpn.slice\",\"guard_id\":55,\"container_pid\":300,\"detail\":\"in the host's network namespace\""),
	  { T " scan reason=netns: pid 321 (comm=s6-svscan) in /docker/abc escapes its guard /vpn.slice (cgroup id 55)",
	    ", container pid 300: in the host's network namespace" },
	  { "detail=", "guard_id=" } },
	{ "pins restored",
	  REC("pins", ",\"why\":\"pins_removed\",\"pin_root\":\"/sys/fs/bpf/vpnguard\",\"action\":\"restored\",\"pins\":12"),
	  { T " PINS under /sys/fs/bpf/vpnguard: made again (pins_removed), 12 pins" }, { "pin_root=" } },
	{ "pins lost",
	  REC("pins", ",\"why\":\"pins_removed\",\"pin_root\":\"/sys/fs/bpf/x\",\"action\":\"lost\",\"error\":\"Permission denied\""),
	  { "PINS under /sys/fs/bpf/x: could not be made again (pins_removed): Permission denied" }, { NULL } },
	{ "log lost",
	  REC("log", ",\"lost\":17"),
	  { T " log: 17 records could not be written" }, { "lost=" } },
	{ "a kind the words do not know",
	  REC("lease_expired", ",\"cgroup\":\"/a\",\"guard\":12"),
	  { T " lease_expired cgroup=/a guard=12" }, { NULL } },
	{ "blocked: uid and an egress ifindex after the words of old",
	  "{\"time\":\"" T "\",\"event\":\"blocked\",\"reason\":\"off_tunnel\",\"hook\":\"egress\",\"cgroup\":\"/a\","
	  "\"cgroup_id\":7,\"pid\":5,\"uid\":1000,\"comm\":\"nc\",\"proto\":\"udp\",\"family\":\"ipv4\","
	  "\"dst\":\"192.0.2.1\",\"dport\":9,\"ifindex\":3,\"note\":\"x\"}",
	  { "BLOCKED udp ", " 192.0.2.1:9 ", " by nc (pid 5) in /a, hook egress, uid 1000, ifindex 3", " note=x" },
	  { "family=", "cgroup_id=", "uid=" } },
};

static void test_line_each_kind(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(line_cases) / sizeof(line_cases[0]); i++) {
		const struct line_case *c = &line_cases[i];
		struct json_object *o = json_tokener_parse(c->json);
		char line[1024];

		if (!o)
			fail_msg("%s: the case's JSON does not parse", c->id);
		vg_record_to_line(o, line, sizeof(line));
		for (size_t k = 0; k < 6 && c->has[k]; k++)
			if (!strstr(line, c->has[k]))
				fail_msg("%s: '%s' does not contain '%s'", c->id, line, c->has[k]);
		for (size_t k = 0; k < 4 && c->lacks[k]; k++)
			if (strstr(line, c->lacks[k]))
				fail_msg("%s: '%s' contains '%s'", c->id, line, c->lacks[k]);
		assert_null(strchr(line, '\n'));
		json_object_put(o);
	}
}

/* What a record's text could forge (a newline, a terminal escape) stays escaped in the words too. */
static void test_line_words_escaped(void **state)
{
	(void)state;
	struct json_object *o = json_tokener_parse(
		REC("state", ",\"guard\":\"g\\n" T " OPEN guard g\",\"cgroups\":[\"/a\\u001b[2J\"],"
		    "\"state\":\"closed\",\"why\":\"probe_failed\",\"error\":\"bad\\rline\""));
	char line[1024];

	assert_non_null(o);
	vg_record_to_line(o, line, sizeof(line));
	assert_null(strchr(line, '\n'));
	assert_null(strchr(line, '\r'));
	assert_null(strchr(line, 0x1b));
	assert_contains(line, "guard g\\n" T " OPEN guard g (/a\\x1b[2J)");
	assert_contains(line, ": bad\\rline");
	json_object_put(o);
}

static void test_line_record_without_kind(void **state)
{
	(void)state;
	struct json_object *o = json_tokener_parse("{\"note\":\"hello\"}");
	char line[256];

	vg_record_to_line(o, line, sizeof(line));
	/* No time, no event: placeholders, then the fields. */
	assert_true(strncmp(line, "- record", 8) == 0);
	assert_contains(line, " note=hello");
	json_object_put(o);
}

/*
 * `events` hands every line of the log that parses as JSON to
 * vg_record_to_line. A torn line (agent killed mid-write, disk full) such as
 * 443,"ifindex":0} parses as the number 443; a line may also be an array or
 * a string. Such a record must give some line, not a crash
 * (json_object_object_foreach on a non-object dereferences NULL).
 */
static void test_line_non_object_record(void **state)
{
	(void)state;
	static const char *const texts[] = { "443,\"ifindex\":0}", "[1,2]", "\"abc\"", "true" };
	char line[256];

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct json_object *o = json_tokener_parse(texts[i]);

		assert_non_null(o);
		assert_false(json_object_is_type(o, json_type_object));
		memset(line, 'Z', sizeof(line));
		vg_record_to_line(o, line, sizeof(line));
		assert_non_null(memchr(line, 0, sizeof(line)));
		json_object_put(o);
	}
}

/* Every length of buffer gets a terminated prefix and nothing past its end. */
static void test_line_truncation(void **state)
{
	(void)state;
	struct json_object *other = json_tokener_parse(
		"{\"time\":\"2026-11-22T10:00:01.000Z\",\"event\":\"lease_expired\","
		"\"cgroup\":\"/a/very/long/cgroup/path/for/truncation\",\"guard\":12345,"
		"\"detail\":\"the agent stopped renewing the lease of this guard\"}");
	struct vg_event e = v6_event();
	struct json_object *blocked = vg_event_to_json(&e, BOOT_TO_REAL, "/a/b/c");
	struct json_object *recs[] = { other, blocked };
	char full[512], buf[512 + 16];

	assert_non_null(other);
	for (size_t r = 0; r < 2; r++) {
		vg_record_to_line(recs[r], full, sizeof(full));
		size_t flen = strlen(full);

		assert_true(flen > 60);
		for (size_t len = 1; len <= flen + 2; len++) {
			memset(buf, 'Z', sizeof(buf));
			vg_record_to_line(recs[r], buf, len);
			size_t n = strnlen(buf, len);

			if (n >= len)
				fail_msg("no NUL within %zu bytes", len);
			if (strncmp(buf, full, n) || n != (len - 1 < flen ? len - 1 : flen))
				fail_msg("len %zu: '%s' is not the prefix of '%s'", len, buf, full);
			for (size_t i = len; i < sizeof(buf); i++)
				if (buf[i] != 'Z')
					fail_msg("len %zu: byte %zu written", len, i);
		}
	}
	json_object_put(other);
	json_object_put(blocked);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_blocked_v4),
		cmocka_unit_test(test_json_blocked_v6),
		cmocka_unit_test(test_json_dport_host_order),
		cmocka_unit_test(test_json_comm_without_nul),
		cmocka_unit_test(test_json_no_dst_hooks),
		cmocka_unit_test(test_json_dst_hooks),
		cmocka_unit_test(test_json_cgroup_unknown),
		cmocka_unit_test(test_json_out_of_range_values),
		cmocka_unit_test(test_json_large_ids),
		cmocka_unit_test(test_format_time),
		cmocka_unit_test(test_format_time_small_buffer),
		cmocka_unit_test(test_line_blocked_v4),
		cmocka_unit_test(test_line_blocked_v6),
		cmocka_unit_test(test_line_blocked_no_dst),
		cmocka_unit_test(test_line_blocked_cgroup_id),
		cmocka_unit_test(test_line_blocked_from_text),
		cmocka_unit_test(test_line_each_kind),
		cmocka_unit_test(test_line_words_escaped),
		cmocka_unit_test(test_line_record_without_kind),
		cmocka_unit_test(test_line_non_object_record),
		cmocka_unit_test(test_line_truncation),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
