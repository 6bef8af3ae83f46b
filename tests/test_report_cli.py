"""`vpnguard-bpf report` on logs made here: no kernel, no guard, no network but loopback.

The world: a temp dir with an events log written line by line (times relative to now, as the
agent writes them), a config file, and for --post a webhook receiver on 127.0.0.1. The binary
runs as root (every command needs it) with this session's own VPNGUARD_RUN_DIR, so no running
agent's log is taken instead. Exit codes: 0 no leak, 3 a check saw the real address, 1 an
unreadable log or a failed post, 2 bad usage.

    pytest-3 tests/test_report_cli.py
    VPNGUARD_BIN=/tmp/b/vpnguard-bpf pytest-3 tests/test_report_cli.py -k since_cuts
"""
import datetime
import fcntl
import gzip
import http.server
import json
import os
import subprocess
import threading
import time

import pytest

REAL = "198.51.100.7"
VPN = "203.0.113.9"
ABS = "/sys/fs/cgroup/unified/vpn.slice"


def stamp(ago_s):
    """The agent's time format, ago_s seconds before now."""
    t = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=ago_s)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def rec(ago_s, event, **fields):
    return {"time": stamp(ago_s), "event": event, **fields}


def state(ago_s, st, why, guard="torrent", **kw):
    return rec(ago_s, "state", guard=guard, cgroups=[ABS], state=st, why=why, **kw)


def probe(ago_s, why, guard="torrent", **kw):
    return rec(ago_s, "probe", guard=guard, cgroups=[ABS], why=why, duration_s=0.2, **kw)


def blocked(ago_s, dst, dport=443, comm="curl", reason="no_tunnel"):
    return rec(ago_s, "blocked", reason=reason, hook="connect4", cgroup="/vpn.slice", cgroup_id=77, pid=9,
               uid=0, comm=comm, proto="tcp", family="ipv4", dst=dst, dport=dport, ifindex=0)


def write_log(path, records, mtime_ago=None, opener=open):
    with opener(path, "wt") as f:
        for r in records:
            f.write(r if isinstance(r, str) else json.dumps(r, separators=(",", ":")))
            f.write("\n")
    if mtime_ago is not None:
        t = time.time() - mtime_ago
        os.utime(path, (t, t))
    return str(path)


def run(vg, *args, timeout=60, **env_set):
    # The webhook is on loopback: no proxy of the environment's may stand in between.
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()} | env_set
    return subprocess.run([vg, "report", *args], capture_output=True, text=True, timeout=timeout, env=env)


def report_json(vg, log, *args):
    r = run(vg, "--log", log, "--json", *args)
    assert r.returncode in (0, 3), f"exit {r.returncode}: {r.stderr}"
    return r.returncode, json.loads(r.stdout)


HOUR = 3600

# Each row: a log, the exit status, whether the report says leak.
EXIT_CASES = {
    "open all day, checks pass": ([state(30 * HOUR, "open", "probe_passed"), probe(HOUR, "probe_passed", seen=VPN)], 0),
    "real address seen an hour ago": ([state(30 * HOUR, "open", "probe_passed"),
                                       state(HOUR, "closed", "real_ip", seen=REAL)], 3),
    "real address seen by a check while closed": ([state(2 * HOUR, "closed", "probe_failed"),
                                                   probe(HOUR, "real_ip", seen=REAL)], 3),
    "real address before the window only": ([state(30 * HOUR, "closed", "real_ip", seen=REAL)], 0),
    "closed by failed probes: no leak": ([state(5 * HOUR, "closed", "probe_failed", error="connect: timed out")], 0),
    "an empty log": ([], 0),
    "garbage only": (["not json", '{"event":"state"}', "[1,2]"], 0),
}


@pytest.mark.parametrize("records,code", EXIT_CASES.values(), ids=EXIT_CASES.keys())
def test_exit_code(vg, tmp_path, records, code):
    log = write_log(tmp_path / "events.jsonl", records)
    r = run(vg, "--log", log)
    assert r.returncode == code, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert ("LEAK: a check saw a real address" in r.stdout) == (code == 3), r.stdout
    rc, rep = report_json(vg, log)
    assert rc == code and rep["leak"] == (code == 3)


USAGE_CASES = {
    "32 days": ["--since", "32d"],
    "not a duration": ["--since", "yesterday"],
    "no value": ["--since"],
    "a forgotten value": ["--since", "--json"],
    "given twice": ["--since", "1h", "--since", "2h"],
    "another command's option": ["--follow"],
    "attach's option": ["--tunnel", "wg0"],
}


@pytest.mark.parametrize("args", USAGE_CASES.values(), ids=USAGE_CASES.keys())
def test_bad_usage(vg, tmp_path, args):
    r = run(vg, "--log", write_log(tmp_path / "events.jsonl", []), *args)
    assert r.returncode == 2, f"exit {r.returncode}\n{r.stderr}"
    assert "usage:" in r.stderr


def test_since_takes_up_to_31_days(vg, tmp_path):
    log = write_log(tmp_path / "events.jsonl", [])
    for since, window in (("31d", 31 * 86400), ("744h", 744 * HOUR), ("90m", 5400), ("1", 1)):
        rc, rep = report_json(vg, log, "--since", since)
        assert rep["window_s"] == window, since


@pytest.mark.parametrize("what", ["missing", "a directory"])
def test_unreadable_log(vg, tmp_path, what):
    path = tmp_path / "events.jsonl"
    if what == "a directory":
        path.mkdir()
    r = run(vg, "--log", str(path))
    assert r.returncode == 1, f"exit {r.returncode}\n{r.stdout}{r.stderr}"
    assert str(path) in r.stderr and r.stdout == ""


def test_long_and_torn_lines(vg, tmp_path):
    """A line longer than any record the agent writes (16 KiB) is one line of garbage, not several;
    the records after it count, and so does a last line cut short (the agent killed mid-write)."""
    long_rec = json.dumps(probe(HOUR, "real_ip", seen=REAL, error="x" * 100000))
    path = write_log(tmp_path / "events.jsonl", [state(30 * HOUR, "open", "probe_passed"), long_rec,
                                                 probe(HOUR, "probe_passed", seen=VPN)])
    with open(path, "a") as f:
        f.write(json.dumps(probe(60, "real_ip", seen=REAL))[:40])
    rc, rep = report_json(vg, path)
    assert rc == 0, "neither the long line nor the torn one is a record: no leak from them"
    assert rep["log"] == {"lines": 4, "records": 2, "garbage": 2, "unordered": 0, "outside": 0}
    assert rep["guards"][0]["checks"]["total"] == 1


def test_json_fields(vg, tmp_path):
    log = write_log(tmp_path / "events.jsonl", [
        state(30 * HOUR, "open", "probe_passed", seen=VPN),
        state(10 * HOUR, "closed", "probe_failed", error="connect: timed out"),
        blocked(9 * HOUR, "192.0.2.1"), blocked(9 * HOUR, "192.0.2.1"), blocked(9 * HOUR, "192.0.2.53", 53, "dig", "dns"),
        state(8 * HOUR, "open", "probe_passed", seen=VPN),
        probe(7 * HOUR, "probe_passed", seen=VPN),
        rec(6 * HOUR, "tunnel_down", cgroup_id=77, tunnel="wg0", ifindex=0),
        rec(6 * HOUR - 5, "tunnel_up", cgroup_id=77, tunnel="wg0", ifindex=9),
        rec(5 * HOUR, "docker", container="qb", id="abc", action="start", reload="applied"),
        rec(5 * HOUR, "reload", trigger="sighup", config=None, result="applied"),
        "a torn line",
    ])
    rc, rep = report_json(vg, log)
    assert rc == 0
    assert {"from", "to", "window_s", "leak", "guards", "events", "log", "log_path"} <= rep.keys()
    assert rep["window_s"] == 24 * HOUR and rep["log_path"] == log
    assert rep["log"]["garbage"] == 1 and rep["log"]["lines"] == 12
    assert rep["events"]["tunnel_down"] == 1 and rep["events"]["tunnel_up"] == 1
    assert rep["events"]["docker"] == {"start": 1} and rep["events"]["reload"] == {"applied": 1}
    (g,) = rep["guards"]
    assert g["guard"] == "torrent" and g["cgroups"] == [ABS]
    # Closed for the 2 hours from 10 h ago to 8 h ago; open the other 22 (seconds of slack: the
    # log was written a moment before the report ran).
    assert abs(g["closed_s"] - 2 * HOUR) < 5 and abs(g["open_s"] - 22 * HOUR) < 5 and g["unknown_s"] == 0
    assert abs(g["protected_pct"] - 100 * 22 / 24) < 0.1
    assert g["state_at_start"] == "open" and g["state_now"] == "open"
    assert [(c["state"], c["why"]) for c in g["changes"]] == [("closed", "probe_failed"), ("open", "probe_passed")]
    assert g["changes"][0]["error"] == "connect: timed out"
    assert g["checks"]["total"] == 3 and g["checks"]["by_why"] == {"probe_failed": 1, "probe_passed": 2}
    assert g["checks"]["duration_max_s"] == 0.2
    assert [(s["ip"], s["checks"], s["real_ip"]) for s in g["seen"]] == [(VPN, 2, False)]
    assert g["real_ip_seen"] is False and g["real_ips"] == []
    b = g["blocked"]
    assert b["total"] == 3 and b["by_reason"] == {"no_tunnel": 2, "dns": 1} and b["by_comm"] == {"curl": 2, "dig": 1}
    assert b["top_destinations"][0] == {"dst": "192.0.2.1", "dport": 443, "proto": "tcp", "count": 2}


def test_since_cuts_the_window(vg, tmp_path):
    log = write_log(tmp_path / "events.jsonl", [
        state(30 * HOUR, "open", "probe_passed"),
        blocked(5 * HOUR, "192.0.2.1"),
        state(2 * HOUR, "closed", "real_ip", seen=REAL),
        blocked(30 * 60, "192.0.2.2"),
    ])
    rc, rep = report_json(vg, log, "--since", "1h")
    g = rep["guards"][0]
    # The leak was before this window: the guard starts it closed, and no check in it saw anything.
    assert rc == 0 and rep["leak"] is False
    assert g["state_at_start"] == "closed" and g["changes"] == [] and g["closed_s"] == HOUR
    assert g["blocked"]["total"] == 1 and g["blocked"]["top_destinations"][0]["dst"] == "192.0.2.2"
    rc, rep = report_json(vg, log, "--since", "3h")
    g = rep["guards"][0]
    assert rc == 3 and g["real_ips"] == [REAL] and len(g["changes"]) == 1
    assert g["blocked"]["total"] == 1 and abs(g["open_s"] - HOUR) < 5
    rc, rep = report_json(vg, log, "--since", "6h")
    assert rc == 3 and rep["guards"][0]["blocked"]["total"] == 2


def test_rotated_files_read_first(vg, tmp_path):
    """logrotate's events.jsonl.1 and .2.gz: read back to the first that ends before the window
    (it holds the state the window starts in), and no further."""
    base = tmp_path / "events.jsonl"
    write_log(f"{base}.3.gz", [state(90 * HOUR, "closed", "real_ip", seen=REAL)], 89 * HOUR, gzip.open)
    write_log(f"{base}.2.gz", [state(30 * HOUR, "open", "probe_passed")], 29 * HOUR, gzip.open)
    write_log(f"{base}.1", [probe(10 * HOUR, "probe_failed", error="x"), blocked(10 * HOUR, "192.0.2.1")], 10 * HOUR)
    write_log(base, [probe(HOUR, "probe_passed")])
    rc, rep = report_json(vg, str(base))
    g = rep["guards"][0]
    assert g["state_at_start"] == "open" and g["open_s"] == 24 * HOUR
    assert g["checks"]["total"] == 2 and g["blocked"]["total"] == 1
    assert rep["log"]["lines"] == 4, "events.jsonl.3.gz ends before the window and after the one that does"


def test_text_for_a_person(vg, tmp_path):
    log = write_log(tmp_path / "events.jsonl", [
        state(30 * HOUR, "open", "probe_passed", guard="t\nno leak seen in this window"),
        state(HOUR, "closed", "real_ip", seen=REAL, guard="t\nno leak seen in this window"),
        blocked(HOUR, "192.0.2.1", comm="evil\x1b[2J"),
    ])
    r = run(vg, "--log", log)
    assert r.returncode == 3
    lines = r.stdout.splitlines()
    assert lines[0].startswith("vpnguard report: ") and "(24h)" in lines[0]
    assert "guard t\\nno leak seen in this window (" + ABS + ")" in r.stdout
    assert f"REAL ADDRESS {REAL}" in r.stdout and "\x1b" not in r.stdout
    assert lines[-1] == "LEAK: a check saw a real address in this window"
    assert not any(ln == "no leak seen in this window" for ln in lines)


@pytest.mark.parametrize("agent", [True, False], ids=["an agent runs", "the agent is gone"])
def test_which_log(vg, tmp_path, agent):
    """--log first; else the log of the agent that holds the pidfile (a pidfile nobody holds is a
    dead agent's); else the config's [agent] log. The agent here is this test holding the lock."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    agents = write_log(tmp_path / "agent.jsonl", [probe(HOUR, "real_ip", seen=REAL)])
    confs = write_log(tmp_path / "conf.jsonl", [probe(HOUR, "probe_passed", guard="from-config")])
    given = write_log(tmp_path / "given.jsonl", [probe(HOUR, "probe_passed", guard="given")])
    conf = tmp_path / "vpnguard.conf"
    conf.write_text(f"[agent]\nlog = {confs}\n\n[guard g]\ncgroup = /vpn.slice\ngateway = 192.0.2.1:51820\n")
    conf.chmod(0o600)
    with open(run_dir / "agent.pid", "w") as pidfile:
        pidfile.write(f"{os.getpid()}\n{agents}\n")
        pidfile.flush()
        if agent:
            fcntl.flock(pidfile, fcntl.LOCK_EX)
        r = run(vg, "--json", "--config", str(conf), VPNGUARD_RUN_DIR=str(run_dir))
        assert r.returncode == (3 if agent else 0), r.stderr
        assert json.loads(r.stdout)["log_path"] == (agents if agent else confs)
        r = run(vg, "--json", "--config", str(conf), "--log", given, VPNGUARD_RUN_DIR=str(run_dir))
        assert r.returncode == 0 and json.loads(r.stdout)["guards"][0]["guard"] == "given", r.stderr


class Receiver(http.server.BaseHTTPRequestHandler):
    status = 200
    bodies = []

    def do_POST(self):  # noqa: N802 (http.server's name)
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    """A receiver on 127.0.0.1 that answers each POST with Receiver.status; always shut down."""
    Receiver.status, Receiver.bodies = 200, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv, f"http://127.0.0.1:{srv.server_address[1]}/vpn?token=s3cret"
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(10)


def config(tmp_path, webhook_url):
    path = tmp_path / "vpnguard.conf"
    agent = f"webhook = {webhook_url}\n" if webhook_url else "log = /nonexistent\n"
    path.write_text(f"[agent]\n{agent}\n[guard torrent]\ncgroup = /vpn.slice\ngateway = 192.0.2.1:51820\n")
    path.chmod(0o600)
    return str(path)


@pytest.mark.parametrize("leak", [False, True], ids=["no leak", "leak"])
def test_post_sends_the_report(vg, tmp_path, webhook, leak):
    srv, url = webhook
    records = [state(30 * HOUR, "open", "probe_passed")] + ([probe(HOUR, "real_ip", seen=REAL)] if leak else [])
    r = run(vg, "--log", write_log(tmp_path / "events.jsonl", records), "--config", config(tmp_path, url), "--post")
    assert r.returncode == (3 if leak else 0), r.stderr
    (body,) = Receiver.bodies
    sent = json.loads(body)
    assert sent["leak"] is leak and sent["guards"][0]["guard"] == "torrent" and sent["event"] == "report"
    assert sent["priority"] == (8 if leak else 3) and sent["title"].startswith("vpnguard report")
    assert sent["message"] == sent["content"] and ("LEAK" in sent["message"]) == leak


def test_post_refused_by_the_receiver(vg, tmp_path, webhook):
    srv, url = webhook
    Receiver.status = 503
    r = run(vg, "--log", write_log(tmp_path / "events.jsonl", []), "--config", config(tmp_path, url), "--post")
    assert r.returncode == 1 and len(Receiver.bodies) == 3, r.stderr
    assert "try 3 of 3" in r.stderr and "token=<redacted>" in r.stderr and "s3cret" not in r.stderr + r.stdout


def test_post_without_a_webhook(vg, tmp_path):
    r = run(vg, "--log", write_log(tmp_path / "events.jsonl", []), "--config", config(tmp_path, None), "--post")
    assert r.returncode == 1 and "no webhook in [agent]" in r.stderr
