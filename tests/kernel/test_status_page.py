"""The agent's status page (user/agent/status.html, issue 13), rendered by a real browser.

World: tests/tools/status_api_mock.py on 127.0.0.1 serves the page file as the agent does
and, as /api/v1/status, one canned JSON of tests/tools/status_fixtures/ (or fails as a dead
or hung agent would). Debian's chromium, headless, loads the page with a virtual-time
budget (the page's 5 s refresh runs in no real time) and dumps the DOM AFTER its script ran;
the assertions read that rendered DOM (the page marks what it shows with data-k=...).
Chromium runs with its own --user-data-dir under the test's tmp_path, every background
service off and a dead proxy for anything not on loopback, and is ended by PID (its
process group) also on failure. No kernel, no agent: these cases need no kernel lock.

Fixtures for other cases of this file (the live agent, issue 13):
  render    render(url, budget_ms=3000) -> Page (the dumped DOM, parsed); render.screenshot(
            url, path, size=(390, 844)); render.layout(origin, width) -> what sticks out
  page_url  the page's URL; indirect parameter: a fixture name, or a dict of mock options
            {"fixture": NAME, "fail_after": N, "fail_first": N,
             "fail_how": "status"|"drop"|"hang"} (status_api_mock.py's options).
            A live case overrides it (a fixture of the same name in a class) with the
            agent's http://ADDR:PORT/ and reuses render and the Page helpers.

Run one case: pytest-3 tests/kernel/test_status_page.py -k 'rendered and gateway'
Phone screenshots: the path is printed (pytest-3 -s), under the test's tmp_path.
"""
import fcntl
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import time
from html.parser import HTMLParser

import pytest

from vgproc import end_popen, pid_alive, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAGE = os.path.join(REPO, "user", "agent", "status.html")
MOCK = os.path.join(REPO, "tests", "tools", "status_api_mock.py")
FIXTURES = os.path.join(REPO, "tests", "tools", "status_fixtures")
XSS = "<img src=x onerror=alert(1)>"

# Headless and mute: no sync, updates, metrics or safe-browsing calls; anything that is not
# loopback goes to a refused loopback proxy (the network rule: loopback only).
CHROMIUM = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-extensions", "--disable-domain-reliability", "--metrics-recording-only",
            "--disable-breakpad", "--disable-client-side-phishing-detection",
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
            "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
            "--hide-scrollbars", "--mute-audio"]


# -- the rendered DOM, parsed ---------------------------------------------------------
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent=None):
        self.tag, self.attrs, self.parent, self.kids = tag, dict(attrs), parent, []

    def text(self):
        return "".join(k if isinstance(k, str) else k.text() for k in self.kids)

    def walk(self):
        for k in self.kids:
            if isinstance(k, Node):
                yield k
                yield from k.walk()

    def all(self, tag=None, **attrs):
        """Descendants with tag and these attributes (data_k= is data-k=)."""
        want = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.walk() if (tag is None or n.tag == tag)
                and all(n.attrs.get(k) == v for k, v in want.items())]

    def one(self, tag=None, **attrs):
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag or '*'} {attrs}>, wanted one"
        return found[0]

    def k(self, key):
        """The text of the one element marked data-k=key."""
        return " ".join(self.one(data_k=key).text().split())


class Page(Node, HTMLParser):
    """The DOM chromium dumped, as a tree of Nodes."""

    def __init__(self, html):
        Node.__init__(self, "#document", {})
        HTMLParser.__init__(self, convert_charrefs=True)
        self.html, self.cur = html, self
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        n = Node(tag, attrs, self.cur)
        self.cur.kids.append(n)
        if tag not in VOID:
            self.cur = n

    def handle_startendtag(self, tag, attrs):
        self.cur.kids.append(Node(tag, attrs, self.cur))

    def handle_endtag(self, tag):
        n = self.cur
        while n is not self and n.tag != tag:
            n = n.parent
        if n is not self:
            self.cur = n.parent

    def handle_data(self, data):
        self.cur.kids.append(data)

    @property
    def title(self):
        return self.one("head").one("title").text()

    def visible(self, key):
        """The element data-k=key, or None when the page hides it."""
        found = self.all(data_k=key)
        return found[0] if found and "hidden" not in found[0].attrs else None

    def guards(self):
        return [Card(n) for n in self.all("article", data_k="guard")]


class Card:
    """One guard's card."""

    def __init__(self, node):
        self.node = node

    def k(self, key):
        return self.node.k(key)

    def has(self, key):
        return bool(self.node.all(data_k=key))

    @property
    def why(self):
        return " ".join(self.node.one(data_k="state-box").one("div", **{"class": "why"}).text().split())

    def denied(self):
        return {li.attrs["data-reason"]: int(li.one("b").text()) for li in self.node.all("li")
                if "data-reason" in li.attrs}

    def recent(self):
        """The last blocked attempts: one {Time, Process, Destination, Reason} per row."""
        return [{td.attrs["data-label"]: td.text() for td in tr.all("td")}
                for tr in self.node.all("tr") if tr.all("td")]

    def timeline(self):
        return [r.attrs["data-state"] for r in self.node.one("svg", data_k="timeline").all("rect")]


# -- chromium and the mock, ended by PID ------------------------------------------------
class Browser:
    def __init__(self, tmp):
        self.tmp, self.procs, self.n = tmp, [], 0

    def _start(self, args, prefix=(), **kw):
        self.n += 1
        profile = os.path.join(self.tmp, f"chromium-profile-{self.n}")
        env = dict(os.environ, TZ="UTC", HOME=self.tmp)  # fixed clock text, no ~/.config
        p = subprocess.Popen([*prefix, *CHROMIUM, f"--user-data-dir={profile}", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def _run(self, args, timeout):
        p = self._start(args)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.end(p)
            pytest.fail(f"chromium {' '.join(args)} still running after {timeout} s", pytrace=False)
        self.end(p)
        assert p.returncode == 0, f"chromium exit {p.returncode}: {err[-2000:]}"
        return out

    def dom_when(self, url, until, timeout=60):
        """The DOM once the JS expression until is true in the page, in REAL time (a
        pending fetch stops virtual time, so a hung API needs this): chromium driven by
        --remote-debugging-pipe (fd 3 its commands, fd 4 its answers, NUL-ended JSON)."""
        cmd_r, cmd_w = os.pipe()
        ans_r, ans_w = os.pipe()
        # The child's ends above 9, so the shell's dups onto 3 and 4 never overwrite them.
        cmd_r, ans_w = [_high(fd) for fd in (cmd_r, ans_w)]
        # bash, not dash: dash takes no fd above 9. Debian's wrapper script passes 3 and 4 on.
        sh = f'exec 3<&{cmd_r} 4>&{ans_w} {cmd_r}<&- {ans_w}>&-; exec "$@"'
        p = self._start(["--remote-debugging-pipe", url], prefix=("bash", "-c", sh, "bash"),
                        pass_fds=(cmd_r, ans_w))
        os.close(cmd_r)
        os.close(ans_w)
        cdp = _Pipe(cmd_w, ans_r, time.monotonic() + timeout)
        try:
            page = [t for t in cdp.call("Target.getTargets")["targetInfos"] if t["type"] == "page"]
            assert page, "chromium has no page target"
            sid = cdp.call("Target.attachToTarget", targetId=page[0]["targetId"],
                           flatten=True)["sessionId"]
            expr = f"({until}) ? document.documentElement.outerHTML : ''"
            while True:
                r = cdp.call("Runtime.evaluate", session=sid, expression=expr, returnByValue=True)
                html = r.get("result", {}).get("value")
                if html:
                    return Page("<!DOCTYPE html>" + html)
                time.sleep(0.2)
        finally:
            cdp.close()
            self.end(p)

    def dom(self, url, budget_ms=3000, timeout=90):
        """The DOM after budget_ms of virtual time (timers run, network waits are real)."""
        return Page(self._run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url], timeout))

    def screenshot(self, url, path, size=(390, 844), budget_ms=3000, timeout=90):
        self._run([f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}",
                   f"--screenshot={path}", url], timeout)
        with open(path, "rb") as f:
            head = f.read(24)
        assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
        return struct.unpack(">II", head[16:24])

    def layout(self, origin, width):
        """What the page draws past width px (status_api_mock.py's /_layout)."""
        page = self.dom(f"{origin}_layout?w={width}", budget_ms=8000)
        return json.loads(page.one("pre", id="out").text())

    def end(self, p):
        """Chromium and its helpers share the session it leads: end that group by its id."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
            if wait_until(lambda: p.poll() is not None and not _group_alive(p.pid), 3):
                break
        end_popen(p)


class _Pipe:
    """Chromium's DevTools protocol over its pipe: one call at a time, events ignored."""

    def __init__(self, w, r, deadline):
        self.w, self.r, self.deadline, self.id, self.buf = w, r, deadline, 0, b""

    def call(self, method, session=None, **params):
        self.id += 1
        msg = {"id": self.id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        os.write(self.w, json.dumps(msg).encode() + b"\0")
        while True:
            while b"\0" not in self.buf:
                left = self.deadline - time.monotonic()
                if left <= 0 or not select.select([self.r], [], [], left)[0]:
                    pytest.fail(f"chromium: no answer to {method} before the deadline", pytrace=False)
                chunk = os.read(self.r, 1 << 20)
                assert chunk, f"chromium closed its pipe (during {method})"
                self.buf += chunk
            line, self.buf = self.buf.split(b"\0", 1)
            ans = json.loads(line)
            if ans.get("id") == self.id:
                assert "error" not in ans, f"{method}: {ans['error']}"
                return ans["result"]

    def close(self):
        for fd in (self.w, self.r):
            os.close(fd)


def _high(fd):
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


@pytest.fixture
def render(tmp_path):
    b = Browser(str(tmp_path))

    def call(url, budget_ms=3000):
        return b.dom(url, budget_ms)
    call.screenshot, call.layout, call.when = b.screenshot, b.layout, b.dom_when
    try:
        yield call
    finally:
        for p in b.procs:
            b.end(p)


class Mock:
    def __init__(self, tmp, fixture, fail_after=-1, fail_first=0, fail_how="status"):
        ready = os.path.join(tmp, "mock.port")
        self.p = subprocess.Popen([sys.executable, MOCK, "--fixture", fixture, "--page", PAGE,
                                   "--ready-file", ready, "--fail-after", str(fail_after),
                                   "--fail-first", str(fail_first),
                                   "--fail-how", fail_how], stderr=subprocess.PIPE, text=True)
        if not wait_until(lambda: os.path.exists(ready) or self.p.poll() is not None, 20):
            raise AssertionError("status_api_mock.py not listening after 20 s")
        assert self.p.poll() is None, f"status_api_mock.py: {self.p.stderr.read()}"
        with open(ready) as f:
            self.origin = f"http://127.0.0.1:{int(f.read())}/"

    def close(self):
        end_popen(self.p)
        assert not pid_alive(self.p.pid)


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


RENDERED = [protected, blocking_tunnel_gone, closed_real_ip, not_guarded, no_guards, gateway,
            not_held, hostile]


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
