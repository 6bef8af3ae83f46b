// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "agent_state.h"
#include "clock.h"
#include "docker.h"
#include "error.h"

#define TAKE_MAX 8

static bool set_names(const struct vg_guard_set *s, const struct vg_docker_event *ev)
{
	for (int g = 0; g < s->n; g++) {
		const struct vg_options *o = s->specs[g].o;

		if (o->tunnel_container && vg_docker_event_names(ev, o->tunnel_container))
			return true;
		for (int i = 0; i < o->n_containers; i++)
			if (vg_docker_event_names(ev, o->containers[i]))
				return true;
	}
	return false;
}

/* The engine's own comings and goings, as the record's action says them and its alert words them. */
static const char *engine_action(const struct vg_follow_item *it, const char **alert)
{
	if (it->gone) {
		*alert = "the Docker engine is gone: enforcement goes on, container starts are not followed";
		return "engine_gone";
	}
	if (it->back) {
		*alert = "the Docker engine is back: its containers looked up again";
		return "engine_back";
	}
	*alert = NULL;
	return it->lost ? "lost" : "stream";
}

static void log_docker(struct agent *a, const struct vg_follow_item *it, const char *result)
{
	struct json_object *rec = vg_log_record(VG_REC_DOCKER);
	const char *alert = NULL;

	if (it->error[0] || it->lost) {
		const char *error = it->error[0] ? it->error : it->back ? NULL : "events queue full: some were dropped";

		json_object_object_add(rec, "action", json_object_new_string(engine_action(it, &alert)));
		if (error)
			json_object_object_add(rec, "error", json_object_new_string(error));
		if (it->back)
			json_object_object_add(rec, "gone_s", json_object_new_double(it->gone_s));
	} else {
		json_object_object_add(rec, "container", json_object_new_string(it->ev.name));
		json_object_object_add(rec, "id", json_object_new_string(it->ev.id));
		json_object_object_add(rec, "action", json_object_new_string(it->ev.action));
	}
	if (result)
		json_object_object_add(rec, "reload", json_object_new_string(result));
	/* How long the container ran before its guard was in place: the window of guarding by name. */
	if (result && !it->lost && it->ev.time_ns)
		json_object_object_add(rec, "after_start_ms",
				       json_object_new_double((double)(vg_real_ns() - it->ev.time_ns) / 1e6));
	agent_log(a, rec);
	if (alert)
		alert_send(a, rec, alert);
	json_object_put(rec);
}

/*
 * Container events: a start of a container the set names (a new cgroup, a
 * new namespace) reloads the set; deaths are only logged (the cgroup of a
 * dead container holds no process, and looking it up would fail until it
 * runs again).
 */
static int on_events(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *a = userdata;
	struct vg_follow_item its[TAKE_MAX];
	bool start = false;
	uint64_t n;
	int k = 0, err;

	(void)s, (void)revents;
	if (read(fd, &n, sizeof(n)) < 0)
		return 0;
	while (k < TAKE_MAX && vg_follower_take(a->follower, &its[k])) {
		struct vg_follow_item *it = &its[k];

		if (it->error[0]) {
			log_docker(a, it, NULL);
			continue;
		}
		if (!it->lost && !set_names(a->set, &it->ev))
			continue;
		start |= it->lost || !strcmp(it->ev.action, "start");
		k++;
	}
	/* More than fit here: the next wake takes them. */
	if (k == TAKE_MAX)
		eventfd_write(fd, 1);
	if (!start) {
		for (int i = 0; i < k; i++)
			log_docker(a, &its[i], NULL);
	} else {
		reload_arm(a);
		err = reload_watched(a, "docker");
		for (int i = 0; i < k; i++)
			log_docker(a, &its[i], strcmp(its[i].ev.action, "start") && !its[i].lost ? NULL :
				   err ? "refused" : "applied");
	}
	/* A reload may have named containers for the first time. */
	containers_follow(a);
	return 0;
}

int containers_add_source(struct agent *a)
{
	int err;

	a->docker_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (a->docker_efd < 0)
		return vg_error(-errno, "agent: eventfd for the engine's events");
	err = sd_event_add_io(a->loop, NULL, a->docker_efd, EPOLLIN, on_events, a);
	return err < 0 ? vg_error(err, "agent: watch the engine's events") : 0;
}

void containers_follow(struct agent *a)
{
	const struct vg_options *o = vg_guard_set_docker(a->set);
	char sock[PATH_MAX], err[PATH_MAX + 128];

	if (a->follower || !o)
		return;
	/* The set was prepared with this host, so it parses. */
	if (vg_docker_socket(o->docker_host, sock, sizeof(sock), err, sizeof(err)))
		return;
	a->follower = vg_follower_start(sock, a->set->resolved_ns, a->docker_efd);
	if (!a->follower)
		vg_error(-errno, "agent: follow Docker events on %s (container restarts will not be followed)",
			  sock);
}
