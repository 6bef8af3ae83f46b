"""The rule table of a tunnel-mode guard, row by row, on the real kernel.

One world for the module (tests/lib/vgtopo.py, routing "subnets": the Internet and the
resolver's nets by the tunnel, the rest by the veth) with one --no-agent guard of cgroup
"guarded" (--allow the LAN, --dns the resolver), a child cgroup below it, a TCP listener in
INET (any address, port P) and a dual-stack one on HOME's loopback (LP), and a third network
namespace joined to INET by a veth of its own: not the tunnel's (the netns rule). Each row is
one vgprobe run, judged by its result line (the whole line, a regular expression), the far
side (tests/lib/vgworld.py: every counter a row does not name stays 0; "third" counts what
arrives from the third namespace) and the guard's denial counters (every reason a row does
not name stays unmoved). No row changes the world.

Run one row: pytest-3 tests/kernel/test_rules.py -k 'rogue and 853 and nobody'
"""
import os
import re

import pytest

from vgguard import Guard, kernel_lock_held, pin_root
from vgproc import netns_remove
from vgtopo import Topology
from vgworld import (GUARD_PINS, Attempt, Listener, World, cg_rel, expand, guard_status, probe,
                     words)

P, LP = 5002, 7001


@pytest.fixture(scope="module")
def world(vg):
    with kernel_lock_held(), Topology() as t:
        w = World(t)
        s = t.suffix
        w.third, third_veth, third_inet = f"vg{s}tt3", f"vg{s}t3", f"vg{s}t3i"
        w.add_table("vgtt", "counter third { }\n"
                    "chain pre { type filter hook prerouting priority -320; policy accept;\n"
                    f'iifname "{third_inet}" ip saddr 10.98.0.0/24 counter name third\n}}',
                    strict=("third",))
        try:
            t.run(["ip", "netns", "add", w.third], check=True)
            for argv in (["ip", "-n", w.third, "link", "set", "lo", "up"],
                         ["ip", "-n", w.third, "link", "add", third_veth, "type", "veth", "peer",
                          "name", third_inet, "netns", t.inet],
                         ["ip", "-n", w.third, "addr", "add", "10.98.0.1/24", "dev", third_veth],
                         ["ip", "-n", t.inet, "addr", "add", "10.98.0.2/24", "dev", third_inet],
                         ["ip", "-n", w.third, "link", "set", third_veth, "up"],
                         ["ip", "-n", t.inet, "link", "set", third_inet, "up"],
                         ["ip", "-n", w.third, "route", "add", t.inet_net, "via", "10.98.0.2"]):
                t.run(argv, check=True)
            t.run(["sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0",
                   "net.ipv4.conf.default.rp_filter=0"], netns=w.third, check=True)
            w.inet_listener = Listener(t, "tcp", P)
            w.lo_listener = Listener(t, "tcp", LP, "--v6", netns=t.home)
            w.cg = t.cgroup("guarded")
            w.child = t.cgroup("guarded/child")
            with Guard(vg, t, w.cg, "--allow", t.lan_net, "--dns", t.resolver) as g:
                w.g, w.vg = g, vg
                yield w
        finally:
            netns_remove(w.third)


def check(w, user, cg, netns, result, far, denied, args):
    t = w.t
    before = Attempt(w, w.vg, w.g.gid)
    got = probe(t, cg, words(t, args, P=P, LP=LP), user, netns=netns)
    assert re.fullmatch(result, got), f"result {got!r}, want /{result}/"
    before.expect(far=far, denied=denied)


def test_guard_status(world):
    t, st = world.t, world.g.status()
    assert (st["mode"], st["tunnel"], st["state"], st["tunnel_present"]) == \
        ("tunnel", t.wg_client, "open", True), st
    assert st["tunnel_ifindex"] == t.wg_client_ifindex, st
    assert st["cgroup"] == cg_rel(t.cg2, world.cg), st


def test_guard_pins(world):
    """The cgroup programs' pins, and the tc program on the veth."""
    missing = [p for p in GUARD_PINS if not os.path.exists(os.path.join(pin_root(), str(world.g.gid), p))]
    assert missing == [], missing
    veth = int(world.t.run(["cat", f"/sys/class/net/{world.t.veth_home}/ifindex"],
                           netns=world.t.home, check=True).stdout)
    assert veth in guard_status(world.vg, world.g.gid)["tc_ifindexes"]


# name, who, result line, far side, denials, vgprobe arguments
RULES = [
    ("UDP sendto Internet host via the tunnel", "both", "sent 3/3", {"tunnel": 3}, {},
     "sendto {I} 9 --count 3"),
    ("connected UDP to Internet host", "both", "connected", {"tunnel": 1}, {}, "connect udp {I} 9"),
    ("TCP connect to Internet host", "both", "connected", {"tunnel": ">=1"}, {}, "connect tcp {I} {P}"),
    ("TCP flood 1 s to Internet host", "both", "ok=[1-9][0-9]* failed=0 .*", {"tunnel": ">=10"}, {},
     "flood tcp {I} {P} --seconds 1"),
    ("loopback UDP sendto 127.0.0.1", "both", "sent 2/2", {}, {}, "sendto 127.0.0.1 9 --count 2"),
    ("loopback UDP sendto ::1", "both", "sent 2/2", {}, {}, "sendto ::1 9 --count 2"),
    ("loopback connected UDP 127.0.0.1", "both", "connected", {}, {}, "connect udp 127.0.0.1 9"),
    ("loopback TCP connect 127.0.0.1 (HOME listener)", "both", "connected", {}, {},
     "connect tcp 127.0.0.1 {LP}"),
    ("loopback TCP connect ::1 (HOME listener)", "both", "connected", {}, {}, "connect tcp ::1 {LP}"),
    ("DNS udp-53 sendto rogue resolver", "both", "sent 0/1 errno EPERM", {}, {"dns": 1}, "sendto {D} 53"),
    ("DNS udp-53 connect rogue resolver", "both", "errno EPERM", {}, {"dns": 1}, "connect udp {D} 53"),
    ("DNS tcp-53 rogue resolver", "both", "errno EPERM", {}, {"dns": 1}, "connect tcp {D} 53"),
    ("DNS tcp-853 rogue resolver", "both", "errno EPERM", {}, {"dns": 1}, "connect tcp {D} 853"),
    ("DNS udp-5353 connect rogue resolver", "both", "errno EPERM", {}, {"dns": 1},
     "connect udp {D} 5353"),
    ("DNS udp-5353 sendto rogue resolver", "both", "sent 0/1 errno EPERM", {}, {"dns": 1},
     "sendto {D} 5353"),
    ("DNS udp-5355 sendto rogue resolver", "both", "sent 0/1 errno EPERM", {}, {"dns": 1},
     "sendto {D} 5355"),
    ("DNS udp-53 to an allowed-subnet host (DNS rule comes first)", "both", "sent 0/1 errno EPERM",
     {}, {"dns": 1}, "sendto {L} 53"),
    ("DNS udp-53 to the listed resolver via the tunnel", "both", "sent 1/1", {"tunnel": 1}, {},
     "sendto {R} 53"),
    ("DNS tcp-853 to the listed resolver via the tunnel (RST: reached)", "both", "refused",
     {"tunnel": ">=1"}, {}, "connect tcp {R} 853"),
    ("DNS udp-5353 connected to the listed resolver", "both", "connected", {"tunnel": 1}, {},
     "connect udp {R} 5353"),
    ("allowed subnet: UDP sendto LAN host by the veth", "both", "sent 3/3", {"lan": 3}, {},
     "sendto {L} 9 --count 3"),
    ("allowed subnet: TCP connect LAN host by the veth", "both", "connected", {"lan": ">=1"}, {},
     "connect tcp {L} {P}"),
    ("IPv6 sendto INET gateway", "both", "sent 0/1 errno EPERM", {}, {"ipv6": 1}, "sendto {GW6} 9"),
    ("IPv6 connected UDP INET gateway", "both", "errno EPERM", {}, {"ipv6": 1}, "connect udp {GW6} 9"),
    ("IPv6 sendto Internet host", "both", "sent 0/1 errno EPERM", {}, {"ipv6": 1}, "sendto {I6} 9"),
    ("IPv6 TCP connect Internet host", "both", "errno EPERM", {}, {"ipv6": 1}, "connect tcp {I6} {P}"),
    ("v4-mapped connected UDP via the tunnel", "both", "connected", {"tunnel": 1}, {},
     "connect udp ::ffff:{I} 9"),
    ("v4-mapped UDP sendto via the tunnel", "both", "sent 2/2", {"tunnel": 2}, {},
     "sendto ::ffff:{I} 9 --count 2"),
    ("v4-mapped TCP connect via the tunnel", "both", "connected", {"tunnel": ">=1"}, {},
     "connect tcp ::ffff:{I} {P}"),
    ("v4-mapped DNS connected UDP port 53", "both", "errno EPERM", {}, {"dns": 1},
     "connect udp ::ffff:{D} 53"),
    ("v4-mapped DNS sendto port 53", "both", "sent 0/1 errno EPERM", {}, {"dns": 1},
     "sendto ::ffff:{D} 53"),
    ("UDP sendto GW (the main table says: by the veth) steered into the tunnel", "both", "sent 1/1",
     {"tunnel": 1}, {}, "sendto {GW} 9"),
    ("TCP connect GW steered into the tunnel too", "both", "connected", {"tunnel": ">=1"}, {},
     "connect tcp {GW} {P}"),
]
RULE_ROWS, RULE_IDS = expand(RULES)


@pytest.mark.parametrize("user,name,result,far,denied,args", RULE_ROWS, ids=RULE_IDS)
def test_rule(world, user, name, result, far, denied, args):
    check(world, user, world.cg, None, result, far, denied, args)


# The netns rule: guarded processes in a namespace that is not the tunnel's.
NETNS = [
    ("UDP sendto Internet host from the third netns", "both", "sent 0/1 errno EPERM", {},
     {"netns": 1}, "sendto {I} 9"),
    ("connected UDP to Internet host from the third netns", "both", "errno EPERM", {}, {"netns": 1},
     "connect udp {I} 9"),
    ("TCP connect Internet host from the third netns", "both", "errno EPERM", {}, {"netns": 1},
     "connect tcp {I} {P}"),
    ("TCP flood from the third netns", "root",
     "ok=0 failed=[1-9][0-9]* .*first_errno=EPERM last_errno=EPERM", {}, {"netns": ">=1"},
     "flood tcp {I} {P} --seconds 1"),
    ("loopback in the third netns still allowed", "both", "sent 1/1", {}, {}, "sendto 127.0.0.1 9"),
]
NETNS_ROWS, NETNS_IDS = expand(NETNS)


@pytest.mark.parametrize("user,name,result,far,denied,args", NETNS_ROWS, ids=NETNS_IDS)
def test_netns_rule(world, user, name, result, far, denied, args):
    check(world, user, world.cg, world.third, result, far, denied, args)


@pytest.mark.parametrize("name,result,far,args", [
    ("UDP", "sent 3/3", {"third": 3}, "sendto {I} 9 --count 3"),
    ("TCP", "connected", {"third": ">=1"}, "connect tcp {I} {P}"),
], ids=["UDP", "TCP"])
def test_third_netns_unguarded_arrives(world, name, result, far, args):
    """The control of the netns rows: unguarded, the third namespace does reach the host."""
    check(world, "root", None, world.third, result, far, "*", args)


# A cgroup below the guarded one: the parent's guard applies.
NESTED = [
    ("child cgroup: rogue DNS", "both", "sent 0/1 errno EPERM", {}, {"dns": 1}, "sendto {D} 53"),
    ("child cgroup: IPv6", "both", "errno EPERM", {}, {"ipv6": 1}, "connect udp {I6} 9"),
    ("child cgroup: SO_BINDTODEVICE veth", "both", "errno EPERM", {}, {"sockopt": 1},
     "setsockopt bindtodevice {VETH}"),
    ("child cgroup: UDP sendto Internet host via the tunnel", "both", "sent 2/2", {"tunnel": 2}, {},
     "sendto {I} 9 --count 2"),
    ("child cgroup: TCP connect Internet host via the tunnel", "both", "connected",
     {"tunnel": ">=1"}, {}, "connect tcp {I} {P}"),
]
NESTED_ROWS, NESTED_IDS = expand(NESTED)


@pytest.mark.parametrize("user,name,result,far,denied,args", NESTED_ROWS, ids=NESTED_IDS)
def test_nested(world, user, name, result, far, denied, args):
    check(world, user, world.child, None, result, far, denied, args)
