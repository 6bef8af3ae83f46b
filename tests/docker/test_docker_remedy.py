"""The agent acts on containers through the engine (issue 14): restart-dependents and on-closed.

The world is tests/docker/dockerworld.py's: a VPN container whose namespace holds the tunnel,
clients in its namespace (`--network container:<vpn>`) below the guarded slice, the far side
counted (tests/lib/vgworld.py). The clients flood the Internet host from every start, so what
leaves off the tunnel at any moment is counted where it would arrive (the LAN counter: the
veth, the fallback path); the kernel guard denies meanwhile, the agent only brings the
clients back (or pauses them).

  restart-dependents  the VPN container restarts (a new namespace, the tunnel made there a
                      moment later): the agent restarts the clients left in the old namespace,
                      once the new tunnel exists; they reach the far side through it. A VPN
                      container that restarts in a loop gets its clients restarted at once,
                      then 10 s later, not at each of its starts (user/agent/restart_budget.h).
  on-closed           the tunnel is deleted: the guard is closed for its packets (no tunnel);
                      the clients are paused (stopped) within a fraction of a second, resumed
                      (started) when the tunnel is back. What the agent holds is given back
                      when it stops (SIGTERM), when a reload turns on-closed off and when the
                      guard is detached beside it (let go); the guard, still closed in the
                      kernel, denies the resumed client in the first two.

Run one case: cd tests && pytest-3 docker/test_docker_remedy.py -k 'pause'
"""
import os
import time

import pytest

from vgagent import write_config
from vgdocker import netns_of
from vgproc import wait_until
from vgworld import Attempt, gid_of, words

# From every start: a datagram per ms to the Internet host for two minutes. PID 1 is sleep,
# which ignores SIGTERM: the clients are made with a short stop timeout.
FLOOD = ("vgprobe flood udp {I} 7030 --seconds 120 --interval-us 1000 --unconnected "
         ">/dev/null 2>&1 & exec sleep 100000")
STOP = ("--stop-timeout", "1")


def docker_records(a, action):
    return [r for r in a.events("docker") if r.get("action") == action]


def restarts_of(a, c):
    return [r for r in docker_records(a, "restart") if r.get("id") == c.id]


def unpauses_of(a, c):
    return [r for r in docker_records(a, "unpause") if r.get("id") == c.id]


def state_of(w, c):
    return w.e.inspect(c.id, "{{.State.Status}}")


def vpn_restart(w):
    """The VPN container restarted and its tunnel made in its new namespace: its new PID."""
    w.t.tunnel_down("del")
    w.vpn.restart()
    pid = w.vpn.pid
    w.t.home_move(pid)
    return pid


def flooding_clients(w, n):
    return [w.client(f"vgdep{i}", cmd=("sh", "-c", words(w.t, FLOOD)), opts=STOP)
            for i in range(n)]


def remedy_agent(w, *more):
    return w.agent("--cgroup", w.slice, "--tunnel", w.t.wg_client,
                   "--tunnel-container", w.vpn.name, *more)


def reach_through_the_tunnel(w, clients):
    """Each client's 10 datagrams counted at the far side of the tunnel."""
    for c in clients:
        at = Attempt(w.world)
        assert c.exec("vgprobe", "sendto", w.t.inet_host, "7004", "--count", "10",
                      "--interval-us", "2000") == "sent 10/10"
        at.expect(far={"tunnel": ">=10"})


def given_back(w, a, c, t0, after):
    """Waits for c running again and its unpause record: (seconds since t0, the records)."""
    assert wait_until(lambda: state_of(w, c) == "running", 15, 0.05), \
        f"{c.name} is {state_of(w, c)} {time.monotonic() - t0:.1f} s after {after}: " \
        f"{a.events('docker')}; reload records {a.events('reload')}"
    back_s = time.monotonic() - t0
    # The record is written once the engine has answered: a moment after the state changed.
    assert wait_until(lambda: unpauses_of(a, c), 5, 0.05), a.events("docker")
    return back_s, unpauses_of(a, c)


def test_restart_dependents_brings_clients_back_through_the_new_tunnel(world, vg, note):
    w, t = world, world.t
    clients = flooding_clients(w, 2)
    a = remedy_agent(w, "--restart-dependents")
    gid = gid_of(w.slice)
    first = Attempt(w.world)
    assert wait_until(lambda: first.moved().get("tunnel", 0) > 100, 10, 0.1), "no flood"
    # Nothing to restart at the agent's start: the clients are in the VPN's namespace.
    assert not docker_records(a, "restart"), docker_records(a, "restart")
    at = Attempt(w.world, vg, gid)
    t0 = time.monotonic()
    pid2 = vpn_restart(w)
    t_up = time.monotonic()  # the new tunnel exists from here
    new_ns = netns_of(pid2)
    back = {}

    def all_back():
        for c in clients:
            if c.name not in back and restarts_of(a, c):
                c._pid = None  # restarted by the agent: a new init
                if c.netns == new_ns:
                    back[c.name] = time.monotonic() - t_up
        return len(back) == len(clients)
    assert wait_until(all_back, 60, 0.1), \
        f"not every client came back: {back}; docker records {a.events('docker')}"
    # Both reach the far side through the new tunnel: their floods, and a counted send.
    reach_through_the_tunnel(w, clients)
    took = time.monotonic() - t_up
    # Throughout: nothing on the fallback path (the old namespace's floods were denied).
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")
    d = at.denials_moved()
    assert d.get("no_tunnel", 0) + d.get("netns", 0) > 0, f"the old floods were not denied: {d}"
    recs = docker_records(a, "restart")
    assert len(recs) == 2 and all(r.get("result") == "done" and r.get("guard") for r in recs), recs
    note(f"VPN restarted and its tunnel made in {t_up - t0:.2f} s; tunnel up -> clients back in "
         f"the new namespace: {', '.join(f'{v:.2f} s' for v in sorted(back.values()))} (docker "
         f"restart took {', '.join(str(r.get('took_s')) for r in recs)} s); -> both through the new "
         f"tunnel: {took:.2f} s; 0 packets on the fallback path")


def test_a_vpn_restarting_in_a_loop_does_not_restart_clients_in_a_loop(world, vg, note):
    w = world
    (c,) = flooding_clients(w, 1)
    a = remedy_agent(w, "--restart-dependents")
    at = Attempt(w.world, vg, gid_of(w.slice))
    t0 = time.monotonic()
    for _ in range(4):
        pid = vpn_restart(w)
    loop_s = time.monotonic() - t0
    final_ns = netns_of(pid)

    def settled():
        c._pid = None
        return c.netns == final_ns
    # At once after the first start, then once more when the 10 s back-off has passed.
    assert wait_until(settled, 40, 0.2), f"the client did not end in the last namespace: " \
                                         f"{a.events('docker')}"
    time.sleep(2)
    rounds = restarts_of(a, c)
    assert 1 <= len(rounds) <= 2, f"{len(rounds)} restarts for 4 VPN starts: {rounds}"
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")
    note(f"4 VPN restarts in {loop_s:.1f} s: {len(rounds)} client restarts, "
         f"the client in the last namespace after {time.monotonic() - t0:.1f} s")


@pytest.mark.parametrize("how,held,resumed", [
    ("pause", "paused", "running"),
    ("stop", "exited", "running"),
])
def test_on_closed_holds_clients_while_the_tunnel_is_gone(world, vg, note, how, held, resumed):
    w, t = world, world.t
    (c,) = flooding_clients(w, 1)
    a = remedy_agent(w, "--on-closed", how)
    at = Attempt(w.world, vg, gid_of(w.slice))
    t0 = time.monotonic()
    t.tunnel_down("del")
    assert wait_until(lambda: state_of(w, c) == held, 20, 0.05), \
        f"{c.name} is {state_of(w, c)}: {a.events('docker')}"
    held_s = time.monotonic() - t0
    t.tunnel_up()
    t1 = time.monotonic()
    assert wait_until(lambda: state_of(w, c) == resumed, 20, 0.05), \
        f"{c.name} is {state_of(w, c)}: {a.events('docker')}"
    resumed_s = time.monotonic() - t1
    acts = [r.get("action") for r in a.events("docker") if r.get("id") == c.id]
    assert acts == [how, "unpause" if how == "pause" else "start"], a.events("docker")
    c._pid = None
    assert wait_until(lambda: at.moved().get("tunnel", 0) > 100, 10, 0.1), \
        "the resumed client's flood does not reach the far side through the tunnel"
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")
    note(f"on-closed {how}: tunnel deleted -> {held} in {held_s:.2f} s; "
         f"tunnel back -> {resumed} in {resumed_s:.2f} s; 0 packets off the tunnel")


def resumed_flood_denied(w, c, at, reason="no_tunnel"):
    """The resumed client floods again, and the guard, still in the kernel, denies it (reason):
    0 packets off the tunnel."""
    c._pid = None
    assert wait_until(lambda: at.denials_moved().get(reason, 0) > 100, 10, 0.1), \
        f"the resumed client's flood is not denied ({reason}): {at.denials_moved()}"
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")


@pytest.mark.parametrize("how,held", [("pause", "paused"), ("stop", "exited")])
def test_on_closed_gives_the_clients_back_when_the_agent_stops(world, vg, note, how, held):
    w, t = world, world.t
    (c,) = flooding_clients(w, 1)
    a = remedy_agent(w, "--on-closed", how)
    at = Attempt(w.world, vg, gid_of(w.slice))
    t.tunnel_down("del")
    assert wait_until(lambda: state_of(w, c) == held, 20, 0.05), \
        f"{c.name} is {state_of(w, c)}: {a.events('docker')}"
    t0 = time.monotonic()
    stop_s, rc = a.stop()
    assert rc == 0, f"the agent exited {rc}:\n{a.output()[-2000:]}"
    # An agent that held it until its end must not leave it held for good: nobody else will.
    assert wait_until(lambda: state_of(w, c) == "running", 15, 0.05), \
        f"{c.name} is {state_of(w, c)} {time.monotonic() - t0:.1f} s after the agent's SIGTERM: " \
        f"{a.events('docker')}"
    back_s = time.monotonic() - t0
    acts = [(r.get("action"), r.get("result")) for r in a.events("docker") if r.get("id") == c.id]
    assert acts == [(how, "done"), ("unpause" if how == "pause" else "start", "done")], \
        a.events("docker")
    resumed_flood_denied(w, c, at)
    note(f"on-closed {how}: agent SIGTERMed while holding -> exited in {stop_s:.2f} s, "
         f"{c.name} running {back_s:.2f} s after the SIGTERM; the guard still denies it")


def test_a_reload_to_on_closed_none_gives_the_clients_back(world, vg, note):
    """A reload needs the tunnel (one that is missing is refused): the guard is kept closed by
    a probe that never passes instead (nothing listens on that port of the Internet host)."""
    w, t = world, world.t
    (c,) = flooding_clients(w, 1)
    cfg = os.path.join(t.dir, f"remedy.{w.s}.conf")

    def config(on_closed):
        write_config(cfg, [], [("vpn", [("cgroup", w.slice), ("tunnel", t.wg_client),
                                        ("tunnel-container", w.vpn.name),
                                        ("probe-url", f"http://{t.inet_host}:7099/ip"),
                                        ("probe-interval", "1s"), ("on-closed", on_closed)])])
    config("pause")
    a = w.agent("--config", cfg)
    at = Attempt(w.world, vg, gid_of(w.slice))
    assert wait_until(lambda: state_of(w, c) == "paused", 20, 0.05), \
        f"{c.name} is {state_of(w, c)}: {a.events('docker')}"
    config("none")
    t0 = time.monotonic()
    a.hup()
    # The guard stays closed: only on-closed's being turned off gives the client back.
    back_s, rel = given_back(w, a, c, t0, "the reload to on-closed = none")
    assert [r.get("result") for r in rel] == ["done"], a.events("docker")
    resumed_flood_denied(w, c, at, "closed")
    note(f"reload to on-closed = none while paused -> running in {back_s:.2f} s "
         f"(why: {rel[0].get('why')!r}); the guard still denies it")


def test_a_guard_let_go_gives_its_clients_back(world, vg, note):
    """Detached by someone else while its client is paused: the agent lets the guard go (and,
    with no guard left, exits), giving the client back first."""
    w, t = world, world.t
    (c,) = flooding_clients(w, 1)
    # A tick a second: the agent sees the detach at its next tick.
    a = remedy_agent(w, "--on-closed", "pause", "--probe-interval", "1s")
    t.tunnel_down("del")
    assert wait_until(lambda: state_of(w, c) == "paused", 20, 0.05), \
        f"{c.name} is {state_of(w, c)}: {a.events('docker')}"
    t0 = time.monotonic()
    r = w.vg_run("detach", "--cgroup", w.slice)
    assert r.returncode == 0, r.stderr
    back_s, rel = given_back(w, a, c, t0, "the detach")
    assert [(r.get("why"), r.get("result")) for r in rel] == [("guard let go", "done")], \
        a.events("docker")
    note(f"guard detached while its client was paused -> running {back_s:.2f} s later")
