// SPDX-License-Identifier: GPL-2.0
#include <time.h>
#include "clock.h"

static int64_t ns_of(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

uint64_t vg_boot_ns(void)
{
	return (uint64_t)ns_of(CLOCK_BOOTTIME);
}

uint64_t vg_mono_ns(void)
{
	return (uint64_t)ns_of(CLOCK_MONOTONIC);
}

uint64_t vg_mono_coarse_ns(void)
{
	return (uint64_t)ns_of(CLOCK_MONOTONIC_COARSE);
}

int64_t vg_real_ns(void)
{
	return ns_of(CLOCK_REALTIME);
}

void vg_mono_coarse_outwait(uint64_t ns)
{
	uint64_t until = vg_mono_coarse_ns() + ns;
	const struct timespec step = { 0, 1000000 };

	do
		nanosleep(&step, NULL);
	while (vg_mono_coarse_ns() < until);
}
