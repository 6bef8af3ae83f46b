// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include "restart_budget.h"

/* Forgets the rounds that left the window. */
static void expire(struct vg_restart_budget *b, int64_t now)
{
	int k = 0;

	while (k < b->n && now - b->rounds[k] >= VG_RESTART_WINDOW_NS)
		k++;
	memmove(b->rounds, b->rounds + k, (size_t)(b->n - k) * sizeof(b->rounds[0]));
	b->n -= k;
}

int vg_restart_count(struct vg_restart_budget *b, int64_t now)
{
	expire(b, now);
	return b->n;
}

int64_t vg_restart_next(struct vg_restart_budget *b, int64_t now)
{
	int64_t at;

	expire(b, now);
	if (!b->n)
		return now;
	if (b->n == VG_RESTART_CAP)
		at = b->rounds[0] + VG_RESTART_WINDOW_NS;
	else
		at = b->rounds[b->n - 1] + (VG_RESTART_FIRST_GAP_NS << (b->n - 1));
	return at > now ? at : now;
}

void vg_restart_took(struct vg_restart_budget *b, int64_t now)
{
	expire(b, now);
	if (b->n == VG_RESTART_CAP) {
		memmove(b->rounds, b->rounds + 1, (VG_RESTART_CAP - 1) * sizeof(b->rounds[0]));
		b->n--;
	}
	b->rounds[b->n++] = now;
}
