"""The agent follows the tunnel from netlink, and costs little, on the real kernel:
link down/up/del/recreate reach the tunnel map within milliseconds; idle CPU, context
switches and RSS.

World: tests/lib/vgagentcase.py (HOME with the WireGuard client, INET with the "Internet"
198.51.100.1 and the IP echo; guarded UDP counted where it arrives). tools/map_watch.py
times the pinned tunnel map against the `ip` commands. Each case has its own fresh guard
and agent; a case that takes the tunnel down brings it back, also when it fails. Run one:
    VPNGUARD_BIN=... pytest-3 -s tests/kernel/test_agent_netlink.py -k idle
"""
import os
import re
import subprocess
import time

import pytest

from vgagent import OPEN, ev, fig, maps_libcurl, proc_sample, vmrss
from vgagentcase import agent_world, case  # noqa: F401 (the fixtures)
from vgguard import pin_root
from vgproc import wait_until
from vgworld import PY, TOOLS

TDOWN, TUP = ev("tunnel_down"), ev("tunnel_up")


def map_watch(t, *cmd, line=None):
    """map_watch.py's line for the tunnel map around cmd; with line: written to a running
    `ip -batch -` in HOME (no process start-up timed)."""
    argv = [PY, os.path.join(TOOLS, "map_watch.py"), os.path.join(pin_root(), "vg_tunnels"),
            "--ifname", t.wg_client, "--timeout", "5"]
    if line:
        argv += ["--stdin-line", line, "--", "ip", "-n", t.home, "-batch", "-"]
    else:
        argv += ["--"] + list(cmd)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return r.stdout.strip()


def kv(out, key):
    m = re.search(rf"\b{key}=(\S+)", out)
    return m.group(1) if m else None


def restore_routes(t):
    """The tunnel's routes went with the link: back as the topology made them."""
    for net in (t.inet_net, t.resolver_net):
        r = t.run_home(["ip", "route", "replace", net, "dev", t.wg_client, "src", t.vpn_ip,
                        "metric", "10"])
        assert r.returncode == 0, f"restore the route to {net}: {r.stderr.strip()}"


@pytest.fixture
def tunnel_back(case):
    """After the case the module's tunnel is there again, up, with its routes."""
    yield
    t = case.t
    if t.run_home(["ip", "link", "show", t.wg_client]).returncode != 0:
        if t.wg_client_pid:
            t.tunnel_down("kill")
        t.tunnel_up()
    else:
        t.run_home(["ip", "link", "set", "dev", t.wg_client, "up"])
        restore_routes(t)


def test_link_down_up_reaches_the_map(case, tunnel_back):
    """Case 10: link set down/up (3 rounds by a running ip -batch, 1 by a fresh ip): the map
    changes, tunnel_down/tunnel_up are logged; while down guarded UDP is denied no_tunnel."""
    t = case.t
    ifx = t.wg_client_ifindex
    a = case.agent("c10", *case.guard(case.cg))
    e2e = {"down": [], "up": []}
    fork = {}
    recs = {"down": [], "up": []}
    for rnd in (1, 2, 3, 4):
        for what, pred in (("down", TDOWN), ("up", TUP)):
            m = a.log.mark()
            if rnd <= 3:
                out = map_watch(t, line=f"link set dev {t.wg_client} {what}")
            else:
                out = map_watch(t, "ip", "-n", t.home, "link", "set", "dev", t.wg_client, what)
            r = a.log.wait(pred, since=m, timeout=3)
            assert out.startswith("changed") and r, \
                f"round {rnd}: link {what}: '{out}', {what} record: {a.log.tail()}"
            if rnd <= 3:
                e2e[what].append(kv(out, "after_us"))
            else:
                fork[what] = f"{kv(out, 'after_us')} (ip ran {kv(out, 'cmd_us')})"
            recs[what].append(r.get("map_updated_after_us"))
            if rnd == 1 and what == "down":
                g = case.status()
                assert [g["tunnel_present"], g["tunnel_ifindex"]] == [False, 0], g
                case.gsend(case.cg, 2, 0, "no_tunnel")
            if rnd == 1 and what == "up":
                assert r.get("ifindex") == ifx, f"tunnel_up with another ifindex: {r}"
        restore_routes(t)
    for what in ("down", "up"):
        fig(f"case 10: link set {what} -> map, end to end (us, from the write to a running "
            f"ip -batch): {' '.join(e2e[what])}; from before fork+exec of ip: {fork[what]}; "
            f"agent's map_updated_after_us (4 rounds): {' '.join(map(str, recs[what]))}")
    g = case.status()
    assert [g["tunnel_present"], g["tunnel_ifindex"]] == [True, ifx], g
    case.gsend(case.cg, 3, 3)
    assert a.stop() == 0


def test_link_deleted_and_recreated(case, tunnel_back):
    """Case 10: link del: the map changes, tunnel_down, guarded UDP denied no_tunnel; the
    tunnel made again (new ifindex): tunnel_up with it, guarded UDP through it."""
    t = case.t
    ifx = t.wg_client_ifindex
    a = case.agent("c10d", *case.guard(case.cg))
    m = a.log.mark()
    out = map_watch(t, line=f"link del dev {t.wg_client}")
    r = a.log.wait(TDOWN, since=m, timeout=3)
    assert out.startswith("changed") and r, f"link del: '{out}', {a.log.tail()}"
    fig(f"case 10: link del -> map, end to end (from the write to a running ip -batch): "
        f"{kv(out, 'after_us')} us; record map_updated_after_us: "
        f"{r.get('map_updated_after_us')} us")
    t.tunnel_down("del")  # wireguard-go goes with its device
    # HOME's kernel may answer the server's last datagrams to the dead port (wgicmp).
    case.gsend(case.cg, 2, 0, "no_tunnel", far={"wgicmp": "*"})
    m = a.log.mark()
    t.tunnel_up()
    new = t.wg_client_ifindex
    r = a.log.wait(lambda r: TUP(r) and r.get("ifindex") == new, since=m, timeout=3)
    assert r, f"no tunnel_up record with the new ifindex {new}: {a.log.all(since=m)}"
    fig(f"case 10: recreated tunnel (ifindex {ifx} -> {new}): record map_updated_after_us: "
        f"{r.get('map_updated_after_us')} us")
    g = case.status()
    assert [g["tunnel_present"], g["tunnel_ifindex"]] == [True, new], g
    case.gsend(case.cg, 3, 3)
    assert a.stop() == 0


def test_footprint_nothing_to_fetch(case):
    """Case 11: an agent with no probe, webhook or Docker engine never maps libcurl (loaded
    on first use) and stays under 10 MB."""
    a = case.agent("c11a", *case.guard(case.cg))
    time.sleep(1)
    rss = vmrss(a.pid)
    f = fig(f"case 11: agent with no probe, webhook or Docker engine: VmRSS {rss} kB")
    assert not maps_libcurl(a.pid), "libcurl mapped with nothing to fetch"
    assert rss < 10240, f"VmRSS not under 10 MB: {f}"
    assert a.stop() == 0


def test_footprint_idle(case):
    """Case 11: at the default interval (30 s) with probe and webhook threads, 10 idle s cost
    at most 2 CPU ticks and 5 context switches (no busy polling), and no memory."""
    h = case.hook("c11")
    a = case.agent("c11", *case.guard(case.cg), "--probe-url", case.url("/ip"),
                   "--webhook", h.url)
    assert a.log.wait(OPEN, timeout=6), "the first probe does not open the guard"
    time.sleep(1)
    t0, c0, r0, _ = proc_sample(a.pid)
    time.sleep(10)
    t1, c1, r1, n = proc_sample(a.pid)
    f = fig(f"case 11: idle 10 s (interval 30 s, probe + webhook threads, {n} threads): CPU "
            f"{t1 - t0} ticks (1/{os.sysconf('SC_CLK_TCK')} s), context switches {c1 - c0} "
            f"(all threads), VmRSS {r0} -> {r1} kB")
    assert t1 - t0 <= 2, f"idle CPU: {f}"
    assert c1 - c0 <= 5, f"busy polling: {f}"
    assert r1 == r0, f"VmRSS moved while idle: {f}"
    assert maps_libcurl(a.pid), "with probes and a webhook libcurl is not mapped"
    assert a.stop() == 0


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_rss_over_probe_rounds(case, tls):
    """Case 11: VmRSS grows by less than 256 kB from probe round 10 to round 60 (100 ms
    interval; the rounds counted at the echo)."""
    echo = case.aw.tls() if tls else case.echo
    opts = ["--probe-ca", case.aw.ca] if tls else []
    base = echo.mark()
    a = case.agent("rss", *case.guard(case.cg), "--probe-interval", "100ms", "--probe-url",
                   case.url("/ip", tls=tls), *opts)
    rounds = lambda: echo.mark() - base  # noqa: E731
    assert wait_until(lambda: rounds() >= 10, 15, 0.02), "10 probe rounds did not happen in 15 s"
    r1 = vmrss(a.pid)
    assert wait_until(lambda: rounds() >= 60, 30, 0.02), "60 probe rounds did not happen in 30 s"
    r2 = vmrss(a.pid)
    f = fig(f"case 11 ({'HTTPS' if tls else 'HTTP'}, 100 ms): VmRSS after 10 probe rounds "
            f"{r1} kB, after 60: {r2} kB (growth {r2 - r1} kB; {rounds()} rounds seen at the echo)")
    assert r2 - r1 < 256, f"VmRSS grows over probe rounds: {f}"
    assert a.stop() == 0
