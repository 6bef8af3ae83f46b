# shellcheck shell=bash
# tests/lib/topology.sh - the private network world of the vpnguard-bpf kernel tests.
#
# Source it from bash (it is `set -u` safe, works under `set -e`, does not
# change the caller's shell options, and needs root):
#
#   . tests/lib/topology.sh
#   trap topo_down EXIT
#   topo_up || exit 1
#
# Topology (T1 "host VPN": the tunnel lives in the user's machine, netns HOME):
#
#   netns $TOPO_HOME ("the user's machine")       netns $TOPO_INET ("VPN server" + "the Internet")
#   +------------------------------------+        +------------------------------------------+
#   | $TOPO_VETH_HOME 10.99.0.1/24       |--veth--| $TOPO_VETH_INET 10.99.0.2/24              |
#   |                 fd00:99::1/64      |        |                 fd00:99::2/64             |
#   | $TOPO_WG_CLIENT 10.66.0.2/24  ====(WireGuard over the veth, UDP 10.99.0.2:51820)====     |
#   |                                    |        | $TOPO_WG_SERVER 10.66.0.1/24              |
#   | routes:                            |        | lo: 198.51.100.1 198.51.100.53 (Internet) |
#   |  198.51.100.0/24 dev WG  metric 10 |        |     203.0.113.53 (resolver)               |
#   |  203.0.113.0/24  dev WG  metric 10 |        |     192.0.2.1    (LAN host)               |
#   |  192.0.2.0/24 via 10.99.0.2 (LAN)  |        |     2001:db8:100::1 (IPv6 Internet host)  |
#   |  default via 10.99.0.2 metric 1000 |        | nft table inet vgtopo: leak/tunnel counters
#   |  ::/0    via fd00:99::2 metric 1000|        +------------------------------------------+
#   +------------------------------------+
#
# While the tunnel is up, traffic from HOME to 198.51.100.0/24 and 203.0.113.0/24
# goes through WireGuard with source 10.66.0.2.  When the tunnel interface
# disappears its routes go with it and the same traffic falls back to the
# default route: it leaves by the veth with the real IP 10.99.0.1 as source.
# That fallback is the leak vpnguard-bpf must stop, and the counters in INET
# see it.  Every address above exists only inside the two namespaces.
#
# Exported variables (set by topo_up; names carry a per-run suffix so runs can overlap):
#   TOPO_SUFFIX           per-run suffix, 5 hex digits, fresh each time the file is sourced
#                         (assign it after sourcing and before topo_up to choose one)
#   TOPO_DIR              temp dir: WireGuard keys, wireguard-go logs, listener output, env file
#   TOPO_CG2              cgroup v2 mount point (found in /proc/self/mounts)
#   TOPO_CG_ROOT          $TOPO_CG2/vgtest$TOPO_SUFFIX, parent of every cg_make cgroup
#   TOPO_HOME             netns name of the user's machine   (vg${SUFFIX}home)
#   TOPO_HOME_PID         (set it before topo_up; optional) a process whose network namespace
#                         becomes HOME (`ip netns attach`) instead of a new one: the T2 world, where
#                         the tunnel lives in a VPN container's namespace.  topo_down then only
#                         drops the name: the namespace and its processes are the container's
#   TOPO_INET             netns name of the VPN server + Internet (vg${SUFFIX}inet)
#   TOPO_HOME_NETNS       /run/netns/$TOPO_HOME (for vpnguard-bpf --netns)
#   TOPO_INET_NETNS       /run/netns/$TOPO_INET
#   TOPO_VETH_HOME        veth end in HOME (vg${SUFFIX}vh)
#   TOPO_VETH_INET        veth end in INET (vg${SUFFIX}vi)
#   TOPO_REAL_IP          10.99.0.1, HOME's "real IP" on the veth
#   TOPO_GW_IP            10.99.0.2, INET's veth address: HOME's fallback gateway and the VPN endpoint
#   TOPO_REAL_IP6         fd00:99::1 (HOME's IPv6 on the veth)
#   TOPO_GW_IP6           fd00:99::2 (INET's IPv6 on the veth; HOME's IPv6 default gateway)
#   TOPO_WG_CLIENT        client WireGuard interface in HOME (vg${SUFFIX}wc) - the tunnel to guard
#   TOPO_WG_SERVER        server WireGuard interface in INET (vg${SUFFIX}ws)
#   TOPO_WG_CLIENT_PID    PID of the client's wireguard-go (empty while the tunnel is down)
#   TOPO_WG_SERVER_PID    PID of the server's wireguard-go
#   TOPO_WG_CLIENT_IFINDEX ifindex of the client interface in HOME (changes on topo_tunnel_up)
#   TOPO_WG_PORT          51820, server listen port
#   TOPO_WG_ENDPOINT      10.99.0.2:51820
#   TOPO_VPN_IP           10.66.0.2, HOME's tunnel address
#   TOPO_VPN_SERVER_IP    10.66.0.1, INET's tunnel address
#   TOPO_VPN_NET          10.66.0.0/24
#   TOPO_INET_HOST        198.51.100.1, "a host on the Internet" (routed via the tunnel)
#   TOPO_INET_NET         198.51.100.0/24
#   TOPO_ROGUE_DNS        198.51.100.53, a resolver the guard does not list (routed via the tunnel)
#   TOPO_RESOLVER         203.0.113.53, the resolver a guard lists (routed via the tunnel)
#   TOPO_RESOLVER_NET     203.0.113.0/24
#   TOPO_LAN_HOST         192.0.2.1, host of the "LAN" (allowed subnet; reached via the veth, never the tunnel)
#   TOPO_LAN_NET          192.0.2.0/24
#   TOPO_INET_HOST6       2001:db8:100::1, IPv6 Internet host (reached via the veth: IPv6 is outside the tunnel)
#   TOPO_VGPROBE          absolute path of build/vgprobe (see topo_build_vgprobe)
#   TOPO_BG_PIDS          PIDs started by topo_spawn/topo_listen and not yet stopped
#   TOPO_LAST_PID         PID of the last topo_spawn/topo_listen
#
# Functions:
#   topo_up                    build everything above; wait for the WireGuard handshake; reset counters
#   topo_down                  remove everything (processes, cgroups, netns, sockets, temp dir); idempotent, trap-safe
#   topo_netns_remove NS       end the processes in namespace NS (by PID), then delete it
#   topo_tunnel_down [del|term|kill]
#                              make the client tunnel vanish: `ip link del` (default), SIGTERM or SIGKILL
#                              to its wireguard-go; returns once the interface and the process are gone
#   topo_tunnel_up             recreate the client tunnel with the same name/keys (new ifindex), routes, handshake
#   topo_home_move PID         HOME becomes PID's network namespace (a restarted VPN container, TOPO_HOME_PID
#                              worlds): wire, routes and tunnel rebuilt there, the old HOME left without them
#   leak_reset                 zero all counters
#   leak_count                 IPv4 packets arriving on the veth for 198.51.100.0/24 or 203.0.113.0/24, whatever
#                              their source (normally the real IP 10.99.0.1): the leaks.  Counters are read in
#                              INET at prerouting; call topo_settle before asserting a zero
#   leak6_count                IPv6 packets from HOME on the veth (not counting neighbour discovery/MLD)
#   tunnel_count               packets that came out of the tunnel (ingress of $TOPO_WG_SERVER); only what the
#                              server accepted (source 10.66.0.2: a packet pushed into the tunnel with source
#                              10.99.0.1 is dropped by WireGuard), minus topo_up's handshake probe to 10.66.0.1:51819
#   lan_count                  IPv4 packets from HOME to the LAN net on the veth (allowed-subnet traffic)
#   wg_count                   WireGuard transport packets (UDP to 10.99.0.2:51820), never a leak
#   vpnsrc_count               packets on the veth carrying the tunnel address 10.66.0.0/24 as source
#   stray_count                other IPv4 from HOME on the veth (none of the above, e.g. to 10.99.0.2 itself)
#   topo_counters              one line with every counter, for logs
#   topo_settle                short pause so packets in flight (wireguard-go is asynchronous) are counted
#   topo_wait_count FUNC MIN [SECONDS]
#                              poll until `FUNC` prints >= MIN (default 5 s); 0 when reached
#   cg_make NAME               mkdir $TOPO_CG_ROOT/NAME (NAME may be nested: a/b); prints the path
#   cg_remove PATH             kill (by PID) every process in PATH and below, then rmdir them; PATH must be under $TOPO_CG_ROOT
#   run_in CG NS CMD...        run CMD as root in cgroup CG, then netns NS ("-" for either: leave as is)
#   run_in_as USER CG NS CMD...
#                              same, then drop to USER (setpriv --reuid --regid --clear-groups --inh-caps=-all)
#   topo_spawn CG NS CMD...    run_in in the background; returns once the process is in CG and NS; PID (of CMD
#                              itself) in TOPO_LAST_PID; topo_down ends it
#   topo_spawn_as USER CG NS CMD...
#                              run_in_as in the background, likewise
#   topo_stop PID              SIGTERM (then SIGKILL after 3 s) one spawned process and reap it; returns its status
#   topo_listen udp|tcp PORT [vgprobe listen options]
#                              start `vgprobe listen` in INET, wait until it listens; PID in TOPO_LAST_PID
#   topo_listen_stop PID       stop that listener and print its result line ("received ...")
#   topo_build_vgprobe         build tests/tools/vgprobe if missing or stale
#   topo_load FILE             import the variables of a topology built by another shell ($TOPO_DIR/env)
#
# Rules kept here: traffic only to addresses inside these namespaces; a process
# enters its cgroup BEFORE `ip netns exec` (which remounts /sys); wireguard-go is
# ended by PID, never by name; wireguard-go interface names are unique
# machine-wide because their control socket /var/run/wireguard/NAME.sock is global.

# ---------------------------------------------------------------------------
# internals

_topo_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

_topo_log() {
	[ "${TOPO_QUIET:-0}" = 1 ] || printf 'topo: %s\n' "$*" >&2
}

# Fill in the names and addresses (not the kernel objects); safe to call twice.
_topo_init() {
	if [ -z "${TOPO_SUFFIX:-}" ]; then
		local s i
		for i in 1 2 3 4 5 6 7 8; do
			s=$(printf '%05x' $(((RANDOM << 5 ^ RANDOM ^ $$ ^ i) & 0xfffff)))
			[ -e "/run/netns/vg${s}home" ] || [ -e "/run/netns/vg${s}inet" ] ||
				[ -e "/var/run/wireguard/vg${s}wc.sock" ] || break
		done
		TOPO_SUFFIX=$s
	fi
	TOPO_CG2=${TOPO_CG2:-$(awk '$3=="cgroup2"{print $2; exit}' /proc/self/mounts)}
	TOPO_CG_ROOT=${TOPO_CG2:+$TOPO_CG2/vgtest$TOPO_SUFFIX}
	TOPO_HOME=vg${TOPO_SUFFIX}home
	TOPO_INET=vg${TOPO_SUFFIX}inet
	TOPO_HOME_NETNS=/run/netns/$TOPO_HOME
	TOPO_INET_NETNS=/run/netns/$TOPO_INET
	TOPO_VETH_HOME=vg${TOPO_SUFFIX}vh
	TOPO_VETH_INET=vg${TOPO_SUFFIX}vi
	TOPO_WG_CLIENT=vg${TOPO_SUFFIX}wc
	TOPO_WG_SERVER=vg${TOPO_SUFFIX}ws
	TOPO_REAL_IP=10.99.0.1
	TOPO_GW_IP=10.99.0.2
	TOPO_REAL_IP6=fd00:99::1
	TOPO_GW_IP6=fd00:99::2
	TOPO_WG_PORT=51820
	TOPO_WG_ENDPOINT=$TOPO_GW_IP:$TOPO_WG_PORT
	TOPO_VPN_IP=10.66.0.2
	TOPO_VPN_SERVER_IP=10.66.0.1
	TOPO_VPN_NET=10.66.0.0/24
	TOPO_INET_HOST=198.51.100.1
	TOPO_INET_NET=198.51.100.0/24
	TOPO_ROGUE_DNS=198.51.100.53
	TOPO_RESOLVER=203.0.113.53
	TOPO_RESOLVER_NET=203.0.113.0/24
	TOPO_LAN_HOST=192.0.2.1
	TOPO_LAN_NET=192.0.2.0/24
	TOPO_INET_HOST6=2001:db8:100::1
	TOPO_VGPROBE=$(cd "$_topo_lib_dir/../.." && pwd)/build/vgprobe
	TOPO_WG_CLIENT_PID=${TOPO_WG_CLIENT_PID:-}
	TOPO_WG_SERVER_PID=${TOPO_WG_SERVER_PID:-}
	TOPO_WG_CLIENT_IFINDEX=${TOPO_WG_CLIENT_IFINDEX:-}
	TOPO_BG_PIDS=${TOPO_BG_PIDS:-}
	TOPO_LAST_PID=${TOPO_LAST_PID:-}
	TOPO_DIR=${TOPO_DIR:-}
	TOPO_HOME_PID=${TOPO_HOME_PID:-}
	export TOPO_SUFFIX TOPO_DIR TOPO_CG2 TOPO_CG_ROOT TOPO_HOME TOPO_INET TOPO_HOME_NETNS \
		TOPO_INET_NETNS TOPO_VETH_HOME TOPO_VETH_INET TOPO_REAL_IP TOPO_GW_IP \
		TOPO_REAL_IP6 TOPO_GW_IP6 TOPO_WG_CLIENT TOPO_WG_SERVER TOPO_WG_CLIENT_PID \
		TOPO_WG_SERVER_PID TOPO_WG_CLIENT_IFINDEX TOPO_WG_PORT TOPO_WG_ENDPOINT \
		TOPO_VPN_IP TOPO_VPN_SERVER_IP TOPO_VPN_NET TOPO_INET_HOST TOPO_INET_NET \
		TOPO_ROGUE_DNS TOPO_RESOLVER TOPO_RESOLVER_NET TOPO_LAN_HOST TOPO_LAN_NET \
		TOPO_INET_HOST6 TOPO_VGPROBE TOPO_BG_PIDS TOPO_LAST_PID TOPO_HOME_PID
}

# Alive and not a zombie (a zombie still answers kill -0).
_topo_pid_alive() {
	local st
	[ -n "${1:-}" ] && [ -r "/proc/$1/stat" ] || return 1
	st=$(awk '{sub(/^.*\) /, ""); print $1}' "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# _topo_wait_until SECONDS CMD... : poll CMD every 50 ms (SECONDS may be fractional).
_topo_wait_until() {
	local n
	n=$(awk -v s="$1" 'BEGIN {n = int(s * 20); print (n < 1 ? 1 : n)}')
	shift
	while [ "$n" -gt 0 ]; do
		"$@" && return 0
		sleep 0.05
		n=$((n - 1))
	done
	"$@"
}

_topo_not() { ! "$@"; }

# End one process we started, by PID: SIGTERM (or $2), SIGKILL after 3 s, reap.
# $3 optional: the expected comm, so a recycled PID is never hit.
_topo_end_pid() {
	local pid=${1:-} sig=${2:-TERM} comm=${3:-}
	[ -n "$pid" ] || return 0
	if [ -n "$comm" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" != "$comm" ]; then
		wait "$pid" 2>/dev/null
		return 0
	fi
	kill "-$sig" "$pid" 2>/dev/null
	_topo_wait_until 3 _topo_not _topo_pid_alive "$pid" ||
		{ kill -KILL "$pid" 2>/dev/null; _topo_wait_until 2 _topo_not _topo_pid_alive "$pid"; }
	# Reap it if it is our child; harmless otherwise.
	wait "$pid" 2>/dev/null
	return 0
}

# Start wireguard-go for IFNAME in netns NS; PID in _topo_wg_pid.  `ip netns
# exec` and env exec in place, so $! is wireguard-go itself.  It stays our
# child (bash reaps it as soon as it dies, so no zombie lingers for pgrep) but
# is disowned, so bash prints no "Killed" report when a test SIGKILLs it.
_topo_wg_start() {
	local ns=$1 ifname=$2
	_topo_wg_pid=
	rm -f "/var/run/wireguard/$ifname.sock"
	ip netns exec "$ns" env LOG_LEVEL=error wireguard-go -f "$ifname" \
		>>"$TOPO_DIR/wireguard-go.$ifname.log" 2>&1 </dev/null &
	_topo_wg_pid=$!
	disown "$_topo_wg_pid" 2>/dev/null
	if ! _topo_wait_until 5 eval "[ -S /var/run/wireguard/$ifname.sock ] && ip -n $ns link show $ifname >/dev/null 2>&1"; then
		_topo_log "wireguard-go for $ifname did not come up:"
		cat "$TOPO_DIR/wireguard-go.$ifname.log" >&2 2>/dev/null
		return 1
	fi
}

# Stop a wireguard-go by PID and make sure its interface and socket are gone.
_topo_wg_stop() {
	local ns=$1 ifname=$2 pid=${3:-} how=${4:-del}
	case $how in
	del)
		ip -n "$ns" link del "$ifname" 2>/dev/null
		# wireguard-go notices its TUN device went away and exits by itself.
		if [ -n "$pid" ] && ! _topo_wait_until 3 _topo_not _topo_pid_alive "$pid"; then
			_topo_end_pid "$pid" TERM wireguard-go
		fi
		;;
	term) _topo_end_pid "$pid" TERM wireguard-go ;;
	kill) _topo_end_pid "$pid" KILL wireguard-go ;;
	*) _topo_log "unknown tunnel-down mode $how"; return 2 ;;
	esac
	[ -n "$pid" ] && wait "$pid" 2>/dev/null
	# The TUN device is not persistent: it vanishes when the last fd closes.
	_topo_wait_until 3 _topo_not ip -n "$ns" link show "$ifname" >/dev/null 2>&1 ||
		ip -n "$ns" link del "$ifname" 2>/dev/null
	# SIGKILL leaves the control socket behind.
	rm -f "/var/run/wireguard/$ifname.sock"
	return 0
}

# Client side: wireguard-go + key/peer + address + routes + handshake.
_topo_client_up() {
	local h=$TOPO_HOME c=$TOPO_WG_CLIENT
	_topo_wg_start "$h" "$c" || return 1
	TOPO_WG_CLIENT_PID=$_topo_wg_pid
	# allowed-ips 0.0.0.0/0: accept replies from every Internet address the server routes.
	ip netns exec "$h" wg set "$c" private-key "$TOPO_DIR/client.key" \
		peer "$(cat "$TOPO_DIR/server.pub")" endpoint "$TOPO_WG_ENDPOINT" \
		allowed-ips 0.0.0.0/0 || return 1
	ip -n "$h" addr add "$TOPO_VPN_IP/24" dev "$c" || return 1
	ip -n "$h" link set "$c" up || return 1
	# The "VPN routes": more specific than the fallback default route, so they
	# win while the tunnel exists and vanish with it.
	ip -n "$h" route add "$TOPO_INET_NET" dev "$c" src "$TOPO_VPN_IP" metric 10 || return 1
	ip -n "$h" route add "$TOPO_RESOLVER_NET" dev "$c" src "$TOPO_VPN_IP" metric 10 || return 1
	TOPO_WG_CLIENT_IFINDEX=$(ip -n "$h" -o link show "$c" | awk -F: '{print $1; exit}')
	export TOPO_WG_CLIENT_PID TOPO_WG_CLIENT_IFINDEX
	_topo_handshake || return 1
	_topo_save_env
}

# wireguard-go handshakes on the first packet; do it now (a datagram to the
# server's tunnel address) so tests do not time the handshake.  Its port is
# left out of tunnel_count, so topo_tunnel_up does not disturb the counters.
_topo_hs_port=51819
_topo_handshake() {
	local i
	for i in $(seq 1 50); do
		if [ $((i % 5)) = 1 ]; then
			ip netns exec "$TOPO_HOME" bash -c "echo hs >/dev/udp/$TOPO_VPN_SERVER_IP/$_topo_hs_port" 2>/dev/null
		fi
		if ip netns exec "$TOPO_HOME" wg show "$TOPO_WG_CLIENT" latest-handshakes 2>/dev/null |
			awk '$2 > 0 {ok=1} END {exit !ok}'; then
			return 0
		fi
		sleep 0.1
	done
	_topo_log "no WireGuard handshake on $TOPO_WG_CLIENT"
	return 1
}

_topo_nft_rules() {
	cat <<EOF
# Counters on what reaches INET.  Prerouting at raw-10 sees packets as they
# arrive, before routing, rp_filter or sockets can drop them; ARP is not IP and
# never shows up in an inet table.
table inet vgtopo {
	counter leak4 { }
	counter leak6 { }
	counter tunnel { }
	counter lan { }
	counter wg { }
	counter vpnsrc { }
	counter stray4 { }

	chain pre {
		type filter hook prerouting priority -310; policy accept;
		# topo_up/topo_tunnel_up's own handshake trigger is not test traffic.
		iifname "$TOPO_WG_SERVER" ip daddr $TOPO_VPN_SERVER_IP udp dport $_topo_hs_port accept
		iifname "$TOPO_WG_SERVER" counter name tunnel accept
		iifname != "$TOPO_VETH_INET" accept
		meta nfproto ipv6 goto home6
		# WireGuard's own transport is the tunnel, not a leak.
		ip daddr $TOPO_GW_IP udp dport $TOPO_WG_PORT counter name wg accept
		# The tunnel's address on the wrong wire (also counted below by destination).
		ip saddr $TOPO_VPN_NET counter name vpnsrc
		ip daddr $TOPO_LAN_NET counter name lan accept
		ip daddr { $TOPO_INET_NET, $TOPO_RESOLVER_NET } counter name leak4 accept
		meta nfproto ipv4 counter name stray4
	}

	chain home6 {
		# The kernel's own neighbour discovery and MLD chatter is not traffic.
		icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, mld-listener-query, mld-listener-report, mld-listener-done, mld2-listener-report } return
		counter name leak6
	}
}
EOF
}

# $TOPO_DIR/env: plain `export NAME=value` lines, so topo_load (or any shell)
# can pick up a topology built elsewhere.
_topo_save_env() {
	[ -n "${TOPO_DIR:-}" ] && [ -d "$TOPO_DIR" ] || return 0
	local v
	for v in "${!TOPO_@}"; do
		printf 'export %s=%q\n' "$v" "${!v}"
	done >"$TOPO_DIR/env"
}

# ---------------------------------------------------------------------------
# building and removing the world

topo_up() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	_topo_init
	if [ "$(id -u)" != 0 ]; then
		_topo_log "topo_up needs root"
		return 1
	fi
	local x
	for x in ip wg wireguard-go nft setpriv; do
		command -v "$x" >/dev/null || { _topo_log "missing tool: $x"; return 1; }
	done
	[ -n "$TOPO_CG2" ] || { _topo_log "no cgroup2 mount"; return 1; }
	if [ -e "$TOPO_HOME_NETNS" ] || [ -e "$TOPO_INET_NETNS" ]; then
		_topo_log "netns $TOPO_HOME or $TOPO_INET exists already"
		return 1
	fi
	TOPO_DIR=$(mktemp -d /tmp/vgtopo."$TOPO_SUFFIX".XXXXXX) || return 1
	export TOPO_DIR
	_topo_save_env
	if ! _topo_up_steps; then
		_topo_log "topo_up failed; cleaning up"
		topo_down
		return 1
	fi
	_topo_save_env
	_topo_log "up: $TOPO_HOME <-> $TOPO_INET, tunnel $TOPO_WG_CLIENT (ifindex $TOPO_WG_CLIENT_IFINDEX)"
}

_topo_ns_basics() {
	ip -n "$1" link set lo up || return 1
	# New namespaces may inherit rp_filter from the host; the leak path has
	# asymmetric routes by design, so switch it off.
	ip netns exec "$1" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# HOME's side: the wire to INET and the routes that do not depend on the tunnel.
_topo_home_wire() {
	local h=$TOPO_HOME i=$TOPO_INET
	_topo_ns_basics "$h" || return 1
	# Created directly in the namespaces, so the names never touch the host's.
	ip -n "$h" link add "$TOPO_VETH_HOME" type veth peer name "$TOPO_VETH_INET" netns "$i" || return 1
	ip -n "$h" addr add "$TOPO_REAL_IP/24" dev "$TOPO_VETH_HOME" || return 1
	ip -n "$i" addr add "$TOPO_GW_IP/24" dev "$TOPO_VETH_INET" || return 1
	ip -n "$h" addr add "$TOPO_REAL_IP6/64" dev "$TOPO_VETH_HOME" nodad || return 1
	ip -n "$i" addr add "$TOPO_GW_IP6/64" dev "$TOPO_VETH_INET" nodad || return 1
	ip -n "$h" link set "$TOPO_VETH_HOME" up || return 1
	ip -n "$i" link set "$TOPO_VETH_INET" up || return 1
	ip -n "$h" route add "$TOPO_LAN_NET" via "$TOPO_GW_IP" dev "$TOPO_VETH_HOME" || return 1
	ip -n "$h" route add default via "$TOPO_GW_IP" dev "$TOPO_VETH_HOME" metric 1000 || return 1
	ip -n "$h" -6 route add default via "$TOPO_GW_IP6" dev "$TOPO_VETH_HOME" metric 1000 || return 1
}

_topo_up_steps() {
	local h=$TOPO_HOME i=$TOPO_INET
	if [ -n "$TOPO_HOME_PID" ]; then
		ip netns attach "$h" "$TOPO_HOME_PID" || return 1
	else
		ip netns add "$h" || return 1
	fi
	ip netns add "$i" || return 1
	_topo_ns_basics "$i" || return 1
	_topo_home_wire || return 1

	# "The Internet": addresses local to INET (no dummy driver in this kernel, so lo).
	for x in "$TOPO_INET_HOST/32" "$TOPO_ROGUE_DNS/32" "$TOPO_RESOLVER/32" "$TOPO_LAN_HOST/32"; do
		ip -n "$i" addr add "$x" dev lo || return 1
	done
	ip -n "$i" addr add "$TOPO_INET_HOST6/128" dev lo nodad || return 1

	# Counters before any traffic.
	_topo_nft_rules | ip netns exec "$i" nft -f - || return 1

	# WireGuard keys (private keys stay in the root-only temp dir).
	(umask 077 && wg genkey >"$TOPO_DIR/client.key" && wg genkey >"$TOPO_DIR/server.key") || return 1
	wg pubkey <"$TOPO_DIR/client.key" >"$TOPO_DIR/client.pub" || return 1
	wg pubkey <"$TOPO_DIR/server.key" >"$TOPO_DIR/server.pub" || return 1

	# Server: listens on the veth address; its connected route 10.66.0.0/24
	# carries the replies back into the tunnel.  Every destination it serves
	# is local to INET, so no forwarding is needed.
	_topo_wg_start "$i" "$TOPO_WG_SERVER" || return 1
	TOPO_WG_SERVER_PID=$_topo_wg_pid
	export TOPO_WG_SERVER_PID
	ip netns exec "$i" wg set "$TOPO_WG_SERVER" private-key "$TOPO_DIR/server.key" \
		listen-port "$TOPO_WG_PORT" peer "$(cat "$TOPO_DIR/client.pub")" \
		allowed-ips "$TOPO_VPN_IP/32" || return 1
	ip -n "$i" addr add "$TOPO_VPN_SERVER_IP/24" dev "$TOPO_WG_SERVER" || return 1
	ip -n "$i" link set "$TOPO_WG_SERVER" up || return 1

	_topo_client_up || return 1
	topo_settle 0.3
	leak_reset
}

topo_tunnel_down() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	local how=${1:-del}
	_topo_wg_stop "$TOPO_HOME" "$TOPO_WG_CLIENT" "${TOPO_WG_CLIENT_PID:-}" "$how" || return $?
	if ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT" >/dev/null 2>&1 ||
		_topo_pid_alive "${TOPO_WG_CLIENT_PID:-}"; then
		_topo_log "tunnel $TOPO_WG_CLIENT did not go away"
		return 1
	fi
	TOPO_WG_CLIENT_PID=
	export TOPO_WG_CLIENT_PID
	_topo_save_env
}

topo_tunnel_up() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	if ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT" >/dev/null 2>&1; then
		_topo_log "tunnel $TOPO_WG_CLIENT exists already"
		return 1
	fi
	_topo_client_up
}

# topo_home_move PID: HOME becomes PID's network namespace (the T2 VPN container restarted:
# a new namespace).  The old HOME loses its wire and tunnel (the processes still in it are
# left alone: a container's); the wire, the routes and the tunnel (new ifindex) are built
# in the new one, the counters in INET stay.
topo_home_move() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	_topo_wg_stop "$TOPO_HOME" "$TOPO_WG_CLIENT" "${TOPO_WG_CLIENT_PID:-}" del
	TOPO_WG_CLIENT_PID=
	ip -n "$TOPO_HOME" link del "$TOPO_VETH_HOME" 2>/dev/null
	ip netns del "$TOPO_HOME" 2>/dev/null
	TOPO_HOME_PID=$1
	export TOPO_HOME_PID
	ip netns attach "$TOPO_HOME" "$TOPO_HOME_PID" || return 1
	_topo_home_wire || return 1
	_topo_client_up
}

# topo_netns_remove NS: end the processes in a namespace of ours (by PID), then remove it.
# A namespace lives on while a process is in it; the stragglers a test started in our
# namespaces are ours by definition.
topo_netns_remove() {
	local ns=$1 inode p
	[ -e "/run/netns/$ns" ] || return 0
	inode=$(stat -L -c %i "/run/netns/$ns" 2>/dev/null)
	if [ -n "$inode" ]; then
		for p in /proc/[0-9]*; do
			[ "$(readlink "$p/ns/net" 2>/dev/null)" = "net:[$inode]" ] || continue
			_topo_end_pid "${p#/proc/}" TERM
		done
	fi
	ip netns del "$ns" 2>/dev/null
}

topo_down() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	# Trap-safe: never fails, works on a half-built world, may run twice.
	[ -n "${TOPO_SUFFIX:-}" ] || return 0
	_topo_init
	local pid

	for pid in ${TOPO_BG_PIDS:-}; do
		_topo_end_pid "$pid" TERM
	done
	TOPO_BG_PIDS=

	[ -n "${TOPO_CG_ROOT:-}" ] && [ -d "$TOPO_CG_ROOT" ] && cg_remove "$TOPO_CG_ROOT"

	_topo_wg_stop "$TOPO_HOME" "$TOPO_WG_CLIENT" "${TOPO_WG_CLIENT_PID:-}" term
	_topo_wg_stop "$TOPO_INET" "$TOPO_WG_SERVER" "${TOPO_WG_SERVER_PID:-}" term
	TOPO_WG_CLIENT_PID=
	TOPO_WG_SERVER_PID=

	if [ -n "${TOPO_HOME_PID:-}" ]; then
		ip netns del "$TOPO_HOME" 2>/dev/null
	else
		topo_netns_remove "$TOPO_HOME"
	fi
	topo_netns_remove "$TOPO_INET"

	if [ -n "${TOPO_DIR:-}" ] && [ -d "$TOPO_DIR" ]; then
		rm -rf "$TOPO_DIR"
	fi
	TOPO_DIR=
	export TOPO_BG_PIDS TOPO_WG_CLIENT_PID TOPO_WG_SERVER_PID TOPO_DIR
	return 0
}

topo_load() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	local f=${1:-}
	[ -r "$f" ] || { _topo_log "topo_load: cannot read $f"; return 1; }
	# shellcheck disable=SC1090
	. "$f"
	_topo_init
}

# ---------------------------------------------------------------------------
# counters (read in INET)

_topo_counter() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	ip netns exec "$TOPO_INET" nft list counter inet vgtopo "$1" 2>/dev/null |
		awk '$1 == "packets" {print $2; found=1} END {if (!found) print -1}'
}

leak_reset() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	ip netns exec "$TOPO_INET" nft reset counters table inet vgtopo >/dev/null
}
leak_count() { _topo_counter leak4; }
leak6_count() { _topo_counter leak6; }
tunnel_count() { _topo_counter tunnel; }
lan_count() { _topo_counter lan; }
wg_count() { _topo_counter wg; }
vpnsrc_count() { _topo_counter vpnsrc; }
stray_count() { _topo_counter stray4; }

topo_counters() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	echo "leak=$(leak_count) leak6=$(leak6_count) tunnel=$(tunnel_count) lan=$(lan_count)" \
		"wg=$(wg_count) vpnsrc=$(vpnsrc_count) stray=$(stray_count)"
}

# wireguard-go moves packets in userspace goroutines: give them a moment
# before asserting that a counter stayed at zero.
topo_settle() { sleep "${1:-0.3}"; }

topo_wait_count() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	local fn=${1:?topo_wait_count FUNC MIN [SECONDS]} min=${2:?topo_wait_count FUNC MIN [SECONDS]} secs=${3:-5}
	_topo_wait_until "$secs" eval "[ \"\$($fn)\" -ge $min ]"
}

# ---------------------------------------------------------------------------
# cgroups and running things in them

cg_make() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	_topo_init
	local name=${1:-}
	case $name in
	'' | /* | *..*) _topo_log "cg_make: bad name '$name'"; return 2 ;;
	esac
	[ -n "$TOPO_CG2" ] || { _topo_log "cg_make: no cgroup2 mount"; return 1; }
	mkdir -p "$TOPO_CG_ROOT/$name" || return 1
	printf '%s\n' "$TOPO_CG_ROOT/$name"
}

# Empty one cgroup directory (not its children).  Everything in a test cgroup
# was started by the test, so each member is ended by its PID: SIGTERM first
# (bash reports background jobs killed by SIGKILL, not by SIGTERM), SIGKILL
# for whatever is still there after a second.
_topo_cg_empty() {
	local cg=$1 pid procs n=0 sig=TERM
	while procs=$(cat "$cg/cgroup.procs" 2>/dev/null) && [ -n "$procs" ]; do
		[ "$n" -lt 100 ] || return 1
		[ "$n" -lt 20 ] || sig=KILL
		for pid in $procs; do
			kill "-$sig" "$pid" 2>/dev/null
		done
		sleep 0.05
		n=$((n + 1))
	done
	# Reap the ones that were our children (topo_spawn).
	for pid in ${TOPO_BG_PIDS:-}; do
		_topo_pid_alive "$pid" || wait "$pid" 2>/dev/null
	done
	return 0
}

cg_remove() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	_topo_init
	local path=${1:-} d
	path=${path%/}
	# Only ever kill inside our own test cgroups.
	case $path in
	"$TOPO_CG_ROOT" | "$TOPO_CG_ROOT"/*) ;;
	*) _topo_log "cg_remove: $path is not under $TOPO_CG_ROOT"; return 2 ;;
	esac
	# Deepest first (a cgroup with children cannot be removed).  Several
	# rounds: a process may join while we work (a run_in that was just
	# starting), and rmdir says EBUSY until dying tasks are fully gone.
	for _ in 1 2 3 4 5; do
		[ -d "$path" ] || return 0
		while IFS= read -r d; do
			_topo_cg_empty "$d" || _topo_log "cg_remove: $d does not empty"
			_topo_wait_until 0.5 rmdir "$d" 2>/dev/null
		done < <(find "$path" -depth -type d)
	done
	[ -d "$path" ] || return 0
	_topo_log "cg_remove: cannot remove $path"
	return 1
}

# The body of run_in: the shell moves ITSELF ($$) into the cgroup first (a
# process cannot write cgroup.procs once `ip netns exec` has remounted /sys),
# then execs `ip netns exec`, which execs CMD: one PID all the way, so the
# caller's $! is CMD's PID.  "-" for CG or NS leaves that one as it is.
# Exit 125 if the cgroup move failed.
# shellcheck disable=SC2016
_topo_run_in_sh='
	cg=$1 ns=$2; shift 2
	if [ "$cg" != - ]; then
		echo $$ >"$cg/cgroup.procs" || { echo "run_in: cannot join $cg" >&2; exit 125; }
	fi
	[ "$ns" = - ] && exec "$@"
	exec ip netns exec "$ns" "$@"'

run_in() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	[ $# -ge 3 ] || { _topo_log "usage: run_in CG NS CMD..."; return 2; }
	sh -c "$_topo_run_in_sh" run_in "$@"
}

# setpriv argv that drops every privilege: setuid to USER (which clears the
# capability sets), USER's primary group, no supplementary groups, empty
# inheritable set.
_topo_setpriv_argv() {
	local gid
	gid=$(id -g "$1") || return 1
	_topo_setpriv=(setpriv --reuid="$1" --regid="$gid" --clear-groups --inh-caps=-all --)
}

run_in_as() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	[ $# -ge 4 ] || { _topo_log "usage: run_in_as USER CG NS CMD..."; return 2; }
	local user=$1 cg=$2 ns=$3
	shift 3
	_topo_setpriv_argv "$user" || return 125
	run_in "$cg" "$ns" "${_topo_setpriv[@]}" "$@"
}

# Background run_in; a simple command after `&` is exec'd by bash, so $! is
# the very process that becomes CMD.  Returns once that process is in its
# cgroup and netns (so a test can rely on it being covered), 1 if it died
# before getting there.
topo_spawn() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	[ $# -ge 3 ] || { _topo_log "usage: topo_spawn CG NS CMD..."; return 2; }
	local cg=${1%/} ns=$2 want_cg='' want_ns=''
	sh -c "$_topo_run_in_sh" run_in "$@" &
	TOPO_LAST_PID=$!
	TOPO_BG_PIDS="${TOPO_BG_PIDS:+$TOPO_BG_PIDS }$TOPO_LAST_PID"
	export TOPO_LAST_PID TOPO_BG_PIDS
	case $cg in
	"$TOPO_CG2"/*) want_cg="0::${cg#"$TOPO_CG2"}" ;;
	esac
	[ "$ns" = - ] || want_ns="net:[$(stat -L -c %i "/run/netns/$ns" 2>/dev/null)]"
	_topo_wait_until 5 _topo_arrived "$TOPO_LAST_PID" "$want_cg" "$want_ns" &&
		_topo_pid_alive "$TOPO_LAST_PID"
}

# _topo_arrived PID CGLINE NSLINK: PID is gone, or is in that cgroup ("0::/x"
# line of /proc/PID/cgroup) and netns ("net:[inode]"); empty means any.
_topo_arrived() {
	_topo_pid_alive "$1" || return 0
	{ [ -z "$2" ] || grep -qxF "$2" "/proc/$1/cgroup" 2>/dev/null; } &&
		{ [ -z "$3" ] || [ "$(readlink "/proc/$1/ns/net" 2>/dev/null)" = "$3" ]; }
}

topo_spawn_as() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	[ $# -ge 4 ] || { _topo_log "usage: topo_spawn_as USER CG NS CMD..."; return 2; }
	local user=$1 cg=$2 ns=$3
	shift 3
	_topo_setpriv_argv "$user" || return 125
	topo_spawn "$cg" "$ns" "${_topo_setpriv[@]}" "$@"
}

topo_stop() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	local pid=${1:?topo_stop PID} rc p rest=
	kill -TERM "$pid" 2>/dev/null
	_topo_wait_until 3 _topo_not _topo_pid_alive "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	for p in ${TOPO_BG_PIDS:-}; do
		[ "$p" = "$pid" ] || rest="${rest:+$rest }$p"
	done
	TOPO_BG_PIDS=$rest
	export TOPO_BG_PIDS
	return $rc
}

topo_listen() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	local proto=${1:?topo_listen udp|tcp PORT} port=${2:?topo_listen udp|tcp PORT}
	shift 2
	[ -x "$TOPO_VGPROBE" ] || { _topo_log "topo_listen: $TOPO_VGPROBE not built"; return 1; }
	local ready="$TOPO_DIR/listen.$proto.$port.ready" out="$TOPO_DIR/listen.$proto.$port.out"
	rm -f "$ready"
	topo_spawn - "$TOPO_INET" "$TOPO_VGPROBE" listen "$proto" "$port" --ready-file "$ready" "$@" \
		>"$out" 2>"$TOPO_DIR/listen.$proto.$port.err"
	echo "$out" >"$TOPO_DIR/listen.$TOPO_LAST_PID"
	_topo_wait_until 5 test -e "$ready" ||
		{ _topo_log "listener $proto/$port did not start"; cat "$TOPO_DIR/listen.$proto.$port.err" >&2; return 1; }
}

topo_listen_stop() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	local pid=${1:?topo_listen_stop PID} out
	out=$(cat "$TOPO_DIR/listen.$pid" 2>/dev/null)
	topo_stop "$pid"
	[ -n "$out" ] && cat "$out"
}

topo_build_vgprobe() {
	local -
	set +e # callers may run with set -e: failures here are handled, not fatal
	_topo_init
	make -s -C "${TOPO_VGPROBE%/build/vgprobe}" build/vgprobe >&2 || return 1
}

# A fresh world per sourcing: never adopt names or PIDs from an inherited
# environment (use topo_load for that).
unset TOPO_SUFFIX TOPO_DIR TOPO_CG2 TOPO_WG_CLIENT_PID TOPO_WG_SERVER_PID \
	TOPO_WG_CLIENT_IFINDEX TOPO_BG_PIDS TOPO_LAST_PID TOPO_HOME_PID
_topo_init
