// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>
#include "health.h"
#include "policy.h"

int vg_health_cfg_build(const struct vg_options *o, struct vg_health_cfg *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->probe_url = o->probe_url;
	c->probe_ca = o->probe_ca;
	c->gluetun_url = o->gluetun_url;
	c->interval_ms = o->probe_interval_ms ?: VG_DEFAULT_INTERVAL_MS;
	c->timeout_ms = o->probe_timeout_ms ?: (c->interval_ms < VG_DEFAULT_TIMEOUT_MS ?
						c->interval_ms : VG_DEFAULT_TIMEOUT_MS);
	c->failures = o->probe_failures ?: VG_DEFAULT_FAILURES;
	c->lease_ms = o->lease_ms ?: 3 * c->interval_ms;
	for (int i = 0; i < o->n_real_ips; i++)
		if (vg_parse_addr(o->real_ips[i], &c->real_ips[c->n_real_ips++]))
			return vg_word_check("--real-ip", o->real_ips[i], err, errlen);
	for (int i = 0; i < o->n_expect_ips; i++)
		if (vg_parse_cidr(o->expect_ips[i], &c->expect[c->n_expect++]))
			return vg_word_check("--expect-ip", o->expect_ips[i], err, errlen);
	return 0;
}

static int parse_bare_addr(const char *body, size_t len, struct vg_addr *a)
{
	char buf[64];

	while (len && isspace((unsigned char)*body))
		body++, len--;
	while (len && isspace((unsigned char)body[len - 1]))
		len--;
	if (!len || len >= sizeof(buf) || memchr(body, '/', len) || memchr(body, 0, len))
		return -EINVAL;
	memcpy(buf, body, len);
	buf[len] = 0;
	return vg_parse_addr(buf, a);
}

/* Parses body as JSON and hands out the string at key, or NULL. */
static const char *json_string_at(const char *body, size_t len, const char *key, struct json_object **root)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *v;

	*root = tok ? json_tokener_parse_ex(tok, body, (int)len) : NULL;
	if (*root && json_tokener_get_parse_end(tok) < len) {
		/* Anything but whitespace after the object: not one answer. */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
			if (!isspace((unsigned char)body[i])) {
				json_object_put(*root);
				*root = NULL;
				break;
			}
	}
	json_tokener_free(tok);
	if (!*root || !json_object_is_type(*root, json_type_object) ||
	    !json_object_object_get_ex(*root, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

int vg_parse_ip_answer(const char *body, size_t len, struct vg_addr *a)
{
	static const char *const keys[] = { "public_ip", "ip" };
	struct json_object *root;
	int rc = -EINVAL;

	if (len > 4096)
		return -EINVAL;
	if (!parse_bare_addr(body, len, a))
		return 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && rc; i++) {
		const char *s = json_string_at(body, len, keys[i], &root);

		if (s)
			rc = parse_bare_addr(s, strlen(s), a);
		json_object_put(root);
	}
	return rc;
}

int vg_parse_gluetun_status(const char *body, size_t len, char *status, size_t size)
{
	struct json_object *root;
	const char *s = len <= 4096 ? json_string_at(body, len, "status", &root) : (root = NULL, NULL);
	int rc = s && *s && strlen(s) < size ? 0 : -EINVAL;

	if (!rc)
		snprintf(status, size, "%s", s);
	json_object_put(root);
	return rc;
}

static const char *const why_names[] = {
	[VG_WHY_PROBE_PASSED] = "probe_passed",
	[VG_WHY_REAL_IP] = "real_ip",
	[VG_WHY_UNEXPECTED_IP] = "unexpected_ip",
	[VG_WHY_GLUETUN_NOT_RUNNING] = "gluetun_not_running",
	[VG_WHY_PROBE_FAILED] = "probe_failed",
};

const char *vg_why_name(enum vg_why why)
{
	return why < sizeof(why_names) / sizeof(why_names[0]) ? why_names[why] : "unknown";
}

enum vg_verdict vg_health_judge(const struct vg_health_cfg *c, struct vg_health *h,
				const struct vg_probe_result *r, enum vg_why *why, bool *leak)
{
	bool expected = !c->n_expect;

	*leak = false;
	if (c->probe_url && r->ip_ok) {
		for (int i = 0; i < c->n_real_ips; i++)
			*leak |= vg_addr_eq(&r->seen, &c->real_ips[i]);
		for (int i = 0; i < c->n_expect; i++)
			expected |= vg_cidr_contains(&c->expect[i], &r->seen);
		if (*leak || !expected) {
			*why = *leak ? VG_WHY_REAL_IP : VG_WHY_UNEXPECTED_IP;
			h->failed = 0;
			goto close;
		}
	}
	if (c->gluetun_url && r->gluetun_ok && strcmp(r->gluetun_status, "running")) {
		*why = VG_WHY_GLUETUN_NOT_RUNNING;
		h->failed = 0;
		goto close;
	}
	if ((c->probe_url && !r->ip_ok) || (c->gluetun_url && !r->gluetun_ok)) {
		*why = VG_WHY_PROBE_FAILED;
		if (++h->failed < c->failures)
			return VG_KEEP;
		goto close;
	}
	*why = VG_WHY_PROBE_PASSED;
	h->failed = 0;
	if (h->open)
		return VG_KEEP;
	h->open = true;
	return VG_OPEN;
close:
	if (!h->open)
		return VG_KEEP;
	h->open = false;
	return VG_CLOSE;
}
