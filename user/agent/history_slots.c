// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>
#include "event_fmt.h"
#include "history.h"

struct history *history_slot(struct history *slots, const struct vg_guard_spec *spec, bool make)
{
	struct history *free_slot = NULL;

	for (int i = 0; i < HISTORY_SLOTS; i++) {
		if (slots[i].name[0] && !strcmp(slots[i].name, spec->name))
			return &slots[i];
		if (!slots[i].name[0] && !free_slot)
			free_slot = &slots[i];
	}
	if (!make || !free_slot)
		return NULL;
	snprintf(free_slot->name, sizeof(free_slot->name), "%s", spec->name);
	return free_slot;
}

void history_keep(struct history *slots, const struct vg_guard_spec *specs, int n)
{
	for (int i = 0; i < HISTORY_SLOTS; i++) {
		bool stays = false;

		for (int g = 0; g < n && !stays; g++)
			stays = !strcmp(slots[i].name, specs[g].name);
		if (!stays)
			memset(&slots[i], 0, sizeof(slots[i]));
	}
}

const struct history_change *history_last(const struct history *h)
{
	return h->n ? &h->changes[(h->head + h->n - 1) % HISTORY_CHANGES] : NULL;
}

/* What the guard is now from at, from the agent's state and the tunnel's: kept when it is a change. */
static void add_change(struct history *h, int64_t at)
{
	const struct history_change *last = history_last(h);
	struct history_change c = { at, h->agent_open && !h->tunnel_missing, h->tunnel_missing, h->agent_why };

	if (!h->agent_known || (last && last->open == c.open && last->no_tunnel == c.no_tunnel))
		return;
	if (c.no_tunnel)
		c.why = "tunnel_down";
	else if (c.open && last && last->no_tunnel)
		c.why = "tunnel_up";
	if (h->n == HISTORY_CHANGES) {
		h->head = (h->head + 1) % HISTORY_CHANGES;
		h->n--;
	}
	h->changes[(h->head + h->n++) % HISTORY_CHANGES] = c;
}

void history_change(struct history *h, int64_t at, bool open, const char *why)
{
	h->agent_known = true;
	h->agent_open = open;
	h->agent_why = why;
	add_change(h, at);
}

void history_tunnel(struct history *h, int64_t at, bool present)
{
	h->tunnel_missing = !present;
	add_change(h, at);
}

#define DAY_NS (24LL * 3600 * 1000000000)

struct json_object *history_time_json(int64_t ns)
{
	char buf[64];

	vg_format_time(ns, buf, sizeof(buf));
	return json_object_new_string(buf);
}

struct json_object *history_timeline_json(const struct history *h, int64_t now)
{
	struct json_object *list = json_object_new_array();
	int first = 0;

	/* The state at the window's start is the last change before it. */
	for (int i = 0; i < h->n; i++)
		if (h->changes[(h->head + i) % HISTORY_CHANGES].time_ns <= now - DAY_NS)
			first = i;
	for (int i = first; i < h->n; i++) {
		const struct history_change *c = &h->changes[(h->head + i) % HISTORY_CHANGES];
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "time", history_time_json(c->time_ns > now - DAY_NS ? c->time_ns : now - DAY_NS));
		/* closed, not a state of its own, for a tunnel missing: why tells (readers know two states). */
		json_object_object_add(o, "state", json_object_new_string(c->open ? "open" : "closed"));
		json_object_object_add(o, "why", c->why ? json_object_new_string(c->why) : NULL);
		json_object_array_add(list, o);
	}
	return list;
}
