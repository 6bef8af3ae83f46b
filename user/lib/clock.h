/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The three clocks, in ns. Boot time is the kernel's: leases and event times
 * are on it (it counts suspend, so a lease cannot outlive a sleep); monotonic
 * for the agent's own latencies; real for what a person reads.
 */
#ifndef VG_CLOCK_H
#define VG_CLOCK_H

#include <stdint.h>

uint64_t vg_boot_ns(void);
uint64_t vg_mono_ns(void);
int64_t vg_real_ns(void);

#endif
