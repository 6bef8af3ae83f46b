/* SPDX-License-Identifier: GPL-2.0 */
/* Where the agent's HTTP endpoint listens: --http ADDR:PORT, [ADDR6]:PORT or unix:/PATH. Pure. */
#ifndef VG_LISTEN_H
#define VG_LISTEN_H

#include <limits.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

struct vg_listen {
	struct sockaddr_storage addr;
	socklen_t len;
	char shown[PATH_MAX + 16];  /* for messages: as given */
};

/* -EINVAL with err saying why: no port, a name instead of an address, a relative socket path. */
int vg_listen_parse(const char *s, struct vg_listen *l, char *err, size_t errlen);

#endif
