"""vgdocker - a private Docker engine for the tests, its containers, and a topology whose HOME
is a container's network namespace.

    with Engine() as e:                          # dockerd of our own, its image imported
        s, name, cid, err = e.take_vpn()         # a new --network none container, IPv6 on
        c = Container(e, cid, name); c.exec("vgprobe", "sendto", "198.51.100.1", "9")
        with ContainerTopology() as t:           # tests/lib/vgtopo.py's world, HOME parked
            t.home_move(c.pid); ...; t.home_park()
        e.rm_later([cid], then=...); e.quiesce()

Engine is scripts/docker-test-engine.sh in Python: Debian's docker.io (/usr/bin/docker and
dockerd: never another CLI on the PATH) with its own data and exec roots, socket
/run/vgtest-docker-SUFFIX.sock, vfs storage, and the host's firewall, forwarding and bridges
left alone (other runs count packets with nftables on this machine at the same time). No
image is pulled: the image is imported from a tarball of a root file system holding
busybox-static and a static build of tests/tools/vgprobe.c. Its environment (DOCKER_HOST,
DOCKER_CONFIG) is given to each command, never put in os.environ. down() removes every
container, stops the daemon by PID (its shims too, after a SIGKILL), unmounts what it
mounted and puts /etc/docker and /run/containerd back as they were. A crash: kill() (dockerd
SIGKILLed; its containerd follows, the shims and containers stay), forget(ID) while it is down
(the engine started again will not know that container), restart() (with live-restore, so
the containers that ran are kept; it stays on for the rest of the session), end_ghost(ID, PID)
for a container the engine forgot.

ContainerTopology is topology.sh's TOPO_HOME_PID and topo_home_move: home_move(PID) builds
the wire and the tunnel in PID's namespace. tests/docker/dockerworld.py builds one test's
world on these.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from vgproc import cgroup2_mount, end_pid, end_popen, pid_alive, rmdir_quiet, wait_until
from vgtopo import Topology, TopoError
from vgworld import REPO

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
        self._spare = None       # the next VPN container: [suffix, name, Popen, id, error]
        self._removing = []      # [(Popen of docker rm -f, what to do once it is done)]

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
        self._daemon_spawn()
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

    def _daemon_spawn(self):
        d = self.dir
        with open(os.path.join(d, "dockerd.log"), "ab") as log:
            self.proc = subprocess.Popen(
                [DOCKERD, "--config-file", f"{d}/daemon.json", "--data-root", f"{d}/data",
                 "--exec-root", f"{d}/exec", "--pidfile", f"{d}/dockerd.pid", "-H", self.host,
                 "--storage-driver", "vfs", "--iptables=false", "--ip6tables=false",
                 "--ip-forward=false", "--ip-masq=false", "--bridge=none",
                 "--userland-proxy=false", "--log-level", "warn"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log)

    def _containerd_pid(self):
        """The containerd dockerd started (its pidfile in our exec root), while it runs."""
        try:
            with open(os.path.join(self.dir, "exec", "containerd", "containerd.pid")) as f:
                pid = int(f.read().strip() or 0)
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                mine = f"{self.dir}/exec/containerd/".encode() in f.read()
        except (OSError, ValueError):
            return None
        return pid if mine and pid_alive(pid) else None

    def kill(self):
        """dockerd SIGKILLed by PID, as a crash; the shims and the containers under them go
        on. Its containerd follows it (dockerd starts it with a parent-death signal) and is
        waited for; then its pidfile goes: a dockerd started again takes any live PID there,
        a zombie not yet reaped or a PID used again, for its containerd and waits for that
        one's socket for ever. Returns the PID of the containerd that went."""
        cpid = self._containerd_pid()
        end_popen(self.proc, signal.SIGKILL)
        if cpid and not wait_until(lambda: not pid_alive(cpid), 15, 0.05):
            raise EngineError(f"containerd (pid {cpid}) outlived dockerd by 15 s")
        try:
            os.unlink(os.path.join(self.dir, "exec", "containerd", "containerd.pid"))
        except FileNotFoundError:
            pass
        return cpid

    def restart(self, live_restore=True):
        """dockerd started again on the same roots after kill() (live_restore: with
        `"live-restore": true` in its config, so the containers that ran are kept; without
        it Debian's dockerd stops each one it finds running, 10 s of SIGTERM then SIGKILL,
        before it answers). Returns the wall-clock time its socket first answered /_ping
        (polled every 20 ms); raises EngineError unless that is within 30 s."""
        if self.proc is not None and self.proc.poll() is None:
            raise EngineError(f"dockerd (pid {self.proc.pid}) still runs")
        d = self.dir
        with open(os.path.join(d, "daemon.json"), "w") as f:
            f.write('{"live-restore": true}\n' if live_restore else "{}\n")
        self._daemon_spawn()
        answered = []

        def up():
            if self._ping():
                answered.append(time.time())
            return answered or self.proc.poll() is not None
        wait_until(up, 30, 0.02)
        if not answered:
            raise EngineError(f"dockerd (pid {self.proc.pid}) does not answer on {self.sock} "
                              "after a restart")
        return answered[0]

    def _ping(self):
        """GET /_ping on the socket, as the engine's clients ask it (no CLI in between)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(self.sock)
                s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
                return s.recv(64).split(b" ")[1:2] == [b"200"]
        except (OSError, IndexError):
            return False

    def forget(self, cid):
        """While the engine is down: its state of container cid moved out of its data root,
        so the engine started again does not know the container, which runs on under its
        shim (a ghost). Renamed, not removed: the container's mounts are inside."""
        if self.proc is not None and self.proc.poll() is None:
            raise EngineError("forget() needs the engine down")
        os.rename(os.path.join(self.dir, "data", "containers", cid),
                  os.path.join(self.dir, "data", f"forgotten-{cid}"))

    def end_ghost(self, cid, pid):
        """A container the engine no longer knows, pid its init: every process of its cgroup
        and its shim ended by PID, its cgroup removed (v2, and the v1 hierarchies of a hybrid
        layout). Returns the PIDs ended."""
        rel = cg_of_pid(pid)
        shim = _ppid(pid)
        try:
            with open(f"/proc/{shim}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = ""
        if not ("containerd-shim" in cmd and cid in cmd and f"{self.dir}/exec/" in cmd):
            shim = None  # not (or no longer) its shim: not ours to end
        ended = []
        v2 = cgroup2_mount()
        if rel and rel != "/":
            ended = _cgroup_pids(v2 + rel)
            for p in ended:
                end_pid(p, signal.SIGKILL)
        if shim:
            end_pid(shim, signal.SIGKILL)
            ended.append(shim)
        if rel and rel != "/" and cid in rel:
            for h in sorted(os.listdir("/sys/fs/cgroup")):
                d = os.path.join("/sys/fs/cgroup", h) + rel
                if os.path.isdir(d):
                    wait_until(lambda d=d: rmdir_quiet(d), 5, 0.05)
            if os.path.isdir(v2 + rel):
                wait_until(lambda: rmdir_quiet(v2 + rel), 5, 0.05)
        return ended

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
        try:
            self.quiesce()
        except Exception as e:  # noqa: BLE001 - the engine goes whatever happened
            print(f"engine: {e}")
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

    # A container takes the engine a second or two to make and to remove, and a test makes
    # and removes a few. So the next test's VPN container is made while this test runs, and
    # a test's containers are removed while the next one runs: each one still serves exactly
    # one test and is removed by ID.
    def _spare_start(self):
        s = Topology._pick_suffix()
        name = f"vgvpn-{s}"
        p = subprocess.Popen([DOCKER, "run", "-d", "--name", name, "--network", "none",
                              *IPV6_ON, self.image, *SLEEP], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self._spare = [s, name, p, None, None]

    def _spare_done(self):
        sp = self._spare
        if sp is None or sp[2] is None:
            return
        out, err = sp[2].communicate(timeout=180)
        ok = sp[2].returncode == 0 and out.strip()
        # Made but not started: still ours to remove.
        sp[3] = out.strip().splitlines()[-1] if ok else self.inspect(sp[1], "{{.Id}}")
        sp[4] = None if ok else f"docker run {sp[1]}: {err.strip()}"
        sp[2] = None

    def take_vpn(self):
        """A new VPN container (--network none, IPv6 on) for one test: (suffix, name, id,
        error or None); the next test's is started at once."""
        if self._spare is None:
            self._spare_start()
        self._spare_done()
        s, name, _, cid, err = self._spare
        self._spare_start()
        return s, name, cid, err

    def rm_later(self, ids, then=None):
        """docker rm -f IDS in the background, then `then()`; what the previous call started
        is finished first."""
        self.reap()
        p = subprocess.Popen([DOCKER, "rm", "-f", *ids], env=self.env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._removing.append((p, then))

    def reap(self):
        while self._removing:
            p, then = self._removing.pop(0)
            try:
                p.wait(120)
            except subprocess.TimeoutExpired:
                end_popen(p)
            if then is not None:
                try:
                    then()
                except Exception as e:  # noqa: BLE001 - the next removal gets its turn
                    print(f"engine: after docker rm: {e}")

    def quiesce(self):
        """Nothing of the engine's in flight: removals done, the spare made."""
        self.reap()
        self._spare_done()


def _ppid(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def _cgroup_pids(path):
    """The PIDs in a cgroup v2 directory and below it."""
    out = []
    for d, _, _ in os.walk(path):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


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
        self._still("offwg", 0.1, 10)

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
        self._pid = None

    @property
    def pid(self):
        """Its init's PID (0 when it is not running), asked once per start."""
        if not self._pid:
            self._pid = int(self.e.inspect(self.id, "{{.State.Pid}}") or 0)
        return self._pid

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
        self._pid = None  # a new init, a new cgroup, maybe a new namespace
        self.e.docker("restart", "-t", "0", self.id, check=True)


def container_cgroup_re(parent_rel):
    """What runc makes of a --cgroup-parent: PARENT/<64 hex digits of the container's ID>."""
    return re.compile(rf"{re.escape(parent_rel)}/[0-9a-f]{{64}}")

