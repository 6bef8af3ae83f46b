"""status --check GUARD: exit 0 when the guard is open (and in tunnel mode its tunnel present),
1 when it is not, 2 when there is no such guard, with one line saying why; GUARD a cgroup in
every form --cgroup takes, or a [guard NAME] of the default config file.

Each case a world of its own (fixture `w`): a network namespace holding a veth pair whose end
vgt0 is the "tunnel" (no traffic is sent: the verdict is read from the maps), and cgroups t,
u (tunnel guards on vgt0) and gw (a gateway guard, --gateway 192.0.2.1:1080) below one test
cgroup, attached with --no-agent in this session's pin root. The row's change is made with
the tools an operator has (bpftool on vg_state, `ip link del`), then `status --check` runs.
The config file is the default /etc/vpnguard/vpnguard.conf, seen only by the checked
command: it runs in a mount namespace of its own with an overlay on /etc (etc_overlay), so
the machine's /etc is never written. The kernel lock is held for the module.

Run one row: pytest-3 tests/kernel/test_cli_check.py -k 'lease'
"""
import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile

import pytest

from vgguard import kernel_lock_held
from vgproc import cg_remove, cgroup2_mount, netns_remove
from vgtunnel import CLOSED, OPEN, boottime_ns, set_state
from vgworld import gid_of, run_vg

TUNNEL = "vgt0"
GATEWAY = "192.0.2.1:1080"


@contextlib.contextmanager
def etc_overlay(files):
    """A directory to lay over /etc: files {path below /etc: text} (a text starting with "->"
    is a symlink to the rest, None hides what /etc has there: an overlay whiteout). Yields the argv prefix that runs a command in a mount namespace
    of its own with that overlay on /etc; the namespace goes with the command."""
    d = tempfile.mkdtemp(prefix="vgetc.", dir="/var/tmp")
    try:
        upper, work = os.path.join(d, "upper"), os.path.join(d, "work")
        os.makedirs(work)
        for rel, text in files.items():
            path = os.path.join(upper, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if text is None:
                os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))
                continue
            if text.startswith("->"):
                os.symlink(text[2:], path)
                continue
            with open(path, "w") as f:
                f.write(text)
            os.chmod(path, 0o600)
        script = ('mount -t overlay overlay -o lowerdir=/etc,upperdir="$0",workdir="$1" /etc '
                  '|| exit 125; shift; exec "$@"')
        yield ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, upper, work]
    finally:
        shutil.rmtree(d, ignore_errors=True)


class CheckWorld:
    def __init__(self, vg):
        self.vg = vg
        self.tag = f"vgchk{os.getpid()}"
        self.ns = self.tag
        self.netns = f"/run/netns/{self.ns}"
        self.cg2 = cgroup2_mount()
        self.root = os.path.join(self.cg2, self.tag)
        self.cg = {n: os.path.join(self.root, n) for n in ("t", "u", "gw", "bare")}
        self.attached = []

    def sh(self, *argv):
        r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"{' '.join(argv)}: {r.stderr.strip()}"

    def up(self):
        self.sh("ip", "netns", "add", self.ns)
        self.sh("ip", "-n", self.ns, "link", "add", TUNNEL, "type", "veth", "peer", "name", "vgt1")
        for dev in (TUNNEL, "vgt1"):
            self.sh("ip", "-n", self.ns, "link", "set", dev, "up")
        for cg in self.cg.values():
            os.makedirs(cg)
        for n in ("t", "u"):
            self.attach(n, "--tunnel", TUNNEL, "--netns", self.netns)
        self.attach("gw", "--gateway", GATEWAY)

    def attach(self, n, *mode):
        self.attached.append(self.cg[n])
        r = run_vg(self.vg, "attach", "--cgroup", self.cg[n], *mode, "--no-agent")
        assert r.returncode == 0, f"attach {n}: {r.stderr.strip()}"

    def down(self):
        for cg in self.attached:
            r = run_vg(self.vg, "detach", "--cgroup", cg)
            if r.returncode != 0:
                print(f"detach --cgroup {cg}: {r.stderr.strip()}")
        netns_remove(self.ns)
        assert cg_remove(self.root, self.root), f"{self.root} left behind"

    def config(self):
        """The default config: two guards of tunnel cgroups, one that names a cgroup never
        attached, one of the gateway cgroup."""
        return (
            f"[guard both]\ncgroup = {self.cg['t']}\ncgroup = {self.cg['u']}\n"
            f"tunnel = {TUNNEL}\nnetns = {self.netns}\n\n"
            f"[guard half]\ncgroup = {self.cg['t']}\ncgroup = {self.cg['bare']}\n"
            f"tunnel = {TUNNEL}\nnetns = {self.netns}\n\n"
            f"[guard proxy]\ncgroup = {self.cg['gw']}\ngateway = {GATEWAY}\n")

    def check(self, guard, *more, config=True):
        """status --check GUARD, with the world's config file (config=False: none) in an
        overlay on /etc."""
        with etc_overlay({"vpnguard/vpnguard.conf": self.config() if config else None}) as pre:
            return subprocess.run(pre + [self.vg, "status", "--check", guard, *more],
                                  capture_output=True, text=True, timeout=60,
                                  stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def lock():
    with kernel_lock_held():
        yield


@pytest.fixture
def w(vg, lock):
    w = CheckWorld(vg)
    try:
        w.up()
        yield w
    finally:
        w.down()


def nothing(w):
    pass


def close_t(w):
    set_state(gid_of(w.cg["t"]), CLOSED)


def lease_out_t(w):
    set_state(gid_of(w.cg["t"]), OPEN, boottime_ns() - 10**9)


def lease_left_t(w):
    set_state(gid_of(w.cg["t"]), OPEN, boottime_ns() + 600 * 10**9)


def del_tunnel(w):
    w.sh("ip", "-n", w.ns, "link", "del", TUNNEL)


def del_netns(w):
    netns_remove(w.ns)


def close_gw(w):
    set_state(gid_of(w.cg["gw"]), CLOSED)


def close_and_del(w):
    close_t(w)
    del_tunnel(w)


# How GUARD is written: the cgroup t as given, below the mount, on a pure v2 layout's path.
FORMS = {
    "full path": lambda w, n: w.cg[n],
    "below the mount": lambda w, n: w.cg[n][len(w.cg2):],
    "relative": lambda w, n: w.cg[n][len(w.cg2) + 1:],
    "/sys/fs/cgroup form": lambda w, n: "/sys/fs/cgroup" + w.cg[n][len(w.cg2):],
    "trailing slash": lambda w, n: w.cg[n] + "/",
}

# name, change, guard (a cgroup of the world by form, or a config name), exit, stdout line
ROWS = [
    ("open tunnel", nothing, ("full path", "t"), 0, r"^/{tag}/t: open: tunnel vgt0 present$"),
    ("open, lease left", lease_left_t, ("full path", "t"), 0, r": open: tunnel vgt0 present$"),
    ("closed", close_t, ("full path", "t"), 1, r"^/{tag}/t: closed: state closed$"),
    ("tunnel deleted", del_tunnel, ("full path", "t"), 1, r"^/{tag}/t: closed: tunnel vgt0 missing$"),
    ("tunnel namespace gone", del_netns, ("full path", "t"), 1, r": closed: tunnel namespace gone$"),
    ("closed and tunnel deleted", close_and_del, ("full path", "t"), 1,
     r": closed: state closed, tunnel vgt0 missing$"),
    ("lease run out", lease_out_t, ("full path", "t"), 1, r"^/{tag}/t: closed: lease run out$"),
    ("gateway open", nothing, ("full path", "gw"), 0, r"^/{tag}/gw: open: gateway mode$"),
    ("gateway closed", close_gw, ("full path", "gw"), 1, r"^/{tag}/gw: closed: state closed$"),
    ("the other guard closed", close_gw, ("full path", "t"), 0, r": open: tunnel vgt0 present$"),
] + [
    (f"open by {form}", nothing, (form, "t"), 0, r"^/{tag}/t: open: tunnel vgt0 present$")
    for form in FORMS if form != "full path"
] + [
    (f"closed by {form}", close_t, (form, "t"), 1, r"^/{tag}/t: closed: state closed$")
    for form in ("below the mount", "/sys/fs/cgroup form")
] + [
    ("config: both open", nothing, "both", 0,
     r"^both: open \(/{tag}/t open: tunnel vgt0 present; /{tag}/u open: tunnel vgt0 present\)$"),
    ("config: one closed", close_t, "both", 1,
     r"^both: closed \(/{tag}/t closed: state closed; /{tag}/u open: tunnel vgt0 present\)$"),
    ("config: tunnel deleted", del_tunnel, "both", 1,
     r"^both: closed \(/{tag}/t closed: tunnel vgt0 missing; /{tag}/u closed: tunnel vgt0 missing\)$"),
    ("config: lease run out", lease_out_t, "both", 1, r"^both: closed \(/{tag}/t closed: lease run out; "),
    ("config: a cgroup not attached", nothing, "half", 1,
     r"^half: closed \(/{tag}/t open: tunnel vgt0 present; \S+/{tag}/bare closed: not attached\)$"),
    ("config: gateway open", nothing, "proxy", 0, r"^proxy: open \(/{tag}/gw open: gateway mode\)$"),
    ("config: gateway closed", close_gw, "proxy", 1, r"^proxy: closed \(/{tag}/gw closed: state closed\)$"),
]


@pytest.mark.parametrize("name,change,guard,rc,line", ROWS, ids=[r[0] for r in ROWS])
def test_check(w, name, change, guard, rc, line):
    change(w)
    arg = FORMS[guard[0]](w, guard[1]) if isinstance(guard, tuple) else guard
    r = w.check(arg)
    assert r.returncode == rc, f"status --check {arg}: exit {r.returncode}, wanted {rc}:\n" \
                               f"{r.stdout}{r.stderr}"
    out = r.stdout.splitlines()
    assert len(out) == 1 and re.search(line.format(tag=w.tag), out[0]), \
        f"status --check {arg}: {r.stdout!r} (wanted /{line}/)"
    assert r.stderr == "", r.stderr


# name, GUARD, with the world's config file, words on stderr
UNKNOWN = [
    ("a cgroup with no guard", lambda w: w.cg["bare"], True,
     "no such guard: cgroup {root}/bare: not guarded"),
    ("no such cgroup", lambda w: w.root + "/nope", True,
     "no such guard: cgroup {root}/nope: No such file or directory"),
    ("a name the config does not have", lambda w: "nope", True,
     "no [guard nope] in /etc/vpnguard/vpnguard.conf"),
    ("no config file", lambda w: "both", False,
     "config /etc/vpnguard/vpnguard.conf: No such file or directory"),
    ("the root cgroup", lambda w: "/", True, "no such guard: cgroup /: not guarded"),
]


@pytest.mark.parametrize("name,guard,config,words", UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_no_such_guard(w, name, guard, config, words):
    arg = guard(w)
    r = w.check(arg, config=config)
    assert r.returncode == 2, f"status --check {arg}: exit {r.returncode}:\n{r.stdout}{r.stderr}"
    assert r.stdout == "", r.stdout
    want = words.format(tag=w.tag, root=w.root)
    assert want in r.stderr and r.stderr.count("\n") == 1, f"stderr {r.stderr!r}, wanted {want!r}"


def test_check_json(w):
    close_t(w)
    r = w.check("both", "--json")
    assert r.returncode == 1, r.stderr
    got = json.loads(r.stdout)
    assert got == {"guard": "both", "open": False, "cgroups": [
        {"cgroup": f"/{w.tag}/t", "open": False, "why": "closed: state closed"},
        {"cgroup": f"/{w.tag}/u", "open": True, "why": "open: tunnel vgt0 present"}]}, got
