// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "attach.h"
#include "netns.h"
#include "txn.h"
#include "vpnguard.h"

int txn_push(struct txn *t, void (*undo)(void *), void (*commit)(void *), void (*release)(void *),
	     void *arg)
{
	struct txn_step *s = realloc(t->steps, (t->n + 1) * sizeof(*s));

	if (!s) {
		if (release)
			release(arg);
		free(arg);
		return -ENOMEM;
	}
	t->steps = s;
	t->steps[t->n++] = (struct txn_step){ undo, commit, release, arg };
	return 0;
}

static void finish(struct txn *t)
{
	for (int i = 0; i < t->n; i++) {
		if (t->steps[i].release)
			t->steps[i].release(t->steps[i].arg);
		free(t->steps[i].arg);
	}
	free(t->steps);
	t->steps = NULL;
	t->n = 0;
}

void txn_rollback(struct txn *t)
{
	for (int i = t->n - 1; i >= 0; i--)
		t->steps[i].undo(t->steps[i].arg);
	finish(t);
}

void txn_commit(struct txn *t)
{
	for (int i = 0; i < t->n; i++)
		if (t->steps[i].commit)
			t->steps[i].commit(t->steps[i].arg);
	finish(t);
}

/* A map entry as it was. */
struct entry_step {
	int map_fd;                 /* its own: the skeleton that lent one is gone before a rollback */
	char key[sizeof(struct vg_tunnel_key)];
	void *old;                  /* NULL: the key was absent */
};

static void entry_undo(void *arg)
{
	struct entry_step *e = arg;

	if (e->old)
		bpf_map_update_elem(e->map_fd, e->key, e->old, BPF_ANY);
	else
		bpf_map_delete_elem(e->map_fd, e->key);
}

static void entry_release(void *arg)
{
	struct entry_step *e = arg;

	free(e->old);
	if (e->map_fd >= 0)
		close(e->map_fd);
}

static int push_entry(struct txn *t, int map_fd, const void *key, size_t ksz, size_t vsz)
{
	struct entry_step *e = calloc(1, sizeof(*e));

	if (!e || ksz > sizeof(e->key)) {
		free(e);
		return -ENOMEM;
	}
	e->map_fd = dup(map_fd);
	memcpy(e->key, key, ksz);
	if (e->map_fd < 0 || (vsz && !(e->old = malloc(vsz)))) {
		int err = e->map_fd < 0 ? -errno : -ENOMEM;

		entry_release(e);
		free(e);
		return err;
	}
	if (e->old && bpf_map_lookup_elem(map_fd, key, e->old)) {
		free(e->old);
		e->old = NULL;
	}
	return txn_push(t, entry_undo, NULL, entry_release, e);
}

int txn_map_update(struct txn *t, int map_fd, const void *key, size_t ksz, const void *val,
		   size_t vsz)
{
	int err = push_entry(t, map_fd, key, ksz, vsz);

	if (err)
		return err;
	return bpf_map_update_elem(map_fd, key, val, BPF_ANY) ? -errno : 0;
}

int txn_map_new(struct txn *t, int map_fd, const void *key, size_t ksz)
{
	return push_entry(t, map_fd, key, ksz, 0);
}

/* One attachment as it was: none (old_fd -1), or the guard's old program. */
struct attach_step {
	int netns_fd, target, cg_fd;
	enum bpf_attach_type type;
	int new_fd, old_fd;
	__u64 id;
};

static int attach_here(void *arg)
{
	struct attach_step *a = arg;

	return vg_attach_prog(a->target, a->type, a->new_fd, a->id, &a->old_fd);
}

static int undo_here(void *arg)
{
	struct attach_step *a = arg;
	int gone;

	if (a->old_fd < 0)
		return vg_detach_prog(a->target, a->type, a->new_fd);
	/* The new program is the guard's there now: the old one takes its place again. */
	if (!vg_attach_prog(a->target, a->type, a->old_fd, a->id, &gone) && gone >= 0)
		close(gone);
	return 0;
}

static void attach_undo(void *arg)
{
	struct attach_step *a = arg;

	if (a->netns_fd >= 0)
		vg_netns_run(a->netns_fd, undo_here, a);
	else
		undo_here(a);
}

static void attach_release(void *arg)
{
	struct attach_step *a = arg;
	int fds[] = { a->netns_fd, a->cg_fd, a->new_fd, a->old_fd };

	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

int txn_attach(struct txn *t, int netns_fd, int target, enum bpf_attach_type type, int prog_fd,
	       __u64 id)
{
	struct attach_step *a = calloc(1, sizeof(*a));
	int err;

	if (!a)
		return -ENOMEM;
	*a = (struct attach_step){ .netns_fd = -1, .cg_fd = -1, .type = type, .new_fd = dup(prog_fd),
				   .old_fd = -1, .id = id };
	/* A cgroup target is a descriptor the caller closes: keep one of our own. */
	a->target = netns_fd >= 0 ? target : (a->cg_fd = dup(target));
	if (netns_fd >= 0)
		a->netns_fd = dup(netns_fd);
	if (a->new_fd < 0 || a->target < 0 || (netns_fd >= 0 && a->netns_fd < 0)) {
		err = -errno;
		attach_release(a);
		free(a);
		return err;
	}
	err = a->netns_fd >= 0 ? vg_netns_run(a->netns_fd, attach_here, a) : attach_here(a);
	if (err) {
		attach_release(a);
		free(a);
		return err;
	}
	return txn_push(t, attach_undo, NULL, attach_release, a);
}

/* A pin as it was: path held old_fd's object, or nothing (-1). */
struct pin_step {
	char *path;
	int old_fd;
};

static void pin_undo(void *arg)
{
	struct pin_step *p = arg;

	unlink(p->path);
	if (p->old_fd >= 0)
		bpf_obj_pin(p->old_fd, p->path);
}

static void pin_release(void *arg)
{
	struct pin_step *p = arg;

	free(p->path);
	if (p->old_fd >= 0)
		close(p->old_fd);
}

int txn_pin(struct txn *t, int fd, const char *path)
{
	struct pin_step *p = calloc(1, sizeof(*p));
	int err;

	if (!p || !(p->path = strdup(path))) {
		free(p);
		return -ENOMEM;
	}
	p->old_fd = bpf_obj_get(path);
	unlink(path);
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		pin_undo(p);
		pin_release(p);
		free(p);
		return err;
	}
	return txn_push(t, pin_undo, NULL, pin_release, p);
}
