"""vgguard - a guard of the pytest suites, and the checks of one attempt.

    with Guard(vg, topo, cg, "--allow", topo.lan_net, agent=False) as g:
        g.status()       # this guard's entry of `status --json`
        g.denied()       # {reason: count}, zeros included
    before = Snapshot(topo, g); ...; before.expect(far={"tunnel": 1}, denied={"dns": 1})

Guard() attaches tunnel mode on topo's client tunnel in HOME, with --no-agent
or as the foreground agent (agent=True: one agent per pin root, its pidfile is
agent_pidfile()). Every guard of a pin root shares its maps: hold the
kernel_lock fixture around it. Cleanup: SIGTERM to the agent by PID,
`detach --cgroup CG`, and any pins of this guard (by its cgroup id) left behind.
"""
import contextlib
import fcntl
import json
import os
import re
import signal
import subprocess
import time

from vgproc import end_popen, pid_alive, wait_until

LOCK = "/run/vpnguard-kernel-tests.lock"


def pin_root():
    """Where vpnguard-bpf pins, as it reads VPNGUARD_PIN_ROOT (tests/conftest.py sets it)."""
    return os.environ.get("VPNGUARD_PIN_ROOT", "/sys/fs/bpf/vpnguard")


def agent_pidfile():
    return os.path.join(os.environ.get("VPNGUARD_RUN_DIR", "/run/vpnguard"), "agent.pid")
# Far-side counters a row must name to see move; every other one must stay 0.
FAR = ("leak4", "leak6", "tunnel", "lan", "vpnsrc", "stray4", "igmp", "mld")
BOOKKEEPING = ("events_suppressed", "events_lost")


@contextlib.contextmanager
def kernel_lock_held(timeout=900):
    """flock on LOCK (as tests/lib/check.sh's take_kernel_test_lock): every test that
    attaches a guard holds it, because all guards share PIN_ROOT. Yields the wait (s)."""
    t0 = time.monotonic()
    fd = os.open(LOCK, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > timeout:
                    raise TimeoutError(f"could not take {LOCK} within {timeout} s")
                time.sleep(0.5)
        yield time.monotonic() - t0
    finally:
        os.close(fd)  # releases the lock


def drop_killed_agent_pidfile(proc):
    """A killed agent (proc, reaped) leaves its pidfile behind: removed if it is proc's."""
    if proc.returncode is None or proc.returncode >= 0:
        return
    try:
        with open(agent_pidfile()) as f:
            if int(f.readline().strip() or 0) == proc.pid:
                os.unlink(agent_pidfile())
    except (OSError, ValueError):
        pass


def foreign_agent():
    """PID of a running agent, or None."""
    try:
        with open(agent_pidfile()) as f:
            pid = int(f.readline().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid and pid_alive(pid) else None


class Guard:
    def __init__(self, vg, topo, cg, *extra, agent=False, tunnel=True, log=None):
        self.vg, self.t, self.cg = vg, topo, cg
        self.extra = [str(a) for a in extra]
        self.agent, self.tunnel = agent, tunnel
        self.log_path = log or os.path.join(topo.dir, f"events.{os.path.basename(cg)}.jsonl")
        self.err_path = os.path.join(topo.dir, f"attach.{os.path.basename(cg)}.err")
        self.gid = os.stat(cg).st_ino  # a guard's id is its cgroup's inode number
        self.proc = None
        self.attached = False

    def __enter__(self):
        self.attach()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def argv(self, *more):
        t = self.t
        mode = ["--tunnel", t.wg_client, "--netns", t.home_netns] if self.tunnel else []
        return ([self.vg, "attach", "--cgroup", self.cg] + mode + self.extra + list(more) +
                (["--log", self.log_path] if self.agent else ["--no-agent"]))

    def attach(self, *more):
        """Attach (again: a new policy for the same guard with more words); asserts exit 0."""
        if not self.agent:
            r = subprocess.run(self.argv(*more), capture_output=True, text=True, timeout=60)
            self.attached |= r.returncode == 0
            assert r.returncode == 0, f"attach exit {r.returncode}: {r.stderr.strip()}"
            return
        other = foreign_agent()
        assert other is None, f"another vpnguard agent runs (pid {other}, {agent_pidfile()})"
        with open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv(*more), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        self.attached = True  # from here on, cleanup detaches whatever happened
        want = re.compile(rf"agent running \(pid {self.proc.pid}\)")
        ok = wait_until(lambda: self.proc.poll() is not None or want.search(self.stderr()), 30, 0.1)
        assert ok and self.proc.poll() is None, \
            f"the agent did not start (exit {self.proc.poll()}):\n{self.stderr()}"

    def run(self, argv, user="root"):
        """argv inside the guard's cgroup, in HOME, as user; its last stdout line."""
        r = self.t.run(argv, cg=self.cg, netns=self.t.home, user=None if user == "root" else user)
        return (r.stdout.strip().splitlines() or [""])[-1]

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def status(self):
        r = subprocess.run([self.vg, "status", "--json"], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            return None
        for g in json.loads(r.stdout).get("guards", []):
            if g.get("cgroup_id") == self.gid:
                return g
        return None

    def denied(self):
        return dict((self.status() or {}).get("denied") or {})

    def events(self):
        out = []
        try:
            with open(self.log_path, errors="replace") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        except OSError:
            pass
        return out

    def close(self):
        if self.proc is not None:
            end_popen(self.proc, signal.SIGTERM, grace=10)
            drop_killed_agent_pidfile(self.proc)
            self.proc = None
        if self.attached:
            r = subprocess.run([self.vg, "detach", "--cgroup", self.cg], capture_output=True,
                               text=True, timeout=60)
            if r.returncode != 0:
                print(f"guard: detach --cgroup {self.cg} failed: {r.stderr.strip()}")
            d = os.path.join(pin_root(), str(self.gid))
            if os.path.isdir(d):  # never leave our pins behind (only ours: by guard id)
                print(f"guard: removing leftover pins of guard {self.gid} by hand")
                for n in os.listdir(d):
                    try:
                        os.unlink(os.path.join(d, n))
                    except OSError:
                        pass
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            self.attached = False


def _meets(got, want):
    if want == "*":
        return True
    if isinstance(want, str) and want.startswith(">="):
        return got >= int(want[2:])
    return got == int(want)


class Snapshot:
    """The far-side counters and the guard's denials before an attempt; expect()
    compares what moved since: named ones as asked (N, ">=N" or "*"), every
    other far counter and reason (but the event bookkeeping) at 0."""

    def __init__(self, topo, guard=None):
        self.t, self.g = topo, guard
        self.far = topo.counters()
        self.denied = guard.denied() if guard else {}

    def expect(self, far=None, denied=None, settle=0.3):
        far, denied = dict(far or {}), dict(denied or {})
        self.t.settle(settle)
        now_far = self.t.counters()
        moved = {k: now_far.get(k, 0) - self.far.get(k, 0) for k in set(FAR) | set(far)}
        bad = {k: v for k, v in moved.items() if not _meets(v, far.get(k, 0))}
        assert not bad, f"far side moved {moved}, wanted {far or 'nothing'}"
        if self.g is None:
            return moved
        now = self.g.denied()
        dmoved = {k: now.get(k, 0) - self.denied.get(k, 0) for k in now if k not in BOOKKEEPING}
        bad = {k: v for k, v in dmoved.items() if not _meets(v, denied.get(k, 0))}
        assert not bad, f"denials moved {({k: v for k, v in dmoved.items() if v})}, " \
                        f"wanted {denied or 'none'}"
        return moved
