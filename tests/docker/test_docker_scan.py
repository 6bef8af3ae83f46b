"""`scan` and the agent's scan: processes that slip past a guarded container's guard.

The world of each test is tests/docker/test_docker_slice.py's: a client container in the
guarded slice (CAP_NET_RAW dropped), its network namespace the VPN container's. The
offenders are a table, each made in a fresh world and found by `scan --json` (exit 3, the
kind and PID of each finding, nothing else), by `scan` (one FOUND line per finding), and
gone again once it is (exit 0):

  escaped  the s6-overlay escape: a process in the client's cgroup with the host's network
           and PID namespaces (found twice: netns and pidns, against the client's init)
  net_raw  a process of the slice holding CAP_NET_RAW: a container without cap_drop
  outside  a process of the client's PID (and network) namespace that never entered its cgroup

The agent runs the same scan at its start and on SIGHUP, and logs each finding once.

Run one case: cd tests && pytest-3 docker/test_docker_scan.py -k outside
"""
import json
import os
import re
import signal

import pytest

from vgproc import end_popen, wait_until
from vgworld import assert_guarded


def offender_escaped(w, c):
    p = w.t.spawn(["sleep", "600"], cg=w.path(c.cgroup), user="nobody")
    return {("netns", p.pid), ("pidns", p.pid)}, lambda: w.t.stop(p)


def offender_net_raw(w, c):
    raw = w.client("vgraw", net_raw=True)
    return {("net_raw", raw.pid)}, lambda: w.e.rm(raw.id)


def offender_outside(w, c):
    cg = w.t.cgroup("outside")
    w.t.spawn(["nsenter", "-t", str(c.pid), "-p", "-n", "sleep", "600"], cg=cg)

    # nsenter forks for the PID namespace: the sleep is its child, in the same cgroup.
    def sleeps():
        out = []
        with open(os.path.join(cg, "cgroup.procs")) as f:
            for pid in f.read().split():
                try:
                    with open(f"/proc/{pid}/comm") as g:
                        if g.read().strip() == "sleep":
                            out.append(int(pid))
                except OSError:
                    pass
        return out
    assert wait_until(lambda: sleeps(), 10), "nsenter's sleep did not start"
    return {("outside", sleeps()[0])}, lambda: w.t.cg_remove(cg)


OFFENDERS = {"escaped": offender_escaped, "net_raw": offender_net_raw,
             "outside": offender_outside}


def scan_json(w):
    r = w.vg_run("scan", "--json")
    return r.returncode, (json.loads(r.stdout)["findings"] if r.stdout.strip() else None)


def found(findings):
    return {(f["kind"], f["pid"]) for f in findings}


def found_lines(r):
    return len([x for x in r.stdout.splitlines() if x.startswith("FOUND ")])


def test_scan_of_the_clean_setup_finds_nothing(world, vg):
    w = world
    w.guard_slice()
    w.client()
    b = w.client("vgbyname", parent=w.byname_parent)
    assert w.vg_run("attach", *w.by_name(b), "--no-agent").returncode == 0
    r = w.vg_run("scan")
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0, r.stdout + r.stderr
    assert lines[-1] == "nothing found", lines
    # Two guards (the slice, the container by name), one process in each container.
    assert re.match(r"scanned 2 guards, 2 processes", lines[0]), lines


@pytest.mark.parametrize("kind", list(OFFENDERS))
def test_scan_finds(world, vg, kind):
    w = world
    w.guard_slice()
    c = w.client()
    want, undo = OFFENDERS[kind](w, c)
    rc, findings = scan_json(w)
    assert rc == 3, f"scan --json exit {rc}"
    assert found(findings) == want and len(findings) == len(want), findings
    for f in findings:
        if f["kind"] == "netns":  # compared with the client's init
            assert f["container_pid"] == c.pid, f
    r = w.vg_run("scan")
    assert r.returncode == 3, r.stdout + r.stderr
    assert found_lines(r) == len(want), r.stdout
    undo()
    r = w.vg_run("scan")
    assert r.returncode == 0, f"scan once it is gone: exit {r.returncode}\n{r.stdout}"


def test_agent_logs_each_finding_once(world, vg):
    w = world
    w.guard_slice()
    c = w.client()
    want, undos = set(), []
    for make in OFFENDERS.values():
        f, undo = make(w, c)
        want |= f
        undos.append(undo)
    rc, findings = scan_json(w)
    assert rc == 3 and found(findings) == want and len(findings) == 4, findings
    r = w.vg_run("scan")
    assert r.returncode == 3 and found_lines(r) == 4, r.stdout
    # The agent (the same slice, its policy replaced) scans at its start.
    g = w.guard_slice(agent=True, log=os.path.join(w.t.dir, "agent.jsonl"))

    def logged():
        return [(e["reason"], e["pid"]) for e in g.events() if e.get("event") == "scan"]
    wait_until(lambda: len(logged()) >= 4, 15, 0.1)
    w.t.settle(0.5)
    assert sorted(logged()) == sorted(want), logged()
    # A second scan (SIGHUP) logs what is new, and nothing it already logged.
    new, undo = offender_escaped(w, c)
    undos.append(undo)
    g.proc.send_signal(signal.SIGHUP)
    assert wait_until(lambda: new <= set(logged()), 15, 0.1), logged()
    w.t.settle(0.5)
    assert sorted(logged()) == sorted(want | new), logged()
    r = w.vg_run("events")
    assert len([x for x in r.stdout.splitlines() if " scan reason=" in x]) >= 4, r.stdout
    # The agent goes, its guard stays: the last scan has a guard to scan.
    end_popen(g.proc, signal.SIGTERM, grace=10)
    g.proc = None
    assert_guarded(w.slice)
    for undo in undos:
        undo()
    r = w.vg_run("scan")
    assert r.returncode == 0, f"scan once they are gone: exit {r.returncode}\n{r.stdout}"
