// SPDX-License-Identifier: GPL-2.0
/*
 * vghelpers - the per-call price of each helper and map access on this
 * machine (tests/bench/helpers.bpf.c), for `make bench`.
 *
 * Each program does its operation LOOPS times; BPF_PROG_TEST_RUN runs it
 * REPEAT times and says the mean time of a run. The price of one operation
 * is (run - empty run) / LOOPS, the median of TRIALS trials. Prints a
 * Markdown table on stdout and, with --json FILE, the figures as JSON.
 * Needs root (CAP_BPF, CAP_PERFMON for BPF_PROG_TEST_RUN).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "vpnguard.h"
#include "helpers.skel.h"

#define LOOPS 1000
#define REPEAT 200
#define TRIALS 9

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Mean ns of one run of prog, the median over TRIALS. */
static double run_ns(struct bpf_program *prog)
{
	/* An Ethernet header and an IPv4 header: what a cgroup_skb program is handed. */
	unsigned char pkt[64] = { [12] = 0x08, [13] = 0x00, [14] = 0x45, [23] = 17 };
	double t[TRIALS];

	for (int i = 0; i < TRIALS; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
			    .repeat = REPEAT);

		if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts)) {
			fprintf(stderr, "vghelpers: test run of %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			return -1;
		}
		t[i] = opts.duration;
	}
	qsort(t, TRIALS, sizeof(t[0]), cmp_double);
	return t[TRIALS / 2];
}

static int fill_maps(struct helpers_bpf *s)
{
	struct vg_policy p = { .mode = VG_MODE_TUNNEL };
	struct vg_tunnel t = { .ifindex = 1, .slot = 1 };
	struct vg_tundev d = { .ifindex = 1 };   /* lo: a device of this namespace */
	struct vg_counter_key ck = { .cgroup_id = 42, .reason = VG_R_DNS };
	int ncpu = libbpf_num_possible_cpus();
	struct vg_counter *c = calloc(ncpu > 0 ? ncpu : 1, sizeof(*c));
	__u64 id = 42;
	__u32 slot = 1;
	int err = 0;

	if (!c)
		return -ENOMEM;
	if (bpf_map_update_elem(bpf_map__fd(s->maps.policy), &id, &p, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.tunnels), &s->bss->tunnel_key, &t, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.tundev), &slot, &d, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.counters), &ck, c, BPF_ANY))
		err = -errno;
	free(c);
	return err;
}

int main(int argc, char **argv)
{
	const char *json = argc == 3 && !strcmp(argv[1], "--json") ? argv[2] : NULL;
	struct helpers_bpf *s = helpers_bpf__open();
	struct bpf_program *prog;
	double empty, ns;
	FILE *out = NULL;
	int n = 0;

	if (!s) {
		fprintf(stderr, "vghelpers: open: %s\n", strerror(errno));
		return 1;
	}
	s->rodata->policy_key = 42;
	s->rodata->tundev_key = 1;
	if (!helpers_bpf__load(s)) {
		s->bss->tunnel_key.netns_cookie = 1;
		memcpy(s->bss->tunnel_key.ifname, "wg0", 4);
	}
	if (!s->bss || fill_maps(s)) {
		fprintf(stderr, "vghelpers: load: %s\n", strerror(errno));
		helpers_bpf__destroy(s);
		return 1;
	}
	empty = run_ns(s->progs.empty);
	if (empty < 0) {
		helpers_bpf__destroy(s);
		return 1;
	}
	if (json && !(out = fopen(json, "w")))
		fprintf(stderr, "vghelpers: %s: %s\n", json, strerror(errno));
	printf("| helper or map access | ns per call |\n| --- | ---: |\n");
	if (out)
		fprintf(out, "{\"loops\": %d, \"empty_loop_ns\": %.1f, \"ns_per_call\": {", LOOPS,
			empty / LOOPS);
	bpf_object__for_each_program(prog, s->obj) {
		if (prog == s->progs.empty)
			continue;
		ns = run_ns(prog);
		if (ns < 0)
			continue;
		ns = (ns - empty) / LOOPS;
		printf("| `%s` | %.1f |\n", bpf_program__name(prog), ns);
		if (out)
			fprintf(out, "%s\"%s\": %.2f", n++ ? ", " : "", bpf_program__name(prog), ns);
	}
	if (out) {
		fprintf(out, "}}\n");
		fclose(out);
	}
	helpers_bpf__destroy(s);
	return 0;
}
