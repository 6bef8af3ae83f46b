"""vgagent - the health agent of the kernel suites, and the services it talks to.

    from vgagent import world, case          # the fixtures (module world, per-test case)
    def test_x(case):
        a = case.agent("x", *case.guard(case.cg), "--probe-url", case.url("/ip"))
        r = a.log.wait(OPEN, timeout=6)       # a record, by a Python predicate
        m = a.log.mark(); a.hup(); a.log.wait(ev("reload", result="applied"), since=m)
        case.gsend(case.cg, 3, 3)             # 3 of 3 guarded datagrams out of the tunnel
        assert a.stop() == 0                  # SIGTERM by PID; its exit status

The world (one per test module, under the kernel lock): a vgtopo.Topology, the IP echo
(tools/echo_server.py: HTTP on 198.51.100.1:8080 in INET, gluetun's status from a file;
HTTPS on :8443 with a CA made by openssl, started on first use) and a World with this
file's counters in INET:

  gtun       guarded UDP to GPORT that came out of the tunnel
  gleak      the same on the veth (with the real IP): held at 0 by every Attempt
  echo_tun   probe connections (SYN) that came out of the tunnel
  echo_veth  probe connections on the veth: held at 0 by every Attempt

A case (one per test): fresh cgroups (cg, cg2: fresh guard ids), the agents, receivers
and nft tables it made, all ended by PID and removed after it, also on failure; then
no leak (leak4, gleak) since it began, no pins of its guards and no agent pidfile left.
"""
import datetime
import json
import os
import re
import signal
import subprocess
import time

import pytest

from vgguard import Guard, agent_pidfile, foreign_agent, kernel_lock_held, pin_root
from vgproc import end_popen, pid_alive, wait_until
from vgtopo import Topology
from vgworld import PY, TOOLS, Attempt, World, gid_of, guard_status, probe, run_vg

ECHO_PORT, TLS_PORT, GPORT = 8080, 8443, 5009


def fig(msg):
    """A measured figure: printed now (pytest -s) and again at the module's end; the text,
    for an assertion message."""
    print(f"# {msg}", flush=True)
    FIGURES.append(msg)
    return msg


FIGURES = []


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
    """`vpnguard-bpf ARGS` in the background (stdout and stderr in dir/TAG.err), started and
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


# -- the world and a case ---------------------------------------------------------------
def counters_table(t):
    return f"""
	counter gtun {{ }}
	counter gleak {{ }}
	counter echo_tun {{ }}
	counter echo_veth {{ }}
	chain pre {{
		type filter hook prerouting priority -320; policy accept;
		iifname "{t.wg_server}" udp dport {GPORT} counter name gtun
		iifname "{t.veth_inet}" udp dport {GPORT} counter name gleak
		iifname "{t.wg_server}" tcp dport {{ {ECHO_PORT}, {TLS_PORT} }} tcp flags & (syn | ack) == syn counter name echo_tun
		iifname "{t.veth_inet}" tcp dport {{ {ECHO_PORT}, {TLS_PORT} }} counter name echo_veth
	}}"""


class AgentWorld:
    def __init__(self, vg, t):
        self.vg, self.t = vg, t
        self.w = World(t)
        self.w.add_table("vgta", counters_table(t), strict=("gleak", "echo_veth"))
        self.gluetun = os.path.join(t.dir, "gluetun.status")
        self.echo = Echo(t, ECHO_PORT, status_file=self.gluetun).start()
        self._tls = None
        self.ca = None

    def tls(self):
        """The HTTPS echo on :8443 (made on first use); its CA is self.ca."""
        if self._tls is None:
            self.ca, cert, key = make_tls(os.path.join(self.t.dir, "tls"), self.t.inet_host)
            self._tls = Echo(self.t, TLS_PORT, tls=(cert, key))
        return self._tls.start()


class Case:
    """One test's cgroups, agents, receivers and INET tables; see the module docstring."""

    def __init__(self, aw, name):
        self.aw, self.vg, self.t, self.w = aw, aw.vg, aw.t, aw.w
        self.echo = aw.echo
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[-40:]
        self.dir = os.path.join(self.t.dir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.cg = self.t.cgroup(f"{self.name}/guarded")
        self.cg2 = self.t.cgroup(f"{self.name}/second")
        self.gid, self.gid2 = gid_of(self.cg), gid_of(self.cg2)
        self.agents, self.services, self.tables = [], [], set()
        self.far0 = self.w.counters()

    # words and names
    def guard(self, cg):
        """The command line of a tunnel guard of cg on the topology's tunnel."""
        return ["--cgroup", cg, "--tunnel", self.t.wg_client, "--netns", self.t.home_netns]

    def url(self, path, tls=False):
        return (f"https://{self.t.inet_host}:{TLS_PORT}" if tls else
                f"http://{self.t.inet_host}:{ECHO_PORT}") + path

    def path(self, name):
        return os.path.join(self.dir, name)

    # processes
    def agent(self, tag, *words, env=None, log=None):
        """`attach WORDS --log dir/TAG.log` as the agent; with log= given, `attach WORDS`
        (the config names the log) read from there."""
        args = ["attach"] + [str(w) for w in words]
        if log is None:
            log = self.path(f"{tag}.log")
            args += ["--log", log]
        a = Agent(self.vg, args, log, self.path(f"{tag}.err"), env)
        self.agents.append(a)
        return a.start()

    def hook(self, tag, *opts):
        h = Hook(self.t, f"{self.name}.{tag}", *opts)
        self.services.append(h)
        return h.start()

    def notify(self, checks):
        n = Notify(self.t, checks)
        self.services.append(n)
        return n.start()

    def vg_run(self, *args, timeout=60):
        return run_vg(self.vg, *args, timeout=timeout)

    def flood(self, cg, seconds):
        """Unconnected UDP to the Internet host from cg, one datagram per 5 ms."""
        with open(self.path("flood.out"), "ab") as out:
            return self.t.spawn([self.t.vgprobe, "flood", "udp", self.t.inet_host, str(GPORT),
                                 "--seconds", str(seconds), "--unconnected", "--interval-us",
                                 "5000"], cg=cg, netns=self.t.home, stdout=out,
                                stderr=subprocess.DEVNULL)

    # the guard's state
    def status(self, gid=None):
        return guard_status(self.vg, self.gid if gid is None else gid)

    def state(self, gid=None):
        g = self.status(gid)
        return g["state"] if g else "none"

    def denied(self, reason, gid=None):
        return ((self.status(gid) or {}).get("denied") or {}).get(reason, -1)

    def far(self, name):
        return self.w.counters().get(name, -1)

    def far_grows(self, name, more, timeout=3.0, start=None):
        """The far counter `name` reaches start (now, if not given) + more within timeout."""
        start = self.far(name) if start is None else start
        return wait_until(lambda: self.far(name) >= start + more, timeout, 0.1)

    def gsend(self, cg, n, want, reason="closed", far=None):
        """n guarded UDP datagrams to the Internet host from cg: want of them come out of the
        tunnel, none by the veth, and the guard's `reason` denials grow by n - want (no other
        reason moves). The agents' probes move the tunnel counters as they like."""
        a = Attempt(self.w, self.vg, gid_of(cg))
        out = probe(self.t, cg, ["sendto", self.t.inet_host, GPORT, "--count", n], timeout=10)
        spec = {"gtun": want, "tunnel": "*", "echo_tun": "*"}
        spec.update(far or {})
        try:
            a.expect(far=spec, denied={reason: n - want} if n > want else {})
        except AssertionError as e:
            raise AssertionError(f"vgprobe: '{out}'; {e}") from None
        return out

    # INET's tables
    def _nft(self, name, family, body):
        r = self.t.run_inet(["nft", "-f", "-"], input=f"table {family} {name} {{\n{body}\n}}\n")
        assert r.returncode == 0, f"nft table {name}: {r.stderr.strip()}"
        self.tables.add((family, name))

    def _nft_del(self, name, family):
        self.t.run_inet(["nft", "delete", "table", family, name])
        self.tables.discard((family, name))

    def real_ip_on(self):
        """The tunnel exits by the real address: INET rewrites the probes' source to HOME's
        real IP (at input: the counters at prerouting still see the tunnel)."""
        t = self.t
        self._nft("vgtanat", "ip", f"""
	chain innat {{
		type nat hook input priority 100; policy accept;
		ip saddr {t.vpn_ip} tcp dport {{ {ECHO_PORT}, {TLS_PORT} }} snat to {t.real_ip}
	}}""")

    def real_ip_off(self):
        self._nft_del("vgtanat", "ip")

    def echo_drop_on(self):
        """The echo's port swallows the tunnel's packets (probes time out)."""
        self._nft("vgtadrop", "inet", f"""
	chain pre {{
		type filter hook prerouting priority -300; policy accept;
		iifname "{self.t.wg_server}" tcp dport {ECHO_PORT} drop
	}}""")

    def echo_drop_off(self):
        self._nft_del("vgtadrop", "inet")

    # the end
    def close(self):
        """End and remove everything of the case; what was wrong at its end, as sentences."""
        problems = []
        for a in self.agents:
            a.close()
        for s in self.services:
            s.stop()
        for family, name in list(self.tables):
            self._nft_del(name, family)
        for cg, gid in ((self.cg, self.gid), (self.cg2, self.gid2)):
            self.vg_run("detach", "--cgroup", cg)
            if os.path.exists(os.path.join(pin_root(), str(gid))):
                problems.append(f"pins of guard {gid} left after detach")
                g = Guard(self.vg, self.t, cg)
                g.attached = True  # removes them by hand (only ours: by guard id)
                g.close()
        if not self.aw.echo.running():
            self.aw.echo.start()
        try:
            os.unlink(self.aw.gluetun)
        except FileNotFoundError:
            pass
        far = self.w.counters()
        for k in ("leak4", "gleak", "echo_veth"):
            if far.get(k, 0) != self.far0.get(k, 0):
                problems.append(f"{k} moved {far.get(k, 0) - self.far0.get(k, 0)} in this case")
        if os.path.exists(agent_pidfile()):
            problems.append(f"agent pidfile {agent_pidfile()} left")
        self.t.cg_remove(os.path.dirname(self.cg))
        return problems


@pytest.fixture(scope="module")
def world(vg):
    """The module's world (see the docstring), under the kernel lock; figures at the end."""
    del FIGURES[:]
    t0 = time.monotonic()
    with kernel_lock_held() as waited, Topology() as t:
        print(f"# world: waited {waited:.0f} s for the kernel lock, up in "
              f"{time.monotonic() - t0 - waited:.1f} s", flush=True)
        aw = AgentWorld(vg, t)
        try:
            yield aw
        finally:
            if aw._tls:
                aw._tls.stop()
            aw.echo.stop()
            if FIGURES:
                print("\n# figures:\n" + "\n".join(f"#   {f}" for f in FIGURES), flush=True)


@pytest.fixture
def case(world, request):
    """A fresh Case; after the test, its cleanup and checks: a leak since it began, pins of
    its guards after detach, or a pidfile left are an error of the test."""
    c = Case(world, request.node.name)
    try:
        yield c
    finally:
        problems = c.close()
    if problems:
        pytest.fail("after the case: " + "; ".join(problems), pytrace=False)
