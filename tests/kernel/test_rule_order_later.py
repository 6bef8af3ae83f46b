"""Rules 4-7 of bpf/vpnguard.h against the rules below them, row by row, on the real kernel.

The world, the fresh guard of each row and the judging are test_rule_order.py's (its docstring
maps every claim of the header to the test that proves it): DNS before allow, IPv6, CLOSED and
the tunnel, a listed resolver judged by the rules below; allow (and LAN discovery) before IPv6,
CLOSED and the tunnel; IPv6 before CLOSED and the tunnel; CLOSED before the tunnel.

Run one case: pytest-3 tests/kernel/test_rule_order_later.py -k 'listed and deleted'
"""
from test_rule_order import REFUSED, SENT, check_row, table, world  # noqa: F401

# name, condition, where, result line, far side, denials, vgprobe arguments
DNS = [
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
def test_dns_before(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
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
    ("v4-mapped allowed subnet, closed", "closed", "home", SENT, {"lan": 1}, {},
     "sendto ::ffff:{L} 9"),
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
def test_allow_before(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
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
def test_ipv6_before(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
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
def test_closed_before(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
    check_row(world, kind, cond, where, user, result, far, denied, args)
