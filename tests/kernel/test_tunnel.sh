#!/usr/bin/env bash
# test_tunnel.sh - the real-kernel proof that a cgroup guarded in tunnel mode
# cannot leak.  Everything is judged on the far side: the nft counters of
# tests/lib/topology.sh in the INET namespace (leak, leak6, tunnel, lan,
# vpnsrc, stray) say what actually arrived and by which wire; the return codes
# and the per-reason counters of `vpnguard-bpf status --json` only say why.
#
# In the style of the kernel's sock_addr selftests most cases are rows of a
# table run by one loop (run_table): name | who | expected result line |
# far-side counters | reason counter deltas | vgprobe arguments.
#   who       root, nobody (unprivileged, no capabilities) or both
#   result    ERE for vgprobe's one result line (anchored)
#   far       "name OP N ..." over leak leak6 tunnel lan vpnsrc stray [third];
#             every counter NOT named must stay 0 ("-": all 0)
#   reasons   "reason OP N ..." deltas of status --json denied{} for the guard;
#             every reason NOT named must not move ("none": nothing denied,
#             "*": not checked, e.g. with no guard attached); the event
#             bookkeeping counters events_suppressed/events_lost are ignored
# The live-traffic cases (tunnel deleted under a flood, agent killed) are
# written out step by step below the tables.
#
# Cases: 1 rule table, 2 egress steering, 3 tunnel deleted under live traffic
# (agent: del and kill; no agent: del), 4 agent SIGKILLed, 5 netns rule,
# 6 CLOSED and lease, 7 tc layer (tunnel_src), 8 nested cgroups.
#
# Needs root, bpftool, python3, nft, ss, wireguard-go, wg, setpriv, the user
# nobody.  A case that cannot run FAILS.  Takes the lock
# /run/vpnguard-kernel-tests.lock (other kernel tests share the global
# /sys/fs/bpf/vpnguard).  Prints one line per check, then the time taken and,
# last, "N passed, M failed"; exits non-zero if anything failed.
# Functions run through expect_true and eval strings (single-quoted on purpose).
# shellcheck disable=SC2016,SC2317
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
VG=$repo/build/vpnguard-bpf
# shellcheck source=../lib/topology.sh
. "$here/../lib/topology.sh"

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"

# ---------------------------------------------------------------------------
# state for the cleanup

CG='' CG_CHILD='' GID='' attached=0 agent_pid='' killed_agent_pid='' third_up=0
THIRD_NS='' THIRD_VETH='' THIRD_VETH_INET=''
finished=0
started=$SECONDS

# A SIGKILLed agent leaves its pidfile behind; remove it only if it is ours.
drop_stale_pidfile() {
	local p
	[ -n "$killed_agent_pid" ] && [ -e "$AGENT_PIDFILE" ] || return 0
	p=$(head -n1 "$AGENT_PIDFILE" 2>/dev/null)
	[ "$p" = "$killed_agent_pid" ] && ! _topo_pid_alive "$p" && rm -f "$AGENT_PIDFILE"
	return 0
}

cleanup() {
	local f
	[ -n "$agent_pid" ] && agent_stop TERM
	drop_stale_pidfile
	if [ "$attached" = 1 ] && [ -n "$CG" ] && [ -d "$CG" ]; then
		timeout 30 "$VG" detach --cgroup "$CG" >/dev/null 2>&1 || echo "# detach --cgroup $CG failed" >&2
	fi
	# Never leave our pins behind, even if detach could not run (only ours: by guard id).
	if [ -n "$GID" ] && [ -d "$PIN_ROOT/$GID" ]; then
		echo "# removing leftover pins of guard $GID by hand" >&2
		for f in "$PIN_ROOT/$GID"/*; do rm -f "$f"; done
		rmdir "$PIN_ROOT/$GID" 2>/dev/null
	fi
	attached=0
	[ "$third_up" = 1 ] && topo_netns_remove "$THIRD_NS"
	third_up=0
	topo_down
}

# shellcheck disable=SC2317 # called from the EXIT trap
on_exit() {
	if [ "$finished" != 1 ]; then
		cleanup
		[ "$fail" != 0 ] || nok "stopped before the end"
	fi
	echo "# time: $((SECONDS - started)) s (plus ${lock_wait:-0} s waiting for the lock)"
	result_line
}

# ---------------------------------------------------------------------------
# preflight

require_root
take_kernel_test_lock
started=$SECONDS
for t in bpftool python3 nft ip ss wg wireguard-go setpriv timeout realpath; do
	command -v "$t" >/dev/null || { nok "missing tool: $t"; exit 1; }
done
id nobody >/dev/null 2>&1 || { nok "no user nobody"; exit 1; }
# The interpreter itself, not a version-manager shim (called a few hundred times).
PY=$(python3 -c 'import sys; print(sys.executable)') || { nok "python3 does not run"; exit 1; }
echo "# build"
build() { make -s -C "$repo" >"$1" 2>&1; }
build_log=$(mktemp /tmp/vgtest-build.XXXXXX)
if build "$build_log"; then ok "make builds vpnguard-bpf and vgprobe"; else nok "make: $(tail -n5 "$build_log")"; fi
rm -f "$build_log"
if [ ! -x "$VG" ] || [ ! -x "$TOPO_VGPROBE" ]; then
	nok "build/vpnguard-bpf or build/vgprobe missing"
	exit 1
fi
start_agent_world

# Counters of this file in INET (beside the topology's): what arrives from
# the third netns of case 5, and ICMP from HOME to INET's veth address.
THIRD_NS=vg${TOPO_SUFFIX}tt3 THIRD_VETH=vg${TOPO_SUFFIX}t3 THIRD_VETH_INET=vg${TOPO_SUFFIX}t3i
if ! ip netns exec "$TOPO_INET" nft -f - <<EOF
table inet vgtt {
	counter third { }
	counter icmpgw { }
	chain pre {
		type filter hook prerouting priority -320; policy accept;
		iifname "$THIRD_VETH_INET" ip saddr 10.98.0.0/24 counter name third
		iifname "$TOPO_VETH_INET" ip daddr $TOPO_GW_IP meta l4proto icmp counter name icmpgw
	}
}
EOF
then
	nok "nft counters of this test in INET"
	exit 1
fi

I=$TOPO_INET_HOST I6=$TOPO_INET_HOST6 D=$TOPO_ROGUE_DNS R=$TOPO_RESOLVER L=$TOPO_LAN_HOST
GW=$TOPO_GW_IP GW6=$TOPO_GW_IP6 VPN=$TOPO_VPN_IP WG=$TOPO_WG_CLIENT VETH=$TOPO_VETH_HOME
P=5002   # TCP listener in INET (any address: Internet host, LAN host, INET's veth address)
LP=7001  # TCP listener on loopback in HOME (dual stack)
DIAG=$TOPO_DIR/probe.err

if ! CG=$(cg_make guarded) || ! CG_CHILD=$(cg_make guarded/child); then
	nok "cg_make"
	exit 1
fi
GID=$(stat -c %i "$CG")

topo_listen tcp "$P" || { nok "TCP listener in INET"; exit 1; }
topo_spawn - "$TOPO_HOME" "$TOPO_VGPROBE" listen tcp "$LP" --v6 --ready-file "$TOPO_DIR/lo.ready" \
	>/dev/null 2>>"$DIAG"
_topo_wait_until 5 test -e "$TOPO_DIR/lo.ready" || { nok "loopback listener in HOME"; exit 1; }

# ---------------------------------------------------------------------------
# helpers

# probe WHO CG NS ARGS...: vgprobe as WHO in cgroup CG ("-": unguarded) and netns NS; its result line.
probe() {
	local who=$1 cg=$2 ns=$3
	shift 3
	echo "== $who $cg $ns: $*" >>"$DIAG"
	if [ "$who" = root ]; then
		run_in "$cg" "$ns" timeout 20 "$TOPO_VGPROBE" "$@" 2>>"$DIAG"
	else
		run_in_as "$who" "$cg" "$ns" timeout 20 "$TOPO_VGPROBE" "$@" 2>>"$DIAG"
	fi
}

status_json() { timeout 20 "$VG" status --json 2>/dev/null; }

# One guard field of status --json (python expression over g, the guard's dict).
guard_field() { # EXPR
	status_json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for g in d["guards"]:
    if g["cgroup_id"] == int(sys.argv[1]):
        v = eval(sys.argv[2])
        print(json.dumps(v) if not isinstance(v, str) else v)
        break
else:
    print("NOGUARD")' "$GID" "$1" 2>/dev/null
}

# "reason=count ..." of the guard (all reasons).
reasons_now() {
	local r
	[ -n "$GID" ] || return 0
	r=$(guard_field '" ".join("%s=%d" % kv for kv in sorted(g["denied"].items()))')
	[ "$r" = NOGUARD ] || echo "$r"
}

# reasons_delta BEFORE AFTER: the reasons that moved, "r=d ..." (events_* left out).
reasons_delta() {
	local -A b=()
	local kv k v d out=
	for kv in $1; do b[${kv%%=*}]=${kv#*=}; done
	for kv in $2; do
		k=${kv%%=*} v=${kv#*=}
		case $k in events_*) continue ;; esac
		d=$((v - ${b[$k]:-0}))
		[ "$d" = 0 ] || out="$out $k=$d"
	done
	echo "${out# }"
}

# "name=value" of every far-side counter.
far_now() {
	local s
	s="leak=$(leak_count) leak6=$(leak6_count) tunnel=$(tunnel_count) lan=$(lan_count)"
	s="$s vpnsrc=$(vpnsrc_count) stray=$(stray_data_count)"
	s="$s third=$(third_count)"
	echo "$s"
}

# spec_ok SPEC ACTUAL: every "name OP N" of SPEC holds in ACTUAL ("name=value ...",
# a missing name is 0), and every name of ACTUAL that SPEC does not name is 0.
spec_ok() {
	local spec=$1 actual=$2 item kv n op want got
	local -A a=() named=()
	for kv in $actual; do a[${kv%%=*}]=${kv#*=}; done
	case $spec in - | none) spec= ;; esac
	for item in $spec; do
		[[ $item =~ ^([a-z_0-9]+)(>=|<=|=)([0-9]+)$ ]] || return 1
		n=${BASH_REMATCH[1]} op=${BASH_REMATCH[2]} want=${BASH_REMATCH[3]}
		named[$n]=1
		got=${a[$n]:-0}
		case $op in
		'=') [ "$got" -eq "$want" ] || return 1 ;;
		'>=') [ "$got" -ge "$want" ] || return 1 ;;
		'<=') [ "$got" -le "$want" ] || return 1 ;;
		esac
	done
	for n in "${!a[@]}"; do
		[ -n "${named[$n]:-}" ] || [ "${a[$n]}" = 0 ] || return 1
	done
	return 0
}

# Wait for the counters a spec expects to rise, then let stragglers arrive.
far_wait() { # SPEC
	local item fn
	for item in $1; do
		[[ $item =~ ^([a-z0-9]+)(>=|=)([1-9][0-9]*)$ ]] || continue
		case ${BASH_REMATCH[1]} in
		leak) fn=leak_count ;; leak6) fn=leak6_count ;; tunnel) fn=tunnel_count ;;
		lan) fn=lan_count ;; vpnsrc) fn=vpnsrc_count ;; stray) fn=stray_data_count ;;
		third) fn=third_count ;; *) continue ;;
		esac
		topo_wait_count "$fn" "${BASH_REMATCH[3]}" 3
	done
	topo_settle 0.3
}

# One case: run it, judge the result line, the far side and the reasons.
run_case() { # NAME WHO CG NS RESULT_ERE FAR REASONS ARGS...
	local name=$1 who=$2 cg=$3 ns=$4 want=$5 far=$6 rs=$7 out r0 r1 rd fa bad=
	shift 7
	case_reset
	r0=$(reasons_now)
	# shellcheck disable=SC2068 # the arguments are words on purpose
	out=$(probe "$who" "$cg" "$ns" $@)
	far_wait "$far"
	fa=$(far_now)
	r1=$(reasons_now)
	rd=$(reasons_delta "$r0" "$r1")
	[[ $out =~ ^($want)$ ]] || bad="$bad result '$out' !~ /$want/;"
	spec_ok "$far" "$fa" || bad="$bad far side [$fa] != [$far];"
	if [ "$rs" != '*' ]; then
		spec_ok "$rs" "$rd" || bad="$bad reasons [${rd:-none}] != [$rs];"
	fi
	if [ -z "$bad" ]; then
		ok "[$who] $name: $out; far: ${far/#-/all 0}; denied: ${rd:-none}"
	else
		nok "[$who] $name ($* ):$bad"
	fi
}

# run_table CG NS ROW...: rows "name|who|result|far|reasons|vgprobe args";
# a "|" inside a field (an ERE alternative) is written "\|".
run_table() {
	local cg=$1 ns=$2 row name who want far rs args w
	shift 2
	for row in "$@"; do
		row=${row//\\|/$'\x01'}
		IFS='|' read -r name who want far rs args <<<"$row"
		want=${want//$'\x01'/|}
		case $who in both) who="root nobody" ;; esac
		for w in $who; do
			run_case "$name" "$w" "$cg" "$ns" "$want" "$far" "$rs" "$args"
		done
	done
}

attach_noagent() {
	timeout 60 "$VG" attach --cgroup "$CG" --tunnel "$WG" --netns "$TOPO_HOME_NETNS" \
		--allow "$TOPO_LAN_NET" --dns "$R" --no-agent 2>>"$TOPO_DIR/attach.err"
}

# Start the agent (attach without --no-agent) in the background; waits until it runs.
# A simple command after & is exec'd: $! is the agent itself.
agent_start() {
	AGENT_LOG=$TOPO_DIR/agent.log AGENT_ERR=$TOPO_DIR/agent.err
	: >"$AGENT_ERR"
	"$VG" attach --cgroup "$CG" --tunnel "$WG" --netns "$TOPO_HOME_NETNS" \
		--allow "$TOPO_LAN_NET" --dns "$R" --log "$AGENT_LOG" >>"$AGENT_ERR" 2>&1 9>&- &
	agent_pid=$!
	_topo_wait_until 10 eval 'grep -q "agent running (pid $agent_pid)" "$AGENT_ERR"' || return 1
	[ "$(head -n1 "$AGENT_PIDFILE" 2>/dev/null)" = "$agent_pid" ] &&
		[ "$(sed -n 2p "$AGENT_PIDFILE" 2>/dev/null)" = "$(realpath "$AGENT_LOG")" ]
}

# agent_stop SIG: signal our agent by PID, reap it; returns its exit status.
agent_stop() {
	local sig=$1 rc
	kill "-$sig" "$agent_pid" 2>/dev/null
	_topo_wait_until 5 _topo_not _topo_pid_alive "$agent_pid" || kill -KILL "$agent_pid" 2>/dev/null
	wait "$agent_pid" 2>/dev/null
	rc=$?
	[ "$sig" = KILL ] && killed_agent_pid=$agent_pid
	agent_pid=
	return $rc
}

log_mark() { wc -l <"$AGENT_LOG" 2>/dev/null || echo 0; }
log_has() { # EVENT IFINDEX("" any) FROMLINE: the agent log holds such a record for our guard
	"$PY" - "$AGENT_LOG" "$GID" "$1" "$2" "$3" <<'EOF'
import json, sys
path, gid, ev, ifx, start = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
try:
    lines = open(path).read().splitlines()[start:]
except OSError:
    sys.exit(1)
for line in lines:
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if r.get("event") != ev:
        continue
    if ev.startswith("tunnel_") and r.get("cgroup_id") != gid:
        continue
    if ifx and str(r.get("ifindex")) != ifx:
        continue
    sys.exit(0)
sys.exit(1)
EOF
}

# Floods from the guarded cgroup: unconnected UDP and TCP to the Internet host.
flood_start() { # SECONDS
	topo_spawn "$CG" "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$I" 9 --seconds "$1" --unconnected \
		>"$TOPO_DIR/flood.udp" 2>>"$DIAG"
	FL_UDP=$TOPO_LAST_PID
	topo_spawn "$CG" "$TOPO_HOME" "$TOPO_VGPROBE" flood tcp "$I" "$P" --seconds "$1" \
		>"$TOPO_DIR/flood.tcp" 2>>"$DIAG"
	FL_TCP=$TOPO_LAST_PID
}
flood_wait() { # SECONDS: reap both floods (they end by themselves)
	_topo_wait_until "$1" eval '! _topo_pid_alive "$FL_UDP" && ! _topo_pid_alive "$FL_TCP"'
	topo_stop "$FL_UDP"
	topo_stop "$FL_TCP"
	# The TCP flood's socket outlives vgprobe (unsent data, FIN_WAIT) and would
	# retransmit into later cases once the path opens again: destroy it.
	ip netns exec "$TOPO_HOME" ss -K -t -n dst "$I" dport = ":$P" >/dev/null 2>&1
	return 0
}

boottime_ns() { "$PY" -c 'import time; print(time.clock_gettime_ns(time.CLOCK_BOOTTIME))'; }
le_hex() { # BYTES VALUE: little-endian hex bytes for bpftool
	"$PY" -c 'import sys; n, v = int(sys.argv[1]), int(sys.argv[2]); print(" ".join("%02x" % b for b in v.to_bytes(n, "little")))' "$1" "$2"
}
set_state() { # STATE(0 open, 1 closed) DEADLINE_NS
	# shellcheck disable=SC2046 # hex bytes are separate words
	bpftool map update pinned "$PIN_ROOT/vg_state" key hex $(le_hex 8 "$GID") \
		value hex $(le_hex 4 "$1") 00 00 00 00 $(le_hex 8 "$2")
}

# Zero the far-side counters (topology's and, once made, the third netns's).
case_reset() {
	leak_reset
	ip netns exec "$TOPO_INET" nft reset counters table inet vgtt >/dev/null
}

_vgtt_counter() {
	ip netns exec "$TOPO_INET" nft list counter inet vgtt "$1" 2>/dev/null |
		awk '$1 == "packets" {print $2; f=1} END {if (!f) print -1}'
}
third_count() { _vgtt_counter third; }
icmpgw_count() { _vgtt_counter icmpgw; }
# stray_count without the ICMP errors HOME's kernel sends to INET's veth
# address (port unreachable for WireGuard packets to a client port that is
# gone, after a tunnel deletion): those carry nothing of the guarded cgroup.
stray_data_count() { echo $(($(stray_count) - $(icmpgw_count))); }

# ---------------------------------------------------------------------------
# Controls with no guard at all: the tc case's packet does leave, the third
# namespace does reach the Internet host.

echo "# case 7 control (no guard): a packet with the tunnel's source address leaves by the veth (t=$((SECONDS - started)) s)"
run_table - "$TOPO_HOME" \
	"UDP to LAN host with source $VPN|root|sent 3/3|vpnsrc=3 lan=3|*|sendto $L 9 --src $VPN --count 3"

echo "# case 5 setup: third netns, veth-joined to INET, not the tunnel's (t=$((SECONDS - started)) s)"
third_setup() {
	ip netns add "$THIRD_NS" || return 1
	third_up=1
	ip -n "$THIRD_NS" link set lo up &&
		ip netns exec "$THIRD_NS" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 &&
		ip -n "$THIRD_NS" link add "$THIRD_VETH" type veth peer name "$THIRD_VETH_INET" netns "$TOPO_INET" &&
		ip -n "$THIRD_NS" addr add 10.98.0.1/24 dev "$THIRD_VETH" &&
		ip -n "$TOPO_INET" addr add 10.98.0.2/24 dev "$THIRD_VETH_INET" &&
		ip -n "$THIRD_NS" link set "$THIRD_VETH" up &&
		ip -n "$TOPO_INET" link set "$THIRD_VETH_INET" up &&
		ip -n "$THIRD_NS" route add "$TOPO_INET_NET" via 10.98.0.2 dev "$THIRD_VETH"
}
expect_true "third netns $THIRD_NS with a route to $TOPO_INET_NET via INET" third_setup
run_table - "$THIRD_NS" \
	"unguarded UDP from the third netns arrives|root|sent 3/3|third=3|*|sendto $I 9 --count 3" \
	"unguarded TCP from the third netns arrives|root|connected|third>=1|*|connect tcp $I $P"

# ---------------------------------------------------------------------------
echo "# attach (tunnel mode, --no-agent)"
attach_noagent
rc=$?
[ "$rc" = 0 ] && attached=1
expect_eq "attach --no-agent exits 0" "$rc" 0
[ "$attached" = 1 ] || exit 1
expect_eq "status --json: guard mode/tunnel/state" "$(guard_field '[g["mode"], g["tunnel"], g["state"], g["tunnel_present"]]')" \
	"[\"tunnel\", \"$WG\", \"open\", true]"
expect_eq "status --json: tunnel_ifindex is the tunnel's" "$(guard_field 'g["tunnel_ifindex"]')" "$TOPO_WG_CLIENT_IFINDEX"
expect_eq "status --json: cgroup path" "$(guard_field 'g["cgroup"]')" "${CG#"$TOPO_CG2"}"
missing=
for f in egress sock_create setsockopt connect4 connect6 sendmsg4 sendmsg6; do
	[ -e "$PIN_ROOT/$GID/$f" ] || missing="$missing $f"
done
expect_eq "cgroup link pins under $PIN_ROOT/$GID" "${missing:-none}" none
veth_ifindex=$(ip -n "$TOPO_HOME" -o link show "$VETH" | awk -F: '{print $1; exit}')
expect_true "tc link pin on the veth (ifindex $veth_ifindex)" \
	eval "guard_field 'g[\"tc_ifindexes\"]' | grep -qw '$veth_ifindex'"

# ---------------------------------------------------------------------------
echo "# case 1: rule table (guarded cgroup in HOME) (t=$((SECONDS - started)) s)"
rules=(
	"UDP sendto Internet host via the tunnel|both|sent 3/3|tunnel=3|none|sendto $I 9 --count 3"
	"connected UDP to Internet host|both|connected|tunnel=1|none|connect udp $I 9"
	"TCP connect to Internet host|both|connected|tunnel>=1|none|connect tcp $I $P"
	"TCP flood 1 s to Internet host|both|ok=[1-9][0-9]* failed=0 .*|tunnel>=10|none|flood tcp $I $P --seconds 1"
	"loopback UDP sendto 127.0.0.1|both|sent 2/2|-|none|sendto 127.0.0.1 9 --count 2"
	"loopback UDP sendto ::1|both|sent 2/2|-|none|sendto ::1 9 --count 2"
	"loopback connected UDP 127.0.0.1|both|connected|-|none|connect udp 127.0.0.1 9"
	"loopback TCP connect 127.0.0.1 (HOME listener)|both|connected|-|none|connect tcp 127.0.0.1 $LP"
	"loopback TCP connect ::1 (HOME listener)|both|connected|-|none|connect tcp ::1 $LP"
	"DNS udp/53 sendto rogue resolver|both|sent 0/1 errno EPERM|-|dns=1|sendto $D 53"
	"DNS udp/53 connect rogue resolver|both|errno EPERM|-|dns=1|connect udp $D 53"
	"DNS tcp/53 rogue resolver|both|errno EPERM|-|dns=1|connect tcp $D 53"
	"DNS tcp/853 rogue resolver|both|errno EPERM|-|dns=1|connect tcp $D 853"
	"DNS udp/5353 connect rogue resolver|both|errno EPERM|-|dns=1|connect udp $D 5353"
	"DNS udp/5353 sendto rogue resolver|both|sent 0/1 errno EPERM|-|dns=1|sendto $D 5353"
	"DNS udp/5355 sendto rogue resolver|both|sent 0/1 errno EPERM|-|dns=1|sendto $D 5355"
	"DNS udp/53 to an allowed-subnet host (DNS rule comes first)|both|sent 0/1 errno EPERM|-|dns=1|sendto $L 53"
	"DNS udp/53 to the listed resolver via the tunnel|both|sent 1/1|tunnel=1|none|sendto $R 53"
	"DNS tcp/853 to the listed resolver via the tunnel (RST: reached)|both|refused|tunnel>=1|none|connect tcp $R 853"
	"DNS udp/5353 connected to the listed resolver|both|connected|tunnel=1|none|connect udp $R 5353"
	"allowed subnet: UDP sendto LAN host by the veth|both|sent 3/3|lan=3|none|sendto $L 9 --count 3"
	"allowed subnet: TCP connect LAN host by the veth|both|connected|lan>=1|none|connect tcp $L $P"
	"IPv6 sendto INET gateway $GW6|both|sent 0/1 errno EPERM|-|ipv6=1|sendto $GW6 9"
	"IPv6 connected UDP INET gateway $GW6|both|errno EPERM|-|ipv6=1|connect udp $GW6 9"
	"IPv6 sendto Internet host $I6|both|sent 0/1 errno EPERM|-|ipv6=1|sendto $I6 9"
	"IPv6 TCP connect Internet host $I6|both|errno EPERM|-|ipv6=1|connect tcp $I6 $P"
	"v4-mapped connected UDP ::ffff:$I via the tunnel|both|connected|tunnel=1|none|connect udp ::ffff:$I 9"
	"v4-mapped UDP sendto ::ffff:$I via the tunnel|both|sent 2/2|tunnel=2|none|sendto ::ffff:$I 9 --count 2"
	"v4-mapped TCP connect ::ffff:$I via the tunnel|both|connected|tunnel>=1|none|connect tcp ::ffff:$I $P"
	"v4-mapped DNS connected UDP ::ffff:$D port 53|both|errno EPERM|-|dns=1|connect udp ::ffff:$D 53"
	"v4-mapped DNS sendto ::ffff:$D port 53|both|sent 0/1 errno EPERM|-|dns=1|sendto ::ffff:$D 53"
	"UDP sendto $GW (the main table says: by the veth) steered into the tunnel|both|sent 1/1|tunnel=1|none|sendto $GW 9"
	"TCP connect $GW steered into the tunnel too|both|connected|tunnel>=1|none|connect tcp $GW $P"
)
run_table "$CG" "$TOPO_HOME" "${rules[@]}"

# ---------------------------------------------------------------------------
echo "# case 2: egress steering (t=$((SECONDS - started)) s)"
steering=(
	"SO_BINDTODEVICE veth|both|errno EPERM|-|sockopt=1|setsockopt bindtodevice $VETH"
	"SO_BINDTODEVICE veth on a TCP socket|both|errno EPERM|-|sockopt=1|setsockopt bindtodevice $VETH --tcp"
	"SO_BINDTODEVICE tunnel|both|ok|-|none|setsockopt bindtodevice $WG"
	"SO_BINDTOIFINDEX veth|both|errno EPERM|-|sockopt=1|setsockopt bindtoifindex $VETH"
	"SO_BINDTOIFINDEX tunnel|both|ok|-|none|setsockopt bindtoifindex $WG"
	"SO_MARK 5|root|errno EPERM|-|sockopt=1|setsockopt mark 5"
	"SO_MARK 5 (the hook runs before the capability check)|nobody|errno EPERM|-|sockopt=1|setsockopt mark 5"
	"SO_MARK 0 would undo the steering mark|root|errno EPERM|-|sockopt=1|setsockopt mark 0"
	"IP_UNICAST_IF veth|both|errno EPERM|-|sockopt=1|setsockopt unicast_if $VETH"
	"IP_UNICAST_IF tunnel|both|ok|-|none|setsockopt unicast_if $WG"
	"IPV6_UNICAST_IF veth|both|errno EPERM|-|sockopt=1|setsockopt unicast_if $VETH --v6"
	"connected UDP with SO_BINDTODEVICE veth first|both|errno EPERM|-|sockopt=1|connect udp $I 9 --bind-dev $VETH"
	"UDP sendto with IP_UNICAST_IF veth first|both|errno EPERM|-|sockopt=1|sendto $I 9 --unicast-if $VETH"
	"connected UDP already bound to the tunnel|both|connected|tunnel=1|none|connect udp $I 9 --bind-dev $WG"
	"connected UDP with IP_UNICAST_IF tunnel|both|connected|tunnel=1|none|connect udp $I 9 --unicast-if $WG"
	"sendmsg IP_PKTINFO choosing the veth to $I|both|errno EPERM|-|off_tunnel=1|sendmsg-pktinfo $I 9 $VETH"
	"sendmsg IP_PKTINFO on v4-mapped AF_INET6 choosing the veth|both|errno EPERM|-|off_tunnel=1|sendmsg-pktinfo $I 9 $VETH --v6"
	"sendmsg IP_PKTINFO choosing the tunnel|both|sent|tunnel=1|none|sendmsg-pktinfo $I 9 $WG"
	"raw socket|root|errno EPERM|-|raw_socket=1|raw"
	"raw socket with an ICMP echo to $I|root|errno EPERM|-|raw_socket=1|raw $I"
	"raw IPv6 socket|root|errno EPERM|-|raw_socket=1|raw --v6"
	"raw socket without CAP_NET_RAW (kernel refuses first)|nobody|errno EPERM|-|none|raw"
)
run_table "$CG" "$TOPO_HOME" "${steering[@]}"

# ---------------------------------------------------------------------------
echo "# case 7: tc layer - unguarded root process sends with the tunnel's address by the veth (t=$((SECONDS - started)) s)"
run_table - "$TOPO_HOME" \
	"UDP to LAN host with source $VPN (unguarded)|root|sent 3/3|-|tunnel_src=3|sendto $L 9 --src $VPN --count 3" \
	"TCP to LAN host with source $VPN (unguarded): SYN dropped|root|errno ETIMEDOUT|-|tunnel_src>=1|connect tcp $L $P --src $VPN --timeout-ms 1000" \
	"unguarded UDP to LAN host with the real address still passes|root|sent 2/2|lan=2|none|sendto $L 9 --count 2"

# ---------------------------------------------------------------------------
echo "# case 5: netns rule - guarded processes in a namespace that is not the tunnel's (t=$((SECONDS - started)) s)"
run_table "$CG" "$THIRD_NS" \
	"UDP sendto Internet host from the third netns|both|sent 0/1 errno EPERM|-|netns=1|sendto $I 9" \
	"connected UDP to Internet host from the third netns|both|errno EPERM|-|netns=1|connect udp $I 9" \
	"TCP connect Internet host from the third netns|both|errno EPERM|-|netns=1|connect tcp $I $P" \
	"TCP flood from the third netns|root|ok=0 failed=[1-9][0-9]* .*first_errno=EPERM last_errno=EPERM|-|netns>=1|flood tcp $I $P --seconds 1" \
	"loopback in the third netns still allowed|both|sent 1/1|-|none|sendto 127.0.0.1 9"

# ---------------------------------------------------------------------------
echo "# case 8: nested cgroup below the guarded one (t=$((SECONDS - started)) s)"
run_table "$CG_CHILD" "$TOPO_HOME" \
	"child cgroup: rogue DNS|both|sent 0/1 errno EPERM|-|dns=1|sendto $D 53" \
	"child cgroup: IPv6|both|errno EPERM|-|ipv6=1|connect udp $I6 9" \
	"child cgroup: SO_BINDTODEVICE veth|both|errno EPERM|-|sockopt=1|setsockopt bindtodevice $VETH" \
	"child cgroup: UDP sendto Internet host via the tunnel|both|sent 2/2|tunnel=2|none|sendto $I 9 --count 2" \
	"child cgroup: TCP connect Internet host via the tunnel|both|connected|tunnel>=1|none|connect tcp $I $P"

# ---------------------------------------------------------------------------
echo "# case 6: CLOSED and lease (t=$((SECONDS - started)) s)"
closed_rows=(
	"UDP sendto Internet host|both|sent 0/1 errno EPERM|-|closed=1|sendto $I 9"
	"TCP connect Internet host|both|errno EPERM|-|closed=1|connect tcp $I $P"
	"listed resolver|both|sent 0/1 errno EPERM|-|closed=1|sendto $R 53"
	"LAN still allowed|both|sent 2/2|lan=2|none|sendto $L 9 --count 2"
	"loopback UDP still allowed|both|sent 1/1|-|none|sendto 127.0.0.1 9"
	"loopback TCP still allowed|both|connected|-|none|connect tcp 127.0.0.1 $LP"
)
expect_true "write vg_state CLOSED" set_state 1 0
expect_eq "status: state closed" "$(guard_field 'g["state"]')" closed
for row in "${closed_rows[@]}"; do run_table "$CG" "$TOPO_HOME" "CLOSED: $row"; done

# An established connection stops too: the egress program judges every packet.
expect_true "write vg_state OPEN again" set_state 0 0
case_reset
flood_start 3
sleep 1
expect_true "write vg_state CLOSED under a TCP/UDP flood" set_state 1 0
topo_settle 0.4
t_closed=$(tunnel_count)
sleep 1
topo_settle 0.3
t_after=$(tunnel_count)
flood_wait 5
note "flood: udp $(cat "$TOPO_DIR/flood.udp") / tcp $(cat "$TOPO_DIR/flood.tcp")"
expect_gt "flood went through the tunnel while OPEN" "$t_closed" 0
expect_eq "nothing more through the tunnel once CLOSED (existing TCP connection included)" "$t_after" "$t_closed"
expect_eq "leak_count" "$(leak_count)" 0

# How late CLOSED reaches sockets that are sending: the programs read the
# guard's state again on each CPU at least every 1 ms plus a tick of the
# coarse clock (VG_FACTS_TTL_NS, VG_TICK_MAX_NS: 11 ms at most). One UDP
# flood per kind of socket, a datagram every 100 us; the time from just
# before the map write to each flood's first EPERM.
expect_true "write vg_state OPEN again (reaction time)" set_state 0 0
case_reset
react_pids=()
for kind in connected unconnected; do
	topo_spawn "$CG" "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$I" 9 --seconds 3 --interval-us 100 \
		$([ "$kind" = unconnected ] && echo --unconnected) >"$TOPO_DIR/react.$kind" 2>"$TOPO_DIR/react.$kind.err"
	react_pids+=("$TOPO_LAST_PID")
done
sleep 1
written_at=$("$PY" "$repo/tests/tools/state_write.py" "$PIN_ROOT/vg_state" "$GID" 1 0)
expect_match "state_write.py wrote CLOSED" "$written_at" '^[0-9]+$'
for pid in "${react_pids[@]}"; do
	_topo_wait_until 5 _topo_not _topo_pid_alive "$pid"
	topo_stop "$pid"
done
for kind in connected unconnected; do
	failed_at=$(sed -n 's/^vgprobe: first failure at boottime \([0-9]*\) ns$/\1/p' "$TOPO_DIR/react.$kind.err")
	react_us=$(( (${failed_at:-0} - ${written_at:-0}) / 1000 ))
	note "$kind UDP flood: first EPERM ${react_us} us after the write ($(cat "$TOPO_DIR/react.$kind"))"
	expect_true "$kind UDP flood sent before CLOSED" grep -q 'ok=[1-9]' "$TOPO_DIR/react.$kind"
	expect_true "$kind UDP flood refused within 11 ms of CLOSED (${react_us} us)" \
		test -n "$failed_at" -a "$react_us" -ge 0 -a "$react_us" -le 11000
done
expect_eq "leak_count (reaction time)" "$(leak_count)" 0

now=$(boottime_ns)
expect_true "write vg_state OPEN, lease deadline 1 s in the past" set_state 0 $((now - 1000000000))
expect_eq "status: expired lease shows closed" "$(guard_field '[g["state"], g["lease_left_s"]]')" '["closed", 0.0]'
run_table "$CG" "$TOPO_HOME" \
	"lease expired: UDP sendto Internet host|both|sent 0/1 errno EPERM|-|closed=1|sendto $I 9" \
	"lease expired: TCP connect Internet host|both|errno EPERM|-|closed=1|connect tcp $I $P" \
	"lease expired: LAN still allowed|both|sent 1/1|lan=1|none|sendto $L 9"
now=$(boottime_ns)
expect_true "write vg_state OPEN, lease deadline now + 60 s" set_state 0 $((now + 60000000000))
expect_match "status: open, about 60 s left" "$(guard_field '[g["state"], round(g["lease_left_s"])]')" '^\["open", (5[0-9]|60)\]$'
run_table "$CG" "$TOPO_HOME" \
	"lease running: UDP sendto Internet host|both|sent 2/2|tunnel=2|none|sendto $I 9 --count 2" \
	"lease running: TCP connect Internet host|both|connected|tunnel>=1|none|connect tcp $I $P"
expect_true "write vg_state OPEN, no lease" set_state 0 0

# ---------------------------------------------------------------------------
# Case 3: the tunnel vanishes under live traffic.
#   tunnel_cycle LABEL HOW AGENT(0|1)
tunnel_cycle() {
	local label=$1 how=$2 with_agent=$3 t_before t_mid t_end old_ifx new_ifx r0 rd mark=0
	[ "$with_agent" = 1 ] && mark=$(log_mark)
	case_reset
	r0=$(reasons_now)
	flood_start 6
	sleep 1
	t_before=$(tunnel_count)
	expect_ge "$label: the floods go through the tunnel before" "$t_before" 50
	old_ifx=$TOPO_WG_CLIENT_IFINDEX
	expect_true "$label: topo_tunnel_down $how" topo_tunnel_down "$how"
	sleep 1.2
	topo_settle 0.3
	t_mid=$(tunnel_count)
	expect_eq "$label: leak_count >= 1.5 s after the tunnel vanished, floods running" "$(leak_count)" 0
	if [ "$with_agent" = 1 ]; then
		expect_true "$label: agent logged tunnel_down" _topo_wait_until 3 log_has tunnel_down 0 "$mark"
		expect_eq "$label: status: tunnel absent" "$(guard_field '[g["tunnel_present"], g["tunnel_ifindex"]]')" '[false, 0]'
		expect_true "$label: topo_tunnel_up while the floods run" topo_tunnel_up
		new_ifx=$TOPO_WG_CLIENT_IFINDEX
		expect_true "$label: new ifindex ($old_ifx -> $new_ifx)" test "$new_ifx" != "$old_ifx"
		expect_true "$label: status shows the new tunnel_ifindex" \
			_topo_wait_until 5 eval '[ "$(guard_field "g[\"tunnel_ifindex\"]")" = "$new_ifx" ]'
		expect_true "$label: agent logged tunnel_up with ifindex $new_ifx" _topo_wait_until 3 log_has tunnel_up "$new_ifx" "$mark"
	fi
	flood_wait 8
	topo_settle 0.5
	t_end=$(tunnel_count)
	rd=$(reasons_delta "$r0" "$(reasons_now)")
	note "$label: flood udp: $(cat "$TOPO_DIR/flood.udp")"
	note "$label: flood tcp: $(cat "$TOPO_DIR/flood.tcp")"
	note "$label: tunnel packets before deletion $t_before, at +1.5 s $t_mid, at the end $t_end; denied: $rd"
	expect_eq "$label: leak_count over the whole flood" "$(leak_count)" 0
	expect_eq "$label: stray_count (less ICMP errors: $(icmpgw_count)) over the whole flood" "$(stray_data_count)" 0
	if [ "$with_agent" = 1 ]; then
		# The kernel drops the device from vg_tundev, the agent zeroes the
		# tunnel's ifindex: no_tunnel; off_tunnel only for packets that were
		# routed before the device went.
		expect_true "$label: sends refused no_tunnel (and off_tunnel), nothing else [$rd]" \
			spec_ok "no_tunnel>=1 off_tunnel>=0" "$rd"
	else
		# Nobody updated vg_tunnels, but the kernel dropped the device from vg_tundev.
		expect_true "$label: sends refused no_tunnel without an agent, nothing else [$rd]" \
			spec_ok "no_tunnel>=1" "$rd"
	fi
	if [ "$with_agent" = 1 ]; then
		expect_gt "$label: the running UDP flood flows through the new tunnel (no restart)" "$t_end" "$t_mid"
		run_table "$CG" "$TOPO_HOME" \
			"$label: new UDP after tunnel_up via the tunnel|both|sent 3/3|tunnel=3|none|sendto $I 9 --count 3" \
			"$label: new TCP after tunnel_up via the tunnel|root|connected|tunnel>=1|none|connect tcp $I $P"
		expect_true "$label: agent logged blocked events" log_has blocked "" "$mark"
	else
		expect_true "$label: traffic just stopped (tunnel_count flat after deletion)" \
			test "$t_end" -le "$((t_mid + 0))"
	fi
}

echo "# case 3a: tunnel deleted under live traffic, no agent (t=$((SECONDS - started)) s)"
tunnel_cycle "no agent, ip link del" del 0
expect_true "no agent: topo_tunnel_up" topo_tunnel_up
# Nobody told the programs the new ifindex: still closed, still nothing leaks.
run_table "$CG" "$TOPO_HOME" \
	"no agent, recreated tunnel unknown to the guard: UDP sendto|root|sent 0/1 errno EPERM|-|no_tunnel=1|sendto $I 9"
attach_noagent
expect_eq "re-attach --no-agent (same guard) picks up the new tunnel" "$?" 0
expect_eq "status: new tunnel_ifindex after re-attach" "$(guard_field 'g["tunnel_ifindex"]')" "$TOPO_WG_CLIENT_IFINDEX"
run_table "$CG" "$TOPO_HOME" \
	"after re-attach: UDP sendto via the tunnel|root|sent 2/2|tunnel=2|none|sendto $I 9 --count 2"

echo "# case 3b: tunnel deleted under live traffic, agent running (t=$((SECONDS - started)) s)"
if agent_start; then
	ok "agent up (pid $agent_pid, log $AGENT_LOG)"
	# An interface that appears later in the tunnel's namespace gets the tc layer from the agent.
	newif=vg${TOPO_SUFFIX}na
	ip -n "$TOPO_HOME" link add "$newif" type veth peer name "vg${TOPO_SUFFIX}nb"
	newidx=$(ip netns exec "$TOPO_HOME" cat "/sys/class/net/$newif/ifindex" 2>/dev/null)
	expect_true "agent attached tc to new interface $newif (ifindex $newidx)" \
		_topo_wait_until 5 eval 'guard_field "g[\"tc_ifindexes\"]" | grep -qw "$newidx"'
	ip -n "$TOPO_HOME" link del "$newif"
	expect_true "agent dropped the tc pin of the removed interface" \
		_topo_wait_until 5 eval '! guard_field "g[\"tc_ifindexes\"]" | grep -qw "$newidx"'
	tunnel_cycle "agent, ip link del" del 1
	tunnel_cycle "agent, SIGKILL wireguard-go" kill 1
	agent_stop TERM
	expect_eq "agent exits 0 on SIGTERM" "$?" 0
	expect_true "agent removed its pidfile" test ! -e "$AGENT_PIDFILE"
	run_table "$CG" "$TOPO_HOME" \
		"agent gone (SIGTERM): enforcement stays|root|sent 0/1 errno EPERM|-|dns=1|sendto $D 53"
else
	nok "agent did not come up: $(tr '\n' ' ' <"$TOPO_DIR/agent.err")"
	[ -n "$agent_pid" ] && agent_stop TERM
fi

# ---------------------------------------------------------------------------
echo "# case 4: agent killed with SIGKILL (t=$((SECONDS - started)) s)"
if agent_start; then
	ok "agent up (pid $agent_pid)"
	kpid=$agent_pid
	agent_stop KILL
	expect_true "agent $kpid is gone" _topo_not _topo_pid_alive "$kpid"
	missing=
	for f in egress sock_create setsockopt connect4 connect6 sendmsg4 sendmsg6; do
		[ -e "$PIN_ROOT/$GID/$f" ] || missing="$missing $f"
	done
	for f in vg_policy vg_state vg_guards vg_tunnels vg_counters vg_ratelimit vg_events vg_tundev; do
		[ -e "$PIN_ROOT/$f" ] || missing="$missing $f"
	done
	expect_eq "every pin still there after SIGKILL" "${missing:-none}" none
	expect_true "tc program still on the veth" eval "guard_field 'g[\"tc_ifindexes\"]' | grep -qw '$veth_ifindex'"
	case_reset
	flood_start 4
	sleep 1
	t_before=$(tunnel_count)
	expect_true "agent dead: topo_tunnel_down del" topo_tunnel_down del
	flood_wait 6
	topo_settle 0.5
	note "agent SIGKILLed: flood udp: $(cat "$TOPO_DIR/flood.udp"); tcp: $(cat "$TOPO_DIR/flood.tcp"); tunnel packets before deletion $t_before"
	expect_eq "agent dead: leak_count over the flood (tunnel deleted after 1 s of 4)" "$(leak_count)" 0
	expect_eq "agent dead: stray_count (less ICMP errors: $(icmpgw_count)) over the flood" "$(stray_data_count)" 0
	expect_eq "agent dead: status shows the tunnel absent (vg_tundev is the kernel's word)" \
		"$(guard_field 'g["tunnel_present"]')" false
	# Nobody updated vg_tunnels, but the kernel dropped the device from
	# vg_tundev: every hook denies no_tunnel.
	run_table "$CG" "$TOPO_HOME" \
		"agent dead, tunnel gone: UDP sendto|both|sent 0/1 errno EPERM|-|no_tunnel=1|sendto $I 9" \
		"agent dead, tunnel gone: connected UDP|both|errno EPERM|-|no_tunnel=1|connect udp $I 9" \
		"agent dead, tunnel gone: TCP connect|both|errno EPERM|-|no_tunnel=1|connect tcp $I $P" \
		"agent dead, tunnel gone: rogue DNS|root|sent 0/1 errno EPERM|-|dns=1|sendto $D 53" \
		"agent dead, tunnel gone: LAN still allowed|root|sent 1/1|lan=1|none|sendto $L 9"
	expect_true "agent dead: topo_tunnel_up" topo_tunnel_up
	drop_stale_pidfile
	attach_noagent
	expect_eq "re-attach --no-agent after the agent died" "$?" 0
	run_table "$CG" "$TOPO_HOME" \
		"re-attached: UDP via the new tunnel|root|sent 2/2|tunnel=2|none|sendto $I 9 --count 2"
else
	nok "agent did not come up: $(tr '\n' ' ' <"$TOPO_DIR/agent.err")"
	[ -n "$agent_pid" ] && agent_stop TERM
fi

# ---------------------------------------------------------------------------
echo "# cleanup"
timeout 30 "$VG" detach --cgroup "$CG" 2>>"$TOPO_DIR/attach.err"
expect_eq "detach --cgroup exits 0" "$?" 0
attached=0
expect_true "guard pins gone" test ! -e "$PIN_ROOT/$GID"
expect_eq "status: guard gone" "$(guard_field 'g["cgroup_id"]')" NOGUARD
wgc=$TOPO_WG_CLIENT_PID wgs=$TOPO_WG_SERVER_PID
cleanup
finished=1
expect_eq "no netns of ours left" "$(ip netns list | grep -c "^vg$TOPO_SUFFIX")" 0
expect_true "no wireguard-go of ours left" _topo_not eval "_topo_pid_alive '$wgc' || _topo_pid_alive '$wgs'"
expect_true "no cgroup left" test ! -e "$TOPO_CG_ROOT"
expect_true "no agent pidfile of ours left" eval "[ ! -e $AGENT_PIDFILE ] || [ \"\$(head -n1 $AGENT_PIDFILE)\" != '$killed_agent_pid' ]"
exit 0
