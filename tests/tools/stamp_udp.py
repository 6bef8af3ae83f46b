"""stamp_udp - datagrams that say when they were sent, and a receiver that says the latest it got.

    stamp_udp.py send ADDR PORT STOP CPU        unconnected sendto() as fast as it can, each
                                                datagram the CLOCK_MONOTONIC ns read just before
                                                its sendto(), pinned to CPU, until the file STOP
                                                exists (or a minute has passed); prints
                                                "ok N refused M" (refused: EPERM)
    stamp_udp.py recv ADDR PORT SECONDS READY   prints "got N latest NS" (latest: the greatest
                                                stamp received, 0 if none) once SECONDS are up
                                                or at SIGINT; creates the file READY once bound

A stamp is taken before its datagram is judged, so a datagram stamped after a moment T was
judged after T: the receiver's latest stamp tells whether anything judged after T went through.
"""
import errno
import os
import signal
import socket
import struct
import sys
import time


def send(addr, port, stop, cpu):
    os.sched_setaffinity(0, {int(cpu)})
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dst, ok, refused = (addr, int(port)), 0, 0
    end = time.monotonic_ns() + 60 * 10**9
    while True:
        now = time.monotonic_ns()
        if now >= end or ((ok + refused) % 1024 == 0 and os.path.exists(stop)):
            break
        try:
            s.sendto(struct.pack("!Q", now), dst)
            ok += 1
        except OSError as e:
            if e.errno != errno.EPERM:
                raise
            refused += 1
    print(f"ok {ok} refused {refused}", flush=True)


def recv(addr, port, seconds, ready):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, int(port)))
    open(ready, "w").close()
    got, latest, stopped = 0, 0, []
    signal.signal(signal.SIGINT, lambda *_: stopped.append(1))
    s.settimeout(0.1)
    end = time.monotonic() + float(seconds)
    while not stopped and time.monotonic() < end:
        try:
            data = s.recv(64)
        except socket.timeout:
            continue
        if len(data) == 8:
            got += 1
            latest = max(latest, struct.unpack("!Q", data)[0])
    print(f"got {got} latest {latest}", flush=True)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"send": send, "recv": recv}[cmd](*args)
