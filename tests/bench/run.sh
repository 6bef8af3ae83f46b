#!/usr/bin/env bash
# tests/bench/run.sh - `make bench`: what a kill switch costs a torrent client.
#
# Every workload runs under three configurations in the same run, in rounds;
# within a round the configurations take turns (the order rotates from round
# to round), so a machine that gets busier or quieter during the run moves all
# three alike. The figures are medians over the rounds.
#
#   none      no enforcement;
#   nft       an nftables kill switch in the user's namespace (nft_killswitch
#             below), enforcing the policy vpnguard enforces;
#   vpnguard  `vpnguard-bpf attach` on the workload's cgroup, with its agent
#             running, as a user would.
#
# The world is tests/lib/topology.sh's (namespaces HOME and INET, a WireGuard
# tunnel made with wireguard-go), plus a kernel path for the throughput
# workloads: a veth pair HOME <-> INET that HOME routes the benchmark network
# 198.18.0.0/15 (RFC 2544) through, as a VPN client routes the Internet through
# its tunnel interface. The kill switches treat it as the tunnel. It exists so
# that workloads 1-3 measure the kill switch and not wireguard-go's userspace
# crypto; the leak window (5) uses the real WireGuard tunnel. INET drops what
# it gets for 198.19.0.0/16 and 2001:db8:200::/64 without answering, and
# serves TCP on 198.18.0.1. No packet leaves the two namespaces.
#
# Workloads: 1 udp_sendto, 2 connect (UDP and TCP), 3 tcp_bulk (iperf3),
# 4 deny_storm, 5 leak_window, 6 agent_footprint (measured during 1-4).
#
# Output: progress on stderr, the Markdown table on stdout and in
# tests/bench/results.md, the medians in tests/bench/results.json.
# Knobs (environment): rounds BENCH_ROUNDS (21, workloads 1-2),
# BENCH_BULK_ROUNDS (7), BENCH_STORM_ROUNDS (3), BENCH_LEAK_ROUNDS (3);
# BENCH_BULK_SECONDS (3); BENCH_PERF=DIR adds a `perf record -g` profile of
# sendto and TCP connect under vpnguard (perf_profile). Runs are short and
# rounds many: on a VM a run's figure moves by a few percent from one process
# to the next, whatever the configuration, and only many runs pin the median
# down.
#
# Needs root. Holds /run/vpnguard-kernel-tests.lock while it runs, like the
# kernel tests; pins in a root of its own (tests/lib/check.sh). Stop it with
# Ctrl-C or a signal to its process group (kill -TERM -- -PGID): it removes
# what it made. A SIGTERM to the shell's PID alone was seen to end it without
# its traps (bash 5.2, waiting for a command), leaving the world behind.
# shellcheck disable=SC2016 # strings for eval are single-quoted on purpose
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
VG=$repo/build/vpnguard-bpf
VGBENCH=$repo/build/vgbench
VGHELPERS=$repo/build/vghelpers
VGPROGINFO=$repo/build/vgproginfo
EMPTY_OBJ=$repo/build/empty.bpf.o
ROUNDS=${BENCH_ROUNDS:-21}
BULK_ROUNDS=${BENCH_BULK_ROUNDS:-7}
STORM_ROUNDS=${BENCH_STORM_ROUNDS:-3}
LEAK_ROUNDS=${BENCH_LEAK_ROUNDS:-3}
BULK_SECONDS=${BENCH_BULK_SECONDS:-3}
STORM_SECONDS=3
LEAK_SECONDS=3
CONFIGS=(none nft vpnguard)

export TOPO_QUIET=1
# shellcheck source=../lib/topology.sh
. "$here/../lib/topology.sh"
# shellcheck source=../lib/check.sh
. "$here/../lib/check.sh"
# shellcheck source=prog_costs.sh
. "$here/prog_costs.sh"

# The kernel path and the benchmark addresses.
PATH_HOME=vg${TOPO_SUFFIX}bt PATH_INET=vg${TOPO_SUFFIX}bi
PATH_HOME_IP=10.77.0.2 PATH_INET_IP=10.77.0.1
BENCH_NET=198.18.0.0/15
SERVER_NET=198.18.0.0 SERVER_IP=198.18.0.1 # vgbench connect tcp goes to NET+1
PEER_NET=198.19.0.0 PEER_PREFIX=198.19.0.0/16
PEER6_NET=2001:db8:200:: PEER6_PREFIX=2001:db8:200::/64
ACCEPT_PORT=5001 IPERF_PORT=5201 PEER_PORT=20000
NFT_TABLE=vgbench_killswitch

# Load generators on the last CPU. iperf3's server on the first, so that the
# bulk transfer has a CPU for each end; the TCP server of the connect loop on
# the load CPU with its client: a wake-up on another CPU is an interrupt
# between CPUs, dear and erratic in a VM, and made TCP connect figures wander
# by a microsecond from run to run.
ncpu=$(nproc)
LOAD_CPU=$((ncpu - 1))
SERVER_CPU=0

WORK='' SAMPLES='' CG_PLAIN='' CG_GUARD='' CG_FLOOR='' GID='' attached=0 agent_pid='' agent_err=''
bpf_stats_was='' FLOOR_PINS=''
started=$SECONDS

say() { printf 'bench: %s\n' "$*" >&2; }
die() {
	say "FAILED: $*"
	exit 1
}

# ---------------------------------------------------------------------------
# cleanup (every exit path: check.sh's EXIT trap calls on_exit)

agent_stop() {
	[ -n "$agent_pid" ] || return 0
	kill -TERM "$agent_pid" 2>/dev/null
	_topo_wait_until 5 _topo_not _topo_pid_alive "$agent_pid" || kill -KILL "$agent_pid" 2>/dev/null
	wait "$agent_pid" 2>/dev/null
	agent_pid=
}

detach_guard() {
	local f
	if [ "$attached" = 1 ] && [ -d "$CG_GUARD" ]; then
		timeout 30 "$VG" detach --cgroup "$CG_GUARD" >/dev/null 2>&1 ||
			say "detach --cgroup $CG_GUARD failed"
	fi
	# Never leave pins of ours behind (only ours: by guard id).
	if [ -n "$GID" ] && [ -d "$PIN_ROOT/$GID" ]; then
		for f in "$PIN_ROOT/$GID"/*; do rm -f "$f"; done
		rmdir "$PIN_ROOT/$GID" 2>/dev/null
	fi
	attached=0
}

# shellcheck disable=SC2317 # called from check.sh's EXIT trap
on_exit() {
	local rc=$?
	[ -n "$bpf_stats_was" ] && sysctl -qw kernel.bpf_stats_enabled="$bpf_stats_was"
	[ -n "$FLOOR_PINS" ] && rm -rf "$FLOOR_PINS" # the floor's attachments go with its cgroup
	agent_stop
	detach_guard
	topo_down
	[ -n "$WORK" ] && rm -rf "$WORK"
	rm -rf "$VPNGUARD_RUN_DIR"
	say "done in $((SECONDS - started)) s (plus ${lock_wait:-0} s waiting for the lock)"
	return "$rc"
}

# ---------------------------------------------------------------------------
# the world

path_up() {
	local h=$TOPO_HOME i=$TOPO_INET
	# An IPv4 path like a WireGuard interface: no IPv6 link-local address, whose
	# duplicate address detection would end with a netlink event the agent
	# wakes up for in the middle of its idle measurement.
	ip -n "$h" link add "$PATH_HOME" type veth peer name "$PATH_INET" netns "$i" &&
		ip netns exec "$h" sysctl -qw "net.ipv6.conf.$PATH_HOME.disable_ipv6=1" &&
		ip netns exec "$i" sysctl -qw "net.ipv6.conf.$PATH_INET.disable_ipv6=1" &&
		ip -n "$h" link set "$PATH_HOME" mtu 1420 &&
		ip -n "$i" link set "$PATH_INET" mtu 1420 &&
		ip -n "$h" addr add "$PATH_HOME_IP/24" dev "$PATH_HOME" &&
		ip -n "$i" addr add "$PATH_INET_IP/24" dev "$PATH_INET" &&
		ip -n "$h" link set "$PATH_HOME" up &&
		ip -n "$i" link set "$PATH_INET" up &&
		ip -n "$h" route add "$BENCH_NET" via "$PATH_INET_IP" dev "$PATH_HOME" src "$PATH_HOME_IP" metric 10 &&
		ip -n "$i" addr add "$SERVER_IP/32" dev lo &&
		ip -n "$i" route add blackhole "$PEER_PREFIX" &&
		ip -n "$i" -6 route add blackhole "$PEER6_PREFIX"
}

# The nftables kill switch, as gluetun and the guides set one up, for a
# tunnel interface: in HOME's output hook, default drop; loopback; DNS only to
# the resolver; the allowed subnet; no IPv6; everything else only out of the
# tunnel; and the VPN's own transport (wireguard-go's UDP to the server),
# which is not in any guarded cgroup but must leave by the real interface.
# Same policy as the vpnguard guard, but for the whole namespace.
nft_killswitch() { # TUNNEL_IFNAME
	cat <<EOF
table inet $NFT_TABLE {
	chain output {
		type filter hook output priority filter; policy drop;
		oif "lo" accept
		meta l4proto { tcp, udp } th dport { 53, 853, 5353, 5355 } ip daddr != $TOPO_RESOLVER drop
		ip daddr $TOPO_LAN_NET accept
		meta nfproto ipv6 drop
		oifname "$1" accept
		oifname "$TOPO_VETH_HOME" ip daddr $TOPO_GW_IP udp dport $TOPO_WG_PORT accept
	}
}
EOF
}

# cfg_enter CONFIG TUNNEL: make CONFIG the one in force; sets RUN_CG.
cfg_enter() {
	case $1 in
	none) RUN_CG=$CG_PLAIN ;;
	nft)
		RUN_CG=$CG_PLAIN
		nft_killswitch "$2" | ip netns exec "$TOPO_HOME" nft -f - || die "cannot load the nft kill switch"
		;;
	vpnguard) RUN_CG=$CG_GUARD ;;
	esac
}

cfg_leave() {
	[ "$1" = nft ] || return 0
	ip netns exec "$TOPO_HOME" nft delete table inet "$NFT_TABLE" || die "cannot delete the nft kill switch"
}

# The configurations of round R (0-based), rotated.
round_order() {
	local r=$1
	echo "${CONFIGS[$((r % 3))]} ${CONFIGS[$(((r + 1) % 3))]} ${CONFIGS[$(((r + 2) % 3))]}"
}

# ---------------------------------------------------------------------------
# measuring

# sample WORKLOAD CONFIG KEY VALUE: one figure of one run.
sample() { printf '%s\t%s\t%s\t%s\n' "$@" >>"$SAMPLES"; }

# kv LINE KEY: the value of KEY=... in a vgbench result line.
kv() { awk -v k="$2" '{for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) {print substr($i, length(k) + 2); exit}}' <<<"$1"; }

# load ARGS...: vgbench in the run's cgroup and HOME, on the load CPU; its result line.
load() {
	run_in "$RUN_CG" "$TOPO_HOME" taskset -c "$LOAD_CPU" "$VGBENCH" "$@" 2>>"$WORK/load.err" 9>&-
}

agent_proc() { # FIELD: schedstat run ns | rss kB | wakeups (voluntary context switches)
	case $1 in
	run_ns) awk '{print $1}' "/proc/$agent_pid/schedstat" ;;
	rss_kb) awk '$1 == "VmRSS:" {print $2}' "/proc/$agent_pid/status" ;;
	wakeups) awk '$1 == "voluntary_ctxt_switches:" {print $2}' "/proc/$agent_pid/status" ;;
	esac
}

now_ns() { date +%s%N; }

status_json() { timeout 20 "$VG" status --json; }

# guard_get STATUS_JSON KEY [SUBKEY]: a field of our guard (0 if absent).
guard_get() {
	python3 -c '
import json, sys
for g in json.load(sys.stdin)["guards"]:
    if g["cgroup_id"] == int(sys.argv[1]):
        v = g.get(sys.argv[2], 0)
        print(v.get(sys.argv[3], 0) if len(sys.argv) > 3 else v)
        break
else:
    print(0)' "$GID" "${@:2}" <<<"$1"
}

# denied STATUS_JSON REASON: one per-reason counter of our guard.
denied() { guard_get "$1" denied "$2"; }

blocked_lines() { awk '/"event":"blocked"/ {n++} END {print n + 0}' "$AGENT_LOG"; }

# agent_start TUNNEL: `attach` without --no-agent, in the background; waits until it runs.
agent_start() {
	AGENT_LOG=$WORK/agent.$1.log agent_err=$WORK/agent.$1.err
	"$VG" attach --cgroup "$CG_GUARD" --tunnel "$1" --netns "$TOPO_HOME_NETNS" \
		--allow "$TOPO_LAN_NET" --dns "$TOPO_RESOLVER" --log "$AGENT_LOG" >"$agent_err" 2>&1 9>&- &
	agent_pid=$!
	attached=1
	_topo_wait_until 10 eval 'grep -q "agent running (pid $agent_pid)" "$agent_err"' ||
		die "the agent did not come up: $(tr '\n' ' ' <"$agent_err")"
}

# rounds N TUNNEL WHAT FUNC: N rounds of `FUNC CONFIG ROUND`, the configurations in turn.
rounds() {
	local n=$1 tun=$2 what=$3 fn=$4 r cfg
	for ((r = 0; r < n; r++)); do
		say "round $((r + 1))/$n of $what (t=$((SECONDS - started)) s)"
		for cfg in $(round_order "$r"); do
			cfg_enter "$cfg" "$tun"
			"$fn" "$cfg" "$r"
			cfg_leave "$cfg"
		done
	done
}

# Workloads 1 and 2 for one configuration in force.
run_calls() { # CONFIG ROUND
	local cfg=$1 sendto udp tcp
	sendto=$(load sendto "$PEER_NET" "$PEER_PORT" --count 200000) || die "$cfg: vgbench sendto: $(tail -n2 "$WORK/load.err")"
	sample udp_sendto "$cfg" ns "$(kv "$sendto" ns_per_call)"
	sample udp_sendto "$cfg" failed "$(kv "$sendto" failed)"
	udp=$(load connect udp "$PEER_NET" "$PEER_PORT" --count 50000) || die "$cfg: vgbench connect udp"
	sample connect_udp "$cfg" ns "$(kv "$udp" ns_per_conn)"
	sample connect_udp "$cfg" failed "$(kv "$udp" failed)"
	tcp=$(load connect tcp "$SERVER_NET" "$ACCEPT_PORT" --count 10000) || die "$cfg: vgbench connect tcp"
	sample connect_tcp "$cfg" ns "$(kv "$tcp" ns_per_conn)"
	sample connect_tcp "$cfg" failed "$(kv "$tcp" failed)"
	say "  $cfg: sendto $(kv "$sendto" ns_per_call) ns/call, UDP connect $(kv "$udp" ns_per_conn) ns, TCP connect $(kv "$tcp" ns_per_conn) ns"
}

# Workload 3 for one configuration in force.
run_bulk() { # CONFIG ROUND
	local cfg=$1 r=$2 bulk
	bulk=$WORK/iperf3.$cfg.$r.json
	run_in "$RUN_CG" "$TOPO_HOME" taskset -c "$LOAD_CPU" iperf3 -c "$SERVER_IP" -p "$IPERF_PORT" \
		-t "$BULK_SECONDS" -O 1 -J >"$bulk" 2>>"$WORK/load.err" 9>&- || die "$cfg: iperf3 client: $(tail -n3 "$bulk")"
	python3 - "$bulk" "$cfg" >>"$SAMPLES" <<'EOF' || die "$cfg: cannot read iperf3's JSON"
import json, sys
end = json.load(open(sys.argv[1]))["end"]
sent = end["sum_sent"]
cpu_s = end["cpu_utilization_percent"]["host_total"] / 100 * sent["seconds"]
print("tcp_bulk\t%s\tgbps\t%.3f" % (sys.argv[2], sent["bits_per_second"] / 1e9))
print("tcp_bulk\t%s\tcpu_ns_per_kib\t%.1f" % (sys.argv[2], cpu_s * 1e9 / (sent["bytes"] / 1024)))
EOF
	say "  $cfg: $(tail -n2 "$SAMPLES" | cut -f4 | paste -sd' ' | awk '{printf "%s Gbit/s, sender CPU %s ns/KiB", $1, $2}')"
}

# Workload 4 for one configuration.
run_storm() { # CONFIG ROUND
	local cfg=$1 out s0 s1 c0 c1 l0 l1 t0 t1 d
	if [ "$cfg" = vpnguard ]; then
		s0=$(status_json) || die "status --json"
		l0=$(blocked_lines)
		c0=$(agent_proc run_ns)
		t0=$(now_ns)
	fi
	out=$(load storm "$PEER_NET" "$PEER6_NET" --seconds "$STORM_SECONDS") || die "$cfg: vgbench storm"
	sample deny_storm "$cfg" ns "$(kv "$out" ns_per_call)"
	sample deny_storm "$cfg" attempts "$(kv "$out" attempts)"
	sample deny_storm "$cfg" denied "$(kv "$out" denied)"
	if [ "$cfg" = vpnguard ]; then
		c1=$(agent_proc run_ns)
		t1=$(now_ns)
		# Let the agent drain what is left in the ring buffer.
		sleep 0.5
		l1=$(blocked_lines)
		s1=$(status_json) || die "status --json"
		d=$(($(denied "$s1" dns) - $(denied "$s0" dns) + $(denied "$s1" ipv6) - $(denied "$s0" ipv6)))
		sample deny_storm "$cfg" counted "$d"
		sample deny_storm "$cfg" events_written $((l1 - l0))
		sample deny_storm "$cfg" events_suppressed $(($(denied "$s1" events_suppressed) - $(denied "$s0" events_suppressed)))
		sample deny_storm "$cfg" events_lost $(($(denied "$s1" events_lost) - $(denied "$s0" events_lost)))
		sample agent_footprint vpnguard cpu_storm_pct "$(awk -v c=$((c1 - c0)) -v t=$((t1 - t0)) 'BEGIN {printf "%.3f", 100 * c / t}')"
		sample agent_footprint vpnguard rss_storm_kb "$(agent_proc rss_kb)"
	fi
	say "  $cfg: storm $out"
}

# Workload 5 for one configuration: a UDP flood through the WireGuard tunnel,
# the tunnel deleted after 1 s. The agent runs throughout, as a user's would;
# under none and nft it guards a cgroup the flood is not in.
run_leak() { # CONFIG ROUND
	local cfg=$1 flood tun
	leak_reset
	topo_spawn "$RUN_CG" "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$TOPO_INET_HOST" 6881 \
		--seconds "$LEAK_SECONDS" --unconnected --interval-us 100 >"$WORK/flood.out" 2>>"$WORK/load.err" 9>&- ||
		die "$cfg: flood did not start"
	flood=$TOPO_LAST_PID
	sleep 1
	tun=$(tunnel_count)
	topo_tunnel_down del || die "$cfg: topo_tunnel_down"
	_topo_wait_until $((LEAK_SECONDS + 3)) _topo_not _topo_pid_alive "$flood"
	topo_stop "$flood"
	topo_settle 0.5
	sample leak_window "$cfg" packets "$(leak_count)"
	sample leak_window "$cfg" tunnel_before "$tun"
	say "  $cfg: leak $(leak_count) packets on the fallback path ($tun through the tunnel before it went; flood: $(cat "$WORK/flood.out"))"
	topo_tunnel_up || die "$cfg: topo_tunnel_up"
	if [ "$cfg" = vpnguard ]; then
		# The agent follows the new interface; wait for it before the next run.
		_topo_wait_until 5 eval '[ "$(guard_get "$(status_json)" tunnel_ifindex)" = "$TOPO_WG_CLIENT_IFINDEX" ]' ||
			die "the agent did not follow the new tunnel"
	fi
}

# ---------------------------------------------------------------------------
# preflight

require_root
for t in ip nft wg wireguard-go iperf3 taskset python3 timeout flock bpftool; do
	command -v "$t" >/dev/null || die "missing tool: $t (sh scripts/install-deps.sh)"
done
if [ ! -x "$VG" ] || [ ! -x "$VGBENCH" ] || [ ! -x "$VGHELPERS" ] || [ ! -x "$VGPROGINFO" ] ||
	[ ! -x "$TOPO_VGPROBE" ] || [ ! -r "$EMPTY_OBJ" ]; then
	die "build first: make all build/vgbench build/vghelpers build/vgproginfo build/empty.bpf.o"
fi
WORK=$(mktemp -d /tmp/vgbench.XXXXXX) || die "mktemp"
SAMPLES=$WORK/samples.tsv
: >"$SAMPLES"

say "waiting for /run/vpnguard-kernel-tests.lock (kernel tests load the machine too)"
take_kernel_test_lock
started=$SECONDS
if [ -e "$AGENT_PIDFILE" ] && _topo_pid_alive "$(head -n1 "$AGENT_PIDFILE" 2>/dev/null)"; then
	die "another vpnguard agent runs ($AGENT_PIDFILE); the bench needs its own"
fi
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

say "world: namespaces, WireGuard tunnel, kernel path $PATH_HOME"
topo_up || die "topo_up"
path_up || die "cannot make the kernel path"
CG_PLAIN=$(cg_make plain) || die "cg_make plain"
CG_GUARD=$(cg_make guarded) || die "cg_make guarded"
CG_FLOOR=$(cg_make floor) || die "cg_make floor"
GID=$(stat -c %i "$CG_GUARD")
topo_spawn - "$TOPO_INET" taskset -c "$LOAD_CPU" "$VGBENCH" accept "$SERVER_IP" "$ACCEPT_PORT" \
	>/dev/null 2>>"$WORK/server.err" 9>&- || die "TCP server: $(cat "$WORK/server.err")"
topo_spawn - "$TOPO_INET" taskset -c "$SERVER_CPU" iperf3 -s -B "$SERVER_IP" -p "$IPERF_PORT" \
	>/dev/null 2>>"$WORK/server.err" 9>&- || die "iperf3 server: $(cat "$WORK/server.err")"
_topo_wait_until 5 eval 'ip netns exec "$TOPO_INET" ss -Htln "sport = :$IPERF_PORT" | grep -q .' ||
	die "iperf3 server does not listen"

# Link-local addresses still in duplicate address detection would end it with
# netlink events the agent wakes up for: let the namespace settle first.
_topo_wait_until 5 eval '[ -z "$(ip -n "$TOPO_HOME" addr show tentative)" ]' ||
	say "addresses in $TOPO_HOME still tentative; the agent's idle figures may count their events"

# ---------------------------------------------------------------------------
say "vpnguard: attach --cgroup ${CG_GUARD#"$TOPO_CG2"} --tunnel $PATH_HOME (agent in the foreground, pid below)"
agent_start "$PATH_HOME"
say "agent pid $agent_pid"
idle_c0=$(agent_proc run_ns) idle_w0=$(agent_proc wakeups) idle_t0=$(now_ns)

rounds "$ROUNDS" "$PATH_HOME" "workloads 1-2, sendto and connect" run_calls
rounds "$BULK_ROUNDS" "$PATH_HOME" "workload 3, TCP bulk" run_bulk

# The agent had nothing to do while 1-3 ran: allowed traffic only, no denial, no link change.
idle_c1=$(agent_proc run_ns) idle_w1=$(agent_proc wakeups) idle_t1=$(now_ns)
sample agent_footprint vpnguard idle_seconds "$(awk -v t=$((idle_t1 - idle_t0)) 'BEGIN {printf "%.1f", t / 1e9}')"
sample agent_footprint vpnguard cpu_idle_pct "$(awk -v c=$((idle_c1 - idle_c0)) -v t=$((idle_t1 - idle_t0)) 'BEGIN {printf "%.3f", 100 * c / t}')"
sample agent_footprint vpnguard wakeups_idle $((idle_w1 - idle_w0))
sample agent_footprint vpnguard rss_kb "$(agent_proc rss_kb)"
say "agent idle for $(((idle_t1 - idle_t0) / 1000000000)) s: $((idle_w1 - idle_w0)) wake-ups, RSS $(agent_proc rss_kb) kB"

say "the programs' own cost: one run of workloads 1-3 with kernel.bpf_stats_enabled"
run_prog_costs

rounds "$STORM_ROUNDS" "$PATH_HOME" "workload 4, denied-attempt storm" run_storm
agent_stop
detach_guard

# ---------------------------------------------------------------------------
say "vpnguard: attach --cgroup ${CG_GUARD#"$TOPO_CG2"} --tunnel $TOPO_WG_CLIENT (the WireGuard tunnel)"
agent_start "$TOPO_WG_CLIENT"
rounds "$LEAK_ROUNDS" "$TOPO_WG_CLIENT" "workload 5, leak window" run_leak
agent_stop
detach_guard

# ---------------------------------------------------------------------------
say "one helper call or map access in isolation (build/vghelpers)"
"$VGHELPERS" --json "$WORK/helpers.json" >/dev/null || die "vghelpers failed"

machine="$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo), $ncpu cores"
vuln=/sys/devices/system/cpu/vulnerabilities
mitigations="spectre_v2: $(cat $vuln/spectre_v2 2>/dev/null || echo ?); meltdown: $(cat $vuln/meltdown 2>/dev/null || echo ?)"
python3 "$here/report.py" "$SAMPLES" "$here/results.json" "$here/results.md" \
	--kernel "$(uname -r)" --machine "$machine" --load "$load_start" \
	--clocksource "$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)" \
	--mitigations "$mitigations" --helpers "$WORK/helpers.json" \
	--rounds "$ROUNDS/$BULK_ROUNDS/$STORM_ROUNDS/$LEAK_ROUNDS" || die "report"
cat "$here/results.md"
