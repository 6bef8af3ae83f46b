/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The clocks, in ns. Boot time is the kernel's: leases and event times are on
 * it (it counts suspend, so a lease cannot outlive a sleep); monotonic for the
 * agent's own latencies; real for what a person reads; the coarse monotonic
 * clock is the programs' bpf_ktime_get_coarse_ns(), which the facts each CPU
 * keeps run out on.
 */
#ifndef VG_CLOCK_H
#define VG_CLOCK_H

#include <stdint.h>

uint64_t vg_boot_ns(void);
uint64_t vg_mono_ns(void);
uint64_t vg_mono_coarse_ns(void);
int64_t vg_real_ns(void);

/* Sleeps until the coarse clock, read now, has moved ns: watched, since its ticks can be late. */
void vg_mono_coarse_outwait(uint64_t ns);

#endif
