"""vpnguard-bpf's command line: --help, --version, status with nothing attached, the
argument-error table (exit status, one message naming the culprit, nothing changed) and the
forms a --cgroup path may take.

One world for the module (tests/lib/vgcli.py's cli_world: routing "subnets", the kernel lock
held). Each case attaches its own guards and detaches them after. The argument-error rows run
beside a fresh tunnel guard A and gateway guard B, and compare the pins, the policy, state,
tunnel and guard maps, the programs on every cgroup named and the agent lock, before and after
(tests/lib/vgworld.py's state_snapshot). Commands run from /, as root unless a row says nobody.

Run one case: pytest-3 tests/kernel/test_cli_usage.py -k 'bad_input and netns and missing'
"""
import json
import os
import re

import pytest

from vgcli import BAD, BAD_IDS, BAD_MULTI, bad_targets, cli_world, guard, run_bad
from vgguard import Guard, pin_root
from vgworld import (Attempt, assert_guarded, assert_unguarded, cg_rel, gid_of, guard_status,
                     probe, run_vg, snapshot_diff, state_snapshot)


@pytest.fixture(scope="module")
def w(vg):
    with cli_world(vg) as w:
        yield w


# -- no world needed -------------------------------------------------------------------
@pytest.mark.parametrize("args,stdout", [
    ("--help", r"(?s)usage:.*vpnguard-bpf attach.*"),
    ("--version", r"vpnguard-bpf [0-9]+\.[0-9]+\.[0-9]+\n"),
], ids=["help", "version"])
def test_help_and_version(vg, args, stdout):
    r = run_vg(vg, args)
    assert (r.returncode, r.stderr) == (0, ""), r
    assert re.fullmatch(stdout, r.stdout), r.stdout


@pytest.fixture
def no_pins():
    """A pin root of its own that does not exist: nothing attached, whatever else runs."""
    root = pin_root() + "-none"
    assert not os.path.exists(root), f"{root} exists"
    return dict(os.environ, VPNGUARD_PIN_ROOT=root)


@pytest.mark.parametrize("args", ["status", "status --json"], ids=["text", "json"])
def test_status_nothing_attached(vg, no_pins, args):
    r = run_vg(vg, *args.split(), env=no_pins)
    assert r.returncode == 0, r.stderr
    if args == "status":
        assert r.stdout == "no guards attached\n", r.stdout
    else:
        assert json.loads(r.stdout)["guards"] == [], r.stdout


# -- the argument-error table --------------------------------------------------------
@pytest.fixture
def beside(w):
    """A tunnel guard A and a gateway guard B: the state a wrong command must leave alone."""
    t = w.t
    with guard(w, "a", "--dns", t.resolver, tunnel=True) as a, \
            guard(w, "b", "--gateway", f"{t.inet_host}:1080", "--allow", t.lan_net) as b, \
            bad_targets(w) as x:
        yield a, b, x


@pytest.mark.parametrize("row", BAD, ids=BAD_IDS)
def test_bad_input(w, beside, row):
    a, b, x = beside
    name, exit_re, *_ = row
    cgs = [a.cg, b.cg, x["X"], x["X2"], x["LONG"]]
    base = state_snapshot(cgs)
    r, needle = run_bad(w, row, x, a.cg)
    msgs = [line for line in r.stderr.splitlines() if line.startswith("vpnguard-bpf:")]
    assert re.fullmatch(exit_re, str(r.returncode)), f"exit {r.returncode}: {r.stderr}"
    assert r.stdout == "", r.stdout
    assert len(msgs) == 1 and r.stderr.startswith("vpnguard-bpf:"), r.stderr
    assert needle in msgs[0], f"the message must name {needle!r}: {msgs[0]}"
    diff = snapshot_diff(base, state_snapshot(cgs))
    assert diff == [], "state changed:\n" + "\n".join(diff)


@pytest.mark.parametrize("row", BAD_MULTI, ids=[r[0] for r in BAD_MULTI])
def test_failed_multi_attach_leaves_no_guard(w, beside, row):
    """Once the leftovers are detached (detach --cgroup also deletes map entries of a guard
    with no pins), the cgroups a failed attach named first are as unguarded as before."""
    _, _, x = beside
    run_bad(w, row, x, beside[0].cg)
    run_vg(w.vg, "detach", "--cgroup", x["X"], "--cgroup", x["X2"])
    for cg in (x["X"], x["X2"]):
        assert_unguarded(cg)
        assert not os.path.exists(os.path.join(pin_root(), str(gid_of(cg))))
    before = Attempt(w)
    assert probe(w.t, x["X"], f"sendto {w.t.inet_host6} 9") == "sent 1/1"
    before.expect(far={"leak6": 1})


# -- the forms of a --cgroup path ----------------------------------------------------
def forms(t, cg):
    rel = cg_rel(t.cg2, cg)
    return {"absolute": cg, "below the mount": rel, "below the mount, no slash": rel[1:],
            "under /sys/fs/cgroup": "/sys/fs/cgroup" + rel, "trailing slash": cg + "/"}


FORMS = ["absolute", "below the mount", "below the mount, no slash", "under /sys/fs/cgroup",
         "trailing slash"]


@pytest.mark.parametrize("form", FORMS)
def test_cgroup_path_form(w, form):
    """Attach by one form, detach by the next: both name the same cgroup (cwd /)."""
    t = w.t
    g = Guard(w.vg, t, t.cgroup("paths"), tunnel=False)
    f = forms(t, g.cg)
    if form == "under /sys/fs/cgroup":
        assert t.cg2 != "/sys/fs/cgroup", "this machine is not hybrid: the form is not exercised"
    g.attached = True
    try:
        r = run_vg(w.vg, "attach", "--cgroup", f[form], "--gateway", t.inet_host, "--no-agent")
        assert r.returncode == 0, r.stderr
        assert os.path.exists(os.path.join(pin_root(), str(g.gid), "egress"))
        assert guard_status(w.vg, g.gid)["cgroup"] == cg_rel(t.cg2, g.cg)
        assert_guarded(g.cg)
        before = Attempt(w, w.vg, g.gid)
        assert probe(t, g.cg, f"sendto {t.inet_host6} 9") == "sent 0/1 errno EPERM"
        before.expect(denied={"ipv6": 1})
        other = f[FORMS[(FORMS.index(form) + 1) % len(FORMS)]]
        r = run_vg(w.vg, "detach", "--cgroup", other)
        assert r.returncode == 0, f"detach --cgroup {other}: {r.stderr}"
        g.attached = False
        assert not os.path.exists(os.path.join(pin_root(), str(g.gid)))
        assert_unguarded(g.cg)
    finally:
        g.close()


def test_cgroup_path_with_dotdot(w):
    """A full path with '..' components resolves to the same cgroup."""
    t = w.t
    g = Guard(w.vg, t, t.cgroup("paths"), tunnel=False)
    g.attached = True
    try:
        top = os.path.basename(t.cg_root)
        r = run_vg(w.vg, "attach", "--cgroup", f"{t.cg_root}/../{top}/paths", "--gateway",
                   t.inet_host, "--no-agent")
        assert r.returncode == 0, r.stderr
        assert guard_status(w.vg, g.gid)["cgroup"] == cg_rel(t.cg2, g.cg)
        assert run_vg(w.vg, "detach", "--cgroup", g.cg).returncode == 0
        g.attached = False
        assert not os.path.exists(os.path.join(pin_root(), str(g.gid)))
    finally:
        g.close()
