// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proc_parse.h"

/* The line of text that starts with prefix (at the start of a line), or NULL. */
static const char *line_starting(const char *text, const char *prefix)
{
	size_t n = strlen(prefix);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (!strncmp(p, prefix, n))
			return p;
	return NULL;
}

int vg_proc_cgroup_v2(const char *text, char *rel, size_t len)
{
	const char *p = line_starting(text, "0::");
	size_t n;

	if (!p)
		return -ENOENT;
	p += 3;
	n = strcspn(p, "\n");
	/* "/" at least; a path the kernel shows for a cgroup outside our namespace starts with "/..". */
	if (!n || p[0] != '/')
		return -EINVAL;
	if (n >= len)
		return -ENAMETOOLONG;
	memcpy(rel, p, n);
	rel[n] = 0;
	return 0;
}

int vg_proc_stat(const char *text, char *comm, size_t commlen, uint64_t *start)
{
	const char *open = strchr(text, '('), *close = strrchr(text, ')'), *p;
	size_t n;

	if (!open || !close || close < open)
		return -EINVAL;
	n = (size_t)(close - open - 1);
	snprintf(comm, commlen, "%.*s", (int)(n < commlen ? n : commlen - 1), open + 1);
	/*
	 * After ") ": state is field 3, so start time (22) is 19 fields on. Each
	 * step starts on a space, never on the NUL: a text that ends at ')' stops.
	 */
	p = close + 1;
	for (int field = 3; field <= 22; field++)
		if (*p != ' ' || (field < 22 && !(p = strchr(p + 1, ' '))))
			return -EINVAL;
	/* strtoull would take a sign or spaces; the kernel writes digits. */
	if (p[1] < '0' || p[1] > '9')
		return -EINVAL;
	char *end;
	errno = 0;
	*start = strtoull(p + 1, &end, 10);
	return errno ? -EINVAL : 0;
}

int vg_proc_caps(const char *text, const char *field, uint64_t *caps)
{
	char prefix[32];
	const char *p;
	char *end;

	snprintf(prefix, sizeof(prefix), "%s:", field);
	p = line_starting(text, prefix);
	if (!p)
		return -ENOENT;
	p += strlen(prefix);
	errno = 0;
	*caps = strtoull(p, &end, 16);
	return errno || end == p ? -EINVAL : 0;
}
