// SPDX-License-Identifier: GPL-2.0
#include <dlfcn.h>
#include <string.h>
#include "dl.h"

bool vg_dl_resolve(void *lib, const char *name, void *fn)
{
	void *sym = dlsym(lib, name);

	memcpy(fn, &sym, sizeof(sym));
	return sym;
}
