"""doctor and status --check against the Docker suite's own engine (tests/lib/vgdocker.py).

doctor asks the engine's /info for its cgroup driver and cgroup version (the same answer as
`docker info`) and says where `cgroup_parent: vpnguard.slice` lands: a container run with a
relative parent lands where the line says (below the engine's own cgroup). The session's pin
root guards no <cgroup2>/vpnguard.slice, so the line warns, and doctor still exits 0.

status --check NAME with a [guard NAME] of the default config that names a container: the
container is looked up through the engine and its cgroup's guard judged (open 0; closed 1;
the container stopped 1, saying so). The config file is laid over /etc in a mount namespace
of the command's own (tests/kernel/test_cli_check.py's etc_overlay).

Run one case: cd tests && pytest-3 docker/test_docker_doctor.py -k check
"""
import os
import re
import subprocess
import sys
import time

import pytest

from vgdocker import rm_cgroup_parent
from vgproc import cgroup2_mount, wait_until
from vgtunnel import CLOSED, OPEN, set_state
from vgworld import gid_of

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "kernel"))
from test_cli_check import etc_overlay  # noqa: E402


def engine_cgroup(pid):
    with open(f"/proc/{pid}/cgroup") as f:
        return next(line[3:].strip() for line in f if line.startswith("0::"))


def test_doctor_names_the_driver_and_where_cgroup_parent_lands(bare_world, vg):
    w = bare_world
    info = w.e.docker("info", "-f", "{{.CgroupDriver}} {{.CgroupVersion}}", check=True)
    driver, version = info.stdout.split()
    cg2 = cgroup2_mount()
    home = engine_cgroup(w.e.pid)
    r = w.vg_run("doctor")
    assert r.returncode == 0, f"exit {r.returncode}:\n{r.stdout}{r.stderr}"
    line = next((x for x in r.stdout.splitlines() if re.match(r"^\S+ +docker ", x)), "")
    lands = {"systemd": rf"cgroup_parent: vpnguard\.slice lands in {re.escape(cg2)}/vpnguard\.slice/"
                        r"docker-<id>\.scope",
             "cgroupfs": rf"cgroup_parent: /vpnguard\.slice lands in {re.escape(cg2)}/vpnguard\.slice/"
                         rf"<id> \(a relative vpnguard\.slice lands below the engine's own cgroup: "
                         rf"{re.escape(cg2 + (home if home != '/' else ''))}/vpnguard\.slice/<id>\)"}
    assert driver in lands, f"driver {driver}: the test knows systemd and cgroupfs"
    want = (rf"^warn +docker +engine at {re.escape(w.e.sock)}: cgroup driver {driver}, cgroup "
            rf"v{version}: {lands[driver]}; {re.escape(cg2)}/vpnguard\.slice has no guard; "
            r"fix: guard the slice before its containers start")
    assert re.search(want, line), f"{line!r}\nwanted /{want}/"

    if driver != "cgroupfs":
        return
    # What the line says of a relative parent, seen: the container's cgroup v2.
    rel = f"vgdoc{w.s}.slice"
    c = w.run("vgdocrel", network="none", opts=("--cgroup-parent", rel))
    try:
        want = (home.rstrip("/") + f"/{rel}/{c.id}")
        assert c.cgroup == want, f"--cgroup-parent {rel}: in {c.cgroup}, wanted {want}"
    finally:
        w.e.rm(c.id)
        w.containers.remove(c)
        try:
            os.rmdir(cg2 + home.rstrip("/") + f"/{rel}")
        except OSError as e:
            print(f"rmdir {rel}: {e}")
        rm_cgroup_parent(rel)


def check(w, vg, name, container):
    conf = (f"[guard {name}]\ncontainer = {container}\ntunnel = {w.t.wg_client}\n"
            f"tunnel-container = {w.vpn.name}\ndocker-host = {w.e.host}\n")
    with etc_overlay({"vpnguard/vpnguard.conf": conf}) as pre:
        return subprocess.run(pre + [vg, "status", "--check", name], capture_output=True,
                              text=True, timeout=60, env=w.e.env, stdin=subprocess.DEVNULL)


def nothing(w, c):
    pass


def close_guard(w, c):
    set_state(gid_of(w.path(c.cgroup)), CLOSED)


def stop(w, c):
    w.e.docker("stop", "-t", "1", c.id, check=True)


# name, change, exit, the line ({c}: the container's name, {t}: the tunnel)
CHECKS = [
    ("open", nothing, 0, r"^qbit: open \(container {c} open: tunnel {t} present\)$"),
    ("closed", close_guard, 1, r"^qbit: closed \(container {c} closed: state closed\)$"),
    ("stopped", stop, 1, r"^qbit: closed \(container {c} closed: docker: container '{c}': "
                         r"not running \(exited\)\)$"),
]


@pytest.mark.parametrize("name,change,rc,line", CHECKS, ids=[f"check {x[0]}" for x in CHECKS])
def test_check_by_config_name_follows_the_container(world, vg, name, change, rc, line):
    w = world
    c = w.client("vgbyname", parent=w.byname_parent)
    r = w.vg_run("attach", *w.by_name(c), "--no-agent")
    assert r.returncode == 0, r.stderr
    change(w, c)
    r = check(w, vg, "qbit", c.name)
    line = line.format(c=re.escape(c.name), t=re.escape(w.t.wg_client))
    assert r.returncode == rc and re.search(line, r.stdout.strip()) and r.stderr == "", \
        f"{name}: exit {r.returncode} (wanted {rc}): {r.stdout!r} {r.stderr!r}\nwanted /{line}/"


# -- the Compose healthcheck: a sidecar that runs status --check ---------------------------
def sidecar_opts(w, vg):
    """What a sidecar needs to judge a guard as the host does (docs/docker.md's snippet): the
    host's PID namespace (a --tunnel-container guard's namespace is /proc/PID/ns/net), network
    namespace (a guard with no --netns is the host's) and cgroup namespace, bpffs read-write
    (pinned maps are opened read-write), the cgroup tree, CAP_SYS_ADMIN (bpf(2), setns(2)).
    The binary and its libraries are the host's, bind-mounted into the suite's busybox image."""
    loader = "/lib64/ld-linux-x86-64.so.2"  # a link into the directory of the libraries
    libdir = os.path.dirname(os.path.join(os.path.dirname(loader), os.readlink(loader)))
    return ("--pid", "host", "--cgroupns", "host", "--cap-add", "SYS_ADMIN",
            "-v", "/sys/fs/bpf:/sys/fs/bpf", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
            "-v", f"{os.path.realpath(libdir)}:{libdir}:ro", "-v", "/lib64:/lib64:ro",
            "-v", f"{os.path.realpath(vg)}:/usr/sbin/vpnguard-bpf:ro",
            "-e", f"VPNGUARD_PIN_ROOT={os.environ['VPNGUARD_PIN_ROOT']}")


def health(w, cid):
    return w.e.inspect(cid, "{{.State.Health.Status}}")


def test_sidecar_healthcheck_follows_the_guard(world, vg, note):
    w = world
    g = w.guard_slice()
    w.client()
    slice_rel = w.rel(w.slice)
    # Once, as `docker run --rm`: the verdict and its exit status from inside a container.
    r = w.e.docker("run", "--rm", "--network", "host", *sidecar_opts(w, vg), w.e.image,
                   "/usr/sbin/vpnguard-bpf", "status", "--check", slice_rel)
    assert (r.returncode, r.stdout.strip()) == \
        (0, f"{slice_rel}: open: tunnel {w.t.wg_client} present"), f"{r.stdout}{r.stderr}"
    # As a healthcheck: healthy while the guard is open, unhealthy once it closes, and back.
    c = w.run("vgcheck", network="host", opts=sidecar_opts(w, vg) + (
        "--health-cmd", f"/usr/sbin/vpnguard-bpf status --check {slice_rel}",
        "--health-interval", "1s", "--health-timeout", "5s", "--health-retries", "1"))
    t0 = time.monotonic()
    assert wait_until(lambda: health(w, c.id) == "healthy", 30, 0.2), health(w, c.id)
    up = time.monotonic() - t0
    set_state(g.gid, CLOSED)
    t0 = time.monotonic()
    assert wait_until(lambda: health(w, c.id) == "unhealthy", 30, 0.2), health(w, c.id)
    down = time.monotonic() - t0
    last = w.e.inspect(c.id, "{{(index .State.Health.Log 0).Output}}")
    assert f"{slice_rel}: closed: state closed" in w.e.inspect(
        c.id, "{{range .State.Health.Log}}{{.Output}}{{end}}"), last
    set_state(g.gid, OPEN)
    assert wait_until(lambda: health(w, c.id) == "healthy", 30, 0.2), health(w, c.id)
    note(f"sidecar healthcheck (interval 1 s): healthy {up:.1f} s after start, unhealthy "
         f"{down:.1f} s after the guard closed")
