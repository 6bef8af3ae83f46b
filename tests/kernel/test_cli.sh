#!/usr/bin/env bash
# test_cli.sh - real-kernel tests of vpnguard-bpf's command line: gateway mode,
# bad inputs (exit codes, messages, nothing changed), cgroup path forms, atomic
# re-attach under traffic, several guards, detach, pins as bpftool shows them,
# events (drained ring buffer, rate limit, agent log, --follow), help/version/status.
#
# Every verdict is counted on the far side (nft counters in netns INET of
# tests/lib/topology.sh) as well as in `status --json`.  Needs root, bpftool,
# python3, wireguard-go.  Holds /run/vpnguard-kernel-tests.lock for its whole
# run (other kernel test files share /sys/fs/bpf/vpnguard).  Prints one line per
# check and, last, "N passed, M failed"; exits non-zero if anything failed.
# shellcheck source-path=SCRIPTDIR
set -u

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
VG=$repo/build/vpnguard-bpf
# shellcheck source=../lib/topology.sh
. "$repo/tests/lib/topology.sh"
# shellcheck source=cli_lib.sh
. "$here/cli_lib.sh"

t_start=$(date +%s.%N)
AGENT_PID=
FOLLOW_PID=
FOREIGN_PIN=/sys/fs/bpf/vgforeign_$$
finished=0

# shellcheck disable=SC2317 # called from the EXIT trap
on_exit() {
	local cg
	[ -n "$FOLLOW_PID" ] && _topo_end_pid "$FOLLOW_PID" TERM
	[ -n "$AGENT_PID" ] && _topo_end_pid "$AGENT_PID" TERM
	# Detach what we attached, by --cgroup, before topo_down removes the
	# cgroups.  Every test cgroup, also those whose attach failed: a failed
	# attach may leave map entries behind (detach --cgroup removes those too).
	if [ -e "$PIN_ROOT" ] && [ -n "${TOPO_CG_ROOT:-}" ] && [ -d "$TOPO_CG_ROOT" ]; then
		while IFS= read -r cg; do
			timeout 30 "$VG" detach --cgroup "$cg" 2>/dev/null
		done < <(find "$TOPO_CG_ROOT" -mindepth 1 -type d)
	fi
	[ -e "$FOREIGN_PIN" ] && rm -f "$FOREIGN_PIN"
	topo_down
	[ "$finished" = 1 ] || nok "stopped before the end"
	echo "# elapsed $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s"
	result_line
}

require_root
take_kernel_test_lock
echo "# lock taken after $(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s; times below count from here"
t_start=$(date +%s.%N)

for tool in bpftool setpriv "$PY"; do
	command -v "$tool" >/dev/null || { nok "missing tool: $tool"; exit 1; }
done
echo "# build"
expect_true "make builds vpnguard-bpf and vgprobe" make -s -C "$repo" all || exit 1
expect_true "vgprobe builds" topo_build_vgprobe || exit 1
[ -x "$VG" ] || { nok "$VG missing"; exit 1; }

section() { echo "# $* (t=$(awk -v a="$t_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}') s)"; }

# attach_ok NAME ARGS...: attach must exit 0.
attach_ok() {
	local name=$1
	shift
	vg_cap "$TOPO_DIR/attach.out" "$TOPO_DIR/attach.err" attach "$@"
	if [ "$VG_RC" = 0 ]; then
		ok "$name: attach exit 0"
	else
		nok "$name: attach exit $VG_RC: $(head -3 "$TOPO_DIR/attach.err" | tr '\n' ' ')"
		return 1
	fi
}

# ---------------------------------------------------------------------------
section "case 9: --help, --version, status with nothing attached"
expect_true "no vpnguard state before the test ($PIN_ROOT absent)" test ! -e "$PIN_ROOT"
vg_cap /tmp/vgcli.$$.out /tmp/vgcli.$$.err --help
expect_eq "--help exit" "$VG_RC" 0
expect_match "--help prints the usage on stdout" "$(cat /tmp/vgcli.$$.out)" 'usage:.*vpnguard-bpf attach'
expect_eq "--help stderr empty" "$(cat /tmp/vgcli.$$.err)" ""
vg_cap /tmp/vgcli.$$.out /tmp/vgcli.$$.err --version
expect_eq "--version exit" "$VG_RC" 0
expect_match "--version on stdout" "$(cat /tmp/vgcli.$$.out)" '^vpnguard-bpf [0-9]+\.[0-9]+\.[0-9]+$'
expect_eq "--version stderr empty" "$(cat /tmp/vgcli.$$.err)" ""
vg_cap /tmp/vgcli.$$.out /tmp/vgcli.$$.err status
expect_eq "status (nothing attached) exit" "$VG_RC" 0
expect_eq "status (nothing attached) says so" "$(cat /tmp/vgcli.$$.out)" "no guards attached"
vg_cap /tmp/vgcli.$$.out /tmp/vgcli.$$.err status --json
expect_eq "status --json (nothing attached) exit" "$VG_RC" 0
expect_eq "status --json (nothing attached) is JSON with no guards" \
	"$(py 'import json,sys; d=json.load(open(sys.argv[1])); print(d["guards"])' /tmp/vgcli.$$.out 2>&1)" "[]"
rm -f /tmp/vgcli.$$.out /tmp/vgcli.$$.err

section "topology"
if ! topo_up; then
	nok "topo_up"
	exit 1
fi
ok "topo_up (suffix $TOPO_SUFFIX, cgroup2 at $TOPO_CG2)"
T=$TOPO_DIR

# A foreign pinned object, for case 6 (detach must leave it alone).
expect_true "pin a foreign map at $FOREIGN_PIN" \
	bpftool map create "$FOREIGN_PIN" type hash key 4 value 4 entries 1 name foreign

# ---------------------------------------------------------------------------
section "case 1: gateway mode"
CG_GW=$(cg_make gw)
GW_ID=$(cg_id "$CG_GW")
attach_ok "gateway guard" --cgroup "$CG_GW" --gateway "$TOPO_INET_HOST:1080" --gateway "$TOPO_RESOLVER" \
	--allow "$TOPO_LAN_NET" --dns "$TOPO_RESOLVER" --no-agent
expect_eq "attach --no-agent printed nothing on stdout" "$(cat "$T/attach.out")" ""
expect_cg_guarded "gateway guard" "$CG_GW"
expect_eq "status --json: mode" "$(gq "$GW_ID" 'g["mode"]')" gateway
expect_eq "status --json: gateways" "$(gq "$GW_ID" '",".join(g["gateways"])')" "$TOPO_INET_HOST:1080,$TOPO_RESOLVER"
expect_eq "status --json: allow, dns, state" "$(gq "$GW_ID" '" ".join([",".join(g["allow"]), ",".join(g["dns"]), g["state"]])')" \
	"$TOPO_LAN_NET $TOPO_RESOLVER open"
expect_eq "status --json: cgroup below the mount" "$(gq "$GW_ID" 'g["cgroup"]')" "$(cg_rel "$CG_GW")"

topo_listen tcp 1080 || nok "listener tcp 1080"
L_TCP=$TOPO_LAST_PID
topo_listen udp 4000 || nok "listener udp 4000"
L_UDP=$TOPO_LAST_PID

# name | vgprobe result line (ERE) | far side (unnamed counters must stay 0) | reason | reason delta | vgprobe args
GW_TABLE=(
	"TCP to gateway addr:port|^connected$|tunnel>=1|not_gateway|0|connect tcp $TOPO_INET_HOST 1080"
	"TCP to gateway addr, other port|^errno EPERM$||not_gateway|1|connect tcp $TOPO_INET_HOST 80"
	"UDP to gateway addr:port (port matches)|^sent 2/2$|tunnel=2|not_gateway|0|sendto $TOPO_INET_HOST 1080 --count 2"
	"UDP to gateway addr, other port|^sent 0/1 errno EPERM$||not_gateway|1|sendto $TOPO_INET_HOST 9"
	"UDP to a non-gateway host|^sent 0/1 errno EPERM$||not_gateway|1|sendto $TOPO_ROGUE_DNS 9"
	"UDP to port-less gateway, port 4000|^sent 3/3$|tunnel=3|not_gateway|0|sendto $TOPO_RESOLVER 4000 --count 3"
	"UDP connect to port-less gateway, port 65000|^connected$|tunnel=1|not_gateway|0|connect udp $TOPO_RESOLVER 65000"
	"DNS to the listed resolver|^sent 1/1$|tunnel=1|dns|0|sendto $TOPO_RESOLVER 53"
	"DNS to an unlisted resolver|^sent 0/1 errno EPERM$||dns|1|sendto $TOPO_ROGUE_DNS 53"
	"TCP DNS to an unlisted resolver|^errno EPERM$||dns|1|connect tcp $TOPO_ROGUE_DNS 53"
	"DNS to the gateway addr (not a resolver: dns first)|^sent 0/1 errno EPERM$||dns|1|sendto $TOPO_INET_HOST 53"
	"IPv6 UDP|^sent 0/1 errno EPERM$||ipv6|1|sendto $TOPO_INET_HOST6 9"
	"IPv6 TCP|^errno EPERM$||ipv6|1|connect tcp $TOPO_INET_HOST6 1080"
	"IPv4-mapped TCP to gateway addr:port|^connected$|tunnel>=1|ipv6|0|connect tcp $TOPO_INET_HOST 1080 --v6"
	"IPv4-mapped TCP to gateway addr, other port|^errno EPERM$||not_gateway|1|connect tcp $TOPO_INET_HOST 80 --v6"
	"LAN UDP (allowed subnet)|^sent 2/2$|lan=2|not_gateway|0|sendto $TOPO_LAN_HOST 9 --count 2"
	"LAN TCP (allowed subnet)|^connected$|lan>=1|not_gateway|0|connect tcp $TOPO_LAN_HOST 1080"
	"loopback|^sent 1/1$||not_gateway|0|sendto 127.0.0.1 9"
)
declare -A D0 D1
for row in "${GW_TABLE[@]}"; do
	IFS='|' read -r name want far reason rdelta args <<<"$row"
	for who in root nobody; do
		denied_into D0 "$GW_ID"
		leak_reset
		# shellcheck disable=SC2086 # args is a word list on purpose
		got=$(probe "$who" "$CG_GW" $args)
		expect_match "gw/$who: $name: $got" "$got" "$want"
		expect_far "gw/$who: $name" "$far"
		denied_into D1 "$GW_ID"
		expect_denied "gw/$who: $name" D0 D1 "$reason" "$rdelta"
	done
done
topo_settle 0.3
# Allowed TCP rows to port 1080: gateway, IPv4-mapped, LAN; each as root and nobody.
expect_match "far side: TCP listener 1080 got exactly the 6 allowed connections" \
	"$(topo_listen_stop "$L_TCP")" '^received connections=6 '
expect_eq "far side: UDP 4000 got the 6 datagrams from the tunnel address" \
	"$(topo_listen_stop "$L_UDP")" "received datagrams=6 bytes=192 peer=$TOPO_VPN_IP"

# ---------------------------------------------------------------------------
section "case 4: re-attach replaces the policy atomically"
CG_T=$(cg_make tun)
T_ID=$(cg_id "$CG_T")
attach_ok "tunnel guard" --cgroup "$CG_T" --tunnel "$TOPO_WG_CLIENT" --netns "$TOPO_HOME_NETNS" \
	--allow "$TOPO_LAN_NET" --dns "$TOPO_RESOLVER" --no-agent
expect_cg_guarded "tunnel guard" "$CG_T"
progs_before=$(bpftool -j cgroup show "$CG_T" | py 'import json,sys; print(sorted(p["id"] for p in json.load(sys.stdin)))')
veth_ifx=$(ip netns exec "$TOPO_HOME" cat "/sys/class/net/$TOPO_VETH_HOME/ifindex")
expect_eq "tunnel guard: its tc program on the veth alone (not lo or the tunnel)" "$(tc_ifindexes "$T_ID")" "$veth_ifx"
tc_before=$(tc_prog_id "$T_ID")
# Before: DNS to 198.51.100.53 is not allowed, the LAN is.
denied_into D0 "$T_ID"
leak_reset
expect_eq "before: DNS to $TOPO_ROGUE_DNS denied" "$(probe root "$CG_T" sendto "$TOPO_ROGUE_DNS" 53)" "sent 0/1 errno EPERM"
expect_eq "before: LAN allowed" "$(probe root "$CG_T" sendto "$TOPO_LAN_HOST" 9)" "sent 1/1"
expect_far "before" "lan=1"
denied_into D1 "$T_ID"
expect_denied "before" D0 D1 dns 1

denied_into D0 "$T_ID"
leak_reset
probe_out1=$T/flood.connected
probe_out2=$T/flood.unconnected
# The floods run until stopped (they report on SIGTERM): on a loaded machine the re-attaches
# may take longer than any fixed flood would.
topo_spawn "$CG_T" "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$TOPO_INET_HOST" 9 --seconds 120 >"$probe_out1" 2>/dev/null
fl1=$TOPO_LAST_PID
topo_spawn "$CG_T" "$TOPO_HOME" "$TOPO_VGPROBE" flood udp "$TOPO_INET_HOST" 9 --seconds 120 --unconnected >"$probe_out2" 2>/dev/null
fl2=$TOPO_LAST_PID
sleep 0.4
REATTACH=(
	"--allow $TOPO_LAN_NET --dns $TOPO_RESOLVER --dns 203.0.113.54"
	"--dns $TOPO_RESOLVER"
	"--allow 192.0.2.0/25 --dns $TOPO_RESOLVER"
	"--allow 10.0.0.0/8 --dns $TOPO_ROGUE_DNS"
	"--dns $TOPO_ROGUE_DNS --dns $TOPO_RESOLVER"
)
i=0
for extra in "${REATTACH[@]}"; do
	i=$((i + 1))
	# shellcheck disable=SC2086
	vg_cap "$T/re.out" "$T/re.err" attach --cgroup "$CG_T" --tunnel "$TOPO_WG_CLIENT" \
		--netns "$TOPO_HOME_NETNS" $extra --no-agent
	expect_eq "re-attach $i under flood ($extra) exit" "$VG_RC" 0
	sleep 0.3
done
alive_after=0
_topo_pid_alive "$fl1" && _topo_pid_alive "$fl2" && alive_after=1
expect_eq "both floods were still running after the 5th re-attach" "$alive_after" 1
sleep 0.3
topo_stop "$fl1"
topo_stop "$fl2"
r1=$(cat "$probe_out1")
r2=$(cat "$probe_out2")
expect_match "connected UDP flood: no failed send ($r1)" "$r1" '^ok=[1-9][0-9]* failed=0 '
expect_match "unconnected UDP flood: no failed send ($r2)" "$r2" '^ok=[1-9][0-9]* failed=0 '
sent=$(($(echo "$r1" | sed -n 's/^ok=\([0-9]*\).*/\1/p') + $(echo "$r2" | sed -n 's/^ok=\([0-9]*\).*/\1/p')))
far_check "tunnel>=1" >/dev/null
note "floods: $sent datagrams sent; far side $(far_line)"
FAR_TUNNEL=${FAR[tunnel]}
expect_eq "floods: nothing leaked (leak, leak6, vpnsrc, stray)" \
	"${FAR[leak]} ${FAR[leak6]} ${FAR[vpnsrc]} ${FAR[stray]}" "0 0 0 0"
expect_ge "floods: tunnel_count >= 90% of the $sent sends" "$((FAR_TUNNEL * 10))" "$((sent * 9))"
denied_into D1 "$T_ID"
expect_denied "floods + 5 re-attaches" D0 D1 no_policy 0
expect_cg_guarded "after 5 re-attaches" "$CG_T"
expect_eq "after 5 re-attaches: the same program ids (no duplicates, none replaced)" \
	"$(bpftool -j cgroup show "$CG_T" | py 'import json,sys; print(sorted(p["id"] for p in json.load(sys.stdin)))')" "$progs_before"
expect_eq "after 5 re-attaches: the tc program still on the veth alone" "$(tc_ifindexes "$T_ID")" "$veth_ifx"
expect_eq "after 5 re-attaches: the same tc program (same build: not replaced)" "$(tc_prog_id "$T_ID")" "$tc_before"
expect_eq "status: the last policy (dns, allow)" "$(gq "$T_ID" '",".join(g["dns"]) + " " + ",".join(g["allow"])')" \
	"$TOPO_ROGUE_DNS,$TOPO_RESOLVER "
denied_into D0 "$T_ID"
leak_reset
expect_eq "new policy: DNS to $TOPO_ROGUE_DNS (only the new --dns allows it)" \
	"$(probe nobody "$CG_T" sendto "$TOPO_ROGUE_DNS" 53)" "sent 1/1"
expect_far "new policy: DNS through the tunnel" "tunnel=1"
denied_into D1 "$T_ID"
expect_denied "new policy: DNS" D0 D1 dns 0
denied_into D0 "$T_ID"
leak_reset
expect_eq "new policy: LAN no longer allowed, so steered into the tunnel" \
	"$(probe nobody "$CG_T" sendto "$TOPO_LAN_HOST" 9)" "sent 1/1"
expect_far "new policy: LAN" "tunnel=1"
denied_into D1 "$T_ID"
expect_denied "new policy: LAN" D0 D1 off_tunnel 0

section "case 4b: tunnel -> gateway by re-attach"
expect_eq "tc program on the veth before the switch" "$(tc_ifindexes "$T_ID")" "$veth_ifx"
tc_before=$(tc_prog_id "$T_ID")
attach_ok "switch to gateway" --cgroup "$CG_T" --gateway "$TOPO_INET_HOST" --no-agent
expect_eq "switch: status mode" "$(gq "$T_ID" 'g["mode"]')" gateway
expect_eq "switch: tc_ pins removed" "$(find "$PIN_ROOT/$T_ID" -name 'tc_*' | wc -l)" 0
# shellcheck disable=SC2016 # expanded by eval, each poll
_topo_wait_until 3 eval '! prog_alive "$tc_before"'
expect_true "switch: the tc program is gone (detached from every interface, unpinned)" _topo_not prog_alive "$tc_before"
expect_cg_guarded "switch" "$CG_T"
denied_into D0 "$T_ID"
leak_reset
expect_eq "switch: gateway host allowed" "$(probe root "$CG_T" sendto "$TOPO_INET_HOST" 9)" "sent 1/1"
expect_eq "switch: other host not_gateway" "$(probe root "$CG_T" sendto "$TOPO_ROGUE_DNS" 9)" "sent 0/1 errno EPERM"
expect_far "switch" "tunnel=1"
denied_into D1 "$T_ID"
expect_denied "switch" D0 D1 not_gateway 1

# ---------------------------------------------------------------------------
section "case 5: several guards"
CG_A=$(cg_make multiA)
CG_B=$(cg_make multiB)
A_ID=$(cg_id "$CG_A")
B_ID=$(cg_id "$CG_B")
attach_ok "guard A (tunnel)" --cgroup "$CG_A" --tunnel "$TOPO_WG_CLIENT" --netns "$TOPO_HOME_NETNS" \
	--dns "$TOPO_RESOLVER" --no-agent
attach_ok "guard B (gateway)" --cgroup "$CG_B" --gateway "$TOPO_INET_HOST:1080" --allow "$TOPO_LAN_NET" --no-agent
topo_listen tcp 1080 || nok "listener tcp 1080"
L_TCP=$TOPO_LAST_PID
# guard | name | result | far | reason | delta | args
MULTI_TABLE=(
	"A|Internet host through the tunnel|^sent 1/1$|tunnel=1|not_gateway|0|sendto $TOPO_INET_HOST 9"
	"A|any host through the tunnel (no gateway rule)|^sent 1/1$|tunnel=1|not_gateway|0|sendto $TOPO_ROGUE_DNS 9"
	"A|IPv6|^sent 0/1 errno EPERM$||ipv6|1|sendto $TOPO_INET_HOST6 9"
	"A|LAN not allowed for A: steered into the tunnel|^sent 1/1$|tunnel=1|off_tunnel|0|sendto $TOPO_LAN_HOST 9"
	"B|non-gateway host|^sent 0/1 errno EPERM$||not_gateway|1|sendto $TOPO_ROGUE_DNS 9"
	"B|gateway addr, other port|^sent 0/1 errno EPERM$||not_gateway|1|sendto $TOPO_INET_HOST 9"
	"B|gateway addr:port|^connected$|tunnel>=1|not_gateway|0|connect tcp $TOPO_INET_HOST 1080"
	"B|LAN allowed for B|^sent 1/1$|lan=1|not_gateway|0|sendto $TOPO_LAN_HOST 9"
)
run_multi_table() { # PREFIX
	local row g name want far reason rdelta args cg id
	for row in "${MULTI_TABLE[@]}"; do
		IFS='|' read -r g name want far reason rdelta args <<<"$row"
		if [ "$g" = A ]; then cg=$CG_A id=$A_ID; else cg=$CG_B id=$B_ID; fi
		denied_into D0 "$id"
		leak_reset
		# shellcheck disable=SC2086
		got=$(probe nobody "$cg" $args)
		expect_match "$1 $g: $name: $got" "$got" "$want"
		expect_far "$1 $g: $name" "$far"
		denied_into D1 "$id"
		expect_denied "$1 $g: $name" D0 D1 "$reason" "$rdelta"
	done
}
run_multi_table multi
vg_cap "$T/st.out" "$T/st.err" status
expect_eq "status exit" "$VG_RC" 0
expect_true "status lists A" grep -qxF "guard $(cg_rel "$CG_A") (cgroup id $A_ID)" "$T/st.out"
expect_true "status lists B" grep -qxF "guard $(cg_rel "$CG_B") (cgroup id $B_ID)" "$T/st.out"
expect_match "status: A is tunnel mode, tunnel present" "$(grep -A1 "^guard $(cg_rel "$CG_A") " "$T/st.out" | tail -1)" \
	"mode +tunnel $TOPO_WG_CLIENT in netns $TOPO_HOME_NETNS \(present\)"
expect_eq "status --json: A and B modes" "$(gq "$A_ID" 'g["mode"]') $(gq "$B_ID" 'g["mode"]')" "tunnel gateway"
expect_eq "status --json: A tunnel facts" \
	"$(gq "$A_ID" '"%s %s %s" % (g["tunnel"], g["tunnel_ifindex"], g["tunnel_present"])')" \
	"$TOPO_WG_CLIENT $TOPO_WG_CLIENT_IFINDEX True"

# ---------------------------------------------------------------------------
section "case 7: bpftool shows field names; pin modes"
pol=$(bpftool map dump pinned "$PIN_ROOT/vg_policy" 2>&1)
for f in mode netns_cookie tunnel allow dns gw n_allow; do
	expect_true "vg_policy dump names field \"$f\"" grep -q "\"$f\":" <<<"$pol"
done
tun=$(bpftool map dump pinned "$PIN_ROOT/vg_tunnels" 2>&1)
for f in ifname ifindex netns_cookie addrs; do
	expect_true "vg_tunnels dump names field \"$f\"" grep -q "\"$f\":" <<<"$tun"
done
expect_true "vg_tunnels: $TOPO_WG_CLIENT with ifindex $TOPO_WG_CLIENT_IFINDEX" py '
import json, sys
d = json.loads(sys.argv[1])
sys.exit(0 if any(e["key"]["ifname"] == sys.argv[2] and e["value"]["ifindex"] == int(sys.argv[3]) for e in d) else 1)' \
	"$tun" "$TOPO_WG_CLIENT" "$TOPO_WG_CLIENT_IFINDEX"
cnt=$(bpftool map dump pinned "$PIN_ROOT/vg_counters" 2>&1)
for f in cgroup_id reason denied; do
	expect_true "vg_counters dump names field \"$f\"" grep -q "\"$f\":" <<<"$cnt"
done
st=$(bpftool map dump pinned "$PIN_ROOT/vg_state" 2>&1)
for f in state lease_deadline_ns; do
	expect_true "vg_state dump names field \"$f\"" grep -q "\"$f\":" <<<"$st"
done
expect_true "vg_guards dump names field \"cgroup\"" grep -q '"cgroup":' <<<"$(bpftool map dump pinned "$PIN_ROOT/vg_guards" 2>&1)"
expect_eq "pin root directory mode" "$(stat -c %a "$PIN_ROOT")" 700
bad_modes=$(find "$PIN_ROOT" -mindepth 1 \( -type d ! -perm 700 -o ! -type d ! -perm 600 \) -printf '%m %p\n')
expect_eq "every pin 0600 and every guard directory 0700 ($(find "$PIN_ROOT" -mindepth 1 | wc -l) entries)" "$bad_modes" ""
expect_eq "pins owned by root" "$(find "$PIN_ROOT" ! -user root | wc -l)" 0
for m in vg_policy vg_state vg_guards vg_tunnels vg_counters vg_ratelimit vg_events vg_tundev; do
	[ -e "$PIN_ROOT/$m" ] || nok "map pin $m missing"
done
expect_eq "guard A pins" "$(find "$PIN_ROOT/$A_ID" -mindepth 1 -printf '%f\n' | sed 's/^tc_.*/tc_/' | sort | tr '\n' ' ')" \
	"connect4 connect6 egress sendmsg4 sendmsg6 setsockopt sock_create tc_ "

# ---------------------------------------------------------------------------
section "case 2: bad inputs change nothing"
CG_X=$(cg_make badx)
CG_X2=$(cg_make badx2)
long_name=$(printf 'x%.0s' $(seq 1 200))
CG_LONG=$(cg_make "long/$long_name")
printf 'not a netns\n' >"$T/plainfile"
snap_cgs=("$CG_A" "$CG_B" "$CG_GW" "$CG_T" "$CG_X" "$CG_X2" "$CG_LONG")
base=$(state_snapshot "${snap_cgs[@]}")
GWA="--gateway $TOPO_INET_HOST"
# name | exit (ERE) | text stderr must name | user | args
BAD_TABLE=(
	"unknown flag|^2$|--bogus|root|attach --cgroup $CG_X $GWA --no-agent --bogus"
	"unknown command|^2$|frobnicate|root|frobnicate --cgroup $CG_X"
	"missing --cgroup|^2$|--cgroup|root|attach $GWA --no-agent"
	"--cgroup path that does not exist|^2$|$TOPO_CG_ROOT/nope|root|attach --cgroup $TOPO_CG_ROOT/nope $GWA --no-agent"
	"--cgroup a normal directory (/tmp)|^2$|/tmp|root|attach --cgroup /tmp $GWA --no-agent"
	"--cgroup a regular file in cgroupfs|^2$|$CG_X/cgroup.procs|root|attach --cgroup $CG_X/cgroup.procs $GWA --no-agent"
	"--allow 10.0.0.0/33|^2$|10.0.0.0/33|root|attach --cgroup $CG_X $GWA --allow 10.0.0.0/33 --no-agent"
	"--allow lan|^2$|lan|root|attach --cgroup $CG_X $GWA --allow lan --no-agent"
	"--dns not an address|^2$|203.0.113.999|root|attach --cgroup $CG_X $GWA --dns 203.0.113.999 --no-agent"
	"--gateway port 0|^2$|$TOPO_INET_HOST:0|root|attach --cgroup $CG_X --gateway $TOPO_INET_HOST:0 --no-agent"
	"--gateway port 65536|^2$|$TOPO_INET_HOST:65536|root|attach --cgroup $CG_X --gateway $TOPO_INET_HOST:65536 --no-agent"
	"--tunnel missing in the netns|^2$|nosuchtun0|root|attach --cgroup $CG_X --tunnel nosuchtun0 --netns $TOPO_HOME_NETNS --no-agent"
	"--tunnel of HOME without --netns (not in this netns)|^2$|$TOPO_WG_CLIENT|root|attach --cgroup $CG_X --tunnel $TOPO_WG_CLIENT --no-agent"
	"--netns a regular file|^2$|$T/plainfile|root|attach --cgroup $CG_X --tunnel $TOPO_WG_CLIENT --netns $T/plainfile --no-agent"
	"--netns missing|^2$|/run/netns/vgnosuch$$|root|attach --cgroup $CG_X --tunnel $TOPO_WG_CLIENT --netns /run/netns/vgnosuch$$ --no-agent"
	"--tunnel and --gateway|^2$|--tunnel|root|attach --cgroup $CG_X --tunnel $TOPO_WG_CLIENT --netns $TOPO_HOME_NETNS $GWA --no-agent"
	"same cgroup twice|^2$|$CG_X|root|attach --cgroup $CG_X --cgroup $CG_X $GWA --no-agent"
	"detach --cgroup /tmp|^2$|/tmp|root|detach --cgroup /tmp"
	"not root: attach|^1$|root|nobody|attach --cgroup $CG_X $GWA --no-agent"
	"not root: detach of an attached guard|^1$|root|nobody|detach --cgroup $CG_A"
	"not root: detach all|^1$|root|nobody|detach"
	"not root: status|^1$|root|nobody|status"
	"not root: events|^1$|root|nobody|events"
	"3 cgroups, the last one missing|^2$|$TOPO_CG_ROOT/nope|root|attach --cgroup $CG_X --cgroup $CG_X2 --cgroup $TOPO_CG_ROOT/nope $GWA --no-agent"
	"3 cgroups, the last one's path too long to record|^[12]$|$long_name|root|attach --cgroup $CG_X --cgroup $CG_X2 --cgroup $CG_LONG $GWA --no-agent"
	"3 tunnel-mode cgroups, the last one's path too long|^[12]$|$long_name|root|attach --cgroup $CG_X --cgroup $CG_X2 --cgroup $CG_LONG --tunnel $TOPO_WG_CLIENT --netns $TOPO_HOME_NETNS --no-agent"
)
_topo_setpriv_argv nobody
for row in "${BAD_TABLE[@]}"; do
	IFS='|' read -r name want needle who args <<<"$row"
	# shellcheck disable=SC2086
	if [ "$who" = root ]; then
		(cd / && timeout 30 "$VG" $args >"$T/bad.out" 2>"$T/bad.err")
	else
		(cd / && timeout 30 "${_topo_setpriv[@]}" "$VG" $args >"$T/bad.out" 2>"$T/bad.err")
	fi
	rc=$?
	msgs=$(grep -c '^vpnguard-bpf:' "$T/bad.err")
	first=$(head -1 "$T/bad.err")
	if [[ $rc =~ $want ]] && [ ! -s "$T/bad.out" ] && [ "$msgs" = 1 ] && [[ $first == vpnguard-bpf:* ]] &&
		[[ $first == *"$needle"* ]]; then
		ok "bad input: $name: exit $rc, stdout empty, stderr: $(cut -c1-150 <<<"$first")"
	else
		nok "bad input: $name: exit $rc (want /$want/), stdout $(wc -c <"$T/bad.out") bytes, $msgs 'vpnguard-bpf:' lines, first: '$first' (must name '$needle')"
	fi
	now=$(state_snapshot "${snap_cgs[@]}")
	if [ "$now" = "$base" ]; then
		ok "bad input: $name: nothing changed (pins, maps, cgroup programs)"
	else
		nok "bad input: $name: state changed:"
		diff <(echo "$base") <(echo "$now") | grep '^[<>]' | head -12 | cut -c1-200 | sed 's/^/#      /'
		# Put things back so the next case is judged on its own (a failed
		# attach may leave map entries of badx/badx2 behind).
		vg detach --cgroup "$CG_X" --cgroup "$CG_X2" 2>/dev/null
		base=$(state_snapshot "${snap_cgs[@]}")
	fi
done
# Whatever a failed attach left behind would pollute the next cases: remove it
# (detach --cgroup also deletes map entries of a guard that has no pins).
vg detach --cgroup "$CG_X" --cgroup "$CG_X2" 2>/dev/null
expect_cg_unguarded "after the failed multi-cgroup attaches: $CG_X" "$CG_X"
expect_cg_unguarded "after the failed multi-cgroup attaches: $CG_X2" "$CG_X2"
expect_true "no pins for $CG_X or $CG_X2" test ! -e "$PIN_ROOT/$(cg_id "$CG_X")" -a ! -e "$PIN_ROOT/$(cg_id "$CG_X2")"
leak_reset
expect_eq "$CG_X still unguarded: IPv6 goes out" "$(probe root "$CG_X" sendto "$TOPO_INET_HOST6" 9)" "sent 1/1"
expect_far "$CG_X unguarded" "leak6=1"
run_multi_table "after bad inputs:"

# ---------------------------------------------------------------------------
section "case 5b: detach --cgroup A removes only A"
for m in vg_policy vg_state vg_guards vg_counters; do
	expect_ge "before detach: $m has entries of A" "$(map_refs "$m" "$A_ID")" 1
done
a_tc=$(tc_prog_id "$A_ID")
expect_true "A's tc program is loaded before detach" prog_alive "$a_tc"
vg_cap "$T/det.out" "$T/det.err" detach --cgroup "$CG_A"
expect_eq "detach --cgroup A exit" "$VG_RC" 0
expect_eq "detach --cgroup A: stdout and stderr empty" "$(cat "$T/det.out" "$T/det.err")" ""
expect_true "A's pin directory is gone" test ! -e "$PIN_ROOT/$A_ID"
for m in vg_policy vg_state vg_guards vg_counters vg_ratelimit; do
	expect_eq "A's entries gone from $m" "$(map_refs "$m" "$A_ID")" 0
done
expect_eq "vg_tunnels: no entry left for a tunnel no guard uses" "$(map_len vg_tunnels)" 0
expect_cg_unguarded "A" "$CG_A"
# shellcheck disable=SC2016 # expanded by eval, each poll
_topo_wait_until 3 eval '! prog_alive "$a_tc"'
expect_true "A's tc program is gone" _topo_not prog_alive "$a_tc"
expect_cg_guarded "B untouched" "$CG_B"
expect_true "B's pins untouched" test -e "$PIN_ROOT/$B_ID/egress"
expect_eq "status --json: B still there, A gone" "$(gq "$B_ID" 'g["mode"]') $(gq "$A_ID" 'g')" "gateway null"
expect_eq "status --json: guards now" "$(gq 0 'sorted(x["cgroup_id"] for x in d["guards"])')" \
	"$(printf '%s\n' "$GW_ID" "$T_ID" "$B_ID" | sort -n | tr '\n' ',' | sed 's/,$//; s/,/, /g; s/^/[/; s/$/]/')"
leak_reset
expect_eq "A unguarded: IPv6 now goes out" "$(probe nobody "$CG_A" sendto "$TOPO_INET_HOST6" 9)" "sent 1/1"
expect_far "A unguarded: IPv6" "leak6=1"
MULTI_TABLE=("${MULTI_TABLE[@]:4}") # B's rows
run_multi_table "after detach A:"
# B's allowed TCP row ran 3 times: case 5, after the bad inputs, after detach A.
expect_match "far side: TCP listener 1080 got B's 3 connections" "$(topo_listen_stop "$L_TCP")" '^received connections=3 '

# ---------------------------------------------------------------------------
section "case 3: cgroup path forms"
CG_P=$(cg_make paths)
P_ID=$(cg_id "$CG_P")
P_REL=$(cg_rel "$CG_P")
FORMS=("$CG_P" "$P_REL" "${P_REL#/}" "/sys/fs/cgroup$P_REL" "$CG_P/")
note "cgroup2 mount: $TOPO_CG2; forms: ${FORMS[*]}"
[ "$TOPO_CG2" != /sys/fs/cgroup ] || nok "this machine is not hybrid: the /sys/fs/cgroup/... form is not exercised"
n=${#FORMS[@]}
for ((i = 0; i < n; i++)); do
	form=${FORMS[$i]}
	dform=${FORMS[$(((i + 1) % n))]}
	vg_cap "$T/p.out" "$T/p.err" attach --cgroup "$form" --gateway "$TOPO_INET_HOST" --no-agent
	expect_eq "attach --cgroup '$form' exit (cwd /)" "$VG_RC" 0
	expect_true "'$form': guard directory $PIN_ROOT/$P_ID" test -e "$PIN_ROOT/$P_ID/egress"
	expect_eq "'$form': status cgroup" "$(gq "$P_ID" 'g["cgroup"]')" "$P_REL"
	expect_cg_guarded "'$form'" "$CG_P"
	expect_eq "'$form': enforced (IPv6 denied)" "$(probe root "$CG_P" sendto "$TOPO_INET_HOST6" 9)" "sent 0/1 errno EPERM"
	(cd / && timeout 30 "$VG" detach --cgroup "$dform" >"$T/p.out" 2>"$T/p.err")
	expect_eq "detach --cgroup '$dform' exit" "$?" 0
	expect_true "'$dform': guard directory gone" test ! -e "$PIN_ROOT/$P_ID"
	expect_cg_unguarded "'$dform' detached" "$CG_P"
done
# A full path with ".." components resolves to the same cgroup.
vg_cap "$T/p.out" "$T/p.err" attach --cgroup "$TOPO_CG2/vgtest$TOPO_SUFFIX/../vgtest$TOPO_SUFFIX/paths" \
	--gateway "$TOPO_INET_HOST" --no-agent
expect_eq "attach with .. components exit" "$VG_RC" 0
expect_eq "with .. components: status cgroup" "$(gq "$P_ID" 'g["cgroup"]')" "$P_REL"
vg detach --cgroup "$CG_P" 2>/dev/null
expect_true "detached again" test ! -e "$PIN_ROOT/$P_ID"

# ---------------------------------------------------------------------------
section "case 8: events"
vg events --json >/dev/null 2>&1 # drain what earlier cases left
sleep 1.1                         # fresh rate-limit windows
P_OUT=$T/probe.out
probe_pid root "$CG_GW" "$P_OUT" connect tcp "$TOPO_INET_HOST" 80
E1=$PROBE_PID
expect_eq "denial 1 (connect not_gateway)" "$(cat "$P_OUT") exit $PROBE_RC" "errno EPERM exit 1"
probe_pid root "$CG_GW" "$P_OUT" sendto "$TOPO_ROGUE_DNS" 53
E2=$PROBE_PID
expect_eq "denial 2 (sendto dns)" "$(cat "$P_OUT") exit $PROBE_RC" "sent 0/1 errno EPERM exit 1"
probe_pid nobody "$CG_GW" "$P_OUT" sendto "$TOPO_INET_HOST6" 9
E3=$PROBE_PID
expect_eq "denial 3 (sendto ipv6, nobody)" "$(cat "$P_OUT") exit $PROBE_RC" "sent 0/1 errno EPERM exit 1"
vg_cap "$T/ev.out" "$T/ev.err" events --json
expect_eq "events --json exit" "$VG_RC" 0
expect_eq "events --json: stderr empty" "$(cat "$T/ev.err")" ""
expect_eq "events --json: 3 lines" "$(wc -l <"$T/ev.out")" 3
expect_eq "events --json: all valid JSON objects" "$(json_lines_bad <"$T/ev.out")" 0
GW_REL=$(cg_rel "$CG_GW")
# pid|reason|hook|proto|family|dst|dport|uid
for want in "$E1|not_gateway|connect4|tcp|ipv4|$TOPO_INET_HOST|80|0" \
	"$E2|dns|sendmsg4|udp|ipv4|$TOPO_ROGUE_DNS|53|0" \
	"$E3|ipv6|sendmsg6|udp|ipv6|$TOPO_INET_HOST6|9|65534"; do
	got=$(py '
import json, sys, datetime
want = sys.argv[1].split("|")
recs = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
r = [x for x in recs if x.get("pid") == int(want[0])]
if len(r) != 1:
    print("no single record with pid", want[0]); sys.exit()
r = r[0]
missing = [k for k in ("time", "event", "reason", "hook", "cgroup", "cgroup_id", "pid", "uid", "comm", "proto", "family", "dst", "dport", "ifindex") if k not in r]
got = [r.get("pid"), r.get("reason"), r.get("hook"), r.get("proto"), r.get("family"), r.get("dst"), r.get("dport"), r.get("uid")]
t = datetime.datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
age = (datetime.datetime.now(datetime.timezone.utc) - t).total_seconds()
print("|".join(str(x) for x in got), r.get("event"), r.get("comm"), r.get("cgroup"), r.get("cgroup_id"),
      "time-ok" if -5 < age < 60 else "time-off(%s)" % r["time"], "missing:%s" % ",".join(missing))' "$want" "$T/ev.out")
	expect_eq "event of pid ${want%%|*}" "$got" "$want blocked vgprobe $GW_REL $GW_ID time-ok missing:"
done
vg_cap "$T/ev2.out" "$T/ev2.err" events --json
expect_eq "second events --json: exit 0, nothing new (drained)" "$VG_RC:$(cat "$T/ev2.out")" "0:"
probe_pid root "$CG_GW" "$P_OUT" sendto "$TOPO_ROGUE_DNS" 53
E4=$PROBE_PID
vg_cap "$T/ev3.out" "$T/ev3.err" events
expect_eq "events (human): exit 0, one line" "$VG_RC $(wc -l <"$T/ev3.out")" "0 1"
line=$(cat "$T/ev3.out")
note "human line: $line"
expect_match "events (human) line: BLOCKED, dst:port, reason, comm, pid, cgroup" "$line" \
	"BLOCKED +udp +$TOPO_ROGUE_DNS:53 +dns +by vgprobe \(pid $E4\) in $GW_REL, hook sendmsg4"

section "case 8b: rate limit"
sleep 1.1
denied_into D0 "$GW_ID"
leak_reset
probe_pid root "$CG_GW" "$P_OUT" sendto "$TOPO_ROGUE_DNS" 9 --count 2000
E5=$PROBE_PID
expect_eq "2000 denied sendto" "$(cat "$P_OUT")" "sent 0/2000 errno EPERM"
expect_far "2000 denied sendto" ""
denied_into D1 "$GW_ID"
expect_denied "2000 denied sendto" D0 D1 not_gateway 2000
vg_cap "$T/ev4.out" "$T/ev4.err" events --json
delivered=$(py '
import json, sys
print(sum(1 for l in open(sys.argv[1]) if l.strip() and json.loads(l).get("pid") == int(sys.argv[2]) and json.loads(l).get("reason") == "not_gateway"))' \
	"$T/ev4.out" "$E5")
others=$(($(wc -l <"$T/ev4.out") - delivered))
suppressed=$((D1[events_suppressed] - D0[events_suppressed]))
lost=$((D1[events_lost] - D0[events_lost]))
note "2000 denials: events delivered $delivered, events_suppressed +$suppressed, events_lost +$lost, other events $others"
expect_true "events delivered <= 2000 ($delivered)" test "$delivered" -le 2000
expect_true "events delivered <= the burst of 20 in one window ($delivered)" test "$delivered" -le 20 -a "$delivered" -ge 1
expect_ge "events_suppressed > 0" "$suppressed" 1
expect_eq "delivered + suppressed == 2000" "$((delivered + suppressed))" 2000
expect_eq "events_lost +0" "$lost" 0
expect_eq "no other events" "$others" 0

section "case 8c: with an agent"
CG_EV=$(cg_make ev)
EV_ID=$(cg_id "$CG_EV")
LOG=$T/agentlog/events.jsonl
if [ -e $AGENT_PIDFILE ]; then
	note "agent lock before: $(tr '\n' ' ' <$AGENT_PIDFILE)"
fi
"$VG" attach --cgroup "$CG_EV" --gateway "$TOPO_INET_HOST:1080" --dns "$TOPO_RESOLVER" \
	--log "$LOG" >"$T/agent.out" 2>"$T/agent.err" &
AGENT_PID=$!
# shellcheck disable=SC2317 # called through _topo_wait_until
agent_up() { [ "$(head -1 $AGENT_PIDFILE 2>/dev/null)" = "$AGENT_PID" ] && grep -q 'agent running' "$T/agent.err"; }
_topo_wait_until 5 agent_up
expect_true "agent running (pid $AGENT_PID in $AGENT_PIDFILE)" agent_up
expect_eq "agent lock names the log" "$(sed -n 2p $AGENT_PIDFILE 2>/dev/null)" "$(realpath -m "$LOG")"
expect_cg_guarded "agent's guard" "$CG_EV"
probe_pid nobody "$CG_EV" "$P_OUT" sendto "$TOPO_ROGUE_DNS" 53
E6=$PROBE_PID
expect_eq "denial under the agent" "$(cat "$P_OUT")" "sent 0/1 errno EPERM"
probe_pid root "$CG_GW" "$P_OUT" sendto "$TOPO_INET_HOST6" 9
E7=$PROBE_PID
_topo_wait_until 3 eval "grep -q '\"pid\":$E7,' '$LOG'"
expect_true "agent log has the denial of pid $E6" grep -q "\"pid\":$E6," "$LOG"
expect_true "agent log has the other guard's denial too (pid $E7)" grep -q "\"pid\":$E7," "$LOG"
expect_eq "agent log: valid JSON lines" "$(json_lines_bad <"$LOG")" 0
expect_eq "agent log record of pid $E6" "$(py '
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if ("\"pid\":%s," % sys.argv[2]) in l][0]
print(r["event"], r["reason"], r["hook"], r["dst"], r["dport"], r["comm"], r["uid"], r["cgroup"], r["cgroup_id"])' "$LOG" "$E6")" \
	"blocked dns sendmsg4 $TOPO_ROGUE_DNS 53 vgprobe 65534 $(cg_rel "$CG_EV") $EV_ID"
vg_cap "$T/ev5.out" "$T/ev5.err" events
expect_eq "events (agent running) exit" "$VG_RC" 0
expect_eq "events (agent running): one human line per log line" "$(wc -l <"$T/ev5.out")" "$(wc -l <"$LOG")"
expect_true "events (agent running) shows pid $E6's denial" grep -qE "BLOCKED +udp +$TOPO_ROGUE_DNS:53 +dns +by vgprobe \(pid $E6\)" "$T/ev5.out"
vg_cap "$T/ev6.out" "$T/ev6.err" events --json
expect_true "events --json (agent running) prints the agent's log" cmp -s "$T/ev6.out" "$LOG"
"$VG" events --follow --json >"$T/follow.out" 2>"$T/follow.err" &
FOLLOW_PID=$!
nlog=$(wc -l <"$LOG")
_topo_wait_until 3 eval "[ \$(wc -l <'$T/follow.out') -ge $nlog ]"
expect_eq "events --follow --json first prints the log so far" "$(wc -l <"$T/follow.out")" "$nlog"
t0=$(date +%s%N)
probe_pid root "$CG_EV" "$P_OUT" connect tcp "$TOPO_INET_HOST" 80
E8=$PROBE_PID
_topo_wait_until 2 grep -q "\"pid\":$E8," "$T/follow.out"
t1=$(date +%s%N)
if grep -q "\"pid\":$E8," "$T/follow.out"; then
	ok "events --follow --json shows the new denial (pid $E8) after $(((t1 - t0) / 1000000)) ms"
else
	nok "events --follow --json did not show the new denial (pid $E8) within 2 s"
fi
kill -TERM "$FOLLOW_PID"
_topo_wait_until 3 _topo_not _topo_pid_alive "$FOLLOW_PID"
wait "$FOLLOW_PID"
expect_eq "events --follow exits 0 on SIGTERM" "$?" 0
FOLLOW_PID=
kill -TERM "$AGENT_PID"
_topo_wait_until 5 _topo_not _topo_pid_alive "$AGENT_PID"
wait "$AGENT_PID"
expect_eq "agent exits 0 on SIGTERM" "$?" 0
AGENT_PID=
expect_true "agent lock removed" test ! -e $AGENT_PIDFILE
expect_cg_guarded "enforcement stays after the agent exits" "$CG_EV"
expect_eq "still enforced after the agent exits" "$(probe root "$CG_EV" sendto "$TOPO_ROGUE_DNS" 53)" "sent 0/1 errno EPERM"
vg_cap "$T/ev7.out" "$T/ev7.err" events --json
expect_true "without the agent, events drains the ring buffer again" grep -q '"reason":"dns"' "$T/ev7.out"

# ---------------------------------------------------------------------------
section "case 6: detach (no --cgroup) removes everything vpnguard pinned, nothing else"
CG_D=$(cg_make detachall)
attach_ok "tunnel guard for detach-all" --cgroup "$CG_D" --tunnel "$TOPO_WG_CLIENT" --netns "$TOPO_HOME_NETNS" --no-agent
D_ID=$(cg_id "$CG_D")
d_tc=$(tc_prog_id "$D_ID")
expect_true "D's tc program is loaded before detach" prog_alive "$d_tc"
guarded_cgs=() prog_ids=("$d_tc")
for cg in "$CG_GW" "$CG_T" "$CG_B" "$CG_EV" "$CG_D"; do
	[ -n "$(cg_progs "$cg")" ] && guarded_cgs+=("$cg")
	# shellcheck disable=SC2207 # ids are numbers
	prog_ids+=($(bpftool -j cgroup show "$cg" | py 'import json,sys; print(" ".join(str(p["id"]) for p in json.load(sys.stdin)))'))
done
expect_ge "vg_ programs on the guarded cgroups and interfaces before detach" "${#prog_ids[@]}" 36
expect_eq "guarded cgroups before detach" "${#guarded_cgs[@]}" 5
vg_cap "$T/da.out" "$T/da.err" detach
expect_eq "detach exit" "$VG_RC" 0
expect_eq "detach: stdout and stderr empty" "$(cat "$T/da.out" "$T/da.err")" ""
expect_true "$PIN_ROOT is gone" test ! -e "$PIN_ROOT"
for cg in "${guarded_cgs[@]}"; do
	expect_cg_unguarded "after detach: $(cg_rel "$cg")" "$cg"
done
# shellcheck disable=SC2016 # expanded by eval, each poll
still_loaded() { local id n=0; for id in "${prog_ids[@]}"; do prog_alive "$id" && n=$((n + 1)); done; echo "$n"; }
_topo_wait_until 3 eval '[ "$(still_loaded)" = 0 ]'
expect_eq "none of those programs is still loaded (cgroup or tcx)" "$(still_loaded)" 0
expect_eq "bpftool link show: no vg_ links" "$(vg_links | tr '\n' ',')" ""
expect_true "the foreign pin survived" eval "bpftool map show pinned $FOREIGN_PIN >/dev/null"
expect_match "the foreign pin is still the map we made" "$(bpftool map show pinned "$FOREIGN_PIN" 2>&1)" 'name foreign'
vg_cap "$T/st.out" "$T/st.err" status
expect_eq "status after detach" "$VG_RC $(cat "$T/st.out")" "0 no guards attached"
leak_reset
expect_eq "formerly guarded (tunnel) cgroup: IPv6 flows again" "$(probe nobody "$CG_D" sendto "$TOPO_INET_HOST6" 9)" "sent 1/1"
expect_eq "formerly guarded (gateway) cgroup: DNS to $TOPO_ROGUE_DNS flows again" \
	"$(probe nobody "$CG_GW" sendto "$TOPO_ROGUE_DNS" 53)" "sent 1/1"
expect_far "unguarded again" "leak6=1 tunnel=1"
vg_cap "$T/da.out" "$T/da.err" detach
expect_eq "detach with nothing attached: exit 0, silent" "$VG_RC $(cat "$T/da.out" "$T/da.err")" "0 "
rm -f "$FOREIGN_PIN"
expect_true "foreign pin removed" test ! -e "$FOREIGN_PIN"

section "cleanup"
finished=1
wg_pids="$TOPO_WG_CLIENT_PID $TOPO_WG_SERVER_PID"
topo_down
expect_eq "no netns of ours left" "$(ip netns list | grep -c "^vg$TOPO_SUFFIX")" 0
expect_true "no cgroup of ours left" test ! -e "$TOPO_CG_ROOT"
# shellcheck disable=SC2086
expect_true "no wireguard-go of ours left" _topo_not eval "_topo_pid_alive ${wg_pids% *} || _topo_pid_alive ${wg_pids#* }"
expect_true "no vpnguard pins left" test ! -e "$PIN_ROOT"
exit 0
