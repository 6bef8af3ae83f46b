/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A small Docker Engine API client on the engine's Unix socket (libcurl), and
 * what vpnguard asks of it: a container's cgroup v2 and network namespace.
 * Every error is written to err, naming the container or the socket.
 */
#ifndef VG_DOCKER_H
#define VG_DOCKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include "cgroup.h"
#include "docker_json.h"

/*
 * The socket path to use (--docker-host, else DOCKER_HOST, else the default).
 * -EPROTONOSUPPORT/-EINVAL with a message when it is not unix://PATH.
 */
int vg_docker_socket(const char *flag, char *sock, size_t len, char *err, size_t errlen);

/*
 * GET /containers/{name}/json. -ENOENT: no such container; -EINVAL: not a
 * container name; -EIO: the engine answered something else; -ENOTCONN: no
 * answer (err says why: no socket, connection refused, timeout).
 */
int vg_docker_inspect(const char *sock, const char *name, struct vg_docker_container *c,
		      char *err, size_t errlen);

/*
 * GET /_ping: 0 when the engine answers, -ENOTCONN (or -EIO) with err when it
 * does not, -EINTR once *stop is set (a hung engine must not hold up a stop).
 */
int vg_docker_ping(const char *sock, const atomic_bool *stop, char *err, size_t errlen);

/* Every container the engine knows, running or not (at most VG_DOCKER_LIST_MAX): *out is the caller's to free. */
#define VG_DOCKER_LIST_MAX 256
int vg_docker_list(const char *sock, struct vg_docker_summary **out, int *n, char *err, size_t errlen);

/*
 * POST /containers/{id}/{action}: "restart", "pause", "unpause", "stop" or
 * "start" (it waits while the engine stops the container: up to a minute,
 * or until *stop is set: -EINTR; stop may be NULL). -EALREADY when the
 * container already is in that state, -ENOENT when it is gone, -EIO or
 * -ENOTCONN with err otherwise.
 */
int vg_docker_act(const char *sock, const char *id, const char *action, const atomic_bool *stop,
		  char *err, size_t errlen);

/* A running container as the kernel sees it. */
struct vg_docker_target {
	struct vg_docker_container c;
	struct vg_cgroup cg;        /* the "0::" cgroup of its init process */
	char netns[64];             /* /proc/PID/ns/net of its init process */
};

/*
 * Resolves a running container. Besides vg_docker_inspect's errors: -ESRCH
 * when it is not running, -EAGAIN when it restarted while being read,
 * -EPERM when its processes sit in the root cgroup v2 (guarding that would
 * guard the whole machine).
 */
int vg_docker_resolve(const char *sock, const char *name, struct vg_docker_target *t,
		      char *err, size_t errlen);

typedef int (*vg_docker_event_fn)(const struct vg_docker_event *ev, void *ctx);

/*
 * Streams GET /events for containers starting and dying, handing each to fn,
 * until fn returns non-zero (that value is returned) or the stream ends
 * (-ECONNRESET; -ENOTCONN: no engine), or until *stop is set (-EINTR,
 * within about a second; stop may be NULL). Blocks; no overall time limit.
 * since_ns (wall clock; 0: from now) replays what the engine kept since
 * then first: a follower that resolved its containers at time T and streams
 * since T misses no restart in between.
 */
int vg_docker_events(const char *sock, int64_t since_ns, vg_docker_event_fn fn, void *ctx,
		     const atomic_bool *stop, char *err, size_t errlen);

#endif
