"""vgbrowser - the status page (user/agent/status.html) in Debian's headless chromium.

  Browser(tmp)        chromium runs, each with its own --user-data-dir under tmp, ended by
                      PID (the process group it leads) also on failure:
                      b(url, budget_ms) the DOM after that much virtual time (.dom);
                      b.when(url, js, timeout) the DOM once js is true in the page, in
                      real time (--remote-debugging-pipe; .dom_when); .screenshot(url, path,
                      size); .layout(origin, width) via status_api_mock.py's /_layout; .close()
  Page(html)          the dumped DOM as a tree: .all/.one(tag, data_k=...), .k(key) the text
                      of the one data-k=key, .visible(key), .guards() -> [Card]
  Card                one guard: .k(key), .why, .denied(), .recent(), .timeline()
  Mock(tmp, fixture, fail_after, fail_first, fail_how)
                      tests/tools/status_api_mock.py on 127.0.0.1: .origin, .close()

Chromium never downloads anything and reaches nothing but loopback: background services
off, a refused loopback proxy for every other address. TZ=UTC: the page's times are fixed text.
"""
import fcntl
import json
import os
import select
import shutil
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

# Headless and mute: no sync, updates, metrics or safe-browsing calls; what chromium still
# tries (update and account checks) goes to a refused loopback proxy, and no name but
# 127.0.0.1 resolves (no DNS query leaves): the network rule, loopback only.
CHROMIUM = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-default-apps",
            "--disable-extensions", "--disable-domain-reliability", "--metrics-recording-only",
            "--disable-breakpad", "--disable-client-side-phishing-detection",
            "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
            "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1", "--disable-quic",
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
        p.profile = profile
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

    def dom(self, url, budget_ms=3000, timeout=90, extra=()):
        """The DOM after budget_ms of virtual time (timers run, network waits are real)."""
        return Page(self._run([*extra, f"--virtual-time-budget={budget_ms}", "--dump-dom", url],
                              timeout))

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

    __call__ = dom
    when = dom_when

    def close(self):
        for p in self.procs:
            self.end(p)

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
        shutil.rmtree(p.profile, ignore_errors=True)  # 2 MB a run; screenshots stay


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


class Mock:
    def __init__(self, tmp, fixture, fail_after=-1, fail_first=0, fail_how="status"):
        ready = os.path.join(tmp, f"mock-{os.getpid()}-{id(self)}.port")  # never an old one
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
