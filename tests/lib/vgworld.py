"""vgworld - what the kernel suites share beyond vgtopo and vgguard.

    w = World(topo)                              # a Topology and the counter tables of a suite
    w.add_table("vgtt", "counter third { } ...") # one more nft table in INET, strict or not
    a = Attempt(w, vg, gid); ...; a.expect(far={"tunnel": 3}, denied={"dns": 1})
    probe(topo, cg, "sendto 198.51.100.1 9", user="nobody")   # vgprobe's result line
    run_vg(vg, "status", "--json"); guard_status(vg, gid); assert_guarded(cg)

The far side: every counter of vgtopo's table (tests/lib/vgnft.py), the extra tables'
counters, and "stray", the other IPv4 on the veth less the ICMP errors about the VPN
server's own WireGuard datagrams ("wgicmp": HOME's kernel answering a client port that a
deleted tunnel left, carrying nothing of any client). An Attempt waits (generously: the
machine may be loaded, wireguard-go moves packets in userspace) for every counter it names
to reach its minimum, lets stragglers arrive, then wants every counter it does not name
at 0 and every denial reason it does not name unmoved (the event bookkeeping aside).
"""
import contextlib
import json
import os
import signal
import subprocess
import time

import vgnft
from vgguard import BOOKKEEPING, Guard, agent_pidfile, kernel_lock_held, pin_root
from vgproc import end_popen, wait_until, wrap_argv
from vgtopo import Topology

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOLS = os.path.join(REPO, "tests", "tools")
PY = "/usr/bin/python3"

# One vg_ program per cgroup hook, as `bpftool cgroup show` has them.
PROGS = [("cgroup_inet4_connect", "vg_connect4"), ("cgroup_inet6_connect", "vg_connect6"),
         ("cgroup_inet_egress", "vg_egress"), ("cgroup_inet_sock_create", "vg_sock_create"),
         ("cgroup_setsockopt", "vg_setsockopt"), ("cgroup_udp4_sendmsg", "vg_sendmsg4"),
         ("cgroup_udp6_sendmsg", "vg_sendmsg6")]
GUARD_PINS = ("connect4", "connect6", "egress", "sendmsg4", "sendmsg6", "setsockopt", "sock_create")
MAP_PINS = ("vg_policy", "vg_state", "vg_guards", "vg_tunnels", "vg_counters", "vg_ratelimit",
            "vg_events", "vg_tundev")
# The far-side counters an Attempt holds at 0 unless named.
FAR = ("leak4", "leak6", "tunnel", "lan", "vpnsrc", "stray", "wgicmp", "igmp", "mld")


# -- vpnguard-bpf ---------------------------------------------------------------
def run_vg(vg, *args, user=None, env=None, cwd="/", timeout=60):
    """vpnguard-bpf ARGS (as user, every privilege dropped); the CompletedProcess."""
    argv = [vg] + [str(a) for a in args]
    if user is not None and user != "root":
        argv = wrap_argv(argv, user=user)
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
                          stdin=subprocess.DEVNULL)


def status_json(vg):
    r = run_vg(vg, "status", "--json", timeout=30)
    assert r.returncode == 0, f"status --json: exit {r.returncode}: {r.stderr.strip()}"
    return json.loads(r.stdout)


def guard_status(vg, gid):
    """The guard whose cgroup id is gid in `status --json`, or None."""
    for g in status_json(vg).get("guards", []):
        if g.get("cgroup_id") == gid:
            return g
    return None


def guard_denied(vg, gid):
    return dict((guard_status(vg, gid) or {}).get("denied") or {})


def gid_of(cg):
    """A guard's id: its cgroup's inode number."""
    return os.stat(cg).st_ino


def cg_rel(cg2, cg):
    """A cgroup path as status shows it: below the cgroup2 mount."""
    return cg.rstrip("/")[len(cg2):]


# -- what the kernel holds ------------------------------------------------------
def _bpftool_json(*args):
    r = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True, timeout=60)
    t = r.stdout.strip()
    return json.loads(t) if r.returncode == 0 and t else []


def cg_progs(cg, ids=False):
    """[(attach type, name)] of the programs attached to cg itself, sorted (ids: with their ids)."""
    out = [(p.get("attach_type"), p.get("name")) + ((p.get("id"),) if ids else ())
           for p in _bpftool_json("cgroup", "show", cg)]
    return sorted(out)


def assert_guarded(cg):
    got = cg_progs(cg)
    assert got == PROGS, f"bpftool cgroup show {cg}: {got} (want one vg_ program on each of 7 hooks)"


def assert_unguarded(cg):
    got = cg_progs(cg)
    assert got == [], f"bpftool cgroup show {cg}: {got} (want no programs)"


def cg_prog_ids(cg):
    return sorted(p.get("id") for p in _bpftool_json("cgroup", "show", cg))


def prog_alive(pid):
    return bool(pid) and subprocess.run(["bpftool", "prog", "show", "id", str(pid)],
                                        capture_output=True).returncode == 0


def tc_prog_id(gid):
    """The id of guard gid's tc program (its pin), or None."""
    p = _bpftool_json("prog", "show", "pinned", os.path.join(pin_root(), str(gid), "tc_egress"))
    if isinstance(p, list):
        p = p[0] if p else {}
    return p.get("id")


def vg_links():
    """[(type, program name, link id)] of every BPF link whose program is vg_*."""
    names = {p["id"]: p.get("name", "") for p in _bpftool_json("prog", "show")}
    return [(lk.get("type"), names.get(lk.get("prog_id"), ""), lk.get("id"))
            for lk in _bpftool_json("link", "show")
            if names.get(lk.get("prog_id"), "").startswith("vg_")]


def map_dump(name):
    """The entries of a pinned map, as bpftool formats them ({"key":..., "value":...})."""
    return [e.get("formatted", e) for e in _bpftool_json("map", "dump", "pinned",
                                                          os.path.join(pin_root(), name))]


def map_refs(name, gid):
    """Entries of a pinned map whose key is gid, or names it as cgroup_id."""
    n = 0
    for e in map_dump(name):
        k = e.get("key")
        if k == gid or (isinstance(k, dict) and k.get("cgroup_id") == gid):
            n += 1
    return n


def _zero(v):
    if isinstance(v, dict):
        return all(_zero(x) for x in v.values())
    if isinstance(v, list):
        return all(_zero(x) for x in v)
    return v in (0, "", None)


def _trim(v):
    """Unused array slots (trailing zeros) only hide a difference."""
    if isinstance(v, dict):
        return {k: _trim(x) for k, x in v.items()}
    if isinstance(v, list):
        v = [_trim(x) for x in v]
        while len(v) > 1 and _zero(v[-1]) and not all(isinstance(x, int) for x in v):
            v.pop()
    return v


def state_snapshot(cgs=()):
    """What a failed command must leave alone: the pins, the policy/state/tunnel/guard maps
    (one line per entry), the programs (with ids) on cgs, the agent lock. A list of lines."""
    root = pin_root()
    out = []
    if os.path.isdir(root):
        for d, dirs, files in os.walk(root):
            for n in dirs + files:
                out.append("pin " + os.path.relpath(os.path.join(d, n), root))
    else:
        out.append(f"pin root {root} absent")
    out.sort()
    for m in ("vg_policy", "vg_state", "vg_tunnels", "vg_guards"):
        if not os.path.exists(os.path.join(root, m)):
            continue
        for e in map_dump(m):
            out.append(f"{m} {json.dumps(e.get('key'), sort_keys=True)} "
                       f"{json.dumps(_trim(e.get('value')), sort_keys=True, separators=(',', ':'))}")
    for cg in cgs:
        out.append(f"cgroup {cg}: {cg_progs(cg, ids=True)}")
    try:
        with open(agent_pidfile()) as f:
            out.append("agent lock: " + f.read().replace("\n", " | "))
    except OSError:
        out.append("agent lock: none")
    return out


def snapshot_diff(a, b):
    sa, sb = set(a), set(b)
    return [f"- {x}" for x in a if x not in sb][:8] + [f"+ {x}" for x in b if x not in sa][:8]


# -- running things in the world -------------------------------------------------
def probe(topo, cg, args, user="root", netns=None, timeout=30):
    """vgprobe ARGS (a string or a list) as user in cgroup cg (None: unguarded) and netns
    (default HOME); its result line."""
    argv = [topo.vgprobe] + (args.split() if isinstance(args, str) else [str(a) for a in args])
    r = topo.run(argv, cg=cg, netns=netns or topo.home, user=None if user == "root" else user,
                 timeout=timeout)
    return (r.stdout.strip().splitlines() or [""])[-1]


def probe_pid(topo, cg, args, user="root", netns=None, timeout=30):
    """The same, with the PID it ran as: (result line, exit status, pid)."""
    argv = [topo.vgprobe] + (args.split() if isinstance(args, str) else [str(a) for a in args])
    p = subprocess.Popen(wrap_argv(argv, cg, netns or topo.home,
                                   None if user == "root" else user),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    finally:
        end_popen(p)
    return (out.strip().splitlines() or [""])[-1], p.returncode, p.pid


class Listener:
    """`vgprobe listen PROTO PORT` in INET (or netns); stop() gives its result line."""

    def __init__(self, topo, proto, port, *opts, netns=None):
        self.t = topo
        tag = f"listen.{proto}.{port}.{int(time.monotonic() * 1000)}"
        self.ready = os.path.join(topo.dir, tag + ".ready")
        self.out = os.path.join(topo.dir, tag + ".out")
        with open(self.out, "w") as out:
            self.p = topo.spawn([topo.vgprobe, "listen", proto, str(port), "--ready-file",
                                 self.ready] + [str(o) for o in opts],
                                netns=netns or topo.inet, stdout=out, stderr=subprocess.DEVNULL)
        assert wait_until(lambda: os.path.exists(self.ready), 10), f"listener {proto}/{port}"

    def stop(self):
        self.t.stop(self.p, signal.SIGTERM)
        with open(self.out) as f:
            return (f.read().strip().splitlines() or [""])[-1]


# -- the far side -------------------------------------------------------------------
class World:
    """A Topology and the counter tables of a suite, read in one place."""

    def __init__(self, topo):
        self.t = topo
        self.tables = []     # (name, strict counter names)

    def add_table(self, name, body, strict=()):
        """table inet NAME { body } in INET; strict: its counters an Attempt holds at 0."""
        r = self.t.run_inet(["nft", "-f", "-"], input=f"table inet {name} {{\n{body}\n}}\n")
        assert r.returncode == 0, f"nft table {name}: {r.stderr.strip()}"
        self.tables.append((name, tuple(strict)))

    @property
    def far_names(self):
        return FAR + tuple(n for _, s in self.tables for n in s)

    def counters(self):
        c = self.t.counters()
        for name, _ in self.tables:
            r = self.t.run_inet(["nft", "-j", "list", "counters", "table", "inet", name])
            assert r.returncode == 0, f"nft list counters {name}: {r.stderr.strip()}"
            c.update(vgnft.parse(r.stdout))
        c["stray"] = c.get("stray4", 0) - c.get("wgicmp", 0)
        return c

    def reset(self):
        self.t.reset_counters()
        for name, _ in self.tables:
            self.t.run_inet(["nft", "reset", "counters", "table", "inet", name], check=True)

    def wait_count(self, name, minimum, timeout=10.0):
        return wait_until(lambda: self.counters().get(name, -1) >= minimum, timeout, 0.1)


def _meets(got, want):
    if want == "*":
        return True
    if isinstance(want, str) and want.startswith(">="):
        return got >= int(want[2:])
    if isinstance(want, str) and want.startswith("<="):
        return got <= int(want[2:])
    return got == int(want)


def _minimum(want):
    if want == "*":
        return 0
    if isinstance(want, str) and want.startswith(">="):
        return int(want[2:])
    if isinstance(want, str) and want.startswith("<="):
        return 0
    return int(want)


class Attempt:
    """The far side and a guard's denials before an attempt; expect() judges what moved
    since: named counters and reasons as asked (N, ">=N", "<=N" or "*"), every other far
    counter at 0 and every other reason unmoved (denied="*": not judged)."""

    def __init__(self, world, vg=None, gid=None):
        self.w, self.vg, self.gid = world, vg, gid
        self.far = world.counters()
        self.denied = guard_denied(vg, gid) if gid is not None else {}

    def moved(self):
        now = self.w.counters()
        return {k: now.get(k, 0) - self.far.get(k, 0) for k in now}

    def denials_moved(self):
        now = guard_denied(self.vg, self.gid)
        return {k: now.get(k, 0) - self.denied.get(k, 0) for k in set(now) | set(self.denied)
                if k not in BOOKKEEPING}

    def expect(self, far=None, denied=None, wait=10.0, settle=0.3):
        far = dict(far or {})
        for k, v in far.items():
            m = _minimum(v)
            if m > 0:
                wait_until(lambda k=k, m=m: self.moved().get(k, 0) >= m, wait, 0.1)
        time.sleep(settle)
        moved = self.moved()
        names = set(self.w.far_names) | set(far)
        bad = {k: moved.get(k, 0) for k in names if not _meets(moved.get(k, 0), far.get(k, 0))}
        assert not bad, f"far side moved {({k: moved.get(k, 0) for k in names})}, " \
                        f"wanted {far or 'nothing'}"
        if self.gid is not None and denied != "*":
            denied = dict(denied or {})
            d = self.denials_moved()
            bad = {k: v for k, v in d.items() if not _meets(v, denied.get(k, 0))}
            bad.update({k: 0 for k in denied if k not in d and not _meets(0, denied[k])})
            assert not bad, f"denials moved {({k: v for k, v in d.items() if v})}, " \
                            f"wanted {denied or 'none'}"
        return moved


def words(t, s, **more):
    """s with the world's names filled in: {I} the Internet host, {I6} its IPv6 twin, {D} the
    rogue resolver, {R} the listed one, {L} the LAN host, {GW}/{GW6} INET's veth addresses,
    {VPN} the tunnel's address, {REAL} the real one, {WG} the tunnel, {VETH} HOME's veth."""
    return s.format(I=t.inet_host, I6=t.inet_host6, D=t.rogue_dns, R=t.resolver, L=t.lan_host,
                    GW=t.gw_ip, GW6=t.gw_ip6, VPN=t.vpn_ip, REAL=t.real_ip, WG=t.wg_client,
                    VETH=t.veth_home, **more)


def expand(rows, users_at=1):
    """Table rows whose field users_at is "both", "root" or "nobody", as one row per user
    (the user moved to the front) and their ids "name-user"."""
    out, ids = [], []
    for row in rows:
        who = row[users_at]
        for u in (("root", "nobody") if who == "both" else (who,)):
            out.append((u,) + row[:users_at] + row[users_at + 1:])
            ids.append(f"{row[0]}-{u}")
    return out, ids


@contextlib.contextmanager
def guarded_world(vg, *guard_args, routing="subnets", cgroup="guarded", agent=False):
    """The kernel lock, a Topology, its World and one guard of cgroup `cgroup` (w.t, w.g,
    w.cg, w.vg): a module's world for rows that do not change it."""
    with kernel_lock_held(), Topology(routing=routing) as t:
        w = World(t)
        w.vg, w.cg = vg, t.cgroup(cgroup)
        with Guard(vg, t, w.cg, *guard_args, agent=agent) as g:
            w.g = g
            yield w
