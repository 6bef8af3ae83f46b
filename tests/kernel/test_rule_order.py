"""The rules header is the truth: every ordering claim of bpf/vpnguard.h, a row on the real kernel.

vpnguard.h says rules 1-8 are evaluated in order and the first that matches decides (judge() in
bpf/vg_rules.bpf.h). Each row here puts a destination where two rules (or more) both match and
checks that the one the header names wins: by vgprobe's result line, by the far side (every
counter a row does not name stays 0) and by the guard's per-reason denial counters of
`status --json` (every reason a row does not name stays unmoved; "no policy" rows put the policy
back before reading them, since status lists guards by their policy).

The world (one for the module, tests/lib/vgtopo.py routing "subnets"): HOME, INET, a
wireguard-go tunnel, a TCP listener in INET (port P) and a dual-stack one in HOME (LP), and a
third namespace joined to INET by a veth of its own, default route via INET ("third" counts what
arrives from it). Every row attaches a fresh --no-agent guard of cgroup "guarded", then makes the
row's condition true: the policy deleted from the pinned vg_policy, vg_state written CLOSED / with
a lease run out / deleted, the tunnel deleted (made again after the row). Tunnel guards:
--allow LAN --allow fd00:99::/64 (the veth's IPv6 net) --dns R --dns L --dns I6; gateway guards
(test_rule_order_notes.py): --gateway I:P --allow LAN --dns R.

Claim of the header -> the test that proves it (this file unless named; "rules" =
test_rules.py, "steering_rows" = test_steering_rows.py, "notes" = test_rule_order_notes.py)

 1 loopback, whatever else holds:
   before 2 (no policy)          test_loopback_first[no policy: 127.0.0.1 / ::1 / TCP]
   before 3 (netns)              rules::test_netns_rule[loopback in the third netns still allowed-*]
                                 test_loopback_first[third netns, closed: 127.0.0.1]
   before 4 (DNS)                test_loopback_first[DNS to a local stub 127.0.0.53]
                                 test_loopback_first[no policy: DNS to a local stub]
   before 6 (::1 is IPv6)        rules::test_rule[loopback UDP sendto ::1-*], [loopback TCP connect ::1*]
   before 7 (closed)             test_loopback_first[closed: ...]
   before 8 (no tunnel)          test_loopback_first[tunnel deleted: ...]
   a packet leaving by lo        test_loopback_first[own address: UDP / TCP] (no off_tunnel)
 2 no policy -> no_policy, before 3-8
                                 test_no_policy_first[...] (Internet, closed, tunnel deleted, DNS,
                                 allowed subnet, IPv6, third netns, setsockopt)
   unreadable headers            not produced by any test (a socket cannot send such a packet)
 3 netns (cookie not 0), before 4-8
                                 test_netns_before[...] (listed and rogue resolver, allowed subnet,
                                 IPv6, closed, tunnel deleted); rules::test_netns_rule[*] (before 8)
   cookie 0 (gateway): any ns    notes::test_gateway[third netns: gateway reached]
 4 DNS unless listed, before 5   rules::test_rule[DNS udp-53 to an allowed-subnet host*]
   before 6, 7, 8                test_dns_before[rogue IPv6 resolver / closed / tunnel deleted]
   ports 53 853 5353 5355 U/T    rules::test_rule[DNS *rogue resolver-*]
   listed: judged below          test_dns_before[listed resolver: ...] (by rule 5 on the veth,
                                 6 ipv6, 7 closed, 8 no_tunnel); rules::test_rule[DNS * listed *];
                                 notes::test_gateway[listed resolver, not a gateway: not_gateway]
 5 allow, any interface, before 6, 7, 8
                                 test_allow_before[...] (closed, lease run out, tunnel deleted,
                                 allowed IPv6 net); rules::test_rule[allowed subnet*];
                                 notes::test_gateway[closed: allowed subnet]
   discovery in allow            steering_rows::test_discovery[LSD/SSDP/NAT-PMP*];
                                 test_allow_before[discovery: closed / tunnel deleted / IPv6 net]
   discovery elsewhere: 6-8      steering_rows::test_discovery[NAT-PMP through the tunnel*,
                                 *multicast*, TCP to port 1900*]; test_allow_before[discovery port
                                 to the Internet: tunnel / closed / no tunnel / IPv6]
 6 IPv6, before 7, 8             test_ipv6_before[...]; notes::test_gateway[IPv6: ipv6]
   v4-mapped is IPv4             rules::test_rule[v4-mapped*]; test_ipv6_before[v4-mapped: ...]
 7 CLOSED / lease, before 8      test_closed_before[...]; notes::test_gateway[closed: ...]
   no vg_state (never opened)    test_closed_before[no vg_state entry] (judge's own comment)
   running lease is open         test_closed_before[lease running: through the tunnel]
 8 tunnel up and present         steering::test_no_tunnel_without_agent (deleted, no agent);
                                 agent_netlink (link down: no_tunnel)
   leave by it, else off_tunnel  egress_steering::test_steering[sendmsg IP_PKTINFO choosing the veth*]
   gateway: gw, port 0 any       notes::test_gateway[...]; test_cli.sh case 1 (bash)
 Steering                        test_steering.py, test_steering_rows.py
 Facts read again (1 ms + tick)  test_tunnel.sh case 6 (reaction time); a policy naming another
                                 tunnel acting at once: test_cli.sh re-attach/switch rows (bash)
 setsockopt: steering options    egress_steering::test_steering[SO_BINDTODEVICE*, SO_BINDTOIFINDEX*,
                                 IP_UNICAST_IF*, IPV6_UNICAST_IF*]; steering_rows::test_multicast_joins
                                 [IP_MULTICAST_IF*, IPV6_MULTICAST_IF*] (cleared: ok)
   SO_MARK but the own mark      steering::test_so_mark; egress_steering::test_steering[SO_MARK*]
   joins off the tunnel          steering_rows::test_multicast_joins[*]
   gateway: every join refused   notes::test_gateway_joins[*]
 Raw sockets refused             egress_steering::test_steering[raw*]
 tc: tunnel_src                  test_tc.py::test_tc[*]
 tc: the guard's packets         notes::test_tc[AF_PACKET: Internet host dropped / LAN allowed /
     unless rule 1 or 5            loopback destination]
 tc: no policy, passes all       notes::test_tc[no policy: the tunnel's source passes]
     "(the cgroup programs       notes::test_tc[no policy: a guard's AF_PACKET packet],
      deny those)"                 notes::test_tc[third netns: a guard's AF_PACKET packet]

Run one case: pytest-3 tests/kernel/test_rule_order.py -k 'closed and tunnel and deleted'
"""
import contextlib
import json
import re
import subprocess
import time

import pytest

from vgguard import Guard, kernel_lock_held, pin_root
from vgproc import netns_remove, wait_until
from vgtopo import Topology
from vgworld import PY, TOOLS, Attempt, Listener, World, probe, words

P, LP = 5002, 7001
V6NET = "fd00:99::/64"
# Addresses nobody holds: only their judgement matters (a row that leaked would count them).
LAN_RESOLVER, ROGUE6 = "192.0.2.53", "2001:db8:100::53"
THIRD_SRC, THIRD_GW = "10.98.0.1", "10.98.0.2"

KINDS = {
    "tunnel": lambda t: ["--allow", t.lan_net, "--allow", V6NET, "--dns", t.resolver,
                         "--dns", t.lan_host, "--dns", t.inet_host6],
    "gateway": lambda t: ["--gateway", f"{t.inet_host}:{P}", "--allow", t.lan_net,
                          "--dns", t.resolver],
}
CONDITIONS = ("open", "no_policy", "closed", "lease_expired", "lease_running", "no_state",
              "tunnel_deleted")


@pytest.fixture(scope="module")
def world(vg):
    with kernel_lock_held(), Topology() as t:
        w = World(t)
        w.vg = vg
        s = t.suffix
        w.third, w.third_veth, w.third_inet = f"vg{s}ro3", f"vg{s}r3", f"vg{s}r3i"
        w.add_table("vgro", "counter third { }\n"
                    "chain pre { type filter hook prerouting priority -320; policy accept;\n"
                    f'iifname "{w.third_inet}" ip saddr 10.98.0.0/24 counter name third\n}}',
                    strict=("third",))
        try:
            t.run(["ip", "netns", "add", w.third], check=True)
            for argv in (["ip", "-n", w.third, "link", "set", "lo", "up"],
                         ["ip", "-n", w.third, "link", "add", w.third_veth, "type", "veth", "peer",
                          "name", w.third_inet, "netns", t.inet],
                         ["ip", "-n", w.third, "addr", "add", f"{THIRD_SRC}/24", "dev", w.third_veth],
                         ["ip", "-n", t.inet, "addr", "add", f"{THIRD_GW}/24", "dev", w.third_inet],
                         ["ip", "-n", w.third, "link", "set", w.third_veth, "up"],
                         ["ip", "-n", t.inet, "link", "set", w.third_inet, "up"],
                         ["ip", "-n", w.third, "route", "add", "default", "via", THIRD_GW]):
                t.run(argv, check=True)
            t.run(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
                   "net.ipv4.conf.default.rp_filter=0"], netns=w.third, check=True)
            Listener(t, "tcp", P)
            Listener(t, "tcp", LP, "--v6", netns=t.home)
            w.cg = t.cgroup("guarded")
            yield w
        finally:
            netns_remove(w.third)


# -- the pinned maps, by bpftool ----------------------------------------------------
def _hex(n, v):
    return [f"{b:02x}" for b in (v % (1 << (8 * n))).to_bytes(n, "little")]


def _bpftool(*args):
    r = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"bpftool {' '.join(args[:4])}: {r.stderr.strip() or r.stdout}"
    return r.stdout


def _pin(name):
    return f"{pin_root()}/{name}"


def write_state(gid, state, deadline_ns=0):
    """vg_state[gid] = {state, lease_deadline_ns} (struct vg_state: u32, u32 pad, u64)."""
    _bpftool("map", "update", "pinned", _pin("vg_state"), "key", "hex", *_hex(8, gid),
             "value", "hex", *_hex(4, state), *_hex(4, 0), *_hex(8, deadline_ns))


def boot_ns():
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def take_policy(gid):
    """Deletes vg_policy[gid]; returns its bytes (hex words) to put back."""
    value = json.loads(_bpftool("map", "lookup", "pinned", _pin("vg_policy"), "key", "hex",
                                *_hex(8, gid)))["value"]
    _bpftool("map", "delete", "pinned", _pin("vg_policy"), "key", "hex", *_hex(8, gid))
    return [v[2:] for v in value]


def put_policy(gid, value):
    _bpftool("map", "update", "pinned", _pin("vg_policy"), "key", "hex", *_hex(8, gid),
             "value", "hex", *value)


# -- one row ------------------------------------------------------------------------
AF_PACKET = r"""
import socket, struct, sys
dev, mac, src, dst, port = sys.argv[1:6]
def csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    return ~(s + (s >> 16)) & 0xffff
udp = struct.pack("!HHHH", 40000, int(port), 12, 0) + b"vgro"
ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                 socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
try:
    print("sent", s.sendto(ip + udp, (dev, 0x0800, 0, 0, bytes.fromhex(mac.replace(":", "")))))
except OSError as e:
    print("errno", e.errno)
"""


def attempt_argv(w, where, args):
    """The command of a row: vgprobe ARGS; "afpacket DST PORT" (one hand-made IPv4 UDP packet on
    an AF_PACKET socket, out of the row's namespace's veth, around every inet hook); "sockopt
    KIND SPEC" (tests/tools/sockopt_probe.py)."""
    t = w.t
    a = words(t, args, P=P, LP=LP, LR=LAN_RESOLVER, D6=ROGUE6).split()
    if a[0] == "afpacket":
        dev, peer, src, ns = ((t.veth_home, t.veth_inet, t.real_ip, t.home) if where == "home"
                              else (w.third_veth, w.third_inet, THIRD_SRC, w.third))
        mac = t.run(["cat", f"/sys/class/net/{peer}/address"], netns=t.inet,
                    check=True).stdout.strip()
        return [PY, "-c", AF_PACKET, dev, mac, src] + a[1:]
    if a[0] == "sockopt":
        return [PY, f"{TOOLS}/sockopt_probe.py"] + a[1:] + ["--hold", "1"]
    return [t.vgprobe] + a


@contextlib.contextmanager
def fresh_guard(w, kind, conds):
    """A new guard of kind with conds made true (but no_policy: the row's to take); the tunnel
    deleted by a row is made again after the guard is gone."""
    t, deleted = w.t, False
    try:
        with Guard(w.vg, t, w.cg, *KINDS[kind](t), tunnel=kind == "tunnel") as g:
            if "closed" in conds:
                write_state(g.gid, 1)
            if "lease_expired" in conds:
                write_state(g.gid, 0, boot_ns() - 1_000_000_000)
            if "lease_running" in conds:
                write_state(g.gid, 0, boot_ns() + 60_000_000_000)
            if "no_state" in conds:
                _bpftool("map", "delete", "pinned", _pin("vg_state"), "key", "hex", *_hex(8, g.gid))
            if "tunnel_deleted" in conds:
                deleted = True
                t.tunnel_down("del")
                assert wait_until(lambda: g.status()["tunnel_present"] is False, 5, 0.1), g.status()
            st = g.status()
            want = "closed" if conds & {"closed", "lease_expired", "no_state"} else "open"
            assert st["state"] == want, f"{sorted(conds)}: status says {st['state']}"
            yield g
    finally:
        if deleted:
            t.tunnel_up()


def check_row(w, kind, cond, where, user, result, far, denied, args):
    """One row: a fresh guard, its condition, one attempt (in the guard's cgroup unless where
    says "unguarded"), judged by result line, far side and denials."""
    conds = set(cond.split("+"))
    assert conds <= set(CONDITIONS), cond
    t = w.t
    far = dict(far)
    if "tunnel_deleted" in conds:
        # HOME's kernel answering WireGuard datagrams for the deleted client's port.
        far.setdefault("wgicmp", "*")
    with fresh_guard(w, kind, conds) as g:
        before = Attempt(w, w.vg, g.gid)
        saved = take_policy(g.gid) if "no_policy" in conds else None
        try:
            argv = attempt_argv(w, "third" if where == "third" else "home", args)
            r = t.run(argv, cg=None if where == "unguarded" else w.cg,
                      netns=w.third if where == "third" else t.home,
                      user=None if user == "root" else user)
            got = (r.stdout.strip().splitlines() or [""])[-1]
        finally:
            if saved is not None:
                put_policy(g.gid, saved)
        assert re.fullmatch(result, got), f"result {got!r}, want /{result}/ ({r.stderr.strip()})"
        before.expect(far=far, denied=denied)


ROW_ARGS = "kind,cond,where,user,result,far,denied,args"


def table(rows, kind="tunnel", user="nobody"):
    """Rows (name, condition, where, result line, far side, denials, arguments) as a
    parametrization of ROW_ARGS, ids their names."""
    return pytest.mark.parametrize(ROW_ARGS, [(kind, r[1], r[2], user) + r[3:] for r in rows],
                                   ids=[r[0] for r in rows])

SENT, REFUSED = "sent 1/1", "sent 0/1 errno EPERM"

# name, condition, where, result line, far side, denials, vgprobe arguments
LOOPBACK = [
    ("no policy: 127.0.0.1", "no_policy", "home", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("no policy: ::1", "no_policy", "home", SENT, {}, {}, "sendto ::1 9"),
    ("no policy: TCP 127.0.0.1", "no_policy", "home", "connected", {}, {},
     "connect tcp 127.0.0.1 {LP}"),
    ("no policy: DNS to a local stub 127.0.0.53", "no_policy", "home", SENT, {}, {},
     "sendto 127.0.0.53 53"),
    ("DNS to a local stub 127.0.0.53", "open", "home", SENT, {}, {}, "sendto 127.0.0.53 53"),
    ("closed: 127.0.0.1", "closed", "home", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("closed: TCP ::1", "closed", "home", "connected", {}, {}, "connect tcp ::1 {LP}"),
    ("tunnel deleted: 127.0.0.1", "tunnel_deleted", "home", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("tunnel deleted: TCP 127.0.0.1", "tunnel_deleted", "home", "connected", {}, {},
     "connect tcp 127.0.0.1 {LP}"),
    ("closed and tunnel deleted: ::1", "closed+tunnel_deleted", "home", SENT, {}, {},
     "sendto ::1 9"),
    ("third netns, closed: 127.0.0.1", "closed", "third", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("third netns, no policy: 127.0.0.1", "no_policy", "third", SENT, {}, {},
     "sendto 127.0.0.1 9"),
    # Judged a tunnel destination at sendmsg/connect, its packets leave by lo, not the tunnel.
    ("own address: UDP leaves by lo", "open", "home", SENT, {}, {}, "sendto {REAL} 9"),
    ("own address: TCP leaves by lo", "open", "home", "connected", {}, {},
     "connect tcp {REAL} {LP}"),
]


@table(LOOPBACK)
def test_loopback_first(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


NO_POLICY = [
    ("Internet host", "no_policy", "home", REFUSED, {}, {"no_policy": 1}, "sendto {I} 9"),
    ("TCP Internet host", "no_policy", "home", "errno EPERM", {}, {"no_policy": 1},
     "connect tcp {I} {P}"),
    ("closed: no_policy, not closed", "no_policy+closed", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {I} 9"),
    ("tunnel deleted: no_policy, not no_tunnel", "no_policy+tunnel_deleted", "home", REFUSED, {},
     {"no_policy": 1}, "sendto {I} 9"),
    ("rogue resolver: no_policy, not dns", "no_policy", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {D} 53"),
    ("allowed subnet: no_policy, not allowed", "no_policy", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {L} 9"),
    ("IPv6: no_policy, not ipv6", "no_policy", "home", REFUSED, {}, {"no_policy": 1},
     "sendto {I6} 9"),
    ("third netns: no_policy, not netns", "no_policy", "third", REFUSED, {}, {"no_policy": 1},
     "sendto {I} 9"),
    ("setsockopt SO_BINDTODEVICE veth: no_policy, not sockopt", "no_policy", "home",
     "errno EPERM", {}, {"no_policy": 1}, "setsockopt bindtodevice {VETH}"),
]


@table(NO_POLICY)
def test_no_policy_first(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


NETNS = [
    ("listed resolver", "open", "third", REFUSED, {}, {"netns": 1}, "sendto {R} 53"),
    ("rogue resolver: netns, not dns", "open", "third", REFUSED, {}, {"netns": 1},
     "sendto {D} 53"),
    ("allowed subnet", "open", "third", REFUSED, {}, {"netns": 1}, "sendto {L} 9"),
    ("TCP allowed subnet", "open", "third", "errno EPERM", {}, {"netns": 1},
     "connect tcp {L} {P}"),
    ("IPv6: netns, not ipv6", "open", "third", REFUSED, {}, {"netns": 1}, "sendto {I6} 9"),
    ("closed: netns, not closed", "closed", "third", REFUSED, {}, {"netns": 1}, "sendto {I} 9"),
    ("tunnel deleted: netns, not no_tunnel", "tunnel_deleted", "third", REFUSED, {},
     {"netns": 1}, "sendto {I} 9"),
]


@table(NETNS)
def test_netns_before(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


DNS = [
    ("rogue resolver in the allowed subnet", "open", "home", REFUSED, {}, {"dns": 1},
     "sendto {LR} 53"),
    ("rogue IPv6 resolver: dns, not ipv6", "open", "home", REFUSED, {}, {"dns": 1},
     "sendto {D6} 53"),
    ("rogue resolver, closed: dns, not closed", "closed", "home", REFUSED, {}, {"dns": 1},
     "sendto {D} 53"),
    ("rogue resolver, tunnel deleted: dns, not no_tunnel", "tunnel_deleted", "home", REFUSED, {},
     {"dns": 1}, "sendto {D} 53"),
    ("listed resolver in the allowed subnet: by the veth (rule 5)", "open", "home", SENT,
     {"lan": 1}, {}, "sendto {L} 53"),
    ("listed resolver in the allowed subnet, closed: still allowed", "closed", "home", SENT,
     {"lan": 1}, {}, "sendto {L} 53"),
    ("listed IPv6 resolver: ipv6", "open", "home", REFUSED, {}, {"ipv6": 1}, "sendto {I6} 53"),
    ("listed resolver, closed: closed", "closed", "home", REFUSED, {}, {"closed": 1},
     "sendto {R} 53"),
    ("listed resolver, tunnel deleted: no_tunnel", "tunnel_deleted", "home", REFUSED, {},
     {"no_tunnel": 1}, "sendto {R} 53"),
    ("listed resolver, TCP 853, tunnel deleted: no_tunnel", "tunnel_deleted", "home",
     "errno EPERM", {}, {"no_tunnel": 1}, "connect tcp {R} 853"),
]


@table(DNS)
def test_dns_before(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


ALLOW = [
    ("closed: allowed subnet", "closed", "home", "sent 2/2", {"lan": 2}, {},
     "sendto {L} 9 --count 2"),
    ("closed: TCP allowed subnet", "closed", "home", "connected", {"lan": ">=1"}, {},
     "connect tcp {L} {P}"),
    ("lease run out: allowed subnet", "lease_expired", "home", SENT, {"lan": 1}, {},
     "sendto {L} 9"),
    ("tunnel deleted: allowed subnet", "tunnel_deleted", "home", SENT, {"lan": 1}, {},
     "sendto {L} 9"),
    ("tunnel deleted: TCP allowed subnet", "tunnel_deleted", "home", "connected", {"lan": ">=1"},
     {}, "connect tcp {L} {P}"),
    ("closed and tunnel deleted: allowed subnet", "closed+tunnel_deleted", "home", SENT,
     {"lan": 1}, {}, "sendto {L} 9"),
    ("allowed IPv6 net: allowed, not ipv6", "open", "home", SENT, {"leak6": 1}, {},
     "sendto {GW6} 9"),
    ("allowed IPv6 net, closed", "closed", "home", SENT, {"leak6": 1}, {}, "sendto {GW6} 9"),
    ("v4-mapped allowed subnet, closed", "closed", "home", SENT, {"lan": 1}, {}, "sendto ::ffff:{L} 9"),
    ("discovery LSD to the allowed subnet, closed: discovery", "closed", "home", REFUSED, {},
     {"discovery": 1}, "sendto {L} 6771"),
    ("discovery NAT-PMP to the allowed subnet, tunnel deleted: discovery", "tunnel_deleted",
     "home", REFUSED, {}, {"discovery": 1}, "sendto {L} 5351"),
    ("discovery SSDP to the allowed IPv6 net: discovery, not ipv6", "open", "home", REFUSED, {},
     {"discovery": 1}, "sendto {GW6} 1900"),
    ("discovery port LSD to the Internet: through the tunnel", "open", "home", SENT,
     {"tunnel": 1}, {}, "sendto {I} 6771"),
    ("discovery port SSDP to the Internet: through the tunnel", "open", "home", SENT,
     {"tunnel": 1}, {}, "sendto {I} 1900"),
    ("discovery port SSDP to the Internet, closed: closed", "closed", "home", REFUSED, {},
     {"closed": 1}, "sendto {I} 1900"),
    ("discovery port LSD to the Internet, tunnel deleted: no_tunnel", "tunnel_deleted", "home",
     REFUSED, {}, {"no_tunnel": 1}, "sendto {I} 6771"),
    ("discovery port NAT-PMP to an IPv6 host: ipv6", "open", "home", REFUSED, {}, {"ipv6": 1},
     "sendto {I6} 5351"),
]


@table(ALLOW)
def test_allow_before(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


IPV6 = [
    ("closed: ipv6, not closed", "closed", "home", REFUSED, {}, {"ipv6": 1}, "sendto {I6} 9"),
    ("TCP, closed: ipv6", "closed", "home", "errno EPERM", {}, {"ipv6": 1},
     "connect tcp {I6} {P}"),
    ("tunnel deleted: ipv6, not no_tunnel", "tunnel_deleted", "home", REFUSED, {}, {"ipv6": 1},
     "sendto {I6} 9"),
    ("v4-mapped, closed: closed, not ipv6", "closed", "home", REFUSED, {}, {"closed": 1},
     "sendto ::ffff:{I} 9"),
    ("v4-mapped, tunnel deleted: no_tunnel, not ipv6", "tunnel_deleted", "home", "errno EPERM",
     {}, {"no_tunnel": 1}, "connect udp ::ffff:{I} 9"),
]


@table(IPV6)
def test_ipv6_before(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)


CLOSED = [
    ("closed and tunnel deleted: closed, not no_tunnel", "closed+tunnel_deleted", "home",
     REFUSED, {}, {"closed": 1}, "sendto {I} 9"),
    ("TCP, closed and tunnel deleted: closed", "closed+tunnel_deleted", "home", "errno EPERM", {},
     {"closed": 1}, "connect tcp {I} {P}"),
    ("lease run out: closed", "lease_expired", "home", REFUSED, {}, {"closed": 1},
     "sendto {I} 9"),
    ("lease run out and tunnel deleted: closed", "lease_expired+tunnel_deleted", "home", REFUSED,
     {}, {"closed": 1}, "sendto {I} 9"),
    ("no vg_state entry: closed", "no_state", "home", REFUSED, {}, {"closed": 1}, "sendto {I} 9"),
    ("lease running: through the tunnel", "lease_running", "home", SENT, {"tunnel": 1}, {},
     "sendto {I} 9"),
]


@table(CLOSED)
def test_closed_before(world, kind, cond, where, user, result, far, denied, args):
    check_row(world, kind, cond, where, user, result, far, denied, args)
