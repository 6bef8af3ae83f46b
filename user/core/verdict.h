/* SPDX-License-Identifier: GPL-2.0 */
/*
 * status --check: does a guard let its traffic through? Pure: judged on the
 * guard's object of `status --json` (status.h), so the rules are unit-tested
 * on made-up objects.
 */
#ifndef VG_VERDICT_H
#define VG_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <json-c/json.h>

/*
 * Open: its cgroup still there, state OPEN with its lease (if any) not run
 * out and, in tunnel mode, its namespace and tunnel present as the programs
 * see them. why gets the verdict in words ("open: tunnel wg0 present";
 * "closed: state closed, tunnel wg0 missing"), every cause listed.
 */
bool vg_guard_verdict(struct json_object *g, char *why, size_t len);

/* The guard of status --json's root whose cgroup id is id; NULL when none is. */
struct json_object *vg_status_guard(struct json_object *root, uint64_t id);

#endif
