"""A client container in a slice guarded before it started, its tunnel in the VPN container.

The world of each test (tests/lib/vgdocker.py, a private engine of Debian's docker.io): a
"VPN" container (--network none) whose network namespace is topology HOME: a veth to the
server namespace INET and a wireguard-go tunnel are built in it (tests/lib/vgtopo.py's
address plan and far-side counters). The client container shares that namespace
(--network container:<vpn>), has --cgroup-parent the slice, which vpnguard-bpf guarded in
tunnel mode (--netns /proc/<vpn pid>/ns/net) before the client started, so there is no
window, and drops CAP_NET_RAW. Probes run in the client by `docker exec` (its cgroup and
namespaces, as the application's own processes). Judged where packets arrive: the nft
counters in INET (every counter a test does not name stays 0).

Run one case: cd tests && pytest-3 docker/test_docker_slice.py -k 'tunnel_gone and connect'
"""
import json
import os
import re
import subprocess

import pytest

from vgdocker import container_cgroup_re, netns_of
from vgworld import Attempt, assert_guarded, probe, words


def probe_in(c, t, args):
    """vgprobe ARGS (with the world's names filled in) in container c: its result line."""
    return c.exec("vgprobe", *words(t, args).split())


def test_engine_answers_with_an_imported_image(engine):
    assert engine.docker("version").returncode == 0, "the private engine does not answer"
    img = json.loads(engine.docker("image", "inspect", engine.image, check=True).stdout)[0]
    # Imported from a tarball: no registry ever named it.
    assert img.get("Comment", "").startswith("Imported from") and not img.get("RepoDigests"), img


def test_client_in_the_guarded_slice_goes_through_the_tunnel(world, vg):
    t, vpn = world.t, world.vpn
    assert vpn.pid > 0, "the VPN container does not run"
    # HOME is the container's namespace (ip netns attach): the wire and the tunnel are in it.
    assert netns_of(vpn.pid) == f"net:[{os.stat(t.home_netns).st_ino}]"
    r = subprocess.run(["nsenter", "-t", str(vpn.pid), "-n", "ip", "-o", "link", "show",
                        t.wg_client], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split(": ")[1].split("@")[0] == t.wg_client, r
    # The slice is guarded before any client starts: no window.
    g = world.guard_slice()  # asserts exit 0
    assert_guarded(world.slice)
    c = world.client()
    assert c.pid > 0, "the client container does not run"
    # Hybrid cgroups: the 0:: line of /proc/PID/cgroup is the cgroup v2 one.
    assert container_cgroup_re(world.rel(world.slice)).fullmatch(c.cgroup), c.cgroup
    assert c.netns == vpn.netns
    a = Attempt(world.world, vg, g.gid)
    assert probe_in(c, t, "sendto {I} 7001 --count 30 --interval-us 2000") == "sent 30/30"
    a.expect(far={"tunnel": ">=30"})


# With the tunnel deleted: the client is refused, nothing reaches the fallback path (the
# veth), while an unguarded process of the same namespace does leak there: the path is live
# and only the guard closes it.
TUNNEL_GONE = [
    ("sendto", "client", "sendto {I} 7001 --count 30 --interval-us 2000", r"sent 0/30 errno",
     {}),
    ("connect", "client", "connect tcp {I} 7002", r"errno", {}),
    ("unguarded-control", "home", "sendto {I} 7003 --count 5", r"sent 5/5$", {"leak4": ">=5"}),
]


@pytest.mark.parametrize("who,args,result,far", [r[1:] for r in TUNNEL_GONE],
                         ids=[r[0] for r in TUNNEL_GONE])
def test_tunnel_gone(world, vg, who, args, result, far):
    t = world.t
    g = world.guard_slice()
    c = world.client()
    t.tunnel_down("del")
    assert t.run_home(["ip", "link", "show", t.wg_client]).returncode != 0, "tunnel still there"
    a = Attempt(world.world, vg, g.gid)
    got = probe_in(c, t, args) if who == "client" else probe(t, None, words(t, args))
    assert re.match(result, got), f"result {got!r}, want /{result}/"
    a.expect(far=far, denied="*")


def test_reattach_takes_the_new_tunnel(world, vg):
    """Without an agent the new tunnel's ifindex is taken by attaching again (README's limit)."""
    t = world.t
    g = world.guard_slice()
    c = world.client()
    t.tunnel_down("del")
    t.tunnel_up()  # raises unless it is up and handshaken
    g.attach()  # asserts exit 0
    a = Attempt(world.world, vg, g.gid)
    assert probe_in(c, t, "sendto {I} 7001 --count 10 --interval-us 2000") == "sent 10/10"
    a.expect(far={"tunnel": ">=10"})
