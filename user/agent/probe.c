// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "clock.h"
#include "http.h"
#include "probe.h"
#include "redact.h"
#include "worker.h"

struct vg_prober {
	const struct vg_health_cfg *cfg;
	const char *tunnel;
	int netns_fd, notify_fd;
	struct vg_worker w;
	bool fresh;
	struct vg_probe_result last;
};

static void probe_ip(struct vg_prober *p, struct vg_probe_result *r)
{
	struct vg_http_req req = {
		.url = p->cfg->probe_url, .ifname = p->tunnel, .ca_file = p->cfg->probe_ca,
		.timeout_ms = p->cfg->timeout_ms, .stop = &p->w.stop,
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
		.url = url, .timeout_ms = p->cfg->timeout_ms, .stop = &p->w.stop,
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
	int setns_err = setns(p->netns_fd, CLONE_NEWNET) ? errno : 0;

	do {
		struct vg_probe_result r = { 0 };
		uint64_t one = 1, t0 = vg_mono_ns();

		if (setns_err)
			snprintf(r.error, sizeof(r.error), "enter the tunnel's namespace: %s", strerror(setns_err));
		if (!setns_err && p->cfg->probe_url)
			probe_ip(p, &r);
		if (!setns_err && p->cfg->gluetun_url)
			probe_gluetun(p, &r);
		r.duration_s = (double)(vg_mono_ns() - t0) / 1e9;
		r.done_ns = vg_real_ns();
		if (atomic_load(&p->w.stop))
			break;
		pthread_mutex_lock(&p->w.lock);
		p->last = r;
		p->fresh = true;
		pthread_mutex_unlock(&p->w.lock);
		if (write(p->notify_fd, &one, sizeof(one)) < 0)
			break;
	} while (!vg_worker_sleep(&p->w, (int)p->cfg->interval_ms));
	return NULL;
}

struct vg_prober *vg_prober_start(const struct vg_health_cfg *cfg, const char *tunnel,
				  int netns_fd, int notify_fd)
{
	struct vg_prober *p = calloc(1, sizeof(*p));
	int err = p ? 0 : -ENOMEM;

	if (p) {
		p->cfg = cfg;
		p->tunnel = tunnel;
		p->notify_fd = notify_fd;
		p->netns_fd = fcntl(netns_fd, F_DUPFD_CLOEXEC, 0);
		err = p->netns_fd < 0 ? -errno : vg_worker_start(&p->w, run, p);
	}
	if (!err)
		return p;
	if (p && p->netns_fd >= 0)
		close(p->netns_fd);
	free(p);
	errno = -err;
	return NULL;
}

bool vg_prober_result(struct vg_prober *p, struct vg_probe_result *r)
{
	bool fresh;

	pthread_mutex_lock(&p->w.lock);
	fresh = p->fresh;
	if (fresh)
		*r = p->last;
	p->fresh = false;
	pthread_mutex_unlock(&p->w.lock);
	return fresh;
}

void vg_prober_stop(struct vg_prober *p)
{
	if (!p)
		return;
	vg_worker_stop(&p->w, -1);
	close(p->netns_fd);
	free(p);
}
