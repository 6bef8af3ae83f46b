// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of user/docker/docker_json.c: the Docker Engine API answers as the
 * engine writes them (inspect, errors, the event stream cut anywhere), and
 * the rules for hosts and names. No engine, no root.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "docker_json.h"

/* Trimmed from a real answer of Debian 12's engine (API 1.41). */
static const char inspect_running[] =
	"{\"Id\":\"3a08d348b6ce034f771db2950363b9bf3b0b7727d15809993bb8be1190ed97ae\","
	"\"Created\":\"2026-11-22T11:07:08.669375471Z\",\"Path\":\"/bin/sleep\",\"Args\":[\"1000\"],"
	"\"State\":{\"Status\":\"running\",\"Running\":true,\"Paused\":false,\"Restarting\":false,"
	"\"OOMKilled\":false,\"Dead\":false,\"Pid\":6314,\"ExitCode\":0,\"Error\":\"\","
	"\"StartedAt\":\"2026-11-22T11:07:08.840348014Z\",\"FinishedAt\":\"0001-01-01T00:00:00Z\"},"
	"\"Name\":\"/qbit\",\"RestartCount\":0,"
	"\"HostConfig\":{\"NetworkMode\":\"none\",\"CgroupParent\":\"/vpnguard.slice\"}}";

static const char inspect_exited[] =
	"{\"Id\":\"b5d512fcb88d\",\"State\":{\"Status\":\"exited\",\"Running\":false,\"Pid\":0,"
	"\"ExitCode\":137,\"StartedAt\":\"2026-11-22T11:06:00Z\"},\"Name\":\"/gluetun\"}";

static void test_parse_running(void **state)
{
	(void)state;
	struct vg_docker_container c;
	char err[128];

	assert_int_equal(vg_docker_parse_container(inspect_running, &c, err, sizeof(err)), 0);
	assert_string_equal(c.id, "3a08d348b6ce034f771db2950363b9bf3b0b7727d15809993bb8be1190ed97ae");
	assert_string_equal(c.name, "qbit");
	assert_string_equal(c.status, "running");
	assert_string_equal(c.started, "2026-11-22T11:07:08.840348014Z");
	assert_true(c.running);
	assert_int_equal(c.pid, 6314);
	assert_false(c.paused);
	assert_string_equal(c.health, "");
	assert_string_equal(c.network_mode, "none");
}

/* The fields restart-dependents and on-closed read: health, pause, the namespace it joins. */
static void test_parse_health_and_mode(void **state)
{
	static const char body[] =
		"{\"Id\":\"c1\",\"Name\":\"/qbit\",\"State\":{\"Status\":\"paused\",\"Running\":true,"
		"\"Paused\":true,\"Pid\":77,\"Health\":{\"Status\":\"unhealthy\",\"FailingStreak\":3}},"
		"\"HostConfig\":{\"NetworkMode\":\"container:b5d512fcb88d\"}}";
	struct vg_docker_container c;
	char err[128];

	(void)state;
	assert_int_equal(vg_docker_parse_container(body, &c, err, sizeof(err)), 0);
	assert_true(c.paused);
	assert_string_equal(c.health, "unhealthy");
	assert_string_equal(c.network_mode, "container:b5d512fcb88d");
}

static void test_parse_list(void **state)
{
	static const char body[] =
		"[{\"Id\":\"aa11\",\"Names\":[\"/vpn\"],\"State\":\"running\","
		"\"HostConfig\":{\"NetworkMode\":\"bridge\"}},"
		"{\"Names\":[\"/no-id\"]},"
		"{\"Id\":\"bb22\",\"Names\":[\"/qbit\"],\"State\":\"exited\","
		"\"HostConfig\":{\"NetworkMode\":\"container:aa11\"}},"
		"{\"Id\":\"cc33\",\"State\":\"paused\"}]";
	struct vg_docker_summary l[4];
	char err[128];
	int n;

	(void)state;
	assert_int_equal(vg_docker_parse_list(body, l, 4, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 3);
	assert_string_equal(l[0].name, "vpn");
	assert_string_equal(l[1].network_mode, "container:aa11");
	assert_string_equal(l[1].state, "exited");
	assert_string_equal(l[2].name, "");
	assert_int_equal(vg_docker_parse_list(body, l, 2, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 2);
	assert_int_equal(vg_docker_parse_list("{}", l, 4, &n, err, sizeof(err)), -EINVAL);
	assert_int_equal(vg_docker_parse_list("[", l, 4, &n, err, sizeof(err)), -EINVAL);
}

static void test_joins(void **state)
{
	static const struct { const char *mode; bool joins; } rows[] = {
		{ "container:b5d512fcb88d0123", true },
		{ "container:b5d512fcb88d", true },
		{ "container:gluetun", true },
		{ "container:b5d5", true },
		{ "container:", false },
		{ "container:b5d512fcb88d0123ff", false },
		{ "container:gluetun2", false },
		{ "b5d512fcb88d0123", false },
		{ "bridge", false },
		{ "", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (vg_docker_joins(rows[i].mode, "b5d512fcb88d0123", "gluetun") != rows[i].joins)
			fail_msg("%s: %s", rows[i].mode, rows[i].joins ? "should join" : "should not join");
}

static void test_parse_exited(void **state)
{
	(void)state;
	struct vg_docker_container c;
	char err[128];

	assert_int_equal(vg_docker_parse_container(inspect_exited, &c, err, sizeof(err)), 0);
	assert_string_equal(c.name, "gluetun");
	assert_string_equal(c.status, "exited");
	assert_false(c.running);
	assert_int_equal(c.pid, 0);
}

static void expect_bad_inspect(const char *body, const char *want)
{
	struct vg_docker_container c;
	char err[128] = "";

	assert_int_equal(vg_docker_parse_container(body, &c, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': message '%s' does not mention '%s'", body, err, want);
}

static void test_parse_not_an_answer(void **state)
{
	(void)state;
	expect_bad_inspect("", "not a JSON object");
	expect_bad_inspect("[1,2]", "not a JSON object");
	expect_bad_inspect("{\"Id\":\"x\"", "not a JSON object");
	expect_bad_inspect("{\"message\":\"page not found\"}", "no Id or State");
	expect_bad_inspect("{\"Id\":\"abc\",\"State\":\"running\"}", "no Id or State");
	/* Running with no process: nothing to guard, and not to be guessed. */
	expect_bad_inspect("{\"Id\":\"abc\",\"State\":{\"Running\":true,\"Pid\":0}}", "no process");
	expect_bad_inspect("{\"Id\":\"abc\",\"State\":{\"Running\":true}}", "no process");
}

static void test_parse_long_fields_cut(void **state)
{
	(void)state;
	struct vg_docker_container c;
	char body[1024], err[128];

	snprintf(body, sizeof(body), "{\"Id\":\"%0300d\",\"Name\":\"/n\",\"State\":{\"Running\":true,"
		 "\"Pid\":7,\"Status\":\"running-with-a-very-long-status\"}}", 1);
	assert_int_equal(vg_docker_parse_container(body, &c, err, sizeof(err)), 0);
	assert_int_equal(strlen(c.id), sizeof(c.id) - 1);
	assert_int_equal(strlen(c.status), sizeof(c.status) - 1);
	assert_int_equal(c.pid, 7);
}

static void test_error_message(void **state)
{
	(void)state;
	char buf[64];

	vg_docker_error_message("{\"message\":\"No such container: nope\"}\n", buf, sizeof(buf));
	assert_string_equal(buf, "No such container: nope");
	vg_docker_error_message("404 page not found\n", buf, sizeof(buf));
	assert_string_equal(buf, "404 page not found");
	vg_docker_error_message("", buf, sizeof(buf));
	assert_string_equal(buf, "");
	vg_docker_error_message("{\"other\":1}", buf, sizeof(buf));
	assert_string_equal(buf, "{\"other\":1}");
}

static void test_host_socket(void **state)
{
	(void)state;
	char path[32];

	assert_int_equal(vg_docker_host_socket("unix:///var/run/docker.sock", path, sizeof(path)), 0);
	assert_string_equal(path, "/var/run/docker.sock");
	assert_int_equal(vg_docker_host_socket("unix:///run/user/1000/docker.sock", path, sizeof(path)), 0);
	assert_string_equal(path, "/run/user/1000/docker.sock");
	assert_int_equal(vg_docker_host_socket("tcp://127.0.0.1:2375", path, sizeof(path)), -EPROTONOSUPPORT);
	assert_int_equal(vg_docker_host_socket("ssh://me@host", path, sizeof(path)), -EPROTONOSUPPORT);
	assert_int_equal(vg_docker_host_socket("/var/run/docker.sock", path, sizeof(path)), -EINVAL);
	assert_int_equal(vg_docker_host_socket("unix://", path, sizeof(path)), -EINVAL);
	assert_int_equal(vg_docker_host_socket("unix://relative.sock", path, sizeof(path)), -EINVAL);
	assert_int_equal(vg_docker_host_socket("UNIX:///x", path, sizeof(path)), -EPROTONOSUPPORT);
	assert_int_equal(vg_docker_host_socket("", path, sizeof(path)), -EINVAL);
	assert_int_equal(vg_docker_host_socket(NULL, path, sizeof(path)), -EINVAL);
	/* Does not fit: refused, never cut into another path. */
	assert_int_equal(vg_docker_host_socket("unix:///a/very/long/path/to/a/docker.sock", path,
					       sizeof(path)), -EINVAL);
}

static void test_host_pick(void **state)
{
	(void)state;
	assert_string_equal(vg_docker_host_pick(NULL, NULL), VG_DOCKER_DEFAULT_HOST);
	assert_string_equal(vg_docker_host_pick(NULL, ""), VG_DOCKER_DEFAULT_HOST);
	assert_string_equal(vg_docker_host_pick(NULL, "unix:///env.sock"), "unix:///env.sock");
	/* The flag wins over the environment. */
	assert_string_equal(vg_docker_host_pick("unix:///flag.sock", "unix:///env.sock"), "unix:///flag.sock");
	/* A tcp:// DOCKER_HOST is picked, so the caller can say it is not supported. */
	assert_string_equal(vg_docker_host_pick(NULL, "tcp://h:2375"), "tcp://h:2375");
	assert_string_equal(VG_DOCKER_DEFAULT_HOST, "unix:///var/run/docker.sock");
}

static void test_name_valid(void **state)
{
	(void)state;
	static const char *const good[] = {
		"qbit", "gluetun", "my_app-1.2", "3a08d348b6ce", "A", "0",
		"3a08d348b6ce034f771db2950363b9bf3b0b7727d15809993bb8be1190ed97ae",
	};
	static const char *const bad[] = {
		"", "/qbit", "-x", ".x", "_x", "a/b", "a b", "a?b", "a%2fb", "a#b", "../x", "x\n",
		"qbit/../../../v1.41/info", "a&b",
	};
	char longname[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!vg_docker_name_valid(good[i]))
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (vg_docker_name_valid(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	assert_false(vg_docker_name_valid(longname));
	longname[255] = 0;
	assert_true(vg_docker_name_valid(longname));
	longname[255] = 'a';
	longname[256] = 0;
	assert_false(vg_docker_name_valid(longname));
}

/* Real event lines of the engine (API 1.41). */
static const char ev_start[] =
	"{\"status\":\"start\",\"id\":\"b6a445d18856\",\"from\":\"vgtest:1\",\"Type\":\"container\","
	"\"Action\":\"start\",\"Actor\":{\"ID\":\"b6a445d18856\",\"Attributes\":{\"image\":\"vgtest:1\","
	"\"name\":\"gluetun\"}},\"scope\":\"local\",\"time\":1795000000,\"timeNano\":1795000000123456789}";
static const char ev_die[] =
	"{\"status\":\"die\",\"id\":\"b6a445d18856\",\"from\":\"vgtest:1\",\"Type\":\"container\","
	"\"Action\":\"die\",\"Actor\":{\"ID\":\"b6a445d18856\",\"Attributes\":{\"exitCode\":\"137\","
	"\"image\":\"vgtest:1\",\"name\":\"gluetun\"}},\"scope\":\"local\",\"time\":1795000001,"
	"\"timeNano\":1795000001000000000}";
static const char ev_network[] =
	"{\"Type\":\"network\",\"Action\":\"connect\",\"Actor\":{\"ID\":\"f00\",\"Attributes\":"
	"{\"container\":\"b6a4\",\"name\":\"bridge\",\"type\":\"bridge\"}},\"scope\":\"local\","
	"\"time\":1795000000,\"timeNano\":1795000000000000000}";

static void test_parse_events(void **state)
{
	(void)state;
	struct vg_docker_event ev;

	assert_int_equal(vg_docker_parse_event(ev_start, &ev), 0);
	assert_string_equal(ev.action, "start");
	assert_string_equal(ev.id, "b6a445d18856");
	assert_string_equal(ev.name, "gluetun");
	assert_true(ev.time_ns == 1795000000123456789LL);
	assert_int_equal(vg_docker_parse_event(ev_die, &ev), 0);
	assert_string_equal(ev.action, "die");
	assert_string_equal(ev.name, "gluetun");
	/* Not a container event, not an event at all. */
	assert_int_equal(vg_docker_parse_event(ev_network, &ev), -EINVAL);
	assert_int_equal(vg_docker_parse_event("", &ev), -EINVAL);
	assert_int_equal(vg_docker_parse_event("{\"Type\":\"container\",\"Action\":\"start\"}", &ev), -EINVAL);
	assert_int_equal(vg_docker_parse_event("{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{}}",
					       &ev), -EINVAL);
	/* No name attribute: the id is enough. */
	assert_int_equal(vg_docker_parse_event("{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":\"ab\"}}",
					       &ev), 0);
	assert_string_equal(ev.id, "ab");
	assert_string_equal(ev.name, "");
}

static void test_event_names(void **state)
{
	(void)state;
	struct vg_docker_event ev = { .action = "start", .id = "b6a445d18856ff", .name = "gluetun" };

	assert_true(vg_docker_event_names(&ev, "gluetun"));
	assert_true(vg_docker_event_names(&ev, "b6a445d18856ff"));
	assert_true(vg_docker_event_names(&ev, "b6a4"));
	assert_false(vg_docker_event_names(&ev, "gluetun2"));
	assert_false(vg_docker_event_names(&ev, "glue"));
	assert_false(vg_docker_event_names(&ev, "b6a445d18856ff0"));
	assert_false(vg_docker_event_names(&ev, "6a44"));
	assert_false(vg_docker_event_names(&ev, ""));
}

struct lines {
	char got[8][128];
	int n;
	int stop_at;        /* return 7 on this line (1-based); 0: never */
};

static int collect(const char *line, void *ctx)
{
	struct lines *l = ctx;

	if (l->n < 8)
		snprintf(l->got[l->n], sizeof(l->got[0]), "%s", line);
	l->n++;
	return l->n == l->stop_at ? 7 : 0;
}

static void test_line_buf_any_cut(void **state)
{
	(void)state;
	static const char stream[] = "{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}\n{\"d\"";

	/* Every way of cutting the stream in two gives the same lines. */
	for (size_t cut = 0; cut <= sizeof(stream) - 1; cut++) {
		struct vg_line_buf *lb = calloc(1, sizeof(*lb));
		struct lines l = { 0 };

		assert_int_equal(vg_line_buf_feed(lb, stream, cut, collect, &l), 0);
		assert_int_equal(vg_line_buf_feed(lb, stream + cut, sizeof(stream) - 1 - cut, collect, &l), 0);
		assert_int_equal(l.n, 3);
		assert_string_equal(l.got[0], "{\"a\":1}");
		assert_string_equal(l.got[1], "{\"b\":2}");
		assert_string_equal(l.got[2], "{\"c\":3}");
		/* The unfinished line waits for its end. */
		assert_int_equal(vg_line_buf_feed(lb, ":4}\n", 4, collect, &l), 0);
		assert_int_equal(l.n, 4);
		assert_string_equal(l.got[3], "{\"d\":4}");
		free(lb);
	}
}

static void test_line_buf_byte_by_byte(void **state)
{
	(void)state;
	struct vg_line_buf *lb = calloc(1, sizeof(*lb));
	struct lines l = { 0 };
	char stream[sizeof(ev_start) + sizeof(ev_die) + 2];

	snprintf(stream, sizeof(stream), "%s\n%s\n", ev_start, ev_die);
	for (size_t i = 0; stream[i]; i++)
		assert_int_equal(vg_line_buf_feed(lb, stream + i, 1, collect, &l), 0);
	assert_int_equal(l.n, 2);
	free(lb);
}

static void test_line_buf_stop(void **state)
{
	(void)state;
	struct vg_line_buf *lb = calloc(1, sizeof(*lb));
	struct lines l = { .stop_at = 2 };

	assert_int_equal(vg_line_buf_feed(lb, "one\ntwo\nthree\n", 14, collect, &l), 7);
	assert_int_equal(l.n, 2);
	free(lb);
}

static void test_line_buf_overlong(void **state)
{
	(void)state;
	struct vg_line_buf *lb = calloc(1, sizeof(*lb));
	struct lines l = { 0 };
	size_t big = VG_LINE_MAX + 100;
	char *junk = malloc(big);

	memset(junk, 'x', big);
	/* A line too long to hold is dropped whole, in one piece or in many. */
	assert_int_equal(vg_line_buf_feed(lb, junk, big, collect, &l), 0);
	assert_int_equal(vg_line_buf_feed(lb, junk, 10, collect, &l), 0);
	assert_int_equal(vg_line_buf_feed(lb, "\nnext\n", 6, collect, &l), 0);
	assert_int_equal(l.n, 1);
	assert_string_equal(l.got[0], "next");
	/* Exactly one byte short of the buffer fits. */
	memset(junk, 'y', VG_LINE_MAX - 1);
	junk[VG_LINE_MAX - 1] = '\n';
	assert_int_equal(vg_line_buf_feed(lb, junk, VG_LINE_MAX, collect, &l), 0);
	assert_int_equal(l.n, 2);
	free(junk);
	free(lb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_running),
		cmocka_unit_test(test_parse_exited),
		cmocka_unit_test(test_parse_health_and_mode),
		cmocka_unit_test(test_parse_list),
		cmocka_unit_test(test_joins),
		cmocka_unit_test(test_parse_not_an_answer),
		cmocka_unit_test(test_parse_long_fields_cut),
		cmocka_unit_test(test_error_message),
		cmocka_unit_test(test_host_socket),
		cmocka_unit_test(test_host_pick),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_parse_events),
		cmocka_unit_test(test_event_names),
		cmocka_unit_test(test_line_buf_any_cut),
		cmocka_unit_test(test_line_buf_byte_by_byte),
		cmocka_unit_test(test_line_buf_stop),
		cmocka_unit_test(test_line_buf_overlong),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
