// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of log-viewer injection: a process's comm,
 * a cgroup path, a container name or anything else from the kernel, Docker
 * or the network may hold a newline, ESC or other control characters. Human
 * lines show them escaped (\n, \x1b) so they can neither forge a line nor
 * drive the terminal; JSON records stay JSON.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "docker_json.h"
#include "event_fmt.h"
#include "policy.h"
#include "scan_logic.h"

/* Nothing a terminal acts on: no C0 control, DEL, or C1 control (UTF-8 C2 80..9F). */
static void assert_inert(const char *line)
{
	for (const unsigned char *p = (const unsigned char *)line; *p; p++)
		if (*p < 0x20 || *p == 0x7f || (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			fail_msg("byte 0x%02x at %zu in '%s'", *p, (size_t)(p - (const unsigned char *)line), line);
}

static void assert_has(const char *line, const char *want)
{
	if (!strstr(line, want))
		fail_msg("'%s' does not hold '%s'", line, want);
}

static struct vg_event event_with_comm(const char *comm)
{
	struct vg_event e;

	memset(&e, 0, sizeof(e));
	e.pid = 77;
	e.hook = VG_HOOK_CONNECT4;
	e.reason = VG_R_DNS;
	e.family = AF_INET;
	e.proto = IPPROTO_UDP;
	e.dport = htons(53);
	e.dst.w[2] = htonl(0xffff);
	e.dst.w[3] = htonl(0x01010101);
	memcpy(e.comm, comm, strnlen(comm, sizeof(e.comm)));
	return e;
}

/* The comm: a newline that starts a forged line, and a terminal escape. */
static void test_blocked_comm(void **state)
{
	(void)state;
	struct vg_event e = event_with_comm("x\nOK all\x1b[2J");
	struct json_object *rec = vg_event_to_json(&e, 0, "/vpnguard.slice\r\x07");
	char line[1024];

	vg_record_to_line(rec, line, sizeof(line));
	assert_inert(line);
	assert_has(line, "by x\\nOK all\\x1b[2J (pid 77)");
	assert_has(line, "in /vpnguard.slice\\r\\x07,");
	/* The record itself stays JSON, escaped by json-c. */
	assert_has(json_object_to_json_string_ext(rec, JSON_C_TO_STRING_PLAIN), "\"comm\":\"x\\nOK all\\u001b[2J\"");
	json_object_put(rec);
}

/* Other records (Docker's names, probe errors, scan findings) print every field. */
static void test_other_record(void **state)
{
	(void)state;
	struct json_object *rec = json_object_new_object();
	char line[1024];

	json_object_object_add(rec, "time", json_object_new_string("2026-11-22T10:00:00.000Z"));
	json_object_object_add(rec, "event", json_object_new_string("docker\x1b]0;owned\x07"));
	json_object_object_add(rec, "name", json_object_new_string("qb\n2026-11-22 state open"));
	json_object_object_add(rec, "error\x1b[1m", json_object_new_string("tab\there\x7f"));
	vg_record_to_line(rec, line, sizeof(line));
	assert_inert(line);
	assert_has(line, "docker\\x1b]0;owned\\x07");
	assert_has(line, "name=qb\\n2026-11-22 state open");
	assert_has(line, "error\\x1b[1m=tab\\there\\x7f");
	json_object_put(rec);
}

/* A backslash is shown doubled, so a literal "\n" in a name is no escaped newline. */
static void test_backslash_and_utf8(void **state)
{
	(void)state;
	struct json_object *rec = json_object_new_object();
	char line[1024];

	json_object_object_add(rec, "event", json_object_new_string("scan"));
	json_object_object_add(rec, "comm", json_object_new_string("a\\nb"));
	/* UTF-8 text stays as it is; C1 controls (U+009B is a CSI) and bad bytes do not. */
	json_object_object_add(rec, "name", json_object_new_string("na\xc3\xafve \xe2\x82\xac"));
	json_object_object_add(rec, "c1", json_object_new_string("\xc2\x9b" "31m"));
	json_object_object_add(rec, "bad", json_object_new_string("\xff\xc3"));
	/* A right-to-left override would show the line's end at its start. */
	json_object_object_add(rec, "bidi", json_object_new_string("abc\xe2\x80\xae" "def"));
	vg_record_to_line(rec, line, sizeof(line));
	assert_inert(line);
	assert_has(line, "comm=a\\\\nb");
	assert_has(line, "name=na\xc3\xafve \xe2\x82\xac");
	assert_has(line, "c1=\\xc2\\x9b31m");
	assert_has(line, "bad=\\xff\\xc3");
	assert_has(line, "bidi=abc\\xe2\\x80\\xae" "def");
	json_object_put(rec);
}

static void test_text_escape(void **state)
{
	(void)state;
	static const struct { const char *in, *out; } t[] = {
		{ "plain", "plain" },
		{ "", "" },
		{ "a\nb\rc\td", "a\\nb\\rc\\td" },
		{ "\x1b[31m\x07\x7f\x01", "\\x1b[31m\\x07\\x7f\\x01" },
		{ "C:\\dir", "C:\\\\dir" },
		/* Overlong forms of '\n' and '/', a surrogate, past U+10FFFF, a cut character. */
		{ "\xc0\x8a", "\\xc0\\x8a" },
		{ "\xe0\x80\xaf", "\\xe0\\x80\\xaf" },
		{ "\xed\xa0\x80", "\\xed\\xa0\\x80" },
		{ "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80" },
		{ "ab\xe2\x82", "ab\\xe2\\x82" },
		/* Text that is UTF-8 stays: two, three and four bytes. */
		{ "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x94\x92" },
		/* U+2028 (a line separator) and U+2066 (an isolate) are format characters. */
		{ "\xe2\x80\xa8\xe2\x81\xa6", "\\xe2\\x80\\xa8\\xe2\\x81\\xa6" },
	};
	char buf[128];

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_ptr_equal(vg_text_escape(t[i].in, buf, sizeof(buf)), buf);
		assert_string_equal(buf, t[i].out);
	}
}

/* Cut to fit, at a whole escape or character: never half of "\x1b" or of a UTF-8 character. */
static void test_text_escape_cut(void **state)
{
	(void)state;
	char buf[16];

	memset(buf, 'Z', sizeof(buf));
	vg_text_escape("ab\x1b", buf, 5);
	assert_string_equal(buf, "ab");
	assert_int_equal(buf[5], 'Z');
	vg_text_escape("ab\x1b", buf, 7);
	assert_string_equal(buf, "ab\\x1b");
	vg_text_escape("a\xe2\x82\xac", buf, 4);
	assert_string_equal(buf, "a");
	vg_text_escape("a\xe2\x82\xac", buf, 5);
	assert_string_equal(buf, "a\xe2\x82\xac");
	/* Once a unit does not fit, a smaller one after it is not written either. */
	vg_text_escape("a\nb", buf, 3);
	assert_string_equal(buf, "a");
	vg_text_escape("abc", buf, 1);
	assert_string_equal(buf, "");
	buf[0] = 'Z';
	vg_text_escape("abc", buf, 0);
	assert_int_equal(buf[0], 'Z');
}

/* `scan` prints a finding's comm and cgroup: read from /proc, so the process chose them. */
static void test_scan_line(void **state)
{
	(void)state;
	struct vg_proc procs[] = {
		{ .pid = 10, .comm = "init", .cgroup = "/vg.slice/c", .start = 1, .netns = 1, .pidns = 2 },
		{ .pid = 11, .comm = "x\n2 guards\x1b[8m", .cgroup = "/vg.slice/c", .start = 2, .netns = 9, .pidns = 2 },
	};
	struct vg_scan_guard guards[] = { { 5, "/vg.slice" } };
	struct vg_scan_input in = { procs, 2, guards, 1, 77 };
	struct vg_finding f;
	char line[512];

	assert_int_equal(vg_scan_judge(&in, &f, 1), 1);
	struct json_object *rec = vg_finding_to_json(&in, &f);

	vg_finding_to_line(rec, line, sizeof(line));
	assert_inert(line);
	assert_has(line, "FOUND netns   pid 11 (x\\n2 guards\\x1b[8m) in /vg.slice/c: network namespace");
	json_object_put(rec);
}

/* The engine's error messages go to stderr: Docker hands back whatever name it was asked for. */
static void test_docker_messages(void **state)
{
	(void)state;
	char buf[256], err[256];
	struct vg_docker_container c;

	vg_docker_error_message("{\"message\":\"No such container: a\\nb\\u001b[2J\"}\n", buf, sizeof(buf));
	assert_inert(buf);
	assert_string_equal(buf, "No such container: a\\nb\\x1b[2J");
	vg_docker_error_message("plain\x1b[1m text\r\n", buf, sizeof(buf));
	assert_string_equal(buf, "plain\\x1b[1m text");
	assert_int_equal(vg_docker_parse_container("{\"Id\":\"ab\\ncd\",\"State\":{\"Running\":true,\"Pid\":0}}",
						   &c, err, sizeof(err)), -EINVAL);
	assert_inert(err);
	assert_has(err, "ab\\ncd");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocked_comm),
		cmocka_unit_test(test_other_record),
		cmocka_unit_test(test_backslash_and_utf8),
		cmocka_unit_test(test_text_escape),
		cmocka_unit_test(test_text_escape_cut),
		cmocka_unit_test(test_scan_line),
		cmocka_unit_test(test_docker_messages),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
