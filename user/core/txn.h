/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The all-or-nothing transaction of an attach: every change it makes is a
 * step that knows how to undo itself; a failure undoes them all, newest
 * first (attachments were made last, so they go first and no program runs on
 * entries being restored), and a success commits them in order.
 */
#ifndef VG_TXN_H
#define VG_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include <bpf/bpf.h>

struct txn_step {
	void (*undo)(void *arg);      /* puts back what the step changed */
	void (*commit)(void *arg);    /* what a success leaves to do; may be NULL */
	void (*release)(void *arg);   /* frees what arg holds; may be NULL */
	void *arg;                    /* malloc'ed; the transaction frees it */
};

struct txn {
	struct txn_step *steps;
	int n;
};

/* Takes arg (malloc'ed) into the transaction; on -ENOMEM it is released and freed at once. */
int txn_push(struct txn *t, void (*undo)(void *), void (*commit)(void *), void (*release)(void *),
	     void *arg);

/* Writes key=val into map_fd after saving what was there. */
int txn_map_update(struct txn *t, int map_fd, const void *key, size_t ksz, const void *val,
		   size_t vsz);

/* Notes that key was absent from map_fd before this attach wrote it some other way. */
int txn_map_new(struct txn *t, int map_fd, const void *key, size_t ksz);

/*
 * Attaches prog_fd to target (vg_attach_prog: in place of the guard's own
 * program there), inside namespace netns_fd when it is not -1 (tcx targets
 * are interface indexes), and remembers how to put the old one back.
 */
int txn_attach(struct txn *t, int netns_fd, int target, enum bpf_attach_type type, int prog_fd,
	       __u64 id);

/* Pins fd at path, in place of what was pinned there. */
int txn_pin(struct txn *t, int fd, const char *path);

void txn_rollback(struct txn *t);
void txn_commit(struct txn *t);

#endif
