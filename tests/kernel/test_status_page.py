"""The agent's status page (user/agent/status.html), rendered by a real browser.

World: tests/tools/status_api_mock.py on 127.0.0.1 serves the page file as the agent does
and, as /api/v1/status, one canned JSON of tests/tools/status_fixtures/ (or fails as a dead
or hung agent would). Debian's chromium, headless, loads the page with a virtual-time
budget (the page's 5 s refresh runs in no real time) and dumps the DOM AFTER its script ran;
the assertions read that rendered DOM (the page marks what it shows with data-k=...).
Chromium runs with its own --user-data-dir under the test's tmp_path, every background
service off and a dead proxy for anything not on loopback, and is ended by PID (its
process group) also on failure. No kernel, no agent: these cases need no kernel lock.

Fixtures for other cases of this file (the live agent):
  render    a tests/lib/vgbrowser.py Browser: render(url, budget_ms=3000) -> Page (the
            dumped DOM, parsed); render.when(url, js, timeout) (real time);
            render.screenshot(url, path, size=(390, 844)); render.layout(origin, width)
  page_url  the page's URL; indirect parameter: a fixture name, or a dict of mock options
            {"fixture": NAME, "fail_after": N, "fail_first": N,
             "fail_how": "status"|"drop"|"hang"} (status_api_mock.py's options).
            A live case overrides it by a fixture of the same name in a class and
            reuses render, the checks below and the Page helpers:
                class TestLive:
                    @pytest.fixture
                    def page_url(self, agent_with_http):   # however it is started
                        return f"http://127.0.0.1:{agent_with_http.port}/"
                    def test_live(self, render, page_url):
                        page = render(page_url)
                        no_page_error(page)
                        assert [g.k("state") for g in page.guards()] == ["PROTECTED"]

Run one case: pytest-3 tests/kernel/test_status_page.py -k 'rendered and gateway'
Phone screenshots: the path is printed (pytest-3 -s), under the test's tmp_path.
"""
import json
import os
import re
import shutil

import pytest

from vgbrowser import FIXTURES, PAGE, Browser, Mock, Page

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def render(tmp_path):
    if shutil.which("chromium") is None:
        pytest.fail("chromium missing: Debian's, by scripts/install-deps.sh (never a downloaded "
                    "browser)", pytrace=False)
    b = Browser(str(tmp_path))
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def page_url(request, tmp_path):
    opts = getattr(request, "param", "protected")
    opts = {"fixture": opts} if isinstance(opts, str) else dict(opts)
    m = Mock(str(tmp_path), **opts)
    try:
        yield m.origin
    finally:
        m.close()


def no_page_error(page):
    err = page.visible("page-error")
    assert err is None, f"the page's script failed: {err.text()}"


# -- what each fixture must show ---------------------------------------------------------
def protected(page):
    [g] = page.guards()
    assert g.k("state") == "PROTECTED" and "through wg0" in g.why
    assert page.title.startswith("PROTECTED")
    assert g.k("vpn-address") == "198.51.100.7, seen 12 s ago (2026-12-02 00:59:48)"
    assert g.k("tunnel") == "wg0 in /run/netns/vpn (present)"
    assert g.k("lease") == "1 min 25 s"
    assert g.k("name") == "command line"
    assert page.one("p", id="announce").text() == "command line: PROTECTED"
    assert g.denied() == {"ipv6": 12, "dns": 3, "discovery": 2, "multicast": 1}
    rows = g.recent()
    assert rows[0] == {"Time": "2026-12-02 00:58:01", "Process": "qbittorrent-nox (42)",
                       "Destination": "8.8.8.8:53 udp", "Reason": "DNS outside the tunnel"}
    assert rows[1]["Process"] == XSS + " (43)" and rows[1]["Destination"] == "[2001:db8::1]:443 tcp"
    assert len(rows) == 3
    assert g.timeline() == ["open", "closed", "open"]
    assert g.k("timeline-summary") == \
        "open 97.9% (23 h 30 min), closed 2.1% (30 min); closed 1 time"


def blocking_tunnel_gone(page):
    [g] = page.guards()
    assert g.k("state") == "BLOCKING" and "tunnel wg0 is not present" in g.why
    assert page.title.startswith("BLOCKING")
    assert g.k("vpn-address") == "none seen"
    assert g.k("probe") == \
        "failed (probe_failed) in 2000 ms: no route to host, 30 s ago (2026-12-02 00:59:30)"
    assert g.k("tunnel") == "wg0 in /run/netns/vpn (NOT present)"
    assert g.denied() == {"no_tunnel": 17, "dns": 3}
    assert g.recent()[0]["Destination"] == "203.0.113.9:6881 udp"
    # The tunnel's absences (closed, why tunnel_down) drawn apart from the agent's closings.
    assert g.timeline() == ["open", "no_tunnel", "open", "no_tunnel"]
    assert g.k("timeline-summary") == \
        "open 95.8% (23 h), closed 0% (0 s), tunnel down 4.2% (1 h); closed 2 times"
    assert g.k("since") == "30 min ago (2026-12-02 00:30:00)"


def closed_real_ip(page):
    [g] = page.guards()
    assert g.k("state") == "BLOCKING" and "closed: the probe saw the real IP (real_ip)" in g.why
    assert g.k("vpn-address").startswith("203.0.113.5 (the real IP, not the VPN's), seen 10 s ago")
    assert g.k("probe") == "saw the real IP (real_ip) in 51 ms"
    assert g.k("lease") == "expired"
    assert g.k("since") == "10 min ago (2026-12-02 00:50:00)"
    assert g.denied() == {"closed": 57, "dns": 3}
    assert g.timeline() == ["open", "closed"]
    assert g.k("timeline-summary").endswith("closed 0.7% (10 min); closed 1 time")


def not_guarded(page):
    cg, ns = page.guards()
    assert cg.k("state") == "NOT GUARDED" and "cgroup /vpnguard.slice is not present" in cg.why
    assert ns.k("state") == "NOT GUARDED" and "namespace /run/netns/gone" in ns.why
    assert cg.k("vpn-address") == "not probed" and cg.k("cgroup").endswith("(NOT present)")
    assert page.title.startswith("NOT GUARDED")


def no_guards(page):
    [g] = page.guards()
    assert g.k("state") == "NOT GUARDED" and "no guard is attached" in g.why


def gateway(page):
    [g] = page.guards()
    assert g.k("state") == "PROTECTED" and "gateway" in g.why
    assert g.k("gateways") == "172.18.0.2" and not g.has("tunnel")
    assert g.k("lease") == "\u2014" and g.k("vpn-address") == "not probed"
    assert g.denied() == {"not_gateway": 4}
    assert g.timeline() == ["unknown", "open"]
    assert g.k("timeline-summary") == \
        "open 20.8% (5 h), closed 0% (0 s), no record 19 h; closed 0 times"


def not_held(page):
    [g] = page.guards()
    assert g.k("state") == "PROTECTED" and g.k("name") == "/other.slice"
    assert g.k("tunnel") == "wg1 (present)" and g.k("lease") == "\u2014"
    assert not g.has("timeline") and not g.has("recent") and g.denied() == {}
    text = " ".join(g.node.text().split())
    assert "no timeline from the agent" in text and "no counters" in text


def hostile(page):
    [g] = page.guards()
    assert g.k("name") == "</h2><script>alert(2)</script>" + XSS
    assert g.k("tunnel") == f"{XSS} in /run/netns/vpn (present)"
    assert g.k("vpn-address").startswith(XSS + ", seen")
    assert g.recent() == [{"Time": "\u2014", "Process": f"{XSS} ({XSS})",
                           "Destination": f"{XSS}:{XSS} {XSS}", "Reason": XSS}]
    assert g.denied()[XSS] == 5 and g.timeline() == ["closed"]


def agent_unprobed(page):
    """Captured from a real agent (attach --http, the build of b1906b1): a guard on a veth,
    no probe, the netns in the agent's words rather than a path, a null why."""
    [g] = page.guards()
    assert g.k("state") == "PROTECTED" and g.k("vpn-address") == "not probed"
    assert g.k("tunnel") == "vgsp0 in the attaching process's namespace (present)"
    assert g.k("lease") == "1 min 18 s" and g.k("since").startswith("10 min 12 s ago")
    assert g.timeline() == ["unknown", "open"] and g.denied() == {} and g.recent() == []
    assert page.one("span", id="meta").text().startswith("version 0.1.0 \u00b7 agent pid 11477 \u00b7 up 10 min")


def malformed(page):
    """Wrong types everywhere: no script error, one card for the one object, fail-closed."""
    [g] = page.guards()
    assert g.k("state") == "BLOCKING" and g.k("lease") == "\u2014"
    assert g.timeline() == ["unknown"] and g.denied() == {} and len(g.recent()) == 1


RENDERED = [protected, blocking_tunnel_gone, closed_real_ip, not_guarded, no_guards, gateway,
            not_held, hostile, agent_unprobed, malformed]


def test_fixtures_all_checked():
    """Every fixture file has its check here, and every check its file."""
    files = sorted(f[:-5] for f in os.listdir(FIXTURES) if f.endswith(".json"))
    assert files == sorted(c.__name__ for c in RENDERED)


@pytest.mark.parametrize("page_url,check", [(c.__name__, c) for c in RENDERED],
                         ids=[c.__name__ for c in RENDERED], indirect=["page_url"])
def test_rendered(render, page_url, check):
    """The page as the fixture's guards are: state word, facts, counters, rows, timeline.
    And nothing the API said became markup: the only script is the page's own, no <img>."""
    page = render(page_url)
    no_page_error(page)
    assert page.visible("stale") is None, page.k("stale")
    assert page.k("updated").startswith("updated 20")
    assert len(page.all("script")) == 1 and not page.all("img")
    check(page)


# -- the agent unreachable ---------------------------------------------------------------
UNREACHABLE = [
    ("from_start", {"fixture": "protected", "fail_after": 0}, 3000),
    ("after_success_503", {"fixture": "protected", "fail_after": 1}, 8000),
    ("after_success_dropped", {"fixture": "protected", "fail_after": 1, "fail_how": "drop"}, 8000),
    ("after_success_hung", {"fixture": "protected", "fail_after": 1, "fail_how": "hang"}, None),
]


@pytest.mark.parametrize("page_url,budget_ms", [u[1:] for u in UNREACHABLE],
                         ids=[u[0] for u in UNREACHABLE], indirect=["page_url"])
def test_unreachable(render, page_url, budget_ms):
    """The API fails (503, dropped, no answer): the page says since when, and no guard
    shows a state as current; once data came, it is named as the last known, not the state."""
    if budget_ms is None:  # the page's own timeout must end the fetch: real time
        page = render.when(page_url, "!document.getElementById('stale').hidden", timeout=60)
        assert "no answer in 4 s" in page.k("stale")
    else:
        page = render(page_url, budget_ms)
    no_page_error(page)
    banner = page.visible("stale")
    assert banner is not None, "no 'agent unreachable' banner"
    assert re.match(r"agent unreachable since 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d \(", page.k("stale"))
    assert page.title.startswith("UNREACHABLE")
    guards = page.guards()
    words = [g.k("state") for g in guards]
    assert "PROTECTED" not in words and "BLOCKING" not in words, words
    if budget_ms != 3000:
        assert words == ["UNKNOWN"]
        assert guards[0].timeline()[-1] == "unknown", "the unreachable time drawn as known"
        assert "last known" in guards[0].why and "PROTECTED" in guards[0].why
        assert "may no longer be true" in page.k("stale")
    else:
        assert words == [] and "no status from the agent yet" in page.one("main").text()


@pytest.mark.parametrize("page_url", [{"fixture": "protected", "fail_first": 1}], indirect=True,
                         ids=["after_one_503"])
def test_recovers(render, page_url):
    """The agent back after a failed request: the banner goes, the state is current again."""
    page = render(page_url, 8000)
    no_page_error(page)
    assert page.visible("stale") is None, page.k("stale")
    assert [g.k("state") for g in page.guards()] == ["PROTECTED"]


def test_opened_history_stays_open(render, page_url):
    """A person opens the state records; the next refresh (5 s, real time) redraws the
    card and the list stays open."""
    opened = """(function () {
        var d = document.querySelector("details[data-open-key]"), u = document.getElementById("updated");
        if (!d) return false;
        if (!window.vgOpenedAt) { d.open = true; window.vgOpenedAt = u.textContent; return false; }
        return u.textContent !== window.vgOpenedAt;
    })()"""
    page = render.when(page_url, opened, timeout=60)
    no_page_error(page)
    [details] = page.all("details")
    assert "open" in details.attrs, "the refresh closed the opened state records"


# Chromium's own "is there a route" sockets: connected, never written to.
ROUTE_PROBES = {"[2001:4860:4860::8888]:443", "8.8.8.8:443"}


def netlog_peers(path):
    """Every address chromium connected or resolved, from its --log-net-log."""
    with open(path) as f:
        log = json.load(f)
    names = {v: k for k, v in log["constants"]["logEventTypes"].items()}
    peers = set()
    for e in log["events"]:
        p, kind = e.get("params") or {}, names.get(e["type"], "")
        if kind in ("TCP_CONNECT_ATTEMPT", "UDP_CONNECT") and "address" in p:
            peers.add((kind, p["address"]))
        if kind == "HOST_RESOLVER_DNS_TASK" or (kind == "HOST_RESOLVER_MANAGER_JOB" and "host" in p):
            peers.add((kind, json.dumps(p.get("host"))))
    return peers


def test_browser_stays_on_loopback(render, page_url, tmp_path):
    """The network rule for the browser itself: with its net log on, every TCP connection
    it tried went to 127.0.0.1 and it resolved no name (no DNS query). A UDP socket may
    only be connected to loopback or to chromium's route probes (a UDP connect sends
    nothing: it asks the kernel for a route)."""
    log = str(tmp_path / "netlog.json")
    page = render.dom(page_url, 8000, extra=[f"--log-net-log={log}"])
    no_page_error(page)
    peers = netlog_peers(log)
    tcp = {a for k, a in peers if k == "TCP_CONNECT_ATTEMPT"}
    assert tcp and all(a.startswith("127.0.0.1:") for a in tcp), tcp
    assert not {p for p in peers if p[0].startswith("HOST_RESOLVER")}, peers
    udp = {a for k, a in peers if k == "UDP_CONNECT"}
    assert all(a.startswith("127.0.0.1:") or a in ROUTE_PROBES for a in udp), udp
    print(f"# udp connects (no packet): {sorted(a for k, a in peers if k == 'UDP_CONNECT')}")


# -- static: self-contained, no markup from data -----------------------------------------
def test_page_is_self_contained():
    """No external script, style, font or image, and no API that parses strings as HTML."""
    with open(PAGE) as f:
        html = f.read()
    page = Page(html)
    assert [s.attrs for s in page.all("script")] == [{}], "one inline script, no src"
    assert [lk.attrs.get("href") for lk in page.all("link")] == ["data:,"]
    assert not page.all("img") and not page.all("iframe")
    assert not re.search(r"@import|url\(|@font-face", html)
    code = page.one("script").text()
    for bad in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                "new Function", "srcdoc"):
        assert bad not in code, bad
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}, urls
    assert re.search(r'fetch\(API', code) and 'API = "api/v1/status"' in code, \
        "the API by a relative URL"


# -- phone -------------------------------------------------------------------------------
@pytest.mark.parametrize("page_url", ["protected", "hostile"], indirect=True)
@pytest.mark.parametrize("width", [360, 390])
def test_phone_layout(render, page_url, width):
    """At a phone's width nothing sticks out sideways (long names wrap)."""
    got = render.layout(page_url, width)
    assert got["ready"], got
    assert got["scrollWidth"] <= got["clientWidth"] and not got["wide"], got


@pytest.mark.parametrize("page_url", ["protected", "closed_real_ip"], indirect=True)
def test_phone_screenshot(render, page_url, tmp_path):
    """A phone-sized screenshot (390x844), kept under the test's tmp_path for a person to see."""
    path = str(tmp_path / "phone.png")
    assert render.screenshot(page_url, path) == (390, 844)
    assert os.path.getsize(path) > 5000
    print(f"# phone screenshot: {path}")
