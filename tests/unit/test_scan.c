// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of the namespace-escape scan and ghosts: reading /proc text
 * (user/scan/proc_parse.c) and judging a process table (user/scan/scan_logic.c), on
 * made-up tables shaped like what this machine showed with Docker.
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

#include "event_fmt.h"
#include "proc_parse.h"
#include "scan_logic.h"

/* ---- /proc text ---- */

static void test_cgroup_hybrid(void **state)
{
	(void)state;
	/* A container of Docker's cgroupfs driver on a hybrid layout, as read here. */
	static const char text[] =
		"9:name=systemd:/vgtry.slice/b5d512fcb88d\n"
		"4:memory:/process_api/ae17/vgtry3.slice/4ddc\n"
		"1:cpu:/vgtry.slice/b5d512fcb88d\n"
		"0::/vgtry.slice/b5d512fcb88d\n";
	char rel[64];

	assert_int_equal(vg_proc_cgroup_v2(text, rel, sizeof(rel)), 0);
	assert_string_equal(rel, "/vgtry.slice/b5d512fcb88d");
}

static void test_cgroup_pure_v2_and_root(void **state)
{
	(void)state;
	char rel[16];

	assert_int_equal(vg_proc_cgroup_v2("0::/\n", rel, sizeof(rel)), 0);
	assert_string_equal(rel, "/");
	assert_int_equal(vg_proc_cgroup_v2("0::/a b/c", rel, sizeof(rel)), 0);
	assert_string_equal(rel, "/a b/c");
	/* v1 only: no v2 line. A "10::" or a named "0:x:" line is not it. */
	assert_int_equal(vg_proc_cgroup_v2("4:memory:/x\n", rel, sizeof(rel)), -ENOENT);
	assert_int_equal(vg_proc_cgroup_v2("10::/x\n", rel, sizeof(rel)), -ENOENT);
	assert_int_equal(vg_proc_cgroup_v2("", rel, sizeof(rel)), -ENOENT);
	/* Outside the reader's cgroup namespace, or empty. */
	assert_int_equal(vg_proc_cgroup_v2("0::\n", rel, sizeof(rel)), -EINVAL);
	assert_int_equal(vg_proc_cgroup_v2("0::../../x\n", rel, sizeof(rel)), -EINVAL);
	assert_int_equal(vg_proc_cgroup_v2("0::/a-path-too-long-for-rel\n", rel, sizeof(rel)), -ENAMETOOLONG);
}

static void test_stat(void **state)
{
	(void)state;
	static const char plain[] =
		"6314 (sleep) S 6293 6314 6314 0 -1 4194560 104 0 0 0 0 0 0 0 20 0 1 0 123456 "
		"1597440 25 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
	/* comm may hold spaces and parentheses. */
	static const char odd[] =
		"77 (a) b) (c) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 999 0 0\n";
	char comm[16];
	uint64_t start;

	assert_int_equal(vg_proc_stat(plain, comm, sizeof(comm), &start), 0);
	assert_string_equal(comm, "sleep");
	assert_int_equal(start, 123456);
	assert_int_equal(vg_proc_stat(odd, comm, sizeof(comm), &start), 0);
	assert_string_equal(comm, "a) b) (c");
	assert_int_equal(start, 999);
	assert_int_equal(vg_proc_stat("12 (x) S 1 2 3\n", comm, sizeof(comm), &start), -EINVAL);
	assert_int_equal(vg_proc_stat("garbage", comm, sizeof(comm), &start), -EINVAL);
}

/*
 * A text that ends at ')' has nothing after it; the reader
 * went on past the terminating NUL. What follows the NUL here stands for
 * whatever memory lies there: the reader must not find field 22 in it.
 */
static void test_stat_ends_at_paren(void **state)
{
	(void)state;
	static const char text[] = "1 (x)\0 S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 4242 0\n";
	char comm[16];
	uint64_t start = 0;

	assert_int_equal(vg_proc_stat(text, comm, sizeof(comm), &start), -EINVAL);
	assert_int_equal(vg_proc_stat("1 (x) ", comm, sizeof(comm), &start), -EINVAL);
	assert_int_equal(vg_proc_stat("1 (x)S", comm, sizeof(comm), &start), -EINVAL);
	/* Field 22 must be a number, not a sign strtoull would take. */
	assert_int_equal(vg_proc_stat("1 (x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 -5 0",
				      comm, sizeof(comm), &start), -EINVAL);
}

static void test_caps(void **state)
{
	(void)state;
	static const char status[] =
		"Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\n"
		"CapInh:\t0000000000000000\nCapPrm:\t00000000a80425fb\nCapEff:\t00000000a80425fb\n"
		"CapBnd:\t00000000a80425fb\nCapAmb:\t0000000000000000\n";
	uint64_t caps;

	assert_int_equal(vg_proc_caps(status, "CapEff", &caps), 0);
	assert_true(caps == 0xa80425fbULL);
	/* Docker's default set holds CAP_NET_RAW (bit 13). */
	assert_true(caps & (1ULL << VG_CAP_NET_RAW));
	assert_int_equal(vg_proc_caps(status, "CapInh", &caps), 0);
	assert_true(caps == 0);
	assert_int_equal(vg_proc_caps(status, "CapX", &caps), -ENOENT);
	/* "Cap" alone must not match "CapInh". */
	assert_int_equal(vg_proc_caps(status, "Cap", &caps), -ENOENT);
	assert_int_equal(vg_proc_caps("CapEff:\tzz\n", "CapEff", &caps), -EINVAL);
}

/* ---- judging ---- */

#define HOST_NET 4026531833ULL
#define HOST_PID 4026531836ULL
#define VPN_NET 4026532181ULL   /* the VPN container's network namespace */
#define QB_PID 4026532180ULL    /* qbit's PID namespace */
#define RAW (1ULL << VG_CAP_NET_RAW)

static const char QB[] = "/vpnguard.slice/qb";   /* container qbit, guarded by the slice */
static const char VPN[] = "/gluetun";            /* the VPN container: not guarded */

static const struct vg_scan_guard slice_guard[] = { { 100, "/vpnguard.slice" } };

/* qbit in the VPN's netns (network_mode: service:gluetun), a helper it started, cap_drop'ed. */
static struct vg_proc clean[] = {
	{ 1, "systemd", "/init.scope", 10, HOST_NET, HOST_PID, ~0ULL, ~0ULL },
	{ 900, "gluetun", VPN, 500, VPN_NET, 4026532170ULL, RAW, RAW },
	{ 1000, "s6-svscan", QB, 600, VPN_NET, QB_PID, 0, 0 },
	{ 1010, "qbittorrent", QB, 700, VPN_NET, QB_PID, 0, 0 },
	{ 1200, "bash", "/user.slice", 800, HOST_NET, HOST_PID, 0, 0 },
};

static struct vg_scan_input input(struct vg_proc *p, int n, const struct vg_scan_guard *g, int ng)
{
	return (struct vg_scan_input){ .procs = p, .n_procs = n, .guards = g, .n_guards = ng,
				       .own_pidns = HOST_PID };
}

static int judge(const struct vg_scan_input *in, struct vg_finding *out, int max)
{
	int n = vg_scan_judge(in, out, max);

	for (int i = 0; i < n && i < max; i++)
		printf("#   finding %s pid %d\n", vg_finding_name(out[i].kind), in->procs[out[i].proc].pid);
	return n;
}

static void test_clean(void **state)
{
	(void)state;
	struct vg_scan_input in = input(clean, 5, slice_guard, 1);
	struct vg_finding f[8];

	assert_int_equal(judge(&in, f, 8), 0);
	assert_int_equal(vg_scan_guard_of(&in, QB), 0);
	assert_int_equal(vg_scan_guard_of(&in, "/vpnguard.slice"), 0);
	assert_int_equal(vg_scan_guard_of(&in, "/vpnguard.sliced"), -1);
	assert_int_equal(vg_scan_guard_of(&in, VPN), -1);
	/* Nothing guarded: nothing to say, even about processes holding CAP_NET_RAW. */
	in.n_guards = 0;
	assert_int_equal(judge(&in, f, 8), 0);
}

static void test_s6_escape(void **state)
{
	(void)state;
	/* The field case: right cgroup, host namespaces. */
	struct vg_proc procs[] = {
		clean[0], clean[1], clean[2], clean[3],
		{ 1020, "qbit-helper", QB, 650, HOST_NET, HOST_PID, 0, 0 },
	};
	struct vg_scan_input in = input(procs, 5, slice_guard, 1);
	struct vg_finding f[8];

	assert_int_equal(judge(&in, f, 8), 2);
	assert_int_equal(f[0].kind, VG_FIND_NETNS);
	assert_int_equal(procs[f[0].proc].pid, 1020);
	assert_int_equal(procs[f[0].ref].pid, 1000);   /* the oldest of the cgroup: its init */
	assert_int_equal(f[0].guard, 0);
	assert_int_equal(f[1].kind, VG_FIND_PIDNS);
	assert_int_equal(procs[f[1].proc].pid, 1020);

	struct json_object *o = vg_finding_to_json(&in, &f[0]);
	assert_string_equal(vg_json_str(o, "kind"), "netns");
	assert_string_equal(vg_json_str(o, "pid"), "1020");
	assert_string_equal(vg_json_str(o, "comm"), "qbit-helper");
	assert_string_equal(vg_json_str(o, "cgroup"), QB);
	assert_string_equal(vg_json_str(o, "guard"), "/vpnguard.slice");
	assert_string_equal(vg_json_str(o, "guard_id"), "100");
	assert_string_equal(vg_json_str(o, "container_pid"), "1000");
	assert_non_null(strstr(vg_json_str(o, "detail"), "net:[4026531833]"));
	json_object_put(o);
}

static void test_net_raw(void **state)
{
	(void)state;
	struct vg_proc procs[] = {
		clean[1], clean[2],
		{ 1010, "qbittorrent", QB, 700, VPN_NET, QB_PID, 0, RAW },       /* permitted only */
		{ 1011, "tcpdump", QB, 710, VPN_NET, QB_PID, RAW, RAW },
		{ 1012, "other", QB, 720, VPN_NET, QB_PID, ~RAW, ~RAW },         /* everything else */
	};
	struct vg_scan_input in = input(procs, 5, slice_guard, 1);
	struct vg_finding f[8];

	assert_int_equal(judge(&in, f, 8), 2);
	assert_int_equal(f[0].kind, VG_FIND_NET_RAW);
	assert_int_equal(procs[f[0].proc].pid, 1010);
	assert_int_equal(f[0].ref, -1);
	assert_int_equal(procs[f[1].proc].pid, 1011);

	struct json_object *o = vg_finding_to_json(&in, &f[0]);
	assert_non_null(strstr(vg_json_str(o, "detail"), "permitted"));
	assert_null(vg_json_str(o, "container_pid"));
	json_object_put(o);
	o = vg_finding_to_json(&in, &f[1]);
	assert_non_null(strstr(vg_json_str(o, "detail"), "effective"));
	json_object_put(o);
}

static void test_outside_cgroup(void **state)
{
	(void)state;
	/* One process of qbit's PID namespace that never entered its cgroup (nsenter -p). */
	struct vg_proc procs[] = {
		clean[0], clean[1], clean[2], clean[3], clean[4],
		{ 1300, "sh", "/user.slice", 900, VPN_NET, QB_PID, 0, 0 },
	};
	struct vg_scan_input in = input(procs, 6, slice_guard, 1);
	struct vg_finding f[8];

	assert_int_equal(judge(&in, f, 8), 1);
	assert_int_equal(f[0].kind, VG_FIND_OUTSIDE);
	assert_int_equal(procs[f[0].proc].pid, 1300);
	assert_int_equal(procs[f[0].ref].pid, 1000);
	assert_int_equal(f[0].guard, 0);
}

static void test_host_processes_in_slice(void **state)
{
	(void)state;
	/* T1: host processes in the slice share the host's PID namespace: no "container" to leave. */
	struct vg_proc procs[] = {
		clean[0], clean[4],
		{ 2000, "transmission", "/vpnguard.slice", 100, HOST_NET, HOST_PID, 0, 0 },
		{ 2001, "helper", "/vpnguard.slice", 200, HOST_NET, HOST_PID, 0, 0 },
	};
	struct vg_scan_input in = input(procs, 4, slice_guard, 1);
	struct vg_finding f[8];

	assert_int_equal(judge(&in, f, 8), 0);
}

static void test_reference_is_oldest_of_same_cgroup(void **state)
{
	(void)state;
	/* Ties on start time go to the lower PID; a sibling cgroup has its own init. */
	struct vg_proc procs[] = {
		{ 3002, "b", "/vpnguard.slice/c1", 50, 11, 21, 0, 0 },
		{ 3001, "a", "/vpnguard.slice/c1", 50, 11, 21, 0, 0 },
		{ 3003, "x", "/vpnguard.slice/c1", 40, 12, 21, 0, 0 },     /* oldest: the reference */
		{ 4000, "d", "/vpnguard.slice/c2", 60, 13, 23, 0, 0 },
	};
	struct vg_scan_input in = input(procs, 4, slice_guard, 1);
	struct vg_finding f[8];

	assert_int_equal(judge(&in, f, 8), 2);
	assert_int_equal(procs[f[0].ref].pid, 3003);
	assert_int_equal(procs[f[1].ref].pid, 3003);
	assert_int_equal(f[0].kind, VG_FIND_NETNS);
	assert_int_equal(f[1].kind, VG_FIND_NETNS);
}

static void test_nested_guards(void **state)
{
	(void)state;
	static const struct vg_scan_guard nested[] = {
		{ 100, "/vpnguard.slice" }, { 200, "/vpnguard.slice/qb" },
	};
	struct vg_proc procs[] = {
		clean[2],
		{ 1020, "esc", "/vpnguard.slice/qb/sub", 650, HOST_NET, QB_PID, 0, 0 },
		{ 1300, "sh", "/vpnguard.slice/other", 900, VPN_NET, QB_PID, 0, 0 },
	};
	struct vg_scan_input in = input(procs, 3, nested, 2);
	struct vg_finding f[8];

	/* The deepest guard owns a process. */
	assert_int_equal(vg_scan_guard_of(&in, "/vpnguard.slice/qb/sub"), 1);
	assert_int_equal(vg_scan_guard_of(&in, "/vpnguard.slice/other"), 0);
	/*
	 * esc is the only (so oldest) process of its sub-cgroup: nothing to compare with.
	 * sh shares qb's PID namespace but is outside guard /vpnguard.slice/qb.
	 * The root guard "/" holds everything.
	 */
	int n = judge(&in, f, 8);
	assert_int_equal(n, 1);
	assert_int_equal(f[0].kind, VG_FIND_OUTSIDE);
	assert_int_equal(procs[f[0].proc].pid, 1300);
	assert_int_equal(f[0].guard, 1);

	static const struct vg_scan_guard root[] = { { 1, "/" } };
	in = input(procs, 3, root, 1);
	assert_int_equal(vg_scan_guard_of(&in, "/anything"), 0);
}

static void test_one_container_in_two_cgroups(void **state)
{
	(void)state;
	/* Two cgroups of the guard in one PID namespace: each outsider is named once. */
	struct vg_proc procs[] = {
		{ 1000, "init", "/vpnguard.slice/qb", 600, VPN_NET, QB_PID, 0, 0 },
		{ 1001, "init2", "/vpnguard.slice/qb/sub", 610, VPN_NET, QB_PID, 0, 0 },
		{ 1300, "sh", "/user.slice", 900, VPN_NET, QB_PID, 0, 0 },
	};
	struct vg_scan_input in = input(procs, 3, slice_guard, 1);
	struct vg_finding f[8];

	assert_int_equal(judge(&in, f, 8), 1);
	assert_int_equal(procs[f[0].proc].pid, 1300);
}

static void test_count_beyond_max(void **state)
{
	(void)state;
	struct vg_proc procs[] = {
		clean[2],
		{ 1011, "a", QB, 710, HOST_NET, HOST_PID, RAW, RAW },
		{ 1012, "b", QB, 720, HOST_NET, HOST_PID, RAW, RAW },
	};
	struct vg_scan_input in = input(procs, 3, slice_guard, 1);
	struct vg_finding f[2];

	/* All are counted; only max are written. */
	assert_int_equal(vg_scan_judge(&in, NULL, 0), 6);
	assert_int_equal(vg_scan_judge(&in, f, 2), 6);
	assert_int_equal(procs[f[1].proc].pid, 1011);
}

static void test_listed(void **state)
{
	(void)state;
	struct json_object *list = json_tokener_parse(
		"[{\"kind\":\"netns\",\"pid\":10},{\"kind\":\"net_raw\",\"pid\":11}]");
	struct json_object *a = json_tokener_parse("{\"kind\":\"netns\",\"pid\":10,\"comm\":\"x\"}");
	struct json_object *b = json_tokener_parse("{\"kind\":\"pidns\",\"pid\":10}");
	struct json_object *c = json_tokener_parse("{\"kind\":\"net_raw\",\"pid\":12}");

	assert_true(vg_finding_listed(list, a));
	assert_false(vg_finding_listed(list, b));
	assert_false(vg_finding_listed(list, c));
	assert_false(vg_finding_listed(NULL, a));
	json_object_put(list);
	json_object_put(a);
	json_object_put(b);
	json_object_put(c);
	assert_string_equal(vg_finding_name(VG_FIND_OUTSIDE), "outside");
	assert_string_equal(vg_finding_name((enum vg_finding_kind)99), "unknown");
}

/* ---- ghosts: containers the engine does not run ---- */

#define ID_A "4724b971a9c2a4b0c1f9f1e7d2b8c3a6e5d4f3a2b1c0d9e8f7a6b5c4d3e2f1a0"
#define ID_B "2b3e04f4c0ffee00112233445566778899aabbccddeeff001122334455667788"

static void test_container_id(void **state)
{
	(void)state;
	static const struct { const char *cgroup, *id; } rows[] = {
		/* cgroupfs driver (Debian 12's engine), under --cgroup-parent or its default /docker. */
		{ "/vpnguard.slice/" ID_A, ID_A },
		{ "/docker/" ID_A, ID_A },
		{ "/" ID_A, ID_A },
		/* systemd driver. */
		{ "/vpnguard.slice/docker-" ID_A ".scope", ID_A },
		{ "/system.slice/docker-" ID_B ".scope", ID_B },
		/* Nested engines: the deepest container is the one the process is in. */
		{ "/docker/" ID_A "/docker/" ID_B, ID_B },
		{ "/docker/" ID_A "/sub", ID_A },
		/* Not a container id: short, long, upper case, other runtimes' scopes, decorated. */
		{ "/vpnguard.slice/4724b971", NULL },
		{ "/vpnguard.slice/" ID_A "0", NULL },
		{ "/vpnguard.slice/4724B971a9c2a4b0c1f9f1e7d2b8c3a6e5d4f3a2b1c0d9e8f7a6b5c4d3e2f1a0", NULL },
		{ "/machine.slice/libpod-" ID_A ".scope", NULL },
		{ "/vpnguard.slice/docker-" ID_A ".scopes", NULL },
		{ "/vpnguard.slice/docker-" ID_A, NULL },
		{ "/vpnguard.slice/x" ID_A, NULL },
		{ "/", NULL },
		{ "", NULL },
	};
	char id[VG_CONTAINER_ID_LEN + 1];

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		printf("#   %s\n", rows[i].cgroup);
		assert_int_equal(vg_cgroup_container_id(rows[i].cgroup, id), rows[i].id != NULL);
		if (rows[i].id)
			assert_string_equal(id, rows[i].id);
	}
}

static void test_state_owns(void **state)
{
	(void)state;
	static const char *const owns[] = { "running", "paused", "restarting", "created", "removing" };

	for (size_t i = 0; i < sizeof(owns) / sizeof(owns[0]); i++)
		assert_true(vg_scan_state_owns(owns[i]));
	assert_false(vg_scan_state_owns("exited"));
	assert_false(vg_scan_state_owns("dead"));
}

static void test_ghost(void **state)
{
	(void)state;
	/* A: the engine runs it. B: it forgot it, its two processes still run under the slice. */
	struct vg_proc procs[] = {
		clean[0], clean[1],
		{ 1000, "sleep", "/vpnguard.slice/" ID_A, 600, VPN_NET, QB_PID, 0, 0 },
		{ 2000, "vgprobe", "/vpnguard.slice/" ID_B, 700, VPN_NET, 4026532190ULL, 0, 0 },
		{ 2001, "sh", "/vpnguard.slice/" ID_B, 710, VPN_NET, 4026532190ULL, 0, 0 },
		/* Not guarded: a ghost or not, the scan does not judge it. */
		{ 3000, "sleep", "/docker/" ID_B, 800, HOST_NET, HOST_PID, 0, 0 },
	};
	static const char running[][VG_CONTAINER_ID_LEN + 1] = { ID_A };
	struct vg_scan_input in = input(procs, 6, slice_guard, 1);
	struct vg_finding f[8];

	/* The escape rules see nothing: the ghosts are judged apart. */
	assert_int_equal(judge(&in, f, 8), 0);
	assert_int_equal(vg_scan_ghosts(&in, running, 1, f, 8), 2);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(f[i].kind, VG_FIND_GHOST);
		assert_int_equal(procs[f[i].ref].pid, 2000);    /* the oldest of its cgroup */
		assert_int_equal(f[i].guard, 0);
	}
	assert_int_equal(procs[f[0].proc].pid, 2000);
	assert_int_equal(procs[f[1].proc].pid, 2001);

	struct json_object *o = vg_finding_to_json(&in, &f[1]);
	assert_string_equal(vg_json_str(o, "kind"), "ghost");
	assert_string_equal(vg_json_str(o, "pid"), "2001");
	assert_string_equal(vg_json_str(o, "container_pid"), "2000");
	assert_string_equal(vg_json_str(o, "container_id"), ID_B);
	assert_non_null(strstr(vg_json_str(o, "detail"), "container 2b3e04f4c0ff,"));
	json_object_put(o);
	o = vg_finding_to_json(&in, &f[0]);
	char line[1024];
	vg_finding_to_line(o, line, sizeof(line));
	assert_non_null(strstr(line, "FOUND ghost   pid 2000 (vgprobe)"));
	json_object_put(o);
	/* An engine that runs nothing: every process of a container's cgroup in the guard is one. */
	assert_int_equal(vg_scan_ghosts(&in, running, 0, NULL, 0), 3);
	assert_string_equal(vg_finding_name(VG_FIND_GHOST), "ghost");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cgroup_hybrid),
		cmocka_unit_test(test_cgroup_pure_v2_and_root),
		cmocka_unit_test(test_stat),
		cmocka_unit_test(test_stat_ends_at_paren),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_s6_escape),
		cmocka_unit_test(test_net_raw),
		cmocka_unit_test(test_outside_cgroup),
		cmocka_unit_test(test_host_processes_in_slice),
		cmocka_unit_test(test_reference_is_oldest_of_same_cgroup),
		cmocka_unit_test(test_nested_guards),
		cmocka_unit_test(test_one_container_in_two_cgroups),
		cmocka_unit_test(test_count_beyond_max),
		cmocka_unit_test(test_listed),
		cmocka_unit_test(test_container_id),
		cmocka_unit_test(test_state_owns),
		cmocka_unit_test(test_ghost),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
