"""Containers by name: attach --container, --tunnel-container, --docker-host and DOCKER_HOST.

The world of each test is tests/docker/test_docker_slice.py's (a VPN container holding the
tunnel, tests/lib/vgdocker.py), with a container in the VPN container's namespace below
byname.slice, with CAP_NET_RAW dropped: vpnguard-bpf resolves it by name through the engine
to its own cgroup v2 (checked with bpftool and `status --json`) and the VPN container to the
namespace of the tunnel. The refused attaches are a table: exit status, the whole message (or
the words it must hold) and nothing changed (pins, maps, programs, agent lock); their worlds
have no tunnel, since names and words are refused before a tunnel is looked at.

Run one case: cd tests && pytest-3 docker/test_docker_byname.py -k unknown
"""
import os
import re

import pytest

from vgdocker import container_cgroup_re
from vgworld import (Attempt, assert_guarded, assert_unguarded, gid_of, guard_status, run_vg,
                     snapshot_diff, state_snapshot, status_json)


def byname(w):
    return w.client("vgbyname", parent=w.byname_parent)


def test_attach_by_name_guards_the_containers_own_cgroup_through_the_tunnel(world, vg):
    w = world
    c = byname(w)
    assert container_cgroup_re(w.rel(w.byname_parent)).fullmatch(c.cgroup), c.cgroup
    # --docker-host alone names the engine: no DOCKER_HOST in the environment.
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    r = run_vg(vg, "attach", *w.by_name(c), "--docker-host", w.e.host, "--no-agent", env=env)
    assert r.returncode == 0, r.stderr
    cg = w.path(c.cgroup)
    assert_guarded(cg)
    assert_unguarded(w.byname_parent)
    st = guard_status(vg, gid_of(cg))
    assert st is not None, "no guard on the container's cgroup in status --json"
    assert (st["cgroup"], st["netns"], st["tunnel_present"]) == (c.cgroup, w.vpn_netns, True), st
    a = Attempt(w.world, vg, gid_of(cg))
    assert c.exec("vgprobe", "sendto", w.t.inet_host, "7004", "--count", "10",
                  "--interval-us", "2000") == "sent 10/10"
    a.expect(far={"tunnel": ">=10"})


def test_docker_host_from_the_environment_replaces_the_policy(world, vg):
    w = world
    c = byname(w)
    assert run_vg(vg, "attach", *w.by_name(c), "--docker-host", w.e.host,
                  "--no-agent").returncode == 0
    # Again, DOCKER_HOST from the environment only (no /var/run/docker.sock to fall back on,
    # or one that does not know these names).
    r = w.vg_run("attach", *w.by_name(c), "--no-agent")
    assert r.returncode == 0, r.stderr
    on_it = [g for g in status_json(vg)["guards"] if g["cgroup"] == c.cgroup]
    assert len(on_it) == 1, on_it


# Refused: (id, attach words, environment, exit, how the message is judged, message).
# "is": stderr is exactly the message; "has": it holds the words.
REFUSED = [
    ("same-cgroup-by-path-and-name",
     "--cgroup {CG} --container {C} --tunnel {WG} --tunnel-container {VPN}", None, 2,
     "has", "--container {C}: given twice"),
    ("unknown-container", "--container nosuch-{S} --tunnel-container {VPN} --tunnel {WG}", None,
     2, "is", "vpnguard-bpf: docker: container 'nosuch-{S}': no such container"),
    ("no-engine-on-the-socket",
     "--container {C} --tunnel-container {VPN} --tunnel {WG} --docker-host unix://{DIR}/none.sock",
     None, 1, "is", "vpnguard-bpf: docker: {DIR}/none.sock: No such file or directory"),
    ("docker-host-tcp", "--container {C} --tunnel-container {VPN} --tunnel {WG}",
     {"DOCKER_HOST": "tcp://127.0.0.1:2375"}, 2,
     "has", "DOCKER_HOST tcp://127.0.0.1:2375: only unix://"),
    ("container-not-running", "--container {STOPPED} --gateway 192.0.2.1", None, 1, "is",
     "vpnguard-bpf: docker: container '{STOPPED}': not running (created)"),
    ("tunnel-container-with-netns",
     "--container {C} --tunnel {WG} --tunnel-container {VPN} --netns {NETNS}", None, 2, "any", ""),
]


@pytest.mark.parametrize("args,env,rc,how,msg", [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_attach_by_name_refused(bare_world, vg, args, env, rc, how, msg):
    # Names are resolved, and words checked, before any tunnel is looked at.
    w = bare_world
    c = byname(w)
    stopped = w.run("vgstopped", network="none", cmd=("true",), start=False) \
        if "{STOPPED}" in args else None
    names = dict(C=c.name, CG=w.path(c.cgroup), S=w.s, VPN=w.vpn.name, WG=w.t.wg_client,
                 DIR=w.t.dir, NETNS=w.vpn_netns, STOPPED=stopped.name if stopped else "")
    before = state_snapshot([w.path(c.cgroup)])
    r = w.vg_run("attach", *args.format(**names).split(), "--no-agent", env=env)
    err, want = r.stderr.strip(), msg.format(**names)
    assert r.returncode == rc, f"exit {r.returncode}, want {rc}: {err}"
    if how == "is":
        assert err == want
    elif how == "has":
        assert re.search(re.escape(want), err), f"{err!r} lacks {want!r}"
    diff = snapshot_diff(before, state_snapshot([w.path(c.cgroup)]))
    assert not diff, f"a refused attach changed the state: {diff}"
