"""The tc layer of a tunnel guard: no packet with the tunnel's address leaves the tunnel's
namespace by another interface (reason tunnel_src), whoever sends it.

One world for the module (routing "subnets"). The control runs before any guard exists and
shows the packet does leave by the veth; the rows run beside a --no-agent guard of cgroup
"guarded", with the sender unguarded (root in HOME): the tc program is the namespace's, and
counts its drops under the guard that put it there.

Run one case: pytest-3 tests/kernel/test_tc.py -k control
"""
import re

import pytest

from vgguard import Guard, kernel_lock_held
from vgtopo import Topology
from vgworld import Attempt, Listener, World, expand, probe, words

P = 5002


@pytest.fixture(scope="module")
def world(vg):
    with kernel_lock_held(), Topology() as t:
        w = World(t)
        w.vg, w.cg = vg, t.cgroup("guarded")
        Listener(t, "tcp", P)
        yield w


@pytest.fixture(scope="module")
def guard(world):
    t = world.t
    with Guard(world.vg, t, world.cg, "--allow", t.lan_net, "--dns", t.resolver) as g:
        yield g


def test_control_without_guard(world):
    """No guard of this tunnel yet: the tunnel's address does leave by the veth."""
    assert Guard(world.vg, world.t, world.cg).status() is None, "run before the guard exists"
    before = Attempt(world)
    assert probe(world.t, None, words(world.t, "sendto {L} 9 --src {VPN} --count 3")) == "sent 3/3"
    before.expect(far={"vpnsrc": 3, "lan": 3})


TC = [
    ("UDP to LAN host with the tunnel's source (unguarded)", "root", "sent 3/3", {},
     {"tunnel_src": 3}, "sendto {L} 9 --src {VPN} --count 3"),
    ("TCP to LAN host with the tunnel's source (unguarded): SYN dropped", "root", "errno ETIMEDOUT",
     {}, {"tunnel_src": ">=1"}, "connect tcp {L} {P} --src {VPN} --timeout-ms 1000"),
    ("unguarded UDP to LAN host with the real address still passes", "root", "sent 2/2",
     {"lan": 2}, {}, "sendto {L} 9 --count 2"),
]
ROWS, IDS = expand(TC)


@pytest.mark.parametrize("user,name,result,far,denied,args", ROWS, ids=IDS)
def test_tc(world, guard, user, name, result, far, denied, args):
    t = world.t
    before = Attempt(world, world.vg, guard.gid)
    got = probe(t, None, words(t, args, P=P), user)
    assert re.fullmatch(result, got), f"result {got!r}, want /{result}/"
    before.expect(far=far, denied=denied)
