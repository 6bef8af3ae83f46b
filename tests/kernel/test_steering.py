"""Steering by mark and policy routing (vpnguard.h, "Steering"): the rules and
routes attach makes, the agent follows and detach removes, the socket mark, and
what happens when the tunnel goes and comes back. Each case has a world of its
own (split routing: the main table's default route is the veth); traffic is
counted on the far side of the veth, never inferred from return codes. The
rule tables are in test_steering_rows.py.

Run one case: pytest-3 tests/kernel/test_steering.py -k no_tunnel
"""
import json
import os
import re
import subprocess
import time

import pytest

from vgguard import Guard, Snapshot
from vgproc import wait_until

SPLIT = pytest.mark.parametrize("topo", ["split"], indirect=True)
SOCKOPT_PROBE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools",
                             "sockopt_probe.py")


@pytest.fixture
def guard(vg, kernel_lock, topo):
    """A --no-agent guard of cgroup "g" with the LAN allowed and the resolver listed."""
    with Guard(vg, topo, topo.cgroup("g"), "--allow", topo.lan_net, "--dns", topo.resolver) as g:
        yield g


def probe(topo, g, user, args):
    return g.run([topo.vgprobe] + args.split(), user)


def rules(topo):
    r = topo.run(["ip", "-j", "-n", topo.home, "-4", "rule", "show"], check=True)
    return json.loads(r.stdout)


def table(topo, t):
    r = topo.run(["ip", "-j", "-n", topo.home, "-4", "route", "show", "table", str(t)])
    return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else []


def ours(topo, mark):
    """{priority: [(dst, table)]} of the rules of mark."""
    out = {}
    for r in rules(topo):
        if r.get("fwmark") == hex(mark):
            out.setdefault(r["priority"], []).append(
                (f"{r['dst']}/{r['dstlen']}" if "dst" in r else "all", str(r["table"])))
    return out


@SPLIT
def test_rules_made_changed_and_removed(topo, guard):
    g = guard.status()
    mark, tab = g["fwmark"], g["route_table"]
    assert mark >= 0x76670001, g
    assert ours(topo, mark) == {5200: [(topo.lan_net, "main")], 5201: [("all", str(tab))]}
    routes = {(r.get("type", "unicast"), r.get("dev"), r.get("metric", 0)) for r in table(topo, tab)}
    assert routes == {("unicast", topo.wg_client, 0), ("unreachable", None, 4294967295)}
    topo._sysctl(topo.home, "net.ipv4.ping_group_range=0 2147483647")
    for kind in ("udp", "tcp", "udp6", "ping"):
        r = topo.run(["/usr/bin/python3", SOCKOPT_PROBE, "mark", kind],
                     cg=guard.cg, netns=topo.home, user="nobody")
        assert r.stdout.strip() == hex(mark), f"a new {kind} socket's mark: {r.stdout}{r.stderr}"

    # A new policy: the allow rules follow it, the mark and table stay.
    guard.extra = ["--allow", "192.0.2.0/25", "--allow", "10.99.0.0/24"]
    guard.attach()
    assert guard.status()["fwmark"] == mark
    assert ours(topo, mark) == {5200: [("10.99.0.0/24", "main"), ("192.0.2.0/25", "main")],
                                5201: [("all", str(tab))]} or \
        ours(topo, mark) == {5200: [("192.0.2.0/25", "main"), ("10.99.0.0/24", "main")],
                             5201: [("all", str(tab))]}
    before = Snapshot(topo, guard)
    assert probe(topo, guard, "nobody", f"sendto {topo.lan_host} 9") == "sent 1/1"
    assert probe(topo, guard, "nobody", "sendto 192.0.2.200 9") == "sent 1/1"
    before.expect(far={"lan": 1, "tunnel": 1})

    guard.close()
    assert ours(topo, mark) == {}
    assert table(topo, tab) == []


@SPLIT
def test_explicit_mark_and_table(vg, kernel_lock, topo):
    a, b = topo.cgroup("a"), topo.cgroup("b")
    with Guard(vg, topo, a, "--fwmark", "0x5a5a", "--route-table", "4242") as ga:
        assert (ga.status()["fwmark"], ga.status()["route_table"]) == (0x5A5A, 4242)
        assert ours(topo, 0x5A5A) == {5201: [("all", "4242")]}
        # Another guard may not take the same mark or table in that namespace; nothing changes.
        for clash in (["--fwmark", "0x5a5a"], ["--fwmark", "0x5a5b", "--route-table", "4242"]):
            r = subprocess.run([vg, "attach", "--cgroup", b, "--tunnel", topo.wg_client,
                                "--netns", topo.home_netns, "--no-agent"] + clash,
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 2 and "same mark or table" in r.stderr, r.stderr
            assert Guard(vg, topo, b).status() is None
        assert ours(topo, 0x5A5A) == {5201: [("all", "4242")]}
        before = Snapshot(topo, ga)
        assert probe(topo, ga, "nobody", f"sendto {topo.inet_host} 9") == "sent 1/1"
        before.expect(far={"tunnel": 1})
    assert ours(topo, 0x5A5A) == {} and table(topo, 4242) == []


@SPLIT
@pytest.mark.parametrize("user,value,result,denied", [
    ("root", "own", "ok", {}),
    ("root", "0", "errno EPERM", {"sockopt": 1}),
    ("root", "5", "errno EPERM", {"sockopt": 1}),
    ("nobody", "own", "errno EPERM", {}),          # the kernel's own capability check
    ("nobody", "5", "errno EPERM", {"sockopt": 1}),
], ids=["root-own", "root-0", "root-5", "nobody-own", "nobody-5"])
def test_so_mark(topo, guard, user, value, result, denied):
    value = hex(guard.status()["fwmark"]) if value == "own" else value
    before = Snapshot(topo, guard)
    r = topo.run(["/usr/bin/python3", SOCKOPT_PROBE, "so_mark", value],
                 cg=guard.cg, netns=topo.home, user=None if user == "root" else user)
    assert r.stdout.strip() == result, r.stderr
    before.expect(denied=denied)


@SPLIT
def test_no_tunnel_without_agent(topo, guard):
    """The kernel drops a deleted device from vg_tundev: no_tunnel, with nobody to update the maps."""
    topo.tunnel_down("del")
    assert guard.status()["tunnel_present"] is False
    before = Snapshot(topo, guard)
    assert probe(topo, guard, "nobody", f"sendto {topo.inet_host} 9") == "sent 0/1 errno EPERM"
    assert probe(topo, guard, "root", f"connect tcp {topo.inet_host} 9") == "errno EPERM"
    before.expect(denied={"no_tunnel": 2})
    # Recreated: a device the guard was never told of is still no tunnel, until attach again.
    topo.tunnel_up()
    before = Snapshot(topo, guard)
    assert probe(topo, guard, "nobody", f"sendto {topo.inet_host} 9") == "sent 0/1 errno EPERM"
    before.expect(denied={"no_tunnel": 1})
    guard.attach()
    before = Snapshot(topo, guard)
    assert probe(topo, guard, "nobody", f"sendto {topo.inet_host} 9") == "sent 1/1"
    before.expect(far={"tunnel": 1})


@pytest.fixture
def agent_guard(vg, kernel_lock, topo):
    with Guard(vg, topo, topo.cgroup("g"), "--allow", topo.lan_net, agent=True) as g:
        assert wait_until(lambda: (g.status() or {}).get("tunnel_present"), 10, 0.2)
        yield g


@SPLIT
def test_agent_remakes_rules(topo, agent_guard):
    g = agent_guard.status()
    mark = g["fwmark"]
    topo.run(["ip", "-n", topo.home, "rule", "del", "pref", "5201", "fwmark", hex(mark)], check=True)
    topo.run(["ip", "-n", topo.home, "rule", "del", "pref", "5200", "fwmark", hex(mark)], check=True)
    assert wait_until(lambda: ours(topo, mark) == {5200: [(topo.lan_net, "main")],
                                                    5201: [("all", str(g["route_table"]))]}, 5), \
        f"the agent did not make the rules again: {ours(topo, mark)}"


def tcp_bytes_received(topo, port):
    """What the listener's one connection on port has received ('ss -ti' in INET); -1 if none."""
    out = topo.run_inet(["ss", "-Htni", "state", "established", "sport", f"= :{port}"]).stdout
    got = re.findall(r"bytes_received:(\d+)", out)
    return int(got[0]) if len(got) == 1 else -1


@SPLIT
def test_connections_come_back(topo, agent_guard):
    """A TCP connection and an unconnected UDP socket that lived through the tunnel's
    deletion carry traffic again once it is back (new ifindex): nothing is bound to
    the old one, and the agent routes the mark to the new one."""
    listener = topo.spawn([topo.vgprobe, "listen", "tcp", "7000"], netns=topo.inet,
                          stdout=subprocess.PIPE, text=True)
    assert wait_until(lambda: topo.run_inet(["ss", "-Htln", "sport", "= :7000"]).stdout.strip(), 5)
    flood = ["--seconds", "30", "--no-reopen", "--interval-us", "20000"]
    tcp = topo.spawn([topo.vgprobe, "flood", "tcp", topo.inet_host, "7000"] + flood,
                     cg=agent_guard.cg, netns=topo.home, user="nobody", stdout=subprocess.PIPE)
    udp = topo.spawn([topo.vgprobe, "flood", "udp", topo.inet_host, "9", "--unconnected"] + flood,
                     cg=agent_guard.cg, netns=topo.home, user="nobody", stdout=subprocess.PIPE)
    assert topo.wait_count("tunnel", 50, 10)
    assert wait_until(lambda: tcp_bytes_received(topo, 7000) > 0, 5)
    old = topo.wg_client_ifindex
    topo.tunnel_down("kill")
    time.sleep(3)
    before = Snapshot(topo)
    stalled = tcp_bytes_received(topo, 7000)
    topo.tunnel_up()
    t0 = time.monotonic()
    assert topo.wg_client_ifindex != old
    assert topo.wait_count("tunnel", before.far["tunnel"] + 20, 15), \
        "the unconnected UDP socket sent nothing through the new tunnel"
    udp_s = time.monotonic() - t0
    assert wait_until(lambda: tcp_bytes_received(topo, 7000) > stalled, 20, 0.1), \
        "the TCP connection carried nothing after the tunnel came back"
    tcp_s = time.monotonic() - t0
    print(f"through the new tunnel after it was back: UDP {udp_s:.2f} s, the same TCP "
          f"connection {tcp_s:.2f} s")
    before.expect(far={"tunnel": "*"}, settle=0.5)
    for p in (tcp, udp, listener):
        topo.stop(p)
