/* SPDX-License-Identifier: GPL-2.0 */
#ifndef VG_STATUS_H
#define VG_STATUS_H

#include <stdbool.h>

/* The status command: every guard and its counters, from the pinned maps. */
int vg_cmd_status(bool json);

#endif
