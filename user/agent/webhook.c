// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "event_fmt.h"
#include "http.h"
#include "redact.h"
#include "webhook.h"

#define QUEUE_LEN 32
#define TRIES 3
#define TIMEOUT_MS 5000

struct vg_webhook {
	char *url;                  /* a copy: the config that named it may be reloaded away */
	char shown[512];            /* url for messages: its token, if it has one, redacted */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	char *queue[QUEUE_LEN];
	int head, count;
	bool stopping;              /* no more waiting: drain what is queued and go */
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
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	free(w->url);
	free(w);
}

/* Waits ms (0: until woken); true when the agent is stopping. */
static bool wait_locked(struct vg_webhook *w, unsigned ms)
{
	struct timespec until;

	if (!ms) {
		while (!w->count && !w->stopping)
			pthread_cond_wait(&w->wake, &w->lock);
		return w->stopping;
	}
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!w->stopping && pthread_cond_timedwait(&w->wake, &w->lock, &until) != ETIMEDOUT)
		;
	return w->stopping;
}

static void *run(void *arg)
{
	struct vg_webhook *w = arg;
	struct vg_http_req req = { .url = w->url, .timeout_ms = TIMEOUT_MS, .stop = &w->abort };
	char err[160], err_shown[640];

	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (!w->count && wait_locked(w, 0) && !w->count)
			break;
		char *body = w->queue[w->head];

		w->head = (w->head + 1) % QUEUE_LEN;
		w->count--;
		for (int t = 1; t <= TRIES; t++) {
			int rc;

			pthread_mutex_unlock(&w->lock);
			req.post_json = body;
			rc = vg_http_request(&req, NULL, NULL, err, sizeof(err));
			/* The receiver's answer (a certificate's names, say) is the network's text. */
			if (rc && rc != -ECANCELED)
				fprintf(stderr, "vpnguard-bpf: webhook %s: try %d of %d: %s\n", w->shown, t, TRIES,
					vg_text_escape(err, err_shown, sizeof(err_shown)));
			pthread_mutex_lock(&w->lock);
			if (!rc || rc == -ECANCELED || t == TRIES || wait_locked(w, 1000u << (t - 1)))
				break;
		}
		free(body);
	}
	bool orphan = w->orphan;

	pthread_mutex_unlock(&w->lock);
	if (orphan)
		webhook_free(w);
	return NULL;
}

struct vg_webhook *vg_webhook_start(const char *url)
{
	struct vg_webhook *w = calloc(1, sizeof(*w));
	pthread_condattr_t ca;
	int err;

	if (!w || !(w->url = strdup(url))) {
		free(w);
		return NULL;
	}
	vg_url_redact(url, w->shown, sizeof(w->shown));
	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	err = pthread_create(&w->thread, NULL, run, w);
	if (!err)
		return w;
	webhook_free(w);
	errno = err;
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
	pthread_mutex_lock(&w->lock);
	if (w->count == QUEUE_LEN) {
		free(w->queue[w->head]);
		w->head = (w->head + 1) % QUEUE_LEN;
		w->count--;
		fprintf(stderr, "vpnguard-bpf: webhook %s: queue full, oldest message dropped\n", w->shown);
	}
	w->queue[(w->head + w->count++) % QUEUE_LEN] = copy;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

void vg_webhook_stop(struct vg_webhook *w, bool drain)
{
	struct timespec until;

	if (!w)
		return;
	if (!drain) {
		/* A reload: never wait for a receiver that hangs; the thread cleans up after itself. */
		atomic_store(&w->abort, true);
		pthread_mutex_lock(&w->lock);
		w->stopping = w->orphan = true;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
		pthread_detach(w->thread);
		return;
	}
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 2;
	if (pthread_timedjoin_np(w->thread, NULL, &until)) {
		atomic_store(&w->abort, true);
		pthread_join(w->thread, NULL);
	}
	webhook_free(w);
}
