"""The guard of the real-client tests: `vpnguard-bpf attach` as the foreground agent.

    with Guard(vg, topo, cg) as g:      # attach ... --log DIR/events.jsonl; detach on exit
        g.status()                      # this guard's entry of `status --json`
        g.denied()                      # {reason: count}

One agent per run directory (its pidfile is $VPNGUARD_RUN_DIR/agent.pid, default
/run/vpnguard) and pins under $VPNGUARD_PIN_ROOT (default /sys/fs/bpf/vpnguard):
tests/conftest.py gives each session its own; hold the kernel_lock fixture around it.
Cleanup: SIGTERM to the agent by PID, `detach --cgroup CG`, and any pins of this
guard (by its cgroup id) that detach left behind.
"""
import json
import os
import re
import signal
import subprocess

from vgguard import agent_pidfile, drop_killed_agent_pidfile, foreign_agent, pin_root
from vgproc import end_popen, wait_until



class Guard:
    def __init__(self, vg, topo, cg, extra=()):
        self.vg, self.t, self.cg = vg, topo, cg
        self.extra = list(extra)
        self.log_path = os.path.join(topo.dir, "events.jsonl")
        self.err_path = os.path.join(topo.dir, "agent.err")
        self.gid = os.stat(cg).st_ino  # a guard's id is its cgroup's inode number
        self.proc = None
        self.attached = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def argv(self):
        t = self.t
        return [self.vg, "attach", "--cgroup", self.cg, "--tunnel", t.wg_client,
                "--netns", t.home_netns, "--dns", t.resolver, "--log", self.log_path] + self.extra

    def start(self):
        other = foreign_agent()
        assert other is None, f"another vpnguard agent runs (pid {other}, {agent_pidfile()})"
        with open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        self.attached = True  # from here on, cleanup detaches whatever happened
        want = re.compile(rf"agent running \(pid {self.proc.pid}\)")
        ok = wait_until(lambda: self.proc.poll() is not None or want.search(self.stderr()), 30, 0.1)
        assert ok and self.proc.poll() is None, \
            f"the agent did not start (exit {self.proc.poll()}):\n{self.stderr()}"
        g = self.status()
        assert g is not None, f"status --json shows no guard {self.gid}:\n{self.stderr()}"
        assert wait_until(lambda: (self.status() or {}).get("tunnel_present"), 10, 0.2), \
            f"the guard does not see its tunnel: {self.status()}"

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def status_all(self):
        r = subprocess.run([self.vg, "status", "--json"], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:
            return {}
        try:
            return json.loads(r.stdout)
        except ValueError:
            return {}

    def status(self):
        for g in self.status_all().get("guards", []):
            if g.get("cgroup_id") == self.gid:
                return g
        return None

    def denied(self):
        g = self.status() or {}
        return {k: v for k, v in (g.get("denied") or {}).items() if v}

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

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

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
