// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of log-viewer injection (issue 11 item 11): a process's comm,
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
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "event_fmt.h"
#include "policy.h"

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
	assert_has(json_object_to_json_string(rec), "\"comm\":\"x\\nOK all\\u001b[2J\"");
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_blocked_comm),
		cmocka_unit_test(test_other_record),
		cmocka_unit_test(test_backslash_and_utf8),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
