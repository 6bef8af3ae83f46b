// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>
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

void history_change(struct history *h, int64_t at, bool open, const char *why)
{
	const struct history_change *last = history_last(h);

	if (last && last->open == open)
		return;
	if (h->n == HISTORY_CHANGES) {
		h->head = (h->head + 1) % HISTORY_CHANGES;
		h->n--;
	}
	h->changes[(h->head + h->n++) % HISTORY_CHANGES] = (struct history_change){ at, open, why };
}
