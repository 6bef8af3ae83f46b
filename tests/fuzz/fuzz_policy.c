// SPDX-License-Identifier: GPL-2.0
/*
 * Addresses, CIDRs and gateways (words split at NUL bytes), and the
 * coverage rule of --allow sets: vg_cidrs_cover is checked against a plain
 * sweep over 128-bit intervals, written apart from it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "fuzz.h"
#include "policy.h"

typedef unsigned __int128 u128;

static u128 value(const struct vg_addr *a)
{
	u128 v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 32 | ntohl(a->w[i]);
	return v;
}

static void interval(const struct vg_cidr *c, u128 *lo, u128 *hi)
{
	*lo = value(&c->net);
	*hi = *lo | ~value(&c->mask);
}

/* Is [tlo, thi] inside the union? Sweep from tlo, taking any interval that starts at or before it. */
static bool sweep_covers(const struct vg_cidr *set, int n, const struct vg_cidr *target)
{
	u128 at, thi;

	interval(target, &at, &thi);
	for (;;) {
		bool moved = false;

		for (int i = 0; i < n; i++) {
			u128 lo, hi;

			interval(&set[i], &lo, &hi);
			if (lo <= at && hi >= at) {
				if (hi >= thi)
					return true;
				at = hi + 1;
				moved = true;
			}
		}
		if (!moved)
			return false;
	}
}

static void one_word(const char *w)
{
	static const char *const flags[] = { "--allow", "--expect-ip", "--dns", "--real-ip", "--gateway" };
	char buf[INET6_ADDRSTRLEN], err[256];
	struct vg_addr a, b;
	struct vg_cidr c;
	struct vg_gateway g;

	if (!vg_parse_addr(w, &a)) {
		/* What is printed reads back as the same address. */
		FUZZ_CHECK(vg_addr_str(&a, buf, sizeof(buf)) && !vg_parse_addr(buf, &b) &&
			   !memcmp(&a, &b, sizeof(a)), "%s printed as %s", w, buf);
	}
	if (!vg_parse_cidr(w, &c)) {
		int len = vg_cidr_prefix(&c);

		FUZZ_CHECK(len >= 0 && len <= 128, "%s: prefix %d", w, len);
		for (int i = 0; i < 4; i++)
			FUZZ_CHECK((c.net.w[i] & ~c.mask.w[i]) == 0, "%s: host bits kept", w);
	}
	vg_parse_gateway(w, &g);
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (vg_word_check(flags[i], w, err, sizeof(err)))
			FUZZ_CHECK(err[0], "refused without a message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *words[VG_MAX_ALLOW + 1], err[1024];
	int n = fuzz_words(data, size, words, VG_MAX_ALLOW + 1);
	struct vg_cidr set[VG_MAX_ALLOW];
	int n_set = 0;
	struct vg_options o = { .tunnel = "wg0" };
	struct vg_policy p;

	for (int i = 0; i < n; i++) {
		one_word(words[i]);
		/* The first word is the target, the rest the set. */
		if (i && !vg_parse_cidr(words[i], &set[n_set]))
			n_set++;
		if (i < VG_MAX_ALLOW)
			o.allows[o.n_allows++] = words[i];
	}
	struct vg_cidr target;

	if (n && !vg_parse_cidr(words[0], &target))
		FUZZ_CHECK(vg_cidrs_cover(set, n_set, &target) == sweep_covers(set, n_set, &target),
			   "vg_cidrs_cover and the sweep disagree on %s", words[0]);
	if (vg_policy_build(&o, &p, err, sizeof(err)))
		FUZZ_CHECK(!strncmp(err, "--allow ", 8), "message '%s'", err);
	fuzz_free_words(words, n);
	return 0;
}
