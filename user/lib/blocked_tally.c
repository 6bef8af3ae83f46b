// SPDX-License-Identifier: GPL-2.0
#include <stdio.h>
#include <string.h>
#include "blocked_tally.h"
#include "event_fmt.h"

void vg_count_inc(struct json_object *counts, const char *key, int64_t n)
{
	struct json_object *v;

	if (json_object_object_get_ex(counts, key, &v))
		json_object_int_inc(v, n);
	else
		json_object_object_add(counts, key, json_object_new_int64(n));
}

void vg_blocked_init(struct vg_blocked *b)
{
	b->by_reason = json_object_new_object();
	b->by_comm = json_object_new_object();
	b->dests = json_object_new_object();
}

void vg_blocked_put(struct vg_blocked *b)
{
	json_object_put(b->by_reason);
	json_object_put(b->by_comm);
	json_object_put(b->dests);
}

static void dest_add(struct json_object *dests, const char *dst, int dport, const char *proto, int64_t n)
{
	struct json_object *d;
	char key[128];

	snprintf(key, sizeof(key), "%s|%d|%s", dst, dport, proto);
	if (json_object_object_get_ex(dests, key, &d)) {
		json_object_int_inc(json_object_object_get(d, "count"), n);
		return;
	}
	d = json_object_new_object();
	json_object_object_add(d, "dst", json_object_new_string(dst));
	json_object_object_add(d, "dport", json_object_new_int(dport));
	json_object_object_add(d, "proto", json_object_new_string(proto));
	json_object_object_add(d, "count", json_object_new_int64(n));
	json_object_object_add(dests, key, d);
}

void vg_blocked_merge(struct vg_blocked *to, const struct vg_blocked *from)
{
	to->total += from->total;
	json_object_object_foreach(from->by_reason, r, rv)
		vg_count_inc(to->by_reason, r, json_object_get_int64(rv));
	json_object_object_foreach(from->by_comm, c, cv)
		vg_count_inc(to->by_comm, c, json_object_get_int64(cv));
	json_object_object_foreach(from->dests, k, d) {
		(void)k;
		dest_add(to->dests, vg_json_str(d, "dst"), json_object_get_int(json_object_object_get(d, "dport")),
			 vg_json_str(d, "proto"), json_object_get_int64(json_object_object_get(d, "count")));
	}
}

void vg_blocked_add(struct vg_blocked *b, const char *reason, const char *comm, const char *dst, int dport,
		    const char *proto)
{
	b->total++;
	vg_count_inc(b->by_reason, reason ?: "-", 1);
	vg_count_inc(b->by_comm, comm ?: "?", 1);
	if (dst)
		dest_add(b->dests, dst, dport, proto ?: "-", 1);
}

static int by_count(const void *a, const void *b)
{
	struct json_object *x = *(struct json_object *const *)a, *y = *(struct json_object *const *)b;
	int64_t cx = json_object_get_int64(json_object_object_get(x, "count"));
	int64_t cy = json_object_get_int64(json_object_object_get(y, "count"));
	int c = strcmp(vg_json_str(x, "dst"), vg_json_str(y, "dst"));

	return cx != cy ? (cx < cy ? 1 : -1) : c ? c : json_object_get_int(json_object_object_get(x, "dport")) -
						       json_object_get_int(json_object_object_get(y, "dport"));
}

struct json_object *vg_blocked_json(const struct vg_blocked *b, int top_n)
{
	struct json_object *o = json_object_new_object(), *top = json_object_new_array();

	json_object_object_add(o, "total", json_object_new_int64(b->total));
	json_object_object_add(o, "by_reason", json_object_get(b->by_reason));
	json_object_object_add(o, "by_comm", json_object_get(b->by_comm));
	json_object_object_foreach(b->dests, k, d) {
		(void)k;
		json_object_array_add(top, json_object_get(d));
	}
	json_object_array_sort(top, by_count);
	if (json_object_array_length(top) > (size_t)top_n)
		json_object_array_del_idx(top, top_n,
					  json_object_array_length(top) - (size_t)top_n);
	json_object_object_add(o, "top_destinations", top);
	json_object_object_add(o, "destinations", json_object_new_int(json_object_object_length(b->dests)));
	return o;
}
