"""An upgrade over the first release's pins, under live traffic.

The previous release (PREVIOUS, the last commit of main before the map layout
changed) is built from git (git archive: the test needs main's history, as a
full clone has it), its pin root moved to this session's. It attaches a guard;
while a UDP and a TCP flood run through the tunnel, this version's attach takes
the guard over: the old programs leave only once the new ones enforce. Not one
allowed send may be refused, not one packet may leave off the tunnel, and the
old guard's counters carry on. Pins it cannot reuse (a newer layout, a map of another
shape) are refused with their real cause, and nothing changes.

Run: pytest-3 tests/kernel/test_upgrade.py (one case: -k map-mismatch)
"""
import json
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from vgguard import Guard, Snapshot, pin_root
from vgproc import wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREVIOUS = "5e1993fdd4194e78b99cd21515fba689d908e073"


@pytest.fixture(scope="module")
def previous_release(vg):
    """build/vpnguard-bpf of PREVIOUS, pinning where this session pins."""
    d = tempfile.mkdtemp(prefix="vgprev.")
    try:
        archive = subprocess.run(["git", "-C", REPO, "archive", PREVIOUS], capture_output=True)
        assert archive.returncode == 0, \
            f"git archive {PREVIOUS}: {archive.stderr.decode()} (the test needs main's history)"
        subprocess.run(["tar", "-x", "-C", d], input=archive.stdout, check=True)
        subprocess.run(["sed", "-i", f"s|/sys/fs/bpf/vpnguard|{pin_root()}|",
                        os.path.join(d, "user", "loader.h")], check=True)
        r = subprocess.run(["make", "-s", "-C", d, "build/vpnguard-bpf"], capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, f"building {PREVIOUS}: {r.stderr[-3000:]}"
        yield os.path.join(d, "build", "vpnguard-bpf")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def vg_links():
    """The links that hold vpnguard programs (of any pin root)."""
    def dump(what):
        r = subprocess.run(["bpftool", "-j", what, "show"], capture_output=True, text=True)
        return json.loads(r.stdout.strip() or "[]")
    names = {p["id"]: p.get("name", "") for p in dump("prog")}
    return [l for l in dump("link") if names.get(l.get("prog_id"), "").startswith("vg_")]


def flood_result(p):
    out, _ = p.communicate(timeout=60)
    return out.strip().splitlines()[-1]


def test_upgrade_under_flood(vg, previous_release, kernel_lock, topo):
    cg = topo.cgroup("g")
    words = ["--cgroup", cg, "--tunnel", topo.wg_client, "--netns", topo.home_netns,
             "--dns", topo.resolver, "--no-agent"]
    r = subprocess.run([previous_release, "attach"] + words, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    g = Guard(vg, topo, cg)
    g.attached = True
    try:
        assert g.run([topo.vgprobe, "sendto", topo.rogue_dns, "53"], "nobody") == "sent 0/1 errno EPERM"
        assert vg_links(), "the previous release holds its programs by links"
        listener = topo.spawn([topo.vgprobe, "listen", "tcp", "7000"], netns=topo.inet,
                              stdout=subprocess.PIPE, text=True)
        assert wait_until(lambda: topo.run_inet(["ss", "-Htln", "sport", "= :7000"]).stdout.strip(), 5)
        before = Snapshot(topo)
        flood = ["--seconds", "8", "--interval-us", "2000"]
        udp = topo.spawn([topo.vgprobe, "flood", "udp", topo.inet_host, "9", "--unconnected"] + flood,
                         cg=cg, netns=topo.home, user="nobody", stdout=subprocess.PIPE, text=True)
        tcp = topo.spawn([topo.vgprobe, "flood", "tcp", topo.inet_host, "7000"] + flood,
                         cg=cg, netns=topo.home, user="nobody", stdout=subprocess.PIPE, text=True)
        time.sleep(2)
        up = subprocess.run([vg, "attach"] + words, capture_output=True, text=True, timeout=60)
        assert up.returncode == 0, up.stderr
        assert "took over 1 guard" in up.stderr, up.stderr
        results = {"udp": flood_result(udp), "tcp": flood_result(tcp)}
        for kind, line in results.items():
            assert " failed=0 " in f" {line} " and "ok=0 " not in line, f"{kind} flood: {line}"
        print(f"floods across the upgrade: {results}")
        before.expect(far={"tunnel": ">=1000"}, settle=0.5)
        assert vg_links() == [], "the previous release's links are still there"
        assert not os.path.exists(pin_root() + ".layout1")
        st = g.status()
        assert st["denied"]["dns"] >= 1, st   # the old counters carry on
        assert st["tunnel_present"] and st["state"] == "open", st
        before = Snapshot(topo, g)
        assert g.run([topo.vgprobe, "sendto", topo.rogue_dns, "53"], "nobody") == "sent 0/1 errno EPERM"
        before.expect(denied={"dns": 1})
        topo.stop(listener)
    finally:
        g.close()


def bpftool_json(*args):
    r = subprocess.run(["bpftool", "-j", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, f"bpftool {' '.join(args)}: {r.stderr}"
    return json.loads(r.stdout.strip() or "[]")  # nothing at all for a cgroup with no programs


def cg_progs(cg):
    return sorted(p["id"] for p in bpftool_json("cgroup", "show", cg))


def newer_layout(root):
    """vg_abi says a layout this binary does not know (a newer release's pins)."""
    path = os.path.join(root, "vg_abi")
    subprocess.run(["bpftool", "map", "update", "pinned", path, "key", *"0 0 0 0".split(),
                    "value", *"99 0 0 0 0 0 0 0".split()], check=True)
    return lambda: subprocess.run(["bpftool", "map", "update", "pinned", path, "key",
                                   *"0 0 0 0".split(), "value", *"2 0 0 0 0 0 0 0".split()],
                                  check=True)


def foreign_map_pinned(root):
    """A map of another shape where vg_ratelimit is pinned: libbpf cannot reuse it."""
    path = os.path.join(root, "vg_ratelimit")
    orig = bpftool_json("map", "show", "pinned", path)["id"]
    os.unlink(path)
    subprocess.run(["bpftool", "map", "create", path, "type", "hash", "key", "4", "value", "4",
                    "entries", "1", "name", "vg_ratelimit"], check=True)

    def undo():
        os.unlink(path)
        subprocess.run(["bpftool", "map", "pin", "id", str(orig), path], check=True)
    return undo


# id, what spoils the pins, what stderr must say (the real cause, not "Invalid argument")
SPOILED = [
    ("newer-layout", newer_layout, ("layout 99", "cannot reuse them", "detach every guard")),
    ("map-mismatch", foreign_map_pinned, ("couldn't reuse pinned map", "vg_ratelimit")),
]


@pytest.mark.parametrize("spoil,says", [s[1:] for s in SPOILED], ids=[s[0] for s in SPOILED])
def test_pins_it_cannot_reuse_refused(vg, kernel_lock, topo, spoil, says):
    """Pins this binary cannot reuse as they are: attach exits 1 with the real cause (libbpf's
    own warning included) and changes nothing; the guard there keeps enforcing."""
    with Guard(vg, topo, topo.cgroup("a")) as a:
        progs = cg_progs(a.cg)
        undo = spoil(pin_root())
        try:
            b = topo.cgroup("b")
            r = subprocess.run(Guard(vg, topo, b).argv(), capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 1, r
            missing = [s for s in says if s not in r.stderr]
            assert missing == [], f"stderr does not say {missing}: {r.stderr}"
            assert cg_progs(b) == [], "a refused attach left programs on its cgroup"
            assert cg_progs(a.cg) == progs, "a refused attach changed the guard that was there"
        finally:
            undo()
        before = Snapshot(topo, a)
        assert a.run([topo.vgprobe, "sendto", topo.inet_host6, "9"], "nobody") == \
            "sent 0/1 errno EPERM"
        before.expect(denied={"ipv6": 1})
