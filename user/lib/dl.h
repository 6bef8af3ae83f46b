/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Libraries loaded on first use (libcurl for the probes and webhooks,
 * libmicrohttpd for --http), so an agent that needs neither never maps them
 * nor what they pull in (GnuTLS and the rest: about 3 MB of RSS).
 */
#ifndef VG_DL_H
#define VG_DL_H

#include <stdbool.h>

/* Stores dlsym(lib, name) in the function pointer at fn without a type-punned cast; false if absent. */
bool vg_dl_resolve(void *lib, const char *name, void *fn);

#endif
