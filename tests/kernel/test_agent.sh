#!/usr/bin/env bash
# test_agent.sh - the real-kernel proof of the health agent (issue 3): probes
# through the tunnel, real-IP and unexpected-IP closing, probe failures,
# leases after SIGKILL, config files and SIGHUP reloads, webhooks, log reopen,
# sd_notify, netlink tunnel liveness, and the agent's idle footprint.
#
# World: tests/lib/topology.sh (netns HOME with the WireGuard client, netns
# INET with the server and the "Internet" 198.51.100.1).  The IP echo
# (tests/tools/echo_server.py) runs in INET on 198.51.100.1: HTTP on
# $ECHO_PORT, HTTPS on $TLS_PORT with a CA made here by openssl.  The agent
# runs in the root namespace and probes from inside HOME, bound to the tunnel.
# "The tunnel exits by the real address" is made real with an SNAT rule in
# INET (input hook): the echo then sees HOME's real IP 10.99.0.1.  Webhooks go
# to tests/tools/webhook_sink.py on 127.0.0.1 (root netns), sd_notify to
# tests/tools/notify_sink.py, and tests/tools/map_watch.py times the tunnel
# map against the `ip` commands.
#
# Traffic is judged on the far side: counters of this file in INET (gtun:
# guarded UDP to port $GPORT that came out of the tunnel; gleak: the same
# arriving by the veth, i.e. with the real IP; echo_tun/echo_veth: probe
# connections by wire) plus the topology's leak counter; `status --json` only
# says why.
#
# Cases: 1 HTTP probe (closed until the first pass, then open; guarded traffic
# through the tunnel), 2 HTTPS (--probe-ca; without it: certificate error, stays
# closed), 3 real IP / unexpected IP (webhook to a dead port meanwhile), gluetun
# status, 4 probe failures (refused, timed out) and recovery, 5 SIGKILL and the
# lease, 6 config file and SIGHUP (good, bad, removed guard, kept CLOSED guard;
# bad file from scratch), 7 webhook (leak, closing, reopening; a receiver that
# hangs does not delay closing; the [agent] webhook after a reload), 8 log
# reopen, 9 sd_notify, 10 netlink tunnel liveness (down/up/del/recreate,
# latencies), 11 footprint (idle CPU, context switches, RSS; RSS over many probe
# rounds), 12 a second attach beside the agent (refused with probe options or
# --config; plain: followed, no lease; plain on the agent's closed guard),
# --no-agent --lease.
#
# Needs root, bpftool, python3, openssl, nft, ip, wireguard-go, wg, setpriv.  A
# case that cannot run FAILS.  Takes /run/vpnguard-kernel-tests.lock.  Prints
# one line per check, the measured figures as "#" notes (and again together at
# the end), then "N passed, M failed".
# shellcheck disable=SC2016,SC2317
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TOOLS=$repo/tests/tools
VG=$repo/build/vpnguard-bpf
# shellcheck source=../lib/topology.sh
. "$here/../lib/topology.sh"
# shellcheck source=cli_lib.sh
. "$here/cli_lib.sh"

# ---------------------------------------------------------------------------
# state for the cleanup

CG='' CG2='' GID='' GID2='' agent_pid='' killed_pids='' attached=0
ECHO_PID='' FLOOD_PID=''
finished=0
started=$SECONDS
FIGURES=()

fig() { # one measured figure: printed now and again at the end
	note "$*"
	FIGURES+=("$*")
}

# A SIGKILLed agent leaves its pidfile behind; remove it only if it is one of ours.
drop_stale_pidfile() {
	local p k
	[ -e "$AGENT_PIDFILE" ] || return 0
	p=$(head -n1 "$AGENT_PIDFILE" 2>/dev/null)
	for k in $killed_pids; do
		[ "$p" = "$k" ] && ! _topo_pid_alive "$p" && rm -f "$AGENT_PIDFILE"
	done
	return 0
}

cleanup() {
	local f id
	[ -n "$agent_pid" ] && agent_stop TERM
	drop_stale_pidfile
	if [ "$attached" = 1 ]; then
		for f in "$CG" "$CG2"; do
			[ -n "$f" ] && [ -d "$f" ] && timeout 30 "$VG" detach --cgroup "$f" >/dev/null 2>&1
		done
	fi
	# Never leave our pins behind, even if detach could not run (only ours: by guard id).
	for id in $GID $GID2; do
		if [ -d "$PIN_ROOT/$id" ]; then
			echo "# removing leftover pins of guard $id by hand" >&2
			for f in "$PIN_ROOT/$id"/*; do rm -f "$f"; done
			rmdir "$PIN_ROOT/$id" 2>/dev/null
		fi
	done
	attached=0
	topo_down
}

# shellcheck disable=SC2317 # called from the EXIT trap
on_exit() {
	local f
	if [ "$finished" != 1 ]; then
		cleanup
		[ "$fail" != 0 ] || nok "stopped before the end"
	fi
	if [ "${#FIGURES[@]}" -gt 0 ]; then
		echo "# figures:"
		for f in "${FIGURES[@]}"; do echo "#   $f"; done
	fi
	echo "# time: $((SECONDS - started)) s (plus ${lock_wait:-0} s waiting for the lock)"
	result_line
}

# ---------------------------------------------------------------------------
# preflight

require_root
take_kernel_test_lock
started=$SECONDS
for t in bpftool python3 openssl nft ip ss wg wireguard-go setpriv timeout realpath getconf; do
	command -v "$t" >/dev/null || { nok "missing tool: $t"; exit 1; }
done
PY=$(python3 -c 'import sys; print(sys.executable)') || { nok "python3 does not run"; exit 1; }
echo "# build"
build_log=$(mktemp /tmp/vgtest-build.XXXXXX)
if make -s -C "$repo" >"$build_log" 2>&1; then ok "make builds vpnguard-bpf and vgprobe"; else nok "make: $(tail -n5 "$build_log")"; fi
rm -f "$build_log"
if [ ! -x "$VG" ] || [ ! -x "$TOPO_VGPROBE" ]; then
	nok "build/vpnguard-bpf or build/vgprobe missing"
	exit 1
fi
for t in echo_server.py webhook_sink.py notify_sink.py map_watch.py; do
	[ -r "$TOOLS/$t" ] || { nok "missing tests/tools/$t"; exit 1; }
done
start_agent_world

I=$TOPO_INET_HOST WG=$TOPO_WG_CLIENT HNS=$TOPO_HOME_NETNS
ECHO_PORT=8080 TLS_PORT=8443 GPORT=5009
URL=http://$I:$ECHO_PORT
DIAG=$TOPO_DIR/diag.log
REAL=$TOPO_REAL_IP VPN=$TOPO_VPN_IP
HZ=$(getconf CLK_TCK)

if ! CG=$(cg_make guarded) || ! CG2=$(cg_make second); then
	nok "cg_make"
	exit 1
fi
GID=$(stat -c %i "$CG") GID2=$(stat -c %i "$CG2")

# Counters of this file in INET, beside the topology's.
if ! ip netns exec "$TOPO_INET" nft -f - <<EOF
table inet vgta {
	counter gtun { }
	counter gleak { }
	counter echo_tun { }
	counter echo_veth { }
	chain pre {
		type filter hook prerouting priority -320; policy accept;
		iifname "$TOPO_WG_SERVER" udp dport $GPORT counter name gtun
		iifname "$TOPO_VETH_INET" udp dport $GPORT counter name gleak
		iifname "$TOPO_WG_SERVER" tcp dport { $ECHO_PORT, $TLS_PORT } tcp flags & (syn | ack) == syn counter name echo_tun
		iifname "$TOPO_VETH_INET" tcp dport { $ECHO_PORT, $TLS_PORT } counter name echo_veth
	}
}
EOF
then
	nok "nft counters of this test in INET"
	exit 1
fi

# ---------------------------------------------------------------------------
# helpers

now() { echo "$EPOCHREALTIME"; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%d", (b - a) * 1000}'; }

_vgta() {
	ip netns exec "$TOPO_INET" nft list counter inet vgta "$1" 2>/dev/null |
		awk '$1 == "packets" {print $2; f=1} END {if (!f) print -1}'
}
gtun() { _vgta gtun; }
gleak() { _vgta gleak; }
echo_tun() { _vgta echo_tun; }
echo_veth() { _vgta echo_veth; }

# gsend CG N: N guarded UDP datagrams to the Internet host; vgprobe's result line.
gsend() {
	run_in "$1" "$TOPO_HOME" timeout 10 "$TOPO_VGPROBE" sendto "$I" "$GPORT" --count "$2" 2>>"$DIAG"
}

# expect_gsend NAME CG N WANT_ARRIVED REASON: send N, WANT_ARRIVED of them must come out of the
# tunnel (none by the veth), and the guard's REASON counter must grow by N - WANT_ARRIVED.
expect_gsend() {
	local name=$1 cg=$2 n=$3 want=$4 reason=${5:-closed} id g0 g1 l0 l1 c0 c1 out
	id=$(stat -c %i "$cg")
	g0=$(gtun) l0=$(gleak) c0=$(gq "$id" "g[\"denied\"][\"$reason\"] if g else -1")
	out=$(gsend "$cg" "$n")
	[ "$want" -gt 0 ] && topo_wait_count gtun $((g0 + want)) 3
	topo_settle 0.3
	g1=$(gtun) l1=$(gleak) c1=$(gq "$id" "g[\"denied\"][\"$reason\"] if g else -1")
	if [ $((g1 - g0)) = "$want" ] && [ $((l1 - l0)) = 0 ] && [ $((c1 - c0)) = $((n - want)) ]; then
		ok "$name: '$out'; far side: $((g1 - g0))/$n through the tunnel, 0 by the veth; denied.$reason +$((c1 - c0))"
	else
		nok "$name: '$out'; far side: $((g1 - g0))/$n through the tunnel (want $want), $((l1 - l0)) by the veth (want 0); denied.$reason +$((c1 - c0)) (want +$((n - want)))"
	fi
}

flood_start() { # CG SECONDS: unconnected UDP to the Internet host, one datagram per 5 ms
	topo_spawn "$1" "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$I" "$GPORT" --seconds "$2" \
		--unconnected --interval-us 5000 >"$TOPO_DIR/flood.out" 2>>"$DIAG"
	FLOOD_PID=$TOPO_LAST_PID
}
flood_stop() {
	[ -n "$FLOOD_PID" ] && topo_stop "$FLOOD_PID"
	FLOOD_PID=
}

echo_start() { # the HTTP echo on $I:$ECHO_PORT in INET
	_topo_pid_alive "$ECHO_PID" && return 0
	rm -f "$TOPO_DIR/echo.ready"
	topo_spawn - "$TOPO_INET" "$PY" "$TOOLS/echo_server.py" --addr "$I" --port "$ECHO_PORT" \
		--ready-file "$TOPO_DIR/echo.ready" --log "$TOPO_DIR/echo.log" \
		--status-file "$TOPO_DIR/gluetun.status" 2>>"$DIAG"
	ECHO_PID=$TOPO_LAST_PID
	_topo_wait_until 5 test -e "$TOPO_DIR/echo.ready"
}
echo_stop() {
	[ -n "$ECHO_PID" ] && topo_stop "$ECHO_PID"
	ECHO_PID=
}

# The tunnel exits by the real address: INET rewrites the probes' source to HOME's real IP.
real_ip_on() {
	ip netns exec "$TOPO_INET" nft -f - <<EOF
table ip vgtanat {
	chain innat {
		type nat hook input priority 100; policy accept;
		ip saddr $VPN tcp dport { $ECHO_PORT, $TLS_PORT } snat to $REAL
	}
}
EOF
}
real_ip_off() { ip netns exec "$TOPO_INET" nft delete table ip vgtanat 2>/dev/null; }
# The echo's port swallows the tunnel's packets (probes time out).
echo_drop_on() {
	ip netns exec "$TOPO_INET" nft -f - <<EOF
table inet vgtadrop {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		iifname "$TOPO_WG_SERVER" tcp dport $ECHO_PORT drop
	}
}
EOF
}
echo_drop_off() { ip netns exec "$TOPO_INET" nft delete table inet vgtadrop 2>/dev/null; }

# agent_spawn TAG ARGS...: `vpnguard-bpf ARGS` in the background (the agent), stderr and
# stdout in $TOPO_DIR/TAG.err; waits until it runs.  AGENT_ENV: extra VAR=value words.
# A simple command after & is exec'd (env execs too): $! is the agent itself.
agent_spawn() {
	local tag=$1
	shift
	AGENT_ERR=$TOPO_DIR/$tag.err
	: >"$AGENT_ERR"
	# shellcheck disable=SC2086 # AGENT_ENV is words on purpose
	env ${AGENT_ENV:-} "$VG" "$@" >>"$AGENT_ERR" 2>&1 9>&- &
	agent_pid=$!
	attached=1
	if ! _topo_wait_until 10 eval 'grep -q "agent running (pid $agent_pid)" "$AGENT_ERR"'; then
		nok "$tag: the agent did not start: $(tr '\n' ' ' <"$AGENT_ERR")"
		agent_stop TERM
		return 1
	fi
}
# agent_start TAG ARGS...: attach ARGS with the log in $TOPO_DIR/TAG.log (AGENT_LOG).
agent_start() {
	local tag=$1
	shift
	AGENT_LOG=$TOPO_DIR/$tag.log
	agent_spawn "$tag" attach "$@" --log "$AGENT_LOG"
}
GUARD=(--cgroup "$CG" --tunnel "$WG" --netns "$HNS")

# agent_stop SIG: signal our agent by PID, reap it; returns its exit status.
agent_stop() {
	local sig=$1 rc
	[ -n "$agent_pid" ] || return 0
	kill "-$sig" "$agent_pid" 2>/dev/null
	if ! _topo_wait_until 8 _topo_not _topo_pid_alive "$agent_pid"; then
		nok "agent $agent_pid still runs 8 s after SIG$sig: SIGKILL"
		kill -KILL "$agent_pid" 2>/dev/null
		sig=KILL
	fi
	wait "$agent_pid" 2>/dev/null
	rc=$?
	[ "$sig" = KILL ] && killed_pids="$killed_pids $agent_pid"
	agent_pid=
	return $rc
}

log_mark() { wc -l <"$AGENT_LOG" 2>/dev/null || echo 0; }

# recq LOG FROM EXPR [OUT]: over the records after line FROM of LOG for which EXPR holds
# (python; r = the record, t = its time in unix seconds): prints OUT (a python expression,
# one line per match), or the number of matches when OUT is not given.
recq() {
	"$PY" - "$@" <<'EOF'
import datetime, json, sys
path, start, expr = sys.argv[1], int(sys.argv[2]), sys.argv[3]
out = sys.argv[4] if len(sys.argv) > 4 else None
def ts(s):
    try:
        return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return 0.0
try:
    lines = open(path).read().splitlines()[start:]
except OSError:
    lines = []
n = 0
for line in lines:
    try:
        r = json.loads(line)
    except ValueError:
        continue
    if not isinstance(r, dict):
        continue
    t = ts(r.get("time"))
    try:
        hit = eval(expr)
    except Exception:
        hit = False
    if hit:
        n += 1
        if out:
            v = eval(out)
            try:
                print(v if isinstance(v, str) else json.dumps(v), flush=True)
            except BrokenPipeError:  # rec_first took the first line
                sys.stdout = None
                sys.exit(0)
if not out:
    print(n)
EOF
}
rec_has() { [ "$(recq "$@")" -ge 1 ]; }
# rec_wait SECS LOG FROM EXPR: wait for such a record.
rec_wait() {
	local secs=$1
	shift
	_topo_wait_until "$secs" rec_has "$@"
}
# rec_first LOG FROM EXPR OUT: OUT of the first such record.
rec_first() { recq "$@" | head -n1; }

R_OPEN='r.get("event") == "state" and r.get("state") == "open"'
R_CLOSED='r.get("event") == "state" and r.get("state") == "closed"'

gstate() { gq "${1:-$GID}" 'g["state"] if g else "none"'; }
wait_gstate() { # SECS STATE [ID]
	_topo_wait_until "$1" eval '[ "$(gstate '"${3:-$GID}"')" = '"$2"' ]'
}

# The status of every guard without what moves by itself (lease left, counters).
status_policy() {
	status_json | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
for g in sorted(d["guards"], key=lambda g: g["cgroup_id"]):
    g.pop("lease_left_s", None)
    g.pop("denied", None)
    print(json.dumps(g, sort_keys=True))'
}

# ---------------------------------------------------------------------------
echo "# attach the guard once (--no-agent), so every case starts from a guarded cgroup (t=$((SECONDS - started)) s)"
timeout 30 "$VG" attach "${GUARD[@]}" --no-agent 2>>"$DIAG"
rc=$?
[ "$rc" = 0 ] && attached=1
expect_eq "attach --no-agent exits 0" "$rc" 0
[ "$attached" = 1 ] || exit 1
expect_gsend "no agent, guard open: guarded UDP goes through the tunnel" "$CG" 3 3

# ===========================================================================
echo "# case 1: HTTP probe through the tunnel (t=$((SECONDS - started)) s)"
# The echo is not running yet: the first probes fail, so the guard must stay CLOSED.
if agent_start c1 "${GUARD[@]}" --probe-url "$URL/ip" --probe-interval 1s --real-ip "$REAL"; then
	expect_eq "case 1: right after start (echo not running yet) the probed guard is closed" "$(gstate)" closed
	expect_gsend "case 1: guarded UDP before the first passing probe" "$CG" 3 0 closed
	expect_true "case 1: probe failure recorded (connection refused) while the echo is down" \
		rec_wait 5 "$AGENT_LOG" 0 'r.get("event") == "probe" and r.get("why") == "probe_failed"'
	expect_eq "case 1: no state record before the echo runs" "$(recq "$AGENT_LOG" 0 'r.get("event") == "state"')" 0
	note "case 1: first failure: $(rec_first "$AGENT_LOG" 0 'r.get("event") == "probe"' 'r.get("error")')"
	e0=$(echo_tun)
	t0=$(now)
	expect_true "case 1: echo server on $I:$ECHO_PORT in INET" echo_start
	if rec_wait 5 "$AGENT_LOG" 0 "$R_OPEN"; then
		ok "case 1: agent logged state open"
		t1=$(rec_first "$AGENT_LOG" 0 "$R_OPEN" 't')
		fig "case 1: echo started -> state open record: $(ms_between "$t0" "$t1") ms (probe interval 1 s)"
	else
		nok "case 1: no state open record within 5 s: $(tail -n3 "$AGENT_LOG" | tr '\n' ' ')"
	fi
	expect_eq "case 1: the open record: why probe_passed, seen $VPN, guard/cgroups named" \
		"$(rec_first "$AGENT_LOG" 0 "$R_OPEN" '[r.get("why"), r.get("seen"), r.get("guard"), r.get("cgroups")]')" \
		"[\"probe_passed\", \"$VPN\", \"command line\", [\"$CG\"]]"
	expect_eq "case 1: status: open" "$(gstate)" open
	expect_match "case 1: status: lease renewed by the probes (about 3 s: 3 x interval)" \
		"$(gq "$GID" 'round(g["lease_left_s"] or 0, 1)')" '^(1\.[5-9]|2\.[0-9]|3\.0)$'
	expect_gsend "case 1: guarded UDP after the first passing probe" "$CG" 5 5
	expect_true "case 1: far side: the probes arrived by the tunnel (echo_tun $(echo_tun) > $e0), none by the veth" \
		eval '[ "$(echo_tun)" -gt "$e0" ] && [ "$(echo_veth)" = 0 ]'
	expect_eq "case 1: the echo saw only the tunnel address" \
		"$(awk '{print $2}' "$TOPO_DIR/echo.log" | sort -u | tr '\n' ' ')" "$VPN "
	agent_stop TERM
	expect_eq "case 1: agent exits 0 on SIGTERM" "$?" 0
fi
expect_eq "case 1: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# case 2: HTTPS probe, TLS verification (t=$((SECONDS - started)) s)"
tls_setup() {
	local d=$TOPO_DIR/tls
	mkdir -p "$d" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
			-keyout "$d/ca.key" -out "$d/ca.pem" -subj "/CN=vpnguard test CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
			-keyout "$d/srv.key" -out "$d/srv.csr" -subj "/CN=$I" &&
		printf 'subjectAltName=IP:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$I" >"$d/ext" &&
		openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
			-days 2 -out "$d/srv.pem" -extfile "$d/ext" || return 1
	rm -f "$TOPO_DIR/tls.ready"
	topo_spawn - "$TOPO_INET" "$PY" "$TOOLS/echo_server.py" --addr "$I" --port "$TLS_PORT" \
		--tls "$d/srv.pem" "$d/srv.key" --ready-file "$TOPO_DIR/tls.ready" --log "$TOPO_DIR/tls.log" 2>>"$DIAG"
	_topo_wait_until 5 test -e "$TOPO_DIR/tls.ready"
}
if expect_true "case 2: openssl CA + server certificate (SAN IP:$I), HTTPS echo on $I:$TLS_PORT" tls_setup >>"$DIAG" 2>&1; then
	if agent_start c2a "${GUARD[@]}" --probe-url "https://$I:$TLS_PORT/json" --probe-ca "$TOPO_DIR/tls/ca.pem" \
		--probe-interval 1s; then
		if rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"; then
			expect_eq "case 2: with --probe-ca: state open, why/seen" \
				"$(rec_first "$AGENT_LOG" 0 "$R_OPEN" '[r.get("why"), r.get("seen")]')" "[\"probe_passed\", \"$VPN\"]"
		else
			nok "case 2: with --probe-ca: no state open within 6 s: $(tail -n3 "$AGENT_LOG" | tr '\n' ' ')"
		fi
		expect_gsend "case 2: guarded UDP while the HTTPS probe passes" "$CG" 2 2
		agent_stop TERM
	fi
	if agent_start c2b "${GUARD[@]}" --probe-url "https://$I:$TLS_PORT/json" --probe-interval 1s; then
		rec_wait 6 "$AGENT_LOG" 0 '[r.get("event"), r.get("why")] == ["probe", "probe_failed"] and r.get("failed_in_a_row") == 2'
		err=$(rec_first "$AGENT_LOG" 0 'r.get("event") == "probe"' 'r.get("error", "")')
		note "case 2: without --probe-ca: $err"
		expect_match "case 2: without --probe-ca: the probe fails with a certificate error" "$err" '[Cc]ertificate|SSL|issuer'
		expect_eq "case 2: without --probe-ca: no state record (never opened)" \
			"$(recq "$AGENT_LOG" 0 'r.get("event") == "state"')" 0
		expect_eq "case 2: without --probe-ca: status closed" "$(gstate)" closed
		expect_true "case 2: the echo logged the refused handshakes (the client checked the certificate)" \
			grep -q ' tls-error ' "$TOPO_DIR/tls.log"
		expect_gsend "case 2: without --probe-ca: guarded UDP denied" "$CG" 2 0 closed
		agent_stop TERM
	fi
fi
expect_eq "case 2: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# case 3: the tunnel exits by the real address (t=$((SECONDS - started)) s)"
# real_ip_case TAG WHY ARGS...
real_ip_case() {
	local tag=$1 why=$2 t0 t1 tk m g_mid g_end c0 c1
	shift 2
	agent_start "$tag" "${GUARD[@]}" --probe-interval 1s "$@" || return
	if ! rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"; then
		nok "$tag: no state open within 6 s: $(tail -n3 "$AGENT_LOG" | tr '\n' ' ')"
		agent_stop TERM
		return
	fi
	flood_start "$CG" 30
	topo_wait_count gtun $(($(gtun) + 20)) 3
	c0=$(gq "$GID" 'g["denied"]["closed"]')
	m=$(log_mark)
	t0=$(now)
	real_ip_on || nok "$tag: nft snat rule in INET"
	tk=
	for _ in $(seq 1 120); do
		[ "$(gstate)" = closed ] && { tk=$(now); break; }
		sleep 0.025
	done
	if rec_wait 5 "$AGENT_LOG" "$m" "$R_CLOSED"; then
		t1=$(rec_first "$AGENT_LOG" "$m" "$R_CLOSED" 't')
		local dt
		dt=$(ms_between "$t0" "$t1")
		fig "$tag: $why: snat on -> state closed record $dt ms, -> status closed $([ -n "$tk" ] && ms_between "$t0" "$tk") ms (interval 1 s, timeout 1 s)"
		expect_true "$tag: closed within one probe interval + timeout + 1 s margin ($dt ms <= 3000)" test "$dt" -le 3000
	else
		nok "$tag: no state closed record within 5 s"
	fi
	expect_eq "$tag: the closed record: why $why, seen $REAL" \
		"$(rec_first "$AGENT_LOG" "$m" "$R_CLOSED" '[r.get("why"), r.get("seen")]')" "[\"$why\", \"$REAL\"]"
	expect_eq "$tag: status closed" "$(gstate)" closed
	topo_settle 0.4
	g_mid=$(gtun)
	sleep 1
	g_end=$(gtun)
	c1=$(gq "$GID" 'g["denied"]["closed"]')
	expect_eq "$tag: the running flood: nothing more through the tunnel once closed ($g_mid -> $g_end)" "$g_end" "$g_mid"
	expect_gt "$tag: the running flood: denied.closed grows" "$c1" "$c0"
	expect_eq "$tag: the running flood: nothing by the veth (gleak)" "$(gleak)" 0
	flood_stop
	expect_gsend "$tag: new guarded UDP while closed" "$CG" 3 0 closed
	flood_start "$CG" 30
	expect_true "$tag: the echo saw $REAL (the probe's source was rewritten)" grep -q " $REAL 200 " "$TOPO_DIR/echo.log"
	m=$(log_mark)
	t0=$(now)
	real_ip_off
	if rec_wait 5 "$AGENT_LOG" "$m" "$R_OPEN"; then
		t1=$(rec_first "$AGENT_LOG" "$m" "$R_OPEN" 't')
		fig "$tag: snat off -> state open record $(ms_between "$t0" "$t1") ms"
		expect_eq "$tag: reopened: why probe_passed, seen $VPN" \
			"$(rec_first "$AGENT_LOG" "$m" "$R_OPEN" '[r.get("why"), r.get("seen")]')" "[\"probe_passed\", \"$VPN\"]"
	else
		nok "$tag: no state open record within 5 s of the snat's removal"
	fi
	g_mid=$(gtun)
	expect_true "$tag: the running flood flows through the tunnel again" topo_wait_count gtun $((g_mid + 20)) 3
	flood_stop
	agent_stop TERM
	expect_eq "$tag: agent exits 0" "$?" 0
}
[ -n "$ECHO_PID" ] || echo_start || nok "case 3: echo server"
real_ip_case "case 3a (--real-ip, JSON public_ip)" real_ip --probe-url "$URL/json" --real-ip "$REAL"
# 3b also posts its alerts to a dead port on loopback (nothing listens): closing must not wait for it.
DEAD_PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
real_ip_case "case 3b (--expect-ip, JSON ip, webhook to a dead port)" unexpected_ip --probe-url "$URL/ipjson" \
	--expect-ip "$TOPO_VPN_NET" --webhook "http://127.0.0.1:$DEAD_PORT/"
expect_true "case 3b: the dead webhook's failures were reported on the agent's stderr" \
	grep -aq "webhook http://127.0.0.1:$DEAD_PORT/: try 1 of 3" "$TOPO_DIR/case 3b (--expect-ip, JSON ip, webhook to a dead port).err"
real_ip_off

echo "# case 3c: gluetun's /v1/vpn/status as a second signal (t=$((SECONDS - started)) s)"
echo running >"$TOPO_DIR/gluetun.status"
if agent_start c3c "${GUARD[@]}" --probe-url "$URL/ip" --gluetun-url "http://$I:$ECHO_PORT/" --probe-interval 1s; then
	expect_true "case 3c: opens while gluetun says running" rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"
	m=$(log_mark)
	t0=$(now)
	echo stopped >"$TOPO_DIR/gluetun.status"
	if rec_wait 5 "$AGENT_LOG" "$m" "$R_CLOSED"; then
		fig "case 3c: gluetun status 'stopped' -> state closed record $(ms_between "$t0" "$(rec_first "$AGENT_LOG" "$m" "$R_CLOSED" 't')") ms"
		expect_eq "case 3c: closed at once: why gluetun_not_running, gluetun stopped, seen $VPN" \
			"$(rec_first "$AGENT_LOG" "$m" "$R_CLOSED" '[r.get("why"), r.get("gluetun"), r.get("seen")]')" \
			"[\"gluetun_not_running\", \"stopped\", \"$VPN\"]"
		expect_eq "case 3c: no probe failure counted before it" "$(recq "$AGENT_LOG" "$m" 'r.get("event") == "probe"')" 0
	else
		nok "case 3c: no state closed record within 5 s of gluetun saying stopped"
	fi
	expect_gsend "case 3c: guarded UDP while gluetun is not running" "$CG" 2 0 closed
	m=$(log_mark)
	echo running >"$TOPO_DIR/gluetun.status"
	expect_true "case 3c: reopens when gluetun runs again" rec_wait 5 "$AGENT_LOG" "$m" "$R_OPEN"
	expect_gsend "case 3c: guarded UDP through the tunnel again" "$CG" 2 2
	expect_true "case 3c: gluetun's status was asked at the echo" grep -q " 200 /v1/vpn/status" "$TOPO_DIR/echo.log"
	agent_stop TERM
fi
expect_eq "case 3: leak_count" "$(leak_count)" 0
expect_eq "case 3: gleak (guarded UDP by the veth)" "$(gleak)" 0

# ===========================================================================
echo "# case 4: probe failures close the guard after N, a pass reopens it (t=$((SECONDS - started)) s)"
# fail_case TAG BREAK MEND MAX_MS ARGS...: BREAK/MEND are commands that make the probes fail/pass.
fail_case() {
	local tag=$1 brk=$2 mend=$3 max_ms=$4 m t0 t1 seq dt
	shift 4
	agent_start "$tag" "${GUARD[@]}" --probe-url "$URL/ip" --probe-interval 1s --probe-failures 3 --lease 30s "$@" || return
	if ! rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"; then
		nok "$tag: no state open within 6 s"
		agent_stop TERM
		return
	fi
	m=$(log_mark)
	t0=$(now)
	$brk
	if rec_wait 12 "$AGENT_LOG" "$m" "$R_CLOSED"; then
		t1=$(rec_first "$AGENT_LOG" "$m" "$R_CLOSED" 't')
		dt=$(ms_between "$t0" "$t1")
		fig "$tag: probes broken -> state closed record after $dt ms (3 failures, interval 1 s)"
		expect_true "$tag: closed neither before 2 intervals nor after 3 x (interval + timeout) + 1.5 s ($dt ms)" \
			test "$dt" -ge 1500 -a "$dt" -le "$max_ms"
	else
		nok "$tag: no state closed record within 12 s: $(tail -n3 "$AGENT_LOG" | tr '\n' ' ')"
	fi
	seq=$(recq "$AGENT_LOG" "$m" 'r.get("event") in ("probe", "state")' \
		'"%s:%s:%s" % (r["event"], r.get("why"), r.get("failed_in_a_row", r.get("state")))' | head -n3 | tr '\n' ' ')
	expect_eq "$tag: exactly 2 probe failure records, then the state record" "$seq" \
		"probe:probe_failed:1 probe:probe_failed:2 state:probe_failed:closed "
	note "$tag: failure error: $(rec_first "$AGENT_LOG" "$m" 'r.get("event") == "probe"' 'r.get("error")')"
	expect_eq "$tag: status closed" "$(gstate)" closed
	expect_gsend "$tag: guarded UDP while closed" "$CG" 2 0 closed
	m=$(log_mark)
	t0=$(now)
	$mend
	if rec_wait 6 "$AGENT_LOG" "$m" "$R_OPEN"; then
		t1=$(rec_first "$AGENT_LOG" "$m" "$R_OPEN" 't')
		fig "$tag: probes mended -> state open record after $(ms_between "$t0" "$t1") ms"
		expect_eq "$tag: reopened by a passing probe" "$(rec_first "$AGENT_LOG" "$m" "$R_OPEN" 'r.get("why")')" probe_passed
	else
		nok "$tag: no state open record within 6 s of mending"
	fi
	expect_gsend "$tag: guarded UDP flows again" "$CG" 3 3
	agent_stop TERM
}
# Refused: the echo stops (each probe fails at once).  3 x (1 s + a little) after the stop.
fail_case "case 4a (echo stopped: refused)" echo_stop echo_start 4500
# Timed out: INET drops the probes (--probe-timeout 500ms): 3 x (1 s + 0.5 s).
fail_case "case 4b (probes dropped: timeout)" echo_drop_on echo_drop_off 6500 --probe-timeout 500ms
echo_drop_off
[ -n "$ECHO_PID" ] || echo_start
expect_eq "case 4: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# case 5: agent SIGKILLed: the lease closes the guard by itself (t=$((SECONDS - started)) s)"
# The state of our guard, read fast (no python): open|closed|"".
fast_state() {
	timeout 5 "$VG" status --json 2>/dev/null |
		sed -n "s/.*\"cgroup_id\":$GID,[^}]*\"state\":\"\([a-z]*\)\".*/\1/p"
}
if agent_start c5 "${GUARD[@]}" --probe-url "$URL/ip" --probe-interval 1s --lease 3s; then
	expect_true "case 5: probed guard opens" rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"
	flood_start "$CG" 15
	expect_true "case 5: the guarded flood goes through the tunnel" topo_wait_count gtun $(($(gtun) + 20)) 3
	c0=$(gq "$GID" 'g["denied"]["closed"]')
	left=$(gq "$GID" 'g["lease_left_s"]')
	kpid=$agent_pid
	tk=$(now)
	agent_stop KILL
	expect_true "case 5: agent $kpid is gone" _topo_not _topo_pid_alive "$kpid"
	# Sample the far side and the status until 6 s after the kill.
	samples=$TOPO_DIR/c5.samples
	: >"$samples"
	t_status=
	while :; do
		t=$(now) c=$(gtun) st=$(fast_state)
		echo "$t $c $st" >>"$samples"
		[ -z "$t_status" ] && [ "$st" = closed ] && t_status=$t
		[ "$(ms_between "$tk" "$t")" -ge 6000 ] && break
	done
	# The far side: the first sample that already shows the final count.
	read -r far_lo far_hi n_samples < <(awk -v tk="$tk" '
		{ t[NR] = $1; c[NR] = $2 }
		END { for (i = 1; i <= NR && c[i] != c[NR]; i++);
		      lo = (i > 1 ? t[i - 1] : tk); printf "%d %d %d\n", (lo - tk) * 1000, (t[i] - tk) * 1000, NR }' "$samples")
	left_ms=$(awk -v l="$left" 'BEGIN {printf "%d", l * 1000}')
	st_ms=$([ -n "$t_status" ] && ms_between "$tk" "$t_status" || echo 99999)
	fig "case 5: SIGKILL with --probe-interval 1s --lease 3s: lease left at the kill ${left_ms} ms; status closed after ${st_ms} ms; last guarded datagram reached the far side between ${far_lo} and ${far_hi} ms after the kill ($n_samples samples)"
	expect_true "case 5: status says closed when the lease ran out (${st_ms} ms, lease left ${left_ms} ms, margin -200/+700 ms)" \
		test "$st_ms" -ge $((left_ms - 200)) -a "$st_ms" -le $((left_ms + 700))
	expect_true "case 5: the far side stops within the lease + 700 ms (${far_hi} ms <= $((left_ms + 700)))" \
		test "$far_hi" -le $((left_ms + 700)) -a "$far_hi" -ge $((left_ms - 500))
	expect_true "case 5: closed no later than 3 s + 700 ms after the kill" test "$st_ms" -le 3700
	expect_gt "case 5: the running flood is denied: closed" "$(gq "$GID" 'g["denied"]["closed"]')" "$c0"
	expect_eq "case 5: nothing by the veth" "$(gleak)" 0
	flood_stop
	expect_true "case 5: pins stay after SIGKILL" test -e "$PIN_ROOT/$GID/egress" -a -e "$PIN_ROOT/vg_state"
	drop_stale_pidfile
fi
expect_eq "case 5: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# case 6: config file, SIGHUP reload good and bad, guard removed (t=$((SECONDS - started)) s)"
CFG=$TOPO_DIR/vpnguard.conf CLOG=$TOPO_DIR/cfg.log
# write_cfg FILE VARIANT: one = guard one only; two = guard one with a second allow + guard two;
# bad = two with a line that is not "key = value"; one2 = guard one with both allows.
write_cfg() {
	local f=$1 v=$2
	{
		echo "# vpnguard-bpf test configuration ($v)"
		echo "[agent]"
		echo "log = $CLOG"
		echo
		echo "[guard one]"
		echo "cgroup = $CG"
		echo "tunnel = $WG"
		echo "netns = $HNS"
		echo "allow = $TOPO_LAN_NET"
		[ "$v" = one ] || echo "allow = 172.31.0.0/16"
		echo "probe-url = $URL/ip"
		echo "probe-interval = 1s"
		case $v in two | bad)
			echo
			echo "[guard two]"
			echo "cgroup = $CG2"
			echo "tunnel = $WG"
			[ "$v" = bad ] && echo "this line has no equals sign"
			echo "netns = $HNS"
			echo "dns = $TOPO_RESOLVER"
			;;
		esac
	} >"$f.tmp" && mv "$f.tmp" "$f"
}
allow_of() { gq "$1" 'g["allow"] if g else None'; }
write_cfg "$CFG" one
AGENT_LOG=$CLOG
if agent_spawn c6 attach --config "$CFG"; then
	ok "case 6: attach --config in the background: agent runs (pid $agent_pid)"
	expect_true "case 6: the agent logs to the [agent] log file ($CLOG)" rec_wait 6 "$CLOG" 0 "$R_OPEN"
	expect_eq "case 6: the open record names guard one" "$(rec_first "$CLOG" 0 "$R_OPEN" 'r.get("guard")')" one
	expect_eq "case 6: status: guard one's policy (tunnel, netns, allow)" \
		"$(gq "$GID" '[g["mode"], g["tunnel"], g["netns"], g["allow"], g["state"]]')" \
		"[\"tunnel\", \"$WG\", \"$HNS\", [\"$TOPO_LAN_NET\"], \"open\"]"
	expect_eq "case 6: status: no guard two yet" "$(gq "$GID2" 'g')" null

	echo "# case 6: good new file + SIGHUP"
	write_cfg "$CFG" two
	m=$(log_mark)
	kill -HUP "$agent_pid"
	if rec_wait 6 "$CLOG" "$m" 'r.get("event") == "reload"'; then
		expect_eq "case 6: reload record: applied, 2 guards, 0 detached" \
			"$(rec_first "$CLOG" "$m" 'r.get("event") == "reload"' '[r.get("result"), r.get("guards"), r.get("detached"), r.get("config")]')" \
			"[\"applied\", 2, 0, \"$CFG\"]"
	else
		nok "case 6: no reload record after SIGHUP: $(tail -n2 "$AGENT_ERR" | tr '\n' ' ')"
	fi
	expect_eq "case 6: status: guard one has the new allow" "$(allow_of "$GID")" "[\"$TOPO_LAN_NET\", \"172.31.0.0/16\"]"
	expect_eq "case 6: status: guard two attached (tunnel, dns, open)" \
		"$(gq "$GID2" '[g["tunnel"], g["dns"], g["state"]] if g else None')" "[\"$WG\", [\"$TOPO_RESOLVER\"], \"open\"]"
	expect_cg_guarded "case 6: guard two" "$CG2"
	sleep 1.5
	expect_eq "case 6: guard one kept its state across the reload (no state record, still open)" \
		"$(recq "$CLOG" "$m" 'r.get("event") == "state"'):$(gstate)" "0:open"
	expect_gsend "case 6: guard two (new): guarded UDP through the tunnel" "$CG2" 3 3

	echo "# case 6: a kept guard that is CLOSED stays closed across a reload"
	m=$(log_mark)
	echo_stop
	if rec_wait 8 "$CLOG" "$m" "$R_CLOSED"; then
		m=$(log_mark)
		kill -HUP "$agent_pid"
		expect_true "case 6: SIGHUP (same file) while guard one is closed: applied" \
			rec_wait 5 "$CLOG" "$m" 'r.get("event") == "reload" and r.get("result") == "applied"'
		sleep 1.5
		expect_eq "case 6: guard one still closed after the reload (echo still down), no open record" \
			"$(gstate):$(recq "$CLOG" "$m" "$R_OPEN")" "closed:0"
		expect_gsend "case 6: guard one closed after the reload: guarded UDP denied" "$CG" 2 0 closed
	else
		nok "case 6: guard one did not close with the echo down"
	fi
	m=$(log_mark)
	echo_start
	expect_true "case 6: guard one reopens when the echo is back" rec_wait 6 "$CLOG" "$m" "$R_OPEN"

	echo "# case 6: bad new file + SIGHUP"
	write_cfg "$CFG" bad
	badline=$(grep -n 'no equals sign' "$CFG" | cut -d: -f1)
	before=$(status_policy)
	m=$(log_mark)
	kill -HUP "$agent_pid"
	if rec_wait 6 "$CLOG" "$m" 'r.get("event") == "reload"'; then
		expect_eq "case 6: bad file: reload record says refused" \
			"$(rec_first "$CLOG" "$m" 'r.get("event") == "reload"' 'r.get("result")')" refused
		note "case 6: refused reload's error: $(rec_first "$CLOG" "$m" 'r.get("event") == "reload"' 'r.get("error")')"
	else
		nok "case 6: no reload record after the bad SIGHUP"
	fi
	expect_true "case 6: the agent's stderr names $CFG:$badline" grep -q "$CFG:$badline: " "$AGENT_ERR"
	note "case 6: agent stderr: $(grep "$CFG:$badline" "$AGENT_ERR" | head -n1)"
	after=$(status_policy)
	expect_eq "case 6: bad file: status --json (policies, states) unchanged" "$after" "$before"
	expect_true "case 6: bad file: the agent still runs" _topo_pid_alive "$agent_pid"
	sleep 1.5
	expect_eq "case 6: bad file: guard one still probed and open, guard two still there" \
		"$(gstate):$(gstate "$GID2")" "open:open"

	echo "# case 6: guard two removed from the file + SIGHUP"
	write_cfg "$CFG" one2
	m=$(log_mark)
	kill -HUP "$agent_pid"
	if rec_wait 6 "$CLOG" "$m" 'r.get("event") == "reload"'; then
		expect_eq "case 6: reload record: applied, 1 guard, 1 detached" \
			"$(rec_first "$CLOG" "$m" 'r.get("event") == "reload"' '[r.get("result"), r.get("guards"), r.get("detached")]')" \
			'["applied", 1, 1]'
	else
		nok "case 6: no reload record after removing guard two"
	fi
	expect_eq "case 6: status: guard two gone" "$(gq "$GID2" 'g')" null
	expect_cg_unguarded "case 6: guard two detached" "$CG2"
	expect_true "case 6: guard two's pins gone" test ! -e "$PIN_ROOT/$GID2"
	expect_eq "case 6: guard one stays (both allows, open)" "$(allow_of "$GID"):$(gstate)" "[\"$TOPO_LAN_NET\", \"172.31.0.0/16\"]:open"
	agent_stop TERM
	expect_eq "case 6: agent exits 0 on SIGTERM" "$?" 0
fi

echo "# case 6: attach --config with a bad file, no agent running"
# bad_from_scratch NAME LINE_TEXT: the file is "one" with LINE_TEXT added after the netns line.
bad_from_scratch() {
	local name=$1 text=$2 f=$TOPO_DIR/bad.conf line snap0 snap1 rc
	write_cfg "$f" one
	sed -i "/^netns = /a $text" "$f"
	line=$(grep -nxF "$text" "$f" | cut -d: -f1)
	snap0=$(state_snapshot "$CG" "$CG2")
	timeout 30 "$VG" attach --config "$f" >"$TOPO_DIR/bad.out" 2>"$TOPO_DIR/bad.err" 9>&-
	rc=$?
	snap1=$(state_snapshot "$CG" "$CG2")
	expect_eq "case 6: $name: exit 2" "$rc" 2
	expect_eq "case 6: $name: one stderr line naming $f:$line" \
		"$(wc -l <"$TOPO_DIR/bad.err"):$(grep -c "^vpnguard-bpf: $f:$line: " "$TOPO_DIR/bad.err")" "1:1"
	note "case 6: $name: $(cat "$TOPO_DIR/bad.err")"
	if [ "$snap0" = "$snap1" ]; then
		ok "case 6: $name: pins, maps, cgroup programs, agent lock unchanged"
	else
		nok "case 6: $name: state changed: $(diff <(echo "$snap0") <(echo "$snap1") | head -n5 | tr '\n' ' ')"
	fi
	expect_true "case 6: $name: no agent left running" test ! -e "$AGENT_PIDFILE"
}
bad_from_scratch "syntax error" "this line has no equals sign"
bad_from_scratch "bad value" "probe-failures = 0"
expect_eq "case 6: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# case 7: webhook (t=$((SECONDS - started)) s)"
# hook_start TAG [webhook_sink options]: a receiver on 127.0.0.1 (root netns); HOOK_URL, HOOK_OUT.
hook_start() {
	local tag=$1
	shift
	HOOK_OUT=$TOPO_DIR/$tag.jsonl
	rm -f "$TOPO_DIR/$tag.ready"
	: >"$HOOK_OUT"
	topo_spawn - - "$PY" "$TOOLS/webhook_sink.py" --port 0 --out "$HOOK_OUT" \
		--ready-file "$TOPO_DIR/$tag.ready" "$@" 2>>"$DIAG"
	HOOK_PID=$TOPO_LAST_PID
	_topo_wait_until 5 test -s "$TOPO_DIR/$tag.ready" || return 1
	HOOK_URL=http://127.0.0.1:$(cat "$TOPO_DIR/$tag.ready")/vpnguard
}
# hookq EXPR [OUT]: like recq over the receiver's lines (r = the line, b = its body).
hookq() {
	"$PY" - "$HOOK_OUT" "$@" <<'EOF'
import json, sys
path, expr = sys.argv[1], sys.argv[2]
out = sys.argv[3] if len(sys.argv) > 3 else None
n = 0
for line in open(path):
    try:
        r = json.loads(line)
    except ValueError:
        continue
    b = r.get("body") if isinstance(r.get("body"), dict) else {}
    try:
        hit = eval(expr)
    except Exception:
        hit = False
    if hit:
        n += 1
        if out:
            v = eval(out)
            print(v if isinstance(v, str) else json.dumps(v))
            break
if not out:
    print(n)
EOF
}
hook_has() { [ "$(hookq "$@")" -ge 1 ]; }
H_LEAK='b.get("why") == "real_ip" and b.get("state") == "closed"'
H_OPEN='b.get("state") == "open"'
if expect_true "case 7: webhook receiver on 127.0.0.1" hook_start c7; then
	if agent_start c7 "${GUARD[@]}" --probe-url "$URL/json" --probe-interval 1s --real-ip "$REAL" --webhook "$HOOK_URL"; then
		expect_true "case 7: guard opens" rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"
		expect_true "case 7: the first opening is posted" _topo_wait_until 5 hook_has "$H_OPEN"
		m=$(log_mark)
		real_ip_on
		if rec_wait 5 "$AGENT_LOG" "$m" "$R_CLOSED" && _topo_wait_until 8 hook_has "$H_LEAK"; then
			tr_=$(rec_first "$AGENT_LOG" "$m" "$R_CLOSED" 't')
			th=$(hookq "$H_LEAK" 'r["t"]')
			fig "case 7: leak alert posted $(ms_between "$tr_" "$th") ms after the state record"
			expect_eq "case 7: leak alert: JSON POST, application/json" \
				"$(hookq "$H_LEAK" '[r["json"], r["content_type"]]')" '[true, "application/json"]'
			expect_eq "case 7: leak alert: event/state/why/seen/guard/priority" \
				"$(hookq "$H_LEAK" '[b.get(k) for k in ("event", "state", "why", "seen", "guard", "priority")]')" \
				"[\"state\", \"closed\", \"real_ip\", \"$REAL\", \"command line\", 8]"
			expect_match "case 7: leak alert: title says leak" "$(hookq "$H_LEAK" 'b.get("title")')" 'leak'
			expect_match "case 7: leak alert: message and content name the reason and the address" \
				"$(hookq "$H_LEAK" '"%s|%s" % (b.get("message"), b.get("content"))')" "real_ip.*$REAL.*\|.*real_ip.*$REAL"
			note "case 7: leak alert title: $(hookq "$H_LEAK" 'b.get("title")')"
			note "case 7: leak alert message: $(hookq "$H_LEAK" 'b.get("message")')"
		else
			nok "case 7: no leak alert posted: $(tail -c 400 "$HOOK_OUT")"
		fi
		m=$(log_mark)
		# shellcheck disable=SC2034 # read in the eval below
		n_open=$(hookq "$H_OPEN")
		real_ip_off
		if rec_wait 5 "$AGENT_LOG" "$m" "$R_OPEN" && _topo_wait_until 8 eval '[ "$(hookq "$H_OPEN")" -gt "$n_open" ]'; then
			expect_eq "case 7: reopened alert: state/why/seen/priority" \
				"$(hookq "$H_OPEN" '[b.get(k) for k in ("state", "why", "seen", "priority")]' | tail -n1)" \
				"[\"open\", \"probe_passed\", \"$VPN\", 4]"
			expect_match "case 7: reopened alert: title" \
				"$(hookq 'b.get("state") == "open" and "reopened" in (b.get("title") or "")' 'b.get("title")')" 'reopened'
		else
			nok "case 7: no reopened alert posted"
		fi
		sleep 1
		expect_eq "case 7: exactly 3 alerts (open, leak, reopened), all JSON" "$(hookq 'r["json"]'):$(wc -l <"$HOOK_OUT")" "3:3"
		m=$(log_mark)
		echo_stop
		if rec_wait 8 "$AGENT_LOG" "$m" "$R_CLOSED" && _topo_wait_until 5 hook_has 'b.get("why") == "probe_failed"'; then
			expect_eq "case 7: closing alert (probe failures): state/why/priority, error given" \
				"$(hookq 'b.get("why") == "probe_failed"' '[b.get("state"), b.get("why"), b.get("priority"), bool(b.get("error"))]')" \
				'["closed", "probe_failed", 8, true]'
			expect_match "case 7: closing alert: title" "$(hookq 'b.get("why") == "probe_failed"' 'b.get("title")')" 'closed'
		else
			nok "case 7: no closing alert for the probe failures"
		fi
		m=$(log_mark)
		echo_start
		expect_true "case 7: reopens when the echo is back" rec_wait 6 "$AGENT_LOG" "$m" "$R_OPEN"
		expect_true "case 7: and says so (5th alert)" _topo_wait_until 5 eval '[ "$(wc -l <"$HOOK_OUT")" -ge 5 ]'

		echo "# case 8: log reopen on SIGHUP (t=$((SECONDS - started)) s)"
		mv "$AGENT_LOG" "$AGENT_LOG.1"
		old_n=$(wc -l <"$AGENT_LOG.1")
		kill -HUP "$agent_pid"
		expect_true "case 8: a fresh log file at the original path after SIGHUP" _topo_wait_until 3 test -e "$AGENT_LOG"
		run_in "$CG" "$TOPO_HOME" timeout 10 "$TOPO_VGPROBE" sendto "$TOPO_ROGUE_DNS" 53 >/dev/null 2>>"$DIAG"
		real_ip_on
		expect_true "case 8: new records (state closed) go to the new file" rec_wait 5 "$AGENT_LOG" 0 "$R_CLOSED"
		expect_true "case 8: the denied DNS datagram's blocked record is in the new file" \
			rec_wait 3 "$AGENT_LOG" 0 'r.get("event") == "blocked" and r.get("reason") == "dns"'
		expect_eq "case 8: nothing more was written to the moved file" "$(wc -l <"$AGENT_LOG.1")" "$old_n"
		real_ip_off
		expect_true "case 8: reopens" rec_wait 5 "$AGENT_LOG" 0 "$R_OPEN"
		agent_stop TERM
		expect_eq "case 7/8: agent exits 0" "$?" 0
	fi
	topo_stop "$HOOK_PID"
fi

echo "# case 7: a webhook receiver that accepts and never answers must not delay the guard"
if expect_true "case 7: hanging receiver on 127.0.0.1" hook_start c7h --hang; then
	if agent_start c7h "${GUARD[@]}" --probe-url "$URL/json" --probe-interval 1s --real-ip "$REAL" --webhook "$HOOK_URL"; then
		expect_true "case 7 (hang): guard opens" rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"
		expect_true "case 7 (hang): the receiver holds the agent's POST" _topo_wait_until 5 eval '[ "$(wc -l <"$HOOK_OUT")" -ge 1 ]'
		for round in 1 2; do
			m=$(log_mark)
			t0=$(now)
			real_ip_on
			if rec_wait 5 "$AGENT_LOG" "$m" "$R_CLOSED"; then
				dt=$(ms_between "$t0" "$(rec_first "$AGENT_LOG" "$m" "$R_CLOSED" 't')")
				fig "case 7 (hang) round $round: snat on -> state closed record $dt ms with the webhook stuck"
				expect_true "case 7 (hang) round $round: closed within one probe + 1 s margin ($dt ms <= 3000)" test "$dt" -le 3000
			else
				nok "case 7 (hang) round $round: no state closed record within 5 s"
			fi
			expect_eq "case 7 (hang) round $round: status closed" "$(gstate)" closed
			m=$(log_mark)
			real_ip_off
			expect_true "case 7 (hang) round $round: reopens" rec_wait 5 "$AGENT_LOG" "$m" "$R_OPEN"
		done
		t0=$(now)
		agent_stop TERM
		rc=$?
		dt=$(ms_between "$t0" "$(now)")
		fig "case 7 (hang): SIGTERM -> agent gone in $dt ms with a webhook request hanging"
		expect_eq "case 7 (hang): agent exits 0 on SIGTERM" "$rc" 0
		expect_true "case 7 (hang): it does not wait for the hanging receiver ($dt ms <= 4000)" test "$dt" -le 4000
		note "case 7 (hang): agent stderr: $(grep -ac webhook "$AGENT_ERR") webhook lines"
	fi
	topo_stop "$HOOK_PID"
fi

echo "# case 7: the [agent] webhook of a config file across SIGHUP reloads (t=$((SECONDS - started)) s)"
C7=$TOPO_DIR/c7.conf
write_c7() { # WEBHOOK_URL
	cat >"$C7.tmp" <<EOF
[agent]
log = $TOPO_DIR/c7c.log
webhook = $1

[guard one]
cgroup = $CG
tunnel = $WG
netns = $HNS
probe-url = $URL/json
probe-interval = 1s
real-ip = $REAL
EOF
	mv "$C7.tmp" "$C7"
}
# c7_hup WHAT: SIGHUP, wait for the reload record; RELOAD_MS = SIGHUP -> the record is in the
# log file (it is written when the reload is done; its "time" is taken when it starts).
c7_hup() {
	local m t0 t1='' n0
	m=$(log_mark)
	n0=$(grep -c '"event":"reload"' "$AGENT_LOG")
	t0=$(now)
	kill -HUP "$agent_pid"
	while [ "$(ms_between "$t0" "$(now)")" -lt 6000 ]; do
		[ "$(grep -c '"event":"reload"' "$AGENT_LOG")" -gt "$n0" ] && { t1=$(now); break; }
		sleep 0.01
	done
	RELOAD_MS=-1
	if [ -n "$t1" ] && rec_has "$AGENT_LOG" "$m" 'r.get("event") == "reload" and r.get("result") == "applied"'; then
		RELOAD_MS=$(ms_between "$t0" "$t1")
		ok "case 7 (config): SIGHUP ($1): reload applied (record written $RELOAD_MS ms after the signal)"
	else
		nok "case 7 (config): SIGHUP ($1): no applied reload record"
	fi
}
# c7_leak RECEIVER_OUT: real IP on; closed; the leak alert reaches that receiver; real IP off; reopened.
c7_leak() {
	local what=$1 m
	HOOK_OUT=$2
	m=$(log_mark)
	real_ip_on
	expect_true "case 7 (config): $what: closed on the real IP" rec_wait 5 "$AGENT_LOG" "$m" "$R_CLOSED"
	if _topo_wait_until 8 hook_has "$H_LEAK"; then
		ok "case 7 (config): $what: the leak alert is posted"
	else
		nok "case 7 (config): $what: no leak alert posted (receiver got $(wc -l <"$HOOK_OUT") POSTs); agent stderr: $(grep -a webhook "$AGENT_ERR" | tail -n2 | cat -v | tr '\n' ' ')"
	fi
	m=$(log_mark)
	real_ip_off
	expect_true "case 7 (config): $what: reopens" rec_wait 5 "$AGENT_LOG" "$m" "$R_OPEN"
}
A_OUT='' A_URL='' A_PID=''
if expect_true "case 7 (config): webhook receivers A and B on 127.0.0.1" eval 'hook_start c7a && A_OUT=$HOOK_OUT A_URL=$HOOK_URL A_PID=$HOOK_PID && hook_start c7b'; then
	B_OUT=$HOOK_OUT B_URL=$HOOK_URL B_PID=$HOOK_PID
	write_c7 "$A_URL"
	AGENT_LOG=$TOPO_DIR/c7c.log
	if agent_spawn c7c attach --config "$C7"; then
		expect_true "case 7 (config): guard opens" rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"
		HOOK_OUT=$A_OUT
		expect_true "case 7 (config): the opening is posted to the [agent] webhook (A)" _topo_wait_until 5 hook_has "$H_OPEN"
		c7_hup "same file"
		c7_leak "after a reload of the same file, A" "$A_OUT"
		a_n=$(wc -l <"$A_OUT")
		write_c7 "$B_URL"
		c7_hup "webhook changed to B"
		c7_leak "webhook changed to B" "$B_OUT"
		expect_eq "case 7 (config): A got nothing after the change" "$(wc -l <"$A_OUT")" "$a_n"

		# A receiver that hangs, then a reload: the reload (and the agent's loop) must not wait for it.
		if expect_true "case 7 (config): hanging receiver H" hook_start c7h2 --hang; then
			write_c7 "$HOOK_URL"
			c7_hup "webhook changed to the hanging H"
			m=$(log_mark)
			real_ip_on
			expect_true "case 7 (config): H: closed on the real IP" rec_wait 5 "$AGENT_LOG" "$m" "$R_CLOSED"
			expect_true "case 7 (config): H holds the leak alert" _topo_wait_until 5 eval '[ "$(wc -l <"$HOOK_OUT")" -ge 1 ]'
			c7_hup "same file, H hanging"
			fig "case 7 (config): SIGHUP -> reload record while the webhook receiver hangs: $RELOAD_MS ms"
			expect_true "case 7 (config): a reload does not wait for a hanging webhook ($RELOAD_MS ms <= 1000)" \
				test "$RELOAD_MS" -ge 0 -a "$RELOAD_MS" -le 1000
			m=$(log_mark)
			real_ip_off
			expect_true "case 7 (config): H: reopens" rec_wait 5 "$AGENT_LOG" "$m" "$R_OPEN"
		fi
		agent_stop TERM
		expect_eq "case 7 (config): agent exits 0" "$?" 0
	fi
	topo_stop "$A_PID"
	topo_stop "$B_PID"
fi
expect_eq "case 7: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# case 9: sd_notify (t=$((SECONDS - started)) s)"
NSOCK=$TOPO_DIR/notify.sock NOUT=$TOPO_DIR/notify.jsonl
nmsgs() { # the messages so far, one per line (newlines inside a message shown as ";")
	"$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    print(json.loads(l)["msg"].strip().replace("\n", ";"))' "$NOUT" 2>/dev/null
}
timeout 30 "$VG" detach --cgroup "$CG" 2>>"$DIAG"
expect_true "case 9: guard detached first: no pins of it" test ! -e "$PIN_ROOT/$GID"
rm -f "$TOPO_DIR/notify.ready" "$NOUT"
topo_spawn - - "$PY" "$TOOLS/notify_sink.py" --socket "$NSOCK" --out "$NOUT" \
	--check "$PIN_ROOT/$GID/egress" --check "$PIN_ROOT/$GID/connect4" --check "$PIN_ROOT/vg_state" \
	--ready-file "$TOPO_DIR/notify.ready" 2>>"$DIAG"
NOTIFY_PID=$TOPO_LAST_PID
write_cfg "$CFG" one
if expect_true "case 9: notify receiver" _topo_wait_until 5 test -e "$TOPO_DIR/notify.ready" &&
	AGENT_ENV="NOTIFY_SOCKET=$NSOCK" agent_spawn c9 attach --config "$CFG" --log "$TOPO_DIR/c9.log"; then
	AGENT_LOG=$TOPO_DIR/c9.log
	expect_true "case 9: READY=1 arrives" _topo_wait_until 5 eval 'nmsgs | grep -q "^READY=1"'
	expect_eq "case 9: READY=1 carries MAINPID=$agent_pid and comes from that pid" \
		"$("$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["msg"].startswith("READY=1"):
        print("MAINPID=%s" % sys.argv[2] in r["msg"].split("\n"), r["pid"]); break' "$NOUT" "$agent_pid")" "True $agent_pid"
	expect_eq "case 9: at READY=1 the guard's pins existed (egress, connect4, vg_state)" \
		"$("$PY" -c '
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    if r["msg"].startswith("READY=1"):
        print(all(r["paths"].values())); break' "$NOUT")" True
	n0=$(nmsgs | wc -l)
	kill -HUP "$agent_pid"
	expect_true "case 9: SIGHUP: two more messages" _topo_wait_until 5 eval '[ "$(nmsgs | wc -l)" -ge $((n0 + 2)) ]'
	expect_eq "case 9: SIGHUP: RELOADING=1 then READY=1" "$(nmsgs | tail -n +$((n0 + 1)) | cut -d';' -f1 | tr '\n' ' ')" "RELOADING=1 READY=1 "
	expect_true "case 9: the reload was applied" rec_wait 3 "$AGENT_LOG" 0 'r.get("event") == "reload" and r.get("result") == "applied"'
	agent_stop TERM
	expect_eq "case 9: agent exits 0 on SIGTERM" "$?" 0
	expect_true "case 9: STOPPING=1 is the last message" _topo_wait_until 3 eval '[ "$(nmsgs | tail -n1 | cut -d";" -f1)" = STOPPING=1 ]'
	note "case 9: messages: $(nmsgs | tr '\n' '|')"
	expect_true "case 9: enforcement stays after the agent exits (pins, guard in status)" \
		eval 'test -e "$PIN_ROOT/$GID/egress" && [ "$(gq "$GID" "g is not None")" = true ]'
fi
topo_stop "$NOTIFY_PID"

# ===========================================================================
echo "# case 10: tunnel liveness from netlink (t=$((SECONDS - started)) s)"
# map_watch CMD...: map_watch.py's line for the tunnel map around CMD.
map_watch() { "$PY" "$TOOLS/map_watch.py" "$PIN_ROOT/vg_tunnels" --ifname "$WG" --timeout 5 -- "$@" 2>>"$DIAG"; }
# map_watch_batch LINE: the same, the change made by a running `ip -batch` (no process start-up timed).
map_watch_batch() {
	"$PY" "$TOOLS/map_watch.py" "$PIN_ROOT/vg_tunnels" --ifname "$WG" --timeout 5 --stdin-line "$1" \
		-- ip -n "$TOPO_HOME" -batch - 2>>"$DIAG"
}
kv() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p; s/^$1=\([^[:space:]]*\).*/\1/p" | head -n1; }
restore_routes() {
	ip -n "$TOPO_HOME" route replace "$TOPO_INET_NET" dev "$WG" src "$VPN" metric 10 &&
		ip -n "$TOPO_HOME" route replace "$TOPO_RESOLVER_NET" dev "$WG" src "$VPN" metric 10
}
R_TDOWN='r.get("event") == "tunnel_down"'
R_TUP='r.get("event") == "tunnel_up"'
if agent_start c10 "${GUARD[@]}"; then
	ifx=$TOPO_WG_CLIENT_IFINDEX
	e2e_down='' e2e_up='' rec_down='' rec_up='' fork_down='' fork_up=''
	# Rounds 1-3: the change is written to a running `ip -batch` (the clock starts at the write);
	# round 4: a fresh `ip` process (the clock starts before fork+exec).
	for round in 1 2 3 4; do
		m=$(log_mark)
		if [ "$round" -le 3 ]; then out=$(map_watch_batch "link set dev $WG down"); else
			out=$(map_watch ip -n "$TOPO_HOME" link set dev "$WG" down); fi
		if [[ $out == changed* ]] && rec_wait 3 "$AGENT_LOG" "$m" "$R_TDOWN"; then
			if [ "$round" -le 3 ]; then e2e_down+="$(echo "$out" | kv after_us) "; else
				fork_down="$(echo "$out" | kv after_us) (ip ran $(echo "$out" | kv cmd_us))"; fi
			rec_down+="$(rec_first "$AGENT_LOG" "$m" "$R_TDOWN" 'r.get("map_updated_after_us")') "
			[ "$round" = 1 ] && ok "case 10: link down: map changed ($out), tunnel_down logged"
		else
			nok "case 10 round $round: link down: '$out', tunnel_down record: $(recq "$AGENT_LOG" "$m" "$R_TDOWN")"
		fi
		if [ "$round" = 1 ]; then
			expect_eq "case 10: link down: status tunnel absent" "$(gq "$GID" '[g["tunnel_present"], g["tunnel_ifindex"]]')" '[false, 0]'
			expect_gsend "case 10: link down: guarded UDP denied" "$CG" 2 0 no_tunnel
		fi
		m=$(log_mark)
		if [ "$round" -le 3 ]; then out=$(map_watch_batch "link set dev $WG up"); else
			out=$(map_watch ip -n "$TOPO_HOME" link set dev "$WG" up); fi
		if [[ $out == changed* ]] && rec_wait 3 "$AGENT_LOG" "$m" "$R_TUP"; then
			if [ "$round" -le 3 ]; then e2e_up+="$(echo "$out" | kv after_us) "; else
				fork_up="$(echo "$out" | kv after_us) (ip ran $(echo "$out" | kv cmd_us))"; fi
			rec_up+="$(rec_first "$AGENT_LOG" "$m" "$R_TUP" 'r.get("map_updated_after_us")') "
			[ "$round" = 1 ] && expect_eq "case 10: link up: tunnel_up record with the same ifindex" \
				"$(rec_first "$AGENT_LOG" "$m" "$R_TUP" 'r.get("ifindex")')" "$ifx"
		else
			nok "case 10 round $round: link up: '$out', tunnel_up record: $(recq "$AGENT_LOG" "$m" "$R_TUP")"
		fi
		restore_routes || nok "case 10: restore the tunnel routes"
	done
	fig "case 10: link set down -> map, end to end (us, from the write to a running ip -batch): ${e2e_down}; from before fork+exec of ip: ${fork_down}; agent's map_updated_after_us (4 rounds): ${rec_down}"
	fig "case 10: link set up -> map, end to end (us, from the write to a running ip -batch): ${e2e_up}; from before fork+exec of ip: ${fork_up}; agent's map_updated_after_us (4 rounds): ${rec_up}"
	expect_eq "case 10: after down/up: status tunnel present, same ifindex" "$(gq "$GID" '[g["tunnel_present"], g["tunnel_ifindex"]]')" "[true, $ifx]"
	expect_gsend "case 10: after down/up: guarded UDP through the tunnel" "$CG" 3 3

	m=$(log_mark)
	out=$(map_watch_batch "link del dev $WG")
	if [[ $out == changed* ]] && rec_wait 3 "$AGENT_LOG" "$m" "$R_TDOWN"; then
		fig "case 10: link del -> map, end to end (from the write to a running ip -batch): $(echo "$out" | kv after_us) us; record map_updated_after_us: $(rec_first "$AGENT_LOG" "$m" "$R_TDOWN" 'r.get("map_updated_after_us")') us"
		ok "case 10: link del: map changed ($out), tunnel_down logged"
	else
		nok "case 10: link del: '$out'"
	fi
	expect_true "case 10: wireguard-go gone after the deletion" topo_tunnel_down del
	expect_gsend "case 10: tunnel deleted: guarded UDP denied" "$CG" 2 0 no_tunnel
	m=$(log_mark)
	expect_true "case 10: tunnel recreated (topo_tunnel_up)" topo_tunnel_up
	if rec_wait 3 "$AGENT_LOG" "$m" "$R_TUP and r.get(\"ifindex\") == $TOPO_WG_CLIENT_IFINDEX"; then
		fig "case 10: recreated tunnel (ifindex $ifx -> $TOPO_WG_CLIENT_IFINDEX): record map_updated_after_us: $(rec_first "$AGENT_LOG" "$m" "$R_TUP and r.get(\"ifindex\") == $TOPO_WG_CLIENT_IFINDEX" 'r.get("map_updated_after_us")') us"
		ok "case 10: tunnel_up record with the new ifindex $TOPO_WG_CLIENT_IFINDEX"
	else
		nok "case 10: no tunnel_up record with the new ifindex: $(recq "$AGENT_LOG" "$m" 'True' 'r' | tr '\n' ' ')"
	fi
	expect_eq "case 10: status: the new ifindex" "$(gq "$GID" '[g["tunnel_present"], g["tunnel_ifindex"]]')" "[true, $TOPO_WG_CLIENT_IFINDEX]"
	expect_gsend "case 10: recreated tunnel: guarded UDP through it" "$CG" 3 3
	agent_stop TERM
fi
expect_eq "case 10: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# case 11: footprint (t=$((SECONDS - started)) s)"
# agent_sample PID: "ticks ctxsw rss_kb threads" (utime+stime of the process; voluntary +
# nonvoluntary context switches summed over its threads).
agent_sample() {
	local pid=$1 ticks ctx=0 t v n=0
	ticks=$(awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$pid/stat")
	for t in /proc/"$pid"/task/*/status; do
		v=$(awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ {s += $2} END {print s + 0}' "$t")
		ctx=$((ctx + v)) n=$((n + 1))
	done
	echo "$ticks $ctx $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status") $n"
}
# libcurl is loaded on first use (user/http.h): an agent with nothing to fetch never maps it.
if agent_start c11a "${GUARD[@]}"; then
	sleep 1
	rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
	fig "case 11: agent with no probe, webhook or Docker engine: VmRSS $rss kB"
	expect_eq "case 11: nothing to fetch: libcurl not mapped" "$(grep -c libcurl "/proc/$agent_pid/maps")" 0
	expect_true "case 11: nothing to fetch: VmRSS under 10 MB ($rss kB)" test "$rss" -lt 10240
	agent_stop TERM
fi
if hook_start c11 && agent_start c11 "${GUARD[@]}" --probe-url "$URL/ip" --webhook "$HOOK_URL"; then
	expect_true "case 11: default interval (30 s): the first probe opens the guard" rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"
	sleep 1
	read -r a_t a_c a_r _ < <(agent_sample "$agent_pid")
	sleep 10
	read -r b_t b_c b_r b_n < <(agent_sample "$agent_pid")
	fig "case 11: idle 10 s (interval 30 s, probe + webhook threads, $b_n threads): CPU $((b_t - a_t)) ticks (1/$HZ s), context switches $((b_c - a_c)) (all threads), VmRSS $a_r -> $b_r kB"
	expect_true "case 11: idle: at most 2 CPU ticks in 10 s ($((b_t - a_t)))" test $((b_t - a_t)) -le 2
	expect_true "case 11: idle: no busy polling: at most 5 context switches in 10 s ($((b_c - a_c)))" test $((b_c - a_c)) -le 5
	expect_eq "case 11: idle: VmRSS unchanged" "$b_r" "$a_r"
	expect_true "case 11: with probes and a webhook: libcurl mapped" grep -q libcurl "/proc/$agent_pid/maps"

	echo "# case 12: a second attach beside the running agent (t=$((SECONDS - started)) s)"
	m=$(log_mark)
	snap0=$(state_snapshot "$CG" "$CG2")
	timeout 30 "$VG" attach --cgroup "$CG2" --tunnel "$WG" --netns "$HNS" --probe-url "$URL/ip" \
		>"$TOPO_DIR/c12.out" 2>"$TOPO_DIR/c12.err" 9>&-
	rc=$?
	snap1=$(state_snapshot "$CG" "$CG2")
	expect_eq "case 12: second attach with --probe-url: exit 2" "$rc" 2
	expect_true "case 12: its message names the running agent's pid $agent_pid" grep -q "pid $agent_pid" "$TOPO_DIR/c12.err"
	note "case 12: $(head -n1 "$TOPO_DIR/c12.err")"
	if [ "$snap0" = "$snap1" ]; then ok "case 12: nothing changed (pins, maps, programs, agent lock)"; else
		nok "case 12: state changed: $(diff <(echo "$snap0") <(echo "$snap1") | head -n5 | tr '\n' ' ')"; fi
	timeout 30 "$VG" attach --config "$CFG" >"$TOPO_DIR/c12b.out" 2>"$TOPO_DIR/c12b.err" 9>&-
	rc=$?
	expect_eq "case 12: second attach with --config: exit 2 naming pid $agent_pid" \
		"$rc:$(grep -c "pid $agent_pid" "$TOPO_DIR/c12b.err")" "2:1"
	expect_eq "case 12: state unchanged after it too" "$(state_snapshot "$CG" "$CG2")" "$snap0"
	expect_eq "case 12: the running agent saw nothing (no new records)" "$(log_mark)" "$m"
	expect_true "case 12: the running agent still runs" _topo_pid_alive "$agent_pid"
	# A plain attach (no probe/alert options) beside the agent is allowed; the agent follows it
	# (netlink) but does not lease it: its --probe-interval 1s would mean a 3 s lease nobody renews.
	timeout 30 "$VG" attach --cgroup "$CG2" --tunnel "$WG" --netns "$HNS" --probe-interval 1s \
		>"$TOPO_DIR/c12c.out" 2>"$TOPO_DIR/c12c.err" 9>&-
	rc=$?
	expect_eq "case 12: plain attach of a second cgroup beside the agent: exit 0" "$rc" 0
	note "case 12: $(tail -n1 "$TOPO_DIR/c12c.err")"
	sleep 4.5
	expect_eq "case 12: 4.5 s later the second guard is still open, no lease to run out" \
		"$(gq "$GID2" '[g["state"], g["lease_left_s"]] if g else None')" '["open", null]'
	expect_gsend "case 12: second guard: guarded UDP through the tunnel" "$CG2" 2 2
	timeout 30 "$VG" detach --cgroup "$CG2" 2>>"$DIAG"
	agent_stop TERM
fi
[ -n "${HOOK_PID:-}" ] && topo_stop "$HOOK_PID"

# rss_rounds TAG REQLOG ARGS...: VmRSS after 10 and after 60 probe rounds (counted at the echo).
rss_rounds() {
	local tag=$1 reqlog=$2 r0 r1 r2 base
	shift 2
	agent_start "$tag" "${GUARD[@]}" --probe-interval 100ms "$@" || return
	base=$(wc -l <"$reqlog")
	if _topo_wait_until 15 eval '[ $(($(wc -l <"$reqlog") - base)) -ge 10 ]'; then
		r1=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
		if _topo_wait_until 30 eval '[ $(($(wc -l <"$reqlog") - base)) -ge 60 ]'; then
			r2=$(awk '/^VmRSS:/ {print $2}' "/proc/$agent_pid/status")
			r0=$(($(wc -l <"$reqlog") - base))
			fig "$tag: VmRSS after 10 probe rounds $r1 kB, after 60: $r2 kB (growth $((r2 - r1)) kB; $r0 rounds seen at the echo)"
			expect_true "$tag: VmRSS growth from round 10 to 60 under 256 kB ($((r2 - r1)) kB)" test $((r2 - r1)) -lt 256
		else
			nok "$tag: 60 probe rounds did not happen within 30 s"
		fi
	else
		nok "$tag: 10 probe rounds did not happen within 15 s"
	fi
	agent_stop TERM
}
rss_rounds "case 11 (HTTP, 100 ms)" "$TOPO_DIR/echo.log" --probe-url "$URL/ip"
rss_rounds "case 11 (HTTPS, 100 ms)" "$TOPO_DIR/tls.log" --probe-url "https://$I:$TLS_PORT/ip" --probe-ca "$TOPO_DIR/tls/ca.pem"

# ===========================================================================
echo "# case 12: --no-agent --lease 2s (t=$((SECONDS - started)) s)"
timeout 30 "$VG" attach "${GUARD[@]}" --no-agent --lease 2s 2>>"$DIAG"
rc=$?
t0=$(now)
expect_eq "case 12: attach --no-agent --lease 2s exits 0" "$rc" 0
expect_match "case 12: status: open, lease about 2 s" "$(gq "$GID" '[g["state"], round(g["lease_left_s"] or 0)]')" '^\["open", 2\]$'
expect_gsend "case 12: lease running: guarded UDP through the tunnel" "$CG" 2 2
tc=
while [ "$(ms_between "$t0" "$(now)")" -lt 5000 ]; do
	[ "$(fast_state)" = closed ] && { tc=$(now); break; }
	sleep 0.02
done
if [ -n "$tc" ]; then
	dt=$(ms_between "$t0" "$tc")
	fig "case 12: --no-agent --lease 2s: closed by itself $dt ms after attach returned"
	expect_true "case 12: closed about 2 s after the attach ($dt ms in 1500..2600)" test "$dt" -ge 1500 -a "$dt" -le 2600
else
	nok "case 12: --no-agent --lease 2s: still open 5 s later"
fi
expect_gsend "case 12: lease over: guarded UDP denied" "$CG" 2 0 closed

echo "# case 12: a plain attach of the agent's own guard while its probe says real IP (t=$((SECONDS - started)) s)"
# The agent closed the guard (the tunnel exits by the real address); someone runs a plain
# `attach` of the same cgroup (allowed beside the agent).  Fail closed: the guard must be
# closed again within one probe interval + timeout + 1 s, and stay closed while the probe
# still sees the real IP.
if agent_start c12d "${GUARD[@]}" --probe-url "$URL/json" --probe-interval 1s --real-ip "$REAL"; then
	expect_true "case 12 (re-attach): guard opens" rec_wait 6 "$AGENT_LOG" 0 "$R_OPEN"
	m=$(log_mark)
	real_ip_on
	expect_true "case 12 (re-attach): closed on the real IP" rec_wait 5 "$AGENT_LOG" "$m" "$R_CLOSED"
	timeout 30 "$VG" attach "${GUARD[@]}" >"$TOPO_DIR/c12d.out" 2>"$TOPO_DIR/c12d.err" 9>&-
	rc=$?
	note "case 12 (re-attach): plain attach exit $rc: $(tail -n1 "$TOPO_DIR/c12d.err")"
	note "case 12 (re-attach): state right after it: $(gq "$GID" '[g["state"], g["lease_left_s"]]')"
	sleep 3
	expect_eq "case 12 (re-attach): 3 s later (3 probes seeing $REAL) the guard is closed" "$(gstate)" closed
	expect_gsend "case 12 (re-attach): guarded UDP while the probe sees the real IP" "$CG" 2 0 closed
	real_ip_off
	agent_stop TERM
fi
expect_eq "case 12: leak_count" "$(leak_count)" 0

# ===========================================================================
echo "# cleanup (t=$((SECONDS - started)) s)"
cleanup
expect_true "no pins of our guards left" test ! -e "$PIN_ROOT/$GID" -a ! -e "$PIN_ROOT/$GID2"
expect_true "no agent pidfile left" test ! -e "$AGENT_PIDFILE"
finished=1
