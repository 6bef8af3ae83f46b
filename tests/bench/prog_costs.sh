# shellcheck shell=bash
# The programs' own share of `make bench`, sourced by tests/bench/run.sh (its
# world, sample, load, die): with kernel.bpf_stats_enabled the kernel counts
# each program's runs and the time they took. That adds two clock reads to
# every run, so it is on only for one run of each workload, after the rounds:
# once under vpnguard and once under the floor, a program that allows
# everything at each of vpnguard's hooks (tests/bench/empty.bpf.c) on a
# cgroup of its own: the kernel's path into a program, which vpnguard's rules
# sit on top of. BENCH_PERF=DIR adds `perf record -g` profiles.

# The hooks of tests/bench/empty.bpf.c's programs (fl_HOOK), vpnguard's seven.
FLOOR_HOOKS="sock_create connect4 connect6 sendmsg4 sendmsg6 setsockopt egress"

# CGROUP: "NAME RUNS RUN_NS" for each program attached to it (build/vgproginfo).
prog_counts() { "$VGPROGINFO" "$1" | cut -d' ' -f1-3 || die "vgproginfo $1"; }

# prog_sizes CONFIG: what the verifier walked and what it and the JIT made of each program on
# $RUN_CG, the instruction counts the per-run times sit beside.
prog_sizes() {
	local name verified xlated jited
	while read -r name _ _ verified xlated jited; do
		sample prog_size "$1" "$name.verified_insns" "$verified"
		sample prog_size "$1" "$name.xlated_insns" "$xlated"
		sample prog_size "$1" "$name.jited_bytes" "$jited"
	done < <("$VGPROGINFO" "$RUN_CG" || die "vgproginfo $RUN_CG")
}

# prog_cost CONFIG WORKLOAD OPS CMD...: one run of CMD in $RUN_CG; each of its programs' runs
# and ns, per operation.
prog_cost() {
	local cfg=$1 w=$2 ops=$3 name runs ns b_runs b_ns
	shift 3
	local -A before_runs before_ns
	while read -r name runs ns; do before_runs[$name]=$runs before_ns[$name]=$ns; done < <(prog_counts "$RUN_CG")
	"$@" >/dev/null || die "prog cost: $cfg: $w: $*"
	while read -r name runs ns; do
		b_runs=${before_runs[$name]:-0} b_ns=${before_ns[$name]:-0}
		[ "$runs" -gt "$b_runs" ] || continue
		sample prog_cost "$cfg" "$w.$name.runs_per_op" "$(awk -v r=$((runs - b_runs)) -v o="$ops" 'BEGIN {printf "%.3f", r / o}')"
		sample prog_cost "$cfg" "$w.$name.ns_per_run" "$(awk -v n=$((ns - b_ns)) -v r=$((runs - b_runs)) 'BEGIN {printf "%.1f", n / r}')"
	done < <(prog_counts "$RUN_CG")
}

# The floor's programs on $CG_FLOOR, pinned in $FLOOR_PINS (on_exit removes it).
floor_attach() {
	local hook
	FLOOR_PINS=/sys/fs/bpf/vgbench-floor-$$
	bpftool prog loadall "$EMPTY_OBJ" "$FLOOR_PINS" || die "cannot load $EMPTY_OBJ"
	for hook in $FLOOR_HOOKS; do
		bpftool cgroup attach "$CG_FLOOR" "$hook" pinned "$FLOOR_PINS/fl_$hook" multi ||
			die "cannot attach the floor's $hook program"
	done
}

# perf_profile WORKLOAD CMD...: one run of CMD under `perf record -g` of the load CPU, and
# the symbols it spent its time in (the programs' JIT images by name) in
# $BENCH_PERF/WORKLOAD.txt. Off unless BENCH_PERF names a directory.
perf_profile() {
	local w=$1
	shift
	[ -n "${BENCH_PERF:-}" ] || return 0
	command -v perf >/dev/null || die "BENCH_PERF: perf is not installed"
	mkdir -p "$BENCH_PERF" || die "BENCH_PERF: cannot make $BENCH_PERF"
	perf record -q -g -C "$LOAD_CPU" -o "$BENCH_PERF/$w.data" 2>>"$WORK/load.err" 9>&- &
	local perf_pid=$!
	sleep 0.5 # perf is recording before the load starts
	"$@" >/dev/null || die "perf profile: $w: $*"
	kill -TERM "$perf_pid"
	wait "$perf_pid" # a TERMed perf saves its data, and exits 143
	[ -s "$BENCH_PERF/$w.data" ] || die "perf record: $w: no data"
	perf report -q -i "$BENCH_PERF/$w.data" --stdio --no-children --sort sym --percent-limit 0.5 \
		-g none >"$BENCH_PERF/$w.txt" 2>>"$WORK/load.err" || die "perf report: $w"
	say "perf profile of $w: $BENCH_PERF/$w.txt"
}

bulk_once() {
	run_in "$RUN_CG" "$TOPO_HOME" taskset -c "$LOAD_CPU" iperf3 -c "$SERVER_IP" -p "$IPERF_PORT" \
		-t "$BULK_SECONDS" -O 1 -J >"$WORK/iperf3.cost.json" 2>>"$WORK/load.err" 9>&-
}

# prog_costs_of CONFIG: workloads 1-3 once each in $RUN_CG, with bpf_stats on.
prog_costs_of() {
	local cfg=$1 mib
	prog_cost "$cfg" udp_sendto 200000 load sendto "$PEER_NET" "$PEER_PORT" --count 200000
	prog_cost "$cfg" connect_udp 50000 load connect udp "$PEER_NET" "$PEER_PORT" --count 50000
	prog_cost "$cfg" connect_tcp 10000 load connect tcp "$SERVER_NET" "$ACCEPT_PORT" --count 10000
	# Per MiB sent, from iperf3's own byte count: read after the run.
	prog_cost "$cfg" tcp_bulk 1 bulk_once
	mib=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["end"]["sum_sent"]["bytes"] / 1048576)' "$WORK/iperf3.cost.json") ||
		die "cannot read iperf3's JSON"
	sample prog_cost "$cfg" tcp_bulk.mib "$mib"
}

run_prog_costs() {
	bpf_stats_was=$(sysctl -n kernel.bpf_stats_enabled) || die "no kernel.bpf_stats_enabled"
	sysctl -qw kernel.bpf_stats_enabled=1 || die "cannot set kernel.bpf_stats_enabled"
	RUN_CG=$CG_GUARD
	prog_sizes vpnguard
	prog_costs_of vpnguard
	floor_attach
	RUN_CG=$CG_FLOOR
	prog_sizes floor
	prog_costs_of floor
	sysctl -qw kernel.bpf_stats_enabled="$bpf_stats_was"
	bpf_stats_was=
	RUN_CG=$CG_GUARD
	perf_profile udp_sendto load sendto "$PEER_NET" "$PEER_PORT" --count 400000
	perf_profile connect_tcp load connect tcp "$SERVER_NET" "$ACCEPT_PORT" --count 20000
}
