// SPDX-License-Identifier: GPL-2.0
/* doctor: the facts of this host, for vg_doctor_judge (doctor.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "cgroup.h"
#include "docker.h"
#include "doctor.h"
#include "loader.h"
#include "scan.h"

#define TEXT_MAX (1 << 20)
#define DOCKER_TIMEOUT_S 3
/* Where the shipped vpnguard.slice is, below the cgroup2 mount. */
#define SLICE "/vpnguard.slice"

/* A file's text (at most TEXT_MAX bytes), malloc'd; NULL with errno. */
static char *slurp(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	char *buf = fd >= 0 ? malloc(TEXT_MAX + 1) : NULL;
	size_t n = 0;
	ssize_t k = 1;

	while (buf && n < TEXT_MAX && (k = read(fd, buf + n, TEXT_MAX - n)) > 0)
		n += k;
	if (buf && k < 0) {
		free(buf);
		buf = NULL;
	}
	if (buf)
		buf[n] = 0;
	if (fd >= 0)
		close(fd);
	return buf;
}

static void probe_btf(struct vg_doc_facts *f)
{
	struct stat st;
	int fd = open("/sys/kernel/btf/vmlinux", O_RDONLY | O_CLOEXEC);

	f->btf_err = fd < 0 || fstat(fd, &st) ? -errno : st.st_size ? 0 : -ENODATA;
	f->btf_size = f->btf_err ? 0 : st.st_size;
	if (fd >= 0)
		close(fd);
}

/* The filesystem the pin root is (or will be) made on: the nearest directory of it that exists. */
static void probe_pin_fs(struct vg_doc_facts *f)
{
	struct statfs fs;
	char *slash;

	f->pin_root = vg_pin_root();
	snprintf(f->pin_dir, sizeof(f->pin_dir), "%s", f->pin_root);
	while (access(f->pin_dir, F_OK) && (slash = strrchr(f->pin_dir, '/')))
		slash == f->pin_dir ? (void)(slash[1] = 0) : (void)(*slash = 0);
	f->pin_fs = statfs(f->pin_dir, &fs) ? 0 : (long)fs.f_type;
}

/* tcx in a namespace made for it and gone with the child: nothing of the host is touched. */
static int tcx_attach_alone(int prog_fd)
{
	LIBBPF_OPTS(bpf_prog_attach_opts, opts);
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (!pid) {
		if (unshare(CLONE_NEWNET))
			_exit(errno);
		/* The loopback device of a new namespace is ifindex 1. */
		_exit(bpf_prog_attach_opts(prog_fd, 1, VG_BPF_TCX_EGRESS, &opts) ? errno : 0);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? -WEXITSTATUS(status) : -EINTR;
}

/* The smallest program of each hook (return 1: allow), loaded as the guard's are. */
static void probe_hooks(struct vg_doc_facts *f)
{
	const struct bpf_insn allow[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};

	for (int i = 0; i < VG_DOC_HOOKS; i++) {
		LIBBPF_OPTS(bpf_prog_load_opts, opts);
		enum bpf_prog_type type;
		enum bpf_attach_type at;
		bool tc = !strcmp(vg_doc_hook_sections[i], "tc");
		int fd;

		if (libbpf_prog_type_by_name(vg_doc_hook_sections[i], &type, &at)) {
			f->hook_err[i] = -EINVAL;
			continue;
		}
		opts.expected_attach_type = tc ? (enum bpf_attach_type)VG_BPF_TCX_EGRESS : at;
		fd = bpf_prog_load(type, "vgdoctor", "GPL", allow, sizeof(allow) / sizeof(allow[0]), &opts);
		f->hook_err[i] = fd < 0 ? -errno : tc ? tcx_attach_alone(fd) : 0;
		if (fd >= 0)
			close(fd);
	}
}

/* GET /info as HTTP/1.0 (the engine closes once it has answered); the peer's pid if it is dockerd. */
static int docker_get_info(const char *sock, char *buf, size_t len, pid_t *peer)
{
	static const char req[] = "GET /v1.41/info HTTP/1.0\r\nHost: docker\r\n\r\n";
	struct timeval tv = { .tv_sec = DOCKER_TIMEOUT_S };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ucred cred;
	socklen_t cl = sizeof(cred);
	size_t n = 0;
	ssize_t k = 1;
	int fd, err = 0;

	if (strlen(sock) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, sock, strlen(sock));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(fd, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1)
		err = -errno;
	while (!err && n < len - 1 && (k = read(fd, buf + n, len - 1 - n)) > 0)
		n += k;
	if (!err && k < 0)
		err = -errno;
	buf[n] = 0;
	*peer = !err && !getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) ? cred.pid : 0;
	close(fd);
	return err;
}

static void probe_docker(struct vg_doc_facts *f, const char *cg2)
{
	char err[256], comm[64] = "", path[64], *buf = malloc(TEXT_MAX);
	struct vg_cgroup cg, slice;
	pid_t peer = 0;
	__u64 id;
	int r;

	if (!buf || vg_docker_socket(NULL, f->docker_sock, sizeof(f->docker_sock), err, sizeof(err))) {
		snprintf(f->docker_err, sizeof(f->docker_err), "%s", buf ? err : strerror(ENOMEM));
		free(buf);
		return;
	}
	if ((r = docker_get_info(f->docker_sock, buf, TEXT_MAX, &peer)))
		snprintf(f->docker_err, sizeof(f->docker_err), "%s: %s", f->docker_sock, strerror(-r));
	else if (vg_doc_docker_info(buf, f->docker_driver, sizeof(f->docker_driver), f->docker_cgroup_version,
				    sizeof(f->docker_cgroup_version), err, sizeof(err)))
		snprintf(f->docker_err, sizeof(f->docker_err), "%s: %s", f->docker_sock, err);
	free(buf);
	/* A socket systemd made (docker.socket) names systemd as its peer: only dockerd's cgroup is meant. */
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)peer);
	if (peer > 0 && (buf = slurp(path))) {
		snprintf(comm, sizeof(comm), "%.*s", (int)strcspn(buf, "\n"), buf);
		free(buf);
	}
	if (!strcmp(comm, "dockerd") && !vg_cgroup_of_pid(peer, &cg, err, sizeof(err)))
		snprintf(f->dockerd_cgroup, sizeof(f->dockerd_cgroup), "%s", cg.rel);
	f->slice_guarded = cg2[0] && !vg_cgroup_resolve(SLICE, &slice, err, sizeof(err)) &&
			   !vg_guard_find(SLICE, &id) && id == slice.id;
}

static void probe_net_raw(struct vg_doc_facts *f)
{
	struct json_object *scan = NULL, *guards, *found;

	f->net_raw = json_object_new_array();
	f->scan_err = vg_scan(&scan);
	if (f->scan_err)
		return;
	json_object_object_get_ex(scan, "guards", &guards);
	json_object_object_get_ex(scan, "findings", &found);
	f->n_guards = (int)json_object_array_length(guards);
	for (size_t i = 0; i < json_object_array_length(found); i++) {
		struct json_object *r = json_object_array_get_idx(found, i), *kind;

		if (json_object_object_get_ex(r, "kind", &kind) && !strcmp(json_object_get_string(kind), "net_raw"))
			json_object_array_add(f->net_raw, json_object_get(r));
	}
	json_object_put(scan);
}

/* systemd's unit directories, the first that has a unit wins (systemd.unit(5), as Debian has them). */
static const char *const unit_dirs[] = {
	"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
	"/usr/lib/systemd/system", "/lib/systemd/system",
};
#define N_UNIT_DIRS (sizeof(unit_dirs) / sizeof(unit_dirs[0]))
#define MAX_UNIT_TEXTS 32

static int by_name(const void *a, const void *b)
{
	return strcmp(strrchr(*(char *const *)a, '/'), strrchr(*(char *const *)b, '/'));
}

/*
 * The unit file (its path into found, "" none) and its drop-ins
 * (NAME.d/ *.conf, one per file name, of the first directory that has it,
 * read in file-name order), as texts into texts; returns how many.
 */
static int unit_texts(const char *name, char *found, size_t len, bool *masked, char **texts)
{
	char path[PATH_MAX], link[16], *drop[MAX_UNIT_TEXTS];
	int n = 0, nd = 0;
	ssize_t k;

	found[0] = 0;
	*masked = false;
	for (size_t d = 0; d < N_UNIT_DIRS; d++) {
		snprintf(path, sizeof(path), "%s/%s", unit_dirs[d], name);
		k = readlink(path, link, sizeof(link) - 1);
		if (k < 0 && access(path, F_OK))
			continue;
		snprintf(found, len, "%s", path);
		*masked = k >= 0 && (link[k] = 0, !strcmp(link, "/dev/null"));
		if (!*masked && (texts[n] = slurp(path)))
			*masked = !texts[n++][0]; /* an empty unit file is masked too */
		break;
	}
	for (size_t d = 0; d < N_UNIT_DIRS; d++) {
		DIR *dir;
		struct dirent *e;

		snprintf(path, sizeof(path), "%s/%s.d", unit_dirs[d], name);
		if (!(dir = opendir(path)))
			continue;
		while ((e = readdir(dir)) && nd < MAX_UNIT_TEXTS - 1) {
			size_t l = strlen(e->d_name);
			bool seen = false;

			if (l < 6 || strcmp(e->d_name + l - 5, ".conf"))
				continue;
			for (int i = 0; i < nd; i++)
				seen |= !strcmp(strrchr(drop[i], '/') + 1, e->d_name);
			if (!seen && asprintf(&drop[nd], "%s/%s", path, e->d_name) > 0)
				nd++;
		}
		closedir(dir);
	}
	qsort(drop, nd, sizeof(drop[0]), by_name);
	for (int i = 0; i < nd; i++) {
		if (n < MAX_UNIT_TEXTS && (texts[n] = slurp(drop[i])))
			n++;
		free(drop[i]);
	}
	return n;
}

/* Enabled: some .wants/ or .requires/ directory of /etc/systemd/system links to it. */
static bool unit_enabled(const char *name)
{
	DIR *dir = opendir(unit_dirs[0]);
	struct dirent *e;
	char path[PATH_MAX];
	struct stat st;
	bool on = false;

	while (dir && !on && (e = readdir(dir))) {
		size_t l = strlen(e->d_name);

		if ((l > 6 && !strcmp(e->d_name + l - 6, ".wants")) || (l > 9 && !strcmp(e->d_name + l - 9, ".requires"))) {
			snprintf(path, sizeof(path), "%s/%s/%s", unit_dirs[0], e->d_name, name);
			on = !lstat(path, &st);
		}
	}
	if (dir)
		closedir(dir);
	return on;
}

static void probe_systemd(struct vg_doc_facts *f)
{
	char *vg[MAX_UNIT_TEXTS], *docker[MAX_UNIT_TEXTS], *comm = slurp("/proc/1/comm");
	bool docker_masked;
	int nv, nd;

	snprintf(f->pid1, sizeof(f->pid1), "%.*s", comm ? (int)strcspn(comm, "\n") : 0, comm ?: "");
	free(comm);
	nv = unit_texts("vpnguard.service", f->vg_unit, sizeof(f->vg_unit), &f->vg_masked, vg);
	nd = unit_texts("docker.service", f->docker_unit, sizeof(f->docker_unit), &docker_masked, docker);
	f->ordered = vg_unit_lists((const char *const *)vg, nv, "Before", "docker.service") ||
		     vg_unit_lists((const char *const *)docker, nd, "After", "vpnguard.service");
	f->enabled = unit_enabled("vpnguard.service");
	for (int i = 0; i < nv; i++)
		free(vg[i]);
	for (int i = 0; i < nd; i++)
		free(docker[i]);
}

int vg_doctor_probe(struct vg_doc_facts *f)
{
	struct utsname u;
	char cg2[PATH_MAX];

	memset(f, 0, sizeof(*f));
	if (!uname(&u))
		snprintf(f->release, sizeof(f->release), "%s", u.release);
	probe_btf(f);
	if (!(f->mounts_text = slurp("/proc/self/mounts")))
		return -errno;
	f->mounts = f->mounts_text;
	vg_doc_cgroup_layout(f->mounts, cg2, sizeof(cg2));
	probe_pin_fs(f);
	probe_hooks(f);
	probe_docker(f, cg2);
	probe_net_raw(f);
	probe_systemd(f);
	return 0;
}

void vg_doctor_facts_free(struct vg_doc_facts *f)
{
	free(f->mounts_text);
	json_object_put(f->net_raw);
}
