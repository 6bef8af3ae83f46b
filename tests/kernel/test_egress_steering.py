"""Egress steering refused or allowed by setsockopt, sendmsg and socket creation, row by row.

One world for the module (routing "subnets") with one --no-agent guard of cgroup "guarded"
(--allow the LAN, --dns the resolver). Every way a program may point a socket at another
interface than the tunnel (SO_BINDTODEVICE, SO_BINDTOIFINDEX, SO_MARK, IP_UNICAST_IF,
IPV6_UNICAST_IF, IP_PKTINFO) and raw sockets, as root and as nobody: judged by vgprobe's
result line, the far side (every counter a row does not name stays 0) and the denial counters.
test_steering_rows.py has the group joins and multicast interfaces; without a guard each of
these leaks (test_topology.py).

Run one row: pytest-3 tests/kernel/test_egress_steering.py -k 'PKTINFO and veth'
"""
import re

import pytest

from vgworld import Attempt, expand, guarded_world, probe, words


@pytest.fixture(scope="module")
def world(vg):
    with guarded_world(vg, "--allow", "192.0.2.0/24", "--dns", "203.0.113.53") as w:
        yield w


# name, who, result line, far side, denials, vgprobe arguments
STEERING = [
    ("SO_BINDTODEVICE veth", "both", "errno EPERM", {}, {"sockopt": 1},
     "setsockopt bindtodevice {VETH}"),
    ("SO_BINDTODEVICE veth on a TCP socket", "both", "errno EPERM", {}, {"sockopt": 1},
     "setsockopt bindtodevice {VETH} --tcp"),
    ("SO_BINDTODEVICE tunnel", "both", "ok", {}, {}, "setsockopt bindtodevice {WG}"),
    ("SO_BINDTOIFINDEX veth", "both", "errno EPERM", {}, {"sockopt": 1},
     "setsockopt bindtoifindex {VETH}"),
    ("SO_BINDTOIFINDEX tunnel", "both", "ok", {}, {}, "setsockopt bindtoifindex {WG}"),
    ("SO_MARK 5", "root", "errno EPERM", {}, {"sockopt": 1}, "setsockopt mark 5"),
    ("SO_MARK 5 (the hook runs before the capability check)", "nobody", "errno EPERM", {},
     {"sockopt": 1}, "setsockopt mark 5"),
    ("SO_MARK 0 would undo the steering mark", "root", "errno EPERM", {}, {"sockopt": 1},
     "setsockopt mark 0"),
    ("IP_UNICAST_IF veth", "both", "errno EPERM", {}, {"sockopt": 1}, "setsockopt unicast_if {VETH}"),
    ("IP_UNICAST_IF tunnel", "both", "ok", {}, {}, "setsockopt unicast_if {WG}"),
    ("IPV6_UNICAST_IF veth", "both", "errno EPERM", {}, {"sockopt": 1},
     "setsockopt unicast_if {VETH} --v6"),
    ("connected UDP with SO_BINDTODEVICE veth first", "both", "errno EPERM", {}, {"sockopt": 1},
     "connect udp {I} 9 --bind-dev {VETH}"),
    ("UDP sendto with IP_UNICAST_IF veth first", "both", "errno EPERM", {}, {"sockopt": 1},
     "sendto {I} 9 --unicast-if {VETH}"),
    ("connected UDP already bound to the tunnel", "both", "connected", {"tunnel": 1}, {},
     "connect udp {I} 9 --bind-dev {WG}"),
    ("connected UDP with IP_UNICAST_IF tunnel", "both", "connected", {"tunnel": 1}, {},
     "connect udp {I} 9 --unicast-if {WG}"),
    ("sendmsg IP_PKTINFO choosing the veth", "both", "errno EPERM", {}, {"off_tunnel": 1},
     "sendmsg-pktinfo {I} 9 {VETH}"),
    ("sendmsg IP_PKTINFO on v4-mapped AF_INET6 choosing the veth", "both", "errno EPERM", {},
     {"off_tunnel": 1}, "sendmsg-pktinfo {I} 9 {VETH} --v6"),
    ("sendmsg IP_PKTINFO choosing the tunnel", "both", "sent", {"tunnel": 1}, {},
     "sendmsg-pktinfo {I} 9 {WG}"),
    ("raw socket", "root", "errno EPERM", {}, {"raw_socket": 1}, "raw"),
    ("raw socket with an ICMP echo", "root", "errno EPERM", {}, {"raw_socket": 1}, "raw {I}"),
    ("raw IPv6 socket", "root", "errno EPERM", {}, {"raw_socket": 1}, "raw --v6"),
    ("raw socket without CAP_NET_RAW (kernel refuses first)", "nobody", "errno EPERM", {}, {},
     "raw"),
]
ROWS, IDS = expand(STEERING)


@pytest.mark.parametrize("user,name,result,far,denied,args", ROWS, ids=IDS)
def test_steering(world, user, name, result, far, denied, args):
    t = world.t
    before = Attempt(world, world.vg, world.g.gid)
    got = probe(t, world.cg, words(t, args), user)
    assert re.fullmatch(result, got), f"result {got!r}, want /{result}/"
    before.expect(far=far, denied=denied)
