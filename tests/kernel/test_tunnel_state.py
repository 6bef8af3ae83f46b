"""CLOSED and the lease: what a tunnel guard lets out when its state says so, on the real kernel.

One world for the module (tests/lib/vgtunnel.py tunnel_world: routing "subnets", a TCP
listener in INET on port P, a dual-stack one on HOME's loopback on port LP); each case a
fresh --no-agent guard of cgroup "guarded" (--allow the LAN, --dns the resolver) whose
vg_state is written as an operator, or an agent that saw the tunnel die, would write it:
CLOSED, or OPEN with a lease deadline that passed or has a minute to go. Rows are judged by
vgprobe's result line, the far side (tests/lib/vgworld.py: every counter a row does not
name stays 0) and the guard's denial counters (every reason a row does not name unmoved).
The guard goes at the end of each case; the world at the end of the module, leaving
nothing (asserted).

Run one case: pytest-3 tests/kernel/test_tunnel_state.py -k 'lease and LAN and nobody'
"""
import os
import re
import time

import pytest

from vgguard import Guard, pin_root
from vgproc import wait_until
from vgtunnel import (CLOSED, LP, OPEN, P, Floods, boottime_ns, set_state, state_write, still,
                      tunnel_world)
from vgworld import Attempt, expand, guard_status, probe, run_vg, words

S = 10 ** 9
# vg_state writes by name: (state, lease deadline) from the boot clock now.
STATES = {
    "closed": lambda now: (CLOSED, 0),
    "lease expired": lambda now: (OPEN, now - 1 * S),
    "lease running": lambda now: (OPEN, now + 60 * S),
    "open, no lease": lambda now: (OPEN, 0),
}


@pytest.fixture(scope="module")
def world(vg):
    with tunnel_world(loopback=True) as w:
        w.vg = vg
        yield w


@pytest.fixture
def guard(world):
    t = world.t
    with Guard(world.vg, t, world.cg, "--allow", t.lan_net, "--dns", t.resolver) as g:
        yield g


def put(g, name):
    state, deadline = STATES[name](boottime_ns())
    set_state(g.gid, state, deadline)


# state, what status --json says of it: [state, lease_left_s] (a range for a running lease)
@pytest.mark.parametrize("name,want", [
    ("closed", ["closed", None]),
    ("lease expired", ["closed", 0.0]),
    ("lease running", ["open", range(50, 61)]),
    ("open, no lease", ["open", None]),
], ids=["closed", "lease expired", "lease running", "open, no lease"])
def test_status(guard, name, want):
    put(guard, name)
    st = guard.status()
    got = [st["state"], st["lease_left_s"]]
    if isinstance(want[1], range):
        assert got[0] == want[0] and round(got[1]) in want[1], st
    else:
        assert got == want, st


# name, who, state, result line, far side, denials, vgprobe arguments
ROWS = [
    ("CLOSED: UDP sendto Internet host", "both", "closed", "sent 0/1 errno EPERM", {},
     {"closed": 1}, "sendto {I} 9"),
    ("CLOSED: TCP connect Internet host", "both", "closed", "errno EPERM", {}, {"closed": 1},
     "connect tcp {I} {P}"),
    ("CLOSED: listed resolver", "both", "closed", "sent 0/1 errno EPERM", {}, {"closed": 1},
     "sendto {R} 53"),
    ("CLOSED: LAN still allowed", "both", "closed", "sent 2/2", {"lan": 2}, {},
     "sendto {L} 9 --count 2"),
    ("CLOSED: loopback UDP still allowed", "both", "closed", "sent 1/1", {}, {},
     "sendto 127.0.0.1 9"),
    ("CLOSED: loopback TCP still allowed", "both", "closed", "connected", {}, {},
     "connect tcp 127.0.0.1 {LP}"),
    ("lease expired: UDP sendto Internet host", "both", "lease expired", "sent 0/1 errno EPERM",
     {}, {"closed": 1}, "sendto {I} 9"),
    ("lease expired: TCP connect Internet host", "both", "lease expired", "errno EPERM", {},
     {"closed": 1}, "connect tcp {I} {P}"),
    ("lease expired: LAN still allowed", "both", "lease expired", "sent 1/1", {"lan": 1}, {},
     "sendto {L} 9"),
    ("lease running: UDP sendto Internet host", "both", "lease running", "sent 2/2",
     {"tunnel": 2}, {}, "sendto {I} 9 --count 2"),
    ("lease running: TCP connect Internet host", "both", "lease running", "connected",
     {"tunnel": ">=1"}, {}, "connect tcp {I} {P}"),
]
STATE_ROWS, STATE_IDS = expand(ROWS)


@pytest.mark.parametrize("user,name,state,result,far,denied,args", STATE_ROWS, ids=STATE_IDS)
def test_row(world, guard, user, name, state, result, far, denied, args):
    put(guard, state)
    t = world.t
    before = Attempt(world, world.vg, guard.gid)
    got = probe(t, guard.cg, words(t, args, P=P, LP=LP), user)
    assert re.fullmatch(result, got), f"result {got!r}, want /{result}/"
    before.expect(far=far, denied=denied)


def test_closed_stops_an_established_flood(world, guard):
    """The egress program judges every packet: an established TCP connection stops too."""
    before = Attempt(world, world.vg, guard.gid)
    tunnel = lambda: before.moved()["tunnel"]  # noqa: E731
    fl = Floods(world, guard.cg)
    try:
        assert wait_until(lambda: tunnel() >= 50, 10), "the floods did not go through the tunnel"
        set_state(guard.gid, CLOSED)
        t_closed = still(tunnel)
        time.sleep(1)
        t_after = still(tunnel)
    finally:
        fl.stop()
    print(f"flood: {fl}; tunnel packets at CLOSED {t_closed}, a second later {t_after}")
    assert t_after == t_closed, "packets through the tunnel once CLOSED"
    before.expect(far={"tunnel": ">=50"}, denied={"closed": ">=1"})


@pytest.mark.parametrize("kind", ["connected", "unconnected"])
def test_closed_reaction_time(world, guard, kind):
    """How late CLOSED reaches a socket that is sending: the programs read the guard's
    state again on each CPU at least every 1 ms plus a tick of the coarse clock
    (VG_FACTS_TTL_NS, VG_TICK_MAX_NS: 11 ms at most). A datagram every 100 us; the time
    from just before the map write to the flood's first EPERM."""
    before = Attempt(world, world.vg, guard.gid)
    fl = Floods(world, guard.cg, kinds=[f"udp-{kind}"], seconds=60)
    try:
        assert wait_until(lambda: before.moved()["tunnel"] >= 100, 10), \
            "the flood did not go through the tunnel"
        written = state_write(guard.gid, CLOSED)
        time.sleep(0.5)  # vgprobe tells its first failure when it ends: the judge is that time
    finally:
        res = fl.stop()[f"udp-{kind}"]
    failed = fl.first_failure_ns(f"udp-{kind}")
    react_us = (failed - written) // 1000 if failed else None
    print(f"{kind} UDP flood: first EPERM {react_us} us after the write ({res})")
    assert re.match(r"ok=[1-9]", res), f"nothing sent before CLOSED: {res}"
    assert failed is not None and 0 <= react_us <= 11000, f"refused {react_us} us after CLOSED"
    before.expect(far={"tunnel": ">=100"}, denied={"closed": ">=1"})


def test_detach_removes_the_guard(world, guard):
    r = run_vg(world.vg, "detach", "--cgroup", guard.cg)
    assert r.returncode == 0, r.stderr
    guard.attached = False
    assert not os.path.exists(os.path.join(pin_root(), str(guard.gid)))
    assert guard_status(world.vg, guard.gid) is None
