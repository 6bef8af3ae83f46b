// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <linux/magic.h>
#include "doctor.h"
#include "event_fmt.h"

const char *const vg_doc_hook_sections[VG_DOC_HOOKS] = {
	"cgroup/connect4", "cgroup/connect6", "cgroup/sendmsg4", "cgroup/sendmsg6",
	"cgroup/sock_create", "cgroup_skb/egress", "cgroup/setsockopt", "tc",
};

/* The tc layer attaches with tcx, the newest of the kernel features the programs use. */
#define MIN_MAJOR 6
#define MIN_MINOR 6

static const char *const hook_names[VG_DOC_HOOKS] = {
	"hook connect4", "hook connect6", "hook sendmsg4", "hook sendmsg6",
	"hook sock_create", "hook egress", "hook setsockopt", "hook tc",
};

const char *vg_doc_level_name(enum vg_doc_level l)
{
	static const char *const names[] = { "ok", "skip", "warn", "FAIL" };

	return names[l];
}

int vg_doc_kernel_version(const char *release, int *major, int *minor)
{
	return sscanf(release, "%d.%d", major, minor) == 2 ? 0 : -EINVAL;
}

enum vg_cg_layout vg_doc_cgroup_layout(const char *mounts, char *cg2, size_t len)
{
	char dir[PATH_MAX], type[64];
	bool v1 = false;

	cg2[0] = 0;
	for (const char *l = mounts; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "") {
		if (sscanf(l, "%*s %4095s %63s", dir, type) != 2)
			continue;
		if (!strcmp(type, "cgroup2") && !cg2[0])
			snprintf(cg2, len, "%s", dir);
		else if (!strcmp(type, "cgroup"))
			v1 = true;
	}
	if (cg2[0])
		return v1 ? VG_CG_HYBRID : VG_CG_UNIFIED;
	return v1 ? VG_CG_LEGACY : VG_CG_NONE;
}

static bool names_unit(const char *value, const char *unit)
{
	size_t n = strlen(unit);

	for (const char *w = value; *w;) {
		size_t k = strcspn(w, " \t");

		if (k == n && !strncmp(w, unit, n))
			return true;
		w += k;
		w += strspn(w, " \t");
	}
	return false;
}

bool vg_unit_lists(const char *const *texts, int n, const char *key, const char *unit)
{
	char line[4096], *v, *end;
	bool in_unit = false, has = false;
	size_t klen = strlen(key);

	for (int i = 0; i < n; i++) {
		for (const char *l = texts[i]; l && *l;) {
			size_t len = strcspn(l, "\n");

			snprintf(line, sizeof(line), "%.*s", (int)len, l);
			l += len + (l[len] == '\n');
			v = line + strspn(line, " \t");
			for (end = v + strlen(v); end > v && isspace((unsigned char)end[-1]);)
				*--end = 0;
			if (*v == '[') {
				in_unit = !strcmp(v, "[Unit]");
				continue;
			}
			if (!in_unit || *v == '#' || *v == ';' || strncmp(v, key, klen))
				continue;
			v += klen;
			v += strspn(v, " \t");
			if (*v++ != '=')
				continue;
			v += strspn(v, " \t");
			has = *v ? has || names_unit(v, unit) : false;
		}
	}
	return has;
}

int vg_doc_docker_info(const char *answer, char *driver, size_t dlen, char *version, size_t vlen,
		       char *why, size_t wlen)
{
	const char *body = strstr(answer, "\r\n\r\n");
	struct json_object *o;
	int status = 0;

	driver[0] = version[0] = 0;
	if (sscanf(answer, "HTTP/%*d.%*d %d", &status) != 1 || status != 200 || !body) {
		snprintf(why, wlen, "GET /info: %s%.0d", status ? "HTTP " : "no HTTP answer", status);
		return -EIO;
	}
	o = json_tokener_parse(body + 4);
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(why, wlen, "GET /info: the answer is no JSON object");
		json_object_put(o);
		return -EIO;
	}
	snprintf(driver, dlen, "%s", vg_json_str(o, "CgroupDriver") ?: "");
	snprintf(version, vlen, "%s", vg_json_str(o, "CgroupVersion") ?: "");
	json_object_put(o);
	return 0;
}

static struct vg_doc_check *put(struct vg_doc_check *c, const char *name, enum vg_doc_level level,
				const char *fix, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static struct vg_doc_check *put(struct vg_doc_check *c, const char *name, enum vg_doc_level level,
				const char *fix, const char *fmt, ...)
{
	va_list ap;

	c->name = name;
	c->level = level;
	snprintf(c->fix, sizeof(c->fix), "%s", fix ?: "");
	va_start(ap, fmt);
	vsnprintf(c->text, sizeof(c->text), fmt, ap);
	va_end(ap);
	return c;
}

static void judge_kernel(const struct vg_doc_facts *f, struct vg_doc_check *c)
{
	int major, minor;

	if (vg_doc_kernel_version(f->release, &major, &minor))
		put(c, "kernel", VG_DOC_WARN, NULL, "kernel %s: not a version this tool reads", f->release);
	else if (major < MIN_MAJOR || (major == MIN_MAJOR && minor < MIN_MINOR))
		put(c, "kernel", VG_DOC_FAIL, "boot Linux 6.6 or later (Debian 12: linux-image-amd64 from bookworm-backports)",
		    "kernel %s: the tc layer attaches with tcx, Linux %d.%d or later", f->release, MIN_MAJOR, MIN_MINOR);
	else
		put(c, "kernel", VG_DOC_OK, NULL, "kernel %s (tcx needs %d.%d)", f->release, MIN_MAJOR, MIN_MINOR);
}

static void judge_btf(const struct vg_doc_facts *f, struct vg_doc_check *c)
{
	if (f->btf_err)
		put(c, "btf", VG_DOC_FAIL, "a kernel built with CONFIG_DEBUG_INFO_BTF=y (Debian's are)",
		    "/sys/kernel/btf/vmlinux: %s: the programs are CO-RE and need the kernel's BTF",
		    strerror(-f->btf_err));
	else
		put(c, "btf", VG_DOC_OK, NULL, "/sys/kernel/btf/vmlinux (%ld KiB)", f->btf_size / 1024);
}

static void judge_cgroup(const struct vg_doc_facts *f, struct vg_doc_check *c, char *cg2, size_t len)
{
	static const char fix[] = "mount cgroup v2 (mount -t cgroup2 none /sys/fs/cgroup/unified), "
				  "or boot with systemd.unified_cgroup_hierarchy=1";

	switch (vg_doc_cgroup_layout(f->mounts, cg2, len)) {
	case VG_CG_NONE:
		put(c, "cgroup2", VG_DOC_FAIL, fix, "no cgroup v2 mount in /proc/self/mounts");
		break;
	case VG_CG_LEGACY:
		put(c, "cgroup2", VG_DOC_FAIL, fix, "cgroup v1 only: guards are cgroup v2 programs");
		break;
	case VG_CG_UNIFIED:
		put(c, "cgroup2", VG_DOC_OK, NULL, "cgroup v2 at %s (unified: no v1 hierarchy)", cg2);
		break;
	case VG_CG_HYBRID:
		put(c, "cgroup2", VG_DOC_OK, NULL, "hybrid: cgroup v2 at %s beside v1 hierarchies; --cgroup "
		    "takes paths below it (a /sys/fs/cgroup/... path is read as below it)", cg2);
		break;
	}
}

/* Is dir one of /, /sys, /sys/fs, /sys/fs/bpf: nothing mounted on /sys/fs/bpf? */
static bool bpffs_unmounted_at(const char *dir)
{
	static const char bpf[] = "/sys/fs/bpf";
	size_t n = strlen(dir);

	return !strcmp(dir, "/") || (!strncmp(bpf, dir, n) && (bpf[n] == '/' || !bpf[n]));
}

static void judge_bpffs(const struct vg_doc_facts *f, struct vg_doc_check *c)
{
	bool made = !strcmp(f->pin_dir, f->pin_root);
	char fix[sizeof(c->fix)];

	if (f->pin_fs == BPF_FS_MAGIC)
		put(c, "bpffs", VG_DOC_OK, NULL, "pin root %s on bpffs%s%s%s", f->pin_root,
		    made ? "" : " (not made yet: ", made ? "" : f->pin_dir, made ? "" : " is bpffs)");
	else if (!strncmp(f->pin_root, "/sys/fs/bpf/", 12) && bpffs_unmounted_at(f->pin_dir))
		put(c, "bpffs", VG_DOC_WARN, "mount it at boot: 'bpffs /sys/fs/bpf bpf defaults 0 0' in /etc/fstab",
		    "nothing mounted on /sys/fs/bpf: attach mounts bpffs there itself");
	else {
		snprintf(fix, sizeof(fix), "mount -t bpf bpf %.200s%s, or set VPNGUARD_PIN_ROOT below /sys/fs/bpf",
			 f->pin_root, made ? "" : " (mkdir it first)");
		put(c, "bpffs", VG_DOC_FAIL, fix, "pin root %s: %s is not bpffs (filesystem type 0x%lx): "
		    "nothing can be pinned there", f->pin_root, f->pin_dir, (unsigned long)f->pin_fs);
	}
}

static void judge_hook(const struct vg_doc_facts *f, int i, struct vg_doc_check *c)
{
	int err = f->hook_err[i];
	bool tc = i == VG_DOC_HOOKS - 1;

	if (!err)
		put(c, hook_names[i], VG_DOC_OK, NULL, "%s: a program loads%s", vg_doc_hook_sections[i],
		    tc ? " and attaches to tcx egress (in a namespace of its own)" : "");
	else
		put(c, hook_names[i], VG_DOC_FAIL,
		    err == -EPERM || err == -EACCES ?
		    "run as root with CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN, outside a locked-down container" :
		    "a kernel with this hook (Linux 6.6 or later, CONFIG_CGROUP_BPF=y, CONFIG_NET_CLS_BPF)",
		    "%s: %s", vg_doc_hook_sections[i], strerror(-err));
}

static void judge_docker(const struct vg_doc_facts *f, const char *cg2, struct vg_doc_check *c)
{
	char where[1536];
	size_t n;

	if (f->docker_err[0]) {
		put(c, "docker", VG_DOC_SKIP, NULL, "no engine: %s (it is needed only for --container and "
		    "--tunnel-container)", f->docker_err);
		return;
	}
	n = snprintf(where, sizeof(where), "engine at %s: cgroup driver %s, cgroup v%s: ", f->docker_sock,
		     f->docker_driver[0] ? f->docker_driver : "?", f->docker_cgroup_version[0] ? f->docker_cgroup_version : "?");
	if (!strcmp(f->docker_driver, "systemd"))
		snprintf(where + n, sizeof(where) - n, "cgroup_parent: vpnguard.slice lands in "
			 "%s/vpnguard.slice/docker-<id>.scope", cg2);
	else if (!strcmp(f->docker_driver, "cgroupfs"))
		snprintf(where + n, sizeof(where) - n, "cgroup_parent: /vpnguard.slice lands in %s/vpnguard.slice/<id> "
			 "(a relative vpnguard.slice lands below the engine's own cgroup: %s%s/vpnguard.slice/<id>)",
			 cg2, cg2, !f->dockerd_cgroup[0] ? "/<its cgroup>" :
			 strcmp(f->dockerd_cgroup, "/") ? f->dockerd_cgroup : "");
	else {
		put(c, "docker", VG_DOC_WARN, "check where a container lands: grep '^0::' /proc/PID/cgroup",
		    "%swhere cgroup_parent lands is not known for this driver", where);
		return;
	}
	if (f->slice_guarded)
		put(c, "docker", VG_DOC_OK, NULL, "%s; %s/vpnguard.slice is guarded", where, cg2);
	else
		put(c, "docker", VG_DOC_WARN, "guard the slice before its containers start: vpnguard-bpf attach "
		    "--cgroup /vpnguard.slice ... (or cgroup = in a [guard] of the config)",
		    "%s; %s/vpnguard.slice has no guard", where, cg2);
}

static void judge_net_raw(const struct vg_doc_facts *f, struct vg_doc_check *c)
{
	size_t k = f->net_raw ? json_object_array_length(f->net_raw) : 0, n;
	char list[768] = "";

	if (!f->n_guards) {
		put(c, "net_raw", VG_DOC_SKIP, NULL, "no guard attached: no guarded process to look at");
		return;
	}
	if (f->scan_err) {
		put(c, "net_raw", VG_DOC_WARN, "vpnguard-bpf scan", "could not look at the guarded processes: %s",
		    strerror(-f->scan_err));
		return;
	}
	if (!k) {
		put(c, "net_raw", VG_DOC_OK, NULL, "no process of the %d guard%s holds CAP_NET_RAW", f->n_guards,
		    f->n_guards == 1 ? "" : "s");
		return;
	}
	n = 0;
	for (size_t i = 0; i < k && i < 5 && n < sizeof(list); i++) {
		struct json_object *r = json_object_array_get_idx(f->net_raw, i), *pid;

		json_object_object_get_ex(r, "pid", &pid);
		n += snprintf(list + n, sizeof(list) - n, "%spid %d (%s) in %s", i ? ", " : "",
			      json_object_get_int(pid), vg_json_str(r, "comm") ?: "?", vg_json_str(r, "cgroup") ?: "?");
	}
	put(c, "net_raw", VG_DOC_WARN, "cap_drop: [NET_RAW] on the service (docker run --cap-drop NET_RAW)",
	    "%zu guarded process%s hold%s CAP_NET_RAW, and packet sockets skip every program: %s%s", k,
	    k == 1 ? "" : "es", k == 1 ? "s" : "", list, k > 5 ? ", ..." : "");
}

static void judge_systemd(const struct vg_doc_facts *f, struct vg_doc_check *c)
{
	char who[160];

	if (!strcmp(f->pid1, "systemd"))
		snprintf(who, sizeof(who), "systemd runs (PID 1), unit files read");
	else
		snprintf(who, sizeof(who), "PID 1 is %s, not systemd: unit files read as they are",
			 f->pid1[0] ? f->pid1 : "?");
	if (!f->docker_unit[0])
		put(c, "systemd", VG_DOC_SKIP, NULL, "%s; no docker.service", who);
	else if (!f->vg_unit[0])
		put(c, "systemd", VG_DOC_WARN, "make install (or the package) installs it; then systemctl enable vpnguard",
		    "%s; no vpnguard.service: nothing guards vpnguard.slice before docker.service (%s) starts "
		    "containers at boot", who, f->docker_unit);
	else if (f->vg_masked)
		put(c, "systemd", VG_DOC_WARN, "systemctl unmask vpnguard", "%s; vpnguard.service is masked (%s)",
		    who, f->vg_unit);
	else if (!f->ordered)
		put(c, "systemd", VG_DOC_FAIL, "Before=docker.service in its [Unit] (systemctl edit vpnguard)",
		    "%s; vpnguard.service (%s) is not ordered before docker.service (%s): at boot, containers "
		    "in vpnguard.slice can start before their guard", who, f->vg_unit, f->docker_unit);
	else if (!f->enabled)
		put(c, "systemd", VG_DOC_WARN, "systemctl enable vpnguard",
		    "%s; vpnguard.service (%s) is ordered before docker.service but not enabled", who, f->vg_unit);
	else
		put(c, "systemd", VG_DOC_OK, NULL, "%s; vpnguard.service (%s) is enabled and ordered before "
		    "docker.service (%s)", who, f->vg_unit, f->docker_unit);
}

int vg_doctor_judge(const struct vg_doc_facts *f, struct vg_doc_check *out, int max)
{
	struct vg_doc_check c[VG_DOC_CHECKS];
	char cg2[PATH_MAX];
	int n = 0;

	judge_kernel(f, &c[n++]);
	judge_btf(f, &c[n++]);
	judge_cgroup(f, &c[n++], cg2, sizeof(cg2));
	judge_bpffs(f, &c[n++]);
	for (int i = 0; i < VG_DOC_HOOKS; i++)
		judge_hook(f, i, &c[n++]);
	judge_docker(f, cg2, &c[n++]);
	judge_net_raw(f, &c[n++]);
	judge_systemd(f, &c[n++]);
	for (int i = 0; i < n && i < max; i++)
		out[i] = c[i];
	return n;
}

struct json_object *vg_doctor_json(const struct vg_doc_check *c, int n)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	bool ok = true;

	for (int i = 0; i < n; i++) {
		struct json_object *e = json_object_new_object();

		ok &= c[i].level != VG_DOC_FAIL;
		json_object_object_add(e, "name", json_object_new_string(c[i].name));
		json_object_object_add(e, "result", json_object_new_string(c[i].level == VG_DOC_FAIL ? "fail" :
						   vg_doc_level_name(c[i].level)));
		json_object_object_add(e, "text", json_object_new_string(c[i].text));
		json_object_object_add(e, "fix", c[i].fix[0] ? json_object_new_string(c[i].fix) : NULL);
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "ok", json_object_new_boolean(ok));
	json_object_object_add(o, "checks", arr);
	return o;
}
