"""The agent's health probes through the tunnel, on the real kernel.

World (tests/lib/vgagentcase.py): HOME with the WireGuard client, INET with the server
and the "Internet" 198.51.100.1, where tools/echo_server.py tells each probe the address
it came from (HTTP :8080, HTTPS :8443 with a CA made here). The agent runs in the root
namespace and probes from inside HOME, bound to the tunnel. "The tunnel exits by the real
address" is an SNAT rule in INET's input hook: the echo then sees HOME's real IP
10.99.0.1. Traffic is judged where it arrives (gtun/gleak counters in INET); `status
--json` only says why.

Each case starts its own agent on a fresh guard. Run one:
    VPNGUARD_BIN=... pytest-3 -s tests/kernel/test_agent_probe.py -k gluetun
"""
import re
import socket
import time

import pytest

from vgagent import CLOSED, OPEN, PROBE, STATE, ev, fig, ms
from vgagentcase import agent_world, case  # noqa: F401 (the fixtures)

# Every check is a probe record (the audit trail); the failures are these.
FAILED = ev("probe", why="probe_failed")

INTERVAL = ("--probe-interval", "1s")


def test_http_probe_opens_only_after_a_pass(case):
    """Case 1: closed until the first passing probe (the echo is not running yet), then open
    with a lease the probes renew, guarded traffic through the tunnel, probes by the tunnel."""
    t = case.t
    case.echo.stop()
    a = case.agent("c1", *case.guard(case.cg), "--probe-url", case.url("/ip"), *INTERVAL,
                   "--real-ip", t.real_ip)
    assert case.state() == "closed", "right after start (echo not running) the guard is closed"
    case.gsend(case.cg, 3, 0, "closed")
    assert a.log.wait(ev("probe", why="probe_failed"), timeout=5), \
        f"no probe failure (refused) while the echo is down: {a.log.tail()}"
    assert a.log.count(STATE) == 0, "a state record before the echo runs"
    print(f"# case 1: first failure: {a.log.first(PROBE).get('error')}")
    e0, m_echo = case.far("echo_tun"), case.echo.mark()
    t0 = time.time()
    case.echo.start()
    r = a.log.wait(OPEN, timeout=5)
    assert r, f"no state open record within 5 s: {a.log.tail()}"
    fig(f"case 1: echo started -> state open record: {ms(t0, r)} ms (probe interval 1 s)")
    assert [r.get("why"), r.get("seen"), r.get("guard"), r.get("cgroups")] == \
        ["probe_passed", t.vpn_ip, "command line", [case.cg]], r
    g = case.status()
    assert g["state"] == "open", g
    lease = round(g["lease_left_s"] or 0, 1)
    assert 1.5 <= lease <= 3.0, f"lease renewed by the probes to about 3 s (3 x interval): {lease}"
    case.gsend(case.cg, 5, 5)
    assert case.far("echo_tun") > e0, "the probes did not arrive by the tunnel"
    assert case.far("echo_veth") == 0, "probes arrived by the veth"
    clients = {line[1] for line in case.echo.lines(m_echo)}
    assert clients == {t.vpn_ip}, f"the echo saw {clients}, want only the tunnel address"
    assert a.stop() == 0, "exit status on SIGTERM"


def test_https_probe_with_ca(case):
    """Case 2: an HTTPS probe verified against --probe-ca opens the guard."""
    tls = case.aw.tls()
    a = case.agent("c2a", *case.guard(case.cg), "--probe-url", case.url("/json", tls=True),
                   "--probe-ca", case.aw.ca, *INTERVAL)
    r = a.log.wait(OPEN, timeout=6)
    assert r, f"with --probe-ca: no state open within 6 s: {a.log.tail()}"
    assert [r.get("why"), r.get("seen")] == ["probe_passed", case.t.vpn_ip], r
    assert tls.running()
    case.gsend(case.cg, 2, 2)
    assert a.stop() == 0


def test_https_probe_without_ca_stays_closed(case):
    """Case 2: without --probe-ca the certificate is refused and the guard never opens."""
    tls = case.aw.tls()
    m_tls = tls.mark()
    a = case.agent("c2b", *case.guard(case.cg), "--probe-url", case.url("/json", tls=True),
                   *INTERVAL)
    a.log.wait(ev("probe", why="probe_failed", failed_in_a_row=2), timeout=6)
    err = (a.log.first(PROBE) or {}).get("error", "")
    print(f"# case 2: without --probe-ca: {err}")
    assert re.search(r"[Cc]ertificate|SSL|issuer", err), f"not a certificate error: {err!r}"
    assert a.log.count(STATE) == 0, f"a state record (never opened): {a.log.tail()}"
    assert case.state() == "closed"
    assert any(line[2] == "tls-error" for line in tls.lines(m_tls)), \
        "the echo logged no refused handshake (the client did not check the certificate?)"
    case.gsend(case.cg, 2, 0, "closed")
    assert a.stop() == 0


def dead_port():
    """A loopback port nothing listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# id, the closed record's why, the echo's path, options ({REAL}, {VPNNET}, {DEAD} filled in)
WRONG_EXIT = [
    ("real_ip-json", "real_ip", "/json", ["--real-ip", "{REAL}"]),
    # alerts to a dead port on loopback meanwhile: closing must not wait for them
    ("expect_ip-ipjson-deadhook", "unexpected_ip", "/ipjson",
     ["--expect-ip", "{VPNNET}", "--webhook", "http://127.0.0.1:{DEAD}/"]),
]


@pytest.mark.parametrize("why,path,opts", [r[1:] for r in WRONG_EXIT],
                         ids=[r[0] for r in WRONG_EXIT])
def test_wrong_exit_closes_running_flood(case, why, path, opts):
    """Case 3: the tunnel starts to exit by the real address while guarded UDP flows: closed
    within one probe interval + timeout + 1 s, the flood stops at the far side, and it
    flows again when the exit is mended."""
    t = case.t
    dead = dead_port()
    opts = [o.format(REAL=t.real_ip, VPNNET=t.vpn_net, DEAD=dead) for o in opts]
    a = case.agent("c3", *case.guard(case.cg), *INTERVAL, "--probe-url", case.url(path), *opts)
    assert a.log.wait(OPEN, timeout=6), f"no state open within 6 s: {a.log.tail()}"
    flood = case.flood(case.cg, 30)
    assert case.far_grows("gtun", 20), "the flood does not reach the far side"
    c0, m, m_echo = case.denied("closed"), a.log.mark(), case.echo.mark()
    t0 = time.time()
    case.real_ip_on()
    tk = None
    for _ in range(120):
        if case.state() == "closed":
            tk = time.time()
            break
        time.sleep(0.025)
    r = a.log.wait(CLOSED, since=m, timeout=5)
    assert r, f"no state closed record within 5 s: {a.log.tail()}"
    dt = ms(t0, r)
    f = fig(f"case 3 ({why}): snat on -> state closed record {dt} ms, -> status closed "
            f"{ms(t0, tk) if tk else 'never'} ms (interval 1 s, timeout 1 s)")
    assert dt <= 3000, f"closed later than one interval + timeout + 1 s: {f}"
    assert [r.get("why"), r.get("seen")] == [why, t.real_ip], r
    assert case.state() == "closed"
    time.sleep(0.4)
    g_mid = case.far("gtun")
    time.sleep(1)
    assert case.far("gtun") == g_mid, "the running flood still gets through the tunnel when closed"
    assert case.denied("closed") > c0, "the running flood is not denied as closed"
    assert case.far("gleak") == case.far0["gleak"], "guarded UDP by the veth"
    case.t.stop(flood)
    case.gsend(case.cg, 3, 0, "closed")
    flood = case.flood(case.cg, 30)
    assert any(line[1] == t.real_ip and line[2] == "200" for line in case.echo.lines(m_echo)), \
        "the echo never saw the real IP (the probe's source was not rewritten)"
    m = a.log.mark()
    t0 = time.time()
    case.real_ip_off()
    r = a.log.wait(OPEN, since=m, timeout=5)
    assert r, f"no state open record within 5 s of the snat's removal: {a.log.tail()}"
    fig(f"case 3 ({why}): snat off -> state open record {ms(t0, r)} ms")
    assert [r.get("why"), r.get("seen")] == ["probe_passed", t.vpn_ip], r
    assert case.far_grows("gtun", 20), "the running flood does not flow through the tunnel again"
    case.t.stop(flood)
    assert a.stop() == 0
    if "--webhook" in opts:
        assert f"webhook http://127.0.0.1:{dead}/: try 1 of 3" in a.stderr(), \
            f"the dead webhook's failures are not on the agent's stderr: {a.stderr()[-500:]}"


def test_gluetun_status_second_signal(case):
    """Case 3c: gluetun's /v1/vpn/status saying "stopped" closes at once (no probe failure
    counted first); "running" again reopens."""
    t = case.t

    def gluetun(word):
        with open(case.aw.gluetun, "w") as f:
            f.write(word + "\n")

    gluetun("running")
    m_echo = case.echo.mark()
    a = case.agent("c3c", *case.guard(case.cg), "--probe-url", case.url("/ip"), "--gluetun-url",
                   case.url("/"), *INTERVAL)
    assert a.log.wait(OPEN, timeout=6), f"does not open while gluetun says running: {a.log.tail()}"
    m = a.log.mark()
    t0 = time.time()
    gluetun("stopped")
    r = a.log.wait(CLOSED, since=m, timeout=5)
    assert r, f"no state closed record within 5 s of gluetun saying stopped: {a.log.tail()}"
    fig(f"case 3c: gluetun status 'stopped' -> state closed record {ms(t0, r)} ms")
    assert [r.get("why"), r.get("gluetun"), r.get("seen")] == \
        ["gluetun_not_running", "stopped", t.vpn_ip], r
    assert a.log.count(FAILED, since=m) == 0, "a probe failure was counted before it"
    case.gsend(case.cg, 2, 0, "closed")
    m = a.log.mark()
    gluetun("running")
    assert a.log.wait(OPEN, since=m, timeout=5), "does not reopen when gluetun runs again"
    case.gsend(case.cg, 2, 2)
    assert any(line[2] == "200" and line[3] == "/v1/vpn/status"
               for line in case.echo.lines(m_echo)), "gluetun's status was never asked"
    assert a.stop() == 0


# id, what breaks the probes, what mends them, the latest close (ms), more options
FAILURES = [
    # each probe fails at once: 3 x (1 s + a little) after the stop
    ("refused", lambda c: c.echo.stop(), lambda c: c.echo.start(), 4500, []),
    # INET drops the probes: 3 x (1 s + 0.5 s)
    ("timeout", lambda c: c.echo_drop_on(), lambda c: c.echo_drop_off(), 6500,
     ["--probe-timeout", "500ms"]),
]


@pytest.mark.parametrize("how,brk,mend,max_ms,opts", FAILURES, ids=[r[0] for r in FAILURES])
def test_probe_failures_close_then_reopen(case, how, brk, mend, max_ms, opts):
    """Case 4: --probe-failures 3 closes at the third failure in a row (two failure records,
    then the state record), and one passing probe reopens."""
    a = case.agent("c4", *case.guard(case.cg), "--probe-url", case.url("/ip"), *INTERVAL,
                   "--probe-failures", "3", "--lease", "30s", *opts)
    assert a.log.wait(OPEN, timeout=6), f"no state open within 6 s: {a.log.tail()}"
    m = a.log.mark()
    t0 = time.time()
    brk(case)
    r = a.log.wait(CLOSED, since=m, timeout=12)
    assert r, f"no state closed record within 12 s: {a.log.tail()}"
    dt = ms(t0, r)
    f = fig(f"case 4 ({how}): probes broken -> state closed record after {dt} ms "
            f"(3 failures, interval 1 s)")
    assert 1500 <= dt <= max_ms, f"closed before 2 intervals or after 3 x (interval + " \
                                 f"timeout) + 1.5 s: {f}"
    seq = [f"{r['event']}:{r.get('why')}:{r.get('failed_in_a_row', r.get('state'))}"
           for r in a.log.all(lambda r: STATE(r) or FAILED(r), since=m)][:3]
    assert seq == ["probe:probe_failed:1", "probe:probe_failed:2", "state:probe_failed:closed"], seq
    print(f"# case 4: failure error: {a.log.first(FAILED, since=m).get('error')}")
    assert case.state() == "closed"
    case.gsend(case.cg, 2, 0, "closed")
    m = a.log.mark()
    t0 = time.time()
    mend(case)
    r = a.log.wait(OPEN, since=m, timeout=6)
    assert r, f"no state open record within 6 s of mending: {a.log.tail()}"
    fig(f"case 4 ({how}): probes mended -> state open record after {ms(t0, r)} ms")
    assert r.get("why") == "probe_passed", r
    case.gsend(case.cg, 3, 3)
    assert a.stop() == 0
