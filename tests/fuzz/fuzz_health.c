// SPDX-License-Identifier: GPL-2.0
/*
 * The probe answers as the network sends them: a body of len bytes with no
 * NUL after it (probe.c passes its receive buffer).
 */
#include <stddef.h>
#include <stdint.h>
#include "fuzz.h"
#include "health.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char status[32];
	struct vg_addr a;
	/* A block of exactly size bytes: ASan sees a read past the answer. */
	char *body = malloc(size ? size : 1);

	if (!body)
		abort();
	memcpy(body, data, size);
	vg_parse_ip_answer(body, size, &a);
	if (!vg_parse_gluetun_status(body, size, status, sizeof(status)))
		FUZZ_CHECK(status[0] && strlen(status) < sizeof(status), "status '%s'", status);
	free(body);
	return 0;
}
