"""vgagent - the health agent of the kernel suites, and the services it talks to.

    a = Agent(vg, ["attach", "--config", cfg], log=path, err=errpath).start()
    r = a.log.wait(OPEN, timeout=6)       # a record, by a Python predicate
    m = a.log.mark(); a.hup(); a.log.wait(ev("reload", result="applied"), since=m)
    assert a.stop() == 0                  # SIGTERM by PID; its exit status
    Echo(t, 8080).start(); Hook(t, "tag", "--hang").start().url; Notify(t, [paths]).sock

Agent: `vpnguard-bpf ARGS` in the background, started and ended by PID (a SIGKILLed one's
pidfile removed if it is ours); Log: its JSON-lines log, read with predicates (ev, OPEN,
CLOSED, ...) since a mark. The services are tools of tests/tools run by the topology:
echo_server.py (the IP echo, HTTP or HTTPS, in INET), webhook_sink.py and notify_sink.py
(on loopback / a unix socket in the root namespace). proc_sample/vmrss/maps_libcurl read
the agent's footprint from /proc. A case's world: tests/lib/vgagentcase.py.
"""
import datetime
import json
import os
import re
import signal
import subprocess

from vgguard import agent_pidfile, foreign_agent
from vgproc import end_popen, pid_alive, wait_until
from vgworld import PY, TOOLS


def fig(msg):
    """A measured figure: printed now (pytest -s) and again at the module's end; the text,
    for an assertion message."""
    print(f"# {msg}", flush=True)
    FIGURES.append(msg)
    SESSION_FIGURES.append(msg)
    return msg


FIGURES = []
SESSION_FIGURES = []  # every module's, for the session's closing summary (tests/conftest.py)


# -- the agent's JSON-lines log -------------------------------------------------------
def rec_time(r):
    """A record's "time" (2026-12-02T00:31:55.123456Z) in unix seconds; 0 if it has none."""
    try:
        return datetime.datetime.strptime(r.get("time"), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return 0.0


def ev(name, **fields):
    """Predicate: a record of event `name` whose fields have these values."""
    return lambda r: r.get("event") == name and all(r.get(k) == v for k, v in fields.items())


OPEN = ev("state", state="open")
CLOSED = ev("state", state="closed")
STATE = ev("state")
PROBE = ev("probe")
RELOAD = ev("reload")


def ms(t0, t1):
    """Milliseconds from wall time t0 to t1, or to record t1's "time"."""
    return int(((rec_time(t1) if isinstance(t1, dict) else t1) - t0) * 1000)


class Log:
    """A JSON-lines file; `since` is a mark(): the number of whole lines before it."""

    def __init__(self, path):
        self.path = path

    def _lines(self):
        try:
            with open(self.path, errors="replace") as f:
                text = f.read()
        except OSError:
            return []
        lines = text.split("\n")
        return lines[:-1]  # the last piece is empty or a line still being written

    def mark(self):
        return len(self._lines())

    def records(self, since=0):
        out = []
        for line in self._lines()[since:]:
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if isinstance(r, dict):
                out.append(r)
        return out

    def all(self, pred=None, since=0):
        return [r for r in self.records(since) if pred is None or pred(r)]

    def count(self, pred=None, since=0):
        return len(self.all(pred, since))

    def first(self, pred, since=0):
        return next(iter(self.all(pred, since)), None)

    def wait(self, pred, since=0, timeout=5.0):
        """The first record since the mark for which pred holds, waiting for it; None."""
        wait_until(lambda: self.first(pred, since) is not None, timeout, 0.05)
        return self.first(pred, since)

    def tail(self, n=3):
        return " | ".join(json.dumps(r, sort_keys=True) for r in self.records()[-n:])


# -- the agent ------------------------------------------------------------------------
class Agent:
    """`vpnguard-bpf ARGS` in the background (stdout and stderr to the file err), started and
    ended by PID. log: the JSON-lines file it writes (its --log, or the config's [agent] log)."""

    def __init__(self, vg, args, log, err, env=None):
        self.vg, self.args = vg, [str(a) for a in args]
        self.log, self.err_path = Log(log), err
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.killed = []   # pids we SIGKILLed: their pidfile is left behind

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        other = foreign_agent()
        assert other is None, f"another vpnguard agent runs (pid {other}, {agent_pidfile()})"
        with open(self.err_path, "ab") as err:
            self.proc = subprocess.Popen([self.vg] + self.args, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err, env=self.env)
        want = f"agent running (pid {self.proc.pid})"
        ok = wait_until(lambda: self.proc.poll() is not None or want in self.stderr(), 30, 0.05)
        assert ok and self.proc.poll() is None, \
            f"the agent did not start (exit {self.proc.poll()}): {self.stderr()}"
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None and pid_alive(self.proc.pid)

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM):
        """Signal by PID and reap: the exit status (negative: the signal). One that still runs
        8 s after SIGTERM is killed, and that is a failure."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            p.send_signal(sig)
            try:
                p.wait(8)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(10)
                self.killed.append(p.pid)
                self.proc = None
                self.drop_stale_pidfile()
                raise AssertionError(f"agent {p.pid} still ran 8 s after signal {sig}: SIGKILL")
        if p.returncode == -signal.SIGKILL:
            self.killed.append(p.pid)
        self.proc = None
        self.drop_stale_pidfile()
        return p.returncode

    def drop_stale_pidfile(self):
        """A SIGKILLed agent leaves its pidfile behind: remove it if it is one of ours."""
        try:
            with open(agent_pidfile()) as f:
                pid = int(f.readline().strip() or 0)
        except (OSError, ValueError):
            return
        if pid in self.killed and not pid_alive(pid):
            os.unlink(agent_pidfile())

    def stderr(self):
        try:
            with open(self.err_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def close(self):
        if self.proc is not None:
            end_popen(self.proc, signal.SIGTERM, grace=10)
            if self.proc.returncode == -signal.SIGKILL:
                self.killed.append(self.proc.pid)
            self.proc = None
        self.drop_stale_pidfile()


def proc_sample(pid):
    """(CPU ticks utime+stime, context switches of all threads, VmRSS kB, threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    ctx = n = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                        ctx += int(line.split()[1])
            n += 1
        except OSError:
            pass
    return ticks, ctx, vmrss(pid), n


def vmrss(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def maps_libcurl(pid):
    with open(f"/proc/{pid}/maps") as f:
        return "libcurl" in f.read()


# -- configuration files --------------------------------------------------------------
def write_config(path, agent, guards):
    """[agent] with the (key, value) pairs of agent, then one [guard NAME] per (NAME, items);
    an item that is a plain string is written as it is (a bad line). Replaced atomically."""
    out = ["# vpnguard-bpf test configuration", "[agent]"]
    out += [f"{k} = {v}" for k, v in agent]
    for name, items in guards:
        out += ["", f"[guard {name}]"]
        out += [it if isinstance(it, str) else f"{it[0]} = {it[1]}" for it in items]
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(out) + "\n")
    os.rename(path + ".tmp", path)
    return path


# -- the services ---------------------------------------------------------------------
class Service:
    """A tool of tests/tools run by the topology (ended by PID), with a JSON or text log."""
    READY_HAS_PORT = True  # the ready file holds the port it listens on

    def __init__(self, t, tag, argv, netns=None, ready=None):
        self.t, self.tag, self.argv, self.netns = t, tag, argv, netns
        self.ready = ready or os.path.join(t.dir, f"{tag}.ready")
        self.p = None

    def start(self):
        if self.running():
            return self
        try:
            os.unlink(self.ready)
        except FileNotFoundError:
            pass
        with open(os.path.join(self.t.dir, "diag.log"), "ab") as diag:
            self.p = self.t.spawn(self.argv, netns=self.netns, stdout=diag, stderr=diag)
        assert wait_until(lambda: self.p.poll() is not None or os.path.exists(self.ready) and
                          (os.path.getsize(self.ready) > 0 or not self.READY_HAS_PORT), 10), \
            f"{self.tag} did not get ready"
        assert self.p.poll() is None, f"{self.tag} exited ({self.p.returncode})"
        return self

    def running(self):
        return self.p is not None and self.p.poll() is None

    def stop(self):
        if self.p is not None:
            self.t.stop(self.p)
        self.p = None

    def port(self):
        with open(self.ready) as f:
            return int(f.read().strip())


class Echo(Service):
    """tools/echo_server.py in INET on the Internet host; lines() of its request log since a
    mark: (unix time, client, status or "tls-error", path or reason)."""

    def __init__(self, t, port, tls=None, status_file=None):
        self.logf = os.path.join(t.dir, f"echo.{port}.log")
        argv = [PY, os.path.join(TOOLS, "echo_server.py"), "--addr", t.inet_host,
                "--port", str(port), "--log", self.logf]
        if tls:
            argv += ["--tls"] + list(tls)
        if status_file:
            argv += ["--status-file", status_file]
        tag = f"echo.{port}"
        super().__init__(t, tag, argv + ["--ready-file", os.path.join(t.dir, f"{tag}.ready")],
                         netns=t.inet)

    def lines(self, since=0):
        try:
            with open(self.logf) as f:
                return [line.split(None, 3) for line in f.read().splitlines()[since:]]
        except OSError:
            return []

    def mark(self):
        return len(self.lines())


class Hook(Service):
    """tools/webhook_sink.py on 127.0.0.1 (root netns): url, and posts() as (line, body)."""

    def __init__(self, t, tag, *opts):
        self.out = os.path.join(t.dir, f"{tag}.jsonl")
        open(self.out, "w").close()
        self.log = Log(self.out)
        super().__init__(t, tag, [PY, os.path.join(TOOLS, "webhook_sink.py"), "--port", "0",
                                  "--out", self.out, "--ready-file",
                                  os.path.join(t.dir, f"{tag}.ready")] + list(opts))

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port()}/vpnguard"

    def posts(self, pred=None):
        """[(line, body)] of what it received; pred(line, body) filters."""
        out = []
        for r in self.log.records():
            b = r.get("body") if isinstance(r.get("body"), dict) else {}
            if pred is None or pred(r, b):
                out.append((r, b))
        return out

    def wait(self, pred, n=1, timeout=8.0):
        wait_until(lambda: len(self.posts(pred)) >= n, timeout, 0.05)
        return self.posts(pred)


class Notify(Service):
    """tools/notify_sink.py: $NOTIFY_SOCKET for the agent, checking `checks` paths."""
    READY_HAS_PORT = False

    def __init__(self, t, checks):
        self.sock = os.path.join(t.dir, "notify.sock")
        self.out = os.path.join(t.dir, "notify.jsonl")
        self.log = Log(self.out)
        argv = [PY, os.path.join(TOOLS, "notify_sink.py"), "--socket", self.sock, "--out",
                self.out, "--ready-file", os.path.join(t.dir, "notify.ready")]
        for c in checks:
            argv += ["--check", c]
        super().__init__(t, "notify", argv)

    def msgs(self):
        """[(message with newlines as ";", record)]."""
        return [(r["msg"].strip().replace("\n", ";"), r) for r in self.log.records()]


def make_tls(d, ip):
    """A CA and a server certificate for IP (SAN IP:ip) in d: (ca.pem, srv.pem, srv.key)."""
    os.makedirs(d, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        ["openssl", "req", "-x509"] + ec + ["-days", "2", "-keyout", f"{d}/ca.key", "-out",
                                            f"{d}/ca.pem", "-subj", "/CN=vpnguard test CA",
                                            "-addext", "basicConstraints=critical,CA:TRUE",
                                            "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["openssl", "req"] + ec + ["-keyout", f"{d}/srv.key", "-out", f"{d}/srv.csr", "-subj",
                                   f"/CN={ip}"],
        ["openssl", "x509", "-req", "-in", f"{d}/srv.csr", "-CA", f"{d}/ca.pem", "-CAkey",
         f"{d}/ca.key", "-CAcreateserial", "-days", "2", "-out", f"{d}/srv.pem", "-extfile",
         f"{d}/ext"],
    ]
    with open(f"{d}/ext", "w") as f:
        f.write(f"subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    for argv in steps:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{' '.join(argv[:3])}: {r.stderr.strip()}"
    return f"{d}/ca.pem", f"{d}/srv.pem", f"{d}/srv.key"
