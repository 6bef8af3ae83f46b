#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""echo_server.py - the IP-echo service of the vpnguard-bpf agent tests.

Runs in the test's "Internet" namespace and tells each client the address it
came from, the way ipify/icanhazip and gluetun's control server do:

  GET /ip              the client's source address, text/plain ("10.66.0.2\\n")
  GET /json            {"public_ip": "10.66.0.2"}   (gluetun's /v1/publicip/ip)
  GET /ipjson          {"ip": "10.66.0.2"}          (ipify's ?format=json)
  GET /v1/vpn/status   {"status": "<word>"}         (gluetun's VPN status; the word
                       is read from --status-file at each request, "running" without one)
  anything else        404

Options:
  --addr ADDR          address to listen on (default 127.0.0.1)
  --port N             TCP port (0: any free port; the port is written to --ready-file)
  --tls CERT KEY       serve HTTPS with this certificate chain and key (PEM)
  --ready-file F       written (the port number) once the socket listens
  --log F              one line per request: "<unix time> <client> <status> <path>";
                       TLS handshakes the client gave up on are logged as
                       "<unix time> <client> tls-error <reason>"
  --status-file F      see /v1/vpn/status

Only ever listens on the address it is given; sends nothing on its own.
"""
import argparse
import json
import os
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG_LOCK = threading.Lock()


def log_line(path, text):
    if not path:
        return
    with LOG_LOCK:
        with open(path, "a") as f:
            f.write("%.6f %s\n" % (time.time(), text))


class Handler(BaseHTTPRequestHandler):
    server_version = "vgecho/1"
    protocol_version = "HTTP/1.0"

    def log_message(self, fmt, *args):  # quiet on stderr; --log says what happened
        pass

    def answer(self, code, ctype, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        log_line(self.server.opts.log, "%s %d %s" % (self.client_address[0], code, self.path))

    def do_GET(self):
        client = self.client_address[0]
        if client.startswith("::ffff:"):
            client = client[7:]
        path = self.path.split("?", 1)[0]
        if path == "/ip":
            self.answer(200, "text/plain", client + "\n")
        elif path == "/json":
            self.answer(200, "application/json", json.dumps({"public_ip": client}))
        elif path == "/ipjson":
            self.answer(200, "application/json", json.dumps({"ip": client}))
        elif path == "/v1/vpn/status":
            word = "running"
            sf = self.server.opts.status_file
            if sf:
                try:
                    with open(sf) as f:
                        word = f.read().strip() or "running"
                except OSError:
                    pass
            self.answer(200, "application/json", json.dumps({"status": word}))
        else:
            self.answer(404, "text/plain", "not found\n")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, opts):
        self.opts = opts
        self.tls = None
        if opts.tls:
            self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.tls.load_cert_chain(opts.tls[0], opts.tls[1])
        super().__init__((opts.addr, opts.port), Handler)

    # The handshake runs in the request's thread, so a client that stalls or
    # refuses the certificate never holds up the others.
    def finish_request(self, request, client_address):
        if self.tls:
            try:
                request.settimeout(10)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except (ssl.SSLError, OSError) as e:
                log_line(self.opts.log, "%s tls-error %s" % (client_address[0], getattr(e, "reason", None) or e))
                return
        super().finish_request(request, client_address)

    def handle_error(self, request, client_address):
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--addr", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    ap.add_argument("--ready-file")
    ap.add_argument("--log")
    ap.add_argument("--status-file")
    opts = ap.parse_args()
    if ":" in opts.addr:
        Server.address_family = socket.AF_INET6
    srv = Server(opts)
    if opts.ready_file:
        tmp = opts.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, opts.ready_file)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        srv.serve_forever(poll_interval=3600)
    except (KeyboardInterrupt, SystemExit):
        pass


if __name__ == "__main__":
    main()
