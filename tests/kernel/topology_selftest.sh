#!/usr/bin/env bash
# topology_selftest.sh - proves the test world of tests/lib/topology.sh works,
# with NO vpnguard involved:
#   - with the tunnel up, traffic to the "Internet" goes through WireGuard and
#     nothing leaks; IPv6 and the LAN go by the veth, as designed;
#   - when the tunnel disappears the same traffic leaks with the real IP
#     (the leak vpnguard-bpf must stop), and so do the steering tricks
#     (SO_BINDTODEVICE, IP_UNICAST_IF, IP_PKTINFO) even with the tunnel up;
#   - a recreated tunnel (new ifindex) carries the traffic again;
#   - run_in/run_in_as put a process in a cgroup and a netns, unprivileged;
#   - topo_down leaves no namespace, cgroup, process or socket behind.
# Needs root.  Prints one line per check and, last, "N passed, M failed";
# exits non-zero if anything failed.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib/topology.sh
. "$here/../lib/topology.sh"

# shellcheck source=../lib/check.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/check.sh"

finished=0
# shellcheck disable=SC2317 # called from the EXIT trap
on_exit() {
	# Also on an early exit: never leave anything behind, always print the tally.
	if [ "$finished" != 1 ]; then
		topo_down
		[ "$fail" != 0 ] || nok "stopped before the end"
	fi
	result_line
}

require_root

# vgprobe in HOME as root (stderr holds only diagnostics).
home() { ip netns exec "$TOPO_HOME" "$TOPO_VGPROBE" "$@" 2>/dev/null; }

echo "# build vgprobe"
expect_true "vgprobe builds" topo_build_vgprobe || exit 1

echo "# topo_up"
if ! topo_up; then
	nok "topo_up"
	exit 1
fi
ok "topo_up (suffix $TOPO_SUFFIX)"
expect_true "netns $TOPO_HOME exists" test -e "$TOPO_HOME_NETNS"
expect_true "netns $TOPO_INET exists" test -e "$TOPO_INET_NETNS"
expect_true "client tunnel $TOPO_WG_CLIENT in HOME" test -n "$(ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT" 2>/dev/null)"
expect_eq "client wireguard-go PID is wireguard-go" "$(cat "/proc/$TOPO_WG_CLIENT_PID/comm" 2>/dev/null)" wireguard-go
expect_eq "server wireguard-go PID is wireguard-go" "$(cat "/proc/$TOPO_WG_SERVER_PID/comm" 2>/dev/null)" wireguard-go
expect_match "WireGuard handshake done" \
	"$(ip netns exec "$TOPO_HOME" wg show "$TOPO_WG_CLIENT" latest-handshakes | awk '{print $2}')" '^[1-9][0-9]*$'
expect_match "HOME routes the Internet via the tunnel" \
	"$(ip -n "$TOPO_HOME" route get "$TOPO_INET_HOST")" "dev $TOPO_WG_CLIENT .*src $TOPO_VPN_IP"
expect_match "HOME routes the LAN via the veth" \
	"$(ip -n "$TOPO_HOME" route get "$TOPO_LAN_HOST")" "via $TOPO_GW_IP dev $TOPO_VETH_HOME"

echo "# tunnel up: Internet traffic goes through WireGuard"
leak_reset
expect_eq "sendto Internet host" "$(home sendto "$TOPO_INET_HOST" 9 --count 5)" "sent 5/5"
topo_wait_count tunnel_count 5
topo_settle 0.3
expect_ge "tunnel_count after 5 datagrams" "$(tunnel_count)" 5
expect_eq "leak_count with the tunnel up" "$(leak_count)" 0
expect_ge "WireGuard transport seen on the veth (not a leak)" "$(wg_count)" 1
expect_eq "nothing stray on the veth" "$(stray_count)" 0

topo_listen udp 5001
lp=$TOPO_LAST_PID
home sendto "$TOPO_INET_HOST" 5001 --count 5 >/dev/null
topo_settle 0.3
expect_eq "UDP sink got them from the tunnel address" "$(topo_listen_stop "$lp")" \
	"received datagrams=5 bytes=160 peer=$TOPO_VPN_IP"

topo_listen tcp 5002
lp=$TOPO_LAST_PID
expect_eq "TCP connect through the tunnel" "$(home connect tcp "$TOPO_INET_HOST" 5002)" connected
expect_eq "TCP connect to a closed port is 'refused' (reached)" \
	"$(home connect tcp "$TOPO_INET_HOST" 5003 --timeout-ms 3000)" refused
expect_match "TCP flood through the tunnel" \
	"$(home flood tcp "$TOPO_INET_HOST" 5002 --seconds 1)" '^ok=[1-9][0-9]* failed=0 '
expect_match "TCP sink got bytes from the tunnel address" "$(topo_listen_stop "$lp")" \
	"^received connections=[1-9][0-9]* bytes=[1-9][0-9]* peer=$TOPO_VPN_IP\$"
expect_eq "IPv4-mapped destination on an AF_INET6 socket" \
	"$(home connect udp "::ffff:$TOPO_INET_HOST" 9)" connected
expect_eq "resolver via the tunnel" "$(home sendto "$TOPO_RESOLVER" 53)" "sent 1/1"
topo_settle 0.3
expect_eq "leak_count still 0" "$(leak_count)" 0

echo "# tunnel up: LAN and IPv6 are outside the tunnel by design"
leak_reset
expect_eq "sendto LAN host" "$(home sendto "$TOPO_LAN_HOST" 9 --count 3)" "sent 3/3"
expect_eq "sendto IPv6 Internet host" "$(home sendto "$TOPO_INET_HOST6" 9 --count 2)" "sent 2/2"
topo_settle 0.3
expect_eq "lan_count" "$(lan_count)" 3
expect_eq "leak6_count" "$(leak6_count)" 2
expect_eq "leak_count (LAN is not a leak)" "$(leak_count)" 0
expect_eq "tunnel_count (neither went through the tunnel)" "$(tunnel_count)" 0

echo "# tunnel up: steering options leak (what the setsockopt/sendmsg layers must stop)"
leak_reset
expect_eq "SO_BINDTODEVICE veth" "$(home connect udp "$TOPO_INET_HOST" 9 --bind-dev "$TOPO_VETH_HOME")" connected
expect_eq "IP_UNICAST_IF veth" "$(home connect udp "$TOPO_INET_HOST" 9 --unicast-if "$TOPO_VETH_HOME")" connected
expect_eq "IP_PKTINFO veth" "$(home sendmsg-pktinfo "$TOPO_INET_HOST" 9 "$TOPO_VETH_HOME")" sent
topo_settle 0.3
expect_eq "each of them leaked one packet" "$(leak_count)" 3
expect_eq "nothing through the tunnel" "$(tunnel_count)" 0

echo "# tunnel down: the same traffic leaks with the real IP"
old_ifindex=$TOPO_WG_CLIENT_IFINDEX
old_pid=$TOPO_WG_CLIENT_PID
expect_true "topo_tunnel_down" topo_tunnel_down
expect_true "client interface gone" test -z "$(ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT" 2>/dev/null)"
expect_true "client wireguard-go gone" _topo_not _topo_pid_alive "$old_pid"
expect_true "client control socket gone" test ! -e "/var/run/wireguard/$TOPO_WG_CLIENT.sock"
expect_match "HOME now routes the Internet via the veth" \
	"$(ip -n "$TOPO_HOME" route get "$TOPO_INET_HOST")" "via $TOPO_GW_IP dev $TOPO_VETH_HOME .*src $TOPO_REAL_IP"
leak_reset
topo_listen udp 5001
lp=$TOPO_LAST_PID
expect_eq "sendto Internet host (nothing stops it)" "$(home sendto "$TOPO_INET_HOST" 5001 --count 5)" "sent 5/5"
topo_settle 0.3
expect_ge "leak_count after the tunnel died" "$(leak_count)" 5
expect_eq "tunnel_count" "$(tunnel_count)" 0
expect_eq "the Internet saw the real IP" "$(topo_listen_stop "$lp")" \
	"received datagrams=5 bytes=160 peer=$TOPO_REAL_IP"

echo "# tunnel recreated: new ifindex, traffic back in the tunnel"
expect_true "topo_tunnel_up" topo_tunnel_up
expect_true "ifindex changed ($old_ifindex -> $TOPO_WG_CLIENT_IFINDEX)" \
	test "$TOPO_WG_CLIENT_IFINDEX" != "$old_ifindex"
leak_reset
expect_eq "sendto Internet host" "$(home sendto "$TOPO_INET_HOST" 9 --count 5)" "sent 5/5"
topo_wait_count tunnel_count 5
topo_settle 0.3
expect_ge "tunnel_count" "$(tunnel_count)" 5
expect_eq "leak_count" "$(leak_count)" 0

echo "# tunnel killed (SIGKILL) under live traffic: the gap leaks"
leak_reset
fl_out=$TOPO_DIR/flood.out
topo_spawn - "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$TOPO_INET_HOST" 9 --seconds 3 --unconnected >"$fl_out" 2>/dev/null
fl=$TOPO_LAST_PID
sleep 0.8
expect_true "topo_tunnel_down kill" topo_tunnel_down kill
expect_true "no stale control socket after SIGKILL" test ! -e "/var/run/wireguard/$TOPO_WG_CLIENT.sock"
sleep 0.5
expect_true "topo_tunnel_up" topo_tunnel_up
# The flood ends by itself after 3 s; topo_stop only reaps it (or ends a hung one).
_topo_wait_until 5 _topo_not _topo_pid_alive "$fl"
topo_stop "$fl"
topo_settle 0.3
expect_match "flood kept sending" "$(cat "$fl_out")" '^ok=[1-9][0-9]* '
expect_ge "leak_count during the gap" "$(leak_count)" 1
expect_ge "tunnel_count before and after the gap" "$(tunnel_count)" 1

echo "# cgroups, unprivileged"
cg=$(cg_make app/torrent)
expect_eq "cg_make path" "$cg" "$TOPO_CG_ROOT/app/torrent"
home_ino=$(stat -L -c %i "$TOPO_HOME_NETNS")
# shellcheck disable=SC2016 # expanded by the inner shell, in the cgroup and netns
who=$(run_in_as nobody "$cg" "$TOPO_HOME" sh -c \
	'echo "$(id -u) $(grep "^0::" /proc/self/cgroup) $(readlink /proc/self/ns/net) $(grep CapEff /proc/self/status | cut -f2)"')
expect_eq "run_in_as: uid, cgroup, netns, no capabilities" "$who" \
	"65534 0::${cg#"$TOPO_CG2"} net:[$home_ino] 0000000000000000"
# shellcheck disable=SC2016 # expanded by the inner shell
expect_eq "run_in: root, cgroup, netns" \
	"$(run_in "$cg" "$TOPO_HOME" sh -c 'echo "$(id -u) $(grep "^0::" /proc/self/cgroup) $(readlink /proc/self/ns/net)"')" \
	"0 0::${cg#"$TOPO_CG2"} net:[$home_ino]"
leak_reset
expect_eq "unprivileged sendto through the tunnel" \
	"$(run_in_as nobody "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" sendto "$TOPO_INET_HOST" 9 --count 2 2>/dev/null)" "sent 2/2"
topo_wait_count tunnel_count 2
topo_settle 0.3
expect_ge "tunnel_count" "$(tunnel_count)" 2
expect_eq "leak_count" "$(leak_count)" 0
expect_eq "unprivileged raw socket refused" \
	"$(run_in_as nobody "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" raw 2>/dev/null)" "errno EPERM"
expect_eq "unprivileged SO_MARK refused" \
	"$(run_in_as nobody "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" setsockopt mark 7 2>/dev/null)" "errno EPERM"
expect_eq "unprivileged SO_BINDTODEVICE tunnel allowed" \
	"$(run_in_as nobody "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" setsockopt bindtodevice "$TOPO_WG_CLIENT" 2>/dev/null)" ok
expect_eq "root raw socket (ICMP echo to the Internet host)" \
	"$(run_in "$cg" "$TOPO_HOME" "$TOPO_VGPROBE" raw "$TOPO_INET_HOST" 2>/dev/null)" ok
expect_eq "run_in exit status is the command's" \
	"$(run_in "$cg" "$TOPO_HOME" sh -c 'exit 3'; echo $?)" 3
expect_eq "run_in into a missing cgroup fails with 125" \
	"$(run_in "$TOPO_CG_ROOT/nope" - true 2>/dev/null; echo $?)" 125

topo_spawn_as nobody "$cg" "$TOPO_HOME" sleep 60
sp=$TOPO_LAST_PID
sleep 0.2
expect_eq "topo_spawn_as PID is the command" "$(cat "/proc/$sp/comm" 2>/dev/null)" sleep
expect_eq "spawned PID is in the cgroup" "$(cat "$cg/cgroup.procs")" "$sp"
topo_spawn "$cg" "$TOPO_HOME" sleep 60 # left running on purpose: cg_remove must kill it
sp2=$TOPO_LAST_PID
topo_stop "$sp"
expect_true "topo_stop ended it" _topo_not _topo_pid_alive "$sp"
expect_true "cg_remove kills what is left and removes the tree" cg_remove "$TOPO_CG_ROOT/app"
expect_true "cgroup gone" test ! -d "$TOPO_CG_ROOT/app"
expect_true "its process gone" _topo_not _topo_pid_alive "$sp2"
expect_eq "cg_remove refuses paths outside the test root" "$(cg_remove "$TOPO_CG2" 2>/dev/null; echo $?)" 2

echo "# cleanup"
cg_make leftover >/dev/null # topo_down must remove cgroups too
topo_spawn - "$TOPO_INET" sleep 60 # and processes left in the namespaces
stray_pid=$TOPO_LAST_PID
TOPO_BG_PIDS= # forget it: topo_down must find it by its namespace
wgc=$TOPO_WG_CLIENT_PID wgs=$TOPO_WG_SERVER_PID dir=$TOPO_DIR
expect_true "topo_down" topo_down
expect_true "topo_down again (idempotent)" topo_down
finished=1
expect_eq "no netns of ours left" "$(ip netns list | grep -c "^vg$TOPO_SUFFIX")" 0
expect_true "no wireguard-go of ours left" _topo_not eval "_topo_pid_alive $wgc || _topo_pid_alive $wgs"
expect_true "process left in a netns was ended" _topo_not _topo_pid_alive "$stray_pid"
expect_eq "no control sockets left" "$(find /var/run/wireguard -name "vg$TOPO_SUFFIX*" 2>/dev/null | wc -l)" 0
expect_true "no cgroup left" test ! -e "$TOPO_CG_ROOT"
expect_true "no temp dir left" test ! -e "$dir"
exit 0
