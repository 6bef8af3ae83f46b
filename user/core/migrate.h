/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Taking over the guards of the first release (map layout 1: no vg_abi,
 * programs held by pinned links) with no moment unguarded: its map pins are
 * taken out of the way (its programs hold the maps), every guard is attached
 * anew with its policy, state and counters, each new program on its hook
 * before the old link's pin gives way to it (for that moment a packet must
 * pass both), then the old tc links go. A failure puts the old pins back.
 */
#ifndef VG_MIGRATE_H
#define VG_MIGRATE_H

int vg_migrate_abi1(void);

#endif
