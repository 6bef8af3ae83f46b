#!/usr/bin/env bash
# make demo: a VPN dies under a "torrent client", first without vpnguard-bpf, then with it.
# Everything happens in two network namespaces this script makes and removes:
# "home" (the user's machine, with a WireGuard tunnel and a fallback route that leaks)
# and "inet" (the VPN server, which also plays the Internet and counts who it hears from).
set -u
cd "$(dirname "$0")/.."
export TOPO_QUIET=1
# shellcheck source=../tests/lib/topology.sh
. tests/lib/topology.sh

VG=$PWD/build/vpnguard-bpf
# Pins and agent of the demo's own, beside any vpnguard that guards this machine.
export VPNGUARD_PIN_ROOT=/sys/fs/bpf/vgdemo-$$ VPNGUARD_RUN_DIR=/run/vgdemo-$$
agent=
cleanup() {
	[ -n "$agent" ] && kill "$agent" 2>/dev/null && wait "$agent" 2>/dev/null
	[ -n "${cg:-}" ] && "$VG" detach --cgroup "$cg" 2>/dev/null
	topo_down
	rm -rf "$VPNGUARD_RUN_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '%s\n' "$*"; }
seen() { say "    the Internet heard: $(tunnel_count) packets from the VPN address $TOPO_VPN_IP, $(leak_count) from the REAL address $TOPO_REAL_IP"; }

# Sends UDP to the "Internet" for $1 seconds while the tunnel dies after one second.
torrent_client_while_vpn_dies() {
	leak_reset
	topo_spawn "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$TOPO_INET_HOST" 6881 \
		--seconds "$1" --unconnected >/dev/null 2>&1
	local client=$TOPO_LAST_PID
	sleep 1
	topo_tunnel_down kill
	say "    ...the VPN process was killed (SIGKILL) one second in"
	topo_stop "$client" >/dev/null 2>&1
	topo_settle 0.5
}

say "== building the world: home --WireGuard--> VPN server/Internet, fallback route via the veth"
topo_build_vgprobe && topo_up || { say "demo: could not build the test world"; exit 1; }
cg=$(cg_make torrent)

say ""
say "== (a) without vpnguard-bpf: the torrent client sends while the VPN dies"
torrent_client_while_vpn_dies 3
seen
say "    => LEAK: the Internet saw the real address once the tunnel was gone"
topo_tunnel_up

say ""
say "== (b) with vpnguard-bpf guarding the client's cgroup"
log=$TOPO_DIR/events.jsonl
# The status page and metrics at 9871 (README, "See that you are protected"), or the next free
# port: an agent that guards this machine may hold it.
http_port=$(python3 -c 'import socket
for p in range(9871, 9971):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()')
"$VG" attach --cgroup "$cg" --tunnel "$TOPO_WG_CLIENT" --netns "$TOPO_HOME_NETNS" \
	--allow "$TOPO_LAN_NET" --dns "$TOPO_RESOLVER" --log "$log" --http "127.0.0.1:$http_port" \
	2>"$TOPO_DIR/agent.err" &
agent=$!
for _ in $(seq 50); do [ -f "$VPNGUARD_RUN_DIR/agent.pid" ] && break; sleep 0.1; done
say "    $ vpnguard-bpf attach --cgroup ${cg#"$TOPO_CG2"} --tunnel $TOPO_WG_CLIENT --netns $TOPO_HOME_NETNS ..."
torrent_client_while_vpn_dies 3
seen
if [ "$(leak_count)" -eq 0 ]; then
	say "    => NO LEAK: zero packets with the real address"
else
	say "    => LEAKED $(leak_count) packets: this is a bug"
fi
say "    blocked attempts, as 'vpnguard-bpf events' shows them (first 3):"
sleep 0.5
"$VG" events | head -n 3 | sed 's/^/      /'

say ""
say "== the VPN comes back (new interface, new ifindex): traffic resumes by itself"
topo_tunnel_up
leak_reset
run_in "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" sendto "$TOPO_INET_HOST" 6881 --count 20 >/dev/null 2>&1
topo_settle 0.5
seen
say ""
"$VG" status | sed 's/^/    /'
say ""
say "== the same, for Prometheus and the status page: http://127.0.0.1:$http_port/"
python3 -c 'import sys, urllib.request
for line in urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().splitlines():
    if line.startswith(("vpnguard_guard_open", "vpnguard_tunnel_present")) or \
       (line.startswith("vpnguard_blocked_total") and not line.endswith(" 0")):
        print("    " + line)' "http://127.0.0.1:$http_port/metrics" ||
	say "    (the metrics endpoint did not answer: see $TOPO_DIR/agent.err)"
say ""
say "== cleaning up (detach, remove namespaces)"
