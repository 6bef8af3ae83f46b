/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The agent's Docker follower: a thread that streams the engine's container
 * starts and deaths, queues them, and wakes the agent through an eventfd;
 * the agent decides what they mean (user/agent/agent.c). It streams from the time
 * the agent's set was resolved, so a restart in between is not missed. When
 * the stream ends or fails it queues the cause and reconnects after a pause
 * (1 s, doubling up to 30 s while nothing comes), from the last event seen.
 */
#ifndef VG_FOLLOW_H
#define VG_FOLLOW_H

#include <stdbool.h>
#include <stdint.h>
#include "docker.h"

struct vg_follower;

/*
 * What the agent takes from the queue: an event, a stream failure, the
 * engine gone, or "events were lost" (the queue was full, or the engine is
 * back: what it did meanwhile was not streamed).
 */
struct vg_follow_item {
	struct vg_docker_event ev;  /* valid when neither error[0] nor lost */
	char error[256];            /* the stream ended or failed (gone: the engine does not answer): why */
	bool gone;                  /* with error: the engine does not answer */
	bool lost;                  /* events were dropped, or missed while the engine was gone (back) */
	bool back;                  /* with lost: the engine answers again after gone_s seconds */
	double gone_s;
};

/* sock is copied; since_ns: wall clock, as vg_docker_events takes it. NULL with errno. */
struct vg_follower *vg_follower_start(const char *sock, int64_t since_ns, int notify_fd);

/* The oldest queued item; false when there is none. */
bool vg_follower_take(struct vg_follower *f, struct vg_follow_item *it);

/* Stops within about a second (libcurl's progress tick), aborting the stream. NULL: nothing. */
void vg_follower_stop(struct vg_follower *f);

#endif
