// SPDX-License-Identifier: GPL-2.0
/* /proc/PID/{stat,cgroup,status} text, as scan.c reads it: a NUL-terminated buffer. */
#include <stddef.h>
#include <stdint.h>
#include "fuzz.h"
#include "proc_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = fuzz_string(data, size), comm[16], rel[64];
	uint64_t start, caps;

	if (!vg_proc_stat(s, comm, sizeof(comm), &start))
		FUZZ_CHECK(strlen(comm) < sizeof(comm), "comm overran");
	if (!vg_proc_cgroup_v2(s, rel, sizeof(rel)))
		FUZZ_CHECK(rel[0] == '/' && !strchr(rel, '\n'), "cgroup '%s'", rel);
	vg_proc_caps(s, "CapEff", &caps);
	vg_proc_caps(s, "CapPrm", &caps);
	free(s);
	return 0;
}
