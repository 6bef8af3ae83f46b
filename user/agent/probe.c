// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include "http.h"
#include "probe.h"
#include "redact.h"

struct vg_prober {
	const struct vg_health_cfg *cfg;
	const char *tunnel;
	int netns_fd, notify_fd, stop_fd;
	atomic_bool stop;
	pthread_t thread;
	pthread_mutex_t lock;
	bool fresh;
	struct vg_probe_result last;
};

static void probe_ip(struct vg_prober *p, struct vg_probe_result *r)
{
	struct vg_http_req req = {
		.url = p->cfg->probe_url, .ifname = p->tunnel, .ca_file = p->cfg->probe_ca,
		.timeout_ms = p->cfg->timeout_ms, .stop = &p->stop,
	};
	char body[512], err[128], shown[512];
	size_t len = sizeof(body);

	/* The error goes to the log and the journal: a token in the URL must not. */
	vg_url_redact(p->cfg->probe_url, shown, sizeof(shown));
	if (vg_http_request(&req, body, &len, err, sizeof(err)))
		snprintf(r->error, sizeof(r->error), "%.100s: %.50s", shown, err);
	else if (vg_parse_ip_answer(body, len, &r->seen))
		snprintf(r->error, sizeof(r->error), "%.100s: answer is not an IP address", shown);
	else
		r->ip_ok = true;
}

static void probe_gluetun(struct vg_prober *p, struct vg_probe_result *r)
{
	char url[1024], body[512], err[128], shown[512];
	size_t len = sizeof(body), n = strlen(p->cfg->gluetun_url);
	struct vg_http_req req = {
		.url = url, .timeout_ms = p->cfg->timeout_ms, .stop = &p->stop,
	};

	snprintf(url, sizeof(url), "%.*s/v1/vpn/status", (int)(n && p->cfg->gluetun_url[n - 1] == '/' ? n - 1 : n),
		 p->cfg->gluetun_url);
	if (vg_http_request(&req, body, &len, err, sizeof(err)))
		;
	else if (vg_parse_gluetun_status(body, len, r->gluetun_status, sizeof(r->gluetun_status)))
		snprintf(err, sizeof(err), "answer has no \"status\"");
	else
		r->gluetun_ok = true;
	/* The IP probe's error, when there is one, says more. */
	if (!r->gluetun_ok && !r->error[0])
		snprintf(r->error, sizeof(r->error), "%.100s: %.50s", vg_url_redact(url, shown, sizeof(shown)), err);
}

static void *run(void *arg)
{
	struct vg_prober *p = arg;
	struct pollfd pfd = { .fd = p->stop_fd, .events = POLLIN };
	int setns_err = setns(p->netns_fd, CLONE_NEWNET) ? errno : 0;

	do {
		struct vg_probe_result r = { 0 };
		uint64_t one = 1;

		if (setns_err)
			snprintf(r.error, sizeof(r.error), "enter the tunnel's namespace: %s", strerror(setns_err));
		if (!setns_err && p->cfg->probe_url)
			probe_ip(p, &r);
		if (!setns_err && p->cfg->gluetun_url)
			probe_gluetun(p, &r);
		if (atomic_load(&p->stop))
			break;
		pthread_mutex_lock(&p->lock);
		p->last = r;
		p->fresh = true;
		pthread_mutex_unlock(&p->lock);
		if (write(p->notify_fd, &one, sizeof(one)) < 0)
			break;
	} while (poll(&pfd, 1, (int)p->cfg->interval_ms) == 0);
	return NULL;
}

struct vg_prober *vg_prober_start(const struct vg_health_cfg *cfg, const char *tunnel,
				  int netns_fd, int notify_fd)
{
	struct vg_prober *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return NULL;
	p->cfg = cfg;
	p->tunnel = tunnel;
	p->notify_fd = notify_fd;
	p->netns_fd = fcntl(netns_fd, F_DUPFD_CLOEXEC, 0);
	p->stop_fd = eventfd(0, EFD_CLOEXEC);
	pthread_mutex_init(&p->lock, NULL);
	if (p->netns_fd < 0 || p->stop_fd < 0)
		goto fail;
	err = pthread_create(&p->thread, NULL, run, p);
	if (!err)
		return p;
	errno = err;
fail:
	err = errno;
	if (p->netns_fd >= 0)
		close(p->netns_fd);
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
	errno = err;
	return NULL;
}

bool vg_prober_result(struct vg_prober *p, struct vg_probe_result *r)
{
	bool fresh;

	pthread_mutex_lock(&p->lock);
	fresh = p->fresh;
	if (fresh)
		*r = p->last;
	p->fresh = false;
	pthread_mutex_unlock(&p->lock);
	return fresh;
}

void vg_prober_stop(struct vg_prober *p)
{
	uint64_t one = 1;

	if (!p)
		return;
	atomic_store(&p->stop, true);
	if (write(p->stop_fd, &one, sizeof(one)) < 0)
		pthread_cancel(p->thread);
	pthread_join(p->thread, NULL);
	close(p->stop_fd);
	close(p->netns_fd);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
