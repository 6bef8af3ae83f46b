"""What each CPU keeps of its guard, and for how long, on the real kernel.

The programs judge from what each CPU last read of its guard (the policy, the guard's state, the
tunnel) for at most VG_FACTS_TTL_NS plus a tick of the coarse clock (bpf/vpnguard.h, "Facts read
again"), and `attach` that replaces a policy returns only once no CPU can judge by the old one.
Each row keeps two senders (one per CPU, in the guard's cgroup, as nobody) sending unconnected
UDP to the listed resolver's port 853 through the tunnel, so that both CPUs hold the guard's
facts, changes what the guard may do, and reads the far side: every datagram carries the moment
it was sent, read before it was judged, and a receiver at the resolver in INET says the latest
one that arrived. Nothing sent later than the change's bound after the change's command
returned may arrive, and the senders' later attempts are refused with the row's reason.

The world and the fresh guard of each row are test_rule_order.py's.

Run one case: pytest-3 tests/kernel/test_facts_kept.py -k 'attach'
"""
import os
import signal
import subprocess
import time

import pytest

from test_rule_order import fresh_guard, put_policy, take_policy, world, write_state  # noqa: F401
from vgworld import PY, TOOLS

STAMP = os.path.join(TOOLS, "stamp_udp.py")
PORT = 853
FACTS_BOUND_NS = 1_000_000 + 10_000_000  # VG_FACTS_TTL_NS + VG_TICK_MAX_NS
WARM_S, AFTER_S = 0.5, 0.5


def drop_resolver(w, g):
    """attach again, the same guard without --dns RESOLVER: DNS to it is refused (rule 4)."""
    i = g.extra.index(w.t.resolver)
    g.extra[i - 1:i + 1] = []
    g.attach()
    return None


def delete_policy(w, g):
    """The policy deleted behind vpnguard's back; put back (by the row) once judged."""
    return take_policy(g.gid)


def close_guard(w, g):
    write_state(g.gid, 1)
    return None


# name, change, how long after its command returns the old facts may still be used, reason
ROWS = [
    ("attach replacing the policy: refused from its exit on", drop_resolver, 0, "dns"),
    ("policy deleted by bpftool: refused within 1 ms plus a tick", delete_policy,
     FACTS_BOUND_NS, "no_policy"),
    ("guard written CLOSED by bpftool: refused within 1 ms plus a tick", close_guard,
     FACTS_BOUND_NS, "closed"),
]


def latest_received(t, recv):
    """The receiver's line, once what wireguard-go still carries has arrived."""
    time.sleep(0.3)
    t.stop(recv, signal.SIGINT)
    return (recv.stdout.read().strip().splitlines() or [""])[-1].split()


def last_line(p, timeout):
    out, _ = p.communicate(timeout=timeout)
    return (out.strip().splitlines() or [""])[-1].split()


@pytest.mark.parametrize("change,bound_ns,reason", [r[1:] for r in ROWS],
                         ids=[r[0] for r in ROWS])
def test_kept(world, change, bound_ns, reason):  # noqa: F811
    w, t = world, world.t
    cpus = sorted(os.sched_getaffinity(0))[:2]
    with fresh_guard(w, "tunnel", {"open"}) as g:
        ready, stop = (os.path.join(t.dir, f"stamp.{reason}.{x}") for x in ("ready", "stop"))
        recv = t.spawn([PY, STAMP, "recv", t.resolver, str(PORT), "60", ready],
                       netns=t.inet, stdout=subprocess.PIPE, text=True)
        senders, taken = [], None
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(ready):
                assert time.monotonic() < deadline, "the receiver did not bind"
                time.sleep(0.02)
            before = g.denied()
            senders = [t.spawn([PY, STAMP, "send", t.resolver, str(PORT), stop, str(c)],
                               cg=w.cg, netns=t.home, user="nobody", stdout=subprocess.PIPE,
                               text=True) for c in cpus]
            time.sleep(WARM_S)
            taken = change(w, g)
            changed_ns = time.monotonic_ns()
            time.sleep(AFTER_S)
            open(stop, "w").close()
            sent = [last_line(p, 30) for p in senders]
            got = latest_received(t, recv)
        finally:
            if taken is not None:
                put_policy(g.gid, taken)
            for p in senders + [recv]:
                t.stop(p)
        denied = g.denied()
    for s in sent:
        assert len(s) == 4 and int(s[1]) > 0 and int(s[3]) > 0, \
            f"a sender should be let through before the change and refused after: {s}"
    assert len(got) == 4 and int(got[1]) > 0, f"nothing reached the resolver: {got}"
    late_ms = (int(got[3]) - changed_ns) / 1e6
    assert int(got[3]) <= changed_ns + bound_ns, \
        f"a datagram sent {late_ms:.3f} ms after the change returned went through " \
        f"(bound {bound_ns / 1e6:g} ms)"
    assert denied.get(reason, 0) > before.get(reason, 0), \
        f"no {reason} denial counted: {before} -> {denied}"
