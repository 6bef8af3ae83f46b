// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>
#include "event_fmt.h"
#include "redact.h"

#define REDACTED "<redacted>"

/* Appends n bytes of s to raw (size len, at *at), cut to fit. */
static void add(char *raw, size_t len, size_t *at, const char *s, size_t n)
{
	if (n > len - 1 - *at)
		n = len - 1 - *at;
	memcpy(raw + *at, s, n);
	*at += n;
	raw[*at] = 0;
}

char *vg_url_redact(const char *url, char *buf, size_t len)
{
	static const char scheme_chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.";
	/* Escaping only lengthens: what is past len - 1 of the raw form is never shown. */
	char *raw = len ? malloc(len) : NULL;
	const char *p = url, *at;
	size_t scheme = strspn(url, scheme_chars), n, used = 0;

	if (!raw) {
		if (len)
			buf[0] = 0;
		return buf;
	}
	raw[0] = 0;
	if (scheme && strchr(scheme_chars, url[0]) < scheme_chars + 52 && !strncmp(url + scheme, "://", 3)) {
		add(raw, len, &used, url, scheme + 3);
		p += scheme + 3;
	}
	/*
	 * The userinfo ends at the last '@' before the query, even past a '/':
	 * a password with an unencoded '/' is still a password, and a host that
	 * goes unshown costs less than a secret that is.
	 */
	n = strcspn(p, "?#");
	at = memrchr(p, '@', n);
	if (at) {
		add(raw, len, &used, REDACTED "@", sizeof(REDACTED));
		p = at + 1;
		n = strcspn(p, "?#");
	}
	add(raw, len, &used, p, n);
	p += n;
	if (*p == '?') {
		add(raw, len, &used, "?", 1);
		for (p++; *p && *p != '#';) {
			size_t param = strcspn(p, "&#"), key = strcspn(p, "=&#");

			/* A parameter without '=' may be the secret itself (?TOKEN). */
			if (key < param) {
				add(raw, len, &used, p, key);
				add(raw, len, &used, "=" REDACTED, sizeof(REDACTED));
			} else if (param) {
				add(raw, len, &used, REDACTED, sizeof(REDACTED) - 1);
			}
			p += param;
			if (*p == '&')
				add(raw, len, &used, p++, 1);
		}
	}
	if (*p == '#')
		add(raw, len, &used, "#" REDACTED, p[1] ? sizeof(REDACTED) : 1);
	vg_text_escape(raw, buf, len);
	free(raw);
	return buf;
}
