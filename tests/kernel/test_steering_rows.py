"""The rule tables of tunnel-mode steering, row by row, on the real kernel.

One world per routing variant for the whole module (tests/lib/vgtopo.py: HOME,
INET, a wireguard-go tunnel) with one --no-agent guard of the LAN-allowed,
resolver-listing kind; each row is one attempt by vgprobe (or
tests/tools/sockopt_probe.py) inside the guard as root and as nobody, judged by
what arrived on the far side (INET's counters: every counter a row does not
name must stay 0, IGMP and MLD included) and by the guard's denial counters.

In "split" the main table's default route is the veth (a host VPN with
Table=off): only the guard's mark takes traffic into the tunnel, so every
socket type must work through it, first datagram included. "default" routes
everything by the tunnel already. Tests that change the world are in
test_steering.py.

Run one row: pytest-3 tests/kernel/test_steering_rows.py -k 'ping and nobody'
"""
import os

import pytest

from vgguard import Guard, Snapshot, kernel_lock_held
from vgtopo import Topology

USERS = ("root", "nobody")
SOCKOPT_PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                             "sockopt_probe.py")


@pytest.fixture(scope="module", params=["split", "default"])
def world(request, vg):
    """(topology, guard) for a whole routing variant; ping sockets open to every
    user in HOME (net.ipv4.ping_group_range). The tunnel stays up: no row changes the world."""
    with kernel_lock_held(), Topology(routing=request.param) as t:
        # Reports for a group joined on the tunnel repeat within 10 ms, so within their row.
        t._sysctl(t.home, "net.ipv4.ping_group_range=0 2147483647",
                  f"net.ipv4.conf.{t.wg_client}.igmpv3_unsolicited_report_interval=10",
                  f"net.ipv4.conf.{t.wg_client}.igmpv2_unsolicited_report_interval=10")
        with Guard(vg, t, t.cgroup("g"), "--allow", t.lan_net, "--dns", t.resolver) as g:
            yield t, g


def words(t, s):
    return s.format(I=t.inet_host, R=t.resolver, D=t.rogue_dns, L=t.lan_host, GW=t.gw_ip,
                    I6=t.inet_host6, REAL=t.real_ip, VPN=t.vpn_ip, WG=t.wg_client_ifindex,
                    VETH=veth_ifindex(t))


def veth_ifindex(t):
    r = t.run(["cat", f"/sys/class/net/{t.veth_home}/ifindex"], netns=t.home, check=True)
    return int(r.stdout)


# name, vgprobe arguments, result line, far side, denials
SOCKETS = [
    ("unconnected UDP, the first datagram", "sendto {I} 9", "sent 1/1", {"tunnel": 1}, {}),
    ("unconnected UDP, three datagrams", "sendto {I} 9 --count 3", "sent 3/3", {"tunnel": 3}, {}),
    ("connected UDP", "connect udp {I} 9", "connected", {"tunnel": 1}, {}),
    ("TCP (the far side's RST comes back)", "connect tcp {I} 9", "refused", {"tunnel": ">=1"}, {}),
    ("ping socket", "ping {I}", "reply", {"tunnel": 1}, {}),
    ("v4-mapped unconnected UDP", "sendto {I} 9 --v6", "sent 1/1", {"tunnel": 1}, {}),
    ("v4-mapped connected UDP", "connect udp {I} 9 --v6", "connected", {"tunnel": 1}, {}),
    ("v4-mapped TCP", "connect tcp {I} 9 --v6", "refused", {"tunnel": ">=1"}, {}),
    ("the listed resolver, UDP", "sendto {R} 53", "sent 1/1", {"tunnel": 1}, {}),
    ("the listed resolver, TCP", "connect tcp {R} 853", "refused", {"tunnel": ">=1"}, {}),
    ("the VPN server's veth address: into the tunnel too", "sendto {GW} 9", "sent 1/1",
     {"tunnel": 1}, {}),
    ("loopback unconnected UDP", "sendto 127.0.0.1 9", "sent 1/1", {}, {}),
    ("loopback connected UDP", "connect udp 127.0.0.1 9", "connected", {}, {}),
    ("loopback TCP", "connect tcp 127.0.0.1 9", "refused", {}, {}),
    ("loopback ping socket", "ping 127.0.0.1", "reply", {}, {}),
    ("loopback ::1", "sendto ::1 9", "sent 1/1", {}, {}),
    ("allowed subnet, unconnected UDP by the veth", "sendto {L} 9", "sent 1/1", {"lan": 1}, {}),
    ("allowed subnet, connected UDP", "connect udp {L} 9", "connected", {"lan": 1}, {}),
    ("allowed subnet, TCP", "connect tcp {L} 9", "refused", {"lan": ">=1"}, {}),
    ("allowed subnet, ping socket", "ping {L}", "reply", {"lan": 1}, {}),
    ("a rogue resolver", "sendto {D} 53", "sent 0/1 errno EPERM", {}, {"dns": 1}),
    ("IPv6", "sendto {I6} 9", "sent 0/1 errno EPERM", {}, {"ipv6": 1}),
]

# LAN discovery and port mapping: refused to the allowed subnet, ordinary traffic elsewhere.
DISCOVERY = [
    ("LSD to an allowed-subnet host", "sendto {L} 6771", "sent 0/1 errno EPERM", {},
     {"discovery": 1}),
    ("SSDP to an allowed-subnet host", "sendto {L} 1900", "sent 0/1 errno EPERM", {},
     {"discovery": 1}),
    ("NAT-PMP to the home router", "sendto {L} 5351", "sent 0/1 errno EPERM", {},
     {"discovery": 1}),
    ("NAT-PMP connected to the home router", "connect udp {L} 5351", "errno EPERM", {},
     {"discovery": 1}),
    ("NAT-PMP through the tunnel (a VPN's port forwarding)", "sendto {I} 5351", "sent 1/1",
     {"tunnel": 1}, {}),
    ("LSD multicast: through the tunnel", "sendto 239.192.152.143 6771", "sent 1/1",
     {"tunnel": 1}, {}),
    ("SSDP multicast: through the tunnel", "sendto 239.255.255.250 1900", "sent 1/1",
     {"tunnel": 1}, {}),
    ("TCP to port 1900 of the LAN is not discovery", "connect tcp {L} 1900", "refused",
     {"lan": ">=1"}, {}),
]





# Group joins and multicast interface choices (sockopt_probe.py KIND SPEC): only on the tunnel.
# The kernel reports a group on the interface joined: a join on the tunnel reports through it.
JOINS = [
    ("IP_ADD_MEMBERSHIP, any interface", "ip_mreq any", "errno EPERM", {}, {"multicast": 1}),
    ("IP_ADD_MEMBERSHIP by the veth's address", "ip_mreq addr:{REAL}", "errno EPERM", {},
     {"multicast": 1}),
    ("IP_ADD_MEMBERSHIP by the tunnel's address", "ip_mreq addr:{VPN}", "ok", {"tunnel": "*"}, {}),
    ("ip_mreqn by the tunnel's ifindex", "ip_mreqn ifindex:{WG}", "ok", {"tunnel": "*"}, {}),
    ("ip_mreqn by the veth's ifindex", "ip_mreqn ifindex:{VETH}", "errno EPERM", {},
     {"multicast": 1}),
    ("ip_mreqn, any interface", "ip_mreqn any", "errno EPERM", {}, {"multicast": 1}),
    ("IP_ADD_SOURCE_MEMBERSHIP, any interface", "ip_mreq_source any", "errno EPERM", {},
     {"multicast": 1}),
    ("IP_ADD_SOURCE_MEMBERSHIP by the tunnel's address", "ip_mreq_source addr:{VPN}", "ok",
     {"tunnel": "*"}, {}),
    ("MCAST_JOIN_GROUP on the veth", "mcast_join_group4 ifindex:{VETH}", "errno EPERM", {},
     {"multicast": 1}),
    ("MCAST_JOIN_GROUP, any interface", "mcast_join_group4 any", "errno EPERM", {},
     {"multicast": 1}),
    ("MCAST_JOIN_GROUP on the tunnel", "mcast_join_group4 ifindex:{WG}", "ok", {"tunnel": "*"}, {}),
    ("MCAST_JOIN_SOURCE_GROUP on the veth", "mcast_join_source_group4 ifindex:{VETH}",
     "errno EPERM", {}, {"multicast": 1}),
    ("IPV6_ADD_MEMBERSHIP, any interface", "ipv6_join_group any", "errno EPERM", {},
     {"multicast": 1}),
    ("IPV6_ADD_MEMBERSHIP on the veth", "ipv6_join_group ifindex:{VETH}", "errno EPERM", {},
     {"multicast": 1}),
    ("MCAST_JOIN_GROUP (IPv6) on the veth", "mcast_join_group6 ifindex:{VETH}", "errno EPERM", {},
     {"multicast": 1}),
    ("IPV6_JOIN_ANYCAST on the veth", "ipv6_join_anycast ifindex:{VETH}", "errno EPERM", {},
     {"multicast": 1}),
    ("IP_MULTICAST_IF the veth's address", "ip_multicast_if addr:{REAL}", "errno EPERM", {},
     {"sockopt": 1}),
    ("IP_MULTICAST_IF the tunnel's address", "ip_multicast_if addr:{VPN}", "ok", {}, {}),
    ("IP_MULTICAST_IF cleared", "ip_multicast_if any", "ok", {}, {}),
    ("IPV6_MULTICAST_IF the veth", "ipv6_multicast_if ifindex:{VETH}", "errno EPERM", {},
     {"sockopt": 1}),
    ("IPV6_MULTICAST_IF cleared", "ipv6_multicast_if any", "ok", {}, {}),
]

def check(world, user, argv, result, far, denied):
    t, g = world
    before = Snapshot(t, g)
    assert g.run(argv, user) == result
    before.expect(far=far, denied=denied)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("name,args,result,far,denied", SOCKETS, ids=[r[0] for r in SOCKETS])
def test_socket_types(world, user, name, args, result, far, denied):
    t = world[0]
    check(world, user, [t.vgprobe] + words(t, args).split(), result, far, denied)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("name,args,result,far,denied", DISCOVERY, ids=[r[0] for r in DISCOVERY])
def test_discovery(world, user, name, args, result, far, denied):
    t = world[0]
    check(world, user, [t.vgprobe] + words(t, args).split(), result, far, denied)


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("name,args,result,far,denied", JOINS, ids=[r[0] for r in JOINS])
def test_multicast_joins(world, user, name, args, result, far, denied):
    """Held for a second, so the IGMP/MLD reports the kernel sends for a join show up."""
    t = world[0]
    argv = ["/usr/bin/python3", SOCKOPT_PROBE] + words(t, args).split() + ["--hold", "1"]
    check(world, user, argv, result, far, denied)


def test_unguarded_join_is_seen(world):
    """The control: a join outside the guard sends IGMP by the veth, and the far side counts it."""
    t = world[0]
    before = Snapshot(t)
    r = t.run(["/usr/bin/python3", SOCKOPT_PROBE, "ip_mreq", f"addr:{t.real_ip}", "--hold", "1"],
              cg=t.cgroup("unguarded"), netns=t.home)
    assert r.stdout.strip() == "ok", r.stderr
    before.expect(far={"igmp": ">=1", "stray4": "*"})
