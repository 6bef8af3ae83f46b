"""The rules header's gateway mode and its tc and setsockopt notes, row by row, on the real kernel.

The world, the fresh guard of each row and the judging are test_rule_order.py's (its docstring
maps every claim of bpf/vpnguard.h to the test that proves it). Gateway guards:
--gateway I:P --gateway GW (INET's veth address, any port) --allow LAN --dns R, no tunnel and
no namespace (netns cookie 0). The tc rows send one hand-made IPv4 UDP packet from an AF_PACKET
socket of the guarded cgroup (as root) out of the veth of the row's namespace: no inet hook of
the guard sees it, so in HOME only the guard's tc program on the veth judges it.

Four rows failed first, the header's words against the kernel; each was fixed on one side:
 - with no policy the guard's tc program passed everything "(the cgroup programs deny those)",
   but an AF_PACKET socket's packets meet no cgroup program: tc now drops the guard's packets
   with no policy (rule 2, no_policy) - the code was wrong;
 - "a socket in another network namespace" is denied: not an AF_PACKET one, which no hook of
   any kind sees outside the tunnel's namespace - the header was wrong, and now says so (the
   README's CAP_NET_RAW limit); the row proves the limit as stated;
 - setsockopt "naming anything but the tunnel (clearing them is fine)": SO_BINDTODEVICE "" and
   SO_BINDTOIFINDEX 0 were refused - the code was wrong, and clears them now.

Run one case: pytest-3 tests/kernel/test_rule_order_notes.py -k 'gateway and closed'
"""
from test_rule_order import REFUSED, SENT, check_row, table, world  # noqa: F401

# name, condition, where, result line, far side, denials, arguments
GATEWAY = [
    ("gateway reached", "open", "home", "connected", {"tunnel": ">=1"}, {},
     "connect tcp {I} {P}"),
    ("third netns: gateway reached", "open", "third", "connected", {"third": ">=1"}, {},
     "connect tcp {I} {P}"),
    ("port-less gateway, any port: passes (by the veth)", "open", "home", SENT, {"stray": 1}, {},
     "sendto {GW} 4000"),
    ("the gateway's address, another port: not_gateway", "open", "home", REFUSED, {},
     {"not_gateway": 1}, "sendto {I} 9"),
    ("no policy: no_policy", "no_policy", "home", "errno EPERM", {}, {"no_policy": 1},
     "connect tcp {I} {P}"),
    ("closed: loopback", "closed", "home", SENT, {}, {}, "sendto 127.0.0.1 9"),
    ("rogue resolver at the gateway's address: dns, not not_gateway", "open", "home", REFUSED, {},
     {"dns": 1}, "sendto {I} 53"),
    ("listed resolver, not a gateway: not_gateway", "open", "home", REFUSED, {},
     {"not_gateway": 1}, "sendto {R} 53"),
    ("allowed subnet: not not_gateway", "open", "home", SENT, {"lan": 1}, {}, "sendto {L} 9"),
    ("closed: allowed subnet", "closed", "home", SENT, {"lan": 1}, {}, "sendto {L} 9"),
    ("IPv6: ipv6, not not_gateway", "open", "home", REFUSED, {}, {"ipv6": 1}, "sendto {I6} 9"),
    ("closed: IPv6: ipv6, not closed", "closed", "home", REFUSED, {}, {"ipv6": 1},
     "sendto {I6} 9"),
    ("closed: the gateway: closed", "closed", "home", "errno EPERM", {}, {"closed": 1},
     "connect tcp {I} {P}"),
    ("closed: a non-gateway host: closed, not not_gateway", "closed", "home", REFUSED, {},
     {"closed": 1}, "sendto {D} 9"),
    ("lease run out: a non-gateway host: closed", "lease_expired", "home", REFUSED, {},
     {"closed": 1}, "sendto {D} 9"),
]


@table(GATEWAY, kind="gateway")
def test_gateway(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
    check_row(world, kind, cond, where, user, result, far, denied, args)


# "In gateway mode there is no tunnel: every join is refused" (sockopt_probe.py KIND SPEC).
JOINS = [
    ("IP_ADD_MEMBERSHIP, any interface", "open", "home", "errno EPERM", {}, {"multicast": 1},
     "sockopt ip_mreq any"),
    ("IP_ADD_MEMBERSHIP by the veth's address", "open", "home", "errno EPERM", {},
     {"multicast": 1}, "sockopt ip_mreq addr:{REAL}"),
    ("IP_ADD_MEMBERSHIP by the WireGuard interface's address", "open", "home", "errno EPERM", {},
     {"multicast": 1}, "sockopt ip_mreq addr:{VPN}"),
    ("IPV6_ADD_MEMBERSHIP, any interface", "open", "home", "errno EPERM", {}, {"multicast": 1},
     "sockopt ipv6_join_group any"),
]


@table(JOINS, kind="gateway")
def test_gateway_joins(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
    check_row(world, kind, cond, where, user, result, far, denied, args)


# "naming anything but the tunnel (clearing them is fine)": each option cleared, on a fresh socket
# (IP_MULTICAST_IF and IPV6_MULTICAST_IF cleared: test_steering_rows.py).
CLEARED = [
    ("SO_BINDTODEVICE cleared", "open", "home", "ok", {}, {}, "setsockopt bindtodevice ''"),
    ("SO_BINDTOIFINDEX cleared", "open", "home", "ok", {}, {}, "setsockopt bindtoifindex 0"),
    ("IP_UNICAST_IF cleared", "open", "home", "ok", {}, {}, "setsockopt unicast_if 0"),
    ("IPV6_UNICAST_IF cleared", "open", "home", "ok", {}, {}, "setsockopt unicast_if 0 --v6"),
]


@table(CLEARED, user="root")
def test_option_cleared(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
    check_row(world, kind, cond, where, user, result, far, denied, args)


# ENOBUFS (105): what a packet socket's send says of a packet tc dropped.
TC = [
    ("AF_PACKET: Internet host dropped (off_tunnel)", "open", "home", "errno 105", {},
     {"off_tunnel": 1}, "afpacket {I} 9"),
    ("AF_PACKET: allowed subnet passes (rule 5)", "open", "home", "sent 32", {"lan": 1}, {},
     "afpacket {L} 9"),
    ("AF_PACKET: loopback destination passes (rule 1)", "open", "home", "sent 32", {"stray": 1},
     {}, "afpacket 127.0.0.1 9"),
    ("AF_PACKET, closed: Internet host dropped (off_tunnel)", "closed", "home", "errno 105", {},
     {"off_tunnel": 1}, "afpacket {I} 9"),
    # Rule 2 at tc: with no policy the guard's packets are dropped, an unguarded sender's not.
    ("no policy: the tunnel's source passes tc (unguarded sender)", "no_policy", "unguarded",
     SENT, {"vpnsrc": 1, "lan": 1}, {}, "sendto {L} 9 --src {VPN}"),
    ("no policy: a guard's AF_PACKET packet to the Internet is denied", "no_policy", "home", ".*",
     {}, "*", "afpacket {I} 9"),
    # The limit the header states: outside the tunnel's namespace nothing sees packet sockets.
    ("third netns: a guard's AF_PACKET packet is judged by nothing (the stated limit)", "open",
     "third", "sent 32", {"third": 1}, {}, "afpacket {I} 9"),
]


@table(TC, user="root")
def test_tc(world, kind, cond, where, user, result, far, denied, args):  # noqa: F811
    check_row(world, kind, cond, where, user, result, far, denied, args)
