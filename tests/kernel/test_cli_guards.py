"""Several guards side by side: each cgroup gets its own policy, and stays with it after wrong
commands and after the other guard is detached.

One world for the module (tests/lib/vgcli.py's cli_world, routing "subnets"). Each case
attaches a fresh pair: A a tunnel guard `--dns {R}` (no LAN), B a gateway guard
`--gateway {I}:1080 --allow {L}`. A row runs, as nobody, in A's or B's cgroup after a prelude:
nothing ("side by side"), every row of the argument-error table (tests/lib/vgcli.py BAD),
or `detach --cgroup A` (B's rows only). Judged by the result line, the far side, the denial
counters of the row's guard and, for the allowed TCP row, what the listener in INET heard.
A's own tunnel facts in status --json are test_rules.py's test_guard_status.

Run one row: pytest-3 tests/kernel/test_cli_guards.py -k 'detach and LAN'
"""
import re

import pytest

from vgcli import BAD, bad_targets, cli_world, guard_pair, judge, run_bad
from vgworld import cg_rel, guard_status, run_vg


@pytest.fixture(scope="module")
def w(vg):
    with cli_world(vg) as w:
        yield w


@pytest.fixture
def pair(w):
    with guard_pair(w) as ab:
        yield ab


def after_bad_inputs(w, a, b):
    with bad_targets(w) as x:
        for row in BAD:
            run_bad(w, row, x, a.cg)


def after_detach_a(w, a, b):
    r = run_vg(w.vg, "detach", "--cgroup", a.cg)
    assert r.returncode == 0, r.stderr
    a.attached = False


PRELUDES = {"side by side": None, "after bad inputs": after_bad_inputs,
            "after detach A": after_detach_a}

# guard, name, result line, far side, denials, vgprobe arguments, what a listener heard
MULTI = [
    ("A", "Internet host through the tunnel", "sent 1/1", {"tunnel": 1}, {}, "sendto {I} 9", None),
    ("A", "any host through the tunnel (no gateway rule)", "sent 1/1", {"tunnel": 1}, {},
     "sendto {D} 9", None),
    ("A", "IPv6", "sent 0/1 errno EPERM", {}, {"ipv6": 1}, "sendto {I6} 9", None),
    ("A", "LAN not allowed for A: steered into the tunnel", "sent 1/1", {"tunnel": 1}, {},
     "sendto {L} 9", None),
    ("B", "non-gateway host", "sent 0/1 errno EPERM", {}, {"not_gateway": 1}, "sendto {D} 9", None),
    ("B", "gateway addr, other port", "sent 0/1 errno EPERM", {}, {"not_gateway": 1},
     "sendto {I} 9", None),
    ("B", "gateway addr:port", "connected", {"tunnel": ">=1"}, {}, "connect tcp {I} 1080",
     ("tcp", 1080, "received connections=1 bytes=0 peer={VPN}")),
    ("B", "LAN allowed for B", "sent 1/1", {"lan": 1}, {}, "sendto {L} 9", None),
]
ROWS = [(p,) + r for p in PRELUDES for r in MULTI if not (p == "after detach A" and r[0] == "A")]
IDS = [f"{r[0]}-{r[1]}: {r[2]}" for r in ROWS]


@pytest.mark.parametrize("prelude,which,name,result,far,denied,args,listen", ROWS, ids=IDS)
def test_two_guards(w, pair, prelude, which, name, result, far, denied, args, listen):
    a, b = pair
    if PRELUDES[prelude]:
        PRELUDES[prelude](w, a, b)
    judge(w, a if which == "A" else b, "nobody", args, result, far, denied, listen)


def test_status_lists_both(w, pair):
    a, b = pair
    t = w.t
    r = run_vg(w.vg, "status")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    heads = {g: f"guard {cg_rel(t.cg2, g.cg)} (cgroup id {g.gid})" for g in (a, b)}
    for g, head in heads.items():
        assert head in lines, f"status does not list {head!r}:\n{r.stdout}"
    mode = lines[lines.index(heads[a]) + 1]
    assert re.search(rf"mode +tunnel {t.wg_client} in netns {t.home_netns} \(present\)",
                        mode), mode
    assert [guard_status(w.vg, g.gid)["mode"] for g in (a, b)] == ["tunnel", "gateway"]
