// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "error.h"

static _Thread_local char last[512];

int vg_error(int err, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(last, sizeof(last), fmt, ap);
	va_end(ap);
	if (err < 0 && n >= 0 && (size_t)n < sizeof(last))
		snprintf(last + n, sizeof(last) - n, ": %s", strerror(-err));
	fprintf(stderr, "vpnguard-bpf: %s\n", last);
	return err;
}

const char *vg_error_last(void)
{
	return last;
}

void vg_error_forget(void)
{
	last[0] = 0;
}
