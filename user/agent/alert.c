// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "agent_state.h"
#include "event_fmt.h"
#include "redact.h"
#include "error.h"

/*
 * The webhook's body: the log record plus the fields common receivers read
 * (Discord: content; Gotify: title, message, priority; ntfy JSON: title,
 * message, priority).
 */
void alert_send(struct agent *a, struct json_object *rec, const char *what)
{
	const char *guard = vg_json_str(rec, "guard"), *why = vg_json_str(rec, "why"),
		   *seen = vg_json_str(rec, "seen"), *error = vg_json_str(rec, "error");
	struct json_object *body = NULL; /* json_object_deep_copy wants it NULL */
	char title[160], msg[512];

	if (!a->webhook || json_object_deep_copy(rec, &body, NULL))
		return;
	/* Records of the engine's own comings and goings belong to no guard and have no why. */
	snprintf(title, sizeof(title), "vpnguard: %s%s%s", guard ?: "", guard ? " " : "", what);
	snprintf(msg, sizeof(msg), "%s%s%s%s%s%s%s", title, why ? ": " : "", why ?: "",
		 seen ? ", address seen " : "", seen ?: "", error ? ": " : "", error ?: "");
	json_object_object_add(body, "title", json_object_new_string(title));
	json_object_object_add(body, "message", json_object_new_string(msg));
	json_object_object_add(body, "content", json_object_new_string(msg));
	json_object_object_add(body, "priority", json_object_new_int(strcmp(what, "reopened") ? 8 : 4));
	vg_webhook_send(a->webhook, json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
	json_object_put(body);
}

int alert_restart(struct agent *a)
{
	char url[1024];

	/* The same receiver: keep the thread and its queue (stopping it may wait on a hung POST). */
	if (a->webhook && a->set->webhook && !strcmp(vg_webhook_url(a->webhook), a->set->webhook))
		return 0;
	/* The old thread goes with the set whose URL it used. */
	vg_webhook_stop(a->webhook, false);
	a->webhook = a->set->webhook ? vg_webhook_start(a->set->webhook) : NULL;
	if (a->set->webhook && !a->webhook)
		return vg_error(-errno, "agent: webhook %s", vg_url_redact(a->set->webhook, url, sizeof(url)));
	return 0;
}
