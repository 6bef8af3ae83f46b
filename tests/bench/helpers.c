// SPDX-License-Identifier: GPL-2.0
/*
 * vghelpers - the per-call price of each helper and map access on this
 * machine (tests/bench/helpers.bpf.c), for `make bench`.
 *
 * Two prices per operation:
 *   warm  the program does it LOOPS times; BPF_PROG_TEST_RUN runs it REPEAT
 *         times and says the mean time of a run. (run - empty run) / LOOPS,
 *         the median of TRIALS trials: what it costs in a tight loop, its
 *         memory in the cache and its pages in the TLB.
 *   cold  the program does it once, one run per BPF_PROG_TEST_RUN call, so
 *         each run follows an entry into the kernel as a hook's run follows
 *         the system call it is part of: run - empty run, the mean of the
 *         middle half of COLD_TRIALS calls (the clock counts whole ns and
 *         steps by ~10 ns on some VMs: a median would stick to a step).
 * Prints a Markdown table on stdout and, with --json FILE, the figures as
 * JSON. Needs root (CAP_BPF, CAP_PERFMON for BPF_PROG_TEST_RUN).
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
#define COLD_TRIALS 2001
#define MAX_PROGS 32

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* ns of one run of prog: warm, the median of TRIALS means of REPEAT; cold, runs of one. */
static double run_ns(struct bpf_program *prog, bool cold)
{
	/* An Ethernet header and an IPv4 header: what a cgroup_skb program is handed. */
	unsigned char pkt[64] = { [12] = 0x08, [13] = 0x00, [14] = 0x45, [23] = 17 };
	static double t[COLD_TRIALS];
	int n = cold ? COLD_TRIALS : TRIALS;
	double sum = 0;

	for (int i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = sizeof(pkt),
			    .repeat = cold ? 1 : REPEAT);

		if (bpf_prog_test_run_opts(bpf_program__fd(prog), &opts)) {
			fprintf(stderr, "vghelpers: test run of %s: %s\n", bpf_program__name(prog),
				strerror(errno));
			return -1;
		}
		t[i] = opts.duration;
	}
	qsort(t, n, sizeof(t[0]), cmp_double);
	if (!cold)
		return t[n / 2];
	for (int i = n / 4; i < n - n / 4; i++)
		sum += t[i];
	return sum / (n - 2 * (n / 4));
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
	__u32 slot = 1, zero = 0;
	int err = 0;

	if (!c)
		return -ENOMEM;
	if (bpf_map_update_elem(bpf_map__fd(s->maps.policy), &id, &p, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.policy_array), &zero, &p, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.tunnels), &s->bss->tunnel_key, &t, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.tundev), &slot, &d, BPF_ANY) ||
	    bpf_map_update_elem(bpf_map__fd(s->maps.counters), &ck, c, BPF_ANY))
		err = -errno;
	free(c);
	return err;
}

/* The programs, loaded to do their operation `loops` times. */
static struct helpers_bpf *open_loaded(__u32 loops)
{
	struct helpers_bpf *s = helpers_bpf__open();
	int err;

	if (!s) {
		fprintf(stderr, "vghelpers: open: %s\n", strerror(errno));
		return NULL;
	}
	s->rodata->policy_key = 42;
	s->rodata->tundev_key = 1;
	s->rodata->loops = loops;
	err = libbpf_num_possible_cpus();
	err = err < 0 ? err : bpf_map__set_max_entries(s->maps.facts, err);
	if (!err)
		err = helpers_bpf__load(s);
	if (!err) {
		s->bss->tunnel_key.netns_cookie = 1;
		memcpy(s->bss->tunnel_key.ifname, "wg0", 4);
		err = fill_maps(s);
	}
	if (err) {
		fprintf(stderr, "vghelpers: load: %s\n", strerror(-err));
		helpers_bpf__destroy(s);
		return NULL;
	}
	return s;
}

/* Each operation's price in s (empty subtracted, per operation), in the programs' order; -1 if none. */
static int measure(struct helpers_bpf *s, bool cold, double *price, const char **names)
{
	double empty = run_ns(s->progs.empty, cold);
	struct bpf_program *prog;
	int n = 0;

	if (empty < 0)
		return -1;
	bpf_object__for_each_program(prog, s->obj) {
		double ns;

		if (prog == s->progs.empty || n == MAX_PROGS)
			continue;
		ns = run_ns(prog, cold);
		if (ns < 0)
			return -1;
		names[n] = bpf_program__name(prog);
		price[n++] = (ns - empty) / (cold ? 1 : LOOPS);
	}
	price[n] = empty;
	return n;
}

int main(int argc, char **argv)
{
	const char *json = argc == 3 && !strcmp(argv[1], "--json") ? argv[2] : NULL;
	struct helpers_bpf *warm_s = open_loaded(LOOPS), *cold_s = warm_s ? open_loaded(1) : NULL;
	double warm[MAX_PROGS + 1], cold[MAX_PROGS + 1];
	const char *names[MAX_PROGS], *cold_names[MAX_PROGS];
	int n = -1, rc = 1;
	FILE *out = NULL;

	if (cold_s && (n = measure(warm_s, false, warm, names)) >= 0 &&
	    measure(cold_s, true, cold, cold_names) == n)
		rc = 0;
	if (!rc && json && !(out = fopen(json, "w")))
		fprintf(stderr, "vghelpers: %s: %s\n", json, strerror(errno));
	if (!rc) {
		printf("| helper or map access | ns per call, warm | ns per call, cold |\n"
		       "| --- | ---: | ---: |\n");
		for (int i = 0; i < n; i++)
			printf("| `%s` | %.1f | %.1f |\n", names[i], warm[i], cold[i]);
		printf("\nan empty program's run, cold: %.1f ns\n", cold[n]);
	}
	if (out) {
		fprintf(out, "{\"loops\": %d, \"empty_loop_ns\": %.2f, \"cold_empty_run_ns\": %.1f, "
			"\"ns_per_call\": {", LOOPS, warm[n] / LOOPS, cold[n]);
		for (int i = 0; i < n; i++)
			fprintf(out, "%s\"%s\": %.2f", i ? ", " : "", names[i], warm[i]);
		fprintf(out, "}, \"cold_ns_per_call\": {");
		for (int i = 0; i < n; i++)
			fprintf(out, "%s\"%s\": %.2f", i ? ", " : "", names[i], cold[i]);
		fprintf(out, "}}\n");
		fclose(out);
	}
	helpers_bpf__destroy(cold_s);
	helpers_bpf__destroy(warm_s);
	return rc;
}
