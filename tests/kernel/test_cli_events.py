"""`vpnguard-bpf events`: a denial's record (JSON and human), the ring buffer drained, the
rate limit, and the agent's log (what events prints while an agent runs, --follow).

One world for the module (tests/lib/vgcli.py's cli_world, routing "subnets"). Each case
attaches a fresh gateway guard "gw" (test_cli_gateway.py's policy) and first drains what
earlier cases left in the ring buffer; the agent cases add a guard "ev" started as the agent,
with a log of its own. Denials are made by vgprobe with a known PID, so each record is found
by its PID.

Run one case: pytest-3 tests/kernel/test_cli_events.py -k follow
"""
import datetime
import itertools
import os
import re
import signal
import subprocess
import time

import pytest

from vgcli import PATIENCE, cli_world, events_guard, guard, json_lines
from vgguard import agent_pidfile
from vgproc import end_popen, wait_until
from vgworld import (Attempt, assert_guarded, cg_rel, guard_denied, probe, probe_pid, run_vg,
                     words)

KEYS = ("time", "event", "reason", "hook", "cgroup", "cgroup_id", "pid", "uid", "comm", "proto",
        "family", "dst", "dport", "ifindex")
UID = {"root": 0, "nobody": 65534}
_logs = itertools.count()


@pytest.fixture(scope="module")
def w(vg):
    with cli_world(vg) as w:
        yield w


@pytest.fixture
def gw(w):
    with events_guard(w) as g:
        yield g


def deny(w, g, user, args, result):
    """One denial in g's cgroup; its PID."""
    line, rc, pid = probe_pid(w.t, g.cg, words(w.t, args), user)
    assert (line, rc) == (result, 1), f"{args}: {line!r} exit {rc}"
    return pid


def age_s(stamp):
    t = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    return (now - t).total_seconds()


# name, user, vgprobe arguments, result line, then the record: reason, hook, proto, family,
# dst, dport
EVENTS = [
    ("connect not_gateway", "root", "connect tcp {I} 80", "errno EPERM",
     "not_gateway", "connect4", "tcp", "ipv4", "{I}", 80),
    ("sendto dns", "root", "sendto {D} 53", "sent 0/1 errno EPERM",
     "dns", "sendmsg4", "udp", "ipv4", "{D}", 53),
    ("sendto ipv6 as nobody", "nobody", "sendto {I6} 9", "sent 0/1 errno EPERM",
     "ipv6", "sendmsg6", "udp", "ipv6", "{I6}", 9),
]


@pytest.mark.parametrize("name,user,args,result,reason,hook,proto,family,dst,dport", EVENTS,
                         ids=[e[0] for e in EVENTS])
def test_event_record(w, gw, name, user, args, result, reason, hook, proto, family, dst, dport):
    """One denial, one record with every field; a second read finds the buffer drained."""
    t = w.t
    pid = deny(w, gw, user, args, result)
    r = run_vg(w.vg, "events", "--json")
    assert (r.returncode, r.stderr) == (0, ""), r
    recs, bad = json_lines(r.stdout)
    assert (len(recs), bad) == (1, 0), r.stdout
    rec = recs[0]
    assert [k for k in KEYS if k not in rec] == [], rec
    got = tuple(rec[k] for k in ("pid", "event", "reason", "hook", "proto", "family", "dst",
                                 "dport", "uid", "comm", "cgroup", "cgroup_id"))
    assert got == (pid, "blocked", reason, hook, proto, family, words(t, dst), dport, UID[user],
                   "vgprobe", cg_rel(t.cg2, gw.cg), gw.gid), rec
    assert -5 < age_s(rec["time"]) < 60, rec["time"]
    r = run_vg(w.vg, "events", "--json")
    assert (r.returncode, r.stdout) == (0, ""), "not drained"


def test_event_human(w, gw):
    t = w.t
    pid = deny(w, gw, "root", "sendto {D} 53", "sent 0/1 errno EPERM")
    r = run_vg(w.vg, "events")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1, r
    want = (rf"BLOCKED +udp +{re.escape(t.rogue_dns)}:53 +dns +by vgprobe \(pid {pid}\) in "
            rf"{re.escape(cg_rel(t.cg2, gw.cg))}, hook sendmsg4")
    assert re.search(want, r.stdout), r.stdout


def test_rate_limit(w, gw):
    """2000 denials in one burst: at most the burst of 20 records, the rest counted as
    suppressed, none lost."""
    t = w.t
    time.sleep(1.1)  # a fresh rate-limit window, not a judge
    d0 = guard_denied(w.vg, gw.gid)
    before = Attempt(w, w.vg, gw.gid)
    line, _, pid = probe_pid(t, gw.cg, f"sendto {t.rogue_dns} 9 --count 2000")
    assert line == "sent 0/2000 errno EPERM"
    before.expect(denied={"not_gateway": 2000})
    d1 = guard_denied(w.vg, gw.gid)
    recs, bad = json_lines(run_vg(w.vg, "events", "--json").stdout)
    ours = [x for x in recs if x.get("pid") == pid and x.get("reason") == "not_gateway"]
    suppressed = d1["events_suppressed"] - d0.get("events_suppressed", 0)
    lost = d1["events_lost"] - d0.get("events_lost", 0)
    print(f"2000 denials: {len(ours)} records, suppressed +{suppressed}, lost +{lost}")
    assert 1 <= len(ours) <= 20, len(ours)
    assert suppressed >= 1 and len(ours) + suppressed == 2000, (len(ours), suppressed)
    assert (lost, len(recs) - len(ours), bad) == (0, 0, 0), (lost, recs[:3])


# -- with an agent -------------------------------------------------------------------
@pytest.fixture
def agent(w, gw):
    """gw, and "ev" attached by the agent, logging to a file of its own (in a directory the
    agent makes)."""
    t = w.t
    log = os.path.join(t.dir, f"agentlog{next(_logs)}", "events.jsonl")
    with guard(w, "ev", "--gateway", f"{t.inet_host}:1080", "--dns", t.resolver, agent=True,
               log=log) as ev:
        yield gw, ev


def log_has(g, pid):
    return any(r.get("pid") == pid for r in g.events())


def logged_denial(w, ev):
    pid = deny(w, ev, "nobody", "sendto {D} 53", "sent 0/1 errno EPERM")
    assert wait_until(lambda: log_has(ev, pid), PATIENCE, 0.1), f"pid {pid} not in the log"
    return pid


def test_agent_logs_every_guard(w, agent):
    gw, ev = agent
    t = w.t
    with open(agent_pidfile()) as f:
        lock = f.read().splitlines()
    assert lock[:2] == [str(ev.proc.pid), os.path.realpath(ev.log_path)], lock
    assert_guarded(ev.cg)
    mine = logged_denial(w, ev)
    other = deny(w, gw, "root", "sendto {I6} 9", "sent 0/1 errno EPERM")
    assert wait_until(lambda: log_has(ev, other), PATIENCE, 0.1), "the other guard's denial"
    with open(ev.log_path) as f:
        recs, bad = json_lines(f.read())
    assert bad == 0
    r = [x for x in recs if x.get("pid") == mine][0]
    got = tuple(r[k] for k in ("event", "reason", "hook", "dst", "dport", "comm", "uid",
                               "cgroup", "cgroup_id"))
    assert got == ("blocked", "dns", "sendmsg4", t.rogue_dns, 53, "vgprobe", 65534,
                   cg_rel(t.cg2, ev.cg), ev.gid), r


def test_events_prints_the_agent_log(w, agent):
    _, ev = agent
    pid = logged_denial(w, ev)
    with open(ev.log_path) as f:
        log = f.read()
    r = run_vg(w.vg, "events")
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(log.splitlines()), (r.stdout, log)
    assert re.search(rf"BLOCKED +udp +{re.escape(w.t.rogue_dns)}:53 +dns +by vgprobe "
                     rf"\(pid {pid}\)", r.stdout), r.stdout
    assert run_vg(w.vg, "events", "--json").stdout == log


def test_events_follow(w, agent):
    """--follow --json: the log so far, then a new denial as it comes; exit 0 on SIGTERM."""
    _, ev = agent
    logged_denial(w, ev)
    with open(ev.log_path) as f:
        n = len(f.read().splitlines())
    out = os.path.join(w.t.dir, "follow.out")
    with open(out, "w") as f:
        p = subprocess.Popen([w.vg, "events", "--follow", "--json"], stdout=f,
                             stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        def lines():
            with open(out) as f:
                return f.read().splitlines()
        assert wait_until(lambda: len(lines()) >= n, PATIENCE, 0.05) and len(lines()) == n, \
            f"want the {n} lines of the log first: {lines()}"
        t0 = time.monotonic()
        pid = deny(w, ev, "root", "connect tcp {I} 80", "errno EPERM")
        assert wait_until(lambda: f'"pid":{pid},' in "".join(lines()), PATIENCE, 0.05), lines()
        print(f"--follow showed the new denial after {(time.monotonic() - t0) * 1000:.0f} ms")
        p.send_signal(signal.SIGTERM)
        assert p.wait(PATIENCE) == 0
    finally:
        end_popen(p)


def test_agent_exit_keeps_enforcement(w, agent):
    """The agent exits 0 on SIGTERM and removes its lock; the guard stays, and events reads
    the ring buffer again."""
    _, ev = agent
    t = w.t
    ev.proc.send_signal(signal.SIGTERM)
    assert ev.proc.wait(PATIENCE) == 0, ev.stderr()
    assert not os.path.exists(agent_pidfile())
    assert_guarded(ev.cg)
    before = Attempt(w, w.vg, ev.gid)
    assert probe(t, ev.cg, f"sendto {t.rogue_dns} 53") == "sent 0/1 errno EPERM"
    before.expect(denied={"dns": 1})
    recs, _ = json_lines(run_vg(w.vg, "events", "--json").stdout)
    assert any(x.get("reason") == "dns" and x.get("cgroup_id") == ev.gid for x in recs), recs
