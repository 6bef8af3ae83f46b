"""vgsystem - a Debian 12 booted with systemd as PID 1 (systemd-nspawn -b), for tests/system.

    tar = cached_root(["libbpf1", ...])        # debootstrap once, kept in CACHE as a tar
    debs = built_debs()                        # make deb and make deb DEB_VERSION=OLD_VERSION
    m = Machine(tar, topo); m.unpack(); m.copy_in(deb, "/root/debs/x.deb"); m.boot()
    m.run(["systemctl", "is-active", "vpnguard"]); m.systemctl("reload", "vpnguard")
    f = m.flood("udp 198.51.100.1 9 --unconnected"); ...; f.stop()   # in vpnguard.slice
    m.in_slice(["/usr/local/bin/vgprobe", "sendto", "198.51.100.53", "53"])
    m.host_cgroup("vpnguard.slice")            # the slice's cgroup as the host sees it
    m.reboot(); m.remove()                     # powered off, all of it removed (always call)

The machine's network namespace is the topology's HOME (tests/lib/vgtopo.py): its tunnel is
HOME's WireGuard interface and what leaves it is counted in INET, on the host side. What the
guard needs from nspawn is in NSPAWN_BPF (docs/system-test.md says why each):
CAP_NET_ADMIN (not given with --network-namespace-path) and the bpf() system call (not in
nspawn's allow-list); CAP_SYS_ADMIN, in nspawn's default set, already covers CAP_BPF and
CAP_PERFMON. The host's bpffs is bound at /sys/fs/bpf from a directory of this machine's own,
so the host sees its pins. Commands run through nsenter with a clean environment (this
session's VPNGUARD_PIN_ROOT means nothing inside); what must meet the container's limits
(the agent, the floods) is started by its systemd.

Cleanup, on every path: nspawn ended by PID (SIGTERM: the container halts; SIGKILL to its
PID 1 and to nspawn after a grace), its cgroups (cgroup2 and the hybrid host's name=systemd)
emptied by PID and removed, its bpffs directory, its root tree and nspawn's propagation
directory removed.
"""
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

from vgproc import cg_remove, cgroup2_mount, end_pid, pid_alive, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CACHE = os.environ.get("VG_SYSTEM_CACHE", "/var/cache/vpnguard-tests")
SUITE = "bookworm"
# Debian's registry, as this machine's apt sources name it.
MIRROR = "http://deb.debian.org/debian"
# The booted system beyond minbase: systemd as init, what the tests read with, and what a
# Debian user reads the package's man pages and completion with (test_man_page, test_completion).
BASE = ["systemd", "systemd-sysv", "dbus", "iproute2", "procps", "man-db", "bash-completion"]
OLD_VERSION = "0.0.9"
NSPAWN_BPF = ["--capability=CAP_NET_ADMIN", "--system-call-filter=bpf"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The boot clock of a loaded 2-core machine: generous.
BOOT_TIMEOUT = 120


class MachineError(RuntimeError):
    pass


def _log(msg):
    print(f"system: {msg}", flush=True)


@contextlib.contextmanager
def _flock(path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# -- the root tree, debootstrapped once ----------------------------------------------
def root_key(packages):
    """The cache key of a root with these packages (the suite, mirror and BASE included)."""
    text = json.dumps([SUITE, MIRROR, "minbase", sorted(set(BASE) | set(packages))])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def cached_root(packages):
    """CACHE/bookworm-KEY.tar: debootstrap --variant=minbase of Debian 12 with BASE and
    packages (the package's Depends and Recommends), made once and kept; (path, seconds it
    took to make, 0 when it was there)."""
    tar = os.path.join(CACHE, f"{SUITE}-{root_key(packages)}.tar")
    with _flock(os.path.join(CACHE, f"{SUITE}.lock")):
        if os.path.exists(tar):
            return tar, 0.0
        t0 = time.monotonic()
        work = tempfile.mkdtemp(prefix=f"{SUITE}-build.", dir=CACHE)
        try:
            root = os.path.join(work, "root")
            include = ",".join(sorted(set(BASE) | set(packages)))
            _log(f"debootstrap {SUITE} into {root} (once; kept as {tar})")
            r = subprocess.run(["debootstrap", "--variant=minbase", f"--include={include}",
                                SUITE, root, MIRROR], capture_output=True, text=True,
                               timeout=1800)
            if r.returncode != 0:
                raise MachineError(f"debootstrap failed ({r.returncode}):\n{r.stdout[-3000:]}"
                                   f"{r.stderr[-3000:]}")
            # The package archives are not needed again; the machine has no Internet.
            for d in ("var/cache/apt/archives", "var/lib/apt/lists"):
                p = os.path.join(root, d)
                for n in os.listdir(p):
                    if os.path.isfile(os.path.join(p, n)):
                        os.unlink(os.path.join(p, n))
            part = tar + f".part{os.getpid()}"
            subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C",
                            root, "-cf", part, "."], check=True, timeout=600)
            os.rename(part, tar)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return tar, time.monotonic() - t0


# -- the packages -------------------------------------------------------------------
def _tree_hash():
    """A hash of what `make deb` packs (tracked and untracked-not-ignored files; the tests
    aside: they are not in the package's behaviour)."""
    r = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                        "--exclude-standard"], capture_output=True, check=True)
    h = hashlib.sha256()
    for name in sorted(set(r.stdout.decode().split("\0")) - {""}):
        if name.startswith("tests/"):
            continue
        path = os.path.join(REPO, name)
        if os.path.isfile(path):
            h.update(name.encode() + b"\0")
            with open(path, "rb") as f:
                h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:12]


def _version():
    with open(os.path.join(REPO, "user", "lib", "version.h")) as f:
        return re.search(r'#define VG_VERSION "([^"]+)"', f.read()).group(1)


def built_debs():
    """{"current": path, "old": path, "version": V, "seconds": build time (0: cached)}:
    `make deb` and `make deb DEB_VERSION=OLD_VERSION` of this tree, built in a copy of it
    (what make deb packs) under CACHE/debs-HASH, not in build/deb where other sessions build,
    and kept until the tree changes."""
    out = os.path.join(CACHE, f"debs-{_tree_hash()}")
    version = _version()
    want = {"current": version, "old": OLD_VERSION}
    t0 = time.monotonic()
    with _flock(os.path.join(CACHE, "debs.lock")):
        if not all(_debs_of(out, v) for v in want.values()):
            shutil.rmtree(out, ignore_errors=True)
            src = os.path.join(out, "src")
            os.makedirs(src)
            files = subprocess.run(["git", "-C", REPO, "ls-files", "-z", "--cached", "--others",
                                    "--exclude-standard"], capture_output=True, check=True).stdout
            pack = subprocess.run(["tar", "-C", REPO, "--null", "-T", "-", "--ignore-failed-read",
                                   "-cf", "-"], input=files, capture_output=True, check=True)
            subprocess.run(["tar", "-C", src, "-xf", "-"], input=pack.stdout, check=True)
            # A make of ours must not hand its variables down to the package's own makes.
            env = {k: v for k, v in os.environ.items()
                   if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
            env["DEB_BUILD_OPTIONS"] = "nocheck"
            for v in want.values():
                _log(f"make deb DEB_VERSION={v} (a copy of the tree in {src})")
                r = subprocess.run(["make", "-s", "-C", src, "deb", f"DEB_VERSION={v}"],
                                   capture_output=True, text=True, timeout=1800, env=env)
                if r.returncode != 0:
                    raise MachineError(f"make deb DEB_VERSION={v} failed:\n{r.stdout[-2000:]}"
                                       f"{r.stderr[-4000:]}")
            os.makedirs(os.path.join(out, "deb"))
            for v in want.values():
                for n in _debs_of(os.path.join(src, "build"), v):
                    shutil.move(os.path.join(src, "build", "deb", n), os.path.join(out, "deb", n))
            shutil.rmtree(src)
            for n in os.listdir(CACHE):  # older trees' packages go
                if n.startswith("debs-") and os.path.join(CACHE, n) != out:
                    shutil.rmtree(os.path.join(CACHE, n), ignore_errors=True)
            seconds = time.monotonic() - t0
        else:
            seconds = 0.0
        paths = {}
        for kind, v in want.items():
            found = _debs_of(out, v)
            if len(found) != 1:
                raise MachineError(f"{out}/deb: want one vpnguard-bpf_{v}_*.deb, have {found}")
            paths[kind] = os.path.join(out, "deb", found[0])
    return dict(paths, version=version, seconds=seconds)


def _debs_of(out, version):
    d = os.path.join(out, "deb")
    return sorted(n for n in os.listdir(d) if n.startswith(f"vpnguard-bpf_{version}_")
                  and n.endswith(".deb")) if os.path.isdir(d) else []


def deb_field(deb, field):
    r = subprocess.run(["dpkg-deb", "-f", deb, field], capture_output=True, text=True,
                       check=True)
    return r.stdout.strip()


def runtime_packages(deb):
    """The package names of deb's Depends and Recommends (the first of alternatives), the
    versions left to the suite: what the machine needs so that apt installs it offline."""
    names = []
    for field in ("Depends", "Recommends"):
        for item in filter(None, (x.strip() for x in deb_field(deb, field).split(","))):
            names.append(item.split("|")[0].split("(")[0].split(":")[0].strip())
    return sorted(set(names))


# -- the machine --------------------------------------------------------------------
def _mount_of(fstype, option=None):
    with open("/proc/self/mounts") as f:
        for line in f:
            p = line.split()
            if len(p) > 3 and p[2] == fstype and (option is None or option in p[3].split(",")):
                return p[1]
    return None


class Machine:
    """A Debian 12 root unpacked from tar into a temp dir and booted by systemd-nspawn -b in
    topo's HOME namespace. layout: "unified" (SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1, a
    cgroup2-only tree as Debian 12 boots by default) or "hybrid" (nspawn's choice on this
    hybrid host: cgroup2 at /sys/fs/cgroup/unified inside). nspawn_bpf: what it is given for
    BPF (NSPAWN_BPF; less, to show what each is for)."""

    def __init__(self, tar, topo, layout="unified", nspawn_bpf=NSPAWN_BPF):
        assert layout in ("unified", "hybrid"), layout
        self.tar, self.t, self.layout = tar, topo, layout
        self.nspawn_bpf = list(nspawn_bpf)
        self.name = f"vgsys{topo.suffix}{layout[0]}"
        self.cg2 = cgroup2_mount()
        self.v1 = _mount_of("cgroup", "name=systemd")  # the hybrid host's systemd hierarchy
        self.cg = f"{self.cg2}/{self.name}"
        self.bpffs = f"/sys/fs/bpf/{self.name}"
        self.dir = self.root = self.proc = self.leader = None
        self.boots = []  # seconds from nspawn's start to a running system, per boot
        self._log = None

    # -- building, booting, powering off ---------------------------------------------
    def unpack(self):
        self.dir = tempfile.mkdtemp(prefix=f"{self.name}.", dir="/var/tmp")
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root, 0o755)
        subprocess.run(["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C",
                        self.root, "-xf", self.tar], check=True, timeout=600)
        vgprobe = os.path.join(REPO, "build", "vgprobe")
        shutil.copy(vgprobe, os.path.join(self.root, "usr", "local", "bin", "vgprobe"))

    def put(self, path, text, mode=0o644):
        """A file in the machine's root (path absolute inside)."""
        p = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "w") as f:
            f.write(text)
        os.chmod(p, mode)

    def copy_in(self, src, path):
        p = os.path.join(self.root, path.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        shutil.copy(src, p)
        return path

    def boot(self):
        """systemd-nspawn -b in our own cgroup (nspawn makes payload/ and supervisor/ below
        the cgroup it runs in: never the host's root); returns once the system runs."""
        os.makedirs(self.cg, exist_ok=True)
        os.makedirs(self.bpffs, exist_ok=True)
        env = {"PATH": PATH}
        if self.layout == "unified":
            env["SYSTEMD_NSPAWN_UNIFIED_HIERARCHY"] = "1"
        argv = ["systemd-nspawn", "--quiet", f"--directory={self.root}", "--boot",
                f"--machine={self.name}", "--register=no", "--keep-unit",
                f"--network-namespace-path={self.t.home_netns}",
                f"--bind={self.bpffs}:/sys/fs/bpf", "--console=read-only"] + self.nspawn_bpf
        self._log = open(os.path.join(self.dir, f"nspawn.{len(self.boots)}.log"), "wb")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            ["sh", "-c", 'echo $$ >"$0/cgroup.procs" || exit 125; exec "$@"', self.cg] + argv,
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        if not wait_until(lambda: self.proc.poll() is not None or self._find_leader(), 30, 0.05):
            raise MachineError(f"nspawn started no PID 1 within 30 s:\n{self.console()}")
        if self.proc.poll() is not None:
            raise MachineError(f"nspawn exited {self.proc.returncode}:\n{self.console()}")
        state = ""
        end = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < end and self.proc.poll() is None:
            state = self.run(["systemctl", "is-system-running"], timeout=30).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.1)
        if state not in ("running", "degraded"):
            raise MachineError(f"the machine did not boot ({state!r}, nspawn "
                               f"{self.proc.poll()}):\n{self.console()}")
        self.boots.append(time.monotonic() - t0)
        if state == "degraded":
            failed = self.run(["systemctl", "--failed", "--no-legend", "--plain"]).stdout
            _log(f"{self.name} booted degraded: {failed.strip()}")
        _log(f"{self.name} booted ({self.layout}) in {self.boots[-1]:.1f} s, PID 1 is "
             f"{self.leader} on the host")

    def _find_leader(self):
        """nspawn's child that is PID 1 of its own PID namespace."""
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/status") as f:
                    st = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            except OSError:
                continue
            if st.get("PPid") == str(self.proc.pid) and st.get("NSpid", "").split()[-1:] == ["1"]:
                self.leader = int(d)
                return True
        return False

    def console(self):
        try:
            with open(os.path.join(self.dir, f"nspawn.{len(self.boots)}.log"), "rb") as f:
                return f.read()[-3000:].decode(errors="replace")
        except (OSError, TypeError):
            return ""

    def poweroff(self, grace=60):
        """SIGTERM to nspawn (the container halts); SIGKILL to its PID 1, then nspawn,
        after grace. The seconds it took."""
        if self.proc is None:
            return 0.0
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                _log(f"{self.name} did not halt in {grace} s: SIGKILL")
                if self.leader and pid_alive(self.leader):
                    end_pid(self.leader, signal.SIGKILL)
                self.proc.kill()
                self.proc.wait(30)
        self.proc = self.leader = None
        if self._log:
            self._log.close()
            self._log = None
        return time.monotonic() - t0

    def reboot(self):
        """Power off and boot the same root again. What a reboot clears and a container's end
        does not, because the host keeps them, goes too: the pins in its bpffs and the
        guard's routing rules and tables in the namespace (HOME outlives the machine)."""
        self.poweroff()
        for n in os.listdir(self.bpffs):
            p = os.path.join(self.bpffs, n)
            shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)
        ns = self.t.home
        rules = json.loads(subprocess.run(["ip", "-n", ns, "-j", "rule", "show"],
                                          capture_output=True, text=True, check=True).stdout)
        for rule in rules:
            if rule.get("priority") in (5200, 5201):
                subprocess.run(["ip", "-n", ns, "rule", "del", "pref", str(rule["priority"])],
                               check=True)
                if rule.get("table") not in (None, "main"):
                    subprocess.run(["ip", "-n", ns, "route", "flush", "table",
                                    str(rule["table"])], capture_output=True)
        self.boot()

    def remove(self):
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self.poweroff()
            for top in (self.cg, self.v1 and f"{self.v1}/{self.name}"):
                if top and os.path.isdir(top) and not cg_remove(top, top):
                    _log(f"cannot remove cgroup {top}")
            if os.path.isdir(self.bpffs):
                shutil.rmtree(self.bpffs, ignore_errors=True)
            for d in (f"/run/systemd/nspawn/propagate/{self.name}",
                      f"/run/systemd/nspawn/unix-export/{self.name}"):
                shutil.rmtree(d, ignore_errors=True)
            if self.dir and os.path.isdir(self.dir):
                shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = self.root = None
        finally:
            signal.signal(signal.SIGINT, old)

    # -- inside -----------------------------------------------------------------------
    def run(self, argv, check=False, timeout=120, input=None):
        """argv in every namespace of the machine (as root, host privileges: a client of its
        systemd, not a test of the container's limits); the CompletedProcess."""
        if not self.leader:
            raise MachineError(f"{self.name} is not running")
        full = ["nsenter", f"--target={self.leader}", "--mount", "--uts", "--ipc", "--net",
                "--pid", "--cgroup", "--root", "--wd", "env", "-i", f"PATH={PATH}",
                "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0"] + [str(a) for a in argv]
        r = subprocess.run(full, capture_output=True, text=True, timeout=timeout, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise MachineError(f"{' '.join(map(str, argv))} in {self.name}: exit "
                               f"{r.returncode}: {r.stderr.strip()}{r.stdout[-1000:]}")
        return r

    def systemctl(self, *args, check=True, timeout=120):
        return self.run(["systemctl"] + list(args), check=check, timeout=timeout)

    def show(self, unit, *props):
        """{prop: value} of `systemctl show UNIT -p ...`."""
        r = self.systemctl("show", unit, *[f"--property={p}" for p in props])
        return dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    def host_cgroup(self, rel):
        """A cgroup of the machine (rel below its cgroup2 root) as a host path."""
        return f"{self.cg}/payload/{rel.strip('/')}"

    def status(self):
        """`vpnguard-bpf status --json` inside."""
        r = self.run(["vpnguard-bpf", "status", "--json"], check=True, timeout=60)
        return json.loads(r.stdout)

    def guard(self, cgroup="/vpnguard.slice"):
        for g in self.status().get("guards", []):
            if g.get("cgroup") == cgroup:
                return g
        return None

    def in_slice(self, argv, slice_="vpnguard.slice", user="nobody", timeout=60):
        """argv as a transient service of the machine's systemd in slice_ (so under the
        container's limits and its cgroup placement); its stdout's last line."""
        r = self.run(["systemd-run", "--quiet", "--wait", "--pipe", "--collect",
                      f"--slice={slice_}", f"--property=User={user}"] + list(argv),
                     timeout=timeout)
        return (r.stdout.strip().splitlines() or [""])[-1]

    def flood(self, args, slice_="vpnguard.slice", user="nobody"):
        return Flood(self, args, slice_, user)

    def journal(self, unit, lines=40):
        return self.run(["journalctl", "--no-pager", "-o", "cat", "-n", str(lines), "-u",
                         unit]).stdout


class Flood:
    """`vgprobe flood ARGS` as a transient service of the machine in a slice, until stop()
    (SIGTERM: it prints its report), which gives {"line":..., "ok": K, "failed": F, ...}."""
    _n = 0

    def __init__(self, m, args, slice_, user):
        Flood._n += 1
        self.m = m
        self.unit = f"vgflood{Flood._n}.service"
        self.out = f"/run/vgflood{Flood._n}.out"
        m.run(["systemd-run", "--quiet", f"--unit={self.unit}", f"--slice={slice_}",
               f"--property=User={user}", f"--property=StandardOutput=file:{self.out}",
               "--property=StandardError=journal", "--", "/usr/local/bin/vgprobe", "flood"]
              + shlex.split(args), check=True)

    def alive(self):
        return self.m.systemctl("is-active", self.unit, check=False).stdout.strip() == "active"

    def stop(self):
        self.m.systemctl("stop", self.unit, check=False)
        line = (self.m.run(["cat", self.out]).stdout.strip().splitlines() or [""])[-1]
        self.m.systemctl("reset-failed", self.unit, check=False)
        out = {"line": line}
        for k, v in re.findall(r"(\w+)=(\S+)", line):
            out[k] = int(v) if v.isdigit() else v
        return out
