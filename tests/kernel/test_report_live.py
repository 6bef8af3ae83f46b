"""`vpnguard-bpf report` on a live agent's log, on the real kernel: checks that
passed give exit 0 and the address the echo saw; a check that sees the real address makes
the report say leak and exit 3, with the attempt the guard then blocked put with it.

World: tests/lib/vgagentcase.py (the IP echo in INET; "the tunnel exits by the real address"
made real by an SNAT rule, case.real_ip_on()). Constructed logs: tests/test_report_cli.py.
Run one case:  VPNGUARD_BIN=... pytest-3 tests/kernel/test_report_live.py -k leak
"""
import json

from vgagent import CLOSED, OPEN, PROBE
from vgagentcase import agent_world, case  # noqa: F401 (the fixtures)
from vgproc import wait_until


def report(case, log, *words):
    r = case.vg_run("report", "--log", log, "--since", "1h", "--json", *words)
    return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else None), r.stderr


def the_guard(rep):
    [g] = [g for g in rep["guards"] if g.get("guard") == "command line"]
    return g


def test_report_of_passing_checks(case):
    """Three passing checks: exit 0, no leak, the VPN address seen, time open counted."""
    a = case.agent("rep", *case.guard(case.cg), "--probe-url", case.url("/ip"),
                   "--probe-interval", "1s", "--real-ip", case.t.real_ip)
    assert a.log.wait(OPEN, timeout=6), a.log.tail()
    assert wait_until(lambda: a.log.count(PROBE) >= 3, 10), a.log.tail()
    code, rep, err = report(case, a.log.path)
    assert code == 0 and rep and rep["leak"] is False, (code, err)
    g = the_guard(rep)
    assert g["real_ip_seen"] is False and case.t.vpn_ip in json.dumps(g["seen"]), g
    assert float(g["open_s"]) > 0, g
    assert a.stop() == 0


def test_report_of_a_leak(case):
    """The tunnel exits by the real address: the check sees it, the guard closes, the attempt
    sent meanwhile is blocked; report says leak (exit 3) and has the real address and the
    blocked attempt."""
    a = case.agent("leak", *case.guard(case.cg), "--probe-url", case.url("/ip"),
                   "--probe-interval", "1s", "--real-ip", case.t.real_ip)
    assert a.log.wait(OPEN, timeout=6), a.log.tail()
    m = a.log.mark()
    case.real_ip_on()
    assert a.log.wait(CLOSED, since=m, timeout=6), a.log.tail()
    case.gsend(case.cg, 2, 0, "closed")
    assert wait_until(lambda: a.log.first(lambda r: r.get("event") == "blocked", since=m), 5)
    case.real_ip_off()
    code, rep, err = report(case, a.log.path)
    assert code == 3 and rep and rep["leak"] is True, (code, err)
    g = the_guard(rep)
    assert g["real_ip_seen"] is True and case.t.real_ip in json.dumps(g["real_ips"]), g
    assert g["blocked"]["by_reason"].get("closed", 0) >= 1, \
        f"the blocked attempt is not the guard's: {[x['blocked'] for x in rep['guards']]}"
    assert a.stop() == 0
