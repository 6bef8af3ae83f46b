// SPDX-License-Identifier: GPL-2.0
#include "history.h"

struct history *history_slot(struct history *slots, const struct vg_guard_spec *spec, bool make)
{
	__u64 id = spec->cgroups[0].id;
	struct history *free_slot = NULL;

	for (int i = 0; i < HISTORY_SLOTS; i++) {
		if (slots[i].id == id)
			return &slots[i];
		if (!slots[i].id && !free_slot)
			free_slot = &slots[i];
	}
	if (!make || !free_slot)
		return NULL;
	free_slot->id = id;
	return free_slot;
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
