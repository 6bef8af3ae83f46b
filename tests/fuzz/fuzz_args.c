// SPDX-License-Identifier: GPL-2.0
/*
 * vg_parse_args on any command line (words split at NUL bytes). What it
 * accepts, the loader must be able to build: every word was judged while
 * parsing, so vg_policy_build and vg_health_cfg_build
 * cannot refuse it later.
 */
#include <stddef.h>
#include <stdint.h>
#include "args.h"
#include "fuzz.h"
#include "health.h"
#include "policy.h"

#define MAX_WORDS 80

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[MAX_WORDS], *argv[MAX_WORDS + 2], err[512];
	int n = fuzz_words(data, size, words, MAX_WORDS);
	struct vg_options o;
	struct vg_policy p;
	struct vg_health_cfg h;

	argv[0] = "vpnguard-bpf";
	for (int i = 0; i < n; i++)
		argv[i + 1] = words[i];
	argv[n + 1] = NULL;
	err[0] = 0;
	if (vg_parse_args(n + 1, argv, &o, err, sizeof(err))) {
		FUZZ_CHECK(err[0], "refused without a message");
	} else if (o.cmd == VG_CMD_ATTACH) {
		FUZZ_CHECK(!vg_policy_build(&o, &p, err, sizeof(err)), "parsed, then refused: %s", err);
		FUZZ_CHECK(!vg_health_cfg_build(&o, &h, err, sizeof(err)), "parsed, then refused: %s", err);
	}
	fuzz_free_words(words, n);
	return 0;
}
