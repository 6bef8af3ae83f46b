"""Gateway mode from the command line: what `attach --gateway` records and, row by row, what
such a guard lets out.

One world for the module (tests/lib/vgcli.py's cli_world: routing "subnets", so the Internet
and the resolver's nets are reached by the tunnel, the LAN by the veth). Every row attaches a
fresh --no-agent guard `--gateway {I}:1080 --gateway {R} --allow {L} --dns {R}` (a port-less
gateway allows every port of its address) and runs one vgprobe as root and as nobody, judged by
its result line, the far side, the denial counters and, where the row names one, what a
listener in INET heard (an allowed connection must arrive, from the address it left by).

Run one row: pytest-3 tests/kernel/test_cli_gateway.py -k 'port-less and nobody'
"""
import pytest

from vgcli import cli_world, guard, judge
from vgguard import Guard
from vgworld import assert_guarded, cg_rel, expand, guard_status, run_vg


@pytest.fixture(scope="module")
def w(vg):
    with cli_world(vg) as w:
        yield w


def gw_args(t):
    return ["--gateway", f"{t.inet_host}:1080", "--gateway", t.resolver, "--allow", t.lan_net,
            "--dns", t.resolver]


def test_gateway_attach_records_the_policy(w):
    """attach --no-agent says nothing on stdout; status --json has the policy as given."""
    t = w.t
    g = Guard(w.vg, t, t.cgroup("gw"), tunnel=False)
    g.attached = True
    try:
        r = run_vg(w.vg, "attach", "--cgroup", g.cg, *gw_args(t), "--no-agent")
        assert (r.returncode, r.stdout) == (0, ""), r
        assert_guarded(g.cg)
        st = guard_status(w.vg, g.gid)
        assert st["mode"] == "gateway", st
        assert st["gateways"] == [f"{t.inet_host}:1080", t.resolver], st
        assert (st["allow"], st["dns"], st["state"]) == ([t.lan_net], [t.resolver], "open"), st
        assert st["cgroup"] == cg_rel(t.cg2, g.cg), st
    finally:
        g.close()


TCP_1080_VPN = ("tcp", 1080, "received connections=1 bytes=0 peer={VPN}")
# name, who, result line, far side, denials, vgprobe arguments, what a listener in INET heard
GATEWAY = [
    ("TCP to gateway addr:port", "both", "connected", {"tunnel": ">=1"}, {},
     "connect tcp {I} 1080", TCP_1080_VPN),
    ("TCP to gateway addr, other port", "both", "errno EPERM", {}, {"not_gateway": 1},
     "connect tcp {I} 80", None),
    ("UDP to gateway addr:port (port matches)", "both", "sent 2/2", {"tunnel": 2}, {},
     "sendto {I} 1080 --count 2", None),
    ("UDP to gateway addr, other port", "both", "sent 0/1 errno EPERM", {}, {"not_gateway": 1},
     "sendto {I} 9", None),
    ("UDP to a non-gateway host", "both", "sent 0/1 errno EPERM", {}, {"not_gateway": 1},
     "sendto {D} 9", None),
    ("UDP to port-less gateway, port 4000", "both", "sent 3/3", {"tunnel": 3}, {},
     "sendto {R} 4000 --count 3", ("udp", 4000, "received datagrams=3 bytes=96 peer={VPN}")),
    ("UDP connect to port-less gateway, port 65000", "both", "connected", {"tunnel": 1}, {},
     "connect udp {R} 65000", None),
    ("DNS to the listed resolver", "both", "sent 1/1", {"tunnel": 1}, {}, "sendto {R} 53", None),
    ("DNS to an unlisted resolver", "both", "sent 0/1 errno EPERM", {}, {"dns": 1},
     "sendto {D} 53", None),
    ("TCP DNS to an unlisted resolver", "both", "errno EPERM", {}, {"dns": 1},
     "connect tcp {D} 53", None),
    ("DNS to the gateway addr (not a resolver: dns first)", "both", "sent 0/1 errno EPERM", {},
     {"dns": 1}, "sendto {I} 53", None),
    ("IPv6 UDP", "both", "sent 0/1 errno EPERM", {}, {"ipv6": 1}, "sendto {I6} 9", None),
    ("IPv6 TCP", "both", "errno EPERM", {}, {"ipv6": 1}, "connect tcp {I6} 1080", None),
    ("IPv4-mapped TCP to gateway addr:port", "both", "connected", {"tunnel": ">=1"}, {},
     "connect tcp {I} 1080 --v6", TCP_1080_VPN),
    ("IPv4-mapped TCP to gateway addr, other port", "both", "errno EPERM", {},
     {"not_gateway": 1}, "connect tcp {I} 80 --v6", None),
    ("LAN UDP (allowed subnet)", "both", "sent 2/2", {"lan": 2}, {}, "sendto {L} 9 --count 2",
     None),
    ("LAN TCP (allowed subnet)", "both", "connected", {"lan": ">=1"}, {}, "connect tcp {L} 1080",
     ("tcp", 1080, "received connections=1 bytes=0 peer={REAL}")),
    ("loopback", "both", "sent 1/1", {}, {}, "sendto 127.0.0.1 9", None),
]
ROWS, IDS = expand(GATEWAY)


@pytest.mark.parametrize("user,name,result,far,denied,args,listen", ROWS, ids=IDS)
def test_gateway(w, user, name, result, far, denied, args, listen):
    with guard(w, "gw", *gw_args(w.t)) as g:
        judge(w, g, user, args, result, far, denied, listen)
