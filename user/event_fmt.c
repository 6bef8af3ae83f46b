// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "event_fmt.h"
#include "policy.h"

void vg_format_time(int64_t real_ns, char *buf, size_t len)
{
	time_t secs = real_ns / 1000000000;
	struct tm tm;
	char day[32];

	gmtime_r(&secs, &tm);
	strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03dZ", day, (int)(real_ns % 1000000000 / 1000000));
}

struct json_object *vg_event_to_json(const struct vg_event *e, int64_t boot_to_real_ns,
				     const char *cgroup)
{
	struct json_object *o = json_object_new_object();
	char buf[INET6_ADDRSTRLEN];
	char comm[sizeof(e->comm) + 1];

	vg_format_time((int64_t)e->time_ns + boot_to_real_ns, buf, sizeof(buf));
	json_object_object_add(o, "time", json_object_new_string(buf));
	json_object_object_add(o, "event", json_object_new_string("blocked"));
	json_object_object_add(o, "reason", json_object_new_string(vg_reason_name(e->reason)));
	json_object_object_add(o, "hook", json_object_new_string(vg_hook_name(e->hook)));
	json_object_object_add(o, "cgroup", cgroup ? json_object_new_string(cgroup) : NULL);
	json_object_object_add(o, "cgroup_id", json_object_new_uint64(e->guard_cgroup));
	json_object_object_add(o, "pid", json_object_new_int64(e->pid));
	json_object_object_add(o, "uid", json_object_new_int64(e->uid));
	memcpy(comm, e->comm, sizeof(e->comm));
	comm[sizeof(e->comm)] = 0;
	json_object_object_add(o, "comm", json_object_new_string(comm));
	json_object_object_add(o, "proto", json_object_new_string(vg_proto_name(e->proto)));
	json_object_object_add(o, "family",
			       json_object_new_string(e->family == AF_INET6 ? "ipv6" : "ipv4"));
	/* Hooks that judge no destination (socket creation, options) report none. */
	bool has_dst = e->hook != VG_HOOK_SOCK_CREATE && e->hook != VG_HOOK_SETSOCKOPT;
	json_object_object_add(o, "dst", has_dst ?
			       json_object_new_string(vg_addr_str(&e->dst, buf, sizeof(buf))) : NULL);
	json_object_object_add(o, "dport", has_dst ? json_object_new_int(ntohs(e->dport)) : NULL);
	json_object_object_add(o, "ifindex", json_object_new_int64(e->ifindex));
	return o;
}

const char *vg_json_str(struct json_object *rec, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(rec, key, &v) || !v)
		return NULL;
	return json_object_get_string(v);
}

void vg_record_to_line(struct json_object *rec, char *buf, size_t len)
{
	const char *event;
	size_t n;

	if (!json_object_is_type(rec, json_type_object)) {
		snprintf(buf, len, "- unreadable record %s", json_object_to_json_string(rec));
		return;
	}
	event = vg_json_str(rec, "event");

	if (!event || strcmp(event, "blocked")) {
		/* Records of other kinds: time, kind, then every other field. */
		n = snprintf(buf, len, "%s %s", vg_json_str(rec, "time") ?: "-", event ?: "record");
		json_object_object_foreach(rec, key, val) {
			if (n >= len || !strcmp(key, "time") || !strcmp(key, "event"))
				continue;
			n += snprintf(buf + n, len - n, " %s=%s", key,
				      val ? json_object_get_string(val) : "-");
		}
		return;
	}
	const char *dst = vg_json_str(rec, "dst");
	const char *dport = vg_json_str(rec, "dport");
	const char *proto = vg_json_str(rec, "proto");
	const char *family = vg_json_str(rec, "family");
	char where[INET6_ADDRSTRLEN + 16];

	if (!dst)
		snprintf(where, sizeof(where), "%s socket", proto && *proto ? proto : "a");
	else if (family && !strcmp(family, "ipv6"))
		snprintf(where, sizeof(where), "[%s]:%s", dst, dport ?: "0");
	else
		snprintf(where, sizeof(where), "%s:%s", dst, dport ?: "0");
	snprintf(buf, len, "%s BLOCKED %-4s %-22s %-11s by %s (pid %s) in %s, hook %s",
		 vg_json_str(rec, "time") ?: "-", dst && proto ? proto : "", where,
		 vg_json_str(rec, "reason") ?: "-", vg_json_str(rec, "comm") ?: "?", vg_json_str(rec, "pid") ?: "?",
		 vg_json_str(rec, "cgroup") ?: vg_json_str(rec, "cgroup_id") ?: "?", vg_json_str(rec, "hook") ?: "?");
}
