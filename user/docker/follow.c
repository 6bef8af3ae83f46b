// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clock.h"
#include "follow.h"
#include "worker.h"
#include "error.h"

#define QUEUE_LEN 64
#define PAUSE_FIRST_MS 1000
#define PAUSE_MAX_MS 30000
/* Asking a gone engine is a refused connect() on its socket: cheap, so its return is seen within a second. */
#define GONE_PING_MS 1000

struct vg_follower {
	char sock[PATH_MAX];
	int64_t since_ns;
	int notify_fd;
	struct vg_worker w;
	bool heard;                 /* an event came since the last (re)connection */
	struct vg_follow_item queue[QUEUE_LEN];
	int head, len;
	bool lost;
};

static void push(struct vg_follower *f, const struct vg_follow_item *it)
{
	uint64_t one = 1;

	pthread_mutex_lock(&f->w.lock);
	if (f->len == QUEUE_LEN)
		f->lost = true;
	else
		f->queue[(f->head + f->len++) % QUEUE_LEN] = *it;
	pthread_mutex_unlock(&f->w.lock);
	/* The counter cannot overflow (the agent drains it at each wake): an error here is a bug, said. */
	if (write(f->notify_fd, &one, sizeof(one)) < 0)
		vg_error(-errno, "docker follower: wake the agent");
}

static int on_event(const struct vg_docker_event *ev, void *ctx)
{
	struct vg_follower *f = ctx;
	struct vg_follow_item it = { .ev = *ev };

	f->heard = true;
	/* Reconnecting from just after this one replays nothing the agent already had. */
	if (ev->time_ns >= f->since_ns)
		f->since_ns = ev->time_ns + 1;
	push(f, &it);
	return 0;
}

/* Asks the engine until it answers, then queues its return; true when told to stop meanwhile. */
static bool wait_back(struct vg_follower *f)
{
	uint64_t gone_ns = vg_mono_ns();
	struct vg_follow_item it = { .lost = true, .back = true };

	do {
		if (vg_worker_sleep(&f->w, GONE_PING_MS))
			return true;
	} while (vg_docker_ping(f->sock, &f->w.stop, it.error, sizeof(it.error)));
	it.error[0] = 0;
	it.gone_s = (double)(vg_mono_ns() - gone_ns) / 1e9;
	push(f, &it);
	return false;
}

static void *run(void *arg)
{
	struct vg_follower *f = arg;
	int pause_ms = PAUSE_FIRST_MS;

	for (;;) {
		struct vg_follow_item it = { 0 };

		f->heard = false;
		vg_docker_events(f->sock, f->since_ns, on_event, f, &f->w.stop, it.error, sizeof(it.error));
		if (atomic_load(&f->w.stop))
			break;
		/* The ping's error says why the engine is gone better than a stream cut off does. */
		it.gone = vg_docker_ping(f->sock, &f->w.stop, it.error, sizeof(it.error)) != 0;
		push(f, &it);
		if (it.gone) {
			if (wait_back(f))
				break;
			pause_ms = PAUSE_FIRST_MS;
			continue;
		}
		/* A stream that delivered something was healthy: reconnect soon; one that keeps failing: back off. */
		pause_ms = f->heard ? PAUSE_FIRST_MS : pause_ms;
		if (vg_worker_sleep(&f->w, pause_ms))
			break;
		pause_ms = pause_ms * 2 > PAUSE_MAX_MS ? PAUSE_MAX_MS : pause_ms * 2;
	}
	return NULL;
}

struct vg_follower *vg_follower_start(const char *sock, int64_t since_ns, int notify_fd)
{
	struct vg_follower *f = calloc(1, sizeof(*f));
	int err = f ? 0 : -ENOMEM;

	if (f) {
		snprintf(f->sock, sizeof(f->sock), "%s", sock);
		f->since_ns = since_ns;
		f->notify_fd = notify_fd;
		err = vg_worker_start(&f->w, run, f);
	}
	if (!err)
		return f;
	free(f);
	errno = -err;
	return NULL;
}

bool vg_follower_take(struct vg_follower *f, struct vg_follow_item *it)
{
	bool got = true;

	pthread_mutex_lock(&f->w.lock);
	if (f->len) {
		*it = f->queue[f->head];
		f->head = (f->head + 1) % QUEUE_LEN;
		f->len--;
	} else if (f->lost) {
		*it = (struct vg_follow_item){ .lost = true };
		f->lost = false;
	} else {
		got = false;
	}
	pthread_mutex_unlock(&f->w.lock);
	return got;
}

void vg_follower_stop(struct vg_follower *f)
{
	if (!f)
		return;
	vg_worker_stop(&f->w, -1);
	free(f);
}
