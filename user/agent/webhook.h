/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Alerts: JSON POSTs to --webhook from a thread of their own, so a slow or
 * dead receiver never holds up the agent. Each message is tried 3 times
 * (5 s timeout, 1 s then 2 s apart); a full queue drops the oldest message.
 */
#ifndef VG_WEBHOOK_H
#define VG_WEBHOOK_H

#include <stdbool.h>

struct vg_webhook;

/* NULL with errno. */
struct vg_webhook *vg_webhook_start(const char *url);

/* Queues a copy of the body; never blocks. */
void vg_webhook_send(struct vg_webhook *w, const char *json);

const char *vg_webhook_url(const struct vg_webhook *w);

/* Gives the queue up to 2 s when drain (the agent's exit), then aborts what is in flight. */
void vg_webhook_stop(struct vg_webhook *w, bool drain);

#endif
