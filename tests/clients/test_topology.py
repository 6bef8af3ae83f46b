"""Self-tests of the test world (tests/lib/vgtopo.py) the real-client tests stand on.

  * each routing variant has its routes; an idle world stays at offwg == 0
    (IDLE seconds; a one-off run of 60 s agreed), and so does a dead tunnel
  * spawn() lands in the cgroup, the namespace and the user, with its own PID
  * tunnel_down()/tunnel_up(): the same name, a new ifindex, the variant's routes
  * cleanup leaves nothing, also when the owner is interrupted (SIGINT) or terminated
"""
import os
import signal
import subprocess
import sys
import time

import pytest

from vgproc import cgroup2_mount, pid_alive, wait_until

IDLE = 15.0
HERE = os.path.dirname(os.path.abspath(__file__))
LIB = os.path.join(os.path.dirname(HERE), "lib")


def routes(t):
    return t.run_home(["ip", "route", "show", "table", "main"]).stdout


@pytest.mark.parametrize("topo", ["subnets", "default", "split"], indirect=True)
def test_world(topo):
    t = topo
    r = routes(t)
    via_wg = {ln.split()[0] for ln in r.splitlines() if f"dev {t.wg_client}" in ln
              and "proto kernel" not in ln}
    want = {"subnets": {t.inet_net, t.resolver_net}, "default": {"default"}, "split": set()}
    assert via_wg == want[t.routing], r
    assert f"default via {t.gw_ip} dev {t.veth_home} metric 1000" in r, r

    # idle: nothing on the veth but WireGuard (keepalives)
    t0 = time.monotonic()
    while time.monotonic() - t0 < IDLE:
        c = t.counters()
        assert c["offwg"] == 0, c
        time.sleep(1)
    print(f"idle {IDLE:.0f} s: {c}")

    p = t.spawn(["sleep", "60"], cg=t.cgroup("a/b"), netns=t.home, user="nobody")
    with open(f"/proc/{p.pid}/cgroup") as f:
        assert f"0::{t.cg_root[len(t.cg2):]}/a/b" in f.read().splitlines()
    assert os.readlink(f"/proc/{p.pid}/ns/net") == f"net:[{os.stat(t.home_netns).st_ino}]"
    assert os.stat(f"/proc/{p.pid}").st_uid == 65534
    with open(f"/proc/{p.pid}/comm") as f:
        assert f.read().strip() == "sleep"

    old = t.wg_client_ifindex
    for how in ("kill", "term", "del"):
        t.tunnel_down(how)
        assert t.run_home(["ip", "link", "show", t.wg_client]).returncode != 0
        t.settle(1.0)
        c = t.counters()
        assert c["offwg"] == 0, (how, c)
        t.tunnel_up()
        assert t.wg_client_ifindex != old
        old = t.wg_client_ifindex
        assert routes(t) == r, routes(t)
    t.reset_counters()
    assert t.run_home(["ping", "-c", "1", "-W", "5", t.vpn_server_ip]).returncode == 0
    assert t.wait_count("tunnel", 1, 10)


OWNER = r"""
import sys, time
sys.path.insert(0, sys.argv[1])
from vgtopo import Topology
t = Topology(routing="default", quiet=True)
try:
    t.up()
    a = t.spawn(["sleep", "300"], cg=t.cgroup("x"), netns=t.home, user="nobody")
    b = t.spawn(["sleep", "300"], netns=t.inet)
    t.netns_resolv_conf(t.home, t.resolver)
    print(t.suffix, t.dir, a.pid, b.pid, t.wg_client_pid, t.wg_server_pid, flush=True)
    time.sleep(300)
finally:
    t.down()
"""


def leftovers(suffix, d, pids):
    out = [p for p in (f"/run/netns/vg{suffix}home", f"/run/netns/vg{suffix}inet",
                       f"/var/run/wireguard/vg{suffix}wc.sock",
                       f"/var/run/wireguard/vg{suffix}ws.sock",
                       f"/etc/netns/vg{suffix}home", d) if os.path.exists(p)]
    if os.path.exists(f"{cgroup2_mount()}/vgtest{suffix}"):
        out.append(f"{cgroup2_mount()}/vgtest{suffix}")
    return out + [f"process {p}" for p in pids if pid_alive(p)]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_cleanup_on_signal(sig):
    # SIGTERM: the owner turns it into KeyboardInterrupt, as tests/conftest.py does.
    code = OWNER if sig == signal.SIGINT else (
        "import signal\nsignal.signal(signal.SIGTERM, lambda *a: (_ for _ in ()).throw("
        "KeyboardInterrupt()))\n" + OWNER)
    p = subprocess.Popen([sys.executable, "-c", code, LIB], stdout=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline().split()
        assert len(line) == 6, "the owner did not bring its world up"
        suffix, d, pids = line[0], line[1], [int(x) for x in line[2:]]
        assert len(leftovers(suffix, d, pids)) == 11, leftovers(suffix, d, pids)
        p.send_signal(sig)
        p.wait(60)
        assert wait_until(lambda: not leftovers(suffix, d, pids), 10), leftovers(suffix, d, pids)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
