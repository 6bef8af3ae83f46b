"""vgagentcase - the world and the cases of the agent suites (tests/kernel/test_agent_*.py).

    from vgagentcase import agent_world, case     # the fixtures
    def test_x(case):
        a = case.agent("x", *case.guard(case.cg), "--probe-url", case.url("/ip"))
        assert a.log.wait(OPEN, timeout=6)
        case.gsend(case.cg, 3, 3)             # 3 of 3 guarded datagrams out of the tunnel
        assert a.stop() == 0

The world (under the kernel lock, shared by consecutive test modules): a vgtopo.Topology,
the IP echo (tools/echo_server.py: HTTP on 198.51.100.1:8080 in INET, gluetun's status
from a file; HTTPS on :8443 with a CA made by openssl, started on first use) and a World
with these counters in INET:

  gtun       guarded UDP to GPORT that came out of the tunnel
  gleak      the same on the veth (with the real IP): held at 0 by every Attempt
  echo_tun   probe connections (SYN) that came out of the tunnel
  echo_veth  probe connections on the veth: held at 0 by every Attempt

A case (one per test): fresh cgroups (cg, cg2: fresh guard ids), the agents, receivers
and nft tables it made, all ended by PID and removed after it, also on failure; then
no leak (leak4, gleak) since it began, no pins of its guards and no agent pidfile left.
"""
import contextlib
import os
import re
import subprocess
import time

import pytest

from vgagent import FIGURES, Agent, Echo, Hook, Notify, make_tls
from vgguard import Guard, agent_pidfile, kernel_lock_held, pin_root
from vgproc import wait_until
from vgtopo import Topology
from vgworld import Attempt, World, gid_of, guard_status, probe, run_vg

ECHO_PORT, TLS_PORT, GPORT = 8080, 8443, 5009


# -- the world and a case ---------------------------------------------------------------
def counters_table(t):
    ports = f"{{ {ECHO_PORT}, {TLS_PORT} }}"
    return f"""
	counter gtun {{ }}
	counter gleak {{ }}
	counter echo_tun {{ }}
	counter echo_veth {{ }}
	chain pre {{
		type filter hook prerouting priority -320; policy accept;
		iifname "{t.wg_server}" udp dport {GPORT} counter name gtun
		iifname "{t.veth_inet}" udp dport {GPORT} counter name gleak
		iifname "{t.wg_server}" tcp dport {ports} tcp flags & (syn | ack) == syn counter name echo_tun
		iifname "{t.veth_inet}" tcp dport {ports} counter name echo_veth
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

    def close(self):
        if self._tls:
            self._tls.stop()
        self.echo.stop()

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
        self.name = re.sub(r"[^A-Za-z0-9_.-]", "_", name)  # a directory and a cgroup of its own
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


def _world_up(live, vg):
    stack = contextlib.ExitStack()
    try:
        t0 = time.monotonic()
        waited = stack.enter_context(kernel_lock_held())
        t = stack.enter_context(Topology())
        aw = AgentWorld(vg, t)
        stack.callback(aw.close)
    except BaseException:
        stack.close()
        raise
    print(f"# world: waited {waited:.0f} s for the kernel lock, up in "
          f"{time.monotonic() - t0 - waited:.1f} s", flush=True)
    live.update(aw=aw, stack=stack)


def _world_down(live):
    if live:
        live.pop("aw")
        live.pop("stack").close()


def _next_module_uses_world(request):
    """Does the test after this module's last one (as the session runs them) use this
    world (this module's agent_world, not a fixture of the same name elsewhere)?"""
    items = request.session.items
    mine = [i for i, it in enumerate(items) if it.getparent(pytest.Module) is request.node]
    nxt = items[mine[-1] + 1] if mine and mine[-1] + 1 < len(items) else None
    info = getattr(nxt, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("agent_world") if info else None
    return bool(defs) and defs[-1].func.__module__ == __name__


_LIVE = {}  # the world while it lives (shared by consecutive modules)


@pytest.fixture(scope="module")
def agent_world(vg, request):
    """The world (see the docstring), shared by consecutive modules that use it: a topology
    and the kernel lock each cost seconds, and every case leaves the world as it found it.
    Down, and the lock released, before a module that does not use it, when the session
    stops early, and at the latest when pytest ends. Figures at the end of each module."""
    del FIGURES[:]
    if not _LIVE:
        _world_up(_LIVE, vg)
        request.config.add_cleanup(lambda: _world_down(_LIVE))
    try:
        yield _LIVE["aw"]
    finally:
        if FIGURES:
            print("\n# figures:\n" + "\n".join(f"#   {f}" for f in FIGURES), flush=True)
        s = request.session
        if s.shouldstop or s.shouldfail or not _next_module_uses_world(request):
            _world_down(_LIVE)


@pytest.fixture
def case(agent_world, request):
    """A fresh Case; after the test, its cleanup and checks: a leak since it began, pins of
    its guards after detach, or a pidfile left are an error of the test."""
    c = Case(agent_world, f"{request.module.__name__}.{request.node.name}")
    try:
        yield c
    finally:
        problems = c.close()
    if problems:
        pytest.fail("after the case: " + "; ".join(problems), pytrace=False)
