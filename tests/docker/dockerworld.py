"""dockerworld - one test's world of the Docker suite, on tests/lib/vgdocker.py.

    def test_x(world, vg):                       # tests/docker/conftest.py's fixture
        c = world.client()                       # in the slice, the VPN container's netns
        g = world.guard_slice()                  # vgguard.Guard, tunnel mode
        a = world.agent(*world.by_name(c))       # attach --container ... as the agent
        Attempt(world.world, vg, g.gid)          # the far side (tests/lib/vgworld.py)

A DockerWorld is the test's own VPN container (--network none, IPv6 on), topology HOME moved
into its network namespace (the wire and the tunnel built there), the cgroup parents of the
guarded containers (vpnguard.slice and byname.slice below the test's own cgroup in the
topology's root), and what the test adds. close() removes it all, in the order that works:
agents by PID, guards, the test's processes, every guard of its cgroups (detached while the
cgroups exist), HOME parked, the containers by ID, then the cgroups and what the runtime left
of them in the v1 hierarchies of a hybrid layout.
"""
import json
import os
import signal
import subprocess
import time

from vgdocker import SLEEP, Container, rm_cgroup_parent
from vgguard import Guard, drop_killed_agent_pidfile, pin_root
from vgproc import end_popen, wait_until
from vgworld import World, run_vg, status_json


class Agent:
    """`vpnguard-bpf attach ARGS --log LOG` as the foreground agent (DOCKER_HOST the engine's);
    running once it says so; stop() ends it by PID: (seconds it took, exit status)."""

    def __init__(self, vg, engine, args, log, out):
        self.vg, self.e, self.args, self.log, self.out = vg, engine, list(args), log, out
        self.proc = None

    def start(self):
        with open(self.out, "ab") as out:
            self.proc = subprocess.Popen([self.vg, "attach"] + self.args + ["--log", self.log],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                         env=self.e.env)
        want = f"agent running (pid {self.proc.pid})"
        ok = wait_until(lambda: self.proc.poll() is not None or want in self.output(), 30, 0.1)
        assert ok and self.proc.poll() is None, \
            f"the agent did not start (exit {self.proc.poll()}):\n{self.output()}"
        return self

    def output(self):
        try:
            with open(self.out, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def events(self, event=None):
        out = []
        try:
            with open(self.log, errors="replace") as f:
                for line in f:
                    try:
                        r = json.loads(line)
                    except ValueError:
                        continue
                    if event is None or r.get("event") == event:
                        out.append(r)
        except OSError:
            pass
        return out

    def hup(self):
        self.proc.send_signal(signal.SIGHUP)

    def stop(self, sig=signal.SIGTERM, grace=10):
        if self.proc is None:
            return None
        t0 = time.monotonic()
        rc = end_popen(self.proc, sig, grace)
        took = time.monotonic() - t0
        drop_killed_agent_pidfile(self.proc)
        self.proc = None
        return took, rc



class DockerWorld:
    """One test's world (see the module's docstring) in a ContainerTopology t that outlives
    it: w.vpn the VPN container (HOME is its namespace), w.slice and w.byname_parent the
    cgroup parents (below the test's own cgroup w.cg), w.world the far side."""

    def __init__(self, engine, topo, vg, tunnel=True):
        self.e, self.t, self.vg, self.tunnel = engine, topo, vg, tunnel
        self.s = self.vpn = self.world = self.cg = None
        self.containers, self.guards, self.agents = [], [], []

    def __enter__(self):
        try:
            self.up()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def up(self):
        # The VPN container's suffix is the test's: its containers' names and its cgroup.
        self.s, name, cid, err = self.e.take_vpn()
        if cid:
            self.vpn = Container(self.e, cid, name)
            self.containers.append(self.vpn)
        assert err is None, err
        assert self.vpn.pid > 0, "the VPN container does not run"
        self.cg = self.t.cgroup(f"w{self.s}")
        self.slice = self.t.cgroup(f"w{self.s}/vpnguard.slice")
        self.byname_parent = self.t.cgroup(f"w{self.s}/byname.slice")
        if self.tunnel:
            self.t.home_move(self.vpn.pid)
        self.world = World(self.t)

    @property
    def vpn_netns(self):
        """The tunnel's namespace as vpnguard-bpf records it: /proc/<VPN pid>/ns/net."""
        return f"/proc/{self.vpn.pid}/ns/net"

    def rel(self, cg):
        """A cgroup path below the cgroup2 mount, as status and --cgroup-parent have it."""
        return cg.rstrip("/")[len(self.t.cg2):]

    def path(self, rel):
        return self.t.cg2 + rel

    def run(self, role, parent=None, network=None, opts=(), cmd=SLEEP, start=True):
        """`docker run -d` (start=False: `docker create`) of container ROLE-SUFFIX (default: in
        the VPN container's network namespace); removed by close(), by ID, whatever happens."""
        name = f"{role}-{self.s}"
        argv = (["run", "-d"] if start else ["create"]) + [
            "--name", name, "--network", network or f"container:{self.vpn.id}"]
        if parent is not None:
            argv += ["--cgroup-parent", self.rel(parent)]
        r = self.e.docker(*argv, *opts, self.e.image, *cmd)
        cid = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else \
            self.e.inspect(name, "{{.Id}}")  # made but not started: still ours to remove
        if cid:
            self.containers.append(Container(self.e, cid, name))
        assert r.returncode == 0, f"docker {argv[0]} {name}: {r.stderr.strip()}"
        return self.containers[-1]

    def client(self, role="vgclient", parent=None, net_raw=False, cmd=SLEEP, opts=()):
        """A container of the VPN container's namespace below parent (default: the slice),
        with CAP_NET_RAW dropped (net_raw: Docker's default capabilities kept); opts: more
        `docker run` options."""
        return self.run(role, parent=self.slice if parent is None else parent, cmd=cmd,
                        opts=tuple(opts) + (() if net_raw else ("--cap-drop", "NET_RAW")))

    def guard_slice(self, agent=False, log=None):
        """The slice guarded in tunnel mode on the VPN container's tunnel (Guard asserts exit 0)."""
        g = Guard(self.vg, self.t, self.slice, "--tunnel", self.t.wg_client,
                  "--netns", self.vpn_netns, tunnel=False, agent=agent, log=log)
        self.guards.append(g)
        g.attach()
        return g

    def vg_run(self, *args, env=None, timeout=60):
        """vpnguard-bpf ARGS with the engine's DOCKER_HOST (env: more or other variables)."""
        return run_vg(self.vg, *args, env=dict(self.e.env, **(env or {})), timeout=timeout)

    def by_name(self, *containers):
        """The attach words of a guard by name on the VPN container's tunnel."""
        return ([w for c in containers for w in ("--container", c.name)] +
                ["--tunnel-container", self.vpn.name, "--tunnel", self.t.wg_client])

    def agent(self, *args, tag="agent"):
        a = Agent(self.vg, self.e, args, os.path.join(self.t.dir, f"{tag}.{self.s}.jsonl"),
                  os.path.join(self.t.dir, f"{tag}.{self.s}.out"))
        self.agents.append(a)
        return a.start()

    def close(self):
        for a in self.agents:
            _quietly(a.stop)
        for g in reversed(self.guards):  # an agent's guard before the one it replaced
            _quietly(g.close)
        for p in list(self.t.procs):
            _quietly(self.t.stop, p)
        _quietly(self._detach_all)
        _quietly(self.t.home_park)
        cg = self.cg

        def cgroups_too():  # once the containers are gone
            if cg is not None:
                self.t.cg_remove(cg)
                rm_cgroup_parent(self.rel(cg))
        if self.containers:
            self.e.rm_later([c.id for c in self.containers], then=cgroups_too)
        else:
            _quietly(cgroups_too)

    def _detach_all(self):
        """Every guard on a cgroup of this test detached, whether the cgroup exists or not; pins
        that are still left removed by hand (only ours: by guard id)."""
        if self.cg is None:
            return
        mine = self.rel(self.cg) + "/"
        for g in status_json(self.vg).get("guards", []):
            cg = g.get("cgroup") or ""
            if not cg.startswith(mine):
                continue
            # Also when the cgroup is gone (a stopped container's): detach finds the guard by
            # the path it recorded, and takes its maps' entries too, not only its pins.
            r = run_vg(self.vg, "detach", "--cgroup", self.path(cg))
            if r.returncode != 0:
                print(f"world: detach --cgroup {cg}: {r.stderr.strip()}")
            d = os.path.join(pin_root(), str(g.get("cgroup_id")))
            if os.path.isdir(d):
                print(f"world: removing leftover pins of guard {g.get('cgroup_id')} by hand")
                subprocess.run(["rm", "-rf", d], capture_output=True)


def _quietly(fn, *args):
    """Cleanup goes on past one step that fails; the failure is said."""
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - every step of a cleanup must get its turn
        print(f"world: cleanup {getattr(fn, '__name__', fn)}: {e}")
