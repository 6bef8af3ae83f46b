/* SPDX-License-Identifier: GPL-2.0 */
/*
 * How often the agent may restart a guard's dependents (restart-dependents):
 * a VPN container that restarts in a loop must not make its clients restart
 * in a loop. The first round is at once; each further round within an hour
 * waits twice as long as the one before (10 s, 20 s, 40 s, ...), and at most
 * VG_RESTART_CAP rounds fit in any hour. Pure: unit-tested without an engine.
 */
#ifndef VG_RESTART_BUDGET_H
#define VG_RESTART_BUDGET_H

#include <stdint.h>

#define VG_RESTART_CAP 6
#define VG_RESTART_FIRST_GAP_NS (10 * 1000000000LL)
#define VG_RESTART_WINDOW_NS (3600 * 1000000000LL)

struct vg_restart_budget {
	int64_t rounds[VG_RESTART_CAP];    /* monotonic times of the rounds of the last hour, oldest first */
	int n;
};

/* The earliest time (>= now) the next round may start. */
int64_t vg_restart_next(struct vg_restart_budget *b, int64_t now);

/* A round started now. */
void vg_restart_took(struct vg_restart_budget *b, int64_t now);

/* Rounds in the hour before now. */
int vg_restart_count(struct vg_restart_budget *b, int64_t now);

#endif
