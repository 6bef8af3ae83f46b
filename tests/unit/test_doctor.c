// SPDX-License-Identifier: GPL-2.0
/*
 * Unit tests of doctor's judgement (user/core/doctor.c) and status --check's
 * verdict (user/core/verdict.c), on made-up facts: a host that has
 * everything, then one table row per thing taken away, each naming the
 * check that must say so, its level and words of its line.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <cmocka.h>

#include "doctor.h"
#include "verdict.h"

/* This machine's layout: cgroup v2 beside v1 hierarchies. */
static const char hybrid[] =
	"sysfs /sys sysfs rw,nosuid 0 0\n"
	"tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0\n"
	"cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0\n"
	"cgroup /sys/fs/cgroup/systemd cgroup rw,relatime,name=systemd 0 0\n"
	"cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0\n"
	"bpf /sys/fs/bpf bpf rw,relatime,mode=700 0 0\n";
static const char unified[] =
	"sysfs /sys sysfs rw 0 0\n"
	"cgroup2 /sys/fs/cgroup cgroup2 rw,nsdelegate 0 0\n";
static const char legacy[] =
	"cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n";
static const char no_cgroup[] = "proc /proc proc rw 0 0\n";

/* A host with everything the kill switch needs, and one guard. */
static void good(struct vg_doc_facts *f)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->release, sizeof(f->release), "6.18.44-fc-v1045");
	f->btf_size = 5 << 20;
	f->mounts = hybrid;
	f->pin_root = "/sys/fs/bpf/vpnguard";
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs/bpf/vpnguard");
	f->pin_fs = BPF_FS_MAGIC;
	snprintf(f->docker_sock, sizeof(f->docker_sock), "/var/run/docker.sock");
	snprintf(f->docker_driver, sizeof(f->docker_driver), "systemd");
	snprintf(f->docker_cgroup_version, sizeof(f->docker_cgroup_version), "2");
	f->slice_guarded = true;
	f->n_guards = 1;
	f->net_raw = json_object_new_array();
	snprintf(f->pid1, sizeof(f->pid1), "systemd");
	snprintf(f->vg_unit, sizeof(f->vg_unit), "/usr/lib/systemd/system/vpnguard.service");
	snprintf(f->docker_unit, sizeof(f->docker_unit), "/usr/lib/systemd/system/docker.service");
	f->ordered = f->enabled = true;
}

static void old_kernel(struct vg_doc_facts *f) { snprintf(f->release, sizeof(f->release), "6.5.13-amd64"); }
static void kernel_5(struct vg_doc_facts *f) { snprintf(f->release, sizeof(f->release), "5.15.0-91-generic"); }
static void kernel_7(struct vg_doc_facts *f) { snprintf(f->release, sizeof(f->release), "7.0.1"); }
static void odd_kernel(struct vg_doc_facts *f) { snprintf(f->release, sizeof(f->release), "linux"); }
static void no_btf(struct vg_doc_facts *f) { f->btf_err = -ENOENT; }
static void pure_v2(struct vg_doc_facts *f) { f->mounts = unified; }
static void v1_only(struct vg_doc_facts *f) { f->mounts = legacy; }
static void no_cg(struct vg_doc_facts *f) { f->mounts = no_cgroup; }
static void pin_unmade(struct vg_doc_facts *f) { snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs/bpf"); }
static void bpffs_unmounted(struct vg_doc_facts *f)
{
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/sys/fs");
	f->pin_fs = 0x62656572; /* sysfs */
}
static void pin_on_tmp(struct vg_doc_facts *f)
{
	f->pin_root = "/tmp/pins";
	snprintf(f->pin_dir, sizeof(f->pin_dir), "/tmp");
	f->pin_fs = 0x01021994; /* tmpfs */
}
static void pin_unstatable(struct vg_doc_facts *f) { f->pin_fs = 0; }
static void egress_eperm(struct vg_doc_facts *f) { f->hook_err[5] = -EPERM; }
static void tc_einval(struct vg_doc_facts *f) { f->hook_err[7] = -EINVAL; }
static void sockopt_enoent(struct vg_doc_facts *f) { f->hook_err[6] = -EOPNOTSUPP; }
static void no_engine(struct vg_doc_facts *f)
{
	snprintf(f->docker_err, sizeof(f->docker_err), "/var/run/docker.sock: No such file or directory");
}
static void slice_unguarded(struct vg_doc_facts *f) { f->slice_guarded = false; }
static void cgroupfs(struct vg_doc_facts *f)
{
	snprintf(f->docker_driver, sizeof(f->docker_driver), "cgroupfs");
	snprintf(f->docker_cgroup_version, sizeof(f->docker_cgroup_version), "1");
	snprintf(f->dockerd_cgroup, sizeof(f->dockerd_cgroup), "/system.slice/docker.service");
}
static void cgroupfs_unknown_home(struct vg_doc_facts *f)
{
	cgroupfs(f);
	f->dockerd_cgroup[0] = 0;
}
static void cgroupfs_engine_at_root(struct vg_doc_facts *f)
{
	cgroupfs(f);
	snprintf(f->dockerd_cgroup, sizeof(f->dockerd_cgroup), "/");
}
static void odd_driver(struct vg_doc_facts *f) { snprintf(f->docker_driver, sizeof(f->docker_driver), "none"); }
static void no_guards(struct vg_doc_facts *f) { f->n_guards = 0; }
static void scan_failed(struct vg_doc_facts *f) { f->scan_err = -EACCES; }
static void add_raw(struct vg_doc_facts *f, int pid, const char *comm)
{
	struct json_object *r = json_object_new_object();

	json_object_object_add(r, "kind", json_object_new_string("net_raw"));
	json_object_object_add(r, "pid", json_object_new_int(pid));
	json_object_object_add(r, "comm", json_object_new_string(comm));
	json_object_object_add(r, "cgroup", json_object_new_string("/vpnguard.slice/4ddc"));
	json_object_array_add(f->net_raw, r);
}
static void one_raw(struct vg_doc_facts *f) { add_raw(f, 4242, "qbittorrent"); }
static void seven_raw(struct vg_doc_facts *f)
{
	for (int i = 0; i < 7; i++)
		add_raw(f, 100 + i, "ping");
}
static void no_docker_unit(struct vg_doc_facts *f) { f->docker_unit[0] = 0; }
static void no_vg_unit(struct vg_doc_facts *f) { f->vg_unit[0] = 0; }
static void masked(struct vg_doc_facts *f) { f->vg_masked = true; }
static void unordered(struct vg_doc_facts *f) { f->ordered = false; }
static void disabled(struct vg_doc_facts *f) { f->enabled = false; }
static void other_init(struct vg_doc_facts *f) { snprintf(f->pid1, sizeof(f->pid1), "process_api"); }

struct row {
	const char *name;
	void (*change)(struct vg_doc_facts *f);
	const char *check;
	enum vg_doc_level level;
	const char *words;      /* in the check's text */
	const char *fix;        /* in its fix; NULL: no fix */
};

static const struct row rows[] = {
	{ "all there: kernel", NULL, "kernel", VG_DOC_OK, "6.18.44", NULL },
	{ "all there: btf", NULL, "btf", VG_DOC_OK, "5120 KiB", NULL },
	{ "all there: hybrid", NULL, "cgroup2", VG_DOC_OK, "hybrid: cgroup v2 at /sys/fs/cgroup/unified", NULL },
	{ "all there: bpffs", NULL, "bpffs", VG_DOC_OK, "pin root /sys/fs/bpf/vpnguard on bpffs", NULL },
	{ "all there: a hook", NULL, "hook connect4", VG_DOC_OK, "cgroup/connect4: a program loads", NULL },
	{ "all there: tc", NULL, "hook tc", VG_DOC_OK, "attaches to tcx egress", NULL },
	{ "all there: docker", NULL, "docker", VG_DOC_OK,
	  "cgroup driver systemd, cgroup v2: cgroup_parent: vpnguard.slice lands in "
	  "/sys/fs/cgroup/unified/vpnguard.slice/docker-<id>.scope; /sys/fs/cgroup/unified/vpnguard.slice is guarded", NULL },
	{ "all there: net_raw", NULL, "net_raw", VG_DOC_OK, "no process of the 1 guard holds CAP_NET_RAW", NULL },
	{ "all there: systemd", NULL, "systemd", VG_DOC_OK, "systemd runs (PID 1)", NULL },
	{ "kernel 6.5", old_kernel, "kernel", VG_DOC_FAIL, "tcx, Linux 6.6 or later", "Linux 6.6" },
	{ "kernel 5.15", kernel_5, "kernel", VG_DOC_FAIL, "5.15.0-91-generic", "bookworm-backports" },
	{ "kernel 7.0", kernel_7, "kernel", VG_DOC_OK, "7.0.1", NULL },
	{ "kernel unread", odd_kernel, "kernel", VG_DOC_WARN, "not a version", NULL },
	{ "no BTF", no_btf, "btf", VG_DOC_FAIL, "No such file or directory: the programs are CO-RE", "CONFIG_DEBUG_INFO_BTF" },
	{ "pure v2", pure_v2, "cgroup2", VG_DOC_OK, "cgroup v2 at /sys/fs/cgroup (unified", NULL },
	{ "v1 only", v1_only, "cgroup2", VG_DOC_FAIL, "cgroup v1 only", "systemd.unified_cgroup_hierarchy=1" },
	{ "no cgroup", no_cg, "cgroup2", VG_DOC_FAIL, "no cgroup v2 mount", "mount -t cgroup2" },
	{ "pin root not made", pin_unmade, "bpffs", VG_DOC_OK, "(not made yet: /sys/fs/bpf is bpffs)", NULL },
	{ "bpffs unmounted", bpffs_unmounted, "bpffs", VG_DOC_WARN, "attach mounts bpffs there itself", "/etc/fstab" },
	{ "pin root on tmpfs", pin_on_tmp, "bpffs", VG_DOC_FAIL, "/tmp is not bpffs (filesystem type 0x1021994)",
	  "mount -t bpf bpf /tmp/pins (mkdir it first)" },
	{ "pin root unstatable", pin_unstatable, "bpffs", VG_DOC_FAIL, "is not bpffs", "VPNGUARD_PIN_ROOT" },
	{ "egress refused", egress_eperm, "hook egress", VG_DOC_FAIL, "cgroup_skb/egress: Operation not permitted",
	  "CAP_BPF" },
	{ "tcx unknown", tc_einval, "hook tc", VG_DOC_FAIL, "tc: Invalid argument", "Linux 6.6" },
	{ "sockopt unknown", sockopt_enoent, "hook setsockopt", VG_DOC_FAIL, "cgroup/setsockopt:", "CONFIG_CGROUP_BPF" },
	{ "no engine", no_engine, "docker", VG_DOC_SKIP, "no engine: /var/run/docker.sock: No such file", NULL },
	{ "slice unguarded", slice_unguarded, "docker", VG_DOC_WARN,
	  "/sys/fs/cgroup/unified/vpnguard.slice has no guard", "attach --cgroup /vpnguard.slice" },
	{ "cgroupfs", cgroupfs, "docker", VG_DOC_OK,
	  "cgroup driver cgroupfs, cgroup v1: cgroup_parent: /vpnguard.slice lands in /sys/fs/cgroup/unified/vpnguard.slice/<id> "
	  "(a relative vpnguard.slice lands below the engine's own cgroup: "
	  "/sys/fs/cgroup/unified/system.slice/docker.service/vpnguard.slice/<id>)", NULL },
	{ "cgroupfs, engine's cgroup unknown", cgroupfs_unknown_home, "docker", VG_DOC_OK,
	  "/sys/fs/cgroup/unified/<its cgroup>/vpnguard.slice/<id>", NULL },
	{ "cgroupfs, engine in the root cgroup", cgroupfs_engine_at_root, "docker", VG_DOC_OK,
	  "below the engine's own cgroup: /sys/fs/cgroup/unified/vpnguard.slice/<id>)", NULL },
	{ "another driver", odd_driver, "docker", VG_DOC_WARN, "not known for this driver", "grep '^0::'" },
	{ "no guards", no_guards, "net_raw", VG_DOC_SKIP, "no guard attached", NULL },
	{ "scan failed", scan_failed, "net_raw", VG_DOC_WARN, "Permission denied", "scan" },
	{ "one raw process", one_raw, "net_raw", VG_DOC_WARN,
	  "1 guarded process holds CAP_NET_RAW, and packet sockets skip every program: pid 4242 (qbittorrent) in "
	  "/vpnguard.slice/4ddc", "cap_drop: [NET_RAW]" },
	{ "seven raw processes", seven_raw, "net_raw", VG_DOC_WARN, "7 guarded processes hold CAP_NET_RAW", "cap_drop" },
	{ "no docker.service", no_docker_unit, "systemd", VG_DOC_SKIP, "no docker.service", NULL },
	{ "no vpnguard.service", no_vg_unit, "systemd", VG_DOC_WARN, "no vpnguard.service", "make install" },
	{ "masked", masked, "systemd", VG_DOC_WARN, "is masked", "systemctl unmask vpnguard" },
	{ "not before docker", unordered, "systemd", VG_DOC_FAIL, "is not ordered before docker.service",
	  "Before=docker.service" },
	{ "not enabled", disabled, "systemd", VG_DOC_WARN, "but not enabled", "systemctl enable vpnguard" },
	{ "PID 1 is not systemd", other_init, "systemd", VG_DOC_OK, "PID 1 is process_api, not systemd", NULL },
};

static const struct vg_doc_check *find(const struct vg_doc_check *c, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(c[i].name, name))
			return &c[i];
	fail_msg("no check %s", name);
	return NULL;
}

static void test_rows(void **state)
{
	(void)state;
	for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
		const struct row *w = &rows[r];
		struct vg_doc_check c[VG_DOC_CHECKS];
		struct vg_doc_facts f;
		const struct vg_doc_check *k;
		int n;

		good(&f);
		if (w->change)
			w->change(&f);
		n = vg_doctor_judge(&f, c, VG_DOC_CHECKS);
		assert_int_equal(n, VG_DOC_CHECKS);
		k = find(c, n, w->check);
		if (k->level != w->level || !strstr(k->text, w->words) ||
		    (w->fix ? !strstr(k->fix, w->fix) : k->fix[0] != 0))
			fail_msg("%s: %s %s: %s; fix: %s (wanted %s, '%s', fix '%s')", w->name,
				 vg_doc_level_name(k->level), k->name, k->text, k->fix,
				 vg_doc_level_name(w->level), w->words, w->fix ?: "");
		/* The row's change moves no other check: the good host has nothing else to say. */
		for (int i = 0; i < n; i++)
			if (&c[i] != k && c[i].level != VG_DOC_OK)
				fail_msg("%s: also %s %s: %s", w->name, vg_doc_level_name(c[i].level), c[i].name,
					 c[i].text);
		json_object_put(f.net_raw);
	}
}

static void test_json_and_exit(void **state)
{
	(void)state;
	struct vg_doc_check c[VG_DOC_CHECKS];
	struct vg_doc_facts f;
	struct json_object *o, *v, *checks;
	int n;

	good(&f);
	n = vg_doctor_judge(&f, c, VG_DOC_CHECKS);
	o = vg_doctor_json(c, n);
	assert_true(json_object_object_get_ex(o, "ok", &v) && json_object_get_boolean(v));
	assert_true(json_object_object_get_ex(o, "checks", &checks));
	assert_int_equal(json_object_array_length(checks), VG_DOC_CHECKS);
	json_object_put(o);

	/* A warning does not fail; a failure does. */
	no_btf(&f);
	disabled(&f);
	n = vg_doctor_judge(&f, c, VG_DOC_CHECKS);
	o = vg_doctor_json(c, n);
	assert_true(json_object_object_get_ex(o, "ok", &v) && !json_object_get_boolean(v));
	json_object_object_get_ex(o, "checks", &checks);
	v = json_object_array_get_idx(checks, 1);
	assert_string_equal(json_object_get_string(json_object_object_get(v, "result")), "fail");
	assert_string_equal(json_object_get_string(json_object_object_get(v, "name")), "btf");
	json_object_put(o);
	json_object_put(f.net_raw);
}

static void test_layouts(void **state)
{
	(void)state;
	char cg2[64];

	assert_int_equal(vg_doc_cgroup_layout(hybrid, cg2, sizeof(cg2)), VG_CG_HYBRID);
	assert_string_equal(cg2, "/sys/fs/cgroup/unified");
	assert_int_equal(vg_doc_cgroup_layout(unified, cg2, sizeof(cg2)), VG_CG_UNIFIED);
	assert_string_equal(cg2, "/sys/fs/cgroup");
	assert_int_equal(vg_doc_cgroup_layout(legacy, cg2, sizeof(cg2)), VG_CG_LEGACY);
	assert_string_equal(cg2, "");
	assert_int_equal(vg_doc_cgroup_layout(no_cgroup, cg2, sizeof(cg2)), VG_CG_NONE);
	assert_int_equal(vg_doc_cgroup_layout("", cg2, sizeof(cg2)), VG_CG_NONE);
	/* The first cgroup2 mount is the one the tool uses (cgroup.c). */
	assert_int_equal(vg_doc_cgroup_layout("none /a cgroup2 rw 0 0\nnone /b cgroup2 rw 0 0", cg2, sizeof(cg2)),
			 VG_CG_UNIFIED);
	assert_string_equal(cg2, "/a");
}

static void test_kernel_version(void **state)
{
	(void)state;
	int a, b;

	assert_int_equal(vg_doc_kernel_version("6.18.44-fc-v1045", &a, &b), 0);
	assert_int_equal(a * 100 + b, 618);
	assert_int_equal(vg_doc_kernel_version("6.6", &a, &b), 0);
	assert_int_equal(a * 100 + b, 606);
	assert_int_equal(vg_doc_kernel_version("6", &a, &b), -EINVAL);
	assert_int_equal(vg_doc_kernel_version("", &a, &b), -EINVAL);
}

/* unit texts, key, unit, whether the key's final list names it */
struct unit_row {
	const char *name;
	const char *texts[3];
	const char *key, *unit;
	bool has;
};

static const char shipped[] =
	"# vpnguard-bpf agent\n[Unit]\nDescription=x\nAfter=local-fs.target vpnguard.slice\n"
	"Before=docker.service containerd.service network-pre.target\n\n[Service]\nType=notify\n"
	"[Install]\nWantedBy=multi-user.target docker.service\n";

static const struct unit_row unit_rows[] = {
	{ "the shipped unit", { shipped }, "Before", "docker.service", true },
	{ "only whole words", { "[Unit]\nBefore=docker.service.bak mydocker.service\n" }, "Before", "docker.service", false },
	{ "spaces around =, tabs", { "[Unit]\n  Before \t=\tfoo.service\tdocker.service  \n" }, "Before",
	  "docker.service", true },
	{ "not in [Unit]", { "[Service]\nBefore=docker.service\n" }, "Before", "docker.service", false },
	{ "commented", { "[Unit]\n#Before=docker.service\n;Before=docker.service\n" }, "Before", "docker.service", false },
	{ "BeforeX is another key", { "[Unit]\nBeforeX=docker.service\n" }, "Before", "docker.service", false },
	{ "a drop-in adds", { "[Unit]\nDescription=x\n", "[Unit]\nBefore=docker.service\n" }, "Before",
	  "docker.service", true },
	{ "a drop-in empties the list", { shipped, "[Unit]\nBefore=\n" }, "Before", "docker.service", false },
	{ "emptied then given again", { shipped, "[Unit]\nBefore=\nBefore=docker.service\n" }, "Before",
	  "docker.service", true },
	{ "docker's After=", { "[Unit]\nAfter=network-online.target docker.socket\n",
	  "[Unit]\nAfter=vpnguard.service\n" }, "After", "vpnguard.service", true },
	{ "Debian's docker.service", { "[Unit]\nAfter=network-online.target docker.socket firewalld.service "
	  "containerd.service\nWants=network-online.target containerd.service\n" }, "After", "vpnguard.service", false },
	{ "no text", { NULL }, "Before", "docker.service", false },
	{ "CRLF lines", { "[Unit]\r\nBefore=docker.service\r\n" }, "Before", "docker.service", true },
};

static void test_unit_lists(void **state)
{
	(void)state;
	for (size_t r = 0; r < sizeof(unit_rows) / sizeof(unit_rows[0]); r++) {
		const struct unit_row *u = &unit_rows[r];
		int n = 0;

		while (n < 3 && u->texts[n])
			n++;
		if (vg_unit_lists(u->texts, n, u->key, u->unit) != u->has)
			fail_msg("%s: wanted %s", u->name, u->has ? "listed" : "not listed");
	}
}

static void test_docker_info(void **state)
{
	(void)state;
	char d[32], v[8], why[128];

	assert_int_equal(vg_doc_docker_info("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
					    "{\"CgroupDriver\":\"cgroupfs\",\"CgroupVersion\":\"1\",\"ID\":\"x\"}\n",
					    d, sizeof(d), v, sizeof(v), why, sizeof(why)), 0);
	assert_string_equal(d, "cgroupfs");
	assert_string_equal(v, "1");
	assert_int_equal(vg_doc_docker_info("HTTP/1.1 200 OK\r\n\r\n{}", d, sizeof(d), v, sizeof(v), why,
					    sizeof(why)), 0);
	assert_string_equal(d, "");
	assert_int_equal(vg_doc_docker_info("HTTP/1.0 500 Internal Server Error\r\n\r\n{\"message\":\"x\"}",
					    d, sizeof(d), v, sizeof(v), why, sizeof(why)), -EIO);
	assert_string_equal(why, "GET /info: HTTP 500");
	assert_int_equal(vg_doc_docker_info("", d, sizeof(d), v, sizeof(v), why, sizeof(why)), -EIO);
	assert_string_equal(why, "GET /info: no HTTP answer");
	assert_int_equal(vg_doc_docker_info("HTTP/1.0 200 OK\r\n\r\n[1,2]", d, sizeof(d), v, sizeof(v), why,
					    sizeof(why)), -EIO);
	assert_int_equal(vg_doc_docker_info("HTTP/1.0 200 OK\r\nno end of headers", d, sizeof(d), v, sizeof(v), why,
					    sizeof(why)), -EIO);
}

/* ---- status --check ---- */

/* a status --json guard object, whether it is open, the verdict's words */
struct verdict_row {
	const char *json;
	bool open;
	const char *why;
};

static const struct verdict_row verdict_rows[] = {
	{ "{\"cgroup_present\":true,\"mode\":\"tunnel\",\"tunnel\":\"wg0\",\"tunnel_present\":true,"
	  "\"netns_present\":true,\"state\":\"open\",\"lease_left_s\":null}", true, "open: tunnel wg0 present" },
	{ "{\"mode\":\"tunnel\",\"tunnel\":\"wg0\",\"tunnel_present\":true,\"netns_present\":true,"
	  "\"state\":\"open\",\"lease_left_s\":12.5}", true, "open: tunnel wg0 present" },
	{ "{\"mode\":\"gateway\",\"state\":\"open\"}", true, "open: gateway mode" },
	{ "{\"mode\":\"gateway\",\"state\":\"closed\"}", false, "closed: state closed" },
	{ "{\"mode\":\"tunnel\",\"tunnel\":\"wg0\",\"tunnel_present\":true,\"netns_present\":true,"
	  "\"state\":\"closed\",\"lease_left_s\":0}", false, "closed: lease run out" },
	{ "{\"mode\":\"tunnel\",\"tunnel\":\"tun0\",\"tunnel_present\":false,\"netns_present\":true,"
	  "\"state\":\"open\"}", false, "closed: tunnel tun0 missing" },
	{ "{\"mode\":\"tunnel\",\"tunnel\":\"tun0\",\"tunnel_present\":false,\"netns_present\":false,"
	  "\"state\":\"open\"}", false, "closed: tunnel namespace gone" },
	{ "{\"cgroup_present\":false,\"mode\":\"tunnel\",\"tunnel\":\"wg0\",\"tunnel_present\":false,"
	  "\"netns_present\":true,\"state\":\"closed\"}", false,
	  "closed: cgroup gone, state closed, tunnel wg0 missing" },
	/* What status never writes is not taken for open. */
	{ "{\"mode\":\"tunnel\",\"tunnel\":\"wg0\",\"state\":\"open\"}", false, "closed: tunnel wg0 missing" },
	{ "{}", false, "closed: state closed" },
};

static void test_verdicts(void **state)
{
	(void)state;
	for (size_t r = 0; r < sizeof(verdict_rows) / sizeof(verdict_rows[0]); r++) {
		struct json_object *g = json_tokener_parse(verdict_rows[r].json);
		char why[256];
		bool open;

		assert_non_null(g);
		open = vg_guard_verdict(g, why, sizeof(why));
		if (open != verdict_rows[r].open || strcmp(why, verdict_rows[r].why))
			fail_msg("%s: %s '%s', wanted %s '%s'", verdict_rows[r].json, open ? "open" : "closed", why,
				 verdict_rows[r].open ? "open" : "closed", verdict_rows[r].why);
		json_object_put(g);
	}
}

static void test_status_guard(void **state)
{
	(void)state;
	struct json_object *root = json_tokener_parse(
		"{\"pin_root\":\"/sys/fs/bpf/vpnguard\",\"guards\":[{\"cgroup_id\":7,\"cgroup\":\"/a\"},"
		"{\"cgroup_id\":18446744073709551615,\"cgroup\":\"/b\"}]}");
	struct json_object *empty = json_tokener_parse("{\"guards\":[]}");

	assert_string_equal(json_object_get_string(json_object_object_get(vg_status_guard(root, 7), "cgroup")), "/a");
	assert_string_equal(json_object_get_string(json_object_object_get(vg_status_guard(root, UINT64_MAX),
									  "cgroup")), "/b");
	assert_null(vg_status_guard(root, 8));
	assert_null(vg_status_guard(empty, 7));
	json_object_put(root);
	json_object_put(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_json_and_exit),
		cmocka_unit_test(test_layouts),
		cmocka_unit_test(test_kernel_version),
		cmocka_unit_test(test_unit_lists),
		cmocka_unit_test(test_docker_info),
		cmocka_unit_test(test_verdicts),
		cmocka_unit_test(test_status_guard),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
