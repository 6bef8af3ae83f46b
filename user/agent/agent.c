// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include <systemd/sd-daemon.h>
#include "agent_state.h"
#include "clock.h"
#include "pidfile.h"
#include "error.h"

void agent_log(struct agent *a, struct json_object *rec)
{
	vg_log_write(&a->log, rec);
}

static int log_kernel_event(struct json_object *rec, void *ctx)
{
	agent_log(ctx, rec);
	history_blocked(ctx, rec);
	return 0;
}

void agent_add_guard(struct json_object *rec, const struct vg_guard_spec *spec)
{
	struct json_object *list = json_object_new_array();

	for (int i = 0; i < spec->n_cgroups; i++)
		json_object_array_add(list, json_object_new_string(spec->cgroups[i].path));
	json_object_object_add(rec, "guard", json_object_new_string(spec->name));
	json_object_object_add(rec, "cgroups", list);
}

const struct vg_guard_spec *agent_spec_of(const struct agent *a, __u64 id)
{
	for (int g = 0; g < a->set->n; g++)
		for (int i = 0; i < a->set->specs[g].n_cgroups; i++)
			if (a->set->specs[g].cgroups[i].id == id)
				return &a->set->specs[g];
	return NULL;
}

static int on_ringbuf(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct agent *a = userdata;

	(void)s, (void)fd, (void)revents;
	vg_event_reader_drain(a->reader);
	return 0;
}

static int on_hup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct agent *a = userdata;

	(void)s, (void)si;
	vg_log_reopen(&a->log);
	if (a->set->config_path)
		reload_set(a, "sighup");
	watches_rebuild(a);
	containers_follow(a);
	tick_scan_now(a);
	return 0;
}

static int on_term(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	struct agent *a = userdata;

	(void)si;
	/* Denials up to now are in the log before it goes. */
	vg_event_reader_drain(a->reader);
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

int vg_agent_claim(const struct vg_guard_set *set, struct vg_agent_claim *c)
{
	const char *log_path = set->log ? set->log : VG_DEFAULT_LOG;
	int err = vg_log_open(&c->log, log_path);

	if (err)
		return err;
	c->pidfile_fd = vg_pidfile_take(log_path);
	if (c->pidfile_fd < 0) {
		vg_log_close(&c->log);
		return c->pidfile_fd;
	}
	return 0;
}

void vg_agent_unclaim(struct vg_agent_claim *c)
{
	vg_pidfile_drop(c->pidfile_fd);
	vg_log_close(&c->log);
}

/* Every source but the watches (watches_rebuild makes those); 0 or the first -errno, named. */
/* Every source but the watches (watches_rebuild makes those); 0 or the first -errno, named. */
static int add_sources(struct agent *a)
{
	static const int term[] = { SIGTERM, SIGINT };
	int err;

	for (size_t i = 0; i < sizeof(term) / sizeof(term[0]); i++)
		if ((err = sd_event_add_signal(a->loop, NULL, term[i], on_term, a)) < 0)
			return vg_error(err, "agent: watch signal %s", sigabbrev_np(term[i]));
	if ((err = sd_event_add_signal(a->loop, NULL, SIGHUP, on_hup, a)) < 0)
		return vg_error(err, "agent: watch signal HUP");
	err = sd_event_add_io(a->loop, NULL, vg_event_reader_fd(a->reader), EPOLLIN, on_ringbuf, a);
	if (err < 0)
		return vg_error(err, "agent: watch the events ring buffer");
	if ((err = probing_add_source(a)) || (err = tick_add_source(a)) ||
	    (err = reload_add_source(a)) || (err = containers_add_source(a)) || (err = remedy_init(a)) ||
	    (err = watches_add_source(a)))
		return err;
	return 0;
}

int vg_agent_run(struct vg_guard_set *set, const struct vg_options *cli, struct vg_agent_claim *c)
{
	struct agent a = { .log = c->log, .probe_efd = -1, .docker_efd = -1, .set = set, .cli = cli };
	sigset_t mask;
	int err;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	/* Blocked before any thread starts, so the threads inherit it (and sd-event wants them blocked). */
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if ((err = sd_event_new(&a.loop)) < 0) {
		vg_error(err, "agent: event loop");
		goto out;
	}
	a.reader = vg_event_reader_open(log_kernel_event, &a);
	if (!a.reader) {
		err = vg_error(-errno ?: -EIO, "agent: events ring buffer");
		goto out;
	}
	a.started_ns = vg_real_ns();
	if ((err = history_init(&a)) < 0) {
		vg_error(err, "agent: history");
		goto out;
	}
	if ((err = add_sources(&a)) || (err = alert_restart(&a)) || (err = watches_rebuild(&a)) ||
	    (err = probing_start(&a)) || (err = web_apply(&a)))
		goto out;
	tick_scan_now(&a);
	containers_follow(&a);
	remedy_reloaded(&a);
	fprintf(stderr, "vpnguard-bpf: agent running (pid %d), events to %s\n", getpid(), a.log.path);
	sd_notifyf(0, "READY=1\nMAINPID=%d\nSTATUS=guarding %d guard(s)", getpid(), set->n);
	err = sd_event_loop(a.loop);
	if (err < 0)
		vg_error(err, "agent: event loop");
out:
	sd_notify(0, "STOPPING=1");
	web_stop(&a);
	vg_follower_stop(a.follower);
	remedy_free(&a);
	probing_stop(&a);
	vg_webhook_stop(a.webhook, true);
	watches_drop(&a);
	vg_event_reader_close(a.reader);
	/* The sources go with the loop; their eventfds after them. */
	a.tick = sd_event_source_unref(a.tick);
	a.retry = sd_event_source_unref(a.retry);
	a.watch_retry = sd_event_source_unref(a.watch_retry);
	sd_event_unref(a.loop);
	for (int *fd = (int[]){ a.probe_efd, a.docker_efd, -2 }; *fd != -2; fd++)
		if (*fd >= 0)
			close(*fd);
	json_object_put(a.findings);
	history_free(&a);
	c->log = a.log;
	vg_agent_unclaim(c);
	vg_guard_set_free(a.set);
	free(a.set);
	return err < 0 ? err : 0;
}
