"""An agent SIGKILLed, then its tunnel deleted under live traffic: enforcement needs no agent.

One world for the module (tests/lib/vgtunnel.py tunnel_world: routing "subnets", a TCP
listener in INET on port P): the agent of cgroup "guarded" (--allow the LAN, --dns the
resolver) is SIGKILLed once its tunnel is up; then, under unconnected UDP and TCP floods
from the guarded cgroup, the tunnel is deleted. That making is the module's: its cases
read what it left (the pins, the tc program, what the far side saw of the floods, status)
and try the guard in it row by row, judged by vgprobe's result line, the far side
(tests/lib/vgworld.py: every counter a row does not name stays 0) and the denial counters.
Nobody updates vg_tunnels, but the kernel dropped the device from vg_tundev: every hook
denies no_tunnel. The world goes at the end of the module, leaving nothing, not even the
dead agent's pidfile (asserted).

Run one case: pytest-3 tests/kernel/test_tunnel_agent_dead.py -k 'LAN'
"""
import os
import re
import signal
import time

import pytest

from vgguard import Guard, pin_root
from vgproc import pid_alive, wait_until
from vgtunnel import P, Floods, tunnel_world
from vgworld import GUARD_PINS, MAP_PINS, Attempt, expand, probe, words


@pytest.fixture(scope="module")
def dead(vg):
    with tunnel_world() as w:
        t = w.t
        w.vg = vg
        with Guard(vg, t, w.cg, "--allow", t.lan_net, "--dns", t.resolver, agent=True) as g:
            w.g = g
            w.agent_pids.append(g.proc.pid)
            assert wait_until(lambda: (g.status() or {}).get("tunnel_present"), 10), g.status()
            w.veth_ifindex = int(t.run(["cat", f"/sys/class/net/{t.veth_home}/ifindex"],
                                       netns=t.home, check=True).stdout)
            g.proc.send_signal(signal.SIGKILL)
            g.proc.wait(10)
            w.flood_before = Attempt(w)
            fl = Floods(w, g.cg)
            try:
                assert wait_until(lambda: w.flood_before.moved()["tunnel"] >= 50, 10), \
                    "the floods did not go through the tunnel"
                t.tunnel_down("del")
                time.sleep(2)  # the floods go on against no tunnel
            finally:
                w.floods = fl.stop()
            print(f"agent SIGKILLed, tunnel deleted: floods {w.floods}")
            yield w


def test_agent_is_gone(dead):
    assert not pid_alive(dead.g.proc.pid)


def test_every_pin_outlives_the_agent(dead):
    gid = str(dead.g.gid)
    missing = [p for p in GUARD_PINS if not os.path.exists(os.path.join(pin_root(), gid, p))]
    missing += [m for m in MAP_PINS if not os.path.exists(os.path.join(pin_root(), m))]
    assert missing == []


def test_tc_outlives_the_agent(dead):
    assert dead.veth_ifindex in dead.g.status()["tc_ifindexes"], dead.g.status()


def test_nothing_leaked_through_the_deletion(dead):
    """Only tunnel packets (and WireGuard's ICMP errors about the dead client port) arrived
    while the floods ran into the deletion."""
    dead.flood_before.expect(far={"tunnel": ">=50", "wgicmp": "*"}, denied="*")


def test_status_says_the_tunnel_is_gone(dead):
    """vg_tundev is the kernel's word, with nobody to update the maps."""
    assert dead.g.status()["tunnel_present"] is False, dead.g.status()


# name, who, result line, far side, denials, vgprobe arguments
ROWS = [
    ("UDP sendto", "both", "sent 0/1 errno EPERM", {}, {"no_tunnel": 1}, "sendto {I} 9"),
    ("connected UDP", "both", "errno EPERM", {}, {"no_tunnel": 1}, "connect udp {I} 9"),
    ("TCP connect", "both", "errno EPERM", {}, {"no_tunnel": 1}, "connect tcp {I} {P}"),
    ("rogue DNS", "root", "sent 0/1 errno EPERM", {}, {"dns": 1}, "sendto {D} 53"),
    ("LAN still allowed", "root", "sent 1/1", {"lan": 1}, {}, "sendto {L} 9"),
]
DEAD_ROWS, DEAD_IDS = expand(ROWS)


@pytest.mark.parametrize("user,name,result,far,denied,args", DEAD_ROWS, ids=DEAD_IDS)
def test_row(dead, user, name, result, far, denied, args):
    t = dead.t
    before = Attempt(dead, dead.vg, dead.g.gid)
    got = probe(t, dead.cg, words(t, args, P=P), user)
    assert re.fullmatch(result, got), f"result {got!r}, want /{result}/"
    before.expect(far=far, denied=denied)
