/* SPDX-License-Identifier: GPL-2.0 */
/*
 * doctor: does this host have what the kill switch needs? doctor_probe.c
 * gathers the facts (files, a tiny BPF program per hook, the engine's
 * /info); this part judges them into one check per line, each ok, warn,
 * skip or FAIL with what to do. Pure: unit-tested on made-up facts.
 */
#ifndef VG_DOCTOR_H
#define VG_DOCTOR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

enum vg_doc_level { VG_DOC_OK, VG_DOC_SKIP, VG_DOC_WARN, VG_DOC_FAIL };

struct vg_doc_check {
	const char *name;            /* "kernel", "btf", "cgroup2", "bpffs", "hook connect4", ... */
	enum vg_doc_level level;
	char text[1024];             /* what was found */
	char fix[512];               /* what to do; "" when nothing */
};

/* The hooks a guard attaches, by their programs' section names (bpf/vpnguard.bpf.c). */
#define VG_DOC_HOOKS 8
extern const char *const vg_doc_hook_sections[VG_DOC_HOOKS];

enum vg_cg_layout { VG_CG_NONE, VG_CG_UNIFIED, VG_CG_HYBRID, VG_CG_LEGACY };

/* Found facts; a string "" or a NULL pointer is "not found". */
struct vg_doc_facts {
	char release[128];           /* uname -r */
	int btf_err;                 /* 0: /sys/kernel/btf/vmlinux is readable, else -errno */
	long btf_size;
	const char *mounts;          /* /proc/self/mounts */
	char *mounts_text;           /* what mounts points to, when vg_doctor_probe read it */
	const char *pin_root;
	char pin_dir[PATH_MAX];      /* the pin root, or its nearest directory that exists */
	long pin_fs;                 /* statfs f_type of pin_dir; 0: statfs failed */
	int hook_err[VG_DOC_HOOKS];  /* 0: loaded (tc: and attached to tcx); -errno */
	/* The engine: sock, and its /info or why there is none. */
	char docker_sock[PATH_MAX];
	char docker_err[PATH_MAX + 512]; /* "": it answered */
	char docker_driver[32];      /* CgroupDriver */
	char docker_cgroup_version[8];
	char dockerd_cgroup[PATH_MAX]; /* the engine's own cgroup v2 ("/" the root); "" unknown */
	bool slice_guarded;          /* <cgroup2>/vpnguard.slice has a guard */
	/* Guarded processes holding CAP_NET_RAW: scan's net_raw records, or scan_err. */
	int n_guards;
	struct json_object *net_raw;
	int scan_err;
	/* systemd */
	char pid1[32];               /* /proc/1/comm */
	char vg_unit[PATH_MAX];      /* vpnguard.service as found, "" none */
	char docker_unit[PATH_MAX];
	bool vg_masked;
	bool ordered;                /* vpnguard.service Before=docker.service, or docker's After= */
	bool enabled;                /* a .wants/ or .requires/ link to vpnguard.service in /etc */
};

/* doctor_probe.c: fills *f from this host; 0 or -errno. vg_doctor_facts_free lets go of it. */
int vg_doctor_probe(struct vg_doc_facts *f);
void vg_doctor_facts_free(struct vg_doc_facts *f);

/* "6.18.44-fc" as major and minor; -EINVAL when it does not start so. */
int vg_doc_kernel_version(const char *release, int *major, int *minor);

/* The cgroup layout of a /proc/self/mounts text, and where cgroup v2 is mounted ("" none). */
enum vg_cg_layout vg_doc_cgroup_layout(const char *mounts, char *cg2, size_t len);

/*
 * Does a unit's [Unit] key (Before, After) name unit, texts being the unit
 * file then its drop-ins in the order systemd reads them? An empty value
 * empties the list, as in systemd.
 */
bool vg_unit_lists(const char *const *texts, int n, const char *key, const char *unit);

/*
 * An HTTP/1.0 answer of the engine to GET /info: its CgroupDriver and
 * CgroupVersion. -EIO with why when the status is not 200 or the body no
 * JSON object.
 */
int vg_doc_docker_info(const char *answer, char *driver, size_t dlen, char *version, size_t vlen,
		       char *why, size_t wlen);

/* kernel, btf, cgroup2, bpffs, the hooks, docker, net_raw, systemd */
#define VG_DOC_CHECKS (VG_DOC_HOOKS + 7)

/* Judges the facts: one check per line into out (at most max); returns how many. */
int vg_doctor_judge(const struct vg_doc_facts *f, struct vg_doc_check *out, int max);

/* The checks as JSON {"ok", "checks": [{name, result, text, fix}]}; ok: no FAIL. */
struct json_object *vg_doctor_json(const struct vg_doc_check *c, int n);

const char *vg_doc_level_name(enum vg_doc_level l);

#endif
