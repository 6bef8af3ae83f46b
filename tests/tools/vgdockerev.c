// SPDX-License-Identifier: GPL-2.0
/*
 * vgdockerev - prints container events of a Docker engine through
 * vpnguard-bpf's own client (user/docker/docker.c), so the tests check it against a
 * real engine: one line "ACTION NAME ID" per start/die, until COUNT lines.
 *
 *   vgdockerev SOCKET SINCE_NS COUNT      (SINCE_NS: wall clock, 0 = from now)
 *
 * Exit status: 0 after COUNT events, 1 when the stream failed, 2 usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include "docker.h"

static int print_event(const struct vg_docker_event *ev, void *ctx)
{
	long *left = ctx;

	printf("%s %s %s\n", ev->action, ev->name, ev->id);
	fflush(stdout);
	return --*left ? 0 : 1;
}

int main(int argc, char **argv)
{
	char err[512];
	long left;

	if (argc != 4 || (left = atol(argv[3])) < 1) {
		fprintf(stderr, "usage: vgdockerev SOCKET SINCE_NS COUNT\n");
		return 2;
	}
	if (vg_docker_events(argv[1], atoll(argv[2]), print_event, &left, NULL, err, sizeof(err)) == 1)
		return 0;
	fprintf(stderr, "vgdockerev: %s\n", err);
	return 1;
}
