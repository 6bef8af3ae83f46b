"""Rule 8 for the SYN of a TCP connect() and the datagram of a sendto(), row by row, on the
real kernel.

connect() and sendmsg() with an address judge the attempt, and the egress program judges again
the SYN or the datagram they send, against the interface it leaves by: the hook's verdict is for
the tunnel, and routing has the last word on the interface. These rows hold it to that: a SYN or
a datagram that routing sends out of another interface than the tunnel the hook allowed it for is
dropped (off_tunnel), and what goes by the tunnel still goes.

The world and the fresh guard of each row are test_rule_order.py's. A "gone" row takes the
guard's mark rule (`fwmark M lookup T`, VG_RULE_PREF_MARK in bpf/vpnguard.h) out of HOME for its
attempt and puts it back after, and adds a second veth pair HOME <-> INET (10.97.0.0/24) once
the guard is attached: with no agent, no tc program comes onto it, so the cgroup egress program
is the only one that sees a packet leave by it. The guard's SYN to INET's end (X, where INET's
listener answers on any address) then follows the main table out of that veth, though connect()
judged it for the tunnel: connected there would be a leak.

Run one case: pytest-3 tests/kernel/test_rule_order_syn.py -k 'gone and datagram and veth'
"""
import contextlib
import json
import re

import pytest

from test_rule_order import attempt_argv, fresh_guard, world  # noqa: F401
from vgworld import Attempt

PREF_MARK = 5201  # VG_RULE_PREF_MARK
SIDE_HOME, SIDE_INET = "10.97.0.1", "10.97.0.2"


@contextlib.contextmanager
def mark_rule_gone(t):
    """The guard's mark rule out of HOME while the block runs, then back as it was."""
    r = t.run(["ip", "-j", "rule", "show", "pref", str(PREF_MARK)], netns=t.home, check=True)
    rules = json.loads(r.stdout)
    assert len(rules) == 1 and "fwmark" in rules[0], f"mark rule in HOME: {rules}"
    mark = rules[0]["fwmark"] + (f"/{rules[0]['fwmask']}" if "fwmask" in rules[0] else "")
    t.run(["ip", "rule", "del", "pref", str(PREF_MARK)], netns=t.home, check=True)
    try:
        yield
    finally:
        t.run(["ip", "rule", "add", "pref", str(PREF_MARK), "fwmark", mark, "lookup",
               str(rules[0]["table"])], netns=t.home, check=True)


@contextlib.contextmanager
def side_path(t):
    """A veth pair HOME <-> INET made now (after attach: no tc program on it), gone after."""
    home, inet = f"vg{t.suffix}sy", f"vg{t.suffix}si"
    t.run(["ip", "-n", t.home, "link", "add", home, "type", "veth", "peer", "name", inet,
           "netns", t.inet], check=True)
    try:
        for ns, dev, addr in ((t.home, home, SIDE_HOME), (t.inet, inet, SIDE_INET)):
            # No IPv6 on it: its link-local chatter would reach the far side's counters.
            t.run(["sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1"], netns=ns, check=True)
            t.run(["ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev], check=True)
            t.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        yield
    finally:
        t.run(["ip", "-n", t.home, "link", "del", home])


# name, mark rule, result line, far side, denials, vgprobe arguments
SYN = [
    ("the Internet host by the tunnel: connected", "kept", "connected", {"tunnel": ">=1"}, {},
     "connect tcp {I} {P}"),
    ("INET's veth address by the tunnel: connected", "kept", "connected", {"tunnel": ">=1"}, {},
     "connect tcp {GW} {P}"),
    ("rule gone, X by the side veth: the SYN is judged again, off_tunnel", "gone",
     "errno ETIMEDOUT", {}, {"off_tunnel": ">=1"}, "connect tcp {X} {P} --timeout-ms 500"),
    ("rule gone, the Internet host: the main table's route is the tunnel, connected", "gone",
     "connected", {"tunnel": ">=1"}, {}, "connect tcp {I} {P}"),
    ("a datagram to the Internet host by the tunnel: sent", "kept", "sent 3/3", {"tunnel": 3}, {},
     "sendto {I} 9 --count 3"),
    ("rule gone, a datagram to X by the side veth: judged again, off_tunnel", "gone",
     r"sent 0/3 errno EPERM", {}, {"off_tunnel": ">=1"}, "sendto {X} 9 --count 3"),
    ("rule gone, a datagram to the Internet host: the main table's route is the tunnel, sent",
     "gone", "sent 3/3", {"tunnel": 3}, {}, "sendto {I} 9 --count 3"),
]


@pytest.mark.parametrize("rule,result,far,denied,args", [r[1:] for r in SYN],
                         ids=[r[0] for r in SYN])
def test_syn(world, rule, result, far, denied, args):  # noqa: F811
    w, t = world, world.t
    with fresh_guard(w, "tunnel", {"open"}) as g:
        before = Attempt(w, w.vg, g.gid)
        with contextlib.ExitStack() as gone:
            if rule == "gone":
                gone.enter_context(side_path(t))
                gone.enter_context(mark_rule_gone(t))
            argv = attempt_argv(w, "home", args.replace("{X}", SIDE_INET))
            r = t.run(argv, cg=w.cg, netns=t.home, user="nobody")
        got = (r.stdout.strip().splitlines() or [""])[-1]
        assert re.fullmatch(result, got), f"result {got!r}, want /{result}/ ({r.stderr.strip()})"
        before.expect(far=far, denied=denied)
