// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include "docker_json.h"
#include "event_fmt.h"

int vg_docker_host_socket(const char *host, char *path, size_t len)
{
	static const char unix_scheme[] = "unix://";
	const char *p;

	if (!host || strncmp(host, unix_scheme, sizeof(unix_scheme) - 1))
		return host && strstr(host, "://") ? -EPROTONOSUPPORT : -EINVAL;
	p = host + sizeof(unix_scheme) - 1;
	if (p[0] != '/' || (size_t)snprintf(path, len, "%s", p) >= len)
		return -EINVAL;
	return 0;
}

const char *vg_docker_host_pick(const char *flag, const char *env)
{
	return flag ? flag : env && *env ? env : VG_DOCKER_DEFAULT_HOST;
}

bool vg_docker_name_valid(const char *name)
{
	static const char more[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";
	size_t n = strlen(name);

	/* 255: what the name fields hold; Docker's own names are far shorter. */
	return n && n < 256 && strspn(name, more) == n && strchr(more, name[0]) < more + 62;
}

static void copy(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

int vg_docker_parse_container(const char *body, struct vg_docker_container *c,
			      char *err, size_t errlen)
{
	struct json_object *o = json_tokener_parse(body), *state, *v;
	const char *id, *name;
	int r = -EINVAL;

	memset(c, 0, sizeof(*c));
	if (!o || !json_object_is_type(o, json_type_object)) {
		snprintf(err, errlen, "the engine's answer is not a JSON object");
		goto out;
	}
	id = vg_json_str(o, "Id");
	name = vg_json_str(o, "Name");
	if (!id || !json_object_object_get_ex(o, "State", &state) ||
	    !json_object_is_type(state, json_type_object)) {
		snprintf(err, errlen, "the engine's answer has no Id or State");
		goto out;
	}
	copy(c->id, sizeof(c->id), id);
	copy(c->name, sizeof(c->name), name && name[0] == '/' ? name + 1 : name);
	copy(c->status, sizeof(c->status), vg_json_str(state, "Status"));
	copy(c->started, sizeof(c->started), vg_json_str(state, "StartedAt"));
	c->running = json_object_object_get_ex(state, "Running", &v) && json_object_get_boolean(v);
	c->paused = json_object_object_get_ex(state, "Paused", &v) && json_object_get_boolean(v);
	if (json_object_object_get_ex(state, "Health", &v) && json_object_is_type(v, json_type_object))
		copy(c->health, sizeof(c->health), vg_json_str(v, "Status"));
	if (json_object_object_get_ex(o, "HostConfig", &v) && json_object_is_type(v, json_type_object))
		copy(c->network_mode, sizeof(c->network_mode), vg_json_str(v, "NetworkMode"));
	if (json_object_object_get_ex(state, "Pid", &v))
		c->pid = json_object_get_int(v);
	/* A running container has a process; anything else is an answer we cannot trust. */
	if (c->running && c->pid <= 0) {
		vg_text_printf(err, errlen, "the engine says container %s runs but gives no process", c->id);
		goto out;
	}
	r = 0;
out:
	json_object_put(o);
	return r;
}

int vg_docker_parse_list(const char *body, struct vg_docker_summary *out, int max, int *n,
			 char *err, size_t errlen)
{
	struct json_object *o = json_tokener_parse(body);
	int r = -EINVAL;

	*n = 0;
	if (!o || !json_object_is_type(o, json_type_array)) {
		snprintf(err, errlen, "the engine's list is not a JSON array");
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(o) && *n < max; i++) {
		struct json_object *c = json_object_array_get_idx(o, i), *names, *hc;
		struct vg_docker_summary *d = &out[*n];
		const char *id = json_object_is_type(c, json_type_object) ? vg_json_str(c, "Id") : NULL;
		const char *name = NULL;

		if (!id)
			continue;
		memset(d, 0, sizeof(*d));
		if (json_object_object_get_ex(c, "Names", &names) && json_object_is_type(names, json_type_array) &&
		    json_object_array_length(names))
			name = json_object_get_string(json_object_array_get_idx(names, 0));
		copy(d->id, sizeof(d->id), id);
		copy(d->name, sizeof(d->name), name && name[0] == '/' ? name + 1 : name);
		copy(d->state, sizeof(d->state), vg_json_str(c, "State"));
		if (json_object_object_get_ex(c, "HostConfig", &hc) && json_object_is_type(hc, json_type_object))
			copy(d->network_mode, sizeof(d->network_mode), vg_json_str(hc, "NetworkMode"));
		(*n)++;
	}
	r = 0;
out:
	json_object_put(o);
	return r;
}

bool vg_docker_joins(const char *network_mode, const char *id, const char *name)
{
	static const char prefix[] = "container:";
	const char *t = network_mode;

	if (strncmp(t, prefix, sizeof(prefix) - 1))
		return false;
	return vg_docker_designates(id, name, t + sizeof(prefix) - 1);
}

void vg_docker_error_message(const char *body, char *buf, size_t len)
{
	struct json_object *o = json_tokener_parse(body);
	const char *msg = o && json_object_is_type(o, json_type_object) ?
			  vg_json_str(o, "message") : NULL;
	size_t n;

	msg = msg ? msg : body;
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		n--;
	/* It names what it was asked for: a name that may hold anything. */
	vg_text_printf(buf, len, "%.*s", (int)n, msg);
	json_object_put(o);
}

int vg_docker_parse_event(const char *line, struct vg_docker_event *ev)
{
	struct json_object *o = json_tokener_parse(line), *actor, *attrs, *v;
	const char *type, *action, *id;
	int r = -EINVAL;

	memset(ev, 0, sizeof(*ev));
	if (!o || !json_object_is_type(o, json_type_object))
		goto out;
	type = vg_json_str(o, "Type");
	action = vg_json_str(o, "Action");
	if (!type || strcmp(type, "container") || !action ||
	    !json_object_object_get_ex(o, "Actor", &actor) || !actor)
		goto out;
	id = vg_json_str(actor, "ID");
	if (!id)
		goto out;
	copy(ev->action, sizeof(ev->action), action);
	copy(ev->id, sizeof(ev->id), id);
	if (json_object_object_get_ex(actor, "Attributes", &attrs) && attrs)
		copy(ev->name, sizeof(ev->name), vg_json_str(attrs, "name"));
	if (json_object_object_get_ex(o, "timeNano", &v))
		ev->time_ns = json_object_get_int64(v);
	r = 0;
out:
	json_object_put(o);
	return r;
}

bool vg_docker_designates(const char *id, const char *name, const char *word)
{
	size_t n = strlen(word);

	return n && (!strcmp(name, word) || (n <= strlen(id) && !strncmp(id, word, n)));
}

bool vg_docker_event_names(const struct vg_docker_event *ev, const char *name)
{
	return vg_docker_designates(ev->id, ev->name, name);
}

int vg_line_buf_feed(struct vg_line_buf *lb, const char *data, size_t n,
		     vg_line_fn fn, void *ctx)
{
	while (n) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;
		int r = 0;

		if (lb->overlong || lb->len + take >= sizeof(lb->buf)) {
			lb->overlong = true;
			lb->len = 0;
		} else {
			memcpy(lb->buf + lb->len, data, take);
			lb->len += take;
		}
		if (!nl)
			return 0;
		if (!lb->overlong && lb->len) {
			lb->buf[lb->len] = 0;
			r = fn(lb->buf, ctx);
		}
		lb->len = 0;
		lb->overlong = false;
		data = nl + 1;
		n -= take + 1;
		if (r)
			return r;
	}
	return 0;
}
