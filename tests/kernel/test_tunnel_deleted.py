"""The tunnel vanishes under live traffic, and nothing leaks: with no agent, and with the
agent following the tunnel away and back (new ifindex), on the real kernel.

Each case a world of its own (tests/lib/vgtunnel.py tunnel_world: routing "subnets", a TCP
listener in INET on port P; the kernel lock taken once for the module) and a fresh guard of
cgroup "guarded" (--allow the LAN, --dns the resolver). Unconnected UDP and TCP floods run
from the guarded cgroup to the Internet host while the tunnel is deleted (`ip link del`) or
its wireguard-go SIGKILLed; the far side (tests/lib/vgworld.py) must see no packet but
through the tunnel (WireGuard's ICMP errors about a dead client port aside), and the guard
must refuse with no_tunnel (with an agent, off_tunnel too: packets routed before the device
went) and nothing else. The world goes at the end of each case, leaving nothing (asserted).

Run one case: pytest-3 tests/kernel/test_tunnel_deleted.py -k 'agent and kill'
"""
import re
import time

import pytest

from vgguard import Guard, kernel_lock_held
from vgproc import wait_until
from vgtunnel import P, Floods, logged, still, tunnel_world
from vgworld import Attempt, probe, words


@pytest.fixture(scope="module")
def lock():
    """Once for the module: between its cases other suites would take the lock for minutes."""
    with kernel_lock_held():
        yield


@pytest.fixture
def w(vg, lock):
    with tunnel_world(lock=False) as w:
        w.vg = vg
        yield w


def guard(w, agent):
    t = w.t
    return Guard(w.vg, t, w.cg, "--allow", t.lan_net, "--dns", t.resolver, agent=agent)


def cycle(w, g, how):
    """Floods through the tunnel, the tunnel gone under them, (with an agent) back while
    they run; the floods stop. What moved on the far side and the guard's denials since,
    and the tunnel packets 1.5 s after the deletion."""
    t, agent = w.t, g.agent
    mark = len(g.events())
    before = Attempt(w, w.vg, g.gid)
    tunnel = lambda: before.moved()["tunnel"]  # noqa: E731
    fl = Floods(w, g.cg)
    try:
        assert wait_until(lambda: tunnel() >= 50, 10), f"the floods before: {tunnel()} packets"
        old = t.wg_client_ifindex
        t.tunnel_down(how)
        time.sleep(1.2)
        t_mid = still(tunnel)
        assert before.moved()["leak4"] == 0, "leaked within 1.5 s of the tunnel vanishing"
        if agent:
            assert wait_until(lambda: logged(g, "tunnel_down", mark), 10), g.events()[-5:]
            st = g.status()
            assert [st["tunnel_present"], st["tunnel_ifindex"]] == [False, 0], st
            t.tunnel_up()
            new = t.wg_client_ifindex
            assert new != old, f"ifindex {old} -> {new}"
            assert wait_until(lambda: g.status()["tunnel_ifindex"] == new, 10), g.status()
            assert wait_until(lambda: logged(g, "tunnel_up", mark, ifindex=new), 10), \
                g.events()[-5:]
            # The running UDP flood goes through the new tunnel, with no restart.
            assert wait_until(lambda: tunnel() > t_mid, 15), "nothing through the new tunnel"
        else:
            time.sleep(1.5)  # the floods go on against no tunnel
    finally:
        res = fl.stop()
    print(f"{how}: floods {res}; tunnel packets 1.5 s after the deletion {t_mid}")
    moved = before.expect(far={"tunnel": ">=50", "wgicmp": "*"},
                          denied={"no_tunnel": ">=1", "off_tunnel": "*" if agent else 0},
                          settle=0.5)
    return moved, t_mid, mark


def test_deleted_without_agent(w):
    """Nobody updates vg_tunnels, but the kernel drops the device from vg_tundev: the
    sends are refused no_tunnel and the traffic just stops. The guard learns the new
    tunnel by attach again."""
    with guard(w, agent=False) as g:
        moved, t_mid, _ = cycle(w, g, "del")
        assert moved["tunnel"] <= t_mid, "tunnel packets after the deletion"
        w.t.tunnel_up()
        g.attach()
        assert g.status()["tunnel_ifindex"] == w.t.wg_client_ifindex, g.status()


@pytest.mark.parametrize("how", ["del", "kill"], ids=["ip link del", "SIGKILL wireguard-go"])
def test_deleted_with_agent(w, how):
    t = w.t
    with guard(w, agent=True) as g:
        w.agent_pids.append(g.proc.pid)
        assert wait_until(lambda: (g.status() or {}).get("tunnel_present"), 10), g.status()
        _, _, mark = cycle(w, g, how)
        for user, args, result, far in [
                ("root", "sendto {I} 9 --count 3", "sent 3/3", {"tunnel": 3}),
                ("nobody", "sendto {I} 9 --count 3", "sent 3/3", {"tunnel": 3}),
                ("root", "connect tcp {I} {P}", "connected", {"tunnel": ">=1"})]:
            before = Attempt(w, w.vg, g.gid)
            got = probe(t, g.cg, words(t, args, P=P), user)
            assert re.fullmatch(result, got), f"{user} {args} after tunnel_up: {got!r}"
            before.expect(far=far)
        assert logged(g, "blocked", mark), "no blocked event logged"
