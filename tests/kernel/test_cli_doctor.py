"""doctor: on this machine it finds what the kill switch needs (exit 0, one line per check, a
tiny program of each hook really loaded, tc attached to tcx in a namespace of its own), and
with a piece taken away it says which and what to do: a pin root on a filesystem that is not
bpffs (FAIL, exit 1), no CAP_BPF/CAP_SYS_ADMIN (every hook FAILs, exit 1), a guarded process
holding CAP_NET_RAW (warn, exit 0), vpnguard.service not ordered before docker.service
(FAIL, exit 1) or not enabled (warn).

The engine is pinned to a socket that does not exist (DOCKER_HOST), so the docker line is the
same beside the Docker suite's engine (tests/docker/test_docker_doctor.py has the engine).
Unit files are laid over /etc in a mount namespace of the command's own (test_cli_check.py's
etc_overlay): the machine's /etc is never written. The net_raw rows attach a gateway guard
(--no-agent) on a cgroup of their own and hold the kernel lock.

Run one row: pytest-3 tests/kernel/test_cli_doctor.py -k 'net_raw and root'
"""
import json
import os
import re
import subprocess
import tempfile

import pytest

from test_cli_check import etc_overlay
from vgguard import kernel_lock_held, pin_root
from vgproc import arrived, cg_remove, cgroup2_mount, end_popen, wait_until, wrap_argv
from vgworld import run_vg

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NO_ENGINE = "/nonexistent/vgdoctor/docker.sock"
HOOKS = ["connect4", "connect6", "sendmsg4", "sendmsg6", "sock_create", "egress", "setsockopt", "tc"]
NAMES = ["kernel", "btf", "cgroup2", "bpffs"] + [f"hook {h}" for h in HOOKS] + \
    ["docker", "net_raw", "systemd"]
LINE = re.compile(r"^(ok|skip|warn|FAIL) +(hook \S+|\S+) +(.*)$")


def doctor(vg, *args, env=None, pre=()):
    e = dict(os.environ, DOCKER_HOST=f"unix://{NO_ENGINE}")
    e.update(env or {})
    return subprocess.run(list(pre) + [vg, "doctor", *args], capture_output=True, text=True,
                          timeout=120, env=e, stdin=subprocess.DEVNULL)


def lines(r):
    """{check name: (level, text)} of doctor's output; every line must be a check."""
    out = {}
    for line in r.stdout.splitlines():
        m = LINE.match(line)
        assert m, f"not a check line: {line!r}\n{r.stdout}"
        out[m.group(2)] = (m.group(1), m.group(3))
    assert list(out) == NAMES, f"checks {list(out)}, wanted {NAMES}"
    return out


def hybrid():
    with open("/proc/self/mounts") as f:
        return any(line.split()[2] == "cgroup" for line in f if len(line.split()) > 2)


def unit_installed(name):
    return any(os.path.lexists(os.path.join(d, name)) for d in (
        "/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system", "/lib/systemd/system"))


def pid1():
    with open("/proc/1/comm") as f:
        return f.read().strip()


def this_machine():
    """check name: (level, a regex of its text), as this machine must show them."""
    cg2 = re.escape(cgroup2_mount())
    want = {
        "kernel": ("ok", rf"^kernel {re.escape(os.uname().release)} \(tcx needs 6\.6\)$"),
        "btf": ("ok", r"^/sys/kernel/btf/vmlinux \(\d+ KiB\)$"),
        "cgroup2": ("ok", rf"^hybrid: cgroup v2 at {cg2} beside v1" if hybrid() else
                    rf"^cgroup v2 at {cg2} \(unified"),
        "bpffs": ("ok", rf"^pin root {re.escape(pin_root())} on bpffs"),
        "docker": ("skip", rf"^no engine: {NO_ENGINE}: No such file or directory"),
        "net_raw": ("skip", r"^no guard attached"),
    }
    for h, sec in zip(HOOKS, ["cgroup/connect4", "cgroup/connect6", "cgroup/sendmsg4",
                              "cgroup/sendmsg6", "cgroup/sock_create", "cgroup_skb/egress",
                              "cgroup/setsockopt", "tc"]):
        want[f"hook {h}"] = ("ok", rf"^{sec}: a program loads" +
                             (r" and attaches to tcx egress" if h == "tc" else "$"))
    who = "systemd runs" if pid1() == "systemd" else f"PID 1 is {re.escape(pid1())}, not systemd"
    if not unit_installed("docker.service"):
        want["systemd"] = ("skip", rf"^{who}.*; no docker\.service$")
    elif not unit_installed("vpnguard.service"):
        want["systemd"] = ("warn", rf"^{who}.*; no vpnguard\.service: .*; fix: make install")
    return want


def judge(r, want):
    got = lines(r)
    bad = {n: got[n] for n, (lvl, rx) in want.items()
           if got[n][0] != lvl or not re.search(rx, got[n][1])}
    assert not bad, f"unexpected: {bad}\nwanted: { {n: want[n] for n in bad} }\n{r.stdout}"
    return got


def test_this_machine(vg):
    r = doctor(vg)
    assert r.returncode == 0, f"exit {r.returncode}:\n{r.stdout}{r.stderr}"
    judge(r, this_machine())
    assert r.stderr == "", r.stderr


def test_json(vg):
    r = doctor(vg, "--json")
    assert r.returncode == 0, f"exit {r.returncode}:\n{r.stdout}{r.stderr}"
    got = json.loads(r.stdout)
    assert got["ok"] is True, got
    assert [c["name"] for c in got["checks"]] == NAMES, got
    for c in got["checks"]:
        assert set(c) == {"name", "result", "text", "fix"}, c
        assert c["result"] in ("ok", "skip", "warn"), c
        assert (c["fix"] is None) == (c["result"] in ("ok", "skip")), c


# -- a piece missing -------------------------------------------------------------
def pin_on_var_tmp(d):
    return {"env": {"VPNGUARD_PIN_ROOT": os.path.join(d, "pins")}}


def no_bpf_caps(d):
    return {"pre": ["setpriv", "--bounding-set=-bpf,-sys_admin,-perfmon", "--"]}


# name, how, exit, {check: (level, regex of text, regex of fix)}
MISSING = [
    ("pin root not on bpffs", pin_on_var_tmp, 1, {
        "bpffs": ("FAIL", r"^pin root {d}/pins: {d} is not bpffs \(filesystem type 0x[0-9a-f]+\): "
                          r"nothing can be pinned there; fix: mount -t bpf bpf {d}/pins "
                          r"\(mkdir it first\)", None)}),
    ("no CAP_BPF or CAP_SYS_ADMIN", no_bpf_caps, 1, {
        f"hook {h}": ("FAIL", r": Operation not permitted; fix: run as root with CAP_BPF", None)
        for h in HOOKS}),
]


@pytest.mark.parametrize("name,how,rc,want", MISSING, ids=[m[0] for m in MISSING])
def test_missing(vg, name, how, rc, want):
    with tempfile.TemporaryDirectory(prefix="vgdoc.", dir="/var/tmp") as d:
        r = doctor(vg, **how(d))
        assert r.returncode == rc, f"exit {r.returncode}, wanted {rc}:\n{r.stdout}{r.stderr}"
        got = lines(r)
        for n, (lvl, rx, _) in want.items():
            rx = rx.format(d=re.escape(d))
            assert got[n][0] == lvl and re.search(rx, got[n][1]), \
                f"{n}: {got[n]}, wanted {lvl} /{rx}/\n{r.stdout}"
        fails = [n for n, (lvl, _) in got.items() if lvl == "FAIL"]
        assert sorted(fails) == sorted(want), f"FAIL lines {fails}, wanted {list(want)}"


# -- CAP_NET_RAW in a guarded cgroup -----------------------------------------------
@pytest.fixture
def guarded(vg):
    """A gateway guard (--no-agent) on a cgroup of its own; yields (vg, cgroup path)."""
    cg2 = cgroup2_mount()
    root = os.path.join(cg2, f"vgdoc{os.getpid()}")
    with kernel_lock_held():
        os.makedirs(root)
        try:
            r = run_vg(vg, "attach", "--cgroup", root, "--gateway", "192.0.2.1:1080", "--no-agent")
            assert r.returncode == 0, f"attach: {r.stderr.strip()}"
            yield root
        finally:
            run_vg(vg, "detach", "--cgroup", root)
            assert cg_remove(root, root), f"{root} left behind"


# name, how the process runs (setpriv words, or a user), whether it holds CAP_NET_RAW
RAW = [
    ("root", None, None, True),
    ("root without NET_RAW", ["setpriv", "--bounding-set=-net_raw", "--"], None, False),
    ("nobody", None, "nobody", False),
]


@pytest.mark.parametrize("name,pre,user,raw", RAW, ids=[f"net_raw and {r[0]}" for r in RAW])
def test_net_raw(vg, guarded, name, pre, user, raw):
    cg2 = cgroup2_mount()
    argv = wrap_argv((pre or []) + ["sleep", "300"], cg=guarded, user=user)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        assert wait_until(lambda: arrived(p.pid, cg2, cg=guarded), 10), "sleep not in its cgroup"
        r = doctor(vg)
        assert r.returncode == 0, f"exit {r.returncode} (a warning is no failure):\n{r.stdout}"
        level, text = lines(r)["net_raw"]
        rel = guarded[len(cg2):]
        if raw:
            assert level == "warn" and re.search(
                rf"^1 guarded process holds CAP_NET_RAW, and packet sockets skip every program: "
                rf"pid {p.pid} \(sleep\) in {re.escape(rel)}; fix: cap_drop: \[NET_RAW\]", text), text
        else:
            assert (level, text) == ("ok", "no process of the 1 guard holds CAP_NET_RAW"), text
    finally:
        end_popen(p)


# -- vpnguard.service and docker.service ---------------------------------------------
def shipped_unit():
    with open(os.path.join(REPO, "scripts", "dist", "vpnguard.service.in")) as f:
        return f.read().replace("@SBINDIR@", "/usr/sbin").replace("@SYSCONFDIR@", "/etc") \
            .replace("@DOCDIR@", "/usr/share/doc/vpnguard-bpf")


UNORDERED = "[Unit]\nDescription=vpnguard-bpf\nAfter=local-fs.target\n[Service]\nType=notify\n"
ETC = "systemd/system/"
WANTS = {ETC + "multi-user.target.wants/vpnguard.service": "->/etc/systemd/system/vpnguard.service"}

# name, files laid over /etc, exit, level, regex of the text after "PID 1 ...; "
SYSTEMD = [
    ("shipped unit, enabled", {ETC + "vpnguard.service": None, **WANTS}, 0, "ok",
     r"vpnguard\.service \(/etc/systemd/system/vpnguard\.service\) is enabled and ordered before "
     r"docker\.service \(\S+/docker\.service\)$"),
    ("shipped unit, not enabled", {ETC + "vpnguard.service": None}, 0, "warn",
     r"is ordered before docker\.service but not enabled; fix: systemctl enable vpnguard$"),
    ("no Before=docker.service", {ETC + "vpnguard.service": UNORDERED, **WANTS}, 1, "FAIL",
     r"is not ordered before docker\.service \(\S+\): at boot, containers in vpnguard\.slice can "
     r"start before their guard; fix: Before=docker\.service"),
    ("a drop-in empties Before=", {ETC + "vpnguard.service": None,
                                   ETC + "vpnguard.service.d/zz.conf": "[Unit]\nBefore=\n", **WANTS},
     1, "FAIL", r"is not ordered before docker\.service"),
    ("docker's drop-in After=vpnguard.service", {
        ETC + "vpnguard.service": UNORDERED, **WANTS,
        ETC + "docker.service.d/vpnguard.conf": "[Unit]\nAfter=vpnguard.service\n"}, 0, "ok",
     r"is enabled and ordered before docker\.service"),
    ("enabled by docker.service's wants", {
        ETC + "vpnguard.service": None,
        ETC + "docker.service.wants/vpnguard.service": "->/etc/systemd/system/vpnguard.service"},
     0, "ok", r"is enabled and ordered before docker\.service"),
    ("masked", {ETC + "vpnguard.service": "->/dev/null"}, 0, "warn",
     r"vpnguard\.service is masked \(/etc/systemd/system/vpnguard\.service\); fix: systemctl unmask"),
    ("an empty unit file is masked too", {ETC + "vpnguard.service": ""}, 0, "warn",
     r"vpnguard\.service is masked"),
]


@pytest.mark.parametrize("name,files,rc,level,rx", SYSTEMD, ids=[s[0] for s in SYSTEMD])
def test_systemd(vg, name, files, rc, level, rx):
    assert unit_installed("docker.service"), "the rows need a docker.service (docker.io)"
    files = {k: shipped_unit() if v is None else v for k, v in files.items()}
    with etc_overlay(files) as pre:
        r = doctor(vg, pre=pre)
    assert r.returncode == rc, f"exit {r.returncode}, wanted {rc}:\n{r.stdout}{r.stderr}"
    got, text = lines(r)["systemd"]
    who = "systemd runs (PID 1)" if pid1() == "systemd" else f"PID 1 is {pid1()}, not systemd"
    assert got == level and text.startswith(who) and re.search(rx, text), \
        f"systemd: {got} {text}\nwanted {level} /{rx}/"
