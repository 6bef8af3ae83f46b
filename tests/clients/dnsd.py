"""A tiny authoritative-for-everything DNS server for the real-client tests.

    dnsd.py --listen ADDR [--port 53] --map NAME=IPV4 ... --log FILE --ready FILE

Answers A queries for the mapped names (case-insensitive), NOERROR with no
answer for other types of mapped names, NXDOMAIN for every other name: a
lookup resolves to a host the test made, or nowhere. UDP only (glibc's stub
uses TCP only after a truncated answer, which never happens here). Every
query is one JSON line in FILE: source, name, type, answer.
"""
import argparse
import json
import signal
import socket
import struct
import sys
import time


def parse_qname(msg, off):
    labels = []
    while True:
        n = msg[off]
        if n == 0:
            return ".".join(labels), off + 1
        if n & 0xC0:
            raise ValueError("compression in a question")
        labels.append(msg[off + 1:off + 1 + n].decode("ascii", "replace"))
        off += 1 + n


def answer(msg, names):
    ident, flags, qd = struct.unpack("!HHH", msg[:6])
    if qd != 1 or flags & 0x8000:
        return None, None, None, None
    name, off = parse_qname(msg, 12)
    qtype, qclass = struct.unpack("!HH", msg[off:off + 4])
    question = msg[12:off + 4]
    addr = names.get(name.lower().rstrip("."))
    rd = flags & 0x0100
    if addr is None:
        rflags, ans = 0x8400 | rd | 3, b""  # NXDOMAIN
    elif qtype == 1 and qclass == 1:
        rflags = 0x8400 | rd
        ans = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(addr)
    else:
        rflags, ans = 0x8400 | rd, b""  # the name exists, no record of that type
    hdr = struct.pack("!HHHHHH", ident, rflags, 1, 1 if ans else 0, 0, 0)
    return hdr + question + ans, name, qtype, (addr if ans else ("NXDOMAIN" if addr is None else "NODATA"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--port", type=int, default=53)
    ap.add_argument("--map", action="append", default=[])
    ap.add_argument("--log", required=True)
    ap.add_argument("--ready", required=True)
    a = ap.parse_args()
    names = {}
    for m in a.map:
        k, v = m.split("=", 1)
        names[k.lower().rstrip(".")] = v
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.listen, a.port))
    open(a.ready, "w").close()
    with open(a.log, "a", buffering=1) as log:
        while True:
            msg, src = s.recvfrom(4096)
            try:
                out, name, qtype, what = answer(msg, names)
            except (ValueError, IndexError, struct.error):
                continue
            if out is None:
                continue
            s.sendto(out, src)
            log.write(json.dumps({"t": time.time(), "src": src[0], "name": name,
                                  "type": qtype, "answer": what}) + "\n")


if __name__ == "__main__":
    main()
