"""The agent follows containers guarded by name through the engine's event stream.

The world of each test is tests/docker/test_docker_slice.py's (a VPN container holding the
tunnel, tests/lib/vgdocker.py); the containers guarded by name are below byname.slice and
the agent runs in the foreground (attach --container ... --log), DOCKER_HOST the engine's.
A restarted container has a new cgroup: the agent attaches it and detaches the old one. A
restarted VPN container has a new network namespace, and its tunnel is made there only after
its start: the refused reload is retried. Between the two, nothing on the fallback path.

The window of guarding by name is measured, beside a guarded slice: a container that floods
the LAN host (routed by the veth: the fallback path) from its first instruction, 2 s at a
datagram per 50 us; what arrives there got out before a guard held it. It floods from its
second start on (a marker file), so the start measured is one the agent follows.

Run one case: cd tests && pytest-3 docker/test_docker_follow.py -k 'window and slice'
"""
import os
import re
import subprocess
import time

import pytest

from vgdocker import container_cgroup_re, netns_of
from vgguard import pin_root
from vgproc import wait_until
from vgtopo import Topology
from vgworld import Attempt, assert_guarded, gid_of, guard_status, words

FLOOD = ("[ -e /tmp/flood ] && vgprobe flood udp {L} 7010 --seconds 2 --interval-us 50 "
         "--unconnected >/tmp/flood.out 2>/tmp/flood.err; exec sleep 100000")


def applied(a, name):
    """How many starts of container NAME the agent followed with an applied reload."""
    return sum(1 for r in a.events("docker") if r.get("container") == name and
               r.get("action") == "start" and r.get("reload") == "applied")


def restart_followed(a, c, timeout=20):
    before = applied(a, c.name)
    c.restart()
    return wait_until(lambda: applied(a, c.name) > before, timeout, 0.1)


def send10(c, t):
    return c.exec("vgprobe", "sendto", t.inet_host, "7004", "--count", "10",
                  "--interval-us", "2000")


def test_engine_event_stream_through_vpnguards_client(engine, vgdockerev, tmp_path):
    name = f"vgev-{Topology._pick_suffix()}"
    cidfile = str(tmp_path / "cid")
    engine.quiesce()  # no other container starts or dies meanwhile
    t0 = time.time_ns()
    try:
        r = engine.docker("run", "--rm", "--cidfile", cidfile, "--name", name,
                          "--network", "none", engine.image, "true")
        assert r.returncode == 0, r.stderr
        r = subprocess.run([vgdockerev, engine.sock, str(t0), "2"], capture_output=True,
                           text=True, timeout=20)
        got = [tuple(x.split()[:2]) for x in r.stdout.splitlines()]
        assert got == [("start", name), ("die", name)], r.stdout + r.stderr
    finally:
        if os.path.exists(cidfile):
            with open(cidfile) as f:
                engine.rm(f.read().strip())


def test_agent_follows_a_client_restart_and_stops_on_sigterm(world, vg):
    w, t = world, world.t
    c = w.client("vgbyname", parent=w.byname_parent)
    other = w.client("vgother", parent=w.byname_parent)
    a = w.agent(*w.by_name(c, other))
    old_id, other_id = gid_of(w.path(c.cgroup)), gid_of(w.path(other.cgroup))
    assert restart_followed(a, c), f"no applied reload for {c.name}: {a.events('docker')}"
    new = c.cgroup
    assert container_cgroup_re(w.rel(w.byname_parent)).fullmatch(new), new
    new_id = gid_of(w.path(new))
    assert new_id != old_id, "the restarted container kept its cgroup"
    assert_guarded(w.path(new))
    assert (guard_status(vg, new_id) or {}).get("cgroup") == new
    assert guard_status(vg, old_id) is None, "the old cgroup's guard is still there"
    assert not os.path.exists(os.path.join(pin_root(), str(old_id))), "its pins are left"
    assert guard_status(vg, other_id) is not None, "the other container lost its guard"
    at = Attempt(w.world, vg, new_id)
    assert send10(c, t) == "sent 10/10"
    at.expect(far={"tunnel": ">=10"})
    # Following the engine's stream does not keep the agent from stopping.
    took, rc = a.stop()
    assert took < 2.0 and rc == 0, f"SIGTERM: exit {rc} after {took:.2f} s"


@pytest.mark.parametrize("how", ["by-name", "slice"])
def test_window_at_a_container_start(world, vg, how, note):
    w, t = world, world.t
    if how == "slice":
        w.guard_slice()
    f = w.client("vgflood", parent=w.slice if how == "slice" else w.byname_parent,
                 cmd=("sh", "-c", words(t, FLOOD)))
    a = w.agent(*w.by_name(f)) if how == "by-name" else None
    f.exec("touch", "/tmp/flood")
    before = applied(a, f.name) if a else 0
    at = Attempt(w.world)
    f.restart()
    ran = re.compile(r"ok=\d+ failed=\d+")
    assert wait_until(lambda: ran.match(f.exec("cat", "/tmp/flood.out")), 30, 0.2), \
        f"the flood did not run: {f.exec('cat', '/tmp/flood.out', '/tmp/flood.err')}"
    flood = f.exec("cat", "/tmp/flood.out")
    if a is None:
        lan = at.expect(far={"tunnel": "*"})["lan"]
        note(f"WINDOW under a guarded slice: {lan} packets on the fallback path ({flood})")
        return
    assert wait_until(lambda: applied(a, f.name) > before, 20, 0.1), a.events("docker")
    t.settle()
    lan = at.moved()["lan"]
    ms = [r for r in a.events("docker") if r.get("container") == f.name and r.get("reload")][-1]
    assert isinstance(ms.get("after_start_ms"), (int, float)), ms
    note(f"WINDOW by name: {lan} packets on the fallback path, {ms['after_start_ms']} ms from "
         f"the start event to the applied reload ({flood}; 1 datagram / 50 us)")


def test_agent_follows_the_vpn_container_restart(world, vg):
    w, t = world, world.t
    c = w.client("vgbyname", parent=w.byname_parent)
    a = w.agent(*w.by_name(c))
    gid = gid_of(w.path(c.cgroup))
    # The client floods the Internet host through the whole gap: with the tunnel gone its
    # route is the fallback, until the client itself restarts into the new namespace.
    first = Attempt(w.world)
    c.exec("vgprobe", "flood", "udp", t.inet_host, "7020", "--seconds", "60",
           "--interval-us", "1000", detach=True)
    assert wait_until(lambda: first.moved().get("tunnel", 0) > 0, 10, 0.1), "no flood"
    at = Attempt(w.world, vg, gid)
    t.tunnel_down("del")
    w.vpn.restart()
    pid2 = w.vpn.pid
    assert netns_of(pid2) != c.netns, "the restarted VPN container kept its namespace"
    t.home_move(pid2)  # raises unless wire and tunnel are up in the new namespace
    want = f"/proc/{pid2}/ns/net"
    # The start came before the tunnel: that reload is refused, and retried each second.
    wait_until(lambda: (guard_status(vg, gid) or {}).get("netns") == want, 20, 0.2)
    st = guard_status(vg, gid) or {}
    assert (st.get("netns"), st.get("tunnel_present")) == (want, True), st
    # The record is written once the new set is taken, a moment after status shows it applied.
    def retried():
        reloads = a.events("reload")
        refused = [i for i, r in enumerate(reloads) if r.get("result") == "refused"]
        return refused and any(r.get("trigger") == "retry" and r.get("result") == "applied"
                               for r in reloads[refused[-1] + 1:])
    assert wait_until(retried, 5, 0.1), a.events("reload")
    # Datagrams already in wireguard-go when the tunnel went may still come out of it; the
    # new wire's MLD reports are not traffic.
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")
    d = at.denials_moved()
    assert d.get("no_tunnel", 0) + d.get("netns", 0) > 0, f"the flood was not denied: {d}"
    assert restart_followed(a, c), f"no applied reload for {c.name}: {a.events('docker')}"
    new_id = gid_of(w.path(c.cgroup))
    assert c.netns == netns_of(pid2), "the client is not in the new namespace"
    assert (guard_status(vg, new_id) or {}).get("netns") == want
    assert guard_status(vg, gid) is None, "the previous cgroup's guard is still there"
    at = Attempt(w.world, vg, new_id)
    assert send10(c, t) == "sent 10/10"
    at.expect(far={"tunnel": ">=10"})
