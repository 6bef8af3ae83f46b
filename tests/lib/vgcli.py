"""vgcli - what the command-line suites (tests/kernel/test_cli_*.py) share beyond vgworld.

    with cli_world(vg) as w:                        # kernel lock, Topology, World: w.t, w.vg
    with guard(w, "gw", "--gateway", t.inet_host) as g:     # a fresh --no-agent guard
    with guard_pair(w) as (a, b):                   # a tunnel guard A, a gateway guard B
    judge(w, g, "nobody", "sendto {D} 53", "sent 0/1 errno EPERM", denied={"dns": 1})
    with bad_targets(w) as x: run_bad(w, BAD[0], x, a_cg)   # the argument-error table
    f = Flood(w, g.cg, "udp {I} 9 --seconds 120"); ...; f.stop()["ok"]
    tc_ifindexes(vg, gid); veth_ifindex(t); json_lines(text); wait_gone(prog_ids)
    links_of(prog_ids, gids)                        # links of our programs and cgroups only

A guard made here is detached when its block ends, whatever happened inside (also an attach
that failed half-way: its map entries go with `detach --cgroup`). Rows are judged as in
test_rules.py: the whole result line (a regular expression), the far side and the denial
counters (tests/lib/vgworld.py's Attempt); a row that names a listener also wants what the
listener in INET heard, so an allowed connection is seen arriving, not just not refused.
"""
import contextlib
import json
import os
import re
import signal
import subprocess

from vgguard import Guard, kernel_lock_held
from vgproc import pid_alive, wait_until
from vgtopo import Topology
from vgworld import (Attempt, Listener, World, _bpftool_json, guard_status, probe, prog_alive,
                     run_vg, words)

# The machine may be loaded: what must happen is waited for this long, polling.
PATIENCE = 10.0


@contextlib.contextmanager
def cli_world(vg, routing="subnets"):
    """The kernel lock, a Topology and its World for a module; w.vg is the binary."""
    with kernel_lock_held() as waited, Topology(routing=routing) as t:
        if waited > 1:
            print(f"cli_world: waited {waited:.1f} s for the kernel lock")
        w = World(t)
        w.vg = vg
        yield w


@contextlib.contextmanager
def guard(w, name, *args, tunnel=False, agent=False, log=None):
    """A fresh guard of cgroup `name` (gateway words unless tunnel=True: then the topology's
    client tunnel in HOME), detached when the block ends."""
    g = Guard(w.vg, w.t, w.t.cgroup(name), *args, tunnel=tunnel, agent=agent, log=log)
    g.attached = True  # whatever a failed attach left is detached too
    try:
        g.attach()
        yield g
    finally:
        g.close()


@contextlib.contextmanager
def events_guard(w):
    """The gateway guard the events cases refuse in (the Internet's port 1080 and the resolver
    are its gateways, the LAN allowed), with the ring drained of what earlier cases left."""
    t = w.t
    with guard(w, "gw", "--gateway", f"{t.inet_host}:1080", "--gateway", t.resolver, "--allow",
               t.lan_net, "--dns", t.resolver) as g:
        run_vg(w.vg, "events", "--json")
        yield g


@contextlib.contextmanager
def guard_pair(w):
    """A: a tunnel guard `--dns {R}` (no LAN); B: a gateway guard `--gateway {I}:1080
    --allow {L}`: two policies that differ in every row of test_cli_guards.py."""
    t = w.t
    with guard(w, "multiA", "--dns", t.resolver, tunnel=True) as a, \
            guard(w, "multiB", "--gateway", f"{t.inet_host}:1080", "--allow", t.lan_net) as b:
        yield a, b


def judge(w, g, user, args, result, far=None, denied=None, listen=None, cg=None):
    """One row: vgprobe ARGS ({I}, {D}... as vgworld.words) in g's cgroup (or cg) as user.
    listen: (proto, port, what the listener in INET must report, a regular expression)."""
    t = w.t
    heard = None
    lis = Listener(t, listen[0], listen[1]) if listen else None
    try:
        before = Attempt(w, w.vg, g.gid)
        got = probe(t, cg or g.cg, words(t, args), user)
        assert re.fullmatch(result, got), f"result {got!r}, want /{result}/"
        before.expect(far=far, denied=denied)
    finally:
        if lis:
            heard = lis.stop()
    if listen:
        want = words(t, listen[2])
        assert re.fullmatch(want, heard), f"the listener heard {heard!r}, want /{want}/"


# -- the argument-error table ------------------------------------------------------
# name, exit status (a regular expression), what the one message must name, user, argv.
# {X} {X2} {LONG}: cgroups of bad_targets; {A}: an attached guard's cgroup; {ROOT}: the test
# cgroups' parent; {PLAIN}: a regular file; {NONS}: a netns path that does not exist.
BAD = [
    ("unknown flag", "2", "--bogus", "root",
     "attach --cgroup {X} --gateway {I} --no-agent --bogus"),
    ("unknown command", "2", "frobnicate", "root", "frobnicate --cgroup {X}"),
    ("missing --cgroup", "2", "--cgroup", "root", "attach --gateway {I} --no-agent"),
    ("--cgroup path that does not exist", "2", "{ROOT}/nope", "root",
     "attach --cgroup {ROOT}/nope --gateway {I} --no-agent"),
    ("--cgroup a normal directory (/tmp)", "2", "/tmp", "root",
     "attach --cgroup /tmp --gateway {I} --no-agent"),
    ("--cgroup a regular file in cgroupfs", "2", "{X}/cgroup.procs", "root",
     "attach --cgroup {X}/cgroup.procs --gateway {I} --no-agent"),
    ("--allow 10.0.0.0/33", "2", "10.0.0.0/33", "root",
     "attach --cgroup {X} --gateway {I} --allow 10.0.0.0/33 --no-agent"),
    ("--allow lan", "2", "lan", "root", "attach --cgroup {X} --gateway {I} --allow lan --no-agent"),
    ("--dns not an address", "2", "203.0.113.999", "root",
     "attach --cgroup {X} --gateway {I} --dns 203.0.113.999 --no-agent"),
    ("--gateway port 0", "2", "{I}:0", "root", "attach --cgroup {X} --gateway {I}:0 --no-agent"),
    ("--gateway port 65536", "2", "{I}:65536", "root",
     "attach --cgroup {X} --gateway {I}:65536 --no-agent"),
    ("--tunnel missing in the netns", "2", "nosuchtun0", "root",
     "attach --cgroup {X} --tunnel nosuchtun0 --netns {HOMENS} --no-agent"),
    ("--tunnel of HOME without --netns (not in this netns)", "2", "{WG}", "root",
     "attach --cgroup {X} --tunnel {WG} --no-agent"),
    ("--netns a regular file", "2", "{PLAIN}", "root",
     "attach --cgroup {X} --tunnel {WG} --netns {PLAIN} --no-agent"),
    ("--netns missing", "2", "{NONS}", "root",
     "attach --cgroup {X} --tunnel {WG} --netns {NONS} --no-agent"),
    ("--tunnel and --gateway", "2", "--tunnel", "root",
     "attach --cgroup {X} --tunnel {WG} --netns {HOMENS} --gateway {I} --no-agent"),
    ("same cgroup twice", "2", "{X}", "root",
     "attach --cgroup {X} --cgroup {X} --gateway {I} --no-agent"),
    ("detach --cgroup /tmp", "2", "/tmp", "root", "detach --cgroup /tmp"),
    ("not root: attach", "1", "root", "nobody", "attach --cgroup {X} --gateway {I} --no-agent"),
    ("not root: detach of an attached guard", "1", "root", "nobody", "detach --cgroup {A}"),
    ("not root: detach all", "1", "root", "nobody", "detach"),
    ("not root: status", "1", "root", "nobody", "status"),
    ("not root: events", "1", "root", "nobody", "events"),
    # Words are judged before the root check: a bad CIDR is that for anyone.
    ("not root: a bad CIDR", "2", "not a CIDR", "nobody",
     "attach --cgroup {X} --gateway {I} --allow 10.0.0.0/33 --no-agent"),
    ("3 cgroups, the last one missing", "2", "{ROOT}/nope", "root",
     "attach --cgroup {X} --cgroup {X2} --cgroup {ROOT}/nope --gateway {I} --no-agent"),
    # Too long for the guard record: refused as usage (2) or when recording it (1).
    ("3 cgroups, the last one's path too long to record", "[12]", "{LONGNAME}", "root",
     "attach --cgroup {X} --cgroup {X2} --cgroup {LONG} --gateway {I} --no-agent"),
    ("3 tunnel-mode cgroups, the last one's path too long", "[12]", "{LONGNAME}", "root",
     "attach --cgroup {X} --cgroup {X2} --cgroup {LONG} --tunnel {WG} --netns {HOMENS} --no-agent"),
]
BAD_IDS = [r[0] for r in BAD]
# The rows that attach to several cgroups and fail on a later one: nothing may stay behind.
BAD_MULTI = [r for r in BAD if r[0].startswith("3 ")]
LONGNAME = "x" * 200


@contextlib.contextmanager
def bad_targets(w):
    """The cgroups and files the table names; whatever a wrong command did to the cgroups is
    detached when the block ends."""
    t = w.t
    x = {"X": t.cgroup("badx"), "X2": t.cgroup("badx2"), "LONG": t.cgroup("long/" + LONGNAME)}
    plain = os.path.join(t.dir, "plainfile")
    with open(plain, "w") as f:
        f.write("not a netns\n")
    x.update(PLAIN=plain, NONS=f"/run/netns/vgnosuch{os.getpid()}", ROOT=t.cg_root,
             HOMENS=t.home_netns, LONGNAME=LONGNAME)
    keepers = [Guard(w.vg, t, x[k], tunnel=False) for k in ("X", "X2", "LONG")]
    for k in keepers:
        k.attached = True
    try:
        yield x
    finally:
        for k in keepers:
            k.close()


def run_bad(w, row, x, a_cg):
    """Run one row of BAD (cwd /); (CompletedProcess, the needle with the names filled in)."""
    _, _, needle, user, argv = row
    t = w.t
    names = dict(x, A=a_cg)
    return (run_vg(w.vg, *words(t, argv, **names).split(), user=user),
            words(t, needle, **names))


# -- floods, the kernel's views --------------------------------------------------------
class Flood:
    """`vgprobe flood ARGS` in cgroup cg in HOME until stop(), which gives its report."""
    _n = 0

    def __init__(self, w, cg, args, user=None):
        Flood._n += 1
        self.t = w.t
        self.out = os.path.join(self.t.dir, f"flood.{Flood._n}.out")
        with open(self.out, "w") as f:
            self.p = self.t.spawn([self.t.vgprobe, "flood"] + words(self.t, args).split(), cg=cg,
                                  netns=self.t.home, user=user, stdout=f,
                                  stderr=subprocess.DEVNULL)

    def alive(self):
        return self.p.poll() is None and pid_alive(self.p.pid)

    def stop(self):
        """SIGTERM (it reports then): {"line": ..., "ok": K, "failed": F, ...}."""
        self.t.stop(self.p, signal.SIGTERM, grace=10)
        with open(self.out) as f:
            line = (f.read().strip().splitlines() or [""])[-1]
        out = {"line": line}
        for k, v in re.findall(r"(\w+)=(\S+)", line):
            out[k] = int(v) if v.isdigit() else v
        return out


def links_of(prog_ids, gids):
    """The BPF links that hold one of the programs, or a vg_ program on one of the cgroups
    (by id): the machine's own vpnguard may hold links of its own."""
    progs = {p["id"]: p.get("name", "") for p in _bpftool_json("prog", "show")}
    return [lk for lk in _bpftool_json("link", "show")
            if lk.get("prog_id") in prog_ids or
            (lk.get("cgroup_id") in gids and progs.get(lk.get("prog_id"), "").startswith("vg_"))]


def tc_ifindexes(vg, gid):
    """The interfaces holding guard gid's tc program, as status --json has them from the
    kernel (Debian's bpftool does not show tcx)."""
    return sorted((guard_status(vg, gid) or {}).get("tc_ifindexes") or [])


def veth_ifindex(t):
    r = t.run(["cat", f"/sys/class/net/{t.veth_home}/ifindex"], netns=t.home, check=True)
    return int(r.stdout)


def wait_gone(prog_ids, timeout=PATIENCE):
    """Wait until none of the programs is loaded (the kernel frees them after their last
    link and pin); the ids still loaded."""
    wait_until(lambda: not any(prog_alive(i) for i in prog_ids), timeout, 0.1)
    return [i for i in prog_ids if prog_alive(i)]


def json_lines(text):
    """(the records of a JSON-lines text, how many non-empty lines are not JSON objects)."""
    recs, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(r, dict):
            recs.append(r)
        else:
            bad += 1
    return recs, bad
