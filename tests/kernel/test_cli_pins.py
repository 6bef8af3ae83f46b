"""Pins and maps as bpftool shows them, and detach: of one guard (only its own entries go), of
everything (every pin of vpnguard, nothing else), and a world that leaves nothing behind.

One world for the module (tests/lib/vgcli.py's cli_world, routing "subnets"). Each case
attaches fresh guards: mostly the pair of tests/lib/vgcli.py's guard_pair (A tunnel, B
gateway), A having refused one datagram so the counter maps hold entries of it. Detach all
runs beside a map pinned outside the pin root, which it must leave alone. Links are looked at
only where they hold our programs or sit on our cgroups: the machine's own vpnguard may run.

Run one case: pytest-3 tests/kernel/test_cli_pins.py -k detach_all
"""
import contextlib
import os
import signal
import stat
import subprocess

import pytest

from vgcli import cli_world, guard, guard_pair, judge, links_of, wait_gone
from vgguard import Guard, pin_root
from vgproc import pid_alive
from vgtopo import Topology
from vgworld import (GUARD_PINS, MAP_PINS, Attempt, assert_guarded, assert_unguarded,
                     cg_prog_ids, guard_status, map_dump, map_refs, probe, prog_alive, run_vg,
                     status_json, tc_prog_id)


@pytest.fixture(scope="module")
def w(vg):
    with cli_world(vg) as w:
        yield w


@pytest.fixture
def pair(w):
    with guard_pair(w) as (a, b):
        judge(w, a, "nobody", "sendto {D} 53", "sent 0/1 errno EPERM", denied={"dns": 1})
        yield a, b


# map, the field names its dump must show (the maps carry BTF)
FIELDS = [("vg_policy", "mode netns_cookie tunnel allow dns gw n_allow"),
          ("vg_tunnels", "ifname ifindex netns_cookie addrs"),
          ("vg_counters", "cgroup_id reason denied"),
          ("vg_state", "state lease_deadline_ns"),
          ("vg_guards", "cgroup")]


@pytest.mark.parametrize("name,fields", FIELDS, ids=[f[0] for f in FIELDS])
def test_dump_names_fields(pair, name, fields):
    r = subprocess.run(["bpftool", "map", "dump", "pinned", os.path.join(pin_root(), name)],
                       capture_output=True, text=True, timeout=60)
    missing = [f for f in fields.split() if f'"{f}":' not in r.stdout]
    assert missing == [], f"{name}: no {missing} in:\n{r.stdout[:1500]}{r.stderr}"


def test_tunnels_entry(w, pair):
    t = w.t
    got = [(e["key"]["ifname"], e["value"]["ifindex"]) for e in map_dump("vg_tunnels")]
    assert (t.wg_client, t.wg_client_ifindex) in got, got


def test_pin_modes(pair):
    a, _ = pair
    root = pin_root()
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    bad = []
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.stat(p)
            want = 0o700 if n in dirs else 0o600
            if stat.S_IMODE(st.st_mode) != want or st.st_uid != 0:
                bad.append(f"{oct(stat.S_IMODE(st.st_mode))} uid {st.st_uid} {p}")
    assert os.stat(root).st_uid == 0 and bad == [], bad
    missing = [m for m in MAP_PINS if not os.path.exists(os.path.join(root, m))]
    assert missing == [], missing
    names = sorted("tc_" if n.startswith("tc_") else n
                   for n in os.listdir(os.path.join(root, str(a.gid))))
    assert names == sorted(GUARD_PINS + ("tc_",)), names


def test_detach_one_guard(w, pair):
    """detach --cgroup A: A's pins, map entries and tc program go; B keeps everything."""
    a, b = pair
    for m in ("vg_policy", "vg_state", "vg_guards", "vg_counters"):
        assert map_refs(m, a.gid) >= 1, f"no entry of A in {m} before the detach"
    tc = tc_prog_id(a.gid)
    assert prog_alive(tc), "A's tc program is not loaded"
    r = run_vg(w.vg, "detach", "--cgroup", a.cg)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
    a.attached = False
    assert not os.path.exists(os.path.join(pin_root(), str(a.gid)))
    left = {m: map_refs(m, a.gid) for m in ("vg_policy", "vg_state", "vg_guards", "vg_counters",
                                            "vg_ratelimit")}
    assert set(left.values()) == {0}, f"A's entries left: {left}"
    assert map_dump("vg_tunnels") == [], "an entry for a tunnel no guard uses"
    assert_unguarded(a.cg)
    assert wait_gone([tc]) == [], "A's tc program is still loaded"
    assert_guarded(b.cg)
    assert os.path.exists(os.path.join(pin_root(), str(b.gid), "egress"))
    assert guard_status(w.vg, b.gid)["mode"] == "gateway"
    assert [g["cgroup_id"] for g in status_json(w.vg)["guards"]] == [b.gid]
    before = Attempt(w)
    assert probe(w.t, a.cg, f"sendto {w.t.inet_host6} 9", "nobody") == "sent 1/1"
    before.expect(far={"leak6": 1})


@pytest.fixture
def foreign_pin():
    """A map pinned beside the pin root: not vpnguard's."""
    path = f"/sys/fs/bpf/vgforeign_{os.getpid()}"
    subprocess.run(["bpftool", "map", "create", path, "type", "hash", "key", "4", "value", "4",
                    "entries", "1", "name", "foreign"], check=True, capture_output=True)
    try:
        yield path
    finally:
        os.unlink(path)
        assert not os.path.exists(path)


def test_detach_all(w, foreign_pin):
    """detach (no --cgroup): every guard, also one an agent made, and nothing else."""
    t = w.t
    with contextlib.ExitStack() as stack:
        gs = [stack.enter_context(guard(w, n, *a, tunnel=tun)) for n, a, tun in (
            ("gw", ("--gateway", f"{t.inet_host}:1080", "--gateway", t.resolver, "--allow",
                    t.lan_net, "--dns", t.resolver), False),
            ("tun", ("--allow", t.lan_net, "--dns", t.resolver), True),
            ("multiB", ("--gateway", f"{t.inet_host}:1080", "--allow", t.lan_net), False),
            ("detachall", (), True))]
        ev = stack.enter_context(guard(w, "ev", "--gateway", f"{t.inet_host}:1080", "--dns",
                                       t.resolver, agent=True))
        ev.proc.send_signal(signal.SIGTERM)  # the guard an agent made outlives it
        assert ev.proc.wait(30) == 0, ev.stderr()
        gs.append(ev)
        tcs = [tc_prog_id(g.gid) for g in gs if g.tunnel]
        assert all(prog_alive(p) for p in tcs), tcs
        for g in gs:
            assert_guarded(g.cg)
        progs = tcs + [p for g in gs for p in cg_prog_ids(g.cg)]
        assert len(set(progs)) >= 7 * len(gs) + len(tcs), progs
        r = run_vg(w.vg, "detach")
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), r
        for g in gs:
            g.attached = False
        assert not os.path.exists(pin_root())
        for g in gs:
            assert_unguarded(g.cg)
        assert wait_gone(progs) == [], "programs still loaded (cgroup or tcx)"
        assert links_of(set(progs), {g.gid for g in gs}) == []
        r = subprocess.run(["bpftool", "map", "show", "pinned", foreign_pin], capture_output=True,
                           text=True)
        assert r.returncode == 0 and "name foreign" in r.stdout, r
        r = run_vg(w.vg, "status")
        assert (r.returncode, r.stdout) == (0, "no guards attached\n"), r
        before = Attempt(w)
        assert probe(t, gs[3].cg, f"sendto {t.inet_host6} 9", "nobody") == "sent 1/1"
        assert probe(t, gs[0].cg, f"sendto {t.rogue_dns} 53", "nobody") == "sent 1/1"
        before.expect(far={"leak6": 1, "tunnel": 1})
        r = run_vg(w.vg, "detach")
        assert (r.returncode, r.stdout, r.stderr) == (0, "", ""), "detach with nothing attached"


def test_detach_all_of_another_root_leaves_these(w, pair):
    """detach (no --cgroup) under another pin root (a second install, the test suites beside
    the machine's own vpnguard) detaches nothing of this root: guards whose maps are pinned
    in a root are that root's, even where their own pins are gone."""
    a, b = pair
    other = f"{pin_root()}-other"
    env = dict(os.environ, VPNGUARD_PIN_ROOT=other)
    progs = {g.gid: cg_prog_ids(g.cg) for g in pair}
    os.unlink(os.path.join(pin_root(), str(a.gid), "connect4"))  # one pin of A's gone
    try:
        r = run_vg(w.vg, "detach", env=env)
        assert (r.returncode, r.stderr) == (0, ""), r
        assert not os.path.exists(other), f"{other}: made of this root's guards"
    finally:
        subprocess.run(["rm", "-rf", other], check=False)
    for g in pair:
        assert_guarded(g.cg)
        assert cg_prog_ids(g.cg) == progs[g.gid], f"{g.cg}: its programs changed"
    for g in pair:
        judge(w, g, "nobody", "sendto {I6} 9", "sent 0/1 errno EPERM", denied={"ipv6": 1})


def test_world_leaves_nothing(vg, w):
    """A world of its own with a guard of each mode: once it is down no namespace, cgroup,
    wireguard-go or pin of it is left."""
    with Topology() as t:
        gs = [Guard(vg, t, t.cgroup("a")), Guard(vg, t, t.cgroup("b"), "--gateway", t.inet_host,
                                                 tunnel=False)]
        try:
            for g in gs:
                g.attach()
        finally:
            for g in gs:
                g.close()
        names, cg_root = (t.home, t.inet), t.cg_root
        wg = [t.wg_client_pid, t.wg_server_pid]
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not [n for n in names if n in listed.split()], listed
    assert not os.path.exists(cg_root)
    assert wg[0] and wg[1] and not any(pid_alive(p) for p in wg), wg
    assert not any(os.path.exists(os.path.join(pin_root(), str(g.gid))) for g in gs)
    assert not os.path.exists(pin_root()), "pins left after the last guard was detached"
