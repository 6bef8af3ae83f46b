"""The bash test world, tests/lib/topology.sh, proven with NO vpnguard involved: `make bench`
stands on it (tests/clients/test_topology.py proves the Python one, tests/lib/vgtopo.py).

One world for the module, built and driven by one bash that sourced the library
(tests/lib/vgtunnel.py BashTopo: the library keeps its state in that shell); each case
sends it a script and judges what it prints. With the tunnel up, Internet traffic goes
through WireGuard and nothing leaks; the LAN and IPv6 go by the veth, as designed; the
steering tricks (SO_BINDTODEVICE, IP_UNICAST_IF, IP_PKTINFO) leak even with the tunnel up;
when the tunnel disappears the same traffic leaks with the real IP (the leak vpnguard-bpf
must stop), and a recreated tunnel (new ifindex) carries it again. run_in/run_in_as put a
process in a cgroup and a netns, unprivileged; topo_down (the last case: it takes the
module's world down) leaves nothing behind. Far-side rows: every counter a row does not name stays 0 (WireGuard's own
transport aside).

Run one case: pytest-3 tests/kernel/test_topology.py -k 'UNICAST_IF'
"""
import os
import re

import pytest

import vgnft
from vgguard import kernel_lock_held
from vgproc import wait_until
from vgtunnel import BashTopo, leftovers

# The library's counter functions, by the names topo_counters gives them.
COUNTERS = {"leak": "leak_count", "leak6": "leak6_count", "tunnel": "tunnel_count",
            "lan": "lan_count", "wg": "wg_count", "vpnsrc": "vpnsrc_count",
            "stray": "stray_count"}


@pytest.fixture(scope="module")
def bt():
    """No guard, but floods and tunnels load the machine: the kernel lock all the same."""
    with kernel_lock_held():
        with BashTopo() as b:
            b.up()
            yield b
            pids = [b.var("TOPO_WG_CLIENT_PID"), b.var("TOPO_WG_SERVER_PID")]
            d = b.var("TOPO_DIR")
        assert leftovers(b.suffix, d, [int(p) for p in pids if p]) == []


@pytest.fixture
def world(bt):
    """The module's world with its tunnel up and its counters at 0, whatever an earlier case
    did to it (test_topo_down_leaves_nothing takes it down)."""
    bt.sh('if [ ! -e "$TOPO_HOME_NETNS" ]; then topo_up; '
          'elif ! ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT" >/dev/null 2>&1; then '
          'topo_tunnel_up; fi && leak_reset', timeout=120, check=True)
    yield bt
    # What a failed case left running (a listener would hold its port).
    bt.sh('for p in $TOPO_BG_PIDS; do topo_stop "$p"; done')


NFT_NAMES = {"leak4": "leak", "stray4": "stray"}


def far(b):
    """Every counter of the library's table in one nft call (its seven functions take one
    each; test_world shows they say the same)."""
    got = vgnft.parse(b.sh('ip netns exec "$TOPO_INET" nft -j list counters table inet vgtopo',
                           check=True))
    got = {NFT_NAMES.get(k, k): v for k, v in got.items()}
    assert sorted(got) == sorted(COUNTERS), got
    return got


def far_expect(b, want):
    """Wait for the counters want names ("N" or ">=N") to arrive, then every other counter
    (WireGuard's transport aside) must be 0."""
    for k, v in want.items():
        n = int(str(v).lstrip(">="))
        if n:
            b.sh(f"topo_wait_count {COUNTERS[k]} {n} 10")
    b.sh("topo_settle 0.3")
    got = far(b)
    bad = {k: got[k] for k in COUNTERS if k != "wg" and not _meets(got[k], want.get(k, 0))}
    bad.update({k: got[k] for k in want if not _meets(got[k], want[k])})
    assert not bad, f"counters {got}, want {want or 'all 0'}"
    return got


def _meets(got, want):
    want = str(want)
    return got >= int(want[2:]) if want.startswith(">=") else got == int(want)


def w(s):
    """Table words: $I the Internet host, $I6 its IPv6 twin, $R the resolver, $L the LAN host,
    $VETH HOME's veth, $WG the tunnel (bash expands them)."""
    return (s.replace("$I6", '"$TOPO_INET_HOST6"').replace("$I", '"$TOPO_INET_HOST"')
            .replace("$R", '"$TOPO_RESOLVER"').replace("$L", '"$TOPO_LAN_HOST"')
            .replace("$VETH", '"$TOPO_VETH_HOME"').replace("$WG", '"$TOPO_WG_CLIENT"'))


def test_vgprobe_builds(bt):
    assert bt.ok("topo_build_vgprobe && test -x \"$TOPO_VGPROBE\""), bt.log_tail()


# name, bash, its output (a regular expression, whole)
WORLD = [
    ("topo_up gave a suffix", 'echo "$TOPO_SUFFIX"', "[0-9a-f]{5}"),
    ("netns HOME exists", 'test -e "$TOPO_HOME_NETNS" && echo yes', "yes"),
    ("netns INET exists", 'test -e "$TOPO_INET_NETNS" && echo yes', "yes"),
    ("client tunnel in HOME",
     'ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT" >/dev/null && echo yes', "yes"),
    ("client wireguard-go PID is wireguard-go", 'cat "/proc/$TOPO_WG_CLIENT_PID/comm"',
     "wireguard-go"),
    ("server wireguard-go PID is wireguard-go", 'cat "/proc/$TOPO_WG_SERVER_PID/comm"',
     "wireguard-go"),
    ("WireGuard handshake done",
     'ip netns exec "$TOPO_HOME" wg show "$TOPO_WG_CLIENT" latest-handshakes | awk \'{print $2}\'',
     "[1-9][0-9]*"),
    ("HOME routes the Internet via the tunnel", 'ip -n "$TOPO_HOME" route get "$TOPO_INET_HOST"',
     r"(?s).*dev {WG} .*src 10\.66\.0\.2.*"),
    ("HOME routes the LAN via the veth", 'ip -n "$TOPO_HOME" route get "$TOPO_LAN_HOST"',
     r"(?s).*via 10\.99\.0\.2 dev {VETH}.*"),
    ("the counter functions read the table", 'home sendto "$TOPO_INET_HOST" 9 --count 2; '
     'home sendto "$TOPO_LAN_HOST" 9; topo_wait_count tunnel_count 2 10; topo_settle 0.3; '
     'topo_counters; ip netns exec "$TOPO_INET" nft list counters table inet vgtopo | '
     'awk \'$1 == "counter" {n = $2} $1 == "packets" {printf "%s=%s ", n, $2}\'',
     r"sent 2/2\nsent 1/1\nleak=0 leak6=0 tunnel=2 lan=1 wg=(\d+) vpnsrc=0 stray=0\n"
     r"leak4=0 leak6=0 tunnel=2 lan=1 wg=\1 vpnsrc=0 stray4=0"),
]


@pytest.mark.parametrize("name,script,want", WORLD, ids=[r[0] for r in WORLD])
def test_world(world, name, script, want):
    want = want.replace("{WG}", world.var("TOPO_WG_CLIENT")).replace(
        "{VETH}", world.var("TOPO_VETH_HOME"))
    got = world.sh(script)
    assert re.fullmatch(want, got), f"{got!r} !~ /{want}/"


# name, who ("home": root, no cgroup; "nobody"/"root": in a cgroup of the world's), vgprobe
# arguments, result line, counters
TRAFFIC = [
    ("UDP to the Internet host goes by the tunnel", "home", "sendto $I 9 --count 5", "sent 5/5",
     {"tunnel": ">=5", "wg": ">=1"}),
    ("TCP to a closed port is refused: reached", "home", "connect tcp $I 5003 --timeout-ms 3000",
     "refused", {"tunnel": ">=1"}),
    ("IPv4-mapped destination on an AF_INET6 socket", "home", "connect udp ::ffff:$I 9",
     "connected", {"tunnel": 1}),
    ("the resolver by the tunnel", "home", "sendto $R 53", "sent 1/1", {"tunnel": 1}),
    ("the LAN host by the veth", "home", "sendto $L 9 --count 3", "sent 3/3", {"lan": 3}),
    ("IPv6 by the veth", "home", "sendto $I6 9 --count 2", "sent 2/2", {"leak6": 2}),
    ("SO_BINDTODEVICE veth leaks", "home", "connect udp $I 9 --bind-dev $VETH", "connected",
     {"leak": 1}),
    ("IP_UNICAST_IF veth leaks", "home", "connect udp $I 9 --unicast-if $VETH", "connected",
     {"leak": 1}),
    ("IP_PKTINFO veth leaks", "home", "sendmsg-pktinfo $I 9 $VETH", "sent", {"leak": 1}),
    ("unprivileged sendto through the tunnel", "nobody", "sendto $I 9 --count 2", "sent 2/2",
     {"tunnel": 2}),
    ("unprivileged raw socket refused", "nobody", "raw", "errno EPERM", {}),
    ("unprivileged SO_MARK refused", "nobody", "setsockopt mark 7", "errno EPERM", {}),
    ("unprivileged SO_BINDTODEVICE tunnel allowed", "nobody", "setsockopt bindtodevice $WG", "ok",
     {}),
    ("root raw socket, an ICMP echo to the Internet host", "root", "raw $I", "ok",
     {"tunnel": 1}),
]


@pytest.fixture
def cg(world):
    """A cgroup of the world's (cg_make), removed after the case (cg_remove)."""
    path = world.sh("cg_make app/torrent", check=True)
    yield path
    world.sh(f"cg_remove '{world.var('TOPO_CG_ROOT')}/app'")


@pytest.mark.parametrize("name,who,args,result,want", TRAFFIC, ids=[r[0] for r in TRAFFIC])
def test_traffic(world, request, name, who, args, result, want):
    cg = request.getfixturevalue("cg") if who != "home" else None
    run = {"home": "home", "root": f"run_in '{cg}' \"$TOPO_HOME\" \"$TOPO_VGPROBE\"",
           "nobody": f"run_in_as nobody '{cg}' \"$TOPO_HOME\" \"$TOPO_VGPROBE\""}[who]
    got = world.sh(f"{run} {w(args)} 2>/dev/null")
    assert got == result
    far_expect(world, want)


def test_udp_sink_sees_the_tunnel_address(world):
    world.sh("topo_listen udp 5001", check=True)
    lp = world.var("TOPO_LAST_PID")
    assert world.sh(f"home {w('sendto $I 5001 --count 5')}") == "sent 5/5"
    world.sh("topo_settle 0.3")
    assert world.sh(f"topo_listen_stop {lp}") == "received datagrams=5 bytes=160 peer=10.66.0.2"


def test_tcp_through_the_tunnel(world):
    """A connect, then a flood; the sink saw bytes from the tunnel's address."""
    world.sh("topo_listen tcp 5002", check=True)
    lp = world.var("TOPO_LAST_PID")
    assert world.sh(f"home {w('connect tcp $I 5002')}") == "connected"
    assert re.fullmatch(r"ok=[1-9][0-9]* failed=0 .*",
                        world.sh(f"home {w('flood tcp $I 5002 --seconds 1')}"))
    assert re.fullmatch(r"received connections=[1-9][0-9]* bytes=[1-9][0-9]* peer=10\.66\.0\.2",
                        world.sh(f"topo_listen_stop {lp}"))
    far_expect(world, {"tunnel": ">=1", "wg": ">=1"})


def test_tunnel_down_leaks_with_the_real_ip(world):
    pid = world.var("TOPO_WG_CLIENT_PID")
    assert world.ok("topo_tunnel_down"), world.log_tail()
    assert not world.ok('ip -n "$TOPO_HOME" link show "$TOPO_WG_CLIENT" >/dev/null 2>&1'), \
        "client interface still there"
    assert not world.ok(f"_topo_pid_alive {pid}"), "client wireguard-go still alive"
    assert world.ok('test ! -e "/var/run/wireguard/$TOPO_WG_CLIENT.sock"'), "control socket left"
    assert re.search(r"via 10\.99\.0\.2 dev \S+ .*src 10\.99\.0\.1",
                     world.sh('ip -n "$TOPO_HOME" route get "$TOPO_INET_HOST"'))
    world.sh("leak_reset; topo_listen udp 5001", check=True)
    lp = world.var("TOPO_LAST_PID")
    assert world.sh(f"home {w('sendto $I 5001 --count 5')}") == "sent 5/5"
    far_expect(world, {"leak": ">=5"})
    assert world.sh(f"topo_listen_stop {lp}") == "received datagrams=5 bytes=160 peer=10.99.0.1"


def test_tunnel_recreated_carries_again(world):
    old = world.var("TOPO_WG_CLIENT_IFINDEX")
    assert world.ok("topo_tunnel_down && topo_tunnel_up"), world.log_tail()
    new = world.var("TOPO_WG_CLIENT_IFINDEX")
    assert new and new != old, f"ifindex {old} -> {new}"
    world.sh("leak_reset")
    assert world.sh(f"home {w('sendto $I 9 --count 5')}") == "sent 5/5"
    far_expect(world, {"tunnel": ">=5", "wg": ">=1"})


def test_tunnel_killed_under_traffic_the_gap_leaks(world):
    out = world.sh('fl_out=$TOPO_DIR/flood.out; topo_spawn - "$TOPO_HOME" "$TOPO_VGPROBE" '
                   'flood udp "$TOPO_INET_HOST" 9 --seconds 3 --unconnected >"$fl_out" '
                   '2>/dev/null; fl=$TOPO_LAST_PID; echo "$fl"')
    assert out.isdigit(), out
    assert world.ok("topo_wait_count tunnel_count 1 5"), "the flood did not start"
    assert world.ok("topo_tunnel_down kill"), world.log_tail()
    assert world.ok('test ! -e "/var/run/wireguard/$TOPO_WG_CLIENT.sock"'), \
        "stale control socket after SIGKILL"
    assert world.ok("topo_wait_count leak_count 1 5"), "nothing leaked in the gap"
    assert world.ok("topo_tunnel_up"), world.log_tail()
    # The flood ends by itself after 3 s; topo_stop only reaps it (or ends a hung one).
    world.sh('_topo_wait_until 10 _topo_not _topo_pid_alive "$fl"; topo_stop "$fl"; '
             'topo_settle 0.3')
    assert re.match(r"ok=[1-9][0-9]* ", world.sh('cat "$fl_out"'))
    got = far(world)
    assert got["leak"] >= 1 and got["tunnel"] >= 1, got


def test_cg_make_path(world, cg):
    assert cg == world.var("TOPO_CG_ROOT") + "/app/torrent"


IDENTITY = 'echo "$(id -u) $(grep "^0::" /proc/self/cgroup) $(readlink /proc/self/ns/net)'


@pytest.mark.parametrize("who,script,want", [
    ("run_in_as nobody", IDENTITY + ' $(grep CapEff /proc/self/status | cut -f2)"',
     "65534 0::{cg} net:[{ino}] 0000000000000000"),
    ("run_in", IDENTITY + '"', "0 0::{cg} net:[{ino}]"),
], ids=["run_in_as", "run_in"])
def test_run_in_identity(world, cg, who, script, want):
    """uid, cgroup, netns (and, unprivileged, no capabilities) of what runs there."""
    ino = os.stat(world.var("TOPO_HOME_NETNS")).st_ino
    got = world.sh(f"{who} '{cg}' \"$TOPO_HOME\" sh -c '{script}'")
    assert got == want.format(cg=cg[len(world.var("TOPO_CG2")):], ino=ino)


def test_run_in_exit_status(world, cg):
    assert world.sh(f"run_in '{cg}' \"$TOPO_HOME\" sh -c 'exit 3'; echo $?") == "3"
    assert world.sh('run_in "$TOPO_CG_ROOT/nope" - true 2>/dev/null; echo $?') == "125"


def test_spawn_as_stop_and_cg_remove(world, cg):
    sp = world.sh(f"topo_spawn_as nobody '{cg}' \"$TOPO_HOME\" sleep 60; echo $TOPO_LAST_PID")
    assert wait_until(lambda: _comm(sp) == "sleep", 5), f"topo_spawn_as PID {sp} is {_comm(sp)}"
    with open(os.path.join(cg, "cgroup.procs")) as f:
        assert f.read().split() == [sp]
    # Left running on purpose: cg_remove must end it.
    sp2 = world.sh(f"topo_spawn '{cg}' \"$TOPO_HOME\" sleep 60; echo $TOPO_LAST_PID")
    world.sh(f"topo_stop {sp}")
    assert not world.ok(f"_topo_pid_alive {sp}"), "topo_stop did not end it"
    assert world.ok('cg_remove "$TOPO_CG_ROOT/app"')
    assert not os.path.isdir(os.path.dirname(cg))
    assert not world.ok(f"_topo_pid_alive {sp2}"), "cg_remove left its process"


def test_cg_remove_refuses_outside_the_test_root(world):
    assert world.sh('cg_remove "$TOPO_CG2" 2>/dev/null; echo $?') == "2"


def _comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def test_topo_down_leaves_nothing(world):
    """Last, as it takes the module's world down (a case after it would build it again):
    with a cgroup, and a process in a namespace that topo_down must find by itself
    (forgotten by TOPO_BG_PIDS)."""
    b = world
    b.sh("cg_make leftover >/dev/null", check=True)
    stray = b.sh('topo_spawn - "$TOPO_INET" sleep 60; echo $TOPO_LAST_PID; TOPO_BG_PIDS=')
    pids = [int(b.var("TOPO_WG_CLIENT_PID")), int(b.var("TOPO_WG_SERVER_PID")), int(stray)]
    d = b.var("TOPO_DIR")
    assert b.ok("topo_down"), b.log_tail()
    assert b.ok("topo_down"), "topo_down again (idempotent)"
    assert b.sh('ip netns list | grep -c "^vg$TOPO_SUFFIX"') == "0"
    assert not b.ok('find /var/run/wireguard -name "vg$TOPO_SUFFIX*" | grep -q .'), \
        "control sockets left"
    assert leftovers(b.suffix, d, pids) == []
