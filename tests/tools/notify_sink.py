#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""notify_sink.py - stands in for systemd's notification socket in the vpnguard-bpf tests.

Binds a unix datagram socket at --socket (give that path to the service as
$NOTIFY_SOCKET) and writes one JSON line per datagram to --out:
  {"t": <unix time>, "mono": <CLOCK_MONOTONIC s>, "msg": "READY=1\\nMAINPID=...",
   "pid": <sender pid from SCM_CREDENTIALS or null>, "paths": {"<path>": true|false}}
where "paths" says, for every --check PATH, whether PATH existed at the moment
the datagram arrived (e.g. the guard's pins when READY=1 comes in).

  --socket P           the datagram socket to create (removed at exit)
  --out F              JSON lines (appended, flushed per line)
  --check PATH         may be repeated
  --ready-file F       touched once the socket is bound
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--check", action="append", default=[])
    ap.add_argument("--ready-file")
    opts = ap.parse_args()

    try:
        os.unlink(opts.socket)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(opts.socket)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if opts.ready_file:
        open(opts.ready_file, "w").close()
    creds_size = struct.calcsize("3i")
    try:
        while True:
            data, anc, _, _ = s.recvmsg(65536, socket.CMSG_SPACE(creds_size))
            paths = {p: os.path.exists(p) for p in opts.check}
            pid = None
            for level, kind, cdata in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:creds_size])[0]
            with open(opts.out, "a") as f:
                f.write(json.dumps({"t": time.time(), "mono": time.monotonic(),
                                    "msg": data.decode("utf-8", "replace"),
                                    "pid": pid, "paths": paths}) + "\n")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        try:
            os.unlink(opts.socket)
        except OSError:
            pass


if __name__ == "__main__":
    main()
