"""vgtunnel - what the tunnel suites (tests/kernel/test_tunnel_*.py) and the bash topology's
self-test (tests/kernel/test_topology.py) need beyond vgtopo, vgguard and vgworld.

    with tunnel_world(loopback=True) as w: ...   # lock, Topology, World, listeners, cgroup;
                                                 # afterwards: nothing of it left (asserted)
    set_state(gid, CLOSED); set_state(gid, OPEN, boottime_ns() + 60 * 10**9)
    fl = Floods(w, cg); ...; fl.stop()           # UDP and TCP floods to the Internet host
    logged(g, "tunnel_up", since, ifindex=7)     # a record of the agent's log
    b = BashTopo(); b.sh('leak_count'); b.close()   # tests/lib/topology.sh in one bash

Floods run until stopped (SIGTERM: vgprobe prints its result line then), so a loaded
machine never outlasts a fixed flood; their TCP socket is destroyed afterwards (it would
retransmit into later attempts once the path opens again).

BashTopo keeps ONE bash for a world's lifetime, reading scripts from a pipe: the library
keeps its state in shell variables (the PIDs of wireguard-go and of what topo_spawn
started) and its processes as that shell's children, which bash reaps. A world built by
one `bash -c` and changed by another would leave its wireguard-go to PID 1, which on this
machine never reaps (zombies for good).
"""
import contextlib
import os
import select
import signal
import subprocess
import tempfile
import time

from vgguard import agent_pidfile, kernel_lock_held, pin_root
from vgproc import cgroup2_mount, end_popen, pid_alive
from vgtopo import Topology
from vgworld import Listener, World

HERE = os.path.dirname(os.path.abspath(__file__))
TOPOLOGY_SH = os.path.join(HERE, "topology.sh")
STATE_WRITE = os.path.join(os.path.dirname(HERE), "tools", "state_write.py")
PY = "/usr/bin/python3"
P, LP = 5002, 7001      # TCP listeners: in INET (any address), on HOME's loopback (dual stack)
OPEN, CLOSED = 0, 1     # vg_state.state


# -- the guard's state, the clock -------------------------------------------------
def boottime_ns():
    """The clock of vg_state's lease deadline."""
    return time.clock_gettime_ns(time.CLOCK_BOOTTIME)


def _hex(n, v):
    return [f"{b:02x}" for b in int(v).to_bytes(n, "little")]


def set_state(gid, state, deadline_ns=0):
    """vg_state[gid] = {state, lease deadline} with bpftool, as an operator (or a dying
    agent) would write it."""
    path = os.path.join(pin_root(), "vg_state")
    r = subprocess.run(["bpftool", "map", "update", "pinned", path, "key", "hex"] + _hex(8, gid) +
                       ["value", "hex"] + _hex(4, state) + ["00"] * 4 + _hex(8, deadline_ns),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"bpftool map update {path}: {r.stderr.strip()}"


def state_write(gid, state, deadline_ns=0):
    """The same by bpf(2) from tests/tools/state_write.py; the boot time just before it."""
    r = subprocess.run([PY, STATE_WRITE, os.path.join(pin_root(), "vg_state"), str(gid),
                        str(state), str(deadline_ns)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.strip().isdigit(), f"state_write.py: {r.stderr.strip()}"
    return int(r.stdout)


# -- the agent's log --------------------------------------------------------------
def logged(g, event, since=0, ifindex=None):
    """Guard g's agent logged `event` in its records since index `since` (tunnel_* records
    only for g's cgroup; with ifindex, only for that interface)."""
    for r in g.events()[since:]:
        if r.get("event") != event:
            continue
        if event.startswith("tunnel_") and r.get("cgroup_id") != g.gid:
            continue
        if ifindex is not None and r.get("ifindex") != ifindex:
            continue
        return True
    return False


# -- traffic ---------------------------------------------------------------------
class Floods:
    """vgprobe floods from cgroup cg in HOME to the Internet host, running until stop():
    "udp" unconnected to port 9, "tcp" to the INET listener, or "udp-connected"/
    "udp-unconnected" (every 100 us: a reaction time is read from them)."""

    ARGS = {"udp": ["udp", "{I}", "9", "--unconnected"], "tcp": ["tcp", "{I}", str(P)],
            "udp-connected": ["udp", "{I}", "9", "--interval-us", "100"],
            "udp-unconnected": ["udp", "{I}", "9", "--interval-us", "100", "--unconnected"]}

    def __init__(self, w, cg, kinds=("udp", "tcp"), seconds=60, user=None):
        self.t = t = w.t
        self.procs, self.results, self.errs = {}, {}, {}
        for kind in kinds:
            tag = f"flood.{kind}.{time.monotonic_ns()}"
            out, self.errs[kind] = (os.path.join(t.dir, tag + x) for x in (".out", ".err"))
            argv = [t.vgprobe, "flood"] + [a.format(I=t.inet_host) for a in self.ARGS[kind]] + \
                ["--seconds", str(seconds)]
            with open(out, "w") as fo, open(self.errs[kind], "w") as fe:
                self.procs[kind] = (t.spawn(argv, cg=cg, netns=t.home, user=user, stdout=fo,
                                            stderr=fe), out)

    def stop(self):
        """SIGTERM each flood; {kind: its result line}."""
        for kind, (p, out) in self.procs.items():
            self.t.stop(p, signal.SIGTERM, grace=10)
            with open(out) as f:
                self.results[kind] = (f.read().strip().splitlines() or [""])[-1]
        if "tcp" in self.procs:
            self.t.run(["ss", "-K", "-t", "-n", "dst", self.t.inet_host, "dport", "=", f":{P}"],
                       netns=self.t.home)
        self.procs = {}
        return self.results

    def first_failure_ns(self, kind):
        """The boot time of the flood's first refusal (vgprobe says it on stderr), or None."""
        with open(self.errs[kind]) as f:
            for line in f:
                if line.startswith("vgprobe: first failure at boottime "):
                    return int(line.split()[5])
        return None

    def __str__(self):
        return " / ".join(f"{k}: {v}" for k, v in self.results.items())


def still(read, quiet=0.5, timeout=10.0):
    """Poll read() until its value has not changed for `quiet` seconds (packets in flight
    through wireguard-go counted); that value."""
    last, since = read(), time.monotonic()
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        time.sleep(0.1)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


# -- a world of the tunnel suites ----------------------------------------------------
def leftovers(suffix, d, pids=()):
    """What is left of a world with this suffix and temp dir: namespaces, control sockets,
    the cgroup tree, the dir, processes of pids still alive."""
    cg2 = cgroup2_mount()
    paths = [f"/run/netns/vg{suffix}home", f"/run/netns/vg{suffix}inet",
             f"/var/run/wireguard/vg{suffix}wc.sock", f"/var/run/wireguard/vg{suffix}ws.sock",
             f"{cg2}/vgtest{suffix}"] + ([d] if d else [])
    return [p for p in paths if os.path.exists(p)] + \
        [f"process {p}" for p in pids if p and pid_alive(p)]


def our_dead_agent_pidfile(pids):
    """The agent pidfile, if it names one of pids (our agents) that is no longer alive."""
    try:
        with open(agent_pidfile()) as f:
            pid = int(f.readline().strip() or 0)
    except (OSError, ValueError):
        return None
    return agent_pidfile() if pid in pids and not pid_alive(pid) else None


@contextlib.contextmanager
def tunnel_world(loopback=False, lock=True):
    """The kernel lock, a Topology (routing "subnets"), its World, a TCP listener on port P
    in INET (and one on HOME's loopback, port LP) and the cgroup "guarded" (w.t, w.cg).
    Afterwards nothing of it may be left: no namespace, wireguard-go, cgroup, temp dir, pin
    of a guard recorded in w.gids, nor the pidfile of an agent of w.agent_pids."""
    with (kernel_lock_held() if lock else contextlib.nullcontext()):
        t = Topology(quiet=True)
        w = World(t)
        w.gids, w.agent_pids, pids = [], [], []
        try:
            t.up()
            Listener(t, "tcp", P)
            if loopback:
                Listener(t, "tcp", LP, "--v6", netns=t.home)
            w.cg = t.cgroup("guarded")
            w.gids.append(os.stat(w.cg).st_ino)
            yield w
        finally:
            pids = [t.wg_client_pid, t.wg_server_pid]
            suffix, d = t.suffix, t.dir
            t.down()
        left = leftovers(suffix, d, pids) + \
            [p for p in (os.path.join(pin_root(), str(g)) for g in w.gids) if os.path.exists(p)]
        stale = our_dead_agent_pidfile(w.agent_pids)
        assert not left and not stale, f"left behind: {left + ([stale] if stale else [])}"


# -- tests/lib/topology.sh, driven from Python -------------------------------------
_DONE = b"\x01vgtunnel-done "
_LOOP = r"""
. "$1" || exit 1
trap topo_down EXIT
# vgprobe in HOME as root (stderr holds only diagnostics), as the old self-test had it.
home() { ip netns exec "$TOPO_HOME" "$TOPO_VGPROBE" "$@" 2>/dev/null; }
while IFS= read -r -d '' __vgtunnel_cmd; do
	eval "$__vgtunnel_cmd" </dev/null
	printf '\n\001vgtunnel-done %d\n' "$?"
done
"""


class BashError(AssertionError):
    pass


class BashTopo:
    """One bash that sourced tests/lib/topology.sh (TOPO_QUIET=1, its log in self.log):
    sh(script) runs script in it (state and children kept between calls) and gives its
    stdout, stripped; rc is the script's exit status. close() ends the shell, whose EXIT
    trap runs topo_down; a shell that no longer answers is killed and its world removed by
    a fresh one from the saved env file (topo_load)."""

    def __init__(self, timeout=60):
        self.timeout = timeout
        fd, self.log = tempfile.mkstemp(prefix="vgtunnel-bash.", suffix=".log")
        self.p = subprocess.Popen(["bash", "--noprofile", "--norc", "-c", _LOOP, "vgtunnel",
                                   TOPOLOGY_SH], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=fd, env=dict(os.environ, TOPO_QUIET="1"))
        os.close(fd)
        self.rc, self.dir, self.suffix, self.broken = None, None, None, False

    def sh(self, script, timeout=None, check=False):
        if self.broken:
            raise BashError("the bash of this world no longer answers")
        self.p.stdin.write(script.encode() + b"\0")
        self.p.stdin.flush()
        buf, fd = b"", self.p.stdout.fileno()
        end = time.monotonic() + (timeout or self.timeout)
        while _DONE not in buf or not buf.split(_DONE)[-1].endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                self.broken = True
                why = "exited" if left > 0 else "timeout"
                raise BashError(f"bash: no answer to {script!r} ({why})\n{self.log_tail()}")
            if select.select([fd], [], [], min(left, 1.0))[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.p.wait(5)
                buf += chunk
        out, rc = buf.rsplit(_DONE, 1)
        self.rc = int(rc.strip())
        out = out.decode(errors="replace").rstrip()
        if check and self.rc != 0:
            raise BashError(f"{script!r}: exit {self.rc}: {out}\n{self.log_tail()}")
        return out

    def ok(self, script, timeout=None):
        """script's exit status is 0."""
        self.sh(script, timeout)
        return self.rc == 0

    def var(self, name):
        return self.sh(f'printf "%s" "${{{name}:-}}"')

    def up(self):
        self.sh("topo_up", timeout=120, check=True)
        self.dir, self.suffix = self.var("TOPO_DIR"), self.var("TOPO_SUFFIX")

    def log_tail(self, n=2000):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()[-n:]
        except OSError:
            return ""

    def close(self):
        """End the shell (topo_down by its EXIT trap); a world it could not remove is removed
        by another bash from the env file."""
        env = os.path.join(self.dir, "env") if self.dir else None
        saved = None
        if env and os.path.exists(env):
            with open(env) as f:
                saved = f.read()
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(0 if self.broken else 180)   # topo_down takes seconds: /proc is walked
        except subprocess.TimeoutExpired:
            end_popen(self.p, signal.SIGKILL)
        if saved and (os.path.exists(f"/run/netns/vg{self.suffix}home") or
                      os.path.exists(f"/run/netns/vg{self.suffix}inet")):
            with tempfile.NamedTemporaryFile("w", suffix=".env") as f:
                f.write(saved)
                f.flush()
                subprocess.run(["bash", "-c", '. "$1"; topo_load "$2"; topo_down', "vgtunnel",
                                TOPOLOGY_SH, f.name], capture_output=True, timeout=180,
                               env=dict(os.environ, TOPO_QUIET="1"))
        try:
            os.unlink(self.log)
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
