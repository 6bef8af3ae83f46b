// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "event_fmt.h"
#include "clock.h"
#include "http.h"
#include "redact.h"
#include "webhook.h"
#include "worker.h"

#define QUEUE_LEN 32
#define TRIES 3
#define TIMEOUT_MS 5000

struct vg_webhook {
	char *url;                  /* a copy: the config that named it may be reloaded away */
	char shown[512];            /* url for messages: its token, if it has one, redacted */
	/* w.stop: no more waiting, send what is queued (one try each) and go */
	struct vg_worker w;
	char *queue[QUEUE_LEN];
	int head, count;
	bool orphan;                /* stopped without a join: the thread frees it */
	atomic_bool abort;          /* the drain took too long: drop the request in flight */
};

static void webhook_free(struct vg_webhook *w)
{
	while (w->count) {
		free(w->queue[w->head]);
		w->head = (w->head + 1) % QUEUE_LEN;
		w->count--;
	}
	free(w->url);
	free(w);
}

/*
 * Waits ms (-1: until a message is queued), unlocked meanwhile; true when the
 * agent is stopping. A message queued meanwhile does not cut a pause between tries.
 */
static bool wait_locked(struct vg_webhook *w, int ms)
{
	long long until = (long long)(vg_mono_ns() / 1000000) + ms, left = ms;

	do {
		pthread_mutex_unlock(&w->w.lock);
		vg_worker_sleep(&w->w, (int)left);
		pthread_mutex_lock(&w->w.lock);
		left = ms < 0 ? -1 : until - (long long)(vg_mono_ns() / 1000000);
	} while (!atomic_load(&w->w.stop) && (ms < 0 ? !w->count : left > 0));
	return atomic_load(&w->w.stop);
}

static void *run(void *arg)
{
	struct vg_webhook *w = arg;
	struct vg_http_req req = { .url = w->url, .timeout_ms = TIMEOUT_MS, .stop = &w->abort };
	char err[160], err_shown[640];

	pthread_mutex_lock(&w->w.lock);
	for (;;) {
		if (!w->count && wait_locked(w, -1) && !w->count)
			break;
		char *body = w->queue[w->head];

		w->head = (w->head + 1) % QUEUE_LEN;
		w->count--;
		for (int t = 1; t <= TRIES; t++) {
			int rc;

			pthread_mutex_unlock(&w->w.lock);
			req.post_json = body;
			rc = vg_http_request(&req, NULL, NULL, err, sizeof(err));
			/* The receiver's answer (a certificate's names, say) is the network's text. */
			if (rc && rc != -ECANCELED)
				fprintf(stderr, "vpnguard-bpf: webhook %s: try %d of %d: %s\n", w->shown, t, TRIES,
					vg_text_escape(err, err_shown, sizeof(err_shown)));
			pthread_mutex_lock(&w->w.lock);
			if (!rc || rc == -ECANCELED || t == TRIES || wait_locked(w, 1000 << (t - 1)))
				break;
		}
		free(body);
	}
	bool orphan = w->orphan;

	pthread_mutex_unlock(&w->w.lock);
	if (orphan) {
		vg_worker_release(&w->w);
		webhook_free(w);
	}
	return NULL;
}

struct vg_webhook *vg_webhook_start(const char *url)
{
	struct vg_webhook *w = calloc(1, sizeof(*w));
	int err;

	if (!w || !(w->url = strdup(url))) {
		free(w);
		return NULL;
	}
	vg_url_redact(url, w->shown, sizeof(w->shown));
	err = vg_worker_start(&w->w, run, w);
	if (!err)
		return w;
	webhook_free(w);
	errno = -err;
	return NULL;
}

const char *vg_webhook_url(const struct vg_webhook *w)
{
	return w->url;
}

void vg_webhook_send(struct vg_webhook *w, const char *json)
{
	char *copy = strdup(json);

	if (!w || !copy) {
		free(copy);
		return;
	}
	pthread_mutex_lock(&w->w.lock);
	if (w->count == QUEUE_LEN) {
		free(w->queue[w->head]);
		w->head = (w->head + 1) % QUEUE_LEN;
		w->count--;
		fprintf(stderr, "vpnguard-bpf: webhook %s: queue full, oldest message dropped\n", w->shown);
	}
	w->queue[(w->head + w->count++) % QUEUE_LEN] = copy;
	vg_worker_wake(&w->w);
	pthread_mutex_unlock(&w->w.lock);
}

void vg_webhook_stop(struct vg_webhook *w, bool drain)
{
	if (!w)
		return;
	if (!drain) {
		/* A reload: never wait for a receiver that hangs; the thread cleans up after itself. */
		atomic_store(&w->abort, true);
		pthread_mutex_lock(&w->w.lock);
		w->orphan = true;
		pthread_mutex_unlock(&w->w.lock);
		vg_worker_abandon(&w->w);
		return;
	}
	if (vg_worker_stop(&w->w, 2000)) {
		atomic_store(&w->abort, true);
		vg_worker_stop(&w->w, -1);
	}
	webhook_free(w);
}
