/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A thread of the agent that blocks so the event loop never does (libcurl
 * probes, the engine's event stream, webhook POSTs). It sleeps on an eventfd
 * that vg_worker_wake and the stop functions write, so it can be stopped at
 * once; stop is also the abort flag libcurl's transfers poll.
 */
#ifndef VG_WORKER_H
#define VG_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct vg_worker {
	pthread_t thread;
	pthread_mutex_t lock;       /* for what the thread and the agent share */
	atomic_bool stop;
	int wake_fd;
};

/* Starts run(arg); 0 or a negative errno (nothing left to release). */
int vg_worker_start(struct vg_worker *w, void *(*run)(void *), void *arg);

/* In the thread: sleeps up to ms (-1: until woken); true when told to stop. */
bool vg_worker_sleep(struct vg_worker *w, int ms);

void vg_worker_wake(struct vg_worker *w);

/*
 * Tells the thread to stop and waits up to ms (-1: as long as it takes) for it;
 * -ETIMEDOUT leaves it running (stop it again). On 0 its resources are released.
 */
int vg_worker_stop(struct vg_worker *w, int ms);

/*
 * Tells the thread to stop without waiting; it releases itself when it ends,
 * deciding so under w->lock.
 */
void vg_worker_abandon(struct vg_worker *w);

void vg_worker_release(struct vg_worker *w);

#endif
