#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""status_api_mock.py - the agent's HTTP side without the agent, for the status page.

Serves, on loopback only:
  GET /                the page file (user/agent/status.html), as the agent serves it
  GET /api/v1/status   the fixture's JSON (tests/tools/status_fixtures/NAME.json)
  GET /metrics         a two-line Prometheus text, so the page's link goes somewhere
  GET /_layout?w=360   a test page that holds / in an iframe W px wide and, once the page
                       has drawn, writes what sticks out past the width as JSON in <pre id=out>
                       (the layout seen through --dump-dom, with no debugger protocol)
Everything else is 404. Each API request is logged to stderr when --verbose.

To develop the page:  tests/tools/status_api_mock.py --fixture protected --port 8099 --live-times
then open http://127.0.0.1:8099/ (edits to the page show on reload: the file is read per request).

Options:
  --fixture NAME|FILE  a fixture name (status_fixtures/NAME.json) or a path
  --page FILE          the page (default: user/agent/status.html of this checkout)
  --port N             TCP port on 127.0.0.1 (0: any free port, written to --ready-file)
  --ready-file F       written (the port number) once the socket listens
  --fail-after N       answer the API N times, then fail every later request (0: from the
                       start); the page stays served, like a browser that still has it
  --fail-first N       fail the first N API requests, then answer (the agent coming back)
  --fail-how HOW       how the API fails: status (HTTP 503), drop (the connection closed
                       without an answer: the agent is gone), hang (never answered)
  --live-times         shift every timestamp of the fixture by (real now - its "now"), so
                       "12 s ago" stays true while you look at it
"""
import argparse
import datetime
import json
import os
import re
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(HERE, "status_fixtures")
PAGE = os.path.join(REPO, "user", "agent", "status.html")
LAYOUT = b"""<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe id="f" src="/" style="border:0;height:900px"></iframe><pre id="out">waiting</pre>
<script>
var f = document.getElementById("f"), w = +(new URLSearchParams(location.search).get("w") || 360);
f.style.width = w + "px";
function check(n) {
  var d = f.contentDocument;
  var ready = d && d.querySelector("[data-k=guard], #stale:not([hidden])");
  if (!ready && n < 100) return setTimeout(function () { check(n + 1); }, 100);
  var e = d.documentElement, wide = [];
  d.querySelectorAll("body *").forEach(function (x) {
    var r = x.getBoundingClientRect();
    if (r.width && r.right > e.clientWidth + 0.5) wide.push(x.tagName.toLowerCase() + "." + x.className);
  });
  document.getElementById("out").textContent = JSON.stringify({ready: !!ready, width: w,
    clientWidth: e.clientWidth, scrollWidth: e.scrollWidth, wide: wide.slice(0, 20)});
}
f.onload = function () { check(0); };
</script></body></html>
"""
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def fixture_path(name):
    return name if os.sep in name or name.endswith(".json") else os.path.join(FIXTURES, name + ".json")


def _parse(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def shift_times(obj, delta):
    """Every ISO-8601 UTC string in obj, moved by delta."""
    if isinstance(obj, dict):
        return {k: shift_times(v, delta) for k, v in obj.items()}
    if isinstance(obj, list):
        return [shift_times(v, delta) for v in obj]
    if isinstance(obj, str) and ISO.match(obj):
        return (_parse(obj) + delta).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return obj


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        if self.server.opts.verbose:
            sys.stderr.write("status_api_mock: " + fmt % args + "\n")

    def reply(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            with open(self.server.opts.page, "rb") as f:
                return self.reply(200, "text/html; charset=utf-8", f.read())
        if path == "/_layout":
            return self.reply(200, "text/html; charset=utf-8", LAYOUT)
        if path == "/metrics":
            return self.reply(200, "text/plain; version=0.0.4",
                              b"# TYPE vpnguard_mock gauge\nvpnguard_mock 1\n")
        if path != "/api/v1/status":
            return self.reply(404, "text/plain", b"not found\n")
        if self.server.count_api():
            return self.reply(200, "application/json", self.server.status())
        how = self.server.opts.fail_how
        if how == "status":
            return self.reply(503, "text/plain", b"agent not ready\n")
        if how == "hang":
            self.server.hung.append(self.connection)  # kept open, never answered
            threading.Event().wait()
        self.close_connection = True  # drop: no status line at all


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, opts):
        self.opts, self.api_calls, self.hung = opts, 0, []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", opts.port), Handler)

    def count_api(self):
        """True while this request is still one to answer (--fail-after)."""
        with self.lock:
            self.api_calls += 1
            if self.api_calls <= self.opts.fail_first:
                return False
            return self.opts.fail_after < 0 or self.api_calls <= self.opts.fail_after

    def status(self):
        with open(fixture_path(self.opts.fixture)) as f:
            obj = json.load(f)
        if self.opts.live_times and isinstance(obj.get("now"), str) and ISO.match(obj["now"]):
            obj = shift_times(obj, datetime.datetime.now(datetime.timezone.utc) - _parse(obj["now"]))
        return json.dumps(obj).encode()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fixture", required=True)
    ap.add_argument("--page", default=PAGE)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file")
    ap.add_argument("--fail-after", type=int, default=-1)
    ap.add_argument("--fail-first", type=int, default=0)
    ap.add_argument("--fail-how", choices=("status", "drop", "hang"), default="status")
    ap.add_argument("--live-times", action="store_true")
    ap.add_argument("--verbose", action="store_true")
    opts = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    json.load(open(fixture_path(opts.fixture)))  # a broken fixture fails here, not in the page
    try:
        srv = Server(opts)
        if opts.ready_file:
            tmp = opts.ready_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % srv.server_address[1])
            os.rename(tmp, opts.ready_file)
        srv.serve_forever(poll_interval=3600)
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
