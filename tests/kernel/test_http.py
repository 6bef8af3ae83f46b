"""The agent's HTTP endpoint (--http) on the real kernel: /metrics as Prometheus
reads it (promtool, and a real Prometheus server scraping it), /api/v1/status, the status
page in a real browser, a root-only Unix socket, no secret served, and hostile clients that
cost the agent nothing it owes the guard.

World: tests/lib/vgagentcase.py (HOME with the WireGuard client, INET with the "Internet"
198.51.100.1 and the IP echo; guarded UDP counted where it arrives). Each case has its own
guard and agent listening on a free loopback port of the root namespace; Prometheus and
Chromium run on loopback, with their data in the case's directory, and end by PID.
Run one case:  VPNGUARD_BIN=... pytest-3 -s tests/kernel/test_http.py -k prometheus
"""
import concurrent.futures
import datetime
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from vgagent import OPEN, PROBE, RELOAD, ev, fig, proc_sample, write_config
from vgagentcase import agent_world, case  # noqa: F401 (the fixtures)
from vgproc import end_popen, wait_until, wrap_argv
from vgworld import PY, probe

from test_status_page import render  # noqa: F401 (the browser fixture)

TDOWN = ev("tunnel_down")
SECRET = "tk_SECRET_9f3a"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, method="GET", data=None, timeout=10):
    """(status, content type, body) of one request."""
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def metric(text, name, **labels):
    """The value of the sample of name with exactly these labels, or None."""
    want = name + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def cg_label(cg):
    """The guard label: its cgroup as the maps name it (the path below the cgroup2 mount)."""
    mnt = next(line.split()[1] for line in open("/proc/self/mounts") if line.split()[2] == "cgroup2")
    return cg[len(mnt):] or "/"


@pytest.fixture
def served(case):
    """An agent guarding case.cg with --http on a free loopback port; its base URL."""
    port = free_port()
    a = case.agent("http", *case.guard(case.cg), "--http", f"127.0.0.1:{port}",
                   "--probe-url", case.url("/ip"), "--probe-interval", "1s")
    base = f"http://127.0.0.1:{port}"
    assert wait_until(lambda: a.log.first(OPEN), 10), f"no open state: {a.log.tail()}"
    assert wait_until(lambda: get(base + "/metrics", timeout=2)[0] == 200, 10), a.stderr()
    case.http_agent, case.base = a, base
    yield base


@pytest.fixture
def tunnel_back(case):
    """The module's tunnel is there again after the case, also when it fails."""
    yield
    t = case.t
    if t.run_home(["ip", "link", "show", t.wg_client]).returncode != 0:
        t.tunnel_up()


def test_metrics_are_prometheus_text_with_the_kernels_counts(case, served):
    """promtool accepts the live /metrics; every family is there; blocked_total is the
    kernel's exact count (status --json), guard_open 1, tunnel_present 1."""
    r = probe(case.t, case.cg, "sendto 2001:db8::1 9 --count 3")
    assert "EPERM" in r, r
    code, ctype, text = get(served + "/metrics")
    assert code == 200 and ctype.startswith("text/plain; version=0.0.4"), (code, ctype)
    if os.environ.get("VG_METRICS_SAMPLE"):  # the README's excerpt comes from here
        with open(os.environ["VG_METRICS_SAMPLE"], "w") as f:
            f.write(text)
    chk = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=30)
    assert chk.returncode == 0, f"promtool: {chk.stdout}{chk.stderr}"
    g = cg_label(case.cg)
    st = case.status()
    assert metric(text, "vpnguard_blocked_total", guard=g, reason="ipv6") == st["denied"]["ipv6"] >= 3
    assert metric(text, "vpnguard_guard_open", guard=g) == 1
    assert metric(text, "vpnguard_tunnel_present", guard=g, tunnel=case.t.wg_client) == 1
    assert metric(text, "vpnguard_build_info", version=case.vg_run("--version").stdout.split()[-1]) == 1
    assert wait_until(lambda: metric(get(served + "/metrics")[2], "vpnguard_public_ip_info", guard=g,
                                     ip=case.t.vpn_ip) == 1, 5)
    for fam in ("lease_expiry_timestamp_seconds", "probe_last_success_timestamp_seconds",
                "probe_duration_seconds", "events_suppressed_total", "events_lost_total"):
        assert metric(text, "vpnguard_" + fam, guard=g) is not None, fam


def test_scrape_cost(case, served):
    """What the endpoint costs: scrape latency (median of 50 GETs of /metrics), and the
    agent's RSS and CPU over 10 s with Prometheus-like scrapes every second."""
    pid = case.http_agent.pid
    lat = []
    for _ in range(50):
        t0 = time.monotonic()
        assert get(served + "/metrics")[0] == 200
        lat.append((time.monotonic() - t0) * 1000)
    lat.sort()
    ticks0, _, _, _ = proc_sample(pid)
    t0 = time.monotonic()
    for _ in range(10):
        get(served + "/metrics")
        time.sleep(1)
    ticks1, _, rss, threads = proc_sample(pid)
    cpu = (ticks1 - ticks0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0) * 100
    fig(f"http: /metrics scrape latency median {lat[25]:.2f} ms, p90 {lat[45]:.2f} ms (50 GETs); "
        f"agent with --http and a 1 s probe: RSS {rss} kB, {threads} threads, CPU {cpu:.2f}% "
        f"over 10 s of 1 s scrapes")
    assert lat[25] < 50 and rss < 20000


def test_status_api_is_status_json_and_what_the_agent_knows(case, served):
    """/api/v1/status: the guards of status --json, plus the last check (the address the
    echo saw), the timeline, and the attempt just blocked (process, destination, reason)."""
    probe(case.t, case.cg, "sendto 2001:db8::2 9")
    assert wait_until(lambda: json.loads(get(served + "/api/v1/status")[2])["guards"][0]
                      ["recent_blocked"], 5)
    code, ctype, body = get(served + "/api/v1/status")
    assert code == 200 and ctype == "application/json"
    api = json.loads(body)
    cli = json.loads(case.vg_run("status", "--json").stdout)
    [g] = [x for x in api["guards"] if x["cgroup_id"] == case.gid]
    [c] = [x for x in cli["guards"] if x["cgroup_id"] == case.gid]
    for k in ("cgroup", "mode", "tunnel", "tunnel_present", "state", "allow", "dns"):
        assert g[k] == c[k], k
    assert api["agent"]["pid"] == case.http_agent.pid and api["version"]
    assert g["last_probe"]["seen"] == case.t.vpn_ip and g["last_probe"]["verdict"] == "probe_passed"
    assert g["timeline"][-1]["state"] == "open" and g["state_since"]
    b = g["recent_blocked"][0]
    assert (b["reason"], b["comm"], b["dst"], b["dport"]) == ("ipv6", "vgprobe", "2001:db8::2", 9), b


def api_time(s):
    """An /api/v1/status time ("2026-12-02T01:00:00.000Z") in seconds since 1970."""
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def test_timeline_not_open_while_the_tunnel_is_gone(case, served, tunnel_back):
    """The tunnel deleted under a probed, open guard: the kernel denies everything, so the
    timeline has the guard closed (why tunnel_down) from the deletion (within 1 s, before
    the probes could fail three times), and not open again until the tunnel is back;
    state_since moves with it."""
    a, t = case.http_agent, case.t

    def guard():
        return next(g for g in json.loads(get(served + "/api/v1/status")[2])["guards"]
                    if g["cgroup_id"] == case.gid)

    before = guard()
    assert before["timeline"][-1]["state"] == "open", before["timeline"]
    m = a.log.mark()
    t_del = time.time()
    t.tunnel_down("del")
    assert a.log.wait(TDOWN, since=m, timeout=5), f"no tunnel_down record: {a.log.tail()}"
    g = guard()
    # The changes since (the agent may have opened the guard a few ms before the deletion).
    gone = g["timeline"][len(before["timeline"]):]
    assert gone and gone[0]["state"] != "open" and gone[0]["why"] == "tunnel_down", g["timeline"]
    assert -0.001 <= api_time(gone[0]["time"]) - t_del < 1.0, (t_del, gone[0])
    assert g["state_since"] == gone[0]["time"] != before["state_since"], g
    # The probes fail meanwhile (3 in a row close the guard): nothing opens it.
    time.sleep(3.5)
    t_up = time.time()
    t.tunnel_up()
    assert wait_until(lambda: guard()["timeline"][-1]["state"] == "open", 10), guard()["timeline"]
    g = guard()
    after = g["timeline"][len(before["timeline"]):]
    opened = [e for e in after if e["state"] == "open"]
    assert api_time(opened[0]["time"]) >= t_up, f"open while the tunnel was gone: {after}"
    assert api_time(g["state_since"]) >= t_up, g["state_since"]


def test_guard_in_a_new_cgroup_keeps_its_history(case):
    """A config guard whose cgroup is another after SIGHUP, as a --container guard's is after
    its container restarts: the same guard to /api/v1/status, its timeline from before the
    reload kept (the history is the guard's name's, not its first cgroup's)."""
    t, port = case.t, free_port()
    base = f"http://127.0.0.1:{port}"

    def write(cg):
        return write_config(case.path("vpnguard.conf"), [("log", case.path("cfg.log")),
                                                         ("http", f"127.0.0.1:{port}")],
                            [("web", [("cgroup", cg), ("tunnel", t.wg_client), ("netns", t.home_netns),
                                      ("probe-url", case.url("/ip")), ("probe-interval", "1s")])])

    def guard(gid):
        try:
            code, _, body = get(base + "/api/v1/status", timeout=2)
        except OSError:  # not listening yet
            return None
        return next((g for g in json.loads(body)["guards"] if g["cgroup_id"] == gid), None) \
            if code == 200 else None

    a = case.agent("moved", "--config", write(case.cg), log=case.path("cfg.log"))
    assert wait_until(lambda: (guard(case.gid) or {}).get("last_probe"), 10), a.stderr()
    before = guard(case.gid)
    m = a.log.mark()
    write(case.cg2)
    a.hup()
    r = a.log.wait(RELOAD, since=m, timeout=6)
    assert r and r.get("result") == "applied", f"{r}: {a.stderr()[-300:]}"
    after = guard(case.gid2)
    assert after and guard(case.gid) is None, after
    # The new cgroup starts closed until its first probe: changes after, none lost before.
    assert after["guard"] == "web" and after["timeline"][:len(before["timeline"])] == before["timeline"], \
        (before["timeline"], after["timeline"])


def test_every_check_is_a_probe_record(case, served):
    """The audit trail: each check is in the log, passed or failed, with the address seen
    and how long it took."""
    a = case.http_agent
    m = a.log.mark()
    assert wait_until(lambda: a.log.count(PROBE, since=m) >= 3, 10), a.log.tail()
    for r in a.log.all(PROBE, since=m)[:3]:
        assert r["why"] == "probe_passed" and r["seen"] == case.t.vpn_ip, r
        assert 0 <= r["duration_s"] < 5 and r["time"], r


def test_read_only_and_bounded(case, served):
    """Only GET and HEAD; no body; unknown paths 404; the page has a strict CSP."""
    assert get(served + "/metrics", method="POST", data=b"x")[0] in (405, 413)
    assert get(served + "/metrics", method="DELETE")[0] == 405
    assert get(served + "/nope")[0] == 404
    req = urllib.request.Request(served + "/")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200 and "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert r.read(200).lower().startswith(b"<!doctype html")


def test_no_secret_is_served(case):
    """A probe URL and a webhook with tokens: neither token in /, /metrics, /api/v1/status."""
    port = free_port()
    hook = case.hook("sink")
    a = case.agent("secret", *case.guard(case.cg), "--http", f"127.0.0.1:{port}",
                   "--probe-url", case.url(f"/ip?token={SECRET}"), "--probe-interval", "1s",
                   "--webhook", hook.url + f"?token={SECRET}")
    assert wait_until(lambda: a.log.first(OPEN), 10), a.log.tail()
    for path in ("/", "/metrics", "/api/v1/status"):
        code, _, body = get(f"http://127.0.0.1:{port}{path}")
        assert code == 200 and SECRET not in body, path


def test_unix_socket_is_roots_alone(case):
    """--http unix:/PATH: a socket of mode 0600 owned by root; root gets /metrics, nobody
    is refused at connect."""
    path = case.path("http.sock")
    a = case.agent("unix", *case.guard(case.cg), "--http", f"unix:{path}")
    assert wait_until(lambda: os.path.exists(path), 10), a.stderr()
    st = os.stat(path)
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, 0), oct(st.st_mode)
    ask = ("import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); "
           "s.sendall(b'GET /metrics HTTP/1.0\\r\\n\\r\\n'); print(s.recv(64).decode().split()[1])")
    assert subprocess.run([PY, "-c", ask, path], capture_output=True, text=True,
                          timeout=20).stdout.strip() == "200"
    os.chmod(case.dir, 0o755)
    r = subprocess.run(wrap_argv([PY, "-c", ask, path], user="nobody"), capture_output=True,
                       text=True, timeout=20)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r.stderr
    assert a.stop() == 0 and not os.path.exists(path)


@pytest.mark.parametrize("words,msg", [
    (["--http", "localhost:9871"], "not an IP address"),
    (["--http", "127.0.0.1"], "ADDR:PORT"),
    (["--http", "unix:rel.sock"], "absolute"),
    (["--http", "127.0.0.1:9871", "--no-agent"], "--http needs the agent"),
], ids=["name", "no-port", "relative-socket", "no-agent"])
def test_refused_words(case, words, msg):
    """Bad --http words are usage errors (exit 2), and nothing is attached."""
    r = case.vg_run("attach", *case.guard(case.cg), *words)
    assert r.returncode == 2 and msg in r.stderr, r.stderr
    assert not [g for g in json.loads(case.vg_run("status", "--json").stdout)["guards"]
                if g["cgroup_id"] == case.gid]


def test_prometheus_scrapes_open_then_closed(case, served, tunnel_back):
    """A real Prometheus (Debian's) scrapes the agent every second: vpnguard_guard_open is 1,
    and 0 within one scrape interval (plus the query's own) after the tunnel is deleted."""
    port = free_port()
    cfg = case.path("prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                "scrape_configs:\n- job_name: vpnguard\n  static_configs:\n"
                f"  - targets: ['{served[len('http://'):]}']\n")
    p = subprocess.Popen(["prometheus", f"--config.file={cfg}", f"--web.listen-address=127.0.0.1:{port}",
                          f"--storage.tsdb.path={case.path('tsdb')}", "--log.level=warn"],
                         stdout=subprocess.DEVNULL, stderr=open(case.path("prometheus.err"), "w"))
    api = f"http://127.0.0.1:{port}/api/v1/query?query=vpnguard_guard_open"

    def value():
        try:
            res = json.loads(get(api, timeout=3)[2])["data"]["result"]
        except (OSError, ValueError, KeyError):
            return None
        return [r["value"][1] for r in res if r["metric"].get("guard") == cg_label(case.cg)]

    try:
        assert wait_until(lambda: value() == ["1"], 30), f"prometheus never saw 1: {value()}"
        t0 = time.monotonic()
        case.t.tunnel_down("del")
        assert wait_until(lambda: value() == ["0"], 10), f"still {value()} 10 s after the tunnel went"
        fig(f"prometheus: guard_open 1 -> 0 seen by a query {time.monotonic() - t0:.2f} s after "
            f"the tunnel was deleted (scrape interval 1 s)")
        assert time.monotonic() - t0 < 1 + 1 + 1.5, "later than one scrape interval and a query"
    finally:
        end_popen(p)


def hostile_load(base, port, seconds):
    """40 slowloris connections (a header byte a second) and 1,000 GETs 100 at a time;
    returns (slow connections the agent closed, answers by status)."""
    slow = []
    for _ in range(40):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        except OSError:
            pass
    codes = {}

    def one(_):
        try:
            return get(base + "/metrics", timeout=10)[0]
        except urllib.error.URLError as e:
            return type(e.reason).__name__
        except OSError as e:
            return type(e).__name__

    with concurrent.futures.ThreadPoolExecutor(100) as ex:
        futs = [ex.submit(one, i) for i in range(1000)]
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for s in slow:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            time.sleep(1)
        for f in futs:
            c = f.result()
            codes[c] = codes.get(c, 0) + 1
    closed = 0
    for s in slow:
        try:
            s.settimeout(0.5)
            closed += s.recv(1) == b""
        except OSError:
            closed += 1
        s.close()
    return closed, codes


def test_hostile_clients_do_not_delay_the_guard(case, served, tunnel_back):
    """Slowloris and 1,000 concurrent requests at once: the tunnel's deletion reaches the
    map as fast as without them, the probes keep their interval, what is past the bounds is
    refused at once, and the endpoint answers again once the load is gone. (40 slow clients
    of one address hold its 8 slots while they trickle: the bound protects the agent, not a
    second client of the same address.)"""
    a, t = case.http_agent, case.t
    port = int(served.rsplit(":", 1)[1])
    m = a.log.mark()
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        load = ex.submit(hostile_load, served, port, 8)
        time.sleep(2)
        t.tunnel_down("del")
        r = a.log.wait(TDOWN, since=m, timeout=5)
        closed, codes = load.result()
    assert r, f"no tunnel_down record under load: {a.log.tail()}"
    after = r["map_updated_after_us"]
    probes = a.log.count(PROBE, since=m) + a.log.count(ev("state"), since=m)
    fig(f"hostile load: tunnel deleted -> map updated after {after} us (agent's record); "
        f"{probes} probe rounds in ~8 s (interval 1 s); answers {codes}; "
        f"{closed}/40 slowloris connections closed by the agent")
    assert after < 50_000, f"the map waited {after} us for the HTTP load"
    assert probes >= 5, "the probes lost their interval under the load"
    # Past the bounds (32 connections, 8 per address) requests are refused at once, never
    # left hanging: a client waits for nothing.
    assert not [c for c in codes if c not in (200, 503, "ConnectionResetError",
                                                "RemoteDisconnected", "ConnectionRefusedError")], codes
    assert wait_until(lambda: get(served + "/metrics", timeout=3)[0] == 200, 10), \
        "the endpoint does not answer once the load is gone"


def test_status_page_live(case, served, render, tunnel_back):
    """The page from the live agent in headless Chromium: PROTECTED with the VPN address the
    probe saw, then BLOCKING once the tunnel is deleted."""
    assert wait_until(lambda: json.loads(get(served + "/api/v1/status")[2])["guards"][0]
                      .get("last_probe"), 5)
    page = render(served + "/")
    [g] = page.guards()
    assert g.k("state") == "PROTECTED", g.why
    assert g.k("vpn-address").startswith(case.t.vpn_ip), g.k("vpn-address")
    # VG_SCREENSHOT=PATH keeps the phone screenshot (the README's comes from here).
    shot = os.environ.get("VG_SCREENSHOT") or case.path("page-protected.png")
    render.screenshot(served + "/", shot)
    case.t.tunnel_down("del")
    assert wait_until(lambda: not case.status()["tunnel_present"], 5)
    [g] = render(served + "/").guards()
    assert g.k("state") == "BLOCKING" and "not present" in g.why, g.why
    print(f"# status page screenshot (protected): {shot}")
