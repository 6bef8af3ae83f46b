/* SPDX-License-Identifier: GPL-2.0 */
/* Blocked attempts added up: by reason, by process (comm) and by destination. Pure. */
#ifndef VG_BLOCKED_TALLY_H
#define VG_BLOCKED_TALLY_H

#include <stdint.h>
#include <json-c/json.h>

/* Counts keyed by reason and comm; destinations keyed by "dst|dport|proto". */
struct vg_blocked {
	int64_t total;
	struct json_object *by_reason, *by_comm, *dests;
};

/* counts[key] += n, made at n when absent. */
void vg_count_inc(struct json_object *counts, const char *key, int64_t n);

void vg_blocked_init(struct vg_blocked *b);
void vg_blocked_put(struct vg_blocked *b);
/* One attempt (any field may be NULL: "-", "?" or no destination). */
void vg_blocked_add(struct vg_blocked *b, const char *reason, const char *comm, const char *dst, int dport,
		    const char *proto);
void vg_blocked_merge(struct vg_blocked *to, const struct vg_blocked *from);
/* {total, by_reason, by_comm, top_destinations (the top_n commonest), destinations}. */
struct json_object *vg_blocked_json(const struct vg_blocked *b, int top_n);

#endif
