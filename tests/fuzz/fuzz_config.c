// SPDX-License-Identifier: GPL-2.0
/*
 * vg_config_parse on any text: refused with "NAME:" and nothing kept, or
 * guards whose policy builds (the same checks as the command line).
 */
#include <stddef.h>
#include <stdint.h>
#include "config.h"
#include "fuzz.h"
#include "health.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vg_config c;
	struct vg_policy p;
	struct vg_health_cfg h;
	char err[1024] = "";

	if (vg_config_parse((const char *)data, size, "fuzz.conf", &c, err, sizeof(err))) {
		FUZZ_CHECK(!strncmp(err, "fuzz.conf", 9), "message '%s'", err);
		FUZZ_CHECK(!c.n_guards && !c.strings && !c.log, "a refused file left something");
		return 0;
	}
	FUZZ_CHECK(c.n_guards > 0 && c.n_guards <= VG_MAX_CONF_GUARDS, "%d guards", c.n_guards);
	for (int i = 0; i < c.n_guards; i++) {
		FUZZ_CHECK(!vg_policy_build(&c.guards[i].o, &p, err, sizeof(err)), "taken, then refused: %s", err);
		FUZZ_CHECK(!vg_health_cfg_build(&c.guards[i].o, &h, err, sizeof(err)), "taken, then refused: %s", err);
	}
	vg_config_free(&c);
	return 0;
}
