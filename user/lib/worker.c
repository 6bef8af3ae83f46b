// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "worker.h"

int vg_worker_start(struct vg_worker *w, void *(*run)(void *), void *arg)
{
	int err;

	atomic_store(&w->stop, false);
	w->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->wake_fd < 0)
		return -errno;
	pthread_mutex_init(&w->lock, NULL);
	err = pthread_create(&w->thread, NULL, run, arg);
	if (err) {
		vg_worker_release(w);
		return -err;
	}
	return 0;
}

bool vg_worker_sleep(struct vg_worker *w, int ms)
{
	struct pollfd pfd = { .fd = w->wake_fd, .events = POLLIN };
	uint64_t n;

	if (!atomic_load(&w->stop) && poll(&pfd, 1, ms) > 0)
		(void)!read(w->wake_fd, &n, sizeof(n));
	return atomic_load(&w->stop);
}

void vg_worker_wake(struct vg_worker *w)
{
	uint64_t one = 1;

	(void)!write(w->wake_fd, &one, sizeof(one));
}

static void tell_stop(struct vg_worker *w)
{
	atomic_store(&w->stop, true);
	vg_worker_wake(w);
}

int vg_worker_stop(struct vg_worker *w, int ms)
{
	struct timespec until;

	tell_stop(w);
	if (ms < 0) {
		pthread_join(w->thread, NULL);
	} else {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ms / 1000;
		until.tv_nsec += (long)(ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		if (pthread_timedjoin_np(w->thread, NULL, &until))
			return -ETIMEDOUT;
	}
	vg_worker_release(w);
	return 0;
}

void vg_worker_abandon(struct vg_worker *w)
{
	pthread_detach(w->thread);
	/* Under the lock: the thread decides to release (and close wake_fd) under it. */
	pthread_mutex_lock(&w->lock);
	tell_stop(w);
	pthread_mutex_unlock(&w->lock);
}

void vg_worker_release(struct vg_worker *w)
{
	close(w->wake_fd);
	w->wake_fd = -1;
	pthread_mutex_destroy(&w->lock);
}
