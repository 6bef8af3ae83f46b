"""vgdocker - a private Docker engine and the container world of the tests/docker suite.

    with Engine() as e:                         # dockerd of our own, its image imported
        with DockerWorld(e, vg) as w:           # the VPN container, the topology in its netns
            c = w.run("vgclient", parent=w.slice, opts=("--cap-drop", "NET_RAW"))
            w.guard_slice(); c.exec("vgprobe", "sendto", w.t.inet_host, "7001")
            a = w.agent("--container", c.name, "--tunnel-container", w.vpn.name, ...)

Engine is scripts/docker-test-engine.sh in Python: Debian's docker.io (/usr/bin/docker and
dockerd: never another CLI on the PATH) with its own data and exec roots, socket
/run/vgtest-docker-SUFFIX.sock, vfs storage, and the host's firewall, forwarding and bridges
left alone (other runs count packets with nftables on this machine at the same time). No
image is pulled: the image is imported from a tarball of a root file system holding
busybox-static and a static build of tests/tools/vgprobe.c. Its environment (DOCKER_HOST,
DOCKER_CONFIG) is given to each command, never put in os.environ.

DockerWorld is one test's world: the VPN container (--network none, IPv6 on), whose network
namespace is topology HOME (ContainerTopology: the veth to INET and the wireguard-go tunnel
are built in it), the cgroup parents of the guarded containers (vpnguard.slice and
byname.slice in the topology's cgroup root), and what the test adds to it. close() removes
it all, in the order that works: agents by PID, the test's processes, every guard of its
cgroups (detached while the cgroups exist), the containers by ID, the topology, and what the
runtime left of the cgroup parents in the v1 hierarchies of a hybrid layout.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from vgguard import Guard, agent_pidfile, pin_root
from vgproc import cgroup2_mount, end_pid, end_popen, wait_until
from vgtopo import Topology, TopoError
from vgworld import REPO, World, run_vg, status_json

DOCKER = "/usr/bin/docker"
DOCKERD = "/usr/sbin/dockerd"
SLEEP = ("sleep", "100000")
# Docker turns IPv6 off in a --network none namespace; the topology's veth has IPv6 addresses.
IPV6_ON = ("--sysctl", "net.ipv6.conf.all.disable_ipv6=0",
           "--sysctl", "net.ipv6.conf.default.disable_ipv6=0")


class EngineError(RuntimeError):
    pass


def _installed(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return "install ok installed" in r.stdout


class Engine:
    """A dockerd of the tests' own; up() raises EngineError with the reason and the
    daemon's last log lines, down() is idempotent and leaves nothing behind."""

    def __init__(self):
        self.dir = self.sock = self.image = self.proc = None
        self._had_key = self._had_containerd = False

    def __enter__(self):
        self.up()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    @property
    def host(self):
        return f"unix://{self.sock}"

    @property
    def env(self):
        return dict(os.environ, DOCKER_HOST=self.host, DOCKER_CONFIG=os.path.join(self.dir, "cli"))

    @property
    def pid(self):
        return self.proc.pid if self.proc is not None else None

    def docker(self, *args, timeout=120, check=False, input=None):
        r = subprocess.run([DOCKER] + [str(a) for a in args], capture_output=True, text=True,
                           env=self.env, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise EngineError(f"docker {' '.join(map(str, args))}: exit {r.returncode}: "
                              f"{r.stderr.strip()}")
        return r

    def _answers(self):
        return self.docker("version", timeout=20).returncode == 0

    def _fail(self, why):
        tail = ""
        try:
            with open(os.path.join(self.dir, "dockerd.log"), errors="replace") as f:
                tail = "".join(f.readlines()[-15:])
        except (OSError, TypeError):
            pass
        self.down()
        raise EngineError(f"the Docker engine cannot start: {why}"
                          + (f"\ndockerd:\n{tail}" if tail else ""))

    def up(self):
        if os.geteuid() != 0:
            raise EngineError("the Docker engine needs root")
        missing = [p for p in ("docker.io", "busybox-static") if not _installed(p)]
        if missing:
            raise EngineError(f"{' '.join(missing)} not installed (sh scripts/install-deps.sh)")
        self.dir = tempfile.mkdtemp(prefix="vgdocker.", dir="/tmp")
        suffix = self.dir.rsplit(".", 1)[1]
        self.sock = f"/run/vgtest-docker-{suffix}.sock"
        self.image = f"vgtest:{suffix.lower()}"
        # dockerd writes its trust key to /etc/docker and the shims make /run/containerd/s:
        # down() puts things back as they were.
        self._had_key = os.path.exists("/etc/docker/key.json")
        self._had_containerd = os.path.exists("/run/containerd")
        os.makedirs(os.path.join(self.dir, "cli"))
        with open(os.path.join(self.dir, "daemon.json"), "w") as f:
            f.write("{}\n")
        d = self.dir
        with open(os.path.join(d, "dockerd.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [DOCKERD, "--config-file", f"{d}/daemon.json", "--data-root", f"{d}/data",
                 "--exec-root", f"{d}/exec", "--pidfile", f"{d}/dockerd.pid", "-H", self.host,
                 "--storage-driver", "vfs", "--iptables=false", "--ip6tables=false",
                 "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                 "--userland-proxy=false", "--log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_until(lambda: self.proc.poll() is not None or self._answers(), 30, 0.2)
        if not self._answers():
            self._fail(f"dockerd (pid {self.proc.pid}) does not answer on {self.sock}")
        try:
            tar = self._rootfs_tar()
        except (OSError, subprocess.CalledProcessError) as e:
            self._fail(f"cannot build the image's root file system: {e}")
        with open(tar, "rb") as f:
            r = subprocess.run([DOCKER, "import", "-", self.image], stdin=f,
                               capture_output=True, text=True, env=self.env, timeout=300)
        if r.returncode != 0:
            self._fail(f"cannot import the test image: {r.stderr.strip()}")

    def _rootfs_tar(self):
        """The image's root file system as a tarball: busybox and its applets, vgprobe."""
        root = os.path.join(self.dir, "rootfs")
        for sub in ("bin", "etc", "proc", "sys", "dev", "tmp", "run"):
            os.makedirs(os.path.join(root, sub))
        shutil.copy2("/bin/busybox", f"{root}/bin/busybox")
        applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            if a != "busybox":
                os.symlink("busybox", f"{root}/bin/{a}")
        subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                        f"{root}/bin/vgprobe", os.path.join(REPO, "tests", "tools", "vgprobe.c")],
                       check=True, capture_output=True)
        with open(f"{root}/etc/passwd", "w") as f:
            f.write("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
        with open(f"{root}/etc/group", "w") as f:
            f.write("root:x:0:\nnogroup:x:65534:\n")
        tar = os.path.join(self.dir, "rootfs.tar")
        subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True, capture_output=True)
        return tar

    def _strays(self):
        """The containerd shims of this engine (named by its exec root), by PID."""
        out = []
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "containerd-shim" in cmd and f"{self.dir}/exec/" in cmd:
                out.append(int(p))
        return out

    def down(self):
        if not self.dir:
            return
        if self.proc is not None and self.proc.poll() is None:
            ids = self.docker("ps", "-aq", timeout=30).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, timeout=120)
            end_popen(self.proc, signal.SIGTERM, grace=20)
        # Only after a SIGKILL: containers left running under their shims.
        for shim in self._strays():
            r = subprocess.run(["ps", "-o", "pid=", "--ppid", str(shim)], capture_output=True,
                               text=True)
            for child in r.stdout.split():
                end_pid(int(child), signal.SIGKILL)
            end_pid(shim, signal.SIGKILL)
        # Deepest first: the netns files and the data root the engine mounted.
        with open("/proc/self/mounts") as f:
            mounts = [ln.split()[1] for ln in f if ln.split()[1].startswith(self.dir + "/")]
        for m in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        if not self._had_key:
            try:
                os.unlink("/etc/docker/key.json")
            except OSError:
                pass
        if not self._had_containerd:
            for d in ("/run/containerd/s", "/run/containerd"):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        subprocess.run(["rm", "-rf", "--one-file-system", self.dir], capture_output=True)
        try:
            os.unlink(self.sock)
        except OSError:
            pass
        self.dir = self.proc = None

    # -- containers -------------------------------------------------------------
    def inspect(self, ref, fmt):
        r = self.docker("inspect", "-f", fmt, ref, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else None

    def rm(self, *ids):
        if ids:
            self.docker("rm", "-f", *ids, timeout=120)


def rm_cgroup_parent(rel):
    """Remove what the runtime left of a --cgroup-parent REL in the v1 hierarchies of a
    hybrid layout: runc makes the parent in each one and removes only the container's own
    directory."""
    rel = rel.strip("/")
    if not rel or ".." in rel.split("/"):
        raise ValueError(f"bad cgroup parent {rel!r}")
    v2 = cgroup2_mount()
    for h in sorted(os.listdir("/sys/fs/cgroup")):
        top = os.path.join("/sys/fs/cgroup", h)
        base = os.path.join(top, rel)
        if os.path.realpath(top) == v2 or not os.path.isdir(base):
            continue  # the cgroup v2 side is the topology's (vgtopo's cg_remove)
        for d, _, _ in sorted(os.walk(base), key=lambda x: len(x[0]), reverse=True):
            try:
                os.rmdir(d)
            except OSError:
                pass
        d = os.path.dirname(base)
        while d != top:  # the parents the runtime made on the way, when empty
            try:
                os.rmdir(d)
            except OSError:
                break
            d = os.path.dirname(d)


class ContainerTopology(Topology):
    """vgtopo's world whose HOME can be a container's network namespace: home_move(PID) makes
    it PID's (`ip netns attach`: topology.sh's topo_home_move), builds the wire, the routes and
    the tunnel (a new ifindex) in it, and leaves the old one without them (the processes still
    in it are a container's, left alone); INET, its WireGuard server and counters stay.
    home_park() takes them out of HOME again before its container goes. HOME starts as a
    namespace of its own, parked."""

    def up(self):
        super().up()
        self.home_park()

    def home_park(self):
        self._wg_stop(self.home, self.wg_client, self.wg_client_proc, "del")
        self.wg_client_proc = None
        self._ip(self.home, "link", "del", self.veth_home, check=False)
        # Only the name goes: the namespace is a container's, or it had nothing left in it.
        subprocess.run(["ip", "netns", "del", self.home], capture_output=True)
        self.home_pid = None

    def home_move(self, pid):
        if os.path.exists(self.home_netns):
            self.home_park()
        self.run(["ip", "netns", "attach", self.home, str(pid)], check=True)
        self.home_pid = pid
        self._ns_basics(self.home)
        self._home_wire()
        self._client_up()
        self._still("offwg", 0.3, 10)

    def _still(self, counter, still, timeout):
        """Wait until counter has not moved for `still` seconds: the new wire's own chatter
        (MLD reports, sent at once: vgtopo sets their intervals to 10 ms) is over."""
        last, since = None, time.monotonic()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            now = self.counters().get(counter)
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= still:
                return
            time.sleep(0.05)
        raise TopoError(f"the veth did not go quiet within {timeout} s")


def cg_of_pid(pid):
    """The cgroup v2 path of pid (its 0:: line: hybrid layouts have v1 lines too)."""
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


def netns_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


class Container:
    def __init__(self, engine, cid, name):
        self.e, self.id, self.name = engine, cid, name

    @property
    def pid(self):
        """Its init's PID now (a restart gives a new one); 0 when it is not running."""
        return int(self.e.inspect(self.id, "{{.State.Pid}}") or 0)

    @property
    def cgroup(self):
        return cg_of_pid(self.pid)

    @property
    def netns(self):
        return netns_of(self.pid)

    def exec(self, *argv, detach=False, timeout=60):
        """argv in the container (docker exec joins its cgroup and namespaces, as the
        application's own processes do); its last stdout line."""
        r = self.e.docker("exec", *(("-d",) if detach else ()), self.id, *argv, timeout=timeout)
        return (r.stdout.strip().splitlines() or [""])[-1]

    def restart(self):
        self.e.docker("restart", "-t", "0", self.id, check=True)


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
        if self.proc.returncode is not None and self.proc.returncode < 0:
            # Killed: its pidfile is left behind; drop it if it is ours.
            try:
                with open(agent_pidfile()) as f:
                    if int(f.readline().strip() or 0) == self.proc.pid:
                        os.unlink(agent_pidfile())
            except (OSError, ValueError):
                pass
        self.proc = None
        return took, rc


class DockerWorld:
    """One test's world (see the module's docstring) in a ContainerTopology t that outlives
    it: w.vpn the VPN container (HOME is its namespace), w.slice and w.byname_parent the
    cgroup parents (below the test's own cgroup w.cg), w.world the far side."""

    def __init__(self, engine, topo, vg):
        self.e, self.t, self.vg = engine, topo, vg
        # The suffix of this test's container names and cgroup.
        self.s = Topology._pick_suffix()
        self.vpn = self.world = self.cg = None
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
        self.cg = self.t.cgroup(f"w{self.s}")
        self.slice = self.t.cgroup(f"w{self.s}/vpnguard.slice")
        self.byname_parent = self.t.cgroup(f"w{self.s}/byname.slice")
        self.vpn = self.run("vgvpn", network="none", opts=IPV6_ON)
        assert self.vpn.pid > 0, "the VPN container does not run"
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

    def client(self, role="vgclient", parent=None, net_raw=False, cmd=SLEEP):
        """A container of the VPN container's namespace below parent (default: the slice),
        with CAP_NET_RAW dropped (net_raw: Docker's default capabilities kept)."""
        return self.run(role, parent=self.slice if parent is None else parent, cmd=cmd,
                        opts=() if net_raw else ("--cap-drop", "NET_RAW"))

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
        if self.containers:
            _quietly(self.e.rm, *[c.id for c in self.containers])
        _quietly(self.t.home_park)
        if self.cg is not None:
            _quietly(self.t.cg_remove, self.cg)
            _quietly(rm_cgroup_parent, self.rel(self.cg))

    def _detach_all(self):
        """Every guard on a cgroup of this test: detached while the cgroup exists, its pins
        removed by hand when it does not (only ours: by guard id)."""
        if self.cg is None:
            return
        mine = self.rel(self.cg) + "/"
        for g in status_json(self.vg).get("guards", []):
            cg = g.get("cgroup") or ""
            if not cg.startswith(mine):
                continue
            if os.path.isdir(self.path(cg)):
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


def container_cgroup_re(parent_rel):
    """What runc makes of a --cgroup-parent: PARENT/<64 hex digits of the container's ID>."""
    return re.compile(rf"{re.escape(parent_rel)}/[0-9a-f]{{64}}")

