"""The agent of a tunnel guard: its pidfile, a clean SIGTERM, the tc layer on interfaces that
appear later, and a guard taken over by attach --no-agent after the agent was SIGKILLed.

One world for the module (tests/lib/vgtunnel.py tunnel_world: routing "subnets", a TCP
listener in INET on port P); each case a fresh agent of cgroup "guarded" (--allow the LAN,
--dns the resolver), judged by the far side (tests/lib/vgworld.py: every counter a row does
not name stays 0) and the denial counters. A case that takes the tunnel away brings it back
(a new ifindex); the world goes at the end of the module, leaving nothing, not even a
killed agent's pidfile (asserted). The tunnel deleted under an agent is in
test_tunnel_deleted.py, a dead agent's guard in test_tunnel_agent_dead.py.

Run one case: pytest-3 tests/kernel/test_tunnel_agent.py -k sigterm
"""
import os
import signal

import pytest

from vgguard import Guard, agent_pidfile
from vgproc import end_popen, wait_until
from vgtunnel import tunnel_world
from vgworld import Attempt, probe, words


@pytest.fixture(scope="module")
def world(vg):
    with tunnel_world() as w:
        w.vg = vg
        yield w


@pytest.fixture
def agent(world):
    t = world.t
    with Guard(world.vg, t, world.cg, "--allow", t.lan_net, "--dns", t.resolver,
               agent=True) as g:
        world.agent_pids.append(g.proc.pid)
        assert wait_until(lambda: (g.status() or {}).get("tunnel_present"), 10), g.status()
        yield g


def test_pidfile_names_the_agent_and_its_log(agent):
    with open(agent_pidfile()) as f:
        lines = f.read().splitlines()
    assert lines[:2] == [str(agent.proc.pid), os.path.realpath(agent.log_path)], lines


def test_sigterm_exits_0_and_enforcement_stays(world, agent):
    rc = end_popen(agent.proc, signal.SIGTERM, grace=10)
    assert rc == 0, agent.stderr()
    agent.proc = None
    assert not os.path.exists(agent_pidfile()), "the agent left its pidfile"
    t = world.t
    before = Attempt(world, world.vg, agent.gid)
    assert probe(t, agent.cg, words(t, "sendto {D} 53")) == "sent 0/1 errno EPERM"
    before.expect(denied={"dns": 1})


def test_tc_follows_interfaces_that_come_and_go(world, agent):
    """An interface that appears later in the tunnel's namespace gets the tc layer from the
    agent, and loses its pin when it goes."""
    t = world.t
    new, peer = f"vg{t.suffix}na", f"vg{t.suffix}nb"
    t.run(["ip", "-n", t.home, "link", "add", new, "type", "veth", "peer", "name", peer],
          check=True)
    try:
        idx = int(t.run(["cat", f"/sys/class/net/{new}/ifindex"], netns=t.home, check=True).stdout)
        assert wait_until(lambda: idx in agent.status()["tc_ifindexes"], 10), agent.status()
    finally:
        t.run(["ip", "-n", t.home, "link", "del", new])
    assert wait_until(lambda: idx not in agent.status()["tc_ifindexes"], 10), agent.status()


def test_attach_no_agent_after_the_agent_died(world, agent):
    """SIGKILLed, the tunnel deleted and made again: attach --no-agent of the same guard
    takes the new tunnel."""
    t = world.t
    agent.proc.send_signal(signal.SIGKILL)
    agent.proc.wait(10)
    t.tunnel_down("del")
    t.tunnel_up()
    with Guard(world.vg, t, world.cg, "--allow", t.lan_net, "--dns", t.resolver) as g:
        assert g.status()["tunnel_ifindex"] == t.wg_client_ifindex, g.status()
        before = Attempt(world, world.vg, g.gid)
        assert probe(t, g.cg, words(t, "sendto {I} 9 --count 2")) == "sent 2/2"
        before.expect(far={"tunnel": 2})
        g.attached = False  # the agent's guard detaches it
