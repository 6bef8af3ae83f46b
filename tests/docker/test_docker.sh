#!/usr/bin/env bash
# test_docker.sh - vpnguard-bpf against a real Docker engine (scripts/docker-test-engine.sh):
#
#   T2  a "VPN" container (--network none) whose namespace gets a veth to a server namespace
#       and a wireguard-go tunnel (tests/lib/topology.sh with TOPO_HOME_PID = its init), a
#       client container with --network container:<vpn> and --cgroup-parent a slice that
#       vpnguard guarded before the client started: traffic goes through the tunnel; with
#       the tunnel deleted, zero packets on the fallback path (nft counters on the far side),
#       while an unguarded process of the same namespace does leak there (the path is live);
#   by name  attach --container / --tunnel-container / --docker-host / DOCKER_HOST resolve a
#       container to its cgroup v2 (bpftool, status --json) and its namespace; bad names,
#       stopped containers and absent engines fail with their exit codes;
#   scan  nothing for the clean setup (cap_drop NET_RAW); an escaped process (right cgroup,
#       host namespaces), a process holding CAP_NET_RAW and a process of the container's PID
#       namespace outside its cgroup are each found, by the command (exit 3) and by the agent;
#   events  the engine's start/die stream through vpnguard's own client (vgdockerev);
#   following  the agent guarding containers by name follows their restarts (new cgroup: attached,
#       the old one detached) and the VPN container's (new namespace, tunnel made there after the
#       start: the refused reload is retried), with zero packets on the fallback path in the gap;
#       the window of guarding by name (packets a container flooding from its first instruction
#       gets out before the agent re-attaches, and the time from the start event to the reload),
#       beside the same container under a guarded slice (zero).
#
# Needs root and the engine (docker.io, installed when missing); a missing engine is a
# failure, never a skip.  Holds /run/vpnguard-kernel-tests.lock for its whole run.  Sends
# traffic only inside the namespaces it makes.  Prints one line per check, last
# "N passed, M failed".
# shellcheck source-path=SCRIPTDIR
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
VG=$repo/build/vpnguard-bpf
VGDOCKEREV=$repo/build/vgdockerev
# shellcheck source=../lib/topology.sh
. "$repo/tests/lib/topology.sh"
# shellcheck source=../kernel/cli_lib.sh
. "$repo/tests/kernel/cli_lib.sh"
# shellcheck source=../../scripts/docker-test-engine.sh
. "$repo/scripts/docker-test-engine.sh"

S=$TOPO_SUFFIX
VPN=vgvpn-$S             # the VPN container: the tunnel lives in its namespace
CLIENT=vgclient-$S       # network_mode container:VPN, in the guarded slice, cap_drop NET_RAW
RAWCAP=vgraw-$S          # the same, keeping Docker's default capabilities
BYNAME=vgbyname-$S       # network_mode container:VPN, guarded by name
FLOODN=vgfloodn-$S       # floods the LAN (the fallback path) from its start; guarded by name
FLOODS=vgfloods-$S       # the same in the guarded slice
SLICE_REL=vgtest$S/vpnguard.slice        # cgroup_parent of the guarded containers
BYNAME_PARENT=vgtest$S/byname.slice      # cgroup_parent of the container guarded by name
AGENT_PID=
finished=0

# shellcheck disable=SC2317 # called from the EXIT trap
on_exit() {
	[ -n "$AGENT_PID" ] && _topo_end_pid "$AGENT_PID" TERM
	# Guards first (by cgroup, while the cgroups exist), then containers, the world, the engine.
	if [ -e "$PIN_ROOT" ] && [ -n "${TOPO_CG_ROOT:-}" ] && [ -d "$TOPO_CG_ROOT" ]; then
		while IFS= read -r cg; do
			timeout 30 "$VG" detach --cgroup "$cg" 2>/dev/null
		done < <(find "$TOPO_CG_ROOT" -mindepth 1 -type d)
	fi
	if [ -n "${ENGINE_DIR:-}" ]; then
		timeout 60 "$DOCKER" rm -f "$CLIENT" "$RAWCAP" "$BYNAME" "$FLOODN" "$FLOODS" "$VPN" >/dev/null 2>&1
	fi
	topo_down
	engine_down
	engine_rm_cgroup_parent "vgtest$S"
	[ "$finished" = 1 ] || nok "stopped before the end"
	result_line
}

require_root
take_kernel_test_lock
for tool in bpftool "$PY" nsenter setpriv; do
	command -v "$tool" >/dev/null || { nok "missing tool: $tool"; exit 1; }
done
if ! make -s -C "$repo" all; then
	nok "make builds vpnguard-bpf, vgprobe and vgdockerev"
	exit 1
fi

echo "# the engine"
if ! engine_up; then
	nok "the Docker engine cannot start (see the engine: lines above); Docker tests cannot run"
	exit 1
fi
ok "private dockerd (pid $ENGINE_PID) answers on $ENGINE_SOCK; image $ENGINE_IMAGE imported from a tarball"

cpid() { "$DOCKER" inspect -f '{{.State.Pid}}' "$1" 2>/dev/null; }
cg_of_pid() { sed -n 's/^0:://p' "/proc/$1/cgroup"; }
# dexec CONTAINER CMD...: the result line of a command run in the container (docker exec
# joins its cgroup and namespaces, as the application's own processes are).
dexec() { timeout 30 "$DOCKER" exec "$@" 2>/dev/null; }

# ---------------------------------------------------------------------------
echo "# T2: the VPN container's namespace holds the tunnel"
# Docker turns IPv6 off in a --network none namespace; the world's veth has IPv6 addresses.
"$DOCKER" run -d --name "$VPN" --network none --sysctl net.ipv6.conf.all.disable_ipv6=0 \
	--sysctl net.ipv6.conf.default.disable_ipv6=0 "$ENGINE_IMAGE" sleep 100000 >/dev/null
VPN_PID=$(cpid "$VPN")
expect_match "VPN container runs" "$VPN_PID" '^[1-9][0-9]*$' || exit 1
TOPO_HOME_PID=$VPN_PID
if topo_up; then
	ok "topology: veth to the server namespace and a WireGuard tunnel inside the VPN container's namespace"
else
	nok "topology in the VPN container's namespace did not come up"
	exit 1
fi
expect_eq "the tunnel interface is in the VPN container's namespace" \
	"$(nsenter -t "$VPN_PID" -n ip -o link show "$TOPO_WG_CLIENT" 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1)" \
	"$TOPO_WG_CLIENT"

# The slice exists and is guarded before any client starts: no window.
SLICE=$(cg_make vpnguard.slice)
attach_rc=0
"$VG" attach --cgroup "$SLICE" --tunnel "$TOPO_WG_CLIENT" --netns "/proc/$VPN_PID/ns/net" --no-agent \
	2>"$TOPO_DIR/attach.err" || attach_rc=$?
expect_eq "attach --cgroup <slice> --tunnel --netns /proc/<vpn pid>/ns/net" "$attach_rc" 0
expect_cg_guarded "slice" "$SLICE"

"$DOCKER" run -d --name "$CLIENT" --network "container:$VPN" --cgroup-parent "/$SLICE_REL" \
	--cap-drop NET_RAW "$ENGINE_IMAGE" sleep 100000 >/dev/null
CLIENT_PID=$(cpid "$CLIENT")
expect_match "client container runs" "$CLIENT_PID" '^[1-9][0-9]*$' || exit 1
CLIENT_CG=$(cg_of_pid "$CLIENT_PID")
note "hybrid cgroups: the client's cgroup v2 (0:: line) is $CLIENT_CG"
expect_match "runc placed the client below the slice in cgroup v2" "$CLIENT_CG" "^/$SLICE_REL/[0-9a-f]{64}\$"
expect_eq "the client shares the VPN container's network namespace" \
	"$(readlink "/proc/$CLIENT_PID/ns/net")" "$(readlink "/proc/$VPN_PID/ns/net")"

leak_reset
out=$(dexec "$CLIENT" vgprobe sendto "$TOPO_INET_HOST" 7001 --count 30 --interval-us 2000)
expect_eq "client sends 30 datagrams to the Internet host" "$out" "sent 30/30"
expect_far "client traffic goes through the tunnel" "tunnel>=30"

topo_tunnel_down del
expect_true "tunnel deleted in the VPN container's namespace" _topo_not ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT"
leak_reset
out=$(dexec "$CLIENT" vgprobe sendto "$TOPO_INET_HOST" 7001 --count 30 --interval-us 2000)
expect_match "client sends with the tunnel gone: refused" "$out" '^sent 0/30 errno'
out=$(dexec "$CLIENT" vgprobe connect tcp "$TOPO_INET_HOST" 7002)
expect_match "client connects (tcp) with the tunnel gone: refused" "$out" '^errno'
expect_far "zero packets on the fallback path" ""
# The control: the fallback route is live, and only the guard stops the client.
out=$(run_in - "$TOPO_HOME" "$TOPO_VGPROBE" sendto "$TOPO_INET_HOST" 7003 --count 5 2>/dev/null)
expect_eq "an unguarded process in the same namespace sends" "$out" "sent 5/5"
expect_far "...and it does leak by the fallback path (the path the guard closes)" "leak>=5"
expect_true "tunnel back" topo_tunnel_up
# Without an agent the new ifindex is taken by attaching again (the README's limit).
"$VG" attach --cgroup "$SLICE" --tunnel "$TOPO_WG_CLIENT" --netns "/proc/$VPN_PID/ns/net" --no-agent 2>/dev/null
leak_reset
out=$(dexec "$CLIENT" vgprobe sendto "$TOPO_INET_HOST" 7001 --count 10 --interval-us 2000)
expect_eq "client sends again once re-attached" "$out" "sent 10/10"
expect_far "...through the new tunnel" "tunnel>=10"

# ---------------------------------------------------------------------------
echo "# containers by name"
BYNAME_CGDIR=$(cg_make byname.slice)
"$DOCKER" run -d --name "$BYNAME" --network "container:$VPN" --cgroup-parent "/$BYNAME_PARENT" \
	--cap-drop NET_RAW "$ENGINE_IMAGE" sleep 100000 >/dev/null
BYNAME_PID=$(cpid "$BYNAME")
BYNAME_CG=$(cg_of_pid "$BYNAME_PID")
expect_match "container to guard by name runs in its own cgroup" "$BYNAME_CG" "^/$BYNAME_PARENT/[0-9a-f]{64}\$"

vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --container "$BYNAME" --tunnel-container "$VPN" \
	--tunnel "$TOPO_WG_CLIENT" --docker-host "$DOCKER_HOST" --no-agent
expect_eq "attach --container --tunnel-container --docker-host: exit 0" "$VG_RC" 0
expect_cg_guarded "by name: the container's own cgroup" "$TOPO_CG2$BYNAME_CG"
expect_cg_unguarded "by name: not its parent" "$BYNAME_CGDIR"
BYNAME_ID=$(cg_id "$TOPO_CG2$BYNAME_CG")
expect_eq "status: the guard records the container's cgroup" "$(gq "$BYNAME_ID" 'g["cgroup"]')" "$BYNAME_CG"
expect_eq "status: the tunnel namespace is the VPN container's" "$(gq "$BYNAME_ID" 'g["netns"]')" "/proc/$VPN_PID/ns/net"
expect_eq "status: the tunnel is present there" "$(gq "$BYNAME_ID" 'g["tunnel_present"]')" "true"
leak_reset
out=$(dexec "$BYNAME" vgprobe sendto "$TOPO_INET_HOST" 7004 --count 10 --interval-us 2000)
expect_eq "container guarded by name sends" "$out" "sent 10/10"
expect_far "...through the tunnel" "tunnel>=10"
# DOCKER_HOST is honoured when --docker-host is not given (there is no /var/run/docker.sock here
# to fall back on, or if there is one, it does not know these names).
vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --container "$BYNAME" --tunnel-container "$VPN" \
	--tunnel "$TOPO_WG_CLIENT" --no-agent
expect_eq "attach --container with DOCKER_HOST from the environment: exit 0 (policy replaced)" "$VG_RC" 0
expect_eq "...still one guard on that cgroup" "$(status_json | py 'import json,sys; print(sum(1 for g in json.load(sys.stdin)["guards"] if g["cgroup"] == sys.argv[1]))' "$BYNAME_CG")" 1
# Mixed with --cgroup, and the same cgroup twice.
vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --cgroup "$TOPO_CG2$BYNAME_CG" --container "$BYNAME" \
	--tunnel "$TOPO_WG_CLIENT" --tunnel-container "$VPN" --no-agent
expect_eq "the same cgroup by path and by name: exit 2" "$VG_RC" 2
expect_match "...message" "$(cat "$TOPO_DIR/n.err")" "--container $BYNAME: given twice"

vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --container "nosuch-$S" --tunnel-container "$VPN" \
	--tunnel "$TOPO_WG_CLIENT" --no-agent
expect_eq "unknown container: exit 2" "$VG_RC" 2
expect_eq "...message" "$(cat "$TOPO_DIR/n.err")" "vpnguard-bpf: docker: container 'nosuch-$S': no such container"
vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --container "$BYNAME" --tunnel-container "$VPN" \
	--tunnel "$TOPO_WG_CLIENT" --docker-host "unix://$TOPO_DIR/no-engine.sock" --no-agent
expect_eq "no engine on the socket: exit 1" "$VG_RC" 1
expect_eq "...message names the socket and the cause" "$(cat "$TOPO_DIR/n.err")" \
	"vpnguard-bpf: docker: $TOPO_DIR/no-engine.sock: No such file or directory"
DOCKER_HOST=tcp://127.0.0.1:2375 vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --container "$BYNAME" \
	--tunnel-container "$VPN" --tunnel "$TOPO_WG_CLIENT" --no-agent
expect_eq "DOCKER_HOST tcp://: exit 2" "$VG_RC" 2
expect_match "...message" "$(cat "$TOPO_DIR/n.err")" "DOCKER_HOST tcp://127.0.0.1:2375: only unix://"
"$DOCKER" create --name "vgstopped-$S" --network none "$ENGINE_IMAGE" true >/dev/null
vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --container "vgstopped-$S" --gateway 192.0.2.1 --no-agent
expect_eq "container not running: exit 1" "$VG_RC" 1
expect_eq "...message" "$(cat "$TOPO_DIR/n.err")" "vpnguard-bpf: docker: container 'vgstopped-$S': not running (created)"
"$DOCKER" rm "vgstopped-$S" >/dev/null
vg_cap "$TOPO_DIR/n.out" "$TOPO_DIR/n.err" attach --container "$BYNAME" --tunnel "$TOPO_WG_CLIENT" \
	--tunnel-container "$VPN" --netns "/proc/$VPN_PID/ns/net" --no-agent
expect_eq "--tunnel-container with --netns: exit 2" "$VG_RC" 2

# ---------------------------------------------------------------------------
echo "# scan"
vg_cap "$TOPO_DIR/s.out" "$TOPO_DIR/s.err" scan
expect_eq "scan of the clean setup (cap_drop NET_RAW, no escape): exit 0" "$VG_RC" 0
expect_eq "...says nothing found" "$(tail -n 1 "$TOPO_DIR/s.out")" "nothing found"
expect_match "...and counted the guarded processes" "$(head -n 1 "$TOPO_DIR/s.out")" '^scanned [0-9]+ guards, [2-9][0-9]* processes'

# The s6-overlay escape: the right cgroup, the host's namespaces (no capabilities).
CLIENT_CGDIR=$TOPO_CG2$CLIENT_CG
topo_spawn_as nobody "$CLIENT_CGDIR" - sleep 600
ESC_PID=$TOPO_LAST_PID
# A process of the container holding CAP_NET_RAW: a container without cap_drop.
"$DOCKER" run -d --name "$RAWCAP" --network "container:$VPN" --cgroup-parent "/$SLICE_REL" \
	"$ENGINE_IMAGE" sleep 100000 >/dev/null
RAW_PID=$(cpid "$RAWCAP")
# A process of the client's PID namespace that never entered its cgroup.
OUTSIDE_CG=$(cg_make outside)
topo_spawn "$OUTSIDE_CG" - nsenter -t "$CLIENT_PID" -p -n sleep 600
# nsenter forks for the PID namespace: the sleep is its child, in the same cgroup.
sleep_in() { local p; while read -r p; do [ "$(cat "/proc/$p/comm" 2>/dev/null)" = sleep ] && echo "$p"; done <"$1/cgroup.procs"; }
# shellcheck disable=SC2016 # expanded by eval, at each try
_topo_wait_until 5 eval '[ -n "$(sleep_in "$OUTSIDE_CG")" ]'
OUT_PID=$(sleep_in "$OUTSIDE_CG")

vg_cap "$TOPO_DIR/s.json" "$TOPO_DIR/s.err" scan --json
expect_eq "scan --json with findings: exit 3" "$VG_RC" 3
has() { # KIND PID: the scan found it
	py 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if any(f["kind"]==sys.argv[2] and f["pid"]==int(sys.argv[3]) for f in d["findings"]) else 1)' \
		"$TOPO_DIR/s.json" "$1" "$2"
}
expect_true "netns: the escaped process (pid $ESC_PID) in the client's cgroup, host network namespace" has netns "$ESC_PID"
expect_true "pidns: the same process, host PID namespace" has pidns "$ESC_PID"
expect_true "net_raw: the container keeping Docker's default capabilities (pid $RAW_PID)" has net_raw "$RAW_PID"
expect_true "outside: the process of the client's PID namespace outside its cgroup (pid ${OUT_PID:-?})" has outside "${OUT_PID:-0}"
expect_eq "...and nothing else (4 findings)" "$(py 'import json,sys; print(len(json.load(open(sys.argv[1]))["findings"]))' "$TOPO_DIR/s.json")" 4
expect_eq "the escaped process is compared with the client's init" \
	"$(py 'import json,sys; print([f["container_pid"] for f in json.load(open(sys.argv[1]))["findings"] if f["kind"]=="netns"][0])' "$TOPO_DIR/s.json")" "$CLIENT_PID"
vg_cap "$TOPO_DIR/s.out" "$TOPO_DIR/s.err" scan
sed 's/^/#      /' "$TOPO_DIR/s.out"
expect_eq "scan (text): exit 3" "$VG_RC" 3
expect_eq "...one FOUND line per finding" "$(grep -c '^FOUND ' "$TOPO_DIR/s.out")" 4

# The agent runs the same scan and logs each finding as an event.
LOG=$TOPO_DIR/agent.jsonl
"$VG" attach --cgroup "$SLICE" --tunnel "$TOPO_WG_CLIENT" --netns "/proc/$VPN_PID/ns/net" --log "$LOG" \
	>"$TOPO_DIR/agent.out" 2>&1 &
AGENT_PID=$!
_topo_wait_until 10 grep -q '"event":"scan"' "$LOG" 2>/dev/null
scan_events() { grep '"event":"scan"' "$LOG" 2>/dev/null | py '
import json, sys
for l in sys.stdin:
    r = json.loads(l)
    print(r["reason"], r["pid"])' | sort; }
expect_eq "agent logs the 4 findings as scan events" "$(scan_events | wc -l)" 4
expect_match "...the escape among them" "$(scan_events | tr '\n' ' ')" "netns $ESC_PID"
kill -HUP "$AGENT_PID"
sleep 1
expect_eq "a second scan (SIGHUP) logs nothing it already logged" "$(scan_events | wc -l)" 4
expect_match "events shows them" "$("$VG" events 2>/dev/null | grep -c ' scan reason=')" '^[4-9]'
_topo_end_pid "$AGENT_PID" TERM
AGENT_PID=

topo_stop "$ESC_PID"
cg_remove "$OUTSIDE_CG"
"$DOCKER" rm -f "$RAWCAP" >/dev/null
vg_cap "$TOPO_DIR/s.out" "$TOPO_DIR/s.err" scan
expect_eq "scan once they are gone: exit 0" "$VG_RC" 0

# ---------------------------------------------------------------------------
echo "# the engine's event stream through vpnguard's client"
t0=$(date +%s%N)
"$DOCKER" run --rm --name "vgev-$S" --network none "$ENGINE_IMAGE" true >/dev/null
out=$(timeout 10 "$VGDOCKEREV" "$ENGINE_SOCK" "$t0" 2 2>&1 | awk '{print $1, $2}' | tr '\n' ' ')
expect_eq "start and die of a container, in order" "$out" "start vgev-$S die vgev-$S "

# ---------------------------------------------------------------------------
echo "# following containers: the agent re-applies guards by name when containers restart"
# Each flooder sends UDP to the LAN host from its first instruction for 2 s, then sleeps. The
# LAN is routed by the veth (the fallback path): what arrives there (lan on the far side) got
# out before any guard; once guarded, the socket is held to the tunnel.
FLOOD_CMD="vgprobe flood udp $TOPO_LAN_HOST 7010 --seconds 2 --interval-us 50 --unconnected >/tmp/flood.out 2>/tmp/flood.err; exec sleep 100000"
for c in "$FLOODN:/$BYNAME_PARENT" "$FLOODS:/$SLICE_REL"; do
	"$DOCKER" run -d --name "${c%%:*}" --network "container:$VPN" --cgroup-parent "${c#*:}" \
		--cap-drop NET_RAW "$ENGINE_IMAGE" sh -c "$FLOOD_CMD" >/dev/null
done
FLOG=$TOPO_DIR/follow.jsonl
"$VG" attach --container "$BYNAME" --container "$FLOODN" --tunnel-container "$VPN" \
	--tunnel "$TOPO_WG_CLIENT" --log "$FLOG" >"$TOPO_DIR/follow.out" 2>&1 &
AGENT_PID=$!
_topo_wait_until 10 grep -q 'agent running' "$TOPO_DIR/follow.out"
expect_match "agent guarding two containers by name runs" "$(cat "$TOPO_DIR/follow.out")" 'agent running'
# applied NAME: how many starts of NAME the agent followed with an applied reload.
applied() { grep '"event":"docker"' "$FLOG" 2>/dev/null | py '
import json, sys
print(sum(1 for l in sys.stdin for r in [json.loads(l)]
          if r.get("container") == sys.argv[1] and r["action"] == "start" and r.get("reload") == "applied"))' "$1"; }
# after_start NAME: after_start_ms of its last followed start.
after_start() { grep '"event":"docker"' "$FLOG" | py '
import json, sys
print([r for l in sys.stdin for r in [json.loads(l)] if r.get("container") == sys.argv[1] and r.get("reload")][-1]["after_start_ms"])' "$1"; }
applied_more() { [ "$(applied "$1")" -gt "$2" ]; } # NAME COUNT
# restart_followed NAME: docker restart, then wait for the agent's applied reload (10 s).
restart_followed() {
	local before
	before=$(applied "$1")
	"$DOCKER" restart -t 0 "$1" >/dev/null
	_topo_wait_until 10 applied_more "$1" "$before"
}

echo "# (a) a guarded client restarts"
OLD_CG=$(cg_of_pid "$(cpid "$BYNAME")")
OLD_ID=$(cg_id "$TOPO_CG2$OLD_CG")
expect_true "docker restart $BYNAME: the agent logs the start and an applied reload" restart_followed "$BYNAME"
NEW_CG=$(cg_of_pid "$(cpid "$BYNAME")")
expect_match "the restarted container has a new cgroup" "$NEW_CG" "^/$BYNAME_PARENT/[0-9a-f]{64}\$"
NEW_ID=$(cg_id "$TOPO_CG2$NEW_CG")
expect_true "...not the old one ($OLD_ID -> $NEW_ID)" [ "$NEW_ID" != "$OLD_ID" ]
expect_cg_guarded "the new cgroup" "$TOPO_CG2$NEW_CG"
expect_eq "status: a guard on the new cgroup" "$(gq "$NEW_ID" 'g["cgroup"]')" "$NEW_CG"
expect_eq "status: the old cgroup id is detached" "$(gq "$OLD_ID" 'g is None')" "true"
expect_eq "...and its pins are gone" "$(ls -d "$PIN_ROOT/$OLD_ID" 2>/dev/null)" ""
leak_reset
out=$(dexec "$BYNAME" vgprobe sendto "$TOPO_INET_HOST" 7004 --count 10 --interval-us 2000)
expect_eq "the restarted container sends" "$out" "sent 10/10"
expect_far "...through the tunnel" "tunnel>=10"

echo "# (c) the window at a container start: by name, then under a guarded slice"
sleep 2.5 # the first runs' floods are over
# flood_window NAME: restart it, wait out its flood, print "LAN_PACKETS SENT_LINE".
flood_window() {
	leak_reset
	"$DOCKER" restart -t 0 "$1" >/dev/null
	sleep 3
	topo_settle
	far_read
	echo "${FAR[lan]} $(dexec "$1" cat /tmp/flood.out)"
}
before=$(applied "$FLOODN")
w=$(flood_window "$FLOODN")
expect_gt "by name: the agent followed the restart" "$(applied "$FLOODN")" "$before"
BYNAME_PKTS=${w%% *}
BYNAME_MS=$(after_start "$FLOODN")
expect_match "by name: the flood ran (${w#* })" "${w#* }" '^ok=[0-9]+ failed=[0-9]+'
expect_match "by name: packets on the fallback path before the agent re-attached: $BYNAME_PKTS" "$BYNAME_PKTS" '^[0-9]+$'
expect_match "by name: start event to applied reload: $BYNAME_MS ms" "$BYNAME_MS" '^[0-9.]+$'
w=$(flood_window "$FLOODS")
SLICE_PKTS=${w%% *}
expect_match "slice: the flood ran (${w#* })" "${w#* }" '^ok=[0-9]+ failed=[0-9]+'
expect_eq "slice: packets on the fallback path at the container's start" "$SLICE_PKTS" 0
note "WINDOW by name: $BYNAME_PKTS packets on the fallback path, $BYNAME_MS ms from the start event to the applied reload (flood: 1 datagram / 50 us)"
note "WINDOW under a guarded slice: $SLICE_PKTS packets"

echo "# (b) the VPN container restarts: new namespace, the tunnel made again in it"
# The client floods the Internet host through the whole gap: with the tunnel gone its route is
# the fallback (the veth), until the client itself restarts into the new namespace.
dexec -d "$BYNAME" vgprobe flood udp "$TOPO_INET_HOST" 7020 --seconds 60 --interval-us 1000 >/dev/null
sleep 0.3
leak_reset
topo_tunnel_down del
"$DOCKER" restart -t 0 "$VPN" >/dev/null
VPN_PID2=$(cpid "$VPN")
expect_true "the VPN container runs again with a new namespace" [ "$(readlink "/proc/$VPN_PID2/ns/net")" != "$(readlink "/proc/$(cpid "$BYNAME")/ns/net")" ]
expect_true "topology: wire and tunnel rebuilt in the new namespace" topo_home_move "$VPN_PID2"
# The start came before the tunnel: that reload is refused and retried each second.
# shellcheck disable=SC2016 # expanded by eval, at each try
_topo_wait_until 10 eval '[ "$(gq "$NEW_ID" "g[\"netns\"]")" = "/proc/$VPN_PID2/ns/net" ]'
expect_eq "status: the guard's tunnel namespace is the new one" "$(gq "$NEW_ID" 'g["netns"]')" "/proc/$VPN_PID2/ns/net"
expect_eq "status: the tunnel is present there" "$(gq "$NEW_ID" 'g["tunnel_present"]')" "true"
expect_match "the agent logged the refused reload and the retry that applied" \
	"$(grep '"event":"reload"' "$FLOG" | tail -n 3 | tr '\n' ' ')" '"result":"refused".*"trigger":"retry".*"result":"applied"'
# Datagrams already in wireguard-go when the tunnel went may still come out of it (tunnel).
expect_far "the gap (client still in the old namespace, flooding): nothing on the fallback path" "tunnel>=0"
expect_gt "...the client's flood was denied meanwhile (no_tunnel, netns)" \
	"$(gq "$NEW_ID" 'g["denied"].get("no_tunnel", 0) + g["denied"].get("netns", 0)')" 0
OLD_ID=$NEW_ID
expect_true "docker restart $BYNAME into the new namespace: followed" restart_followed "$BYNAME"
NEW_ID=$(cg_id "$TOPO_CG2$(cg_of_pid "$(cpid "$BYNAME")")")
expect_eq "the client shares the new namespace" "$(readlink "/proc/$(cpid "$BYNAME")/ns/net")" "$(readlink "/proc/$VPN_PID2/ns/net")"
expect_eq "status: its new cgroup is guarded in the new namespace" "$(gq "$NEW_ID" 'g["netns"]')" "/proc/$VPN_PID2/ns/net"
expect_eq "status: the previous cgroup id is detached" "$(gq "$OLD_ID" 'g is None')" "true"
leak_reset
out=$(dexec "$BYNAME" vgprobe sendto "$TOPO_INET_HOST" 7004 --count 10 --interval-us 2000)
expect_eq "the client sends again" "$out" "sent 10/10"
expect_far "...through the new tunnel" "tunnel>=10"

t0=$(date +%s%N)
_topo_end_pid "$AGENT_PID" TERM
expect_true "the agent stops on SIGTERM within 2 s while following the engine's stream" \
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 2000 ]
AGENT_PID=

finished=1
