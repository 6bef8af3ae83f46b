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
import time

from test_docker_remedy import docker_records, flooding_clients, remedy_agent, state_of
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
        assert [r.get("result") for r in recs] == ["done"] * len(titles), recs
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
    for c in clients:
        at2 = Attempt(w.world)
        assert c.exec("vgprobe", "sendto", t.inet_host, "7004", "--count", "10",
                      "--interval-us", "2000") == "sent 10/10"
        at2.expect(far={"tunnel": ">=10"})
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
