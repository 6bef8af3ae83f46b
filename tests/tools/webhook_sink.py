#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""webhook_sink.py - the local webhook receiver of the vpnguard-bpf agent tests.

Listens on loopback only and writes every POST it receives as one JSON line:
  {"t": <unix time>, "path": "/...", "content_type": "...", "body": <the body
   parsed as JSON, or the raw text when it is not JSON>, "json": true|false}
and answers 200 (or --status).

Options:
  --port N             TCP port on 127.0.0.1 (0: any free port, written to --ready-file)
  --out F              where the JSON lines go (appended, flushed per line)
  --ready-file F       written (the port number) once the socket listens
  --status N           HTTP status to answer with (default 200)
  --hang               accept connections and never answer (a receiver that is
                       down in the worst way: the sender waits for its timeout);
                       each accepted connection is logged as {"t":..., "hang": true}
"""
import argparse
import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()


def record(path, obj):
    with LOCK:
        with open(path, "a") as f:
            f.write(json.dumps(obj) + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n > 0 else b""
        text = raw.decode("utf-8", "replace")
        try:
            body, is_json = json.loads(text), True
        except ValueError:
            body, is_json = text, False
        record(self.server.opts.out, {"t": time.time(), "path": self.path,
                                      "content_type": self.headers.get("Content-Type"),
                                      "body": body, "json": is_json})
        self.send_response(self.server.opts.status)
        self.send_header("Content-Length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, opts):
        self.opts = opts
        super().__init__(("127.0.0.1", opts.port), Handler)


def hang(opts, ready):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", opts.port))
    s.listen(64)
    ready(s.getsockname()[1])
    held = []
    while True:
        c, _ = s.accept()
        held.append(c)  # never read, never answered, never closed
        record(opts.out, {"t": time.time(), "hang": True})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ready-file")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--hang", action="store_true")
    opts = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

    def ready(port):
        if opts.ready_file:
            tmp = opts.ready_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % port)
            os.rename(tmp, opts.ready_file)

    try:
        if opts.hang:
            hang(opts, ready)
        srv = Server(opts)
        ready(srv.server_address[1])
        srv.serve_forever(poll_interval=3600)
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
