"""Leases: a guard the agent no longer renews closes by itself; attaches beside the agent,
on the real kernel.

World: tests/lib/vgagentcase.py (HOME with the WireGuard client, INET with the "Internet"
198.51.100.1 and the IP echo the probes ask; guarded UDP counted where it arrives: gtun
out of the tunnel, gleak by the veth). Each case has its own fresh guard and agent.
Run one:
    VPNGUARD_BIN=... pytest-3 -s tests/kernel/test_agent_lease.py -k sigkill
"""
import os
import signal
import time

import pytest

from vgagent import CLOSED, OPEN, ev, fig, ms, write_config
from vgagentcase import agent_world, case  # noqa: F401 (the fixtures)
from vgguard import pin_root
from vgproc import pid_alive, wait_until
from vgworld import snapshot_diff, state_snapshot


def test_no_agent_guard_open(case):
    """attach --no-agent: open at once, guarded UDP through the tunnel."""
    r = case.vg_run("attach", *case.guard(case.cg), "--no-agent")
    assert r.returncode == 0, r.stderr
    case.gsend(case.cg, 3, 3)


def test_sigkill_lease_closes(case):
    """Case 5: the agent is SIGKILLed while a guarded flood runs; the lease it gave (3 s)
    runs out and the guard closes by itself: the far side stops within the lease + 700 ms."""
    a = case.agent("c5", *case.guard(case.cg), "--probe-url", case.url("/ip"),
                   "--probe-interval", "1s", "--lease", "3s")
    assert a.log.wait(OPEN, timeout=6), f"the probed guard does not open: {a.log.tail()}"
    flood = case.flood(case.cg, 15)
    assert case.far_grows("gtun", 20), "the guarded flood does not go through the tunnel"
    c0 = case.denied("closed")
    t_ask = time.time()
    left = case.status()["lease_left_s"]
    t_ask = (t_ask + time.time()) / 2  # about when status computed it
    kpid = a.pid
    tk = time.time()
    assert a.stop(signal.SIGKILL) == -signal.SIGKILL
    left_ms = int(left * 1000) - ms(t_ask, tk)  # the lease left at the kill
    assert not pid_alive(kpid), f"agent {kpid} still runs"
    samples = []  # (time, gtun, state) until 6 s after the kill
    while True:
        t = time.time()
        samples.append((t, case.far("gtun"), case.state()))
        if t - tk >= 6:
            break
    t_status = next((t for t, _, st in samples if st == "closed"), None)
    final = samples[-1][1]
    i = next(i for i, s in enumerate(samples) if s[1] == final)
    far_lo = ms(tk, samples[i - 1][0]) if i > 0 else 0
    far_hi = ms(tk, samples[i][0])
    st_ms = ms(tk, t_status) if t_status else 99999
    f = fig(f"case 5: SIGKILL with --probe-interval 1s --lease 3s: lease left at the kill "
            f"{left_ms} ms; status closed after {st_ms} ms; last guarded datagram reached the "
            f"far side between {far_lo} and {far_hi} ms after the kill ({len(samples)} samples)")
    assert left_ms - 200 <= st_ms <= left_ms + 700, f"status closed off the lease: {f}"
    assert left_ms - 500 <= far_hi <= left_ms + 700, f"the far side stops off the lease: {f}"
    assert st_ms <= 3700, f"closed later than 3 s + 700 ms after the kill: {f}"
    assert case.denied("closed") > c0, "the running flood is not denied as closed"
    assert case.far("gleak") == case.far0["gleak"], "guarded UDP by the veth"
    case.t.stop(flood)
    assert os.path.exists(os.path.join(pin_root(), str(case.gid), "egress")) and \
        os.path.exists(os.path.join(pin_root(), "vg_state")), "pins gone after SIGKILL"


def test_no_agent_lease_runs_out(case):
    """Case 12: attach --no-agent --lease 2s: open, then closed by itself about 2 s later.

    The lease starts somewhere inside the attach, so the bounds are taken from both ends of it:
    a loaded machine that makes the attach or the status call slow moves neither."""
    started = time.time()
    r = case.vg_run("attach", *case.guard(case.cg), "--no-agent", "--lease", "2s")
    t0 = time.time()
    assert r.returncode == 0, r.stderr
    g = case.status()
    left, since_start = g["lease_left_s"] or 0, time.time() - started
    assert g["state"] == "open" and 2 - since_start - 0.05 <= left <= 2, \
        f"lease left {left} s, {since_start:.3f} s after the attach started: {g}"
    case.gsend(case.cg, 2, 2)
    tc = None
    while time.time() - t0 < 5:
        if case.state() == "closed":
            tc = time.time()
            break
        time.sleep(0.02)
    assert tc, "--no-agent --lease 2s: still open 5 s later"
    dt = ms(t0, tc)
    f = fig(f"case 12: --no-agent --lease 2s: closed by itself {dt} ms after attach returned "
            f"({ms(started, tc)} ms after it started)")
    assert ms(started, tc) >= 1950 and dt <= 2600, f"not closed about 2 s after the attach: {f}"
    case.gsend(case.cg, 2, 0, "closed")


def probed_agent(case):
    """An agent probing case.cg at the default interval (30 s: its log stays quiet)."""
    a = case.agent("agent", *case.guard(case.cg), "--probe-url", case.url("/ip"))
    assert a.log.wait(OPEN, timeout=6), f"the first probe does not open the guard: {a.log.tail()}"
    return a


# id, the second attach's words ({CG2}, {URL}, {CFG} filled in), stderr lines naming the pid
REFUSED = [
    ("probe-url", "--cgroup {CG2} --tunnel {WG} --netns {NS} --probe-url {URL}", None),
    ("config", "--config {CFG}", 1),
]


@pytest.mark.parametrize("words,naming", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_second_attach_with_agent_options_refused(case, words, naming):
    """Case 12: beside the running agent, an attach that would need an agent of its own is
    refused (exit 2, naming the agent's pid) and changes nothing the agent or kernel hold."""
    t = case.t
    cfg = write_config(case.path("one.conf"), [("log", case.path("cfg.log"))], [
        ("one", [("cgroup", case.cg), ("tunnel", t.wg_client), ("netns", t.home_netns),
                 ("probe-url", case.url("/ip"))])])
    a = probed_agent(case)
    m = a.log.mark()
    snap0 = state_snapshot([case.cg, case.cg2])
    r = case.vg_run("attach", *words.format(CG2=case.cg2, WG=t.wg_client, NS=t.home_netns,
                                             URL=case.url("/ip"), CFG=cfg).split())
    snap1 = state_snapshot([case.cg, case.cg2])
    print(f"# case 12: {r.stderr.strip().splitlines()[:1]}")
    assert r.returncode == 2, f"exit {r.returncode}: {r.stderr}"
    n = sum(f"pid {a.pid}" in line for line in r.stderr.splitlines())
    assert n >= 1 and n == (naming or n), f"the message does not name the agent's pid: {r.stderr}"
    assert snap1 == snap0, f"state changed: {snapshot_diff(snap0, snap1)}"
    assert a.log.mark() == m, f"the running agent logged: {a.log.all(since=m)}"
    assert a.alive(), "the running agent stopped"


def test_plain_attach_beside_agent_has_no_lease(case):
    """Case 12: a plain attach beside the agent is allowed; the agent follows it but does
    not lease it (its --probe-interval 1s would mean a 3 s lease nobody renews)."""
    probed_agent(case)
    r = case.vg_run("attach", *case.guard(case.cg2), "--probe-interval", "1s")
    print(f"# case 12: {(r.stderr.strip().splitlines() or [''])[-1]}")
    assert r.returncode == 0, r.stderr
    time.sleep(4.5)
    g = case.status(case.gid2)
    assert g and [g["state"], g["lease_left_s"]] == ["open", None], \
        f"4.5 s later the second guard is not open without a lease: {g}"
    case.gsend(case.cg2, 2, 2)


def test_plain_reattach_of_closed_guard_stays_closed(case):
    """Case 12: the agent closed its guard (the tunnel exits by the real address) and someone
    runs a plain attach of the same cgroup: fail closed, the guard is closed again within
    one probe interval + timeout + 1 s and stays closed while the probe sees the real IP."""
    t = case.t
    a = case.agent("c12d", *case.guard(case.cg), "--probe-url", case.url("/json"),
                   "--probe-interval", "1s", "--real-ip", t.real_ip)
    assert a.log.wait(OPEN, timeout=6), f"the guard does not open: {a.log.tail()}"
    m = a.log.mark()
    case.real_ip_on()
    assert a.log.wait(CLOSED, since=m, timeout=5), "not closed on the real IP"
    r = case.vg_run("attach", *case.guard(case.cg))
    g = case.status()
    print(f"# case 12 (re-attach): plain attach exit {r.returncode}: "
          f"{(r.stderr.strip().splitlines() or [''])[-1]}")
    print(f"# case 12 (re-attach): state right after it: {[g['state'], g['lease_left_s']]}")
    time.sleep(3)
    assert case.state() == "closed", f"3 s later (3 probes seeing {t.real_ip}) the guard is open"
    case.gsend(case.cg, 2, 0, "closed")
    case.real_ip_off()
    assert a.stop() == 0


@pytest.mark.parametrize("probed", [False, True], ids=["unprobed", "probed"])
def test_detach_beside_the_agent_lets_the_guard_go(case, probed):
    """`detach` of the agent's only guard while it runs: the agent logs that it let the guard
    go (no pins made again from nothing, no alert, no lease written) and exits 0 within a
    tick; guarded UDP is no longer judged (the cgroup is unguarded)."""
    words = ["--probe-url", case.url("/ip")] if probed else []
    a = case.agent("det", *case.guard(case.cg), *words, "--probe-interval", "1s")
    if probed:
        assert a.log.wait(OPEN, timeout=6), a.log.tail()
    assert wait_until(lambda: case.state() == "open", 6), "the guard is not open"
    assert case.vg_run("detach", "--cgroup", case.cg).returncode == 0
    assert a.log.wait(ev("pins", why="detached", action="let go"), timeout=5), a.log.tail()
    assert wait_until(lambda: not a.alive(), 5), "the agent still runs with no guard left"
    assert a.stop() == 0
    assert not a.log.first(ev("pins", action="lost")), "it tried to make the pins again"
    assert "every guard was detached" in a.stderr()
    assert case.status() is None
