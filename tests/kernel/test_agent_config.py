"""The agent's configuration file and SIGHUP, on the real kernel: reloads that
add a guard, keep a CLOSED guard closed, refuse a bad file, detach a removed guard; a
bad file from scratch; the log reopened; sd_notify.

World: tests/lib/vgagentcase.py (HOME with the WireGuard client, INET with the "Internet"
198.51.100.1 and the IP echo the probes ask; guarded UDP counted where it arrives). Each
case has its own fresh guards (cg: guard one, cg2: guard two) and agent. Run one:
    VPNGUARD_BIN=... pytest-3 -s tests/kernel/test_agent_config.py -k removed
"""
import json
import os
import time

import pytest

from vgagent import CLOSED, OPEN, RELOAD, STATE, ev, write_config
from vgagentcase import agent_world, case  # noqa: F401 (the fixtures)
from vgguard import agent_pidfile, foreign_agent, pin_root
from vgproc import wait_until
from vgworld import assert_guarded, assert_unguarded, probe, snapshot_diff, state_snapshot

MORE_ALLOW = "172.31.0.0/16"
BAD_LINE = "this line has no equals sign"


def write_cfg(case, path, variant, two_extra=()):
    """one: guard one only; two: guard one with a second allow, and guard two; bad: two with
    a line that is not "key = value" in guard two; one2: guard one with both allows.
    two_extra: more (key, value) pairs of guard two."""
    t = case.t
    one = [("cgroup", case.cg), ("tunnel", t.wg_client), ("netns", t.home_netns),
           ("allow", t.lan_net)]
    if variant != "one":
        one.append(("allow", MORE_ALLOW))
    one += [("probe-url", case.url("/ip")), ("probe-interval", "1s")]
    guards = [("one", one)]
    if variant in ("two", "bad"):
        two = [("cgroup", case.cg2), ("tunnel", t.wg_client)]
        if variant == "bad":
            two.append(BAD_LINE)
        two += [("netns", t.home_netns), ("dns", t.resolver), *two_extra]
        guards.append(("two", two))
    return write_config(path, [("log", case.path("cfg.log"))], guards)


def config_agent(case, variant, **kw):
    """`attach --config` of that variant in the background, logging to the [agent] log."""
    cfg = write_cfg(case, case.path("vpnguard.conf"), variant)
    a = case.agent("cfg", "--config", cfg, log=case.path("cfg.log"), **kw)
    assert a.log.wait(OPEN, timeout=6), f"no open record in the [agent] log: {a.log.tail()}"
    return a, cfg


def hup_reload(a, timeout=6):
    """SIGHUP; the reload record it brings."""
    m = a.log.mark()
    a.hup()
    r = a.log.wait(RELOAD, since=m, timeout=timeout)
    assert r, f"no reload record after SIGHUP: {a.stderr()[-300:]}"
    return r, m


def test_reload_adds_guard_and_allow(case):
    """Case 6: attach --config; then a good new file + SIGHUP: guard one gets its new allow
    and keeps its state, guard two is attached and guards."""
    t = case.t
    a, cfg = config_agent(case, "one")
    assert a.log.first(OPEN).get("guard") == "one"
    g = case.status()
    assert [g["mode"], g["tunnel"], g["netns"], g["allow"], g["state"]] == \
        ["tunnel", t.wg_client, t.home_netns, [t.lan_net], "open"], g
    assert case.status(case.gid2) is None, "guard two is there before the reload"
    write_cfg(case, cfg, "two")
    r, m = hup_reload(a)
    assert [r.get("result"), r.get("guards"), r.get("detached"), r.get("config")] == \
        ["applied", 2, 0, cfg], r
    assert case.status()["allow"] == [t.lan_net, MORE_ALLOW]
    g2 = case.status(case.gid2)
    assert g2 and [g2["tunnel"], g2["dns"], g2["state"]] == [t.wg_client, [t.resolver], "open"], g2
    assert_guarded(case.cg2)
    time.sleep(1.5)
    assert (a.log.count(STATE, since=m), case.state()) == (0, "open"), \
        "guard one did not keep its state across the reload"
    case.gsend(case.cg2, 3, 3)


def test_reload_keeps_closed_guard_closed(case):
    """Case 6: a kept guard that is CLOSED stays closed across a reload, until a probe passes."""
    a, _ = config_agent(case, "one")
    m = a.log.mark()
    case.echo.stop()
    assert a.log.wait(CLOSED, since=m, timeout=8), "guard one did not close with the echo down"
    r, m = hup_reload(a, timeout=5)
    assert r.get("result") == "applied", r
    time.sleep(1.5)
    assert (case.state(), a.log.count(OPEN, since=m)) == ("closed", 0), \
        "guard one opened after the reload with the echo still down"
    case.gsend(case.cg, 2, 0, "closed")
    m = a.log.mark()
    case.echo.start()
    assert a.log.wait(OPEN, since=m, timeout=6), "guard one does not reopen when the echo is back"


def status_policy(case):
    """Every guard of status --json without what moves by itself (lease left, counters)."""
    r = case.vg_run("status", "--json")
    out = []
    for g in sorted(json.loads(r.stdout)["guards"], key=lambda g: g["cgroup_id"]):
        g.pop("lease_left_s", None)
        g.pop("denied", None)
        out.append(g)
    return out


def two_open(case):
    assert wait_until(lambda: case.state(case.gid2) == "open", 6, 0.2), "guard two is not open"


def test_reload_bad_file_changes_nothing(case):
    """Case 6: a bad new file + SIGHUP is refused, named by file and line on stderr and in the
    reload record; the policies and states stay as they were, guard one is still probed."""
    a, cfg = config_agent(case, "two")
    two_open(case)
    write_cfg(case, cfg, "bad")
    with open(cfg) as f:
        badline = next(i for i, line in enumerate(f, 1) if BAD_LINE in line)
    before = status_policy(case)
    r, _ = hup_reload(a)
    assert r.get("result") == "refused", r
    print(f"# case 6: refused reload's error: {r.get('error')}")
    err = [line for line in a.stderr().splitlines() if f"{cfg}:{badline}: " in line]
    assert err, f"the agent's stderr does not name {cfg}:{badline}: {a.stderr()[-500:]}"
    print(f"# case 6: agent stderr: {err[0]}")
    # The record carries the cause itself, as stderr says it (file, line and why).
    assert f"{cfg}:{badline}: " in (r.get("error") or ""), r
    assert status_policy(case) == before, "a refused reload changed status --json"
    assert a.alive(), "the agent stopped on a bad file"
    time.sleep(1.5)
    assert (case.state(), case.state(case.gid2)) == ("open", "open")


def test_reload_refused_for_a_mark_clash_says_why(case):
    """Case 6: a reload whose guard two would take guard one's mark in the same namespace is
    refused, and the reload record names the clash as stderr does (not a bare errno)."""
    a, cfg = config_agent(case, "two")
    two_open(case)
    mark = case.status()["fwmark"]
    write_cfg(case, cfg, "two", two_extra=[("fwmark", hex(mark))])
    before = status_policy(case)
    r, _ = hup_reload(a)
    assert r.get("result") == "refused", r
    err = r.get("error") or ""
    assert f"--fwmark {hex(mark)}" in err and "same mark or table" in err, r
    assert status_policy(case) == before, "a refused reload changed status --json"


def test_reload_removes_guard(case):
    """Case 6: guard two removed from the file + SIGHUP: detached, its pins gone; guard one
    stays with both allows, open."""
    t = case.t
    a, cfg = config_agent(case, "two")
    two_open(case)
    write_cfg(case, cfg, "one2")
    r, _ = hup_reload(a)
    assert [r.get("result"), r.get("guards"), r.get("detached")] == ["applied", 1, 1], r
    assert case.status(case.gid2) is None, "guard two is still in status"
    assert_unguarded(case.cg2)
    assert not os.path.exists(os.path.join(pin_root(), str(case.gid2))), "guard two's pins stay"
    g = case.status()
    assert (g["allow"], g["state"]) == ([t.lan_net, MORE_ALLOW], "open"), g
    assert a.stop() == 0


# id, the bad line added after the netns line of the "one" file
BAD_FROM_SCRATCH = [("syntax", BAD_LINE), ("bad_value", "probe-failures = 0")]


@pytest.mark.parametrize("text", [r[1] for r in BAD_FROM_SCRATCH],
                         ids=[r[0] for r in BAD_FROM_SCRATCH])
def test_bad_config_from_scratch(case, text):
    """Case 6: attach --config with a bad file and no agent: exit 2, one stderr line naming
    file:line, nothing changed, no agent left."""
    f = write_cfg(case, case.path("bad.conf"), "one")
    with open(f) as fh:
        lines = fh.read().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("netns = ")) + 1
    lines.insert(at, text)
    with open(f, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    snap0 = state_snapshot([case.cg, case.cg2])
    r = case.vg_run("attach", "--config", f)
    snap1 = state_snapshot([case.cg, case.cg2])
    print(f"# case 6: {text}: {r.stderr.strip()}")
    assert r.returncode == 2, f"exit {r.returncode}: {r.stderr}"
    err = r.stderr.splitlines()
    assert len(err) == 1 and err[0].startswith(f"vpnguard-bpf: {f}:{at + 1}: "), err
    assert snap1 == snap0, f"state changed: {snapshot_diff(snap0, snap1)}"
    assert foreign_agent() is None and not os.path.exists(agent_pidfile()), "an agent was left"


def test_log_reopened_on_sighup(case):
    """Case 8: the log moved away + SIGHUP: a fresh file at the path gets the new records
    (a state change, a denied DNS datagram), the moved one nothing more."""
    t = case.t
    a = case.agent("c8", *case.guard(case.cg), "--probe-url", case.url("/json"),
                   "--probe-interval", "1s", "--real-ip", t.real_ip)
    assert a.log.wait(OPEN, timeout=6), a.log.tail()
    path = a.log.path
    os.rename(path, path + ".1")
    with open(path + ".1") as f:
        old_n = len(f.readlines())
    a.hup()
    assert wait_until(lambda: os.path.exists(path), 3), "no fresh log file after SIGHUP"
    probe(case.t, case.cg, ["sendto", t.rogue_dns, "53"], timeout=10)
    case.real_ip_on()
    assert a.log.wait(CLOSED, timeout=5), f"no state closed in the new file: {a.log.tail()}"
    assert a.log.wait(ev("blocked", reason="dns"), timeout=3), \
        f"the denied DNS datagram's blocked record is not in the new file: {a.log.tail()}"
    with open(path + ".1") as f:
        assert len(f.readlines()) == old_n, "records went to the moved file"
    case.real_ip_off()
    assert a.log.wait(OPEN, timeout=5), "does not reopen"
    assert a.stop() == 0


def test_sd_notify(case):
    """Case 9: READY=1 (from the agent's pid, MAINPID, once its pins exist); SIGHUP brings
    RELOADING=1 then READY=1; STOPPING=1 last; enforcement stays after the agent exits."""
    root, gid = pin_root(), str(case.gid)
    checks = [os.path.join(root, gid, "egress"), os.path.join(root, gid, "connect4"),
              os.path.join(root, "vg_state")]
    assert not os.path.exists(os.path.join(root, gid)), "pins of the guard before it is attached"
    n = case.notify(checks)
    cfg = write_cfg(case, case.path("vpnguard.conf"), "one")
    a = case.agent("c9", "--config", cfg, env={"NOTIFY_SOCKET": n.sock})
    words = lambda: [w.split(";")[0] for w, _ in n.msgs()]  # noqa: E731
    assert wait_until(lambda: "READY=1" in words(), 5), f"no READY=1: {words()}"
    ready = next(r for w, r in n.msgs() if w.startswith("READY=1"))
    assert f"MAINPID={a.pid}" in ready["msg"].split("\n") and ready["pid"] == a.pid, ready
    assert all(ready["paths"].values()), f"at READY=1 pins were missing: {ready['paths']}"
    n0 = len(n.msgs())
    a.hup()
    assert wait_until(lambda: len(n.msgs()) >= n0 + 2, 5), f"SIGHUP: {words()}"
    assert words()[n0:] == ["RELOADING=1", "READY=1"], words()
    assert a.log.wait(ev("reload", result="applied"), timeout=3), "the reload was not applied"
    assert a.stop() == 0
    assert wait_until(lambda: words()[-1] == "STOPPING=1", 3), f"not last: {words()}"
    print(f"# case 9: messages: {'|'.join(w for w, _ in n.msgs())}")
    assert os.path.exists(checks[0]) and case.status() is not None, \
        "enforcement did not stay after the agent exited"
