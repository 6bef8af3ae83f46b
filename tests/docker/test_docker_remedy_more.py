"""The agent's actions on containers, beyond test_docker_remedy.py: combined, alerted, gated.

The world and the clients are test_docker_remedy.py's (flooding the Internet host from every
start, the fallback path counted at the far side); each agent here posts its alerts to
tests/tools/webhook_sink.py on loopback (tests/lib/vgagent.py's Hook).

  restart-dependents + on-closed = pause   (examples/t2-gluetun/vpnguard.conf) the tunnel is
                      deleted: the clients are paused; the VPN container restarts (a new
                      namespace, its tunnel made there): the agent restarts them into it.
                      They end running in the new namespace and reach the far side through
                      the new tunnel; the restart gave them back (no unpause after it).
  alerts              every pause, unpause and restart is a `docker` record and a webhook
                      post whose title names the guard, the action and the container.
  the health gate     a VPN container with a healthcheck (a file decides) restarts while its
                      check fails: nothing is restarted while it is starting or unhealthy,
                      its tunnel there or not; once it is healthy the restart follows.

Run one case: cd tests && pytest-3 docker/test_docker_remedy_more.py -k 'gate'
"""
import json
import time

from test_docker_remedy import (docker_records, flooding_clients, reach_through_the_tunnel,
                                remedy_agent, state_of)
from vgagent import Hook, rec_time
from vgdocker import IPV6_ON, SLEEP, Container, netns_of
from vgproc import wait_until
from vgworld import Attempt, gid_of


def hooked_agent(w, *more):
    """remedy_agent with --webhook to a sink of the test's own (the world's close ends it, by
    PID): (agent, hook)."""
    hook = Hook(w.t, f"hook.{w.s}").start()
    return remedy_agent(w, "--webhook", hook.url, *more), hook


def posts_of(hook, c):
    """The webhook bodies of the docker records about container c, in order."""
    return [b for _, b in hook.posts(lambda r, b: b.get("event") == "docker" and
                                     b.get("id") == c.id)]


def assert_alerted(a, hook, clients, titles):
    """Each client's docker records, in order, were posted: the same records, each titled
    'vpnguard: GUARD <done> <name>' (titles: the <done> words, in order)."""
    for c in clients:
        recs = [r for r in a.events("docker") if r.get("id") == c.id]
        assert [r.get("result") for r in recs] == ["done"] * len(titles), \
            "\n".join(json.dumps(r, sort_keys=True) for r in recs)
        assert wait_until(lambda: len(posts_of(hook, c)) >= len(titles), 10, 0.05), \
            f"{c.name}: {len(posts_of(hook, c))} posts for {len(titles)} actions: {hook.posts()}"
        posts = posts_of(hook, c)
        assert [(p.get("action"), p.get("time")) for p in posts] == \
            [(r.get("action"), r.get("time")) for r in recs], (posts, recs)
        for p, done in zip(posts, titles):
            want = f"vpnguard: {p.get('guard')} {done} {c.name}"
            assert p.get("guard") and p.get("title") == want, (p, want)
            assert p.get("message", "").startswith(f"{want}: {p.get('why')}"), p
            assert p.get("content") == p.get("message"), p


def test_paused_clients_are_restarted_into_the_new_namespace(world, vg, note):
    w, t = world, world.t
    clients = flooding_clients(w, 2)
    a, hook = hooked_agent(w, "--restart-dependents", "--on-closed", "pause")
    at = Attempt(w.world, vg, gid_of(w.slice))
    t0 = time.monotonic()
    t.tunnel_down("del")
    assert wait_until(lambda: all(state_of(w, c) == "paused" for c in clients), 20, 0.05), \
        f"{[state_of(w, c) for c in clients]}: {a.events('docker')}"
    paused_s = time.monotonic() - t0
    # The VPN container restarts while they are paused; its tunnel is made in the new namespace.
    w.vpn.restart()
    pid2 = w.vpn.pid
    t.home_move(pid2)
    t_up = time.monotonic()
    new_ns = netns_of(pid2)
    back = {}

    def all_back():
        for c in clients:
            c._pid = None  # restarted by the agent: a new init
            if c.name not in back and state_of(w, c) == "running" and c.netns == new_ns:
                back[c.name] = time.monotonic() - t_up
        return len(back) == len(clients)
    assert wait_until(all_back, 60, 0.1), \
        f"not every client runs in the new namespace: {back}, " \
        f"{[state_of(w, c) for c in clients]}; docker records {a.events('docker')}"
    reach_through_the_tunnel(w, clients)
    # Settled: nothing more is done to them (no unpause of what the restart gave back).
    time.sleep(2)
    for c in clients:
        assert state_of(w, c) == "running", f"{c.name} is {state_of(w, c)}"
    assert_alerted(a, hook, clients, ["paused", "restarted"])
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")
    took = [r.get("took_s") for r in docker_records(a, "restart")]
    note(f"tunnel deleted -> both paused in {paused_s:.2f} s; VPN restarted, new tunnel up -> "
         f"both running in the new namespace: {', '.join(f'{v:.2f} s' for v in sorted(back.values()))}"
         f" (docker restart of a paused client took {', '.join(map(str, took))} s); "
         f"records and posts: pause, restart; 0 packets on the fallback path")


def test_alerts_of_a_hold_and_a_hand_unpaused_client(world, vg, note):
    """Two clients paused while the tunnel is gone, one unpaused by hand meanwhile: when the
    tunnel is back the other is unpaused, the first found so (an `already` record, said so in
    its alert); nothing failed, nothing is tried again."""
    w, t = world, world.t
    c1, c2 = flooding_clients(w, 2)
    a, hook = hooked_agent(w, "--on-closed", "pause")
    at = Attempt(w.world, vg, gid_of(w.slice))
    t.tunnel_down("del")
    assert wait_until(lambda: state_of(w, c1) == state_of(w, c2) == "paused", 20, 0.05), \
        f"{state_of(w, c1)}, {state_of(w, c2)}: {a.events('docker')}"
    w.e.docker("unpause", c2.id, check=True)
    t.tunnel_up()
    t0 = time.monotonic()
    assert wait_until(lambda: len([r for r in a.events("docker") if r.get("action") == "unpause"])
                      == 2, 20, 0.05), a.events("docker")
    back_s = time.monotonic() - t0
    time.sleep(6)  # past the 5 s after which a failed release would be tried again
    assert state_of(w, c1) == state_of(w, c2) == "running"
    assert_alerted(a, hook, [c1], ["paused", "unpaused"])
    recs = [r for r in a.events("docker") if r.get("id") == c2.id]
    assert [(r.get("action"), r.get("result")) for r in recs] == \
        [("pause", "done"), ("unpause", "already")], recs
    assert wait_until(lambda: len(posts_of(hook, c2)) == 2, 10, 0.05), hook.posts()
    p = posts_of(hook, c2)[1]
    assert p.get("title") == f"vpnguard: {p.get('guard')} found {c2.name} unpaused already", p
    assert len([r for r in a.events("docker") if r.get("guard")]) == 4, a.events("docker")
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")
    note(f"tunnel back -> {c1.name} unpaused, {c2.name} (unpaused by hand) found so, in "
         f"{back_s:.2f} s; 4 records, 4 posts, none failed")


# The VPN stand-in's healthcheck: healthy while /healthy exists, asked every second; a start
# is `starting` for 4 s whatever the check says (gluetun's image has a start period too).
HEALTH = ("--health-cmd", "test -e /healthy", "--health-interval", "1s", "--health-timeout", "1s",
          "--health-retries", "1", "--health-start-period", "4s")


def healthchecked_vpn(w):
    """A VPN container of the test's own with HEALTH, healthy, the tunnel in its namespace:
    the world's VPN container from now on (the clients join it)."""
    vpn = w.run("vgvpnh", network="none", opts=IPV6_ON + HEALTH, cmd=SLEEP)
    vpn.exec("touch", "/healthy")
    assert wait_until(lambda: health_of(w, vpn) == "healthy", 20, 0.1), health_of(w, vpn)
    w.vpn = vpn
    w.t.home_move(vpn.pid)
    return vpn


def health_of(w, c):
    return w.e.inspect(c.id, "{{.State.Health.Status}}")


def test_nothing_is_restarted_while_the_vpn_is_unhealthy_or_its_tunnel_missing(world, vg, note):
    w, t = world, world.t
    vpn = healthchecked_vpn(w)
    (c,) = flooding_clients(w, 1)
    a, hook = hooked_agent(w, "--restart-dependents")
    at = Attempt(w.world, vg, gid_of(w.slice))
    old_ns = c.netns
    seen = set()

    def nothing_for(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            seen.add(health_of(w, vpn))
            c._pid = None
            assert not docker_records(a, "restart") and c.netns == old_ns, \
                f"restarted while the VPN was {sorted(seen)}: {a.events('docker')}"
            time.sleep(0.2)
    # Restarted failing its check: starting for 4 s, then unhealthy; its tunnel made at once.
    vpn.exec("rm", "/healthy")
    t.tunnel_down("del")
    vpn.restart()
    t.home_move(vpn.pid)
    nothing_for(10)
    assert seen == {"starting", "unhealthy"}, seen
    failing = sorted(seen)
    # Healthy, but its tunnel missing.
    t.tunnel_down("del")
    vpn.exec("touch", "/healthy")
    assert wait_until(lambda: health_of(w, vpn) == "healthy", 10, 0.1), health_of(w, vpn)
    seen.clear()
    nothing_for(6)
    assert seen == {"healthy"}, seen
    t.tunnel_up()
    t_up, m_up = time.time(), time.monotonic()
    new_ns = netns_of(vpn.pid)

    def back():
        c._pid = None
        return bool(docker_records(a, "restart")) and c.netns == new_ns
    assert wait_until(back, 30, 0.1), f"not restarted once healthy with its tunnel: " \
                                      f"{a.events('docker')}"
    back_s = time.monotonic() - m_up
    recs = docker_records(a, "restart")
    assert [r.get("result") for r in recs] == ["done"], recs
    assert all(rec_time(r) > t_up for r in recs), (t_up, recs)
    assert c.exec("vgprobe", "sendto", t.inet_host, "7004", "--count", "10",
                  "--interval-us", "2000") == "sent 10/10"
    assert_alerted(a, hook, [c], ["restarted"])
    at.expect(far={"tunnel": "*", "mld": "*"}, denied="*")
    note(f"VPN restarted failing its check: nothing for 10 s ({', '.join(failing)}, its "
         f"tunnel there), nothing for 6 s healthy without its tunnel; tunnel made -> the client "
         f"restarted into the new namespace {back_s:.2f} s later (record "
         f"{rec_time(recs[0]) - t_up:.2f} s after the tunnel); 0 packets on the fallback path")
