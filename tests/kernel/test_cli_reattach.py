"""Re-attach: a new policy for a guarded cgroup replaces the old one atomically, under traffic,
and tunnel mode can become gateway mode.

One world for the module (tests/lib/vgcli.py's cli_world, routing "subnets"). Each case
attaches a fresh tunnel guard `--allow {L} --dns {R}` (test_rules.py has its rows) and
re-attaches it. Under a connected and an unconnected UDP flood (they run until stopped: a
loaded machine may take longer over the re-attaches than any fixed flood would last) not one
send may fail, nothing may leave off the tunnel, and the programs must stay the same ones.

Run one case: pytest-3 tests/kernel/test_cli_reattach.py -k floods
"""
import os
import time

import pytest

from vgcli import Flood, cli_world, guard, judge, tc_ifindexes, veth_ifindex, wait_gone
from vgguard import pin_root
from vgworld import (Attempt, assert_guarded, cg_prog_ids, guard_status, run_vg, tc_prog_id,
                     words)


@pytest.fixture(scope="module")
def w(vg):
    with cli_world(vg) as w:
        yield w


@pytest.fixture
def tun(w):
    with guard(w, "tun", "--allow", w.t.lan_net, "--dns", w.t.resolver, tunnel=True) as g:
        yield g


def reattach(w, g, policy):
    """attach again with the policy words instead of the first ones."""
    t = w.t
    return run_vg(w.vg, "attach", "--cgroup", g.cg, "--tunnel", t.wg_client, "--netns",
                  t.home_netns, *fill(t, policy).split(), "--no-agent")


def fill(t, s):
    """vgworld.words, and {LN} the LAN's net."""
    return words(t, s, LN=t.lan_net)


REATTACH = ["--allow {LN} --dns {R} --dns 203.0.113.54", "--dns {R}",
            "--allow 192.0.2.0/25 --dns {R}", "--allow 10.0.0.0/8 --dns {D}", "--dns {D} --dns {R}"]


def test_reattach_under_floods(w, tun):
    t = w.t
    assert_guarded(tun.cg)
    progs = cg_prog_ids(tun.cg)
    veth = [veth_ifindex(t)]
    assert tc_ifindexes(w.vg, tun.gid) == veth, "the tc program belongs on the veth alone"
    tc = tc_prog_id(tun.gid)
    before = Attempt(w, w.vg, tun.gid)
    floods = [Flood(w, tun.cg, "udp {I} 9 --seconds 120"),
              Flood(w, tun.cg, "udp {I} 9 --seconds 120 --unconnected")]
    try:
        assert t.wait_count("tunnel", before.far.get("tunnel", 0) + 20, 10), "the floods never ran"
        for policy in REATTACH:
            r = reattach(w, tun, policy)
            assert r.returncode == 0, f"re-attach {policy}: {r.stderr}"
            time.sleep(0.3)  # traffic between re-attaches, not a judge
        assert all(f.alive() for f in floods), "a flood ended before the last re-attach"
    finally:
        reports = [f.stop() for f in floods]
    for rep in reports:
        assert rep.get("ok", 0) > 0 and rep.get("failed") == 0, rep["line"]
    sent = sum(rep["ok"] for rep in reports)
    moved = before.expect(far={"tunnel": f">={sent * 9 // 10}"}, denied={})
    print(f"floods: {sent} sent, far side {moved}")
    assert_guarded(tun.cg)
    assert cg_prog_ids(tun.cg) == progs, "re-attach duplicated or replaced programs"
    assert tc_ifindexes(w.vg, tun.gid) == veth
    assert tc_prog_id(tun.gid) == tc, "the same build's tc program was replaced"
    st = guard_status(w.vg, tun.gid)
    assert (st["dns"], st["allow"]) == ([t.rogue_dns, t.resolver], []), st


# the policy re-attached, status dns, status allow, what DNS to {D} and a datagram to {L} do
POLICIES = [
    ("--allow {LN} --dns {R} --dns 203.0.113.54", ["{R}", "203.0.113.54"], ["{LN}"], "dns", "lan"),
    ("--dns {R}", ["{R}"], [], "dns", "tunnel"),
    ("--allow 192.0.2.0/25 --dns {R}", ["{R}"], ["192.0.2.0/25"], "dns", "lan"),
    ("--allow 10.0.0.0/8 --dns {D}", ["{D}"], ["10.0.0.0/8"], "tunnel", "tunnel"),
    ("--dns {D} --dns {R}", ["{D}", "{R}"], [], "tunnel", "tunnel"),
]


@pytest.mark.parametrize("policy,dns,allow,rogue,lan", POLICIES, ids=[p[0] for p in POLICIES])
def test_reattach_new_policy(w, tun, policy, dns, allow, rogue, lan):
    """Only the new policy holds: a resolver it lists is reached through the tunnel, and the
    LAN it no longer allows is steered into the tunnel."""
    t = w.t
    assert reattach(w, tun, policy).returncode == 0
    st = guard_status(w.vg, tun.gid)
    assert (st["dns"], st["allow"]) == ([fill(t, x) for x in dns], [fill(t, x) for x in allow]), st
    if rogue == "dns":
        judge(w, tun, "nobody", "sendto {D} 53", "sent 0/1 errno EPERM", denied={"dns": 1})
    else:
        judge(w, tun, "nobody", "sendto {D} 53", "sent 1/1", far={"tunnel": 1})
    judge(w, tun, "nobody", "sendto {L} 9", "sent 1/1", far={lan: 1})


def test_tunnel_to_gateway(w, tun):
    """Re-attach in gateway mode: the tc program leaves every interface and its pin."""
    t = w.t
    tc = tc_prog_id(tun.gid)
    assert tc and tc_ifindexes(w.vg, tun.gid) == [veth_ifindex(t)]
    r = run_vg(w.vg, "attach", "--cgroup", tun.cg, "--gateway", t.inet_host, "--no-agent")
    assert r.returncode == 0, r.stderr
    assert guard_status(w.vg, tun.gid)["mode"] == "gateway"
    d = os.path.join(pin_root(), str(tun.gid))
    assert [n for n in os.listdir(d) if n.startswith("tc_")] == []
    assert wait_gone([tc]) == [], "the tc program is still loaded"
    assert_guarded(tun.cg)
    judge(w, tun, "root", "sendto {I} 9", "sent 1/1", far={"tunnel": 1})
    judge(w, tun, "root", "sendto {D} 9", "sent 0/1 errno EPERM", denied={"not_gateway": 1})
