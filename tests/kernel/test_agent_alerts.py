"""The agent's webhook alerts, on the real kernel: leak, closing, reopening; a
receiver that hangs delays neither closing nor SIGTERM nor a reload; the [agent]
webhook of a config file follows SIGHUP reloads.

World: tests/lib/vgagentcase.py (HOME with the WireGuard client, INET with the "Internet"
198.51.100.1 and the IP echo the probes ask; the real-IP exit is an SNAT rule in INET).
The receivers are tools/webhook_sink.py on 127.0.0.1 (root netns). Each case has its own
fresh guard, agent and receivers. Run one:
    VPNGUARD_BIN=... pytest-3 -s tests/kernel/test_agent_alerts.py -k hanging
"""
import os
import re
import time

from vgagent import CLOSED, OPEN, RELOAD, fig, ms, rec_time, write_config
from vgagentcase import agent_world, case  # noqa: F401 (the fixtures)
from vgproc import wait_until


def leak(r, b):
    return b.get("why") == "real_ip" and b.get("state") == "closed"


def opened(r, b):
    return b.get("state") == "open"


def probe_agent(case, tag, hook_url):
    """An agent probing the echo's JSON each second, closing on the real IP, posting to the hook."""
    a = case.agent(tag, *case.guard(case.cg), "--probe-url", case.url("/json"),
                   "--probe-interval", "1s", "--real-ip", case.t.real_ip, "--webhook", hook_url)
    assert a.log.wait(OPEN, timeout=6), f"the guard does not open: {a.log.tail()}"
    return a


def test_webhook_alerts(case):
    """Case 7: the opening, the leak (real IP), the reopening and a closing by probe
    failures are each posted once, as JSON, with their reason, address and priority."""
    t = case.t
    h = case.hook("c7")
    a = probe_agent(case, "c7", h.url)
    assert h.wait(opened, timeout=5), "the first opening is not posted"
    m = a.log.mark()
    case.real_ip_on()
    r = a.log.wait(CLOSED, since=m, timeout=5)
    posts = h.wait(leak)
    assert r and posts, f"no leak alert posted: {h.log.tail()}"
    line, b = posts[0]
    fig(f"case 7: leak alert posted {ms(rec_time(r), line['t'])} ms after the state record")
    assert [line["json"], line["content_type"]] == [True, "application/json"], line
    assert [b.get(k) for k in ("event", "state", "why", "seen", "guard", "priority")] == \
        ["state", "closed", "real_ip", t.real_ip, "command line", 8], b
    assert "leak" in (b.get("title") or ""), b
    want = re.compile(rf"real_ip.*{re.escape(t.real_ip)}")
    assert want.search(b.get("message") or "") and want.search(b.get("content") or ""), \
        f"message and content do not name the reason and the address: {b}"
    print(f"# case 7: leak alert title: {b.get('title')}")
    print(f"# case 7: leak alert message: {b.get('message')}")
    m, n_open = a.log.mark(), len(h.posts(opened))
    case.real_ip_off()
    assert a.log.wait(OPEN, since=m, timeout=5) and len(h.wait(opened, n_open + 1)) > n_open, \
        f"no reopened alert posted: {h.log.tail()}"
    _, b = h.posts(opened)[-1]
    assert [b.get(k) for k in ("state", "why", "seen", "priority")] == \
        ["open", "probe_passed", t.vpn_ip, 4], b
    assert any("reopened" in (b.get("title") or "") for _, b in h.posts(opened)), h.log.tail()
    time.sleep(1)
    assert [line["json"] for line, _ in h.posts()] == [True] * 3, \
        f"want exactly 3 alerts (open, leak, reopened), all JSON: {h.log.tail(5)}"
    m = a.log.mark()
    case.echo.stop()
    failed = lambda r, b: b.get("why") == "probe_failed"  # noqa: E731
    assert a.log.wait(CLOSED, since=m, timeout=8) and h.wait(failed, timeout=5), \
        f"no closing alert for the probe failures: {h.log.tail()}"
    _, b = h.posts(failed)[0]
    assert [b.get("state"), b.get("why"), b.get("priority"), bool(b.get("error"))] == \
        ["closed", "probe_failed", 8, True], b
    assert "closed" in (b.get("title") or ""), b
    m = a.log.mark()
    case.echo.start()
    assert a.log.wait(OPEN, since=m, timeout=6), "does not reopen when the echo is back"
    assert wait_until(lambda: len(h.posts()) >= 5, 5), f"no 5th alert: {h.log.tail()}"
    assert a.stop() == 0


def test_secrets_never_printed(case):
    """Case 7: a webhook URL and a probe URL that carry a token in their query: the webhook's
    failed tries and the probes' failures are said on stderr and in the log with the query
    redacted, never the token."""
    secret = f"s3cret{os.getpid()}"
    a = case.agent("c7s", *case.guard(case.cg), "--probe-url",
                   f"{case.url('/json')}?token={secret}", "--probe-interval", "1s",
                   "--webhook", f"http://127.0.0.1:1/hook?token={secret}")
    assert a.log.wait(OPEN, timeout=6), f"the guard does not open: {a.log.tail()}"
    assert wait_until(lambda: a.stderr().count("webhook") >= 2, 10, 0.2), \
        f"the failed POSTs of the opening are not said on stderr: {a.stderr()[-500:]}"
    m = a.log.mark()
    case.echo.stop()
    assert a.log.wait(CLOSED, since=m, timeout=8), "the guard does not close with the echo down"
    case.echo.start()
    with open(a.log.path, errors="replace") as f:
        said = {"stderr": a.stderr(), "log": f.read()}
    printed = [line for v in said.values() for line in v.splitlines() if secret in line]
    assert printed == [], f"the token is printed: {printed[:3]}"
    assert "hook?token=<redacted>" in said["stderr"], \
        f"the webhook's failures do not name its URL, redacted: {said['stderr'][-500:]}"
    assert a.stop() == 0


def test_hanging_receiver_delays_nothing(case):
    """Case 7: a receiver that accepts and never answers: the guard still closes within one
    probe + 1 s (twice), and SIGTERM does not wait for the stuck request."""
    h = case.hook("c7h", "--hang")
    a = probe_agent(case, "c7h", h.url)
    assert wait_until(lambda: len(h.posts()) >= 1, 5), "the receiver holds no POST of the agent"
    for rnd in (1, 2):
        m = a.log.mark()
        t0 = time.time()
        case.real_ip_on()
        r = a.log.wait(CLOSED, since=m, timeout=5)
        assert r, f"round {rnd}: no state closed record within 5 s"
        dt = ms(t0, r)
        f = fig(f"case 7 (hang) round {rnd}: snat on -> state closed record {dt} ms with the "
                f"webhook stuck")
        assert dt <= 3000, f"closed later than one probe + 1 s: {f}"
        assert case.state() == "closed"
        m = a.log.mark()
        case.real_ip_off()
        assert a.log.wait(OPEN, since=m, timeout=5), f"round {rnd}: does not reopen"
    t0 = time.time()
    rc = a.stop()
    dt = ms(t0, time.time())
    f = fig(f"case 7 (hang): SIGTERM -> agent gone in {dt} ms with a webhook request hanging")
    assert rc == 0
    assert dt <= 4000, f"it waits for the hanging receiver: {f}"
    print(f"# case 7 (hang): agent stderr: {a.stderr().count('webhook')} webhook lines")


def write_c7(case, hook_url):
    t = case.t
    agent = [("log", case.path("c7c.log")), ("webhook", hook_url)]
    return write_config(case.path("c7.conf"), agent, [
        ("one", [("cgroup", case.cg), ("tunnel", t.wg_client), ("netns", t.home_netns),
                 ("probe-url", case.url("/json")), ("probe-interval", "1s"),
                 ("real-ip", t.real_ip)])])


def config_agent(case, hook):
    cfg = write_c7(case, hook.url)
    a = case.agent("c7c", "--config", cfg, log=case.path("c7c.log"))
    assert a.log.wait(OPEN, timeout=6), f"the guard does not open: {a.log.tail()}"
    assert hook.wait(opened, timeout=5), "the opening is not posted to the [agent] webhook"
    return a


def hup(a, what):
    """SIGHUP; the reload must be applied. Milliseconds from the signal to its record in the
    file (it is written when the reload is done; its "time" is taken when it starts)."""
    m, t0 = a.log.mark(), time.time()
    a.hup()
    wait_until(lambda: a.log.count(RELOAD, since=m) > 0, 6, 0.01)
    t1 = time.time()
    r = a.log.first(RELOAD, since=m)
    assert r and r.get("result") == "applied", f"SIGHUP ({what}): no applied reload: {r}"
    return ms(t0, t1)


def leak_to(case, a, hook, what):
    """Real IP on: closed, the leak alert reaches hook; real IP off: reopened."""
    m = a.log.mark()
    case.real_ip_on()
    assert a.log.wait(CLOSED, since=m, timeout=5), f"{what}: not closed on the real IP"
    assert hook.wait(leak), f"{what}: no leak alert posted ({len(hook.posts())} POSTs); agent " \
                            f"stderr: {[x for x in a.stderr().splitlines() if 'webhook' in x][-2:]}"
    m, n_open = a.log.mark(), len(hook.posts(opened))
    case.real_ip_off()
    assert a.log.wait(OPEN, since=m, timeout=5), f"{what}: does not reopen"
    # The reopened alert is posted after the state record is logged: it is there before
    # the caller counts what this receiver got.
    assert len(hook.wait(opened, n_open + 1)) > n_open, f"{what}: no reopened alert posted"


def test_config_webhook_follows_reload(case):
    """Case 7: the [agent] webhook of a config file across SIGHUP: the same file keeps it,
    a new URL takes over (the old receiver gets nothing more)."""
    ha, hb = case.hook("c7a"), case.hook("c7b")
    a = config_agent(case, ha)
    print(f"# case 7 (config): same file: reload record {hup(a, 'same file')} ms after SIGHUP")
    leak_to(case, a, ha, "after a reload of the same file, A")
    n_a = len(ha.posts())
    write_c7(case, hb.url)
    hup(a, "webhook changed to B")
    leak_to(case, a, hb, "webhook changed to B")
    assert len(ha.posts()) == n_a, "A got alerts after the change"
    assert a.stop() == 0


def test_config_reload_beside_hanging_webhook(case):
    """Case 7: the webhook changed to a receiver that hangs; a reload while it holds a
    request is applied within 1 s (neither the reload nor the agent's loop waits)."""
    ha, hh = case.hook("c7a"), case.hook("c7h2", "--hang")
    a = config_agent(case, ha)
    write_c7(case, hh.url)
    hup(a, "webhook changed to the hanging H")
    m = a.log.mark()
    case.real_ip_on()
    assert a.log.wait(CLOSED, since=m, timeout=5), "H: not closed on the real IP"
    assert wait_until(lambda: len(hh.posts()) >= 1, 5), "H holds no leak alert"
    dt = hup(a, "same file, H hanging")
    f = fig(f"case 7 (config): SIGHUP -> reload record while the webhook receiver hangs: {dt} ms")
    assert 0 <= dt <= 1000, f"a reload waits for a hanging webhook: {f}"
    m = a.log.mark()
    case.real_ip_off()
    assert a.log.wait(OPEN, since=m, timeout=5), "H: does not reopen"
    assert a.stop() == 0
