// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "docker.h"
#include "event_fmt.h"
#include "loader.h"
#include "proc_parse.h"
#include "error.h"
#include "scan.h"
#include "scan_logic.h"
#include "maps.h"

struct table {
	struct vg_proc *procs;
	int n, cap;
	struct vg_scan_guard guards[VG_MAX_GUARDS];
	struct vg_guard_info infos[VG_MAX_GUARDS];
	int n_guards;
};

/* The guards as recorded at attach; none pinned is no guard, not an error. */
static int read_guards(struct table *t)
{
	int fd = vg_map_open(VG_MAP_GUARDS);
	__u64 key;

	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return vg_error(fd, "scan: open %s/vg_guards", vg_pin_root());
	vg_map_for_each_key(fd, key) {
		struct vg_guard_info *info = &t->infos[t->n_guards];

		if (t->n_guards == VG_MAX_GUARDS)
			break;
		if (bpf_map_lookup_elem(fd, &key, info))
			continue;
		info->cgroup[sizeof(info->cgroup) - 1] = 0;
		t->guards[t->n_guards++] = (struct vg_scan_guard){ key, info->cgroup };
	}
	close(fd);
	return 0;
}

static int read_text(int dirfd, const char *name, char *buf, size_t len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	return 0;
}

static int ns_inode(int dirfd, const char *name, uint64_t *ino)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, 0))
		return -errno;
	*ino = st.st_ino;
	return 0;
}

/* One process; -errno when it is gone (or a kernel thread with no namespaces). */
static int read_proc(int dirfd, int pid, struct vg_proc *p, char *cgroup, size_t cglen)
{
	char text[4096];
	int r;

	memset(p, 0, sizeof(*p));
	p->pid = pid;
	if ((r = read_text(dirfd, "stat", text, sizeof(text))) ||
	    (r = vg_proc_stat(text, p->comm, sizeof(p->comm), &p->start)) ||
	    (r = read_text(dirfd, "cgroup", text, sizeof(text))) ||
	    (r = vg_proc_cgroup_v2(text, cgroup, cglen)) ||
	    (r = read_text(dirfd, "status", text, sizeof(text))) ||
	    (r = vg_proc_caps(text, "CapEff", &p->cap_eff)) ||
	    (r = vg_proc_caps(text, "CapPrm", &p->cap_prm)) ||
	    (r = ns_inode(dirfd, "ns/net", &p->netns)) || (r = ns_inode(dirfd, "ns/pid", &p->pidns)))
		return r;
	return 0;
}

static int read_procs(struct table *t)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	char cgroup[PATH_MAX];
	int err = 0;

	if (!d) {
		vg_error(-errno, "scan: /proc");
		return -errno;
	}
	while ((de = readdir(d))) {
		struct vg_proc p;
		int fd;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			continue;
		int r = read_proc(fd, atoi(de->d_name), &p, cgroup, sizeof(cgroup));
		close(fd);
		if (r)
			continue; /* gone meanwhile: nothing to judge */
		if (t->n == t->cap) {
			int cap = t->cap ? t->cap * 2 : 1024;
			struct vg_proc *np = realloc(t->procs, cap * sizeof(*np));

			if (!np) {
				err = -ENOMEM;
				break;
			}
			t->procs = np;
			t->cap = cap;
		}
		p.cgroup = strdup(cgroup);
		if (!p.cgroup) {
			err = -ENOMEM;
			break;
		}
		t->procs[t->n++] = p;
	}
	closedir(d);
	if (err)
		vg_error(err, "scan: process table");
	return err;
}

static void free_table(struct table *t)
{
	for (int i = 0; i < t->n; i++)
		free((char *)t->procs[i].cgroup);
	free(t->procs);
	free(t);
}

/* What the engine said runs, for the ghost judgement. */
struct engine {
	char sock[PATH_MAX];
	const char (*running)[VG_CONTAINER_ID_LEN + 1];   /* NULL: it could not be asked */
	int n_running;
	char error[PATH_MAX + 256];     /* then why */
};

/* Does a process of a guard sit in a cgroup named for a container? Only then is the engine asked. */
static bool names_container(const struct vg_scan_input *in)
{
	char id[VG_CONTAINER_ID_LEN + 1];

	for (int i = 0; i < in->n_procs; i++)
		if (vg_scan_guard_of(in, in->procs[i].cgroup) >= 0 &&
		    vg_cgroup_container_id(in->procs[i].cgroup, id))
			return true;
	return false;
}

/* The engine DOCKER_HOST names (or the default): the ids it runs in e->running, or why not in e->error. */
static void ask_engine(struct engine *e)
{
	struct vg_docker_summary *list;
	char (*ids)[VG_CONTAINER_ID_LEN + 1];
	int n;

	if (vg_docker_socket(NULL, e->sock, sizeof(e->sock), e->error, sizeof(e->error)) ||
	    vg_docker_list(e->sock, &list, &n, e->error, sizeof(e->error)))
		return;
	/* vg_docker_list gives at most this many: a list that long may have left out containers that run. */
	if (n >= VG_DOCKER_LIST_MAX)
		snprintf(e->error, sizeof(e->error), "docker: %s: %d containers or more: the list may leave "
			 "out some that run", e->sock, VG_DOCKER_LIST_MAX);
	else if (!(ids = calloc(n ? n : 1, sizeof(*ids))))
		snprintf(e->error, sizeof(e->error), "docker: list of containers: %s", strerror(ENOMEM));
	else {
		for (int i = 0; i < n; i++)
			if (vg_scan_state_owns(list[i].state))
				snprintf(ids[e->n_running++], sizeof(*ids), "%s", list[i].id);
		e->running = ids;
	}
	free(list);
}

/*
 * A process seen in a cgroup named for a container, which the engine listed
 * after: if the container ended in between, the engine calls it exited and
 * its processes are gone (they die with its init, before the engine hears of
 * the exit). One that is still there, the same process in the same cgroup,
 * is a ghost.
 */
static bool still_there(const struct vg_proc *p)
{
	char path[32], cgroup[PATH_MAX];
	struct vg_proc now;
	int fd, r;

	snprintf(path, sizeof(path), "/proc/%d", p->pid);
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return false;
	r = read_proc(fd, p->pid, &now, cgroup, sizeof(cgroup));
	close(fd);
	return !r && now.start == p->start && !strcmp(cgroup, p->cgroup);
}

/* The ghosts, without those that were a container ending while the engine was asked. */
static int still_ghosts(const struct vg_scan_input *in, struct vg_finding *ghosts, int n)
{
	int k = 0;

	for (int i = 0; i < n; i++)
		if (still_there(&in->procs[ghosts[i].proc]))
			ghosts[k++] = ghosts[i];
	return k;
}

static void add_engine(struct json_object *res, const struct engine *e)
{
	struct json_object *o = json_object_new_object();
	char note[sizeof(e->error) + 64];

	json_object_object_add(o, "socket", e->sock[0] ? json_object_new_string(e->sock) : NULL);
	if (e->running) {
		json_object_object_add(o, "running", json_object_new_int(e->n_running));
	} else {
		json_object_object_add(o, "error", json_object_new_string(e->error));
		snprintf(note, sizeof(note), "ghosts not looked for: %s", e->error);
		json_object_object_add(res, "note", json_object_new_string(note));
	}
	json_object_object_add(res, "engine", o);
}

static int scan(struct json_object **out, bool docker)
{
	struct table *t = calloc(1, sizeof(*t));
	struct vg_scan_input in = { 0 };
	struct vg_finding *found = NULL;
	struct json_object *guards, *findings;
	struct engine e = { 0 };
	bool asked = false;
	struct stat self;
	int n, n_ghosts, r, in_guards = 0;

	if (!t)
		return -ENOMEM;
	if ((r = read_guards(t)) || (t->n_guards && (r = read_procs(t))))
		goto out;
	if (stat("/proc/self/ns/pid", &self)) {
		r = -errno;
		vg_error(-errno, "scan: /proc/self/ns/pid");
		goto out;
	}
	in = (struct vg_scan_input){ t->procs, t->n, t->guards, t->n_guards, self.st_ino };
	/* An engine that cannot be asked is said, not an error: the rest of the scan needs none. */
	if (docker && names_container(&in)) {
		asked = true;
		ask_engine(&e);
	}
	n = vg_scan_judge(&in, NULL, 0);
	n_ghosts = e.running ? vg_scan_ghosts(&in, e.running, e.n_running, NULL, 0) : 0;
	found = calloc(n + n_ghosts + 1, sizeof(*found));
	if (!found) {
		r = -ENOMEM;
		goto out;
	}
	vg_scan_judge(&in, found, n);
	if (n_ghosts) {
		vg_scan_ghosts(&in, e.running, e.n_running, found + n, n_ghosts);
		n += still_ghosts(&in, found + n, n_ghosts);
	}

	*out = json_object_new_object();
	guards = json_object_new_array();
	findings = json_object_new_array();
	for (int g = 0; g < t->n_guards; g++)
		json_object_array_add(guards, json_object_new_string(t->guards[g].cgroup));
	for (int i = 0; i < t->n; i++)
		in_guards += vg_scan_guard_of(&in, t->procs[i].cgroup) >= 0;
	for (int i = 0; i < n; i++)
		json_object_array_add(findings, vg_finding_to_json(&in, &found[i]));
	json_object_object_add(*out, "guards", guards);
	json_object_object_add(*out, "processes", json_object_new_int(in_guards));
	json_object_object_add(*out, "findings", findings);
	if (asked)
		add_engine(*out, &e);
out:
	free((void *)e.running);
	free(found);
	free_table(t);
	return r;
}

int vg_scan(struct json_object **out)
{
	return scan(out, false);
}

int vg_scan_docker(struct json_object **out)
{
	return scan(out, true);
}
